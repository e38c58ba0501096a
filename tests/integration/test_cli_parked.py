"""`pos-ecom-sync parked list|show`: the operator sees the feed rows the poller or reconciliation skipped."""

from __future__ import annotations

from pos_ecom_sync.models.feeds import SkippedRow
from pos_ecom_sync.state.parked_store import ParkedStore

from tests.integration import test_cli
from tests.integration.test_cli import LocalStack

# The CLI's stack on a moto server, as tests/integration/test_cli.py runs it.
moto_endpoint, stack = test_cli.moto_endpoint, test_cli.stack


def _parked(stack: LocalStack, clock: float = 1_800_000_000) -> ParkedStore:
    return ParkedStore(stack.table_name, resource=stack.session.resource("dynamodb"), clock=lambda: clock)


def test_list_shows_each_parked_row_with_its_reason_and_show_prints_one(stack: LocalStack) -> None:
    assert stack.create("dockside").code == 0
    rows = [
        SkippedRow.of("pos:products", "bad-\udcff", "id holds character U+DCFF, which no id may hold", 7),
        SkippedRow.of("ecom:orders", None, "id is not a positive integer: None"),
    ]
    _parked(stack).park("dockside", rows)
    _parked(stack, clock=1_800_000_060).park("dockside", rows[:1])  # seen again: the same record, updated

    listed = stack.cli("parked", "list", "dockside")

    assert listed.code == 0
    by_feed = {row["feed"]: row for row in listed.json}
    assert set(by_feed) == {"pos:products", "ecom:orders"}
    product = by_feed["pos:products"]
    assert (product["row_id"], product["version"], product["seen"]) == ("bad-\\udcff", "7", 2)
    assert product["first_seen"] == "2027-01-15T08:00:00+00:00" and product["last_seen"] == "2027-01-15T08:01:00+00:00"
    assert product["reason"] == "id holds character U+DCFF, which no id may hold"
    assert stack.cli("parked", "list", "dockside", "--feed", "ecom:orders").json == [by_feed["ecom:orders"]]

    shown = stack.cli("parked", "show", "dockside", product["key"])
    assert shown.code == 0 and shown.json == product


def test_an_unknown_connection_or_key_is_refused(stack: LocalStack) -> None:
    assert stack.create("dockside").code == 0
    assert stack.cli("parked", "list", "nowhere").code == 2
    missing = stack.cli("parked", "show", "dockside", "pos:products#nothing")
    assert missing.code == 2 and "no parked row" in missing.err
    assert stack.cli("parked", "list", "dockside").json == []
