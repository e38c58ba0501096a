"""`make run` end to end (X-Series, and R-Series with its poll-only sync): the stack starts, a vendor webhook sent to
its API lands on the right queue, a demo change reaches eCom, Ctrl-C stops everything."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest

from tests.support import DEMO_SECRETS, INVENTORY_PAYLOAD, ORDER_BODY, drain_queue, ecom_signature, free_port, pos_form

REPO = Path(__file__).resolve().parents[2]
# Every `make run` of the tests is in this file: it writes the repo's .local-stack/outputs.json, so they must run one
# after the other (parallel workers take a file whole: `--dist loadfile`).
pytestmark = pytest.mark.e2e


@dataclass
class RunningStack:
    process: subprocess.Popen[str]
    api: str
    moto: str
    lines: list[str]

    def sqs(self) -> object:
        return boto3.client("sqs", endpoint_url=self.moto, region_name="us-east-1")

    def queue_url(self, suffix: str) -> str:
        urls = self.sqs().list_queues()["QueueUrls"]  # type: ignore[attr-defined]
        return next(u for u in urls if u.endswith(f"-{suffix}.fifo"))


PORTS = ("API_PORT", "POS_PORT", "ECOM_PORT", "MOTO_PORT", "LAMBDA_PORT")


def _make_run(
    run_args: str, ports: dict[str, int], seen: Callable[[str], bool], **settings: str
) -> tuple[subprocess.Popen[str], list[str], threading.Event]:
    """`make run RUN_ARGS=...` from the repo as a developer starts it, on free ports, in its own process group (Ctrl-C
    goes to the whole group, as in a terminal): the process, its output lines as they come, and an event set at the
    first line `seen` accepts."""
    env = {**os.environ, **{k: str(v) for k, v in ports.items()}, **settings}
    env.pop("AWS_ENDPOINT_URL", None)
    for inherited in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL"):  # `make test`'s own flags (its -j): not a terminal's
        env.pop(inherited, None)
    process = subprocess.Popen(
        ["make", "--no-print-directory", "run", f"RUN_ARGS={run_args}"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines: list[str] = []
    arrived = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line.rstrip())
            if seen(line.rstrip()):
                arrived.set()

    threading.Thread(target=read, daemon=True).start()
    return process, lines, arrived


def _stop(process: subprocess.Popen[str], what: str) -> None:
    os.killpg(process.pid, signal.SIGINT)
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        pytest.fail(f"{what} did not stop on Ctrl-C")


# First in the file: it stops its stack before the module's `stack` fixture starts another.
def test_make_run_with_r_series_syncs_a_demo_qoh_change_to_ecom_at_the_next_poll_and_stops_on_ctrl_c() -> None:
    ports = {name: free_port() for name in PORTS}
    settings = {"LOCAL_SCHEDULE_SECONDS": "3", "DEMO_EVERY_SECONDS": "3", "DEMO_FAMILIES": "2"}
    stock_line = re.compile(r"eCom \| eCom stock of item \d+ now -?\d+")
    process, lines, arrived = _make_run("--pos r-series", ports, lambda line: bool(stock_line.search(line)), **settings)
    try:
        assert arrived.wait(180), "no demo qoh change reached eCom:\n" + "\n".join(lines[-60:])
    finally:
        _stop(process, "the R-Series local stack")
    text = "\n".join(lines)
    assert "R-Series API V3" in text and "no webhooks: every POS change is polled" in text
    assert "stopped: every server and worker is shut down" in text


@pytest.fixture(scope="module")
def stack() -> Iterator[RunningStack]:
    ports = {name: free_port() for name in PORTS}
    settings = {"LOCAL_SCHEDULE_SECONDS": "3600", "DEMO_FAMILIES": "2"}
    process, lines, ready = _make_run("--no-demo", ports, lambda line: line.endswith("] ready"), **settings)
    if not ready.wait(120):
        os.killpg(process.pid, signal.SIGKILL)
        pytest.fail("local stack did not become ready:\n" + "\n".join(lines[-40:]))
    running = RunningStack(
        process, f"http://127.0.0.1:{ports['API_PORT']}", f"http://127.0.0.1:{ports['MOTO_PORT']}", lines
    )
    yield running
    if process.poll() is None:
        _stop(process, "local stack")


def test_banner_prints_every_url(stack: RunningStack) -> None:
    text = "\n".join(stack.lines)
    assert stack.api in text and stack.moto in text and "POS simulator" in text and "eCom simulator" in text


def test_pos_webhook_sent_to_the_local_api_reaches_the_stock_queue(stack: RunningStack) -> None:
    response = httpx.post(
        f"{stack.api}/connections/demo/webhooks/pos",
        params={"token": DEMO_SECRETS["pos_webhook_token"]},
        content=pos_form("inventory.update", {**INVENTORY_PAYLOAD, "product_id": "e2e-variant", "version": 42}),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )

    assert response.status_code == 202, response.text
    # stock_sync consumes the stock queue: the message is either still there or its level is in the stock state
    # (this variant is in no catalog, so nothing goes to eCom).
    dynamodb = boto3.client("dynamodb", endpoint_url=stack.moto, region_name="us-east-1")
    table = next(t for t in dynamodb.list_tables()["TableNames"] if "SyncTable" in t)  # type: ignore[attr-defined]
    queued: list[str] = []
    deadline = time.time() + 20
    while time.time() < deadline:
        bodies = [json.loads(m["Body"]) for m in drain_queue(stack.sqs(), stack.queue_url("stock"))]
        queued += [b["entity_id"] for b in bodies if b["via"] == "webhook" and b["entity_id"] == "e2e-variant"]
        state = dynamodb.get_item(  # type: ignore[attr-defined]
            TableName=table, Key={"pk": {"S": "CONN#demo"}, "sk": {"S": "STOCK#v#e2e-variant"}}, ConsistentRead=True
        ).get("Item")
        if queued or state:
            break
        time.sleep(0.2)
    assert queued == ["e2e-variant"] or (state and '"level":5' in state["state"]["S"]), (queued, state)


def test_signed_ecom_webhook_reaches_the_orders_queue_and_a_forged_one_does_not(stack: RunningStack) -> None:
    body = json.dumps({"order": {**ORDER_BODY["order"], "id": 777001}}).encode()
    url = f"{stack.api}/connections/demo/webhooks/ecom"
    forged = httpx.post(url, content=body, headers={"Content-Type": "application/json", "x-signature": "0" * 32})
    signed = httpx.post(
        url,
        content=body,
        headers={
            "Content-Type": "application/json",
            "x-signature": ecom_signature(body, DEMO_SECRETS["ecom_webhook_secret"]),
        },
    )

    assert forged.status_code == 401
    assert signed.status_code == 202, signed.text
    # order_import consumes the orders queue: the message is either still there or already worked on (this order
    # is unknown to the eCom simulator, so the worker holds it: never dropped).
    dynamodb = boto3.client("dynamodb", endpoint_url=stack.moto, region_name="us-east-1")
    table = next(t for t in dynamodb.list_tables()["TableNames"] if "SyncTable" in t)  # type: ignore[attr-defined]
    queued: list[str] = []
    deadline = time.time() + 20
    while time.time() < deadline:
        bodies = [json.loads(m["Body"]) for m in drain_queue(stack.sqs(), stack.queue_url("orders"))]
        queued += [b["entity_id"] for b in bodies if b["via"] == "webhook"]
        ledger = dynamodb.get_item(  # type: ignore[attr-defined]
            TableName=table, Key={"pk": {"S": "CONN#demo"}, "sk": {"S": "ORDER#777001"}}, ConsistentRead=True
        ).get("Item")
        if queued or (ledger and ledger["status"]["S"] == "held"):
            break
        time.sleep(0.2)
    assert queued == ["777001"] or (ledger and ledger["status"]["S"] == "held"), (queued, ledger)


def test_the_operator_cli_works_on_make_runs_stack_from_a_subfolder(stack: RunningStack) -> None:
    command = Path(sys.executable).with_name("pos-ecom-sync")
    env = {k: v for k, v in os.environ.items() if k not in ("AWS_ENDPOINT_URL", "POS_ECOM_SYNC_OUTPUTS")}

    def cli(*argv: str) -> Any:
        done = subprocess.run(
            [str(command), *argv, "--json"], cwd=REPO / "layers", env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    polled = cli("poll", "now", "--connection", "demo")
    status = cli("sync", "status")

    assert polled["correlation_id"].startswith("poll-") and set(polled["connections"]["demo"]) >= {"pos:products"}
    [demo] = status["connections"]
    assert demo["connection_id"] == "demo" and any(c["feed"] == "pos:products" for c in demo["cursors"])


def test_ctrl_c_stops_the_stack_cleanly(stack: RunningStack) -> None:
    # Ctrl-C reaches the whole process group: make itself dies of the SIGINT (as it does in a terminal),
    # so what must hold is that the stack shut down in order and freed its ports.
    os.killpg(stack.process.pid, signal.SIGINT)
    assert stack.process.wait(30) in (0, 2, -signal.SIGINT, 128 + signal.SIGINT)
    deadline = time.time() + 5
    while time.time() < deadline and not any("stopped:" in line for line in stack.lines):
        time.sleep(0.1)
    assert any("stopped:" in line for line in stack.lines), "\n".join(stack.lines[-20:])
    assert not any("Traceback" in line for line in stack.lines), "\n".join(stack.lines[-40:])
    api_port = int(stack.api.rsplit(":", 1)[1])
    with socket.socket() as s:
        # SO_REUSEADDR: connections the server closed linger in TIME_WAIT (the eCom simulator's webhook deliveries
        # keep theirs alive), which is not a held port; a socket still listening there makes the bind fail.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", api_port))  # raises if the API server still holds its port
