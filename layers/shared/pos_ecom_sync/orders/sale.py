"""An eCom order as an X-Series API 0.9 `POST /api/register_sales` body, plus the line matching before it.

Line matching: the variant mapping first, then SKU, then EAN. An order with any line that matches no POS product
is held as a whole (`Hold`, listing every unmatched line and why); it is never imported with lines missing.

Choices the vendor docs leave open ([I] where the API itself is unconfirmed):
- `source_id` is `ecom-<eCom order id>`: the worker searches for it before creating, so an order makes exactly one
  sale. The id, not the number: ids never change, while the merchant can change the numbering prefix.
- `status` is AWAITING_PICKUP for pickup orders (`shipmentIsPickup`) and AWAITING_DISPATCH otherwise; the POS then
  opens one fulfillment per outlet with status New. `invoice_number` is left to the POS.
- Prices: eCom order lines carry line totals (`priceExcl`/`priceIncl`). The sale line gets the unit price excluding
  tax (`price`) and the unit tax (`tax`), both with 5 decimals like X-Series prices. Whether eCom's line totals
  already have `discountExcl` taken off is not documented: if `priceExcl` still equals `basePriceExcl` x quantity,
  the discount is subtracted here, otherwise the totals are taken as net.
- A line split over outlets becomes one sale line per outlet, each with its `fulfilment_outlet_id` (the vendor's
  spelling on 2.0 sale lines; [I] for 0.9).
- `tax_id` comes from `tax_ids`, keyed by the line's tax rate in basis points (15% -> 1500); an unknown rate leaves
  `tax_id` out and the POS uses the product's tax.
- Shipping: 0.9 has no documented shipping charge field (`ecom_custom_charges` is read-only), so shipping is a sale
  line on the connection's shipping product (quantity 1, fulfilled by the first outlet of the plan). Without a
  shipping product the charge is written in the note and left off the sale, with a warning: the order still
  imports (and takes its stock) instead of waiting for configuration.
- A payment, when recorded, is the sale's own total (what the POS will compute from the lines), so the sale
  balances exactly; a difference from the eCom order total is reported in `warnings`.
- Dates are sent as UTC "YYYY-MM-DD HH:MM:SS", the 0.9 format.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, TypeAlias

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


def match_line(
    line: EcomOrderLine,
    *,
    variant_map: Mapping[int, str],
    by_sku: ProductRefs,
    by_ean: ProductRefs,
) -> str | Unmatched:
    """The POS product id of an order line: through the variant mapping, then SKU, then EAN.

    `by_sku`/`by_ean` map a code to one POS product id or to all products carrying it; a code shared by several
    products matches none of them (guessing would sell the wrong item).
    """
    tried: list[str] = []
    variant_id = line.variant_id
    if variant_id is not None and variant_id in variant_map:
        return variant_map[variant_id]
    tried.append(f"variant {variant_id} is not mapped" if variant_id is not None else "no variant")
    for label, refs, code in (("SKU", by_sku, line.sku), ("EAN", by_ean, line.ean)):
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
    by_ean: ProductRefs,
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


def source_id(order: EcomOrder) -> str:
    """The deterministic reference the worker looks a sale up by before creating it (exactly one sale per order)."""
    return f"{SOURCE_ID_PREFIX}{order.id}"


def sale_status(order: EcomOrder) -> str:
    return "AWAITING_PICKUP" if order.shipment_is_pickup else "AWAITING_DISPATCH"


def pos_datetime(iso: str) -> str:
    """ISO-8601 with offset -> UTC "YYYY-MM-DD HH:MM:SS" (the 0.9 API's date format); naive input is taken as UTC."""
    moment = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def rate_basis_points(rate: Decimal | float) -> int:
    """A tax rate as an integer key: 0.15 -> 1500."""
    return int((Decimal(str(rate)) * 10000).quantize(Decimal(1), ROUND_HALF_UP))


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


def _tax_id(tax_ids: Mapping[int, str], rate: int | None) -> str | None:
    return tax_ids.get(rate) if rate is not None else None


def _line_total(price: Decimal, tax: Decimal, quantity: int) -> Decimal:
    # What the POS stores per line: price x quantity and tax x quantity, each rounded to cents.
    return (price * quantity).quantize(CENT, ROUND_HALF_UP) + (tax * quantity).quantize(CENT, ROUND_HALF_UP)


@dataclass(frozen=True)
class RegisterSale:
    """The 0.9 body and what the worker needs around it."""

    body: dict[str, Any]
    source_id: str
    total_incl: Decimal
    warnings: tuple[str, ...] = field(default=())


def build_register_sale(
    order: EcomOrder,
    lines: Sequence[EcomOrderLine],
    *,
    plan: FulfillmentPlan,
    payment: PaymentDecision,
    register_id: str,
    customer_id: str | None = None,
    user_id: str | None = None,
    shipping_product_id: str | None = None,
    tax_ids: Mapping[int, str] | None = None,
) -> RegisterSale:
    """Build the `POST /api/register_sales` body of `order`.

    `plan` comes from `route_order` on the matched lines and says which POS product and outlet each unit goes to;
    `lines` give the prices. Every line with a quantity must be assigned in full by the plan.
    """
    if not register_id:
        raise ValueError("a sale needs the online register")
    by_id = {line.id: line for line in lines}
    _check_plan_covers(lines, plan, by_id)
    tax_ids = tax_ids or {}
    warnings: list[str] = []

    products: list[dict[str, Any]] = []
    total = Decimal(0)
    for line in lines:
        if line.quantity_ordered <= 0:
            continue
        price, tax = unit_amounts(line)
        excl, incl = _net_totals(line)
        tax_id = _tax_id(tax_ids, _rate_of(excl, incl, line.tax_rate))
        for assignment in plan.assignments:
            for part in assignment.lines:
                if part.line_id != line.id:
                    continue
                products.append(_sale_line(part.product_id, part.quantity, price, tax, assignment.outlet_id, tax_id))
                total += _line_total(price, tax, part.quantity)

    shipping_excl, shipping_incl = _money(order.shipment_price_excl), _money(order.shipment_price_incl)
    shipping_left_off = shipping_incl > 0 and not shipping_product_id
    if shipping_incl > 0 and shipping_product_id:
        price = shipping_excl.quantize(UNIT_PLACES, ROUND_HALF_UP)
        tax = (shipping_incl - shipping_excl).quantize(UNIT_PLACES, ROUND_HALF_UP)
        tax_id = _tax_id(tax_ids, _rate_of(shipping_excl, shipping_incl, None))
        products.append(_sale_line(shipping_product_id, 1, price, tax, plan.assignments[0].outlet_id, tax_id))
        total += _line_total(price, tax, 1)
    elif shipping_left_off:
        warnings.append(
            f"shipping {shipping_incl:.2f} is not on the sale: the connection has no shipping product configured"
        )

    if order.price_incl is not None:
        expected = _money(order.price_incl) - (shipping_incl if shipping_left_off else 0)
        if abs(expected - total) > CENT:
            warnings.append(f"sale total {total:.2f} differs from the eCom order total {expected:.2f}")

    sale_date = pos_datetime(order.created_at) if order.created_at else None
    body: dict[str, Any] = {
        "register_id": register_id,
        "status": sale_status(order),
        "source_id": source_id(order),
        "note": _note(order, plan, payment, shipping_incl if shipping_left_off else None),
        "register_sale_products": products,
        "register_sale_payments": [],
    }
    if customer_id:
        body["customer_id"] = customer_id
    if user_id:
        body["user_id"] = user_id
    if sale_date:
        body["sale_date"] = sale_date
    if isinstance(payment, RecordPayment):
        recorded: dict[str, Any] = {
            "register_id": register_id,
            "retailer_payment_type_id": payment.retailer_payment_type_id,
            "amount": float(total),
        }
        if sale_date:
            recorded["payment_date"] = sale_date
        body["register_sale_payments"] = [recorded]
    return RegisterSale(body=body, source_id=body["source_id"], total_incl=total, warnings=tuple(warnings))


def _sale_line(
    product_id: str, quantity: int, price: Decimal, tax: Decimal, outlet_id: str, tax_id: str | None
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "product_id": product_id,
        "quantity": quantity,
        "price": float(price),
        "tax": float(tax),
        "fulfilment_outlet_id": outlet_id,
    }
    if tax_id:
        row["tax_id"] = tax_id
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


def _note(order: EcomOrder, plan: FulfillmentPlan, payment: PaymentDecision, shipping_left_off: Decimal | None) -> str:
    parts = [f"eCom order {order.number}"]
    if order.shipment_title:
        parts.append(f"{'Pickup' if order.shipment_is_pickup else 'Shipping'}: {order.shipment_title}")
    if shipping_left_off is not None:
        parts.append(f"Shipping charged online: {shipping_left_off:.2f} incl. tax (not on this sale)")
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
