"""Stock worker: the I/O around the pure stock rules (`stock.rules`, `stock.outlets`).

Messages on the stock queue, and what each does:
- POS inventory (webhook or poll row, one message group per variant): apply the versioned level (stale and
  duplicate ones are dropped), then write eCom `stockLevel` = sum over the connected outlets if it changed. A
  versionless level (1.0 webhook) is never trusted: the variant's inventory is read from the POS instead.
- eCom variant (variants/created|updated webhook): a level other than our total is a manual edit and is reverted
  (the POS is the truth); the webhook echo of one of our own writes is recognised and costs nothing.
- Outlets (entity "outlets"): an operator changed the connected outlets (`request_outlet_change`, which also
  stops routing orders by the shipping methods of a disconnected outlet) or the register, whose outlet always
  counts (`request_register_change`): the operator is told which methods to
  disable in eCom (`ShippingMethodsToDisable`), and a recomputation job is queued; each job message then
  settles one bounded chunk of variants and queues the next chunk (one message group per connection, so an
  outlet change and its chunks run one at a time, in order).

Never a wrong number: an unknown level (missing or failed read, versionless webhook) is never taken as 0; every
write goes through the claim protocol of `stock.rules` on conditional saves; the records of one variant in one
SQS batch are coalesced into one write of the latest total (`StockBatch`); a total equal to what eCom holds
makes no call. Every step is safe to repeat: levels are versioned, writes are absolute.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import ValidationError

from pos_ecom_sync.errors import Conflict, InvalidInput, NotFound, RateLimited, UpstreamError, UpstreamUnavailable
from pos_ecom_sync.models.connection import Connection
from pos_ecom_sync.models.messages import ChangeMessage
from pos_ecom_sync.models.stock import AppliedOutlets, InventoryChange, RecomputeJob, StockChunk, VariantStockState
from pos_ecom_sync.queues import Outgoing
from pos_ecom_sync.stock import NEW_VARIANT_STOCK_TRACKING
from pos_ecom_sync.stock.outlets import (
    DEFAULT_CHUNK_SIZE,
    Chunk,
    advance,
    is_superseded,
    outlets_for_register,
    plan_outlet_change,
    refuse_excluding_register_outlet,
    retire_shipping_methods,
    start_recompute,
)
from pos_ecom_sync.stock.reservations import RESERVATION_ENTITY, reservation_of
from pos_ecom_sync.stock.rules import (
    NoWrite,
    WriteStock,
    abandon_write,
    apply_changes,
    apply_inventory_read,
    begin_write,
    ecom_level_from_message,
    finish_write,
    hold_stock,
    holds_order,
    is_own_echo,
    link_ecom_variant,
    moved_below_zero,
    release_claim,
    release_stock,
    remember_echo,
    stock_write_decision,
)

if TYPE_CHECKING:
    from pos_ecom_sync.models.links import VariantLink

JsonObject = dict[str, Any]
# entity_id of every "outlets" message: all of a connection's outlet work shares one message group.
OUTLETS_ENTITY_ID = "outlets"
# Lost races on one variant before the message is failed and retried later.
MAX_ROUNDS = 8
# The catalog worker records an eCom variant right after creating it; its variants/created webhook may come first.
LINK_GRACE_SECONDS = 30.0
LINK_RETRY_SECONDS = 10.0

Apply = Callable[[VariantStockState], tuple[VariantStockState, int]]


class PosInventory(Protocol):
    """The connection's POS inventory, as its profile reads it (e.g. `profiles.xseries.stock.XSeriesInventory`)."""

    def location_levels(self, product_id: str) -> list[InventoryChange] | None:
        """The variant's level at every location, from one successful read; None when the POS has no such product.
        A failed read raises: it never becomes a level."""
        ...

    def change_in(self, message: ChangeMessage) -> InventoryChange | None:
        """The level a POS inventory message carries, or None when it cannot be trusted alone (read the POS)."""
        ...

    def register_location(self, register_id: str) -> str | None:
        """The location of a register; None when the register is not there (or deleted)."""
        ...


class EcomStock(Protocol):
    def update_variant(self, variant_id: int, fields: JsonObject) -> JsonObject: ...


class StockStateStore(Protocol):
    def get_stock(self, connection_id: str, pos_product_id: str) -> VariantStockState: ...
    def save_stock(self, connection_id: str, loaded_revision: int, new_state: VariantStockState) -> None: ...
    def stock_chunk(self, connection_id: str, after: str | None, limit: int) -> StockChunk: ...
    def get_applied_outlets(self, connection_id: str) -> AppliedOutlets: ...
    def save_applied_outlets(
        self, connection_id: str, applied: AppliedOutlets, outlets: Sequence[str], primary_outlet_id: str | None
    ) -> AppliedOutlets: ...


class VariantLinks(Protocol):
    def variant_link(
        self, connection_id: str, *, pos_product_id: str | None = None, ecom_variant_id: int | None = None
    ) -> VariantLink | None: ...


class Publisher(Protocol):
    def publish(self, outgoing: Sequence[Outgoing]) -> int: ...


class ConnectionStore(Protocol):
    def get_connection(self, connection_id: str) -> Connection | None: ...
    def save_connection(self, connection: Connection, *, create: bool = False) -> None: ...


class LinkPending(RateLimited):
    """An eCom variant that may be one the catalog worker has just created, not recorded yet: the message is
    delayed briefly (as a throttled one is), never taken for a variant that is not ours."""

    def __init__(self, retry_at: float, ecom_variant_id: str) -> None:
        super().__init__("stock", retry_at, f"eCom variant {ecom_variant_id} is not linked yet")


@dataclass
class StockResult:
    subject: str  # POS variant id, eCom variant id, or "outlets"
    # "written", "deferred", "superseded", "recomputed", "outlets applied", "ignored", or a NoWrite reason
    outcome: str
    ecom_writes: int = 0  # variant stock PUTs
    ecom_calls: int = 0  # every eCom call
    pos_reads: int = 0
    variants: int = 0  # variants settled (recomputation chunks)
    level: int | None = None  # the total written last
    # Shipping methods whose outlet was disconnected: no longer routed; eCom has no API to disable them.
    shipping_methods_to_disable: tuple[str, ...] = ()
    reason: str = ""
    note: str = ""

    def add(self, other: StockResult) -> None:
        self.ecom_writes += other.ecom_writes
        self.ecom_calls += other.ecom_calls
        self.pos_reads += other.pos_reads


def _unchanged(state: VariantStockState) -> tuple[VariantStockState, int]:
    return state, 0


# Register -> outlet, per cold start: the default connected outlet is the online register's (seed 001).
_REGISTER_OUTLETS: dict[tuple[str, str], str | None] = {}


class StockSync:
    """Stock sync of one connection (one instance per connection and message)."""

    def __init__(
        self,
        connection: Connection,
        pos: PosInventory,
        ecom: EcomStock,
        store: StockStateStore,
        links: VariantLinks,
        publisher: Publisher,
        *,
        clock: Callable[[], float] = time.time,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> None:
        self.connection = connection
        self.pos = pos
        self.ecom = ecom
        self.store = store
        self.links = links
        self.publisher = publisher
        self.clock = clock
        self.chunk_size = chunk_size
        self._outlets: tuple[str, ...] | None = None

    @property
    def cid(self) -> str:
        return self.connection.connection_id

    # -- entry point ----------------------------------------------------------------------------------

    def handle(self, message: ChangeMessage, *, later_in_batch: bool = False) -> StockResult:
        """Handle one stock-queue message; `later_in_batch`: another record of this variant follows in the batch."""
        if message.connection_id != self.cid:
            raise InvalidInput(f"message of {message.connection_id!r} given to the worker of {self.cid!r}")
        if message.source == "pos" and message.entity == "inventory":
            return self.inventory_changed(message, defer_write=later_in_batch)
        if message.source == "ecom" and message.entity == "variant":
            return self.ecom_variant_changed(message)
        if message.entity == "outlets":
            if "job" in message.payload:
                return self.recompute_chunk(message)
            return self.apply_outlet_change(message)
        if message.entity == RESERVATION_ENTITY:
            return self.reservation_changed(message)
        raise InvalidInput(f"not a stock message: {message.source}/{message.entity}")

    def connected_outlets(self) -> tuple[str, ...]:
        """The connection's connected outlets, which include its stored register outlet (the model requires it).

        A connection saved before the register's outlet was stored, with no outlet chosen, counts the outlet of
        its online register, looked up once per cold start (the behaviour it was set up with; `connections update
        <id> --register <id>` stores the outlet)."""
        if self._outlets is None:
            chosen = self.connection.connected_outlet_ids
            register = self.connection.online_register_id
            if chosen:
                self._outlets = tuple(sorted(set(chosen)))
            elif register:
                key = (self.cid, register)
                if key not in _REGISTER_OUTLETS:
                    _REGISTER_OUTLETS[key] = self.pos.register_location(register)
                outlet = _REGISTER_OUTLETS[key]
                self._outlets = (outlet,) if outlet else ()
            else:
                self._outlets = ()
        return self._outlets

    # -- POS inventory --------------------------------------------------------------------------------

    def inventory_changed(self, message: ChangeMessage, *, defer_write: bool = False) -> StockResult:
        change = self.pos.change_in(message)
        link = self.links.variant_link(self.cid, pos_product_id=message.entity_id)

        def apply(state: VariantStockState) -> tuple[VariantStockState, int]:
            return apply_changes(state, [change]) if change is not None else (state, 0)

        return self._settle(
            message.entity_id,
            apply,
            link=link.ecom_variant_id if link else None,
            force_read=change is None,  # versionless: the message's level cannot be trusted, the POS can
            defer_write=defer_write,
        )

    # -- eCom variants ----------------------------------------------------------------------------------

    def ecom_variant_changed(self, message: ChangeMessage) -> StockResult:
        try:
            ecom_id = int(message.entity_id)
        except ValueError as exc:
            raise InvalidInput(f"eCom variant id {message.entity_id!r} is not an integer") from exc
        link = self.links.variant_link(self.cid, ecom_variant_id=ecom_id)
        if link is None:
            if self.clock() < message.received_at.timestamp() + LINK_GRACE_SECONDS:
                raise LinkPending(self.clock() + LINK_RETRY_SECONDS, message.entity_id)
            return StockResult(message.entity_id, "ignored", note="not a variant we sync")
        # Deliveries do not say whether the variant was created, edited or deleted (no source documents an action),
        # so the level it shows is compared with our total: a creation (ours shows the level before our first write)
        # or a manual edit gets the total written; a deleted variant answers the write 404 and is left to catalog sync.
        return self._settle(
            link.pos_product_id,
            _unchanged,
            link=link.ecom_variant_id,
            ecom_seen=ecom_level_from_message(message),
            ecom_updated_at=message.updated_at,
        )

    # -- units held by open online sales ------------------------------------------------------------------

    def reservation_changed(self, message: ChangeMessage) -> StockResult:
        """Hold an open online sale's units back from the total, or stop holding them (`stock.reservations`).

        A release comes once the sale completed (the POS took the units) or was voided: it is applied together with
        a POS read made after that, in one save, so the units are never counted twice nor counted back before the
        POS shows them taken. A repeated release, or one of units never held, reads nothing."""
        try:
            order_key, quantity = reservation_of(message)
        except ValueError as exc:
            raise InvalidInput(str(exc)) from exc
        now = self.clock()
        link = self.links.variant_link(self.cid, pos_product_id=message.entity_id)

        def apply(state: VariantStockState) -> tuple[VariantStockState, int]:
            if quantity is None:
                released, changed = release_stock(state, order_key, now)
                return released, int(changed and holds_order(state, order_key))
            held, changed = hold_stock(state, order_key, quantity, now)
            return held, int(changed)

        return self._settle(
            message.entity_id,
            apply,
            link=link.ecom_variant_id if link else None,
            read_when_applied=quantity is None,
        )

    # -- outlets ----------------------------------------------------------------------------------------

    def apply_outlet_change(self, message: ChangeMessage) -> StockResult:
        """Queue the recomputation, record what is applied, and name the shipping methods to disable by hand."""
        applied = self.store.get_applied_outlets(self.cid)
        wanted = self.connected_outlets()
        if applied.revision:
            old, old_primary = applied.outlets, applied.primary_outlet_id
        else:  # never applied here: the operator's request carries what was connected before it
            old = tuple(str(o) for o in message.payload.get("previous_outlets") or [])
            previous = message.payload.get("previous_primary_outlet_id")
            old_primary = str(previous) if previous else None
        primary = self.connection.primary_outlet_id
        if primary is not None and primary not in wanted:
            primary = None  # the connection model allows it only while no outlet is chosen
        retired = tuple(str(m) for m in message.payload.get("retired_shipping_methods") or [])
        plan = plan_outlet_change(old, wanted, old_primary, primary)
        if applied.revision and not plan.recompute_needed and not plan.primary_changed:
            return StockResult(
                OUTLETS_ENTITY_ID,
                "unchanged",
                note="these outlets are already applied",
                shipping_methods_to_disable=retired,
            )
        if plan.recompute_needed:
            job = start_recompute(self.cid, wanted, self.chunk_size).model_copy(
                update={"job_id": str(applied.revision + 1)}
            )
            self.publisher.publish([recompute_message(job, self._now())])
        self.store.save_applied_outlets(self.cid, applied, wanted, plan.primary_outlet_id)
        note = f"added {list(plan.added)}, removed {list(plan.removed)}, primary {plan.primary_outlet_id}"
        if retired:
            note += f"; shipping methods {list(retired)} no longer route orders: disable them in the eCom back office"
        return StockResult(OUTLETS_ENTITY_ID, "outlets applied", note=note, shipping_methods_to_disable=retired)

    def recompute_chunk(self, message: ChangeMessage) -> StockResult:
        """Settle one chunk of variants against the current outlets and queue the next chunk."""
        try:
            job = RecomputeJob.model_validate(message.payload["job"])
        except ValidationError as exc:
            raise InvalidInput(f"invalid recomputation job: {exc}") from exc
        if job.connection_id != self.cid:
            raise InvalidInput(f"recomputation job of {job.connection_id!r} given to {self.cid!r}")
        if is_superseded(job, self.connected_outlets()):
            return StockResult(OUTLETS_ENTITY_ID, "superseded", note="the outlets changed again: a newer job runs")
        chunk = self.store.stock_chunk(self.cid, job.after, job.chunk_size)
        result = StockResult(OUTLETS_ENTITY_ID, "recomputed", variants=len(chunk.entries))
        for entry in chunk.entries:
            result.add(
                self._settle(entry.pos_product_id, _unchanged, link=entry.ecom_variant_id, preloaded=entry.state)
            )
        following = advance(job, Chunk(tuple(e.pos_product_id for e in chunk.entries), chunk.next_after))
        if following is not None:
            self.publisher.publish([recompute_message(following, self._now())])
        result.note = (
            f"job {job.job_id}: {len(chunk.entries)} variant(s) after {job.after!r}, next {chunk.next_after!r}"
        )
        return result

    # -- one variant: decide and write through the claim protocol ---------------------------------------------

    def _settle(
        self,
        pos_id: str,
        apply: Apply,
        *,
        link: int | None,
        preloaded: VariantStockState | None = None,
        force_read: bool = False,
        read_when_applied: bool = False,
        defer_write: bool = False,
        ecom_seen: int | None = None,
        ecom_updated_at: str | None = None,
    ) -> StockResult:
        """Apply, decide and write one variant. `force_read`: read the POS levels whatever `apply` did;
        `read_when_applied`: read them when `apply` changed something."""
        outlets = self.connected_outlets()
        result = StockResult(pos_id, "unchanged")
        read: list[InventoryChange] | None = None
        for _ in range(MAX_ROUNDS):
            loaded = preloaded if preloaded is not None else self.store.get_stock(self.cid, pos_id)
            preloaded = None
            state, applied = apply(loaded)
            must_read = force_read or (read_when_applied and applied > 0)
            below_zero = moved_below_zero(loaded, state, outlets)
            state, _ = link_ecom_variant(state, link)
            seen = None if ecom_seen is None or is_own_echo(state, ecom_seen, ecom_updated_at) else ecom_seen
            decision = stock_write_decision(state, outlets, seen, sold_below_zero=below_zero)
            # A deferred record leaves unknown outlets to the batch's last record (one read, not one per record); a
            # versionless level is read even so: the records after it may not cover its outlet.
            wants_read = isinstance(decision, NoWrite) and decision.reason == "needs_pos_read" and not defer_write
            if (must_read and state.ecom_variant_id is not None) or wants_read:
                if read is None:
                    result.pos_reads += 1
                    found = self._read_pos(pos_id)
                    if found is None:
                        result.outcome, result.note = "ignored", "the POS has no such product: nothing written"
                        return result
                    read = found
                state, _ = apply_inventory_read(state, read, outlets)
                below_zero = below_zero or moved_below_zero(loaded, state, outlets)
                decision = stock_write_decision(state, outlets, seen, sold_below_zero=below_zero)
            # Deferring a move below zero would hide it from the batch's last record (it loads the state saved here).
            defer = defer_write and not below_zero
            if isinstance(decision, NoWrite) or defer:
                if state != loaded:
                    try:
                        self.store.save_stock(self.cid, loaded.revision, state)
                    except Conflict:
                        continue
                result.outcome = "deferred" if defer else decision.reason
                return result
            claimed = begin_write(state, decision, self.clock())
            try:
                self.store.save_stock(self.cid, loaded.revision, claimed)
            except Conflict:
                continue
            answer = self._put(decision, claimed.revision)
            result.ecom_writes += 1
            result.ecom_calls += 1
            if answer is None:
                result.outcome, result.note = "ignored", "the eCom variant is gone: catalog sync recreates it"
                return result
            updated_at = answer.get("updatedAt")
            confirmed = self._finish(decision, claimed.revision, updated_at if isinstance(updated_at, str) else None)
            result.level, result.reason = decision.level, decision.reason
            if confirmed:
                result.outcome = "written"
                return result
            # Someone saved after our claim and may have written before our PUT landed: decide again.
            ecom_seen, force_read = None, False
        raise Conflict(f"stock state of {pos_id} kept changing; retried later")

    def _read_pos(self, pos_id: str) -> list[InventoryChange] | None:
        """The variant's levels from a successful POS read; None when the POS has no such product.

        A failed read raises (the message is retried): it never becomes a level, least of all 0.
        """
        return self.pos.location_levels(pos_id)

    def _put(self, write: WriteStock, claimed_revision: int) -> JsonObject | None:
        """PUT the level; None when the eCom variant no longer exists. Settles the claim of a failed call."""
        body = {**write.ecom_body(), "stockTracking": NEW_VARIANT_STOCK_TRACKING}
        try:
            return self.ecom.update_variant(write.ecom_variant_id, body)
        except RateLimited:
            # Refused by the rate budget before it was sent: eCom is untouched.
            self._update(write.product_id, lambda s: release_claim(s, claimed_revision))
            raise
        except NotFound:
            self._update(write.product_id, lambda s: abandon_write(s, claimed_revision))
            return None
        except UpstreamError:
            self._update(write.product_id, lambda s: abandon_write(s, claimed_revision))
            raise
        except UpstreamUnavailable as exc:
            if exc.__cause__ is None:  # eCom answered (5xx): the call is over, whatever it did
                self._update(write.product_id, lambda s: abandon_write(s, claimed_revision))
            # Else it timed out or the connection broke: the PUT may still land, so the claim stays (it makes
            # every decision write until it expires, so a late landing is always overwritten).
            raise

    def _update(self, pos_id: str, transition: Callable[[VariantStockState], VariantStockState]) -> None:
        for _ in range(MAX_ROUNDS):
            current = self.store.get_stock(self.cid, pos_id)
            try:
                self.store.save_stock(self.cid, current.revision, transition(current))
                return
            except Conflict:
                continue
        raise Conflict(f"stock state of {pos_id} kept changing; retried later")

    def _finish(self, write: WriteStock, claimed_revision: int, updated_at: str | None) -> bool:
        for _ in range(MAX_ROUNDS):
            current = self.store.get_stock(self.cid, write.product_id)
            finished, confirmed = finish_write(current, write, claimed_revision)
            try:
                self.store.save_stock(self.cid, current.revision, remember_echo(finished, write.level, updated_at))
                return confirmed
            except Conflict:
                continue
        raise Conflict(f"stock state of {write.product_id} kept changing; retried later")

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)


# -- batches --------------------------------------------------------------------------------------------------


class StockBatch:
    """The POS inventory records of one SQS batch, counted per variant.

    A record followed in the batch by another of its variant only records its level; the last one decides and
    writes the latest total, so a burst costs one eCom write per batch. (A failed record fails the rest of its
    message group too, so the record that decides is always retried with them.)
    """

    def __init__(self, pending: Counter[tuple[str, str]] | None = None) -> None:
        self._pending: Counter[tuple[str, str]] = pending or Counter()

    @classmethod
    def of(cls, event: dict[str, Any]) -> StockBatch:
        pending: Counter[tuple[str, str]] = Counter()
        for record in event.get("Records", []):
            try:
                message = ChangeMessage.model_validate_json(record["body"])
            except (KeyError, TypeError, ValidationError):
                continue  # the worker fails it on its own
            if message.source == "pos" and message.entity == "inventory":
                pending[(message.connection_id, message.entity_id)] += 1
        return cls(pending)

    def later_in_batch(self, message: ChangeMessage) -> bool:
        """Call once per record, in order: whether another record of the same variant follows this one."""
        if message.source != "pos" or message.entity != "inventory":
            return False
        key = (message.connection_id, message.entity_id)
        if self._pending[key] > 0:
            self._pending[key] -= 1
        return self._pending[key] > 0


# -- operator requests and job messages ----------------------------------------------------------------------------


def outlet_change_message(
    connection_id: str,
    previous_outlets: Sequence[str],
    previous_primary: str | None,
    now: datetime,
    retired_shipping_methods: Sequence[str] = (),
) -> Outgoing:
    """The stock-queue message that makes the worker apply a connection's (already saved) outlet settings."""
    message = ChangeMessage(
        connection_id=connection_id,
        source="pos",
        entity="outlets",
        entity_id=OUTLETS_ENTITY_ID,
        via="operator",
        received_at=now,
        payload={
            "previous_outlets": list(previous_outlets),
            "previous_primary_outlet_id": previous_primary,
            "retired_shipping_methods": list(retired_shipping_methods),
        },
        concern="stock",
    )
    # Every request is its own: re-running the command must queue again (the worker skips what is applied).
    return Outgoing(message, delivery_key=f"outlets|{now.isoformat()}|{uuid.uuid4().hex}")


def recompute_message(job: RecomputeJob, now: datetime) -> Outgoing:
    message = ChangeMessage(
        connection_id=job.connection_id,
        source="pos",
        entity="outlets",
        entity_id=OUTLETS_ENTITY_ID,
        via="reconcile",
        received_at=now,
        payload={"job": job.model_dump(mode="json")},
        concern="stock",
    )
    # A chunk queued twice (its worker retried after queueing it) is one message for SQS.
    return Outgoing(message, delivery_key=f"recompute|{job.job_id}|{job.after or ''}")


def request_outlet_change(
    store: ConnectionStore,
    publisher: Publisher,
    connection_id: str,
    outlets: Sequence[str],
    primary_outlet_id: str | None = None,
    *,
    now: datetime | None = None,
    register_outlet_id: str | None = None,
) -> Connection:
    """Save new connected outlets (and primary), then queue their application as stock work.

    `primary_outlet_id` None keeps the current primary when it stays connected. Shipping methods linked to an
    outlet that is no longer connected lose their link in the same save, so orders stop routing to it at once
    (seed 002). The register's outlet cannot be left out (seed 003: InvalidInput, nothing saved);
    `register_outlet_id` is that outlet as the caller read it from the POS, for a connection saved before it was
    stored (it is stored now). The recomputation runs as queued, bounded chunks; re-running this with the same
    outlets queues a check that changes nothing.
    """
    current = store.get_connection(connection_id)
    if current is None:
        raise NotFound(f"no connection {connection_id!r}")
    wanted = list(dict.fromkeys(o for o in outlets if o))
    register_outlet = (current.register_outlet_id or register_outlet_id) if current.online_register_id else None
    refuse_excluding_register_outlet(wanted, register_outlet)
    primary = primary_outlet_id
    if primary is None and current.primary_outlet_id in wanted:
        primary = current.primary_outlet_id
    moment = now or datetime.now(UTC)
    kept, retired = retire_shipping_methods(current.shipping_method_outlets, wanted)
    updated = _validated_outlets(
        current,
        connected_outlet_ids=wanted,
        primary_outlet_id=primary,
        register_outlet_id=register_outlet,
        shipping_method_outlets=kept,
        updated_at=moment,
    )
    store.save_connection(updated)
    publisher.publish(
        [outlet_change_message(connection_id, current.connected_outlet_ids, current.primary_outlet_id, moment, retired)]
    )
    return updated


def request_register_change(
    store: ConnectionStore,
    publisher: Publisher,
    connection_id: str,
    register_id: str,
    register_outlet_id: str,
    *,
    previous_register_outlet_id: str | None = None,
    now: datetime | None = None,
) -> Connection:
    """Link eCom to another register (or store the outlet of the current one) and queue the stock recomputation.

    `register_outlet_id` is the register's outlet read from the POS; it is connected from now on. Nothing is
    disconnected (see `outlets_for_register`). `previous_register_outlet_id`: the outlet of the register before,
    for a connection saved before it was stored with no outlet chosen (that outlet was what counted, and stays).
    """
    current = store.get_connection(connection_id)
    if current is None:
        raise NotFound(f"no connection {connection_id!r}")
    counted = current.connected_outlet_ids or ([previous_register_outlet_id] if previous_register_outlet_id else [])
    wanted = outlets_for_register(counted, register_outlet_id)
    primary = current.primary_outlet_id if current.primary_outlet_id in wanted else None
    moment = now or datetime.now(UTC)
    updated = _validated_outlets(
        current,
        online_register_id=register_id,
        register_outlet_id=register_outlet_id,
        connected_outlet_ids=wanted,
        primary_outlet_id=primary,
        updated_at=moment,
    )
    store.save_connection(updated)
    publisher.publish([outlet_change_message(connection_id, counted, current.primary_outlet_id, moment)])
    return updated


def _validated_outlets(current: Connection, **changes: Any) -> Connection:
    try:
        return Connection.model_validate({**current.model_dump(), **changes})
    except ValidationError as exc:
        problems = "; ".join(str(e["msg"]) for e in exc.errors())
        raise InvalidInput(f"invalid outlet settings: {problems}") from exc
