"""The operator's commands on the local stack, run as the installed `pos-ecom-sync` command reads `make run`'s
outputs: `sync status` reads how the sync stands, `poll now` and `reconcile now` invoke the functions through the
Lambda Invoke API (the local stack serves it, as AWS does with --stack), and `reconcile now --dry-run` prints the
drift a run would repair without queueing or saving anything."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from pos_ecom_sync.connectors.ecom import EcomClient
from pos_ecom_sync.models.links import VariantLink
from pos_ecom_sync.ratelimit import InMemoryRateBudget
from pos_ecom_sync.state.reconcile_store import ReconcileStore

from local_stack.demo import DEMO_SECRETS
from local_stack.simulators.common import Faults
from tests.e2e.conftest import Cli, LiveStack

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def live(live_stack: LiveStack) -> Iterator[LiveStack]:
    live_stack.import_catalog()
    yield live_stack


def _linked_variant(live: LiveStack, *, last: bool = False) -> tuple[dict[str, Any], VariantLink]:
    """A POS variant the stack synced, with its link to eCom."""
    linked = [
        (row, link)
        for row in sorted(live.pos.products(), key=lambda r: r["id"])
        if row.get("variant_parent_id")
        and (link := live.store().variant_link(live.connection_id, pos_product_id=row["id"])) is not None
    ]
    return linked[-1] if last else linked[0]


def _checkpoint_revision(live: LiveStack) -> int:
    store = ReconcileStore(live.stack.outputs()["TableName"], resource=live.session.resource("dynamodb"))
    return store.get_checkpoint(live.connection_id).revision


def test_sync_status_shows_cursors_reconciliation_rate_budgets_and_every_queues_backlog(
    live: LiveStack, cli: Cli
) -> None:
    live.poll()
    _, status = cli("sync", "status", "--json")

    assert set(status["queues"]) == {"products", "stock", "orders", "statuses"}
    assert all({"visible", "in_flight", "delayed", "dead_letters"} <= set(q) for q in status["queues"].values())
    [connection] = status["connections"]
    assert connection["connection_id"] == live.connection_id and connection["status"] == "active"
    feeds = {c["feed"]: c for c in connection["cursors"]}
    assert {"pos:products", "pos:inventory", "ecom:orders"} <= set(feeds)
    assert feeds["pos:products"]["cursor"] and feeds["pos:products"]["moved_s_ago"] is not None
    budgets = connection["rate_budgets"]
    assert budgets["xseries"]["windows"]["5min"]["used"] > 0  # the import and the poll spent POS calls
    assert budgets["ecom"]["windows"]["day"]["limit"] == 12_000
    assert connection["reconciliation"]["state"] in ("never run", "running", "done")
    census = connection["customer_census"]  # the poll walked the POS customer list to its end
    assert census["state"] == "caught up" and census["caught_up_s_ago"] <= census["fresh_for_s"]
    assert census["new_emails_searched"] is False

    _, text = cli("sync", "status")
    assert f"connection {live.connection_id} (active)" in text and "rate xseries: 5min" in text
    assert "customer census: caught up" in text and "new emails skip the POS search" in text
    assert "QUEUE" in text and "pos:products" in text


def test_poll_now_invokes_the_poller_and_the_change_it_finds_reaches_ecom(live: LiveStack, cli: Cli) -> None:
    # A POS stock change whose webhook is lost: only a poll finds it.
    row, variant_link = _linked_variant(live)
    outlet = live.connection().connected_outlet_ids[0]
    live.pos.set_faults(Faults(webhook_loss_rate=1.0))
    try:
        live.pos.set_inventory(row["id"], outlet, live.pos.level(row["id"], outlet) + 7)
    finally:
        live.pos.set_faults(Faults())
    expected = sum(max(0, live.pos.level(row["id"], o)) for o in live.connection().connected_outlet_ids)

    _, run = cli("poll", "now", "--connection", live.connection_id, "--json")

    assert run["correlation_id"].startswith("poll-") and run["failures"] == {}
    assert run["connections"][live.connection_id]["pos:inventory"]["queued"] >= 1
    live.wait_until(
        lambda: (
            next(v for v in live.ecom.variants() if v["id"] == variant_link.ecom_variant_id)["stockLevel"] == expected
        ),
        what="the polled stock change in eCom",
    )


def test_reconcile_dry_run_prints_the_drift_without_repairing_it_and_reconcile_now_repairs_it(
    live: LiveStack, cli: Cli
) -> None:
    _, link = _linked_variant(live, last=True)  # another family than the poll test's
    product = next(p for p in live.ecom.products() if p["id"] == link.ecom_product_id)
    merchant = EcomClient(
        live.ecom.url, DEMO_SECRETS["ecom_api_key"], DEMO_SECRETS["ecom_api_secret"], InMemoryRateBudget()
    )
    merchant.update_product(product["id"], {"title": "Renamed by hand", "fulltitle": "Renamed by hand"})
    revision = _checkpoint_revision(live)

    _, preview = cli("reconcile", "now", "--connection", live.connection_id, "--dry-run", "--json")

    assert preview["dry_run"] is True and preview["found"]["catalog_content"] >= 1
    assert any(f["kind"] == "catalog_content" for f in preview["findings"])
    assert preview["pos_calls"] >= 1 and preview["ecom_calls"] >= 1
    time.sleep(2)  # were anything queued, the products worker would be at it by now
    assert next(p for p in live.ecom.products() if p["id"] == product["id"])["title"] == "Renamed by hand"
    assert _checkpoint_revision(live) == revision  # the real run's checkpoint did not move
    _, text = cli("reconcile", "now", "--connection", live.connection_id, "--dry-run")
    assert "nothing was queued or saved" in text and "catalog_content" in text

    _, run = cli("reconcile", "now", "--connection", live.connection_id, "--json")

    report = run["connections"][live.connection_id]
    assert run["correlation_id"].startswith("reconcile-") and report["completed"] is True
    assert report["run_drift"]["catalog_content"] >= 1
    live.wait_until(
        lambda: next(p for p in live.ecom.products() if p["id"] == product["id"])["title"] == product["title"],
        what="the POS title back in eCom after `reconcile now`",
    )


def test_orders_show_of_an_order_neither_the_ledger_nor_ecom_knows_says_so_with_exit_status_2(
    live: LiveStack, cli: Cli
) -> None:
    code, output = cli("orders", "show", "999999999", ok=False)
    assert code == 2 and "999999999" in output  # neither in the ledger nor in eCom
