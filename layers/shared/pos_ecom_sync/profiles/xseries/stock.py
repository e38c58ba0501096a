"""X-Series inventory as the stock worker reads it (`stock.sync.PosInventory`): a variant's level per outlet from
`GET /api/2.0/products/{id}/inventory`, the level a feed row or webhook carries, and a register's outlet."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from pos_ecom_sync.errors import InvalidInput, NotFound
from pos_ecom_sync.models.messages import ChangeMessage
from pos_ecom_sync.models.stock import InventoryChange

JsonObject = dict[str, Any]


# Field names X-Series uses for an outlet's level: API 2.0, the 2026-07 API, and 1.0-shaped webhooks.
LEVEL_FIELDS = ("inventory_level", "current_inventory_level", "count")


def _version_of(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _level_of(value: object) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(str(value))
    except ValueError:
        return None
    # eCom levels are whole units; a fractional POS level (weighed goods) offers only its whole part.
    return int(number) if math.isfinite(number) else None


def level_in_row(row: Mapping[str, object]) -> int | None:
    """The level an inventory row carries, from the first of `LEVEL_FIELDS` it has (None: none readable). The stock
    worker and order routing read a row the same way, so routing on a fresh read and on the stock state agree."""
    return _level_of(next((row[name] for name in LEVEL_FIELDS if row.get(name) is not None), None))


def inventory_change_of_row(row: Mapping[str, object]) -> InventoryChange | None:
    """Read an X-Series inventory row (2.0, 2026-07 or 1.0 shape).

    None when the row cannot be trusted on its own: no `version` (1.0 webhooks carry none, and X-Series retries
    them for 48 h, so an old `count` may arrive after a newer one) or no readable level. The worker then reads
    the POS inventory instead; such a row is never taken as zero. A deleted row (`deleted_at`) is level 0.
    """
    product_id, outlet_id = row.get("product_id"), row.get("outlet_id")
    if not isinstance(product_id, str) or not product_id or not isinstance(outlet_id, str) or not outlet_id:
        raise InvalidInput("inventory row needs product_id and outlet_id")
    version = _version_of(row.get("version"))
    if version is None:
        return None
    level = 0 if row.get("deleted_at") else level_in_row(row)
    if level is None:
        return None
    return InventoryChange(product_id=product_id, outlet_id=outlet_id, level=level, version=version)


def inventory_change_from_message(message: ChangeMessage) -> InventoryChange | None:
    """The versioned level a POS inventory message carries, or None when the worker must read the POS instead."""
    if message.source != "pos" or message.entity != "inventory":
        raise InvalidInput(f"not a POS inventory message: {message.source}/{message.entity}")
    row: dict[str, object] = {"product_id": message.entity_id, **message.payload}
    if message.version is not None:
        row["version"] = message.version
    return inventory_change_of_row(row)


def register_outlet_of(registers: Iterable[Mapping[str, Any]], register_id: str) -> str | None:
    """The outlet of register `register_id` in the POS registers list (rows of X-Series GET /api/2.0/registers:
    `id`, `outlet_id`, `deleted_at`); None when the register is not there or is deleted."""
    for row in registers:
        if str(row.get("id")) == register_id and not row.get("deleted_at"):
            outlet = row.get("outlet_id")
            return str(outlet) if outlet else None
    return None


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
