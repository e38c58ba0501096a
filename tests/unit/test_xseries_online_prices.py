"""The price-book feed: which changed entries become products messages (one per family of the online book)."""

from __future__ import annotations

from datetime import UTC, datetime

from pos_ecom_sync.models.connection import Connection
from pos_ecom_sync.profiles.xseries.online_prices import online_price_messages

NOW = datetime(2026, 7, 1, tzinfo=UTC)


def _connection(book: str | None) -> Connection:
    return Connection(
        connection_id="shop",
        pos_base_url="https://shop.retail.lightspeed.app",
        ecom_base_url="https://api.webshopapp.com",
        online_price_book_id=book,
    )


def _entry(product_id: str, book: str, version: int) -> dict[str, object]:
    return {"id": f"e-{product_id}-{version}", "product_id": product_id, "price_book_id": book, "version": version}


def test_only_the_online_books_entries_are_queued_one_message_per_family_with_its_newest_version() -> None:
    families = {"v1": "fam", "v2": "fam", "solo": "solo"}
    rows = [_entry("v1", "online", 10), _entry("v2", "online", 12), _entry("solo", "online", 11)]
    rows.append(_entry("x", "in-store", 13))
    messages = online_price_messages(_connection("online"), rows, lambda pid: families.get(pid, pid), NOW)
    assert [(m.group_key, m.entity_id, m.version, m.concern) for m in messages] == [
        ("fam", "v2", 12, "products"),
        ("solo", "solo", 11, "products"),
    ]
    assert {m.message_group_id for m in messages} == {"shop:pos:product:fam", "shop:pos:product:solo"}


def test_without_an_online_book_nothing_is_queued() -> None:
    assert online_price_messages(_connection(None), [_entry("v1", "online", 1)], lambda pid: pid, NOW) == []
