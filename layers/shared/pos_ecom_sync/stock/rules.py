"""Per-variant stock rules, POS -> eCom (pure): apply POS levels, compute the total, decide the eCom write.

DESIGN §3 Stock and seeds 001-004: eCom `stockLevel` = sum of the POS levels over the connected outlets, a
negative level counting as 0; the POS is the truth, so an eCom edit is reverted. These rules never write a wrong
number:

- Stale: a level is applied only if its version (the profile's comparable stamp: X-Series `version`; R-Series the
  ItemShop timeStamp, then the read's time) is higher than the one held for that variant and
  outlet; an equal version is a duplicate (no change), a lower one is stale (dropped).
- Unknown is not zero: a connected outlet counts only once we hold a level for it, from a versioned change or a
  POS inventory read of the variant. An outlet missing from a successful read has no inventory row, which the POS
  thereby says is 0 (`apply_inventory_read`); a failed or missing read, or a versionless webhook, leaves it
  unknown and the decision is `NoWrite("needs_pos_read")`.
- Coalesced: a batch of changes is applied as a whole and decided once, so one variant costs at most one write
  per batch, carrying the latest total.
- No empty writes: a total equal to what eCom holds (what it showed us, or what we last wrote) makes no call.
- Sold below zero: a connected outlet whose level moves while the total does not (a sale or return inside
  negative stock, counted as 0) says a sale happened that may have been eCom's own checkout, which lowered eCom's
  level by itself; what we last wrote no longer proves what eCom shows, so the total is written again.
- Held by open online sales: a POS that takes stock only when a sale completes (R-Series) still counts an open
  imported sale's units on hand, so they are subtracted from the total until the sale completes or is voided
  (`hold_stock` / `release_stock`; the release is applied with a POS read made after the sale completed, in one
  save, so the units are never counted back before the POS has taken them).
- No outlet connected means stock sync is off (seed 001: stock syncs from the outlets you connect): nothing is
  written, so a connection whose outlets are not chosen yet never zeroes the online store.

Concurrency. Levels are absolute and version-checked, so merging changes in any order gives the same state. The
eCom write is absolute too but cannot be made conditional, so each write is claimed in the state first and every
save is conditional on the revision loaded (the store's optimistic lock):

1. load the state (revision r); apply the changes; `stock_write_decision`; if nothing to write, save if changed;
2. `WriteStock`: save `begin_write(state, write, now)` if the stored revision is still r (else reload, redo 1);
3. PUT `write.ecom_body()` to the variant. An answered error: save `abandon_write(...)` and fail the message. A
   timeout: fail the message and leave the claim (the PUT may still land; the retry writes again);
4. reload and save `finish_write(current, write, claimed_revision)` (on a lost race, reload and repeat 4). When
   not confirmed, someone saved after our claim and may have written before our PUT landed: decide again, with
   the connection's outlets re-read.

While any claim is held every decision writes, and a claim is cleared only by its own finish or by a later writer
once it has expired (`CLAIM_TTL_SECONDS`, Lambda's hard limit: its invocation is over, so its PUT has landed or
never will). So a slow or dead writer's PUT is always followed by a write of the newest total.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pos_ecom_sync.dates import instant_or_none
from pos_ecom_sync.errors import InvalidInput
from pos_ecom_sync.models.messages import ChangeMessage
from pos_ecom_sync.models.stock import (
    EcomEcho,
    InventoryChange,
    OutletLevel,
    Reservation,
    VariantStockState,
    WriteClaim,
    online_total,
)

# Lambda's hard limit on an invocation: a claim this old belongs to a worker that is no longer running.
CLAIM_TTL_SECONDS = 900.0
# How many of our own writes are remembered to recognise their webhook echoes (a burst's writes are few).
ECHOES_KEPT = 5
# How long a released reservation is remembered: longer than SQS keeps a message (14 days) and a dead-letter
# redrive can bring it back, so a hold delivered after its release is always recognised.
RELEASED_KEPT_SECONDS = 30 * 86400.0

WriteReason = Literal["total_changed", "ecom_differs", "unconfirmed_write", "sold_below_zero"]
NoWriteReason = Literal["not_linked", "no_outlet_connected", "needs_pos_read", "unchanged", "ecom_matches"]


@dataclass(frozen=True)
class WriteStock:
    """Set the eCom variant's stockLevel to `level` (absolute, never a delta)."""

    product_id: str
    ecom_variant_id: int
    level: int
    reason: WriteReason

    def ecom_body(self) -> dict[str, Any]:
        """Fields for `EcomClient.update_variant`: only the level; stock tracking belongs to catalog sync."""
        return {"stockLevel": self.level}


@dataclass(frozen=True)
class NoWrite:
    product_id: str
    reason: NoWriteReason
    # For "needs_pos_read": the connected outlets we hold no level for.
    missing_outlets: tuple[str, ...] = ()


StockDecision = WriteStock | NoWrite


# -- applying POS levels --------------------------------------------------------------------------------------------


def apply_inventory_change(
    state: VariantStockState, outlet_id: str, level: int, version: int
) -> tuple[VariantStockState, bool]:
    """Record an outlet's level unless we hold one at least as new (equal: duplicate; lower: stale)."""
    held = state.levels.get(outlet_id)
    if held is not None and version <= held.version:
        return state, False
    levels = {**state.levels, outlet_id: OutletLevel(level=level, version=version)}
    return state.model_copy(update={"levels": levels, "revision": state.revision + 1}), True


def apply_changes(state: VariantStockState, changes: Iterable[InventoryChange]) -> tuple[VariantStockState, int]:
    """Apply a batch for this variant; returns the new state and how many changes were applied (not stale)."""
    applied = 0
    for change in coalesce(changes):
        if change.product_id != state.product_id:
            raise InvalidInput(f"inventory change for {change.product_id!r} applied to {state.product_id!r}")
        state, was_applied = apply_inventory_change(state, change.outlet_id, change.level, change.version)
        applied += was_applied
    return state, applied


def apply_inventory_read(
    state: VariantStockState,
    rows: Iterable[InventoryChange],
    outlet_ids: Iterable[str],
    as_of_version: int | None = None,
) -> tuple[VariantStockState, int]:
    """Record a successful POS inventory read of this variant (`GET /products/{id}/inventory`).

    Each row applies like a change. An outlet of `outlet_ids` without a row has no inventory there: level 0,
    recorded at `as_of_version` (the response's `version.max`; default the newest row version). Every change at or
    below that version is older than the read and is dropped later; an outlet holding a newer level keeps it.
    Call this only with the rows of a read that succeeded: a failed read must change nothing.
    """
    rows = list(rows)
    as_of = max([as_of_version or 0, *(row.version for row in rows)])
    state, applied = apply_changes(state, rows)
    seen = {row.outlet_id for row in rows}
    for outlet_id in sorted(set(outlet_ids) - seen):
        state, was_applied = apply_inventory_change(state, outlet_id, 0, as_of)
        applied += was_applied
    return state, applied


def hold_stock(state: VariantStockState, order_key: str, quantity: int, now: float) -> tuple[VariantStockState, bool]:
    """Subtract an open online sale's units from the total. A hold is applied once per order: repeated, or delivered
    after the order's release, it changes nothing."""
    if quantity < 0:
        raise InvalidInput(f"a hold of {quantity} units of {state.product_id} for order {order_key}")
    if order_key in state.reservations:
        return state, False
    return _with_reservation(state, order_key, Reservation(quantity=quantity, at=now), now), True


def release_stock(state: VariantStockState, order_key: str, now: float) -> tuple[VariantStockState, bool]:
    """The order's sale completed (the POS took its units) or was voided (it never will): stop holding its units.
    A release before its hold leaves a released mark, so the late hold is not applied."""
    current = state.reservations.get(order_key)
    if current is not None and current.quantity == 0:
        return state, False
    return _with_reservation(state, order_key, Reservation(quantity=0, at=now), now), True


def holds_order(state: VariantStockState, order_key: str) -> bool:
    """Whether units of this variant are held for the order (a hold applied and not released)."""
    current = state.reservations.get(order_key)
    return current is not None and current.quantity > 0


def _with_reservation(
    state: VariantStockState, order_key: str, reservation: Reservation, now: float
) -> VariantStockState:
    kept = {key: r for key, r in state.reservations.items() if r.quantity > 0 or r.at + RELEASED_KEPT_SECONDS > now}
    kept[order_key] = reservation
    return state.model_copy(update={"reservations": kept, "revision": state.revision + 1})


def coalesce(changes: Iterable[InventoryChange]) -> list[InventoryChange]:
    """Keep only the newest version per (variant, outlet), sorted by variant then outlet.

    Equal versions are one POS change seen twice; the first one seen is kept.
    """
    newest: dict[tuple[str, str], InventoryChange] = {}
    for change in changes:
        key = (change.product_id, change.outlet_id)
        held = newest.get(key)
        if held is None or change.version > held.version:
            newest[key] = change
    return [newest[key] for key in sorted(newest)]


def ecom_level_from_message(message: ChangeMessage) -> int | None:
    """The stockLevel an eCom variant message shows (webhook body or polled variant), if it has one."""
    if message.source != "ecom" or message.entity != "variant":
        raise InvalidInput(f"not an eCom variant message: {message.source}/{message.entity}")
    level = message.payload.get("stockLevel")
    return level if isinstance(level, int) and not isinstance(level, bool) else None


# -- totals and the write decision ----------------------------------------------------------------------------------


def unknown_outlets(state: VariantStockState, connected_outlets: Iterable[str]) -> tuple[str, ...]:
    """Connected outlets we hold no level for: the total cannot be computed until the POS is read."""
    return tuple(sorted(outlet for outlet in set(connected_outlets) if outlet not in state.levels))


def desired_total(state: VariantStockState, connected_outlets: Iterable[str]) -> int | None:
    """eCom stockLevel this variant should show, or None while a connected outlet's level is unknown."""
    connected = sorted(set(connected_outlets))
    if unknown_outlets(state, connected):
        return None
    return online_total({outlet: held.level for outlet, held in state.levels.items()}, connected, state.held)


def moved_below_zero(before: VariantStockState, after: VariantStockState, connected_outlets: Iterable[str]) -> bool:
    """A connected outlet's held level changed from `before` to `after` but the total did not (see the module doc)."""
    connected = sorted(set(connected_outlets))
    moved = any(
        outlet in before.levels and outlet in after.levels and before.levels[outlet].level != after.levels[outlet].level
        for outlet in connected
    )
    total = desired_total(after, connected)
    return moved and total is not None and total == desired_total(before, connected)


def stock_write_decision(
    state: VariantStockState,
    connected_outlets: Sequence[str],
    ecom_level_seen: int | None = None,
    *,
    sold_below_zero: bool = False,
) -> StockDecision:
    """Whether eCom needs a write, and of what.

    `ecom_level_seen` is the stockLevel eCom showed (a variants/updated webhook, a poll or a read); a level other
    than our total is a manual eCom edit (or drift) and is reverted. A stale echo of our own earlier write
    looks the same and costs one redundant (correct) write; read the variant first to avoid it.
    `sold_below_zero` (`moved_below_zero` of the change applied): what we last wrote no longer counts.
    """
    if state.ecom_variant_id is None:
        return NoWrite(state.product_id, "not_linked")
    if not connected_outlets:
        return NoWrite(state.product_id, "no_outlet_connected")
    total = desired_total(state, connected_outlets)
    if total is None:
        return NoWrite(state.product_id, "needs_pos_read", unknown_outlets(state, connected_outlets))
    if state.claims:
        return WriteStock(state.product_id, state.ecom_variant_id, total, "unconfirmed_write")
    if ecom_level_seen is not None:
        if ecom_level_seen == total:
            return NoWrite(state.product_id, "ecom_matches")
        return WriteStock(state.product_id, state.ecom_variant_id, total, "ecom_differs")
    if sold_below_zero:
        return WriteStock(state.product_id, state.ecom_variant_id, total, "sold_below_zero")
    if state.last_written == total:
        return NoWrite(state.product_id, "unchanged")
    return WriteStock(state.product_id, state.ecom_variant_id, total, "total_changed")


# -- the write protocol ---------------------------------------------------------------------------------------------


def begin_write(state: VariantStockState, write: WriteStock, now: float) -> VariantStockState:
    """Claim the write before calling eCom; the result's `revision` identifies the claim."""
    _check_same_variant(state, write)
    claim = WriteClaim(revision=state.revision + 1, level=write.level, claimed_at=now)
    return state.model_copy(update={"claims": (*state.claims, claim), "revision": claim.revision})


def finish_write(
    state: VariantStockState, write: WriteStock, claimed_revision: int, claim_ttl: float = CLAIM_TTL_SECONDS
) -> tuple[VariantStockState, bool]:
    """Record a successful PUT: drop our claim and those that had expired before it (their PUTs landed first).

    Confirmed only if nobody saved since our claim. Otherwise another worker may have written while our PUT was
    travelling, so eCom holds its level or ours: `last_written` is forgotten and the caller decides again.
    """
    _check_same_variant(state, write)
    own = next((claim for claim in state.claims if claim.revision == claimed_revision), None)
    if own is None:
        # A later writer cleared it as expired: we outlived the TTL, so our PUT may have landed after its write.
        return state.model_copy(update={"last_written": None, "revision": state.revision + 1}), False
    claims = tuple(c for c in state.claims if c is not own and c.claimed_at + claim_ttl > own.claimed_at)
    confirmed = state.revision == claimed_revision
    update = {"claims": claims, "last_written": write.level if confirmed else None, "revision": state.revision + 1}
    return state.model_copy(update=update), confirmed


def abandon_write(state: VariantStockState, claimed_revision: int) -> VariantStockState:
    """eCom answered the PUT with an error: drop the claim; a failed call may still have applied, so eCom's level
    is unknown and the next decision writes.
    """
    claims = tuple(claim for claim in state.claims if claim.revision != claimed_revision)
    return state.model_copy(update={"claims": claims, "last_written": None, "revision": state.revision + 1})


def release_claim(state: VariantStockState, claimed_revision: int) -> VariantStockState:
    """The PUT never left (the rate budget refused it before sending): drop the claim; eCom's level is untouched,
    so what we knew of it (`last_written`) still holds.
    """
    claims = tuple(claim for claim in state.claims if claim.revision != claimed_revision)
    return state.model_copy(update={"claims": claims, "revision": state.revision + 1})


def remember_echo(state: VariantStockState, level: int, updated_at: str | None) -> VariantStockState:
    """Keep our write as eCom stamped it (the `updatedAt` its PUT answered), so its webhook is known as ours.

    Fold this into the save of `finish_write`; it makes no transition of its own (no revision step).
    """
    if not updated_at:
        return state
    echoes = (*state.echoes, EcomEcho(level=level, updated_at=updated_at))[-ECHOES_KEPT:]
    return state.model_copy(update={"echoes": echoes})


def is_own_echo(state: VariantStockState, level: int, updated_at: str | None) -> bool:
    """Whether an eCom variant message shows nothing new: the echo of a write of ours (same level, same eCom
    `updatedAt`), or a view eCom stamped before our latest write landed.

    Webhooks arrive late: the echo of an older write of ours shows an older total, which is not a manual edit and
    must not be "reverted" (that would cost a write and a new echo). A manual edit carries its own, later
    `updatedAt` (eCom stamps whole seconds: an edit in the very second of our write is still taken for one).
    """
    if not updated_at or not state.echoes:
        return False
    if any(echo.level == level and echo.updated_at == updated_at for echo in state.echoes):
        return True
    seen = instant_or_none(updated_at)
    ours = [moment for moment in (instant_or_none(echo.updated_at) for echo in state.echoes) if moment is not None]
    return seen is not None and bool(ours) and seen < max(ours)


def link_ecom_variant(state: VariantStockState, ecom_variant_id: int | None) -> tuple[VariantStockState, bool]:
    """Point the state at the eCom variant catalog sync created (or None once it was deleted).

    A new variant's level is unknown to us: the next decision writes the total.
    """
    if state.ecom_variant_id == ecom_variant_id:
        return state, False
    update = {"ecom_variant_id": ecom_variant_id, "last_written": None, "revision": state.revision + 1}
    return state.model_copy(update=update), True


def _check_same_variant(state: VariantStockState, write: WriteStock) -> None:
    if write.product_id != state.product_id:
        raise InvalidInput(f"stock write for {write.product_id!r} recorded on {state.product_id!r}")
