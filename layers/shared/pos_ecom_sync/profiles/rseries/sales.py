"""R-Series sales, both ways, as pure functions: an eCom order (`orders.sale.SaleDraft`) as a `POST Sale.json` body,
and a Sale row as the neutral sale status sync reads (`models.sales.PosSale`).

Sources: KVH = koop-voor-hoop/lightspeed-retail-client `docs/**` (a mirror of developers.lightspeedhq.com/retail).

Finding a sale again: R-Series chooses the saleID, so the sale carries the order's reference: `referenceNumber`
"ecom-<order id>" ("Custom reference sale number from an external system (e.g. webstore, amazon)") with
`referenceNumberSource` "eCom" ("Name of the external system for referenceNumber", KVH endpoints/sale.md). The
reference keeps our "ecom-" prefix (`orders.sale.source_id`) so `models.references.order_in_reference` reads it back; a
sale whose source is another system never counts as ours, whatever its number.

Refunds: "Refunds are expressed as a Sale whose SaleLines have a negative unitQuantity" (KVH sale-refund.md), each
naming the line it refunds in `parentSaleLineID` (KVH saleline.md). The refund row does not name the sale it
refunds; its parent lines do (their `saleID`), so a refund is read with its parents (`refund_parents`,
`parent_line_of`) into a `PosSale` with `return_for`, and status sync credits the eCom order as for an X-Series
return (a completed refund only: an open one may still change).

Choices the vendor docs leave open (each says why):
- State: R-Series has no status, only `completed` and `voided` (KVH sale.md). An unpaid order is an open sale
  (`completed` false: "If the sale is completed the inventory will have been removed and the payments will be equal to
  the total"), a paid one a completed sale with one SalePayment of its total, a cancelled one a voided sale. An
  archived sale that was never completed (KVH sale.md DELETE: "You can't archive a completed sale") was discarded in
  the POS: nothing of it stands, so it reads as VOIDED.
- One shop per sale: a Sale has one `shopID`, and SaleLine `shopID` is only "the shop where this sale line was
  added" (KVH saleline.md), with no documented effect on stock, so it is not sent. The sale goes to the plan's first
  outlet (the whole order when the router found one outlet, the pickup store of a tied shipping method); a split plan
  is sold from that first outlet, with a warning naming the others.
- Prices: each order line is one SaleLine at its unit price excluding tax (`orders.sale.unit_amounts`, after
  discount); R-Series computes the tax itself from the line's TaxClass and the sale's TaxCategory (KVH saleline.md
  `tax`, `tax1Rate` "Customized by the TaxClass and the TaxCategory"), so a line eCom charged no tax on is sent
  `tax: false` ("If false no tax will apply") and the others `tax: true`. Whether the POS total then equals the eCom
  total depends on the POS's tax setup: the worker compares them and warns.
- Promotions stay off (`enablePromotions` false is the default: "pricing rules are not applied to sales completed
  through the API", KVH tutorials/sales.md), so the POS never reprices an online order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from pos_ecom_sync.models.messages import ChangeMessage
from pos_ecom_sync.models.orders import EcomOrder, EcomOrderLine, FulfillmentPlan
from pos_ecom_sync.models.sales import PosSale, SaleHint, SaleLine, SaleState, WrittenSale, sale_digest
from pos_ecom_sync.orders.sale import (
    CENT,
    UNIT_PLACES,
    SaleDraft,
    check_plan_covers,
    money,
    net_totals,
    total_mismatch,
    unit_amounts,
)
from pos_ecom_sync.profiles.rseries import envelope

JsonObject = dict[str, Any]
# `referenceNumberSource` of the sales this sync makes (KVH sale.md: "Name of the external system").
REFERENCE_SOURCE = "eCom"


def _text(value: Decimal) -> str:
    """A number as R-Series writes them (every scalar a string): "12.5", "3"."""
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "") else text


def _flag(value: bool) -> str:
    return "true" if value else "false"


# -- the sale body ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NewSale:
    """A `POST Sale.json` body and what the worker needs around it: the total it expects the POS to compute (the
    eCom order's lines and shipping, tax included) and whether the body completes the sale with a payment."""

    body: JsonObject
    expected_total: Decimal
    paid: bool
    warnings: tuple[str, ...] = field(default=())


def payment_row(payment_type_id: str, amount: Decimal, remote_reference: str) -> JsonObject:
    """One SalePayment: `remoteReference` is "an optional client-generated unique identifier" (KVH salepayment.md),
    a stable key of ours, so the payment can be told apart from one taken at the till."""
    return {"paymentTypeID": payment_type_id, "amount": _text(amount), "remoteReference": remote_reference}


def import_payment_reference(draft: SaleDraft) -> str:
    """The `remoteReference` of the payment an import records: the order's sale key (ours, stable across attempts)."""
    return draft.sale_key


def build_sale(
    draft: SaleDraft,
    *,
    shop_id: str,
    register_id: str,
    employee_id: str | None,
    payment_type_id: str | None,
) -> NewSale:
    """The sale of the draft's order, sold from `shop_id` on `register_id`. `payment_type_id`: record the integrated
    payment (a paid order), completing the sale; None leaves it open and unpaid. A cancelled order is voided and
    pays nothing. Raises ValueError when the plan does not cover the order or shipping has no product."""
    order, lines, plan = draft.order, draft.lines, draft.plan
    if not register_id or not shop_id:
        raise ValueError("an R-Series sale needs its shop and register")
    check_plan_covers(lines, plan, {line.id: line for line in lines})
    rows, total = _sale_lines(lines, plan)
    shipping = _shipping_line(order, draft.shipping_product_id)
    if shipping is not None:
        rows.append(shipping[0])
        total += shipping[1]
    cancelled = draft.cancelled
    paid = payment_type_id is not None and not cancelled
    body: JsonObject = {
        "shopID": shop_id,
        "registerID": register_id,
        "referenceNumber": draft.reference,
        "referenceNumberSource": REFERENCE_SOURCE,
        "completed": _flag(paid),
        "SaleLines": {"SaleLine": rows},
    }
    if employee_id:
        body["employeeID"] = employee_id
    if draft.customer_id:
        body["customerID"] = draft.customer_id
    if cancelled:
        body["voided"] = "true"
    if paid:
        assert payment_type_id is not None
        body["SalePayments"] = {"SalePayment": [payment_row(payment_type_id, total, import_payment_reference(draft))]}
    warnings = [*_split_warning(plan, shop_id), *total_mismatch(order, total)]
    return NewSale(body=body, expected_total=total, paid=paid, warnings=tuple(warnings))


def _split_warning(plan: FulfillmentPlan, shop_id: str) -> list[str]:
    others = [o for o in plan.outlet_ids if o != shop_id]
    if not others:
        return []
    return [
        f"the order was routed to shops {', '.join([shop_id, *others])}, but an R-Series sale belongs to one shop: "
        f"it is sold from shop {shop_id}"
    ]


def _taxed(excl: Decimal, incl: Decimal) -> bool:
    return incl - excl >= CENT


def _line_total(price: Decimal, tax: Decimal, quantity: int) -> Decimal:
    return (price * quantity).quantize(CENT, ROUND_HALF_UP) + (tax * quantity).quantize(CENT, ROUND_HALF_UP)


def _sale_lines(lines: Sequence[EcomOrderLine], plan: FulfillmentPlan) -> tuple[list[JsonObject], Decimal]:
    """One SaleLine per order line with a quantity (one shop: the plan's parts of a line are one line here)."""
    product_of = {part.line_id: part.product_id for a in plan.assignments for part in a.lines}
    rows: list[JsonObject] = []
    total = Decimal(0)
    for line in lines:
        if line.quantity_ordered <= 0:
            continue
        price, tax = unit_amounts(line)
        excl, incl = net_totals(line)
        rows.append(
            {
                "itemID": product_of[line.id],
                "unitQuantity": str(line.quantity_ordered),
                "unitPrice": _text(price),
                "tax": _flag(_taxed(excl, incl)),
            }
        )
        total += _line_total(price, tax, line.quantity_ordered)
    return rows, total


def _shipping_line(order: EcomOrder, shipping_product_id: str | None) -> tuple[JsonObject, Decimal] | None:
    """The shipping charge as one line of the connection's shipping item; None when the order charges none."""
    excl, incl = money(order.shipment_price_excl), money(order.shipment_price_incl)
    if incl <= 0:
        return None
    if not shipping_product_id:
        raise ValueError(f"order {order.number} charges shipping {incl:.2f}: a sale needs a shipping product")
    price = excl.quantize(UNIT_PLACES, ROUND_HALF_UP)
    tax = (incl - excl).quantize(UNIT_PLACES, ROUND_HALF_UP)
    row = {
        "itemID": shipping_product_id,
        "unitQuantity": "1",
        "unitPrice": _text(price),
        "tax": _flag(_taxed(excl, incl)),
    }
    return row, _line_total(price, tax, 1)


# -- a Sale row as status sync reads it ------------------------------------------------------------------------


def sale_state_of(row: Mapping[str, Any]) -> tuple[SaleState, str]:
    """(state, the POS's word for it): voided, completed (finalized), archived while open (discarded), else open."""
    if envelope.flag(row.get("voided")):
        return SaleState.VOIDED, "voided"
    if envelope.flag(row.get("completed")):
        return SaleState.CLOSED, "completed"
    if envelope.flag(row.get("archived")):
        return SaleState.VOIDED, "archived"
    return SaleState.OPEN, "open"


def live_payments(row: Mapping[str, Any]) -> list[JsonObject]:
    """The sale's payments that count: "Archived payments should not count towards totals, they are essentially
    voided" (KVH salepayment.md)."""
    return [p for p in envelope.relation(row, "SalePayments", "SalePayment") if not envelope.flag(p.get("archived"))]


def paid_amount(row: Mapping[str, Any]) -> Decimal:
    """What is paid: the live SalePayments when the relation was loaded, else `calcPayments` ("The total of all
    SalePayment amounts", KVH sale.md)."""
    if "SalePayments" not in row:
        return envelope.decimal(row.get("calcPayments")) or Decimal(0)
    return sum((envelope.decimal(p.get("amount")) or Decimal(0) for p in live_payments(row)), Decimal(0))


def reference_of(number: Any, source: Any) -> str | None:
    """The sale's external reference as the domain reads it: ours ("ecom-<id>") only when its source is ours; another
    system's number is kept, prefixed with that system, so it never reads as one of our orders."""
    text = str(number or "").strip()
    if not text:
        return None
    origin = str(source or "").strip()
    return text if origin == REFERENCE_SOURCE else f"{origin or 'external'}:{text}"


def sale_of_row(row: Mapping[str, Any], parents: Mapping[str, ParentLine] | None = None) -> PosSale:
    """A `Sale` row read with its SaleLines and SalePayments (KVH sale.md fields).

    A refund is a sale whose lines take units back (negative `unitQuantity`) and name the line they refund
    (`parentSaleLineID`, KVH saleline.md, sale-refund.md). The sale it returns is not on the row: `parents` are those
    original lines as read (`refund_parents` says which; `parent_line_of` reads them). With them, `return_for` is
    the sale of the first refund line's parent and `lines` are the refund lines of that sale, each with its item (the
    parent's when the refund line names none). A refund is never an imported sale itself, so its reference (whether
    it copies the original's is undocumented) is dropped: without its parents it reads as nobody's sale."""
    state, label = sale_state_of(row)
    rows = envelope.relation(row, "SaleLines", "SaleLine")
    refunding = any(_refund_parent(line) is not None for line in rows)
    known = parents or {}
    return_for = next(
        (known[p].sale_id for line in rows if (p := _refund_parent(line)) is not None and p in known), None
    )
    lines = []
    for line in rows:
        parent_id = _refund_parent(line)
        parent = known.get(parent_id) if parent_id is not None else None
        if return_for is not None and (parent is None or parent.sale_id != return_for):
            continue  # a refund's lines of another sale (or none) do not return this one
        item_id = envelope.reference(line.get("itemID")) or (parent.item_id if parent is not None else None)
        quantity = envelope.decimal(line.get("unitQuantity"))
        if item_id is not None and quantity is not None:  # a misc. line without an item sold nothing we track
            lines.append(SaleLine(str(line.get("saleLineID") or ""), item_id, quantity))
    return PosSale(
        sale_id=str(row["saleID"]),
        state=state,
        label=label,
        total=envelope.decimal(row.get("total")) or Decimal(0),
        paid=paid_amount(row),
        lines=tuple(lines),
        reference=None if refunding else reference_of(row.get("referenceNumber"), row.get("referenceNumberSource")),
        return_for=return_for,
        # An open sale has not taken its items' qoh yet: R-Series moves stock when a sale completes (KVH
        # best-practices.md: "Adjustments to QoH should be done by creating and completing Sales").
        stock_pending=state == SaleState.OPEN and not refunding,
        digest=content_digest_of(row),
    )


# -- the echo of our writes -----------------------------------------------------------------------------------
# The Sale feed reads rows without relations (`client.FEED_ENTITIES`): a row shows what is paid (`calcPayments`),
# not its payments, so an R-Series digest takes the amount paid as the sale's one "payment". That is all the status
# rules read of an R-Series sale (no fulfilments): state, total, paid.


def _digest(sale_id: str, label: str, total: Decimal, paid: Decimal) -> str:
    return sale_digest(sale_id, label, total, [("paid", paid)])


def content_digest_of(row: Mapping[str, Any]) -> str | None:
    """The sale's `sale_digest` from a Sale row, with or without its SalePayments loaded: its state (`completed`,
    `voided`, `archived`), `total` and what is paid (the live payments, else `calcPayments`). None when the row lacks
    one of them: the message is then read."""
    sale_id, total = envelope.reference(row.get("saleID")), envelope.decimal(row.get("total"))
    paid = paid_amount(row) if "SalePayments" in row else envelope.decimal(row.get("calcPayments"))
    if sale_id is None or total is None or paid is None:
        return None
    try:
        return _digest(sale_id, sale_state_of(row)[1], total, paid)
    except ArithmeticError:  # an amount too large to round to the cent
        return None


def written_sale(
    sale: PosSale, *, voided: bool = False, completed: bool = False, paid: Decimal = Decimal(0)
) -> WrittenSale | None:
    """The sale, as last read, once a `PUT Sale/{id}.json` that voids it, completes it and adds `paid` to its payments
    has gone through (from what was sent, not from the answer): its digest, and whether it is still open (its units
    still on hand, `sale_of_row`). None when the write changes nothing the digest shows."""
    label = "voided" if voided else "completed" if completed else sale.label
    try:
        after = _digest(sale.sale_id, label, sale.total, sale.paid + paid)
        if after == _digest(sale.sale_id, sale.label, sale.total, sale.paid):
            return None
    except ArithmeticError:
        return None
    return WrittenSale(after, stock_pending=sale.stock_pending and not (voided or completed))


# -- refunds: the sale a refund returns ------------------------------------------------------------------------


@dataclass(frozen=True)
class ParentLine:
    """An original SaleLine as a refund line's `parentSaleLineID` names it: the sale it is on, and its item."""

    line_id: str
    sale_id: str
    item_id: str | None = None


def _refund_parent(line: Mapping[str, Any]) -> str | None:
    """A refund line's `parentSaleLineID` ("The foreign ID for the line this refund line originated from. Only for
    refund lines", KVH saleline.md) on a line taking units back (`unitQuantity` "Is negative for refunds"); None for
    any other line, a return without its receipt (no parent) included."""
    quantity = envelope.decimal(line.get("unitQuantity"))
    parent = envelope.reference(line.get("parentSaleLineID"))
    return parent if parent is not None and parent.isdigit() and quantity is not None and quantity < 0 else None


def refund_parents(row: Mapping[str, Any]) -> tuple[str, ...]:
    """The original lines a Sale row's refund lines name, in line order and each once: what to read to know which
    sale it refunds. Empty for a sale that refunds nothing (no extra read for it)."""
    named = (_refund_parent(line) for line in envelope.relation(row, "SaleLines", "SaleLine"))
    return tuple(dict.fromkeys(p for p in named if p is not None))


def parent_line_of(row: Mapping[str, Any]) -> ParentLine | None:
    """A `SaleLine` row (`SaleLine.json`, KVH saleline.md: `saleLineID`, `saleID`, `itemID`); None when it names no
    line or no sale."""
    line_id, sale_id = envelope.reference(row.get("saleLineID")), envelope.reference(row.get("saleID"))
    if line_id is None or sale_id is None or not sale_id.isdigit():
        return None
    return ParentLine(line_id, sale_id, envelope.reference(row.get("itemID")))


def sale_hint_of(message: ChangeMessage) -> SaleHint:
    """A queued Sale change's reference (`profiles.rseries.feeds.PAYLOAD_FIELDS["Sale"]`), when it carries one."""
    payload = message.payload
    return SaleHint(reference=reference_of(payload.get("referenceNumber"), payload.get("referenceNumberSource")))
