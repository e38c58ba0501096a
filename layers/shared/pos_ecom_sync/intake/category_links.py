"""The eCom category-link sweep's pure parts: its cursor and the messages a page of links makes.

eCom sends no webhook for `categories/products` (rseries.md section 10), so for a POS profile that takes eCom edits
the poller reads the links made since the last one seen: `categories/products.json?since_id=<last id>&limit=250`
(NT src/resources/joins/categories-product.ts, src/core/types.ts ListQuery `since_id`; new links have higher ids, as
NT src/core/paginate.ts walks by the highest id seen). One request when nothing changed.

Cursor: the highest link id seen, as digits. A connection's first sweep walks the links that already exist without
queueing them ("b<id>" while that walk is unfinished): they are the shop's as it was, not edits. A cursor that
cannot be read starts such a walk again (it may miss an edit made meanwhile; it never takes an old link for one).

Messages: one per eCom product per page, on the products queue (`catalog.category_edits` reads them), carrying that
product's new links `[[link id, category id], ...]` (the newest `MAX_LINKS_PER_MESSAGE`), so a product linked twice
in one page is decided once. A link without a readable id, product or category is skipped (parked).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from pos_ecom_sync.catalog.category_edits import LINKS_KEY, MAX_LINKS_PER_MESSAGE
from pos_ecom_sync.errors import InvalidInput
from pos_ecom_sync.intake.rows import positive_id
from pos_ecom_sync.models.connection import Connection
from pos_ecom_sync.models.feeds import SkippedRow
from pos_ecom_sync.models.messages import ChangeMessage

ECOM_CATEGORY_LINKS_FEED = "ecom:category-links"
BASELINE = "b"
F = TypeVar("F")


@dataclass(frozen=True)
class LinkCursor:
    after: int = 0  # the highest link id seen
    baseline: bool = True  # still walking the links that existed before the first sweep

    def encode(self) -> str:
        return f"{BASELINE if self.baseline else ''}{self.after}"

    @classmethod
    def decode(cls, value: str | None) -> LinkCursor:
        text = (value or "").strip()
        if text.isdigit() and text.isascii():
            return cls(int(text), baseline=False)
        rest = text[len(BASELINE) :]
        if text.startswith(BASELINE) and rest.isdigit() and rest.isascii():
            return cls(int(rest), baseline=True)
        return cls()


def link_feed_for(
    takes_ecom_edits: Callable[[Connection], bool], client: Callable[[Connection], F]
) -> Callable[[Connection], F | None]:
    """The poller's `category_links`: the connection's link reader from `client` (built only when needed) when its
    POS takes eCom edits (R-Series, seed 000); None otherwise (X-Series, seed 003: links are never swept)."""

    def feed(connection: Connection) -> F | None:
        return client(connection) if takes_ecom_edits(connection) else None

    return feed


def _ref(value: Any) -> Any:
    """The id of an eCom relation `{"resource": {"id": ...}}` (or a bare id)."""
    if isinstance(value, dict):
        resource = value.get("resource")
        return resource.get("id") if isinstance(resource, dict) else value.get("id")
    return value


def link_messages(
    connection_id: str, rows: Sequence[dict[str, Any]], now: datetime
) -> tuple[list[ChangeMessage], list[SkippedRow]]:
    """The products-queue messages of a page of new links, and the links skipped (with their reason)."""
    by_product: dict[int, list[tuple[int, int]]] = {}
    skipped: list[SkippedRow] = []
    for row in rows:
        try:
            link_id = positive_id(row)
            product_id = positive_id({"product": _ref(row.get("product"))}, "product")
            category_id = positive_id({"category": _ref(row.get("category"))}, "category")
        except InvalidInput as exc:  # parked, never stalls the sweep
            skipped.append(SkippedRow.of(ECOM_CATEGORY_LINKS_FEED, row.get("id"), str(exc)))
            continue
        by_product.setdefault(product_id, []).append((link_id, category_id))
    messages = []
    for product_id, links in by_product.items():
        newest = sorted(links)[-MAX_LINKS_PER_MESSAGE:]
        messages.append(
            ChangeMessage(
                connection_id=connection_id,
                source="ecom",
                entity="product",
                entity_id=str(product_id),
                version=newest[-1][0],
                via="poll",
                received_at=now,
                payload={LINKS_KEY: [list(pair) for pair in newest]},
                concern="products",
                change_key=f"category-links:{newest[-1][0]}",
            )
        )
    return messages, skipped
