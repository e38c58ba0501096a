"""Orders flowing eCom -> POS: the eCom order, its lines, the buyer, and the POS fulfillment it becomes."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

PaymentStatus = Literal["not_paid", "partially_paid", "paid", "cancelled"]
FulfillmentStatus = Literal["NEW", "PACKED", "IN_PROGRESS", "COMPLETED", "CANCELLED"]


class EcomOrderLine(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: int
    quantity_ordered: int = Field(alias="quantityOrdered")
    sku: str | None = None
    ean: str | None = None
    article_code: str | None = Field(default=None, alias="articleCode")
    price_incl: float = Field(alias="priceIncl")
    price_excl: float = Field(alias="priceExcl")
    variant: dict[str, Any] | Literal[False] = False


class EcomOrder(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    id: int
    number: str
    status: str
    payment_status: str = Field(alias="paymentStatus")
    payment_title: str | None = Field(default=None, alias="paymentTitle")
    shipment_status: str | None = Field(default=None, alias="shipmentStatus")
    shipment_title: str | None = Field(default=None, alias="shipmentTitle")
    shipment_is_pickup: bool = Field(default=False, alias="shipmentIsPickup")
    email: str | None = None
    firstname: str | None = None
    lastname: str | None = None
    updated_at: str = Field(alias="updatedAt")
    created_at: str | None = Field(default=None, alias="createdAt")


class Customer(BaseModel):
    """A POS customer as matched by email (case-insensitive, trimmed)."""

    model_config = ConfigDict(extra="ignore")

    id: str
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None

    @staticmethod
    def normalise_email(email: str) -> str:
        return email.strip().lower()


class Fulfillment(BaseModel):
    model_config = ConfigDict(extra="ignore")

    sale_id: str
    outlet_id: str
    status: FulfillmentStatus = "NEW"
    lines: list[dict[str, Any]] = Field(default_factory=list)
