"""Connecting and disconnecting outlets (pure): what changes, which shipping methods stop routing, and the totals
to recompute in bounded chunks.

Seeds 002/003: connecting an outlet adds its stock to every total, disconnecting subtracts it (a variant at 0
shows out of stock); shipping methods tied to a disconnected outlet are disconnected and only a person connects
them again; the primary outlet serves shipping methods tied to none.

eCom documents no outlet link on a shipping method and no write on shipping methods (`GET` only), so the link is
the connection's `shipping_method_outlets` (set by the operator) and "disconnecting" a method means dropping its
entry (`retire_shipping_methods`): orders with it are no longer routed to that outlet, and the operator is told to
disable it in the eCom back office. Reconnecting the outlet restores nothing.

Seed 003: the outlet of the register linked to eCom is always included; to stop its stock syncing, the retailer
changes the register. So the register's outlet is stored with the register (`Connection.register_outlet_id`) and
is always connected: a request that leaves it out is refused (`refuse_excluding_register_outlet`), and a register
change connects the new register's outlet (`outlets_for_register`) and disconnects nothing.

`request_outlet_change` saves the new outlets with the retired entries dropped and queues the outlet message; its
worker queues `start_recompute(...)` when `plan.recompute_needed`. Each job message then handles one chunk: load
the states of `next_chunk(...)`, `plan_recompute` them, run each write through the claim protocol of
`stock.rules`, and queue `job.advance(chunk)` until `chunk.next_after` is None. Only variants whose total differs
from what eCom holds cost an eCom call, and a chunk never holds more than `job.chunk_size` variants.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from pos_ecom_sync.errors import InvalidInput
from pos_ecom_sync.models.stock import RecomputeJob, VariantStockState
from pos_ecom_sync.stock.rules import NoWrite, WriteStock, desired_total, stock_write_decision

DEFAULT_CHUNK_SIZE = 50


@dataclass(frozen=True)
class OutletChangePlan:
    added: tuple[str, ...]
    removed: tuple[str, ...]
    # Serves shipping methods tied to no outlet: the chosen primary, else the only connected outlet.
    primary_outlet_id: str | None
    primary_changed: bool

    @property
    def recompute_needed(self) -> bool:
        return bool(self.added or self.removed)


def plan_outlet_change(
    old_connected: Iterable[str],
    new_connected: Iterable[str],
    old_primary: str | None,
    new_primary: str | None,
) -> OutletChangePlan:
    old, new = set(old_connected), set(new_connected)
    if new_primary is not None and new_primary not in new:
        raise InvalidInput(f"primary outlet {new_primary!r} is not among the connected outlets")
    primary = new_primary if new_primary is not None else (next(iter(new)) if len(new) == 1 else None)
    return OutletChangePlan(
        added=tuple(sorted(new - old)),
        removed=tuple(sorted(old - new)),
        primary_outlet_id=primary,
        primary_changed=primary != old_primary,
    )


def refuse_excluding_register_outlet(outlets: Sequence[str], register_outlet_id: str | None) -> None:
    """Seed 003: the register's outlet cannot be left out; the way to stop its stock syncing is another register."""
    if register_outlet_id and register_outlet_id not in outlets:
        raise InvalidInput(
            f"outlet {register_outlet_id} is the outlet of the register linked to eCom: its stock always counts "
            "online. To stop syncing it, change the register (connections update <id> --register <a register of "
            "another outlet>) first; nothing was saved"
        )


def with_register_outlet(outlets: Iterable[str], register_outlet_id: str | None) -> list[str]:
    """`outlets` in the merchant's order (blanks and repeats dropped), the register's outlet added last if missing."""
    chosen = list(dict.fromkeys(o for o in outlets if o))
    if register_outlet_id and register_outlet_id not in chosen:
        chosen.append(register_outlet_id)
    return chosen


def outlets_for_register(counted_before: Sequence[str], new_register_outlet_id: str) -> list[str]:
    """The connected outlets once the register is one of `new_register_outlet_id`: what counted before, plus the new
    register's outlet. Nothing is disconnected: a disconnection drops stock online and shipping-method routing, so
    it stays the operator's explicit `set-outlets`, which the previous register's outlet no longer blocks."""
    return with_register_outlet(counted_before, new_register_outlet_id)


def retire_shipping_methods(
    shipping_method_outlets: Mapping[str, str], connected: Iterable[str]
) -> tuple[dict[str, str], tuple[str, ...]]:
    """(the links that stay, the shipping methods whose outlet is no longer connected), for the new outlets."""
    wanted = set(connected)
    kept = {method: outlet for method, outlet in shipping_method_outlets.items() if outlet in wanted}
    return kept, tuple(sorted(set(shipping_method_outlets) - set(kept), key=lambda m: (len(m), m)))


def totals_changed(
    states: Iterable[VariantStockState], old_connected: Sequence[str], new_connected: Sequence[str]
) -> list[tuple[str, int]]:
    """(POS variant id, new total) for each variant whose total moves with the change of outlets.

    A variant whose new total is unknown is left out (it needs a POS read, see `plan_recompute`); one whose old
    total was unknown is listed, as nothing proves it unchanged. No outlet connected means stock sync is off, so
    nothing is listed.
    """
    if not new_connected:
        return []
    changed: list[tuple[str, int]] = []
    for state in states:
        new_total = desired_total(state, new_connected)
        if new_total is not None and new_total != desired_total(state, old_connected):
            changed.append((state.product_id, new_total))
    return changed


@dataclass(frozen=True)
class RecomputePlan:
    writes: tuple[WriteStock, ...]
    # POS variant ids with a connected outlet of unknown level: read their inventory, then decide again.
    needs_pos_read: tuple[str, ...]
    # Everything else: already right in eCom, not linked to an eCom variant, or stock sync is off.
    skipped: tuple[NoWrite, ...]


def plan_recompute(states: Iterable[VariantStockState], connected_outlets: Sequence[str]) -> RecomputePlan:
    """Decide every variant of a chunk against the current outlets; writes only where eCom's level is off."""
    writes: list[WriteStock] = []
    needs_read: list[str] = []
    skipped: list[NoWrite] = []
    for state in states:
        decision = stock_write_decision(state, connected_outlets)
        if isinstance(decision, WriteStock):
            writes.append(decision)
        elif decision.reason == "needs_pos_read":
            needs_read.append(decision.product_id)
        else:
            skipped.append(decision)
    return RecomputePlan(tuple(writes), tuple(needs_read), tuple(skipped))


# -- bounded chunks -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Chunk:
    variant_ids: tuple[str, ...]
    # Cursor for the next chunk (exclusive start); None when this chunk is the last.
    next_after: str | None


def next_chunk(variant_ids: Sequence[str], after: str | None, limit: int) -> Chunk:
    """The next at most `limit` ids after the cursor, from ids in ascending order (as a DynamoDB sort key query).

    The cursor is an id, not an offset, so variants added or removed between two messages shift nothing.
    """
    if limit < 1:
        raise InvalidInput("chunk limit must be at least 1")
    remaining = [vid for vid in variant_ids if after is None or vid > after]
    ids = tuple(remaining[:limit])
    return Chunk(ids, ids[-1] if len(remaining) > limit else None)


def recompute_chunks(variant_ids: Iterable[str], chunk_size: int = DEFAULT_CHUNK_SIZE) -> list[tuple[str, ...]]:
    """All chunks at once (ids sorted, duplicates dropped), as `next_chunk` would walk them."""
    ordered = sorted(set(variant_ids))
    chunks: list[tuple[str, ...]] = []
    after: str | None = None
    while True:
        chunk = next_chunk(ordered, after, chunk_size)
        if chunk.variant_ids:
            chunks.append(chunk.variant_ids)
        if chunk.next_after is None:
            return chunks
        after = chunk.next_after


def start_recompute(
    connection_id: str, connected_outlets: Iterable[str], chunk_size: int = DEFAULT_CHUNK_SIZE
) -> RecomputeJob:
    return RecomputeJob(
        connection_id=connection_id,
        connected_outlet_ids=tuple(sorted(set(connected_outlets))),
        chunk_size=chunk_size,
    )


def advance(job: RecomputeJob, chunk: Chunk) -> RecomputeJob | None:
    """The message for the chunk after `chunk`, or None when the job is done."""
    if chunk.next_after is None:
        return None
    return job.model_copy(update={"after": chunk.next_after})


def is_superseded(job: RecomputeJob, current_connected: Iterable[str]) -> bool:
    """The outlets changed again since the job started: a newer job covers every variant, so this one stops."""
    return job.connected_outlet_ids != tuple(sorted(set(current_connected)))
