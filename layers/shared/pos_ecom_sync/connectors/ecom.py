"""Lightspeed eCom (C/E-Series, ex-SEOshop) API client: the calls the sync makes, nothing more.

URLs are `{base}/{language}/{resource}.json`; bodies use singular envelopes (`{"product": {...}}`) and
lists plural ones (`{"products": [...]}`). Auth is HTTP Basic api_key:api_secret, never logged.

Catalog extras: product images are `products/{id}/images` (`productImage(s)`); an image is uploaded from a URL
as `{"productImage": {"attachment": url}}` (the official SEOshop PHP client's form) and eCom re-hosts it, so the
`src` read back is a CDN URL, never the one sent: keep the ids a create returns, do not match images by `src`.
Brands are `brands` (`brand(s)`), categories `categories` (`category`/`categories`); a product joins a category
through a `categories/products` link (`categoriesProduct(s)`). Variant `options` are read-only in eCom (option values
live in the variant title).

Points no eCom source settles, and how this client survives either answer (contracts/ecom.json `unverified`):
- Lists are walked by `since_id` (ids ascending), never by deep `page`: NT README / src/core/paginate.ts say offset
  paging is capped on deep pages.
- Date filters are sent as "YYYY-MM-DD HH:MM:SS" in UTC (NT src/core/types.ts; the NT README says ISO 8601). A shop
  that ignores the filter answers the whole list: rows are re-checked here on `updatedAt`/`createdAt`, so a misread
  filter costs calls, never correctness.
- Clearing a product's brand: NT productInputSchema types `brand` as a number. `brand: None` in `update_product`
  sends `false`; if eCom refuses that body, the update is sent again without `brand` (the rest lands, the limit is
  logged and kept in `limits`).
- A variant's image: NT variantInputSchema has no `image` (PHP has a separate `variants/{id}/image` upload
  resource). `image` (a product image id, or false) is sent on the variant; a refusal sends the rest again without
  it, an answer that ignored it is noticed; both are logged, and the variant keeps whatever eCom shows.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from pos_ecom_sync.connectors.http import DEFAULT_MAX_RETRIES, Params, VendorHttp
from pos_ecom_sync.dates import instant_or_none
from pos_ecom_sync.errors import UpstreamError
from pos_ecom_sync.ratelimit import ECOM_POLICY, RateBudget, ecom_observation

MAX_LIMIT = 250  # eCom's page size cap
MAX_PAGES = 1_000  # 250,000 rows: far past any plan; stops a walk that never ends
FILTER_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"  # NT src/core/types.ts ListQuery (see the module docstring)
REFUSED = frozenset({400, 422})  # eCom's validation answers (NT README "Errors")

log = logging.getLogger(__name__)

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


def _utc(moment: datetime) -> datetime:
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


def _filter_time(moment: datetime) -> str:
    return _utc(moment).strftime(FILTER_TIME_FORMAT)


def _stamp(value: Any) -> datetime | None:
    """A row's `createdAt`/`updatedAt` (ISO 8601 with offset); None when absent or unreadable."""
    moment = instant_or_none(value)
    return _utc(moment) if moment else None


def _since(rows: list[JsonObject], field: str, bound: datetime | None) -> list[JsonObject]:
    """Rows whose `field` is at or after `bound` (a row without a readable stamp is kept: callers are idempotent)."""
    if bound is None:
        return rows
    floor = _utc(bound)
    return [row for row in rows if (stamp := _stamp(row.get(field))) is None or stamp >= floor]


def _refused(exc: UpstreamError) -> bool:
    return exc.status in REFUSED


@dataclass(frozen=True)
class OrderPage:
    """One page of the order sweep: the orders updated since the bound (re-checked here), by id, and the `since_id`
    the next page starts after (None: this was the last page)."""

    orders: list[JsonObject]
    next_since_id: int | None


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
        max_retries: int = DEFAULT_MAX_RETRIES,
        backoff_s: float = 0.5,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.language = language
        self.limits: list[str] = []  # vendor limits worked around by this client (also logged)
        self._brand_clear_refused = False  # learnt: eCom refused `brand: false`
        self._variant_image_refused = False  # learnt: eCom refused `image` on a variant
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
        """Every row of a list (`path` when it is not `/{lang}/{resource}.json`, e.g. a sub-resource), walked by
        `since_id` as NT's paginate does: deep `page` paging is capped (NT README). A short page is the end, and so is
        a page that brings no id above the last (a vendor ignoring `since_id` cannot loop us)."""
        rows: dict[int, JsonObject] = {}
        url = path or self._path(resource)
        since_id: int | None = None
        for _ in range(MAX_PAGES):
            body = self.http.json("GET", url, params={**params, "since_id": since_id, "limit": MAX_LIMIT})
            batch = _list(body, envelope)
            for row in batch:
                rows.setdefault(_number(row.get("id")), row)
            top = max((_number(row.get("id")) for row in batch), default=0)
            if len(batch) < MAX_LIMIT or top <= (since_id or 0):
                break
            since_id = top
        return list(rows.values())

    # -- orders ---------------------------------------------------------------------------------------

    def list_orders(self, updated_at_min: datetime | None, since_id: int | None = None, limit: int = 250) -> OrderPage:
        """One page of the orders updated since `updated_at_min`, walked by `since_id` (ids ascending; pages are
        stable under updates, and deep `page` paging is capped). Orders eCom answers despite the bound (a filter it
        ignored or misread) are dropped here; the walk still goes on, so such a shop costs calls, never orders."""
        limit = max(1, min(limit, MAX_LIMIT))
        params: Params = {
            "since_id": since_id,
            "limit": limit,
            "updated_at_min": _filter_time(updated_at_min) if updated_at_min else None,
        }
        rows = sorted(
            _list(self.http.json("GET", self._path("orders"), params=params), "orders"),
            key=lambda order: _number(order.get("id")),
        )
        top = max((_number(order.get("id")) for order in rows), default=0)
        more = len(rows) >= limit and top > (since_id or 0)
        return OrderPage(_since(rows, "updatedAt", updated_at_min), top if more else None)

    def get_order(self, order_id: int) -> JsonObject | None:
        body = self.http.json("GET", self._path("orders", order_id), absent_ok=True)
        return _one(body, "order") if body is not None else None

    def list_order_products(self, order_id: int) -> list[JsonObject]:
        """The order's lines (an unknown order raises NotFound)."""
        return _list(self.http.json("GET", self._path("orders", order_id, "products")), "orderProducts")

    def order_with_lines(self, order_id: int) -> tuple[JsonObject | None, list[JsonObject]]:
        """The order and its lines, read back to back with their two budget slots taken at once
        (`VendorHttp.take_ahead`); (None, []) when eCom has no such order."""
        self.http.take_ahead(2)
        order = self.get_order(order_id)
        if order is None:
            return None, []
        return order, self.list_order_products(order_id)

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
        rows = self._all_pages("products", "products", {"created_at_min": _filter_time(created_at_min)})
        rows = _since(rows, "createdAt", created_at_min)  # a filter eCom ignored brings the whole catalog
        return sorted(rows, key=lambda product: _number(product.get("id")))

    def list_products_since(self, since_id: int | None, limit: int = MAX_LIMIT) -> list[JsonObject]:
        """One page of every product with an id above `since_id`, by id (reconciliation's content compare): as
        `list_variants_since`, an empty page is the end."""
        params: Params = {"since_id": since_id, "limit": max(1, min(limit, MAX_LIMIT))}
        rows = _list(self.http.json("GET", self._path("products"), params=params), "products")
        return sorted(rows, key=lambda product: _number(product.get("id")))

    def create_product(self, fields: JsonObject) -> JsonObject:
        """`brand: None` (or false) means "no brand": a new product has none, so it is not sent."""
        body = {k: v for k, v in fields.items() if not (k == "brand" and v in (None, False))}
        return _one(self.http.json("POST", self._path("products"), json={"product": body}), "product")

    def update_product(self, product_id: int, fields: JsonObject) -> JsonObject:
        """Partial update. `brand: None` (or false) clears the product's brand: sent as `false`, which no source
        documents (NT productInputSchema: brand is a number). If eCom refuses that body, the update goes again
        without `brand`: the other fields land, the brand stays as it was, and the limit is logged (this client
        then stops sending it)."""
        clears_brand = "brand" in fields and fields["brand"] in (None, False)
        body = {**fields, "brand": False} if clears_brand else dict(fields)
        if clears_brand and self._brand_clear_refused:
            body.pop("brand")
            self._limit(f"product {product_id}: brand not cleared (eCom refused brand=false before)")
        path = self._path("products", product_id)
        try:
            return _one(self.http.json("PUT", path, json={"product": body}), "product")
        except UpstreamError as exc:
            if not (clears_brand and "brand" in body and _refused(exc)):
                raise
            body.pop("brand")
            answer = _one(self.http.json("PUT", path, json={"product": body}), "product")
            self._brand_clear_refused = True  # only now: the refusal was the brand's, not another field's
        self._limit(f"product {product_id}: eCom refused brand=false, so its brand could not be cleared")
        return answer

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
        """Create a variant; `image` (a product image id, or false) survives refusal as in `update_variant`."""
        return self._write_variant("POST", self._path("variants"), fields, "new variant")

    def update_variant(self, variant_id: int, fields: JsonObject) -> JsonObject:
        """Partial update; `options` are read-only. `image` (one of the product's image ids, or false) is in no variant
        input source: if eCom refuses the body, it goes again without `image` (the other fields land); if eCom
        answers without the image, it ignored it. Either way the limit is logged and nothing else depends on it."""
        return self._write_variant("PUT", self._path("variants", variant_id), fields, f"variant {variant_id}")

    def set_variant_image(self, variant_id: int, image_id: int | None) -> bool:
        """Show one of the product's images on the variant (None: no image); whether eCom shows it now. A refusal or
        an ignored image is logged (see `update_variant`), never raised: nothing depends on variant images."""
        answer = self.update_variant(variant_id, {"image": image_id if image_id is not None else False})
        return bool(answer) and (answer.get("image") not in (None, False)) == (image_id is not None)

    def _write_variant(self, method: str, path: str, fields: JsonObject, what: str) -> JsonObject:
        body = dict(fields)
        image = body.get("image")
        if "image" in body and self._variant_image_refused:
            body.pop("image")
            self._limit(f"{what}: image not sent (eCom refused variant images before)")
            if not body:
                return {}
        try:
            answer = _one(self.http.json(method, path, json={"variant": body}), "variant")
        except UpstreamError as exc:
            if "image" not in body or not _refused(exc):
                raise
            body.pop("image")
            if not body:  # the image alone was refused
                self._variant_image_refused = True
                self._limit(f"{what}: eCom refused its image")
                return {}
            answer = _one(self.http.json(method, path, json={"variant": body}), "variant")
            self._variant_image_refused = True  # only now: the refusal was the image's, not another field's
            self._limit(f"{what}: eCom refused its image; the other fields were written without it")
            return answer
        if "image" in body and image not in (None, False) and answer and answer.get("image") in (None, False):
            self._limit(f"{what}: eCom ignored its image")
        return answer

    def _limit(self, note: str) -> None:
        """A vendor limit this client worked around: logged, and kept for the caller's report."""
        log.warning("eCom limit: %s", note)
        self.limits.append(note)

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

    def get_brand(self, brand_id: int) -> JsonObject | None:
        """One brand (`GET brands/{id}.json`, NT src/resources/catalog/brand.ts `get`); None when it is gone."""
        body = self.http.json("GET", self._path("brands", brand_id), absent_ok=True)
        return _one(body, "brand") if body is not None else None

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

    def list_category_links_since(self, since_id: int | None, limit: int = MAX_LIMIT) -> list[JsonObject]:
        """One page of every product's category links with an id above `since_id`, by id: `GET categories/products.json
        ?since_id=&limit=` (NT src/resources/joins/categories-product.ts list, NT src/core/types.ts ListQuery
        `since_id`, NT src/core/paginate.ts walks by the highest id seen, so ids grow). Rows at or below `since_id`
        are dropped here, so a link is never seen twice (were the documented filter ignored, the old links it would
        answer are dropped: links missed, never an old one taken for new). Fewer rows than `limit` is the end."""
        params: Params = {"since_id": since_id, "limit": max(1, min(limit, MAX_LIMIT))}
        rows = _list(self.http.json("GET", self._path("categories/products"), params=params), "categoriesProducts")
        rows = [link for link in rows if _number(link.get("id")) > (since_id or 0)]
        return sorted(rows, key=lambda link: _number(link.get("id")))

    def link_category(self, product_id: int, category_id: int) -> JsonObject:
        """Put the product in the category. Call `list_category_links` first: a link that already exists is refused
        (UpstreamError 400) by our simulator, and what real eCom does then is unconfirmed."""
        link = {"category": int(category_id), "product": int(product_id)}
        body = self.http.json("POST", self._path("categories/products"), json={"categoriesProduct": link})
        return _one(body, "categoriesProduct")

    # -- shipping methods -----------------------------------------------------------------------------

    # -- webhooks -------------------------------------------------------------------------------------

    def list_webhooks(self) -> list[JsonObject]:
        return self._all_pages("webhooks", "webhooks", {})

    def create_webhook(self, item_group: str, item_action: str, url: str) -> JsonObject:
        """Subscribe `url` (NT webhookInputSchema: no `language` field; the hook takes the URL path's language)."""
        webhook = {"isActive": True, "url": url, "format": "json", "itemGroup": item_group, "itemAction": item_action}
        return _one(self.http.json("POST", self._path("webhooks"), json={"webhook": webhook}), "webhook")
