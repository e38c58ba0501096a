"""A record that cannot succeed lands in the dead-letter queue; `dlq list` shows it with its reason; once the cause
is fixed, `dlq redrive` completes it, all on the local stack (the CLI run as an operator runs it: the installed
`pos-ecom-sync` command in a directory holding the stack's .local-stack/outputs.json).

The failure: the connection's online register no longer exists in the POS (deleted there after it was configured),
so X-Series refuses the sale create with a 400 and the order worker parks the record at once. The fix: the
connection names a live register again.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pos_ecom_sync.models.connection import Connection

from local_stack.provision import local_outputs
from tests.e2e.conftest import LiveStack

pytestmark = pytest.mark.e2e

GONE_REGISTER = "0a1b0000-dead-11ee-8c90-00000000dead"
COMMAND = Path(sys.executable).with_name("pos-ecom-sync")  # the venv's console script (pyproject [project.scripts])

Cli = Callable[..., tuple[int, Any]]


@pytest.fixture(scope="module")
def live(live_stack: LiveStack) -> Iterator[LiveStack]:
    live_stack.import_catalog()
    yield live_stack


@pytest.fixture
def cli(live: LiveStack, tmp_path: Path) -> Cli:
    """`pos-ecom-sync ...` against this stack, found as `make run`'s is: through .local-stack/outputs.json."""
    assert live.stack.resources is not None
    outputs = local_outputs(live.stack.resources, os.environ["AWS_ENDPOINT_URL"], live.stack.config.region)
    (tmp_path / ".local-stack").mkdir()
    (tmp_path / ".local-stack" / "outputs.json").write_text(json.dumps(outputs))

    def run(*argv: str) -> tuple[int, Any]:
        # A separate process: this one's stdout also carries the stack's narration and log lines.
        done = subprocess.run([str(COMMAND), *argv], cwd=tmp_path, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.returncode, json.loads(done.stdout) if "--json" in argv else done.stdout

    return run


def _dead_lettered(cli: Cli, order: dict[str, Any]) -> dict[str, Any] | None:
    # Every queue: in the in-process local stack all workers share one dead-letter queue URL (merged environments).
    _, listing = cli("dlq", "list", "--json")
    return next((r for r in listing["records"] if r["entity_id"] == str(order["id"])), None)


def _with_register(connection: Connection, register_id: str) -> Connection:
    return Connection.model_validate({**connection.model_dump(), "online_register_id": register_id})


def test_an_order_refused_by_the_pos_is_dead_lettered_listed_with_the_reason_and_redriven_once_fixed(
    live: LiveStack, cli: Cli
) -> None:
    store, connection = live.store(), live.connection()
    store.save_connection(_with_register(connection, GONE_REGISTER))  # the register was deleted in the POS
    try:
        variant = live.variants_in_stock()[0]
        order = live.ecom.place_order([{"variant_id": variant["id"], "quantity": 1}], email="dlq-redrive@example.com")

        record = live.wait_until(lambda: _dead_lettered(cli, order), what="the refused order in a dead-letter queue")
    finally:
        store.save_connection(connection)  # the operator fixes the cause: a live register again

    assert record["concern"] == "orders" and record["connection_id"] == live.connection_id
    assert record["entity"] == "order" and record["error_type"] == "UpstreamError"
    assert "answered 400" in record["error"] and GONE_REGISTER in record["error"]  # the POS's own reason
    assert not [s for s in live.pos.sales() if s.get("source_id") == f"ecom-{order['id']}"]
    _, table = cli("dlq", "list")
    assert record["message_id"] in table and "UpstreamError" in table  # what an operator reads on a terminal

    _, redriven = cli("dlq", "redrive", record["message_id"], "--json")

    assert [(r["message_id"], r["action"]) for r in redriven["records"]] == [(record["message_id"], "redriven")]
    imported = live.wait_until(
        lambda: (
            (r := live.order_store().get_order(live.connection_id, order["id"])) is not None
            and r.status == "imported"
            and r
        ),
        what=f"order {order['number']} imported after the redrive",
    )
    [sale] = [s for s in live.pos.sales() if s.get("source_id") == f"ecom-{order['id']}"]
    assert imported.sale_id == sale["id"] and sale["register_id"] == connection.online_register_id
    assert _dead_lettered(cli, order) is None  # gone from the dead-letter queue
