"""Online prices that change in the POS price book, without a product change: queued as product changes.

No source says whether changing a price-book entry changes the product's `version` (so the product feed and the
product.update webhook would carry it) or not (contracts/xseries.json, `GET /api/2.0/price_book_products`,
unverified). Both must work: the products feed covers the first answer, this feed the second. It walks X20
`GET /api/2.0/price_book_products?after=<version>` (every book's entries by version) from its own cursor, keeps the
entries of the connection's online price book and queues one products message per family; product_sync then re-reads
the family and its entries, so a duplicate or an entry seen twice (once per feed) costs no eCom call.

The feed itself is one of the X-Series change feeds (`profiles.xseries.feeds`), enabled when the connection has an
online book.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from pos_ecom_sync.intake.rows import row_id, row_version, stamp
from pos_ecom_sync.models.connection import Connection
from pos_ecom_sync.models.messages import ChangeMessage, vendor_payload

PRICE_BOOK_FEED = "pos:price_book_products"
PAGE_SIZE = 200


def online_price_messages(
    connection: Connection, rows: Sequence[dict[str, Any]], family_of: Callable[[str], str], now: datetime
) -> list[ChangeMessage]:
    """One products message per family with an entry of the connection's online book in `rows` (pure).

    `family_of(product id)` is the family key (the message group product_sync syncs the family under). An entry of
    the online book with no usable `product_id` or `version` raises InvalidInput (the poller skips and parks it);
    entries of other books are not ours and are passed over whatever they hold."""
    book = connection.online_price_book_id
    newest: dict[str, tuple[str, int | None, dict[str, Any]]] = {}
    for row in rows:
        if not book or row.get("price_book_id") != book:
            continue
        product_id, version = row_id(row, "product_id"), row_version(row, required=False)
        key = family_of(product_id)
        if key not in newest or (version or 0) > (newest[key][1] or 0):
            newest[key] = (product_id, version, row)
    return [
        ChangeMessage(
            connection_id=connection.connection_id,
            source="pos",
            entity="product",
            entity_id=product_id,
            version=version,
            updated_at=stamp(row.get("updated_at")),
            via="poll",
            received_at=now,
            # The entry's own id, when it is a small value (`vendor_payload` keeps only an `id` of such a row).
            payload={"id": product_id, "price_book_entry": vendor_payload("pos", "price_book_product", row).get("id")},
            concern="products",
            group_key=key,
        )
        for key, (product_id, version, row) in newest.items()
    ]
