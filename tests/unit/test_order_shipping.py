"""The shipping product found or created at connection setup, and the hold of an order that charges shipping
without one (the POS sale must total the eCom order)."""

from __future__ import annotations

from typing import Any

import pytest
from pos_ecom_sync.errors import InvalidInput, UpstreamError, UpstreamUnavailable
from pos_ecom_sync.models.orders import EcomOrder
from pos_ecom_sync.orders.shipping import shipping_hold_reason
from pos_ecom_sync.profiles.xseries.shipping import SHIPPING_SKU, ensure_shipping_product


class Pos:
    """The two documented calls: `GET /api/2.0/products?sku=` and `POST /api/2.0/products`."""

    def __init__(self, rows: list[dict[str, Any]] | None = None, refuse: Exception | None = None) -> None:
        self.rows = rows or []
        self.refuse = refuse
        self.created: list[dict[str, Any]] = []

    def find_products_by_sku(self, sku: str) -> list[dict[str, Any]]:
        return [r for r in self.rows if r["sku"] == sku]

    def create_product(self, fields: dict[str, Any]) -> str:
        if self.refuse is not None:
            raise self.refuse
        self.created.append(fields)
        self.rows.append({"id": f"p{len(self.rows)}", "sku": fields["sku"], "has_variants": False})
        return str(self.rows[-1]["id"])


def test_the_shipping_product_is_created_once_and_found_by_its_sku_afterwards() -> None:
    pos = Pos()
    first = ensure_shipping_product(pos)
    assert first.created and first.sku == SHIPPING_SKU
    assert pos.created == [{"name": "Shipping (online orders)", "sku": SHIPPING_SKU, "price_excluding_tax": 0,
                            "is_active": True}]  # fmt: skip
    again = ensure_shipping_product(pos)  # a second setup, or a rerun after a crash before the connection was saved
    assert again.product_id == first.product_id and not again.created and len(pos.created) == 1


def test_an_existing_product_with_the_sku_is_used_and_a_deleted_one_is_not() -> None:
    pos = Pos([{"id": "old", "sku": SHIPPING_SKU, "deleted_at": "2024-01-01T00:00:00Z"},
               {"id": "live", "sku": SHIPPING_SKU}])  # fmt: skip
    assert ensure_shipping_product(pos).product_id == "live" and pos.created == []


def test_several_products_with_the_sku_are_an_operator_choice_never_a_guess() -> None:
    pos = Pos([{"id": "a", "sku": SHIPPING_SKU}, {"id": "b", "sku": SHIPPING_SKU}])
    with pytest.raises(InvalidInput, match="2 POS products have the SKU"):
        ensure_shipping_product(pos)


def test_a_refused_create_says_which_sku_to_create_by_hand_and_an_outage_is_retried() -> None:
    refused = Pos(refuse=UpstreamError("xseries", 403, "lacks products:write", "POST", "/api/2.0/products"))
    with pytest.raises(InvalidInput, match=f"refused to create the shipping product \\(403\\).*'{SHIPPING_SKU}'"):
        ensure_shipping_product(refused)
    with pytest.raises(InvalidInput, match="no POS product has the SKU"):
        ensure_shipping_product(Pos(), create=False)
    with pytest.raises(UpstreamUnavailable):
        ensure_shipping_product(Pos(refuse=UpstreamUnavailable("xseries 503")))


def _order(**changes: Any) -> EcomOrder:
    base = {"id": 1, "number": "ORD1", "status": "processing_awaiting_shipment", "paymentStatus": "paid",
            "updatedAt": "2024-05-02T09:00:00+00:00", "shipmentPriceIncl": 8.5, "shipmentPriceExcl": 7.39}  # fmt: skip
    return EcomOrder.model_validate({**base, **changes})


def test_an_order_that_charges_shipping_without_a_shipping_product_is_held_with_what_to_do() -> None:
    reason = shipping_hold_reason(_order(), None)
    assert reason is not None and "charges shipping 8.50" in reason and "--find-or-create" in reason
    assert shipping_hold_reason(_order(), "pos-shipping") is None
    assert shipping_hold_reason(_order(shipmentPriceIncl=0, shipmentPriceExcl=0), None) is None
