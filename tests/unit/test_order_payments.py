"""Payments of imported orders: integrated methods carry the processor name, the rest arrive unpaid (seeds 001/004)."""

from __future__ import annotations

import pytest
from pos_ecom_sync.models.connection import Connection, PaymentMethodSetting
from pos_ecom_sync.models.orders import EcomOrder
from pos_ecom_sync.orders.payments import (
    DEFAULT_PAYMENT_METHODS,
    LeaveUnpaid,
    RecordPayment,
    payment_for,
    setting_for,
)
from pos_ecom_sync.profiles.xseries.orders import payment_types_of

# The simulator's payment types (name, type_id), with ids, as the X-Series profile reads them (deleted ones go).
PAYMENT_TYPES = payment_types_of(
    [
        {"id": "pt-cash", "name": "Cash", "type_id": 1},
        {"id": "pt-card", "name": "Credit Card", "type_id": 2},
        {"id": "pt-lsp", "name": "Lightspeed Payments", "type_id": 2},
        {"id": "pt-bank", "name": "Bank Deposit", "type_id": 4},
        {"id": "pt-old-stripe", "name": "Stripe", "type_id": 2, "deleted_at": "2023-01-01T00:00:00+00:00"},
        {"id": "pt-stripe", "name": "Stripe", "type_id": 2},
    ]
)


def order(title: str | None, status: str = "paid") -> EcomOrder:
    return EcomOrder.model_validate(
        {
            "id": 5501042,
            "number": "ORD10042",
            "status": "processing_awaiting_shipment",
            "paymentStatus": status,
            "paymentTitle": title,
            "updatedAt": "2024-05-02T09:00:00+00:00",
        }
    )


def test_paid_order_with_an_integrated_method_records_a_payment_named_after_the_processor() -> None:
    decision = payment_for(order("Lightspeed Payments"), {}, PAYMENT_TYPES)
    assert decision == RecordPayment(
        payment_type_id="pt-lsp", name="Lightspeed Payments", method_title="Lightspeed Payments"
    )


def test_integrated_method_title_matches_case_insensitively_and_by_prefix() -> None:
    decision = payment_for(order("lightspeed  PAYMENTS - iDEAL"), {}, PAYMENT_TYPES)
    assert isinstance(decision, RecordPayment) and decision.payment_type_id == "pt-lsp"


@pytest.mark.parametrize("title", ["Cash", "Cheque", "Bank deposit", "Invoice", "Cash on delivery"])
def test_unintegrated_methods_arrive_unpaid(title: str) -> None:
    decision = payment_for(order(title), {}, PAYMENT_TYPES)
    assert isinstance(decision, LeaveUnpaid)
    assert not decision.needs_attention


def test_unknown_method_arrives_unpaid() -> None:
    decision = payment_for(order("Crypto Wallet"), {}, PAYMENT_TYPES)
    assert decision == LeaveUnpaid(reason="Crypto Wallet is not an integrated payment method")


@pytest.mark.parametrize("status", ["not_paid", "partially_paid", "cancelled"])
def test_order_that_is_not_paid_arrives_unpaid_even_with_an_integrated_method(status: str) -> None:
    decision = payment_for(order("Lightspeed Payments", status), {}, PAYMENT_TYPES)
    assert decision == LeaveUnpaid(reason=f"payment status is {status}")


def test_order_without_a_payment_method_arrives_unpaid() -> None:
    assert isinstance(payment_for(order(None), {}, PAYMENT_TYPES), LeaveUnpaid)


def test_connection_can_mark_a_method_integrated_and_its_pos_payment_type_is_found_by_name() -> None:
    mapping = {"Stripe": PaymentMethodSetting(mode="integrated")}
    decision = payment_for(order("Stripe"), mapping, PAYMENT_TYPES)
    assert decision == RecordPayment(payment_type_id="pt-stripe", name="Stripe", method_title="Stripe")


def test_connection_can_point_a_method_at_a_payment_type_id() -> None:
    mapping = {"PayPal": PaymentMethodSetting(mode="integrated", payment_type_id="pt-card")}
    decision = payment_for(order("PayPal"), mapping, PAYMENT_TYPES)
    assert decision == RecordPayment(payment_type_id="pt-card", name="Credit Card", method_title="PayPal")


def test_connection_can_turn_the_default_integrated_method_off() -> None:
    mapping = {"lightspeed payments": PaymentMethodSetting(mode="unpaid")}
    assert isinstance(payment_for(order("Lightspeed Payments"), mapping, PAYMENT_TYPES), LeaveUnpaid)


def test_integrated_method_without_a_matching_pos_payment_type_arrives_unpaid_and_needs_attention() -> None:
    types = [t for t in PAYMENT_TYPES if t.id != "pt-lsp"]
    decision = payment_for(order("Lightspeed Payments"), {}, types)
    assert isinstance(decision, LeaveUnpaid) and decision.needs_attention
    assert "Lightspeed Payments" in decision.reason
    mapping = {"PayPal": PaymentMethodSetting(mode="integrated", payment_type_id="pt-gone")}
    decision = payment_for(order("PayPal"), mapping, PAYMENT_TYPES)
    assert isinstance(decision, LeaveUnpaid) and decision.needs_attention


def test_defaults_integrate_only_lightspeed_payments() -> None:
    integrated = [k for k, v in DEFAULT_PAYMENT_METHODS.items() if v.mode == "integrated"]
    assert integrated == ["lightspeed payments"]
    # A word-boundary prefix only: "cashback" is not "cash".
    assert setting_for("Cashback card", {}) is None


def test_a_stored_connection_reads_its_payment_methods_as_validated_settings() -> None:
    urls = {"pos_base_url": "https://x.retail.lightspeed.app", "ecom_base_url": "https://api.webshopapp.com"}
    stored = {"PayPal": {"mode": "integrated", "payment_type_id": "pt-card"}}
    connection = Connection.model_validate({"connection_id": "shop-1", **urls, "payment_methods": stored})
    assert connection.payment_methods == {"PayPal": PaymentMethodSetting(mode="integrated", payment_type_id="pt-card")}
    assert setting_for("paypal", connection.payment_methods) == connection.payment_methods["PayPal"]
    unknown_mode = {"PayPal": {"mode": "sometimes"}}
    with pytest.raises(ValueError):
        Connection.model_validate({"connection_id": "shop-1", **urls, "payment_methods": unknown_mode})
