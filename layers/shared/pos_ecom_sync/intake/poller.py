"""The change poller: walks each side's change feed and queues what changed, so nothing is ever missed.

Cursor rule: a cursor moves only after the messages of the page it covers are queued, and only from
the value this poller read (conditional write). A poller killed in between re-queues the page next
time (duplicates are harmless; workers are idempotent); two pollers racing never skip a change.

Products feed: one message per product family and page, not per row (product_sync syncs the whole family
whichever row names it); see `_family_messages`.

Poison rows: messages carry ids, versions and stamps (`vendor_payload`), never a row, so no page can exceed an SQS
batch limit. A row that still cannot become a message (no or a garbled id, a version that is no integer...) is
skipped: reported (the handler logs and counts it), parked for the operator (`state.parked_store`) and passed by
the cursor, so it never stalls its feed; one connection's failure never stops the others' poll.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, Protocol

from pos_ecom_sync.catalog.online_prices import PRICE_BOOK_FEED, online_price_messages
from pos_ecom_sync.dates import parse_instant
from pos_ecom_sync.errors import RateLimited, SyncError, safe_text
from pos_ecom_sync.intake.rows import built, message_problem, positive_id, row_id, row_version, stamp
from pos_ecom_sync.models.catalog import VariantLink
from pos_ecom_sync.models.connection import Connection
from pos_ecom_sync.models.feeds import Cursor, SkippedRow
from pos_ecom_sync.models.messages import (
    CONCERN_OF,
    ChangeMessage,
    Concern,
    Entity,
    order_status_hint,
    vendor_payload,
)
from pos_ecom_sync.queues import Outgoing

# X-Series feed -> the entity its rows describe. Inventory rows are grouped by product (see ChangeMessage).
POS_FEEDS: dict[str, Entity] = {"products": "product", "inventory": "inventory", "sales": "sale"}
ECOM_ORDERS_FEED = "ecom:orders"


class ChangePageLike(Protocol):
    @property
    def items(self) -> list[dict[str, Any]]: ...
    @property
    def max_version(self) -> int | None: ...


class PosChangeFeed(Protocol):
    def list_changes(
        self, resource: str, after: int | None, page_size: int = 200, include_deleted: bool = True
    ) -> ChangePageLike: ...
    def list_price_book_product_changes(self, after: int | None, page_size: int = ...) -> ChangePageLike: ...


class OrderPageLike(Protocol):
    @property
    def orders(self) -> list[dict[str, Any]]: ...
    @property
    def next_since_id(self) -> int | None: ...


class EcomOrderFeed(Protocol):
    def list_orders(
        self, updated_at_min: datetime | None, since_id: int | None = None, limit: int = 250
    ) -> OrderPageLike: ...


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
    queued: int = 0  # changes queued: a POS row, or on the products feed a family per page; an eCom order
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


def _pos_message(
    connection_id: str, entity: Entity, row: dict[str, Any], now: datetime, *, entity_id: str | None = None
) -> ChangeMessage:
    """The message for one feed row; `entity_id` overrides the row's own id (a product family's message).
    InvalidInput when the row has no usable id or version."""
    if entity_id is None:
        entity_id = row_id(row, "product_id" if entity == "inventory" else "id")
    return ChangeMessage(
        connection_id=connection_id,
        source="pos",
        entity=entity,
        entity_id=entity_id,
        version=row_version(row),
        updated_at=stamp(row.get("updated_at")),
        via="poll",
        received_at=now,
        payload=vendor_payload("pos", entity, row),
        concern=CONCERN_OF[("pos", entity)],
        group_key=_family_key(row) if entity == "product" else None,
    )


def _family_key(row: dict[str, Any]) -> str:
    """The POS family a product row belongs to: its parent's id, or its own (product_sync's catalog state key)."""
    return row_id(row, "variant_parent_id") if row.get("variant_parent_id") else row_id(row)


def _family_messages(connection_id: str, rows: Sequence[dict[str, Any]], now: datetime) -> list[ChangeMessage]:
    """One message per product family in a page of the products feed, in the order the families first appear.

    product_sync re-reads and syncs the whole family whichever row a message names, so one message per family and
    page carries every change the page holds: its worker runs after all of them and reads the family as it is then
    (deleted rows included). The message names the family (its parent's id, as reconciliation does) and carries
    the version, `updated_at` and row of the family's newest row in the page, so its deduplication id is the same
    whenever the same page is queued again (a poller that died before moving the cursor) and a family seen again on
    a later page, with newer rows, is never taken for a duplicate.
    """
    newest: dict[str, dict[str, Any]] = {}
    for row in rows:
        key = _family_key(row)
        if key not in newest or (row_version(row) or 0) > (row_version(newest[key]) or 0):
            newest[key] = row
    return [_pos_message(connection_id, "product", row, now, entity_id=key) for key, row in newest.items()]


def _order_messages(connection_id: str, order: dict[str, Any], now: datetime) -> list[ChangeMessage]:
    """An order to import (a no-op once imported) and, when it changed after it was placed, a status change: the
    sweep is how a status change whose webhook was lost still reaches the POS. The message names the order (id,
    number, stamp): no customer data, the worker reads the order."""
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
    )
    hint = order_status_hint(message)
    return [message, *([hint] if hint else [])]


@dataclass(frozen=True)
class _PosFeed:
    """A POS change feed: its cursor's name, how to read the page after a version, its rows' messages, and one
    row's own messages (pure: raises when the row cannot be handled), which tells a poison row from the others."""

    name: str
    read: Callable[[int | None], ChangePageLike]
    to_messages: Callable[[Sequence[dict[str, Any]], datetime], list[ChangeMessage]]
    row_messages: Callable[[dict[str, Any], datetime], list[ChangeMessage]]
    id_field: str = "id"


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
    ) -> None:
        self._store = store
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
        pos: PosChangeFeed,
        ecom: EcomOrderFeed,
        has_time: Callable[[], bool] = lambda: True,
    ) -> PollReport:
        report = PollReport(connection.connection_id)
        cid = connection.connection_id
        started = self._clock()
        for feed in self._pos_feeds(connection, pos):
            read = self._poll_pos_feed(cid, feed, has_time, started)
            report.feeds.append(read)
            if read.stopped == "throttled":
                break  # the POS budget is spent; the other POS feeds would only wait too
        report.feeds.append(self._poll_ecom_orders(connection, ecom, has_time))
        return report

    def _pos_feeds(self, connection: Connection, pos: PosChangeFeed) -> list[_PosFeed]:
        cid, size = connection.connection_id, self._page_size

        def rows_of(resource: str) -> _PosFeed:
            entity = POS_FEEDS[resource]

            def to_messages(rows: Sequence[dict[str, Any]], now: datetime) -> list[ChangeMessage]:
                if entity == "product":  # one message per family: its worker syncs the whole family anyway
                    return _family_messages(cid, rows, now)
                return [_pos_message(cid, entity, row, now) for row in rows]

            def row_messages(row: dict[str, Any], now: datetime) -> list[ChangeMessage]:
                if entity == "product":
                    return [_pos_message(cid, entity, row, now, entity_id=_family_key(row))]
                return [_pos_message(cid, entity, row, now)]

            return _PosFeed(
                f"pos:{resource}",
                lambda after: pos.list_changes(resource, after, size),
                to_messages,
                row_messages,
                "product_id" if entity == "inventory" else "id",
            )

        feeds = [rows_of(resource) for resource in POS_FEEDS]
        if connection.online_price_book_id:
            # A price-book entry may change without the product's version (unverified): its own feed covers it.
            def family_of(product_id: str) -> str:
                link = self._store.variant_link(cid, pos_product_id=product_id)
                return link.family_key if link is not None else product_id

            feeds.append(
                _PosFeed(
                    PRICE_BOOK_FEED,
                    lambda after: pos.list_price_book_product_changes(after, size),
                    lambda rows, now: online_price_messages(connection, rows, family_of, now),
                    lambda row, now: online_price_messages(connection, [row], lambda product_id: product_id, now),
                    "product_id",
                )
            )
        return feeds

    def _page_messages(
        self, feed: _PosFeed, rows: Sequence[dict[str, Any]], now: datetime
    ) -> tuple[list[ChangeMessage], list[SkippedRow]]:
        """The messages of a page's handleable rows, and the rows skipped (each with its reason)."""
        skipped: list[SkippedRow] = []
        good: list[dict[str, Any]] = []
        for row in rows:
            _, problem = built(partial(feed.row_messages, row, now))
            if problem is None:
                good.append(row)
            else:
                skipped.append(SkippedRow.of(feed.name, row.get(feed.id_field), problem, row.get("version")))
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
        self, connection_id: str, feed: _PosFeed, has_time: Callable[[], bool], started: datetime
    ) -> FeedReport:
        cursor = self._store.get_cursor(connection_id, feed.name)
        report = FeedReport(feed=cursor.feed, cursor=cursor.value)
        moved_at = cursor.moved_at  # epoch seconds of its last advance, if known

        def behind() -> FeedReport:
            if report.pages or moved_at is None:  # moved in this run, or the store does not tell: since this run
                return self._behind_since(report, started)
            return self._behind_since(report, min(started, datetime.fromtimestamp(moved_at, UTC)))

        while True:
            if not has_time():
                report.stopped = "out of time"
                return behind()
            if feed.name == "pos:products" and self._products_backlogged():
                report.stopped = "products queue is full: resumes from this cursor as it drains"
                return report
            try:
                page = feed.read(int(cursor.value) if cursor.value else None)
            except RateLimited:
                report.stopped = "throttled"
                return behind()
            if not page.items or page.max_version is None:
                return report
            messages, skipped = self._page_messages(feed, page.items, self._clock())
            self._park(connection_id, skipped, report)
            self._publisher.publish([Outgoing(message) for message in messages])
            report.queued += len(messages)
            report.rows += len(page.items)
            report.pages += 1
            new_value = str(page.max_version)
            if not self._store.advance_cursor(connection_id, cursor, new_value):
                report.stopped = "another poller advanced this feed"
                return report
            cursor = Cursor(cursor.feed, new_value)
            report.cursor = new_value
            if len(page.items) < self._page_size:
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
        report = FeedReport(feed=cursor.feed, cursor=cursor.value)
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
    clients_for: Callable[[Connection], tuple[PosChangeFeed, EcomOrderFeed]],
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
