"""A record that cannot succeed lands in the dead-letter queue; `dlq list` shows it with its reason; once the cause
is fixed, `dlq redrive` completes it, all on the local stack (the CLI run as an operator runs it: the installed
`pos-ecom-sync` command in a directory holding the stack's .local-stack/outputs.json).

The failure: the connection's online register no longer exists in the POS (deleted there after it was configured),
so X-Series refuses the sale create with a 400 and the order worker parks the record at once. The fix: the
connection names a live register again.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import pytest
from pos_ecom_sync.models.connection import Connection

from tests.e2e.conftest import Cli, LiveStack, capture_function_logs

pytestmark = pytest.mark.e2e

GONE_REGISTER = "0a1b0000-dead-11ee-8c90-00000000dead"


@pytest.fixture(scope="module")
def live(live_stack: LiveStack) -> Iterator[LiveStack]:
    live_stack.import_catalog()
    yield live_stack


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
    logs = ExitStack()
    capture = logs.enter_context(capture_function_logs(logging.DEBUG))
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
    logs.close()

    # `orders show` tells the whole story: refused, the POS's reason, redriven, imported as that sale, and the one
    # correlation id (the eCom webhook's: a redrive sends the same body) that every log line of the order carries.
    _, story = cli("orders", "show", str(order["id"]), "--json")
    assert story["ledger"]["status"] == "imported" and story["ledger"]["attempts"] == 2
    assert GONE_REGISTER in story["last_error"]["error"] and "400" in story["last_error"]["error"]
    assert story["pos_sale"]["id"] == sale["id"] and story["pos_sale"]["status"] == sale["status"]
    assert story["ecom"]["number"] == order["number"] and story["next_step"].startswith("nothing: imported")
    [correlation_id] = story["ledger"]["correlation_ids"]  # both import attempts
    assert story["correlation_ids"][0] == correlation_id  # then any status sync's, each once
    order_lines = [
        entry
        for function, entry in capture.entries
        if function == "OrderImportFunction" and str(entry.get("entity_id")) == str(order["id"])
    ]
    assert len(order_lines) >= 2  # the refusal (dead-lettered) and the import after the redrive
    assert {entry.get("correlation_id") for entry in order_lines} == {correlation_id}
    assert correlation_id in capture.correlation_ids("WebhookIngestFunction")  # born at the eCom webhook
    _, text = cli("orders", "show", str(order["id"]))
    assert correlation_id in text and sale["id"] in text and "imported after 2 attempt(s)" in text
