"""An eCom order as an X-Series 2026-07 `POST /api/2026-07/sales` body (`SaleRequest`), and the line matching.

Line matching: the variant mapping first, then SKU, then EAN. An order with any line that matches no POS product
is held as a whole (`Hold`, listing every unmatched line and why); it is never imported with lines missing.

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
- Prices: eCom order lines carry line totals (`priceExcl`/`priceIncl`). The sale line gets the unit price excluding
  tax (`pricing.price`) and the unit tax (`tax.amount`), both with 5 decimals like X-Series prices. Whether eCom's
  line totals already have `discountExcl` taken off is not documented: if `priceExcl` still equals `basePriceExcl` x
  quantity, the discount is subtracted here, otherwise the totals are taken as net.
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

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, TypeAlias

from pos_ecom_sync.dates import parse_instant
from pos_ecom_sync.models.orders import EcomOrder, EcomOrderLine, FulfillmentPlan
from pos_ecom_sync.orders.payments import LeaveUnpaid, PaymentDecision, RecordPayment
from pos_ecom_sync.orders.routing import LineDemand

SOURCE_ID_PREFIX = "ecom-"
UNIT_PLACES = Decimal("0.00001")
CENT = Decimal("0.01")
# The POS note field's limit is not documented; stay well under any plausible one.
NOTE_MAX_CHARS = 1000

ProductRefs: TypeAlias = Mapping[str, str | Sequence[str]]


# -- line matching ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Unmatched:
    line_id: int
    title: str
    reason: str


@dataclass(frozen=True)
class Hold:
    """Do not import the order: these lines have no POS product. Retried after the catalog or mapping changes."""

    unmatched: tuple[Unmatched, ...]

    @property
    def reason(self) -> str:
        details = "; ".join(f"line {u.line_id} ({u.title}): {u.reason}" for u in self.unmatched)
        return f"{len(self.unmatched)} order line(s) match no POS product: {details}"


def _candidates(refs: ProductRefs, key: str | None) -> list[str]:
    if not key or not key.strip():
        return []
    found = refs.get(key.strip())
    if found is None:
        return []
    return [found] if isinstance(found, str) else sorted(set(found))


# Why a line is not matched by its EAN on X-Series (held with this reason rather than guessed).
EAN_NOT_SEARCHABLE = "matching by EAN is not possible: the X-Series API has no barcode filter"


def match_line(
    line: EcomOrderLine,
    *,
    variant_map: Mapping[int, str],
    by_sku: ProductRefs,
    by_ean: ProductRefs | None,
) -> str | Unmatched:
    """The POS product id of an order line: through the variant mapping, then SKU, then EAN.

    `by_sku`/`by_ean` map a code to one POS product id or to all products carrying it; a code shared by several
    products matches none of them (guessing would sell the wrong item). `by_ean` None: the POS cannot be searched
    by barcode (X-Series), so a line with only an EAN to go by is unmatched with that reason.
    """
    tried: list[str] = []
    variant_id = line.variant_id
    if variant_id is not None and variant_id in variant_map:
        return variant_map[variant_id]
    tried.append(f"variant {variant_id} is not mapped" if variant_id is not None else "no variant")
    for label, refs, code in (("SKU", by_sku, line.sku), ("EAN", by_ean, line.ean)):
        if refs is None:
            if code and code.strip():
                tried.append(f"EAN {code.strip()!r}: {EAN_NOT_SEARCHABLE}")
            else:
                tried.append(f"no {label}")
            continue
        found = _candidates(refs, code)
        if len(found) == 1:
            return found[0]
        if not code or not code.strip():
            tried.append(f"no {label}")
        elif found:
            tried.append(f"{label} {code.strip()!r} is on {len(found)} POS products")
        else:
            tried.append(f"no POS product has {label} {code.strip()!r}")
    return Unmatched(line_id=line.id, title=line.title, reason=", ".join(tried))


def match_lines(
    lines: Sequence[EcomOrderLine],
    *,
    variant_map: Mapping[int, str],
    by_sku: ProductRefs,
    by_ean: ProductRefs | None,
) -> list[LineDemand] | Hold:
    """Every line with a quantity matched to its POS product, ready for routing; or a Hold listing the misses."""
    demands: list[LineDemand] = []
    unmatched: list[Unmatched] = []
    for line in lines:
        if line.quantity_ordered <= 0:
            continue
        match = match_line(line, variant_map=variant_map, by_sku=by_sku, by_ean=by_ean)
        if isinstance(match, Unmatched):
            unmatched.append(match)
        else:
            demands.append(LineDemand(line_id=line.id, product_id=match, quantity=line.quantity_ordered))
    return Hold(unmatched=tuple(unmatched)) if unmatched else demands


# -- the sale --------------------------------------------------------------------------------------------------

# uuid5 namespace of the sale ids we choose (any fixed uuid works; this one is ours and never changes).
SALE_ID_NAMESPACE = uuid.UUID("6f3a2f0e-4c1b-5d2a-9e7f-0b8c1d2e3f40")
# `source.type`: "the identifier of the 3rd party system" the sale came from (X26 sales SaleRequestSource).
SOURCE_TYPE = "Lightspeed eCom"


def sale_uuid(connection_id: str, order_id: int) -> str:
    """The sale id of an eCom order: the same for every attempt of one connection, different across connections."""
    return str(uuid.uuid5(SALE_ID_NAMESPACE, f"{connection_id}:{order_id}"))


def source_id(order: EcomOrder) -> str:
    """The order's reference on the sale (`source.id`): how a person (or the status worker) tells which order it is."""
    return f"{SOURCE_ID_PREFIX}{order.id}"


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


def _money(value: float | int) -> Decimal:
    return Decimal(str(value))


def _net_totals(line: EcomOrderLine) -> tuple[Decimal, Decimal]:
    """The line's total excl. and incl. tax after discount."""
    excl, incl = _money(line.price_excl), _money(line.price_incl)
    discount_excl, discount_incl = _money(line.discount_excl), _money(line.discount_incl)
    if discount_excl > 0 and line.base_price_excl is not None:
        gross = _money(line.base_price_excl) * line.quantity_ordered
        if abs(gross - excl) <= CENT:  # the totals are still before discount
            return excl - discount_excl, incl - discount_incl
    return excl, incl


def unit_amounts(line: EcomOrderLine) -> tuple[Decimal, Decimal]:
    """(unit price excl. tax, unit tax) of an order line, 5 decimals."""
    if line.quantity_ordered <= 0:
        raise ValueError(f"order line {line.id} has no quantity")
    excl, incl = _net_totals(line)
    return (
        (excl / line.quantity_ordered).quantize(UNIT_PLACES, ROUND_HALF_UP),
        ((incl - excl) / line.quantity_ordered).quantize(UNIT_PLACES, ROUND_HALF_UP),
    )


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


def build_sale(
    order: EcomOrder,
    lines: Sequence[EcomOrderLine],
    *,
    sale_id: str,
    plan: FulfillmentPlan,
    payment: PaymentDecision,
    register_id: str,
    author_id: str,
    taxes: TaxTable,
    customer_id: str | None = None,
    shipping_product_id: str | None = None,
) -> NewSale:
    """Build the 2026-07 `SaleRequest` of `order` with our own `sale_id`.

    `plan` comes from `route_order` on the matched lines and says which POS product and outlet each unit goes to;
    `lines` give the prices. Every line with a quantity must be assigned in full by the plan. A cancelled order
    becomes a voided sale: it shows in sales history, takes no stock, opens no fulfilment and records no payment.
    """
    if not register_id:
        raise ValueError("a sale needs the online register")
    if not author_id:
        raise ValueError("a sale needs the POS user it is made by (source.author_id)")
    _check_plan_covers(lines, plan, {line.id: line for line in lines})
    cancelled = order.payment_status == "cancelled"
    method = None if cancelled else fulfillment_method(order)
    sale_taxes = _SaleTaxes(taxes)
    items, total = _order_items(lines, plan, sale_taxes, method)
    shipping = _shipping_item(order, shipping_product_id, plan.assignments[0].outlet_id, sale_taxes, method)
    if shipping is not None:
        items.append(shipping[0])
        total += shipping[1]
    for n, item in enumerate(items):
        item["_metadata"] = {**item.get("_metadata", {}), "sequence": n}
    warnings = [*sale_taxes.warnings(), *_total_mismatch(order, total)]

    reference = source_id(order)
    body: dict[str, Any] = {
        "id": sale_id,
        "source": {"author_id": author_id, "id": reference, "type": SOURCE_TYPE, "register_id": register_id},
        "state": "voided" if cancelled else "pending",
        "note": _note(order, plan, payment),
        "line_items": items,
    }
    if not cancelled:
        body["attributes"] = [sale_attribute(order)]
    if customer_id:
        body["customer_id"] = customer_id
    sale_date = pos_datetime(order.created_at) if order.created_at else None
    if sale_date:
        body["date"] = sale_date
    if isinstance(payment, RecordPayment) and not cancelled:
        body["payments"] = [_recorded_payment(payment, total, register_id, sale_date)]
    return NewSale(body=body, sale_id=sale_id, source_id=reference, total_incl=total, warnings=tuple(warnings))


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
        excl, incl = _net_totals(line)
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
    shipping_excl, shipping_incl = _money(order.shipment_price_excl), _money(order.shipment_price_incl)
    if shipping_incl <= 0:
        return None
    if not shipping_product_id:
        raise ValueError(f"order {order.number} charges shipping {shipping_incl:.2f}: a sale needs a shipping product")
    price = shipping_excl.quantize(UNIT_PLACES, ROUND_HALF_UP)
    tax = (shipping_incl - shipping_excl).quantize(UNIT_PLACES, ROUND_HALF_UP)
    shipping_tax = taxes.tax_id(_rate_of(shipping_excl, shipping_incl, None))
    return _sale_line(shipping_product_id, 1, price, tax, shipping_tax, outlet_id, method), _line_total(price, tax, 1)


def _total_mismatch(order: EcomOrder, total: Decimal) -> list[str]:
    """A warning when the sale's total is more than a cent off the eCom order's own total."""
    if order.price_incl is None:
        return []
    expected = _money(order.price_incl)
    if abs(expected - total) <= CENT:
        return []
    return [f"sale total {total:.2f} differs from the eCom order total {expected:.2f}"]


def _recorded_payment(
    payment: RecordPayment, total: Decimal, register_id: str, sale_date: str | None
) -> dict[str, Any]:
    """The sale's one payment: the whole total, of the connection's payment type, on the online register."""
    recorded: dict[str, Any] = {
        "amount": float(total),
        "type": {"config_id": payment.retailer_payment_type_id},
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


def _check_plan_covers(
    lines: Sequence[EcomOrderLine], plan: FulfillmentPlan, by_id: Mapping[int, EcomOrderLine]
) -> None:
    if not plan.assignments:
        raise ValueError("the fulfillment plan assigns nothing")
    for assignment in plan.assignments:
        for part in assignment.lines:
            if part.line_id not in by_id:
                raise ValueError(f"the plan assigns line {part.line_id}, which is not on the order")
    for line in lines:
        wanted = max(0, line.quantity_ordered)
        if plan.assigned_quantity(line.id) != wanted:
            raise ValueError(
                f"the plan assigns {plan.assigned_quantity(line.id)} of line {line.id}, the order has {wanted}"
            )


def _note(order: EcomOrder, plan: FulfillmentPlan, payment: PaymentDecision) -> str:
    parts = [f"eCom order {order.number}"]
    if order.shipment_title:
        parts.append(f"{'Pickup' if order.shipment_is_pickup else 'Shipping'}: {order.shipment_title}")
    if order.payment_title:
        parts.append(f"Payment: {order.payment_title} ({order.payment_status})")
    if isinstance(payment, LeaveUnpaid):
        parts.append(f"Unpaid in POS: {payment.reason}")
    if plan.beyond_stock:
        parts.append(f"{plan.beyond_stock} unit(s) were not in stock at import")
    if order.comment and order.comment.strip():
        parts.append(f"Customer comment: {order.comment.strip()}")
    note = "\n".join(parts)
    return note if len(note) <= NOTE_MAX_CHARS else note[: NOTE_MAX_CHARS - 1] + "…"
