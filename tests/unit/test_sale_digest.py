"""The sale digest each POS profile computes, so status sync knows the echo of its own void or payment without a
read (`models.sales.sale_digest`, `profiles/*/sales.py`): what it takes in, what it leaves out, what it refuses."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from pos_ecom_sync.models.messages import ChangeMessage
from pos_ecom_sync.models.sales import PosSale, SaleState, WrittenSale
from pos_ecom_sync.profiles.rseries import sales as rseries
from pos_ecom_sync.profiles.xseries import sales as xseries
from pos_ecom_sync.state.status_store import _written_items, status_record

CASH, CARD = "pt-cash", "pt-card"
SALE_2_0 = {  # GET /api/2.0/sales/{id}, the sales feed's rows alike
    "id": "sale-1",
    "status": "AWAITING_DISPATCH",
    "total_price": 43.48,
    "total_tax": 6.52,
    "payments": [{"retailer_payment_type_id": CASH, "amount": 20.0, "payment_date": "2026-07-01T10:00:00Z"}],
    "line_items": [{"id": "l1", "product_id": "p1", "quantity": 1, "price": 43.48, "unit_tax": 6.52}],
}


def test_our_payment_body_digests_as_the_sale_the_pos_shows_after_it_whatever_shape_it_comes_in() -> None:
    payments = [*xseries.existing_payments(SALE_2_0), {"retailer_payment_type_id": CARD, "amount": float(30)}]
    body = xseries.register_sale_update(SALE_2_0, status="AWAITING_DISPATCH", payments=payments)
    written = xseries.written_digest(SALE_2_0, body)
    # The webhook's 1.0 payload: payments under another key, in another order, amounts as text to other places.
    payload = {
        "id": "sale-1",
        "status": "AWAITING_DISPATCH",
        "total_price": "43.48000",
        "total_tax": 6.52,
        "register_sale_payments": [
            {"retailer_payment_type_id": CARD, "amount": "30.00"},
            {"retailer_payment_type_id": CASH, "amount": 20},
        ],
    }
    assert written is not None and xseries.content_digest_of(payload) == written
    assert xseries.content_digest_of(SALE_2_0) != written  # the sale before our write


def test_a_sale_that_differs_in_status_total_payment_type_or_amount_has_another_digest() -> None:
    base = xseries.content_digest_of(SALE_2_0)
    payment = SALE_2_0["payments"][0]  # type: ignore[index]
    others = [
        {**SALE_2_0, "status": "VOIDED"},
        {**SALE_2_0, "total_price": 44.48},
        {**SALE_2_0, "id": "sale-2"},
        {**SALE_2_0, "payments": [{**payment, "retailer_payment_type_id": CARD}]},
        {**SALE_2_0, "payments": [{**payment, "amount": 20.01}]},
        {**SALE_2_0, "payments": [payment, payment]},
        {**SALE_2_0, "payments": []},
    ]
    digests = {xseries.content_digest_of(row) for row in others}
    assert None not in digests and base not in digests and len(digests) == len(others)


def test_a_write_that_changes_nothing_the_digest_shows_leaves_no_digest_to_wait_for() -> None:
    body = xseries.register_sale_update(SALE_2_0, status="AWAITING_DISPATCH")
    assert xseries.written_digest(SALE_2_0, body) is None


def test_a_row_missing_what_the_digest_needs_has_none_and_is_read() -> None:
    for missing in ("status", "total_tax", "payments"):
        assert xseries.content_digest_of({k: v for k, v in SALE_2_0.items() if k != missing}) is None
    assert xseries.content_digest_of({**SALE_2_0, "payments": [{"amount": 1}]}) is None
    assert xseries.content_digest_of({**SALE_2_0, "total_price": True}) is None


def test_our_fulfil_may_leave_the_sale_as_read_or_closed_as_the_vendor_documents_and_nothing_else() -> None:
    first, *others = xseries.fulfilled_digests(SALE_2_0)
    fulfilled = WrittenSale(first, also=tuple(others))
    # The webhook's 1.0 payload after the fulfil, with the status the POS chose; total and payments as read.
    payload = {k: v for k, v in SALE_2_0.items() if k != "payments"}
    payload["register_sale_payments"] = [{"retailer_payment_type_id": CASH, "amount": "20.00"}]
    for status in ("AWAITING_DISPATCH", "DISPATCHED_CLOSED"):
        assert fulfilled.left(xseries.content_digest_of({**payload, "status": status}) or "")
    # Any other status, or a payment taken meanwhile, is not the fulfil's echo: it is read.
    for status in ("CLOSED", "VOIDED", "PICKED_UP_CLOSED", "AWAITING_PICKUP"):
        assert not fulfilled.left(xseries.content_digest_of({**payload, "status": status}) or "")
    paid = [*payload["register_sale_payments"], {"retailer_payment_type_id": CARD, "amount": 30}]
    assert not fulfilled.left(
        xseries.content_digest_of({**payload, "status": "DISPATCHED_CLOSED", "register_sale_payments": paid}) or ""
    )


def test_a_fulfil_of_a_sale_without_a_documented_closed_status_or_a_digest() -> None:
    assert len(xseries.fulfilled_digests({**SALE_2_0, "status": "AWAITING_PICKUP"})) == 2
    assert xseries.fulfilled_digests({**SALE_2_0, "status": "ONACCOUNT"}) == (
        xseries.content_digest_of({**SALE_2_0, "status": "ONACCOUNT"}),
    )
    assert xseries.fulfilled_digests({k: v for k, v in SALE_2_0.items() if k != "payments"}) == ()


def test_the_ledger_keeps_a_writes_other_digests_and_reads_items_without_them() -> None:
    written = [WrittenSale("a" * 16, also=("b" * 16,)), WrittenSale("c" * 16, stock_pending=True)]
    items = _written_items(written)
    assert "also" not in items[1]  # items as they were before a write could leave more than one digest
    item = {"order_id": {"N": "7"}, "pos_written": {"L": [{"M": {k: _attr(v) for k, v in i.items()}} for i in items]}}
    assert status_record(item).pos_written == tuple(written)


def _attr(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, list):
        return {"L": [{"S": v} for v in value]}
    return {"S": value}


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=12,
)


@given(
    st.dictionaries(
        st.sampled_from(["id", "status", "total_price", "total_tax", "payments", "register_sale_payments", "total"]),
        json_values,
    )
)
def test_any_row_gives_a_digest_or_none_never_an_error(row: dict[str, Any]) -> None:
    assert xseries.content_digest_of(row) is None or len(xseries.content_digest_of(row) or "") == 16
    rows = {**row, "saleID": row.get("id"), "calcPayments": row.get("total_tax")}
    digest = rseries.content_digest_of(rows)
    assert digest is None or len(digest) == 16


def test_rseries_our_payment_that_completes_the_sale_digests_as_the_feed_row_after_it() -> None:
    sale = PosSale("17", SaleState.OPEN, "open", Decimal("50"), Decimal("0"), stock_pending=True)
    written = rseries.written_sale(sale, completed=True, paid=Decimal("50.00"))
    row = {"saleID": "17", "completed": "true", "voided": "false", "total": "50", "calcPayments": "50.00"}
    assert written is not None and not written.stock_pending  # completed: R-Series took its units
    assert rseries.content_digest_of(row) == written.digest
    partial = rseries.written_sale(sale, paid=Decimal("20"))
    assert partial is not None and partial.stock_pending  # still open, its units still on hand


def test_a_sale_as_read_carries_the_digest_its_webhook_or_feed_row_gives_so_a_read_knows_what_our_write_left() -> None:
    payments = [*xseries.existing_payments(SALE_2_0), {"retailer_payment_type_id": CARD, "amount": 30.0}]
    written = xseries.written_digest(
        SALE_2_0, xseries.register_sale_update(SALE_2_0, status="AWAITING_DISPATCH", payments=payments)
    )
    after = {**SALE_2_0, "payments": [*SALE_2_0["payments"], {"retailer_payment_type_id": CARD, "amount": 30}]}
    assert xseries.sale_of_row(after).digest == written is not None
    assert xseries.sale_of_row(SALE_2_0).digest == xseries.content_digest_of(SALE_2_0) != written
    assert xseries.sale_of_row({"id": "sale-1", "status": "OPEN"}).digest is None  # no total: a read without one
    row = {"saleID": "17", "completed": "true", "voided": "false", "total": "50", "calcPayments": "50.00"}
    assert rseries.sale_of_row(row).digest == rseries.content_digest_of(row) is not None


def test_messages_and_ledger_items_from_before_the_digest_still_parse_and_never_match() -> None:
    body = ChangeMessage(
        connection_id="shop-1",
        source="pos",
        entity="sale",
        entity_id="sale-1",
        via="webhook",
        received_at=datetime.now(UTC),
        payload={},
        concern="statuses",
    ).model_dump(mode="json")
    del body["content_digest"]
    assert ChangeMessage.model_validate_json(json.dumps(body)).content_digest is None
    record = status_record({"order_id": {"N": "7"}, "ecom_written": {"L": []}})
    assert record.pos_written == ()
