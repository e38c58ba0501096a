"""Online prices that change in the POS price book, without a product change: queued as product changes.

No source says whether changing a price-book entry changes the product's `version` (so the product feed and the
product.update webhook would carry it) or not (contracts/xseries.json, `GET /api/2.0/price_book_products`,
unverified). Both must work: the products feed covers the first answer, this feed the second. It walks X20
`GET /api/2.0/price_book_products?after=<version>` (every book's entries by version) from its own cursor, keeps the
entries of the connection's online price book and queues one products message per family; product_sync then re-reads
the family and its entries, so a duplicate or an entry seen twice (once per feed) costs no eCom call.

The feed itself is one of the poller's POS feeds (`intake.poller`), enabled when the connection has an online book.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from pos_ecom_sync.models.connection import Connection
from pos_ecom_sync.models.messages import ChangeMessage

PRICE_BOOK_FEED = "pos:price_book_products"
PAGE_SIZE = 200


def online_price_messages(
    connection: Connection, rows: Sequence[dict[str, Any]], family_of: Callable[[str], str], now: datetime
) -> list[ChangeMessage]:
    """One products message per family with an entry of the connection's online book in `rows` (pure).

    `family_of(product id)` is the family key (the message group product_sync syncs the family under)."""
    book = connection.online_price_book_id
    newest: dict[str, dict[str, Any]] = {}
    for row in rows:
        if not book or row.get("price_book_id") != book or not isinstance(row.get("product_id"), str):
            continue
        key = family_of(row["product_id"])
        if key not in newest or int(row.get("version") or 0) > int(newest[key].get("version") or 0):
            newest[key] = row
    return [
        ChangeMessage(
            connection_id=connection.connection_id,
            source="pos",
            entity="product",
            entity_id=row["product_id"],
            version=int(row["version"]) if isinstance(row.get("version"), int) else None,
            updated_at=row.get("updated_at"),
            via="poll",
            received_at=now,
            payload={"id": row["product_id"], "price_book_entry": row.get("id")},
            concern="products",
            group_key=key,
        )
        for key, row in newest.items()
    ]
