"""X-Series sales as the status worker reads and changes them (`status.sync.PosSales`).

Reads: a sale through API 2.0 (`GET /api/2.0/sales/{id}`), its fulfilments through the 2026-07 Fulfillments API
(`GET /api/2026-07/fulfillments?sale_id=`), payment types (`GET /api/2.0/payment_types`, kept in the reference cache
under the key the order importer uses), a product's SKU (`GET /api/2.0/products/{id}`).
Writes: void and pay through API 0.9 (`POST /api/register_sales` re-stating the sale as last read, with the change),
each giving back the sale as its body leaves it (its digest, `sales.written_digest`, never from the undocumented
answer), which the sale.update webhook and the sales feed echo back (`webhooks`, `feeds`: `content_digest`);
fulfil (`POST /api/2026-07/fulfillments/fulfill`, which completes every fulfilment of the sale; it gives back the
digests the sale may then show, its status as read or closed, `sales.fulfilled_digests`, as the POS decides) and pack
(`POST /api/2026-07/fulfillments/{id}/pack` at the version read); a 409 on either raises Conflict.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

from pos_ecom_sync.errors import NotFound
from pos_ecom_sync.models.connection import Connection
from pos_ecom_sync.models.messages import ChangeMessage
from pos_ecom_sync.models.sales import PosFulfillment, PosSale, SaleHint, WrittenSale
from pos_ecom_sync.profiles.xseries.sales import (
    VOIDED_STATUS,
    existing_payments,
    fulfilled_digests,
    fulfillment_of_row,
    register_sale_update,
    sale_hint_of,
    sale_of_row,
    written_digest,
)
from pos_ecom_sync.reference import ReferenceCache

if TYPE_CHECKING:
    from pos_ecom_sync.models.orders import PaymentType

JsonObject = dict[str, Any]


class SaleCalls(Protocol):
    @property
    def calls(self) -> int: ...
    def get_sale(self, sale_id: str) -> JsonObject | None: ...
    def list_fulfillments(self, sale_id: str) -> list[JsonObject]: ...
    def list_payment_types(self) -> list[JsonObject]: ...
    def update_register_sale(self, sale: JsonObject) -> JsonObject: ...
    def fulfill_sale(self, sale_id: str) -> list[JsonObject]: ...
    def pack_fulfillment(
        self, fulfillment_id: str, version: int, line_items: Sequence[tuple[str, Decimal]]
    ) -> JsonObject: ...
    def get_product(self, product_id: str) -> JsonObject | None: ...


class XSeriesSales:
    def __init__(self, client: SaleCalls, connection: Connection, reference: ReferenceCache | None = None) -> None:
        self.client = client
        self.connection = connection
        self.reference = reference or ReferenceCache()
        # The row of each sale as last read: API 0.9 changes a sale by re-stating it, lines and payments included.
        self._rows: dict[str, JsonObject] = {}

    @property
    def calls(self) -> int:
        return self.client.calls

    def sale(self, sale_id: str) -> PosSale | None:
        row = self.client.get_sale(sale_id)
        if row is None:
            return None
        sale = sale_of_row(row)
        self._rows[sale.sale_id] = row
        return sale

    def fulfillments(self, sale_id: str) -> tuple[PosFulfillment, ...]:
        return tuple(fulfillment_of_row(row) for row in self.client.list_fulfillments(sale_id))

    def sale_hint(self, message: ChangeMessage) -> SaleHint:
        return sale_hint_of(message)

    def payment_types(self) -> list[PaymentType]:
        # Read only to record a payment: the order models stay out of status sync's usual record.
        from pos_ecom_sync.profiles.xseries.orders import payment_types_of

        key = f"{self.connection.connection_id}|{self.connection.pos_base_url}|payment_types"  # the importer's too
        return payment_types_of(self.reference.get(key, self.client.list_payment_types))

    def sku_of(self, product_id: str) -> str | None:
        sku = (self.client.get_product(product_id) or {}).get("sku")
        return str(sku) if sku else None

    def void(self, sale: PosSale) -> WrittenSale | None:
        row = self._row(sale)
        body = register_sale_update(row, status=VOIDED_STATUS)
        self.client.update_register_sale(body)
        return _written(row, body)

    def record_payment(self, sale: PosSale, payment_type_id: str, amount: Decimal) -> WrittenSale | None:
        row = self._row(sale)
        payments = [*existing_payments(row), {"retailer_payment_type_id": payment_type_id, "amount": float(amount)}]
        body = register_sale_update(row, status=str(row["status"]), payments=payments)
        self.client.update_register_sale(body)
        return _written(row, body)

    def complete_fulfillments(self, sale: PosSale) -> WrittenSale | None:
        row = self._row(sale)
        self.client.fulfill_sale(sale.sale_id)
        first, *others = fulfilled_digests(row) or (None,)
        return WrittenSale(first, also=tuple(others)) if first is not None else None

    def pack(self, fulfillment: PosFulfillment) -> None:
        if fulfillment.version is None:
            raise ValueError(f"fulfillment {fulfillment.fulfillment_id} has no version to pack at")
        self.client.pack_fulfillment(fulfillment.fulfillment_id, fulfillment.version, fulfillment.to_pack)

    def _row(self, sale: PosSale) -> JsonObject:
        row = self._rows.get(sale.sale_id)
        if row is None:  # a sale this adapter did not read: read it now
            row = self.client.get_sale(sale.sale_id)
            if row is None:
                raise NotFound(f"xseries: sale {sale.sale_id} no longer exists")
            self._rows[sale.sale_id] = row
        return row


def _written(row: JsonObject, body: JsonObject) -> WrittenSale | None:
    """The sale as a 0.9 update left it, from what was sent (the 0.9 answer is undocumented). An X-Series sale takes
    its stock when made (no `stock_pending`)."""
    digest = written_digest(row, body)
    return WrittenSale(digest) if digest is not None else None
