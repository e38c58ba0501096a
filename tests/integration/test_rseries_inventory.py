"""R-Series inventory as the stock worker reads it (`profiles.rseries.stock.RSeriesInventory`), against the R-Series
simulator on a controlled clock: one level per shop (the all-shops row never counts, a negative is kept for the
rules to floor), an item the POS lacks has no levels, a register's location is its shop, and a feed message is never
trusted alone. Stamps are whole seconds: a second qoh edit within the same second must still reach eCom, and an
older read of that second must never replace a newer one."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from pos_ecom_sync.errors import InvalidInput
from pos_ecom_sync.models.connection import Connection
from pos_ecom_sync.models.messages import ChangeMessage
from pos_ecom_sync.models.stock import VariantStockState
from pos_ecom_sync.profiles.rseries.client import RSeriesClient
from pos_ecom_sync.profiles.rseries.feeds import FEEDS, row_messages
from pos_ecom_sync.profiles.rseries.stock import RSeriesInventory, read_version
from pos_ecom_sync.ratelimit import InMemoryRateBudget
from pos_ecom_sync.stock.rules import apply_inventory_read
from pos_ecom_sync.stock.sync import StockSync

from local_stack.simulators.rseries import RSeriesSimulator
from tests.integration.test_rseries_client import START
from tests.support import ManualClock
from tests.unit.test_stock_worker import FakeEcom, Memory, Queue

ITEM_SHOPS = next(spec for spec in FEEDS if spec.entity == "ItemShop")


@pytest.fixture
def sim() -> Iterator[RSeriesSimulator]:
    clock = ManualClock(START)
    simulator = RSeriesSimulator(clock=clock, seed=3, rate_limit=False, shops=3)
    simulator.start()
    try:
        yield simulator
    finally:
        simulator.stop()


def _clock(sim: RSeriesSimulator) -> ManualClock:
    clock = sim.clock
    assert isinstance(clock, ManualClock)
    return clock


def _inventory(sim: RSeriesSimulator) -> RSeriesInventory:
    client = RSeriesClient(sim.url, InMemoryRateBudget(), token=sim.issue_tokens()["access_token"])
    return RSeriesInventory(client, clock=sim.clock)


def _message(sim: RSeriesSimulator, item_id: int, shop_id: int) -> ChangeMessage:
    """The ItemShop feed's message for a shop row, as the poller queues it."""
    row = next(r for r in sim.item_shops(item_id) if r["shopID"] == str(shop_id))
    [message] = row_messages("shop", ITEM_SHOPS, row, datetime.now(UTC))
    return message


def _worker(sim: RSeriesSimulator, memory: Memory, ecom: FakeEcom) -> StockSync:
    connection = Connection(
        connection_id="shop",
        pos_profile="r-series",
        pos_base_url=sim.url,
        ecom_base_url="http://ecom",
        connected_outlet_ids=["1", "2"],
        primary_outlet_id="1",
    )
    return StockSync(connection, _inventory(sim), ecom, memory, memory, Queue(), clock=sim.clock)


def test_an_items_levels_are_its_shop_rows_without_the_all_shops_row_and_a_negative_is_kept(
    sim: RSeriesSimulator,
) -> None:
    item = sim.add_item("Canvas tote", 20.0, qoh={1: 4, 2: -3, 3: 7})

    levels = _inventory(sim).location_levels(str(item))

    assert levels is not None
    assert sorted((c.product_id, c.outlet_id, c.level) for c in levels) == [
        (str(item), "1", 4),
        (str(item), "2", -3),
        (str(item), "3", 7),
    ]
    assert {c.version // 100_000_000 for c in levels} == {int(_clock(sim)())}  # ordered by the rows' stamp first


def test_an_item_the_pos_does_not_have_has_no_levels_and_a_foreign_id_is_refused(sim: RSeriesSimulator) -> None:
    inventory = _inventory(sim)
    assert inventory.location_levels("9999") is None
    with pytest.raises(InvalidInput):
        inventory.location_levels("m12")  # a matrix family key is no item


def test_a_registers_location_is_its_shop_and_an_unknown_register_has_none(sim: RSeriesSimulator) -> None:
    inventory = _inventory(sim)
    assert inventory.register_location("1") == "1"
    assert inventory.register_location("77") is None


def test_a_feed_message_is_never_trusted_alone_so_the_worker_reads_every_shop_of_the_item(
    sim: RSeriesSimulator,
) -> None:
    item = sim.add_item("Linen shirt", 35.0, qoh={1: 2, 2: 3, 3: 50})
    memory, ecom = Memory(links={str(item): 41}), FakeEcom()
    _clock(sim).sleep(2)
    sim.set_qoh(item, 1, 6)
    sim.set_qoh(item, 2, -1)  # the page's newest row of the item: its message names shop 2 only

    message = _message(sim, item, 2)
    assert _inventory(sim).change_in(message) is None
    result = _worker(sim, memory, ecom).handle(message)

    assert (result.outcome, result.pos_reads, result.level) == ("written", 1, 6)  # shop 1's 6, shop 2's -1 as 0
    assert ecom.levels == {41: 6}  # shop 3 is not connected


def test_a_second_qoh_edit_within_the_same_second_still_reaches_ecom(sim: RSeriesSimulator) -> None:
    clock = _clock(sim)
    item = sim.add_item("Wool scarf", 15.0, qoh={1: 1, 2: 1})
    memory, ecom = Memory(links={str(item): 42}), FakeEcom()
    clock.sleep(5.1)
    sim.set_qoh(item, 1, 5)
    first = _message(sim, item, 1)
    clock.sleep(0.2)
    _worker(sim, memory, ecom).handle(first)
    assert ecom.levels == {42: 6}

    clock.sleep(0.3)  # same second: the row keeps its stamp, its content (and feed digest) changes
    sim.set_qoh(item, 1, 4)
    second = _message(sim, item, 1)
    assert (second.updated_at, second.change_key != first.change_key) == (first.updated_at, True)
    clock.sleep(0.2)
    result = _worker(sim, memory, ecom).handle(second)

    assert (result.outcome, result.level) == ("written", 5)
    assert ecom.levels == {42: 5}


def test_an_older_read_of_the_same_stamp_never_replaces_a_newer_one(sim: RSeriesSimulator) -> None:
    clock = _clock(sim)
    item = sim.add_item("Rain hat", 25.0, qoh={1: 3, 2: 0})
    clock.sleep(3.1)
    sim.set_qoh(item, 1, 5)
    inventory = _inventory(sim)
    clock.sleep(0.1)
    early = inventory.location_levels(str(item))
    clock.sleep(0.3)
    sim.set_qoh(item, 1, 4)
    clock.sleep(0.1)
    late = inventory.location_levels(str(item))
    assert early is not None and late is not None

    state = VariantStockState(product_id=str(item))
    state, _ = apply_inventory_read(state, late, ["1", "2"])
    state, applied = apply_inventory_read(state, early, ["1", "2"])  # the slower worker saves last

    assert applied == 0
    assert state.levels["1"].level == 4


def test_read_versions_order_by_stamp_then_by_read_and_tie_only_long_after_the_stamp() -> None:
    stamp = 1_796_000_000
    assert read_version(stamp, stamp + 0.2) < read_version(stamp, stamp + 0.7) < read_version(stamp + 1, stamp)
    assert read_version(stamp, stamp - 30) < read_version(stamp, stamp)  # our clock a little behind the vendor's
    assert read_version(stamp, stamp + 200_000) == read_version(stamp, stamp + 300_000)
    assert read_version(stamp, stamp + 300_000) < read_version(stamp + 1, stamp + 1)
