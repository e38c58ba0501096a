"""The X-Series 0.9 register_sales body of an imported eCom order, and the line matching that precedes it."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pos_ecom_sync.models.orders import EcomOrder, EcomOrderLine, FulfillmentPlan
from pos_ecom_sync.orders.payments import LeaveUnpaid, RecordPayment
from pos_ecom_sync.orders.routing import LineDemand, route_order
from pos_ecom_sync.orders.sale import (
    Hold,
    Unmatched,
    build_register_sale,
    match_line,
    match_lines,
    pos_datetime,
    source_id,
    unit_amounts,
)

MAIN, HARBOUR = "out-main", "out-harbour"
REGISTER = "reg-online"
TEE, CAP, SHIPPING = "pos-tee-navy-m", "pos-cap", "pos-shipping"
LSP = RecordPayment(retailer_payment_type_id="pt-lsp", name="Lightspeed Payments", method_title="Lightspeed Payments")

ORDER: dict[str, Any] = {
    "id": 5501042,
    "number": "ORD10042",
    "status": "processing_awaiting_shipment",
    "paymentStatus": "paid",
    "paymentTitle": "Lightspeed Payments",
    "shipmentStatus": "not_shipped",
    "shipmentTitle": "Courier NZ",
    "shipmentIsPickup": False,
    "shipmentPriceIncl": 8.5,
    "shipmentPriceExcl": 7.3913,
    "priceIncl": 72.5,
    "priceExcl": 63.04348,
    "email": "mira.okafor@example.com",
    "firstname": "Mira",
    "lastname": "Okafor",
    "createdAt": "2024-05-02T21:59:58+12:00",
    "updatedAt": "2024-05-02T09:00:00+00:00",
    "customer": {"resource": {"id": 70231, "url": "customers/70231"}},
}
# Shaped like the simulator's orderProducts: basePrice* per unit, price* the line total, 15% tax.
TEE_LINE: dict[str, Any] = {
    "id": 9001,
    "productTitle": "Harbor Tee",
    "variantTitle": "Navy, M",
    "quantityOrdered": 2,
    "sku": "HT-NAVY-M",
    "ean": "9400000000012",
    "articleCode": "HT-NAVY-M",
    "basePriceIncl": 32.0,
    "basePriceExcl": 27.82609,
    "priceIncl": 64.0,
    "priceExcl": 55.65217,
    "discountIncl": 0,
    "discountExcl": 0,
    "taxRate": 0.15,
    "variant": {"resource": {"id": 880001, "url": "variants/880001"}},
}


def make_order(**changes: Any) -> EcomOrder:
    return EcomOrder.model_validate({**ORDER, **changes})


def make_line(**changes: Any) -> EcomOrderLine:
    return EcomOrderLine.model_validate({**TEE_LINE, **changes})


def plan_for(lines: list[EcomOrderLine], stock: dict[str, dict[str, int]] | None = None) -> FulfillmentPlan:
    products = {9001: TEE, 9002: CAP}
    demands = [LineDemand(line.id, products[line.id], line.quantity_ordered) for line in lines]
    return route_order(
        demands,
        stock={MAIN: {TEE: 10, CAP: 10}} if stock is None else stock,
        connected_outlets=[MAIN, HARBOUR],
        primary_outlet=MAIN,
    )


def build(order: EcomOrder | None = None, lines: list[EcomOrderLine] | None = None, **kwargs: Any) -> Any:
    order = order or make_order()
    lines = lines or [make_line()]
    options: dict[str, Any] = {
        "plan": plan_for(lines),
        "payment": LSP,
        "register_id": REGISTER,
        "customer_id": "cust-mira",
        "shipping_product_id": SHIPPING,
    }
    return build_register_sale(order, lines, **{**options, **kwargs})


# -- status and reference --------------------------------------------------------------------------------------


def test_delivery_order_awaits_dispatch() -> None:
    assert build().body["status"] == "AWAITING_DISPATCH"


def test_pickup_order_awaits_pickup() -> None:
    assert build(make_order(shipmentIsPickup=True, shipmentPriceIncl=0, shipmentPriceExcl=0)).body["status"] == (
        "AWAITING_PICKUP"
    )


def test_source_id_is_derived_from_the_ecom_order_id_so_retries_find_the_same_sale() -> None:
    first, again = build(), build()
    assert first.source_id == first.body["source_id"] == "ecom-5501042" == source_id(make_order())
    assert first.body == again.body
    # The number is a display string the merchant may renumber; the id is the identity.
    assert build(make_order(number="WEB-77")).source_id == "ecom-5501042"


def test_body_carries_register_customer_date_and_leaves_the_invoice_number_to_the_pos() -> None:
    body = build(user_id="user-web").body
    assert body["register_id"] == REGISTER
    assert body["customer_id"] == "cust-mira"
    assert body["user_id"] == "user-web"
    assert body["sale_date"] == "2024-05-02 09:59:58"  # UTC, 0.9 format
    assert "invoice_number" not in body
    assert body["note"].startswith("eCom order ORD10042\nShipping: Courier NZ\nPayment: Lightspeed Payments (paid)")


def test_sale_without_a_customer_leaves_customer_id_out() -> None:
    assert "customer_id" not in build(customer_id=None).body


# -- prices and taxes ------------------------------------------------------------------------------------------


def test_lines_carry_the_tax_exclusive_unit_price_and_the_unit_tax() -> None:
    sale = build(make_order(shipmentPriceIncl=0, shipmentPriceExcl=0, priceIncl=64.0), shipping_product_id=None)
    assert sale.body["register_sale_products"] == [
        {"product_id": TEE, "quantity": 2, "price": 27.82609, "tax": 4.17392, "fulfilment_outlet_id": MAIN}
    ]
    assert sale.total_incl == Decimal("64.00")
    assert sale.warnings == ()


def test_tax_id_is_chosen_by_the_lines_tax_rate() -> None:
    lines = [make_line(), make_line(id=9002, sku="CAP", taxRate=0.0, priceIncl=10.0, priceExcl=10.0, quantityOrdered=1)]
    sale = build(lines=lines, tax_ids={1500: "tax-gst", 0: "tax-none"})
    taxes = [(row["product_id"], row.get("tax_id")) for row in sale.body["register_sale_products"]]
    assert taxes == [(TEE, "tax-gst"), (CAP, "tax-none"), (SHIPPING, "tax-gst")]
    assert "tax_id" not in build(tax_ids={900: "tax-reduced"}).body["register_sale_products"][0]


def test_line_discount_is_taken_off_when_ecom_totals_are_before_discount() -> None:
    line = make_line(discountIncl=6.4, discountExcl=5.56522)  # priceIncl is still 2 x 32.00
    assert unit_amounts(line) == (Decimal("25.04348"), Decimal("3.75653"))


def test_line_totals_already_net_of_discount_are_used_as_they_are() -> None:
    line = make_line(discountIncl=6.4, discountExcl=5.56522, priceIncl=57.6, priceExcl=50.08695)
    assert unit_amounts(line) == (Decimal("25.04348"), Decimal("3.75653"))


@given(
    st.integers(1, 50),
    st.decimals(min_value=Decimal("0.01"), max_value=Decimal("999.99"), places=2),
    st.sampled_from([Decimal("0"), Decimal("0.09"), Decimal("0.15"), Decimal("0.21")]),
)
def test_sale_line_total_matches_the_ecom_line_total_to_the_cent(
    quantity: int, unit_incl: Decimal, rate: Decimal
) -> None:
    incl = unit_incl * quantity
    excl = (incl / (1 + rate)).quantize(Decimal("0.00001"))
    line = make_line(quantityOrdered=quantity, priceIncl=float(incl), priceExcl=float(excl), basePriceExcl=None)
    price, tax = unit_amounts(line)
    total = (price * quantity).quantize(Decimal("0.01")) + (tax * quantity).quantize(Decimal("0.01"))
    assert abs(total - incl) <= Decimal("0.01")


# -- shipping --------------------------------------------------------------------------------------------------


def test_shipping_is_a_line_on_the_configured_shipping_product() -> None:
    sale = build()
    assert sale.body["register_sale_products"][-1] == {
        "product_id": SHIPPING,
        "quantity": 1,
        "price": 7.3913,
        "tax": 1.1087,
        "fulfilment_outlet_id": MAIN,
    }
    assert sale.total_incl == Decimal("72.50")
    assert sale.warnings == ()


def test_without_a_shipping_product_shipping_goes_in_the_note_and_a_warning() -> None:
    sale = build(shipping_product_id=None)
    assert [row["product_id"] for row in sale.body["register_sale_products"]] == [TEE]
    assert "Shipping charged online: 8.50 incl. tax (not on this sale)" in sale.body["note"]
    assert sale.warnings == ("shipping 8.50 is not on the sale: the connection has no shipping product configured",)
    assert sale.body["register_sale_payments"][0]["amount"] == 64.0  # the sale balances


def test_free_shipping_adds_no_line() -> None:
    sale = build(make_order(shipmentPriceIncl=0, shipmentPriceExcl=0, priceIncl=64.0))
    assert [row["product_id"] for row in sale.body["register_sale_products"]] == [TEE]


# -- payments --------------------------------------------------------------------------------------------------


def test_integrated_paid_order_carries_one_payment_of_the_sale_total() -> None:
    assert build().body["register_sale_payments"] == [
        {
            "register_id": REGISTER,
            "retailer_payment_type_id": "pt-lsp",
            "amount": 72.5,
            "payment_date": "2024-05-02 09:59:58",
        }
    ]


def test_unpaid_order_has_no_payment_and_says_why_in_the_note() -> None:
    sale = build(payment=LeaveUnpaid(reason="Cash is not an integrated payment method"))
    assert sale.body["register_sale_payments"] == []
    assert "Unpaid in POS: Cash is not an integrated payment method" in sale.body["note"]


def test_total_that_differs_from_the_ecom_order_is_reported() -> None:
    sale = build(make_order(priceIncl=70.0))
    assert sale.warnings == ("sale total 72.50 differs from the eCom order total 70.00",)


# -- fulfillment outlets ---------------------------------------------------------------------------------------


def test_line_split_over_outlets_becomes_one_sale_line_per_outlet() -> None:
    sale = build(lines=[make_line()], plan=plan_for([make_line()], stock={MAIN: {TEE: 1}, HARBOUR: {TEE: 1}}))
    rows = sale.body["register_sale_products"]
    assert [(r["product_id"], r["quantity"], r["fulfilment_outlet_id"]) for r in rows] == [
        (TEE, 1, MAIN),
        (TEE, 1, HARBOUR),
        (SHIPPING, 1, MAIN),
    ]
    assert sale.total_incl == Decimal("72.50")
    assert "not in stock" not in sale.body["note"]


def test_units_beyond_stock_are_mentioned_in_the_note() -> None:
    sale = build(plan=plan_for([make_line()], stock={}))
    assert "2 unit(s) were not in stock at import" in sale.body["note"]


def test_plan_that_does_not_cover_every_line_is_refused() -> None:
    lines = [make_line(), make_line(id=9002, sku="CAP")]
    with pytest.raises(ValueError, match="line 9002"):
        build(lines=lines, plan=plan_for([make_line()]))
    with pytest.raises(ValueError, match="not on the order"):
        build(lines=[make_line()], plan=plan_for(lines))


def test_customer_comment_is_kept_in_a_bounded_note() -> None:
    note = build(make_order(comment="Leave at the back door " * 100)).body["note"]
    assert "Customer comment: Leave at the back door" in note
    assert len(note) <= 1000


def test_pos_datetime_converts_to_utc() -> None:
    assert pos_datetime("2024-05-02T08:59:58Z") == "2024-05-02 08:59:58"
    assert pos_datetime("2024-05-02T08:59:58") == "2024-05-02 08:59:58"


# -- line matching ---------------------------------------------------------------------------------------------


def test_line_is_matched_through_the_variant_mapping_first() -> None:
    assert match_line(make_line(), variant_map={880001: "pos-mapped"}, by_sku={"HT-NAVY-M": TEE}, by_ean={}) == (
        "pos-mapped"
    )


def test_line_without_a_mapping_is_matched_by_sku_then_by_ean() -> None:
    assert match_line(make_line(), variant_map={}, by_sku={"HT-NAVY-M": TEE}, by_ean={"9400000000012": "x"}) == TEE
    assert match_line(make_line(), variant_map={}, by_sku={}, by_ean={"9400000000012": TEE}) == TEE


def test_sku_shared_by_several_pos_products_falls_through_to_the_ean() -> None:
    refs = {"HT-NAVY-M": [TEE, "pos-dupe"]}
    assert match_line(make_line(), variant_map={}, by_sku=refs, by_ean={"9400000000012": TEE}) == TEE
    unmatched = match_line(make_line(ean=None), variant_map={}, by_sku=refs, by_ean={})
    assert isinstance(unmatched, Unmatched)
    assert "SKU 'HT-NAVY-M' is on 2 POS products" in unmatched.reason


def test_order_with_an_unmatched_line_is_held_with_every_reason() -> None:
    lines = [
        make_line(),
        make_line(id=9002, sku="GHOST", ean=None, variant=False, productTitle="Gift wrap", variantTitle=None),
    ]
    result = match_lines(lines, variant_map={880001: TEE}, by_sku={}, by_ean={})
    assert isinstance(result, Hold)
    assert result.unmatched == (
        Unmatched(line_id=9002, title="Gift wrap", reason="no variant, no POS product has SKU 'GHOST', no EAN"),
    )
    assert result.reason == (
        "1 order line(s) match no POS product: line 9002 (Gift wrap): "
        "no variant, no POS product has SKU 'GHOST', no EAN"
    )


def test_fully_matched_order_gives_the_lines_to_route() -> None:
    lines = [make_line(), make_line(id=9002, quantityOrdered=0)]
    assert match_lines(lines, variant_map={880001: TEE}, by_sku={}, by_ean={}) == [LineDemand(9001, TEE, 2)]
