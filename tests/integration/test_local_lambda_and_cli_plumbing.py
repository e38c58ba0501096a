"""The plumbing under `poll now` / `reconcile now` and every CLI command: the local stack's Lambda Invoke API
answers boto3 as Lambda does, the CLI finds `make run`'s outputs from any folder of the checkout, and slow commands
show progress on stderr only once they take more than a second."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from local_stack.functions import LocalFunction
from local_stack.lambda_service import LocalLambdaService
from local_stack.provision import FunctionSpec
from pos_ecom_sync_cli.common import progress
from pos_ecom_sync_cli.main import OUTPUTS_ENV, local_outputs_file
from tests.support import free_port

HANDLER = """
def lambda_handler(event, context):
    if event.get("fail"):
        raise ValueError("the poller could not start: " + event["fail"])
    return {"seen": event, "request_id": context.aws_request_id}
"""


@pytest.fixture
def lambda_client(tmp_path: Path) -> Any:
    (tmp_path / "app.py").write_text(HANDLER)
    spec = FunctionSpec("ChangePollerFunction", tmp_path, "app.lambda_handler", 30, {}, name="local-ChangePoller")
    service = LocalLambdaService({"ChangePollerFunction": LocalFunction(spec)}, free_port(), "us-east-1", "1" * 12)
    service.start()
    client = boto3.client(
        "lambda", endpoint_url=service.url, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    yield client
    service.stop()


def test_an_invocation_returns_the_handlers_result_with_its_request_id(lambda_client: Any) -> None:
    response = lambda_client.invoke(FunctionName="local-ChangePoller", Payload=json.dumps({"connection_id": "shop"}))
    result = json.loads(response["Payload"].read())
    assert response["StatusCode"] == 200 and "FunctionError" not in response
    assert result["seen"] == {"connection_id": "shop"}
    assert result["request_id"] == response["ResponseMetadata"]["RequestId"]  # the run's correlation id derives from it


def test_a_handler_that_raises_is_an_unhandled_function_error_with_its_message(lambda_client: Any) -> None:
    response = lambda_client.invoke(FunctionName="local-ChangePoller", Payload=json.dumps({"fail": "no table"}))
    error = json.loads(response["Payload"].read())
    assert response["StatusCode"] == 200 and response["FunctionError"] == "Unhandled"
    assert error["errorType"] == "ValueError" and error["errorMessage"] == "the poller could not start: no table"


def test_a_function_the_stack_does_not_have_is_resource_not_found(lambda_client: Any) -> None:
    with pytest.raises(ClientError) as refused:
        lambda_client.invoke(FunctionName="local-Nope", Payload=b"{}")
    assert refused.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert "local-Nope" in refused.value.response["Error"]["Message"]


def test_a_function_is_found_by_its_arn_as_well_as_its_name(lambda_client: Any) -> None:
    arn = "arn:aws:lambda:us-east-1:111111111111:function:local-ChangePoller"
    assert lambda_client.invoke(FunctionName=arn, Payload=b"{}")["StatusCode"] == 200


def test_the_cli_finds_make_runs_outputs_from_any_folder_below_the_checkout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(OUTPUTS_ENV, raising=False)
    outputs = tmp_path / ".local-stack" / "outputs.json"
    outputs.parent.mkdir()
    outputs.write_text("{}")
    deep = tmp_path / "layers" / "shared"
    deep.mkdir(parents=True)
    assert local_outputs_file(deep) == outputs
    monkeypatch.setenv(OUTPUTS_ENV, str(tmp_path / "elsewhere.json"))
    assert local_outputs_file(deep) is None  # a named file that is not there: no silent fallback


def test_progress_stays_silent_for_a_quick_command_and_reports_a_slow_one_on_its_stream() -> None:
    quick, slow = io.StringIO(), io.StringIO()
    with progress("reading", out=quick, after_s=1.0):
        pass
    with progress("reconciling", out=slow, after_s=0.05):
        time.sleep(0.2)
    assert quick.getvalue() == ""
    assert slow.getvalue().startswith("reconciling...\n") and "reconciling: done in" in slow.getvalue()
