"""Stock: per-outlet POS levels and the eCom total derived from them (POS is the source of truth)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class OutletStock(BaseModel):
    """One X-Series inventory row; `inventory_level` may be negative (oversold in store)."""

    model_config = ConfigDict(extra="ignore")

    product_id: str
    outlet_id: str
    inventory_level: int
    version: int

    @classmethod
    def from_pos_row(cls, row: dict[str, object]) -> OutletStock:
        # API 2.0 reads `inventory_level`; the 2026-07 API renamed it; 1.0 webhooks call it `count`.
        level = row.get("inventory_level", row.get("current_inventory_level", row.get("count")))
        if level is None:
            raise ValueError("inventory row has no level")
        return cls(
            product_id=str(row["product_id"]),
            outlet_id=str(row["outlet_id"]),
            inventory_level=int(float(str(level))),
            version=int(str(row.get("version") or 0)),
        )


def online_total(levels: dict[str, int], connected_outlets: list[str]) -> int:
    """eCom stockLevel = sum over connected outlets, a negative outlet counting as zero (seeds 002/003)."""
    return sum(max(0, levels.get(outlet, 0)) for outlet in connected_outlets)
