"""The stock worker's I/O decisions (stock/sync.py) against in-memory fakes: what each vendor answer does to the
claim, which eCom messages are manual edits, batches, outlet changes. The real path is in
tests/integration/test_stock_sync.py."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pos_ecom_sync.errors import Conflict, InvalidInput, RateLimited, UpstreamError, UpstreamUnavailable
from pos_ecom_sync.models.connection import Connection
from pos_ecom_sync.models.links import VariantLink
from pos_ecom_sync.models.messages import ChangeMessage
from pos_ecom_sync.models.stock import AppliedOutlets, OutletLevel, StockChunk, StockEntry, VariantStockState
from pos_ecom_sync.profiles.xseries.stock import XSeriesInventory
from pos_ecom_sync.queues import Outgoing
from pos_ecom_sync.stock.sync import (
    LinkPending,
    StockBatch,
    StockSync,
    request_outlet_change,
    request_register_change,
)

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
A, B = "outlet-a", "outlet-b"


@dataclass
class Memory:
    states: dict[str, VariantStockState] = field(default_factory=dict)
    links: dict[str, int] = field(default_factory=dict)
    applied: AppliedOutlets = field(default_factory=AppliedOutlets)
    saves: int = 0

    def get_stock(self, connection_id: str, pos_product_id: str) -> VariantStockState:
        return self.states.get(pos_product_id) or VariantStockState(product_id=pos_product_id)

    def save_stock(self, connection_id: str, loaded_revision: int, new_state: VariantStockState) -> None:
        held = self.states.get(new_state.product_id)
        if (held.revision if held else 0) != loaded_revision:
            raise Conflict("changed")
        self.saves += 1
        self.states[new_state.product_id] = new_state

    def stock_chunk(self, connection_id: str, after: str | None, limit: int) -> StockChunk:
        ordered = sorted(self.links)
        start = bisect_right(ordered, after) if after is not None else 0
        ids = ordered[start : start + limit]
        entries = tuple(StockEntry(p, self.links[p], self.get_stock(connection_id, p)) for p in ids)
        return StockChunk(entries, ids[-1] if start + limit < len(ordered) else None)

    def get_applied_outlets(self, connection_id: str) -> AppliedOutlets:
        return self.applied

    def save_applied_outlets(
        self, connection_id: str, applied: AppliedOutlets, outlets: Sequence[str], primary_outlet_id: str | None
    ) -> AppliedOutlets:
        assert applied == self.applied
        self.applied = AppliedOutlets(tuple(sorted(outlets)), primary_outlet_id, applied.revision + 1)
        return self.applied

    def variant_link(
        self, connection_id: str, *, pos_product_id: str | None = None, ecom_variant_id: int | None = None
    ) -> VariantLink | None:
        for pos_id, ecom_id in self.links.items():
            if pos_id == pos_product_id or ecom_id == ecom_variant_id:
                return VariantLink(pos_id, pos_id, 1, ecom_id)
        return None


@dataclass
class FakeEcom:
    levels: dict[int, int] = field(default_factory=dict)
    fail_with: Exception | None = None
    calls: list[tuple[str, int, dict[str, Any]]] = field(default_factory=list)

    def update_variant(self, variant_id: int, fields: dict[str, Any]) -> dict[str, Any]:
        self.calls.append(("variant", variant_id, fields))
        if self.fail_with is not None:
            raise self.fail_with
        self.levels[variant_id] = fields["stockLevel"]
        return {"id": variant_id, **fields, "updatedAt": f"2026-03-02T09:00:{len(self.calls):02d}+00:00"}


@dataclass
class FakePos:
    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    fail: bool = False
    reads: int = 0

    def list_product_inventory(self, product_id: str) -> list[dict[str, Any]]:
        self.reads += 1
        if self.fail:
            raise UpstreamUnavailable("xseries GET answered 503")
        return self.rows[product_id]

    def list_registers(self) -> list[dict[str, Any]]:
        return [{"id": "reg-1", "outlet_id": A}]


@dataclass
class Queue:
    sent: list[Outgoing] = field(default_factory=list)

    def publish(self, outgoing: Sequence[Outgoing]) -> int:
        self.sent.extend(outgoing)
        return len(outgoing)


def connection(**overrides: Any) -> Connection:
    settings: dict[str, Any] = {
        "connection_id": "shop",
        "pos_base_url": "http://pos",
        "ecom_base_url": "http://ecom",
        "connected_outlet_ids": [A, B],
        "primary_outlet_id": A,
        **overrides,
    }
    return Connection(**settings)


@dataclass
class Rig:
    memory: Memory = field(default_factory=Memory)
    ecom: FakeEcom = field(default_factory=FakeEcom)
    pos: FakePos = field(default_factory=FakePos)
    queue: Queue = field(default_factory=Queue)
    now: float = NOW.timestamp()

    def worker(self, **overrides: Any) -> StockSync:
        return StockSync(
            connection(**overrides),
            XSeriesInventory(self.pos),
            self.ecom,
            self.memory,
            self.memory,
            self.queue,
            clock=lambda: self.now,
        )

    def synced(self, pos_id: str, ecom_id: int, levels: dict[str, tuple[int, int]]) -> None:
        held = {o: OutletLevel(level=lv, version=v) for o, (lv, v) in levels.items()}
        total = sum(max(0, lv) for lv, _ in levels.values())
        self.memory.links[pos_id] = ecom_id
        self.memory.states[pos_id] = VariantStockState(
            product_id=pos_id, ecom_variant_id=ecom_id, levels=held, last_written=total, revision=1
        )
        self.ecom.levels[ecom_id] = total


def inventory(pos_id: str, outlet: str, level: int, version: int | None) -> ChangeMessage:
    payload: dict[str, Any] = {"product_id": pos_id, "outlet_id": outlet, "count": level}
    return ChangeMessage(
        connection_id="shop",
        source="pos",
        entity="inventory",
        entity_id=pos_id,
        version=version,
        via="webhook",
        received_at=NOW,
        payload=payload,
        concern="stock",
    )


def ecom_variant(ecom_id: int, level: int, updated_at: str, age_s: float = 0) -> ChangeMessage:
    return ChangeMessage(
        connection_id="shop",
        source="ecom",
        entity="variant",
        entity_id=str(ecom_id),
        updated_at=updated_at,
        via="webhook",
        received_at=NOW - timedelta(seconds=age_s),
        payload={"id": ecom_id, "stockLevel": level, "updatedAt": updated_at},
        concern="stock",
    )


def test_a_versioned_change_writes_the_new_total_with_tracking_on_and_remembers_its_echo() -> None:
    rig = Rig()
    rig.synced("p1", 11, {A: (3, 10), B: (4, 10)})

    result = rig.worker().handle(inventory("p1", B, -2, 12))

    assert (result.outcome, result.level, result.ecom_writes) == ("written", 3, 1)
    assert rig.ecom.calls == [("variant", 11, {"stockLevel": 3, "stockTracking": "enabled"})]
    state = rig.memory.states["p1"]
    assert (state.last_written, state.claims, [e.level for e in state.echoes]) == (3, (), [3])


def test_a_sale_inside_negative_stock_rewrites_the_total_that_ecoms_own_checkout_lowered() -> None:
    rig = Rig()
    rig.synced("p1", 11, {A: (-1, 10), B: (4, 10)})  # total 4, written
    rig.ecom.levels[11] = 3  # eCom's checkout sold one; the sale is taken at A, which stays below zero

    result = rig.worker().handle(inventory("p1", A, -2, 11))

    assert (result.outcome, result.reason, result.level) == ("written", "sold_below_zero", 4)
    assert rig.ecom.levels[11] == 4
    # A change at an outlet that is not connected moves nothing online and costs nothing.
    assert rig.worker().handle(inventory("p1", "outlet-c", -5, 12)).ecom_writes == 0


def test_a_stale_or_duplicate_change_makes_no_call() -> None:
    rig = Rig()
    rig.synced("p1", 11, {A: (3, 10), B: (4, 12)})

    for message in (inventory("p1", B, 9, 11), inventory("p1", B, 4, 12)):
        assert rig.worker().handle(message).ecom_writes == 0
    assert rig.ecom.calls == []


def test_a_versionless_level_is_read_from_the_pos_and_a_failed_read_writes_nothing() -> None:
    rig = Rig()
    rig.synced("p1", 11, {A: (3, 10), B: (4, 10)})
    rig.pos.fail = True

    with pytest.raises(UpstreamUnavailable):
        rig.worker().handle(inventory("p1", B, 0, None))  # "count": 0 without a version is not a zero
    assert rig.ecom.calls == [] and rig.ecom.levels[11] == 7

    rig.pos.fail = False
    rig.pos.rows["p1"] = [
        {"outlet_id": A, "inventory_level": 3, "version": 10},
        {"outlet_id": B, "inventory_level": 1, "version": 15},
    ]
    assert rig.worker().handle(inventory("p1", B, 0, None)).level == 4


def test_an_unknown_connected_outlet_is_read_from_the_pos_never_taken_as_zero() -> None:
    rig = Rig()
    rig.synced("p1", 11, {A: (3, 10)})  # nothing known at B yet
    rig.memory.states["p1"] = rig.memory.states["p1"].model_copy(update={"last_written": None})
    rig.pos.rows["p1"] = [{"outlet_id": A, "inventory_level": 3, "version": 10}]  # no row at B: the POS says 0 there

    result = rig.worker().handle(inventory("p1", A, 5, 20))

    assert (result.pos_reads, result.level) == (1, 5)


def test_records_of_one_variant_in_a_batch_write_once_with_the_latest_total() -> None:
    rig = Rig()
    rig.synced("p1", 11, {A: (3, 10), B: (4, 10)})
    messages = [inventory("p1", B, level, 20 + level) for level in range(6)]
    event = {"Records": [{"body": m.model_dump_json()} for m in messages]}
    batch = StockBatch.of(event)

    outcomes = [rig.worker().handle(m, later_in_batch=batch.later_in_batch(m)).outcome for m in messages]

    assert outcomes == ["deferred"] * 5 + ["written"]
    assert rig.ecom.calls == [("variant", 11, {"stockLevel": 8, "stockTracking": "enabled"})]


def test_a_manual_ecom_edit_is_reverted_and_our_echoes_old_or_new_cost_nothing() -> None:
    rig = Rig()
    rig.synced("p1", 11, {A: (3, 10), B: (4, 10)})
    rig.worker().handle(inventory("p1", B, 1, 12))  # writes 4 (stamped :01)
    rig.worker().handle(inventory("p1", B, 2, 13))  # writes 5 (stamped :02)

    for echo in (ecom_variant(11, 4, "2026-03-02T09:00:01+00:00"), ecom_variant(11, 5, "2026-03-02T09:00:02+00:00")):
        assert rig.worker().handle(echo).ecom_writes == 0
    assert rig.worker().handle(ecom_variant(11, 3, "2026-03-02T08:59:59+00:00")).ecom_writes == 0  # older view
    manual = rig.worker().handle(ecom_variant(11, 40, "2026-03-02T09:05:00+00:00"))

    assert (manual.outcome, manual.reason, manual.level) == ("written", "ecom_differs", 5)
    assert rig.ecom.levels[11] == 5


def test_a_created_variant_gets_its_total_and_an_unlinked_one_waits_briefly_then_is_ignored() -> None:
    rig = Rig()
    rig.synced("p1", 11, {A: (3, 10), B: (4, 10)})
    rig.memory.states["p1"] = rig.memory.states["p1"].model_copy(update={"ecom_variant_id": None, "last_written": None})

    created = rig.worker().handle(ecom_variant(11, 0, "2026-03-02T09:00:00+00:00"))
    assert (created.outcome, created.level) == ("written", 7)

    with pytest.raises(LinkPending) as delayed:
        rig.worker().handle(ecom_variant(99, 0, "2026-03-02T09:00:00+00:00"))
    assert delayed.value.retry_at == rig.now + 10
    later = rig.worker().handle(ecom_variant(99, 0, "2026-03-02T09:00:00+00:00", age_s=60))
    assert later.outcome == "ignored"


@pytest.mark.parametrize(
    ("error", "claims_left", "last_written"),
    [
        (RateLimited("ecom", NOW.timestamp() + 30), 0, 7),  # never sent: what eCom holds is still known
        (UpstreamError("ecom", 400, "bad"), 0, None),  # answered: over, but it may have applied
        (UpstreamUnavailable("ecom PUT answered 503"), 0, None),
    ],
)
def test_a_failed_write_settles_its_claim_by_what_the_failure_says(
    error: Exception, claims_left: int, last_written: int | None
) -> None:
    rig = Rig()
    rig.synced("p1", 11, {A: (3, 10), B: (4, 10)})
    rig.ecom.fail_with = error

    with pytest.raises(type(error)):
        rig.worker().handle(inventory("p1", B, 1, 12))

    state = rig.memory.states["p1"]
    assert (len(state.claims), state.last_written) == (claims_left, last_written)
    assert state.levels[B].level == 1


def test_a_timed_out_write_keeps_its_claim_so_the_next_decision_writes_again() -> None:
    rig = Rig()
    rig.synced("p1", 11, {A: (3, 10), B: (4, 10)})
    try:
        raise httpx.ReadTimeout("slow")
    except httpx.ReadTimeout as cause:
        timeout = UpstreamUnavailable("ecom PUT: ReadTimeout")
        timeout.__cause__ = cause
    rig.ecom.fail_with = timeout

    with pytest.raises(UpstreamUnavailable):
        rig.worker().handle(inventory("p1", B, 1, 12))
    assert len(rig.memory.states["p1"].claims) == 1

    rig.ecom.fail_with = None
    again = rig.worker().handle(inventory("p1", B, 1, 12))  # the redelivered message: same level, same total
    assert (again.ecom_writes, again.reason) == (1, "unconfirmed_write")


def test_disconnecting_an_outlet_retires_its_shipping_methods_and_queues_bounded_chunks_to_the_end() -> None:
    rig = Rig()
    for n in range(120):
        rig.synced(f"p{n:03d}", 1000 + n, {A: (1, 10), B: (n % 3, 10)})
    rig.memory.applied = AppliedOutlets((A, B), A, 4)
    store = Connections(connection(connected_outlet_ids=[A, B], shipping_method_outlets={"1": A, "2": B, "3": B}))
    request_outlet_change(store, rig.queue, "shop", [A], now=NOW)
    assert store.connection.connected_outlet_ids == [A] and store.connection.primary_outlet_id == A
    # Orders with B's methods stop routing to B in the same save; eCom is never asked to change them.
    assert store.connection.shipping_method_outlets == {"1": A}

    results = []
    while rig.queue.sent:
        message = rig.queue.sent.pop(0).message
        results.append(rig.worker(connected_outlet_ids=[A]).handle(message))

    assert results[0].shipping_methods_to_disable == ("2", "3")
    assert "disable them in the eCom back office" in results[0].note
    assert all(call[0] == "variant" for call in rig.ecom.calls)
    assert [r.variants for r in results[1:]] == [50, 50, 20]
    assert sum(r.ecom_writes for r in results) == sum(1 for n in range(120) if n % 3)
    assert all(rig.ecom.levels[1000 + n] == 1 for n in range(120))
    assert rig.memory.applied == AppliedOutlets((A,), A, 5)

    rig.queue.sent.clear()
    request_outlet_change(store, rig.queue, "shop", [A], now=NOW)  # the same outlets again: nothing to do
    assert rig.worker(connected_outlet_ids=[A]).handle(rig.queue.sent.pop().message).outcome == "unchanged"


def test_a_job_for_outlets_changed_since_stops_and_a_foreign_job_is_refused() -> None:
    rig = Rig()
    rig.synced("p1", 11, {A: (3, 10), B: (4, 10)})
    store = Connections(connection())
    request_outlet_change(store, rig.queue, "shop", [A], now=NOW)
    rig.worker(connected_outlet_ids=[A]).handle(rig.queue.sent.pop(0).message)
    job = rig.queue.sent.pop(0).message

    assert rig.worker().handle(job).outcome == "superseded"  # the outlets are A and B again
    with pytest.raises(InvalidInput):
        rig.worker(connection_id="other").handle(job)


def test_without_chosen_outlets_the_online_registers_outlet_counts() -> None:
    rig = Rig()
    rig.synced("p1", 11, {A: (3, 10), B: (4, 10)})

    result = rig.worker(connected_outlet_ids=[], primary_outlet_id=None, online_register_id="reg-1").handle(
        inventory("p1", B, 9, 12)
    )

    assert (result.outcome, result.level) == ("written", 3)  # outlet A only


def test_leaving_the_registers_outlet_out_is_refused_and_saves_and_queues_nothing() -> None:
    rig = Rig()
    store = Connections(connection(online_register_id="reg-1", register_outlet_id=A))

    with pytest.raises(InvalidInput, match="change the register"):
        request_outlet_change(store, rig.queue, "shop", [B], B, now=NOW)

    assert store.connection.connected_outlet_ids == [A, B] and not rig.queue.sent
    assert request_outlet_change(store, rig.queue, "shop", [A], now=NOW).connected_outlet_ids == [A]


def test_an_older_connection_stores_the_registers_outlet_its_operator_read_and_keeps_it() -> None:
    rig = Rig()
    store = Connections(connection(online_register_id="reg-1", connected_outlet_ids=[B], primary_outlet_id=B))
    with pytest.raises(InvalidInput):
        request_outlet_change(store, rig.queue, "shop", [B], register_outlet_id=A, now=NOW)

    updated = request_outlet_change(store, rig.queue, "shop", [B, A], register_outlet_id=A, now=NOW)

    assert (updated.register_outlet_id, updated.connected_outlet_ids, updated.primary_outlet_id) == (A, [B, A], B)


def test_changing_the_register_connects_its_outlet_and_recomputes_every_total() -> None:
    rig = Rig()
    rig.synced("p1", 11, {A: (3, 10), B: (4, 10)})
    rig.memory.applied = AppliedOutlets((A,), A, 2)
    rig.ecom.levels[11] = 3  # only A counted
    rig.memory.states["p1"] = rig.memory.states["p1"].model_copy(update={"last_written": 3})
    store = Connections(connection(connected_outlet_ids=[A], online_register_id="reg-1", register_outlet_id=A))
    shipping = {"7": A}
    store.connection = store.connection.model_copy(update={"shipping_method_outlets": shipping})

    updated = request_register_change(store, rig.queue, "shop", "reg-2", B, now=NOW)

    assert (updated.online_register_id, updated.register_outlet_id) == ("reg-2", B)
    assert (updated.connected_outlet_ids, updated.primary_outlet_id) == ([A, B], A)  # nothing disconnected
    assert updated.shipping_method_outlets == shipping  # A is still connected: its methods still route
    while rig.queue.sent:
        rig.worker(**{k: getattr(updated, k) for k in ("connected_outlet_ids", "online_register_id")}).handle(
            rig.queue.sent.pop(0).message
        )
    assert rig.ecom.levels[11] == 7 and rig.memory.applied.outlets == (A, B)


def test_an_older_connection_without_chosen_outlets_keeps_its_registers_outlet_through_a_register_change() -> None:
    rig = Rig()
    store = Connections(connection(connected_outlet_ids=[], primary_outlet_id=None, online_register_id="reg-1"))

    updated = request_register_change(store, rig.queue, "shop", "reg-2", B, previous_register_outlet_id=A, now=NOW)

    assert updated.connected_outlet_ids == [A, B]
    assert rig.queue.sent[0].message.payload["previous_outlets"] == [A]  # what counted: the old register's outlet


@dataclass
class Connections:
    connection: Connection

    def get_connection(self, connection_id: str) -> Connection | None:
        return self.connection

    def save_connection(self, connection: Connection, *, create: bool = False) -> None:
        self.connection = connection


# -- property: the worker over any delivery order, duplication and batching ------------------------------------------

levels_strategy = st.lists(
    st.tuples(st.sampled_from(["p1", "p2"]), st.sampled_from([A, B, "outlet-c"]), st.integers(-5, 20)),
    min_size=1,
    max_size=30,
)


@settings(max_examples=150, deadline=None)
@given(changes=levels_strategy, data=st.data())
def test_any_order_duplication_and_batching_ends_with_ecom_at_the_clamped_pos_sum(
    changes: list[tuple[str, str, int]], data: st.DataObject
) -> None:
    rig = Rig()
    for n, pos_id in enumerate(("p1", "p2")):
        rig.synced(pos_id, 11 + n, {A: (0, 1), B: (0, 1), "outlet-c": (0, 1)})
    # The POS: each change gets the next version; the last one per (variant, outlet) is the truth.
    messages = [inventory(p, o, level, 100 + v) for v, (p, o, level) in enumerate(changes)]
    final: dict[tuple[str, str], int] = {}
    for p, o, level in changes:
        final[(p, o)] = level
    deliveries = messages + data.draw(st.lists(st.sampled_from(messages), max_size=10), label="duplicates")
    deliveries = data.draw(st.permutations(deliveries), label="order")
    while deliveries:
        size = data.draw(st.integers(1, 10), label="batch")
        batch, deliveries = deliveries[:size], deliveries[size:]
        counted = StockBatch.of({"Records": [{"body": m.model_dump_json()} for m in batch]})
        for message in batch:
            rig.worker().handle(message, later_in_batch=counted.later_in_batch(message))
        if data.draw(st.booleans(), label="merchant edits eCom"):
            rig.ecom.levels[11] = 999
            rig.worker().handle(ecom_variant(11, 999, f"2026-03-02T10:{len(deliveries):02d}:00+00:00"))

    for n, pos_id in enumerate(("p1", "p2")):
        expected = sum(max(0, final.get((pos_id, o), 0)) for o in (A, B))  # outlet-c is not connected
        assert rig.ecom.levels[11 + n] == expected
