"""Stock rules: each rule on its own, then properties against an in-memory store and eCom driven like the worker."""

from __future__ import annotations

from collections.abc import Generator, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pos_ecom_sync.errors import InvalidInput
from pos_ecom_sync.models.connection import Connection
from pos_ecom_sync.models.messages import ChangeMessage, Entity, Source
from pos_ecom_sync.models.stock import (
    InventoryChange,
    OutletLevel,
    RecomputeJob,
    VariantStockState,
    WriteClaim,
)
from pos_ecom_sync.profiles.xseries.orders import XSeriesOrders
from pos_ecom_sync.profiles.xseries.stock import (
    inventory_change_from_message,
    inventory_change_of_row,
    register_outlet_of,
)
from pos_ecom_sync.reference import ReferenceCache
from pos_ecom_sync.stock.outlets import (
    Chunk,
    advance,
    is_superseded,
    next_chunk,
    outlets_for_register,
    plan_outlet_change,
    plan_recompute,
    recompute_chunks,
    refuse_excluding_register_outlet,
    retire_shipping_methods,
    start_recompute,
    totals_changed,
    with_register_outlet,
)
from pos_ecom_sync.stock.rules import (
    CLAIM_TTL_SECONDS,
    NoWrite,
    WriteStock,
    abandon_write,
    apply_changes,
    apply_inventory_change,
    apply_inventory_read,
    begin_write,
    coalesce,
    desired_total,
    ecom_level_from_message,
    finish_write,
    link_ecom_variant,
    moved_below_zero,
    stock_write_decision,
)

OUTLETS = ("o1", "o2", "o3", "o4")
NOW = datetime(2024, 5, 2, 9, 0, tzinfo=UTC)


def state_with(levels: dict[str, tuple[int, int]], **fields: Any) -> VariantStockState:
    """A linked variant holding `outlet -> (level, version)`."""
    held = {outlet: OutletLevel(level=level, version=version) for outlet, (level, version) in levels.items()}
    return VariantStockState(**{"product_id": "p-1", "ecom_variant_id": 880001, "levels": held, **fields})


def change(outlet: str, level: int, version: int, product_id: str = "p-1") -> InventoryChange:
    return InventoryChange(product_id=product_id, outlet_id=outlet, level=level, version=version)


# --- an in-memory store and eCom, and the worker's steps as the real worker will run them ---------------------------


@dataclass
class Store:
    """Saves a state only if the stored revision is still the one loaded (the DynamoDB condition)."""

    state: VariantStockState
    # Seconds; every worker step takes one.
    clock: float = 0.0

    def save(self, loaded_revision: int, new: VariantStockState) -> bool:
        if self.state.revision != loaded_revision:
            return False
        self.state = new
        return True


@dataclass
class FakeEcom:
    levels: dict[int, int] = field(default_factory=dict)
    writes: list[tuple[int, int]] = field(default_factory=list)

    def put(self, write: WriteStock) -> None:
        self.levels[write.ecom_variant_id] = write.level
        self.writes.append((write.ecom_variant_id, write.level))


def write_through(store: Store, ecom: FakeEcom, write: WriteStock) -> None:
    """Claim, PUT, finish, with nobody else running."""
    claimed = begin_write(store.state, write, store.clock)
    assert store.save(store.state.revision, claimed)
    ecom.put(write)
    finished, confirmed = finish_write(store.state, write, claimed.revision)
    assert confirmed
    assert store.save(store.state.revision, finished)


def stock_worker(
    store: Store,
    ecom: FakeEcom,
    batch: list[InventoryChange],
    connected: tuple[str, ...],
    crash_at: str | None = None,
) -> Generator[None, None, None]:
    """One message: apply the batch, decide, write through the claim protocol. Yields around every I/O step so a
    test can interleave workers; `crash_at` ("claimed" | "put") stops it there as a Lambda that died would.
    """

    def step() -> Generator[None, None, None]:
        store.clock += 1
        yield

    while True:
        loaded = store.state
        yield from step()
        state, _ = apply_changes(loaded, batch)
        decision = stock_write_decision(state, connected)
        if isinstance(decision, NoWrite):
            if state.revision == loaded.revision or store.save(loaded.revision, state):
                return
            continue
        claimed = begin_write(state, decision, store.clock)
        if not store.save(loaded.revision, claimed):
            continue
        if crash_at == "claimed":
            return
        yield from step()
        ecom.put(decision)
        if crash_at == "put":
            return
        yield from step()
        while True:
            current = store.state
            yield from step()
            finished, confirmed = finish_write(current, decision, claimed.revision)
            if store.save(current.revision, finished):
                break
        if confirmed:
            return


def run_alone(worker: Generator[None, None, None]) -> None:
    for _ in worker:
        pass


# --- applying POS levels -----------------------------------------------------------------------------------------


def test_a_newer_version_applies_an_equal_one_is_a_duplicate_and_an_older_one_is_dropped() -> None:
    state = state_with({"o1": (5, 100)})

    newer, applied = apply_inventory_change(state, "o1", 3, 101)
    assert applied and newer.levels["o1"] == OutletLevel(level=3, version=101)
    assert newer.revision == state.revision + 1

    for version, level in ((101, 3), (101, 9), (100, 7), (42, 0)):
        same, applied = apply_inventory_change(newer, "o1", level, version)
        assert not applied and same is newer


def test_levels_of_outlets_not_connected_are_kept_for_a_later_connect() -> None:
    state, applied = apply_changes(state_with({}), [change("o1", 4, 10), change("o3", 6, 11)])
    assert applied == 2
    assert desired_total(state, ["o1"]) == 4
    assert desired_total(state, ["o1", "o3"]) == 10


def test_total_clamps_negative_outlets_to_zero() -> None:
    state = state_with({"o1": (-10, 1), "o2": (7, 2), "o3": (0, 3)})
    assert desired_total(state, ["o1", "o2", "o3"]) == 7
    assert desired_total(state, ["o1"]) == 0


def test_an_outlet_never_heard_of_is_unknown_not_zero() -> None:
    state = state_with({"o1": (5, 1)})
    assert desired_total(state, ["o1", "o2"]) is None
    # An outlet that is not connected does not matter.
    assert desired_total(state, ["o1"]) == 5
    assert stock_write_decision(state, ["o1", "o2"]) == NoWrite("p-1", "needs_pos_read", ("o2",))


def test_a_successful_read_without_a_row_for_an_outlet_says_zero_there() -> None:
    state = state_with({})
    read, applied = apply_inventory_read(state, [change("o1", 4, 500)], ["o1", "o2"], as_of_version=510)
    assert applied == 2
    assert read.levels["o2"] == OutletLevel(level=0, version=510)
    assert desired_total(read, ["o1", "o2"]) == 4
    # A change older than the read is dropped; a newer one applies.
    assert not apply_inventory_change(read, "o2", 8, 505)[1]
    assert apply_inventory_change(read, "o2", 8, 511)[1]


def test_a_read_keeps_a_level_newer_than_itself() -> None:
    state = state_with({"o2": (9, 700)})
    read, _ = apply_inventory_read(state, [change("o1", 4, 500)], ["o1", "o2"])
    # No row for o2 in a read as of version 500 says nothing about the level at version 700.
    assert read.levels["o2"] == OutletLevel(level=9, version=700)


def test_a_batch_for_another_variant_is_refused() -> None:
    with pytest.raises(InvalidInput):
        apply_changes(state_with({}), [change("o1", 1, 1, product_id="p-2")])


def test_coalesce_keeps_the_newest_version_per_variant_and_outlet() -> None:
    batch = [change("o1", 1, 5), change("o1", 2, 9), change("o2", 7, 3), change("o1", 3, 7), change("o2", 8, 3)]
    batch.append(change("o1", 6, 2, product_id="p-0"))
    assert coalesce(batch) == [change("o1", 6, 2, "p-0"), change("o1", 2, 9), change("o2", 7, 3)]


# --- reading POS rows and messages -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ({"inventory_level": -3, "version": 8812399120}, (-3, 8812399120)),
        ({"current_inventory_level": "4", "version": "12"}, (4, 12)),
        ({"count": "5.75", "version": 3}, (5, 3)),
        ({"inventory_level": 7, "deleted_at": "2024-05-02T09:00:00+00:00", "version": 13}, (0, 13)),
    ],
)
def test_pos_rows_of_every_shape_become_versioned_levels(row: dict[str, object], expected: tuple[int, int]) -> None:
    parsed = inventory_change_of_row({"product_id": "p-1", "outlet_id": "o1", **row})
    assert parsed is not None and (parsed.level, parsed.version) == expected


@pytest.mark.parametrize(
    "row",
    [
        {"count": 5},  # a 1.0 webhook: no version, may be a 48-hour-old retry
        {"count": 5, "version": None},
        {"count": 5, "version": True},
        {"version": 12},
        {"inventory_level": "n/a", "version": 12},
        {"inventory_level": "inf", "version": 12},
    ],
)
def test_rows_that_cannot_be_trusted_ask_for_a_pos_read_rather_than_a_zero(row: dict[str, object]) -> None:
    assert inventory_change_of_row({"product_id": "p-1", "outlet_id": "o1", **row}) is None


class _Inventory:
    """The one X-Series call routing makes here: a product's inventory rows."""

    calls = 0

    def __init__(self, rows: list[dict[str, object]]) -> None:
        self.rows = rows

    def list_product_inventory(self, product_id: str) -> list[dict[str, object]]:
        return [{"product_id": product_id, **row} for row in self.rows]


def test_order_routing_reads_a_fresh_inventory_row_as_the_stock_worker_does() -> None:
    rows: list[dict[str, object]] = [
        {"outlet_id": "o1", "inventory_level": -3, "version": 1},
        {"outlet_id": "o2", "current_inventory_level": "4", "version": 2},
        {"outlet_id": "o3", "count": "5.75", "version": 3},  # a weighed level: its whole units, as stock counts it
        {"outlet_id": "o4", "inventory_level": "n/a", "version": 4},  # unreadable: nothing to take from it
    ]
    connection = Connection(connection_id="c1", pos_base_url="https://pos.example", ecom_base_url="https://e.example")
    orders = XSeriesOrders(_Inventory(rows), connection, ReferenceCache())
    levels = orders.routing_levels("p-1", confirm_exists=False)
    stock = {row["outlet_id"]: inventory_change_of_row({"product_id": "p-1", **row}) for row in rows}
    assert levels == {outlet: change.level if change else 0 for outlet, change in stock.items()}
    assert levels == {"o1": -3, "o2": 4, "o3": 5, "o4": 0}


def test_rows_without_ids_are_invalid() -> None:
    with pytest.raises(InvalidInput):
        inventory_change_of_row({"outlet_id": "o1", "count": 1, "version": 1})


def message(source: Source, entity: Entity, payload: dict[str, Any], version: int | None = None) -> ChangeMessage:
    return ChangeMessage(
        connection_id="shop-1",
        source=source,
        entity=entity,
        entity_id=str(payload.get("product_id") or payload.get("id")),
        version=version,
        via="webhook",
        received_at=NOW,
        payload=payload,
        concern="stock",
    )


def test_inventory_messages_carry_a_level_only_when_versioned() -> None:
    polled = message("pos", "inventory", {"product_id": "p-1", "outlet_id": "o1", "inventory_level": 7}, 99)
    assert inventory_change_from_message(polled) == change("o1", 7, 99)
    hooked = message("pos", "inventory", {"product_id": "p-1", "outlet_id": "o1", "count": 5})
    assert inventory_change_from_message(hooked) is None
    with pytest.raises(InvalidInput):
        inventory_change_from_message(message("pos", "product", {"id": "p-1"}))


def test_ecom_variant_messages_show_the_level_ecom_holds() -> None:
    assert ecom_level_from_message(message("ecom", "variant", {"id": 880001, "stockLevel": 3})) == 3
    assert ecom_level_from_message(message("ecom", "variant", {"id": 880001})) is None
    with pytest.raises(InvalidInput):
        ecom_level_from_message(message("ecom", "order", {"id": 1}))


# --- the write decision --------------------------------------------------------------------------------------------


def test_a_changed_total_is_written_and_an_unchanged_one_costs_nothing() -> None:
    state = state_with({"o1": (5, 1), "o2": (2, 2)}, last_written=6)
    write = stock_write_decision(state, ["o1", "o2"])
    assert write == WriteStock("p-1", 880001, 7, "total_changed")
    assert isinstance(write, WriteStock) and write.ecom_body() == {"stockLevel": 7}
    assert stock_write_decision(state, ["o1", "o3"]) == NoWrite("p-1", "needs_pos_read", ("o3",))
    written = state.model_copy(update={"last_written": 7})
    assert stock_write_decision(written, ["o2", "o1"]) == NoWrite("p-1", "unchanged")


def test_an_ecom_edit_is_reverted_to_the_pos_total_and_our_echo_is_not() -> None:
    state = state_with({"o1": (5, 1)}, last_written=5)
    assert stock_write_decision(state, ["o1"], ecom_level_seen=40) == WriteStock("p-1", 880001, 5, "ecom_differs")
    assert stock_write_decision(state, ["o1"], ecom_level_seen=5) == NoWrite("p-1", "ecom_matches")


def test_no_write_without_an_ecom_variant_or_without_a_connected_outlet() -> None:
    assert stock_write_decision(state_with({"o1": (5, 1)}, ecom_variant_id=None), ["o1"]).reason == "not_linked"
    assert stock_write_decision(state_with({"o1": (5, 1)}), []).reason == "no_outlet_connected"


def test_a_new_ecom_variant_gets_the_total_written_once() -> None:
    state = state_with({"o1": (5, 1)}, last_written=5)
    relinked, changed = link_ecom_variant(state, 990002)
    assert changed and stock_write_decision(relinked, ["o1"]) == WriteStock("p-1", 990002, 5, "total_changed")
    assert link_ecom_variant(relinked, 990002) == (relinked, False)


def test_a_variant_reaching_zero_is_written_as_zero_to_show_out_of_stock() -> None:
    state = state_with({"o1": (1, 1)}, last_written=1)
    sold, _ = apply_inventory_change(state, "o1", 0, 2)
    assert stock_write_decision(sold, ["o1"]) == WriteStock("p-1", 880001, 0, "total_changed")


def test_a_connected_level_moving_below_zero_is_written_though_the_total_stands() -> None:
    before = state_with({"o1": (-1, 1), "o2": (4, 1)}, last_written=4)
    after, _ = apply_inventory_change(before, "o1", -2, 2)
    assert moved_below_zero(before, after, ["o1", "o2"])
    assert stock_write_decision(after, ["o1", "o2"], sold_below_zero=True) == WriteStock(
        "p-1", 880001, 4, "sold_below_zero"
    )
    assert stock_write_decision(after, ["o1", "o2"]) == NoWrite("p-1", "unchanged")
    # Not a hidden sale: an outlet that is not connected, a total that moved, a level seen for the first time.
    assert not moved_below_zero(before, after, ["o2"])
    moved, _ = apply_inventory_change(before, "o2", 3, 2)
    assert not moved_below_zero(before, moved, ["o1", "o2"])
    first, _ = apply_inventory_change(before, "o3", -3, 2)
    assert not moved_below_zero(before, first, ["o1", "o2", "o3"])


# --- the claim protocol ------------------------------------------------------------------------------------------


def test_a_confirmed_write_is_remembered() -> None:
    state = state_with({"o1": (5, 1)})
    write = WriteStock("p-1", 880001, 5, "total_changed")
    claimed = begin_write(state, write, now=100)
    assert claimed.claims == (WriteClaim(revision=claimed.revision, level=5, claimed_at=100),)
    done, confirmed = finish_write(claimed, write, claimed.revision)
    assert confirmed and done.last_written == 5 and done.claims == ()
    assert stock_write_decision(done, ["o1"]).reason == "unchanged"


def test_a_write_overtaken_by_another_save_is_not_trusted_and_is_decided_again() -> None:
    state = state_with({"o1": (5, 1)}, last_written=4)
    write = WriteStock("p-1", 880001, 5, "total_changed")
    claimed = begin_write(state, write, now=100)
    moved, _ = apply_inventory_change(claimed, "o1", 3, 2)  # another worker saved while we called eCom
    done, confirmed = finish_write(moved, write, claimed.revision)
    assert not confirmed and done.last_written is None and done.claims == ()
    assert stock_write_decision(done, ["o1"]) == WriteStock("p-1", 880001, 3, "total_changed")


def test_an_earlier_claim_still_travelling_keeps_every_decision_writing() -> None:
    state = state_with({"o1": (5, 1)}, last_written=5)
    slow = WriteStock("p-1", 880001, 5, "total_changed")
    slow_claim = begin_write(state, slow, now=100)
    # A newer total is claimed, written and confirmed while the slow PUT is still on its way.
    newer_state, _ = apply_inventory_change(slow_claim, "o1", 2, 2)
    newer = stock_write_decision(newer_state, ["o1"])
    assert newer == WriteStock("p-1", 880001, 2, "unconfirmed_write")
    newer_claim = begin_write(newer_state, newer, now=101)
    done, confirmed = finish_write(newer_claim, newer, newer_claim.revision)
    assert confirmed and [c.revision for c in done.claims] == [slow_claim.revision]
    assert stock_write_decision(done, ["o1"]).reason == "unconfirmed_write"
    # The slow worker finishes: someone saved since its claim, so it decides again and writes the newest total.
    after_slow, confirmed = finish_write(done, slow, slow_claim.revision)
    assert not confirmed and after_slow.claims == ()
    assert stock_write_decision(after_slow, ["o1"]) == WriteStock("p-1", 880001, 2, "total_changed")


def test_a_dead_writers_claim_is_cleared_only_by_a_writer_that_came_after_it_expired() -> None:
    store, ecom = Store(state_with({"o1": (5, 1)}, last_written=5)), FakeEcom()
    run_alone(stock_worker(store, ecom, [change("o1", 2, 2)], ("o1",), crash_at="put"))
    assert [c.level for c in store.state.claims] == [2] and store.state.last_written == 5
    # The redelivered message sees the total as written, but a claim means eCom's level is unknown.
    run_alone(stock_worker(store, ecom, [change("o1", 2, 2)], ("o1",)))
    assert ecom.writes == [(880001, 2), (880001, 2)] and len(store.state.claims) == 1
    # Once the dead claim has expired, the next writer clears it and the variant is quiet again.
    store.clock += CLAIM_TTL_SECONDS
    run_alone(stock_worker(store, ecom, [], ("o1",)))
    assert not store.state.claims and store.state.last_written == 2
    run_alone(stock_worker(store, ecom, [], ("o1",)))
    assert len(ecom.writes) == 3


def test_a_writer_that_outlived_the_ttl_does_not_trust_its_write() -> None:
    state = state_with({"o1": (5, 1)})
    write = WriteStock("p-1", 880001, 5, "total_changed")
    stale_claim = begin_write(state, write, now=0)
    later = begin_write(stale_claim, write, now=CLAIM_TTL_SECONDS)
    cleared, _ = finish_write(later, write, later.revision)
    assert cleared.claims == ()
    done, confirmed = finish_write(cleared, write, stale_claim.revision)
    assert not confirmed and done.last_written is None


def test_an_answered_error_drops_the_claim_and_leaves_the_level_unknown() -> None:
    state = state_with({"o1": (5, 1)}, last_written=5)
    write = WriteStock("p-1", 880001, 7, "total_changed")
    claimed = begin_write(state, write, now=0)
    failed = abandon_write(claimed, claimed.revision)
    assert failed.claims == () and failed.last_written is None
    assert stock_write_decision(failed, ["o1"]) == WriteStock("p-1", 880001, 5, "total_changed")


def test_records_for_another_variant_are_refused() -> None:
    write = WriteStock("p-2", 1, 5, "total_changed")
    with pytest.raises(InvalidInput):
        begin_write(state_with({}), write, now=0)
    with pytest.raises(InvalidInput):
        finish_write(state_with({}), write, 0)


# --- outlets: connect, disconnect, shipping methods ------------------------------------------------------------------


LINKS = {"1": "o1", "2": "o2", "12": "o2", "5": "o3"}


def test_disconnecting_an_outlet_retires_only_its_shipping_methods() -> None:
    plan = plan_outlet_change(["o1", "o2", "o3"], ["o1", "o3"], "o1", "o1")
    assert (plan.added, plan.removed) == ((), ("o2",))
    assert plan.recompute_needed and plan.primary_outlet_id == "o1" and not plan.primary_changed
    kept, retired = retire_shipping_methods(LINKS, ["o1", "o3"])
    assert kept == {"1": "o1", "5": "o3"} and retired == ("2", "12")


def test_reconnecting_an_outlet_restores_no_shipping_method() -> None:
    kept, _ = retire_shipping_methods(LINKS, ["o1", "o3"])
    plan = plan_outlet_change(["o1", "o3"], ["o1", "o2", "o3"], "o1", "o1")
    assert plan.added == ("o2",)
    assert retire_shipping_methods(kept, ["o1", "o2", "o3"]) == (kept, ())


def test_the_primary_outlet_serves_untied_methods_and_must_be_connected() -> None:
    moved = plan_outlet_change(["o1", "o2"], ["o2", "o3"], "o1", "o3")
    assert moved.primary_outlet_id == "o3" and moved.primary_changed
    # One connected outlet is the primary whether chosen or not; two without a choice leave it open.
    assert plan_outlet_change(["o1"], ["o2"], None, None).primary_outlet_id == "o2"
    assert plan_outlet_change(["o1"], ["o1", "o2"], None, None).primary_outlet_id is None
    with pytest.raises(InvalidInput):
        plan_outlet_change(["o1"], ["o1"], "o1", "o2")


def test_the_registers_outlet_is_read_from_live_registers_only() -> None:
    rows = [
        {"id": "r1", "outlet_id": "a", "deleted_at": None},
        {"id": "r2", "outlet_id": "b", "deleted_at": "2026-01-01T00:00:00Z"},
        {"id": "r3"},
    ]
    assert register_outlet_of(rows, "r1") == "a"
    assert register_outlet_of(rows, "r2") is None  # deleted
    assert register_outlet_of(rows, "r3") is None  # no outlet
    assert register_outlet_of(rows, "r9") is None


def test_the_registers_outlet_cannot_be_left_out_and_is_added_last_by_default() -> None:
    with pytest.raises(InvalidInput, match="change the register"):
        refuse_excluding_register_outlet(["b", "c"], "a")
    refuse_excluding_register_outlet(["b", "a"], "a")
    refuse_excluding_register_outlet(["b"], None)  # no register chosen: nothing is forced
    assert with_register_outlet([], "a") == ["a"]
    assert with_register_outlet(["b", "", "c", "b"], "a") == ["b", "c", "a"]  # the merchant's order first
    assert with_register_outlet(["a", "b"], "a") == ["a", "b"]


def test_a_register_change_connects_its_outlet_and_disconnects_nothing() -> None:
    assert outlets_for_register(["a", "b"], "c") == ["a", "b", "c"]
    assert outlets_for_register(["a", "b"], "b") == ["a", "b"]
    assert outlets_for_register([], "c") == ["c"]


def test_a_primary_change_alone_needs_no_recompute() -> None:
    plan = plan_outlet_change(["o1", "o2"], ["o2", "o1"], "o1", "o2")
    assert not plan.recompute_needed and plan.primary_changed


def test_totals_changed_skips_unknown_and_lists_unprovable() -> None:
    states = [
        state_with({"o1": (5, 1), "o2": (0, 1)}, product_id="same"),
        state_with({"o1": (5, 1), "o2": (3, 1)}, product_id="more"),
        state_with({"o1": (5, 1)}, product_id="unknown-new"),
        state_with({"o2": (3, 1)}, product_id="unknown-old"),
    ]
    assert totals_changed(states, ["o1"], ["o1", "o2"]) == [("more", 8)]
    assert totals_changed(states, ["o3"], ["o2"]) == [("same", 0), ("more", 3), ("unknown-old", 3)]
    # Disconnecting every outlet turns stock sync off: nothing is zeroed.
    assert totals_changed(states, ["o1"], []) == []


def test_connecting_an_outlet_over_a_1000_variant_catalog_in_bounded_messages() -> None:
    # Given: 1,000 variants in eCom at their o1 totals; every 10th also has stock at o2; #7 never seen at o2.
    states: dict[str, VariantStockState] = {}
    for n in range(1000):
        levels = {"o1": (n % 4, 1)} if n == 7 else {"o1": (n % 4, 1), "o2": (2 if n % 10 == 0 else 0, 1)}
        states[f"v{n:04d}"] = state_with(levels, product_id=f"v{n:04d}", ecom_variant_id=n, last_written=n % 4)
    ecom = FakeEcom(levels={n: n % 4 for n in range(1000)})
    plan = plan_outlet_change(["o1"], ["o1", "o2"], "o1", "o1")
    assert plan.recompute_needed
    job: RecomputeJob | None = start_recompute("shop-1", ["o2", "o1"], chunk_size=50)

    # When: each queued message handles one chunk.
    messages, needs_read = 0, list[str]()
    while job is not None:
        assert not is_superseded(job, ["o1", "o2"])
        chunk = next_chunk(sorted(states), job.after, job.chunk_size)
        assert len(chunk.variant_ids) <= 50
        work = plan_recompute([states[vid] for vid in chunk.variant_ids], job.connected_outlet_ids)
        for write in work.writes:
            store = Store(states[write.product_id])
            write_through(store, ecom, write)
            states[write.product_id] = store.state
        needs_read += work.needs_pos_read
        messages += 1
        job = (
            RecomputeJob.model_validate_json(next_job.model_dump_json()) if (next_job := advance(job, chunk)) else None
        )

    # Then: 20 messages; eCom touched only for the 100 variants whose total moved; #7 waits for a POS read.
    assert messages == 20
    assert len(ecom.writes) == 100 and all(vid % 10 == 0 for vid, _ in ecom.writes)
    assert all(ecom.levels[n] == n % 4 + (2 if n % 10 == 0 else 0) for n in range(1000))
    assert needs_read == ["v0007"]


def test_a_job_for_outlets_changed_again_is_superseded_and_a_job_ends_on_its_last_chunk() -> None:
    job = start_recompute("shop-1", ["o1", "o2"])
    assert is_superseded(job, ["o1"]) and not is_superseded(job, ["o2", "o1", "o2"])
    assert advance(job, next_chunk(["a", "b"], None, 2)) is None


def test_chunks_follow_the_cursor_so_inserted_variants_shift_nothing() -> None:
    ids = [f"v{n}" for n in range(7)]
    first = next_chunk(ids, None, 3)
    assert first.variant_ids == ("v0", "v1", "v2") and first.next_after == "v2"
    grown = sorted([*ids, "v0a", "v2a"])
    assert next_chunk(grown, first.next_after, 3).variant_ids == ("v2a", "v3", "v4")
    assert next_chunk(ids, "v3", 3) == Chunk(("v4", "v5", "v6"), None)
    assert next_chunk(ids, "v6", 3).variant_ids == ()
    assert recompute_chunks(["b", "a", "c", "a"], 2) == [("a", "b"), ("c",)]
    with pytest.raises(InvalidInput):
        next_chunk(ids, None, 0)


# --- properties ----------------------------------------------------------------------------------------------------

levels_st = st.integers(min_value=-20, max_value=40)
connected_st = st.sets(st.sampled_from(OUTLETS), min_size=1).map(lambda s: tuple(sorted(s)))


@st.composite
def pos_history(draw: st.DrawFn, min_size: int = 1) -> list[InventoryChange]:
    """POS changes of one variant, versions increasing in POS order (X-Series versions are global and rising)."""
    steps = draw(st.lists(st.tuples(st.sampled_from(OUTLETS), levels_st), min_size=min_size, max_size=30))
    start = draw(st.integers(min_value=2, max_value=10**12))
    return [change(outlet, level, start + 3 * i) for i, (outlet, level) in enumerate(steps)]


def final_total(history: Iterable[InventoryChange], connected: Iterable[str]) -> int | None:
    newest = {c.outlet_id: c.level for c in sorted(history, key=lambda c: c.version)}
    if any(outlet not in newest for outlet in connected):
        return None
    return sum(max(0, newest[outlet]) for outlet in connected)


@given(pos_history(), st.data(), connected_st)
def test_any_delivery_order_with_duplicates_ends_at_the_pos_total(
    history: list[InventoryChange], data: st.DataObject, connected: tuple[str, ...]
) -> None:
    duplicates = data.draw(st.lists(st.sampled_from(history), max_size=10))
    delivered = data.draw(st.permutations(history + duplicates))

    state = VariantStockState(product_id="p-1")
    for c in delivered:
        state, _ = apply_inventory_change(state, c.outlet_id, c.level, c.version)

    assert desired_total(state, connected) == final_total(history, connected)
    # Batching or coalescing the same deliveries changes nothing.
    split = data.draw(st.integers(min_value=0, max_value=len(delivered)))
    batched, _ = apply_changes(VariantStockState(product_id="p-1"), delivered[:split])
    batched, _ = apply_changes(batched, delivered[split:])
    assert batched.levels == state.levels


@given(st.data())
def test_fifty_rapid_changes_in_batches_write_at_most_once_per_batch_and_end_on_the_final_total(
    data: st.DataObject,
) -> None:
    history = [
        change("o1", level, 1000 + i)
        for i, level in enumerate(data.draw(st.lists(levels_st, min_size=50, max_size=50)))
    ]
    cuts = sorted(data.draw(st.sets(st.integers(min_value=1, max_value=49), max_size=10)))
    batches = [history[a:b] for a, b in zip([0, *cuts], [*cuts, 50], strict=True)]
    store = Store(state_with({"o1": (3, 1), "o2": (4, 1)}, last_written=7))
    ecom = FakeEcom(levels={880001: 7})

    for batch in batches:
        run_alone(stock_worker(store, ecom, data.draw(st.permutations(batch)), ("o1", "o2")))

    assert len(ecom.writes) <= len(batches)
    expected = max(0, history[-1].level) + 4
    assert ecom.levels[880001] == expected == store.state.last_written
    if ecom.writes:
        assert ecom.writes[-1] == (880001, expected)


@given(st.data())
@settings(max_examples=300)
def test_concurrent_workers_with_crashes_cannot_leave_a_wrong_total(data: st.DataObject) -> None:
    connected = data.draw(connected_st)
    initial = {outlet: (data.draw(levels_st), 1) for outlet in OUTLETS}
    history = data.draw(pos_history())
    store = Store(state_with(initial, last_written=data.draw(st.integers(0, 50))))
    ecom = FakeEcom(levels={880001: store.state.last_written or 0})

    # Each message gets part of the history (messages overlap and repeat); some die mid-way and are retried.
    batches = data.draw(st.lists(st.lists(st.sampled_from(history), min_size=1, max_size=8), min_size=2, max_size=4))
    covered = {c for batch in batches for c in batch}
    batches.append([c for c in history if c not in covered])  # the poller delivers whatever was missed
    crashes = [data.draw(st.sampled_from([None, None, "claimed", "put"])) for _ in batches]
    running = [
        stock_worker(store, ecom, batch, connected, crash) for batch, crash in zip(batches, crashes, strict=True)
    ]
    retries = [stock_worker(store, ecom, b, connected) for b, crash in zip(batches, crashes, strict=True) if crash]

    for _ in range(data.draw(st.integers(0, 60))):
        if not running:
            break
        worker = data.draw(st.sampled_from(running))
        if next(worker, "done") == "done":
            running.remove(worker)
    for worker in running:
        run_alone(worker)
    store.clock += CLAIM_TTL_SECONDS  # SQS redelivers what died once its visibility timeout has passed
    for worker in retries:
        run_alone(worker)

    expected = final_total([*history, *(change(o, lv, v) for o, (lv, v) in initial.items())], connected)
    assert ecom.levels[880001] == expected == store.state.last_written
    assert store.state.claims == ()


@st.composite
def catalog(draw: st.DrawFn) -> list[VariantStockState]:
    """Variants with a known level at every outlet (a POS read seeded them)."""
    size = draw(st.integers(min_value=1, max_value=40))
    return [
        state_with({o: (draw(levels_st), 1) for o in OUTLETS}, product_id=f"v{n:03d}", ecom_variant_id=n)
        for n in range(size)
    ]


def recompute(states: dict[str, VariantStockState], ecom: FakeEcom, connected: tuple[str, ...]) -> int:
    """Run a whole recompute job; returns the number of eCom writes."""
    before = len(ecom.writes)
    for chunk in recompute_chunks(states, chunk_size=7):
        for write in plan_recompute([states[vid] for vid in chunk], connected).writes:
            store = Store(states[write.product_id])
            write_through(store, ecom, write)
            states[write.product_id] = store.state
    return len(ecom.writes) - before


@given(catalog(), connected_st, st.sets(st.sampled_from(OUTLETS), min_size=1))
def test_connect_then_disconnect_returns_every_total_and_touches_only_changed_variants(
    variants: list[VariantStockState], original: tuple[str, ...], extra: set[str]
) -> None:
    added = tuple(sorted(set(original) | extra))
    states = {s.product_id: s for s in variants}
    ecom = FakeEcom()
    recompute(states, ecom, original)
    start = dict(ecom.levels)

    connect_changes = totals_changed(states.values(), original, added)
    assert recompute(states, ecom, added) == len(connect_changes)
    assert all(ecom.levels[states[vid].ecom_variant_id or 0] == total for vid, total in connect_changes)

    disconnect_changes = totals_changed(states.values(), added, original)
    assert recompute(states, ecom, original) == len(disconnect_changes)
    assert ecom.levels == start
    assert {vid for vid, _ in disconnect_changes} == {vid for vid, _ in connect_changes}


@given(catalog(), connected_st, connected_st)
def test_totals_changed_lists_exactly_the_variants_whose_total_moved(
    variants: list[VariantStockState], old: tuple[str, ...], new: tuple[str, ...]
) -> None:
    listed = dict(totals_changed(variants, old, new))
    for state in variants:
        before, after = desired_total(state, old), desired_total(state, new)
        assert (state.product_id in listed) == (before != after)
        if state.product_id in listed:
            assert listed[state.product_id] == after


@given(st.lists(st.text(alphabet="abc0123", min_size=1, max_size=4), unique=True), st.integers(1, 8))
def test_the_cursor_walk_visits_every_variant_once_in_bounded_chunks(ids: list[str], limit: int) -> None:
    ordered = sorted(ids)
    seen: list[str] = []
    after: str | None = None
    for _ in range(len(ids) + 1):
        chunk = next_chunk(ordered, after, limit)
        assert len(chunk.variant_ids) <= limit
        seen += chunk.variant_ids
        if chunk.next_after is None:
            break
        after = chunk.next_after
    assert seen == ordered
    assert [vid for c in recompute_chunks(ids, limit) for vid in c] == ordered
