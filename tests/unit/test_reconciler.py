"""The Reconciler against in-memory fakes: paging, checkpoints, resuming, and the ways an invocation stops early."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pos_ecom_sync.catalog.planning import CatalogState
from pos_ecom_sync.connectors.ecom import OrderPage
from pos_ecom_sync.errors import Conflict, RateLimited
from pos_ecom_sync.models.catalog import EcomVariantRef
from pos_ecom_sync.models.connection import Connection
from pos_ecom_sync.models.stock import VariantStockState
from pos_ecom_sync.queues import Outgoing
from pos_ecom_sync.reconcile.rules import ReconcileCheckpoint
from pos_ecom_sync.reconcile.service import Reconciler, reconcile_connections
from pos_ecom_sync.state.store import VariantLink

NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
CONNECTION = Connection(
    connection_id="shop",
    pos_base_url="http://127.0.0.1:9",
    ecom_base_url="http://127.0.0.1:9",
    created_at=NOW - timedelta(days=30),
)


@dataclass
class Page:
    items: list[dict[str, Any]]
    max_version: int | None


@dataclass
class FakePos:
    rows: list[dict[str, Any]]
    calls: int = 0
    afters: list[int | None] = field(default_factory=list)

    def list_changes(
        self, resource: str, after: int | None, page_size: int = 200, include_deleted: bool = True
    ) -> Page:
        self.calls += 1
        self.afters.append(after)
        rows = [r for r in sorted(self.rows, key=lambda r: r["version"]) if after is None or r["version"] > after]
        chosen = rows[:page_size]
        return Page(chosen, max((r["version"] for r in chosen), default=None))


@dataclass
class FakeEcom:
    variants: list[dict[str, Any]]
    orders: list[dict[str, Any]] = field(default_factory=list)
    calls: int = 0
    since_ids: list[int | None] = field(default_factory=list)
    order_since_ids: list[int | None] = field(default_factory=list)
    throttle_variants_after: int | None = None

    def list_variants_since(self, since_id: int | None, limit: int = 250) -> list[dict[str, Any]]:
        if self.throttle_variants_after is not None and len(self.since_ids) >= self.throttle_variants_after:
            raise RateLimited("ecom", 0.0)
        self.calls += 1
        self.since_ids.append(since_id)
        rows = sorted((v for v in self.variants if since_id is None or v["id"] > since_id), key=lambda v: v["id"])
        return rows[:limit]

    def list_orders(self, updated_at_min: datetime | None, since_id: int | None = None, limit: int = 250) -> OrderPage:
        self.calls += 1
        self.order_since_ids.append(since_id)
        rows = sorted((o for o in self.orders if since_id is None or o["id"] > since_id), key=lambda o: o["id"])[:limit]
        return OrderPage(rows, rows[-1]["id"] if len(rows) == limit else None)


@dataclass
class FakeStore:
    checkpoint: ReconcileCheckpoint = field(default_factory=ReconcileCheckpoint)
    catalog: dict[str, CatalogState] = field(default_factory=dict)
    stock: dict[str, VariantStockState] = field(default_factory=dict)
    ledger: dict[int, str] = field(default_factory=dict)
    links: dict[int, VariantLink] = field(default_factory=dict)
    saves: int = 0

    def get_checkpoint(self, connection_id: str) -> ReconcileCheckpoint:
        return self.checkpoint

    def save_checkpoint(self, connection_id: str, loaded_revision: int, checkpoint: ReconcileCheckpoint) -> None:
        if self.checkpoint.revision != loaded_revision:
            raise Conflict("moved")
        self.saves += 1
        self.checkpoint = checkpoint

    def catalog_states(self, connection_id: str, family_keys: Sequence[str]) -> Mapping[str, CatalogState]:
        return {k: self.catalog.get(k, CatalogState()) for k in family_keys}

    def stock_states(self, connection_id: str, pos_product_ids: Sequence[str]) -> Mapping[str, VariantStockState]:
        return {p: self.stock.get(p, VariantStockState(product_id=p)) for p in pos_product_ids}

    def order_statuses(self, connection_id: str, order_ids: Sequence[int]) -> Mapping[int, str]:
        return {o: self.ledger[o] for o in order_ids if o in self.ledger}

    def ecom_links(self, connection_id: str) -> Mapping[int, VariantLink]:
        return self.links


@dataclass
class FakePublisher:
    sent: list[Outgoing] = field(default_factory=list)
    depth: dict[str, int] = field(default_factory=dict)

    def publish(self, outgoing: Sequence[Outgoing]) -> int:
        self.sent.extend(outgoing)
        return len(outgoing)

    def backlog(self, concern: str) -> int:
        return self.depth.get(concern, 0)


def _synced_shop(families: int = 6) -> tuple[FakePos, FakeEcom, FakeStore]:
    """`families` one-variant families, all applied, with their eCom variants at the total we wrote (5)."""
    rows, variants, store = [], [], FakeStore()
    for i in range(families):
        parent, variant, ecom_id = f"p{i}", f"v{i}", 1000 + i
        rows += [
            {"id": parent, "version": 10 * i + 1},
            {"id": variant, "version": 10 * i + 2, "variant_parent_id": parent},
        ]
        ref = EcomVariantRef(ecom_product_id=500 + i, ecom_variant_id=ecom_id)
        store.catalog[parent] = CatalogState(
            ecom_product_id=500 + i, applied_version=10 * i + 2, variants={variant: ref}
        )
        store.links[ecom_id] = VariantLink(variant, parent, 500 + i, ecom_id)
        store.stock[variant] = VariantStockState(
            product_id=variant, ecom_variant_id=ecom_id, last_written=5, revision=2
        )
        variants.append({"id": ecom_id, "stockLevel": 5})
    return FakePos(rows), FakeEcom(variants), store


def _reconciler(store: FakeStore, publisher: FakePublisher, **kwargs: Any) -> Reconciler:
    defaults: dict[str, Any] = {"interval": timedelta(hours=24), "pos_page_size": 4, "ecom_page_size": 2}
    return Reconciler(store, publisher, clock=lambda: NOW, new_run_id=lambda: "run1", **{**defaults, **kwargs})


def test_a_synced_shop_is_walked_in_full_once_and_nothing_is_queued() -> None:
    # Given: every family applied, every level as written, no orders
    pos, ecom, store = _synced_shop()
    publisher = FakePublisher()

    # When
    report = _reconciler(store, publisher).reconcile(CONNECTION, pos, ecom)

    # Then: 12 rows in pages of 4 + the empty end; 6 variants in pages of 2 + the empty end; one order page
    assert report.completed and report.step == "start" and publisher.sent == []
    assert report.pages == {"catalog": 4, "variants": 4, "orders": 1}
    assert (report.pos_calls, report.ecom_calls) == (4, 5)
    assert store.checkpoint.phase == "done" and store.checkpoint.completed_at == NOW


def test_every_kind_of_drift_is_queued_once_for_its_worker() -> None:
    pos, ecom, store = _synced_shop()
    pos.rows[1]["version"] = 99  # v0 changed in the POS, its webhook lost
    pos.rows.append({"id": "p9", "version": 120})  # a family never created
    ecom.variants[2]["stockLevel"] = 40  # a hand edit in eCom
    del ecom.variants[4]  # deleted in eCom
    ecom.orders = [{"id": 7001}, {"id": 7002}]
    store.ledger[7002] = "imported"
    publisher = FakePublisher()

    report = _reconciler(store, publisher).reconcile(CONNECTION, pos, ecom)

    sent = {(o.message.concern, o.message.entity_id, o.message.payload.get("reconcile")) for o in publisher.sent}
    assert sent == {
        ("products", "p0", "catalog_outdated"),
        ("products", "p9", "catalog_missing"),
        ("stock", "1002", None),
        ("products", "p4", "variant_gone"),
        ("orders", "7001", None),
    }
    assert all(o.message.via == "reconcile" for o in publisher.sent)
    assert report.run_drift == {
        "catalog_outdated": 1,
        "catalog_missing": 1,
        "stock_differs": 1,
        "variant_gone": 1,
        "order_missing": 1,
    }


def test_an_invocation_out_of_time_stops_and_the_next_resumes_from_the_checkpoint() -> None:
    pos, ecom, store = _synced_shop()
    publisher = FakePublisher()
    ticks = iter([True, True, True, True, True, True, False])  # six pages, then time is up

    first = _reconciler(store, publisher).reconcile(CONNECTION, pos, ecom, lambda: next(ticks))

    assert not first.completed and first.stopped is not None and "out of time" in first.stopped
    assert (first.phase, first.cursor) == ("variants", "1003")
    assert ecom.since_ids == [None, 1001]

    second = _reconciler(store, publisher).reconcile(CONNECTION, pos, ecom)

    assert second.step == "continue" and second.completed
    assert ecom.since_ids == [None, 1001, 1003, 1005]  # picked up after the last page read, not from the start
    assert pos.afters.count(None) == 1  # the catalog was not read again


def test_a_throttled_page_stops_the_invocation_and_keeps_the_checkpoint() -> None:
    pos, ecom, store = _synced_shop()
    ecom.throttle_variants_after = 1
    publisher = FakePublisher()

    report = _reconciler(store, publisher).reconcile(CONNECTION, pos, ecom)

    assert report.stopped is not None and report.stopped.startswith("throttled")
    assert (store.checkpoint.phase, store.checkpoint.cursor) == ("variants", "1001")


def test_a_full_queue_holds_the_run_until_it_drains() -> None:
    pos, ecom, store = _synced_shop()
    publisher = FakePublisher(depth={"products": 500})

    report = _reconciler(store, publisher, max_backlog=500).reconcile(CONNECTION, pos, ecom)

    assert report.stopped == "products queue is full: resumes from the checkpoint as it drains"
    assert pos.calls == 0 and store.checkpoint.phase == "catalog"


def test_a_completed_run_waits_for_the_interval_and_a_lost_race_stops_quietly() -> None:
    pos, ecom, store = _synced_shop()
    store.checkpoint = ReconcileCheckpoint(run_id="r0", completed_at=NOW - timedelta(hours=2), revision=3)
    publisher = FakePublisher()

    idle = _reconciler(store, publisher).reconcile(CONNECTION, pos, ecom)

    assert idle.step == "idle" and idle.next_due == NOW + timedelta(hours=22) and pos.calls == 0

    class Racing(FakeStore):
        def save_checkpoint(self, connection_id: str, loaded_revision: int, checkpoint: ReconcileCheckpoint) -> None:
            raise Conflict("another invocation")

    raced = _reconciler(Racing(), publisher).reconcile(CONNECTION, pos, ecom, force=True)

    assert raced.stopped is not None and pos.calls == 0


def test_one_connection_failing_never_stops_the_others() -> None:
    pos, ecom, store = _synced_shop()
    other = CONNECTION.model_copy(update={"connection_id": "other"})

    def clients(connection: Connection) -> tuple[FakePos, FakeEcom]:
        if connection.connection_id == "other":
            raise Conflict("no secret")
        return pos, ecom

    summary = reconcile_connections([other, CONNECTION], _reconciler(store, FakePublisher()), clients, lambda: True)

    assert summary.failures == {"other": "no secret"}
    assert [r.connection_id for r in summary.reports] == ["shop"] and summary.pages == 9


def test_the_orders_phase_walks_by_since_id_and_checkpoints_the_next_id() -> None:
    pos, ecom, store = _synced_shop()
    ecom.orders = [{"id": 7000 + n} for n in range(1, 6)]  # pages of 2: 2, 2, 1
    publisher = FakePublisher()

    report = _reconciler(store, publisher).reconcile(CONNECTION, pos, ecom)

    assert report.completed and report.pages["orders"] == 3
    assert ecom.order_since_ids == [None, 7002, 7004]
    assert {o.message.entity_id for o in publisher.sent if o.message.concern == "orders"} == {
        str(7000 + n) for n in range(1, 6)
    }
