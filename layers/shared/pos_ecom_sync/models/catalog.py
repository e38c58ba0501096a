"""Catalog as the sync sees it: POS product families in neutral terms (`PosFamily`, `PosItem`) and what we keep of
their eCom counterparts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypeAlias

from pydantic import BaseModel, ConfigDict, Field

WeightUnit = Literal["CT", "G", "OZ", "LB", "KG"]
DimensionUnit = Literal["IN", "CM", "MM", "YD"]
# What eCom showed for the POS-owned fields of a product or variant right after our write (see `catalog.shown`).
Shown: TypeAlias = dict[str, str | float | bool | int | None]
# Product fields eCom may own instead of the POS (see `PosFamily.ecom_owned`).
EcomOwnedField = Literal["visibility", "description"]


class VariantOption(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str
    value: str


class ProductCode(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: str
    code: str


class PosItem(BaseModel):
    """One POS item as the catalog sync sees it, whichever POS: a sellable variant, a simple product, or a family's
    parent (whose product-level fields and images the eCom product takes). The profile maps its vendor's rows here
    (`profiles/<pos>/mapping.py`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    # The item's change stamp, comparable within its POS (X-Series `version`; R-Series `timeStamp` as epoch s): a
    # change older than the one applied is stale.
    stamp: int
    name: str = ""
    description: str = ""
    sku: str = ""
    codes: tuple[ProductCode, ...] = ()  # barcodes by type (EAN, UPC)
    options: tuple[VariantOption, ...] = ()  # attribute -> value, in the POS's order
    price_including_tax: float | None = None
    price_excluding_tax: float | None = None
    # The POS's online price (tax exclusive) when it has one for this item; None: the retail price is shown online.
    online_price_excl: float | None = None
    active: bool = True
    deleted: bool = False
    brand: str | None = None
    category: str | None = None
    images: tuple[str, ...] = ()  # image URLs in the POS's order
    weight: float | None = None
    weight_unit: WeightUnit | None = None
    length: float | None = None
    width: float | None = None
    height: float | None = None
    dimensions_unit: DimensionUnit | None = None

    def code(self, kind: str) -> str | None:
        return next((c.code for c in self.codes if c.type == kind), None)


class PosFamily(BaseModel):
    """A POS product family: what becomes one eCom product. `key` names it in the sync state and message groups (the
    parent's id); `sellable` are the items that become eCom variants (a simple product sells itself); `removed` the
    ids of family members deleted or archived in the POS (their eCom variants go). `stamp` is the highest stamp of
    any member, removed ones included (a removal is a change too)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    key: str
    stamp: int
    parent: PosItem
    sellable: tuple[PosItem, ...]
    removed: tuple[str, ...] = ()
    # Product fields eCom owns for this POS, set once when the product is created (availability: hidden) and never
    # written or compared afterwards; the merchant manages them in eCom. Empty: the POS owns every synced field.
    ecom_owned: frozenset[EcomOwnedField] = frozenset()

    @property
    def deleted(self) -> bool:
        return self.parent.deleted


@dataclass(frozen=True)
class FamilyRow:
    """What reconciliation's catalog compare reads of one POS product row: the family it belongs to, its own id, its
    stamp (None: unreadable, compared as older than anything applied) and whether it is deleted."""

    family_key: str
    item_id: str
    stamp: int | None
    deleted: bool


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
    # The eCom category link (`categories/products` id) our last write made to file the product under its POS
    # category: the category-link sweep sees it come back and must not take it for a merchant's edit.
    category_link: int | None = None

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
