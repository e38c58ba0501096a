"""R-Series Item / ItemMatrix rows -> the catalog's neutral `PosFamily` / `PosItem` (pure, no I/O).

Rows are as `RSeriesClient` returns them (every scalar a string, relations loaded as asked; `envelope` reads them).
Sources: KVH = koop-voor-hoop/lightspeed-retail-client `docs/**` (developers.lightspeedhq.com/retail); seed 000 =
the help-center page "Syncing products between Retail POS (R-Series) and eCom (E-Series)". [I] marks a judgement.

- Families: a simple item (`itemMatrixID` "0") is a family of one keyed by its `itemID`; a matrix is one family keyed
  `m<itemMatrixID>` (`feeds.family_key`) whose parent is the Matrix Master (name, category, brand, its 12 images)
  and whose sellable items are its live variant items, each one eCom variant (seed 000: "Products and product
  variants are counted individually"). Archived variants are `removed`; an archived matrix or simple item deletes
  the family (seed 000: "Archiving a product in Retail POS will remove it completely from eCom").
- `publishToEcom` "Specifies if the item will be published to Lightspeed eCom" (KVH item.md): a publishing switch,
  not the eCom availability (seed 000: synced items start disabled in eCom whatever it says). An item with
  `publishToEcom` "false" is left out of eCom like an archived one [I]. R-Series items have no active flag, so every
  item not left out is active; availability is eCom's (`ECOM_OWNED`).
- Name = `description` (R-Series has no other name; a variant's is "<matrix description> <attr1> <attr2> <attr3>",
  KVH itemmatrix.md). The eCom long description has no R-Series source (`ItemECommerce` "is not used by Lightspeed
  eCommerce", KVH item.md), so it is eCom's (`ECOM_OWNED`) [I].
- SKU = `customSku`, else `systemSku` ("The SKU for the item created by Retail POS ... used on item labels as the
  barcode. Read-only", KVH item.md): every item has one, so every eCom variant can be found again by SKU [I].
  Codes: `upc` -> UPC, `ean` -> EAN.
- Options: the attribute set's names (Color/Size/...) with the item's `ItemAttributes.attribute1..3` values (seed
  000: eCom Option Values = R Attribute Values). Names come from the matrix's `ItemAttributeSet` relation (KVH
  itemmatrix.md "Additional Relations"; itemattributeset.md `attributeName1..3`) when loaded, else the system sets
  of KVH itemattributeset.md (1 "Color/Size" and 3 "Color" from its samples; 2 "Size" and 4 "3 Attributes" [I]),
  else "Attribute N".
- Prices: `Prices.ItemPrice[{amount, useTypeID, useType}]` (KVH item.md). The Online level (resolved by name by the
  caller: its id differs per account) is the online price; an item without it, or with 0 there (the KVH item.md
  sample shows Online "0" beside Default "100": an unset level) shows its Default price (seed 000: "By default, your
  Retail POS assigns a product's default retail price as its online price"). R-Series item prices are entered
  before tax: a sale adds tax on top (KVH sale.md calcSubtotal/calcTax1; the simulator's `tax_rate` does the same),
  so prices are tax exclusive and no tax-inclusive price is known: eCom gets the same amount as incl and excl
  (`catalog.mapping.online_prices`). Whether a tax-inclusive account (Sale `isTaxInclusive`) stores prices with tax
  is undocumented: either way eCom gets the POS amount unchanged.
- Images: the `Images` relation, by `ordering` then `imageID`, as `{baseImageURL}{publicID}.{ext}` (KVH image.md
  "Getting the Image": the extension from the filename when it is an image type, else jpg), at most 12 per item and
  12 on the Matrix Master (seed 000).
- Stamp: `timeStamp` as epoch seconds. Never mapped (seed 000 "do not sync"): tags, vendor (`defaultVendorID`),
  reorder points/levels and other inventory defaults.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from pos_ecom_sync.errors import InvalidInput
from pos_ecom_sync.models.catalog import EcomOwnedField, PosFamily, PosItem, ProductCode, VariantOption
from pos_ecom_sync.profiles.rseries import envelope

JsonObject = dict[str, Any]
MATRIX_PREFIX = "m"  # feeds.MATRIX_PREFIX: a matrix family's key
MAX_IMAGES = 12  # seed 000: 12 per simple item, per variant and on the Matrix Master
MAX_ATTRIBUTES = 3
# What eCom owns of an R-Series product once it exists (seed 000: synced products start disabled and the merchant
# enables them in eCom; no R-Series field feeds the eCom long description).
ECOM_OWNED: frozenset[EcomOwnedField] = frozenset({"visibility", "description"})
# KVH itemattributeset.md: "Color/Size" (id 1 in its list sample) and "Color" (id 3 in its single sample); the
# ids of "Size" and "3 Attributes" are not shown [I, as the simulator].
SYSTEM_ATTRIBUTE_SETS: dict[str, tuple[str, ...]] = {
    "1": ("Color", "Size"),
    "2": ("Size",),
    "3": ("Color",),
    "4": ("Attribute 1", "Attribute 2", "Attribute 3"),
}
IMAGE_EXTENSIONS = frozenset({"jpg", "jpeg", "png", "gif", "webp"})
DEFAULT_LEVEL_NAME = "Default"


def _id(row: Mapping[str, Any], name: str) -> str:
    value = envelope.reference(row.get(name))
    if value is None or not value.isdigit():
        raise InvalidInput(f"R-Series row without a readable {name}: {str(row.get(name))[:40]!r}")
    return value


def _stamp(row: Mapping[str, Any]) -> int:
    value = envelope.epoch(row.get("timeStamp"))
    if value is None:
        raise InvalidInput(f"R-Series row without a readable timeStamp: {str(row.get('timeStamp'))[:40]!r}")
    return value


def _text(row: Mapping[str, Any], name: str) -> str:
    value = row.get(name)
    return value.strip() if isinstance(value, str) else ""


def is_archived(row: Mapping[str, Any]) -> bool:
    return envelope.flag(row.get("archived")) is True


def left_out(item: Mapping[str, Any]) -> bool:
    """Archived, or not published to eCom (`publishToEcom` "false"): not (or no longer) in eCom."""
    return is_archived(item) or envelope.flag(item.get("publishToEcom")) is False


def image_urls(row: Mapping[str, Any]) -> tuple[str, ...]:
    """The row's loaded `Images` as Cloudinary URLs (KVH image.md), in display order, at most 12."""
    images = envelope.relation(row, "Images", "Image")
    images.sort(
        key=lambda image: (envelope.integer(image.get("ordering")) or 0, envelope.integer(image.get("imageID")) or 0)
    )
    urls: list[str] = []
    for image in images:
        base, public_id = _text(image, "baseImageURL"), _text(image, "publicID")
        if not base or not public_id:
            continue
        extension = _text(image, "filename").rsplit(".", 1)[-1].lower() if "." in _text(image, "filename") else ""
        url = f"{base.rstrip('/')}/{public_id}.{extension if extension in IMAGE_EXTENSIONS else 'jpg'}"
        if url not in urls:
            urls.append(url)
    return tuple(urls[:MAX_IMAGES])


def _price_entries(row: Mapping[str, Any]) -> list[tuple[str | None, str, Decimal]]:
    found = []
    for entry in envelope.relation(row, "Prices", "ItemPrice"):
        amount = envelope.decimal(entry.get("amount"))
        if amount is not None:
            found.append((envelope.reference(entry.get("useTypeID")), _text(entry, "useType").casefold(), amount))
    return found


def item_prices(row: Mapping[str, Any], online_level_id: str | None) -> tuple[float | None, float | None]:
    """(Default price, Online price) of an item, both tax exclusive; the Online one None when the account has no
    Online level, the item no entry for it, or 0 there (unset)."""
    entries = _price_entries(row)
    default = next((amount for _, name, amount in entries if name == DEFAULT_LEVEL_NAME.casefold()), None)
    online = next((amount for level, _, amount in entries if online_level_id and level == online_level_id), None)
    return (
        float(default) if default is not None else None,
        float(online) if online is not None and online > 0 else None,
    )


def attribute_names(matrix: Mapping[str, Any]) -> tuple[str, ...]:
    """The matrix's attribute names, in order (see the module doc)."""
    holder = matrix.get("ItemAttributeSet")
    if isinstance(holder, dict):
        names = tuple(_text(holder, f"attributeName{n}") for n in range(1, MAX_ATTRIBUTES + 1))
        if any(names):
            return names
    set_id = envelope.reference(matrix.get("itemAttributeSetID"))
    return SYSTEM_ATTRIBUTE_SETS.get(set_id or "", ())


def item_options(item: Mapping[str, Any], names: Sequence[str]) -> tuple[VariantOption, ...]:
    attributes = item.get("ItemAttributes")
    if not isinstance(attributes, dict):
        return ()
    options = []
    for n in range(1, MAX_ATTRIBUTES + 1):
        value = _text(attributes, f"attribute{n}")
        if value:
            name = names[n - 1] if n <= len(names) and names[n - 1] else f"Attribute {n}"
            options.append(VariantOption(name=name, value=value))
    return tuple(options)


def _codes(item: Mapping[str, Any]) -> tuple[ProductCode, ...]:
    return tuple(
        ProductCode(type=kind, code=_text(item, field))
        for kind, field in (("UPC", "upc"), ("EAN", "ean"))
        if _text(item, field)
    )


def map_item(
    item: Mapping[str, Any],
    *,
    online_level_id: str | None,
    names: Sequence[str] = (),
    categories: Mapping[str, str] | None = None,
    brands: Mapping[str, str] | None = None,
) -> PosItem:
    """One Item row as a sellable `PosItem` (a variant or a simple item). `categories` / `brands`: id -> name."""
    default, online = item_prices(item, online_level_id)
    return PosItem(
        id=_id(item, "itemID"),
        stamp=_stamp(item),
        name=_text(item, "description"),
        sku=_text(item, "customSku") or _text(item, "systemSku"),
        codes=_codes(item),
        options=item_options(item, names),
        price_excluding_tax=default,
        online_price_excl=online,
        deleted=left_out(item),
        brand=(brands or {}).get(envelope.reference(item.get("manufacturerID")) or ""),
        category=(categories or {}).get(envelope.reference(item.get("categoryID")) or ""),
        images=image_urls(item),
    )


def simple_family(
    item: Mapping[str, Any],
    *,
    online_level_id: str | None,
    categories: Mapping[str, str] | None = None,
    brands: Mapping[str, str] | None = None,
) -> PosFamily:
    """A simple item: a family of one, keyed by its itemID, that sells itself."""
    mapped = map_item(item, online_level_id=online_level_id, categories=categories, brands=brands)
    return PosFamily(
        key=mapped.id,
        stamp=mapped.stamp,
        parent=mapped,
        sellable=() if mapped.deleted else (mapped,),
        ecom_owned=ECOM_OWNED,
    )


def matrix_family(
    matrix: Mapping[str, Any],
    items: Sequence[Mapping[str, Any]],
    *,
    online_level_id: str | None,
    categories: Mapping[str, str] | None = None,
    brands: Mapping[str, str] | None = None,
) -> PosFamily:
    """A matrix and its variant items (archived ones included): one family keyed `m<itemMatrixID>`."""
    matrix_id = _id(matrix, "itemMatrixID")
    names = attribute_names(matrix)
    parent = PosItem(
        id=MATRIX_PREFIX + matrix_id,
        stamp=_stamp(matrix),
        name=_text(matrix, "description"),
        deleted=is_archived(matrix),
        brand=(brands or {}).get(envelope.reference(matrix.get("manufacturerID")) or ""),
        category=(categories or {}).get(envelope.reference(matrix.get("categoryID")) or ""),
        images=image_urls(matrix),
    )
    mapped = [
        map_item(item, online_level_id=online_level_id, names=names)
        for item in items
        if envelope.reference(item.get("itemMatrixID")) == matrix_id
    ]
    live = tuple(item for item in mapped if not item.deleted)
    return PosFamily(
        key=parent.id,
        stamp=max([parent.stamp, *(item.stamp for item in mapped)]),
        parent=parent,
        sellable=() if parent.deleted else live,
        removed=tuple(sorted(item.id for item in mapped if item.deleted)),
        ecom_owned=ECOM_OWNED,
    )
