"""X-Series sale and fulfilment rows -> the neutral sale types status sync reads (`models.sales`).

A sale is read through API 2.0 (`GET /api/2.0/sales/{id}`: `status`, `total_price` + `total_tax`, `payments`,
`line_items`, `source_id`, `return_for`); a return action's answer also carries the 2026-07 `state`
(parked|pending|voided|closed, X26 `Sale26.state`), which says the same as `status`. Fulfilments are the 2026-07
Fulfillments API's `FulfillmentSummaryItem`: `type` PICKUP|DISPATCH|SERVICE and `state`
OPEN -> STARTED ("In progress") -> PICKED -> PACKED -> FULFILLED, with a `version` for optimistic locking and line
items whose quantities are decimal strings.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from pos_ecom_sync.models.messages import ChangeMessage
from pos_ecom_sync.models.sales import (
    FulfillmentKind,
    FulfillmentState,
    PosFulfillment,
    PosSale,
    SaleHint,
    SaleLine,
    SaleState,
    sale_digest,
)

# `status` values of a finalized sale: it takes no status change any more.
FINALIZED_SALE_STATUSES = frozenset(
    {"CLOSED", "ONACCOUNT_CLOSED", "LAYBY_CLOSED", "DISPATCHED_CLOSED", "PICKED_UP_CLOSED", "SERVICE_CLOSED"}
)
VOIDED_STATUS = "VOIDED"
# The status a sale awaiting its fulfilment takes once fulfilled (vendor-apis.md 1.6, the API changelog of 2020-02:
# AWAITING_DISPATCH / AWAITING_PICKUP become DISPATCHED_CLOSED / PICKED_UP_CLOSED). Whether the fulfil call itself
# closes the sale, an unpaid one too, is unverified (contracts/xseries.json, `POST /fulfillments/fulfill`).
CLOSED_WHEN_FULFILLED = {"AWAITING_DISPATCH": "DISPATCHED_CLOSED", "AWAITING_PICKUP": "PICKED_UP_CLOSED"}


def _money(value: Any) -> Decimal:
    try:
        return Decimal(str(value or 0))
    except ArithmeticError:
        return Decimal(0)


def sale_lines(sale: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The sale's line rows: 2.0 `line_items`, or 0.9 `register_sale_products`."""
    lines = sale.get("line_items") or sale.get("register_sale_products") or []
    return [line for line in lines if isinstance(line, Mapping)]


def sale_state_of(sale: Mapping[str, Any]) -> SaleState:
    """VOIDED, finalized (`*_CLOSED`, or 2026-07 `state` closed), else live (SAVED = parked, AWAITING_*, ...)."""
    status = str(sale.get("status") or "").upper()
    state = str(sale.get("state") or "").lower()
    if status == VOIDED_STATUS or state == "voided":
        return SaleState.VOIDED
    if status in FINALIZED_SALE_STATUSES or state == "closed":
        return SaleState.CLOSED
    return SaleState.OPEN


def sale_of_row(sale: Mapping[str, Any]) -> PosSale:
    paid = sum((_money(p.get("amount")) for p in sale.get("payments") or [] if isinstance(p, dict)), Decimal(0))
    lines = []
    for line in sale_lines(sale):
        quantity = line.get("quantity")
        # Only numbers are quantities (a bool is not); a line without a product sold nothing we track.
        if isinstance(quantity, int | float) and not isinstance(quantity, bool) and line.get("product_id"):
            lines.append(SaleLine(str(line.get("id") or ""), str(line["product_id"]), Decimal(str(quantity))))
    reference, return_for = sale.get("source_id"), sale.get("return_for")
    return PosSale(
        sale_id=str(sale["id"]),
        state=sale_state_of(sale),
        label=str(sale.get("status") or ""),
        total=_money(sale.get("total_price")) + _money(sale.get("total_tax")),
        paid=paid,
        lines=tuple(lines),
        reference=str(reference) if reference else None,
        return_for=str(return_for) if return_for else None,
        digest=content_digest_of(sale),
    )


def _kind(value: Any) -> FulfillmentKind:
    try:
        return FulfillmentKind(str(value or "").upper())
    except ValueError:
        return FulfillmentKind.OTHER


def _state(value: Any) -> FulfillmentState:
    try:
        return FulfillmentState(str(value or "").upper())
    except ValueError:
        return FulfillmentState.OTHER


def fulfillment_of_row(row: Mapping[str, Any]) -> PosFulfillment:
    """One `FulfillmentSummaryItem`; what each line still needs packed is its quantity less packed and fulfilled."""
    version = row.get("version")
    to_pack = []
    for line in row.get("line_items") or []:
        if not isinstance(line, Mapping) or not line.get("sale_line_item_id"):
            continue
        left = _money(line.get("quantity")) - _money(line.get("packed_quantity"))
        left -= _money(line.get("fulfilled_quantity"))
        if left > 0:
            to_pack.append((str(line["sale_line_item_id"]), left))
    return PosFulfillment(
        fulfillment_id=str(row["id"]),
        location_id=str(row.get("outlet_id") or ""),
        kind=_kind(row.get("type")),
        state=_state(row.get("state")),
        version=int(version) if isinstance(version, int) and not isinstance(version, bool) else None,
        to_pack=tuple(to_pack),
    )


def sale_hint_of(message: ChangeMessage) -> SaleHint:
    """A queued sale change's `source_id` and `return_for` (`models.messages.PAYLOAD_FIELDS`), when it has them."""
    reference, return_for = message.payload.get("source_id"), message.payload.get("return_for")
    return SaleHint(
        reference=reference if isinstance(reference, str) and reference else None,
        return_for=str(return_for) if return_for else None,
    )


# -- the echo of our writes -----------------------------------------------------------------------------------


def _number(value: Any) -> Decimal | None:
    """A JSON number (or its text: 1.0 payloads may quote them) as a finite Decimal; None for anything else."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = Decimal(str(value))
    except ArithmeticError:
        return None
    return number if number.is_finite() else None


def _payment_of(payment: Any) -> tuple[str, Decimal] | None:
    if not isinstance(payment, Mapping):
        return None
    kind, amount = payment.get("retailer_payment_type_id"), _number(payment.get("amount"))
    return (kind, amount) if isinstance(kind, str) and kind and amount is not None else None


def content_digest_of(row: Mapping[str, Any]) -> str | None:
    """The sale's `sale_digest` from a row: a 2.0 sale (`payments`), a webhook's 1.0 payload or a 0.9 body
    (`register_sale_payments`); `status`, `total_price` + `total_tax`, and each payment's `retailer_payment_type_id`
    and `amount`. None when any of them is missing or not what it should be: the message is then read."""
    sale_id, status = row.get("id"), row.get("status")
    payments = row["payments"] if "payments" in row else row.get("register_sale_payments")
    price, tax = _number(row.get("total_price")), _number(row.get("total_tax"))
    if not isinstance(sale_id, str) or not sale_id or not isinstance(status, str) or not status:
        return None
    if not isinstance(payments, list) or price is None or tax is None:
        return None
    paid = [_payment_of(p) for p in payments]
    kept = [p for p in paid if p is not None]
    if len(kept) != len(paid):
        return None
    try:
        return sale_digest(sale_id, status, price + tax, kept)
    except ArithmeticError:  # an amount too large to round to the cent
        return None


def written_digest(sale: Mapping[str, Any], body: Mapping[str, Any]) -> str | None:
    """The digest of the sale as a 0.9 update `body` leaves it: the status and payments it re-states, the total of
    the sale as read (its lines are re-stated unchanged). None when it cannot be told, or when the write changes
    nothing the digest shows (its echo would look like the sale before it)."""
    after = content_digest_of(
        {
            "id": sale.get("id"),
            "status": body.get("status"),
            "total_price": sale.get("total_price"),
            "total_tax": sale.get("total_tax"),
            "register_sale_payments": body.get("register_sale_payments"),
        }
    )
    return after if after is not None and after != content_digest_of(sale) else None


def fulfilled_digests(sale: Mapping[str, Any]) -> tuple[str, ...]:
    """The digests a fulfil may leave the sale (a 2.0 row as read) with: its total and payments as read, and its
    status as read or, when the vendor documents one, the status it takes once fulfilled (`CLOSED_WHEN_FULFILLED`):
    the POS decides which, so both are candidates for the fulfil's echo. Empty when the row gives no digest."""
    status = sale.get("status")
    statuses = [status, CLOSED_WHEN_FULFILLED.get(status)] if isinstance(status, str) else []
    digests = (content_digest_of({**sale, "status": s}) for s in statuses if s)
    return tuple(dict.fromkeys(d for d in digests if d is not None))


# -- writes ---------------------------------------------------------------------------------------------------


def existing_payments(sale: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [
        {k: p[k] for k in ("retailer_payment_type_id", "amount", "payment_date") if k in p}
        for p in sale.get("payments") or []
        if isinstance(p, dict)
    ]


def register_sale_update(
    sale: Mapping[str, Any], *, status: str, payments: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """A 0.9 `register_sales` body that re-states the sale as it is (lines, payments) with the change applied:
    API 0.9 updates by re-posting the sale with its `id`."""
    lines = [
        {
            "id": li.get("id"),
            "product_id": li.get("product_id"),
            "quantity": li.get("quantity"),
            "price": li.get("price"),
            "tax": li.get("unit_tax", li.get("tax")),
            "tax_id": li.get("tax_id"),
        }
        for li in sale_lines(sale)
        if isinstance(li, dict)
    ]
    body: dict[str, Any] = {
        "id": sale["id"],
        "register_id": sale.get("register_id"),
        "user_id": sale.get("user_id"),
        "customer_id": sale.get("customer_id"),
        "status": status,
        "note": sale.get("note") or "",
        "register_sale_products": lines,
        "register_sale_payments": payments if payments is not None else existing_payments(sale),
    }
    return {k: v for k, v in body.items() if v is not None}
