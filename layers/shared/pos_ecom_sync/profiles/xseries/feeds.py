"""X-Series change feeds: API 2.0 collections walked by `version` (X20 `after`), as the poller's `PosFeed`s.

Every feed's cursor is the highest version seen, as a string. Products come one message per family and page (the
family is the parent row and the rows naming it in `variant_parent_id`; product_sync syncs a whole family whichever
row a message names); inventory rows are grouped by product (one variant's outlets never race); sales are one
message each. A connection with an online price book also walks `price_book_products` (see
`profiles.xseries.online_prices`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from pos_ecom_sync.intake.rows import row_id, row_version, stamp
from pos_ecom_sync.models.connection import Connection
from pos_ecom_sync.models.feeds import ChangePage, PosFeed, VendorRow
from pos_ecom_sync.models.messages import CONCERN_OF, ChangeMessage, Entity, vendor_payload
from pos_ecom_sync.profiles.xseries.online_prices import PRICE_BOOK_FEED, online_price_messages
from pos_ecom_sync.profiles.xseries.sales import content_digest_of

if TYPE_CHECKING:
    from pos_ecom_sync.models.ledger import CustomerFeed

# X-Series collection -> the entity its rows describe.
FEEDS: dict[str, Entity] = {"products": "product", "inventory": "inventory", "sales": "sale"}


class VersionPage(Protocol):
    """A page of a version-ordered collection (`client.ChangePage`): its rows and the highest version seen."""

    @property
    def items(self) -> list[VendorRow]: ...
    @property
    def max_version(self) -> int | None: ...


class VersionFeeds(Protocol):
    def list_changes(
        self, resource: str, after: int | None, page_size: int = 200, include_deleted: bool = True
    ) -> VersionPage: ...
    def list_price_book_product_changes(self, after: int | None, page_size: int = ...) -> VersionPage: ...


def family_key(row: VendorRow) -> str:
    """The POS family a product row belongs to: its parent's id, or its own (product_sync's catalog state key)."""
    return row_id(row, "variant_parent_id") if row.get("variant_parent_id") else row_id(row)


def _message(
    connection_id: str, entity: Entity, row: VendorRow, now: datetime, *, entity_id: str | None = None
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
        group_key=family_key(row) if entity == "product" else None,
        content_digest=content_digest_of(row) if entity == "sale" else None,
    )


def family_messages(connection_id: str, rows: Sequence[VendorRow], now: datetime) -> list[ChangeMessage]:
    """One message per product family in a page of the products feed, in the order the families first appear.

    The message names the family (its parent's id, as reconciliation does) and carries the version, `updated_at`
    and row of the family's newest row in the page, so its deduplication id is the same whenever the same page is
    queued again (a poller that died before moving the cursor) and a family seen again on a later page, with newer
    rows, is never taken for a duplicate.
    """
    newest: dict[str, VendorRow] = {}
    for row in rows:
        key = family_key(row)
        if key not in newest or (row_version(row) or 0) > (row_version(newest[key]) or 0):
            newest[key] = row
    return [_message(connection_id, "product", row, now, entity_id=key) for key, row in newest.items()]


def _page(page: VersionPage, page_size: int) -> ChangePage:
    if not page.items or page.max_version is None:
        return ChangePage()
    # A short page is the feed's end for now (X20 pages are full until the last one).
    return ChangePage(page.items, str(page.max_version), more=len(page.items) >= page_size)


def _own_family(product_id: str) -> str:
    return product_id


def after_version(cursor: str | None) -> int | None:
    """The version a feed's cursor holds (None: from the beginning)."""
    return int(cursor) if cursor else None


def change_feeds(
    client: VersionFeeds, connection: Connection, *, page_size: int, family_of: Callable[[str], str]
) -> list[PosFeed]:
    """The connection's X-Series feeds, in the order the poller walks them."""
    cid = connection.connection_id

    def collection(resource: str) -> PosFeed:
        entity = FEEDS[resource]
        family = entity == "product"  # one message per family: its worker syncs the whole family anyway

        def to_messages(rows: Sequence[VendorRow], now: datetime) -> list[ChangeMessage]:
            return family_messages(cid, rows, now) if family else [_message(cid, entity, row, now) for row in rows]

        def row_messages(row: VendorRow, now: datetime) -> list[ChangeMessage]:
            return [_message(cid, entity, row, now, entity_id=family_key(row) if family else None)]

        id_field = "product_id" if entity == "inventory" else "id"
        return PosFeed(
            name=f"pos:{resource}",
            concern=CONCERN_OF[("pos", entity)],
            read=lambda cursor: _page(client.list_changes(resource, after_version(cursor), page_size), page_size),
            to_messages=to_messages,
            row_messages=row_messages,
            row_id=lambda row: row.get(id_field),
            row_version=lambda row: row.get("version"),
            backfill=family,
        )

    feeds = [collection(resource) for resource in FEEDS]
    if connection.online_price_book_id:
        # A price-book entry may change without the product's version (unverified): its own feed covers it.
        feeds.append(
            PosFeed(
                name=PRICE_BOOK_FEED,
                concern="products",
                read=lambda cursor: _page(
                    client.list_price_book_product_changes(after_version(cursor), page_size), page_size
                ),
                to_messages=lambda rows, now: online_price_messages(connection, rows, family_of, now),
                row_messages=lambda row, now: online_price_messages(connection, [row], _own_family, now),
                row_id=lambda row: row.get("product_id"),
                row_version=lambda row: row.get("version"),
            )
        )
    return feeds


class XSeriesFeeds:
    """An X-Series client's change feeds, as the poller asks for them (`intake.poller.PosChangeFeeds`)."""

    def __init__(self, client: VersionFeeds) -> None:
        self.client = client

    def change_feeds(self, connection: Connection, *, page_size: int, family_of: Callable[[str], str]) -> list[PosFeed]:
        return change_feeds(self.client, connection, page_size=page_size, family_of=family_of)

    def customer_feed(self, connection: Connection, *, page_size: int) -> CustomerFeed:
        from pos_ecom_sync.profiles.xseries.customers import customer_feed

        return customer_feed(self.client, page_size)
