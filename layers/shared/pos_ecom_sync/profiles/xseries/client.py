"""Lightspeed Retail X-Series (ex-Vend) API client: the calls the sync makes, nothing more.

API 2.0 collections page by version: `?after=<version>&page_size=N` answers `{"data":[...],
"version":{"min","max"}}` and the next page starts after `version.max`. Sales are created through
API 2026-07 (`POST /api/2026-07/sales` with a sale id we choose); a payment or a void of an existing sale goes
through API 0.9 (`POST /api/register_sales`, as the official Postman collection documents it). Auth is a bearer
token; it never appears in errors or logs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import httpx

from pos_ecom_sync.connectors.http import DEFAULT_MAX_RETRIES, VendorHttp
from pos_ecom_sync.errors import Conflict, NotFound, UpstreamError
from pos_ecom_sync.models.connection import ApiSecrets
from pos_ecom_sync.profiles.base import TokenPairStore
from pos_ecom_sync.profiles.oauth import BearerAuth
from pos_ecom_sync.profiles.xseries.auth import OAuthTokens, TokenProvider
from pos_ecom_sync.ratelimit import XSERIES_POLICY, RateBudget, xseries_observation

CHANGE_FEEDS = frozenset({"products", "inventory", "sales", "customers"})
# Feeds whose list declares `deleted` (X20 `/products`, `/customers`); `/inventory` and `/sales` do not.
DELETED_PARAM_FEEDS = frozenset({"products", "customers"})
# `/search` answers at most this many rows per call and pages by `offset` (X20 `/search` page_size).
SEARCH_PAGE_SIZE = 1000
MAX_PAGE_SIZE = 200  # the 0.x cap; 2.0 accepts more but nothing gains from it under a 350 / 5 min budget
# Walking a whole collection stops here even if the vendor keeps answering full pages (a broken cursor).
MAX_PAGES = 10_000
# The dated Fulfillments API (2026-07): the only API with open fulfilments (type, state, version).
API_2026_07 = "/api/2026-07"
FULFILLMENT_PAGE_SIZE = 100  # its maximum
CONFLICT = frozenset({409})
# Product ids per `GET /price_books/{id}/products?product_ids=` call: keeps the URL short (36-char uuids).
PRICE_BOOK_IDS_PER_CALL = 50

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


def _number(value: Decimal) -> int | float:
    """A JSON number: whole quantities as integers."""
    return int(value) if value == value.to_integral_value() else float(value)


def _max_version(body: Any) -> int | None:
    version = body.get("version") if isinstance(body, dict) else None
    value = version.get("max") if isinstance(version, dict) else None
    return int(value) if value is not None else None


class XSeriesClient:
    def __init__(
        self,
        base_url: str,
        token: str | None,
        budget: RateBudget,
        *,
        token_provider: TokenProvider | None = None,
        max_wait_s: float = 2.0,
        client: httpx.Client | None = None,
        transport: httpx.BaseTransport | None = None,
        max_retries: int = DEFAULT_MAX_RETRIES,
        backoff_s: float = 0.5,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """`token` is a personal token (static); an OAuth connection passes `token_provider` instead, which
        refreshes an expired or refused (401) access token once per call (see `profiles.xseries.auth`)."""
        if token_provider is None and not token:
            raise ValueError("XSeriesClient needs a personal token or a token_provider")

        def take_for_resend(_resend: httpx.Request) -> None:
            budget.acquire(XSERIES_POLICY, max_wait_s=max_wait_s)

        auth = BearerAuth(token_provider, take_for_resend) if token_provider is not None else None
        self.http = VendorHttp(
            base_url,
            XSERIES_POLICY,
            budget,
            xseries_observation,
            headers={} if auth is not None else {"Authorization": f"Bearer {token}"},
            auth=auth,
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
            params={
                "after": after,
                "page_size": page_size,
                "deleted": True if include_deleted and resource in DELETED_PARAM_FEEDS else None,
            },
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

    def list_registers(self) -> list[JsonObject]:
        return list(self._walk("/api/2.0/registers"))

    def list_payment_types(self) -> list[JsonObject]:
        return list(self._walk("/api/2.0/payment_types"))

    def list_users(self) -> list[JsonObject]:
        return list(self._walk("/api/2.0/users"))

    def list_taxes(self) -> list[JsonObject]:
        return list(self._walk("/api/2.0/taxes"))

    # -- products and stock ---------------------------------------------------------------------------

    def get_product(self, product_id: str) -> JsonObject | None:
        body = self.http.json("GET", f"/api/2.0/products/{_segment(product_id)}", absent_ok=True)
        return _object(body) if body is not None else None

    def find_products_by_sku(self, sku: str) -> list[JsonObject]:
        """Products whose SKU is exactly `sku` (filtered again here: the vendor's filter is a convenience)."""
        body = self.http.json("GET", "/api/2.0/products", params={"sku": sku})
        return [row for row in _rows(body) if row.get("sku") == sku]

    def create_product(self, fields: JsonObject) -> str:
        """`POST /api/2.0/products` (X20 "Create product", body `ProductCreateBody`); returns the new product's id.
        The answer is `{"data": [<id>]}` (X20 example and X26: strings; X20's schema says objects, so an object's
        `id` is read too). Never retried once sent: callers look the product up by its SKU before creating."""
        rows = _data(self.http.json("POST", "/api/2.0/products", json=fields))
        first = rows[0] if isinstance(rows, list) and rows else None
        product_id = first.get("id") if isinstance(first, dict) else first
        if not product_id:
            raise UpstreamError(
                "xseries", 200, "the product create answered no product id", "POST", "/api/2.0/products"
            )
        return str(product_id)

    def search_products(self, **attributes: str | bool) -> list[JsonObject]:
        """Every product `GET /api/2.0/search?type=products` finds for declared attributes (sku, supplier_id,
        brand_id, tag_id, product_type_id, variant_parent_id; `deleted`), walking `offset` pages."""
        rows: list[JsonObject] = []
        for page in range(MAX_PAGES):
            params: dict[str, str | int | bool | None] = {
                "type": "products",
                **attributes,
                "page_size": SEARCH_PAGE_SIZE,
                "offset": page * SEARCH_PAGE_SIZE or None,
            }
            found = _rows(self.http.json("GET", "/api/2.0/search", params=params))
            rows.extend(found)
            if len(found) < SEARCH_PAGE_SIZE:
                break
        return rows

    def list_family(self, parent_id: str, parent: JsonObject | None = None) -> list[JsonObject]:
        """The family of `parent_id`: the parent row (`GET /products/{id}`) and every variant
        (`search?type=products&variant_parent_id=`, deleted ones included so a removal carries its version).

        There is no family filter on `/products` (`family_id` is only a field; the list ignores unknown filters and
        would answer the whole catalog), so the rows are checked again here: a row that is not this parent's
        variant is dropped whatever the vendor sends. A caller that just read the parent passes it (one call less).
        """
        if parent is None or str(parent.get("id")) != parent_id:
            parent = self.get_product(parent_id)
        if parent is None:
            return []
        variants = self.search_products(variant_parent_id=parent_id, deleted=True)
        rows = {str(parent["id"]): parent}
        for row in variants:
            if str(row.get("variant_parent_id") or "") == parent_id and row.get("id"):
                rows.setdefault(str(row["id"]), row)
        return list(rows.values())

    def list_product_inventory(self, product_id: str) -> list[JsonObject]:
        """Inventory rows (one per outlet). An unknown product raises NotFound, never an empty list: reading
        "no rows" as zero stock would wipe the online stock.
        """
        body = self.http.json("GET", f"/api/2.0/products/{_segment(product_id)}/inventory")
        return _rows(body)

    # -- price books (the online price) ---------------------------------------------------------------

    def list_price_book_entries(self, price_book_id: str, product_ids: Sequence[str]) -> list[JsonObject]:
        """The entries (X20 `PriceBookProduct`: `price` tax exclusive) of one price book for these products, from
        `GET /api/2.0/price_books/{id}/products?product_ids=a,b` (comma-separated, X20 parameter example), a bounded
        number of ids per call. Re-filtered here: a real API ignoring the filter would answer the whole book. An
        unknown book raises NotFound."""
        wanted = list(dict.fromkeys(product_ids))
        rows: list[JsonObject] = []
        for start in range(0, len(wanted), PRICE_BOOK_IDS_PER_CALL):
            chunk = wanted[start : start + PRICE_BOOK_IDS_PER_CALL]
            path = f"/api/2.0/price_books/{_segment(price_book_id)}/products"
            found = _rows(self.http.json("GET", path, params={"product_ids": ",".join(chunk)}))
            rows += [row for row in found if row.get("product_id") in chunk]
        return rows

    def list_price_book_product_changes(self, after: int | None, page_size: int = MAX_PAGE_SIZE) -> ChangePage:
        """One page of price-book entries (every book) changed after version `after`: `GET /api/2.0/price_book_products`
        (X20: `after`, `before`, `page_size`). Its collection has no `version` envelope (X20
        `PriceBookProductCollection`), so the next cursor is the page's highest row version."""
        body = self.http.json("GET", "/api/2.0/price_book_products", params={"after": after, "page_size": page_size})
        items = _rows(body)
        versions = [int(row["version"]) for row in items if isinstance(row.get("version"), int)]
        return ChangePage(items, _max_version(body) or (max(versions) if versions else None))

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

    def create_sale(self, sale: JsonObject) -> JsonObject:
        """Create a sale with `POST /api/2026-07/sales` (`SaleRequest`, our own `id`); returns the `data` object the
        vendor answers with, which may hold no more than the id ("Returns the ID of the created sale").

        Never retried once sent: the caller chose the sale id first, so it can look the sale up after any failure.
        """
        return _object(self.http.json("POST", "/api/2026-07/sales", json=sale))

    def find_sale(self, sale_id: str) -> JsonObject | None:
        """The sale with this id (`GET /api/2026-07/sales/{id}`, any state), None when the POS has none."""
        body = self.http.json("GET", f"/api/2026-07/sales/{_segment(sale_id)}", absent_ok=True)
        return (_object(body) or None) if body is not None else None

    def get_sale(self, sale_id: str) -> JsonObject | None:
        """The API 2.0 view of a sale (`status`, `line_items`, `payments`, `source_id`...)."""
        body = self.http.json("GET", f"/api/2.0/sales/{_segment(sale_id)}", absent_ok=True)
        return _object(body) if body is not None else None

    def list_fulfillments(self, sale_id: str) -> list[JsonObject]:
        """The sale's fulfilments as 2026-07 `FulfillmentSummaryItem` rows (`type`, `state`, `version`, line items
        with decimal-string quantities). The `sale_id` filter is declared; the rows are filtered again here."""
        rows: list[JsonObject] = []
        for page in range(1, MAX_PAGES + 1):
            params = {"sale_id": sale_id, "page_number": page, "page_size": FULFILLMENT_PAGE_SIZE}
            found = _rows(self.http.json("GET", f"{API_2026_07}/fulfillments", params=params))
            rows += [row for row in found if str(row.get("sale_id")) == sale_id]
            if len(found) < FULFILLMENT_PAGE_SIZE:
                break
        return rows

    def update_register_sale(self, sale: JsonObject) -> JsonObject:
        """Change an existing sale (its `id` set) through API 0.9: void it, or add a payment.

        Not retried once sent; the status worker re-reads the sale before deciding again, so a repeat is harmless.
        """
        body = self.http.json("POST", "/api/register_sales", json=sale)
        if isinstance(body, dict) and isinstance(body.get("register_sale"), dict):
            return dict(body["register_sale"])
        return _object(body)

    def fulfill_sale(self, sale_id: str) -> list[JsonObject]:
        """Complete every fulfilment of the sale (2026-07 `POST /fulfillments/fulfill`, idempotent); answers the
        updated fulfilments' `{id, version}`. A 409 raises Conflict: the caller re-reads."""
        response = self.http.request(
            "POST", f"{API_2026_07}/fulfillments/fulfill", json={"sale_id": sale_id}, accept_statuses=CONFLICT
        )
        assert response is not None  # absent_ok is off: a 404 raised
        if response.status_code == 409:
            raise Conflict(f"xseries: fulfilling sale {sale_id} conflicted: {response.text[:200]}")
        return _rows(response.json()) if response.content else []

    def pack_fulfillment(
        self, fulfillment_id: str, version: int, line_items: Sequence[tuple[str, Decimal]]
    ) -> JsonObject:
        """Pack these quantities of the fulfilment's sale lines (2026-07 `POST /fulfillments/{id}/pack`). `version`
        is the fulfilment's as last read: a stale one is refused with 409, raised as Conflict, so a repeat after a
        lost answer never packs twice. Answers `{id, version}`."""
        body = {
            "version": version,
            "line_items": [{"sale_line_item_id": line, "quantity": _number(qty)} for line, qty in line_items],
        }
        path = f"{API_2026_07}/fulfillments/{_segment(fulfillment_id)}/pack"
        response = self.http.request("POST", path, json=body, accept_statuses=CONFLICT)
        assert response is not None  # absent_ok is off: a 404 raised
        if response.status_code == 409:
            raise Conflict(f"xseries: fulfillment {fulfillment_id} version {version} is stale")
        return _object(response.json()) if response.content else {}

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


def client_for_secrets(
    base_url: str,
    secrets: ApiSecrets,
    budget: RateBudget,
    token_store: Callable[[], TokenPairStore],
    *,
    max_wait_s: float,
) -> XSeriesClient:
    """The client a connection's secrets authorize: a personal token as is, or an OAuth app's pair refreshed through
    `token_store()` (the sync table: one refresher per connection across every invocation, see `xseries_auth`)."""
    if not secrets.pos_uses_oauth:
        assert secrets.pos_access_token is not None  # the secrets model requires one or the other
        return XSeriesClient(base_url, secrets.pos_access_token.get_secret_value(), budget, max_wait_s=max_wait_s)
    assert secrets.pos_client_id and secrets.pos_client_secret and secrets.pos_refresh_token
    tokens = OAuthTokens(
        base_url,
        secrets.pos_client_id.get_secret_value(),
        secrets.pos_client_secret.get_secret_value(),
        secrets.pos_refresh_token.get_secret_value(),
        token_store(),
        access_token=secrets.pos_access_token.get_secret_value() if secrets.pos_access_token else None,
    )
    return XSeriesClient(base_url, None, budget, token_provider=tokens, max_wait_s=max_wait_s)
