"""POS family -> desired eCom product: every field rule of the catalog sync, in one place, without I/O.

One eCom product per POS family (`models.catalog.PosFamily`, which the connection's POS profile reads and maps); a
simple product is a family of one whose item is its single variant.
Synced (seed 003): name, category, description, brand, SKU, UPC/EAN, attributes -> options, active -> visibility,
price (the online price when set, else retail), images, weight, dimensions. A POS profile may leave product fields
to eCom (`PosFamily.ecom_owned`; R-Series, seed 000: availability, set hidden at creation, and the description):
they are never sent after creation, nor compared by content reconciliation.
Online price: the profile puts the POS's online price on each item (X-Series: a price-book entry; R-Series: the
Online price level); an item without one gets its retail price. Never synced: handle, supplier,
supplier code/price, reorder point/quantity, tax, tags; stock belongs to the stock worker.

Conventions the vendor docs leave open, chosen here:
- Payloads carry only POS-owned eCom fields, always all of them: a value cleared in the POS is sent as "" or 0,
  so it is cleared in eCom too, and eCom-only fields (compare-at price, subtitle, low-stock threshold, `content`,
  ...) are never in a body, so an update never overwrites them.
- Weight goes to eCom `weight` in grams (the vendor example stores 200 for weightValue "0.2" kg); `weightUnit` and
  `weightValue` are the shop's display choice and are left alone. Dimensions go to sizeX/Y/Z (length, width,
  height) in centimetres. A row without weight or dimensions takes the parent's; a missing unit means KG / CM.
- POS description -> eCom `description`; eCom `content` (long text) stays the merchant's.
- Brand and category are carried by name; the worker resolves them to eCom brand / category ids.
- Variants are ordered by POS id, so the order the worker reads rows in never changes a hash.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from pos_ecom_sync.models.catalog import EcomOwnedField, PosFamily, PosItem

GRAMS_PER_UNIT: dict[str, float] = {"CT": 0.2, "G": 1.0, "OZ": 28.349523125, "LB": 453.59237, "KG": 1000.0}
CENTIMETRES_PER_UNIT: dict[str, float] = {"IN": 2.54, "CM": 1.0, "MM": 0.1, "YD": 91.44}
DEFAULT_WEIGHT_UNIT = "KG"
DEFAULT_DIMENSIONS_UNIT = "CM"

# Seed 000: 12 images per POS item (a simple product, each variant, and the parent of a family).
MAX_IMAGES_PER_POS_ITEM = 12
# Both POSes allow at most 3 attributes per product (X-Series vendor-apis §1.3; R-Series attribute sets).
MAX_VARIANT_OPTIONS = 3
# eCom's name for the one variant of a product without options.
DEFAULT_VARIANT_TITLE = "Default"
# EAN preferred, else UPC (seed 003 lists "UPC"; eCom has one `ean` field).
BARCODE_PREFERENCE = ("EAN", "UPC")
# Prices are rounded to 5 decimals (X-Series stores excl-tax prices so); it also removes float noise from scaling.
PRICE_DECIMALS = 5
MEASURE_DECIMALS = 3

# eCom fields the POS never writes. Tests assert no payload ever contains one of them.
ECOM_OWNED_FIELDS = frozenset(
    {
        "oldPriceIncl",
        "oldPriceExcl",
        "subtitle",
        "stockAlert",
        "stockLevel",
        "stockMinimum",
        "stockSold",
        "priceCost",
        "content",
        "tags",
        "supplier",
        "weightUnit",
        "weightValue",
        "tax",
        "url",
    }
)


def content_hash(value: object) -> str:
    """sha256 of canonical JSON (sorted keys, no spaces): equal content -> equal hash across processes."""
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# The eCom product body keys of each field eCom may own (`PosFamily.ecom_owned`).
ECOM_OWNED_KEYS: dict[str, tuple[str, ...]] = {
    "visibility": ("visibility", "isVisible"),
    "description": ("description",),
}


class ProductPayload(_Frozen):
    """Product-level fields the POS owns. `brand` and `category` are names the worker resolves to eCom ids.
    `ecom_owned`: fields eCom owns for this POS (`PosFamily.ecom_owned`); left out of the hash (a per-POS constant)."""

    title: str
    fulltitle: str
    description: str
    visibility: Literal["visible", "hidden"]
    is_visible: bool
    brand: str | None
    category: str | None
    ecom_owned: frozenset[EcomOwnedField] = Field(default=frozenset(), exclude=True)

    def ecom_body(self, *, create: bool = False) -> dict[str, Any]:
        """The `{"product": ...}` body for a create or update (brand/category are linked separately). Fields eCom
        owns are never sent, except the visibility a new product starts with (hidden, seed 000)."""
        body = {
            "title": self.title,
            "fulltitle": self.fulltitle,
            "description": self.description,
            "visibility": self.visibility,
            "isVisible": self.is_visible,
        }
        for name in self.ecom_owned:
            if not (create and name == "visibility"):
                for key in ECOM_OWNED_KEYS[name]:
                    body.pop(key, None)
        return body


class OptionValue(_Frozen):
    name: str
    value: str


class VariantPayload(_Frozen):
    """Variant-level fields the POS owns. `image_url` is one of the product's images; the worker links its id."""

    title: str
    sku: str
    article_code: str
    ean: str
    price_incl: float
    price_excl: float
    options: tuple[OptionValue, ...]
    weight: float
    size_x: float
    size_y: float
    size_z: float
    image_url: str | None

    def ecom_body(self) -> dict[str, Any]:
        """The `{"variant": ...}` body for an update (creation adds `stockTracking`, see CreateVariant).

        eCom variants have no writable options: the option values travel in the title ("Navy, M"). The
        options stay in the payload (and its hash) so an attribute rename still updates the title.
        """
        return {
            "title": self.title,
            "sku": self.sku,
            "articleCode": self.article_code,
            "ean": self.ean,
            "priceIncl": self.price_incl,
            "priceExcl": self.price_excl,
            "weight": self.weight,
            "sizeX": self.size_x,
            "sizeY": self.size_y,
            "sizeZ": self.size_z,
        }


class DesiredVariant(_Frozen):
    pos_id: str
    # The POS row's own version: a change older than the one applied to this variant is dropped.
    version: int
    payload: VariantPayload

    @property
    def content_hash(self) -> str:
        return content_hash(self.payload.model_dump(mode="json"))


class DesiredProduct(_Frozen):
    """What eCom should hold for one POS family, plus the hashes and versions planning compares."""

    pos_id: str
    # Highest version among all rows passed in, deleted variant rows included: a removal has a version too.
    family_version: int
    deleted: bool
    payload: ProductPayload
    image_urls: tuple[str, ...]
    variants: tuple[DesiredVariant, ...]
    removed_variant_ids: tuple[str, ...]

    @property
    def content_hash(self) -> str:
        return content_hash(self.payload.model_dump(mode="json"))

    @property
    def images_hash(self) -> str:
        # Separate from content_hash so images (slow uploads) are sent only when they changed.
        return content_hash(list(self.image_urls))

    @property
    def lookup_skus(self) -> tuple[str, ...]:
        """SKUs that identify this product in eCom when no id is stored (find-or-create)."""
        return tuple(dict.fromkeys(v.payload.sku for v in self.variants if v.payload.sku))


def map_family(family: PosFamily) -> DesiredProduct:
    """Map a POS family (its profile's neutral form, see `models.catalog.PosFamily`) to the eCom product it should
    be."""
    parent, sellable = family.parent, sorted(family.sellable, key=lambda item: item.id)
    variants = [item for item in sellable if item.id != parent.id]
    parent_images = _ordered_image_urls(parent)
    product_images = _unique([*parent_images, *(url for item in variants for url in _ordered_image_urls(item))])
    desired_variants = tuple(
        DesiredVariant(
            pos_id=item.id,
            version=item.stamp,
            payload=map_variant(item, parent, image_url=choose_variant_image(item, index, parent_images)),
        )
        for index, item in enumerate(_parent_first(parent, sellable))
    )
    return DesiredProduct(
        pos_id=family.key,
        family_version=family.stamp,
        deleted=family.deleted,
        payload=map_product(parent, family.ecom_owned),
        image_urls=tuple(product_images),
        variants=desired_variants,
        removed_variant_ids=tuple(sorted(family.removed)),
    )


def _parent_first(parent: PosItem, sellable: list[PosItem]) -> list[PosItem]:
    """A parent that sells itself comes first (it takes the first parent image), the variants by POS id."""
    return [item for item in sellable if item.id == parent.id] + [item for item in sellable if item.id != parent.id]


def map_product(parent: PosItem, ecom_owned: frozenset[EcomOwnedField] = frozenset()) -> ProductPayload:
    # Active/inactive is family-level in eCom (product visibility), so the parent's flag decides; where eCom owns
    # visibility, a new product starts hidden (seed 000) and the merchant enables it there.
    visible = parent.active and "visibility" not in ecom_owned
    return ProductPayload(
        title=parent.name,
        fulltitle=parent.name,
        description="" if "description" in ecom_owned else parent.description,
        visibility="visible" if visible else "hidden",
        is_visible=visible,
        brand=parent.brand,
        category=parent.category,
        ecom_owned=ecom_owned,
    )


def map_variant(item: PosItem, parent: PosItem, *, image_url: str | None) -> VariantPayload:
    options = tuple(
        OptionValue(name=option.name.strip(), value=option.value.strip())
        for option in item.options[:MAX_VARIANT_OPTIONS]
    )
    price_incl, price_excl = online_prices(item)
    size_x, size_y, size_z = dimensions_cm(item if _has_dimensions(item) else parent)
    return VariantPayload(
        title=", ".join(option.value for option in options) or DEFAULT_VARIANT_TITLE,
        sku=item.sku,
        article_code=item.sku,
        ean=barcode(item),
        price_incl=price_incl,
        price_excl=price_excl,
        options=options,
        weight=weight_grams(item if item.weight is not None else parent),
        size_x=size_x,
        size_y=size_y,
        size_z=size_z,
        image_url=image_url,
    )


def online_prices(item: PosItem) -> tuple[float, float]:
    """(priceIncl, priceExcl): the online price when the item has one, else the retail price (seed 000).

    The online price is tax exclusive; priceIncl applies the item's own retail incl/excl ratio, its tax as the POS
    computes it.
    """
    incl = item.price_including_tax
    excl = item.price_excluding_tax
    # An item missing one side has no tax information: show the known price for both rather than 0 (free).
    retail_incl = incl if incl is not None else (excl or 0.0)
    retail_excl = excl if excl is not None else retail_incl
    online_excl = item.online_price_excl
    if online_excl is None:
        return _price(retail_incl), _price(retail_excl)
    scaled_incl = online_excl * retail_incl / retail_excl if retail_excl else online_excl
    return _price(scaled_incl), _price(online_excl)


def barcode(item: PosItem) -> str:
    # Built from the reversed list so the first code of each type wins.
    codes = {code.type.strip().upper(): code.code.strip() for code in reversed(item.codes) if code.code.strip()}
    return next((codes[kind] for kind in BARCODE_PREFERENCE if kind in codes), "")


def weight_grams(row: PosItem) -> float:
    if row.weight is None:
        return 0.0
    return round(row.weight * GRAMS_PER_UNIT[row.weight_unit or DEFAULT_WEIGHT_UNIT], MEASURE_DECIMALS)


def dimensions_cm(row: PosItem) -> tuple[float, float, float]:
    factor = CENTIMETRES_PER_UNIT[row.dimensions_unit or DEFAULT_DIMENSIONS_UNIT]
    length, width, height = (round((value or 0.0) * factor, MEASURE_DECIMALS) for value in _measures(row))
    return length, width, height


def choose_variant_image(row: PosItem, index: int, parent_images: Sequence[str]) -> str | None:
    """The one image an eCom variant may have, chosen from the product's images (seed 000), deterministically.

    The variant's own first image (every variant image is also a product image), else the parent image at
    `index mod count` so variants without photos spread over the parent's, else none.
    """
    own_images = _ordered_image_urls(row)
    if own_images:
        return own_images[0]
    if parent_images:
        return parent_images[index % len(parent_images)]
    return None


def _ordered_image_urls(item: PosItem) -> list[str]:
    # In the POS's order, at most 12 per POS item.
    return _unique(url for url in item.images if url)[:MAX_IMAGES_PER_POS_ITEM]


def _unique(urls: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(urls))


def _measures(row: PosItem) -> tuple[float | None, float | None, float | None]:
    return row.length, row.width, row.height


def _has_dimensions(row: PosItem) -> bool:
    return any(value is not None for value in _measures(row))


def _price(value: float) -> float:
    return round(value, PRICE_DECIMALS)
