"""Units held by open online sales: when to hold or release them, and the stock-queue messages that do it.

A POS whose open sales leave their units on hand (R-Series takes stock only when a sale completes: the profile says
so through `CreatedSale.stock_pending` and `PosSale.stock_pending`) would show an unpaid online order's units as
still in stock, and eCom would sell them a second time. The stock rules subtract such units from the total
(`stock.rules.hold_stock` / `release_stock`, one reservation per eCom order and variant).

Who sends what:
- the order importer holds the lines of a sale it created open, before it records the import (a crash in between
  is settled by the next point);
- status sync reads the sale at each of its changes: a pending sale whose holds were not recorded is held (a sale
  adopted after a crash, or imported before holds existed), and a sale no longer pending (completed: the POS took
  the units; voided: it never will) has its recorded holds released.
The order ledger keeps the products held (`OrderRecord.stock_held`), so releases name exactly what was held even when
the sale's lines changed since, and are sent once. Holds and releases are idempotent in the stock state, and a hold
arriving after its release is ignored there, so a repeated or reordered message never holds units for good.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Final, Literal

from pos_ecom_sync.models.messages import ChangeMessage, Via
from pos_ecom_sync.queues import Outgoing

if TYPE_CHECKING:  # the stock worker reads reservations from messages; only the order and status workers read sales
    from decimal import Decimal

    from pos_ecom_sync.models.sales import PosSale

RESERVATION_ENTITY: Final = "reservation"

Change = Literal["hold", "release"]


def held_units(lines: Iterable[tuple[str, int | Decimal]], *, skip_product: str | None = None) -> dict[str, int]:
    """Units per product an open sale's lines hold: positive whole quantities, the shipping product left out (it
    is no stock), lines of one product added up."""
    units: dict[str, int] = {}
    for product_id, quantity in lines:
        if product_id == skip_product or quantity <= 0 or quantity != int(quantity):
            continue
        units[product_id] = units.get(product_id, 0) + int(quantity)
    return units


def sale_units(sale: PosSale, *, skip_product: str | None = None) -> dict[str, int]:
    return held_units(((line.product_id, line.quantity) for line in sale.lines), skip_product=skip_product)


def reservation_change(sale: PosSale, held_products: tuple[str, ...]) -> Change | None:
    """What the sale as read asks for: hold its units while it is pending and nothing is recorded as held; release
    what is held once it no longer is."""
    if sale.stock_pending and not held_products:
        return "hold"
    if not sale.stock_pending and held_products:
        return "release"
    return None


def hold_messages(
    connection_id: str, order_id: int, units: Mapping[str, int], *, via: Via, now: datetime
) -> list[Outgoing]:
    return [_message(connection_id, order_id, product_id, quantity, via, now) for product_id, quantity in units.items()]


def release_messages(
    connection_id: str, order_id: int, product_ids: Iterable[str], *, via: Via, now: datetime
) -> list[Outgoing]:
    return [_message(connection_id, order_id, product_id, None, via, now) for product_id in product_ids]


def reservation_of(message: ChangeMessage) -> tuple[str, int | None]:
    """(order key, units to hold; None for a release) of a reservation message; ValueError when it has neither."""
    order_id, quantity = message.payload.get("order_id"), message.payload.get("quantity")
    if isinstance(order_id, bool) or not isinstance(order_id, int):
        raise ValueError(f"reservation message without an order id: {message.payload}")
    if quantity is not None and (isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 0):
        raise ValueError(f"reservation message with a bad quantity: {message.payload}")
    return str(order_id), quantity


def _message(
    connection_id: str, order_id: int, product_id: str, quantity: int | None, via: Via, now: datetime
) -> Outgoing:
    message = ChangeMessage(
        connection_id=connection_id,
        source="pos",
        entity=RESERVATION_ENTITY,
        entity_id=product_id,
        via=via,
        received_at=now,
        payload={"order_id": order_id, "quantity": quantity},
        concern="stock",
    )
    change = "release" if quantity is None else "hold"
    # A hold or release sent twice (a retried worker) is one message for SQS; the stock state ignores later repeats.
    return Outgoing(message, delivery_key=f"{RESERVATION_ENTITY}|{order_id}|{product_id}|{change}")
