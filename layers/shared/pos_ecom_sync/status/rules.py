"""Order statuses between the eCom order and its POS sale: the fixed mapping of seed 004, as pure functions.

| eCom                                  | POS                        | direction                                   |
|---------------------------------------|----------------------------|---------------------------------------------|
| Out for delivery (shipped)            | DISPATCH fulfilments FULFILLED | eCom -> POS                             |
| Ready for pickup (pickup orders only) | PICKUP fulfilments PACKED  | both ways; never for shipments              |
| Processing                            | In progress (STARTED/PICKED) | never synced                              |
| payment Paid (order was unpaid)       | sale paid                  | eCom -> POS; POS -> eCom once paid in POS   |
| payment Canceled                      | sale VOIDED                | both ways; the order is then frozen         |
| Refunded (credit of the lines)        | completed return of the sale | POS -> eCom; a parked or voided return never |

The POS side is read by the connection's POS profile into neutral types (`models.sales`): the sale's state
(open, closed = finalized, voided), total and payments, and its fulfilments per outlet with their kind
(PICKUP|DISPATCH|SERVICE) and state OPEN -> STARTED ("In progress") -> PICKED -> PACKED -> FULFILLED. A POS without
fulfilments has none, and the fulfilment rows of the mapping then plan nothing.

Every synced status only moves forward (unpaid -> paid, open -> packed -> fulfilled, live -> voided/cancelled), so the
rules compare the two sides as they are now and move the one that is behind. That makes a status message a hint:
duplicated, late or reordered deliveries re-read both sides and reach the same end, and our own writes echo back as
changes that plan nothing.

Payment (seed 004): an unintegrated method (cash, cheque, bank deposit) arrives unpaid in the POS even when eCom
already says paid at import, and stays unpaid: only a change of the order from unpaid to Paid in eCom records the POS
payment. eCom tells no history, so the rule takes what the sync saw (`PaymentBasis`): the payment status the sale was
imported with, and whether a status sync has read the order unpaid in eCom since. Without that, every later hint
(each eCom order webhook is one, and so is the poller's sweep) would see "paid in eCom, unpaid in the POS" and pay it.

A status change the POS can no longer take (its sale is finalized: closed) or that arrives for a frozen order
(voided and cancelled) is recorded and ignored, never applied.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeAlias

from pos_ecom_sync.models.sales import FulfillmentKind, FulfillmentState, PosFulfillment, PosSale, SaleState

# eCom order statuses at or past "ready for pickup": never moved back to it.
PICKUP_READY_OR_LATER = frozenset({"processing_ready_for_pickup", "completed", "completed_picked_up", "cancelled"})
OUT_FOR_DELIVERY_STATUSES = frozenset({"completed_shipped"})
# eCom payment statuses of an order that is not (fully) paid: a later Paid is a change to Paid (seed 004).
UNPAID_PAYMENT_STATUSES = frozenset({"not_paid", "partially_paid"})
# A cent of rounding between the POS's computed total and the payments is still paid.
PAID_TOLERANCE = Decimal("0.01")


@dataclass(frozen=True)
class EcomOrderState:
    order_id: int
    status: str
    payment_status: str
    shipment_status: str
    is_pickup: bool
    payment_title: str = ""

    @classmethod
    def of(cls, order: dict[str, Any]) -> EcomOrderState:
        return cls(
            order_id=int(order["id"]),
            status=str(order.get("status") or ""),
            payment_status=str(order.get("paymentStatus") or ""),
            shipment_status=str(order.get("shipmentStatus") or ""),
            is_pickup=bool(order.get("shipmentIsPickup")),
            payment_title=str(order.get("paymentTitle") or ""),
        )

    @property
    def cancelled(self) -> bool:
        return self.payment_status == "cancelled"

    @property
    def paid(self) -> bool:
        return self.payment_status == "paid"

    @property
    def unpaid(self) -> bool:
        return self.payment_status in UNPAID_PAYMENT_STATUSES

    @property
    def out_for_delivery(self) -> bool:
        return not self.is_pickup and (self.shipment_status == "shipped" or self.status in OUT_FOR_DELIVERY_STATUSES)

    @property
    def ready_for_pickup(self) -> bool:
        return self.status == "processing_ready_for_pickup"

    def summary(self) -> str:
        return f"{self.status}/{self.payment_status}/{self.shipment_status}"


@dataclass(frozen=True)
class PosSaleState:
    """The POS sale as the rules compare it: the sale and its fulfilments, as read now."""

    sale_id: str
    state: SaleState
    label: str  # the POS's own word for the sale's status, for the reasons and the ledger
    total: Decimal  # tax included
    paid_amount: Decimal
    fulfillments: tuple[PosFulfillment, ...] = ()
    # False when the fulfilments were not read because they could not change the plan (`fulfillments_matter`).
    fulfillments_read: bool = True

    @classmethod
    def of(cls, sale: PosSale, fulfillments: Sequence[PosFulfillment] | None) -> PosSaleState:
        """The sale with its fulfilments as read; None: not read (they could not change the plan)."""
        read = fulfillments is not None
        return cls(sale.sale_id, sale.state, sale.label, sale.total, sale.paid, tuple(fulfillments or ()), read)

    @property
    def voided(self) -> bool:
        return self.state == SaleState.VOIDED

    @property
    def finalized(self) -> bool:
        return self.state == SaleState.CLOSED

    @property
    def paid(self) -> bool:
        return self.total <= 0 or self.paid_amount >= self.total - PAID_TOLERANCE

    @property
    def outstanding(self) -> Decimal:
        return max(Decimal(0), self.total - self.paid_amount)

    @property
    def packed_for_pickup(self) -> bool:
        """Every pickup fulfilment is packed (or already collected), and at least one is packed."""
        pickups = [f for f in self.fulfillments if f.kind == FulfillmentKind.PICKUP]
        return (
            bool(pickups)
            and all(f.state in (FulfillmentState.PACKED, FulfillmentState.FULFILLED) for f in pickups)
            and any(f.state == FulfillmentState.PACKED for f in pickups)
        )

    def summary(self) -> str:
        fulfillments = ",".join(sorted(f"{f.kind}:{f.state}" for f in self.fulfillments)) or "-"
        if not self.fulfillments_read:
            fulfillments = "fulfillments not read"
        return f"{self.label}/{'paid' if self.paid else 'unpaid'}/{fulfillments}"


@dataclass(frozen=True)
class PaymentBasis:
    """What the sync knew of the order's eCom payment before this read (seed 004)."""

    # eCom already said paid when the sale was imported: an unintegrated method arrived unpaid, an integrated one
    # with its payment. False for an order imported unpaid, and for ledgers older than this record (unknown).
    paid_at_import: bool = False
    # A status sync has read the order unpaid in eCom since its import.
    unpaid_seen_since: bool = False

    @property
    def change_to_paid_possible(self) -> bool:
        """A Paid read now is a change from unpaid (what records the POS payment), not the state it arrived in."""
        return not self.paid_at_import or self.unpaid_seen_since

    def after(self, ecom: EcomOrderState) -> PaymentBasis:
        """The basis the next read starts from, once this one is recorded."""
        return PaymentBasis(self.paid_at_import, self.unpaid_seen_since or ecom.unpaid)


# -- actions ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VoidSale:
    reason: str


@dataclass(frozen=True)
class RecordPosPayment:
    """Pay what is outstanding on the sale, on the POS payment type that matches the eCom method."""

    amount: Decimal
    method_title: str


@dataclass(frozen=True)
class CompleteFulfillments:
    """Fulfil the sale: the vendor's call completes every fulfilment of it, so this is planned only when all its
    open fulfilments are these (DISPATCH) ones."""

    fulfillments: tuple[PosFulfillment, ...]


@dataclass(frozen=True)
class PackFulfillments:
    fulfillments: tuple[PosFulfillment, ...]


@dataclass(frozen=True)
class UpdateEcomOrder:
    fields: tuple[tuple[str, str], ...]
    reason: str

    def as_dict(self) -> dict[str, str]:
        return dict(self.fields)


@dataclass(frozen=True)
class CreditEcomOrder:
    """Refund these eCom order lines: `(order product id, quantity)`."""

    lines: tuple[tuple[int, int], ...]


StatusAction: TypeAlias = (
    VoidSale | RecordPosPayment | CompleteFulfillments | PackFulfillments | UpdateEcomOrder | CreditEcomOrder
)


@dataclass(frozen=True)
class StatusPlan:
    actions: tuple[StatusAction, ...] = ()
    ignored: tuple[str, ...] = ()
    frozen: bool = False  # after the actions: the order is voided and cancelled, nothing more is applied


def describe(action: StatusAction) -> str:
    match action:
        case VoidSale(reason=reason):
            return f"void POS sale ({reason})"
        case RecordPosPayment(amount=amount, method_title=title):
            return f"record POS payment {amount} ({title or 'no method'})"
        case CompleteFulfillments(fulfillments=fulfillments):
            outlets = ", ".join(sorted({f.location_id for f in fulfillments}))
            return f"complete {len(fulfillments)} POS dispatch fulfillment(s) at {outlets}"
        case PackFulfillments(fulfillments=fulfillments):
            return f"mark {len(fulfillments)} POS fulfillment(s) packed"
        case UpdateEcomOrder(fields=fields, reason=reason):
            return f"set eCom order {', '.join(f'{k}={v}' for k, v in fields)} ({reason})"
        case CreditEcomOrder(lines=lines):
            return f"credit {sum(q for _, q in lines)} item(s) on the eCom order (returned in the POS)"
    raise AssertionError(action)  # pragma: no cover


def fulfillments_matter(ecom: EcomOrderState, sale: SaleState, *, frozen: bool) -> bool:
    """Whether the sale's fulfilments can change what `plan_status_sync` plans, given the eCom order and the sale's
    state: only a live pickup order not yet past ready for pickup (a pack either way) or a delivery out for delivery
    (a fulfil) looks at them. Otherwise a sync does not read them: one vendor call saved on every payment, cancel and
    void. tests/unit/test_status_rules.py proves the plan is the same with or without them whenever this is False."""
    if frozen or sale == SaleState.VOIDED or ecom.cancelled:
        return False
    if ecom.is_pickup:
        return ecom.ready_for_pickup or ecom.status not in PICKUP_READY_OR_LATER
    return ecom.out_for_delivery


def plan_status_sync(
    ecom: EcomOrderState, pos: PosSaleState, *, frozen: bool, payment: PaymentBasis | None = None
) -> StatusPlan:
    """What to change so the order and its sale agree, given both as they are now; `payment` is what the sync
    knew of the eCom payment before this read (default: imported unpaid)."""
    if frozen or (pos.voided and ecom.cancelled):
        return StatusPlan(
            ignored=("the order is voided and cancelled (frozen): no status change applies",), frozen=True
        )

    # Canceled <-> Voided, both ways; whichever side did it first wins and the order freezes.
    if pos.voided:
        fields = (("paymentStatus", "cancelled"),)
        return StatusPlan(actions=(UpdateEcomOrder(fields, "the POS sale was voided"),), frozen=True)
    if ecom.cancelled:
        if pos.finalized:
            return StatusPlan(
                ignored=(f"eCom payment cancelled after the POS sale was finalized ({pos.label}): not voided",)
            )
        return StatusPlan(actions=(VoidSale("eCom payment cancelled"),), frozen=True)

    actions: list[StatusAction] = []
    ignored: list[str] = []
    _plan_payment(ecom, pos, payment or PaymentBasis(), actions, ignored)
    if ecom.is_pickup:
        _plan_pickup(ecom, pos, actions, ignored)
    else:
        _plan_delivery(ecom, pos, actions, ignored)
    return StatusPlan(actions=tuple(actions), ignored=tuple(ignored))


def _plan_payment(
    ecom: EcomOrderState, pos: PosSaleState, basis: PaymentBasis, actions: list[StatusAction], ignored: list[str]
) -> None:
    if ecom.paid and not pos.paid:
        if pos.finalized:
            ignored.append(f"eCom marked paid after the POS sale was finalized ({pos.label})")
        elif not basis.change_to_paid_possible:
            method = ecom.payment_title or "its method"
            ignored.append(
                f"eCom already said paid ({method}) when the order was imported: an unintegrated payment arrives "
                "unpaid and is taken on the POS sell screen once confirmed offline; only a change to Paid is synced"
            )
        else:
            actions.append(RecordPosPayment(pos.outstanding, ecom.payment_title))
    elif pos.paid and ecom.payment_status in ("not_paid", "partially_paid"):
        # Paid on the POS sell screen: the only way a POS payment reaches eCom.
        actions.append(UpdateEcomOrder((("paymentStatus", "paid"),), "paid in the POS"))


def _plan_pickup(ecom: EcomOrderState, pos: PosSaleState, actions: list[StatusAction], ignored: list[str]) -> None:
    unpacked = tuple(f for f in pos.fulfillments if f.kind == FulfillmentKind.PICKUP and f.packable)
    if ecom.ready_for_pickup and unpacked:
        if pos.finalized:
            ignored.append(f"eCom ready for pickup after the POS sale was finalized ({pos.label})")
        else:
            actions.append(PackFulfillments(unpacked))
    elif pos.packed_for_pickup and ecom.status not in PICKUP_READY_OR_LATER:
        actions.append(UpdateEcomOrder((("status", "processing_ready_for_pickup"),), "packed in the POS"))


def _plan_delivery(ecom: EcomOrderState, pos: PosSaleState, actions: list[StatusAction], ignored: list[str]) -> None:
    if ecom.ready_for_pickup:
        ignored.append("ready for pickup is never synced for a shipment")
    if not ecom.out_for_delivery:
        return
    pending = tuple(f for f in pos.fulfillments if f.kind == FulfillmentKind.DISPATCH and f.open)
    others = sorted({str(f.kind) for f in pos.fulfillments if f.kind != FulfillmentKind.DISPATCH and f.open})
    if pending and pos.finalized:
        ignored.append(f"eCom out for delivery after the POS sale was finalized ({pos.label})")
    elif pending and others:
        # The fulfil call completes every fulfilment of the sale: it would hand over the other kinds too.
        ignored.append(f"eCom out for delivery, but the sale also has open {'/'.join(others)} fulfilments")
    elif pending:
        actions.append(CompleteFulfillments(pending))


def plan_refund(returned: Mapping[int, int], refunded: Mapping[int, int]) -> CreditEcomOrder | None:
    """Credit what the POS took back (all returns of the sale, per eCom order line) and eCom has not refunded yet.

    Both counts only grow, so a repeated or late return message credits nothing twice: the difference is what is
    still owed. Items are back in POS stock through the return itself; stock sync carries that to eCom.
    """
    lines = tuple(
        (line, quantity - refunded.get(line, 0))
        for line, quantity in sorted(returned.items())
        if quantity > refunded.get(line, 0)
    )
    return CreditEcomOrder(lines) if lines else None


def completed_return(return_sale: PosSale) -> bool:
    """A return took items back only once it is completed (closed) in the POS. It starts parked (open); a parked
    return may still be changed or voided, and a voided one took nothing."""
    return return_sale.state == SaleState.CLOSED


def returned_quantities(return_sale: PosSale) -> dict[str, int]:
    """POS product id -> items a return sale took back (its lines carry negative quantities)."""
    taken: dict[str, int] = {}
    for line in return_sale.lines:
        if line.quantity < 0 and line.product_id:
            taken[line.product_id] = taken.get(line.product_id, 0) + int(-line.quantity)
    return taken
