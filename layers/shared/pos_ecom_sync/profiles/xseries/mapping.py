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

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from pos_ecom_sync.models.catalog import DimensionUnit, PosFamily, PosItem, ProductCode, VariantOption, WeightUnit


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
