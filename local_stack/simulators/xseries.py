"""Lightspeed Retail X-Series (ex-Vend) simulator: API 2.0 reads, the 0.9 `register_sales` write, webhooks.

Shapes follow reference/vendor-apis.md §1. Choices the reference leaves open (ours, [I]):
- Version paging: `after` exclusive, `before` exclusive, `page_size` default 100, silently capped at 1000
  (a client must keep paging until an empty page, not stop at a short one it did not ask for).
  One global version counter per retailer, increasing by 1-4 per change of any object.
- PUT /products/{id}: `{"common": {...}, "details": {...}}` writes `common` (name, handle, description, brand_id...)
  to every family member and `details` to this row; a flat body changes this row only.
- Deletes answer 204. DELETE on a family parent deletes the family; on a variant, that variant only.
- Sales: `price`/`tax` are per unit, tax-exclusive. Every status except SAVED, OPEN and VOIDED holds stock
  (taken at the register's outlet, or at a line's `fulfillment_outlet_id`); voiding gives it back.
  A closed status may only move to VOIDED. 0.9 updates are a POST with the sale's `id`.
  AWAITING_DISPATCH/AWAITING_PICKUP sales get one fulfillment per outlet with status NEW
  (then PACKED, SHIPPED, PICKED_UP or CANCELLED); `POST /sales/{id}/fulfill` completes them.
- Webhooks: form fields domain_prefix, environment, retailer_id, type, payload (1.0-shape JSON). The 1.0
  inventory payload embeds small `product`/`outlet` objects. 1.0 timestamps are "YYYY-MM-DD HH:MM:SS".
- Rate limit 0 turns the window off (no X-RateLimit-* headers then).
"""

from __future__ import annotations

import json
import math
import random
import time
import uuid
from bisect import bisect_right
from collections.abc import Callable, Iterable, Mapping, Sequence
from email.utils import formatdate
from typing import Any
from urllib.parse import urlencode

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
    int_param,
    iso_utc,
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
FULFILLMENT_STATUSES = frozenset({"NEW", "PACKED", "SHIPPED", "PICKED_UP", "CANCELLED"})
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
OUTLET_NAMES = ("Main Street", "Harbour Road", "Airport Kiosk", "Warehouse", "Pop-up Store", "Mall")
PAYMENT_TYPES = (("Cash", 1), ("Credit Card", 2), ("Lightspeed Payments", 2), ("Bank Deposit", 4), ("Gift Card", 5))


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


def _page_body(rows: list[dict[str, Any]]) -> dict[str, Any]:
    versions = [r["version"] for r in rows]
    return {
        "data": [dict(r) for r in rows],
        "version": {"min": min(versions) if rows else None, "max": max(versions) if rows else None},
    }


class XSeriesSimulator(VendorSimulator):
    vendor = "xseries"

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
        self._fulfillments: dict[str, list[dict[str, Any]]] = {}  # sale id -> fulfillments
        self._stock_taken: set[str] = set()  # sales whose lines are currently out of stock
        self._webhooks: dict[str, dict[str, Any]] = {}
        self._attributes: dict[str, str] = {}  # variant attribute name -> id
        self._families = 0
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
            self._new(
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
                },
            )
        outlet_ids = list(self.tables["outlets"].rows)
        for n in range(registers):
            self._new(
                "registers",
                {
                    "id": self._uuid(),
                    "name": "Main Register" if n == 0 else f"Register {n + 1}",
                    "outlet_id": outlet_ids[n % len(outlet_ids)],
                    "is_open": True,
                    "invoice_prefix": "" if n == 0 else f"R{n + 1}-",
                    "invoice_suffix": "",
                    "invoice_sequence": 1000,
                },
            )
        for name, type_id in PAYMENT_TYPES:
            self._new("payment_types", {"id": self._uuid(), "name": name, "type_id": type_id, "config": None})
        self._new(
            "users",
            {
                "id": self._uuid(),
                "username": "owner",
                "display_name": "Store Owner",
                "email": "owner@example.com",
                "account_type": "admin",
            },
        )
        self._new("taxes", {"id": self._uuid(), "name": "GST", "rate": TAX_RATE, "is_default": True})
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
        return self._new("brands", {"id": self._uuid(rng), "name": name, "description": ""})

    def _attribute_id(self, name: str) -> str:
        return self._attributes.setdefault(name, str(uuid.uuid5(uuid.UUID(self.retailer_id), name)))

    def _add_family(self, spec: FamilySpec, rng: random.Random) -> None:
        brand = self._brand(spec.brand, rng)
        family_id = self._uuid(rng)
        category = {"id": str(uuid.uuid5(uuid.UUID(self.retailer_id), spec.category)), "name": spec.category}
        common = {
            "name": spec.name,
            "handle": spec.handle,
            "description": spec.description,
            "family_id": family_id,
            "brand": {"id": brand["id"], "name": brand["name"]},
            "brand_id": brand["id"],
            "product_category": category,
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
                product_codes=[{"id": self._uuid(rng), "type": "CUSTOM", "code": spec.sku}],
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
            "has_variants": False,
            "variant_count": None,
            "variant_options": [],
            "product_codes": [{"id": self._uuid(rng), "type": "EAN", "code": spec.ean}],
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
            "image_url": image_rows[0]["url"] if image_rows else None,
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
            "deleted_at": None,
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
        with self.lock:
            return [dict(f) for f in self._fulfillments.get(sale_id, [])]

    # -- Python API: changes a retailer makes in the POS --------------------------------------------

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
            family = [dict(r) for r in self.tables["products"].live() if r["family_id"] == row["family_id"]]
        self.narrate(f"family {row['handle']} updated: {', '.join(sorted(fields))}")
        return family

    def delete_product(self, product_id: str) -> None:
        with self.lock:
            row = self._get("products", product_id)
            self._delete_product(row, family=row["has_variants"])
        self.narrate(f"product {row['sku']} deleted")

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
                **{k: v for k, v in parent.items() if k not in ("id", "version", "created_at", "updated_at")},
                "id": self._uuid(rng),
                "variant_parent_id": parent_id,
                "has_variants": False,
                "variant_count": None,
                "has_inventory": True,
                "sku": sku or f"{parent['sku']}-{'-'.join(options.values())}".upper(),
                "variant_options": [{"id": self._attribute_id(k), "name": k, "value": v} for k, v in options.items()],
                "variant_name": " / ".join([parent["name"], *options.values()]),
                "product_codes": [{"id": self._uuid(rng), "type": "CUSTOM", "code": sku or parent["sku"]}],
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

    def set_fulfillment_status(self, sale_id: str, status: str, outlet_id: str | None = None) -> None:
        """What staff do on the Fulfillments page (e.g. PACKED); completing all closes the sale."""
        with self.lock:
            self._set_fulfillments(self._get("sales", sale_id), status, outlet_id)
        self.narrate(f"fulfillment of sale {sale_id[:8]} set to {status}")

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
            changes["brand"] = {"id": brand["id"], "name": brand["name"]} if brand else None
        return changes

    def _update_product(
        self, row: dict[str, Any], details: Mapping[str, Any], common: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """`details` change this row only; `common` is written to every member of its family."""
        details = dict(details)
        inventory = details.pop("inventory", None)
        details = self._product_changes(details, COMMON_FIELDS | DETAIL_FIELDS, "product")
        shared = self._product_changes(common or {}, COMMON_FIELDS, "common product")
        family = [r for r in self.tables["products"].live() if r["family_id"] == row["family_id"]] if shared else []
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
        members = [r for r in self.tables["products"].live() if r["family_id"] == row["family_id"]] if family else []
        now = self._now()
        for member in members or [row]:
            member["deleted_at"] = now
            self._save("products", member)
            for inventory_id in self._inventory_ids.get(member["id"], {}).values():
                inventory = self.tables["inventory"].rows[inventory_id]
                inventory["deleted_at"] = now
                self._save("inventory", inventory)
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
        if status not in SALE_STATUSES:
            raise ApiError(400, f"status must be one of {', '.join(sorted(SALE_STATUSES))}")
        if body.get("id"):
            sale = self._update_sale(self._get("sales", str(body["id"])), body, status)
        else:
            sale = self._create_sale(body, status)
        self._apply_stock(sale)
        sale["state"], sale["attributes"] = _state_of(sale["status"])
        if sale["status"] in ("AWAITING_DISPATCH", "AWAITING_PICKUP") and not self._fulfillments.get(sale["id"]):
            self._open_fulfillments(sale)
        self._save("sales", sale)
        self._emit("sale.update", self._sale_v09(sale))
        return sale

    def _create_sale(self, body: Mapping[str, Any], status: str) -> dict[str, Any]:
        register = self.tables["registers"].rows.get(str(body.get("register_id")))
        if register is None:
            raise ApiError(400, f"register_id {body.get('register_id')!r} does not exist")
        if body.get("customer_id") and body["customer_id"] not in self.tables["customers"].rows:
            raise ApiError(400, f"customer_id {body['customer_id']} does not exist")
        lines = [self._sale_line(n, line, register) for n, line in enumerate(body.get("register_sale_products", []))]
        payments = self._payments(register["id"], body.get("register_sale_payments", []))
        register["invoice_sequence"] += 1
        self._save("registers", register)
        sale_id = self._uuid()
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
                    "payment_type_id": kind["type_id"],
                    "payment_date": payment.get("payment_date") or self._now(),
                    "amount": payment["amount"],
                    "surcharge": 0,
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
            for fulfillment in self._fulfillments.get(sale["id"], []):
                fulfillment.update(status="CANCELLED", updated_at=self._now())
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
        kind = "DISPATCH" if sale["status"] == "AWAITING_DISPATCH" else "PICKUP"
        by_outlet: dict[str, list[dict[str, Any]]] = {}
        for line in sale["line_items"]:
            by_outlet.setdefault(line["fulfillment_outlet_id"], []).append(line)
        now = self._now()
        self._fulfillments[sale["id"]] = [
            {
                "id": self._uuid(),
                "sale_id": sale["id"],
                "outlet_id": outlet,
                "type": kind,
                "status": "NEW",
                "version": 1,
                "line_items": [
                    {
                        "id": self._uuid(),
                        "line_item_id": li["id"],
                        "product_id": li["product_id"],
                        "quantity": li["quantity"],
                    }
                    for li in lines
                ],
                "created_at": now,
                "updated_at": now,
            }
            for outlet, lines in by_outlet.items()
        ]

    def _set_fulfillments(self, sale: dict[str, Any], status: str, outlet_id: str | None) -> list[dict[str, Any]]:
        if status not in FULFILLMENT_STATUSES:
            raise ApiError(400, f"fulfillment status must be one of {', '.join(sorted(FULFILLMENT_STATUSES))}")
        fulfillments = self._fulfillments.get(sale["id"], [])
        chosen = [f for f in fulfillments if outlet_id in (None, f["outlet_id"])]
        if not chosen:
            raise ApiError(400, f"sale {sale['id']} has no fulfillment to update")
        for fulfillment in chosen:
            done = {"DISPATCH": "SHIPPED", "PICKUP": "PICKED_UP"}[fulfillment["type"]]
            fulfillment.update(status=done if status in ("SHIPPED", "PICKED_UP") else status, updated_at=self._now())
            fulfillment["version"] = fulfillment.get("version", 1) + 1
        if all(f["status"] in ("SHIPPED", "PICKED_UP") for f in fulfillments):
            sale["status"] = "DISPATCHED_CLOSED" if fulfillments[0]["type"] == "DISPATCH" else "PICKED_UP_CLOSED"
            self._apply_stock(sale)
            sale["state"], sale["attributes"] = _state_of(sale["status"])
        self._save("sales", sale)
        self._emit("sale.update", self._sale_v09(sale))
        return [dict(f) for f in chosen]

    # -- 1.0 / 0.9 shapes and webhook emission -------------------------------------------------------

    def _emit(self, event: str, payload: dict[str, Any]) -> None:
        hooks = [h for h in self._webhooks.values() if h["active"] and h["type"] == event]
        for hook in hooks:
            form = {
                "domain_prefix": self.domain_prefix,
                "environment": "prod",
                "retailer_id": self.retailer_id,
                "type": event,
                "payload": json.dumps(payload),
            }
            headers = {"Content-Type": "application/x-www-form-urlencoded; charset=UTF-8"}
            self.deliveries.enqueue(Delivery(event, hook["url"], urlencode(form).encode(), headers))

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
        return request.headers.get("authorization", "") == f"Bearer {self.token}"

    def _rate_limit(self, now: float) -> RateDecision:
        if self._window is None:
            return RateDecision(True, {})
        full = acquire([self._window], now)
        reset_at = self._window.reset_at(now)
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
        add("PUT", f"{api}/products/{{id}}", self._put_product)
        add("DELETE", f"{api}/products/{{id}}", self._delete_product_route(family=False))
        add("DELETE", f"{api}/products/{{id}}/all", self._delete_product_route(family=True))
        add("GET", f"{api}/products/{{id}}/inventory", self._product_inventory)
        add("POST", f"{api}/customers", self._post_customer)
        add("GET", f"{api}/customers/{{id}}", self._get_route("customers"))
        add("GET", f"{api}/search", self._search)
        add("GET", f"{api}/sales/{{id}}", self._get_route("sales"))
        add("GET", f"{api}/sales/{{id}}/fulfillments", self._sale_fulfillments)
        add("POST", f"{api}/sales/{{id}}/fulfill", self._fulfill)
        add("PUT", f"{api}/sales/{{id}}/actions/return", self._return_sale)
        add("POST", f"{api}/fulfillments/{{id}}/pack", self._pack_fulfillment)
        add("POST", "/api/register_sales", self._post_register_sale)
        add("GET", f"{api}/webhooks", lambda r: Response(200, {"data": [dict(h) for h in self._webhooks.values()]}))
        add("POST", f"{api}/webhooks", self._post_webhook)
        add("GET", f"{api}/webhooks/{{id}}", lambda r: Response(200, {"data": dict(self._webhook(r))}))
        add("PUT", f"{api}/webhooks/{{id}}", self._put_webhook)
        add("DELETE", f"{api}/webhooks/{{id}}", self._delete_webhook)

    def _list_route(self, table: str) -> Callable[[Request], Response]:
        def handler(request: Request) -> Response:
            q = request.query
            deleted = q.get("deleted", "").lower() == "true"
            if table == "products" and ("sku" in q or "family_id" in q):
                # Filters by exact value; `family_id` returns a whole family (parent + variants) in one call.
                key = "sku" if "sku" in q else "family_id"
                rows = [r for r in self.tables["products"].rows.values() if r[key] == q[key]]
                return Response(200, _page_body([r for r in rows if deleted or r["deleted_at"] is None]))
            size = min(int_param(q, "page_size", DEFAULT_PAGE_SIZE, minimum=1) or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
            rows = self.tables[table].page(int_param(q, "after"), int_param(q, "before"), size, deleted)
            return Response(200, _page_body(rows))

        return handler

    def _get_route(self, table: str) -> Callable[[Request], Response]:
        return lambda request: Response(200, {"data": dict(self._get(table, request.params["id"], deleted_ok=True))})

    def _put_product(self, request: Request) -> Response:
        body = request.json_object()
        row = self._get("products", request.params["id"])
        if {"common", "details"} & set(body):
            return Response(200, {"data": self._update_product(row, body.get("details", {}), body.get("common", {}))})
        return Response(200, {"data": self._update_product(row, body)})

    def _delete_product_route(self, *, family: bool) -> Callable[[Request], Response]:
        def handler(request: Request) -> Response:
            row = self._get("products", request.params["id"])
            self._delete_product(row, family=family or row["has_variants"])
            return Response(204)

        return handler

    def _product_inventory(self, request: Request) -> Response:
        product = self._get("products", request.params["id"], deleted_ok=True)
        rows = [self.tables["inventory"].rows[i] for i in self._inventory_ids.get(product["id"], {}).values()]
        return Response(200, _page_body(rows))

    def _post_customer(self, request: Request) -> Response:
        customer = self._new("customers", self._customer_row(request.json_object()))
        self._emit("customer.update", {**customer, "updated_at": _v1_time(customer["updated_at"])})
        return Response(200, {"data": dict(customer)})

    def _search(self, request: Request) -> Response:
        q = dict(request.query)
        table = {"customers": "customers", "sales": "sales", "products": "products"}.get(q.pop("type", ""))
        if table is None:
            raise ApiError(400, "type must be customers, sales or products")
        size = int_param(q, "page_size", 1000, minimum=1) or 1000
        offset = int_param(q, "offset", 0) or 0
        filters = {k: v for k, v in q.items() if k not in ("page_size", "offset", "order_by", "order_direction")}
        code = filters.pop("product_code", None)  # products: any of `product_codes` (EAN, UPC...) equals it
        matches = [
            r
            for r in self.tables[table].live()
            if all(str(r.get(k) if r.get(k) is not None else "").lower() == v.lower() for k, v in filters.items())
            and (code is None or any(c.get("code") == code for c in r.get("product_codes") or []))
        ]
        return Response(200, {"data": [dict(r) for r in matches[offset : offset + size]]})

    def _sale_fulfillments(self, request: Request) -> Response:
        sale = self._get("sales", request.params["id"], deleted_ok=True)
        return Response(200, {"data": [dict(f) for f in self._fulfillments.get(sale["id"], [])]})

    def _fulfill(self, request: Request) -> Response:
        sale = self._get("sales", request.params["id"])
        outlet = request.json_object().get("outlet_id")
        return Response(200, {"data": self._set_fulfillments(sale, "SHIPPED", outlet)})

    def _pack_fulfillment(self, request: Request) -> Response:
        """Pack a whole fulfillment; a stale `version` is refused with 409 like the 2027-01 fulfillments API."""
        found = [
            (sale_id, f)
            for sale_id, rows in self._fulfillments.items()
            for f in rows
            if f["id"] == request.params["id"]
        ]
        if not found:
            raise ApiError(404, f"fulfillment {request.params['id']} not found")
        sale_id, fulfillment = found[0]
        version = request.json_object().get("version")
        if version is not None and version != fulfillment["version"]:
            raise ApiError(409, f"fulfillment version {version} is stale (now {fulfillment['version']})")
        if fulfillment["status"] != "NEW":
            raise ApiError(400, f"a {fulfillment['status']} fulfillment cannot be packed")
        self._set_fulfillments(self._get("sales", sale_id), "PACKED", fulfillment["outlet_id"])
        return Response(200, {"data": {"id": fulfillment["id"], "version": fulfillment["version"]}})

    def _return_sale(self, request: Request) -> Response:
        sale = self._get("sales", request.params["id"])
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
            "status": "CLOSED",
            "return_for": sale["id"],
            "register_sale_products": lines,
        }
        return Response(200, {"data": dict(self._register_sale(body))})

    def _post_register_sale(self, request: Request) -> Response:
        sale = self._register_sale(request.json_object())
        return Response(200, {"register_sale": self._sale_v09(sale)})

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
        self.narrate(f"webhook {hook['type']} subscribed")
        return Response(200, {"data": dict(hook)})

    def _put_webhook(self, request: Request) -> Response:
        hook, body = self._webhook(request), request.json_object()
        self._validate_webhook(body)
        hook.update(body)
        return Response(200, {"data": dict(hook)})

    def _delete_webhook(self, request: Request) -> Response:
        del self._webhooks[self._webhook(request)["id"]]
        return Response(204)
