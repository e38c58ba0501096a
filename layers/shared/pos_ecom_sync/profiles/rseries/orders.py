"""R-Series as the order importer sees it (`orders.importer.PosOrders`): find an imported sale again, match and route
lines, the reference lists (registers, payment types: cached per warm sandbox), customers, and the sale itself
(`profiles.rseries.sales`).

Sources: KVH = koop-voor-hoop/lightspeed-retail-client `docs/**` (a mirror of developers.lightspeedhq.com/retail).

- Finding a sale again: R-Series chooses the saleID, so the importer's sale key is never the sale's id. The sale
  carries `referenceNumber` "ecom-<order id>" with `referenceNumberSource` "eCom" (KVH sale.md fields), and a retry
  asks `Sale.json?referenceNumber=&referenceNumberSource=&archived=true` (both filters declared in the contract). An
  ignored filter would answer every sale: the client keeps only rows carrying both values, and this adapter checks
  again and refuses (InvalidInput) a row that is not this order's, so a wrong sale is never adopted.
- Lines: SKU is `customSku` (`Item.json?customSku=`), a barcode `itemCode` ("matches the UPC or EAN code, or itemID",
  KVH item.md), kept only when the UPC or EAN itself equals the code (an itemID that happens to equal an EAN is not
  a barcode match). Archived items are never sold.
- Stock for routing: ItemShop `qoh` per shop (KVH itemshop.md), the shopID "0" all-shops row skipped; a negative
  level is passed on as it is (the router counts it as 0).
- What every sale needs: a register (`registerID`, `shopID`, KVH register.md) and the employee who makes it: the
  register's `openEmployeeID` when it names one, else none is sent [unverified: whether the POS then takes the
  token's employee or refuses; a refusal fails the order with the vendor's message, retried and then dead-lettered].
- Paying: a paid integrated order is created completed with one SalePayment of the total the eCom order's lines add up
  to (the documented one-request completed sale, KVH tutorials/sales.md). R-Series computes tax itself, so when its
  total differs "the sale must be balanced" refuses the request and stores nothing: the sale is then created open,
  and paid with its own total in a second request (the X-Series rule: a payment is the sale's own total), with a
  warning naming both totals. A crash between those two requests leaves the sale open and unpaid (adopted as it is;
  staff take the payment at the till), which the importer reports as a warning when it happens in-process.
- A cancelled order is created with `voided: true`; whether a create may void is undocumented, so an answer that is
  not voided is voided at once by `PUT voided=true` (KVH sale.md `voided`; the only void write the API has: SaleVoid
  is read-only, KVH salevoid.md).
- R-Series has no fulfilments: `fulfillments` is always empty, so no new-fulfilment event is ever sent.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Protocol

from pos_ecom_sync.errors import InvalidInput, UpstreamError
from pos_ecom_sync.models.connection import Connection
from pos_ecom_sync.models.orders import CreatedSale, FoundSale, PaymentType, PosCustomer, Register, SaleFulfillment
from pos_ecom_sync.orders.customers import normalise_email
from pos_ecom_sync.orders.payments import RecordPayment
from pos_ecom_sync.orders.sale import CENT, SaleDraft
from pos_ecom_sync.profiles.rseries import envelope
from pos_ecom_sync.profiles.rseries.sales import (
    REFERENCE_SOURCE,
    build_sale,
    import_payment_reference,
    payment_row,
)
from pos_ecom_sync.reference import ReferenceCache

JsonObject = dict[str, Any]


class SaleCalls(Protocol):
    @property
    def calls(self) -> int: ...
    def find_sale_by_reference(self, reference: str, source: str) -> JsonObject | None: ...
    def create_sale(self, sale: JsonObject) -> JsonObject: ...
    def update_sale(self, sale_id: str | int, fields: JsonObject) -> JsonObject: ...
    def find_items_by_sku(self, custom_sku: str) -> list[JsonObject]: ...
    def find_items_by_code(self, code: str) -> list[JsonObject]: ...
    def get_item(self, item_id: str | int, relations: list[str] | tuple[str, ...] = ()) -> JsonObject | None: ...
    def list_registers(self) -> list[JsonObject]: ...
    def list_payment_types(self) -> list[JsonObject]: ...
    def find_customers_by_email(self, email: str) -> list[JsonObject]: ...
    def create_customer(self, first_name: str, last_name: str, email: str) -> JsonObject: ...


def _live(row: JsonObject) -> bool:
    return not envelope.flag(row.get("archived"))


def _item_ids(rows: list[JsonObject]) -> list[str]:
    ids = (envelope.reference(row.get("itemID")) for row in rows if _live(row))
    return sorted({item_id for item_id in ids if item_id is not None})


def registers_of(rows: list[JsonObject]) -> list[Register]:
    """Live registers, each with its shop as its location (KVH register.md `shopID`)."""
    found = []
    for row in rows:
        register_id = envelope.reference(row.get("registerID"))
        if register_id is not None and _live(row):
            found.append(Register(register_id, envelope.reference(row.get("shopID"))))
    return found


def payment_types_of(rows: list[JsonObject]) -> list[PaymentType]:
    """Live payment types (KVH paymenttype.md `paymentTypeID`, `name`, `archived`)."""
    found = []
    for row in rows:
        type_id = envelope.reference(row.get("paymentTypeID"))
        if type_id is not None and _live(row):
            found.append(PaymentType(type_id, str(row.get("name") or "")))
    return found


def customer_of(row: JsonObject, email: str) -> PosCustomer:
    """A Customer read with its Contact (KVH customer.md): the address that matched the search (else its first)."""
    contact = row.get("Contact")
    addresses = [
        str(entry.get("address") or "").strip()
        for entry in (envelope.relation(contact, "Emails", "ContactEmail") if isinstance(contact, dict) else [])
    ]
    wanted = normalise_email(email)
    matched = next((a for a in addresses if normalise_email(a) == wanted), addresses[0] if addresses else None)
    return PosCustomer(
        id=str(row.get("customerID")),
        email=matched,
        first_name=row.get("firstName") or None,
        last_name=row.get("lastName") or None,
        created_at=row.get("createTime") or None,
        deleted_at=(row.get("timeStamp") or "archived") if envelope.flag(row.get("archived")) else None,
    )


class RSeriesOrders:
    def __init__(self, client: SaleCalls, connection: Connection, reference: ReferenceCache) -> None:
        self.client = client
        self.connection = connection
        self.reference = reference

    @property
    def calls(self) -> int:
        return self.client.calls

    def _cached(self, name: str, read: Any) -> list[JsonObject]:
        key = f"{self.connection.connection_id}|{self.connection.pos_base_url}|{name}"  # status sync's key too
        rows: list[JsonObject] = self.reference.get(key, read)
        return rows

    # -- finding an imported sale again -----------------------------------------------------------------

    def find_sale(self, sale_key: str, reference: str) -> FoundSale | None:
        """The sale carrying the order's reference (`sale_key` is ours alone: R-Series chose the saleID)."""
        row = self.client.find_sale_by_reference(reference, REFERENCE_SOURCE)
        if row is None:
            return None
        found = (str(row.get("referenceNumber") or ""), str(row.get("referenceNumberSource") or ""))
        if found != (reference, REFERENCE_SOURCE):
            raise InvalidInput(
                f"R-Series sale {row.get('saleID')} carries the reference {found[0]!r} from {found[1]!r}, "
                f"not {reference!r} from {REFERENCE_SOURCE!r}: not adopted"
            )
        sale_id = envelope.reference(row.get("saleID"))
        if sale_id is None:
            raise InvalidInput(f"the R-Series sale found for {reference!r} has no saleID: not adopted")
        return FoundSale(sale_id, envelope.reference(row.get("customerID")))

    def fulfillments(self, sale_id: str) -> list[SaleFulfillment]:
        """None: R-Series sales have no fulfilments."""
        return []

    # -- lines ------------------------------------------------------------------------------------------

    def sellable_by_sku(self, sku: str) -> list[str]:
        return _item_ids(self.client.find_items_by_sku(sku))

    def sellable_by_barcode(self, code: str) -> list[str]:
        wanted = code.strip()
        rows = self.client.find_items_by_code(wanted)
        return _item_ids([r for r in rows if wanted and wanted in (str(r.get("ean") or ""), str(r.get("upc") or ""))])

    def routing_levels(self, product_id: str, *, confirm_exists: bool) -> dict[str, int] | None:
        """Shop -> qoh of an item that still exists (one read with its ItemShops); None when it is gone or archived.
        `confirm_exists` needs no extra call here: the item is read either way."""
        item = self.client.get_item(product_id, ["ItemShops"])
        if item is None or not _live(item):
            return None
        levels: dict[str, int] = {}
        for row in envelope.relation(item, "ItemShops", "ItemShop"):
            shop = envelope.reference(row.get("shopID"))
            if shop is None:  # shopID "0": the all-shops summary row
                continue
            levels[shop] = envelope.integer(row.get("qoh")) or 0
        return levels

    # -- reference lists ----------------------------------------------------------------------------------

    def registers(self) -> list[Register]:
        return registers_of(self._register_rows())

    def _register_rows(self) -> list[JsonObject]:
        return self._cached("registers", self.client.list_registers)

    def payment_types(self) -> list[PaymentType]:
        return payment_types_of(self._cached("payment_types", self.client.list_payment_types))

    def prepare_sale(self) -> None:
        """Every sale needs a register of its shop: the account must list one."""
        if not self.registers():
            raise InvalidInput("the R-Series account lists no register to make online sales on")

    def _register_for(self, shop_id: str, online_register_id: str) -> tuple[str, str | None, list[str]]:
        """(register, employee, warnings) of a sale sold from `shop_id`: the online register when it is that shop's,
        else the shop's first register, else the online register (warned)."""
        rows = [r for r in self._register_rows() if _live(r)]
        by_id = {envelope.reference(r.get("registerID")): r for r in rows}
        online = by_id.get(online_register_id)
        warnings: list[str] = []
        of_shop = next((r for r in rows if envelope.reference(r.get("shopID")) == shop_id), None)
        if online is not None and envelope.reference(online.get("shopID")) == shop_id:
            chosen = online
        elif of_shop is not None:
            chosen = of_shop
        else:
            chosen = online or {"registerID": online_register_id}
            warnings.append(f"shop {shop_id} has no register: the sale is made on register {online_register_id}")
        register_id = envelope.reference(chosen.get("registerID")) or online_register_id
        return register_id, envelope.reference(chosen.get("openEmployeeID")), warnings

    # -- customers and the sale ---------------------------------------------------------------------------

    def customers_by_email(self, email: str) -> list[PosCustomer]:
        return [customer_of(row, email) for row in self.client.find_customers_by_email(email)]

    def create_customer(self, first_name: str, last_name: str, email: str, code: str) -> str:
        """`code` is not sent: an R-Series Customer has no customer code (KVH customer.md fields)."""
        created = self.client.create_customer(first_name, last_name, email)
        customer_id = envelope.reference(created.get("customerID"))
        if customer_id is None:
            raise UpstreamError("rseries", 200, "customer created without a customerID", "POST", "Customer.json")
        return customer_id

    def create_sale(self, draft: SaleDraft) -> CreatedSale:
        """`POST Sale.json`; UpstreamError when the POS refuses it (the importer then looks the sale up by its
        reference before failing)."""
        shop_id = draft.plan.assignments[0].outlet_id
        register_id, employee_id, notes = self._register_for(shop_id, draft.register_id)
        payment = draft.payment
        type_id = payment.payment_type_id if isinstance(payment, RecordPayment) else None
        try:
            sale = build_sale(
                draft, shop_id=shop_id, register_id=register_id, employee_id=employee_id, payment_type_id=type_id
            )
        except ValueError as exc:
            raise InvalidInput(str(exc)) from exc
        warnings = [*notes, *sale.warnings]
        if not sale.paid:
            created = self.client.create_sale(sale.body)
            if draft.cancelled and not envelope.flag(created.get("voided")):
                created = self._void_after_create(created, warnings)
            return self._created(created, warnings)
        try:
            created = self.client.create_sale(sale.body)
        except UpstreamError:
            # "the sale must be balanced" (KVH tutorials/sales.md): a POS that taxes the lines otherwise than eCom
            # refuses the payment, and stores nothing. Create it open, then pay the POS's own total.
            assert type_id is not None
            return self._create_then_pay(draft, sale.body, type_id, sale.expected_total, warnings)
        return self._created(created, warnings)

    def _create_then_pay(
        self, draft: SaleDraft, body: JsonObject, type_id: str, expected: Decimal, warnings: list[str]
    ) -> CreatedSale:
        open_body = {k: v for k, v in body.items() if k != "SalePayments"} | {"completed": "false"}
        created = self.client.create_sale(open_body)
        sale_id = envelope.reference(created.get("saleID"))
        total = envelope.decimal(created.get("total"))
        if sale_id is None or total is None:
            return self._created(created, [*warnings, "the POS answered the sale without its id or total: unpaid"])
        if abs(total - expected) > CENT:
            warnings.append(f"the POS totals the sale {total:.2f}, the eCom order lines {expected:.2f}")
        payment = payment_row(type_id, total, import_payment_reference(draft))
        try:
            paid = self.client.update_sale(sale_id, {"completed": "true", "SalePayments": {"SalePayment": [payment]}})
        except UpstreamError as refused:
            note = f"the POS refused the payment of {total:.2f} ({refused.status}): the sale stays open and unpaid"
            return self._created(created, [*warnings, note])
        return self._created(paid, warnings)

    def _void_after_create(self, created: JsonObject, warnings: list[str]) -> JsonObject:
        """Void a cancelled order's sale the create left open. The sale exists either way: a void that does not take
        is a warning on the import (status sync voids it on the order's next change), never a failed import."""
        sale_id = envelope.reference(created.get("saleID"))
        if sale_id is None:
            return created
        try:
            voided = self.client.update_sale(sale_id, {"voided": "true"})
        except UpstreamError as refused:
            warnings.append(f"the POS refused to void sale {sale_id} ({refused.status}): it stays open")
            return created
        if not envelope.flag(voided.get("voided")):
            warnings.append(f"sale {sale_id} is not voided after PUT voided=true: it stays open")
        return voided

    @staticmethod
    def _created(row: JsonObject, warnings: list[str]) -> CreatedSale:
        sale_id = envelope.reference(row.get("saleID"))
        if sale_id is None:
            raise UpstreamError("rseries", 200, "sale answer without a saleID", "POST", "Sale.json")
        # saleID is always the POS's; an open sale leaves its units' qoh as it is until it completes.
        pending = not envelope.flag(row.get("completed")) and not envelope.flag(row.get("voided"))
        return CreatedSale(sale_id, tuple(warnings), pos_chooses_ids=True, stock_pending=pending)
