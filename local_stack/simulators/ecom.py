"""Lightspeed eCom (C-Series, ex-SEOshop) simulator: `/{lang}/<resource>.json`, Basic auth, integer ids.

Shapes follow reference/vendor-apis.md §3. Choices the reference leaves open (ours, [I]):
- Lists: `page` (from 1), `limit` default 50, silently capped at 250, `since_id`, and `created_at_min/max`,
  `updated_at_min/max` on every list; results in id order. Deep `page` paging is capped (NT README: "offset/page
  paging is capped on deep pages", no depth given): past `page_cap` pages a list answers empty ([I] the depth and
  the empty answer), while `since_id` reaches every row. Date filters are read in ONE format, `date_filter_format`
  ("sql" = "YYYY-MM-DD HH:MM:SS" UTC, NT src/core/types.ts; "iso" = ISO 8601, NT README): a value in the other
  format is ignored, so the whole list comes back (sources disagree; ignoring is the silent, costly case).
  Writes are strict: an unknown or mistyped field is a 400 (so connector typos surface). Errors: `{"error":
  {"code", "method", "request", "message"}}`. Creates answer 201, deletes 204. Any two-letter language is served.
- Prices: 15% tax; send priceIncl or priceExcl and the other is derived. `weight` is grams; a shopper sees
  `weightValue` (a string) in `weightUnit` (the shop's unit, `weight_unit`), derived from it (the vendor example:
  weight 200, weightValue "0.2", weightUnit "kg"). Order lines: `basePriceIncl` per unit, `priceIncl` line total.
- Orders lower variant stock (stockTracking "enabled") but, like stock movements, send no variants webhook;
  a merchant's back-office edit (`set_stock_manually`, `edit_variant`) sends variants/updated.
  Cancelling the payment cancels the order and freezes it (seed 004). No default variant is auto-created.
- Shapes are NT's live-validated ones: every relation NT requires is a `{"resource": {id, url, link}}` (id false for
  a collection, false for an unset set/brand/deliverydate/supplier/type), a variant always has a `tax` rate
  ([I] one default rate) and both `stockBuyMininum` (sic, live) and `stockBuyMinimum`.
- Shipping methods: read-only (PHP ApiResourceShippingmethods: get/count), envelope `shippingmethod(s)`, showing
  only what a source names (id, timestamps, title, price: NT quote.ts quoteShippingMethodSchema). Whether a method
  is a pickup and its price incl. tax drive checkout here but are not shown; no method names a POS outlet.
- Webhooks: JSON body `{"<singular>": {...}}`, `x-signature` = md5(raw body + webhook_secret), no other header
  (F4574). Only `format: json` is supported. A hook's language is the URL path's. Deleting a product sends
  products/deleted only.
- Unverified writes, one switch each (tests run both ways): `brand_false` ("accepted" | "refused") for clearing a
  product's brand with `brand: false` (NT: brand is a number); `variant_image` ("accepted" | "refused" |
  "ignored") for `image` on a variant (not in NT variantInputSchema).
- Rate limits: three fixed windows plus `per_second`; `limits=None` turns every limit off.
- Catalog extras. Product images (`products/{id}/images`, envelope `productImage(s)`): a write takes `src`
  (NickTacke's input) or `attachment` (the official PHP client sends image URLs that way), an http(s) URL either
  way (base64 uploads are not simulated: 400). Like the real shop, the image is re-hosted: `src`/`thumb` read back
  as cdn.webshopapp.com URLs, never the URL sent; `image_sources()` keeps the sent URLs for tests. Adding or
  deleting an image sends products/updated. A product reads `image` (its first image inline as an NT `fileObject`:
  no id, no sortOrder; or false) and `images` (always a relation). A variant's `image` is written as the id of one
  of its product's images (or false) and read inline (`fileObject`) or false; deleting the image clears it. Variant
  `options` are read-only (a write is a 400): option values live in the variant title (see `variant_image`).
  Brands (`brand(s)`) and categories (`category`/`categories`) are plain lists (filters `title`/`isVisible`,
  `parent`/`isVisible`; titles need not be unique). A product's `brand` must be an existing brand id (or false).
  Category links are `categories/products` (`categoriesProduct(s)`, filters `product`, `category`): linking a
  product to a category it is already in is a 400 naming the existing link, so a worker must list before it
  links. Links send no webhook (a separate resource, not a product field). Deleting a product deletes its images
  and links.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import operator
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from local_stack.simulators.catalog import generate_catalog, slug
from local_stack.simulators.common import (
    ApiError,
    Clock,
    Delivery,
    Faults,
    FixedWindow,
    Narrate,
    RateDecision,
    Request,
    Response,
    VendorSimulator,
    acquire,
    int_param,
    iso_utc,
    parse_iso,
    reject_unknown,
)

TAX_RATE = 0.15
DEFAULT_LIMIT, MAX_LIMIT = 50, 250
ORDER_STATUSES = frozenset(
    {
        "on_hold",
        "processing_awaiting_payment",
        "processing_awaiting_shipment",
        "processing_awaiting_pickup",
        "processing_ready_for_pickup",
        "completed",
        "completed_shipped",
        "completed_picked_up",
        "cancelled",
    }
)
PAYMENT_STATUSES = frozenset({"not_paid", "partially_paid", "paid", "cancelled"})
SHIPMENT_STATUSES = frozenset({"not_shipped", "partially_shipped", "shipped", "cancelled"})
ITEM_GROUPS = frozenset(
    {"customers", "orders", "invoices", "shipments", "products", "variants", "quotes", "reviews", "returns",
     "subscriptions"}
)  # fmt: skip
ITEM_ACTIONS = frozenset({"created", "updated", "deleted", "*"})
# Table name -> (singular envelope, plural envelope).
ENVELOPES = {
    "products": ("product", "products"),
    "variants": ("variant", "variants"),
    "orders": ("order", "orders"),
    "orderProducts": ("orderProduct", "orderProducts"),
    "customers": ("customer", "customers"),
    "shipments": ("shipment", "shipments"),
    "shippingmethods": ("shippingmethod", "shippingmethods"),
    "webhooks": ("webhook", "webhooks"),
    "productImages": ("productImage", "productImages"),
    "brands": ("brand", "brands"),
    "categories": ("category", "categories"),
    "categoriesProducts": ("categoriesProduct", "categoriesProducts"),
}
# URL path of a table's list, when it is not the table name.
PATHS = {"categoriesProducts": "categories/products"}
FIRST_IDS = {
    "products": 40_001,
    "variants": 880_001,
    "orders": 5_501_001,
    "orderProducts": 7_700_001,
    "customers": 70_001,
    "shipments": 9_101,
    "shippingmethods": 501,
    "webhooks": 1,
    "productImages": 61_000_001,
    "brands": 301,
    "categories": 9_001,
    "categoriesProducts": 120_001,
}
# Stored on a row but not part of the vendor's shape (NT categoriesProduct and orderProduct have no timestamps).
HIDDEN = {
    "productImages": ("product", "source"),
    "shippingmethods": ("isActive", "isPickup", "priceIncl", "priceExcl"),  # checkout state; no source names them
    "categoriesProducts": ("createdAt", "updatedAt"),
    "orderProducts": ("createdAt", "updatedAt"),
}
# Relation fields: "{v}" is the id stored in the field (none -> false), "{id}" the row's own id (ref id false).
# Paths of the relations NT product.ts/variant.ts require: the official PHP client's resources (ApiResourceSets,
# ...Deliverydates, ...Suppliers, ...Types, ...ProductsRelations, ...ProductsAttributes, ...Reviews, ...TagsProducts,
# ...VariantsMovements, ...Taxes).
RELATIONS = {
    "products": {
        "set": "sets/{v}",
        "brand": "brands/{v}",
        "deliverydate": "deliverydates/{v}",
        "supplier": "suppliers/{v}",
        "type": "types/{v}",
        "variants": "variants?product={id}",
        "categories": "categories/products?product={id}",
        "images": "products/{id}/images",
        "relations": "products/{id}/relations",
        "metafields": "products/{id}/metafields",
        "reviews": "reviews?product={id}",
        "attributes": "products/{id}/attributes",
        "tags": "tags/products?product={id}",
        "movements": "variants/movements?product={id}",
    },
    "variants": {
        "tax": "taxes/{v}",
        "product": "products/{v}",
        "movements": "variants/movements?variant={id}",
        "metafields": "variants/{id}/metafields",
    },
    "orders": {
        "customer": "customers/{v}",
        "products": "orders/{id}/products",
        "shipments": "shipments?order={id}",
        "invoices": "invoices?order={id}",
        "metafields": "orders/{id}/metafields",
    },
    "orderProducts": {"product": "products/{v}", "variant": "variants/{v}"},
    "shipments": {"order": "orders/{v}", "customer": "customers/{v}", "products": "shipments/{id}/products"},
    "brands": {"products": "products?brand={id}"},
    "categories": {
        "parent": "categories/{v}",
        "children": "categories?parent={id}",
        "products": "categories/products?category={id}",
    },
    "categoriesProducts": {"category": "categories/{v}", "product": "products/{v}"},
}
REF = "ref"  # an integer id, or false
PRODUCT_FIELDS: dict[str, Any] = {
    **dict.fromkeys(("title", "fulltitle", "description", "content", "url", "visibility"), str),
    **dict.fromkeys(("data01", "data02", "data03"), str),
    "isVisible": bool,
    **dict.fromkeys(("brand", "supplier", "type"), REF),
}
VARIANT_FIELDS: dict[str, Any] = {
    **dict.fromkeys(("title", "articleCode", "ean", "sku", "hs", "unitUnit", "stockTracking"), str),
    **dict.fromkeys(("weightUnit", "volumeUnit", "sizeUnit"), str),
    **dict.fromkeys(("priceExcl", "priceIncl", "priceCost", "oldPriceExcl", "oldPriceIncl", "unitPrice"), float),
    **dict.fromkeys(("weight", "volume", "sizeX", "sizeY", "sizeZ"), float),
    **dict.fromkeys(("stockLevel", "stockAlert", "stockMinimum", "stockBuyMinimum", "stockBuyMaximum"), int),
    **dict.fromkeys(("colli", "sortOrder"), int),
    "isDefault": bool,
    **dict.fromkeys(("product", "tax", "image"), REF),
}
ORDER_FIELDS: dict[str, Any] = {
    **dict.fromkeys(("status", "paymentStatus", "shipmentStatus", "memo", "remark"), str),
    "doNotify": bool,
}
SHIPMENT_FIELDS: dict[str, Any] = dict.fromkeys(("status", "trackingCode", "trackingUrl", "carrier"), str)
WEBHOOK_FIELDS: dict[str, Any] = {
    "isActive": bool,
    **dict.fromkeys(("url", "format", "itemGroup", "itemAction", "secret", "extra"), str),
}
PRODUCT_IMAGE_FIELDS: dict[str, Any] = {
    **dict.fromkeys(("src", "attachment", "filename", "title"), str),
    "sortOrder": int,
}
BRAND_FIELDS: dict[str, Any] = {**dict.fromkeys(("title", "url", "content"), str), "isVisible": bool}
CATEGORY_FIELDS: dict[str, Any] = {
    **dict.fromkeys(("title", "fulltitle", "url", "description", "content", "sorting"), str),
    "isVisible": bool,
    "sortOrder": int,
    "parent": REF,
}
CATEGORY_LINK_FIELDS: dict[str, Any] = {"category": REF, "product": REF, "sortOrder": int}
SHOP_ID = 300_001  # [I] the shop's id in its CDN URLs
DEFAULT_TAX_ID = 1_201  # [I] the shop's default tax rate (`taxes/{id}`): every variant has one (NT variant `tax`)
CDN = "https://cdn.webshopapp.com"
IMAGE_EXTENSIONS = frozenset({"jpg", "jpeg", "png", "gif", "webp"})
LANGUAGES = {"en": ("en_GB", "English"), "nl": ("nl_NL", "Nederlands"), "de": ("de_DE", "Deutsch")}
COUNTRY = {"id": 158, "code": "nz", "title": "New Zealand"}
# Grams per weight unit a shop may display ([I] which units eCom offers; kg is the vendor example's).
GRAMS_PER_UNIT = {"kg": 1000.0, "g": 1.0, "lb": 453.59237, "oz": 28.349523125}
FILTER_FORMATS = {
    "sql": re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}"),  # NT src/core/types.ts: read as UTC
    "iso": re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?"),  # NT README
}


def _typed(body: Mapping[str, Any], schema: Mapping[str, Any], what: str) -> dict[str, Any]:
    reject_unknown(body, frozenset(schema), what)
    for name, value in body.items():
        kind = schema[name]
        if kind is float:
            ok = isinstance(value, int | float) and not isinstance(value, bool)
        elif kind is int:
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif kind == REF:
            ok = value is False or (isinstance(value, int) and not isinstance(value, bool))
        else:
            ok = isinstance(value, kind)
        if not ok:
            expected = {float: "a number", int: "an integer", str: "a string", bool: "a boolean", REF: "an id"}
            raise ApiError(400, f"{what} field {name} must be {expected.get(kind, 'a string or null')}")
    return dict(body)


def _file(image: Mapping[str, Any]) -> dict[str, Any]:
    """A product image inline on a product or variant: NT `fileObject` (no id, no sortOrder)."""
    return {name: image[name] for name in ("createdAt", "updatedAt", "extension", "size", "title", "thumb", "src")}


def _weight_value(grams: float, unit: str) -> str:
    """What a shopper sees: the gram `weight` in the display unit, as eCom's string (200 g in kg -> "0.2")."""
    value = round(grams / GRAMS_PER_UNIT.get(unit, 1000.0), 3)
    return f"{value:.3f}".rstrip("0").rstrip(".") or "0"


def _changes(fields: Mapping[str, Any]) -> str:
    """A short account of a write for the narration (long texts elided)."""
    shown = [f"{k}={v!r}" if len(repr(v)) <= 30 else f"{k}=..." for k, v in fields.items()]
    return ", ".join(shown[:6]) + (f" (+{len(shown) - 6} more)" if len(shown) > 6 else "")


def _excl(incl: float) -> float:
    return round(incl / (1 + TAX_RATE), 4)


def _derive_prices(changes: dict[str, Any]) -> None:
    for incl, excl in (("priceIncl", "priceExcl"), ("oldPriceIncl", "oldPriceExcl")):
        if incl in changes and excl not in changes:
            changes[excl] = _excl(changes[incl])
        elif excl in changes and incl not in changes:
            changes[incl] = round(changes[excl] * (1 + TAX_RATE), 2)


@dataclass(frozen=True)
class Checkout:
    lines: Sequence[Mapping[str, int]]
    email: str
    firstname: str
    lastname: str
    payment_title: str
    payment_status: str
    shipment_title: str
    is_pickup: bool


def _name_from_email(email: str) -> tuple[str, str]:
    parts = [p.title() for p in re.split(r"[._+-]", email.split("@")[0]) if p]
    return (parts[0] if parts else "", " ".join(parts[1:]))


class EcomSimulator(VendorSimulator):
    vendor = "ecom"
    contract_api = "ecom"

    def __init__(
        self,
        *,
        api_key: str,
        api_secret: str,
        webhook_secret: str,
        seed: int = 0,
        narrate: Narrate | None = None,
        faults: Faults | None = None,
        language: str = "en",
        limits: tuple[int, int, int] | None = (300, 3000, 12000),
        windows_s: tuple[float, float, float] = (300, 3600, 86400),
        per_second: int | None = 20,
        clock: Clock = time.time,
        page_cap: int | None = 40,
        date_filter_format: str = "sql",
        brand_false: str = "accepted",
        variant_image: str = "accepted",
        weight_unit: str = "kg",
    ) -> None:
        super().__init__(seed=seed, narrate=narrate, faults=faults, clock=clock)
        # Unverified vendor behaviours, one switch each (see the module docstring).
        if date_filter_format not in FILTER_FORMATS:
            raise ValueError(f"date_filter_format must be one of {sorted(FILTER_FORMATS)}")
        if brand_false not in ("accepted", "refused") or variant_image not in ("accepted", "refused", "ignored"):
            raise ValueError("brand_false: accepted|refused; variant_image: accepted|refused|ignored")
        if weight_unit not in GRAMS_PER_UNIT:
            raise ValueError(f"weight_unit must be one of {sorted(GRAMS_PER_UNIT)}")
        self.page_cap = page_cap
        self.date_filter_format = date_filter_format
        self.brand_false = brand_false
        self.variant_image = variant_image
        self.weight_unit = weight_unit
        self._credentials = f"{api_key}:{api_secret}"
        self.webhook_secret = webhook_secret
        self.language = language
        self.limits = limits
        self._windows = [FixedWindow(limit, window) for limit, window in zip(limits or (), windows_s, strict=False)]
        self._per_second = FixedWindow(per_second, 1.0) if per_second and limits else None
        self.tables: dict[str, dict[int, dict[str, Any]]] = {name: {} for name in ENVELOPES}
        self._next_ids = dict(FIRST_IDS)
        self._order_lines: dict[int, list[int]] = {}  # order id -> orderProduct ids
        self._next_file_id = 400_000_001  # CDN file ids of uploaded images
        self._quiet = False  # seeding sends no webhooks
        self._add_routes()
        self.add_shipping_method("Courier", price_incl=8.5)
        self.add_shipping_method("Standard Post", price_incl=5.0)

    # -- storage and rendering -----------------------------------------------------------------------

    def _now(self) -> str:
        return iso_utc(self.clock())

    def _insert(self, table: str, row: dict[str, Any]) -> dict[str, Any]:
        row_id = self._next_ids[table]
        self._next_ids[table] += 1
        now = self._now()
        row = {"id": row_id, "createdAt": now, "updatedAt": now, **row}
        self.tables[table][row_id] = row
        return row

    def _touch(self, row: dict[str, Any], changes: Mapping[str, Any] | None = None) -> dict[str, Any]:
        row.update(changes or {})
        row["updatedAt"] = self._now()
        return row

    def _row(self, table: str, row_id: Any) -> dict[str, Any]:
        try:
            row = self.tables[table].get(int(row_id))
        except (TypeError, ValueError):
            row = None
        if row is None:
            raise ApiError(404, f"{ENVELOPES[table][0]} {row_id} not found")
        return row

    def _link(self, lang: str, path: str) -> str:
        base, _, query = path.partition("?")
        return f"{self.url or 'http://127.0.0.1'}/{lang}/{base}.json" + (f"?{query}" if query else "")

    def _render(self, table: str, row: Mapping[str, Any], lang: str) -> dict[str, Any]:
        out = dict(row)
        for name, template in RELATIONS.get(table, {}).items():
            if "{v}" in template:
                value = row.get(name)
                path = template.format(v=value)
                out[name] = {"resource": {"id": value, "url": path, "link": self._link(lang, path)}} if value else False
            else:
                path = template.format(id=row["id"])
                out[name] = {"resource": {"id": False, "url": path, "link": self._link(lang, path)}}
        if table == "webhooks":
            locale, title = LANGUAGES.get(row["language"], (row["language"], row["language"]))
            out["language"] = {"id": 1, "code": row["language"], "locale": locale, "title": title}
        elif table == "products":
            images = self._images_of(row["id"])
            out["image"] = _file(images[0]) if images else False
            out["templateDataFields"] = {}
        elif table == "variants":
            image = self.tables["productImages"].get(row["image"]) if row.get("image") else None
            out["image"] = _file(image) if image else False
            out["stockBuyMininum"] = row["stockBuyMinimum"]  # both spellings are live fields (NT variant.ts)
            out["weightValue"] = _weight_value(row["weight"], row["weightUnit"])  # what a shopper sees
        for name in HIDDEN.get(table, ()):
            out.pop(name, None)
        return out

    def _images_of(self, product_id: int) -> list[dict[str, Any]]:
        rows = [i for i in self.tables["productImages"].values() if i["product"] == product_id]
        return sorted(rows, key=lambda i: (i["sortOrder"], i["id"]))

    def _public(self, table: str, rows: Sequence[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
        with self.lock:
            chosen = self.tables[table].values() if rows is None else rows
            return [self._render(table, row, self.language) for row in chosen]

    def _emit(self, table: str, action: str, row: Mapping[str, Any]) -> None:
        """Send `{group}/{action}` to matching subscriptions, whoever made the change (API writes echo too)."""
        singular = ENVELOPES[table][0]
        for hook in [] if self._quiet else self.tables["webhooks"].values():
            if hook["isActive"] and hook["itemGroup"] == table and hook["itemAction"] in (action, "*"):
                body = json.dumps({singular: self._render(table, row, hook["language"])}).encode()
                signature = hashlib.md5(body + self.webhook_secret.encode(), usedforsecurity=False).hexdigest()
                headers = {"Content-Type": "application/json", "x-signature": signature}
                self.deliveries.enqueue(Delivery(f"{table}/{action}", hook["address"], body, headers))

    # -- Python API: reads ---------------------------------------------------------------------------

    def products(self) -> list[dict[str, Any]]:
        return self._public("products")

    def variants(self, product_id: int | None = None) -> list[dict[str, Any]]:
        with self.lock:
            rows = [v for v in self.tables["variants"].values() if product_id in (None, v["product"])]
            return self._public("variants", rows)

    def orders(self) -> list[dict[str, Any]]:
        return self._public("orders")

    def order_products(self, order_id: int) -> list[dict[str, Any]]:
        with self.lock:
            rows = [self.tables["orderProducts"][i] for i in self._order_lines.get(order_id, [])]
            return self._public("orderProducts", rows)

    def customers(self) -> list[dict[str, Any]]:
        return self._public("customers")

    def shipments(self) -> list[dict[str, Any]]:
        return self._public("shipments")

    def shipping_methods(self) -> list[dict[str, Any]]:
        return self._public("shippingmethods")

    def webhooks(self) -> list[dict[str, Any]]:
        return self._public("webhooks")

    def product_images(self, product_id: int) -> list[dict[str, Any]]:
        """The product's images as the API shows them, in sortOrder."""
        with self.lock:
            return self._public("productImages", self._images_of(product_id))

    def image_sources(self, product_id: int) -> list[str]:
        """The URLs the product's images were uploaded from, in sortOrder (the API only shows CDN copies)."""
        with self.lock:
            return [image["source"] for image in self._images_of(product_id)]

    def brands(self) -> list[dict[str, Any]]:
        return self._public("brands")

    def categories(self) -> list[dict[str, Any]]:
        return self._public("categories")

    def category_links(self, product_id: int | None = None) -> list[dict[str, Any]]:
        with self.lock:
            rows = [r for r in self.tables["categoriesProducts"].values() if product_id in (None, r["product"])]
            return self._public("categoriesProducts", rows)

    # -- Python API: what shoppers and the merchant do -----------------------------------------------

    def replace_api_key(self, api_key: str, api_secret: str, webhook_secret: str) -> None:
        """The merchant replaces the shop's API key in the back office (test control, not a vendor route): the old
        key:secret is refused with 401 from now on, and deliveries queued from now on are signed with
        `webhook_secret` (the vendor signs with the app's secret, F4574); ones already queued keep their signature."""
        with self.lock:
            self._credentials = f"{api_key}:{api_secret}"
            self.webhook_secret = webhook_secret
        self.narrate("API key replaced: the old key is refused from now on")

    def add_shipping_method(
        self,
        title: str,
        *,
        is_pickup: bool = False,
        is_active: bool = True,
        price_incl: float = 0.0,
    ) -> dict[str, Any]:
        """The merchant sets up a shipping method in the back office (the API cannot: it is read-only). Pickup,
        active and the price incl. tax drive checkout; the API shows only the fields a source names."""
        with self.lock:
            row = self._insert(
                "shippingmethods",
                {
                    "title": title,
                    "price": price_incl,
                    "isActive": is_active,
                    "isPickup": is_pickup,
                    "priceIncl": price_incl,
                    "priceExcl": _excl(price_incl),
                },
            )
            return self._render("shippingmethods", row, self.language)

    def seed_catalog(self, families: int, variants_per_family: int, seed: int = 0, stock: int = 0) -> None:
        """Products already in the shop (e.g. before the POS link): visible, `stock` units per variant.
        Seeding sends no webhooks."""
        with self.lock:
            self._quiet = True
            try:
                start = len(self.tables["products"])
                for spec in generate_catalog(families, variants_per_family, seed, start_index=start):
                    product = self._create_product({"title": spec.name, "description": spec.description})
                    product.update(visibility="visible", isVisible=True)
                    for variant in spec.variants:
                        fields: dict[str, Any] = {"title": variant.label or spec.name, "sku": variant.sku}
                        fields |= {"articleCode": variant.sku, "ean": variant.ean, "priceIncl": variant.price_incl}
                        grams = round(variant.weight_kg * 1000, 3)  # eCom `weight` is grams
                        fields |= {"stockLevel": stock, "product": product["id"], "weight": grams}
                        self._create_variant(fields)
            finally:
                self._quiet = False

    def place_order(
        self,
        lines: Sequence[Mapping[str, int]],
        email: str,
        firstname: str | None = None,
        lastname: str | None = None,
        payment_title: str = "Lightspeed Payments",
        shipment_title: str = "Courier",
        is_pickup: bool = False,
        payment_status: str = "paid",
        allow_backorder: bool = False,
    ) -> dict[str, Any]:
        """A shopper checks out: lowers stock, records the customer, sends orders/created. Names default to
        ones derived from the email; pass "" for a nameless order. Raises ValueError for an unknown variant
        or (unless `allow_backorder`) too little stock."""
        if payment_status not in PAYMENT_STATUSES:
            raise ValueError(f"payment_status must be one of {sorted(PAYMENT_STATUSES)}")
        derived = _name_from_email(email)
        first = derived[0] if firstname is None else firstname
        last = derived[1] if lastname is None else lastname
        with self.lock:
            checkout = Checkout(lines, email, first, last, payment_title, payment_status, shipment_title, is_pickup)
            order = self._place_order(checkout, allow_backorder)
            rendered = self._render("orders", order, self.language)
        self.narrate(f"order {order['number']} placed by {email}: {len(lines)} line(s), {order['priceIncl']:.2f}")
        return rendered

    def update_order_status(
        self,
        order_id: int,
        *,
        status: str | None = None,
        payment_status: str | None = None,
        shipment_status: str | None = None,
    ) -> dict[str, Any]:
        """The merchant changes an order in the eCom back office (sends orders/updated)."""
        changes = {"status": status, "paymentStatus": payment_status, "shipmentStatus": shipment_status}
        with self.lock:
            order = self._update_order(self._row("orders", order_id), {k: v for k, v in changes.items() if v})
            rendered = self._render("orders", order, self.language)
        self.narrate(f"order {order['number']} updated: {order['status']} / {order['paymentStatus']}")
        return rendered

    def edit_variant(self, variant_id: int, **fields: Any) -> dict[str, Any]:
        """A merchant edit in the back office (sends variants/updated)."""
        with self.lock:
            variant = self._update_variant(self._row("variants", variant_id), fields)
            return self._render("variants", variant, self.language)

    def set_stock_manually(self, variant_id: int, level: int) -> dict[str, Any]:
        variant = self.edit_variant(variant_id, stockLevel=level)
        self.narrate(f"merchant set eCom stock of {variant['sku']} to {level} by hand")
        return variant

    def add_brand(self, title: str) -> dict[str, Any]:
        """The merchant creates a brand in the back office."""
        with self.lock:
            return self._render("brands", self._create_brand({"title": title}), self.language)

    def add_category(self, title: str, parent: int | None = None) -> dict[str, Any]:
        """The merchant creates a category in the back office."""
        with self.lock:
            body: dict[str, Any] = {"title": title, **({"parent": parent} if parent else {})}
            return self._render("categories", self._create_category(body), self.language)

    def replace_image_in_backoffice(self, product_id: int, src: str, index: int = 0) -> dict[str, Any]:
        """The merchant swaps the product's image at `index` (0 = the main image; past the end = adds one) for
        `src` in the back office: one products/updated. Variants that showed the old image show none."""
        with self.lock:
            product = self._row("products", product_id)
            images = self._images_of(product["id"])
            quiet, self._quiet = self._quiet, True
            try:
                body: dict[str, Any] = {"src": src}
                if index < len(images):
                    body["sortOrder"] = images[index]["sortOrder"]
                    self._delete_image(product, images[index])
                image = self._create_image(product, body)
            finally:
                self._quiet = quiet
            self._emit("products", "updated", product)
            rendered = self._render("productImages", image, self.language)
        self.narrate(f"merchant replaced image {index + 1} of eCom product {product['title']!r} by hand")
        return rendered

    def create_shipment(self, order_id: int, *, status: str = "shipped", tracking_code: str = "") -> dict[str, Any]:
        """The merchant ships the whole order (sends shipments/created and orders/updated)."""
        with self.lock:
            order = self._row("orders", order_id)
            shipment = self._insert(
                "shipments",
                {
                    "number": str(len(self.tables["shipments"]) + 1),  # a string (NT transcription, row 25)
                    "status": status,
                    "trackingCode": tracking_code,
                    "trackingUrl": "",
                    "carrier": order["shipmentTitle"],
                    "firstname": order["firstname"],
                    "lastname": order["lastname"],
                    "email": order["email"],
                    "order": order["id"],
                    "customer": order["customer"],
                },
            )
            for line_id in self._order_lines.get(order["id"], []):
                line = self.tables["orderProducts"][line_id]
                line["quantityShipped"] = line["quantityOrdered"]
            self._emit("shipments", "created", shipment)
            self._update_order(order, {"shipmentStatus": "shipped", "status": "completed_shipped"})
            return self._render("shipments", shipment, self.language)

    # -- state changes shared by the Python API and the routes ---------------------------------------

    def _create_product(self, body: Mapping[str, Any]) -> dict[str, Any]:
        fields = _typed(body, PRODUCT_FIELDS, "product")
        if not fields.get("title"):
            raise ApiError(400, "product title is required")
        fields.setdefault("visibility", "visible" if fields.get("isVisible") else "hidden")  # seed: arrive disabled
        self._check_visibility(fields)
        self._check_brand(fields)
        url = fields.get("url") or slug(fields["title"])
        if any(p["url"] == url for p in self.tables["products"].values()):
            url = f"{url}-{self._next_ids['products']}"
        product = self._insert(
            "products",
            {
                "isVisible": fields["visibility"] != "hidden",
                "hasMatrix": False,
                "url": url,
                "fulltitle": fields["title"],
                "description": "",
                "content": "",
                **dict.fromkeys(("data01", "data02", "data03"), ""),
                **dict.fromkeys(("set", "brand", "deliverydate", "supplier", "type"), None),
                **fields,
            },
        )
        self._emit("products", "created", product)
        self.narrate(f"product {product['id']} {product['title']!r} created ({product['visibility']})")
        return product

    def _check_brand(self, fields: Mapping[str, Any]) -> None:
        brand = fields.get("brand")
        if brand is False and self.brand_false == "refused":
            raise ApiError(400, "product field brand must be a brand id")
        if brand is not None and brand is not False and brand not in self.tables["brands"]:
            raise ApiError(400, f"product brand {brand} does not exist (create it with POST /brands.json)")

    @staticmethod
    def _check_visibility(fields: dict[str, Any]) -> None:
        if "visibility" in fields:
            if fields["visibility"] not in ("hidden", "visible", "auto"):
                raise ApiError(400, "visibility must be hidden, visible or auto")
            fields["isVisible"] = fields["visibility"] != "hidden"
        elif "isVisible" in fields:
            fields["visibility"] = "visible" if fields["isVisible"] else "hidden"

    def _variant_fields(self, body: Mapping[str, Any]) -> dict[str, Any]:
        if "options" in body:
            raise ApiError(400, "variant field options is read-only: eCom variants carry their option values in title")
        fields = _typed(body, VARIANT_FIELDS, "variant")
        if fields.get("weightUnit", self.weight_unit) not in GRAMS_PER_UNIT:
            raise ApiError(400, f"weightUnit must be one of {', '.join(sorted(GRAMS_PER_UNIT))}")
        if fields.get("stockTracking", "enabled") not in ("enabled", "disabled", "indicator"):
            raise ApiError(400, "stockTracking must be enabled, disabled or indicator")
        if fields.get("tax", DEFAULT_TAX_ID) is False:
            raise ApiError(400, "variant field tax must be a tax id (a variant always has a tax rate)")
        if "image" in fields and self.variant_image != "accepted":
            if self.variant_image == "refused":
                raise ApiError(400, "unknown variant field(s): image")
            fields.pop("image")  # "ignored": answered as if it had not been sent
        _derive_prices(fields)
        for name in ("sizeX", "sizeY", "sizeZ"):
            if name in fields:
                fields[f"{name}Value"] = str(fields[name])
        if "volume" in fields:
            fields["volumeValue"] = fields["volume"]  # a number, unlike weightValue (NT variant.ts)
        return fields

    def _create_variant(self, body: Mapping[str, Any]) -> dict[str, Any]:
        fields = self._variant_fields(body)
        product_id = fields.get("product")
        if not product_id or product_id not in self.tables["products"]:
            raise ApiError(
                400, f'a variant needs an existing product: {{"variant": {{"product": <id>}}}}, got {product_id}'
            )
        self._check_variant_image(fields, product_id)
        siblings = [v for v in self.tables["variants"].values() if v["product"] == product_id]
        variant = self._insert(
            "variants",
            {
                "isDefault": not siblings,
                "sortOrder": len(siblings) + 1,
                **dict.fromkeys(("articleCode", "ean", "sku", "title"), ""),
                "hs": None,
                **dict.fromkeys(("priceExcl", "priceIncl", "priceCost", "oldPriceExcl", "oldPriceIncl"), 0),
                "unitPrice": 0,
                "unitUnit": "",
                "stockTracking": "enabled",
                **dict.fromkeys(("stockLevel", "stockAlert", "stockMinimum", "stockSold"), 0),
                "stockBuyMinimum": 1,
                "stockBuyMaximum": 10000,
                "weight": 0,
                "weightUnit": self.weight_unit,
                "volume": 0,
                "volumeValue": 0,
                "volumeUnit": "l",
                "colli": 1,
                **dict.fromkeys(("sizeX", "sizeY", "sizeZ"), 0),
                **dict.fromkeys(("sizeXValue", "sizeYValue", "sizeZValue"), "0"),
                "sizeUnit": "cm",
                "matrix": False,
                "taxType": None,
                "image": False,
                "additionalcost": False,
                "options": [],
                "tax": DEFAULT_TAX_ID,
                **fields,
            },
        )
        self._set_default(variant)
        self._emit("variants", "created", variant)
        self.narrate(f"variant {variant['sku'] or variant['id']} created in product {product_id}")
        return variant

    def _check_variant_image(self, fields: Mapping[str, Any], product_id: int) -> None:
        image_id = fields.get("image")
        if image_id is None or image_id is False:
            return
        image = self.tables["productImages"].get(image_id)
        if image is None or image["product"] != product_id:
            raise ApiError(
                400,
                f"variant image {image_id} is not an image of product {product_id} (see products/{product_id}/images)",
            )

    def _set_default(self, variant: dict[str, Any]) -> None:
        if variant["isDefault"]:
            for other in self.tables["variants"].values():
                if other["product"] == variant["product"] and other is not variant:
                    other["isDefault"] = False

    def _update_variant(self, variant: dict[str, Any], body: Mapping[str, Any]) -> dict[str, Any]:
        fields = self._variant_fields(body)
        if "product" in fields and fields["product"] != variant["product"]:
            raise ApiError(400, "a variant cannot move to another product")
        self._check_variant_image(fields, variant["product"])
        self._touch(variant, fields)
        self._set_default(variant)
        self._emit("variants", "updated", variant)
        self.narrate(f"variant {variant['sku'] or variant['id']} updated: {_changes(fields)}")
        return variant

    def _create_image(self, product: dict[str, Any], body: Mapping[str, Any]) -> dict[str, Any]:
        fields = _typed(body, PRODUCT_IMAGE_FIELDS, "productImage")
        given = [name for name in ("src", "attachment") if name in fields]
        if len(given) != 1:
            raise ApiError(400, "a productImage needs exactly one of src or attachment (an http(s) image URL)")
        source = fields[given[0]]
        split = urlsplit(source)
        if split.scheme not in ("http", "https") or not split.netloc:
            raise ApiError(
                400, f"productImage {given[0]} must be an http(s) URL (the simulator takes no base64 uploads)"
            )
        stem, _, extension = (fields.get("filename") or unquote(split.path.rsplit("/", 1)[-1])).rpartition(".")
        if extension.lower() not in IMAGE_EXTENSIONS:
            stem, extension = f"{stem}.{extension}".strip("."), "jpg"
        filename = f"{slug(stem) or 'image'}.{extension.lower()}"
        file_id, self._next_file_id = self._next_file_id, self._next_file_id + 1
        siblings = self._images_of(product["id"])
        digest = hashlib.md5(source.encode(), usedforsecurity=False).hexdigest()
        image = self._insert(
            "productImages",
            {
                "sortOrder": fields.get("sortOrder", max((i["sortOrder"] for i in siblings), default=0) + 1),
                "extension": filename.rsplit(".", 1)[1],
                "size": 20_000 + int(digest[:6], 16) % 480_000,
                "title": fields.get("title", slug(stem) or "image"),
                "thumb": f"{CDN}/shops/{SHOP_ID}/files/{file_id}/50x50x2/{filename}",
                "src": f"{CDN}/shops/{SHOP_ID}/files/{file_id}/{filename}",
                "product": product["id"],
                "source": source,
            },
        )
        self._touch(product)
        self._emit("products", "updated", product)
        return image

    def _delete_image(self, product: dict[str, Any], image: Mapping[str, Any]) -> None:
        del self.tables["productImages"][image["id"]]
        for variant in self.tables["variants"].values():
            if variant["product"] == product["id"] and variant.get("image") == image["id"]:
                self._touch(variant, {"image": False})
        self._touch(product)
        self._emit("products", "updated", product)

    def _unique_url(self, table: str, fields: Mapping[str, Any]) -> str:
        url = fields.get("url") or slug(fields["title"])
        if any(row["url"] == url for row in self.tables[table].values()):
            url = f"{url}-{self._next_ids[table]}"
        return url

    def _create_brand(self, body: Mapping[str, Any]) -> dict[str, Any]:
        fields = _typed(body, BRAND_FIELDS, "brand")
        if not fields.get("title"):
            raise ApiError(400, "brand title is required")
        row = {"isVisible": True, "content": False, "image": False, **fields, "url": self._unique_url("brands", fields)}
        return self._insert("brands", row)

    def _create_category(self, body: Mapping[str, Any]) -> dict[str, Any]:
        fields = _typed(body, CATEGORY_FIELDS, "category")
        if not fields.get("title"):
            raise ApiError(400, "category title is required")
        parent = None
        if fields.get("parent"):
            parent = self.tables["categories"].get(fields["parent"])
            if parent is None:
                raise ApiError(400, f"category parent {fields['parent']} does not exist")
        siblings = [c for c in self.tables["categories"].values() if c["parent"] == (parent or {}).get("id")]
        category = self._insert(
            "categories",
            {
                "isVisible": True,
                "depth": parent["depth"] + 1 if parent else 1,
                "path": [],
                "type": "category",
                "sortOrder": len(siblings) + 1,
                "sorting": "popular",
                "fulltitle": fields["title"],
                "description": "",
                "content": "",
                "image": False,
                **fields,
                "parent": parent["id"] if parent else None,
                "url": self._unique_url("categories", fields),
            },
        )
        category["path"] = [*(parent["path"] if parent else []), str(category["id"])]
        return category

    def _create_category_link(self, body: Mapping[str, Any]) -> dict[str, Any]:
        fields = _typed(body, CATEGORY_LINK_FIELDS, "categoriesProduct")
        for name, table in (("category", "categories"), ("product", "products")):
            if not fields.get(name) or fields[name] not in self.tables[table]:
                raise ApiError(400, f"categoriesProduct {name} must be an existing {name} id, got {fields.get(name)}")
        for link in self.tables["categoriesProducts"].values():
            if (link["category"], link["product"]) == (fields["category"], fields["product"]):
                raise ApiError(
                    400,
                    f"product {link['product']} is already in category {link['category']} "
                    f"(categoriesProduct {link['id']})",
                )
        in_category = [lk for lk in self.tables["categoriesProducts"].values() if lk["category"] == fields["category"]]
        return self._insert("categoriesProducts", {"sortOrder": len(in_category) + 1, **fields})

    def _update_order(self, order: dict[str, Any], body: Mapping[str, Any]) -> dict[str, Any]:
        changes = _typed(body, ORDER_FIELDS, "order")
        for name, allowed in (
            ("status", ORDER_STATUSES),
            ("paymentStatus", PAYMENT_STATUSES),
            ("shipmentStatus", SHIPMENT_STATUSES),
        ):
            if name in changes and changes[name] not in allowed:
                raise ApiError(400, f"{name} must be one of {', '.join(sorted(allowed))}")
        if order["paymentStatus"] == "cancelled":
            raise ApiError(400, f"order {order['number']} is cancelled and can no longer be updated")
        if changes.get("paymentStatus") == "cancelled":  # seed 004: the delivery is cancelled too
            changes.update(status="cancelled", shipmentStatus="cancelled")
        changes.pop("doNotify", None)
        changes.pop("remark", None)
        self._touch(order, changes)
        self._emit("orders", "updated", order)
        return order

    def _customer_for(self, email: str, first: str, last: str) -> tuple[dict[str, Any], bool]:
        for customer in self.tables["customers"].values():
            if customer["email"].lower() == email.lower():
                return customer, False
        customer = self._insert(
            "customers",
            {
                "email": email,
                "firstname": first,
                "middlename": "",
                "lastname": last,
                "phone": "",
                "mobile": "",
                "isConfirmed": True,
                "remoteId": "",
                "isCompany": False,
                "companyName": "",
                "addressBillingStreet": "Quay St",
                "addressBillingNumber": "12",
                "addressBillingZipcode": "6011",
                "addressBillingCity": "Wellington",
                "addressBillingCountry": COUNTRY,
                "memo": "",
            },
        )
        self._emit("customers", "created", customer)
        return customer, True

    def _place_order(self, checkout: Checkout, allow_backorder: bool) -> dict[str, Any]:
        email, first, last = checkout.email, checkout.firstname, checkout.lastname
        payment_status, shipment_title = checkout.payment_status, checkout.shipment_title
        variants = []
        for line in checkout.lines:
            variant = self.tables["variants"].get(int(line["variant_id"]))
            if variant is None:
                raise ValueError(f"variant {line['variant_id']} does not exist")
            tracked = variant["stockTracking"] == "enabled"
            if tracked and not allow_backorder and variant["stockLevel"] < line["quantity"]:
                raise ValueError(f"variant {variant['sku']} has {variant['stockLevel']} in stock")
            variants.append((variant, int(line["quantity"])))
        method = next((m for m in self.tables["shippingmethods"].values() if m["title"] == shipment_title), None)
        is_pickup = checkout.is_pickup or bool(method and method["isPickup"])
        customer, is_new = self._customer_for(email, first, last)
        shipping = method["priceIncl"] if method else 0.0
        total = round(sum(v["priceIncl"] * q for v, q in variants) + shipping, 2)
        sequence = self._next_ids["orders"] - FIRST_IDS["orders"] + 1
        status = "processing_awaiting_payment"
        if payment_status == "paid":
            status = "processing_awaiting_pickup" if is_pickup else "processing_awaiting_shipment"
        address: dict[str, Any] = {
            "Name": f"{first} {last}".strip(),
            "Street": "Quay St",
            "Number": "12",
            "Extension": "",
        }
        address |= {"Zipcode": "6011", "City": "Wellington", "Region": "", "Country": COUNTRY}
        order = self._insert(
            "orders",
            {
                "number": f"ORD{sequence:05d}",
                "status": status,
                "customStatusId": None,
                "channel": "main",
                "priceCost": round(sum(v["priceCost"] * q for v, q in variants), 2),
                "priceExcl": _excl(total),
                "priceIncl": total,
                "weight": round(sum(v["weight"] * q for v, q in variants), 3),
                "email": email,
                "firstname": first,
                "middlename": "",
                "lastname": last,
                "phone": "",
                "mobile": "",
                "isCompany": False,
                "companyName": "",
                **{f"addressBilling{k}": v for k, v in address.items()},
                **{f"addressShipping{k}": v for k, v in address.items()},
                "paymentId": "",
                "paymentStatus": payment_status,
                "paymentTitle": checkout.payment_title,
                "shipmentId": str(method["id"]) if method else "",
                "shipmentStatus": "not_shipped",
                "shipmentIsPickup": is_pickup,
                "shipmentTitle": shipment_title,
                "shipmentPriceIncl": shipping,
                "shipmentPriceExcl": _excl(shipping),
                "isNewCustomer": is_new,
                "comment": "",
                "memo": "",
                "customer": customer["id"],
            },
        )
        self._order_lines[order["id"]] = []
        for variant, quantity in variants:
            product = self.tables["products"][variant["product"]]
            line = self._insert(
                "orderProducts",
                {
                    "productTitle": product["title"],
                    "variantTitle": variant["title"],
                    "quantityOrdered": quantity,
                    **dict.fromkeys(("quantityInvoiced", "quantityShipped", "quantityRefunded"), 0),
                    "quantityReturned": 0,
                    "articleCode": variant["articleCode"],
                    "ean": variant["ean"],
                    "sku": variant["sku"],
                    "weight": variant["weight"],
                    "priceCost": variant["priceCost"],
                    "basePriceIncl": variant["priceIncl"],
                    "basePriceExcl": variant["priceExcl"],
                    "priceIncl": round(variant["priceIncl"] * quantity, 2),
                    "priceExcl": round(variant["priceExcl"] * quantity, 4),
                    "discountIncl": 0,
                    "discountExcl": 0,
                    "taxRate": TAX_RATE,
                    "product": product["id"],
                    "variant": variant["id"],
                },
            )
            self._order_lines[order["id"]].append(line["id"])
            if variant["stockTracking"] == "enabled":
                self._touch(variant, {"stockLevel": variant["stockLevel"] - quantity})
                variant["stockSold"] += quantity
        self._emit("orders", "created", order)
        return order

    # -- HTTP ----------------------------------------------------------------------------------------

    def _authenticate(self, request: Request) -> bool:
        scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
        try:
            return scheme.lower() == "basic" and base64.b64decode(encoded).decode() == self._credentials
        except (ValueError, UnicodeDecodeError):
            return False

    def _rate_limit(self, now: float) -> RateDecision:
        if not self.limits:
            return RateDecision(True, {})
        full = acquire([*self._windows, *([self._per_second] if self._per_second else [])], now)
        headers = {
            "X-RateLimit-Limit": "/".join(str(w.limit) for w in self._windows),
            "X-RateLimit-Remaining": "/".join(str(w.remaining(now)) for w in self._windows),
            "X-RateLimit-Reset": "/".join(str(math.ceil(w.reset_at(now) - now)) for w in self._windows),
        }
        retry = max((math.ceil(w.reset_at(now) - now) for w in full), default=0)
        return RateDecision(not full, headers, str(max(retry, 1)) if full else "")

    def _injected_retry_after(self, now: float) -> str:
        return "1"

    def _throttle_body(self, request: Request) -> Any:
        return self._error_body(request, 429, "Too Many Requests")

    def _error_body(self, request: Request, status: int, message: str) -> Any:
        return {"error": {"code": status, "method": request.method, "request": request.path, "message": message}}

    def _add_routes(self) -> None:
        def add(method: str, path: str, handler: Callable[[Request, str], Response]) -> None:
            def with_language(request: Request) -> Response:
                lang = request.params["lang"]
                if not re.fullmatch("[a-z]{2}", lang):
                    raise ApiError(404, f"unknown language {lang!r}")
                return handler(request, lang)

            self.router.add(method, "/{lang}/" + path, with_language)

        # Lists first: `categories/{id}` would otherwise take `categories/products.json`.
        for table, filters in self._list_filters().items():
            add("GET", f"{PATHS.get(table, table)}.json", self._list_route(table, filters))
            add("GET", f"{PATHS.get(table, table)}/count.json", self._count_route(table, filters))
        for table in ("products", "variants", "orders", "customers", "shipments", "shippingmethods", "webhooks"):
            add("GET", f"{table}/{{id}}.json", self._get_route(table))
        for table in ("brands", "categories", "categoriesProducts"):
            add("GET", f"{PATHS.get(table, table)}/{{id}}.json", self._get_route(table))
        add("GET", "orders/{id}/products.json", self._order_products_route)
        add("GET", "products/{id}/images.json", self._list_images)
        add("GET", "products/{id}/images/count.json", self._count_images)
        add("GET", "products/{id}/images/{image}.json", self._get_image)
        add(
            "POST", "products/{id}/images.json", self._write_route("productImages", "created", self._create_image_route)
        )
        add("DELETE", "products/{id}/images/{image}.json", self._delete_image_route)
        add("POST", "brands.json", self._write_route("brands", "created", lambda r, b: self._create_brand(b)))
        add(
            "POST", "categories.json", self._write_route("categories", "created", lambda r, b: self._create_category(b))
        )
        add(
            "POST",
            "categories/products.json",
            self._write_route("categoriesProducts", "created", lambda r, b: self._create_category_link(b)),
        )
        add("DELETE", "categories/products/{id}.json", self._delete_category_link)
        add("POST", "products.json", self._write_route("products", "created", lambda r, b: self._create_product(b)))
        add("PUT", "products/{id}.json", self._write_route("products", "updated", self._update_product))
        add("DELETE", "products/{id}.json", self._delete_product)
        add("POST", "variants.json", self._write_route("variants", "created", lambda r, b: self._create_variant(b)))
        add("PUT", "variants/{id}.json", self._write_route("variants", "updated", self._update_variant_route))
        add("DELETE", "variants/{id}.json", self._delete_variant)
        add("PUT", "orders/{id}.json", self._write_route("orders", "updated", self._update_order_route))
        add("POST", "orders/{id}/credit.json", self._credit_order_route)
        add("PUT", "shipments/{id}.json", self._write_route("shipments", "updated", self._update_shipment))
        add(
            "POST",
            "webhooks.json",
            self._write_route("webhooks", "created", lambda r, b: self._create_webhook(b, r.params["lang"])),
        )
        add("PUT", "webhooks/{id}.json", self._write_route("webhooks", "updated", self._update_webhook))
        add("DELETE", "webhooks/{id}.json", self._delete_webhook)

    @staticmethod
    def _list_filters() -> dict[str, dict[str, Callable[[dict[str, Any], str], bool]]]:
        def equals(field: str) -> Callable[[dict[str, Any], str], bool]:
            return lambda row, value: str(row.get(field)).lower() == value.lower()

        return {
            "products": {"brand": equals("brand")},
            "variants": {name: equals(name) for name in ("product", "sku", "ean", "articleCode")},
            "orders": {
                **{name: equals(name) for name in ("status", "paymentStatus", "shipmentStatus", "email", "number")},
                "customerId": equals("customer"),
            },
            "customers": {"email": equals("email")},
            "shipments": {"status": equals("status"), "order": equals("order")},
            "shippingmethods": {},
            "webhooks": {},
            "brands": {"title": equals("title"), "isVisible": equals("isVisible")},
            "categories": {"parent": equals("parent"), "isVisible": equals("isVisible")},
            "categoriesProducts": {"category": equals("category"), "product": equals("product")},
        }

    def _filtered(
        self,
        table: str,
        query: Mapping[str, str],
        filters: Mapping[str, Any],
        rows: list[dict[str, Any]] | None = None,
    ) -> list[dict[str, Any]]:
        rows = list(self.tables[table].values()) if rows is None else rows
        since_id = int_param(query, "since_id")
        if since_id is not None:
            rows = [r for r in rows if r["id"] > since_id]
        for param, field, keep in (
            ("created_at_min", "createdAt", operator.ge),
            ("created_at_max", "createdAt", operator.le),
            ("updated_at_min", "updatedAt", operator.ge),
            ("updated_at_max", "updatedAt", operator.le),
        ):
            value = query.get(param, "").strip()
            # One format is read; a value in another is ignored like an undeclared filter: the whole list comes back.
            if value and FILTER_FORMATS[self.date_filter_format].fullmatch(value):
                bound = parse_iso(value)
                rows = [r for r in rows if keep(parse_iso(r[field]), bound)]
        for name, matches in filters.items():
            if name in query:
                rows = [r for r in rows if matches(r, query[name])]
        return rows

    def _page(self, table: str, rows: list[dict[str, Any]], query: Mapping[str, str], lang: str) -> Response:
        page = int_param(query, "page", 1, minimum=1) or 1
        limit = min(int_param(query, "limit", DEFAULT_LIMIT, minimum=1) or DEFAULT_LIMIT, MAX_LIMIT)
        capped = self.page_cap is not None and page > self.page_cap  # deep paging: looks like the end
        chosen = [] if capped else rows[(page - 1) * limit : page * limit]
        return Response(200, {ENVELOPES[table][1]: [self._render(table, r, lang) for r in chosen]})

    def _list_route(self, table: str, filters: Mapping[str, Any]) -> Callable[[Request, str], Response]:
        return lambda request, lang: self._page(
            table, self._filtered(table, request.query, filters), request.query, lang
        )

    def _count_route(self, table: str, filters: Mapping[str, Any]) -> Callable[[Request, str], Response]:
        return lambda request, lang: Response(200, {"count": len(self._filtered(table, request.query, filters))})

    def _get_route(self, table: str) -> Callable[[Request, str], Response]:
        def handler(request: Request, lang: str) -> Response:
            return Response(
                200, {ENVELOPES[table][0]: self._render(table, self._row(table, request.params["id"]), lang)}
            )

        return handler

    def _write_route(
        self, table: str, action: str, write: Callable[[Request, dict[str, Any]], dict[str, Any]]
    ) -> Callable[[Request, str], Response]:
        singular = ENVELOPES[table][0]

        def handler(request: Request, lang: str) -> Response:
            row = write(request, request.json_object(singular))
            return Response(201 if action == "created" else 200, {singular: self._render(table, row, lang)})

        return handler

    def _order_products_route(self, request: Request, lang: str) -> Response:
        order = self._row("orders", request.params["id"])
        rows = [self.tables["orderProducts"][i] for i in self._order_lines.get(order["id"], [])]
        return Response(200, {"orderProducts": [self._render("orderProducts", r, lang) for r in rows]})

    def _update_product(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        product = self._row("products", request.params["id"])
        fields = _typed(body, PRODUCT_FIELDS, "product")
        self._check_visibility(fields)
        self._check_brand(fields)
        self._touch(product, fields)
        self._emit("products", "updated", product)
        self.narrate(f"product {product['id']} {product['title']!r} updated: {_changes(fields)}")
        return product

    def _delete_product(self, request: Request, lang: str) -> Response:
        product = self._row("products", request.params["id"])
        for table in ("variants", "productImages", "categoriesProducts"):
            for row in [r for r in self.tables[table].values() if r["product"] == product["id"]]:
                del self.tables[table][row["id"]]
        del self.tables["products"][product["id"]]
        self._emit("products", "deleted", product)
        self.narrate(f"product {product['id']} {product['title']!r} deleted")
        return Response(204)

    def _image(self, request: Request) -> tuple[dict[str, Any], dict[str, Any]]:
        product = self._row("products", request.params["id"])
        image = self._row("productImages", request.params["image"])
        if image["product"] != product["id"]:
            raise ApiError(404, f"productImage {image['id']} not found")
        return product, image

    def _product_images(self, request: Request) -> list[dict[str, Any]]:
        product = self._row("products", request.params["id"])
        return self._filtered("productImages", request.query, {}, self._images_of(product["id"]))

    def _list_images(self, request: Request, lang: str) -> Response:
        return self._page("productImages", self._product_images(request), request.query, lang)

    def _count_images(self, request: Request, lang: str) -> Response:
        return Response(200, {"count": len(self._product_images(request))})

    def _get_image(self, request: Request, lang: str) -> Response:
        return Response(200, {"productImage": self._render("productImages", self._image(request)[1], lang)})

    def _create_image_route(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        return self._create_image(self._row("products", request.params["id"]), body)

    def _delete_image_route(self, request: Request, lang: str) -> Response:
        self._delete_image(*self._image(request))
        return Response(204)

    def _delete_category_link(self, request: Request, lang: str) -> Response:
        del self.tables["categoriesProducts"][self._row("categoriesProducts", request.params["id"])["id"]]
        return Response(204)

    def _update_variant_route(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        return self._update_variant(self._row("variants", request.params["id"]), body)

    def _delete_variant(self, request: Request, lang: str) -> Response:
        variant = self._row("variants", request.params["id"])
        del self.tables["variants"][variant["id"]]
        self._emit("variants", "deleted", variant)
        self.narrate(f"variant {variant['sku'] or variant['id']} deleted")
        return Response(204)

    def _credit_order_route(self, request: Request, lang: str) -> Response:
        """A credit (refund) of order lines: `{"credit": {"creditPayment", "creditShipment", "notifyNew",
        "updateStock", "orderProducts": [{"id": order product id, "quantity": n}]}}` (NickTacke/lightspeed-client
        `orderCreditInputSchema`, "docs + Postman-confirmed"; envelope `credit` also in the official PHP client).
        Raises each line's `quantityRefunded`; stock moves only with `updateStock` (default false). Sends
        orders/updated. [I] the answer (`credit` with what was credited, 201) and refusing a credit without
        `orderProducts` (no source shows a credit of the whole order) are ours."""
        order = self._row("orders", request.params["id"])
        if order["paymentStatus"] == "cancelled":
            raise ApiError(400, f"order {order['number']} is cancelled and can no longer be updated")
        body = request.json_object("credit")
        for flag in ("creditPayment", "creditShipment", "notifyNew", "updateStock"):
            if flag in body and not isinstance(body[flag], bool):
                raise ApiError(400, f"credit.{flag} must be a boolean")
        lines = body.get("orderProducts")
        if not isinstance(lines, list) or not lines:
            raise ApiError(400, "credit.orderProducts must list at least one order product")
        own = set(self._order_lines.get(order["id"], []))
        planned: list[tuple[dict[str, Any], int]] = []
        for n, line in enumerate(lines):
            if not isinstance(line, dict) or line.get("id") not in own:
                raise ApiError(400, f"credit.orderProducts[{n}].id is not a line of order {order['number']}")
            row, quantity = self.tables["orderProducts"][line["id"]], line.get("quantity")
            left = row["quantityOrdered"] - row["quantityRefunded"]
            if not isinstance(quantity, int) or isinstance(quantity, bool) or not 0 < quantity <= left:
                raise ApiError(400, f"credit.orderProducts[{n}].quantity must be 1..{left}")
            planned.append((row, quantity))
        amount = 0.0
        for row, quantity in planned:
            self._touch(row, {"quantityRefunded": row["quantityRefunded"] + quantity})
            amount += row["basePriceIncl"] * quantity
        if body.get("updateStock") is True:  # [I] back into the variant's stock, as an order took it
            for row, quantity in planned:
                variant = self.tables["variants"].get(row["variant"])
                if variant is not None and variant["stockTracking"] == "enabled":
                    self._touch(variant, {"stockLevel": variant["stockLevel"] + quantity})
                    self._emit("variants", "updated", variant)
        self._touch(order)
        self._emit("orders", "updated", order)
        self.narrate(f"order {order['number']} credited {amount:.2f} for {sum(q for _, q in planned)} item(s)")
        credit = {
            "order": order["id"],
            "priceIncl": round(amount, 2) if body.get("creditPayment", False) else 0.0,
            "creditPayment": bool(body.get("creditPayment", False)),
            "creditShipment": bool(body.get("creditShipment", False)),
            "orderProducts": [{"id": row["id"], "quantity": q} for row, q in planned],
        }
        return Response(201, {"credit": credit})

    def _update_order_route(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        return self._update_order(self._row("orders", request.params["id"]), body)

    def _update_shipment(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        shipment = self._touch(self._row("shipments", request.params["id"]), _typed(body, SHIPMENT_FIELDS, "shipment"))
        self._emit("shipments", "updated", shipment)
        return shipment

    def _webhook_fields(self, body: Mapping[str, Any]) -> dict[str, Any]:
        fields = _typed(body, WEBHOOK_FIELDS, "webhook")
        checks = (
            ("itemGroup", ITEM_GROUPS),
            ("itemAction", ITEM_ACTIONS),
            ("format", frozenset({"json"})),
        )
        for name, allowed in checks:
            if name in fields and fields[name] not in allowed:
                raise ApiError(400, f"webhook {name} must be one of {', '.join(sorted(allowed))}")
        if "url" in fields:
            if not fields["url"].startswith(("http://", "https://")):
                raise ApiError(400, "webhook url must be an http(s) URL")
            fields["address"] = fields.pop("url")  # written as url, read back as address
        return fields

    def _create_webhook(self, body: dict[str, Any], lang: str) -> dict[str, Any]:
        fields = self._webhook_fields(body)
        missing = [name for name in ("address", "itemGroup", "itemAction") if name not in fields]
        if missing:
            raise ApiError(400, f"webhook needs {', '.join('url' if m == 'address' else m for m in missing)}")
        fields.pop("secret", None)  # NT webhookSchema: docs-only, not present live
        fields.pop("extra", None)
        hook = self._insert("webhooks", {"isActive": True, "format": "json", **fields, "language": lang})
        self.narrate(f"webhook {hook['itemGroup']}/{hook['itemAction']} subscribed")
        return hook

    def _update_webhook(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        return self._touch(self._row("webhooks", request.params["id"]), self._webhook_fields(body))

    def _delete_webhook(self, request: Request, lang: str) -> Response:
        del self.tables["webhooks"][self._row("webhooks", request.params["id"])["id"]]
        return Response(204)
