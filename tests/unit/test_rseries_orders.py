"""R-Series order import and status, without I/O: the `POST Sale.json` body of an eCom order (lines, prices, tax,
payment, reference, voided when cancelled, open when unpaid), a Sale row read as the neutral sale status sync uses,
and the find-again rule that never adopts a sale carrying another reference."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from pos_ecom_sync.errors import InvalidInput, UpstreamError
from pos_ecom_sync.models.connection import Connection
from pos_ecom_sync.models.messages import ChangeMessage
from pos_ecom_sync.models.orders import (
    AssignedLine,
    EcomOrder,
    EcomOrderLine,
    FulfillmentPlan,
    OutletAssignment,
    RoutingStrategy,
)
from pos_ecom_sync.models.references import in_store_reference, order_in_reference
from pos_ecom_sync.models.sales import SaleState
from pos_ecom_sync.orders.payments import LeaveUnpaid, RecordPayment
from pos_ecom_sync.orders.sale import SaleDraft, sale_uuid
from pos_ecom_sync.profiles.rseries.orders import RSeriesOrders
from pos_ecom_sync.profiles.rseries.sales import REFERENCE_SOURCE, build_sale, sale_hint_of, sale_of_row
from pos_ecom_sync.profiles.rseries.status import NoFulfillments, RSeriesSales
from pos_ecom_sync.reference import ReferenceCache

SHOP, OTHER_SHOP, REGISTER = "1", "2", "4"
TEE, CAP, SHIPPING = "41", "42", "90"
LSP = RecordPayment(payment_type_id="3", name="Credit Card", method_title="Lightspeed Payments")
ORDER: dict[str, Any] = {
    "id": 5501042,
    "number": "ORD10042",
    "status": "processing_awaiting_shipment",
    "paymentStatus": "paid",
    "paymentTitle": "Lightspeed Payments",
    "shipmentPriceIncl": 8.5,
    "shipmentPriceExcl": 7.3913,
    "priceIncl": 72.5,
    "updatedAt": "2024-05-02T09:00:00+00:00",
}
TEE_LINE: dict[str, Any] = {
    "id": 9001,
    "quantityOrdered": 2,
    "sku": "HT-NAVY-M",
    "priceIncl": 64.0,
    "priceExcl": 55.65217,
    "taxRate": 0.15,
}
GIFT_CARD_LINE: dict[str, Any] = {"id": 9002, "quantityOrdered": 1, "priceIncl": 10.0, "priceExcl": 10.0}


def plan(*parts: tuple[str, int, str, int]) -> FulfillmentPlan:
    """(outlet, line id, product, quantity) parts, grouped per outlet in the order given."""
    outlets: dict[str, list[AssignedLine]] = {}
    for outlet, line_id, product, quantity in parts:
        outlets.setdefault(outlet, []).append(AssignedLine(line_id=line_id, product_id=product, quantity=quantity))
    strategy: RoutingStrategy = "split" if len(outlets) > 1 else "single_outlet"
    return FulfillmentPlan(
        strategy=strategy,
        assignments=tuple(OutletAssignment(outlet_id=o, lines=tuple(lines)) for o, lines in outlets.items()),
    )


def draft(
    payment: RecordPayment | LeaveUnpaid = LSP,
    *,
    lines: tuple[dict[str, Any], ...] = (TEE_LINE,),
    routed: FulfillmentPlan | None = None,
    **order: Any,
) -> SaleDraft:
    return SaleDraft(
        EcomOrder.model_validate({**ORDER, **order}),
        [EcomOrderLine.model_validate(line) for line in lines],
        sale_key=sale_uuid("shop", ORDER["id"]),
        plan=routed or plan((SHOP, 9001, TEE, 2)),
        payment=payment,
        register_id=REGISTER,
        customer_id="7",
        shipping_product_id=SHIPPING,
    )


def body_of(d: SaleDraft, **kwargs: Any) -> dict[str, Any]:
    options: dict[str, Any] = {"shop_id": SHOP, "register_id": REGISTER, "employee_id": "1", "payment_type_id": None}
    return build_sale(d, **{**options, **kwargs}).body


# -- the sale body -------------------------------------------------------------------------------------------


def test_a_paid_order_is_one_completed_sale_paid_its_total_with_our_reference_and_payment_key() -> None:
    d = draft()
    sale = build_sale(d, shop_id=SHOP, register_id=REGISTER, employee_id="1", payment_type_id="3")
    body = sale.body
    assert body["referenceNumber"] == "ecom-5501042" and body["referenceNumberSource"] == REFERENCE_SOURCE
    assert order_in_reference(body["referenceNumber"]) == 5501042  # status sync finds the order back
    assert (body["shopID"], body["registerID"], body["employeeID"], body["customerID"]) == (SHOP, REGISTER, "1", "7")
    assert body["completed"] == "true" and "voided" not in body
    tee, shipping = body["SaleLines"]["SaleLine"]
    assert tee == {"itemID": TEE, "unitQuantity": "2", "unitPrice": "27.82609", "tax": "true"}  # excl. tax per unit
    assert shipping == {"itemID": SHIPPING, "unitQuantity": "1", "unitPrice": "7.3913", "tax": "true"}
    [payment] = body["SalePayments"]["SalePayment"]
    assert payment == {"paymentTypeID": "3", "amount": "72.5", "remoteReference": d.sale_key}
    assert sale.paid and sale.expected_total == Decimal("72.50") and sale.warnings == ()


def test_an_unpaid_order_stays_an_open_sale_without_payments() -> None:
    body = body_of(draft(LeaveUnpaid("payment status is not_paid"), paymentStatus="not_paid"))
    assert body["completed"] == "false" and "SalePayments" not in body and "voided" not in body


def test_a_paid_order_whose_method_is_not_integrated_arrives_open() -> None:
    body = body_of(draft(LeaveUnpaid("Bank transfer is not an integrated payment method")))
    assert body["completed"] == "false" and "SalePayments" not in body


def test_a_cancelled_order_becomes_a_voided_sale_that_pays_nothing() -> None:
    body = body_of(draft(LSP, paymentStatus="cancelled"), payment_type_id="3")
    assert body["voided"] == "true" and body["completed"] == "false" and "SalePayments" not in body


def test_a_line_ecom_charged_no_tax_on_is_sent_untaxed_so_the_pos_adds_none() -> None:
    d = draft(
        lines=(TEE_LINE, GIFT_CARD_LINE),
        routed=plan((SHOP, 9001, TEE, 2), (SHOP, 9002, CAP, 1)),
        shipmentPriceIncl=0,
        shipmentPriceExcl=0,
        priceIncl=74.0,
    )
    tee, card = body_of(d)["SaleLines"]["SaleLine"]
    assert tee["tax"] == "true" and card == {"itemID": CAP, "unitQuantity": "1", "unitPrice": "10", "tax": "false"}


def test_a_discounted_line_is_sold_at_its_net_unit_price() -> None:
    line = {**TEE_LINE, "basePriceExcl": 27.82609, "discountExcl": 5.0, "discountIncl": 5.75}
    [tee, _] = body_of(draft(lines=(line,)))["SaleLines"]["SaleLine"]
    assert tee["unitPrice"] == "25.32609"  # (55.65217 - 5) / 2


def test_a_split_order_is_sold_from_the_first_shop_with_a_warning_naming_the_others() -> None:
    d = draft(routed=plan((SHOP, 9001, TEE, 1), (OTHER_SHOP, 9001, TEE, 1)))
    sale = build_sale(d, shop_id=SHOP, register_id=REGISTER, employee_id=None, payment_type_id=None)
    [tee, _] = sale.body["SaleLines"]["SaleLine"]
    assert tee["unitQuantity"] == "2" and "employeeID" not in sale.body  # one line, one shop
    assert any("one shop" in w and OTHER_SHOP in w for w in sale.warnings)


def test_shipping_without_a_shipping_item_is_never_built_short() -> None:
    d = draft()
    d = SaleDraft(d.order, d.lines, d.sale_key, d.plan, d.payment, d.register_id, d.customer_id, None)
    with pytest.raises(ValueError, match="shipping product"):
        body_of(d)


# -- a Sale row as status sync reads it ------------------------------------------------------------------------


def sale_row(**changes: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "saleID": "156",
        "completed": "false",
        "voided": "false",
        "archived": "false",
        "referenceNumber": "ecom-5501042",
        "referenceNumberSource": "eCom",
        "total": "72.5",
        "calcPayments": "0",
        "SaleLines": {"SaleLine": {"saleLineID": "9", "itemID": TEE, "unitQuantity": "2"}},
        "SalePayments": "",
    }
    return {**row, **changes}


@pytest.mark.parametrize(
    ("changes", "state", "label"),
    [
        ({}, SaleState.OPEN, "open"),
        ({"completed": "true"}, SaleState.CLOSED, "completed"),
        ({"voided": "true"}, SaleState.VOIDED, "voided"),
        ({"completed": "true", "voided": "true"}, SaleState.VOIDED, "voided"),
        ({"archived": "true"}, SaleState.VOIDED, "archived"),  # an open sale deleted in the POS
    ],
)
def test_a_sale_row_reads_as_open_closed_or_voided(changes: dict[str, Any], state: SaleState, label: str) -> None:
    sale = sale_of_row(sale_row(**changes))
    assert (sale.state, sale.label) == (state, label)


def test_a_sale_row_reads_its_total_live_payments_lines_and_our_reference() -> None:
    payments = {
        "SalePayment": [
            {"salePaymentID": "1", "amount": "50", "archived": "false"},
            {"salePaymentID": "2", "amount": "22.5", "archived": "true"},  # "essentially voided"
        ]
    }
    sale = sale_of_row(sale_row(SalePayments=payments))
    assert (sale.sale_id, sale.total, sale.paid) == ("156", Decimal("72.5"), Decimal("50"))
    assert [(li.line_id, li.product_id, li.quantity) for li in sale.lines] == [("9", TEE, Decimal(2))]
    assert order_in_reference(sale.reference) == 5501042 and sale.return_for is None


def test_another_systems_reference_never_reads_as_an_ecom_order() -> None:
    sale = sale_of_row(sale_row(referenceNumber="ecom-5501042", referenceNumberSource="amazon"))
    assert order_in_reference(sale.reference) is None and in_store_reference(sale.reference)
    assert sale_of_row(sale_row(referenceNumber="", referenceNumberSource="")).reference is None


def test_a_queued_sale_change_hints_its_reference() -> None:
    message = ChangeMessage(
        connection_id="shop",
        source="pos",
        entity="sale",
        entity_id="156",
        via="poll",
        received_at=datetime(2026, 12, 5, tzinfo=UTC),
        concern="statuses",
        payload={"saleID": "156", "referenceNumber": "ecom-77", "referenceNumberSource": "eCom"},
    )
    assert sale_hint_of(message).reference == "ecom-77"


# -- finding a sale again ----------------------------------------------------------------------------------------


class FakeClient:
    def __init__(self, found: dict[str, Any] | None = None, **answers: Any) -> None:
        self.found = found
        self.answers = answers
        self.sent: list[tuple[str, Any]] = []

    @property
    def calls(self) -> int:
        return len(self.sent)

    def find_sale_by_reference(self, reference: str, source: str) -> dict[str, Any] | None:
        self.sent.append(("find", (reference, source)))
        return self.found

    def create_sale(self, sale: dict[str, Any]) -> dict[str, Any]:
        self.sent.append(("create", sale))
        answer = self.answers["create"].pop(0)
        if isinstance(answer, Exception):
            raise answer
        return dict(answer)

    def update_sale(self, sale_id: str, fields: dict[str, Any]) -> dict[str, Any]:
        self.sent.append(("update", (sale_id, fields)))
        return dict(self.answers["update"].pop(0))

    def list_registers(self) -> list[dict[str, Any]]:
        return [{"registerID": REGISTER, "shopID": SHOP, "openEmployeeID": "5", "archived": "false"}]

    def get_sale(self, sale_id: str) -> dict[str, Any] | None:
        self.sent.append(("get", sale_id))
        found: dict[str, Any] | None = self.answers["get"]
        return found


def orders(client: FakeClient) -> RSeriesOrders:
    connection = Connection(connection_id="shop", pos_base_url="http://pos", ecom_base_url="http://ecom")
    return RSeriesOrders(client, connection, ReferenceCache())  # type: ignore[arg-type]


def test_find_sale_adopts_the_sale_carrying_our_reference() -> None:
    client = FakeClient({"saleID": "156", "customerID": "7", **sale_row()})
    found = orders(client).find_sale("any-key", "ecom-5501042")
    assert found is not None and (found.sale_id, found.customer_id) == ("156", "7")
    assert client.sent == [("find", ("ecom-5501042", "eCom"))]


@pytest.mark.parametrize(
    "changes",
    [{"referenceNumber": "ecom-5501043"}, {"referenceNumberSource": "amazon"}, {"referenceNumber": ""}],
)
def test_find_sale_refuses_a_sale_whose_reference_is_not_ours(changes: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput, match="not adopted"):
        orders(FakeClient(sale_row(**changes))).find_sale("any-key", "ecom-5501042")


def test_find_sale_finds_nothing_when_no_sale_carries_the_reference() -> None:
    assert orders(FakeClient(None)).find_sale("any-key", "ecom-5501042") is None


# -- creating the sale -----------------------------------------------------------------------------------------


def test_a_pos_refusing_the_balanced_sale_gets_it_open_then_paid_its_own_total_with_a_warning() -> None:
    refused = UpstreamError("rseries", 400, "Sale not completed. Payments must equal the sale total.")
    client = FakeClient(
        create=[refused, {"saleID": "160", "total": "73.1", "completed": "false"}],
        update=[{"saleID": "160", "completed": "true"}],
    )
    created = orders(client).create_sale(draft())
    assert created.sale_id == "160"
    (_, first), (_, second), (_, (sale_id, payment)) = client.sent
    assert first["completed"] == "true" and "SalePayments" in first
    assert second["completed"] == "false" and "SalePayments" not in second
    assert sale_id == "160" and payment["completed"] == "true"
    assert payment["SalePayments"]["SalePayment"][0]["amount"] == "73.1"  # the POS's own total balances it
    assert any("73.10" in w and "72.50" in w for w in created.warnings)
    assert second["employeeID"] == "5"  # the register's openEmployeeID


def test_a_cancelled_order_the_create_left_open_is_voided_at_once() -> None:
    client = FakeClient(
        create=[{"saleID": "161", "voided": "false"}],
        update=[{"saleID": "161", "voided": "true"}],
    )
    created = orders(client).create_sale(draft(paymentStatus="cancelled"))
    assert created.sale_id == "161" and created.warnings == ()
    assert client.sent[-1] == ("update", ("161", {"voided": "true"}))


def test_a_void_that_does_not_take_is_a_warning_not_a_failed_import() -> None:
    client = FakeClient(create=[{"saleID": "162", "voided": "false"}], update=[{"saleID": "162", "voided": "false"}])
    created = orders(client).create_sale(draft(paymentStatus="cancelled"))
    assert created.sale_id == "162" and any("not voided" in w for w in created.warnings)


# -- status writes ---------------------------------------------------------------------------------------------


def sales(client: FakeClient) -> RSeriesSales:
    connection = Connection(connection_id="shop", pos_base_url="http://pos", ecom_base_url="http://ecom")
    return RSeriesSales(client, connection)  # type: ignore[arg-type]


def test_a_payment_that_balances_the_sale_completes_it_with_a_remote_reference() -> None:
    client = FakeClient(get=sale_row(), update=[{"saleID": "156"}])
    adapter = sales(client)
    sale = adapter.sale("156")
    assert sale is not None
    adapter.record_payment(sale, "3", Decimal("72.5"))
    (_, (sale_id, fields)) = client.sent[-1]
    assert sale_id == "156" and fields["completed"] == "true"
    assert fields["SalePayments"]["SalePayment"] == [
        {"paymentTypeID": "3", "amount": "72.5", "remoteReference": "ecom-5501042:paid:1"}
    ]


def test_a_partial_payment_leaves_the_sale_open() -> None:
    client = FakeClient(get=sale_row(), update=[{"saleID": "156"}])
    adapter = sales(client)
    sale = adapter.sale("156")
    assert sale is not None
    adapter.record_payment(sale, "3", Decimal("20"))
    assert "completed" not in client.sent[-1][1][1]


def test_a_void_the_pos_did_not_take_fails_instead_of_counting_as_done() -> None:
    client = FakeClient(get=sale_row(), update=[{"saleID": "156", "voided": "false"}])
    adapter = sales(client)
    sale = adapter.sale("156")
    assert sale is not None
    with pytest.raises(UpstreamError, match="not voided"):
        adapter.void(sale)


def test_an_r_series_sale_has_no_fulfilments_to_complete_or_pack() -> None:
    adapter = sales(FakeClient(get=sale_row()))
    assert adapter.fulfillments("156") == ()
    sale = adapter.sale("156")
    assert sale is not None
    with pytest.raises(NoFulfillments):
        adapter.complete_fulfillments(sale)
