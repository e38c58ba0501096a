"""The Reconciler against in-memory fakes: paging, checkpoints, resuming, and the ways an invocation stops early."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pos_ecom_sync.connectors.ecom import OrderPage
from pos_ecom_sync.errors import Conflict, RateLimited
from pos_ecom_sync.models.catalog import CatalogState, EcomVariantRef
from pos_ecom_sync.models.connection import Connection
from pos_ecom_sync.models.links import VariantLink
from pos_ecom_sync.models.reconcile import ReconcileCheckpoint
from pos_ecom_sync.models.stock import VariantStockState
from pos_ecom_sync.profiles.xseries.catalog_walk import XSeriesCatalogWalk
from pos_ecom_sync.queues import Outgoing
from pos_ecom_sync.reconcile.rules import DRIFT_KINDS
from pos_ecom_sync.reconcile.service import Reconciler, preview_drift, reconcile_connections

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
    products: list[dict[str, Any]] = field(default_factory=list)
    orders: list[dict[str, Any]] = field(default_factory=list)
    calls: int = 0
    since_ids: list[int | None] = field(default_factory=list)
    product_since_ids: list[int | None] = field(default_factory=list)
    order_since_ids: list[int | None] = field(default_factory=list)
    throttle_variants_after: int | None = None

    def list_variants_since(self, since_id: int | None, limit: int = 250) -> list[dict[str, Any]]:
        if self.throttle_variants_after is not None and len(self.since_ids) >= self.throttle_variants_after:
            raise RateLimited("ecom", 0.0)
        self.calls += 1
        self.since_ids.append(since_id)
        rows = sorted((v for v in self.variants if since_id is None or v["id"] > since_id), key=lambda v: v["id"])
        return rows[:limit]

    def list_products_since(self, since_id: int | None, limit: int = 250) -> list[dict[str, Any]]:
        self.calls += 1
        self.product_since_ids.append(since_id)
        rows = sorted((p for p in self.products if since_id is None or p["id"] > since_id), key=lambda p: p["id"])
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
    """`families` one-variant families, all applied, with their eCom variants at the total we wrote (5) and eCom's
    answers to our last writes recorded (what content reconciliation compares with)."""
    rows, variants, products, store = [], [], [], FakeStore()
    for i in range(families):
        parent, variant, ecom_id = f"p{i}", f"v{i}", 1000 + i
        rows += [
            {"id": parent, "version": 10 * i + 1},
            {"id": variant, "version": 10 * i + 2, "variant_parent_id": parent},
        ]
        ref = EcomVariantRef(ecom_product_id=500 + i, ecom_variant_id=ecom_id)
        product = {"id": 500 + i, "title": f"Tee {i}", "visibility": "visible", "brand": False, "content": ""}
        row = {"id": ecom_id, "stockLevel": 5, "title": "M", "priceIncl": 20.0, "sku": f"T{i}", "oldPriceIncl": 0}
        store.catalog[parent] = CatalogState(
            ecom_product_id=500 + i,
            applied_version=10 * i + 2,
            variants={variant: ref},
            product_shown={"title": f"Tee {i}", "visibility": "visible", "brand": None},
            variants_shown={variant: {"title": "M", "priceIncl": 20.0, "sku": f"T{i}"}},
        )
        store.links[ecom_id] = VariantLink(variant, parent, 500 + i, ecom_id)
        store.stock[variant] = VariantStockState(
            product_id=variant, ecom_variant_id=ecom_id, last_written=5, revision=2
        )
        variants.append(row)
        products.append(product)
    return FakePos(rows), FakeEcom(variants, products), store


def _reconciler(store: FakeStore, publisher: FakePublisher, **kwargs: Any) -> Reconciler:
    defaults: dict[str, Any] = {"interval": timedelta(hours=24), "pos_page_size": 4, "ecom_page_size": 2}
    return Reconciler(store, publisher, clock=lambda: NOW, new_run_id=lambda: "run1", **{**defaults, **kwargs})


def test_a_synced_shop_is_walked_in_full_once_and_nothing_is_queued() -> None:
    # Given: every family applied, every level as written, no orders
    pos, ecom, store = _synced_shop()
    publisher = FakePublisher()

    # When
    report = _reconciler(store, publisher).reconcile(CONNECTION, XSeriesCatalogWalk(pos), ecom)

    # Then: 12 rows in pages of 4 + the empty end; 6 products and 6 variants in pages of 2 + the empty end each;
    # one order page
    assert report.completed and report.step == "start" and publisher.sent == []
    assert report.pages == {"catalog": 4, "products": 4, "variants": 4, "orders": 1}
    assert (report.pos_calls, report.ecom_calls) == (4, 9)
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

    report = _reconciler(store, publisher).reconcile(CONNECTION, XSeriesCatalogWalk(pos), ecom)

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
    ticks = iter([True] * 10 + [False])  # ten pages (catalog 4, products 4, variants 2), then time is up

    first = _reconciler(store, publisher).reconcile(CONNECTION, XSeriesCatalogWalk(pos), ecom, lambda: next(ticks))

    assert not first.completed and first.stopped is not None and "out of time" in first.stopped
    assert (first.phase, first.cursor) == ("variants", "1003")
    assert ecom.since_ids == [None, 1001]

    second = _reconciler(store, publisher).reconcile(CONNECTION, XSeriesCatalogWalk(pos), ecom)

    assert second.step == "continue" and second.completed
    assert ecom.since_ids == [None, 1001, 1003, 1005]  # picked up after the last page read, not from the start
    assert pos.afters.count(None) == 1  # the catalog was not read again


def test_a_throttled_page_stops_the_invocation_and_keeps_the_checkpoint() -> None:
    pos, ecom, store = _synced_shop()
    ecom.throttle_variants_after = 1
    publisher = FakePublisher()

    report = _reconciler(store, publisher).reconcile(CONNECTION, XSeriesCatalogWalk(pos), ecom)

    assert report.stopped is not None and report.stopped.startswith("throttled")
    assert (store.checkpoint.phase, store.checkpoint.cursor) == ("variants", "1001")


def test_a_full_queue_holds_the_run_until_it_drains() -> None:
    pos, ecom, store = _synced_shop()
    publisher = FakePublisher(depth={"products": 500})

    report = _reconciler(store, publisher, max_backlog=500).reconcile(CONNECTION, XSeriesCatalogWalk(pos), ecom)

    assert report.stopped == "products queue is full: resumes from the checkpoint as it drains"
    assert pos.calls == 0 and store.checkpoint.phase == "catalog"


def test_a_completed_run_waits_for_the_interval_and_a_lost_race_stops_quietly() -> None:
    pos, ecom, store = _synced_shop()
    store.checkpoint = ReconcileCheckpoint(run_id="r0", completed_at=NOW - timedelta(hours=2), revision=3)
    publisher = FakePublisher()

    idle = _reconciler(store, publisher).reconcile(CONNECTION, XSeriesCatalogWalk(pos), ecom)

    assert idle.step == "idle" and idle.next_due == NOW + timedelta(hours=22) and pos.calls == 0

    class Racing(FakeStore):
        def save_checkpoint(self, connection_id: str, loaded_revision: int, checkpoint: ReconcileCheckpoint) -> None:
            raise Conflict("another invocation")

    raced = _reconciler(Racing(), publisher).reconcile(CONNECTION, XSeriesCatalogWalk(pos), ecom, force=True)

    assert raced.stopped is not None and pos.calls == 0


def test_one_connection_failing_never_stops_the_others() -> None:
    pos, ecom, store = _synced_shop()
    other = CONNECTION.model_copy(update={"connection_id": "other"})

    def clients(connection: Connection) -> tuple[XSeriesCatalogWalk, FakeEcom]:
        if connection.connection_id == "other":
            raise Conflict("no secret")
        return XSeriesCatalogWalk(pos), ecom

    summary = reconcile_connections([other, CONNECTION], _reconciler(store, FakePublisher()), clients, lambda: True)

    assert summary.failures == {"other": "no secret"}
    assert [r.connection_id for r in summary.reports] == ["shop"] and summary.pages == 13


def test_the_orders_phase_walks_by_since_id_and_checkpoints_the_next_id() -> None:
    pos, ecom, store = _synced_shop()
    ecom.orders = [{"id": 7000 + n} for n in range(1, 6)]  # pages of 2: 2, 2, 1
    publisher = FakePublisher()

    report = _reconciler(store, publisher).reconcile(CONNECTION, XSeriesCatalogWalk(pos), ecom)

    assert report.completed and report.pages["orders"] == 3
    assert ecom.order_since_ids == [None, 7002, 7004]
    assert {o.message.entity_id for o in publisher.sent if o.message.concern == "orders"} == {
        str(7000 + n) for n in range(1, 6)
    }


def test_a_hand_edit_of_pos_owned_content_in_ecom_queues_its_family_with_the_fields() -> None:
    # Given: a synced shop where the merchant edited, by hand in eCom, the title of product 501 and the price of
    # variant 1003; changed only eCom-owned fields elsewhere (compare-at price, long content); and added a variant
    # of their own to product 504 and a product of their own
    pos, ecom, store = _synced_shop()
    ecom.products[1]["title"] = "Tee 1 SALE"
    ecom.variants[3]["priceIncl"] = 9.99
    ecom.variants[2]["oldPriceIncl"] = 30.0
    ecom.products[2]["content"] = "<p>long text</p>"
    ecom.variants.append({"id": 2000, "stockLevel": 1, "title": "XL", "priceIncl": 1.0, "sku": ""})
    ecom.products.append({"id": 900, "title": "Gift card", "visibility": "visible", "brand": False})
    publisher = FakePublisher()

    # When: one full run
    report = _reconciler(store, publisher).reconcile(CONNECTION, XSeriesCatalogWalk(pos), ecom)

    # Then: exactly the two edited families are queued for catalog sync, each with the fields eCom changed
    found = {o.message.entity_id: o.message.payload for o in publisher.sent}
    assert set(found) == {"p1", "p3"}
    assert found["p1"]["reconcile"] == found["p3"]["reconcile"] == "catalog_content"
    assert found["p1"]["fields"] == ["title"] and found["p3"]["fields"] == {"1003": ["priceIncl"]}
    assert all(o.message.concern == "products" and o.message.group_key == o.message.entity_id for o in publisher.sent)
    assert report.run_drift == {"catalog_content": 2}


def test_a_family_synced_before_baselines_were_kept_is_not_compared_until_its_next_write() -> None:
    # Given: states without eCom's answers recorded (synced by an older release), and content that differs
    pos, ecom, store = _synced_shop(2)
    for key, state in store.catalog.items():
        store.catalog[key] = state.model_copy(update={"product_shown": {}, "variants_shown": {}})
    ecom.products[0]["title"] = "Renamed"
    ecom.variants[1]["priceIncl"] = 1.0
    publisher = FakePublisher()

    # When
    report = _reconciler(store, publisher).reconcile(CONNECTION, XSeriesCatalogWalk(pos), ecom)

    # Then: nothing to compare with, so nothing is queued (a flood of rewrites after an upgrade would blow the budget)
    assert report.completed and publisher.sent == []


def test_the_drift_report_names_every_kind_and_the_whole_runs_totals() -> None:
    pos, ecom, store = _synced_shop()
    ecom.variants[0]["stockLevel"] = 9
    ecom.products[1]["title"] = "Renamed in eCom"

    report = _reconciler(store, FakePublisher()).reconcile(CONNECTION, XSeriesCatalogWalk(pos), ecom)
    drift = report.drift_report()

    assert drift["completed"] is True and set(drift["found"]) == set(drift["run_found"]) == set(DRIFT_KINDS)
    assert {k: n for k, n in drift["run_found"].items() if n} == {"catalog_content": 1, "stock_differs": 1}
    assert drift["run_pages"] == {"catalog": 4, "products": 4, "variants": 4, "orders": 1}


def test_a_dry_run_finds_what_a_real_run_queues_but_queues_nothing_and_never_moves_the_checkpoint() -> None:
    pos, ecom, store = _synced_shop()
    pos.rows[1]["version"] = 99  # changed in the POS, its webhook lost
    ecom.variants[2]["stockLevel"] = 40  # a hand edit in eCom
    ecom.products[1]["title"] = "Tee 1 SALE"
    checkpoint_before = store.get_checkpoint(CONNECTION.connection_id)

    preview = preview_drift(store, CONNECTION, XSeriesCatalogWalk(pos), ecom)

    assert store.saves == 0 and store.get_checkpoint(CONNECTION.connection_id) == checkpoint_before
    publisher = FakePublisher()
    real = _reconciler(store, publisher).reconcile(CONNECTION, XSeriesCatalogWalk(pos), ecom)
    queued = sorted((o.message.concern, o.message.entity_id) for o in publisher.sent)
    assert sorted((f.concern, f.entity_id) for f in preview.findings) == queued  # the same findings
    assert {k: n for k, n in preview.report.run_drift.items() if n} == real.run_drift
    assert preview.report.completed and preview.report.pos_calls >= 1
