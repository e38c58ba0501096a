"""Catalog as the sync sees it: X-Series product rows (each variant is a row) and their eCom counterparts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

from pydantic import BaseModel, ConfigDict, Field

WeightUnit = Literal["CT", "G", "OZ", "LB", "KG"]
DimensionUnit = Literal["IN", "CM", "MM", "YD"]
# What eCom showed for the POS-owned fields of a product or variant right after our write (see `catalog.shown`).
Shown: TypeAlias = dict[str, str | float | bool | int | None]


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


class CatalogState(BaseModel):
    """What we stored for one POS family after the last successful sync."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    ecom_product_id: int | None = None
    # Highest family version applied (planned and fully executed): anything older is stale.
    applied_version: int | None = None
    product_hash: str | None = None
    images_hash: str | None = None
    # POS variant id -> the eCom variant we created for it. Only ours: merchant-added eCom variants are never here.
    variants: dict[str, EcomVariantRef] = Field(default_factory=dict)
    # The POS deleted the family; under `hide` the eCom product is kept (ids above) but hidden.
    deleted_in_pos: bool = False
    # Titles of product creates attempted but not confirmed: a retry looks for a half-made product by them.
    create_intents: tuple[str, ...] = ()
    # POS image URL -> the eCom image we uploaded for it, in order. eCom re-hosts uploads (its `src` never
    # equals our URL), so these ids are how variants point at images and how images edited in eCom are spotted.
    ecom_images: dict[str, int] = Field(default_factory=dict)
    # Deleted by hand in eCom under the `unlink` policy: why the family stays out of eCom, and since when (epoch s).
    unlinked_reason: str | None = None
    unlinked_at: int | None = None
    # POS variant id -> why that variant stays out of eCom (its eCom variant was deleted by hand; `unlink` policy).
    unlinked_variants: dict[str, str] = Field(default_factory=dict)
    # eCom's own answer to our last write (`catalog.shown`): the POS-owned fields of the product, the `src` of its
    # main image, and per POS variant id those of its variant. Content reconciliation compares eCom's list rows with
    # these, so a hand edit in eCom is found without a read per product. Empty: nothing recorded yet (no compare).
    product_shown: Shown = Field(default_factory=dict)
    main_image: str | None = None
    variants_shown: dict[str, Shown] = Field(default_factory=dict)

    @property
    def ecom_variant_ids(self) -> frozenset[int]:
        return frozenset(ref.ecom_variant_id for ref in self.variants.values())


@dataclass(frozen=True)
class StoredCatalogState:
    """A family's catalog state plus the revision it was read at (writes are conditional on it)."""

    state: CatalogState
    revision: int
    # When the last product-create intent was recorded (epoch s): a retry looks for products made since.
    intent_at: int | None = None


@dataclass(frozen=True)
class VariantLink:
    """A POS variant and the eCom variant the catalog worker created for it."""

    pos_product_id: str
    family_key: str
    ecom_product_id: int
    ecom_variant_id: int
