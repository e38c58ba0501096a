"""The X-Series 2026-07 `POST /sales` body of an imported eCom order, and the line matching that precedes it."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pos_ecom_sync.models.orders import EcomOrder, EcomOrderLine, FulfillmentPlan
from pos_ecom_sync.orders.payments import LeaveUnpaid, RecordPayment
from pos_ecom_sync.orders.routing import LineDemand, route_order
from pos_ecom_sync.orders.sale import (
    EAN_NOT_SEARCHABLE,
    Hold,
    SaleDraft,
    Unmatched,
    match_line,
    match_lines,
    sale_uuid,
    source_id,
    unit_amounts,
)
from pos_ecom_sync.profiles.xseries.sale import TaxTable, build_sale, pos_datetime

MAIN, HARBOUR = "out-main", "out-harbour"
REGISTER = "reg-online"
AUTHOR = "user-owner"
SALE_ID = sale_uuid("demo", 5501042)
TAXES = TaxTable(by_rate={1500: "tax-gst", 0: "tax-none"}, default_id="tax-gst")
TEE, CAP, SHIPPING = "pos-tee-navy-m", "pos-cap", "pos-shipping"
LSP = RecordPayment(payment_type_id="pt-lsp", name="Lightspeed Payments", method_title="Lightspeed Payments")

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
        "sale_id": SALE_ID,
        "plan": plan_for(lines),
        "payment": LSP,
        "register_id": REGISTER,
        "author_id": AUTHOR,
        "taxes": TAXES,
        "customer_id": "cust-mira",
        "shipping_product_id": SHIPPING,
    }
    options = {**options, **kwargs}
    author_id, taxes = options.pop("author_id"), options.pop("taxes")
    draft = SaleDraft(order, lines, sale_key=options.pop("sale_id"), **options)
    return build_sale(draft, author_id=author_id, taxes=taxes)


def line(product_id: str, quantity: int, price: float, tax: float, outlet: str, tax_id: str = "tax-gst") -> Any:
    return {
        "product": {"id": product_id},
        "quantity": quantity,
        "pricing": {"price": price},
        "tax": {"id": tax_id, "amount": tax},
        "fulfilment_outlet_id": outlet,
        "_metadata": {"fulfillment_method": "DISPATCH"},
    }


def rows(sale: Any) -> list[dict[str, Any]]:
    """The line items without their sequence (tested once, below)."""
    return [
        {**li, "_metadata": {k: v for k, v in li["_metadata"].items() if k != "sequence"}}
        for li in sale.body["line_items"]
    ]


# -- identity, state and reference ----------------------------------------------------------------------------


def test_the_sale_id_is_ours_and_the_same_for_every_attempt_of_one_connection() -> None:
    assert sale_uuid("demo", 5501042) == sale_uuid("demo", 5501042) == build().body["id"] == SALE_ID
    assert sale_uuid("demo", 5501043) != SALE_ID and sale_uuid("other-shop", 5501042) != SALE_ID
    assert str(uuid.UUID(SALE_ID)) == SALE_ID  # `SaleRequest.id` is a uuid


def test_delivery_order_is_pending_with_the_delivery_attribute_and_each_line_says_dispatch() -> None:
    body = build().body
    assert body["state"] == "pending" and body["attributes"] == ["delivery"]  # legacy AWAITING_DISPATCH
    assert {li["_metadata"]["fulfillment_method"] for li in body["line_items"]} == {"DISPATCH"}
    assert "fulfillment_details" not in body  # a DISPATCH detail needs a POS shipping address we do not have


def test_pickup_order_is_pending_with_the_pickup_attribute() -> None:
    body = build(make_order(shipmentIsPickup=True, shipmentPriceIncl=0, shipmentPriceExcl=0)).body
    assert body["state"] == "pending" and body["attributes"] == ["pickup"]
    assert {li["_metadata"]["fulfillment_method"] for li in body["line_items"]} == {"PICKUP"}


def test_a_cancelled_order_becomes_a_voided_sale_without_fulfilment_or_payment() -> None:
    body = build(make_order(paymentStatus="cancelled")).body
    assert body["state"] == "voided" and "attributes" not in body and "payments" not in body
    assert all("_metadata" not in li or "fulfillment_method" not in li["_metadata"] for li in body["line_items"])


def test_source_names_the_author_the_register_and_the_order_so_people_can_tell_which_order_it_is() -> None:
    first, again = build(), build()
    assert first.body["source"] == {
        "author_id": AUTHOR, "id": "ecom-5501042", "type": "Lightspeed eCom", "register_id": REGISTER,
    }  # fmt: skip
    assert first.source_id == "ecom-5501042" == source_id(make_order())
    assert first.body == again.body
    # The number is a display string the merchant may renumber; the id is the identity.
    assert build(make_order(number="WEB-77")).source_id == "ecom-5501042"


def test_body_carries_customer_and_rfc3339_date_and_leaves_the_invoice_number_to_the_pos() -> None:
    body = build().body
    assert body["customer_id"] == "cust-mira"
    assert body["date"] == "2024-05-02T09:59:58Z"  # UTC, the vendor's example format
    assert "invoice_number" not in body
    assert body["note"].startswith("eCom order ORD10042\nShipping: Courier NZ\nPayment: Lightspeed Payments (paid)")


def test_sale_without_a_customer_leaves_customer_id_out() -> None:
    assert "customer_id" not in build(customer_id=None).body


def test_every_required_field_of_the_vendor_request_is_present() -> None:
    body = build().body
    assert body["source"]["author_id"] and body["state"]
    for item in body["line_items"]:
        assert item["product"]["id"] and item["quantity"] and "price" in item["pricing"]
        assert item["tax"]["id"] and "amount" in item["tax"]
    for payment in body["payments"]:
        assert "amount" in payment and payment["type"]["config_id"]
    with pytest.raises(ValueError, match="author_id"):
        build(author_id="")


# -- prices and taxes ------------------------------------------------------------------------------------------


def test_lines_carry_the_tax_exclusive_unit_price_and_the_unit_tax() -> None:
    sale = build(make_order(shipmentPriceIncl=0, shipmentPriceExcl=0, priceIncl=64.0), shipping_product_id=None)
    assert rows(sale) == [line(TEE, 2, 27.82609, 4.17392, MAIN)]
    assert [li["_metadata"]["sequence"] for li in sale.body["line_items"]] == [0]
    assert sale.total_incl == Decimal("64.00")
    assert sale.warnings == ()


def test_tax_id_is_chosen_by_the_lines_tax_rate_and_an_unknown_rate_takes_the_default_with_a_warning() -> None:
    lines = [make_line(), make_line(id=9002, sku="CAP", taxRate=0.0, priceIncl=10.0, priceExcl=10.0, quantityOrdered=1)]
    sale = build(lines=lines)
    taxes = [(row["product"]["id"], row["tax"]["id"]) for row in sale.body["line_items"]]
    assert taxes == [(TEE, "tax-gst"), (CAP, "tax-none"), (SHIPPING, "tax-gst")]
    reduced = build(taxes=TaxTable(by_rate={900: "tax-reduced"}, default_id="tax-default"))
    assert reduced.body["line_items"][0]["tax"]["id"] == "tax-default"
    assert "no POS tax has the rate 15%: those lines use the POS default tax" in reduced.warnings


def test_the_tax_table_reads_the_rates_of_each_pos_tax_and_its_default() -> None:
    table = TaxTable.from_taxes(
        [
            {"id": "t-none", "name": "No Tax", "is_default": False, "rates": [{"id": "r0", "rate": 0}]},
            {"id": "t-gst", "name": "GST", "is_default": True, "rates": [{"id": "r1", "rate": 0.15}]},
            {"id": "t-old", "name": "Old", "deleted_at": "2020-01-01T00:00:00Z", "rates": [{"id": "r2", "rate": 0.09}]},
        ]
    )
    assert table.by_rate == {0: "t-none", 1500: "t-gst"} and table.default_id == "t-gst"
    with pytest.raises(ValueError, match="no tax"):
        TaxTable.from_taxes([])


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
    assert rows(sale)[-1] == line(SHIPPING, 1, 7.3913, 1.1087, MAIN)
    assert sale.total_incl == Decimal("72.50")
    assert sale.warnings == ()


def test_a_sale_with_shipping_is_never_built_without_a_shipping_product() -> None:
    with pytest.raises(ValueError, match=r"charges shipping 8\.50: a sale needs a shipping product"):
        build(shipping_product_id=None)
    free = build(make_order(shipmentPriceIncl=0, shipmentPriceExcl=0, priceIncl=64.0), shipping_product_id=None)
    assert free.total_incl == Decimal("64.00")


def test_with_shipping_and_a_discounted_line_the_sale_totals_the_ecom_order_to_the_cent() -> None:
    discounted = make_line(discountIncl=6.4, discountExcl=5.56522)  # 2 x 32.00 before a 10% discount
    order = make_order(priceIncl=57.6 + 8.5)
    sale = build(order, lines=[discounted])
    assert sale.total_incl == Decimal("66.10")
    assert sale.warnings == ()
    assert sale.body["payments"][0]["amount"] == 66.1


def test_free_shipping_adds_no_line() -> None:
    sale = build(make_order(shipmentPriceIncl=0, shipmentPriceExcl=0, priceIncl=64.0))
    assert [row["product"]["id"] for row in sale.body["line_items"]] == [TEE]


# -- payments --------------------------------------------------------------------------------------------------


def test_integrated_paid_order_carries_one_payment_of_the_sale_total() -> None:
    assert build().body["payments"] == [
        {
            "amount": 72.5,
            "type": {"config_id": "pt-lsp"},
            "source": {"register_id": REGISTER},
            "date": "2024-05-02T09:59:58Z",
        }
    ]


def test_unpaid_order_has_no_payment_and_says_why_in_the_note() -> None:
    sale = build(payment=LeaveUnpaid(reason="Cash is not an integrated payment method"))
    assert "payments" not in sale.body
    assert "Unpaid in POS: Cash is not an integrated payment method" in sale.body["note"]


def test_total_that_differs_from_the_ecom_order_is_reported() -> None:
    sale = build(make_order(priceIncl=70.0))
    assert sale.warnings == ("sale total 72.50 differs from the eCom order total 70.00",)


# -- fulfillment outlets ---------------------------------------------------------------------------------------


def test_line_split_over_outlets_becomes_one_sale_line_per_outlet() -> None:
    sale = build(lines=[make_line()], plan=plan_for([make_line()], stock={MAIN: {TEE: 1}, HARBOUR: {TEE: 1}}))
    assert [(r["product"]["id"], r["quantity"], r["fulfilment_outlet_id"]) for r in sale.body["line_items"]] == [
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


def test_pos_datetime_converts_to_rfc3339_utc() -> None:
    assert pos_datetime("2024-05-02T08:59:58Z") == "2024-05-02T08:59:58Z"
    assert pos_datetime("2024-05-02T20:59:58+12:00") == "2024-05-02T08:59:58Z"
    assert pos_datetime("2024-05-02T08:59:58") == "2024-05-02T08:59:58Z"


# -- line matching ---------------------------------------------------------------------------------------------


def test_line_is_matched_through_the_variant_mapping_first() -> None:
    assert match_line(make_line(), variant_map={880001: "pos-mapped"}, by_sku={"HT-NAVY-M": TEE}, by_ean={}) == (
        "pos-mapped"
    )


def test_line_without_a_mapping_is_matched_by_sku_then_by_ean() -> None:
    assert match_line(make_line(), variant_map={}, by_sku={"HT-NAVY-M": TEE}, by_ean={"9400000000012": "x"}) == TEE
    assert match_line(make_line(), variant_map={}, by_sku={}, by_ean={"9400000000012": TEE}) == TEE


def test_an_ean_the_pos_cannot_be_searched_by_holds_the_line_with_that_reason() -> None:
    unmatched = match_line(make_line(), variant_map={}, by_sku={}, by_ean=None)
    assert isinstance(unmatched, Unmatched)
    assert unmatched.reason == (
        f"variant 880001 is not mapped, no POS product has SKU 'HT-NAVY-M', EAN '9400000000012': {EAN_NOT_SEARCHABLE}"
    )
    assert match_line(make_line(), variant_map={}, by_sku={"HT-NAVY-M": TEE}, by_ean=None) == TEE


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
