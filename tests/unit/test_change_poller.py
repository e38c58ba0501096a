"""The change poller's messages: one per product family and page on the products feed, one per row elsewhere."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pos_ecom_sync.connectors.ecom import OrderPage
from pos_ecom_sync.intake.poller import ChangePoller
from pos_ecom_sync.models.connection import Connection
from pos_ecom_sync.models.messages import ChangeMessage, Concern
from pos_ecom_sync.queues import Outgoing
from pos_ecom_sync.state.store import Cursor

CONNECTION = Connection(
    connection_id="shop", pos_base_url="https://x.retail.lightspeed.app", ecom_base_url="https://api.webshopapp.com"
)
NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
PARENT, STANDALONE = "p-1", "s-1"


def _row(row_id: str, version: int, parent: str | None = None, deleted: bool = False) -> dict[str, Any]:
    return {
        "id": row_id,
        "variant_parent_id": parent,
        "family_id": f"fam-{parent or row_id}",
        "version": version,
        "updated_at": f"2026-11-22T08:{version % 60:02d}:00+00:00",
        "deleted_at": "2026-11-22T08:59:00+00:00" if deleted else None,
    }


@dataclass
class _Page:
    items: list[dict[str, Any]]

    @property
    def max_version(self) -> int | None:
        return max((int(r["version"]) for r in self.items), default=None)


@dataclass
class Feeds:
    """An X-Series change feed (rows ordered by version) and an eCom order feed (by `since_id`, ids ascending)."""

    rows: dict[str, list[dict[str, Any]]]
    orders: list[dict[str, Any]] = field(default_factory=list)
    order_since_ids: list[int | None] = field(default_factory=list)

    def list_changes(
        self, resource: str, after: int | None, page_size: int = 200, include_deleted: bool = True
    ) -> _Page:
        rows = [r for r in self.rows.get(resource, []) if after is None or int(r["version"]) > after]
        return _Page(rows[:page_size])

    def list_orders(self, updated_at_min: datetime | None, since_id: int | None = None, limit: int = 250) -> OrderPage:
        self.order_since_ids.append(since_id)
        rows = [o for o in self.orders if since_id is None or o["id"] > since_id][:limit]
        return OrderPage(rows, rows[-1]["id"] if len(rows) == limit else None)


@dataclass
class Cursors:
    values: dict[str, str] = field(default_factory=dict)
    refuse: bool = False  # stands for a poller that dies before moving the cursor: the page is queued again

    def get_cursor(self, connection_id: str, feed: str) -> Cursor:
        return Cursor(feed, self.values.get(feed))

    def advance_cursor(self, connection_id: str, cursor: Cursor, new_value: str) -> bool:
        if self.refuse:
            return False
        self.values[cursor.feed] = new_value
        return True


@dataclass
class Publisher:
    sent: list[Outgoing] = field(default_factory=list)

    def publish(self, outgoing: Sequence[Outgoing]) -> int:
        self.sent.extend(outgoing)
        return len(outgoing)

    def backlog(self, concern: Concern) -> int:
        return 0

    def messages(self, entity: str) -> list[ChangeMessage]:
        return [o.message for o in self.sent if o.message.entity == entity]


def _poll(rows: dict[str, list[dict[str, Any]]], page_size: int = 200, cursors: Cursors | None = None) -> Publisher:
    feeds, publisher = Feeds(rows), Publisher()
    poller = ChangePoller(cursors or Cursors(), publisher, page_size=page_size, clock=lambda: NOW)
    poller.poll(CONNECTION, feeds, feeds)
    return publisher


def test_a_page_holding_a_family_queues_one_message_for_it_carrying_its_newest_row() -> None:
    gone = _row("v-3", 15, PARENT, deleted=True)  # a variant deleted in the POS, the family's newest row here
    rows = [_row(PARENT, 10), _row("v-1", 11, PARENT), _row(STANDALONE, 12), _row("v-2", 13, PARENT), gone]
    feeds, publisher, cursors = Feeds({"products": rows}), Publisher(), Cursors()

    report = ChangePoller(cursors, publisher, clock=lambda: NOW).poll(CONNECTION, feeds, feeds)

    family, standalone = publisher.messages("product")
    # product_sync re-reads the whole family of the id it is given (deleted rows included): the family's parent.
    assert (family.entity_id, family.group_key, family.version) == (PARENT, PARENT, 15)
    assert family.updated_at == gone["updated_at"] and family.payload == gone
    assert family.message_group_id == "shop:pos:product:p-1" and family.concern == "products"
    assert (standalone.entity_id, standalone.group_key, standalone.version) == (STANDALONE, STANDALONE, 12)
    products = next(f for f in report.feeds if f.feed == "pos:products")
    assert (products.queued, products.rows, products.cursor) == (2, 5, "15")


def test_a_variant_only_change_queues_its_family() -> None:
    [message] = _poll({"products": [_row("v-2", 40, PARENT)]}).messages("product")
    assert (message.entity_id, message.group_key, message.version) == (PARENT, PARENT, 40)
    assert message.payload["id"] == "v-2"


def test_a_page_queued_again_deduplicates_as_the_first_time() -> None:
    rows = {"products": [_row(PARENT, 10), _row("v-1", 11, PARENT), _row("v-2", 13, PARENT)]}
    first = _poll(rows, cursors=Cursors(refuse=True))
    again = _poll(rows, cursors=Cursors(refuse=True))
    assert [o.message.deduplication_id(o.delivery_key) for o in first.sent] == [
        o.message.deduplication_id(o.delivery_key) for o in again.sent
    ]
    assert len(first.sent) == 1


def test_a_family_split_by_a_page_boundary_gets_a_message_on_each_page() -> None:
    rows = [_row(PARENT, 10), _row("v-1", 11, PARENT), _row("v-2", 13, PARENT), _row("v-3", 14, PARENT)]
    messages = _poll({"products": rows}, page_size=2).messages("product")
    assert [(m.entity_id, m.version) for m in messages] == [(PARENT, 11), (PARENT, 14)]
    assert len({m.deduplication_id() for m in messages}) == 2  # the later page is never taken for a duplicate


def test_inventory_and_sales_rows_still_queue_one_message_each() -> None:
    inventory = [
        {"id": f"i-{n}", "product_id": "v-1", "outlet_id": f"o-{n}", "version": 20 + n, "inventory_level": n}
        for n in range(3)
    ]
    sales = [{"id": f"sale-{n}", "version": 30 + n, "updated_at": None} for n in range(2)]
    publisher = _poll({"inventory": inventory, "sales": sales})
    assert [m.version for m in publisher.messages("inventory")] == [20, 21, 22]
    assert [m.entity_id for m in publisher.messages("sale")] == ["sale-0", "sale-1"]


def test_the_order_sweep_walks_every_page_by_since_id_and_moves_its_cursor_once() -> None:
    stamp = "2026-11-22T08:30:00+00:00"
    orders = [{"id": 5_501_000 + n, "createdAt": stamp, "updatedAt": stamp} for n in range(1, 601)]
    feeds, publisher, cursors = Feeds({}, orders=orders), Publisher(), Cursors()

    report = ChangePoller(cursors, publisher, clock=lambda: NOW).poll(CONNECTION, feeds, feeds)

    # Three pages of 250/250/100: each starts after the highest id of the last, never at a deep `page`.
    assert feeds.order_since_ids == [None, 5_501_250, 5_501_500]
    assert len({m.entity_id for m in publisher.messages("order")}) == 600
    sweep = next(f for f in report.feeds if f.feed == "ecom:orders")
    assert (sweep.queued, sweep.pages, sweep.stopped) == (600, 3, None)
    assert sweep.cursor is not None and cursors.values["ecom:orders"] == sweep.cursor  # moved once, after the sweep
