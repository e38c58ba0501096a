"""Where a change feed was read up to (stored by `state.store`, moved by the poller)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Cursor:
    """Where a change feed was read up to; `None` means from the beginning."""

    feed: str
    value: str | None
    moved_at: float | None = None  # epoch seconds of its last advance (poll lag); None: never moved
