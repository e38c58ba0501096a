"""R-Series change feeds: V3 lists polled by time stamp, as the poller's `PosFeed`s. The vendor has no webhooks
(KVH `docs/endpoints/index.md`); KVH `endpoints/itemshop.md` prescribes `sort=timeStamp&timeStamp=>=,<last poll>`.

Time stamps have one-second resolution and many rows share one (a bulk edit, a sale's lines), so a feed reads with
`>=` from a little before its high-water mark and drops the rows it already delivered. Its cursor (an opaque string,
`StampCursor.encode`) is JSON: `{"v": 1, "at": <high-water epoch second>, "seen": {"<epoch second>": {"<row id>":
"<digest>"}}}` holding every row delivered at or after `at - OVERLAP_S` with an 8-hex digest of the row as read. A
re-read row with the same id, stamp and digest is skipped; one edited again within the same second (same stamp, new
content) is delivered again. Within one run a feed follows the vendor's `@attributes.next` URL of the page it just
returned (KVH pagination.md: never crafted); a new run starts again from its stored cursor. `more` = a next URL.

What each feed queues (`FEEDS`):
- `pos:Item` (products): one message per product family and page, entity "product", `entity_id` = `group_key` =
  the family key: `m<itemMatrixID>` for a variant item, the item's own `itemID` for a simple item (`family_key`).
- `pos:ItemMatrix` (products): one message per matrix, entity "product", family key `m<itemMatrixID>`.
- `pos:ItemShop` (stock): one message per item and page, entity "inventory", `entity_id` = `itemID`; the shopID "0"
  all-shops summary row (KVH itemshop.md) queues nothing: it moves with every shop row and never counts.
- `pos:Sale` (statuses): one message per sale, entity "sale", by `updatetime` (see client.FEED_ENTITIES).
- `pos:Category`, `pos:Manufacturer` (products, `category_feeds`): a changed row fans out into one "product"
  message per family using it (a family's eCom category and brand are those names); they come last.
Messages carry no version (R-Series has none): `updated_at` is the row's stamp.

Customers are not synced, and queue nothing: `customer_feed` walks `Customer.json` the same way (its Contact loaded,
archived rows included) for the poller, which drops the customer email index's entries of a customer archived or
whose addresses changed (`orders.customers`). Whether an edit of only the Contact (an email address) moves the
Customer's `timeStamp` is undocumented (KVH customer.md: Contact has its own `timeStamp`; contract `unverified`): a
change the feed does not show is bounded by the index's reuse window.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from pos_ecom_sync.errors import ConfigurationError, InvalidInput
from pos_ecom_sync.intake.rows import row_id, stamp
from pos_ecom_sync.models.connection import Connection
from pos_ecom_sync.models.feeds import ChangePage, PosFeed, VendorRow
from pos_ecom_sync.models.ledger import CustomerChange, CustomerFeed, CustomerPage
from pos_ecom_sync.models.messages import CONCERN_OF, ChangeMessage, Entity, vendor_payload
from pos_ecom_sync.profiles.rseries import envelope
from pos_ecom_sync.profiles.rseries.client import FEED_ENTITIES, MAX_LIMIT, Page
from pos_ecom_sync.profiles.rseries.sales import content_digest_of

CURSOR_VERSION = 1
# Re-read this many seconds before the high-water mark: a row committed a moment after a later-stamped one was read
# (second-resolution stamps, concurrent writers) is still found [I].
OVERLAP_S = 2
# The most (id, stamp) pairs a cursor keeps (a few KB in the sync table). A second holding more rows than this is
# partly re-delivered by the next run's re-read (duplicates, never a loss).
MAX_SEEN = 500
# Pages of rows all delivered before that one read may pass over before it gives up for this run.
MAX_SKIPPED_PAGES = 50
MATRIX_PREFIX = "m"


class ChangeLists(Protocol):
    """What the feeds need from the client (`client.RSeriesClient`)."""

    def list_changes(self, entity: str, since: int | None, limit: int = ...) -> Page: ...
    def next_page(self, entity: str, url: str) -> Page: ...


class UsingLists(ChangeLists, Protocol):
    """The feeds' lists plus the families using a Category or Manufacturer (`category_feeds`)."""

    def list_using(
        self, entity: str, field: str, reference_id: str, *, after_id: str | None = ..., limit: int = ...
    ) -> Page: ...


# What a queued message keeps of each feed's rows (ids, stamps, the flags a worker acts on; never names or emails).
PAYLOAD_FIELDS: dict[str, tuple[str, ...]] = {
    "Item": ("itemID", "itemMatrixID", "timeStamp", "archived"),
    "ItemMatrix": ("itemMatrixID", "timeStamp", "archived"),
    "ItemShop": ("itemShopID", "itemID", "shopID", "qoh", "timeStamp"),
    "Sale": ("saleID", "updatetime", "completed", "voided", "archived", "referenceNumber", "referenceNumberSource"),
}


def digest(row: Mapping[str, Any]) -> str:
    """A short fingerprint of a row as read: an edit within the same second changes it."""
    text = json.dumps(row, sort_keys=True, separators=(",", ":"), default=str, ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()[:8]


@dataclass(frozen=True)
class StampCursor:
    """Where a time-stamp feed was read up to: the newest stamp delivered and the rows delivered near it."""

    at: int | None = None
    seen: dict[int, dict[str, str]] = field(default_factory=dict)  # epoch second -> {row id: digest}

    @property
    def since(self) -> int | None:
        """The stamp the next fresh read starts from (`>=`)."""
        return None if self.at is None else self.at - OVERLAP_S

    def delivered(self, key: tuple[str, int, str] | None) -> bool:
        return key is not None and self.seen.get(key[1], {}).get(key[0]) == key[2]

    def advanced(self, keys: Sequence[tuple[str, int, str]]) -> StampCursor:
        """This cursor after delivering rows with these (id, stamp, digest) keys."""
        if not keys:
            return self
        at = max([key[1] for key in keys] + ([self.at] if self.at is not None else []))
        seen = {second: dict(ids) for second, ids in self.seen.items() if second >= at - OVERLAP_S}
        for row_key, second, row_digest in keys:
            if second >= at - OVERLAP_S:
                seen.setdefault(second, {})[row_key] = row_digest
        kept: dict[int, dict[str, str]] = {}
        room = MAX_SEEN
        for second in sorted(seen, reverse=True):  # the newest seconds matter most: the next read starts there
            ids = list(seen[second].items())[-room:] if room else []
            if ids:
                kept[second] = dict(ids)
            room -= len(ids)
        return StampCursor(at, kept)

    def encode(self) -> str:
        seen = {str(second): ids for second, ids in sorted(self.seen.items())}
        return json.dumps({"v": CURSOR_VERSION, "at": self.at, "seen": seen}, separators=(",", ":"), sort_keys=True)

    @classmethod
    def decode(cls, value: str | None) -> StampCursor:
        if value is None:
            return cls()
        try:
            data = json.loads(value)
            at = data["at"]
            seen = {int(second): {str(k): str(v) for k, v in ids.items()} for second, ids in data["seen"].items()}
            if data.get("v") != CURSOR_VERSION or not (at is None or isinstance(at, int)):
                raise ValueError("unknown cursor version")
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise ConfigurationError(f"not an R-Series feed cursor: {value[:80]!r}") from exc
        return cls(at, seen)


def cursor_at(epoch_second: int) -> str:
    """A cursor that resumes a feed from a moment (an operator's replay; the acceptance tests)."""
    return StampCursor(epoch_second + OVERLAP_S, {}).encode()


class VendorEntity:
    """A polled entity's id and time-stamp fields, as `client.FEED_ENTITIES` names them."""

    entity: str

    @property
    def id_field(self) -> str:
        return FEED_ENTITIES[self.entity].id_field

    @property
    def stamp_field(self) -> str:
        return FEED_ENTITIES[self.entity].stamp_field


@dataclass(frozen=True)
class FeedSpec(VendorEntity):
    entity: str  # the vendor entity polled
    message_entity: Entity
    # The row's message key (entity id) or None when the row queues nothing; raises InvalidInput when unusable.
    key_of: Callable[[VendorRow], str | None]
    # Merge a page's rows into one message per key (the newest row's): families, items' shop rows.
    merge: bool
    backfill: bool = False

    @property
    def name(self) -> str:
        return f"pos:{self.entity}"


def _digits(row: Mapping[str, Any], name: str) -> str:
    value = row_id(row, name)
    if not value.isdigit():
        raise InvalidInput(f"{name} is not an R-Series id: {value[:40]!r}")
    return value


def family_key(row: Mapping[str, Any]) -> str:
    """The product family an Item row belongs to: `m<itemMatrixID>` for a matrix variant, else its own `itemID`
    (item and matrix ids are separate sequences, so the prefix keeps them apart)."""
    matrix = envelope.reference(row.get("itemMatrixID"))
    if matrix is not None:
        return MATRIX_PREFIX + _digits({"itemMatrixID": matrix}, "itemMatrixID")
    return _digits(row, "itemID")


def _matrix_key(row: Mapping[str, Any]) -> str:
    return MATRIX_PREFIX + _digits(row, "itemMatrixID")


def _stock_key(row: Mapping[str, Any]) -> str | None:
    _digits(row, "itemShopID")
    if envelope.reference(row.get("shopID")) is None:
        return None  # the all-shops summary row (KVH itemshop.md: shopID 0)
    return _digits(row, "itemID")


FEEDS: tuple[FeedSpec, ...] = (
    FeedSpec("Item", "product", family_key, merge=True, backfill=True),
    FeedSpec("ItemMatrix", "product", _matrix_key, merge=False, backfill=True),
    FeedSpec("ItemShop", "inventory", _stock_key, merge=True),
    FeedSpec("Sale", "sale", lambda row: _digits(row, "saleID"), merge=False),
)


class Stamped(Protocol):
    """What a time-stamp reader needs to know of its entity (a `FeedSpec`, or `CustomerSpec`)."""

    @property
    def entity(self) -> str: ...
    @property
    def id_field(self) -> str: ...
    @property
    def stamp_field(self) -> str: ...


def _row_key(spec: Stamped, row: Mapping[str, Any]) -> tuple[str, int, str] | None:
    """(id, stamp, digest) of a row; None when its id or stamp cannot be read (its messages say why)."""
    value = row.get(spec.id_field)
    second = envelope.epoch(row.get(spec.stamp_field))
    if not isinstance(value, str | int) or isinstance(value, bool) or second is None:
        return None
    return str(value), second, digest(row)


def _message(connection_id: str, spec: FeedSpec, key: str, row: VendorRow, now: datetime) -> ChangeMessage:
    if envelope.epoch(row.get(spec.stamp_field)) is None:
        raise InvalidInput(f"{spec.stamp_field} is not a time stamp")
    entity = spec.message_entity
    return ChangeMessage(
        connection_id=connection_id,
        source="pos",
        entity=entity,
        entity_id=key,
        version=None,  # R-Series rows have no version: the stamp (second resolution) orders them
        updated_at=stamp(row.get(spec.stamp_field)),
        via="poll",
        received_at=now,
        payload=vendor_payload("pos", entity, row, PAYLOAD_FIELDS[spec.entity]),
        concern=CONCERN_OF[("pos", entity)],
        group_key=key if entity == "product" else None,
        change_key=digest(row),
        content_digest=content_digest_of(row) if spec.entity == "Sale" else None,
    )


def row_messages(connection_id: str, spec: FeedSpec, row: VendorRow, now: datetime) -> list[ChangeMessage]:
    """One row's message (none for a row that queues nothing); InvalidInput when the row cannot be handled."""
    key = spec.key_of(row)
    return [] if key is None else [_message(connection_id, spec, key, row, now)]


def page_messages(connection_id: str, spec: FeedSpec, rows: Sequence[VendorRow], now: datetime) -> list[ChangeMessage]:
    """A page's messages. A merged feed makes one per key, in the order keys first appear, from the key's newest row
    (its stamp and payload), so the same page queued again makes the same deduplication ids."""
    if not spec.merge:
        return [message for row in rows for message in row_messages(connection_id, spec, row, now)]
    newest: dict[str, VendorRow] = {}
    for row in rows:
        key = spec.key_of(row)
        if key is None:
            continue
        kept = newest.get(key)
        if kept is None or _second(spec, row) >= _second(spec, kept):
            newest[key] = row
    return [_message(connection_id, spec, key, row, now) for key, row in newest.items()]


def _second(spec: FeedSpec, row: Mapping[str, Any]) -> int:
    return envelope.epoch(row.get(spec.stamp_field)) or 0


class StampFeedReader:
    """`PosFeed.read` of one time-stamp feed for one run: pages after a cursor, minus rows already delivered."""

    def __init__(self, client: ChangeLists, spec: Stamped, page_size: int) -> None:
        self._client = client
        self._spec = spec
        self._limit = max(1, min(page_size, MAX_LIMIT))
        self._next: dict[str, str] = {}  # cursor this run returned -> the vendor's next URL after that page

    def __call__(self, value: str | None) -> ChangePage:
        cursor = StampCursor.decode(value)
        entity = self._spec.entity
        url = self._next.pop(value, None) if value is not None else None
        page = (
            self._client.next_page(entity, url) if url else self._client.list_changes(entity, cursor.since, self._limit)
        )
        fresh: list[VendorRow] = []
        for _ in range(MAX_SKIPPED_PAGES):
            fresh = [row for row in page.rows if not cursor.delivered(_row_key(self._spec, row))]
            if fresh or page.next_url is None:
                break
            page = self._client.next_page(entity, page.next_url)
        if not fresh:
            return ChangePage()
        keys = [key for key in (_row_key(self._spec, row) for row in fresh) if key is not None]
        encoded = cursor.advanced(keys).encode()
        if page.next_url is not None:
            self._next[encoded] = page.next_url
        return ChangePage(fresh, encoded, more=page.next_url is not None)


def feed(client: ChangeLists, connection_id: str, spec: FeedSpec, page_size: int) -> PosFeed:
    return PosFeed(
        name=spec.name,
        concern=CONCERN_OF[("pos", spec.message_entity)],
        read=StampFeedReader(client, spec, page_size),
        to_messages=lambda rows, now: page_messages(connection_id, spec, rows, now),
        row_messages=lambda row, now: row_messages(connection_id, spec, row, now),
        row_id=lambda row: row.get(spec.id_field),
        row_version=lambda row: row.get(spec.stamp_field),
        backfill=spec.backfill,
    )


def change_feeds(
    client: UsingLists, connection: Connection, *, page_size: int, family_of: Callable[[str], str]
) -> list[PosFeed]:
    """The connection's R-Series feeds, in the order the poller walks them: the product, stock and sale feeds, then
    Category and Manufacturer (`category_feeds`: a rename fans out to every family using it, after the changes
    shoppers wait for). `family_of` is not needed: an Item row names its matrix itself."""
    from pos_ecom_sync.profiles.rseries.category_feeds import reference_feeds  # it imports this module

    feeds = [feed(client, connection.connection_id, spec, page_size) for spec in FEEDS]
    return feeds + reference_feeds(client, connection.connection_id, page_size)


# -- customers (the customer email index's feed) ----------------------------------------------------------------

CUSTOMER_FEED = "pos:Customer"


@dataclass(frozen=True)
class CustomerSpec(VendorEntity):
    """The Customer list as a time-stamp feed (`client.FEED_ENTITIES`: Contact loaded, archived rows included)."""

    entity: str = "Customer"


def customer_change(row: Mapping[str, Any]) -> CustomerChange | None:
    """A Customer row read with its Contact (KVH customer.md) in neutral terms; None without a usable id (such a
    row cannot be in the index)."""
    customer_id = envelope.reference(row.get("customerID"))
    if customer_id is None:
        return None
    contact = row.get("Contact")
    entries = envelope.relation(contact, "Emails", "ContactEmail") if isinstance(contact, dict) else []
    emails = tuple(str(e.get("address") or "").strip() for e in entries if str(e.get("address") or "").strip())
    return CustomerChange(customer_id, emails, gone=envelope.flag(row.get("archived")) is True)


def customer_feed(client: ChangeLists, page_size: int) -> CustomerFeed:
    """Customers changed since the cursor, oldest first (`Customer.json?sort=timeStamp&timeStamp=>=,<t>
    &load_relations=["Contact"]&archived=true&archive=1`), as the poller's customer feed."""
    reader = StampFeedReader(client, CustomerSpec(), page_size)

    def read(cursor: str | None) -> CustomerPage:
        page = reader(cursor)
        changes = tuple(c for c in (customer_change(row) for row in page.rows) if c is not None)
        return CustomerPage(changes, page.cursor, page.more)

    return CustomerFeed(CUSTOMER_FEED, read)
