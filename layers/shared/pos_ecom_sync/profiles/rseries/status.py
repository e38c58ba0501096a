"""R-Series sales as the status worker reads and changes them (`status.sync.PosSales`).

Sources: KVH = koop-voor-hoop/lightspeed-retail-client `docs/**` (a mirror of developers.lightspeedhq.com/retail).

Reads: a sale with its lines and payments (`GET Sale/{id}.json?load_relations=["SaleLines","SalePayments"]`, KVH
sale.md), mapped by `profiles.rseries.sales.sale_of_row`; for a refund, the original lines its refund lines name
(`GET SaleLine.json?saleLineID=IN,[...]`, KVH saleline.md): one read per refund, none for any other sale, and none
again while the reference cache keeps them (a line never moves to another sale); payment types
(`GET PaymentType.json`, kept in the reference cache under the key the order importer uses); an item's SKU
(`customSku`, KVH item.md).
Writes (`PUT Sale/{id}.json`, KVH sale.md "PUT Update a sale"):
- void: `voided: true`. SaleVoid is read-only (KVH salevoid.md), so this is the API's only void; it is not
  documented as a PUT attribute (contract `unverified`), so the answer is checked and a sale that is not voided
  raises UpstreamError (the message is retried, then dead-lettered with the reason), never reported as done.
- pay: one SalePayment of the amount (its `remoteReference` names the order and the amount, KVH salepayment.md) with
  `completed: true` once the payments reach the total ("If the sale is completed ... the payments will be equal to
  the total", KVH sale.md; "the sale must be balanced", tutorials/sales.md). A completed sale is finalized: its stock
  leaves the shop, and the status rules apply no later change to it.
Both writes give back the sale as they leave it (`sales.written_sale`: its digest, which the Sale feed's message of
that change carries, `feeds` `content_digest`; whether it is still open), so status sync reads nothing for its own
write's echo, and releases the units held for a sale our write voided or completed when that echo arrives.
R-Series has no fulfilments: `fulfillments` is empty, so the rules never plan a fulfil or a pack; those two raise.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

from pos_ecom_sync.errors import NotFound, UpstreamError
from pos_ecom_sync.models.connection import Connection
from pos_ecom_sync.models.messages import ChangeMessage
from pos_ecom_sync.models.sales import PosFulfillment, PosSale, SaleHint, WrittenSale
from pos_ecom_sync.profiles.rseries import envelope
from pos_ecom_sync.profiles.rseries.sales import (
    ParentLine,
    live_payments,
    parent_line_of,
    payment_row,
    refund_parents,
    sale_hint_of,
    sale_of_row,
    written_sale,
)
from pos_ecom_sync.reference import ReferenceCache
from pos_ecom_sync.status.rules import PAID_TOLERANCE

if TYPE_CHECKING:
    from pos_ecom_sync.models.orders import PaymentType

JsonObject = dict[str, Any]


class SaleCalls(Protocol):
    @property
    def calls(self) -> int: ...
    def get_sale(self, sale_id: str | int) -> JsonObject | None: ...
    def get_sale_lines(self, line_ids: list[str] | tuple[str, ...]) -> list[JsonObject]: ...
    def update_sale(self, sale_id: str | int, fields: JsonObject) -> JsonObject: ...
    def list_payment_types(self) -> list[JsonObject]: ...
    def get_item(self, item_id: str | int, relations: list[str] | tuple[str, ...] = ()) -> JsonObject | None: ...


class NoFulfillments(Exception):
    """An R-Series sale has no fulfilments to complete or pack (never planned: `fulfillments` is always empty)."""


class RSeriesSales:
    def __init__(self, client: SaleCalls, connection: Connection, reference: ReferenceCache | None = None) -> None:
        self.client = client
        self.connection = connection
        self.reference = reference or ReferenceCache()
        self._rows: dict[str, JsonObject] = {}  # each sale's row as last read (its payments name the next one)

    @property
    def calls(self) -> int:
        return self.client.calls

    def sale(self, sale_id: str) -> PosSale | None:
        if not str(sale_id).strip().isdigit():
            return None  # not an R-Series saleID (e.g. an order ledger's own key): no such sale
        row = self.client.get_sale(sale_id)
        if row is None:
            return None
        sale = sale_of_row(row, self._parent_lines(refund_parents(row)))
        self._rows[sale.sale_id] = row
        return sale

    def _parent_lines(self, line_ids: tuple[str, ...]) -> dict[str, ParentLine]:
        """The original lines a refund names: one read, kept in the reference cache under those ids (a sale line
        never moves to another sale; a refund given more lines names other ids, so it is read again)."""
        if not line_ids:
            return {}
        key = f"{self.connection.connection_id}|{self.connection.pos_base_url}|salelines|{','.join(line_ids)}"
        rows = self.reference.get(key, lambda: self.client.get_sale_lines(line_ids))
        parents = (parent_line_of(row) for row in rows)
        return {parent.line_id: parent for parent in parents if parent is not None and parent.line_id in line_ids}

    def fulfillments(self, sale_id: str) -> tuple[PosFulfillment, ...]:
        return ()

    def sale_hint(self, message: ChangeMessage) -> SaleHint:
        return sale_hint_of(message)

    def payment_types(self) -> list[PaymentType]:
        # Read only to record a payment: the order worker's models and rules stay out of status sync's usual record.
        from pos_ecom_sync.profiles.rseries.orders import payment_types_of

        key = f"{self.connection.connection_id}|{self.connection.pos_base_url}|payment_types"  # the importer's too
        return payment_types_of(self.reference.get(key, self.client.list_payment_types))

    def sku_of(self, product_id: str) -> str | None:
        if not str(product_id).strip().isdigit():
            return None
        sku = (self.client.get_item(product_id) or {}).get("customSku")
        return str(sku) if sku else None

    def void(self, sale: PosSale) -> WrittenSale | None:
        answer = self.client.update_sale(sale.sale_id, {"voided": "true"})
        if not envelope.flag(answer.get("voided")):
            raise UpstreamError(
                "rseries", 200, f"sale {sale.sale_id} is not voided after PUT voided=true", "PUT", "Sale"
            )
        return written_sale(sale, voided=True)

    def record_payment(self, sale: PosSale, payment_type_id: str, amount: Decimal) -> WrittenSale | None:
        """Pay `amount` on the sale as last read; completes it when the payments then reach its total. The payment's
        `remoteReference` is "<reference>:paid:<n>" (n = its place among the sale's live payments)."""
        row = self._rows.get(sale.sale_id) or self.client.get_sale(sale.sale_id)
        if row is None:
            raise NotFound(f"rseries: sale {sale.sale_id} no longer exists")
        reference = f"{sale.reference or sale.sale_id}:paid:{len(live_payments(row)) + 1}"
        fields: JsonObject = {"SalePayments": {"SalePayment": [payment_row(payment_type_id, amount, reference)]}}
        completed = sale.paid + amount >= sale.total - PAID_TOLERANCE
        if completed:
            fields["completed"] = "true"
        self.client.update_sale(sale.sale_id, fields)
        return written_sale(sale, completed=completed, paid=amount)

    def complete_fulfillments(self, sale: PosSale) -> WrittenSale | None:
        raise NoFulfillments(f"R-Series sale {sale.sale_id} has no fulfilments to complete")

    def pack(self, fulfillment: PosFulfillment) -> None:
        raise NoFulfillments(f"R-Series has no fulfilment {fulfillment.fulfillment_id} to pack")
