"""The change message: what intake (webhooks, poller) puts on a concern's queue and workers consume.

A message is a hint that an entity changed; workers re-read the source of truth before acting, so a
message may be duplicated or arrive late without harm.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, model_validator

from pos_ecom_sync.models.connection import ConnectionId

Source = Literal["pos", "ecom"]
Entity = Literal["product", "inventory", "sale", "order", "variant", "shipment", "outlets"]
# "outlets": an operator changed the connected outlets (via "operator"), and the stock recomputation chunks it
# queues; both travel on the stock queue in one message group per connection (see stock/sync.py).
Concern = Literal["products", "stock", "orders", "statuses"]
Via = Literal["webhook", "poll", "reconcile", "import", "operator"]

# Which queue each kind of change belongs to. Anything not listed is acknowledged and not synced
# (e.g. POS customer edits, eCom product edits under the X-Series profile: seeds 003/004).
CONCERN_OF: dict[tuple[str, str], Concern] = {
    ("pos", "product"): "products",
    ("pos", "inventory"): "stock",
    ("pos", "sale"): "statuses",
    ("ecom", "order"): "orders",
    ("ecom", "variant"): "stock",
    ("ecom", "shipment"): "statuses",
}


class ChangeMessage(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    connection_id: ConnectionId
    source: Source
    entity: Entity
    # For inventory this is the product (variant) id: every outlet row of one variant shares a group,
    # so a variant's total is never computed by two workers at once.
    entity_id: str
    version: int | None = None
    updated_at: str | None = None
    via: Via
    received_at: datetime
    payload: dict[str, Any]
    concern: Concern
    # Entities that must never be worked on at once share a group: every row of a POS product family
    # (parent and variants) groups under the parent id, because one worker syncs the whole family.
    group_key: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _drop_legacy_action(cls, data: Any) -> Any:
        # Messages queued before eCom deliveries stopped being read for an (undocumented) `x-action` header may
        # still carry it, e.g. in a dead-letter queue awaiting redrive: it is ignored, not refused.
        if isinstance(data, dict) and "action" in data:
            return {k: v for k, v in data.items() if k != "action"}
        return data

    @property
    def message_group_id(self) -> str:
        return f"{self.connection_id}:{self.source}:{self.entity}:{self.group_key or self.entity_id}"[:128]

    def deduplication_id(self, delivery_key: str | None = None) -> str:
        """Same change -> same id, so SQS FIFO drops a re-send within its 5-minute window.

        Webhooks pass the hash of the raw delivery; polled changes use the entity's version stamp.
        """
        basis = delivery_key or f"{self.entity_id}|{self.version}|{self.updated_at}"
        return hashlib.sha256(f"{self.connection_id}|{self.source}|{self.entity}|{basis}".encode()).hexdigest()


def order_status_hint(message: ChangeMessage) -> ChangeMessage | None:
    """The status-sync copy of an eCom order change (None for anything else).

    No eCom source documents how a delivery says whether an order was created or updated, and eCom stamps
    `createdAt`/`updatedAt` in whole seconds (a payment marked within the order's first second looks unchanged), so
    every order change, webhook or sweep, is an import (a no-op once imported) and a status hint (status sync
    ignores an order not imported yet, whose import applies the order's state as it is then, and waits for one
    being imported). Both workers are idempotent, so the pair never has a double effect; the sweep's repeats of an
    unchanged order share a deduplication id, so SQS drops them.
    """
    if message.source != "ecom" or message.entity != "order":
        return None
    return message.model_copy(update={"concern": "statuses"})
