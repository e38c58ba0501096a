"""Lightspeed Retail X-Series (ex-Vend) API client: the calls the sync makes, nothing more.

API 2.0 collections page by version: `?after=<version>&page_size=N` answers `{"data":[...],
"version":{"min","max"}}` and the next page starts after `version.max`. Sales are created through
API 0.9 (`POST /api/register_sales`). Auth is a bearer token; it never appears in errors or logs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

from pos_ecom_sync.connectors.http import VendorHttp
from pos_ecom_sync.errors import NotFound, UpstreamError
from pos_ecom_sync.ratelimit import XSERIES_POLICY, RateBudget, xseries_observation

CHANGE_FEEDS = frozenset({"products", "inventory", "sales", "customers"})
MAX_PAGE_SIZE = 200  # the 0.x cap; 2.0 accepts more but nothing gains from it under a 350 / 5 min budget
# Walking a whole collection stops here even if the vendor keeps answering full pages (a broken cursor).
MAX_PAGES = 10_000

JsonObject = dict[str, Any]


@dataclass(frozen=True)
class ChangePage:
    """One page of a version-ordered change feed; `max_version` is the cursor for the next page."""

    items: list[JsonObject] = field(default_factory=list)
    max_version: int | None = None


def _segment(value: str) -> str:
    return quote(str(value), safe="")


def _data(body: Any) -> Any:
    """API 2.0 wraps results in `data`; tolerate a bare body."""
    return body.get("data") if isinstance(body, dict) and "data" in body else body


def _rows(body: Any) -> list[JsonObject]:
    rows = _data(body)
    return [row for row in rows if isinstance(row, dict)] if isinstance(rows, list) else []


def _object(body: Any) -> JsonObject:
    obj = _data(body)
    return obj if isinstance(obj, dict) else {}


def _max_version(body: Any) -> int | None:
    version = body.get("version") if isinstance(body, dict) else None
    value = version.get("max") if isinstance(version, dict) else None
    return int(value) if value is not None else None


class XSeriesClient:
    def __init__(
        self,
        base_url: str,
        token: str,
        budget: RateBudget,
        *,
        max_wait_s: float = 2.0,
        client: httpx.Client | None = None,
        transport: httpx.BaseTransport | None = None,
        max_retries: int = 3,
        backoff_s: float = 0.5,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.http = VendorHttp(
            base_url,
            XSERIES_POLICY,
            budget,
            xseries_observation,
            headers={"Authorization": f"Bearer {token}"},
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

    # -- change feeds ---------------------------------------------------------------------------------

    def list_changes(
        self, resource: str, after: int | None, page_size: int = 200, include_deleted: bool = True
    ) -> ChangePage:
        """One page of `resource` rows changed after version `after` (None: from the beginning)."""
        if resource not in CHANGE_FEEDS:
            raise ValueError(f"not an X-Series change feed: {resource!r}")
        body = self.http.json(
            "GET",
            f"/api/2.0/{resource}",
            params={"after": after, "page_size": page_size, "deleted": True if include_deleted else None},
        )
        items = _rows(body)
        max_version = _max_version(body)
        if max_version is None and items:
            max_version = max(int(row["version"]) for row in items if row.get("version") is not None)
        return ChangePage(items, max_version)

    def _walk(self, path: str, page_size: int = MAX_PAGE_SIZE) -> Iterator[JsonObject]:
        """Every row of a version-paged collection."""
        after: int | None = None
        for _ in range(MAX_PAGES):
            body = self.http.json("GET", path, params={"after": after, "page_size": page_size})
            rows = _rows(body)
            yield from rows
            next_after = _max_version(body)
            if len(rows) < page_size or next_after is None or (after is not None and next_after <= after):
                return
            after = next_after

    # -- reference data -------------------------------------------------------------------------------

    def list_outlets(self) -> list[JsonObject]:
        return list(self._walk("/api/2.0/outlets"))

    def list_registers(self) -> list[JsonObject]:
        return list(self._walk("/api/2.0/registers"))

    def list_payment_types(self) -> list[JsonObject]:
        return list(self._walk("/api/2.0/payment_types"))

    # -- products and stock ---------------------------------------------------------------------------

    def get_product(self, product_id: str) -> JsonObject | None:
        body = self.http.json("GET", f"/api/2.0/products/{_segment(product_id)}", absent_ok=True)
        return _object(body) if body is not None else None

    def find_products_by_sku(self, sku: str) -> list[JsonObject]:
        """Products whose SKU is exactly `sku` (filtered again here: the vendor's filter is a convenience)."""
        body = self.http.json("GET", "/api/2.0/products", params={"sku": sku})
        return [row for row in _rows(body) if row.get("sku") == sku]

    def find_products_by_code(self, code: str) -> list[JsonObject]:
        """Live products carrying `code` among their `product_codes` (EAN, UPC...). [I] the search filter name
        `product_code` is ours (the simulator's); the rows are filtered again here."""
        body = self.http.json("GET", "/api/2.0/search", params={"type": "products", "product_code": code})
        return [
            row
            for row in _rows(body)
            if any(str(c.get("code")) == code for c in row.get("product_codes") or [] if isinstance(c, dict))
        ]

    def list_family(self, family_id: str) -> list[JsonObject]:
        """Every row of a family (parent and variants), deleted rows included so a removal carries its version.

        `family_id` is the filter the 2.0 Product schema announces as the successor of `variant_parent_id`.
        """
        body = self.http.json("GET", "/api/2.0/products", params={"family_id": family_id, "deleted": True})
        return [row for row in _rows(body) if row.get("family_id") == family_id]

    def list_product_inventory(self, product_id: str) -> list[JsonObject]:
        """Inventory rows (one per outlet). An unknown product raises NotFound, never an empty list: reading
        "no rows" as zero stock would wipe the online stock.
        """
        body = self.http.json("GET", f"/api/2.0/products/{_segment(product_id)}/inventory")
        return _rows(body)

    # -- customers ------------------------------------------------------------------------------------

    def search_customers(self, email: str) -> list[JsonObject]:
        """Customers with this email (case-insensitive, as buyers type it)."""
        body = self.http.json("GET", "/api/2.0/search", params={"type": "customers", "email": email})
        wanted = email.strip().lower()
        return [row for row in _rows(body) if str(row.get("email") or "").strip().lower() == wanted]

    def create_customer(
        self, first_name: str, last_name: str, email: str, customer_code: str | None = None
    ) -> JsonObject:
        """Never retried once sent (a POST): order import creates customers under its email-index lock."""
        fields = {"first_name": first_name, "last_name": last_name, "email": email}
        if customer_code:
            fields["customer_code"] = customer_code
        return _object(self.http.json("POST", "/api/2.0/customers", json=fields))

    # -- sales ----------------------------------------------------------------------------------------

    def create_register_sale(self, sale: JsonObject) -> JsonObject:
        """Create a sale through API 0.9; returns the `register_sale` object the vendor answers with.

        Never retried once sent: callers make it idempotent by looking the sale up by `source_id` first.
        """
        body = self.http.json("POST", "/api/register_sales", json=sale)
        if isinstance(body, dict) and isinstance(body.get("register_sale"), dict):
            return dict(body["register_sale"])
        return _object(body)

    def get_sale(self, sale_id: str) -> JsonObject | None:
        body = self.http.json("GET", f"/api/2.0/sales/{_segment(sale_id)}", absent_ok=True)
        return _object(body) if body is not None else None

    def find_sale_by_source_id(self, source_id: str) -> JsonObject | None:
        """The sale we created for an external order (our deterministic `source_id`), if any."""
        body = self.http.json("GET", "/api/2.0/search", params={"type": "sales", "source_id": source_id})
        matches = [row for row in _rows(body) if row.get("source_id") == source_id]
        return matches[0] if matches else None

    def list_fulfillments(self, sale_id: str) -> list[JsonObject]:
        body = self.http.json("GET", f"/api/2.0/sales/{_segment(sale_id)}/fulfillments")
        return _rows(body)

    def update_register_sale(self, sale: JsonObject) -> JsonObject:
        """Change an existing sale (its `id` set) through API 0.9: void it, or add a payment.

        Not retried once sent; the status worker re-reads the sale before deciding again, so a repeat is harmless.
        """
        return self.create_register_sale(sale)

    def fulfill_sale(self, sale_id: str, outlet_id: str) -> list[JsonObject]:
        """Complete the sale's fulfillment at `outlet_id` (shipped or picked up, by its type)."""
        body = self.http.json("POST", f"/api/2.0/sales/{_segment(sale_id)}/fulfill", json={"outlet_id": outlet_id})
        return _rows(body)

    def pack_fulfillment(self, fulfillment_id: str, version: int | None) -> JsonObject:
        """Mark a fulfillment PACKED. The path and the optimistic `version` follow the 2027-01 fulfillments API
        (`POST /fulfillments/{id}/pack`, 409 on a stale version); on 2.0 this is inferred, not confirmed."""
        payload: JsonObject = {} if version is None else {"version": version}
        body = self.http.json("POST", f"/api/2.0/fulfillments/{_segment(fulfillment_id)}/pack", json=payload)
        return _object(body)

    # -- webhooks -------------------------------------------------------------------------------------

    def list_webhooks(self) -> list[JsonObject]:
        return _rows(self.http.json("GET", "/api/2.0/webhooks"))

    def _existing_webhook(self, url: str, webhook_type: str) -> JsonObject:
        """The subscription a 409 refers to; looking it up is a courtesy, the 409 already proved it exists."""
        try:
            hooks = self.list_webhooks()
        except (UpstreamError, NotFound):
            hooks = []
        matches = [w for w in hooks if w.get("url") == url and w.get("type") == webhook_type]
        return matches[0] if matches else {"url": url, "type": webhook_type, "active": True}

    def create_webhook(self, url: str, webhook_type: str) -> JsonObject:
        """Subscribe `url` to `webhook_type`. Idempotent: an existing identical subscription (409) is success."""
        response = self.http.request(
            "POST",
            "/api/2.0/webhooks",
            json={"url": url, "active": True, "type": webhook_type},
            accept_statuses=frozenset({409}),
        )
        assert response is not None  # absent_ok is off: a 404 raised
        if response.status_code == 409:
            return self._existing_webhook(url, webhook_type)
        try:
            return _object(response.json()) if response.content else {}
        except ValueError as exc:
            raise UpstreamError("xseries", response.status_code, response.text, "POST", "/api/2.0/webhooks") from exc
