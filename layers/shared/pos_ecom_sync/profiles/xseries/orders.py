"""X-Series as the order importer sees it (`orders.importer.PosOrders`): find an imported sale again, match and
route lines, the reference lists (registers, users, taxes, payment types: cached per warm sandbox), customers, and
the 2026-07 sale itself (`profiles.xseries.sale`).

Finding a sale again: its id is ours (`SaleRequest.id`, "User-provided sale ID", X26 sales), so a retry reads it by
that id (`GET /api/2026-07/sales/{id}`); no search is involved (the vendor declares no search by external reference).
A sale with that id but another reference is not ours to adopt: the order fails loudly instead of taking it over.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from pos_ecom_sync.errors import InvalidInput, NotFound
from pos_ecom_sync.models.connection import Connection
from pos_ecom_sync.models.orders import (
    CreatedSale,
    FoundSale,
    NotifiedLine,
    PaymentType,
    PosCustomer,
    Register,
    SaleFulfillment,
)
from pos_ecom_sync.orders.sale import SaleDraft
from pos_ecom_sync.profiles.xseries.sale import TaxTable, build_sale
from pos_ecom_sync.profiles.xseries.stock import level_in_row
from pos_ecom_sync.reference import ReferenceCache

JsonObject = dict[str, Any]


# -- the reference lists and sale rows ---------------------------------------------------------------------


def _live(rows: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [row for row in rows if row.get("id") and not row.get("deleted_at")]


def payment_types_of(rows: Iterable[Mapping[str, Any]]) -> list[PaymentType]:
    """The live payment types of `GET /api/2.0/payment_types`."""
    return [PaymentType(str(row["id"]), str(row.get("name") or "")) for row in _live(rows)]


def registers_of(rows: Iterable[Mapping[str, Any]]) -> list[Register]:
    """The live registers of `GET /api/2.0/registers`, in the POS's order, with their outlets."""
    return [Register(str(row["id"]), str(row.get("outlet_id") or "") or None) for row in _live(rows)]


def sellable_ids(rows: Iterable[Mapping[str, Any]]) -> list[str]:
    """Ids of live products that can be on a sale line (a family parent cannot)."""
    return sorted({str(row["id"]) for row in _live(rows) if not row.get("has_variants")})


def sale_reference(sale: Mapping[str, Any]) -> str:
    """The external reference of a sale: `source.id` (2026-07) or `source_id` (2.0)."""
    source = sale.get("source")
    if isinstance(source, Mapping) and source.get("id"):
        return str(source["id"])
    return str(sale.get("source_id") or "")


def _quantity(value: Any) -> int:
    """A fulfilment line quantity: a number, or a decimal string ("5.00") on the 2026-07 Fulfillments API."""
    try:
        return int(float(value or 0))
    except (TypeError, ValueError):
        return 0


def fulfillments_of(rows: Iterable[Mapping[str, Any]]) -> list[SaleFulfillment]:
    """A sale's fulfilments (2026-07 Fulfillments API `FulfillmentSummaryItem`): new = nothing done yet, state OPEN
    (status NEW on older shapes)."""
    return [
        SaleFulfillment(
            location_id=str(row.get("outlet_id")),
            new=str(row.get("state") or row.get("status") or "OPEN").upper() in ("OPEN", "NEW"),
            lines=tuple(
                NotifiedLine(product_id=str(line.get("product_id")), quantity=_quantity(line.get("quantity")))
                for line in row.get("line_items") or []
            ),
        )
        for row in rows
        if row.get("outlet_id")
    ]


class SaleCalls(Protocol):
    @property
    def calls(self) -> int: ...
    def find_sale(self, sale_id: str) -> JsonObject | None: ...
    def list_fulfillments(self, sale_id: str) -> list[JsonObject]: ...
    def search_customers(self, email: str) -> list[JsonObject]: ...
    def create_customer(
        self, first_name: str, last_name: str, email: str, customer_code: str | None = None
    ) -> JsonObject: ...
    def create_sale(self, sale: JsonObject) -> JsonObject: ...
    def find_products_by_sku(self, sku: str) -> list[JsonObject]: ...
    def get_product(self, product_id: str) -> JsonObject | None: ...
    def list_product_inventory(self, product_id: str) -> list[JsonObject]: ...
    def list_payment_types(self) -> list[JsonObject]: ...
    def list_registers(self) -> list[JsonObject]: ...
    def list_users(self) -> list[JsonObject]: ...
    def list_taxes(self) -> list[JsonObject]: ...


class XSeriesOrders:
    def __init__(self, client: SaleCalls, connection: Connection, reference: ReferenceCache) -> None:
        self.client = client
        self.connection = connection
        self.reference = reference

    @property
    def calls(self) -> int:
        return self.client.calls

    def _cached(self, name: str, read: Any) -> list[JsonObject]:
        rows: list[JsonObject] = self.reference.get(
            f"{self.connection.connection_id}|{self.connection.pos_base_url}|{name}", read
        )
        return rows

    # -- finding an imported sale again -----------------------------------------------------------------

    def find_sale(self, sale_key: str, reference: str) -> FoundSale | None:
        sale = self.client.find_sale(sale_key)
        if sale is None:
            return None
        found = sale_reference(sale)
        if found and found != reference:
            raise InvalidInput(f"POS sale {sale_key} carries the reference {found!r}, not {reference!r}: not adopted")
        return FoundSale(str(sale.get("id") or sale_key), str(sale.get("customer_id") or "") or None)

    def fulfillments(self, sale_id: str) -> list[SaleFulfillment]:
        return fulfillments_of(self.client.list_fulfillments(sale_id))

    # -- lines ------------------------------------------------------------------------------------------

    def sellable_by_sku(self, sku: str) -> list[str]:
        return sellable_ids(self.client.find_products_by_sku(sku))

    def sellable_by_barcode(self, code: str) -> list[str] | None:
        """None: no X-Series search or list declares a barcode filter (an undeclared one would be ignored)."""
        return None

    def routing_levels(self, product_id: str, *, confirm_exists: bool) -> dict[str, int] | None:
        """Outlet -> level of a product that still exists; None when it is gone. `confirm_exists`: read the product
        first (one matched by our variant link may have been deleted since; whether its inventory still answers then
        is undocumented); one matched by SKU came from a live list."""
        if confirm_exists:
            product = self.client.get_product(product_id)
            if product is None or product.get("deleted_at"):
                return None
        try:
            rows = self.client.list_product_inventory(product_id)
        except NotFound:
            return None
        live = [row for row in rows if not row.get("deleted_at")]
        if rows and not live:
            return None
        return {str(row.get("outlet_id")): level_in_row(row) or 0 for row in live}  # unreadable: nothing to take

    # -- reference lists ----------------------------------------------------------------------------------

    def registers(self) -> list[Register]:
        return registers_of(self._cached("registers", self.client.list_registers))

    def payment_types(self) -> list[PaymentType]:
        return payment_types_of(self._cached("payment_types", self.client.list_payment_types))

    def prepare_sale(self) -> None:
        """Load what every sale needs before anything is written (a missing user or tax holds nothing back: it is a
        configuration error the operator fixes in the POS)."""
        self._author_id()
        self._taxes()

    def _author_id(self) -> str:
        """The POS user the sale is made by (`source.author_id`, required; ids from `GET /api/2.0/users`): the
        account's primary user, else an admin, else any enabled user."""
        users = self._cached("users", self.client.list_users)
        live = [u for u in users if u.get("id") and not u.get("deleted_at") and u.get("enabled", True) is not False]
        chosen = (
            next((u for u in live if u.get("is_primary_user")), None)
            or next((u for u in live if u.get("account_type") == "admin"), None)
            or (live[0] if live else None)
        )
        if chosen is None:
            raise InvalidInput("the POS lists no enabled user to make online sales with (source.author_id)")
        return str(chosen["id"])

    def _taxes(self) -> TaxTable:
        try:
            return TaxTable.from_taxes(self._cached("taxes", self.client.list_taxes))
        except ValueError as exc:
            raise InvalidInput(str(exc)) from exc

    # -- customers and the sale ---------------------------------------------------------------------------

    def customers_by_email(self, email: str) -> list[PosCustomer]:
        return [PosCustomer.model_validate(row) for row in self.client.search_customers(email)]

    def create_customer(self, first_name: str, last_name: str, email: str, code: str) -> str:
        return str(self.client.create_customer(first_name, last_name, email, customer_code=code)["id"])

    def create_sale(self, draft: SaleDraft) -> CreatedSale:
        """`POST /api/2026-07/sales` with our sale id; UpstreamError when the POS refuses it."""
        sale = build_sale(draft, author_id=self._author_id(), taxes=self._taxes())
        created = self.client.create_sale(sale.body)
        return CreatedSale(str(created.get("id") or draft.sale_key), sale.warnings)
