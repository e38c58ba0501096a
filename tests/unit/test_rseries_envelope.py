"""The R-Series envelope reads every shape the vendor writes (KVH docs samples, MKP cassettes), and the time-stamp
feed cursor neither loses nor repeats a change however many rows share a second."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from pos_ecom_sync.errors import ConfigurationError, InvalidInput
from pos_ecom_sync.intake.rows import built
from pos_ecom_sync.profiles.rseries import envelope
from pos_ecom_sync.profiles.rseries.client import Page
from pos_ecom_sync.profiles.rseries.feeds import (
    FEEDS,
    MAX_SEEN,
    OVERLAP_S,
    FeedSpec,
    StampCursor,
    StampFeedReader,
    cursor_at,
    digest,
    family_key,
    page_messages,
    row_messages,
)

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
T0 = 1_796_000_000


def _spec(entity: str) -> FeedSpec:
    return next(spec for spec in FEEDS if spec.entity == entity)


def _stamp(second: int) -> str:
    return datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


# -- envelope ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"SaleLine": {"saleLineID": "1"}}, [{"saleLineID": "1"}]),  # one related record: an object
        ({"SaleLine": [{"saleLineID": "1"}, {"saleLineID": "2"}]}, [{"saleLineID": "1"}, {"saleLineID": "2"}]),
        ("", []),  # none: an empty string (KVH customer.md `"Phones": ""`)
        (None, []),
        ({"SaleLine": ""}, []),
        ({"SaleLine": ["junk", {"saleLineID": "3"}]}, [{"saleLineID": "3"}]),
    ],
)
def test_a_relation_reads_as_a_list_whether_object_array_or_empty(value: object, expected: list[object]) -> None:
    assert envelope.relation({"SaleLines": value}, "SaleLines", "SaleLine") == expected


def test_a_list_page_reads_as_rows_whether_one_object_an_array_or_no_key() -> None:
    assert envelope.rows({"Item": {"itemID": "1"}}, "Item") == [{"itemID": "1"}]
    assert envelope.rows({"Item": [{"itemID": "1"}, {"itemID": "2"}]}, "Item") == [{"itemID": "1"}, {"itemID": "2"}]
    assert envelope.rows({"@attributes": {"next": "", "previous": ""}}, "Item") == []
    assert envelope.rows({"Item": ""}, "Item") == []
    assert envelope.rows("not a body", "Item") == []
    assert envelope.single({"@attributes": {"count": "1"}, "Item": {"itemID": "7"}}, "Item") == {"itemID": "7"}
    assert envelope.single({}, "Item") is None


def test_the_next_page_is_the_attributes_next_url_and_an_empty_one_ends_the_list() -> None:
    url = "https://api.lightspeedapp.com/API/V3/Account/1/Item.json?after=abc"
    assert envelope.next_url({"@attributes": {"next": url, "previous": ""}}) == url
    assert envelope.next_url({"@attributes": {"next": "", "previous": url}}) is None
    assert envelope.next_url({"@attributes": {"count": "1"}}) is None
    assert envelope.next_url({}) is None


@pytest.mark.parametrize(
    ("value", "expected"), [("true", True), ("false", False), ("TRUE", True), (True, True), ("yes", None), (None, None)]
)
def test_booleans_are_the_strings_true_and_false(value: object, expected: bool | None) -> None:
    assert envelope.flag(value) is expected


def test_numbers_are_numeric_strings() -> None:
    assert envelope.decimal("4.39") == Decimal("4.39")
    assert envelope.decimal("-2") == Decimal("-2")
    assert envelope.decimal("NaN") is None
    assert envelope.decimal("") is None
    assert envelope.integer("45") == 45
    assert envelope.integer("-3") == -3  # qoh may be negative (KVH itemshop.md)
    assert envelope.integer("4.5") is None


@pytest.mark.parametrize(("value", "expected"), [("0", None), ("", None), (None, None), ("00", None), ("12", "12")])
def test_a_zero_foreign_key_means_none(value: object, expected: str | None) -> None:
    assert envelope.reference(value) == expected


@pytest.mark.parametrize(
    "value",
    ["2026-12-05T12:00:00+00:00", "2026-12-05T12:00:00-00:00", "2026-12-05T12:00:00+0000", "2026-12-05T12:00:00Z"],
)
def test_time_stamps_read_in_every_offset_spelling(value: str) -> None:
    assert envelope.epoch(value) == int(NOW.timestamp())


def test_an_unreadable_time_stamp_is_none_and_a_query_stamp_has_the_documented_offset() -> None:
    assert envelope.epoch("yesterday") is None
    assert envelope.epoch("2026-12-05") is None
    assert envelope.query_stamp(int(NOW.timestamp())) == "2026-12-05T12:00:00-00:00"


def test_item_prices_map_price_level_ids_to_amounts() -> None:
    item = {"Prices": {"ItemPrice": [{"amount": "49", "useTypeID": "1"}, {"amount": "45.5", "useTypeID": "3"}]}}
    assert envelope.prices(item) == {"1": Decimal("49"), "3": Decimal("45.5")}
    assert envelope.prices({"Prices": {"ItemPrice": {"amount": "9", "useTypeID": "1"}}}) == {"1": Decimal("9")}
    assert envelope.prices({"Prices": ""}) == {}


# -- the feed cursor --------------------------------------------------------------------------------------------------


def test_the_cursor_round_trips_and_a_garbled_one_is_a_clear_error() -> None:
    cursor = StampCursor(T0, {T0: {"1": "aaaaaaaa"}, T0 - 1: {"2": "bbbbbbbb"}})
    assert StampCursor.decode(cursor.encode()) == cursor
    assert StampCursor.decode(None) == StampCursor()
    with pytest.raises(ConfigurationError):
        StampCursor.decode("8812345000")  # e.g. an X-Series version
    with pytest.raises(ConfigurationError):
        StampCursor.decode('{"v": 2, "at": 1, "seen": {}}')


def test_the_cursor_reads_again_from_a_little_before_its_newest_stamp() -> None:
    assert StampCursor().since is None
    assert StampCursor(T0).since == T0 - OVERLAP_S
    assert StampCursor.decode(cursor_at(T0)).since == T0


def test_the_cursor_keeps_the_rows_delivered_near_its_newest_stamp_only() -> None:
    cursor = StampCursor().advanced([("1", T0, "d1"), ("2", T0, "d2")])
    cursor = cursor.advanced([("3", T0 + 10, "d3")])
    assert cursor.at == T0 + 10
    assert cursor.seen == {T0 + 10: {"3": "d3"}}
    assert cursor.delivered(("3", T0 + 10, "d3"))
    assert not cursor.delivered(("3", T0 + 10, "other"))  # the same row edited again within its second
    assert not cursor.delivered(None)


def test_a_second_holding_more_rows_than_the_cursor_keeps_is_cut_never_grown_without_bound() -> None:
    cursor = StampCursor().advanced([(str(n), T0, "d") for n in range(MAX_SEEN + 50)])
    assert sum(len(ids) for ids in cursor.seen.values()) == MAX_SEEN
    assert cursor.at == T0
    assert len(cursor.encode()) < 16_000


class ScriptedLists:
    """A client whose lists are given: `list_changes` answers the first page, `next_page` follows the URLs."""

    def __init__(self, pages: dict[str | None, Page]) -> None:
        self.pages = pages
        self.asked: list[tuple[str, object]] = []

    def list_changes(self, entity: str, since: int | None, limit: int = 100) -> Page:
        self.asked.append(("list", since))
        return self.pages[None]

    def next_page(self, entity: str, url: str) -> Page:
        self.asked.append(("next", url))
        return self.pages[url]


def _item(item_id: int, second: int, **fields: str) -> dict[str, str]:
    return {"itemID": str(item_id), "itemMatrixID": "0", "timeStamp": _stamp(second), **fields}


def test_a_read_skips_rows_already_delivered_and_passes_pages_that_hold_only_those() -> None:
    rows = [_item(1, T0), _item(2, T0), _item(3, T0)]
    cursor = StampCursor().advanced([("1", T0, digest(rows[0])), ("2", T0, digest(rows[1]))]).encode()
    client = ScriptedLists(
        {None: Page(rows[:2], "u2"), "u2": Page([rows[2]], None)}  # the first page: all delivered before
    )

    page = StampFeedReader(client, _spec("Item"), 2)(cursor)

    assert page.rows == [rows[2]]
    assert not page.more
    assert client.asked == [("list", T0 - OVERLAP_S), ("next", "u2")]
    assert StampFeedReader(client, _spec("Item"), 2)(page.cursor).rows == []


def test_within_a_run_the_feed_follows_the_vendors_next_url() -> None:
    client = ScriptedLists({None: Page([_item(1, T0)], "u2"), "u2": Page([_item(2, T0)], None)})
    read = StampFeedReader(client, _spec("Item"), 1)

    first = read(None)
    second = read(first.cursor)

    assert first.more and not second.more
    assert [row["itemID"] for row in second.rows] == ["2"]
    assert client.asked == [("list", None), ("next", "u2")]


def test_a_row_edited_again_within_the_same_second_is_delivered_again() -> None:
    before = _item(1, T0, description="Tee")
    after = _item(1, T0, description="Tee XL")
    cursor = StampCursor().advanced([("1", T0, digest(before))]).encode()

    page = StampFeedReader(ScriptedLists({None: Page([after], None)}), _spec("Item"), 100)(cursor)

    assert page.rows == [after]


# -- messages ---------------------------------------------------------------------------------------------------------


def test_a_variant_item_belongs_to_its_matrix_family_and_a_simple_item_to_itself() -> None:
    assert family_key({"itemID": "5", "itemMatrixID": "3"}) == "m3"
    assert family_key({"itemID": "5", "itemMatrixID": "0"}) == "5"
    with pytest.raises(InvalidInput):
        family_key({"itemID": "five", "itemMatrixID": "0"})


def test_the_items_feed_queues_one_product_message_per_family_and_page() -> None:
    rows = [
        _item(1, T0, itemMatrixID="3"),
        _item(2, T0 + 1, itemMatrixID="3"),
        _item(9, T0),
    ]
    messages = page_messages("shop", _spec("Item"), rows, NOW)
    assert [(m.entity, m.entity_id, m.group_key, m.concern) for m in messages] == [
        ("product", "m3", "m3", "products"),
        ("product", "9", "9", "products"),
    ]
    assert messages[0].updated_at == _stamp(T0 + 1)  # the family's newest row
    assert messages[0].version is None


def test_the_stock_feed_queues_the_item_of_a_shop_row_and_nothing_for_the_all_shops_row() -> None:
    spec = _spec("ItemShop")
    shop_row = {"itemShopID": "11", "itemID": "5", "shopID": "1", "qoh": "3", "timeStamp": _stamp(T0)}
    summary = {"itemShopID": "10", "itemID": "5", "shopID": "0", "qoh": "3", "timeStamp": _stamp(T0)}
    assert row_messages("shop", spec, summary, NOW) == []
    [message] = page_messages("shop", spec, [summary, shop_row], NOW)
    assert (message.entity, message.entity_id, message.concern, message.group_key) == ("inventory", "5", "stock", None)


def test_the_sales_feed_queues_each_sale_stamped_by_its_update_time() -> None:
    sale = {"saleID": "44", "timeStamp": _stamp(T0), "updatetime": _stamp(T0 + 60), "completed": "true"}
    [message] = page_messages("shop", _spec("Sale"), [sale], NOW)
    assert (message.entity, message.entity_id, message.concern) == ("sale", "44", "statuses")
    assert message.updated_at == _stamp(T0 + 60)


def test_a_row_without_a_readable_id_or_stamp_is_refused_with_its_reason() -> None:
    _, no_stamp = built(lambda: row_messages("shop", _spec("Item"), _item(1, T0) | {"timeStamp": "soon"}, NOW))
    _, no_id = built(lambda: row_messages("shop", _spec("Sale"), {"saleID": "", "updatetime": _stamp(T0)}, NOW))
    assert no_stamp == "timeStamp is not a time stamp"
    assert no_id == "no saleID"


def test_two_edits_of_one_item_in_one_second_are_two_sqs_messages_not_one_dropped_as_a_repeat() -> None:
    from pos_ecom_sync.profiles.rseries.feeds import FEEDS, row_messages

    spec = next(s for s in FEEDS if s.entity == "Item")
    first = {"itemID": "7", "itemMatrixID": "0", "description": "Tee", "timeStamp": "2026-12-05T10:00:00+00:00"}
    second = {**first, "description": "Tee (renamed)"}  # same second, same id: only the content differs
    [a] = row_messages("shop", spec, first, NOW)
    [b] = row_messages("shop", spec, second, NOW)
    assert a.deduplication_id() != b.deduplication_id()
    assert a.payload == {"itemID": "7", "itemMatrixID": "0", "timeStamp": "2026-12-05T10:00:00+00:00"}
    [again] = row_messages("shop", spec, dict(first), NOW)
    assert again.deduplication_id() == a.deduplication_id()  # the same row read twice stays one message
