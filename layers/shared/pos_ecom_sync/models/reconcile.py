"""Where a connection's reconciliation stands (stored by `state.reconcile_store`, advanced by `reconcile.rules`)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Phase = Literal["catalog", "products", "variants", "orders", "done"]


class ReconcileCheckpoint(BaseModel):
    """Where a connection's reconciliation stands: the run, its phase, and the cursor inside the phase.

    The cursor moves only after the messages of the page it covers are queued (as the poller's cursors do), so an
    invocation that dies re-reads at most one page. `revision` grows with every save; the store writes a new
    checkpoint only over the revision it loaded, so two overlapping invocations never both advance one run.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    run_id: str | None = None
    phase: Phase = "done"
    # catalog: the POS version read up to; products / variants: the last eCom id; orders: the next `since_id`.
    cursor: str | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    # Orders updated since this moment are swept (fixed when the run starts, so the order pages stay stable).
    orders_since: datetime | None = None
    pages: dict[str, int] = Field(default_factory=dict)  # per phase, this run
    drift: dict[str, int] = Field(default_factory=dict)  # per kind, this run
    revision: int = Field(default=0, ge=0)

    @property
    def in_progress(self) -> bool:
        return self.phase != "done" and self.run_id is not None
