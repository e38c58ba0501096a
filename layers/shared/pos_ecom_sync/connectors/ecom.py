"""Lightspeed eCom (C/E-Series, ex-SEOshop) API client: the calls the sync makes, nothing more.

URLs are `{base}/{language}/{resource}.json`; bodies use singular envelopes (`{"product": {...}}`) and
lists plural ones (`{"products": [...]}`). Auth is HTTP Basic api_key:api_secret, never logged.
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

    def _all_pages(self, resource: str, envelope: str, params: Params) -> list[JsonObject]:
        rows: list[JsonObject] = []
        for page in range(1, MAX_PAGES + 1):
            body = self.http.json("GET", self._path(resource), params={**params, "page": page, "limit": MAX_LIMIT})
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

    # -- products and variants ------------------------------------------------------------------------

    def get_product(self, product_id: int) -> JsonObject | None:
        body = self.http.json("GET", self._path("products", product_id), absent_ok=True)
        return _one(body, "product") if body is not None else None

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

    def create_variant(self, fields: JsonObject) -> JsonObject:
        return _one(self.http.json("POST", self._path("variants"), json={"variant": fields}), "variant")

    def update_variant(self, variant_id: int, fields: JsonObject) -> JsonObject:
        return _one(self.http.json("PUT", self._path("variants", variant_id), json={"variant": fields}), "variant")

    def delete_variant(self, variant_id: int) -> bool:
        """Delete a variant; False when it was already gone."""
        return self.http.request("DELETE", self._path("variants", variant_id), absent_ok=True) is not None

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
