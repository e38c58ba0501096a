"""Benchmark: webhook_ingest throughput/latency in-process against moto, and cold init per function.

Run: `make bench` (or `.venv/bin/python -m tests.perf.bench_intake`). Prints figures; asserts nothing.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from tests.perf.offline import provision_bench_stack, use_offline_aws

REPO = Path(__file__).resolve().parents[2]
COLD_INIT = """
import os, sys, time
t0 = time.perf_counter()
sys.path[:0] = [{code!r}, {layer!r}]
import app
{first_call}
print(time.perf_counter() - t0)
"""
# What each function's first invocation sets up beyond its module import: the cached services it builds, and the
# modules its first record or run imports once it has read a connection from DynamoDB: the X-Series client and the
# profile module the function asks the connection's profile for (the poller its change and customer feeds,
# reconciliation its catalog walk), eCom's connector, the shared rate budget (and for the order worker, the stock
# store and catalog states its routing reads).
FIRST_CALL = {
    "webhook_ingest": "from pos_ecom_sync import runtime; runtime.webhook_intake()",
    "change_poller": "from pos_ecom_sync import runtime; runtime.change_poller(); "
    "import pos_ecom_sync.profiles.xseries.client, pos_ecom_sync.profiles.xseries.feeds, "
    "pos_ecom_sync.profiles.xseries.customers, pos_ecom_sync.connectors.ecom, pos_ecom_sync.state.budget",
    "product_sync": "from pos_ecom_sync import runtime; runtime.sync_store(); import pos_ecom_sync.catalog.sync, "
    "pos_ecom_sync.profiles.xseries.client, pos_ecom_sync.profiles.xseries.catalog, pos_ecom_sync.connectors.ecom, "
    "pos_ecom_sync.state.budget",
    "stock_sync": "from pos_ecom_sync import runtime; runtime.stock_store(); import pos_ecom_sync.stock.sync, "
    "pos_ecom_sync.profiles.xseries.client, pos_ecom_sync.profiles.xseries.stock, pos_ecom_sync.connectors.ecom, "
    "pos_ecom_sync.state.budget",
    "order_import": "from pos_ecom_sync import runtime; runtime.order_store(); import pos_ecom_sync.orders.importer, "
    "pos_ecom_sync.profiles.xseries.client, pos_ecom_sync.profiles.xseries.orders, pos_ecom_sync.connectors.ecom, "
    "pos_ecom_sync.state.budget, pos_ecom_sync.state.stock_store, pos_ecom_sync.models.catalog",
    "status_sync": "from pos_ecom_sync import runtime; runtime.order_store(); import pos_ecom_sync.status.sync, "
    "pos_ecom_sync.state.status_store, pos_ecom_sync.profiles.xseries.client, pos_ecom_sync.profiles.xseries.status, "
    "pos_ecom_sync.connectors.ecom, pos_ecom_sync.state.budget",
    "reconcile": "from pos_ecom_sync import runtime; runtime.reconciler(); "
    "import pos_ecom_sync.profiles.xseries.client, pos_ecom_sync.profiles.xseries.catalog_walk, "
    "pos_ecom_sync.connectors.ecom, pos_ecom_sync.state.budget",
}
FUNCTIONS = list(FIRST_CALL)


# The settings a function validates at its first call (placeholders: nothing is called).
FUNCTION_ENV = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "x",
    "AWS_SECRET_ACCESS_KEY": "x",
    "TABLE_NAME": "t",
    "SECRET_PREFIX": "p/",
    "PRODUCTS_QUEUE_URL": "q",
    "STOCK_QUEUE_URL": "q",
    "ORDERS_QUEUE_URL": "q",
    "STATUSES_QUEUE_URL": "q",
    "POWERTOOLS_METRICS_NAMESPACE": "Bench",
}


def cold_init_seconds(function: str, runs: int = 5) -> list[float]:
    env = {**os.environ, **FUNCTION_ENV, "PYTHONPATH": ""}
    code = COLD_INIT.format(
        code=str(REPO / "functions" / function), layer=str(REPO / "layers" / "shared"), first_call=FIRST_CALL[function]
    )
    times = []
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        times.append(float(out.stdout.strip().splitlines()[-1]))
    return times


def webhook_throughput(requests: int = 400) -> dict[str, float]:
    use_offline_aws()
    from moto import mock_aws

    with mock_aws():
        from pos_ecom_sync.models.connection import Connection, ConnectionSecrets
        from pos_ecom_sync.secrets import write_connection_secrets
        from pos_ecom_sync.state.store import SyncStore

        from tests.support import DEMO_SECRETS, INVENTORY_PAYLOAD, LambdaContext, pos_form, pos_webhook_event

        session, _resources, env = provision_bench_stack()
        SyncStore(env["TABLE_NAME"], resource=session.resource("dynamodb")).save_connection(
            Connection(connection_id="demo", pos_base_url="http://127.0.0.1:9", ecom_base_url="http://127.0.0.1:9")
        )
        write_connection_secrets(
            session.client("secretsmanager"),
            env["SECRET_PREFIX"],
            "demo",
            ConnectionSecrets.model_validate(DEMO_SECRETS),
        )
        from functions.webhook_ingest import app

        sqs = session.client("sqs")
        latencies = []
        started = time.perf_counter()
        for i in range(requests):
            payload = {**INVENTORY_PAYLOAD, "product_id": f"p-{i % 50}", "count": i}
            event = pos_webhook_event("demo", pos_form("inventory.update", payload), base64_body=True)
            t0 = time.perf_counter()
            response = app.lambda_handler(event, LambdaContext(function_name="webhook_ingest"))
            latencies.append(time.perf_counter() - t0)
            assert response["statusCode"] == 202, response
            if i % 50 == 49:  # keep the queue shallow: moto's send cost grows with queue depth
                from tests.support import drain_queue

                drain_queue(sqs, env["STOCK_QUEUE_URL"])
        elapsed = time.perf_counter() - started
        # Refusals (authenticated, then refused by validation: nesting, huge ints, odd digits, surrogates, bad ids).
        refused = []
        for i in range(requests):
            payload_text = HOSTILE_PAYLOADS[i % len(HOSTILE_PAYLOADS)]
            event = pos_webhook_event("demo", pos_form("inventory.update", payload_text), base64_body=True)
            t0 = time.perf_counter()
            response = app.lambda_handler(event, LambdaContext(function_name="webhook_ingest"))
            refused.append(time.perf_counter() - t0)
            assert response["statusCode"] == 400, response
    return {
        "requests": requests,
        "req_per_s": requests / elapsed,
        **_percentiles("", latencies),
        **_percentiles("refused_", refused),
    }


def _percentiles(prefix: str, latencies: list[float]) -> dict[str, float]:
    latencies = sorted(latencies)
    return {
        f"{prefix}p50_ms": latencies[len(latencies) // 2] * 1000,
        f"{prefix}p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
    }


_INVENTORY = '{"product_id":"p-1","outlet_id":"o-1","count":1'
HOSTILE_PAYLOADS = [
    '{"a":' * 12_000 + "1" + "}" * 12_000,
    _INVENTORY + ',"version":' + "9" * 5000 + "}",
    _INVENTORY + r',"version":"\u00b2"}',
    r'{"product_id":"\udcff","outlet_id":"o-1","count":1}',
    r'{"product_id":"p\u0007","outlet_id":"o-1","count":1}',
]


def main() -> None:
    print(f"python {sys.version.split()[0]} on {os.cpu_count()} cores")
    result = webhook_throughput()
    print(
        f"webhook intake (with input validation) in-process vs moto: {result['req_per_s']:.0f} req/s over "
        f"{result['requests']} requests, p50 {result['p50_ms']:.1f} ms, p99 {result['p99_ms']:.1f} ms "
        "(each request: 1 GetItem connection, 1 secret (cached), 1 GetItem mark, 1 SQS batch send, 1 PutItem mark; "
        "budget: p99 within 20% of 8.4 ms)"
    )
    print(
        f"webhook intake refusals (deep nesting, 5000-digit int, odd digits, surrogate and control-character ids): "
        f"p50 {result['refused_p50_ms']:.1f} ms, p99 {result['refused_p99_ms']:.1f} ms (1 GetItem connection, "
        "1 secret (cached), then a 400)"
    )
    for function in FUNCTIONS:
        times = cold_init_seconds(function)
        print(
            f"cold init {function}: median {statistics.median(times) * 1000:.0f} ms of {len(times)} "
            f"(min {min(times) * 1000:.0f}, max {max(times) * 1000:.0f}); import + first-call client setup, .pyc cached"
        )


if __name__ == "__main__":
    main()
