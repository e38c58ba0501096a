"""Tracing costs a cold start nothing where it is off, and still records every handler where it is on.

The functions build their Powertools Tracer through `observability.tracer()`: Powertools' X-Ray tracer in Lambda
(template `Tracing: Active`), a Tracer on a provider that records nothing elsewhere, so the X-Ray SDK (about 150 ms
of a cold start) is not imported there. Each function runs here in a fresh interpreter, as a Lambda sandbox starts it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from aws_lambda_powertools import Tracer
from pos_ecom_sync import observability

from tests.perf.bench_intake import FUNCTION_ENV as COLD_START_ENV

REPO = Path(__file__).resolve().parents[2]

# Runs one worker record (a POS change reaching order_import is acknowledged without any AWS or vendor call) and
# one unknown webhook route (404) through the real handlers; prints what the X-Ray recorder emitted.
SANDBOX = """
import json, sys, time, uuid
sys.path[:0] = [{order_import!r}, {layer!r}, {repo!r}]
import app as order_import
sys.modules.pop("app")
sys.path[0] = {webhook_ingest!r}
import app as webhook_ingest
from local_stack.lambda_events import LambdaContext, api_gateway_v2_event, sqs_event

emitted = []
if "aws_xray_sdk.core" in sys.modules:
    from aws_xray_sdk.core import xray_recorder

    class Memory:
        def send_entity(self, entity):
            emitted.append(entity.name)

        def set_daemon_address(self, address):
            pass

    xray_recorder.configure(emitter=Memory())
now_ms = str(int(time.time() * 1000))
message = {{
    "connection_id": "shop", "source": "pos", "entity": "inventory", "entity_id": "p-1", "via": "webhook",
    "received_at": "2026-12-05T00:00:00Z", "payload": {{}}, "concern": "stock",
}}
attributes = {{
    "ApproximateReceiveCount": "1", "SentTimestamp": now_ms, "SenderId": "AIDAEXAMPLE",
    "ApproximateFirstReceiveTimestamp": now_ms, "MessageGroupId": "shop#stock#p-1",
    "MessageDeduplicationId": uuid.uuid4().hex, "SequenceNumber": "18849496460467696128",
}}
record = {{"MessageId": str(uuid.uuid4()), "ReceiptHandle": "rh", "Body": json.dumps(message)}}
record["Attributes"] = attributes
answer = order_import.lambda_handler(sqs_event([record], "arn:aws:sqs:us-east-1:123456789012:shop-orders.fifo"),
                                     LambdaContext())
webhook = webhook_ingest.lambda_handler(api_gateway_v2_event("GET", "/nothing/here", "$default", {{}}, b""),
                                        LambdaContext())
print(json.dumps({{"answer": answer, "webhook_status": webhook["statusCode"], "emitted": emitted,
                  "xray_imported": "aws_xray_sdk.core" in sys.modules}}))
"""

# The cold-start benchmark's function settings, plus what these invocations reach (a DLQ, a quiet metrics sink).
FUNCTION_ENV = {
    **COLD_START_ENV,
    "DEAD_LETTER_QUEUE_URL": "dlq",
    "POWERTOOLS_METRICS_DISABLED": "true",
    "POWERTOOLS_SERVICE_NAME": "pos-ecom-sync",
}
# What Lambda sets in a sandbox of a function with `Tracing: Active` (the trace header changes per invocation).
LAMBDA_TRACED = {
    "LAMBDA_TASK_ROOT": "/var/task",
    "AWS_LAMBDA_FUNCTION_NAME": "order-import",
    "_X_AMZN_TRACE_ID": "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
    "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
}


def run_sandbox(extra_env: dict[str, str]) -> dict[str, object]:
    code = SANDBOX.format(
        order_import=str(REPO / "functions" / "order_import"),
        webhook_ingest=str(REPO / "functions" / "webhook_ingest"),
        layer=str(REPO / "layers" / "shared"),
        repo=str(REPO),
    )
    env = {"PATH": os.environ.get("PATH", ""), **FUNCTION_ENV, **extra_env}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_in_a_traced_lambda_sandbox_every_handler_and_traced_method_records_a_subsegment() -> None:
    traced = run_sandbox(LAMBDA_TRACED)

    assert traced["xray_imported"] is True
    assert traced["answer"] == {"batchItemFailures": []}
    assert traced["webhook_status"] == 404
    emitted = traced["emitted"]
    assert isinstance(emitted, list)
    assert emitted.count("## lambda_handler") == 2  # order_import's and webhook_ingest's
    assert "## app.import_order" in emitted  # a worker's per-record method (`capture_method`)


@pytest.mark.parametrize(
    "extra_env",
    [{}, {**LAMBDA_TRACED, "POWERTOOLS_TRACE_DISABLED": "true"}],
    ids=["outside Lambda", "POWERTOOLS_TRACE_DISABLED"],
)
def test_with_tracing_off_the_handlers_run_the_same_and_the_xray_sdk_is_never_imported(
    extra_env: dict[str, str],
) -> None:
    untraced = run_sandbox(extra_env)

    assert untraced == {
        "answer": {"batchItemFailures": []},
        "webhook_status": 404,
        "emitted": [],
        "xray_imported": False,
    }


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"LAMBDA_TASK_ROOT": "/var/task"},
        {"LAMBDA_TASK_ROOT": "/var/task", "POWERTOOLS_TRACE_DISABLED": "true"},
        {"LAMBDA_TASK_ROOT": "/var/task", "POWERTOOLS_TRACE_DISABLED": "false"},
        {"LAMBDA_TASK_ROOT": "/var/task", "POWERTOOLS_TRACE_DISABLED": "1"},
        {"LAMBDA_TASK_ROOT": "/var/task", "AWS_SAM_LOCAL": "true"},
        {"LAMBDA_TASK_ROOT": "/var/task", "AWS_CHALICE_CLI_MODE": "true"},
        {"POWERTOOLS_TRACE_DISABLED": "false"},
    ],
)
def test_whether_tracing_is_on_follows_powertools_own_rule(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str]
) -> None:
    for name in ("LAMBDA_TASK_ROOT", "POWERTOOLS_TRACE_DISABLED", "AWS_SAM_LOCAL", "AWS_CHALICE_CLI_MODE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    assert observability.tracing_enabled() is not bool(Tracer._is_tracer_disabled())
