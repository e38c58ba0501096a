"""The change message: what intake (webhooks, poller) puts on a concern's queue and workers consume.

A message is a hint that an entity changed; workers re-read the source of truth before acting, so a
message may be duplicated or arrive late without harm.
"""

from __future__ import annotations

import hashlib
import math
import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from pos_ecom_sync.correlation import current_correlation_id
from pos_ecom_sync.models.connection import ConnectionId

Source = Literal["pos", "ecom"]
Entity = Literal["product", "inventory", "sale", "order", "variant", "shipment", "outlets", "reservation"]
# "outlets": an operator changed the connected outlets (via "operator"), and the stock recomputation chunks it
# queues; both travel on the stock queue in one message group per connection (see stock/sync.py).
# "reservation": an open imported sale holds, or stops holding, units of a variant (stock/reservations.py).
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
    # Only for a POS profile that takes eCom edits (R-Series, seed 000): intake queues eCom product changes, and a
    # products copy of each eCom variant change, for the catalog worker (`catalog.ecom_edits`).
    ("ecom", "product"): "products",
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
    # What tells this change from another one of the entity with the same version and stamp, when the POS has no
    # version and stamps in whole seconds (R-Series: a digest of the row as read); part of the deduplication id, so
    # a second edit within one second is not dropped by SQS as a repeat of the first.
    change_key: Annotated[str, Field(max_length=64)] | None = None
    # What the row said of the entity as it arrived, computed before it is trimmed to PAYLOAD_FIELDS: a POS sale's
    # `models.sales.sale_digest` (by its profile; status sync knows the echo of its own void or payment by it), an
    # eCom order's `status.digest.ecom_order_digest` (by intake; a notice of an order state status sync has already
    # read or written is settled without a read). Not part of the deduplication id (the row's version or stamp
    # already is). None: unknown (a message queued before it existed, a row missing a field it needs), and the
    # entity is read.
    content_digest: Annotated[str, Field(max_length=64)] | None = None
    # The webhook delivery or poll/reconcile run this change came from (see `correlation`); None on messages
    # queued before correlation ids existed.
    correlation_id: Annotated[str, Field(max_length=128)] | None = Field(default_factory=current_correlation_id)

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
        return f"{self.connection_id}:{self.source}:{self.entity}:{group_id_part(self.group_key or self.entity_id)}"

    def deduplication_id(self, delivery_key: str | None = None) -> str:
        """Same change -> same id, so SQS FIFO drops a re-send within its 5-minute window.

        Webhooks pass the hash of the raw delivery; polled changes use the entity's version stamp.
        """
        basis = delivery_key or f"{self.entity_id}|{self.version}|{self.updated_at}"
        if self.change_key and not delivery_key:
            basis = f"{basis}|{self.change_key}"
        return hashlib.sha256(f"{self.connection_id}|{self.source}|{self.entity}|{basis}".encode()).hexdigest()


# SQS FIFO: a MessageGroupId is 1-128 characters of printable ASCII without space (letters, digits, punctuation).
GROUP_ID_PART_MAX = 64


def group_id_part(key: str) -> str:
    """`key` as it may appear in a MessageGroupId: as is when SQS accepts it (every real vendor id: UUIDs, digits),
    otherwise a stable hash, so an odd id (spaces, control or non-ASCII characters, a huge length) still groups
    all changes of one entity together instead of making the send fail. The connection prefix (at most 63 + 16
    characters) plus this part stays within SQS's 128."""
    if 0 < len(key) <= GROUP_ID_PART_MAX and all("!" <= ch <= "~" for ch in key):
        return key
    return "#" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:40]


# What a queued message keeps of an X-Series or eCom row (an R-Series feed names its own fields): ids, versions,
# stamps and the few fields a worker acts on without
# reading the entity again (a POS sale's `source_id`/`return_for` tell in-store sales apart; an inventory row's
# level and version; an eCom variant's stockLevel; a shipment's order). Never the whole resource: names, emails
# and addresses stay with the vendors (workers re-read what they need), and a message stays far below SQS's
# 256 KiB whatever a row holds.
PAYLOAD_FIELDS: dict[tuple[str, str], tuple[str, ...]] = {
    ("pos", "product"): ("id", "variant_parent_id", "version", "updated_at", "deleted_at"),
    ("pos", "inventory"): (
        "id",
        "product_id",
        "outlet_id",
        "version",
        "inventory_level",
        "current_inventory_level",
        "count",
        "deleted_at",
    ),
    ("pos", "sale"): ("id", "version", "updated_at", "source_id", "return_for", "status"),
    ("ecom", "order"): ("id", "number", "updatedAt"),
    ("ecom", "variant"): ("id", "stockLevel", "updatedAt"),
    ("ecom", "shipment"): ("id", "updatedAt", "order"),
}
MAX_PAYLOAD_TEXT = 128
# Characters an SQS message body may not hold: anything outside #x9 | #xA | #xD | #x20-#xD7FF | #xE000-#xFFFD |
# #x10000-#x10FFFF (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/quotas-messages.html),
# spelled as the characters refused: the negated class of the allowed ranges takes ~5 ms of every cold start to compile.
SQS_REFUSED_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_INT_RANGE = 2**63


def _small_scalar(value: Any) -> bool:
    if value is None or isinstance(value, bool):
        return True
    if isinstance(value, int):
        return -_INT_RANGE <= value < _INT_RANGE
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, str):  # a lone surrogate cannot be serialised; U+FFFF would make SQS refuse the send
        return len(value) <= MAX_PAYLOAD_TEXT and not SQS_REFUSED_TEXT.search(value)
    return False


def vendor_payload(
    source: str, entity: str, row: dict[str, Any], fields: tuple[str, ...] | None = None
) -> dict[str, Any]:
    """The part of a vendor row a queued message carries (`fields`, by default `PAYLOAD_FIELDS`: a POS profile whose
    rows are shaped otherwise names its own); values that are not small scalars are left out (the worker reads the
    entity instead). An eCom relation keeps only its id."""
    kept: dict[str, Any] = {}
    for name in fields or PAYLOAD_FIELDS.get((source, entity), ("id",)):
        value = row.get(name)
        if name == "order" and isinstance(value, dict):
            resource = value.get("resource")
            ref = resource.get("id") if isinstance(resource, dict) else value.get("id")
            if isinstance(ref, int) and not isinstance(ref, bool) and _small_scalar(ref):
                kept[name] = {"resource": {"id": ref}}
            continue
        if name in row and _small_scalar(value):
            kept[name] = value
    return kept


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
