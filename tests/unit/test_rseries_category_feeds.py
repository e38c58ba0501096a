"""The R-Series Category / Manufacturer feeds (`profiles.rseries.category_feeds`) against a fake client: a changed row
fans out, page by page, into one product message per family using it; a first read only records what exists; the
cursor resumes anywhere; a filter the vendor ignores costs pages, never a wrong family nor an endless walk."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from pos_ecom_sync.errors import ConfigurationError
from pos_ecom_sync.models.feeds import ChangePage
from pos_ecom_sync.profiles.rseries.category_feeds import (
    REFERENCE_KEY,
    SPECS,
    FanCursor,
    ReferenceFeedReader,
    change_digest,
    page_messages,
    row_messages,
)
from pos_ecom_sync.profiles.rseries.client import Page
from pos_ecom_sync.profiles.rseries.feeds import cursor_at

CATEGORY, MANUFACTURER = SPECS
NOW = datetime(2026, 12, 5, tzinfo=UTC)
T0 = "2026-12-05T10:00:00+00:00"
T1 = "2026-12-05T10:05:00+00:00"


def category(category_id: int, name: str, stamp: str = T0, **extra: str) -> dict[str, Any]:
    return {
        "categoryID": str(category_id),
        "name": name,
        "nodeDepth": "0",
        "fullPathName": name,
        "leftNode": "1",
        "rightNode": "2",
        "timeStamp": stamp,
        "parentID": "0",
        **extra,
    }


def item(item_id: int, category_id: int, matrix_id: int = 0, maker: int = 0) -> dict[str, Any]:
    return {
        "itemID": str(item_id),
        "itemMatrixID": str(matrix_id),
        "categoryID": str(category_id),
        "manufacturerID": str(maker),
        "timeStamp": T0,
    }


def matrix(matrix_id: int, category_id: int) -> dict[str, Any]:
    return {"itemMatrixID": str(matrix_id), "categoryID": str(category_id), "manufacturerID": "0", "timeStamp": T0}


@dataclass
class FakeClient:
    """The vendor: a Category list by stamp, Items and ItemMatrices listed by category (the category and matrix
    filters honoured or not; `itemID=>,<after>` always)."""

    categories: list[dict[str, Any]] = field(default_factory=list)
    items: list[dict[str, Any]] = field(default_factory=list)
    matrices: list[dict[str, Any]] = field(default_factory=list)
    honours_filters: bool = True
    honours_after: bool = True
    calls: list[tuple[str, Any]] = field(default_factory=list)

    def list_changes(self, entity: str, since: int | None, limit: int = 100) -> Page:
        self.calls.append(("changes", entity))
        rows = sorted(self.categories, key=lambda row: (row["timeStamp"], int(row["categoryID"])))
        return Page(rows[:limit], "https://api/next" if len(rows) > limit else None)

    def next_page(self, entity: str, url: str) -> Page:
        raise AssertionError("not reached in these tests")

    def list_using(
        self, entity: str, field: str, reference_id: str, *, after_id: str | None = None, limit: int = 100
    ) -> Page:
        self.calls.append((entity, after_id))
        id_field = "itemID" if entity == "Item" else "itemMatrixID"
        rows = sorted(self.items if entity == "Item" else self.matrices, key=lambda row: int(row[id_field]))
        if self.honours_filters:  # else the whole list comes back, paged by id all the same
            rows = [r for r in rows if r[field] == reference_id and (entity != "Item" or r["itemMatrixID"] == "0")]
        rows = [r for r in rows if after_id is None or not self.honours_after or int(r[id_field]) > int(after_id)]
        return Page(rows[:limit], "https://api/next" if len(rows) > limit else None)


def walk(
    reader: ReferenceFeedReader, cursor: str | None, *, max_pages: int = 50
) -> tuple[list[ChangePage], str | None]:
    pages: list[ChangePage] = []
    for _ in range(max_pages):
        page = reader(cursor)
        if not page.rows or page.cursor is None:
            return pages, cursor
        pages.append(page)
        cursor = page.cursor
        if not page.more:
            return pages, cursor
    raise AssertionError("the feed never ended")


def families(pages: list[ChangePage], spec: Any = CATEGORY) -> list[str]:
    return [m.entity_id for page in pages for m in page_messages("shop", spec, page.rows, NOW)]


def test_a_first_read_records_every_category_and_fans_nothing_out() -> None:
    client = FakeClient([category(1, "Tops")], [item(10, 1)])

    pages, cursor = walk(ReferenceFeedReader(client, CATEGORY, 100), None)

    assert families(pages) == []
    assert [kind for kind, _ in client.calls] == ["changes"]
    assert cursor is not None and FanCursor.decode(cursor).pending == ()


def test_a_renamed_category_fans_out_to_its_simple_items_and_matrices_page_by_page() -> None:
    client = FakeClient([category(1, "Tops")], [item(n, 1) for n in (10, 11, 12, 13, 14)] + [item(15, 2)])
    client.matrices = [matrix(3, 1), matrix(4, 2)]
    _, cursor = walk(ReferenceFeedReader(client, CATEGORY, 2), None)
    client.categories = [category(1, "Shirts", T1)]

    pages, _ = walk(ReferenceFeedReader(client, CATEGORY, 2), cursor)

    assert families(pages) == ["10", "11", "12", "13", "14", "m3"]
    assert all(len(page.rows) <= 2 for page in pages)
    message = page_messages("shop", CATEGORY, pages[1].rows, NOW)[0]
    assert (message.entity, message.group_key, message.updated_at) == ("product", "10", T1)
    assert message.change_key is not None and message.change_key.startswith("Category:1:")


def test_every_page_is_a_checkpoint_a_new_run_resumes_from() -> None:
    client = FakeClient([category(1, "Tops")], [item(n, 1) for n in range(10, 17)], [matrix(3, 1)])
    _, cursor = walk(ReferenceFeedReader(client, CATEGORY, 3), None)
    client.categories = [category(1, "Shirts", T1)]

    found: list[str] = []
    for _ in range(20):  # a new reader (a new poller run) for every page
        page = ReferenceFeedReader(client, CATEGORY, 3)(cursor)
        if not page.rows or page.cursor is None:
            break
        found += families([page])
        cursor = page.cursor

    assert found == [str(n) for n in range(10, 17)] + ["m3"]


def test_an_ignored_filter_lists_every_row_but_queues_only_the_families_using_it() -> None:
    rows = [item(10, 1), item(11, 2), item(12, 1, matrix_id=3), item(13, 1)]
    client = FakeClient([category(1, "Tops")], rows, [matrix(3, 1), matrix(4, 2)], honours_filters=False)
    _, cursor = walk(ReferenceFeedReader(client, CATEGORY, 2), None)
    client.categories = [category(1, "Shirts", T1)]

    pages, _ = walk(ReferenceFeedReader(client, CATEGORY, 2), cursor)

    assert families(pages) == ["10", "13", "m3"]  # a variant's family is its matrix's, listed with the matrices
    assert sum(1 for kind, _ in client.calls if kind in ("Item", "ItemMatrix")) < 10  # the walk ended


def test_a_vendor_ignoring_the_id_filter_too_never_makes_the_walk_endless() -> None:
    rows = [item(n, 1) for n in range(10, 16)]
    client = FakeClient([category(1, "Tops")], rows, [matrix(3, 1)], honours_filters=False, honours_after=False)
    _, cursor = walk(ReferenceFeedReader(client, CATEGORY, 2), None)
    client.categories = [category(1, "Shirts", T1)]

    pages, _ = walk(ReferenceFeedReader(client, CATEGORY, 2), cursor)  # fails if it never ends

    assert families(pages)[:2] == ["10", "11"]
    assert len(pages) < 10


def test_a_page_with_no_family_using_the_row_still_moves_the_cursor() -> None:
    client = FakeClient([category(1, "Tops")], [item(11, 2)], honours_filters=False)
    _, cursor = walk(ReferenceFeedReader(client, CATEGORY, 5), None)
    client.categories = [category(1, "Shirts", T1)]

    page = ReferenceFeedReader(client, CATEGORY, 5)(cursor)  # the category row itself
    page = ReferenceFeedReader(client, CATEGORY, 5)(page.cursor)  # its simple items: none use it

    assert page.rows == [{REFERENCE_KEY: {"id": "1", "timeStamp": T1, "digest": page.rows[0][REFERENCE_KEY]["digest"]}}]
    assert page.cursor is not None and page.more
    assert families([page]) == []


def test_renumbered_nodes_are_no_change_of_a_category() -> None:
    before = category(1, "Tops")
    assert change_digest(CATEGORY, {**before, "leftNode": "7", "rightNode": "8"}) == change_digest(CATEGORY, before)
    assert change_digest(CATEGORY, {**before, "name": "Shirts"}) != change_digest(CATEGORY, before)
    assert change_digest(CATEGORY, {**before, "parentID": "2", "fullPathName": "Misc/Tops"}) != change_digest(
        CATEGORY, before
    )


def test_a_replay_cursor_fans_out_every_row_changed_since() -> None:
    client = FakeClient([category(1, "Tops")], [item(10, 1)])

    pages, _ = walk(ReferenceFeedReader(client, CATEGORY, 100), cursor_at(0))

    assert families(pages) == ["10"]


def test_a_manufacturer_row_fans_out_by_manufacturer_id() -> None:
    maker = {"manufacturerID": "7", "name": "Dockside", "createTime": T0, "timeStamp": T1}
    listed = {**item(10, 1, maker=7), REFERENCE_KEY: {"id": "7", "timeStamp": T1, "digest": "abcd0123"}}

    assert row_messages("shop", MANUFACTURER, maker, NOW) == []
    [message] = row_messages("shop", MANUFACTURER, listed, NOW)
    assert (message.entity_id, message.change_key) == ("10", "Manufacturer:7:abcd0123")
    assert message.payload == {"itemID": "10", "manufacturerID": "7", "timeStamp": T1}


@pytest.mark.parametrize(
    "row",
    [
        {"categoryID": "x1", "name": "Bad", "timeStamp": T0},
        {"categoryID": "1", "name": "No stamp", "timeStamp": "yesterday"},
        {"itemID": "1x", "categoryID": "1", "itemMatrixID": "0", REFERENCE_KEY: {"id": "1", "timeStamp": T0}},
        {"itemID": "1", "categoryID": "1", "itemMatrixID": "0", REFERENCE_KEY: {"id": "1", "timeStamp": "never"}},
    ],
)
def test_a_row_that_cannot_be_handled_is_refused_for_parking(row: dict[str, Any]) -> None:
    from pos_ecom_sync.errors import InvalidInput

    with pytest.raises(InvalidInput):
        row_messages("shop", CATEGORY, row, NOW)


def test_a_cursor_that_is_not_ours_is_a_configuration_error() -> None:
    good = json.loads(FanCursor().encode())
    for bad in ({**good, "fan": [["x", T0, "d"]]}, {**good, "step": 5}, {**good, "after": "-3"}):
        with pytest.raises(ConfigurationError):
            FanCursor.decode(json.dumps(bad))
