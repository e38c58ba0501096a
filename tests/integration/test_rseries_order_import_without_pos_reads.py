"""R-Series order import routes from the stock state and finds repeat buyers in the customer email index, with no
R-Series read, and falls back to R-Series whenever the table cannot be trusted. The customer feed is R-Series'
`Customer.json` by `timeStamp` with Contact loaded, walked by the change_poller function.

Through the real wiring (`runtime.order_importer`, the ChangePollerFunction) against the R-Series and eCom simulators;
R-Series calls are counted by route on the simulator."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from pos_ecom_sync import runtime
from pos_ecom_sync.models.stock import VariantStockState
from pos_ecom_sync.orders.customers import email_key
from pos_ecom_sync.profiles import profile_for
from pos_ecom_sync.stock.rules import apply_inventory_read

from local_stack.functions import LocalFunction
from local_stack.simulators.rseries import RSeriesSimulator
from tests.integration.conftest import Deployment
from tests.integration.test_rseries_orders import CONNECTION, SHOP_A, SHOP_B, Rig, rseries_shop
from tests.support import RunningClock, drain_queue

SEARCH = "GET /API/V3/Account/{accountID}/Customer.json"
ITEM = "GET /API/V3/Account/{accountID}/Item/{itemID}.json"
MIRA = "mira.okafor@example.com"


@pytest.fixture
def archive_param() -> str:
    """Which parameter the simulated R-Series honours for archived customers (contract `unverified`)."""
    return "archived"


@pytest.fixture
def clock() -> RunningClock:
    """Real time plus the seconds a test lets pass (R-Series stamps have one-second resolution)."""
    return RunningClock(time.time())


@pytest.fixture
def rig(deployment: Deployment, archive_param: str, clock: RunningClock) -> Iterator[Rig]:
    pos = RSeriesSimulator(
        seed=3, shops=2, registers=2, rate_limit=False, customer_archive_param=archive_param, clock=clock
    )
    with rseries_shop(deployment, pos) as (ecom, items, shipping):
        yield Rig(deployment, pos, ecom, items, shipping)


def import_counting(rig: Rig, order: dict[str, Any]) -> tuple[Any, Counter[str]]:
    before = Counter(rig.pos.calls_by_route)
    result = rig.import_order(order)
    return result, Counter(rig.pos.calls_by_route) - before


def poll(rig: Rig) -> None:
    """One run of the change_poller function for the connection; what it queued is left unapplied (dropped)."""
    LocalFunction(rig.deployment.resources.functions["ChangePollerFunction"]).invoke({"connection_id": CONNECTION})
    for concern in ("products", "stock", "orders", "statuses"):
        drain_queue(rig.deployment.sqs, rig.deployment.queue_url(concern))


def stock_state_as_read(rig: Rig, item_id: int) -> None:
    """The item's stock state as the stock worker leaves it after reading R-Series (every shop's qoh)."""
    connection = rig.connection
    rows = profile_for(connection).inventory(runtime.pos_client(connection)).location_levels(str(item_id))
    assert rows is not None
    state, _ = apply_inventory_read(VariantStockState(product_id=str(item_id)), rows, connection.connected_outlet_ids)
    runtime.stock_store().save_stock(CONNECTION, 0, state)


# -- routing -------------------------------------------------------------------------------------------------


def test_an_order_routes_on_the_stock_state_with_no_item_read_while_the_stock_queue_is_idle(rig: Rig) -> None:
    variant = rig.variant(0)
    item = rig.items[variant["sku"]]
    rig.pos.set_qoh(item, SHOP_A, 0)
    stock_state_as_read(rig, item)

    order = rig.place(variant, 2)
    result, calls = import_counting(rig, order)

    assert result.outcome == "imported" and result.levels == "stock state"
    assert calls[ITEM] == 0
    assert rig.sale_of(order)["shopID"] == str(SHOP_B)  # routed on the state: shop A has none


def test_holds_waiting_on_the_stock_queue_make_the_next_order_read_r_series(rig: Rig) -> None:
    first, second = rig.variant(0), rig.variant(1)
    for variant in (first, second):
        stock_state_as_read(rig, rig.items[variant["sku"]])
    unpaid = rig.import_order(rig.place(first, payment_status="not_paid"))
    assert unpaid.levels == "stock state"  # and its open sale's holds are now on the stock queue

    result, calls = import_counting(rig, rig.place(second))

    assert result.levels == "POS" and calls[ITEM] == 1


def test_an_item_the_stock_state_never_saw_is_read_from_r_series(rig: Rig) -> None:
    result, calls = import_counting(rig, rig.place(rig.variant(0)))
    assert result.levels == "POS" and calls[ITEM] == 1


# -- customers -----------------------------------------------------------------------------------------------


def test_a_repeat_buyer_costs_no_customer_search(rig: Rig) -> None:
    rig.pos.add_customer("Mira", "Okafor", email=MIRA)
    first, calls = import_counting(rig, rig.place(rig.variant(0)))
    assert first.customer == "matched" and calls[SEARCH] >= 1

    again, calls = import_counting(rig, rig.place(rig.variant(1), email=" Mira.Okafor@Example.com"))

    assert again.customer == "known (email index)" and calls[SEARCH] == 0
    assert again.customer_id == first.customer_id


@pytest.mark.parametrize("archive_param", ["archived", "archive"])
def test_a_customer_archived_or_merged_away_in_r_series_is_not_reused_after_the_next_poll(rig: Rig) -> None:
    """R-Series archives a deleted customer, and the secondary record of a merge; whichever archived-rows parameter
    it honours, the feed sees the archival (it sends both)."""
    mira = rig.pos.add_customer("Mira", "Okafor", email=MIRA)
    rig.import_order(rig.place(rig.variant(0)))
    poll(rig)  # the feed's first walk: nothing to drop
    assert rig.ledger.customer_entry(CONNECTION, email_key(MIRA)) is not None

    rig.pos.archive_customer(mira)
    poll(rig)
    assert rig.ledger.customer_entry(CONNECTION, email_key(MIRA)) is None

    result, calls = import_counting(rig, rig.place(rig.variant(1)))
    assert result.customer == "created" and result.customer_id != str(mira) and calls[SEARCH] >= 1


def test_an_email_changed_in_r_series_drops_the_index_entry(rig: Rig, clock: RunningClock) -> None:
    mira = rig.pos.add_customer("Mira", "Okafor", email=MIRA)
    rig.import_order(rig.place(rig.variant(0)))
    clock.sleep(60)
    rig.pos.add_customer("Grace", "Hopper", email="grace@example.com")
    poll(rig)  # the feed's cursor is past Mira's stamp: only a new stamp brings her back

    clock.sleep(60)
    rig.pos.set_customer_emails(mira, "mira@new-address.example")
    poll(rig)

    assert rig.ledger.customer_entry(CONNECTION, email_key(MIRA)) is None
    result = rig.import_order(rig.place(rig.variant(1)))
    assert result.customer == "created" and result.customer_id != str(mira)


def test_an_email_edit_the_customer_feed_never_shows_is_reused_only_until_the_reuse_window_ends(
    rig: Rig, clock: RunningClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Unverified (contract): whether a Contact-only edit moves the Customer's timeStamp. When it does not, the feed
    cannot see it: the entry is trusted for at most the reuse window, and the order after it searches again."""
    import pos_ecom_sync.orders.customers as customers

    rig.pos.contact_edit_moves_customer_stamp = False
    mira = rig.pos.add_customer("Mira", "Okafor", email=MIRA)
    rig.import_order(rig.place(rig.variant(0)))
    clock.sleep(60)
    rig.pos.add_customer("Grace", "Hopper", email="grace@example.com")
    poll(rig)  # the feed's cursor is now past Mira's stamp and the few seconds it re-reads before its newest
    rig.pos.set_customer_emails(mira, "mira@new-address.example")  # her stamp does not move
    poll(rig)
    assert rig.ledger.customer_entry(CONNECTION, email_key(MIRA)) is not None  # the feed did not see it

    monkeypatch.setattr(customers, "INDEX_REUSE_SECONDS", -1)  # the window has passed
    result, calls = import_counting(rig, rig.place(rig.variant(1)))
    assert calls[SEARCH] >= 1 and result.customer == "created" and result.customer_id != str(mira)
