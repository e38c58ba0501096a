"""The change poller's messages: one per product family and page on the products feed, one per row elsewhere."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pos_ecom_sync.connectors.ecom import OrderPage
from pos_ecom_sync.errors import RateLimited
from pos_ecom_sync.intake.poller import ChangePoller, poll_connections
from pos_ecom_sync.intake.rows import MAX_MESSAGE_BYTES
from pos_ecom_sync.models.connection import Connection
from pos_ecom_sync.models.feeds import Cursor, SkippedRow
from pos_ecom_sync.models.messages import ChangeMessage, Concern
from pos_ecom_sync.profiles.xseries.feeds import XSeriesFeeds
from pos_ecom_sync.queues import Outgoing

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
    poller.poll(CONNECTION, XSeriesFeeds(feeds), feeds)
    return publisher


def test_a_page_holding_a_family_queues_one_message_for_it_carrying_its_newest_row() -> None:
    gone = _row("v-3", 15, PARENT, deleted=True)  # a variant deleted in the POS, the family's newest row here
    rows = [_row(PARENT, 10), _row("v-1", 11, PARENT), _row(STANDALONE, 12), _row("v-2", 13, PARENT), gone]
    feeds, publisher, cursors = Feeds({"products": rows}), Publisher(), Cursors()

    report = ChangePoller(cursors, publisher, clock=lambda: NOW).poll(CONNECTION, XSeriesFeeds(feeds), feeds)

    family, standalone = publisher.messages("product")
    # product_sync re-reads the whole family of the id it is given (deleted rows included): the family's parent.
    assert (family.entity_id, family.group_key, family.version) == (PARENT, PARENT, 15)
    assert family.updated_at == gone["updated_at"]
    # Ids, versions and stamps of the newest row, never the row itself (its other fields stay with the vendor).
    assert family.payload == {k: gone[k] for k in ("id", "variant_parent_id", "version", "updated_at", "deleted_at")}
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

    report = ChangePoller(cursors, publisher, clock=lambda: NOW).poll(CONNECTION, XSeriesFeeds(feeds), feeds)

    # Three pages of 250/250/100: each starts after the highest id of the last, never at a deep `page`.
    assert feeds.order_since_ids == [None, 5_501_250, 5_501_500]
    assert len({m.entity_id for m in publisher.messages("order")}) == 600
    sweep = next(f for f in report.feeds if f.feed == "ecom:orders")
    assert (sweep.queued, sweep.pages, sweep.stopped) == (600, 3, None)
    assert sweep.cursor is not None and cursors.values["ecom:orders"] == sweep.cursor  # moved once, after the sweep


# -- poison rows: skipped, parked, passed by the cursor; one connection's failure is its own -----------------------


@dataclass
class Parked:
    rows: list[tuple[str, SkippedRow]] = field(default_factory=list)

    def park(self, connection_id: str, rows: Sequence[SkippedRow]) -> None:
        self.rows.extend((connection_id, row) for row in rows)


@dataclass
class _EnvelopePage:
    """A page as X-Series answers it: rows plus the `version.max` envelope the cursor moves to."""

    items: list[dict[str, Any]]
    max_version: int | None


@dataclass
class PagedFeeds:
    """One fixed page per POS feed (served while the cursor is below its max version) and a list of eCom orders."""

    pages: dict[str, _EnvelopePage]
    orders: list[dict[str, Any]] = field(default_factory=list)

    def list_changes(
        self, resource: str, after: int | None, page_size: int = 200, include_deleted: bool = True
    ) -> _EnvelopePage:
        page = self.pages.get(resource)
        if page is None or page.max_version is None or (after is not None and after >= page.max_version):
            return _EnvelopePage([], None)
        return page

    def list_price_book_product_changes(self, after: int | None, page_size: int = 200) -> _EnvelopePage:
        return self.list_changes("price_book_products", after, page_size)

    def list_orders(self, updated_at_min: datetime | None, since_id: int | None = None, limit: int = 250) -> OrderPage:
        return OrderPage(list(self.orders) if since_id is None else [], None)


@dataclass
class Links:
    """The cursor store plus the variant links the price-book feed asks for (none: every product is its family)."""

    cursors: Cursors = field(default_factory=Cursors)

    def get_cursor(self, connection_id: str, feed: str) -> Cursor:
        return self.cursors.get_cursor(connection_id, feed)

    def advance_cursor(self, connection_id: str, cursor: Cursor, new_value: str) -> bool:
        return self.cursors.advance_cursor(connection_id, cursor, new_value)

    def variant_link(
        self, connection_id: str, *, pos_product_id: str | None = None, ecom_variant_id: int | None = None
    ) -> None:
        return None


def _poison_poll(feeds: PagedFeeds, connection: Connection = CONNECTION) -> tuple[Publisher, Parked, Links, Any]:
    publisher, parked, store = Publisher(), Parked(), Links()
    report = ChangePoller(store, publisher, parked=parked, clock=lambda: NOW).poll(
        connection, XSeriesFeeds(feeds), feeds
    )
    return publisher, parked, store, report


def test_a_product_with_a_300_kb_description_queues_a_message_of_ids_that_ten_times_over_fits_an_sqs_batch() -> None:
    rows = [{**_row(f"s-{n}", 10 + n), "description": "x" * 300_000, "name": "Poster \udcff"} for n in range(10)]
    publisher, parked, store, _ = _poison_poll(PagedFeeds({"products": _EnvelopePage(rows, 19)}))

    bodies = [o.message.model_dump_json().encode() for o in publisher.sent]
    assert len(bodies) == 10 and not parked.rows
    assert sum(len(b) for b in bodies) < 10 * MAX_MESSAGE_BYTES < 256 * 1024  # one SendMessageBatch, by construction
    assert all(b"xxxx" not in b and b"Poster" not in b for b in bodies)  # neither the description nor the name
    assert store.cursors.values["pos:products"] == "19"


def test_rows_that_cannot_be_handled_are_skipped_parked_and_passed_by_the_cursor_and_the_rest_is_queued() -> None:
    products = [
        _row("good-1", 10),
        {**_row("x", 11), "id": None},  # no id
        {**_row("x", 12), "id": "bad-\udcff"},  # a lone surrogate: cannot be encoded
        {**_row("bad-version", 13), "version": "²"},  # digits Python's isdigit() accepts, int() refuses
        {**_row("huge-version", 14), "version": 10**5000},  # str() of it raises
        {**_row("bool-version", 15), "version": True},
        {**_row("object-id", 16), "id": {"nested": 1}},
        {**_row("noncharacter-\uffff", 17)},  # a message SQS refuses
        _row("good-2", 18),
    ]
    inventory = [
        {"id": "i-1", "product_id": "v-1", "outlet_id": "o-1", "version": 30, "inventory_level": 3},
        {"id": "i-2", "outlet_id": "o-1", "version": 31, "inventory_level": 4},  # no product_id
    ]
    sales = [{"id": "sale-1", "version": 40, "updated_at": 12345}, {"id": "sale-2", "version": -1}]
    feeds = PagedFeeds(
        {
            "products": _EnvelopePage(products, 18),
            "inventory": _EnvelopePage(inventory, 31),
            "sales": _EnvelopePage(sales, 41),
        }
    )

    publisher, parked, store, report = _poison_poll(feeds)

    assert [m.entity_id for m in publisher.messages("product")] == ["good-1", "good-2"]
    assert [m.entity_id for m in publisher.messages("inventory")] == ["v-1"]
    [sale] = publisher.messages("sale")
    assert (sale.entity_id, sale.updated_at) == ("sale-1", None)  # a stamp that is no string is left out
    assert {(row.feed, row.row_id, row.reason) for _, row in parked.rows} == {
        ("pos:products", "None", "no id"),
        ("pos:products", "bad-\\udcff", "id holds character U+DCFF, which no id may hold"),
        ("pos:products", "bad-version", "version is not an integer: \\xb2"),
        ("pos:products", "huge-version", "version is an integer out of range"),
        ("pos:products", "bool-version", "version is not an integer: True"),
        ("pos:products", "<dict>", "id is a dict, not a string"),
        ("pos:products", "noncharacter-\\uffff", "id holds character U+FFFF, which no id may hold"),
        ("pos:inventory", "None", "no product_id"),
        ("pos:sales", "sale-2", "version is an integer out of range"),
    }
    assert all(cid == "shop" for cid, _ in parked.rows)
    # Every cursor moved past its poison rows: they never stall the feed, and the next poll does not park them again.
    assert {feed: store.cursors.values[feed] for feed in ("pos:products", "pos:inventory", "pos:sales")} == {
        "pos:products": "18",
        "pos:inventory": "31",
        "pos:sales": "41",
    }
    assert len(report.skipped) == len(parked.rows) == 9
    publisher2, parked2 = Publisher(), Parked()
    ChangePoller(store, publisher2, parked=parked2, clock=lambda: NOW).poll(CONNECTION, XSeriesFeeds(feeds), feeds)
    assert not parked2.rows and not publisher2.messages("product")


def test_an_order_that_cannot_be_handled_is_parked_and_a_garbled_or_future_stamp_never_moves_the_sweep() -> None:
    stamp = "2026-11-22T08:30:00+00:00"
    customer = {"email": "ann@example.com", "firstname": "Ann", "addressBillingStreet": "Main Street 1"}
    orders = [
        {"id": 5_501_001, "number": "ORD-1", "createdAt": stamp, "updatedAt": stamp, **customer},
        {"id": "²", "updatedAt": stamp},  # an id that is no integer
        {"id": 5_501_003, "updatedAt": "9999-12-31T00:00:00+00:00"},  # a stamp far in the future
        {"id": 5_501_004, "updatedAt": "not a date"},
    ]
    created = CONNECTION.model_copy(update={"created_at": NOW - timedelta(days=1)})
    publisher, parked, store, report = _poison_poll(PagedFeeds({}, orders=orders), created)

    imports = [m for m in publisher.messages("order") if m.concern == "orders"]
    assert [m.entity_id for m in imports] == ["5501001", "5501003", "5501004"]
    # Ids, number and stamp: never the customer (the worker reads the order).
    assert imports[0].payload == {"id": 5_501_001, "number": "ORD-1", "updatedAt": stamp}
    assert [(row.feed, row.row_id) for _, row in parked.rows] == [("ecom:orders", "\\xb2")]
    assert parked.rows[0][1].reason.startswith("id is not a positive integer")
    sweep = next(f for f in report.feeds if f.feed == "ecom:orders")
    assert sweep.queued == 3 and len(sweep.skipped) == 1
    # The future stamp counts as now: orders placed after this poll are still found by the next sweep.
    assert store.cursors.values["ecom:orders"] == NOW.isoformat()


def test_an_online_price_book_entry_that_cannot_be_handled_is_parked_and_other_books_entries_are_not_ours() -> None:
    online = CONNECTION.model_copy(update={"online_price_book_id": "book-online"})
    entries: list[dict[str, Any]] = [
        {"id": "e-1", "product_id": "v-1", "price_book_id": "book-online", "version": 50},
        {"id": "e-2", "product_id": "v-2", "price_book_id": "book-online", "version": "x"},
        {"id": "e-3", "product_id": None, "price_book_id": "book-online", "version": 52},
        {"id": "e-4", "product_id": None, "price_book_id": "book-other", "version": "garbled"},
    ]
    feeds = PagedFeeds({"price_book_products": _EnvelopePage(entries, 53)})
    publisher, parked, store, _ = _poison_poll(feeds, online)

    assert [m.entity_id for m in publisher.messages("product")] == ["v-1"]
    assert {(row.row_id, row.reason) for _, row in parked.rows} == {
        ("v-2", "version is not an integer: x"),
        ("None", "no product_id"),
    }
    assert store.cursors.values["pos:price_book_products"] == "53"


@dataclass
class Boom:
    """A POS client that fails the way nobody foresaw (not a SyncError)."""

    def list_changes(self, *args: Any, **kwargs: Any) -> Any:
        raise UnicodeEncodeError("utf-8", "\udcff", 0, 1, "surrogates not allowed")


def test_one_connections_unforeseen_failure_is_recorded_and_the_next_connection_is_still_polled() -> None:
    first = CONNECTION.model_copy(update={"connection_id": "first"})
    second = CONNECTION.model_copy(update={"connection_id": "second"})
    healthy = Feeds({"products": [_row(STANDALONE, 5)]})
    publisher = Publisher()
    poller = ChangePoller(Cursors(), publisher, clock=lambda: NOW)

    def clients(connection: Connection) -> tuple[Any, Any]:
        pos = XSeriesFeeds(Boom() if connection.connection_id == "first" else healthy)
        return pos, healthy

    summary = poll_connections([first, second], poller, clients, lambda: True)

    assert list(summary.failures) == ["first"]
    assert summary.failures["first"].startswith("UnicodeEncodeError: ")
    assert isinstance(summary.errors["first"], UnicodeEncodeError)
    assert [r.connection_id for r in summary.reports] == ["second"]
    assert [m.connection_id for m in publisher.messages("product")] == ["second"]


@dataclass(frozen=True)
class _MovedCursor(Cursor):
    moved_at: float | None = None  # epoch seconds of the cursor's last advance, as the store records it


@dataclass
class _ThrottledFeeds(Feeds):
    """Every read refused by the rate budget."""

    def list_changes(
        self, resource: str, after: int | None, page_size: int = 200, include_deleted: bool = True
    ) -> _Page:
        raise RateLimited("xseries", NOW.timestamp() + 60)

    def list_orders(self, updated_at_min: datetime | None, since_id: int | None = None, limit: int = 250) -> OrderPage:
        raise RateLimited("ecom", NOW.timestamp() + 60)


def test_feeds_read_to_their_end_have_no_poll_lag_however_old_their_cursors() -> None:
    feeds = Feeds({"products": [_row(PARENT, 10)]}, orders=[])
    cursors = Cursors({"ecom:orders": (NOW - timedelta(days=3)).isoformat(), "pos:inventory": "5"})
    summary = poll_connections(
        [CONNECTION],
        ChangePoller(cursors, Publisher(), clock=lambda: NOW),
        lambda c: (XSeriesFeeds(feeds), feeds),
        lambda: True,
    )
    assert summary.lag_s == 0.0
    assert all(f["lag_s"] == 0 for f in summary.as_dict()["connections"]["shop"].values())


def test_a_throttled_order_sweep_lags_by_the_age_of_its_cursor() -> None:
    feeds = _ThrottledFeeds({})
    cursors = Cursors({"ecom:orders": (NOW - timedelta(minutes=40)).isoformat()})
    report = ChangePoller(cursors, Publisher(), clock=lambda: NOW).poll(CONNECTION, XSeriesFeeds(feeds), feeds)
    orders = next(f for f in report.feeds if f.feed == "ecom:orders")
    assert orders.stopped == "throttled" and orders.lag_s == 40 * 60
    assert report.lag_s == 40 * 60


def test_a_pos_feed_stopped_early_lags_by_the_time_since_its_cursor_last_moved() -> None:
    class Moved(Cursors):
        def get_cursor(self, connection_id: str, feed: str) -> Cursor:
            if feed == "ecom:orders":
                return Cursor(feed, NOW.isoformat())
            return _MovedCursor(feed, "7", moved_at=(NOW - timedelta(minutes=25)).timestamp())

    feeds = _ThrottledFeeds({})
    report = ChangePoller(Moved(), Publisher(), clock=lambda: NOW).poll(CONNECTION, XSeriesFeeds(feeds), feeds)
    products = next(f for f in report.feeds if f.feed == "pos:products")
    assert products.stopped == "throttled" and products.lag_s == 25 * 60


def test_a_pos_feed_out_of_time_before_its_first_page_lags_at_least_since_the_run_started() -> None:
    times = [NOW, NOW + timedelta(seconds=50)]  # the run's start, then every later reading

    def clock() -> datetime:
        return times.pop(0) if len(times) > 1 else times[0]

    feeds = Feeds({})
    cursors = Cursors({"pos:products": "7", "ecom:orders": NOW.isoformat()})
    report = ChangePoller(cursors, Publisher(), clock=clock).poll(
        CONNECTION, XSeriesFeeds(feeds), feeds, has_time=lambda: False
    )
    products = next(f for f in report.feeds if f.feed == "pos:products")
    assert products.stopped == "out of time" and products.lag_s == 50
