"""POS family -> desired eCom product: every field rule of the catalog sync, in one place, without I/O.

One eCom product per X-Series family; a simple product is a family of one whose row is its single variant.
Synced (seed 003): name, category, description, brand, SKU, UPC/EAN, attributes -> options, active -> visibility,
price (the online price when set, else retail), images, weight, dimensions.
Online price on X-Series: a product has no online-price field (X20 `Product`); the retailer's online prices are the
entries of one price book (X20 `PriceBook`, normally restricted to `restrict_to_platform_key` "2" = ecommerce), the
connection's `online_price_book_id`. The worker reads the family's entries (`online_price_entries`) and passes their
prices in; a row without an entry gets its retail price. Never synced: handle, supplier,
supplier code/price, reorder point/quantity, tax, tags; stock belongs to the stock worker.

Conventions the vendor docs leave open, chosen here:
- Payloads carry only POS-owned eCom fields, always all of them: a value cleared in the POS is sent as "" or 0,
  so it is cleared in eCom too, and eCom-only fields (compare-at price, subtitle, low-stock threshold, `content`,
  ...) are never in a body, so an update never overwrites them.
- Weight goes to eCom `weight` in grams (the vendor example stores 200 for weightValue "0.2" kg); `weightUnit` and
  `weightValue` are the shop's display choice and are left alone. Dimensions go to sizeX/Y/Z (length, width,
  height) in centimetres. A row without weight or dimensions takes the parent's; a missing unit means KG / CM.
- POS description -> eCom `description`; eCom `content` (long text) stays the merchant's.
- Brand and category are carried by name; the worker resolves them to eCom brand / category ids. The category is
  the X-Series product type (`type.name`: X20 calls product types "now product category"); X-Series `categories`
  are tags (X20 `Tag`) and are not synced.
- A family is a parent row and the rows naming it in `variant_parent_id`; no other field says who belongs to it.
- Variants are ordered by POS id, so the order the worker reads rows in never changes a hash.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from pos_ecom_sync.models.catalog import PosProduct

GRAMS_PER_UNIT: dict[str, float] = {"CT": 0.2, "G": 1.0, "OZ": 28.349523125, "LB": 453.59237, "KG": 1000.0}
CENTIMETRES_PER_UNIT: dict[str, float] = {"IN": 2.54, "CM": 1.0, "MM": 0.1, "YD": 91.44}
DEFAULT_WEIGHT_UNIT = "KG"
DEFAULT_DIMENSIONS_UNIT = "CM"

# Seed 000: 12 images per POS item (a simple product, each variant, and the parent of a family).
MAX_IMAGES_PER_POS_ITEM = 12
# X-Series allows at most 3 attributes per product (vendor-apis §1.3).
MAX_VARIANT_OPTIONS = 3
# eCom's name for the one variant of a product without options.
DEFAULT_VARIANT_TITLE = "Default"
# EAN preferred, else UPC (seed 003 lists "UPC"; eCom has one `ean` field).
BARCODE_PREFERENCE = ("EAN", "UPC")
# X-Series stores excl-tax prices with 5 decimals; rounding there also removes float noise from scaling.
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


class ProductPayload(_Frozen):
    """Product-level fields the POS owns. `brand` and `category` are names the worker resolves to eCom ids."""

    title: str
    fulltitle: str
    description: str
    visibility: Literal["visible", "hidden"]
    is_visible: bool
    brand: str | None
    category: str | None

    def ecom_body(self) -> dict[str, Any]:
        """The `{"product": ...}` body for a create or update (brand/category are linked separately)."""
        return {
            "title": self.title,
            "fulltitle": self.fulltitle,
            "description": self.description,
            "visibility": self.visibility,
            "isVisible": self.is_visible,
        }


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


def map_family(
    parent: PosProduct, variants: list[PosProduct], *, online_prices_excl: Mapping[str, float] | None = None
) -> DesiredProduct:
    """Map an X-Series family (parent row + variant rows, deleted rows allowed) to the eCom product it should be.

    `online_prices_excl`: POS product id -> its online price, tax exclusive (a price-book entry's `price`, see
    `online_price_entries`); rows without one get their retail price (X-Series gives it with and without tax).
    The parent is a variant itself when the family has no live variant rows (a simple product) or when it carries
    variant options (families where the parent is also a sellable variant).
    """
    for row in variants:
        if row.id != parent.id and not _same_family(parent, row):
            raise ValueError(f"product {row.id} is not a variant of {parent.id}")
    live_variants = sorted((v for v in variants if v.id != parent.id and not v.is_deleted), key=lambda v: v.id)
    sellable = [parent, *live_variants] if not live_variants or parent.variant_options else live_variants

    parent_images = _ordered_image_urls(parent)
    product_images = _unique([*parent_images, *(url for row in live_variants for url in _ordered_image_urls(row))])
    desired_variants = tuple(
        DesiredVariant(
            pos_id=row.id,
            version=row.version,
            payload=map_variant(
                row,
                parent,
                image_url=choose_variant_image(row, index, parent_images),
                online_price_excl=(online_prices_excl or {}).get(row.id),
            ),
        )
        for index, row in enumerate(sellable)
    )
    return DesiredProduct(
        pos_id=parent.id,
        family_version=max([parent.version, *(row.version for row in variants)]),
        deleted=parent.is_deleted,
        payload=map_product(parent),
        image_urls=tuple(product_images),
        variants=desired_variants,
        removed_variant_ids=tuple(sorted(v.id for v in variants if v.is_deleted and v.id != parent.id)),
    )


def map_product(parent: PosProduct) -> ProductPayload:
    # Active/inactive is family-level in eCom (product visibility), so the parent's flag decides.
    return ProductPayload(
        title=parent.name,
        fulltitle=parent.name,
        description=parent.description or "",
        visibility="visible" if parent.active else "hidden",
        is_visible=parent.active,
        brand=_ref_name(parent.brand),
        category=_ref_name(parent.product_type),
    )


def map_variant(
    row: PosProduct, parent: PosProduct, *, image_url: str | None, online_price_excl: float | None = None
) -> VariantPayload:
    sku = (row.sku or "").strip()
    options = tuple(
        OptionValue(name=option.name.strip(), value=option.value.strip())
        for option in row.variant_options[:MAX_VARIANT_OPTIONS]
    )
    price_incl, price_excl = online_prices(row, online_price_excl)
    size_x, size_y, size_z = dimensions_cm(row if _has_dimensions(row) else parent)
    return VariantPayload(
        title=", ".join(option.value for option in options) or DEFAULT_VARIANT_TITLE,
        sku=sku,
        article_code=sku,
        ean=barcode(row),
        price_incl=price_incl,
        price_excl=price_excl,
        options=options,
        weight=weight_grams(row if row.weight is not None else parent),
        size_x=size_x,
        size_y=size_y,
        size_z=size_z,
        image_url=image_url,
    )


def online_prices(row: PosProduct, online_excl: float | None = None) -> tuple[float, float]:
    """(priceIncl, priceExcl): the online price when the row has one, else the retail price (seed 000).

    The online price is tax exclusive (X20 `GET /price_books/{id}/products`: "the returned retail price is the tax
    exclusive price"); priceIncl applies the row's own retail incl/excl ratio, its tax as the POS computes it.
    """
    incl = row.price_including_tax
    excl = row.price_excluding_tax
    # A row missing one side has no tax information: show the known price for both rather than 0 (free).
    retail_incl = incl if incl is not None else (excl or 0.0)
    retail_excl = excl if excl is not None else retail_incl
    if online_excl is None:
        return _price(retail_incl), _price(retail_excl)
    scaled_incl = online_excl * retail_incl / retail_excl if retail_excl else online_excl
    return _price(scaled_incl), _price(online_excl)


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


def barcode(row: PosProduct) -> str:
    # Built from the reversed list so the first code of each type wins.
    codes = {code.type.strip().upper(): code.code.strip() for code in reversed(row.product_codes) if code.code.strip()}
    return next((codes[kind] for kind in BARCODE_PREFERENCE if kind in codes), "")


def weight_grams(row: PosProduct) -> float:
    if row.weight is None:
        return 0.0
    return round(row.weight * GRAMS_PER_UNIT[row.weight_unit or DEFAULT_WEIGHT_UNIT], MEASURE_DECIMALS)


def dimensions_cm(row: PosProduct) -> tuple[float, float, float]:
    factor = CENTIMETRES_PER_UNIT[row.dimensions_unit or DEFAULT_DIMENSIONS_UNIT]
    length, width, height = (round((value or 0.0) * factor, MEASURE_DECIMALS) for value in _measures(row))
    return length, width, height


def choose_variant_image(row: PosProduct, index: int, parent_images: Sequence[str]) -> str | None:
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


def _ordered_image_urls(row: PosProduct) -> list[str]:
    # In the vendor's list order (a product's embedded images carry no position), at most 12 per POS item.
    return _unique(image.url for image in row.images if image.url)[:MAX_IMAGES_PER_POS_ITEM]


def _unique(urls: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(urls))


def _same_family(parent: PosProduct, row: PosProduct) -> bool:
    return row.variant_parent_id == parent.id


def _ref_name(ref: dict[str, Any] | None) -> str | None:
    name = (ref or {}).get("name")
    return (name.strip() or None) if isinstance(name, str) else None


def _measures(row: PosProduct) -> tuple[float | None, float | None, float | None]:
    return row.length, row.width, row.height


def _has_dimensions(row: PosProduct) -> bool:
    return any(value is not None for value in _measures(row))


def _price(value: float) -> float:
    return round(value, PRICE_DECIMALS)
