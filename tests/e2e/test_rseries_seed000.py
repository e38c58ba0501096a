"""Seed 000 on R-Series through the whole local stack (`make run RUN_ARGS="--pos r-series"`): R-Series changes reach
eCom only through the change poller (no webhooks) -> products queue -> product_sync; eCom orders and the merchant's
eCom edits come by eCom webhook -> intake -> queues -> workers -> the R-Series simulator."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pos_ecom_sync.connectors.ecom import EcomClient
from pos_ecom_sync.ratelimit import InMemoryRateBudget

from local_stack.demo import DEMO_SECRETS
from tests.e2e.conftest import RSeriesLiveStack

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def live(rseries_stack: RSeriesLiveStack) -> Iterator[RSeriesLiveStack]:
    rseries_stack.import_catalog()
    yield rseries_stack


def _link(live: RSeriesLiveStack, item_id: int) -> Any:
    return live.variant_link(item_id)


def _items(live: RSeriesLiveStack, *, in_matrix: bool) -> list[dict[str, Any]]:
    return [i for i in live.rseries_stack.stocked_items() if (i["itemMatrixID"] != "0") == in_matrix]


def _merchant(live: RSeriesLiveStack) -> EcomClient:
    """The merchant working in eCom's back office (its API: what it does sends eCom's own webhooks)."""
    assert live.ecom is not None
    return EcomClient(
        live.ecom.url, DEMO_SECRETS["ecom_api_key"], DEMO_SECRETS["ecom_api_secret"], InMemoryRateBudget()
    )


def _ecom_variant(live: RSeriesLiveStack, variant_id: int) -> dict[str, Any] | None:
    assert live.ecom is not None
    return next((v for v in live.ecom.variants() if v["id"] == variant_id), None)


def test_each_matrix_becomes_one_disabled_ecom_product_with_one_variant_per_item(live: RSeriesLiveStack) -> None:
    assert live.ecom is not None
    by_matrix: dict[str, set[int]] = {}
    for item in _items(live, in_matrix=True):
        by_matrix.setdefault(item["itemMatrixID"], set()).add(_link(live, int(item["itemID"])).ecom_product_id)
    assert by_matrix and all(len(products) == 1 for products in by_matrix.values())  # one product per matrix
    for matrix_id, (product_id,) in ((m, tuple(p)) for m, p in by_matrix.items()):
        items = [i for i in _items(live, in_matrix=True) if i["itemMatrixID"] == matrix_id]
        assert len(live.ecom.variants(product_id)) == len(items)  # every variant item counts as one product
    products = {p["id"]: p for p in live.ecom.products()}
    linked = {_link(live, int(i["itemID"])).ecom_product_id for i in live.rseries_stack.stocked_items()}
    assert all(products[p]["visibility"] == "hidden" for p in linked)  # seed 000: synced products start disabled


def test_an_online_price_set_in_the_pos_becomes_the_ecom_price_at_the_next_poll(live: RSeriesLiveStack) -> None:
    item_id = int(_items(live, in_matrix=False)[0]["itemID"])
    variant_id = _link(live, item_id).ecom_variant_id
    live.rseries.set_online_price(item_id, 23.4)
    live.poll()
    live.wait_until(
        lambda: (_ecom_variant(live, variant_id) or {}).get("priceExcl") == 23.4,
        timeout=60,
        what="the Online price in eCom",
    )


def test_a_price_edited_in_ecom_becomes_the_pos_online_price_and_leaves_the_default_price(
    live: RSeriesLiveStack,
) -> None:
    assert live.ecom is not None
    item_id = int(_items(live, in_matrix=True)[0]["itemID"])
    variant_id = _link(live, item_id).ecom_variant_id

    def prices() -> dict[str, str]:
        rows = live.rseries.item(item_id)["Prices"]["ItemPrice"]
        return {row["useType"]: row["amount"] for row in (rows if isinstance(rows, list) else [rows])}

    default_before = prices()["Default"]
    live.ecom.edit_variant(variant_id, priceExcl=31.25)  # the merchant, in eCom's back office: a webhook goes out
    live.wait_until(lambda: float(prices().get("Online", 0)) == 31.25, timeout=60, what="the POS Online price")
    assert prices()["Default"] == default_before


def test_a_product_title_edited_in_ecom_renames_the_matrix_master_in_the_pos(live: RSeriesLiveStack) -> None:
    assert live.ecom is not None
    item = _items(live, in_matrix=True)[2]
    product_id = _link(live, item["itemID"]).ecom_product_id
    merchant = _merchant(live)

    # The merchant renames the product in eCom (its products/updated webhook goes to the stack's webhook API).
    merchant.update_product(product_id, {"title": "Renamed online", "fulltitle": "Renamed online"})

    matrix_id = int(item["itemMatrixID"])
    live.wait_until(
        lambda: live.rseries.matrix(matrix_id)["description"] == "Renamed online", timeout=60, what="the POS rename"
    )


def test_a_product_filed_under_another_category_in_ecom_moves_the_matrix_there_at_the_next_poll(
    live: RSeriesLiveStack,
) -> None:
    assert live.ecom is not None
    item = _items(live, in_matrix=True)[3]
    matrix_id = int(item["itemMatrixID"])
    current = live.rseries.matrix(matrix_id)["categoryID"]
    other = next(c for c in live.rseries.categories() if c["categoryID"] != current)
    title = other["name"]
    category = next((c for c in live.ecom.categories() if c["title"].casefold() == title.casefold()), None)
    category = category or live.ecom.add_category(title)  # eCom's category of that R-Series Category's name

    # The merchant files the product under it in eCom's back office (eCom sends no webhook for this: it is polled).
    _merchant(live).link_category(_link(live, item["itemID"]).ecom_product_id, category["id"])
    live.poll()

    live.wait_until(
        lambda: live.rseries.matrix(matrix_id)["categoryID"] == other["categoryID"],
        timeout=60,
        what=f"the matrix moved to the R-Series Category {title!r}",
    )


def test_archiving_a_product_in_the_pos_deletes_it_from_ecom_at_the_next_poll(live: RSeriesLiveStack) -> None:
    assert live.ecom is not None
    item_id = int(_items(live, in_matrix=False)[-1]["itemID"])
    product_id = _link(live, item_id).ecom_product_id
    live.rseries.archive_item(item_id)
    live.poll()
    live.wait_until(
        lambda: all(p["id"] != product_id for p in live.ecom.products()),  # type: ignore[union-attr]
        timeout=60,
        what="the archived product gone from eCom",
    )


def test_an_online_order_becomes_one_r_series_sale_found_by_its_reference(live: RSeriesLiveStack) -> None:
    assert live.ecom is not None
    item_id = int(_items(live, in_matrix=True)[1]["itemID"])
    variant_id = _link(live, item_id).ecom_variant_id
    order = live.ecom.place_order([{"variant_id": variant_id, "quantity": 1}], "shopper@example.com")

    # The sale exists a moment before the ledger records it: wait for the ledger, then check it names the one sale.
    sale = live.imported_sale(order)
    assert sale["referenceNumber"] == f"ecom-{order['id']}" and sale["referenceNumberSource"] == "eCom"
    assert sale["voided"] == "false"
