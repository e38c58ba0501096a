"""Lightspeed Retail X-Series (ex-Vend) simulator: API 2.0 reads, the 0.9 `register_sales` write, webhooks.

Shapes follow reference/vendor-apis.md §1. Choices the reference leaves open (ours, [I]):
- Version paging: `after` exclusive, `before` exclusive, `page_size` default 100, silently capped at 1000
  (a client must keep paging until an empty page, not stop at a short one it did not ask for).
  One global version counter per retailer, increasing by 1-4 per change of any object.
- PUT /products/{id}: `{"common": {...}, "details": {...}}` writes `common` (name, handle, description, brand_id...)
  to every family member and `details` to this row; a flat body changes this row only.
- Deletes answer 204. DELETE on a family parent deletes the family; on a variant, that variant only.
- Rows carry only their X20 schema's fields (contracts/xseries.json `$defs`): a product's category is its `type`
  (ProductTypeSample), its family the parent plus the rows naming it in `variant_parent_id`; `variant_count` is on
  parents only. Inventory rows have no `deleted_at`, so deleting a product leaves them as they are ([I]).
- Sales: `price`/`tax` are per unit, tax-exclusive. Every status except SAVED, OPEN and VOIDED holds stock
  (taken at the register's outlet, or at a line's `fulfillment_outlet_id`); voiding gives it back.
  A closed status may only move to VOIDED. 0.9 updates are a POST with the sale's `id`.
- Fulfilments are the 2026-07 Fulfillments API's `FulfillmentSummaryItem` (`GET /api/2026-07/fulfillments`): a sale
  for delivery or pickup gets one per (type, outlet) of its lines, `state` OPEN, then STARTED ("In progress", a POS
  user at work), PICKED, PACKED (`POST /fulfillments/{id}/pack`, 409 on a stale `version`), FULFILLED
  (`POST /fulfillments/fulfill {sale_id}` completes all of a sale's; then the sale is DISPATCHED/PICKED_UP_CLOSED).
  [I] numeric-string ids from a counter; a voided sale's fulfilments leave the list (the schema has no cancelled
  state); every fulfilment change saves the sale and sends sale.update (the vendor names no fulfilment webhook).
- Returns (`PUT /api/2.0/sales/{id}/actions/return`, `POST /api/2026-07/...`) start SAVED/parked with SAVED lines,
  taking no stock; the POS user completes (CLOSED: restocked, refunded in cash) or voids them.
- Webhooks: form field `payload` (1.0-shape JSON, no `version`); domain_prefix, environment, retailer_id and type
  only sometimes ("may be present"); signed (`X-Signature`, HMAC-SHA256, hex, keyed with the client secret [I]) when
  an OAuth app created the webhook; retried up to 20 times over 48 h (1.5x back-off [I]). The 1.0 inventory payload
  embeds small `product`/`outlet` objects. 1.0 timestamps are "YYYY-MM-DD HH:MM:SS".
- Auth: the personal token, or OAuth apps (`self.oauth`): `POST /api/1.0/token` grants expiring access tokens and
  rotating refresh tokens; an expired or unknown token answers 401 `{"error": "Access token is not valid"}`.
- Rate limit 0 turns the window off (no X-RateLimit-* headers then).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import random
import threading
import time
import uuid
from bisect import bisect_right
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from email.utils import formatdate
from typing import Any
from urllib.parse import parse_qsl, urlencode

from local_stack.simulators.catalog import FamilySpec, generate_catalog
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
    backoff_schedule,
    int_param,
    iso_utc,
    parse_iso,
    reject_unknown,
)

TAX_RATE = 0.15
VERSION_START = 8_812_345_000
DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE = 100, 1000
TABLES = (
    "products", "inventory", "sales", "customers", "outlets", "registers", "payment_types", "users", "taxes", "brands",
)  # fmt: skip
WEBHOOK_TYPES = frozenset(
    {
        "sale.update",
        "product.update",
        "customer.update",
        "inventory.update",
        "register_closure.create",
        "consignment.send",
        "consignment.receive",
    }
)
SALE_STATUSES = frozenset(
    {
        "SAVED", "OPEN", "CLOSED", "ONACCOUNT", "LAYBY", "ONACCOUNT_CLOSED", "LAYBY_CLOSED", "AWAITING_DISPATCH",
        "AWAITING_PICKUP", "DISPATCHED_CLOSED", "PICKED_UP_CLOSED", "VOIDED", "SERVICE", "SERVICE_CLOSED",
    }
)  # fmt: skip
NO_STOCK_STATUSES = frozenset({"SAVED", "OPEN", "VOIDED"})
CLOSED_STATUSES = frozenset(s for s in SALE_STATUSES if s == "CLOSED" or s.endswith("_CLOSED"))
ATTRIBUTE_OF = {
    "ONACCOUNT": "onaccount",
    "LAYBY": "layby",
    "AWAITING_DISPATCH": "delivery",
    "DISPATCHED": "delivery",
    "AWAITING_PICKUP": "pickup",
    "PICKED_UP": "pickup",
    "SERVICE": "service",
}
# FulfillmentSummaryItem (2026-07 Fulfillments API): `state` in this order, `type`.
FULFILLMENT_STATES = ("OPEN", "STARTED", "PICKED", "PACKED", "FULFILLED")
FULFILLMENT_TYPES = ("PICKUP", "DISPATCH", "SERVICE")
FULFILLMENT_TYPE_OF_STATUS = {"AWAITING_DISPATCH": "DISPATCH", "AWAITING_PICKUP": "PICKUP", "SERVICE": "SERVICE"}
CLOSED_STATUS_OF_TYPE = {"DISPATCH": "DISPATCHED_CLOSED", "PICKUP": "PICKED_UP_CLOSED", "SERVICE": "SERVICE_CLOSED"}
FULFILLMENT_ID_START = 1_947_700_198_720_344_064  # [I] ids are numeric strings (spec example '1947700198720344064')
FULFILLMENTS_PAGE_SIZE, FULFILLMENTS_MAX_PAGE_SIZE = 10, 100
# The update body's `common` part is written to the whole family (vendor-apis.md §1.3).
COMMON_FIELDS = frozenset({"name", "handle", "description", "brand_id", "product_type_id", "tag_ids", "categories"})
DETAIL_FIELDS = frozenset(
    {
        "sku", "price_including_tax", "price_excluding_tax", "supply_price", "active", "is_active", "has_inventory",
        "weight", "weight_unit", "length", "width", "height", "dimensions_unit", "product_codes", "images",
        "source", "source_id", "source_variant_id",
    }
)  # fmt: skip
CUSTOMER_FIELDS = frozenset(
    {
        "first_name", "last_name", "email", "phone", "mobile", "company_name", "customer_code", "customer_group_id",
        "note", "do_not_email", "gender", "date_of_birth", "enable_loyalty", "physical_address_1",
        "physical_address_2", "physical_suburb", "physical_city", "physical_postcode", "physical_state",
        "physical_country_id", "postal_address_1", "postal_address_2", "postal_suburb", "postal_city",
        "postal_postcode", "postal_state", "postal_country_id", "custom_field_1", "custom_field_2",
        "custom_field_3", "custom_field_4",
    }
)  # fmt: skip
# List routes that declare `deleted` (X20 `/products`, `/customers`, `/outlets`, `/registers`); elsewhere it is
# ignored like any undeclared parameter (the list then holds live rows only).
DELETED_PARAM_TABLES = frozenset({"products", "customers", "outlets", "registers"})
# `/search` attributes per type (X20 `/search`: "Supported resource types and attributes"); `-<name>` excludes.
SEARCH_ATTRIBUTES = {
    "sales": ("date_from", "date_to", "status", "invoice_number", "customer_id", "user_id", "outlet_id"),
    "products": ("sku", "supplier_id", "brand_id", "tag_id", "product_type_id", "variant_parent_id"),
    "customers": ("customer_code", "first_name", "last_name", "company_name", "mobile", "phone", "email"),
}
SEARCH_EXCLUDABLE = frozenset({"sku", "supplier_id", "brand_id", "tag_id", "product_type_id", "variant_parent_id"})
# 2026-07 SaleRequest `state` (X26 sales) and its attributes -> the legacy 2.0 status (docs "States and attributes").
SALE_STATES = ("parked", "pending", "voided", "closed")
PENDING_STATUS_OF = {"delivery": "AWAITING_DISPATCH", "pickup": "AWAITING_PICKUP", "onaccount": "ONACCOUNT",
                     "layby": "LAYBY", "service": "SERVICE"}  # fmt: skip
FULFILLMENT_ATTRIBUTE_OF_METHOD = {"DISPATCH": "delivery", "PICKUP": "pickup"}
# What a 2.0 sale shows (X20 `Sale`, `LineItem`, `Payment`); the stored sale keeps more for the 2026-07 view and
# the fulfilments (state, per-line outlet and method).
SALE_V20_FIELDS = frozenset(
    {
        "adjustments", "attributes", "created_at", "customer_id", "deleted_at", "ecom_custom_charges", "id",
        "invoice_number", "invoice_sequence", "line_items", "note", "outlet_id", "payments", "register_id",
        "return_for", "sale_date", "short_code", "source", "source_id", "status", "taxes", "total_loyalty",
        "total_price", "total_tax", "updated_at", "user_id", "version",
    }
)  # fmt: skip
LINE_ITEM_V20_FIELDS = frozenset(
    {
        "cost", "cost_total", "discount", "discount_total", "id", "is_return", "loyalty_value", "note", "price",
        "price_set", "price_total", "product_id", "quantity", "salesperson_id", "sequence", "status", "surcharges",
        "tax", "tax_components", "tax_id", "tax_total",
    }
)  # fmt: skip
PAYMENT_V20_FIELDS = frozenset(
    {"amount", "name", "payment_date", "payment_type_id", "register_id", "retailer_payment_type_id", "surcharge"}
)
OUTLET_NAMES = ("Main Street", "Harbour Road", "Airport Kiosk", "Warehouse", "Pop-up Store", "Mall")
PAYMENT_TYPES = (("Cash", 1), ("Credit Card", 2), ("Lightspeed Payments", 2), ("Bank Deposit", 4), ("Gift Card", 5))
# A product without images shows the placeholder (X20 `GET /products` example `image_url`).
NO_IMAGE_URL = "https://secure.retail.lightspeed.app/images/placeholder/product/no-image-white-standard.png"
DIMENSION_FIELDS = ("weight", "weight_unit", "length", "width", "height", "dimensions_unit")


def _decimal(value: float) -> str:
    """FulfillmentSummaryLineItem quantities are decimal strings ("5.00")."""
    return f"{float(value):.2f}"


def _copy_fulfillment(row: Mapping[str, Any]) -> dict[str, Any]:
    return {**row, "user_ids": list(row["user_ids"]), "line_items": [dict(li) for li in row["line_items"]]}


def _v1_time(iso: str | None) -> str | None:
    return iso.replace("T", " ")[:19] if iso else None


def _money(value: float) -> float:
    return round(value, 5)


def _state_of(status: str) -> tuple[str, list[str]]:
    """Deprecated `status` -> `state` + `attributes` (vendor-apis.md §1.6)."""
    base = status.removesuffix("_CLOSED")
    fixed = {"SAVED": "parked", "OPEN": "pending", "VOIDED": "voided"}
    state = fixed.get(status, "closed" if status in CLOSED_STATUSES else "pending")
    return state, [ATTRIBUTE_OF[base]] if base in ATTRIBUTE_OF else []


class VersionedTable:
    """One collection in version order: a change re-inserts the row at the end, so a page is a bisect."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, Any]] = {}
        self._index: tuple[list[int], list[dict[str, Any]]] | None = None

    def put(self, row: dict[str, Any]) -> None:
        self.rows.pop(row["id"], None)
        self.rows[row["id"]] = row
        self._index = None

    def live(self) -> list[dict[str, Any]]:
        return [r for r in self.rows.values() if r.get("deleted_at") is None]

    def page(self, after: int | None, before: int | None, size: int, deleted: bool) -> list[dict[str, Any]]:
        if self._index is None:
            ordered = list(self.rows.values())
            self._index = ([r["version"] for r in ordered], ordered)
        versions, ordered = self._index
        out: list[dict[str, Any]] = []
        for row in ordered[bisect_right(versions, after) if after is not None else 0 :]:
            if len(out) >= size or (before is not None and row["version"] >= before):
                break
            if deleted or row.get("deleted_at") is None:
                out.append(row)
        return out


def _page_body(rows: list[dict[str, Any]], after: int | None = None) -> dict[str, Any]:
    """A 2.0 collection page. `version.min/max` are required integers on 2.0 (X20 `Version`); what an empty page
    carries is undocumented ([I] unverified): the `after` asked for (0 without one), so a cursor never moves back."""
    versions = [r["version"] for r in rows]
    empty = after or 0
    return {
        "data": [dict(r) for r in rows],
        "version": {"min": min(versions) if rows else empty, "max": max(versions) if rows else empty},
    }


class XSeriesSimulator(VendorSimulator):
    vendor = "xseries"
    lost_sale_answers = 0  # `lose_next_sale_answers`: creates whose answer is dropped after they are applied
    contract_api = "xseries"

    def __init__(
        self,
        *,
        domain_prefix: str = "demo",
        token: str,
        seed: int = 0,
        narrate: Narrate | None = None,
        faults: Faults | None = None,
        rate_limit: int | None = None,
        rate_window_s: float = 300,
        clock: Clock = time.time,
        outlets: int = 2,
        registers: int = 1,
    ) -> None:
        super().__init__(seed=seed, narrate=narrate, faults=faults, clock=clock)
        self.domain_prefix = domain_prefix
        self.token = token
        self.retailer_id = self._uuid()
        self.rate_limit = 300 * registers + 50 if rate_limit is None else rate_limit
        self._window = FixedWindow(self.rate_limit, rate_window_s) if self.rate_limit else None
        self._version = VERSION_START
        self.tables = {name: VersionedTable() for name in TABLES}
        self._inventory_ids: dict[str, dict[str, str]] = {}  # product id -> outlet id -> inventory row id
        self._fulfillments: dict[str, list[dict[str, Any]]] = {}  # sale id -> FulfillmentSummaryItem rows
        self._fulfillment_seq = FULFILLMENT_ID_START
        self._before_pack: list[Callable[[dict[str, Any]], None]] = []  # POS users acting as a pack arrives
        self._stock_taken: set[str] = set()  # sales whose lines are currently out of stock
        self._webhooks: dict[str, dict[str, Any]] = {}
        self.oauth = OAuthApps(domain_prefix, clock, random.Random(f"{seed}:oauth"))  # apps, tokens (personal: token)
        self._webhook_form_rng = random.Random(f"{seed}:webhook-form")  # which optional form fields a delivery has
        self.optional_form_field_rate = OPTIONAL_FORM_FIELD_RATE
        self._attributes: dict[str, str] = {}  # variant attribute name -> id
        self._families = 0
        # False: the token lacks `products:write` (X26 products: "Requires: `products:write` scope"), so a product
        # create is refused with 403.
        self.products_writable = True
        self._seed_retailer(outlets, registers)
        self._add_routes()

    # -- ids, versions, saving ---------------------------------------------------------------------

    def _uuid(self, rng: random.Random | None = None) -> str:
        return str(uuid.UUID(int=(rng or self.rng).getrandbits(128), version=4))

    def _now(self) -> str:
        return iso_utc(self.clock())

    def _save(self, table: str, row: dict[str, Any]) -> dict[str, Any]:
        self._version += self.rng.randint(1, 4)
        row["version"] = self._version
        if "updated_at" in row:
            row["updated_at"] = self._now()
        self.tables[table].put(row)
        return row

    def _new(self, table: str, row: dict[str, Any]) -> dict[str, Any]:
        now = self._now()
        return self._save(table, {**row, "created_at": now, "updated_at": now, "deleted_at": None})

    def _get(self, table: str, row_id: str, *, deleted_ok: bool = False) -> dict[str, Any]:
        row = self.tables[table].rows.get(row_id)
        if row is None or (row.get("deleted_at") and not deleted_ok):
            raise ApiError(404, f"{table.rstrip('s')} {row_id} not found")
        return row

    def _seed_retailer(self, outlets: int, registers: int) -> None:
        for n in range(outlets):
            name = OUTLET_NAMES[n % len(OUTLET_NAMES)] + (
                f" {n // len(OUTLET_NAMES) + 1}" if n >= len(OUTLET_NAMES) else ""
            )
            self._save(
                "outlets",
                {
                    "id": self._uuid(),
                    "name": name,
                    "time_zone": "Pacific/Auckland",
                    "currency": "NZD",
                    "currency_symbol": "$",
                    "display_prices": "inclusive",
                    "physical_address_1": f"{n + 1} Quay St",
                    "physical_address_2": "",
                    "physical_suburb": "",
                    "physical_city": "Wellington",
                    "physical_postcode": "6011",
                    "physical_state": "",
                    "physical_country_id": "NZ",
                    "email": f"outlet{n + 1}@example.com",
                    "attributes": [],
                    "deleted_at": None,
                },
            )
        outlet_ids = list(self.tables["outlets"].rows)
        for n in range(registers):
            self._save(
                "registers",
                {
                    "id": self._uuid(),
                    "name": "Main Register" if n == 0 else f"Register {n + 1}",
                    "outlet_id": outlet_ids[n % len(outlet_ids)],
                    "is_open": True,
                    "invoice_prefix": "" if n == 0 else f"R{n + 1}-",
                    "invoice_suffix": "",
                    "invoice_sequence": 1000,
                    "deleted_at": None,
                },
            )
        for name, type_id in PAYMENT_TYPES:  # `config` only where a type has one (X20 example: Gift Card has none)
            self._save("payment_types", {"id": self._uuid(), "name": name, "type_id": type_id, "deleted_at": None})
        self._new(
            "users",
            {
                "id": self._uuid(),
                "username": "owner",
                "display_name": "Store Owner",
                "email": "owner@example.com",
                "account_type": "admin",
                "enabled": True,
                "is_primary_user": True,
            },
        )
        tax_id = self._uuid()
        rate = {"id": self._uuid(), "name": "GST", "display_name": "GST", "rate": TAX_RATE}
        tax = {"id": tax_id, "name": "GST", "display_name": "GST", "is_default": True, "rates": [rate]}
        self._save("taxes", {**tax, "deleted_at": None})
        for first, last in (("Mira", "Okafor"), ("Tama", "Ngata"), ("Lena", "Berg")):
            email = f"{first.lower()}.{last.lower()}@example.com"
            self._new("customers", self._customer_row({"first_name": first, "last_name": last, "email": email}))

    @property
    def _default_tax(self) -> dict[str, Any]:
        return next(iter(self.tables["taxes"].rows.values()))

    # -- catalog -----------------------------------------------------------------------------------

    def seed_catalog(self, families: int, variants_per_family: int, seed: int = 0) -> None:
        """Add `families` families: a parent row plus `variants_per_family` variant rows each (0 = a plain
        product), and one inventory row per sellable product per outlet. Seeding sends no webhooks."""
        rng = random.Random(f"xseries:{seed}:{self._families}")
        with self.lock:
            specs = generate_catalog(families, variants_per_family, seed, start_index=self._families)
            self._families += families
            for spec in specs:
                self._add_family(spec, rng)
        self.narrate(f"seeded {families} families x {variants_per_family} variants")

    def _brand(self, name: str, rng: random.Random) -> dict[str, Any]:
        for brand in self.tables["brands"].rows.values():
            if brand["name"] == name:
                return brand
        return self._save("brands", {"id": self._uuid(rng), "name": name, "deleted_at": None})  # X20 Brand

    def _attribute_id(self, name: str) -> str:
        return self._attributes.setdefault(name, str(uuid.uuid5(uuid.UUID(self.retailer_id), name)))

    def _family(self, row: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The live rows of `row`'s family: its parent (`variant_parent_id`, or itself) and the parent's variants."""
        parent_id = row["variant_parent_id"] or row["id"]
        return [r for r in self.tables["products"].live() if parent_id in (r["id"], r["variant_parent_id"])]

    def _product_type(self, type_id: str | None) -> dict[str, Any]:
        """The `type` (X20 `ProductTypeSample`, "now product category") of a `product_type_id`; {} for none."""
        if not type_id:
            return {}
        for row in self.tables["products"].rows.values():
            if row["type"].get("id") == type_id:
                return dict(row["type"])
        raise ApiError(400, f"product_type_id {type_id} does not exist")

    def _add_family(self, spec: FamilySpec, rng: random.Random) -> None:
        brand = self._brand(spec.brand, rng)
        category = {"id": str(uuid.uuid5(uuid.UUID(self.retailer_id), spec.category)), "name": spec.category}
        common = {
            "name": spec.name,
            "handle": spec.handle,
            "description": spec.description,
            "brand": {"id": brand["id"], "name": brand["name"]},
            "brand_id": brand["id"],
            "type": category,
            "product_type_id": category["id"],
            "categories": [],
            "tag_ids": [],
            "is_composite": False,
            "source": "USER",
            "source_id": None,
            "source_variant_id": None,
        }
        parent_id = None
        if spec.has_variants:
            first = spec.variants[0]
            parent = self._product_row(rng, common, spec.sku, first, images=spec.images)
            parent.update(
                has_variants=True,
                variant_count=len(spec.variants),
                has_inventory=False,
                product_codes=[{"type": "CUSTOM", "code": spec.sku}],
            )
            parent_id = self._new("products", parent)["id"]
        for variant in spec.variants:
            row = self._product_row(rng, common, variant.sku, variant, images=(variant.image_url,))
            row["variant_parent_id"] = parent_id
            row["variant_options"] = [
                {"id": self._attribute_id(name), "name": name, "value": value} for name, value in variant.options
            ]
            row["variant_name"] = " / ".join([spec.name, *(value for _, value in variant.options)])
            product = self._new("products", row)
            for outlet_id in self.tables["outlets"].rows:
                level = rng.choice((0, 0, -2)) if rng.random() < 0.12 else rng.randint(1, 30)
                self._new_inventory(product, outlet_id, level, rng)

    def _product_row(
        self, rng: random.Random, common: Mapping[str, Any], sku: str, spec: Any, images: Iterable[str]
    ) -> dict[str, Any]:
        image_rows = [
            {"id": self._uuid(rng), "url": url, "sizes": {"original": url, "standard": url, "thumb": url}}
            for url in images
        ]
        length, width, height = spec.dimensions_cm
        return {
            "id": self._uuid(rng),
            **common,
            "sku": sku,
            "variant_name": common["name"],
            "variant_parent_id": None,
            "has_variants": False,  # `variant_count` only on a family parent (X20 examples: absent elsewhere)
            "variant_options": [],
            "product_codes": [{"type": "EAN", "code": spec.ean}],
            "active": True,
            "is_active": True,
            "has_inventory": True,
            "price_including_tax": spec.price_incl,
            "price_excluding_tax": _money(spec.price_incl / (1 + TAX_RATE)),
            "supply_price": spec.supply_price,
            "weight": spec.weight_kg,
            "weight_unit": "KG",
            "length": length,
            "width": width,
            "height": height,
            "dimensions_unit": "CM",
            "images": image_rows,
            "image_url": image_rows[0]["url"] if image_rows else NO_IMAGE_URL,
        }

    def _new_inventory(self, product: dict[str, Any], outlet_id: str, level: int, rng: random.Random) -> None:
        row = {
            "id": self._uuid(rng),
            "product_id": product["id"],
            "outlet_id": outlet_id,
            "inventory_level": level,
            "current_amount": level,
            "average_cost": product["supply_price"],
            "reorder_point": 2,
            "reorder_amount": 10,
        }
        self._inventory_ids.setdefault(product["id"], {})[outlet_id] = row["id"]
        self._save("inventory", row)

    # -- Python API: reads -------------------------------------------------------------------------

    def _rows(self, table: str) -> list[dict[str, Any]]:
        with self.lock:
            return [dict(r) for r in self.tables[table].live()]

    def products(self) -> list[dict[str, Any]]:
        return self._rows("products")

    def outlets(self) -> list[dict[str, Any]]:
        return self._rows("outlets")

    def registers(self) -> list[dict[str, Any]]:
        return self._rows("registers")

    def payment_types(self) -> list[dict[str, Any]]:
        return self._rows("payment_types")

    def customers(self) -> list[dict[str, Any]]:
        return self._rows("customers")

    def sales(self) -> list[dict[str, Any]]:
        return self._rows("sales")

    def inventory(self, product_id: str | None = None) -> list[dict[str, Any]]:
        return [r for r in self._rows("inventory") if product_id is None or r["product_id"] == product_id]

    def level(self, product_id: str, outlet_id: str) -> int:
        with self.lock:
            return int(self._inventory_row(product_id, outlet_id)["inventory_level"])

    def fulfillments(self, sale_id: str) -> list[dict[str, Any]]:
        """The sale's fulfilments, as `GET /api/2026-07/fulfillments?sale_id=` shows them."""
        with self.lock:
            return [_copy_fulfillment(f) for f in self._fulfillments.get(sale_id, [])]

    # -- Python API: changes a retailer makes in the POS --------------------------------------------

    def replace_personal_token(self, token: str) -> None:
        """The retailer deletes the personal token in Setup > Personal tokens and creates another: from now on the
        old one is refused with 401 (test control, not a vendor route)."""
        with self.lock:
            self.token = token
        self.narrate("personal token replaced: the old one is refused from now on")

    def set_inventory(self, product_id: str, outlet_id: str, level: int) -> dict[str, Any]:
        with self.lock:
            row = self._set_level(product_id, outlet_id, level)
        self.narrate(f"inventory of {product_id[:8]} at outlet {outlet_id[:8]} set to {level}")
        return row

    def update_product(self, product_id: str, **fields: Any) -> dict[str, Any]:
        """Edit this one row (a variant's price, or a test's rename); see `update_family` for shared fields."""
        with self.lock:
            row = self._update_product(self._get("products", product_id), fields)
        self.narrate(f"product {row['sku']} updated: {', '.join(sorted(fields))}")
        return row

    def update_family(self, product_id: str, **fields: Any) -> list[dict[str, Any]]:
        """Edit fields the family shares (name, description, brand...): every member changes and is re-sent."""
        with self.lock:
            row = self._get("products", product_id)
            self._update_product(row, {}, fields)
            family = [dict(r) for r in self._family(row)]
        self.narrate(f"family {row['handle']} updated: {', '.join(sorted(fields))}")
        return family

    def delete_product(self, product_id: str) -> None:
        with self.lock:
            row = self._get("products", product_id)
            self._delete_product(row, family=row["has_variants"])
        self.narrate(f"product {row['sku']} deleted")

    # Customers changed in the back office (test controls, not vendor routes: X20 documents `PUT`/`DELETE
    # /customers/{id}`, which the connector never calls). Whether a delete gives the row a new `version`, so that
    # `GET /customers?after=&deleted=true` answers it, is undocumented ([I] unverified): this switch plays both answers.
    customer_delete_moves_version = True

    def update_customer(self, customer_id: str, **fields: Any) -> dict[str, Any]:
        """Edit a customer (e.g. its `email`): a new version, and `customer.update`."""
        with self.lock:
            row = self._get("customers", customer_id)
            reject_unknown(fields, CUSTOMER_FIELDS, "customer")
            row.update(fields)
            self._save("customers", row)
            self._emit_customer(row)
        self.narrate(f"customer {customer_id[:8]} updated: {', '.join(sorted(fields))}")
        return dict(row)

    def delete_customer(self, customer_id: str) -> None:
        with self.lock:
            self._delete_customer(self._get("customers", customer_id))
        self.narrate(f"customer {customer_id[:8]} deleted")

    def merge_customers(self, primary_id: str, duplicate_id: str) -> None:
        """Customers > Merge customers, "Merge and delete customer" (X-Series support, Merging customers): the
        duplicate's sales move to the primary profile and the duplicate is deleted."""
        with self.lock:
            self._get("customers", primary_id)
            duplicate = self._get("customers", duplicate_id)
            for sale in list(self.tables["sales"].rows.values()):
                if sale.get("customer_id") == duplicate_id:
                    sale["customer_id"] = primary_id
                    self._save("sales", sale)
            self._delete_customer(duplicate)
        self.narrate(f"customer {duplicate_id[:8]} merged into {primary_id[:8]} and deleted")

    def _emit_customer(self, row: dict[str, Any]) -> None:
        """`customer.update`: the row with its 1.0 `updated_at` (every webhook payload is in the 1.0 shape)."""
        self._emit("customer.update", {**row, "updated_at": _v1_time(row["updated_at"])})

    def _delete_customer(self, row: dict[str, Any]) -> None:
        row["deleted_at"] = self._now()
        if self.customer_delete_moves_version:
            self._save("customers", row)
            self._emit_customer(row)

    # Price books (X20 `PriceBook`, `PriceBookProduct`): the online price. Whether changing an entry changes its
    # product's `version` (and sends product.update) is undocumented ([I] unverified): this switch plays both answers.
    price_book_change_bumps_product = False

    def _price_table(self, name: str) -> VersionedTable:
        return self.tables.setdefault(name, VersionedTable())

    def add_price_book(self, name: str, *, restrict_to_platform_key: str = "2") -> dict[str, Any]:
        """A price book made in Catalog > Price books (X20 `PriceBook`; "2" = ecommerce, "1" in store, "0" all)."""
        labels = {"0": "All Platforms", "1": "In Store", "2": "Ecommerce"}
        with self.lock:
            self._price_table("price_books")
            book = self._new(
                "price_books",
                {
                    "id": self._uuid(),
                    "name": name,
                    "customer_group_id": str(uuid.uuid5(uuid.UUID(self.retailer_id), "All Customers")),
                    "restrict_to_platform_key": restrict_to_platform_key,
                    "restrict_to_platform_label": labels[restrict_to_platform_key],
                    "valid_from": None,
                    "valid_to": None,
                    "outlet_id": None,
                },
            )
        self.narrate(f"price book {name!r} created")
        return dict(book)

    def set_price_book_price(
        self, price_book_id: str, product_id: str, price: float, *, min_units: float | None = None
    ) -> dict[str, Any]:
        """Set a product's price (tax exclusive, X20 "always tax exclusive") in a price book: one entry per
        product and `min_units`."""
        with self.lock:
            self._price_table("price_books")
            self._get("price_books", price_book_id)
            product = self._get("products", product_id)
            table = self._price_table("price_book_products")  # made on first use: no book, no entries
            entry = next(
                (
                    e
                    for e in table.rows.values()
                    if (e["price_book_id"], e["product_id"], e["min_units"]) == (price_book_id, product_id, min_units)
                    and e["deleted_at"] is None
                ),
                None,
            )
            fields = {"price": _money(price), "loyalty_value": None, "max_units": None}
            if entry is None:
                entry = self._new(
                    "price_book_products",
                    {
                        "id": self._uuid(),
                        "product_id": product_id,
                        "price_book_id": price_book_id,
                        "tax_id": self._default_tax["id"],
                        "min_units": min_units,
                        **fields,
                    },
                )
            else:
                entry = self._save("price_book_products", {**entry, **fields})
            if self.price_book_change_bumps_product:
                self._save("products", product)
                self._emit_product(product)
        self.narrate(f"price of {product['sku']} in price book {price_book_id[:8]} set to {price:.2f} (excl. tax)")
        return dict(entry)

    def add_variant(
        self,
        parent_id: str,
        options: Mapping[str, str],
        *,
        sku: str | None = None,
        price_including_tax: float | None = None,
        levels: Mapping[str, int] | None = None,
    ) -> dict[str, Any]:
        """A new variant in an existing family; `levels` maps outlet id -> stock (default 0 everywhere)."""
        with self.lock:
            parent = self._get("products", parent_id)
            if not parent["has_variants"]:
                raise ValueError(f"{parent['sku']} is not a family parent")
            rng = random.Random(f"variant:{parent_id}:{parent['variant_count']}")
            row = {
                **{
                    k: v
                    for k, v in parent.items()
                    if k not in ("id", "version", "created_at", "updated_at", "variant_count")
                },
                "id": self._uuid(rng),
                "variant_parent_id": parent_id,
                "has_variants": False,
                "has_inventory": True,
                "sku": sku or f"{parent['sku']}-{'-'.join(options.values())}".upper(),
                "variant_options": [{"id": self._attribute_id(k), "name": k, "value": v} for k, v in options.items()],
                "variant_name": " / ".join([parent["name"], *options.values()]),
                "product_codes": [{"type": "CUSTOM", "code": sku or parent["sku"]}],
            }
            if price_including_tax is not None:
                row["price_including_tax"] = price_including_tax
                row["price_excluding_tax"] = _money(price_including_tax / (1 + TAX_RATE))
            product = self._new("products", row)
            for outlet_id in self.tables["outlets"].rows:
                self._new_inventory(product, outlet_id, (levels or {}).get(outlet_id, 0), rng)
            parent["variant_count"] += 1
            self._save("products", parent)
            self._emit_product(product)
            self._emit_product(parent)
        self.narrate(f"variant {product['sku']} added to {parent['sku']}")
        return dict(product)

    def create_sale(
        self,
        lines: Sequence[Mapping[str, Any]],
        *,
        register_id: str | None = None,
        status: str = "CLOSED",
        customer_id: str | None = None,
        note: str = "",
        invoice_number: str | None = None,
        source_id: str | None = None,
        paid: bool = True,
    ) -> dict[str, Any]:
        """An in-store sale (lines: product_id, quantity, optional price excl. tax and fulfillment_outlet_id).
        Raises ApiError like the API would. Paid in cash unless `paid` is false."""
        with self.lock:
            register = register_id or next(iter(self.tables["registers"].rows))
            products = []
            for line in lines:
                product = self._get("products", line["product_id"])
                price = line.get("price", product["price_excluding_tax"])
                products.append({**line, "price": price, "tax": _money(price * TAX_RATE)})
            total = sum(p["quantity"] * (p["price"] + p["tax"]) for p in products)
            cash = next(p["id"] for p in self.tables["payment_types"].rows.values() if p["name"] == "Cash")
            body: dict[str, Any] = {
                "register_id": register,
                "status": status,
                "customer_id": customer_id,
                "note": note,
                "invoice_number": invoice_number,
                "source_id": source_id,
                "register_sale_products": products,
                "register_sale_payments": [{"retailer_payment_type_id": cash, "amount": round(total, 2)}]
                if paid
                else [],
            }
            sale = self._register_sale({k: v for k, v in body.items() if v is not None})
        self.narrate(f"in-store sale {sale['invoice_number']} ({status}) with {len(lines)} line(s)")
        return dict(sale)

    def set_fulfillment_status(self, sale_id: str, state: str, outlet_id: str | None = None) -> None:
        """What staff do on the Fulfillments page: move the sale's fulfilments (at `outlet_id`, or all) to `state`
        (OPEN, STARTED, PICKED, PACKED, FULFILLED); fulfilling all of them closes the sale."""
        with self.lock:
            self._set_fulfillments(self._get("sales", sale_id), state, outlet_id)
        self.narrate(f"fulfillment of sale {sale_id[:8]} set to {state}")

    def start_fulfillment(self, sale_id: str, outlet_id: str | None = None) -> None:
        """A POS user starts picking ("In progress" = STARTED): never synced to eCom."""
        self.set_fulfillment_status(sale_id, "STARTED", outlet_id)

    def pack_fulfillments(self, sale_id: str, outlet_id: str | None = None) -> None:
        """A POS user packs the order (PACKED): for a pickup order, it is now ready to collect."""
        self.set_fulfillment_status(sale_id, "PACKED", outlet_id)

    def before_next_pack(self, act: Callable[[dict[str, Any]], None]) -> None:
        """Test hook: `act(fulfillment)` runs as the next pack request arrives, before its version is checked, as a
        POS user changing the fulfilment at that very moment would (e.g. `start_fulfillment`)."""
        with self.lock:
            self._before_pack.append(act)

    def start_return(self, sale_id: str) -> dict[str, Any]:
        """Sales history > Return items: a parked (SAVED) return of the whole sale, as the return action makes it."""
        with self.lock:
            sale = self._init_return(self._get("sales", sale_id))
        self.narrate(f"return {sale['invoice_number']} of sale {sale_id[:8]} started (parked)")
        return dict(sale)

    def complete_return(self, return_id: str) -> dict[str, Any]:
        """The POS user completes a parked return: refunded in cash, the items go back into stock."""
        with self.lock:
            sale = self._get("sales", return_id)
            if not sale.get("return_for") or sale["status"] != "SAVED":
                raise ApiError(400, f"sale {return_id} is not a parked return")
            cash = next(p["id"] for p in self.tables["payment_types"].rows.values() if p["name"] == "Cash")
            refund = round(sale["total_price"] + sale["total_tax"], 2)
            sale = self._register_sale(
                {
                    "id": return_id,
                    "status": "CLOSED",
                    "register_sale_payments": [{"retailer_payment_type_id": cash, "amount": refund}],
                }
            )
            self._set_line_status(sale, "CONFIRMED")
        self.narrate(f"return {sale['invoice_number']} completed ({refund:.2f} refunded in cash)")
        return dict(sale)

    def void_return(self, return_id: str) -> dict[str, Any]:
        """The POS user abandons a parked return: voided, nothing taken back, nothing refunded."""
        with self.lock:
            sale = self._get("sales", return_id)
            if not sale.get("return_for") or sale["status"] != "SAVED":
                raise ApiError(400, f"sale {return_id} is not a parked return")
            sale = self._register_sale({"id": return_id, "status": "VOIDED"})
        self.narrate(f"parked return {sale['invoice_number']} voided")
        return dict(sale)

    def pay_sale(self, sale_id: str, payment_type_name: str = "Cash") -> dict[str, Any]:
        """Staff take the outstanding amount on the sell screen (the sale keeps its status)."""
        with self.lock:
            sale = self._get("sales", sale_id)
            kind = next(p for p in self.tables["payment_types"].rows.values() if p["name"] == payment_type_name)
            owed = round(sale["total_price"] + sale["total_tax"] - sum(p["amount"] for p in sale["payments"]), 2)
            payments = [
                {k: p[k] for k in ("retailer_payment_type_id", "amount", "payment_date")} for p in sale["payments"]
            ]
            payments.append({"retailer_payment_type_id": kind["id"], "amount": owed})
            sale = self._register_sale({"id": sale_id, "status": sale["status"], "register_sale_payments": payments})
        self.narrate(f"sale {sale['invoice_number']} paid {owed:.2f} on the sell screen ({payment_type_name})")
        return dict(sale)

    def void_sale(self, sale_id: str) -> dict[str, Any]:
        with self.lock:
            sale = self._register_sale({"id": sale_id, "status": "VOIDED"})
        self.narrate(f"sale {sale['invoice_number']} voided")
        return dict(sale)

    def lose_next_sale_answers(self, count: int = 1) -> None:
        """The next `count` creates (`POST /api/2026-07/sales`) are applied, then answered 503 as if the answer was
        lost on the way back: the client cannot tell whether its sale exists."""
        with self.lock:
            self.lost_sale_answers = count

    # -- state changes shared by the Python API and the routes --------------------------------------

    def _inventory_row(self, product_id: str, outlet_id: str) -> dict[str, Any]:
        row_id = self._inventory_ids.get(product_id, {}).get(outlet_id)
        if row_id is None:
            raise ApiError(400, f"product {product_id} has no inventory at outlet {outlet_id}")
        return self.tables["inventory"].rows[row_id]

    def _set_level(self, product_id: str, outlet_id: str, level: int, **extra: Any) -> dict[str, Any]:
        row = self._inventory_row(product_id, outlet_id)
        row.update(inventory_level=level, current_amount=level, **extra)
        self._save("inventory", row)
        self._emit("inventory.update", self._inventory_v1(row))
        return dict(row)

    def _product_changes(self, changes: Mapping[str, Any], allowed: frozenset[str], what: str) -> dict[str, Any]:
        changes = dict(changes)
        reject_unknown(changes, allowed, what)
        if "price_including_tax" in changes and "price_excluding_tax" not in changes:
            changes["price_excluding_tax"] = _money(float(changes["price_including_tax"]) / (1 + TAX_RATE))
        elif "price_excluding_tax" in changes and "price_including_tax" not in changes:
            changes["price_including_tax"] = round(float(changes["price_excluding_tax"]) * (1 + TAX_RATE), 2)
        if "brand_id" in changes:
            brand = self._get("brands", changes["brand_id"]) if changes["brand_id"] else None
            changes["brand"] = {"id": brand["id"], "name": brand["name"]} if brand else {}  # X20 example: {}
        if "product_type_id" in changes:
            changes["type"] = self._product_type(changes["product_type_id"])
        return changes

    def _update_product(
        self, row: dict[str, Any], details: Mapping[str, Any], common: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """`details` change this row only; `common` is written to every member of its family."""
        details = dict(details)
        inventory = details.pop("inventory", None)
        details = self._product_changes(details, COMMON_FIELDS | DETAIL_FIELDS, "product")
        shared = self._product_changes(common or {}, COMMON_FIELDS, "common product")
        family = self._family(row) if shared else []
        for member in family or [row]:
            member.update(shared)
            if member is row:
                member.update(details)
            member["variant_name"] = " / ".join([member["name"], *(o["value"] for o in member["variant_options"])])
            self._save("products", member)
            self._emit_product(member)
        for entry in inventory or []:
            if not isinstance(entry, dict) or "outlet_id" not in entry:
                raise ApiError(400, "each inventory entry needs an outlet_id")
            extra = {k: entry[k] for k in ("reorder_point", "reorder_amount") if k in entry}
            current = self._inventory_row(row["id"], entry["outlet_id"])["inventory_level"]
            self._set_level(row["id"], entry["outlet_id"], int(entry.get("current_amount", current)), **extra)
        return dict(row)

    def _delete_product(self, row: dict[str, Any], *, family: bool) -> None:
        members = self._family(row) if family else []
        now = self._now()
        # Inventory rows stay as they are: X20 `Inventory` has no `deleted_at`, and what the real feed does with a
        # deleted product's rows is undocumented ([I] unverified); the product row carries the deletion.
        for member in members or [row]:
            member["deleted_at"] = now
            self._save("products", member)
            self._emit_product(member)
        parent_id = row["variant_parent_id"]
        if not family and parent_id and parent_id in self.tables["products"].rows:
            parent = self.tables["products"].rows[parent_id]
            parent["variant_count"] = max(0, (parent["variant_count"] or 1) - 1)
            self._save("products", parent)
            self._emit_product(parent)

    def _customer_row(self, body: Mapping[str, Any]) -> dict[str, Any]:
        reject_unknown(body, CUSTOMER_FIELDS, "customer")
        if not isinstance(body.get("first_name"), str) or not isinstance(body.get("last_name"), str):
            raise ApiError(400, "first_name and last_name are required")  # present; the docs do not say non-empty
        blank = dict.fromkeys(CUSTOMER_FIELDS, None)
        code = f"{str(body['first_name'])[:4].upper()}-{self.rng.randrange(36**4):04X}"
        return {
            **blank,
            "id": self._uuid(),
            "customer_code": code,
            "customer_group_id": "grp-all",
            "enable_loyalty": False,
            "do_not_email": False,
            "loyalty_balance": 0,
            "balance": 0,
            "year_to_date": 0,
            **body,
            "name": f"{body['first_name']} {body['last_name']}".strip(),
        }

    # -- sales ---------------------------------------------------------------------------------------

    def _register_sale(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """POST /api/register_sales: create, or update the sale named by `id`."""
        status = body.get("status", "CLOSED")
        if status not in SALE_STATUSES or status == "OPEN":  # X20 `Sale.status` has no OPEN
            raise ApiError(400, f"status must be one of {', '.join(sorted(SALE_STATUSES - {'OPEN'}))}")
        if body.get("id"):
            sale = self._update_sale(self._get("sales", str(body["id"])), body, status)
        else:
            sale = self._create_sale(body, status)
        return self._commit_sale(sale)

    def _commit_sale(self, sale: dict[str, Any]) -> dict[str, Any]:
        """Stock, state, fulfilments, save, `sale.update`: what every sale write ends with."""
        self._apply_stock(sale)
        sale["state"], sale["attributes"] = _state_of(sale["status"])
        if sale["status"] in ("AWAITING_DISPATCH", "AWAITING_PICKUP") and not self._fulfillments.get(sale["id"]):
            self._open_fulfillments(sale)
        self._save("sales", sale)
        self._emit("sale.update", self._sale_v09(sale))
        return sale

    def _create_sale_2026(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """A 2026-07 `SaleRequest` as a sale: validated as the spec requires (`source.author_id`, `state`; per line
        `product.id`, `quantity`, `pricing.price`, `tax.id` + `tax.amount`; per payment `amount`, `type.config_id`),
        then stored in the shape the 2.0 routes show. A user-provided `id` that already exists is refused with 400
        ([I] unverified: the spec does not say what a duplicate id gets; a refusal is the most plausible answer, as
        `PUT /sales/{id}` is the documented update)."""
        source = body.get("source")
        if not isinstance(source, dict) or not isinstance(source.get("author_id"), str):
            raise ApiError(400, "source.author_id is required")
        if source["author_id"] not in self.tables["users"].rows:
            raise ApiError(400, f"source.author_id {source['author_id']} is not a user of this retailer")
        state = body.get("state")
        if state not in SALE_STATES:
            raise ApiError(400, f"state is required and must be one of {', '.join(SALE_STATES)}")
        sale_id = body.get("id")
        if sale_id is not None:
            try:
                sale_id = str(uuid.UUID(str(sale_id)))
            except ValueError as exc:
                raise ApiError(400, "id must be a UUID") from exc
            if sale_id in self.tables["sales"].rows:
                raise ApiError(400, f"a sale with id {sale_id} already exists")
        lines = body.get("line_items") or []
        if not isinstance(lines, list):
            raise ApiError(400, "line_items must be a list")
        items = [self._line_item_2026(n, line) for n, line in enumerate(lines)]
        payments = body.get("payments") or []
        if not isinstance(payments, list):
            raise ApiError(400, "payments must be a list")
        legacy_payments = [self._payment_2026(n, payment) for n, payment in enumerate(payments)]
        register_id = source.get("register_id") or next(iter(self.tables["registers"].rows))  # [I] when none is named
        legacy = {
            "register_id": register_id,
            "user_id": source["author_id"],
            "customer_id": body.get("customer_id"),
            "invoice_number": body.get("invoice_number"),
            "source_id": source.get("id"),
            "note": body.get("note", ""),
            "sale_date": body.get("date"),
            "register_sale_products": items,
            "register_sale_payments": legacy_payments,
        }
        sale = self._create_sale(legacy, self._status_of(state, body.get("attributes"), lines), sale_id=sale_id)
        for line, item in zip(sale["line_items"], lines, strict=True):
            metadata = item.get("_metadata") if isinstance(item.get("_metadata"), dict) else {}
            line["_metadata"] = {k: metadata[k] for k in ("fulfillment_method",) if k in metadata}
            line["fulfilment_outlet_id"] = line["fulfillment_outlet_id"]
        sale["source_type"] = source.get("type")
        if body.get("fulfillment_outlet_id"):
            sale["fulfillment_outlet_id"] = body["fulfillment_outlet_id"]
        if isinstance(body.get("fulfillment_details"), list):
            sale["fulfillment_details"] = body["fulfillment_details"]
        return self._commit_sale(sale)

    @staticmethod
    def _status_of(state: str, attributes: Any, lines: Sequence[Any]) -> str:
        """2026-07 state + attributes -> the legacy status (docs "States and attributes"). Without a fulfilment
        attribute, the lines' `_metadata.fulfillment_method` names it ([I]: the spec says only "create only")."""
        named = [a for a in attributes or [] if isinstance(a, str)]
        if "pickup" in named and "delivery" in named:
            raise ApiError(400, "attributes pickup and delivery are mutually exclusive")
        if not any(a in ("pickup", "delivery", "service") for a in named):
            methods = {
                str(line["_metadata"].get("fulfillment_method"))
                for line in lines
                if isinstance(line, dict) and isinstance(line.get("_metadata"), dict)
            }
            named += [attribute for m, attribute in FULFILLMENT_ATTRIBUTE_OF_METHOD.items() if m in methods]
        if state == "parked":
            return "SAVED"
        if state == "voided":
            return "VOIDED"
        kind = next((a for a in ("delivery", "pickup", "service", "onaccount", "layby") if a in named), None)
        if state == "closed":
            base = PENDING_STATUS_OF.get(kind or "", "CLOSED")
            return {"AWAITING_DISPATCH": "DISPATCHED_CLOSED", "AWAITING_PICKUP": "PICKED_UP_CLOSED"}.get(
                base, base if base == "CLOSED" else f"{base}_CLOSED"
            )
        return PENDING_STATUS_OF.get(kind or "", "OPEN")  # pending without an attribute: the legacy OPEN

    def _line_item_2026(self, n: int, line: Any) -> dict[str, Any]:
        """A `SaleLineItem` as the legacy line `_sale_line` reads."""
        where = f"line_items[{n}]"
        if not isinstance(line, dict):
            raise ApiError(400, f"{where} must be an object")
        product, pricing, tax = line.get("product"), line.get("pricing"), line.get("tax")
        if not isinstance(product, dict) or not isinstance(product.get("id"), str):
            raise ApiError(400, f"{where}.product.id is required")
        if "quantity" not in line:
            raise ApiError(400, f"{where}.quantity is required")
        if not isinstance(pricing, dict) or "price" not in pricing:
            raise ApiError(400, f"{where}.pricing.price is required")
        if not isinstance(tax, dict) or not isinstance(tax.get("id"), str) or "amount" not in tax:
            raise ApiError(400, f"{where}.tax.id and {where}.tax.amount are required")
        if tax["id"] not in self.tables["taxes"].rows:
            raise ApiError(400, f"{where}.tax.id {tax['id']} is not a tax of this retailer")
        if not isinstance(tax["amount"], int | float) or isinstance(tax["amount"], bool):
            raise ApiError(400, f"{where}.tax.amount must be a number")
        legacy = {
            "product_id": product["id"],
            "quantity": line["quantity"],
            "price": pricing["price"],
            "tax": tax["amount"],
            "tax_id": tax["id"],
        }
        if line.get("fulfilment_outlet_id"):
            legacy["fulfilment_outlet_id"] = line["fulfilment_outlet_id"]
        return legacy

    def _payment_2026(self, n: int, payment: Any) -> dict[str, Any]:
        """A `SalePayment` as the legacy payment `_payments` reads."""
        kind = payment.get("type") if isinstance(payment, dict) else None
        if not isinstance(kind, dict) or not isinstance(kind.get("config_id"), str) or "amount" not in payment:
            raise ApiError(400, f"payments[{n}] needs amount and type.config_id")
        return {
            "retailer_payment_type_id": kind["config_id"],
            "amount": payment["amount"],
            "payment_date": payment.get("date"),
        }

    def _create_sale(self, body: Mapping[str, Any], status: str, sale_id: str | None = None) -> dict[str, Any]:
        register = self.tables["registers"].rows.get(str(body.get("register_id")))
        if register is None:
            raise ApiError(400, f"register_id {body.get('register_id')!r} does not exist")
        if body.get("customer_id") and body["customer_id"] not in self.tables["customers"].rows:
            raise ApiError(400, f"customer_id {body['customer_id']} does not exist")
        lines = [self._sale_line(n, line, register) for n, line in enumerate(body.get("register_sale_products", []))]
        payments = self._payments(register["id"], body.get("register_sale_payments", []))
        register["invoice_sequence"] += 1
        self._save("registers", register)
        sale_id = sale_id or self._uuid()
        now = self._now()
        sale = {
            "id": sale_id,
            "outlet_id": register["outlet_id"],
            "register_id": register["id"],
            "user_id": body.get("user_id") or next(iter(self.tables["users"].rows)),
            "customer_id": body.get("customer_id"),
            "invoice_number": str(
                body.get("invoice_number") or f"{register['invoice_prefix']}{register['invoice_sequence']}"
            ),
            "invoice_sequence": register["invoice_sequence"],
            "source": "USER",
            "source_id": body.get("source_id"),
            "status": status,
            "note": body.get("note", ""),
            "short_code": sale_id[:6],
            "return_for": body.get("return_for"),
            "total_price": round(sum(li["price_total"] for li in lines), 2),
            "total_tax": round(sum(li["tax_total"] for li in lines), 2),
            "total_loyalty": 0,
            "sale_date": body.get("sale_date") or now,
            "created_at": now,
            "updated_at": now,
            "deleted_at": None,
            "line_items": lines,
            "payments": [],
            "taxes": [],
            "attributes": [],
        }
        sale["taxes"] = [{"id": self._default_tax["id"], "tax": sale["total_tax"]}]
        sale["payments"] = payments
        return sale

    def _sale_line(self, n: int, line: Any, register: Mapping[str, Any]) -> dict[str, Any]:
        if not isinstance(line, dict) or not isinstance(line.get("product_id"), str):
            raise ApiError(400, f"register_sale_products[{n}] needs a product_id")
        product = self.tables["products"].rows.get(line["product_id"])
        if product is None or product["deleted_at"]:
            raise ApiError(400, f"register_sale_products[{n}]: product_id {line['product_id']} does not exist")
        if product["has_variants"]:
            raise ApiError(400, f"register_sale_products[{n}]: {product['sku']} is a family parent, sell a variant")
        quantity, price = line.get("quantity"), line.get("price", product["price_excluding_tax"])
        if not isinstance(quantity, int | float) or isinstance(quantity, bool) or quantity == 0:
            raise ApiError(400, f"register_sale_products[{n}]: quantity must be a non-zero number")
        if not isinstance(price, int | float) or isinstance(price, bool):
            raise ApiError(400, f"register_sale_products[{n}]: price must be a number")
        tax = float(line.get("tax", _money(price * TAX_RATE)))
        outlet = line.get("fulfillment_outlet_id") or line.get("fulfilment_outlet_id") or register["outlet_id"]
        if outlet not in self.tables["outlets"].rows:
            raise ApiError(400, f"register_sale_products[{n}]: outlet {outlet} does not exist")
        return {
            "id": self._uuid(),
            "product_id": product["id"],
            "tax_id": line.get("tax_id") or self._default_tax["id"],
            "quantity": quantity,
            "price": price,
            "cost": product["supply_price"],
            "discount": 0,
            "loyalty_value": 0,
            "price_set": True,
            "sequence": n,
            "note": line.get("note"),
            "status": "CONFIRMED",
            "tax_components": [{"rate_id": self._default_tax["id"], "total_tax": round(tax * quantity, 2)}],
            "price_total": round(price * quantity, 2),
            "tax_total": round(tax * quantity, 2),
            "is_return": quantity < 0,
            "fulfillment_outlet_id": outlet,
            "unit_price": price,
            "unit_tax": tax,
        }

    def _payments(self, register_id: str, payments: Any) -> list[dict[str, Any]]:
        if not isinstance(payments, list):
            raise ApiError(400, "register_sale_payments must be a list")
        rows = []
        for n, payment in enumerate(payments):
            if not isinstance(payment, dict):
                raise ApiError(400, f"register_sale_payments[{n}] must be an object")
            kind = self.tables["payment_types"].rows.get(str(payment.get("retailer_payment_type_id")))
            if kind is None:
                raise ApiError(400, f"register_sale_payments[{n}]: unknown retailer_payment_type_id")
            if not isinstance(payment.get("amount"), int | float):
                raise ApiError(400, f"register_sale_payments[{n}]: amount must be a number")
            rows.append(
                {
                    "id": self._uuid(),
                    "name": kind["name"],
                    "register_id": register_id,
                    "retailer_payment_type_id": kind["id"],
                    "payment_type_id": str(kind["type_id"]),  # X20 `Payment.payment_type_id`: a string
                    "payment_date": payment.get("payment_date") or self._now(),
                    "amount": payment["amount"],
                    "surcharge": {"amount": 0.0},  # X20 `SaleSurcharge` object
                }
            )
        return rows

    def _update_sale(self, sale: dict[str, Any], body: Mapping[str, Any], status: str) -> dict[str, Any]:
        if sale["status"] == "VOIDED":
            raise ApiError(400, "a voided sale cannot be changed")
        if sale["status"] in CLOSED_STATUSES and status not in (sale["status"], "VOIDED"):
            raise ApiError(400, f"a {sale['status']} sale can only be voided")
        sent = body.get("register_sale_products")
        if sent is not None and [(p.get("product_id"), p.get("quantity")) for p in sent] != [
            (li["product_id"], li["quantity"]) for li in sale["line_items"]
        ]:
            raise ApiError(400, "the simulator does not change the lines of an existing sale")
        if "register_sale_payments" in body:
            sale["payments"] = self._payments(sale["register_id"], body["register_sale_payments"])
        for key in ("note", "customer_id", "invoice_number"):
            if key in body:
                sale[key] = body[key]
        sale["status"] = status
        if status == "VOIDED":
            self._void_fulfillments(sale)
        return sale

    def _apply_stock(self, sale: dict[str, Any]) -> None:
        """Take the lines out of stock when the status holds stock, give them back when it no longer does."""
        holds, taken = sale["status"] not in NO_STOCK_STATUSES, sale["id"] in self._stock_taken
        if holds == taken:
            return
        sign = -1 if holds else 1
        for line in sale["line_items"]:
            outlet = line["fulfillment_outlet_id"]
            current = self._inventory_row(line["product_id"], outlet)["inventory_level"]
            self._set_level(line["product_id"], outlet, current + sign * line["quantity"])
        (self._stock_taken.add if holds else self._stock_taken.discard)(sale["id"])

    def _open_fulfillments(self, sale: dict[str, Any]) -> None:
        """Open the fulfilments of a sale made for delivery or pickup: one per (type, outlet) of its lines, OPEN.

        A line's outlet is its `fulfilment_outlet_id` (2026-07), else the sale's `fulfillment_outlet_id`, else the
        register's outlet; its type is its `_metadata.fulfillment_method` (2026-07, create only), else the sale's
        (AWAITING_DISPATCH -> DISPATCH, AWAITING_PICKUP -> PICKUP). Called again, it opens nothing new."""
        if self._fulfillments.get(sale["id"]):
            return
        register = self.tables["registers"].rows.get(str(sale.get("register_id")))
        default_outlet = sale.get("fulfillment_outlet_id") or (register or {}).get("outlet_id") or sale["outlet_id"]
        default_type = FULFILLMENT_TYPE_OF_STATUS.get(str(sale.get("status")))
        details = {d.get("type"): d for d in sale.get("fulfillment_details") or [] if isinstance(d, dict)}
        groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for line in sale["line_items"]:
            metadata = line.get("_metadata") if isinstance(line.get("_metadata"), dict) else {}
            kind = metadata.get("fulfillment_method") or default_type
            if kind is None or float(line.get("quantity") or 0) <= 0:
                continue
            outlet = line.get("fulfilment_outlet_id") or line.get("fulfillment_outlet_id") or default_outlet
            groups.setdefault((kind, outlet), []).append(line)
        now = self._now()
        rows = []
        for (kind, outlet), lines in groups.items():
            self._fulfillment_seq += 1
            detail = details.get(kind) or {}
            row: dict[str, Any] = {
                "id": str(self._fulfillment_seq),
                "outlet_id": outlet,
                "sale_id": sale["id"],
                "type": kind,
                "state": "OPEN",
                "user_ids": [],
                "note": str(detail.get("note") or ""),
                "created_at": now,
                "updated_at": now,
                "version": 1,
                "line_items": [
                    {
                        "sale_line_item_id": li["id"],
                        "product_id": li.get("product_id") or (li.get("product") or {}).get("id"),
                        "quantity": _decimal(li["quantity"]),
                        "picked_quantity": _decimal(0),
                        "packed_quantity": _decimal(0),
                        "fulfilled_quantity": _decimal(0),
                    }
                    for li in lines
                ],
            }
            if kind == "DISPATCH":
                row["shipping_address_id"] = detail.get("shipping_address_id")
            rows.append(row)
        self._fulfillments[sale["id"]] = rows

    def _void_fulfillments(self, sale: dict[str, Any]) -> None:
        """A voided sale has nothing left to fulfil: its fulfilments leave the list ([I]: no cancelled state)."""
        self._fulfillments.pop(sale["id"], None)

    def _change_fulfillment(self, fulfillment: dict[str, Any], state: str) -> None:
        """Move one fulfilment to `state`, its line quantities with it, and bump its version."""
        for line in fulfillment["line_items"]:
            quantity, fulfilled = float(line["quantity"]), float(line["fulfilled_quantity"])
            if state == "FULFILLED":
                line["fulfilled_quantity"] = _decimal(quantity)
            elif state == "PACKED":
                line["packed_quantity"] = _decimal(quantity - fulfilled)
            elif state == "PICKED":
                line["picked_quantity"] = _decimal(quantity - fulfilled)
            elif state == "OPEN":
                line.update(picked_quantity=_decimal(0), packed_quantity=_decimal(0))
        fulfillment.update(state=state, version=fulfillment["version"] + 1, updated_at=self._now())

    def _fulfillments_changed(self, sale: dict[str, Any]) -> None:
        """Close the sale once every fulfilment is FULFILLED; save it and send sale.update ([I] as the vendor names
        no fulfilment webhook, a fulfilment change shows as a change of its sale)."""
        fulfillments = self._fulfillments.get(sale["id"], [])
        if fulfillments and all(f["state"] == "FULFILLED" for f in fulfillments) and sale["status"] != "VOIDED":
            kinds = {f["type"] for f in fulfillments}
            closed = next(CLOSED_STATUS_OF_TYPE[k] for k in ("DISPATCH", "PICKUP", "SERVICE") if k in kinds)
            if sale["status"] != closed:
                sale["status"] = closed
                self._apply_stock(sale)
                sale["state"], sale["attributes"] = _state_of(sale["status"])
        self._save("sales", sale)
        self._emit("sale.update", self._sale_v09(sale))

    def _set_fulfillments(self, sale: dict[str, Any], state: str, outlet_id: str | None) -> list[dict[str, Any]]:
        if state not in FULFILLMENT_STATES:
            raise ApiError(400, f"fulfillment state must be one of {', '.join(FULFILLMENT_STATES)}")
        fulfillments = self._fulfillments.get(sale["id"], [])
        chosen = [f for f in fulfillments if outlet_id in (None, f["outlet_id"]) and f["state"] != "FULFILLED"]
        if not chosen:
            raise ApiError(400, f"sale {sale['id']} has no open fulfillment to update")
        for fulfillment in chosen:
            self._change_fulfillment(fulfillment, state)
        self._fulfillments_changed(sale)
        return [_copy_fulfillment(f) for f in chosen]

    def _init_return(self, sale: dict[str, Any]) -> dict[str, Any]:
        """The return action: a new SAVED (parked) sale returning every line, `return_for` the sale; no stock moves
        until the POS user completes it."""
        if sale["status"] not in CLOSED_STATUSES:
            raise ApiError(400, "only a closed sale can be returned")
        lines = [
            {
                "product_id": li["product_id"],
                "quantity": -li["quantity"],
                "price": li["price"],
                "tax": li["unit_tax"],
                "fulfillment_outlet_id": li["fulfillment_outlet_id"],
            }
            for li in sale["line_items"]
        ]
        body = {
            "register_id": sale["register_id"],
            "customer_id": sale["customer_id"],
            "status": "SAVED",
            "return_for": sale["id"],
            "register_sale_products": lines,
        }
        returned = self._register_sale({k: v for k, v in body.items() if v is not None})
        self._set_line_status(returned, "SAVED")
        return returned

    def _set_line_status(self, sale: dict[str, Any], status: str) -> None:
        for line in sale["line_items"]:
            line["status"] = status
        self._save("sales", sale)

    # -- 1.0 / 0.9 shapes and webhook emission -------------------------------------------------------

    def _emit(self, event: str, payload: dict[str, Any]) -> None:
        """One form-encoded delivery per subscribed webhook (XDOC docs/webhooks): `payload` = the 1.0-shape JSON
        (no `version`), each other field only sometimes ("may be present but are not guaranteed"); deliveries of
        webhooks an OAuth app created carry `X-Signature: signature=<hex HMAC-SHA256 of the body>,algorithm=
        HMAC-SHA256` (XDOC tutorials/guides/webhooks/introduction; [I] the key is the app's client secret, hex);
        failures are retried with back-off up to 20 times over 48 h."""
        hooks = [h for h in self._webhooks.values() if h["active"] and h["type"] == event]
        for hook in hooks:
            optional = {
                "domain_prefix": self.domain_prefix,
                "environment": "prod",
                "retailer_id": self.retailer_id,
                "type": event,
            }
            rate = self.optional_form_field_rate
            form = {k: v for k, v in optional.items() if self._webhook_form_rng.random() < rate}
            form["payload"] = json.dumps(_without_version(payload))
            body = urlencode(form).encode()
            headers = {"Content-Type": "application/x-www-form-urlencoded; charset=UTF-8"}
            secret = self.oauth.webhook_signing_secret(hook["id"])
            if secret is not None:
                digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
                headers["X-Signature"] = f"signature={digest},algorithm=HMAC-SHA256"
            self.deliveries.enqueue(Delivery(event, hook["url"], body, headers, retry_delays=WEBHOOK_RETRY_DELAYS))

    def _emit_product(self, row: dict[str, Any]) -> None:
        if any(h["type"] == "product.update" for h in self._webhooks.values()):
            self._emit("product.update", self._product_v1(row))

    def _inventory_v1(self, row: Mapping[str, Any], embed: bool = True) -> dict[str, Any]:
        payload = {
            "id": row["id"],
            "product_id": row["product_id"],
            "outlet_id": row["outlet_id"],
            "count": row["inventory_level"],
            "reorder_point": str(row["reorder_point"]),
            "restock_level": str(row["reorder_amount"]),
            "attributed_cost": f"{row['average_cost']:.2f}",
            "version": row["version"],
        }
        if embed:
            product = self.tables["products"].rows[row["product_id"]]
            outlet = self.tables["outlets"].rows[row["outlet_id"]]
            payload["product"] = {k: product[k] for k in ("id", "name", "sku", "handle", "variant_parent_id")}
            payload["outlet"] = {"id": outlet["id"], "name": outlet["name"]}
        return payload

    def _product_v1(self, p: Mapping[str, Any]) -> dict[str, Any]:
        inventory = [
            self._inventory_v1(self.tables["inventory"].rows[i], embed=False)
            for i in self._inventory_ids.get(p["id"], {}).values()
        ]
        options = {}
        for n, option in zip(("one", "two", "three"), p["variant_options"], strict=False):
            options[f"variant_option_{n}_name"] = option["name"]
            options[f"variant_option_{n}_value"] = option["value"]
        tax = round(p["price_including_tax"] - p["price_excluding_tax"], 5)
        return {
            "id": p["id"],
            "source_id": p["source_id"] or "",
            "handle": p["handle"],
            "has_variants": p["has_variants"],
            "variant_parent_id": p["variant_parent_id"] or "",
            **options,
            "active": p["active"],
            "name": p["variant_name"],
            "base_name": p["name"],
            "description": p["description"],
            "sku": p["sku"],
            "brand_id": p["brand_id"],
            "brand": p["brand"],
            "categories": p["categories"],
            "button_order": 0,
            "supply_price": f"{p['supply_price']:.2f}",
            "attributed_cost": f"{p['supply_price']:.2f}",
            "price": p["price_excluding_tax"],
            "tax": tax,
            "tax_id": self._default_tax["id"],
            "tax_rate": TAX_RATE,
            "tax_name": "GST",
            "display_retail_price_tax_inclusive": 1,
            "image": p["image_url"] or "",
            "images": [i["url"] for i in p["images"]],
            "track_inventory": p["has_inventory"],
            "inventory": inventory,
            "weight": p["weight"],
            "weight_unit": p["weight_unit"],
            "updated_at": _v1_time(p["updated_at"]),
            "deleted_at": _v1_time(p["deleted_at"]),
            "version": p["version"],
            "price_book_entries": [
                {
                    "id": f"pbe-{p['id']}",
                    "product_id": p["id"],
                    "price_book_name": "General Price Book (All Products)",
                    "type": "BASE",
                    "outlet_id": "",
                    "customer_group_name": "All Customers",
                    "price": p["price_excluding_tax"],
                    "tax": tax,
                    "display_retail_price_tax_inclusive": 1,
                    "min_units": None,
                    "max_units": None,
                }
            ],
        }

    def _sale_v20(self, sale: Mapping[str, Any]) -> dict[str, Any]:
        """A sale as the 2.0 routes show it (X20 `Sale`): only its declared fields; `taxes` as `SaleTax`."""
        view = {k: v for k, v in sale.items() if k in SALE_V20_FIELDS}
        for key in ("source_id", "customer_id"):  # X20 types them string, not nullable
            view[key] = view.get(key) or ""
        view["line_items"] = [
            {**{k: v for k, v in li.items() if k in LINE_ITEM_V20_FIELDS}, "tax": li.get("tax", li.get("unit_tax"))}
            for li in sale.get("line_items") or []
        ]
        view["payments"] = [{k: v for k, v in p.items() if k in PAYMENT_V20_FIELDS} for p in sale.get("payments") or []]
        taxes = self.tables["taxes"].rows
        view["taxes"] = [
            {
                "name": taxes.get(t.get("id"), {}).get("name", ""),
                "rate": sum(r["rate"] for r in taxes.get(t.get("id"), {}).get("rates", [])),
                "amount": t.get("tax", t.get("amount", 0)),
            }
            for t in sale.get("taxes") or []
        ]
        return view

    def _sale_2026(self, sale: Mapping[str, Any]) -> dict[str, Any]:
        """A sale as 2026-07 `GET /sales/{id}` and `POST /sales` show it (X26 sales `Sale`)."""
        register = self.tables["registers"].rows.get(str(sale.get("register_id"))) or {}
        return {
            "id": sale["id"],
            "state": sale["state"],
            "attributes": list(sale["attributes"]),
            "source": {
                "id": sale["source_id"] or "",
                "type": sale.get("source_type") or "",
                "outlet_id": register.get("outlet_id") or sale["outlet_id"],
                "register_id": sale["register_id"],
                "author": {"id": sale["user_id"]},
            },
            "customer_id": sale["customer_id"] or "",
            "date": sale["sale_date"],
            "created_at": sale["created_at"],
            "updated_at": sale["updated_at"],
            "invoice_number": sale["invoice_number"],
            "receipt_number": sale["invoice_number"],
            "short_code": sale["short_code"],
            "note": sale["note"] or "",
            "line_items": [
                {
                    "id": li["id"],
                    "product": {"id": li["product_id"]},
                    "quantity": li["quantity"],
                    "pricing": {"price": li["unit_price"], "cost": li["cost"], "total": li["price_total"]},
                    "tax": {"id": li["tax_id"], "amount": li["unit_tax"], "total": li["tax_total"]},
                    "status": li["status"],
                    "_metadata": {"sequence": li["sequence"]},
                }
                for li in sale["line_items"]
            ],
            "payments": [
                {
                    "id": p["id"],
                    "amount": p["amount"],
                    "date": p["payment_date"],
                    "type": {"config_id": p["retailer_payment_type_id"], "name": p["name"]},
                    "source": {"register_id": p["register_id"]},
                }
                for p in sale["payments"]
            ],
            "totals": {
                "price": sale["total_price"],
                "tax": sale["total_tax"],
                "price_incl_tax": round(sale["total_price"] + sale["total_tax"], 2),
                "loyalty": sale["total_loyalty"],
                "surcharge": 0.0,
            },
            "taxes": [{"id": t["id"], "tax": t["tax"]} for t in sale["taxes"]],  # X26 `SaleResponseTax`
            "return": {"is_return": bool(sale.get("return_for")), "original_sale_id": sale.get("return_for") or ""},
            "_metadata": {"version": sale["version"]},
        }

    def _sale_v09(self, sale: Mapping[str, Any]) -> dict[str, Any]:
        products = []
        for li in sale["line_items"]:
            product = self.tables["products"].rows[li["product_id"]]
            products.append(
                {
                    "id": li["id"],
                    "product_id": li["product_id"],
                    "register_id": sale["register_id"],
                    "sequence": str(li["sequence"]),
                    "handle": product["handle"],
                    "sku": product["sku"],
                    "name": product["variant_name"],
                    "quantity": li["quantity"],
                    "price": li["unit_price"],
                    "cost": li["cost"],
                    "price_set": 1,
                    "discount": 0,
                    "loyalty_value": 0,
                    "tax": li["unit_tax"],
                    "tax_id": li["tax_id"],
                    "tax_name": "GST",
                    "tax_rate": TAX_RATE,
                    "tax_total": li["tax_total"],
                    "price_total": li["price_total"],
                    "display_retail_price_tax_inclusive": "1",
                    "status": "CONFIRMED",
                    "fulfillment_outlet_id": li["fulfillment_outlet_id"],
                    "attributes": [],
                }
            )
        paid = round(sum(p["amount"] for p in sale["payments"]), 2)
        total = round(sale["total_price"] + sale["total_tax"], 2)
        return {
            "id": sale["id"],
            "source": sale["source"],
            "source_id": sale["source_id"] or "",
            "register_id": sale["register_id"],
            "market_id": "1",
            "customer_id": sale["customer_id"] or "",
            "user_id": sale["user_id"],
            "sale_date": _v1_time(sale["sale_date"]),
            "created_at": _v1_time(sale["created_at"]),
            "updated_at": _v1_time(sale["updated_at"]),
            "total_price": sale["total_price"],
            "total_cost": round(sum(li["cost"] * li["quantity"] for li in sale["line_items"]), 2),
            "total_tax": sale["total_tax"],
            "tax_name": "GST",
            "note": sale["note"],
            "status": sale["status"],
            "short_code": sale["short_code"],
            "invoice_number": sale["invoice_number"],
            "invoice_sequence": sale["invoice_sequence"],
            "return_for": sale["return_for"],
            "register_sale_products": products,
            "totals": {
                "total_tax": sale["total_tax"],
                "total_price": sale["total_price"],
                "total_payment": paid,
                "total_to_pay": round(total - paid, 2),
            },
            "register_sale_payments": [
                {
                    "id": p["id"],
                    "payment_type_id": p["payment_type_id"],
                    "retailer_payment_type_id": p["retailer_payment_type_id"],
                    "name": p["name"],
                    "label": p["name"],
                    "payment_date": _v1_time(p["payment_date"]),
                    "amount": p["amount"],
                }
                for p in sale["payments"]
            ],
            "version": sale.get("version"),
        }

    # -- HTTP ----------------------------------------------------------------------------------------

    def _authenticate(self, request: Request) -> bool:
        """A personal token (never expires), or a live OAuth access token; the token endpoint authenticates the app
        by the client credentials in its body instead."""
        if request.path == TOKEN_PATH:
            return True
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return False
        return hmac.compare_digest(token.encode(), self.token.encode()) or self.oauth.client_of(token) is not None

    def _oauth_client(self, request: Request) -> str | None:
        """The OAuth app whose access token made `request` (None: the personal token)."""
        _, _, token = request.headers.get("authorization", "").partition(" ")
        return self.oauth.client_of(token) if token else None

    def _token_route(self, request: Request) -> Response:
        """`POST /api/1.0/token`, form-encoded (XPM "Token request", "Refresh Token request")."""
        form = dict(parse_qsl(request.body.decode("utf-8", "replace"), keep_blank_values=True))
        response = self.oauth.token_request(form)
        if response.status == 200:
            self.narrate(f"OAuth token granted ({form.get('grant_type')})")
        return response

    def _rate_limit(self, now: float) -> RateDecision:
        if self._window is None:
            return RateDecision(True, {})
        full = acquire([self._window], now)
        reset_at = self._window.reset_at(now)
        # XDOC rate_limiting names Limit and Remaining on API answers; Reset is unverified there (the contract says
        # how the budget survives without it: Retry-After on a 429). Sent here so the budget tests see a full window.
        headers = {
            "X-RateLimit-Limit": str(self.rate_limit),
            "X-RateLimit-Remaining": str(self._window.remaining(now)),
            "X-RateLimit-Reset": str(math.ceil(reset_at)),
        }
        return RateDecision(not full, headers, formatdate(math.ceil(reset_at), usegmt=True) if full else "")

    def _injected_retry_after(self, now: float) -> str:
        return formatdate(math.ceil(now) + 1, usegmt=True)

    def _throttle_body(self, request: Request) -> Any:
        return {"error": "Too Many Requests", "message": "Rate limiting enforced"}

    def _error_body(self, request: Request, status: int, message: str) -> Any:
        if status == 401:  # X20 paths./services.get.responses.401 example
            return {"error": "Access token is not valid"}
        titles = {
            400: "Bad Request",
            401: "Unauthorized",
            404: "Not Found",
            409: "Conflict",
            500: "Internal Server Error",
            503: "Service Unavailable",
        }
        return {"error": titles.get(status, "Error"), "message": message}

    def _add_routes(self) -> None:
        api = "/api/2.0"
        add = self.router.add
        for name in (
            "products",
            "inventory",
            "outlets",
            "registers",
            "payment_types",
            "users",
            "taxes",
            "brands",
            "sales",
            "customers",
        ):
            add("GET", f"{api}/{name}", self._list_route(name))
        add("GET", f"{api}/products/{{id}}", self._get_route("products"))
        add("POST", f"{api}/products", self._post_product)  # X20 "Create product"
        add("PUT", "/api/2.1/products/{id}", self._put_product)  # XPM "API 2.1 / Products / Update a product"
        add("DELETE", f"{api}/products/{{id}}", self._delete_product_route(family=False))
        add("DELETE", f"{api}/products/{{id}}/all", self._delete_product_route(family=True))
        add("GET", f"{api}/products/{{id}}/inventory", self._product_inventory)
        add("GET", f"{api}/price_books/{{id}}/products", self._price_book_products)  # X20 price books
        add("GET", f"{api}/price_book_products", self._list_price_book_products)
        add("POST", f"{api}/customers", self._post_customer)
        add("GET", f"{api}/customers/{{id}}", self._get_route("customers"))
        add("GET", f"{api}/search", self._search)
        add(
            "GET",
            f"{api}/sales/{{id}}",
            lambda r: Response(200, {"data": self._sale_v20(self._get("sales", r.params["id"], deleted_ok=True))}),
        )
        add("PUT", f"{api}/sales/{{id}}/actions/return", self._return_sale)
        # The dated 2026-07 APIs, for what 2.0 does not have: open fulfilments, packing, fulfilling (X26).
        add("GET", "/api/2026-07/fulfillments", self._list_fulfillments)
        add("POST", "/api/2026-07/fulfillments/fulfill", self._fulfill)
        add("POST", "/api/2026-07/fulfillments/{id}/pack", self._pack_fulfillment)
        add("POST", "/api/2026-07/sales/{id}/actions/return", self._return_sale)
        add("POST", "/api/register_sales", self._post_register_sale)
        add("POST", TOKEN_PATH, self._token_route)
        add("POST", "/api/2026-07/sales", self._post_sale)
        add("GET", "/api/2026-07/sales/{id}", self._get_sale_2026)
        add("GET", f"{api}/webhooks", lambda r: Response(200, {"data": [dict(h) for h in self._webhooks.values()]}))
        add("POST", f"{api}/webhooks", self._post_webhook)
        add("GET", f"{api}/webhooks/{{id}}", lambda r: Response(200, {"data": dict(self._webhook(r))}))
        add("PUT", f"{api}/webhooks/{{id}}", self._put_webhook)
        add("DELETE", f"{api}/webhooks/{{id}}", self._delete_webhook)

    def _list_route(self, table: str) -> Callable[[Request], Response]:
        """A 2.0 list paged by version. Only declared parameters act: `deleted` where the route declares it, and
        `/products?sku=` ("all other query params are ignored if this is provided", X20). Anything else, such as a
        `family_id`, is ignored as the real API ignores it: the whole list comes back."""

        def handler(request: Request) -> Response:
            q = request.query
            deleted = table in DELETED_PARAM_TABLES and q.get("deleted", "").lower() == "true"
            if table == "products" and "sku" in q:
                rows = [r for r in self.tables["products"].rows.values() if r["sku"] == q["sku"]]
                return Response(200, _page_body([r for r in rows if r["deleted_at"] is None]))
            size = min(int_param(q, "page_size", DEFAULT_PAGE_SIZE, minimum=1) or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
            after = int_param(q, "after")
            rows = self.tables[table].page(after, int_param(q, "before"), size, deleted)
            body = _page_body(rows, after)
            if table == "sales":
                body["data"] = [self._sale_v20(r) for r in rows]
            return Response(200, body)

        return handler

    def _get_route(self, table: str) -> Callable[[Request], Response]:
        return lambda request: Response(200, {"data": dict(self._get(table, request.params["id"], deleted_ok=True))})

    def _put_product(self, request: Request) -> Response:
        body = request.json_object()
        row = self._get("products", request.params["id"])
        if {"common", "details"} & set(body):
            return Response(200, {"data": self._update_product(row, body.get("details", {}), body.get("common", {}))})
        return Response(200, {"data": self._update_product(row, body)})

    def _post_product(self, request: Request) -> Response:
        """X20 `POST /products` for a plain product (no `variants`): one row, one inventory row per outlet (the body's
        `inventory`, else 0: whether the vendor tracks stock then is undocumented), answered `{"data": [<id>]}`."""
        if not self.products_writable:
            raise ApiError(403, "this token lacks the products:write scope")
        body = request.json_object()
        if body.get("variants"):
            raise ApiError(400, "the simulator creates plain products only (no variants)")
        sku = str(body.get("sku") or "")  # X20: "Should be unique"; what a duplicate gets is undocumented (kept)
        incl, excl = body.get("price_including_tax"), body.get("price_excluding_tax")
        if incl is None:
            incl = _money(float(excl or 0) * (1 + TAX_RATE))
        excl = _money(float(incl) / (1 + TAX_RATE)) if excl is None else float(excl)
        name = str(body["name"])
        product_id = self._uuid()
        row = {
            "id": product_id,
            "name": name,
            "handle": str(body.get("handle") or name.lower().replace(" ", "-")),
            "description": str(body.get("description") or ""),
            "sku": sku or product_id[:8],
            "brand": {},
            "brand_id": body.get("brand_id"),
            "type": {},
            "product_type_id": body.get("product_type_id"),
            "categories": [],
            "tag_ids": list(body.get("tag_ids") or []),
            "is_composite": False,
            "source": str(body.get("source") or "USER"),
            "source_id": body.get("source_id"),
            "source_variant_id": body.get("source_variant_id"),
            "variant_name": name,
            "variant_parent_id": None,
            "has_variants": False,
            "variant_options": [],
            "product_codes": list(body.get("product_codes") or ([{"type": "CUSTOM", "code": sku}] if sku else [])),
            "active": bool(body.get("is_active", True)),
            "is_active": bool(body.get("is_active", True)),
            "has_inventory": True,
            "price_including_tax": float(incl),
            "price_excluding_tax": excl,
            "supply_price": float(body.get("supply_price") or 0),
            # No weight or size given: zero, in the seeded catalog's units (the vendor's defaults are undocumented).
            **{"weight": 0, "weight_unit": "KG", "length": 0, "width": 0, "height": 0, "dimensions_unit": "CM"},
            **{k: body[k] for k in DIMENSION_FIELDS if k in body},
            "images": [],
            "image_url": NO_IMAGE_URL,
        }
        product = self._new("products", row)
        levels = {str(i["outlet_id"]): int(i["current_amount"]) for i in body.get("inventory") or []}
        for outlet_id in self.tables["outlets"].rows:
            self._new_inventory(product, outlet_id, levels.get(outlet_id, 0), self.rng)
        self._emit_product(product)
        self.narrate(f"product {product['sku']} created through the API")
        return Response(200, {"data": [product_id]})

    def _delete_product_route(self, *, family: bool) -> Callable[[Request], Response]:
        def handler(request: Request) -> Response:
            row = self._get("products", request.params["id"])
            self._delete_product(row, family=family or row["has_variants"])
            return Response(200)  # X20 `DELETE /products/{product_id}`: 200 "OK"

        return handler

    def _price_book_products(self, request: Request) -> Response:
        """X20 `GET /price_books/{price_book_id}/products` (`product_ids` comma-separated): the book's live entries.
        An unknown book answers 404 ([I] X20 declares only 200)."""
        self._price_table("price_books")
        book = self._get("price_books", request.params["id"])
        wanted = {i for i in request.query.get("product_ids", "").split(",") if i}
        rows = [
            dict(e)
            for e in self._price_table("price_book_products").live()
            if e["price_book_id"] == book["id"] and (not wanted or e["product_id"] in wanted)
        ]
        return Response(200, {"data": rows})

    def _list_price_book_products(self, request: Request) -> Response:
        """X20 `GET /price_book_products` (after/before/page_size): every book's entries by version, live ones ([I]
        whether removed entries are listed is undocumented). `PriceBookProductCollection` has only `data`."""
        q = request.query
        size = min(int_param(q, "page_size", DEFAULT_PAGE_SIZE, minimum=1) or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        rows = self._price_table("price_book_products").page(int_param(q, "after"), int_param(q, "before"), size, False)
        return Response(200, {"data": [dict(r) for r in rows]})

    def _product_inventory(self, request: Request) -> Response:
        product = self._get("products", request.params["id"], deleted_ok=True)
        rows = [self.tables["inventory"].rows[i] for i in self._inventory_ids.get(product["id"], {}).values()]
        return Response(200, _page_body(rows))

    def _post_customer(self, request: Request) -> Response:
        customer = self._new("customers", self._customer_row(request.json_object()))
        self._emit_customer(customer)
        return Response(201, {"data": dict(customer)})  # X20 `POST /customers`: 201

    def _search(self, request: Request) -> Response:
        """`GET /api/2.0/search`: only the attributes X20 declares for the `type` filter (exact, case-insensitive
        [I]); `deleted`, `_id`/`-_id`, `offset`, `page_size` (at most 1000). Other parameters are ignored."""
        q = request.query
        table = q.get("type", "")
        if table not in SEARCH_ATTRIBUTES:
            raise ApiError(400, "type must be customers, sales or products")
        size = min(int_param(q, "page_size", MAX_PAGE_SIZE, minimum=1) or MAX_PAGE_SIZE, MAX_PAGE_SIZE)
        offset = int_param(q, "offset", 0) or 0
        rows = list(self.tables[table].rows.values())
        if q.get("deleted", "").lower() != "true":
            rows = [r for r in rows if r.get("deleted_at") is None]
        if q.get("_id"):
            rows = [r for r in rows if r["id"] == q["_id"]]
        if q.get("-_id"):
            rows = [r for r in rows if r["id"] != q["-_id"]]
        for name in SEARCH_ATTRIBUTES[table]:
            if name in q:
                rows = [r for r in rows if self._search_match(table, r, name, q[name])]
            if f"-{name}" in q and name in SEARCH_EXCLUDABLE:
                rows = [r for r in rows if not self._search_match(table, r, name, q[f"-{name}"])]
        view = self._sale_v20 if table == "sales" else dict
        return Response(200, {"data": [view(r) for r in rows[offset : offset + size]]})

    @staticmethod
    def _search_match(table: str, row: Mapping[str, Any], name: str, wanted: str) -> bool:
        if table == "sales" and name in ("date_from", "date_to"):
            moment, bound = parse_iso(str(row.get("sale_date"))), parse_iso(wanted)
            return moment >= bound if name == "date_from" else moment <= bound
        if name == "tag_id":
            return wanted in (row.get("tag_ids") or [])
        value = row.get(name)
        return value is not None and str(value).lower() == wanted.lower()

    def _list_fulfillments(self, request: Request) -> Response:
        """`GET /fulfillments`: filters sale_id, outlet_id, fulfillment_type, fulfillment_state (each may repeat in
        the vendor's API; here the last value counts), 1-based `page_number`, `page_size` 1..100 (default 10)."""
        q = request.query
        size = int_param(q, "page_size", FULFILLMENTS_PAGE_SIZE, minimum=1) or FULFILLMENTS_PAGE_SIZE
        if size > FULFILLMENTS_MAX_PAGE_SIZE:
            raise ApiError(400, f"page_size must be at most {FULFILLMENTS_MAX_PAGE_SIZE}")
        page = int_param(q, "page_number", 1, minimum=1) or 1
        for name, allowed in (("fulfillment_type", FULFILLMENT_TYPES), ("fulfillment_state", FULFILLMENT_STATES)):
            if q.get(name) and q[name] not in allowed:
                raise ApiError(400, f"{name} must be one of {', '.join(allowed)}")
        fields = {"sale_id": "sale_id", "outlet_id": "outlet_id", "fulfillment_type": "type"}
        fields["fulfillment_state"] = "state"
        wanted = {field: q[name] for name, field in fields.items() if q.get(name)}
        rows = [
            f
            for rows in self._fulfillments.values()
            for f in rows
            if all(str(f[field]) == value for field, value in wanted.items())
        ]
        rows.sort(key=lambda f: int(f["id"]))
        return Response(200, {"data": [_copy_fulfillment(f) for f in rows[(page - 1) * size : page * size]]})

    def _fulfill(self, request: Request) -> Response:
        """`POST /fulfillments/fulfill {sale_id}`: completes every fulfilment of the sale; idempotent (a fulfilled
        sale answers 200 with nothing updated). Answers the updated fulfilments' `{id, version}`."""
        sale_id = request.json_object().get("sale_id")
        if not isinstance(sale_id, str) or not sale_id:
            raise ApiError(400, "sale_id is required")
        sale = self._get("sales", sale_id)
        if sale["status"] == "VOIDED":
            raise ApiError(409, f"sale {sale_id} is voided")  # [I] the spec lists 409 without saying when
        chosen = [f for f in self._fulfillments.get(sale_id, []) if f["state"] != "FULFILLED"]
        for fulfillment in chosen:
            self._change_fulfillment(fulfillment, "FULFILLED")
        if chosen:
            self._fulfillments_changed(sale)
        return Response(200, {"data": [{"id": f["id"], "version": f["version"]} for f in chosen]})

    def _pack_fulfillment(self, request: Request) -> Response:
        """`POST /fulfillments/{id}/pack {version, line_items[{sale_line_item_id, quantity}]}`: packs (a negative
        quantity unpacks) those quantities; a `version` other than the fulfilment's is refused with 409. Answers the
        new `{id, version}`. All lines packed: PACKED; some: STARTED (in progress)."""
        found = [f for rows in self._fulfillments.values() for f in rows if f["id"] == request.params["id"]]
        if not found:
            raise ApiError(404, f"fulfillment {request.params['id']} not found")
        fulfillment = found[0]
        body = request.json_object()
        version, items = body.get("version"), body.get("line_items")
        if not isinstance(version, int) or isinstance(version, bool) or not isinstance(items, list):
            raise ApiError(400, "version (integer) and line_items (array) are required")
        while self._before_pack:
            self._before_pack.pop(0)(fulfillment)
        if version != fulfillment["version"]:
            raise ApiError(409, f"fulfillment version {version} is stale (now {fulfillment['version']})")
        if fulfillment["state"] == "FULFILLED":
            raise ApiError(400, "a FULFILLED fulfillment cannot be packed")
        lines = {li["sale_line_item_id"]: li for li in fulfillment["line_items"]}
        packed: dict[str, float] = {}
        for n, item in enumerate(items):
            line = lines.get(item.get("sale_line_item_id")) if isinstance(item, dict) else None
            quantity = item.get("quantity") if isinstance(item, dict) else None
            if line is None or not isinstance(quantity, int | float) or isinstance(quantity, bool):
                raise ApiError(400, f"line_items[{n}] needs a sale_line_item_id of this fulfillment and a quantity")
            now = packed.get(line["sale_line_item_id"], float(line["packed_quantity"])) + quantity
            if not 0 <= now <= float(line["quantity"]) - float(line["fulfilled_quantity"]):
                raise ApiError(400, f"line_items[{n}]: quantity {quantity} would pack {now} of {line['quantity']}")
            packed[line["sale_line_item_id"]] = now
        for line_id, quantity in packed.items():
            lines[line_id]["packed_quantity"] = _decimal(quantity)
        complete = all(
            float(li["packed_quantity"]) + float(li["fulfilled_quantity"]) >= float(li["quantity"])
            for li in fulfillment["line_items"]
        )
        state = "PACKED" if complete else ("STARTED" if fulfillment["state"] in ("OPEN", "PACKED") else None)
        fulfillment.update(state=state or fulfillment["state"], version=fulfillment["version"] + 1)
        fulfillment["updated_at"] = self._now()
        self._fulfillments_changed(self._get("sales", fulfillment["sale_id"]))
        return Response(200, {"data": {"id": fulfillment["id"], "version": fulfillment["version"]}})

    def _return_sale(self, request: Request) -> Response:
        """The return action (2.0 PUT, 2026-07 POST): "Initializes a return ... and returns the SAVED return"."""
        returned = self._init_return(self._get("sales", request.params["id"]))
        shown = self._sale_v20(returned)
        if not request.path.startswith("/api/2.0/"):
            # The 2026-07 example answers the 2.0 shape plus `state` (X26 sales, return example: state parked).
            shown = {k: v for k, v in shown.items() if k not in ("source", "source_id", "deleted_at")}
            shown["state"] = returned["state"]
            shown["taxes"] = [{"id": t.get("id"), "tax": t.get("tax", 0)} for t in returned.get("taxes") or []]
        return Response(200, {"data": shown})

    def _post_register_sale(self, request: Request) -> Response:
        sale = self._register_sale(request.json_object())
        return Response(200, {"register_sale": self._sale_v09(sale)})

    def _post_sale(self, request: Request) -> Response:
        """`POST /api/2026-07/sales` (X26 sales `CreateSale`, `SaleRequest`); answers `{"data": Sale}`."""
        sale = self._create_sale_2026(request.json_object())
        if self.lost_sale_answers > 0:
            # The sale is committed; its answer never reaches the client (as `Faults.lost_response_rate`, targeted).
            self.lost_sale_answers -= 1
            self._count("errors_injected")
            raise ApiError(503, "injected fault: the answer to this create was lost")
        return Response(200, {"data": self._sale_2026(sale)})

    def _get_sale_2026(self, request: Request) -> Response:
        return Response(200, {"data": self._sale_2026(self._get("sales", request.params["id"], deleted_ok=True))})

    def _webhook(self, request: Request) -> dict[str, Any]:
        hook = self._webhooks.get(request.params["id"])
        if hook is None:
            raise ApiError(404, f"webhook {request.params['id']} not found")
        return hook

    def _validate_webhook(self, body: Mapping[str, Any]) -> None:
        reject_unknown(body, frozenset({"url", "active", "type"}), "webhook")
        if "type" in body and body["type"] not in WEBHOOK_TYPES:
            raise ApiError(400, f"type must be one of {', '.join(sorted(WEBHOOK_TYPES))}")
        if "url" in body and not str(body["url"]).startswith(("http://", "https://")):
            raise ApiError(400, "url must be an http(s) URL")
        if "active" in body and not isinstance(body["active"], bool):
            raise ApiError(400, "active must be a boolean")

    def _post_webhook(self, request: Request) -> Response:
        body = request.json_object()
        self._validate_webhook(body)
        if "url" not in body or "type" not in body:
            raise ApiError(400, "url and type are required")
        if any(h["type"] == body["type"] and h["url"] == body["url"] for h in self._webhooks.values()):
            raise ApiError(409, f"a {body['type']} webhook for this url already exists")
        hook = {
            "id": self._uuid(),
            "retailer_id": self.retailer_id,
            "type": body["type"],
            "url": body["url"],
            "active": body.get("active", True),
        }
        self._webhooks[hook["id"]] = hook
        self.oauth.remember_webhook(hook["id"], self._oauth_client(request))
        self.narrate(f"webhook {hook['type']} subscribed")
        return Response(201, {"data": dict(hook)})

    def _put_webhook(self, request: Request) -> Response:
        hook, body = self._webhook(request), request.json_object()
        self._validate_webhook(body)
        hook.update(body)
        return Response(200, {"data": dict(hook)})

    def _delete_webhook(self, request: Request) -> Response:
        hook = self._webhooks.pop(self._webhook(request)["id"])
        return Response(200, {"data": dict(hook)})  # X26 webhooks: DELETE answers 200


# -- OAuth apps and their tokens ------------------------------------------------------------------------------------

# Webhook deliveries are retried "up to 20 times over 48h" (XDOC docs/webhooks); the exact delays are not published
# ([I] exponential, each 1.5x the last: the first retry after ~26 s, the last ~16 h after the one before).
WEBHOOK_RETRY_DELAYS = backoff_schedule(20, 48 * 3600)
# Each of the form fields other than `payload` "may be present but [is] not guaranteed" (XDOC docs/webhooks).
OPTIONAL_FORM_FIELD_RATE = 0.5
TOKEN_PATH = "/api/1.0/token"
# `expires_in` of the example token answers (XDOC changelog 2025-03-refresh-token-flow-update): one week.
ACCESS_TOKEN_TTL_S = 604_800
TOKEN_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


@dataclass
class _AccessToken:
    client_id: str
    expires_at: float
    parent_refresh: str | None  # the refresh token this one was granted for: revoked when this one is first used
    used: bool = False


class OAuthApps:
    """The X-Series side of OAuth (XDOC docs/authorization; changelog 2025-03; XPM "Token request", "Refresh Token
    request"): apps with a client id and secret, authorization codes, `POST /api/1.0/token` for both grants.

    Access tokens expire after `ttl_s`. A refresh answers a new access AND a new refresh token; the refresh token
    it was given is revoked once the new access token is first used ([I] the changelog says "once a new one is
    issued"; the first use is when the vendor can tell the new pair was received). Revoked, unknown or
    wrong-client grants answer 400 `invalid_grant` and a bad client 401 `invalid_client` ([I] the RFC 6749 §5.2
    error bodies: the vendor follows RFC 6749 and publishes none of its own)."""

    def __init__(self, domain_prefix: str, clock: Clock, rng: random.Random, ttl_s: float = ACCESS_TOKEN_TTL_S) -> None:
        self.domain_prefix = domain_prefix
        self.ttl_s = ttl_s
        self._clock = clock
        self._rng = rng
        self._lock = threading.Lock()
        self._apps: dict[str, str] = {}  # client id -> client secret
        self._codes: dict[str, str] = {}  # authorization code -> client id
        self._access: dict[str, _AccessToken] = {}
        self._refresh: dict[str, str] = {}  # live refresh token -> client id
        self._webhook_apps: dict[str, str] = {}  # webhook id -> the client id of the app that created it
        self.refresh_grants = 0  # refresh_token grants answered 200
        self.refused_grants = 0

    def register(self, client_id: str, client_secret: str) -> None:
        with self._lock:
            self._apps[client_id] = client_secret

    def secret(self, client_id: str) -> str | None:
        with self._lock:
            return self._apps.get(client_id)

    def authorization_code(self, client_id: str) -> str:
        """What the retailer's consent at `secure.retail.lightspeed.app/connect` hands the app's redirect URI."""
        with self._lock:
            if client_id not in self._apps:
                raise KeyError(f"no OAuth app {client_id!r}")
            code = self._token()
            self._codes[code] = client_id
            return code

    def authorize(self, client_id: str) -> dict[str, Any]:
        """Code grant in one step (the operator's one-off connect): the first token answer."""
        with self._lock:
            if client_id not in self._apps:
                raise KeyError(f"no OAuth app {client_id!r}")
            return self._issue(client_id, None)

    def expire_access_tokens(self) -> int:
        """Every access token issued so far expires now (as a week passing would); returns how many."""
        with self._lock:
            now = self._clock()
            for token in self._access.values():
                token.expires_at = min(token.expires_at, now)
            return len(self._access)

    def revoke_refresh_tokens(self) -> None:
        """The retailer disconnects the app: no refresh token works any more."""
        with self._lock:
            self._refresh.clear()

    def client_of(self, access_token: str) -> str | None:
        """The app a live access token belongs to; the first use of a refreshed token revokes its parent."""
        with self._lock:
            token = self._access.get(access_token)
            if token is None or token.expires_at <= self._clock():
                return None
            if not token.used:
                token.used = True
                if token.parent_refresh is not None:
                    self._refresh.pop(token.parent_refresh, None)
            return token.client_id

    def access_token_used(self, access_token: str) -> bool:
        with self._lock:
            token = self._access.get(access_token)
            return token is not None and token.used

    def remember_webhook(self, webhook_id: str, client_id: str | None) -> None:
        with self._lock:
            if client_id is not None:
                self._webhook_apps[webhook_id] = client_id

    def webhook_signing_secret(self, webhook_id: str) -> str | None:
        """Deliveries of webhooks an OAuth app created are signed with that app's client secret ([I] the key)."""
        with self._lock:
            client_id = self._webhook_apps.get(webhook_id)
            return self._apps.get(client_id) if client_id else None

    def token_request(self, form: Mapping[str, str]) -> Response:
        grant = form.get("grant_type", "")
        client_id, client_secret = form.get("client_id", ""), form.get("client_secret", "")
        if grant not in ("authorization_code", "refresh_token"):
            return self._error(400, "unsupported_grant_type", "grant_type must be authorization_code or refresh_token")
        needed = ("code",) if grant == "authorization_code" else ("refresh_token",)
        missing = [name for name in ("client_id", "client_secret", *needed) if not form.get(name)]
        if missing:
            return self._error(400, "invalid_request", f"missing {', '.join(missing)}")
        with self._lock:
            if not hmac.compare_digest(self._apps.get(client_id, "\0").encode(), client_secret.encode()):
                self.refused_grants += 1
                return self._error(401, "invalid_client", "client authentication failed")
            if grant == "authorization_code":
                if self._codes.pop(form["code"], None) != client_id:
                    self.refused_grants += 1
                    return self._error(400, "invalid_grant", "the authorization code is invalid or was used")
                return Response(200, self._issue(client_id, None))
            refresh = form["refresh_token"]
            if self._refresh.get(refresh) != client_id:
                self.refused_grants += 1
                return self._error(400, "invalid_grant", "the refresh token is invalid or has been revoked")
            self.refresh_grants += 1
            return Response(200, self._issue(client_id, refresh))

    def _issue(self, client_id: str, parent_refresh: str | None) -> dict[str, Any]:
        access, refresh = self._token(), self._token()
        expires = math.floor(self._clock() + self.ttl_s)
        self._access[access] = _AccessToken(client_id, expires, parent_refresh)
        self._refresh[refresh] = client_id
        return {
            "access_token": access,
            "token_type": "Bearer",
            "expires": expires,
            "expires_in": int(self.ttl_s),
            "refresh_token": refresh,
            "domain_prefix": self.domain_prefix,
            "scope": "",
        }

    def _token(self) -> str:
        return "".join(self._rng.choice(TOKEN_ALPHABET) for _ in range(40))

    @staticmethod
    def _error(status: int, error: str, description: str) -> Response:
        return Response(status, {"error": error, "error_description": description})


def _without_version(value: Any) -> Any:
    """A 1.0 payload has no `version` (no source shows one): drop it, nested rows included."""
    if isinstance(value, dict):
        return {k: _without_version(v) for k, v in value.items() if k != "version"}
    if isinstance(value, list):
        return [_without_version(v) for v in value]
    return value
