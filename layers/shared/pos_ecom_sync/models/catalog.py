"""Catalog as the sync sees it: X-Series product rows (each variant is a row) and their eCom counterparts."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

WeightUnit = Literal["CT", "G", "OZ", "LB", "KG"]
DimensionUnit = Literal["IN", "CM", "MM", "YD"]


class VariantOption(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str
    value: str


class ProductCode(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: str
    code: str


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


class EcomVariantRef(BaseModel):
    """What we remember about an eCom variant we manage (ids are integers on eCom)."""

    ecom_product_id: int
    ecom_variant_id: int
    content_hash: str | None = None
    applied_version: int | None = None
