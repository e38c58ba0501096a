"""Lightspeed eCom (C/E-Series, ex-SEOshop) API client: the calls the sync makes, nothing more.

URLs are `{base}/{language}/{resource}.json`; bodies use singular envelopes (`{"product": {...}}`) and
lists plural ones (`{"products": [...]}`). Auth is HTTP Basic api_key:api_secret, never logged.

Catalog extras: product images are `products/{id}/images` (`productImage(s)`); an image is uploaded from a URL
as `{"productImage": {"attachment": url}}` (the official SEOshop PHP client's form) and eCom re-hosts it, so the
`src` read back is a CDN URL, never the one sent: keep the ids a create returns, do not match images by `src`.
Brands are `brands` (`brand(s)`), categories `categories` (`category`/`categories`); a product joins a category
through a `categories/products` link (`categoriesProduct(s)`). A variant shows one of its product's images: send
`{"image": <product image id>}` (or false) in `update_variant`; it reads back inline (`{"id", "src", ...}`) or false.
Variant `options` are read-only in eCom (option values live in the variant title).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx

from pos_ecom_sync.connectors.http import Params, VendorHttp
from pos_ecom_sync.ratelimit import ECOM_POLICY, RateBudget, ecom_observation

MAX_LIMIT = 250  # eCom's page size cap
MAX_PAGES = 1_000  # 250,000 rows: far past any plan; stops a vendor that ignores `page`

JsonObject = dict[str, Any]


def _list(body: Any, envelope: str) -> list[JsonObject]:
    rows = body.get(envelope) if isinstance(body, dict) else None
    return [row for row in rows if isinstance(row, dict)] if isinstance(rows, list) else []


def _one(body: Any, envelope: str) -> JsonObject:
    obj = body.get(envelope) if isinstance(body, dict) else None
    return obj if isinstance(obj, dict) else {}


def _resource_id(ref: Any) -> int | None:
    """The id in an eCom relation `{"resource": {"id": 123, ...}}` (or a bare id)."""
    if isinstance(ref, dict):
        ref = ref.get("resource", {}).get("id") if isinstance(ref.get("resource"), dict) else ref.get("id")
    return int(ref) if isinstance(ref, int | str) and str(ref).isdigit() else None


def _number(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _iso(moment: datetime) -> str:
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).isoformat()


class EcomClient:
    def __init__(
        self,
        base_url: str,
        api_key: str,
        api_secret: str,
        budget: RateBudget,
        *,
        language: str = "en",
        max_wait_s: float = 2.0,
        client: httpx.Client | None = None,
        transport: httpx.BaseTransport | None = None,
        max_retries: int = 3,
        backoff_s: float = 0.5,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.language = language
        self.http = VendorHttp(
            base_url,
            ECOM_POLICY,
            budget,
            ecom_observation,
            auth=httpx.BasicAuth(api_key, api_secret),
            max_wait_s=max_wait_s,
            client=client,
            transport=transport,
            max_retries=max_retries,
            backoff_s=backoff_s,
            clock=clock,
            sleep=sleep,
        )

    @property
    def calls(self) -> int:
        return self.http.calls

    def close(self) -> None:
        self.http.close()

    def _path(self, resource: str, entity_id: int | str | None = None, sub: str | None = None) -> str:
        parts = [resource]
        if entity_id is not None:
            parts.append(str(int(entity_id)))  # eCom ids are integers; int() refuses anything that could alter the path
        if sub:
            parts.append(sub)
        return f"/{self.language}/{'/'.join(parts)}.json"

    def _all_pages(self, resource: str, envelope: str, params: Params, *, path: str | None = None) -> list[JsonObject]:
        """Every page of a list (`path` when it is not `/{lang}/{resource}.json`, e.g. a sub-resource)."""
        rows: list[JsonObject] = []
        for page in range(1, MAX_PAGES + 1):
            url = path or self._path(resource)
            body = self.http.json("GET", url, params={**params, "page": page, "limit": MAX_LIMIT})
            batch = _list(body, envelope)
            rows.extend(batch)
            if len(batch) < MAX_LIMIT:
                break
        return rows

    # -- orders ---------------------------------------------------------------------------------------

    def list_orders(self, updated_at_min: datetime | None, page: int = 1, limit: int = 250) -> list[JsonObject]:
        """One page of orders updated since `updated_at_min`, sorted by id (pages are stable under updates)."""
        params: Params = {
            "page": page,
            "limit": max(1, min(limit, MAX_LIMIT)),
            "updated_at_min": _iso(updated_at_min) if updated_at_min else None,
        }
        orders = _list(self.http.json("GET", self._path("orders"), params=params), "orders")
        return sorted(orders, key=lambda order: int(order.get("id") or 0))

    def get_order(self, order_id: int) -> JsonObject | None:
        body = self.http.json("GET", self._path("orders", order_id), absent_ok=True)
        return _one(body, "order") if body is not None else None

    def list_order_products(self, order_id: int) -> list[JsonObject]:
        """The order's lines (an unknown order raises NotFound)."""
        return _list(self.http.json("GET", self._path("orders", order_id, "products")), "orderProducts")

    def update_order(self, order_id: int, fields: JsonObject) -> JsonObject:
        return _one(self.http.json("PUT", self._path("orders", order_id), json={"order": fields}), "order")

    def credit_order(self, order_id: int, lines: list[tuple[int, int]]) -> JsonObject:
        """Refund order lines (`(order product id, quantity)`) with a credit: `POST /orders/{id}/credit.json`, body
        `{"credit": {creditPayment, creditShipment, notifyNew, updateStock, orderProducts[{id, quantity}]}}` (the
        NickTacke client's "docs + Postman-confirmed" `orderCreditInputSchema`; the envelope also in the official PHP
        client). The money goes back (`creditPayment`), shipping is not credited, and `updateStock` is off: the POS
        return restocked the items and stock sync carries that to eCom. The answer's shape is undocumented: returned
        as sent back, never relied on. Not retried once sent: the caller re-reads `quantityRefunded` first."""
        credit = {
            "creditPayment": True,
            "creditShipment": False,
            "notifyNew": False,
            "updateStock": False,
            "orderProducts": [{"id": line, "quantity": quantity} for line, quantity in lines],
        }
        body = self.http.json("POST", self._path("orders", order_id, "credit"), json={"credit": credit})
        return _one(body, "credit")

    def get_shipment(self, shipment_id: int) -> JsonObject | None:
        body = self.http.json("GET", self._path("shipments", shipment_id), absent_ok=True)
        return _one(body, "shipment") if body is not None else None

    # -- products and variants ------------------------------------------------------------------------

    def get_product(self, product_id: int) -> JsonObject | None:
        body = self.http.json("GET", self._path("products", product_id), absent_ok=True)
        return _one(body, "product") if body is not None else None

    def list_products_created_since(self, created_at_min: datetime) -> list[JsonObject]:
        """Every product created at or after `created_at_min`, by id (for adopting a create whose answer was lost)."""
        rows = self._all_pages("products", "products", {"created_at_min": _iso(created_at_min)})
        return sorted(rows, key=lambda product: _number(product.get("id")))

    def create_product(self, fields: JsonObject) -> JsonObject:
        return _one(self.http.json("POST", self._path("products"), json={"product": fields}), "product")

    def update_product(self, product_id: int, fields: JsonObject) -> JsonObject:
        return _one(self.http.json("PUT", self._path("products", product_id), json={"product": fields}), "product")

    def delete_product(self, product_id: int) -> bool:
        """Delete a product; False when it was already gone (deletes are idempotent)."""
        return self.http.request("DELETE", self._path("products", product_id), absent_ok=True) is not None

    def list_variants(self, product_id: int | None = None, sku: str | None = None) -> list[JsonObject]:
        """Variants, optionally of one product and/or with one SKU (filters re-applied here)."""
        rows = self._all_pages("variants", "variants", {"product": product_id, "sku": sku})
        if product_id is not None:
            rows = [v for v in rows if _resource_id(v.get("product")) in (None, product_id)]
        if sku is not None:
            rows = [v for v in rows if v.get("sku") == sku]
        return rows

    def list_variants_since(self, since_id: int | None, limit: int = MAX_LIMIT) -> list[JsonObject]:
        """One page of every variant with an id above `since_id`, by id: walks the whole catalog (reconciliation).

        The next page starts after the last id; an empty page is the end (never a short one: a cap lower than
        `limit` would look like the end)."""
        params: Params = {"since_id": since_id, "limit": max(1, min(limit, MAX_LIMIT))}
        rows = _list(self.http.json("GET", self._path("variants"), params=params), "variants")
        return sorted(rows, key=lambda variant: _number(variant.get("id")))

    def create_variant(self, fields: JsonObject) -> JsonObject:
        return _one(self.http.json("POST", self._path("variants"), json={"variant": fields}), "variant")

    def update_variant(self, variant_id: int, fields: JsonObject) -> JsonObject:
        """Partial update. `image` is the id of one of the product's images (or false); `options` is read-only."""
        return _one(self.http.json("PUT", self._path("variants", variant_id), json={"variant": fields}), "variant")

    def delete_variant(self, variant_id: int) -> bool:
        """Delete a variant; False when it was already gone."""
        return self.http.request("DELETE", self._path("variants", variant_id), absent_ok=True) is not None

    # -- product images -------------------------------------------------------------------------------

    def list_product_images(self, product_id: int) -> list[JsonObject]:
        """The product's images in display order (`sortOrder`); an unknown product raises NotFound."""
        path = self._path("products", product_id, "images")
        rows = self._all_pages("products", "productImages", {}, path=path)
        return sorted(rows, key=lambda image: (_number(image.get("sortOrder")), _number(image.get("id"))))

    def create_product_image(self, product_id: int, src: str) -> JsonObject:
        """Upload an image from the URL `src`; it goes after the existing ones. Never retried once sent: a lost
        answer may still have added it, so list before trying again."""
        path = self._path("products", product_id, "images")
        return _one(self.http.json("POST", path, json={"productImage": {"attachment": src}}), "productImage")

    def delete_product_image(self, product_id: int, image_id: int) -> bool:
        """Delete one image; False when it was already gone. Variants showing it are left without an image."""
        path = self._path("products", product_id, f"images/{int(image_id)}")
        return self.http.request("DELETE", path, absent_ok=True) is not None

    # -- brands and categories ------------------------------------------------------------------------

    def list_brands(self) -> list[JsonObject]:
        """Every brand (titles are not unique in eCom: match them yourself)."""
        return self._all_pages("brands", "brands", {})

    def create_brand(self, title: str) -> JsonObject:
        return _one(self.http.json("POST", self._path("brands"), json={"brand": {"title": title}}), "brand")

    def list_categories(self) -> list[JsonObject]:
        """Every category, at any depth (`parent` is a relation or false)."""
        return self._all_pages("categories", "categories", {})

    def create_category(self, title: str) -> JsonObject:
        """A top-level category."""
        return _one(self.http.json("POST", self._path("categories"), json={"category": {"title": title}}), "category")

    def list_category_links(self, product_id: int) -> list[JsonObject]:
        """The product's category links (`categoriesProduct`: id, sortOrder, category and product relations)."""
        rows = self._all_pages("categories/products", "categoriesProducts", {"product": product_id})
        return [link for link in rows if _resource_id(link.get("product")) in (None, product_id)]

    def link_category(self, product_id: int, category_id: int) -> JsonObject:
        """Put the product in the category. Call `list_category_links` first: a link that already exists is refused
        (UpstreamError 400) by our simulator, and what real eCom does then is unconfirmed."""
        link = {"category": int(category_id), "product": int(product_id)}
        body = self.http.json("POST", self._path("categories/products"), json={"categoriesProduct": link})
        return _one(body, "categoriesProduct")

    def unlink_category(self, link_id: int) -> bool:
        """Delete a category link by its own id; False when it was already gone."""
        return self.http.request("DELETE", self._path("categories/products", link_id), absent_ok=True) is not None

    # -- shipping methods -----------------------------------------------------------------------------

    # eCom spells this resource as one word: /shippingmethods.json, envelope `shippingmethod(s)`.

    def list_shipping_methods(self) -> list[JsonObject]:
        return self._all_pages("shippingmethods", "shippingmethods", {})

    def update_shipping_method(self, shipping_method_id: int, fields: JsonObject) -> JsonObject:
        body = self.http.json("PUT", self._path("shippingmethods", shipping_method_id), json={"shippingmethod": fields})
        return _one(body, "shippingmethod")

    # -- webhooks -------------------------------------------------------------------------------------

    def list_webhooks(self) -> list[JsonObject]:
        return self._all_pages("webhooks", "webhooks", {})

    def create_webhook(self, item_group: str, item_action: str, url: str) -> JsonObject:
        webhook = {
            "isActive": True,
            "url": url,
            "format": "json",
            "itemGroup": item_group,
            "itemAction": item_action,
            "language": self.language,
        }
        return _one(self.http.json("POST", self._path("webhooks"), json={"webhook": webhook}), "webhook")
