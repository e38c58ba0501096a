"""Whether an imported sale carries a payment (seeds 001/004), decided without I/O.

- An integrated method (Lightspeed Payments, or any method a connection marks `integrated`) on a paid order records
  one payment on the POS payment type named after the processor, so the processor's name shows in sales history
  and payment reporting. The amount is the sale's total (see `orders.sale`).
- An unintegrated method (cash, cheque, bank deposit, invoice, ...) and any method nobody marked integrated arrive
  unpaid: no payment line, staff take the payment on the sell screen once it is confirmed offline.
- Only `paymentStatus == "paid"` records a payment. `not_paid` and `cancelled` arrive unpaid whatever the method,
  and so does `partially_paid`: the paid part is not in the order, and recording a guess would misstate the till.
- An integrated method whose POS payment type cannot be found arrives unpaid too, flagged `needs_attention`: a
  payment on the wrong type would be worse, and holding the order would keep its stock on sale.

Method titles are compared case-insensitively with whitespace collapsed. A title matches a key exactly, or else the
longest key it starts with followed by a non-letter ("Lightspeed Payments - iDEAL" matches "Lightspeed Payments").
The connection's settings override `DEFAULT_PAYMENT_METHODS` key by key.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeAlias

from pos_ecom_sync.models.connection import PaymentMethodSetting

if TYPE_CHECKING:  # status sync records payments without the order models
    from pos_ecom_sync.models.orders import EcomOrder, PaymentType

_UNPAID = PaymentMethodSetting(mode="unpaid")

DEFAULT_PAYMENT_METHODS: dict[str, PaymentMethodSetting] = {
    "lightspeed payments": PaymentMethodSetting(mode="integrated", payment_type_name="Lightspeed Payments"),
    "cash": _UNPAID,
    "cash on delivery": _UNPAID,
    "cash on pickup": _UNPAID,
    "pay at pickup": _UNPAID,
    "pay in store": _UNPAID,
    "cheque": _UNPAID,
    "check": _UNPAID,
    "bank deposit": _UNPAID,
    "bank transfer": _UNPAID,
    "wire transfer": _UNPAID,
    "invoice": _UNPAID,
    "pay by invoice": _UNPAID,
}


def method_key(title: str) -> str:
    return " ".join(title.split()).casefold()


@dataclass(frozen=True)
class RecordPayment:
    """Add one payment of the sale's total on this POS payment type; `name` is the processor's name."""

    payment_type_id: str
    name: str
    method_title: str


@dataclass(frozen=True)
class LeaveUnpaid:
    reason: str
    needs_attention: bool = False


PaymentDecision: TypeAlias = RecordPayment | LeaveUnpaid


def setting_for(title: str, mapping: Mapping[str, PaymentMethodSetting]) -> PaymentMethodSetting | None:
    """The setting of an eCom payment title: the connection's first, then the defaults."""
    settings = {**DEFAULT_PAYMENT_METHODS, **{method_key(k): v for k, v in mapping.items()}}
    key = method_key(title)
    if key in settings:
        return settings[key]
    prefixes = [k for k in settings if key.startswith(k) and not key[len(k)].isalnum()]
    return settings[max(prefixes, key=len)] if prefixes else None


def payment_for(
    order: EcomOrder,
    mapping: Mapping[str, PaymentMethodSetting],
    payment_types: Sequence[PaymentType],
) -> PaymentDecision:
    """Decide the payment of `order`; `payment_types` are the POS's live payment types."""
    title = (order.payment_title or "").strip()
    if order.payment_status != "paid":
        return LeaveUnpaid(reason=f"payment status is {order.payment_status}")
    if not title:
        return LeaveUnpaid(reason="the order names no payment method")
    setting = setting_for(title, mapping)
    if setting is None or setting.mode != "integrated":
        return LeaveUnpaid(reason=f"{title} is not an integrated payment method")

    live = [t for t in payment_types if t.id]
    if setting.payment_type_id:
        found = [t for t in live if t.id == setting.payment_type_id]
        wanted = f"id {setting.payment_type_id}"
    else:
        name = setting.payment_type_name or title
        found = sorted(
            (t for t in live if method_key(t.name) == method_key(name)),
            key=lambda t: (t.name != name, t.id),
        )
        wanted = f"named {name!r}"
    if not found:
        return LeaveUnpaid(reason=f"{title} is integrated but no POS payment type is {wanted}", needs_attention=True)
    chosen = found[0]
    return RecordPayment(payment_type_id=chosen.id, name=chosen.name or title, method_title=title)
