"""An eCom order (`orders.sale.SaleDraft`) as an X-Series 2026-07 `POST /api/2026-07/sales` body (`SaleRequest`).

Exactly once: the sale id is ours, chosen before anything is written (`sale_uuid`: uuid5 of the connection and the
eCom order id; `SaleRequest.id` is "User-provided sale ID", X26 sales), so a retry looks the sale up by that id
(`GET /api/2026-07/sales/{id}`) instead of searching for it. `source.id` carries "ecom-<order id>" (the order's
reference on the sale; `source.type` names the system), `source.author_id` the POS user the sale is made by.

Choices the vendor docs leave open:
- `state` pending with attribute `delivery` (shipped orders) or `pickup` (`shipmentIsPickup`): the legacy
  AWAITING_DISPATCH / AWAITING_PICKUP (X-Series docs "States and attributes"). Each line says its outlet
  (`fulfilment_outlet_id`, the vendor's spelling on SaleLineItem) and `_metadata.fulfillment_method` DISPATCH|PICKUP,
  so the POS opens one fulfilment per outlet. `fulfillment_details` is left out: a DISPATCH detail needs a POS
  shipping address id or token, which this sync does not create; the address stays on the eCom order.
- Prices: the sale line gets the unit price excluding tax (`pricing.price`) and the unit tax (`tax.amount`), both
  with 5 decimals like X-Series prices (`orders.sale.unit_amounts`).
- `tax.id` (required) is the POS tax of the line's rate (`TaxTable`, from `GET /api/2.0/taxes`); a rate no POS tax has
  takes the default tax, with a warning (the amount sent is still the order's).
- Shipping: the sale request has no shipping charge field (`ecom_custom_charges` is read-only), so shipping is a
  sale line on the connection's shipping product (quantity 1, fulfilled by the first outlet of the plan), and the
  sale's total is the order's. Without a shipping product a sale with shipping is never built (`ValueError`): the
  importer holds such an order with the reason instead of importing a wrong total (`orders.shipping`).
- A payment, when recorded, is the sale's own total (what the POS will compute from the lines), so the sale
  balances exactly; a difference from the eCom order total is reported in `warnings`.
- Dates are RFC 3339 in UTC ("2009-11-10T23:00:00Z", the vendor's example for `date` and for 0.9 `sale_date`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from pos_ecom_sync.dates import parse_instant
from pos_ecom_sync.models.orders import EcomOrder, EcomOrderLine, FulfillmentPlan
from pos_ecom_sync.orders.payments import RecordPayment
from pos_ecom_sync.orders.sale import (
    CENT,
    UNIT_PLACES,
    SaleDraft,
    check_plan_covers,
    money,
    net_totals,
    sale_note,
    total_mismatch,
    unit_amounts,
)

# `source.type`: "the identifier of the 3rd party system" the sale came from (X26 sales SaleRequestSource).
SOURCE_TYPE = "Lightspeed eCom"


def sale_attribute(order: EcomOrder) -> str:
    """The fulfilment attribute of a pending sale (docs "States and attributes": pending + delivery is the legacy
    AWAITING_DISPATCH, pending + pickup AWAITING_PICKUP)."""
    return "pickup" if order.shipment_is_pickup else "delivery"


def fulfillment_method(order: EcomOrder) -> str:
    return "PICKUP" if order.shipment_is_pickup else "DISPATCH"


def pos_datetime(iso: str) -> str:
    """ISO-8601 with offset -> RFC 3339 UTC "YYYY-MM-DDTHH:MM:SSZ" (the vendor's example); naive input is UTC."""
    return parse_instant(iso).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def rate_basis_points(rate: Decimal | float) -> int:
    """A tax rate as an integer key: 0.15 -> 1500."""
    return int((Decimal(str(rate)) * 10000).quantize(Decimal(1), ROUND_HALF_UP))


@dataclass(frozen=True)
class TaxTable:
    """POS taxes by rate (basis points), and the default tax for a rate no POS tax has."""

    by_rate: Mapping[int, str]
    default_id: str

    @classmethod
    def from_taxes(cls, taxes: Sequence[Mapping[str, Any]]) -> TaxTable:
        """From `GET /api/2.0/taxes` rows: a Tax has `rates[{rate}]` (X20 `Tax`, `TaxRate`); a flat `rate` is read too.
        Raises ValueError when the POS lists no live tax (every sale line needs a `tax.id`)."""
        live = [t for t in taxes if t.get("id") and not t.get("deleted_at")]
        if not live:
            raise ValueError("the POS lists no tax: every sale line needs one (X-Series has a 'No Tax' tax)")
        by_rate: dict[int, str] = {}
        for tax in live:
            rates = [r.get("rate") for r in tax.get("rates") or [] if isinstance(r, Mapping)]
            total = sum(Decimal(str(r)) for r in rates if r is not None) if rates else tax.get("rate")
            if total is not None:
                by_rate.setdefault(rate_basis_points(Decimal(str(total))), str(tax["id"]))
        default = next((t for t in live if t.get("is_default")), live[0])
        return cls(by_rate=by_rate, default_id=str(default["id"]))

    def tax_id(self, rate: int | None) -> str | None:
        """The POS tax of `rate`, or None when no POS tax has it."""
        return self.by_rate.get(rate) if rate is not None else None


def _rate_of(excl: Decimal, incl: Decimal, stated: float | None) -> int | None:
    if stated is not None:
        return rate_basis_points(stated)
    if excl <= 0:
        return None
    return rate_basis_points(((incl - excl) / excl).quantize(Decimal("0.0001"), ROUND_HALF_UP))


def _line_total(price: Decimal, tax: Decimal, quantity: int) -> Decimal:
    # What the POS stores per line: price x quantity and tax x quantity, each rounded to cents.
    return (price * quantity).quantize(CENT, ROUND_HALF_UP) + (tax * quantity).quantize(CENT, ROUND_HALF_UP)


@dataclass(frozen=True)
class NewSale:
    """The `POST /api/2026-07/sales` body and what the worker needs around it."""

    body: dict[str, Any]
    sale_id: str
    source_id: str
    total_incl: Decimal
    warnings: tuple[str, ...] = field(default=())


def build_sale(draft: SaleDraft, *, author_id: str, taxes: TaxTable) -> NewSale:
    """Build the 2026-07 `SaleRequest` of the draft's order with our own sale id (the draft's sale key).

    Every line with a quantity must be assigned in full by the plan. A cancelled order becomes a voided sale: it shows
    in sales history, takes no stock, opens no fulfilment and records no payment.
    """
    order, lines, plan, payment, register_id = draft.order, draft.lines, draft.plan, draft.payment, draft.register_id
    if not register_id:
        raise ValueError("a sale needs the online register")
    if not author_id:
        raise ValueError("a sale needs the POS user it is made by (source.author_id)")
    check_plan_covers(lines, plan, {line.id: line for line in lines})
    cancelled = draft.cancelled
    method = None if cancelled else fulfillment_method(order)
    sale_taxes = _SaleTaxes(taxes)
    items, total = _order_items(lines, plan, sale_taxes, method)
    shipping = _shipping_item(order, draft.shipping_product_id, plan.assignments[0].outlet_id, sale_taxes, method)
    if shipping is not None:
        items.append(shipping[0])
        total += shipping[1]
    for n, item in enumerate(items):
        item["_metadata"] = {**item.get("_metadata", {}), "sequence": n}
    warnings = [*sale_taxes.warnings(), *total_mismatch(order, total)]

    body: dict[str, Any] = {
        "id": draft.sale_key,
        "source": {"author_id": author_id, "id": draft.reference, "type": SOURCE_TYPE, "register_id": register_id},
        "state": "voided" if cancelled else "pending",
        "note": sale_note(order, plan, payment),
        "line_items": items,
    }
    if not cancelled:
        body["attributes"] = [sale_attribute(order)]
    if draft.customer_id:
        body["customer_id"] = draft.customer_id
    sale_date = pos_datetime(order.created_at) if order.created_at else None
    if sale_date:
        body["date"] = sale_date
    if isinstance(payment, RecordPayment) and not cancelled:
        body["payments"] = [_recorded_payment(payment, total, register_id, sale_date)]
    reference = draft.reference
    return NewSale(body=body, sale_id=draft.sale_key, source_id=reference, total_incl=total, warnings=tuple(warnings))


@dataclass
class _SaleTaxes:
    """The POS tax of each sale line, by rate. A rate no POS tax has gets the default tax and is remembered, so the
    sale can warn about it."""

    table: TaxTable
    untaxed: set[int] = field(default_factory=set)

    def tax_id(self, rate: int | None) -> str:
        found = self.table.tax_id(rate)
        if found is not None:
            return found
        if rate is not None:
            self.untaxed.add(rate)
        return self.table.default_id

    def warnings(self) -> list[str]:
        return [
            f"no POS tax has the rate {rate / 100:g}%: those lines use the POS default tax"
            for rate in sorted(self.untaxed)
        ]


def _order_items(
    lines: Sequence[EcomOrderLine], plan: FulfillmentPlan, taxes: _SaleTaxes, method: str | None
) -> tuple[list[dict[str, Any]], Decimal]:
    """The sale lines of the order's lines (one per line and outlet the plan gives it to) and their total."""
    items: list[dict[str, Any]] = []
    total = Decimal(0)
    for line in lines:
        if line.quantity_ordered <= 0:
            continue
        price, tax = unit_amounts(line)
        excl, incl = net_totals(line)
        line_tax = taxes.tax_id(_rate_of(excl, incl, line.tax_rate))
        for assignment in plan.assignments:
            for part in assignment.lines:
                if part.line_id != line.id:
                    continue
                items.append(
                    _sale_line(part.product_id, part.quantity, price, tax, line_tax, assignment.outlet_id, method)
                )
                total += _line_total(price, tax, part.quantity)
    return items, total


def _shipping_item(
    order: EcomOrder, shipping_product_id: str | None, outlet_id: str, taxes: _SaleTaxes, method: str | None
) -> tuple[dict[str, Any], Decimal] | None:
    """The order's shipping charge as one sale line of the shipping product, with its total; None when it charges
    none. Raises ValueError when it charges shipping and the connection names no shipping product."""
    shipping_excl, shipping_incl = money(order.shipment_price_excl), money(order.shipment_price_incl)
    if shipping_incl <= 0:
        return None
    if not shipping_product_id:
        raise ValueError(f"order {order.number} charges shipping {shipping_incl:.2f}: a sale needs a shipping product")
    price = shipping_excl.quantize(UNIT_PLACES, ROUND_HALF_UP)
    tax = (shipping_incl - shipping_excl).quantize(UNIT_PLACES, ROUND_HALF_UP)
    shipping_tax = taxes.tax_id(_rate_of(shipping_excl, shipping_incl, None))
    return _sale_line(shipping_product_id, 1, price, tax, shipping_tax, outlet_id, method), _line_total(price, tax, 1)


def _recorded_payment(
    payment: RecordPayment, total: Decimal, register_id: str, sale_date: str | None
) -> dict[str, Any]:
    """The sale's one payment: the whole total, of the connection's payment type, on the online register."""
    recorded: dict[str, Any] = {
        "amount": float(total),
        "type": {"config_id": payment.payment_type_id},
        "source": {"register_id": register_id},
    }
    if sale_date:
        recorded["date"] = sale_date
    return recorded


def _sale_line(
    product_id: str,
    quantity: int,
    price: Decimal,
    tax: Decimal,
    tax_id: str,
    outlet_id: str,
    method: str | None,
) -> dict[str, Any]:
    """One `SaleLineItem`: product, quantity, pricing and tax are required (X26 sales); outlet and method route it."""
    row: dict[str, Any] = {
        "product": {"id": product_id},
        "quantity": quantity,
        "pricing": {"price": float(price)},
        "tax": {"id": tax_id, "amount": float(tax)},
        "fulfilment_outlet_id": outlet_id,
    }
    if method is not None:
        row["_metadata"] = {"fulfillment_method": method}
    return row
