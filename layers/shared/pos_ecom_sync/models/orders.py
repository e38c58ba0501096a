"""Orders flowing eCom -> POS: the eCom order, its lines, the buyer, and the POS fulfillment it becomes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

FulfillmentStatus = Literal["NEW", "PACKED", "IN_PROGRESS", "COMPLETED", "CANCELLED"]
# How a plan was reached (see pos_ecom_sync.orders.routing).
RoutingStrategy = Literal["shipping_method", "single_outlet", "split", "unstocked"]


def resource_id(ref: Any) -> int | None:
    """The id behind an eCom relation: `{"resource": {"id": 1, ...}}`, a bare id, or `False`/None for none."""
    if isinstance(ref, dict):
        inner = ref.get("resource")
        ref = inner.get("id") if isinstance(inner, dict) else ref.get("id")
    if isinstance(ref, bool) or ref is None:
        return None
    try:
        return int(ref)
    except (TypeError, ValueError):
        return None


class EcomOrderLine(BaseModel):
    """One `orderProducts` row. `priceIncl`/`priceExcl` are the line's totals; `basePrice*` the unit price."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    id: int
    quantity_ordered: int = Field(alias="quantityOrdered")
    sku: str | None = None
    ean: str | None = None
    article_code: str | None = Field(default=None, alias="articleCode")
    price_incl: float = Field(alias="priceIncl")
    price_excl: float = Field(alias="priceExcl")
    base_price_incl: float | None = Field(default=None, alias="basePriceIncl")
    base_price_excl: float | None = Field(default=None, alias="basePriceExcl")
    discount_incl: float = Field(default=0.0, alias="discountIncl")
    discount_excl: float = Field(default=0.0, alias="discountExcl")
    tax_rate: float | None = Field(default=None, alias="taxRate")
    product_title: str | None = Field(default=None, alias="productTitle")
    variant_title: str | None = Field(default=None, alias="variantTitle")
    # A relation `{"resource": {"id": ...}}` in the API; a bare id is accepted too.
    variant: int | dict[str, Any] | Literal[False] | None = False

    @property
    def variant_id(self) -> int | None:
        return resource_id(self.variant)

    @property
    def title(self) -> str:
        parts = [p for p in (self.product_title, self.variant_title) if p]
        return " - ".join(parts) or f"line {self.id}"


class EcomOrder(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    id: int
    number: str
    status: str
    payment_status: str = Field(alias="paymentStatus")
    payment_title: str | None = Field(default=None, alias="paymentTitle")
    shipment_status: str | None = Field(default=None, alias="shipmentStatus")
    shipment_title: str | None = Field(default=None, alias="shipmentTitle")
    # The shipping method's id (eCom sends it as a string); routing looks up the outlet the method is tied to.
    shipment_id: int | str | None = Field(default=None, alias="shipmentId")
    shipment_is_pickup: bool = Field(default=False, alias="shipmentIsPickup")
    # Shipping charged on the order (tax incl./excl.); 0 for pickups and free shipping.
    shipment_price_incl: float = Field(default=0.0, alias="shipmentPriceIncl")
    shipment_price_excl: float = Field(default=0.0, alias="shipmentPriceExcl")
    price_incl: float | None = Field(default=None, alias="priceIncl")
    price_excl: float | None = Field(default=None, alias="priceExcl")
    email: str | None = None
    firstname: str | None = None
    lastname: str | None = None
    comment: str | None = None
    updated_at: str = Field(alias="updatedAt")
    created_at: str | None = Field(default=None, alias="createdAt")

    @property
    def shipping_method_id(self) -> int | None:
        """The shipping method as an id, or None (no method, or not a number)."""
        value = str(self.shipment_id or "").strip()
        return int(value) if value.isdigit() else None


class PosCustomer(BaseModel):
    """A POS customer as matched by email (`orders.customers.normalise_email`)."""

    model_config = ConfigDict(extra="ignore")

    id: str
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    customer_code: str | None = None
    created_at: str | None = None
    deleted_at: str | None = None


class AssignedLine(BaseModel):
    """Units of one order line given to one outlet. `beyond_stock` of them are more than the outlet holds
    (only ever on the primary outlet, or on an outlet a shipping method is tied to)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    line_id: int
    product_id: str
    quantity: int = Field(gt=0)
    beyond_stock: int = Field(default=0, ge=0)


class OutletAssignment(BaseModel):
    """What one outlet fulfils: becomes one POS fulfillment with status NEW."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    outlet_id: str
    lines: tuple[AssignedLine, ...]


class FulfillmentPlan(BaseModel):
    """Where each order line is fulfilled. Every line's quantity is assigned in full, across the assignments."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    strategy: RoutingStrategy
    assignments: tuple[OutletAssignment, ...]

    @property
    def outlet_ids(self) -> list[str]:
        return [a.outlet_id for a in self.assignments]

    @property
    def beyond_stock(self) -> int:
        """Units assigned beyond what the outlets hold (0 unless strategy is `unstocked` or `shipping_method`)."""
        return sum(line.beyond_stock for a in self.assignments for line in a.lines)

    def assigned_quantity(self, line_id: int) -> int:
        return sum(line.quantity for a in self.assignments for line in a.lines if line.line_id == line_id)

    def fulfillments(self, sale_id: str) -> list[Fulfillment]:
        """One fulfillment per outlet, status NEW (seed 004), as the worker records or checks them."""
        return [
            Fulfillment(
                sale_id=sale_id,
                outlet_id=a.outlet_id,
                lines=[line.model_dump() for line in a.lines],
            )
            for a in self.assignments
        ]

    def notifications(self, connection_id: str, sale_id: str, order_number: str) -> list[NewFulfillmentEvent]:
        """One event per outlet, so only users of that outlet are notified (seed 004). Whether to send them is
        the connection's `notifications_enabled`."""
        return [
            NewFulfillmentEvent(
                connection_id=connection_id,
                outlet_id=a.outlet_id,
                sale_id=sale_id,
                order_number=order_number,
                lines=[NotifiedLine(product_id=line.product_id, quantity=line.quantity) for line in a.lines],
            )
            for a in self.assignments
        ]


class Fulfillment(BaseModel):
    model_config = ConfigDict(extra="ignore")

    sale_id: str
    outlet_id: str
    status: FulfillmentStatus = "NEW"
    lines: list[dict[str, Any]] = Field(default_factory=list)


class NotifiedLine(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    product_id: str
    quantity: int


class NewFulfillmentEvent(BaseModel):
    """Notification payload for a new fulfillment, scoped to its outlet. Carries no customer data."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    connection_id: str
    outlet_id: str
    sale_id: str
    order_number: str
    lines: list[NotifiedLine]


# -- the POS side of an import, in neutral terms (each POS profile maps its vendor's rows to these) -----------------


@dataclass(frozen=True)
class PaymentType:
    """A live POS payment type an integrated eCom payment may be recorded as."""

    id: str
    name: str


@dataclass(frozen=True)
class Register:
    """A live POS register and the location (outlet, shop) it sells from; None when the POS names none."""

    id: str
    location_id: str | None


@dataclass(frozen=True)
class FoundSale:
    """A sale an earlier attempt created for an order, found again through the POS's documented mechanism."""

    sale_id: str
    customer_id: str | None = None


@dataclass(frozen=True)
class SaleFulfillment:
    """One fulfilment of a POS sale: its location, whether nothing has been done on it yet (new), and its lines."""

    location_id: str
    new: bool
    lines: tuple[NotifiedLine, ...] = ()


@dataclass(frozen=True)
class CreatedSale:
    """The sale a POS created for an order: its id and what to tell the operator. `pos_chooses_ids`: the POS always
    chooses the sale's id (R-Series), so an id other than our sale key is no surprise worth a warning."""

    sale_id: str
    warnings: tuple[str, ...] = ()
    pos_chooses_ids: bool = False
    # The POS left the sale's units on hand: it is open, and the POS takes stock only when a sale completes
    # (R-Series). The importer then holds them back from the online total (`stock.reservations`).
    stock_pending: bool = False
