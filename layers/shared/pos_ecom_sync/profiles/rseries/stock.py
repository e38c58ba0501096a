"""R-Series inventory as the stock worker reads it (`stock.sync.PosInventory`): an item's quantity on hand per shop,
what an ItemShop feed message says (nothing to trust alone), and a register's shop.

Sources: KVH = koop-voor-hoop/lightspeed-retail-client `docs/**` (a mirror of developers.lightspeedhq.com/retail).
- Levels: `GET Item/{itemID}.json?load_relations=["ItemShops"]` (KVH endpoints/item.md "GET Single item", relations
  `ItemShops`; introduction/relations.md), one call that also says whether the item exists (404: None). Each ItemShop
  row (KVH endpoints/itemshop.md) gives `shopID` (the location) and `qoh`, which may be negative (the stock rules
  count a negative as 0); the shopID "0" row is the all-shops summary and never a location.
- Registers: `GET Register.json` (KVH endpoints/register.md: `registerID`, `shopID`); a register's location is its
  shop.

Versions. R-Series rows have no version: `timeStamp` is the only order, at one-second resolution (KVH
query-parameters.md), and two edits of one shop's qoh within one second carry the same stamp. The stock rules take
an equal version for a duplicate, so a stamp alone would keep the first level read in that second for good (the
feed delivers the second edit again, as its row digest changed, but its read would be dropped). A level read here is
therefore versioned by (stamp, moment of the read): a later read of the same stamp is newer, a later stamp always
is. `version = stamp * READ_SPAN + milliseconds from (stamp - CLOCK_SKEW_S) to the read`, capped at READ_SPAN - 1:
two reads made more than a day after their stamp both saw everything stamped in that second, so their tie (a
duplicate) is right. Reads of one item run one at a time (one message group per variant), so read order is data
order except for reads that overlap in flight, where the vendor may have served them in either order.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol

from pos_ecom_sync.errors import InvalidInput
from pos_ecom_sync.models.messages import ChangeMessage
from pos_ecom_sync.models.stock import InventoryChange
from pos_ecom_sync.profiles.rseries import envelope

JsonObject = dict[str, Any]

# Milliseconds of read time one stamp's versions span (about 27.8 hours) ...
READ_SPAN = 100_000_000
# ... starting this long before the stamp: our clock may be behind the vendor's.
CLOCK_SKEW_S = 3600


class InventoryReads(Protocol):
    """What the inventory needs from the client (`client.RSeriesClient`)."""

    def get_item(self, item_id: str | int, relations: Sequence[str] = ...) -> JsonObject | None: ...
    def list_registers(self) -> list[JsonObject]: ...


def read_version(stamp_s: int, read_at_s: float) -> int:
    """The version of a level stamped `stamp_s` (epoch seconds) and read at `read_at_s`: ordered by stamp, then by
    when it was read (see the module doc)."""
    offset_ms = int((read_at_s - stamp_s + CLOCK_SKEW_S) * 1000)
    return stamp_s * READ_SPAN + min(max(offset_ms, 0), READ_SPAN - 1)


def shop_levels(item_id: str, rows: Iterable[Mapping[str, Any]], read_at_s: float) -> list[InventoryChange]:
    """An item's ItemShop rows as one level per shop; the shopID "0" summary row is left out (it sums the shops).

    A row without a readable shop, quantity or stamp raises InvalidInput: a level we cannot read is never taken as 0
    (the message is dead-lettered with the reason instead)."""
    changes: list[InventoryChange] = []
    for row in rows:
        if envelope.reference(row.get("shopID")) is None:
            continue  # the all-shops summary row (KVH itemshop.md)
        shop_id = str(row.get("shopID")).strip()
        qoh, stamp = envelope.integer(row.get("qoh")), envelope.epoch(row.get("timeStamp"))
        if not shop_id.isdigit() or qoh is None or stamp is None:
            raise InvalidInput(f"ItemShop row of item {item_id} at shop {shop_id[:20]!r} has no readable qoh or stamp")
        changes.append(
            InventoryChange(product_id=item_id, outlet_id=shop_id, level=qoh, version=read_version(stamp, read_at_s))
        )
    return changes


class RSeriesInventory:
    def __init__(self, client: InventoryReads, *, clock: Callable[[], float] = time.time) -> None:
        self.client = client
        self.clock = clock

    def location_levels(self, product_id: str) -> list[InventoryChange] | None:
        """The item's qoh at every shop, from one read; None when the item does not exist (an archived item exists:
        its stock was zeroed by the archive, KVH item.md)."""
        if not product_id.isdigit():
            raise InvalidInput(f"not an R-Series item id: {product_id[:40]!r}")
        item = self.client.get_item(product_id, ["ItemShops"])
        read_at = self.clock()  # when the answer arrived: later reads of the same stamp are newer
        if item is None:
            return None
        return shop_levels(product_id, envelope.relation(item, "ItemShops", "ItemShop"), read_at)

    def change_in(self, message: ChangeMessage) -> InventoryChange | None:
        """Always None: the worker reads the item instead. The ItemShop feed merges a page's rows of one item into
        one message (the newest row's), so a message names one shop while others may have changed with it, and its
        stamp alone cannot order two edits made within one second."""
        if message.source != "pos" or message.entity != "inventory":
            raise InvalidInput(f"not a POS inventory message: {message.source}/{message.entity}")
        return None

    def register_location(self, register_id: str) -> str | None:
        """The shop of a live register (`GET Register.json`: archived ones are not listed); None when absent."""
        for row in self.client.list_registers():
            if str(row.get("registerID", "")).strip() == register_id.strip():
                return envelope.reference(row.get("shopID"))
        return None
