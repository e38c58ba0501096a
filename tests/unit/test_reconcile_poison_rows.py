"""Reconciliation pages holding rows it cannot handle: each such row is skipped and parked, the phase goes on, and a
connection failing in a way nobody foresaw never stops the others."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pos_ecom_sync.models.connection import Connection
from pos_ecom_sync.models.feeds import SkippedRow
from pos_ecom_sync.profiles.xseries.catalog_walk import XSeriesCatalogWalk
from pos_ecom_sync.reconcile.service import reconcile_connections

from tests.unit.test_reconciler import CONNECTION, FakeEcom, FakePos, FakePublisher, Page, _reconciler, _synced_shop


@dataclass
class Parked:
    rows: list[tuple[str, SkippedRow]] = field(default_factory=list)

    def park(self, connection_id: str, rows: Sequence[SkippedRow]) -> None:
        self.rows.extend((connection_id, row) for row in rows)


@dataclass
class PoisonedPos(FakePos):
    """The first catalog page also lists `poison` (rows the fake's version ordering cannot sort)."""

    poison: list[dict[str, Any]] = field(default_factory=list)

    def list_changes(
        self, resource: str, after: int | None, page_size: int = 200, include_deleted: bool = True
    ) -> Page:
        page = super().list_changes(resource, after, page_size, include_deleted)
        return Page(page.items + self.poison, page.max_version) if after is None else page


@dataclass
class PoisonedEcom(FakeEcom):
    """The first products page also lists `poison` (rows the fake's id ordering cannot sort)."""

    poison: list[dict[str, Any]] = field(default_factory=list)

    def list_products_since(self, since_id: int | None, limit: int = 250) -> list[dict[str, Any]]:
        rows = super().list_products_since(since_id, limit)
        return rows + self.poison if since_id is None else rows


def test_rows_a_compare_page_cannot_handle_are_parked_and_every_phase_completes() -> None:
    pos, ecom, store = _synced_shop()
    poisoned = PoisonedPos(
        pos.rows,
        poison=[
            {"id": "p-\udcff", "version": 3},  # a lone surrogate in the id
            {"id": "p-sup", "version": "²"},  # a version int() refuses
            {"id": "p-\uffff", "version": 4},  # a missing family whose message SQS would refuse
        ],
    )
    ecom = PoisonedEcom(ecom.variants, ecom.products, poison=[{"id": "x"}])
    ecom.products[0]["brand"] = {"resource": "oops"}  # makes the content rule raise for this row alone
    ecom.variants[1]["priceIncl"] = 10**400  # no float holds it: the content rule raises for this row alone
    ecom.variants[1]["stockLevel"] = 9  # ... while its stock is still compared
    ecom.variants.append({"id": 10**30, "stockLevel": 1})
    ecom.orders = [{"id": 7001}, {"id": True}]
    publisher, parked = FakePublisher(), Parked()

    report = _reconciler(store, publisher, parked=parked).reconcile(CONNECTION, XSeriesCatalogWalk(poisoned), ecom)

    assert report.completed and set(report.pages) == {"catalog", "products", "variants", "orders"}
    assert {(row.feed, row.row_id, row.reason) for _, row in parked.rows} == {
        ("reconcile:catalog", "p-\\udcff", "id holds character U+DCFF, which no id may hold"),
        ("reconcile:catalog", "p-sup", "version is not an integer: \\xb2"),
        ("reconcile:catalog", "p-\\uffff", "id holds character U+FFFF, which no id may hold"),
        ("reconcile:products", "500", "cannot be compared (AttributeError)"),
        ("reconcile:products", "x", "id is not a positive integer: x"),
        ("reconcile:variants", "1001", "cannot be compared (OverflowError)"),
        ("reconcile:variants", "<integer of 100 bits>", "id is not a positive integer: <integer of 100 bits>"),
        ("reconcile:orders", "True", "id is not a positive integer: True"),
    }
    assert len(report.skipped) == len(parked.rows) == 8
    # The other rows of those pages were still compared: variant 1001's stock, order 7001.
    sent = {(o.message.concern, o.message.entity_id) for o in publisher.sent}
    assert sent == {("stock", "1001"), ("orders", "7001")}
    assert report.run_drift == {"stock_differs": 1, "order_missing": 1}


def test_a_missing_orders_message_names_the_order_and_carries_no_customer_data() -> None:
    pos, ecom, store = _synced_shop(1)
    ecom.orders = [{"id": 7001, "number": "ORD-7001", "updatedAt": "2026-11-22T08:00:00+00:00", "email": "a@b.c"}]
    publisher = FakePublisher()

    _reconciler(store, publisher).reconcile(CONNECTION, XSeriesCatalogWalk(pos), ecom)

    [order] = [o.message for o in publisher.sent if o.message.concern == "orders"]
    assert order.payload == {"id": 7001, "number": "ORD-7001", "updatedAt": "2026-11-22T08:00:00+00:00"}


def test_a_connection_failing_in_a_way_nobody_foresaw_is_recorded_and_the_next_one_still_runs() -> None:
    pos, ecom, store = _synced_shop()
    other = CONNECTION.model_copy(update={"connection_id": "other"})

    class Broken(FakeEcom):
        def list_products_since(self, since_id: int | None, limit: int = 250) -> list[dict[str, Any]]:
            raise KeyError("data")

    def clients(connection: Connection) -> tuple[XSeriesCatalogWalk, FakeEcom]:
        walk = XSeriesCatalogWalk(pos)
        return (walk, Broken(ecom.variants)) if connection.connection_id == "other" else (walk, ecom)

    summary = reconcile_connections([other, CONNECTION], _reconciler(store, FakePublisher()), clients, lambda: True)

    assert summary.failures == {"other": "KeyError: 'data'"} and isinstance(summary.errors["other"], KeyError)
    assert [r.connection_id for r in summary.reports] == ["shop"]
