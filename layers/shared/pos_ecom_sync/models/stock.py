"""Stock: per-outlet POS levels and the eCom total derived from them (POS is the source of truth).

The rules over these models live in `pos_ecom_sync.stock`; these are the values the state store keeps and the
queues carry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from pos_ecom_sync.models.connection import ConnectionId


def online_total(levels: dict[str, int], connected_outlets: list[str], held: int = 0) -> int:
    """eCom stockLevel = sum over connected outlets, a negative outlet counting as zero (seeds 002/003), less the
    units open online sales hold (`Reservation`), never below zero."""
    return max(0, sum(max(0, levels.get(outlet, 0)) for outlet in connected_outlets) - held)


class OutletLevel(BaseModel):
    """An outlet's POS level for one variant, and the profile's comparable stamp it was read at (X-Series `version`;
    R-Series the ItemShop timeStamp, then the read's time)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    level: int
    version: Annotated[int, Field(ge=0)]


class WriteClaim(BaseModel):
    """An eCom write claimed in the state before the call; until it is finished, eCom's level is unknown."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # The state revision the claim was saved at: it identifies the claim.
    revision: int
    level: int
    # Epoch seconds: a claim older than the claim TTL belongs to an invocation Lambda has already ended.
    claimed_at: float


class EcomEcho(BaseModel):
    """A write of ours as eCom stamped it: its variants/updated webhook, arriving later, is recognised as ours."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    level: int
    # eCom's `updatedAt` of the variant, as the PUT answered it.
    updated_at: str


class Reservation(BaseModel):
    """Units of a variant that an imported online sale holds while the POS has not taken them from stock.

    A POS that moves stock only when a sale completes (R-Series: an open sale leaves `qoh` as it is) would otherwise
    show an unpaid online order's units as on hand, and eCom would sell them again. Keyed by the eCom order in
    `VariantStockState.reservations`; `quantity` 0 is a released reservation, kept so that a hold delivered late
    (after its release) is not applied again."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    quantity: Annotated[int, Field(ge=0)]
    # Epoch seconds of the hold or release: released ones are forgotten once no late hold can arrive any more.
    at: float


class VariantStockState(BaseModel):
    """What the state store keeps per POS variant.

    `levels` holds every outlet we heard of, connected or not, so (dis)connecting an outlet recomputes totals
    without re-reading the POS. `revision` grows with every transition; the store saves a new state only if the
    stored revision is still the one it loaded (optimistic lock), which is what keeps concurrent workers apart.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    product_id: str
    ecom_variant_id: int | None = None
    levels: dict[str, OutletLevel] = Field(default_factory=dict)
    # The stockLevel eCom holds as far as we know: our last confirmed write (or a level we saw there).
    last_written: int | None = None
    # Writes claimed and not finished (in flight, failed or their worker died): while any is held, every decision
    # writes, since one of them may still land over a newer total.
    claims: tuple[WriteClaim, ...] = ()
    # Our last few confirmed writes as eCom stamped them: the webhook each one echoes back is not a manual edit.
    echoes: tuple[EcomEcho, ...] = ()
    # Per eCom order (its id): units held by its open POS sale, subtracted from the total.
    reservations: dict[str, Reservation] = Field(default_factory=dict)
    revision: Annotated[int, Field(ge=0)] = 0

    @property
    def held(self) -> int:
        """Units open online sales hold: the POS still counts them on hand."""
        return sum(reservation.quantity for reservation in self.reservations.values())


class InventoryChange(BaseModel):
    """One POS level for one variant at one outlet (a POS location), with the POS's stamp for it (comparable: a higher
    version is newer): the unit the stock rules apply. Each profile reads its vendor's rows into these."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    product_id: str
    outlet_id: str
    level: int
    version: Annotated[int, Field(ge=0)]


class RecomputeJob(BaseModel):
    """The queued work after a change of connected outlets: one message walks one chunk of variants.

    `connected_outlet_ids` is the setting the job was started for; once the connection says otherwise, a newer
    job has been queued and this one stops (it would only repeat work).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    connection_id: ConnectionId
    connected_outlet_ids: tuple[str, ...]
    # Last POS variant id handled (exclusive start of the next chunk); None: from the beginning.
    after: str | None = None
    chunk_size: Annotated[int, Field(ge=1, le=500)] = 50
    # Names one run of the job: its chunk messages are de-duplicated per run, never across runs.
    job_id: str = ""


@dataclass(frozen=True)
class AppliedOutlets:
    """The outlet settings the stock worker applied last; revision 0: never applied."""

    outlets: tuple[str, ...] = ()
    primary_outlet_id: str | None = None
    revision: int = 0


@dataclass(frozen=True)
class StockEntry:
    """One variant of a recomputation chunk: its eCom pair (as the catalog worker recorded it) and stock state."""

    pos_product_id: str
    ecom_variant_id: int
    state: VariantStockState


@dataclass(frozen=True)
class StockChunk:
    entries: tuple[StockEntry, ...]
    # Cursor of the next chunk (exclusive start); None when this one reached the end.
    next_after: str | None
