"""What eCom shows for the fields the POS owns, and whether it still matches what our last write left (pure).

The baseline of content reconciliation is eCom's own answer to our last write of a product or variant (the row a
create/update returns), recorded in the family's `CatalogState`: "eCom differs from what it showed right after we
wrote it" is a hand edit in eCom. Comparing eCom with eCom needs no normalisation of our payload into eCom's
terms (rounded or derived prices, grams, an image eCom re-hosts or ignores), so an unchanged product never looks
changed. That the baseline still matches the POS is the other half, already checked by version (reconciliation's
`catalog_outdated`: a POS row newer than the version applied). Together: eCom shows what the POS says.

Only POS-owned fields are compared (seed 003 under X-Series): product title, fulltitle, description, visibility,
brand and main image; variant title (the option values), SKU, article code, EAN, prices, weight, dimensions and
image. eCom-owned fields (compare-at price `oldPrice*`, subtitle, `stockAlert`/`stockMinimum`, content, ...) are
never compared, so never "repaired"; stock is the stock worker's. The category is a link of its own
(`categories/products`), not a field of the product row: compared by the worker when it checks a family against eCom.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pos_ecom_sync.models.catalog import Shown

PRODUCT_FIELDS = ("title", "fulltitle", "description", "visibility", "brand")
VARIANT_FIELDS = (
    "title",
    "sku",
    "articleCode",
    "ean",
    "priceIncl",
    "priceExcl",
    "weight",
    "sizeX",
    "sizeY",
    "sizeZ",
    "image",
)
# Both sides come from eCom; rounding only removes float noise of a JSON round trip.
NUMBER_DECIMALS = 6


def _value(name: str, value: Any) -> str | float | bool | int | None:
    if name == "brand":
        # A relation: {"resource": {"id": ...}}, a bare id, or false (none).
        if isinstance(value, dict):
            value = value.get("resource", value).get("id")
        return value if isinstance(value, int) and not isinstance(value, bool) and value else None
    if name == "image":
        # Inline NT `fileObject` (no id): its `src` names the image; false is none.
        src = value.get("src") if isinstance(value, dict) else None
        return src if isinstance(src, str) and src else None
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return round(float(value), NUMBER_DECIMALS)
    return str(value)


def _shown(row: Mapping[str, Any], fields: tuple[str, ...]) -> Shown:
    # A field the row lacks is unknown, not empty: it is left out, and never counts as a difference.
    return {name: _value(name, row[name]) for name in fields if name in row}


def product_shown(row: Mapping[str, Any]) -> Shown:
    """The POS-owned fields of an eCom product row (`GET /products.json` or `/products/{id}.json`)."""
    return _shown(row, PRODUCT_FIELDS)


def main_image(row: Mapping[str, Any]) -> str | None:
    """The `src` of the product's first image as its row shows it (inline `image`), None when it has none."""
    value = _value("image", row.get("image"))
    return value if isinstance(value, str) else None


def variant_shown(row: Mapping[str, Any]) -> Shown:
    """The POS-owned fields of an eCom variant row (`GET /variants.json` or a variant write's answer)."""
    return _shown(row, VARIANT_FIELDS)


def differing(recorded: Mapping[str, Any], now: Mapping[str, Any]) -> tuple[str, ...]:
    """Fields both sides know whose values differ. An empty `recorded` (a family synced before baselines were kept)
    compares nothing: it is filled by the next write."""
    return tuple(name for name, value in recorded.items() if name in now and now[name] != value)
