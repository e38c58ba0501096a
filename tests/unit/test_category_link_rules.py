"""The category-link sweep's pure rules: which eCom link becomes the POS family's category, its cursor, its messages,
and the poller walking it (baseline first, one request when nothing changed)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from pos_ecom_sync.catalog.category_edits import LINKS_KEY, LinkSeen, choose_link, links_of, mapped_categories
from pos_ecom_sync.intake.category_links import ECOM_CATEGORY_LINKS_FEED, LinkCursor, link_messages
from pos_ecom_sync.intake.poller import ChangePoller
from pos_ecom_sync.models.connection import Connection
from pos_ecom_sync.models.feeds import Cursor
from pos_ecom_sync.profiles.rseries.category_edits import category_id_named
from pos_ecom_sync.queues import Outgoing

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
MAPPED = {10: "Tops", 11: "Bottoms"}


def test_the_newest_link_to_a_synced_category_wins_and_eCom_only_categories_never_count() -> None:
    links = [LinkSeen(101, 10), LinkSeen(103, 99), LinkSeen(102, 11)]
    assert choose_link(links, MAPPED, ours=None).link == LinkSeen(102, 11)
    assert choose_link([LinkSeen(104, 99)], MAPPED, ours=None).link is None


def test_our_own_link_and_links_older_than_it_are_not_edits() -> None:
    assert choose_link([LinkSeen(102, 11)], MAPPED, ours=102).link is None
    assert choose_link([LinkSeen(101, 10)], MAPPED, ours=102).link is None
    assert choose_link([LinkSeen(101, 10), LinkSeen(103, 10)], MAPPED, ours=102).link == LinkSeen(103, 10)


def test_a_title_maps_to_its_first_ecom_category_as_the_forward_sync_resolves_it() -> None:
    rows = [{"id": 7, "title": "tops "}, {"id": 5, "title": "Tops"}, {"id": 9, "title": ""}, {"id": 8, "title": "Hats"}]
    assert mapped_categories(rows) == {5: "Tops", 8: "Hats"}


def test_a_category_name_finds_only_a_single_pos_category() -> None:
    rows = [
        {"categoryID": "1", "name": "Tops"},
        {"categoryID": "2", "name": "Shirts"},
        {"categoryID": "3", "name": "shirts"},
    ]
    assert category_id_named(rows, " tops") == "1"
    assert category_id_named(rows, "Shirts") is None  # two of that name: the title cannot tell which
    assert category_id_named(rows, "Hats") is None


def test_the_cursor_reads_back_and_a_garbled_one_walks_from_the_start_again() -> None:
    assert LinkCursor.decode(LinkCursor(42, baseline=False).encode()) == LinkCursor(42, baseline=False)
    assert LinkCursor.decode("b42") == LinkCursor(42, baseline=True)
    assert LinkCursor.decode(None) == LinkCursor.decode("x!") == LinkCursor(0, baseline=True)


def test_a_page_makes_one_message_per_product_and_parks_unreadable_links() -> None:
    rows: list[dict[str, Any]] = [
        {"id": 5, "sortOrder": 1, "category": {"resource": {"id": 10}}, "product": {"resource": {"id": 400}}},
        {"id": 6, "sortOrder": 1, "category": {"resource": {"id": 11}}, "product": {"resource": {"id": 400}}},
        {"id": 7, "sortOrder": 1, "category": False, "product": {"resource": {"id": 401}}},
    ]
    messages, skipped = link_messages("shop", rows, NOW)
    assert [(m.entity_id, m.concern, m.source) for m in messages] == [("400", "products", "ecom")]
    assert links_of(messages[0].payload) == [LinkSeen(5, 10), LinkSeen(6, 11)]
    assert [row.row_id for row in skipped] == ["7"]
    assert links_of({LINKS_KEY: [[1, "x"], "y", [2, 3]]}) == [LinkSeen(2, 3)]


class Store:
    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    @property
    def value(self) -> str | None:
        return self.values.get(ECOM_CATEGORY_LINKS_FEED)

    def get_cursor(self, connection_id: str, feed: str) -> Cursor:
        return Cursor(feed, self.values.get(feed))

    def advance_cursor(self, connection_id: str, cursor: Cursor, new_value: str) -> bool:
        self.values[cursor.feed] = new_value
        return True

    def variant_link(self, connection_id: str, **_: Any) -> None:
        return None


class Publisher:
    def __init__(self) -> None:
        self.sent: list[Outgoing] = []

    def publish(self, outgoing: Sequence[Outgoing]) -> int:
        self.sent.extend(outgoing)
        return len(outgoing)

    def backlog(self, concern: str) -> int:
        return 0


class Links:
    def __init__(self, ids: range) -> None:
        self.ids = list(ids)
        self.requests: list[int | None] = []

    def list_category_links_since(self, since_id: int | None, limit: int = 250) -> list[dict[str, Any]]:
        self.requests.append(since_id)
        found = [i for i in self.ids if i > (since_id or 0)][:limit]
        return [
            {"id": i, "sortOrder": 1, "category": {"resource": {"id": 10}}, "product": {"resource": {"id": i}}}
            for i in found
        ]


class NoPos:
    def change_feeds(self, *args: Any, **kwargs: Any) -> list[Any]:
        return []


class NoOrders:
    def list_orders(self, *args: Any, **kwargs: Any) -> Any:
        class Page:
            orders: list[dict[str, Any]] = []
            next_since_id = None

        return Page()


def test_a_first_sweep_walks_existing_links_without_queueing_then_only_new_ones_queue_one_request_when_idle() -> None:
    store, publisher, links = Store(), Publisher(), Links(range(1, 301))
    poller = ChangePoller(store, publisher, category_links=lambda connection: links, clock=lambda: NOW)
    connection = Connection(
        connection_id="shop", pos_profile="r-series", pos_base_url="https://r", ecom_base_url="https://e"
    )

    def sweep() -> Any:
        report = poller.poll(connection, NoPos(), NoOrders())  # type: ignore[arg-type]
        return next(f for f in report.feeds if f.feed == ECOM_CATEGORY_LINKS_FEED)

    first = sweep()
    assert (first.queued, store.value, links.requests) == (0, "300", [None, 250])
    links.requests.clear()
    assert sweep().queued == 0 and links.requests == [300]  # nothing new: one request
    links.ids += [301, 302]
    assert sweep().queued == 2 and store.value == "302"
    assert [m.message.entity_id for m in publisher.sent] == ["301", "302"]
