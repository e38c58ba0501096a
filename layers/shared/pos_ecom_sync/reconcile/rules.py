"""What counts as drift, and how a reconciliation run moves through its phases (pure: no I/O).

Drift rules (DESIGN §1 "reconciliation", §2 "webhooks are hints, polling is the truth"):
- Catalog: a POS family whose highest row version is above the version our state applied is outdated; a live
  family with no eCom product in our state was never created (this also retries families refused by the plan
  cap, so raising the cap heals them). A family deleted in the POS and never created needs nothing.
- Stock: a linked eCom variant whose `stockLevel` differs from the total we last wrote (or, when no write is
  confirmed, the total our per-outlet levels give) was edited by hand or missed a write; one the stock worker
  never settled (its state does not point at this eCom variant) is queued so it gets its first total. A variant
  with a write in flight is left to the worker that claimed it. eCom variants we did not create are not ours.
- A linked eCom variant that eCom no longer lists was deleted there: its POS family is queued, and catalog sync
  (checking the family against eCom) recreates it.
- Content: a POS-owned field of our eCom product (products list) or variant (variants list) that differs from
  eCom's own answer to our last write (`catalog.shown`, kept in the CatalogState) was edited by hand in eCom: its
  family is queued once per page with the fields, and catalog sync plans it against eCom's actual product, so
  exactly those fields are rewritten. eCom-owned fields are never compared; eCom-added variants and products are not
  ours; a family hidden or deleted for the POS, or unlinked, is skipped. No per-product read: list rows only.
- Orders: a recent eCom order the ledger shows neither imported nor held is queued for import.

Each finding becomes one change message (via "reconcile") for the worker that owns the concern; it is only a hint
(workers re-read the truth), so a finding that the worker then judges stale costs nothing but the message.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict

from pos_ecom_sync.catalog.shown import differing, main_image, product_shown, variant_shown
from pos_ecom_sync.intake.rows import stamp
from pos_ecom_sync.models.catalog import CatalogState, FamilyRow
from pos_ecom_sync.models.connection import ConnectionId
from pos_ecom_sync.models.links import VariantLink
from pos_ecom_sync.models.messages import ChangeMessage, Concern, Entity, Source, vendor_payload
from pos_ecom_sync.models.reconcile import Phase, ReconcileCheckpoint
from pos_ecom_sync.models.stock import VariantStockState
from pos_ecom_sync.stock.rules import desired_total

# The order a run walks through; "done" is the state between runs.
PHASES: tuple[Phase, ...] = ("catalog", "products", "variants", "orders")
DriftKind = Literal[
    "catalog_outdated",
    "catalog_missing",
    "catalog_content",
    "variant_gone",
    "stock_differs",
    "stock_unsettled",
    "order_missing",
]
DRIFT_KINDS: tuple[DriftKind, ...] = get_args(DriftKind)
# Ledger states that need no import message: done, or parked for the operator (`orders retry`).
SETTLED_ORDER_STATUSES = frozenset({"imported", "held"})
RunStep = Literal["start", "continue", "idle"]


class ReconcileTrigger(BaseModel):
    """The schedule's event (its content does not matter), or an operator's `{"connection_id": "x", "force": true}`:
    `force` starts a new run now, whatever the interval says."""

    model_config = ConfigDict(extra="allow")

    connection_id: ConnectionId | None = None
    force: bool = False


def run_step(
    checkpoint: ReconcileCheckpoint,
    now: datetime,
    interval: timedelta,
    connection_created_at: datetime,
    *,
    force: bool = False,
) -> RunStep:
    """Start a run when the last one completed `interval` ago (or the operator forces one), continue an unfinished
    one, otherwise wait. A new connection counts from its creation: its initial import is the poller's job."""
    if force:
        return "start"
    if checkpoint.in_progress:
        return "continue"
    return "start" if now >= next_due(checkpoint, interval, connection_created_at) else "idle"


def next_due(checkpoint: ReconcileCheckpoint, interval: timedelta, connection_created_at: datetime) -> datetime:
    return (checkpoint.completed_at or connection_created_at) + interval


def start_run(
    checkpoint: ReconcileCheckpoint,
    run_id: str,
    now: datetime,
    order_lookback: timedelta,
    connection_created_at: datetime,
) -> ReconcileCheckpoint:
    """A fresh run at the first phase (the previous run's completion time is kept until this one completes)."""
    return ReconcileCheckpoint(
        run_id=run_id,
        phase=PHASES[0],
        started_at=now,
        completed_at=checkpoint.completed_at,
        # Orders placed before the connection existed are not ours to import (the poller starts there too).
        orders_since=max(now - order_lookback, connection_created_at),
        revision=checkpoint.revision + 1,
    )


def advance(
    checkpoint: ReconcileCheckpoint,
    now: datetime,
    *,
    cursor: str | None,
    phase_finished: bool,
    found: Sequence[Drift] = (),
) -> ReconcileCheckpoint:
    """The checkpoint after one page of the current phase was read and its findings queued."""
    if not checkpoint.in_progress:
        raise ValueError("no reconciliation run in progress")
    pages = {**checkpoint.pages, checkpoint.phase: checkpoint.pages.get(checkpoint.phase, 0) + 1}
    drift = dict(Counter(checkpoint.drift) + Counter(d.kind for d in found))
    update: dict[str, Any] = {"pages": pages, "drift": drift, "cursor": cursor, "revision": checkpoint.revision + 1}
    if phase_finished:
        following = PHASES.index(checkpoint.phase) + 1
        update["phase"] = PHASES[following] if following < len(PHASES) else "done"
        update["cursor"] = None
        if update["phase"] == "done":
            update["completed_at"] = now
    return checkpoint.model_copy(update=update)


# -- findings ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Drift:
    """One entity that drifted, and the change message that makes its worker repair it."""

    kind: DriftKind
    concern: Concern
    source: Source
    entity: Entity
    entity_id: str
    group_key: str | None = None
    version: int | None = None
    updated_at: str | None = None
    payload: dict[str, Any] = field(default_factory=dict)
    detail: str = ""

    def message(self, connection_id: str, now: datetime) -> ChangeMessage:
        return ChangeMessage(
            connection_id=connection_id,
            source=self.source,
            entity=self.entity,
            entity_id=self.entity_id,
            version=self.version,
            updated_at=self.updated_at,
            via="reconcile",
            received_at=now,
            payload=self.payload,
            concern=self.concern,
            group_key=self.group_key,
        )

    def delivery_key(self, run_id: str) -> str:
        """One message per finding and run: a page re-read after a crash is dropped by SQS FIFO de-duplication."""
        return f"reconcile|{run_id}|{self.kind}|{self.entity_id}"


def count_by_kind(found: Iterable[Drift]) -> dict[str, int]:
    counts = Counter(d.kind for d in found)
    return {kind: counts.get(kind, 0) for kind in DRIFT_KINDS}


_INT64 = 2**63


def _int(value: Any) -> int | None:
    """A vendor integer (or its ASCII digits) within 64 bits; None for anything else ("²".isdigit() is true)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 19:
        value = int(value)
    return value if isinstance(value, int) and not isinstance(value, bool) and -_INT64 <= value < _INT64 else None


def _family_drift(kind: DriftKind, key: str, version: int | None, detail: str, **payload: Any) -> Drift:
    return Drift(
        kind=kind,
        concern="products",
        source="pos",
        entity="product",
        entity_id=key,
        group_key=key,  # the poller's group for every row of the family: one worker syncs it at a time
        version=version,
        payload={"id": key, "reconcile": kind, **payload},
        detail=detail,
    )


def catalog_drift(rows: Sequence[FamilyRow], states: Mapping[str, CatalogState]) -> list[Drift]:
    """Families of a page of POS product rows (deleted rows included) that are outdated or missing in eCom.

    A family may straddle pages: each page judges the rows it holds (a later row with a higher version, or a live
    row of a family seen only deleted so far, is found on its own page).
    """
    versions: dict[str, int] = {}
    live: set[str] = set()
    for row in rows:
        key, version = row.family_key, row.stamp
        if version is not None:
            versions[key] = max(version, versions.get(key, version))
        else:
            versions.setdefault(key, -1)
        if not row.deleted:
            live.add(key)
    found: list[Drift] = []
    for key, version in versions.items():
        state = states.get(key) or CatalogState()
        if state.unlinked_reason:
            continue  # deleted by hand in eCom under the "unlink" policy: out of eCom until the operator relinks it
        if state.ecom_product_id is None:
            if key in live and not state.deleted_in_pos:
                found.append(_family_drift("catalog_missing", key, version, "no eCom product for this POS family"))
            continue
        if state.applied_version is None or version > state.applied_version:
            detail = f"POS version {version} > applied {state.applied_version}"
            found.append(_family_drift("catalog_outdated", key, version, detail))
    return found


def _comparable(state: CatalogState | None, ecom_product_id: int) -> bool:
    """Whether this family's eCom content is ours to compare: its product is live for the POS and is this one."""
    return (
        state is not None
        and state.ecom_product_id == ecom_product_id
        and not state.deleted_in_pos
        and state.unlinked_reason is None
    )


def product_content_drift(
    products: Sequence[Mapping[str, Any]], families: Mapping[int, str], states: Mapping[str, CatalogState]
) -> list[Drift]:
    """Our products on a page of eCom products whose POS-owned fields (or main image) differ from eCom's answer to
    our last write. `families`: eCom product id -> POS family key (from the variant links)."""
    found: list[Drift] = []
    for row in products:
        product_id = _int(row.get("id"))
        key = families.get(product_id) if product_id is not None else None
        state = states.get(key) if key is not None else None
        if key is None or product_id is None or state is None or not _comparable(state, product_id):
            continue  # a product the merchant made in eCom, or one we no longer manage as live
        names = list(differing(state.product_shown, product_shown(row)))
        if state.main_image is not None and "image" in row and main_image(row) != state.main_image:
            names.append("image")
        if names:
            detail = f"eCom product {product_id} edited in eCom: {', '.join(names)}"
            found.append(_family_drift("catalog_content", key, None, detail, ecom_product_id=product_id, fields=names))
    return found


def variant_content_drift(
    variants: Sequence[Mapping[str, Any]], links: Mapping[int, VariantLink], states: Mapping[str, CatalogState]
) -> list[Drift]:
    """Families with a linked variant on a page of eCom variants whose POS-owned fields differ from eCom's answer to
    our last write (one finding per family and page)."""
    edited: dict[str, dict[str, list[str]]] = {}
    for row in variants:
        ecom_id = _int(row.get("id"))
        link = links.get(ecom_id) if ecom_id is not None else None
        if link is None:
            continue  # a variant the merchant added in eCom: not ours
        state = states.get(link.family_key)
        ref = state.variants.get(link.pos_product_id) if state is not None else None
        if (
            state is None
            or ref is None
            or ref.ecom_variant_id != ecom_id
            or not _comparable(state, ref.ecom_product_id)
        ):
            continue
        names = differing(state.variants_shown.get(link.pos_product_id, {}), variant_shown(row))
        if names:
            edited.setdefault(link.family_key, {})[str(ecom_id)] = list(names)
    return [
        _family_drift(
            "catalog_content",
            key,
            None,
            "eCom variant(s) edited in eCom: " + "; ".join(f"{i} {', '.join(n)}" for i, n in fields.items()),
            fields=fields,
        )
        for key, fields in edited.items()
    ]


def stock_finding(
    state: VariantStockState, ecom_variant_id: int, level: int | None, connected_outlets: Sequence[str]
) -> DriftKind | None:
    """Whether one linked eCom variant's `stockLevel` drifted from what the stock worker settled."""
    if level is None or state.claims:
        return None  # nothing to compare, or a write is in flight and its worker settles it
    if state.ecom_variant_id != ecom_variant_id:
        return "stock_unsettled"  # the stock worker never wrote this variant (its created webhook was lost)
    expected = state.last_written
    if expected is None and connected_outlets:
        expected = desired_total(state, connected_outlets)
    if expected is None or expected == level:
        return None
    return "stock_differs"


def stock_drift(
    variants: Sequence[Mapping[str, Any]],
    links: Mapping[int, VariantLink],
    states: Mapping[str, VariantStockState],
    connected_outlets: Sequence[str],
) -> list[Drift]:
    """Linked variants of a page of eCom variants whose stock drifted: each goes to the stock worker as an eCom
    variant change, the path that reverts a hand edit (it writes the POS total if the level differs)."""
    found: list[Drift] = []
    for row in variants:
        ecom_id = _int(row.get("id"))
        link = links.get(ecom_id) if ecom_id is not None else None
        if ecom_id is None or link is None:
            continue  # a variant the merchant added in eCom: not ours
        state = states.get(link.pos_product_id) or VariantStockState(product_id=link.pos_product_id)
        level = _int(row.get("stockLevel"))
        kind = stock_finding(state, ecom_id, level, connected_outlets)
        if kind is None:
            continue
        found.append(
            Drift(
                kind=kind,
                concern="stock",
                source="ecom",
                entity="variant",
                entity_id=str(ecom_id),
                # No `updated_at`: this level was read just now, so the worker must not take it for a late echo
                # of an older write of ours (that check is for webhooks); eCom's stamp stays in the payload.
                payload={**vendor_payload("ecom", "variant", dict(row)), "id": ecom_id, "stockLevel": level},
                detail=f"eCom shows {level}, we last wrote {state.last_written}",
            )
        )
    return found


def gone_variants(
    links: Mapping[int, VariantLink],
    linked_ids: Sequence[int],
    seen: Iterable[int],
    after: int | None,
    upto: int | None,
) -> list[Drift]:
    """Linked eCom variants in the id range a page covered, `(after, upto]` (`upto` None: to the end), that eCom did
    not list: deleted in eCom. One products message per POS family; `linked_ids` is sorted."""
    start = 0 if after is None else bisect.bisect_right(linked_ids, after)
    stop = len(linked_ids) if upto is None else bisect.bisect_right(linked_ids, upto)
    listed = set(seen)
    families: dict[str, list[int]] = {}
    for ecom_id in linked_ids[start:stop]:
        if ecom_id not in listed:
            families.setdefault(links[ecom_id].family_key, []).append(ecom_id)
    return [
        _family_drift("variant_gone", key, None, f"eCom variant(s) {ids} gone", ecom_variant_ids=ids)
        for key, ids in families.items()
    ]


def order_drift(orders: Sequence[Mapping[str, Any]], statuses: Mapping[int, str]) -> list[Drift]:
    """Orders of a page the ledger does not show imported or held."""
    found: list[Drift] = []
    for order in orders:
        order_id = _int(order.get("id"))
        if order_id is None or statuses.get(order_id) in SETTLED_ORDER_STATUSES:
            continue
        found.append(
            Drift(
                kind="order_missing",
                concern="orders",
                source="ecom",
                entity="order",
                entity_id=str(order_id),
                updated_at=stamp(order.get("updatedAt")),
                # The order's id, number and stamp: never its customer (the worker reads the order).
                payload={**vendor_payload("ecom", "order", dict(order)), "id": order_id},
                detail=f"ledger: {statuses.get(order_id, 'no entry')}",
            )
        )
    return found
