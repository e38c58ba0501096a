"""An eCom order as a POS sale, in neutral terms: line matching, the sale's idempotency key and reference, unit
prices, and the `SaleDraft` the connection's POS profile turns into its vendor's sale body (X-Series:
`profiles.xseries.sale`).

Line matching: the variant mapping first, then SKU, then EAN. An order with any line that matches no POS product
is held as a whole (`Hold`, listing every unmatched line and why); it is never imported with lines missing.

Exactly once: the sale key is ours, chosen before anything is written (`sale_uuid`: uuid5 of the connection and the
eCom order id), and the sale carries the order's reference (`source_id`: "ecom-<order id>"); each profile finds an
imported sale again by the mechanism its vendor documents (X-Series: the key is the sale's own id).

Prices: eCom order lines carry line totals (`priceExcl`/`priceIncl`). A sale line gets the unit price excluding tax
and the unit tax, both with 5 decimals. Whether eCom's line totals already have `discountExcl` taken off is not
documented: if `priceExcl` still equals `basePriceExcl` x quantity, the discount is subtracted here, otherwise the
totals are taken as net.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import TypeAlias

from pos_ecom_sync.models.orders import EcomOrder, EcomOrderLine, FulfillmentPlan
from pos_ecom_sync.models.references import ORDER_REFERENCE_PREFIX
from pos_ecom_sync.orders.payments import LeaveUnpaid, PaymentDecision
from pos_ecom_sync.orders.routing import LineDemand

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


# Why a line is not matched by its EAN on a POS whose API has no barcode filter (held with this reason, not guessed).
EAN_NOT_SEARCHABLE = "matching by EAN is not possible: the POS API has no barcode filter"


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
    by barcode, so a line with only an EAN to go by is unmatched with that reason.
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


def sale_uuid(connection_id: str, order_id: int) -> str:
    """The sale id of an eCom order: the same for every attempt of one connection, different across connections."""
    return str(uuid.uuid5(SALE_ID_NAMESPACE, f"{connection_id}:{order_id}"))


def source_id(order: EcomOrder | int) -> str:
    """The order's reference on the sale ("ecom-<order id>"): how a person (or the status worker) tells which order it
    is."""
    return f"{ORDER_REFERENCE_PREFIX}{order if isinstance(order, int) else order.id}"


@dataclass(frozen=True)
class SaleDraft:
    """Everything a POS profile needs to build its sale for one eCom order (`PosOrders.create_sale`): the order and
    its lines (prices), the plan (which POS product and outlet each unit goes to), the payment decision, the sale key
    and reference, the online register and the customer. A cancelled order becomes a voided sale."""

    order: EcomOrder
    lines: Sequence[EcomOrderLine]
    sale_key: str
    plan: FulfillmentPlan
    payment: PaymentDecision
    register_id: str
    customer_id: str | None = None
    shipping_product_id: str | None = None

    @property
    def reference(self) -> str:
        return source_id(self.order)

    @property
    def cancelled(self) -> bool:
        return self.order.payment_status == "cancelled"


def money(value: float | int) -> Decimal:
    return Decimal(str(value))


def net_totals(line: EcomOrderLine) -> tuple[Decimal, Decimal]:
    """The line's total excl. and incl. tax after discount."""
    excl, incl = money(line.price_excl), money(line.price_incl)
    discount_excl, discount_incl = money(line.discount_excl), money(line.discount_incl)
    if discount_excl > 0 and line.base_price_excl is not None:
        gross = money(line.base_price_excl) * line.quantity_ordered
        if abs(gross - excl) <= CENT:  # the totals are still before discount
            return excl - discount_excl, incl - discount_incl
    return excl, incl


def unit_amounts(line: EcomOrderLine) -> tuple[Decimal, Decimal]:
    """(unit price excl. tax, unit tax) of an order line, 5 decimals."""
    if line.quantity_ordered <= 0:
        raise ValueError(f"order line {line.id} has no quantity")
    excl, incl = net_totals(line)
    return (
        (excl / line.quantity_ordered).quantize(UNIT_PLACES, ROUND_HALF_UP),
        ((incl - excl) / line.quantity_ordered).quantize(UNIT_PLACES, ROUND_HALF_UP),
    )


def total_mismatch(order: EcomOrder, total: Decimal) -> list[str]:
    """A warning when the sale's total is more than a cent off the eCom order's own total."""
    if order.price_incl is None:
        return []
    expected = money(order.price_incl)
    if abs(expected - total) <= CENT:
        return []
    return [f"sale total {total:.2f} differs from the eCom order total {expected:.2f}"]


def check_plan_covers(
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


def sale_note(order: EcomOrder, plan: FulfillmentPlan, payment: PaymentDecision) -> str:
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
