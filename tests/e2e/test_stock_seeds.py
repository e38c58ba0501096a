"""Seed stock and shipping-method behaviours through the whole local stack (eCom -> POS -> eCom).

eCom's own checkout lowers eCom's level by itself; the POS sale then lands at the outlet the order's shipping method
is linked to (connection setting `shipping_method_outlets`, no eCom field). When that outlet is below zero the POS
total does not move, and eCom must still be brought back to it. Disconnecting the outlet stops routing by its
shipping method at once (seed 002), without any write to eCom's shipping methods (none is documented).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from typing import Any

import pytest
from pos_ecom_sync.queues import ChangePublisher
from pos_ecom_sync.stock.sync import request_outlet_change

from tests.e2e.conftest import LiveStack

pytestmark = pytest.mark.e2e

_emails = (f"stock-seed-{n}@example.com" for n in itertools.count())


@pytest.fixture(scope="module")
def live(live_stack: LiveStack) -> Iterator[LiveStack]:
    live_stack.import_catalog()
    yield live_stack


def _link_method(live: LiveStack, title: str, outlet: str) -> dict[str, Any]:
    """The operator links a pickup method to an outlet (`connections set-shipping-outlets`)."""
    method = live.ecom.add_shipping_method(title, is_pickup=True)
    connection = live.connection()
    links = {**connection.shipping_method_outlets, str(method["id"]): outlet}
    live.store().save_connection(connection.model_copy(update={"shipping_method_outlets": links}))
    return method


def _online(live: LiveStack, sku: str) -> int:
    return int(next(v["stockLevel"] for v in live.ecom.variants() if v["sku"] == sku))


def _pos_total(live: LiveStack, product_id: str) -> int:
    return sum(max(0, live.pos.level(product_id, outlet)) for outlet in live.connection().connected_outlet_ids)


def test_ecoms_checkout_decrement_is_put_back_when_the_sale_lands_below_zero(live: LiveStack) -> None:
    connection = live.connection()
    below, stocked = connection.connected_outlet_ids[:2]
    variant = live.variants_in_stock()[0]
    product = next(p for p in live.pos.products() if p["sku"] == variant["sku"])
    live.pos.set_inventory(product["id"], below, -1)
    live.pos.set_inventory(product["id"], stocked, 5)
    live.wait_until(lambda: _online(live, variant["sku"]) == 5, what="eCom at the POS total 5 (-1 counts as 0)")
    method = _link_method(live, "Pickup at the back store", below)

    order = live.ecom.place_order(
        [{"variant_id": variant["id"], "quantity": 1}],
        email=next(_emails),
        shipment_title=method["title"],
        is_pickup=True,
    )
    assert _online(live, variant["sku"]) == 4  # eCom's checkout took one

    live.wait_until(
        lambda: any(s.get("source_id") == f"ecom-{order['id']}" for s in live.pos.sales()),
        what="the POS sale of the order",
    )
    assert live.pos.level(product["id"], below) == -2  # routed by the linked method; the POS total did not move
    live.poll()  # the inventory change reaches stock_sync (webhook or poll, whichever comes first)
    live.wait_until(
        lambda: _online(live, variant["sku"]) == _pos_total(live, product["id"]) == 5,
        what="eCom back at the POS total after its own checkout decrement",
    )


def test_disconnecting_an_outlet_stops_routing_by_its_shipping_method_without_touching_ecom(live: LiveStack) -> None:
    connection = live.connection()
    outlets = connection.connected_outlet_ids
    gone = outlets[-1]
    method = _link_method(live, "Pickup at the closing store", gone)
    writes_before = {route: n for route, n in live.ecom.stats()["calls_by_route"].items() if "shippingmethods" in route}

    publisher = ChangePublisher(lambda concern: os.environ["STOCK_QUEUE_URL"], client=live.session.client("sqs"))
    try:
        updated = request_outlet_change(live.store(), publisher, live.connection_id, outlets[:-1])
        assert str(method["id"]) not in updated.shipping_method_outlets

        variant = live.variants_in_stock(minimum=1)[0]
        product = next(p for p in live.pos.products() if p["sku"] == variant["sku"])
        level_at_gone = live.pos.level(product["id"], gone)
        order = live.ecom.place_order(
            [{"variant_id": variant["id"], "quantity": 1}],
            email=next(_emails),
            shipment_title=method["title"],
            is_pickup=True,
        )
        live.wait_until(
            lambda: any(s.get("source_id") == f"ecom-{order['id']}" for s in live.pos.sales()),
            what="the POS sale of the order",
        )
        assert live.pos.level(product["id"], gone) == level_at_gone  # routed over the connected outlets instead
        after = {route: n for route, n in live.ecom.stats()["calls_by_route"].items() if "shippingmethods" in route}
        assert after == writes_before and all(not r.startswith("PUT") for r in after)  # only a person disables it
    finally:
        request_outlet_change(live.store(), publisher, live.connection_id, outlets)
