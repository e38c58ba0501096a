"""X-Series inventory as the stock worker reads it (`stock.sync.PosInventory`): a variant's level per outlet from
`GET /api/2.0/products/{id}/inventory`, the level a feed row or webhook carries, and a register's outlet."""

from __future__ import annotations

from typing import Any, Protocol

from pos_ecom_sync.errors import NotFound
from pos_ecom_sync.models.messages import ChangeMessage
from pos_ecom_sync.models.stock import InventoryChange
from pos_ecom_sync.profiles.xseries.mapping import (
    inventory_change_from_message,
    inventory_change_of_row,
    register_outlet_of,
)

JsonObject = dict[str, Any]


class InventoryReads(Protocol):
    def list_product_inventory(self, product_id: str) -> list[JsonObject]: ...
    def list_registers(self) -> list[JsonObject]: ...


class XSeriesInventory:
    def __init__(self, client: InventoryReads) -> None:
        self.client = client

    def location_levels(self, product_id: str) -> list[InventoryChange] | None:
        try:
            rows = self.client.list_product_inventory(product_id)
        except NotFound:
            return None
        changes = [inventory_change_of_row({**row, "product_id": product_id}) for row in rows]
        return [change for change in changes if change is not None]

    def change_in(self, message: ChangeMessage) -> InventoryChange | None:
        return inventory_change_from_message(message)

    def register_location(self, register_id: str) -> str | None:
        return register_outlet_of(self.client.list_registers(), register_id)
