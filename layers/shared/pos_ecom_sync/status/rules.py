"""Order statuses between the eCom order and its POS sale: the fixed mapping of seed 004, as pure functions.

| eCom                                  | POS                        | direction                                   |
|---------------------------------------|----------------------------|---------------------------------------------|
| Out for delivery (shipped)            | fulfillment completed      | eCom -> POS                                 |
| Ready for pickup (pickup orders only) | fulfillment PACKED         | both ways; never for shipments              |
| Processing                            | In progress                | never synced                                |
| payment Paid (order was unpaid)       | sale paid                  | eCom -> POS; POS -> eCom once paid in POS   |
| payment Canceled                      | sale VOIDED                | both ways; the order is then frozen         |
| Refunded (credit of the lines)        | return of the sale         | POS -> eCom                                 |

Every synced status only moves forward (unpaid -> paid, new -> packed -> completed, live -> voided/cancelled), so the
rules compare the two sides as they are now and move the one that is behind. That makes a status message a hint:
duplicated, late or reordered deliveries re-read both sides and reach the same end, and our own writes echo back as
changes that plan nothing.

A status change the POS can no longer take (its sale is finalized: `*_CLOSED`) or that arrives for a frozen order
(voided and cancelled) is recorded and ignored, never applied.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeAlias

FINALIZED_SALE_STATUSES = frozenset(
    {"CLOSED", "ONACCOUNT_CLOSED", "LAYBY_CLOSED", "DISPATCHED_CLOSED", "PICKED_UP_CLOSED", "SERVICE_CLOSED"}
)
DONE_FULFILLMENT_STATUSES = frozenset({"SHIPPED", "PICKED_UP", "COMPLETED", "FULFILLED"})
# eCom order statuses at or past "ready for pickup": never moved back to it.
PICKUP_READY_OR_LATER = frozenset({"processing_ready_for_pickup", "completed", "completed_picked_up", "cancelled"})
OUT_FOR_DELIVERY_STATUSES = frozenset({"completed_shipped"})
# A cent of rounding between the POS's computed total and the payments is still paid.
PAID_TOLERANCE = Decimal("0.01")


def _money(value: Any) -> Decimal:
    try:
        return Decimal(str(value or 0))
    except ArithmeticError:
        return Decimal(0)


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
    def out_for_delivery(self) -> bool:
        return not self.is_pickup and (self.shipment_status == "shipped" or self.status in OUT_FOR_DELIVERY_STATUSES)

    @property
    def ready_for_pickup(self) -> bool:
        return self.status == "processing_ready_for_pickup"

    def summary(self) -> str:
        return f"{self.status}/{self.payment_status}/{self.shipment_status}"


@dataclass(frozen=True)
class PosFulfillment:
    fulfillment_id: str
    outlet_id: str
    kind: str  # DISPATCH | PICKUP
    status: str  # NEW, PACKED, SHIPPED, PICKED_UP, CANCELLED
    version: int | None = None

    @classmethod
    def of(cls, row: dict[str, Any]) -> PosFulfillment:
        version = row.get("version")
        return cls(
            fulfillment_id=str(row["id"]),
            outlet_id=str(row.get("outlet_id") or ""),
            kind=str(row.get("type") or ""),
            status=str(row.get("status") or "").upper(),
            version=int(version) if isinstance(version, int) else None,
        )

    @property
    def done(self) -> bool:
        return self.status in DONE_FULFILLMENT_STATUSES

    @property
    def open(self) -> bool:
        return not self.done and self.status != "CANCELLED"


@dataclass(frozen=True)
class PosSaleState:
    sale_id: str
    status: str
    total: Decimal  # tax included
    paid_amount: Decimal
    fulfillments: tuple[PosFulfillment, ...] = ()

    @classmethod
    def of(cls, sale: dict[str, Any], fulfillments: Sequence[dict[str, Any]]) -> PosSaleState:
        total = _money(sale.get("total_price")) + _money(sale.get("total_tax"))
        paid = sum((_money(p.get("amount")) for p in sale.get("payments") or [] if isinstance(p, dict)), Decimal(0))
        return cls(
            sale_id=str(sale["id"]),
            status=str(sale.get("status") or ""),
            total=total,
            paid_amount=paid,
            fulfillments=tuple(PosFulfillment.of(f) for f in fulfillments),
        )

    @property
    def voided(self) -> bool:
        return self.status == "VOIDED"

    @property
    def finalized(self) -> bool:
        return self.status in FINALIZED_SALE_STATUSES

    @property
    def paid(self) -> bool:
        return self.total <= 0 or self.paid_amount >= self.total - PAID_TOLERANCE

    @property
    def outstanding(self) -> Decimal:
        return max(Decimal(0), self.total - self.paid_amount)

    @property
    def packed_for_pickup(self) -> bool:
        """Every live pickup fulfillment is packed (or already collected), and at least one is packed."""
        live = [f for f in self.fulfillments if f.kind == "PICKUP" and f.status != "CANCELLED"]
        return (
            bool(live) and all(f.status == "PACKED" or f.done for f in live) and any(f.status == "PACKED" for f in live)
        )

    def summary(self) -> str:
        fulfillments = ",".join(sorted(f.status for f in self.fulfillments)) or "-"
        return f"{self.status}/{'paid' if self.paid else 'unpaid'}/{fulfillments}"


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
    outlet_ids: tuple[str, ...]


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
        case CompleteFulfillments(outlet_ids=outlets):
            return f"complete POS fulfillment(s) at {', '.join(outlets)}"
        case PackFulfillments(fulfillments=fulfillments):
            return f"mark {len(fulfillments)} POS fulfillment(s) packed"
        case UpdateEcomOrder(fields=fields, reason=reason):
            return f"set eCom order {', '.join(f'{k}={v}' for k, v in fields)} ({reason})"
        case CreditEcomOrder(lines=lines):
            return f"credit {sum(q for _, q in lines)} item(s) on the eCom order (returned in the POS)"
    raise AssertionError(action)  # pragma: no cover


def plan_status_sync(ecom: EcomOrderState, pos: PosSaleState, *, frozen: bool) -> StatusPlan:
    """What to change so the order and its sale agree, given both as they are now."""
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
                ignored=(f"eCom payment cancelled after the POS sale was finalized ({pos.status}): not voided",)
            )
        return StatusPlan(actions=(VoidSale("eCom payment cancelled"),), frozen=True)

    actions: list[StatusAction] = []
    ignored: list[str] = []
    _plan_payment(ecom, pos, actions, ignored)
    if ecom.is_pickup:
        _plan_pickup(ecom, pos, actions, ignored)
    else:
        _plan_delivery(ecom, pos, actions, ignored)
    return StatusPlan(actions=tuple(actions), ignored=tuple(ignored))


def _plan_payment(ecom: EcomOrderState, pos: PosSaleState, actions: list[StatusAction], ignored: list[str]) -> None:
    if ecom.paid and not pos.paid:
        if pos.finalized:
            ignored.append(f"eCom marked paid after the POS sale was finalized ({pos.status})")
        else:
            actions.append(RecordPosPayment(pos.outstanding, ecom.payment_title))
    elif pos.paid and ecom.payment_status in ("not_paid", "partially_paid"):
        # Paid on the POS sell screen: the only way a POS payment reaches eCom.
        actions.append(UpdateEcomOrder((("paymentStatus", "paid"),), "paid in the POS"))


def _plan_pickup(ecom: EcomOrderState, pos: PosSaleState, actions: list[StatusAction], ignored: list[str]) -> None:
    new = tuple(f for f in pos.fulfillments if f.kind == "PICKUP" and f.status == "NEW")
    if ecom.ready_for_pickup and new:
        if pos.finalized:
            ignored.append(f"eCom ready for pickup after the POS sale was finalized ({pos.status})")
        else:
            actions.append(PackFulfillments(new))
    elif pos.packed_for_pickup and ecom.status not in PICKUP_READY_OR_LATER:
        actions.append(UpdateEcomOrder((("status", "processing_ready_for_pickup"),), "packed in the POS"))


def _plan_delivery(ecom: EcomOrderState, pos: PosSaleState, actions: list[StatusAction], ignored: list[str]) -> None:
    if ecom.ready_for_pickup:
        ignored.append("ready for pickup is never synced for a shipment")
    if not ecom.out_for_delivery:
        return
    pending = tuple(f.outlet_id for f in pos.fulfillments if f.kind == "DISPATCH" and f.open)
    if pending and pos.finalized:
        ignored.append(f"eCom out for delivery after the POS sale was finalized ({pos.status})")
    elif pending:
        actions.append(CompleteFulfillments(tuple(sorted(set(pending)))))


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
