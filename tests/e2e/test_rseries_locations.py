"""Seed 002 order routing on R-Series through the whole local stack: a shopper's order -> eCom orders/created webhook ->
API -> orders queue -> order_import (routes by the connection's locations, reads each shop's `qoh`) -> one R-Series
Sale, sold from one shop (`shopID`, KVH endpoints/sale.md).

Seed 002: "Under Select primary location for syncing, use the dropdown to select which location will be used as the
default for shipping methods that aren't connected to a specific location"; "Shipping methods connected to locations
will also be disconnected" when their location is. No eCom source shows the tie of a method to a location, so the
operator sets it on the connection (`pos-ecom-sync connections set-shipping-outlets`); connecting and disconnecting
shops is `connections set-outlets` (`RSeriesLiveStack.set_outlets`). Stock at connect/disconnect is proven in
test_rseries_stock.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.conftest import RSeriesLiveStack

pytestmark = pytest.mark.e2e

REGISTER_SHOP, OTHER_SHOP = "1", "2"
SHOPS = [REGISTER_SHOP, OTHER_SHOP]
UNTIED, TIED = "Courier", "Standard Post"  # the eCom simulator's two shipping methods


@pytest.fixture(scope="module")
def live(rseries_stack: RSeriesLiveStack) -> Iterator[RSeriesLiveStack]:
    rseries_stack.import_catalog()
    yield rseries_stack


@pytest.fixture(scope="module")
def item(live: RSeriesLiveStack) -> int:
    """An item both shops hold (6 each): any shop could sell it, so only the connection's settings decide."""
    item_id = live.rseries.add_item("Mooring Line", 15.0, custom_sku="MOOR-6", qoh={1: 6, 2: 6})
    live.poll()
    live.wait_until(lambda: live.ecom_level(item_id) == 12, timeout=60, what="the item in eCom with both shops' 12")
    return item_id


@pytest.fixture
def outlets(live: RSeriesLiveStack) -> Iterator[None]:
    """Each test sets the locations it needs; both shops connected, the register's primary, afterwards."""
    yield
    live.set_outlets(SHOPS, REGISTER_SHOP)
    _tie(live, {})


def _method_id(live: RSeriesLiveStack, title: str) -> str:
    return str(next(m["id"] for m in live.ecom.shipping_methods() if m["title"] == title))


def _tie(live: RSeriesLiveStack, ties: dict[str, str]) -> None:
    """What `pos-ecom-sync connections set-shipping-outlets demo <method id>=<shop> ...` saves."""
    methods = {_method_id(live, title): shop for title, shop in ties.items()}
    connection = live.connection()
    live.store().save_connection(connection.model_copy(update={"shipping_method_outlets": methods}))


def _sold_from(live: RSeriesLiveStack, item: int, shipping: str) -> str:
    """A shopper orders the item with this shipping method; the shop its R-Series sale is sold from."""
    variant = live.variant_link(item).ecom_variant_id
    order = live.ecom.place_order(
        [{"variant_id": variant, "quantity": 1}],
        email="harbour.shopper@example.com",
        shipment_title=shipping,
        payment_status="not_paid",  # an open sale: the shops' stock stays as it is for the next order
    )
    sale: dict[str, Any] = live.imported_sale(order)
    return str(sale["shopID"])


@pytest.mark.usefixtures("outlets")
def test_an_order_whose_shipping_method_has_no_location_is_sold_from_the_primary_location(
    live: RSeriesLiveStack, item: int
) -> None:
    live.set_outlets(SHOPS, OTHER_SHOP)
    assert _sold_from(live, item, UNTIED) == OTHER_SHOP

    live.set_outlets(SHOPS, REGISTER_SHOP)
    assert _sold_from(live, item, UNTIED) == REGISTER_SHOP


@pytest.mark.usefixtures("outlets")
def test_an_order_whose_shipping_method_has_a_location_is_sold_there_not_from_the_primary(
    live: RSeriesLiveStack, item: int
) -> None:
    live.set_outlets(SHOPS, REGISTER_SHOP)
    _tie(live, {TIED: OTHER_SHOP})

    assert _sold_from(live, item, TIED) == OTHER_SHOP
    assert _sold_from(live, item, UNTIED) == REGISTER_SHOP


@pytest.mark.usefixtures("outlets")
def test_disconnecting_a_location_unties_its_shipping_methods_whose_orders_then_go_to_the_primary(
    live: RSeriesLiveStack, item: int
) -> None:
    _tie(live, {TIED: OTHER_SHOP})
    assert _sold_from(live, item, TIED) == OTHER_SHOP

    live.set_outlets([REGISTER_SHOP], REGISTER_SHOP)  # the merchant disconnects shop 2 ...
    assert live.connection().shipping_method_outlets == {}
    live.set_outlets(SHOPS, REGISTER_SHOP)  # ... and connects it again: the method stays untied (seed 002)
    live.wait_until(lambda: live.queue_idle("stock"), what="the recomputations over both shops done")

    assert _sold_from(live, item, TIED) == REGISTER_SHOP
