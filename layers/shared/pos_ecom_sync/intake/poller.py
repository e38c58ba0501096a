"""The change poller: walks each side's change feed and queues what changed, so nothing is ever missed.

Cursor rule: a cursor moves only after the messages of the page it covers are queued, and only from
the value this poller read (conditional write). A poller killed in between re-queues the page next
time (duplicates are harmless; workers are idempotent); two pollers racing never skip a change.

POS feeds come from the connection's POS profile (`models.feeds.PosFeed`: how to read a page after an opaque
cursor and make its messages), so this walk knows no vendor field; the eCom order sweep is its own, and so is the
eCom category-link sweep (`intake.category_links`) of a connection whose POS takes eCom edits.

The POS customer feed (`PosChangeFeeds.customer_feed`, its own cursor) queues nothing: each poll reads the customers
changed since its cursor and drops the customer email index's entries of those the index knows (reverse items, one
batched read per page) that are gone or no longer hold the indexed address (`orders.customers.stale_index_keys`), so
an order never reuses a customer deleted, merged or changed in the POS. The same walk keeps the customer census
(`orders.customers`): it marks every email a live customer holds, and records each time it reaches the feed's end,
so an order from an email no POS customer holds needs no search. A connection whose census has not begun (new, or
from before the census) walks the feed from its beginning once. Cost: one POS request per poll when nothing
changed, the census's read and its caught-up stamp. At most `CUSTOMER_FEED_MAX_PAGES` pages a poll: a new
connection's first walk of a large customer list is spread over polls instead of spending the POS budget in one.

Poison rows: messages carry ids, versions and stamps (`vendor_payload`), never a row, so no page can exceed an SQS
batch limit. A row that still cannot become a message (no or a garbled id, a version that is no integer...) is
skipped: reported (the handler logs and counts it), parked for the operator (`state.parked_store`) and passed by
the cursor, so it never stalls its feed; one connection's failure never stops the others' poll.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol

from pos_ecom_sync.dates import parse_instant
from pos_ecom_sync.errors import RateLimited, SyncError, safe_text
from pos_ecom_sync.intake.category_links import ECOM_CATEGORY_LINKS_FEED, LinkCursor, link_messages
from pos_ecom_sync.intake.rows import built, message_problem, positive_id, stamp
from pos_ecom_sync.models.connection import Connection
from pos_ecom_sync.models.feeds import ChangePage, Cursor, PosFeed, SkippedRow, VendorRow
from pos_ecom_sync.models.messages import ChangeMessage, Concern, order_status_hint, vendor_payload
from pos_ecom_sync.orders.customers import present_email_keys, stale_index_keys
from pos_ecom_sync.queues import Outgoing
from pos_ecom_sync.status.digest import ecom_order_digest

if TYPE_CHECKING:
    from pos_ecom_sync.models.ledger import CustomerCensus, CustomerFeed
    from pos_ecom_sync.models.links import VariantLink

ECOM_ORDERS_FEED = "ecom:orders"
# Pages of the POS customer feed one poll reads at most (see the module's docstring).
CUSTOMER_FEED_MAX_PAGES = 5


class PosChangeFeeds(Protocol):
    """The connection's POS change feeds (its profile's, see `profiles`)."""

    def change_feeds(
        self, connection: Connection, *, page_size: int, family_of: Callable[[str], str]
    ) -> list[PosFeed]: ...
    def customer_feed(self, connection: Connection, *, page_size: int) -> CustomerFeed: ...


class CustomerIndex(Protocol):
    """The customer email index and census of the order ledger (`state.order_store.OrderStore`)."""

    def indexed_keys(self, connection_id: str, customer_ids: Collection[str]) -> Mapping[str, frozenset[str]]: ...
    def forget_customer(self, connection_id: str, email_key: str, customer_id: str) -> bool: ...
    def customer_census(self, connection_id: str) -> CustomerCensus | None: ...
    def mark_emails_in_pos(self, connection_id: str, email_keys: Collection[str]) -> None: ...
    def census_walked(self, connection_id: str, *, caught_up: bool) -> None: ...


class OrderPageLike(Protocol):
    @property
    def orders(self) -> list[dict[str, Any]]: ...
    @property
    def next_since_id(self) -> int | None: ...


class EcomOrderFeed(Protocol):
    def list_orders(
        self, updated_at_min: datetime | None, since_id: int | None = None, limit: int = 250
    ) -> OrderPageLike: ...


class EcomCategoryLinkFeed(Protocol):
    def list_category_links_since(self, since_id: int | None, limit: int = 250) -> list[dict[str, Any]]: ...


class CursorStore(Protocol):
    def get_cursor(self, connection_id: str, feed: str) -> Cursor: ...
    def advance_cursor(self, connection_id: str, cursor: Cursor, new_value: str) -> bool: ...
    def variant_link(
        self, connection_id: str, *, pos_product_id: str | None = None, ecom_variant_id: int | None = None
    ) -> VariantLink | None: ...


class Publisher(Protocol):
    def publish(self, outgoing: Sequence[Outgoing]) -> int: ...
    def backlog(self, concern: Concern) -> int: ...


class ParkedRows(Protocol):
    def park(self, connection_id: str, rows: Sequence[SkippedRow]) -> None: ...


@dataclass
class FeedReport:
    feed: str
    concern: Concern | None = None  # the queue the feed's changes go to
    queued: int = 0  # changes queued: a POS row, or on the products feed a family per page; an eCom order
    dropped: int = 0  # on the POS customer feed: customer email index entries dropped
    rows: int = 0  # POS feed rows read (more than `queued` when a page holds several rows of one product family)
    pages: int = 0
    cursor: str | None = None
    stopped: str | None = None  # why the feed stopped early (time, throttled, lost race)
    skipped: list[SkippedRow] = field(default_factory=list)  # rows that could not be handled (parked)
    # Poll lag (`PollLagSeconds`): 0 for a feed read to its end (caught up as of this run) or left to another poller
    # or, on the products feed, to the import's pacing (the products queue age alarm watches that). A feed stopped
    # early (throttled, out of time) is behind by: eCom orders, now minus its cursor (the newest `updatedAt` of a
    # finished sweep: later orders may not be queued yet); a POS feed, whose cursor is a version and no time, the
    # seconds since its cursor last moved (`Cursor.moved_at` when the store tells it; otherwise since this run
    # started, a lower bound).
    lag_s: float = 0.0


@dataclass
class PollReport:
    connection_id: str
    feeds: list[FeedReport] = field(default_factory=list)

    @property
    def queued(self) -> int:
        return sum(f.queued for f in self.feeds)

    @property
    def skipped(self) -> list[SkippedRow]:
        return [row for f in self.feeds for row in f.skipped]

    @property
    def lag_s(self) -> float:
        """The lag of this connection's most lagging feed (see FeedReport.lag_s)."""
        return max((f.lag_s for f in self.feeds), default=0.0)


def _order_messages(connection_id: str, order: dict[str, Any], now: datetime) -> list[ChangeMessage]:
    """An order to import (a no-op once imported) and, when it changed after it was placed, a status change: the
    sweep is how a status change whose webhook was lost still reaches the POS. The message names the order (id,
    number, stamp): no customer data, the worker reads the order. Its digest (`ecom_order_digest`) is also its
    `change_key`: eCom stamps whole seconds, so a status changed within the second of the order's last sweep copy is
    not dropped by SQS as a repeat of it."""
    digest = ecom_order_digest(order)
    message = ChangeMessage(
        connection_id=connection_id,
        source="ecom",
        entity="order",
        entity_id=str(positive_id(order)),
        updated_at=stamp(order.get("updatedAt")),
        via="poll",
        received_at=now,
        payload=vendor_payload("ecom", "order", order),
        concern="orders",
        change_key=digest,
        content_digest=digest,
    )
    hint = order_status_hint(message)
    return [message, *([hint] if hint else [])]


def _order_stamp(order: dict[str, Any], now: datetime) -> datetime | None:
    """An order's `updatedAt` for the sweep's cursor; None when it cannot be read. A stamp in the future counts as
    now: one garbled date must not carry the cursor past orders still to come."""
    value = stamp(order.get("updatedAt"))
    try:
        parsed = parse_instant(value) if value else None
    except ValueError:
        return None
    return min(parsed, now) if parsed else None


class ChangePoller:
    def __init__(
        self,
        store: CursorStore,
        publisher: Publisher,
        *,
        page_size: int = 200,
        ecom_overlap: timedelta = timedelta(minutes=2),
        max_products_backlog: int | None = None,
        parked: ParkedRows | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        category_links: Callable[[Connection], EcomCategoryLinkFeed | None] | None = None,
        customers: CustomerIndex | None = None,
    ) -> None:
        self._store = store
        # The customer email index the POS customer feed keeps honest; None: that feed is not read.
        self._customers = customers
        # The connection's eCom category-link reader (on the shared eCom budget, leaving a share to orders and
        # stock), or None when its POS takes no eCom edits: then links are never swept.
        self._category_links = category_links
        self._parked = parked
        # A new connection's product feed is its whole catalog (the initial import). Queueing it only as fast
        # as product_sync drains keeps throttled messages from piling up; the cursor is the import's checkpoint.
        self._max_products_backlog = max_products_backlog
        self._publisher = publisher
        self._page_size = page_size
        self._overlap = ecom_overlap
        self._clock = clock

    def poll(
        self,
        connection: Connection,
        pos: PosChangeFeeds,
        ecom: EcomOrderFeed,
        has_time: Callable[[], bool] = lambda: True,
    ) -> PollReport:
        report = PollReport(connection.connection_id)
        cid = connection.connection_id
        started = self._clock()
        throttled = False
        for feed in self._pos_feeds(connection, pos):
            read = self._poll_pos_feed(cid, feed, has_time, started)
            report.feeds.append(read)
            if read.stopped == "throttled":
                throttled = True
                break  # the POS budget is spent; the other POS feeds would only wait too
        if self._customers is not None and not throttled:
            customers = pos.customer_feed(connection, page_size=self._page_size)
            report.feeds.append(self._poll_customers(connection, customers, has_time, started))
        report.feeds.append(self._poll_ecom_orders(connection, ecom, has_time))
        links = self._category_links(connection) if self._category_links is not None else None
        if links is not None:
            report.feeds.append(self._poll_category_links(connection, links, has_time, started))
        return report

    def _pos_feeds(self, connection: Connection, pos: PosChangeFeeds) -> list[PosFeed]:
        cid = connection.connection_id

        def family_of(product_id: str) -> str:
            link = self._store.variant_link(cid, pos_product_id=product_id)
            return link.family_key if link is not None else product_id

        return pos.change_feeds(connection, page_size=self._page_size, family_of=family_of)

    def _page_messages(
        self, feed: PosFeed, rows: Sequence[VendorRow], now: datetime
    ) -> tuple[list[ChangeMessage], list[SkippedRow]]:
        """The messages of a page's handleable rows, and the rows skipped (each with its reason)."""
        skipped: list[SkippedRow] = []
        good: list[VendorRow] = []
        for row in rows:
            _, problem = built(partial(feed.row_messages, row, now))
            if problem is None:
                good.append(row)
            else:
                skipped.append(SkippedRow.of(feed.name, feed.row_id(row), problem, feed.row_version(row)))
        messages: list[ChangeMessage] = []
        for message in feed.to_messages(good, now):
            problem = message_problem(message)  # every row passed, so a family's message passes too; never sent if not
            if problem is None:
                messages.append(message)
            else:
                skipped.append(SkippedRow.of(feed.name, message.entity_id, problem, message.version))
        return messages, skipped

    def _park(self, connection_id: str, skipped: list[SkippedRow], report: FeedReport) -> None:
        """Record the skipped rows before the cursor passes them (a poller dying in between parks them again: the
        same item is updated)."""
        if skipped and self._parked is not None:
            self._parked.park(connection_id, skipped)
        report.skipped.extend(skipped)

    def _behind_since(self, report: FeedReport, since: datetime) -> FeedReport:
        report.lag_s = max(0.0, (self._clock() - since).total_seconds())
        return report

    def _poll_pos_feed(
        self, connection_id: str, feed: PosFeed, has_time: Callable[[], bool], started: datetime
    ) -> FeedReport:
        cursor = self._store.get_cursor(connection_id, feed.name)
        report = FeedReport(feed=cursor.feed, concern=feed.concern, cursor=cursor.value)
        moved_at = cursor.moved_at  # epoch seconds of its last advance, if known

        def behind() -> FeedReport:
            if report.pages or moved_at is None:  # moved in this run, or the store does not tell: since this run
                return self._behind_since(report, started)
            return self._behind_since(report, min(started, datetime.fromtimestamp(moved_at, UTC)))

        while True:
            if not has_time():
                report.stopped = "out of time"
                return behind()
            if feed.backfill and self._products_backlogged():
                report.stopped = "products queue is full: resumes from this cursor as it drains"
                return report
            try:
                page: ChangePage = feed.read(cursor.value)
            except RateLimited:
                report.stopped = "throttled"
                return behind()
            if not page.rows or page.cursor is None:
                return report
            messages, skipped = self._page_messages(feed, page.rows, self._clock())
            self._park(connection_id, skipped, report)
            self._publisher.publish([Outgoing(message) for message in messages])
            report.queued += len(messages)
            report.rows += len(page.rows)
            report.pages += 1
            new_value = page.cursor
            if not self._store.advance_cursor(connection_id, cursor, new_value):
                report.stopped = "another poller advanced this feed"
                return report
            cursor = Cursor(cursor.feed, new_value)
            report.cursor = new_value
            if not page.more:
                return report

    def _poll_customers(
        self, connection: Connection, feed: CustomerFeed, has_time: Callable[[], bool], started: datetime
    ) -> FeedReport:
        """Drop the index entries of the customers changed since the cursor (see the module's docstring); the cursor
        moves after each page's entries are dropped."""
        customers = self._customers
        assert customers is not None
        cid = connection.connection_id
        cursor = self._store.get_cursor(cid, feed.name)
        report = FeedReport(feed=cursor.feed, cursor=cursor.value)
        # The census walks from the feed's beginning: a cursor older than the census (or from before it existed)
        # is read again from there, while the conditional advance still starts from the stored value.
        begun = customers.customer_census(cid) is not None
        read_from = cursor.value if begun else None
        for _ in range(CUSTOMER_FEED_MAX_PAGES):
            if not has_time():
                report.stopped = "out of time"
                return self._behind_since(report, started)
            try:
                page = feed.read(read_from)
            except RateLimited:
                report.stopped = "throttled"
                return self._behind_since(report, started)
            if page.cursor is None:
                customers.census_walked(cid, caught_up=True)
                return report
            if page.changes:
                indexed = customers.indexed_keys(cid, {change.customer_id for change in page.changes})
                for change in page.changes:
                    for key in sorted(stale_index_keys(change, indexed.get(change.customer_id, ()))):
                        report.dropped += customers.forget_customer(cid, key, change.customer_id)
                customers.mark_emails_in_pos(cid, present_email_keys(page.changes))
            report.rows += len(page.changes)
            report.pages += 1
            if not self._store.advance_cursor(cid, cursor, page.cursor):
                report.stopped = "another poller advanced this feed"
                return report
            cursor = Cursor(cursor.feed, page.cursor)
            read_from = report.cursor = page.cursor
            if not page.more or not begun:  # a walk under way is marked begun once, not at every page
                customers.census_walked(cid, caught_up=not page.more)
                begun = True
            if not page.more:
                return report
        report.stopped = "page cap: resumes from this cursor on the next poll"
        return report

    def _products_backlogged(self) -> bool:
        limit = self._max_products_backlog
        return limit is not None and self._publisher.backlog("products") >= limit

    def _poll_ecom_orders(
        self, connection: Connection, ecom: EcomOrderFeed, has_time: Callable[[], bool]
    ) -> FeedReport:
        """eCom has no version feed: sweep orders updated since the cursor minus an overlap window.

        Pages are walked by `since_id` (ids ascending: deep `page` paging is capped in eCom), not by time, so the
        cursor moves only once the whole sweep is queued.
        """
        cursor = self._store.get_cursor(connection.connection_id, ECOM_ORDERS_FEED)
        report = FeedReport(feed=cursor.feed, concern="orders", cursor=cursor.value)
        start = parse_instant(cursor.value) if cursor.value else connection.created_at
        newest = start
        since = start - self._overlap
        since_id: int | None = None
        limit = 250
        while True:
            if not has_time():
                report.stopped = "out of time"
                return self._behind_since(report, start)
            try:
                page = ecom.list_orders(since, since_id=since_id, limit=limit)
            except RateLimited:
                report.stopped = "throttled"
                return self._behind_since(report, start)
            orders = page.orders
            if orders:
                now = self._clock()
                cid = connection.connection_id
                messages: list[ChangeMessage] = []
                skipped: list[SkippedRow] = []
                for order in orders:
                    made, problem = built(partial(_order_messages, cid, order, now))
                    messages.extend(made)
                    if problem is not None:
                        skipped.append(SkippedRow.of(cursor.feed, order.get("id"), problem))
                self._park(cid, skipped, report)
                self._publisher.publish([Outgoing(m) for m in messages])
                report.queued += len(orders) - len(skipped)
                report.pages += 1
                stamps = [s for s in (_order_stamp(o, now) for o in orders) if s is not None]
                newest = max([newest, *stamps])
            if page.next_since_id is None:
                break
            since_id = page.next_since_id
        if newest > start or cursor.value is None:
            new_value = newest.isoformat()
            if self._store.advance_cursor(connection.connection_id, cursor, new_value):
                report.cursor = new_value
            else:
                report.stopped = "another poller advanced this feed"
        return report

    def _poll_category_links(
        self, connection: Connection, feed: EcomCategoryLinkFeed, has_time: Callable[[], bool], started: datetime
    ) -> FeedReport:
        """New eCom category links since the last one seen, by id (`intake.category_links`); the cursor moves after
        each page is queued. A first sweep only walks to the newest existing link."""
        cid = connection.connection_id
        cursor = self._store.get_cursor(cid, ECOM_CATEGORY_LINKS_FEED)
        report = FeedReport(feed=cursor.feed, concern="products", cursor=cursor.value)
        at = LinkCursor.decode(cursor.value)
        limit = 250
        while True:
            if not has_time():
                report.stopped = "out of time"
                return self._behind_since(report, started)
            try:
                rows = feed.list_category_links_since(at.after or None, limit=limit)
            except RateLimited:
                report.stopped = "throttled"
                return self._behind_since(report, started)
            top = max((row["id"] for row in rows if isinstance(row.get("id"), int)), default=at.after)
            if rows and not at.baseline:
                messages, skipped = link_messages(cid, rows, self._clock())
                self._park(cid, skipped, report)
                self._publisher.publish([Outgoing(m) for m in messages])
                report.queued += len(messages)
            report.rows += len(rows)
            report.pages += bool(rows)
            full = len(rows) >= limit and top > at.after
            new = LinkCursor(max(top, at.after), baseline=at.baseline and full)
            if new.encode() != cursor.value:
                if not self._store.advance_cursor(cid, cursor, new.encode()):
                    report.stopped = "another poller advanced this feed"
                    return report
                cursor = Cursor(cursor.feed, new.encode())
                report.cursor = cursor.value
            at = new
            if not full:
                return report


@dataclass
class PollRunSummary:
    reports: list[PollReport] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)
    # The exception that failed each connection in `failures` (absent for one skipped for time): its type is logged.
    errors: dict[str, Exception] = field(default_factory=dict)

    @property
    def queued(self) -> int:
        return sum(r.queued for r in self.reports)

    @property
    def skipped(self) -> list[tuple[str, SkippedRow]]:
        """Every row skipped in this run, with its connection."""
        return [(r.connection_id, row) for r in self.reports for row in r.skipped]

    @property
    def lag_s(self) -> float | None:
        """The most lagging feed of any connection polled (`PollLagSeconds`); None when none was polled."""
        return max((r.lag_s for r in self.reports), default=None)

    def as_dict(self) -> dict[str, Any]:
        return {
            "queued": self.queued,
            "connections": {
                r.connection_id: {
                    f.feed: {
                        "queued": f.queued,
                        "cursor": f.cursor,
                        "stopped": f.stopped,
                        "skipped": len(f.skipped),
                        "lag_s": round(f.lag_s),
                    }
                    for f in r.feeds
                }
                for r in self.reports
            },
            "failures": self.failures,
        }


def poll_connections(
    connections: Sequence[Connection],
    poller: ChangePoller,
    clients_for: Callable[[Connection], tuple[PosChangeFeeds, EcomOrderFeed]],
    has_time: Callable[[], bool],
) -> PollRunSummary:
    """Poll each connection in turn; one connection's failure is recorded and never stops the others."""
    summary = PollRunSummary()
    for connection in connections:
        if not has_time():
            summary.failures[connection.connection_id] = "skipped: out of time (polled on the next run)"
            continue
        try:
            pos, ecom = clients_for(connection)
            summary.reports.append(poller.poll(connection, pos, ecom, has_time))
        except SyncError as exc:
            summary.failures[connection.connection_id] = exc.message
            summary.errors[connection.connection_id] = exc
        except Exception as exc:  # a failure nobody foresaw is this connection's alone: the others are still polled
            summary.failures[connection.connection_id] = f"{type(exc).__name__}: {safe_text(str(exc), 200)}"
            summary.errors[connection.connection_id] = exc
    return summary
