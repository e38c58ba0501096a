"""X-Series product rows -> the neutral catalog types (`models.catalog.PosFamily`, `PosItem`).

A family is a parent row and the rows naming it in `variant_parent_id` (no other field says who belongs to it). The
parent is sellable itself when the family has no live variant rows (a simple product) or when it carries variant
options (families where the parent is also a sellable variant). The category is the product type (`type.name`: X20
calls product types "now product category"); X-Series `categories` are tags (X20 `Tag`) and are not synced. Online
price: a product has no online-price field (X20 `Product`); the retailer's online prices are the entries of one price
book (X20 `PriceBook`, normally restricted to `restrict_to_platform_key` "2" = ecommerce), the connection's
`online_price_book_id` (`online_price_entries`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from pos_ecom_sync.errors import InvalidInput
from pos_ecom_sync.models.catalog import DimensionUnit, PosFamily, PosItem, ProductCode, VariantOption, WeightUnit
from pos_ecom_sync.models.messages import ChangeMessage
from pos_ecom_sync.models.orders import NotifiedLine, PaymentType, Register, SaleFulfillment
from pos_ecom_sync.models.stock import InventoryChange


class ProductImage(BaseModel):
    """X20 `ImageSample` (id, url, version, sizes): it has no position, so the list order is the image order."""

    model_config = ConfigDict(extra="ignore")
    url: str


class PosProduct(BaseModel):
    """One X-Series API 2.0 product row (a simple product, a family parent, or one variant)."""

    model_config = ConfigDict(extra="ignore")

    id: str
    version: int
    name: str = ""
    variant_name: str | None = None
    handle: str | None = None
    sku: str | None = None
    description: str | None = None
    # The family is the parent row (`variant_parent_id` None) and the rows naming it in `variant_parent_id`.
    variant_parent_id: str | None = None
    has_variants: bool = False
    variant_options: list[VariantOption] = Field(default_factory=list)
    product_codes: list[ProductCode] = Field(default_factory=list)
    price_including_tax: float | None = None
    price_excluding_tax: float | None = None
    # No online price here: X-Series products have none (X20 `Product`); it is a price-book entry (catalog.mapping).
    # Supply side: read so tests can prove it never reaches eCom (seed 003 "does not sync").
    supply_price: float | None = None
    supplier_id: str | None = None
    supplier_code: str | None = None
    tag_ids: list[str] = Field(default_factory=list)
    active: bool = True
    has_inventory: bool = True
    brand: dict[str, Any] | None = None
    # X20 Product `type` (ProductTypeSample {id, name, ...}): the product type, "now product category".
    product_type: dict[str, Any] | None = Field(default=None, alias="type")
    images: list[ProductImage] = Field(default_factory=list)
    weight: float | None = None
    weight_unit: WeightUnit | None = None
    length: float | None = None
    width: float | None = None
    height: float | None = None
    dimensions_unit: DimensionUnit | None = None
    deleted_at: str | None = None

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None

    def code(self, kind: str) -> str | None:
        return next((c.code for c in self.product_codes if c.type == kind), None)


def _ref_name(ref: dict[str, Any] | None) -> str | None:
    name = (ref or {}).get("name")
    return (name.strip() or None) if isinstance(name, str) else None


def item_of(row: PosProduct, online_price_excl: float | None = None) -> PosItem:
    return PosItem(
        id=row.id,
        stamp=row.version,
        name=row.name,
        description=row.description or "",
        sku=(row.sku or "").strip(),
        codes=tuple(row.product_codes),
        options=tuple(row.variant_options),
        price_including_tax=row.price_including_tax,
        price_excluding_tax=row.price_excluding_tax,
        online_price_excl=online_price_excl,
        active=row.active,
        deleted=row.is_deleted,
        brand=_ref_name(row.brand),
        category=_ref_name(row.product_type),
        images=tuple(image.url for image in row.images if image.url),
        weight=row.weight,
        weight_unit=row.weight_unit,
        length=row.length,
        width=row.width,
        height=row.height,
        dimensions_unit=row.dimensions_unit,
    )


def family_of_rows(
    parent: PosProduct, variants: list[PosProduct], *, online_prices_excl: Mapping[str, float] | None = None
) -> PosFamily:
    """An X-Series family (parent row + variant rows, deleted rows allowed) in neutral terms.

    `online_prices_excl`: POS product id -> its online price, tax exclusive (a price-book entry's `price`, see
    `online_price_entries`); rows without one get their retail price.
    """
    for row in variants:
        if row.id != parent.id and row.variant_parent_id != parent.id:
            raise ValueError(f"product {row.id} is not a variant of {parent.id}")
    live = sorted((v for v in variants if v.id != parent.id and not v.is_deleted), key=lambda v: v.id)
    sellable = [parent, *live] if not live or parent.variant_options else live
    prices = online_prices_excl or {}
    return PosFamily(
        key=parent.id,
        stamp=max([parent.version, *(row.version for row in variants)]),
        parent=item_of(parent, prices.get(parent.id)),
        sellable=tuple(item_of(row, prices.get(row.id)) for row in sellable),
        removed=tuple(sorted(v.id for v in variants if v.is_deleted and v.id != parent.id)),
    )


def online_price_entries(entries: Iterable[Mapping[str, Any]], price_book_id: str) -> dict[str, float]:
    """POS product id -> its online price (tax exclusive) from X20 `PriceBookProduct` rows of the online price book.

    Only this book's live entries count; an entry for a minimum quantity above one (`min_units`) is a quantity break,
    not the unit price shown online. Of several entries of one product the newest (`version`) wins.
    """
    best: dict[str, tuple[int, float]] = {}
    for entry in entries:
        product_id, price = entry.get("product_id"), entry.get("price")
        if not isinstance(product_id, str) or isinstance(price, bool) or not isinstance(price, (int, float)):
            continue
        if entry.get("price_book_id") not in (None, price_book_id) or entry.get("deleted_at"):
            continue
        min_units = entry.get("min_units")
        if isinstance(min_units, (int, float)) and min_units > 1:
            continue
        version = entry.get("version")
        rank = version if isinstance(version, int) else -1
        if product_id not in best or rank >= best[product_id][0]:
            best[product_id] = (rank, float(price))
    return {product_id: price for product_id, (_, price) in best.items()}


# Field names X-Series uses for an outlet's level: API 2.0, the 2026-07 API, and 1.0-shaped webhooks.
LEVEL_FIELDS = ("inventory_level", "current_inventory_level", "count")


def _version_of(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _level_of(value: object) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(str(value))
    except ValueError:
        return None
    # eCom levels are whole units; a fractional POS level (weighed goods) offers only its whole part.
    return int(number) if math.isfinite(number) else None


def inventory_change_of_row(row: Mapping[str, object]) -> InventoryChange | None:
    """Read an X-Series inventory row (2.0, 2026-07 or 1.0 shape).

    None when the row cannot be trusted on its own: no `version` (1.0 webhooks carry none, and X-Series retries
    them for 48 h, so an old `count` may arrive after a newer one) or no readable level. The worker then reads
    the POS inventory instead; such a row is never taken as zero. A deleted row (`deleted_at`) is level 0.
    """
    product_id, outlet_id = row.get("product_id"), row.get("outlet_id")
    if not isinstance(product_id, str) or not product_id or not isinstance(outlet_id, str) or not outlet_id:
        raise InvalidInput("inventory row needs product_id and outlet_id")
    version = _version_of(row.get("version"))
    if version is None:
        return None
    if row.get("deleted_at"):
        level: int | None = 0
    else:
        raw = next((row[name] for name in LEVEL_FIELDS if row.get(name) is not None), None)
        level = _level_of(raw)
    if level is None:
        return None
    return InventoryChange(product_id=product_id, outlet_id=outlet_id, level=level, version=version)


def inventory_change_from_message(message: ChangeMessage) -> InventoryChange | None:
    """The versioned level a POS inventory message carries, or None when the worker must read the POS instead."""
    if message.source != "pos" or message.entity != "inventory":
        raise InvalidInput(f"not a POS inventory message: {message.source}/{message.entity}")
    row: dict[str, object] = {"product_id": message.entity_id, **message.payload}
    if message.version is not None:
        row["version"] = message.version
    return inventory_change_of_row(row)


def register_outlet_of(registers: Iterable[Mapping[str, Any]], register_id: str) -> str | None:
    """The outlet of register `register_id` in the POS registers list (rows of X-Series GET /api/2.0/registers:
    `id`, `outlet_id`, `deleted_at`); None when the register is not there or is deleted."""
    for row in registers:
        if str(row.get("id")) == register_id and not row.get("deleted_at"):
            outlet = row.get("outlet_id")
            return str(outlet) if outlet else None
    return None


# -- orders -----------------------------------------------------------------------------------------------------


def _live(rows: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [row for row in rows if row.get("id") and not row.get("deleted_at")]


def payment_types_of(rows: Iterable[Mapping[str, Any]]) -> list[PaymentType]:
    """The live payment types of `GET /api/2.0/payment_types`."""
    return [PaymentType(str(row["id"]), str(row.get("name") or "")) for row in _live(rows)]


def registers_of(rows: Iterable[Mapping[str, Any]]) -> list[Register]:
    """The live registers of `GET /api/2.0/registers`, in the POS's order, with their outlets."""
    return [Register(str(row["id"]), str(row.get("outlet_id") or "") or None) for row in _live(rows)]


def sellable_ids(rows: Iterable[Mapping[str, Any]]) -> list[str]:
    """Ids of live products that can be on a sale line (a family parent cannot)."""
    return sorted({str(row["id"]) for row in _live(rows) if not row.get("has_variants")})


def level_of(row: Mapping[str, Any]) -> int:
    """An inventory row's level for routing (0 when unreadable)."""
    value = row.get("inventory_level", row.get("current_inventory_level"))
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def sale_reference(sale: Mapping[str, Any]) -> str:
    """The external reference of a sale: `source.id` (2026-07) or `source_id` (2.0)."""
    source = sale.get("source")
    if isinstance(source, Mapping) and source.get("id"):
        return str(source["id"])
    return str(sale.get("source_id") or "")


def _quantity(value: Any) -> int:
    """A fulfilment line quantity: a number, or a decimal string ("5.00") on the 2026-07 Fulfillments API."""
    try:
        return int(float(value or 0))
    except (TypeError, ValueError):
        return 0


def fulfillments_of(rows: Iterable[Mapping[str, Any]]) -> list[SaleFulfillment]:
    """A sale's fulfilments (2026-07 Fulfillments API `FulfillmentSummaryItem`): new = nothing done yet, state OPEN
    (status NEW on older shapes)."""
    return [
        SaleFulfillment(
            location_id=str(row.get("outlet_id")),
            new=str(row.get("state") or row.get("status") or "OPEN").upper() in ("OPEN", "NEW"),
            lines=tuple(
                NotifiedLine(product_id=str(line.get("product_id")), quantity=_quantity(line.get("quantity")))
                for line in row.get("line_items") or []
            ),
        )
        for row in rows
        if row.get("outlet_id")
    ]
