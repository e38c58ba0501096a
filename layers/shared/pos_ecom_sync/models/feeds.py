"""Where a change feed was read up to (stored by `state.store`, moved by the poller), and the rows a feed skipped
(parked by `state.parked_store`)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pos_ecom_sync.errors import safe_text

if TYPE_CHECKING:
    from pos_ecom_sync.models.messages import ChangeMessage, Concern

VendorRow = dict[str, Any]

MAX_REASON_CHARS = 300
_ROW_KEY_MAX = 64


@dataclass(frozen=True)
class Cursor:
    """Where a change feed was read up to; `None` means from the beginning."""

    feed: str
    value: str | None
    moved_at: float | None = None  # epoch seconds of its last advance (poll lag); None: never moved


@dataclass(frozen=True)
class ChangePage:
    """One page of a POS change feed. The rows are the vendor's (only its profile reads them); `cursor` is an opaque
    string to resume after this page (None: the page was empty, the cursor stays); `more` says the feed may hold
    more right now (False ends this run's read of the feed)."""

    rows: list[VendorRow] = field(default_factory=list)
    cursor: str | None = None
    more: bool = False


@dataclass(frozen=True)
class PosFeed:
    """A POS change feed as the poller walks it, supplied by the connection's POS profile (`profiles`).

    `read` gives the page after a cursor (None: from the beginning); `to_messages` makes a page's messages (it may
    merge rows, e.g. one message per product family); `row_messages` makes one row's (pure: raises when the row
    cannot be handled, which tells a poison row from the others); `row_id`/`row_version` name a row when it is
    parked. `backfill` marks the feed whose first read is the initial catalog import: the poller paces it by the
    products queue's backlog."""

    name: str
    concern: Concern  # the queue its messages go to (the dashboard's "changes in" per concern)
    read: Callable[[str | None], ChangePage]
    to_messages: Callable[[Sequence[VendorRow], datetime], list[ChangeMessage]]
    row_messages: Callable[[VendorRow, datetime], list[ChangeMessage]]
    row_id: Callable[[VendorRow], Any]
    row_version: Callable[[VendorRow], Any] = lambda row: None
    backfill: bool = False


def _printable(text: str, limit: int) -> str:
    """Our own text (a reason) cut and kept printable: escapes only what is not printable ASCII, so a value a
    reason already quotes with `safe_text` is not escaped twice."""
    shown = "".join(ch if " " <= ch <= "~" else ch.encode("unicode_escape").decode("ascii") for ch in text[:limit])
    return shown if len(text) <= limit else f"{shown}... ({len(text)} chars)"


def row_key(row_id: Any) -> str:
    """The key part of a parked row: its id when that is a short printable ASCII string (every real vendor id) or
    an integer, else a stable hash of it (a DynamoDB key must be valid UTF-8 and at most 1 KB)."""
    if isinstance(row_id, int) and not isinstance(row_id, bool) and row_id.bit_length() < 64:
        return str(row_id)
    if isinstance(row_id, str) and 0 < len(row_id) <= _ROW_KEY_MAX and all("!" <= ch <= "~" for ch in row_id):
        return row_id
    if row_id is None:
        return "<no id>"
    if isinstance(row_id, str):
        basis = row_id.encode("utf-8", "surrogatepass")
    elif isinstance(row_id, int) and not isinstance(row_id, bool):
        basis = hex(row_id).encode()  # hex has no digit limit
    else:
        basis = f"{type(row_id).__name__}:{safe_text(row_id, 10_000)}".encode()
    return "#" + hashlib.sha256(basis).hexdigest()[:40]


@dataclass(frozen=True)
class SkippedRow:
    """A feed row skipped because it cannot be handled: what is logged, counted and parked."""

    feed: str
    key: str  # row_key() of its id
    row_id: str  # safe_text() of its id
    reason: str
    version: str | None = None

    @classmethod
    def of(cls, feed: str, row_id: Any, reason: str, version: Any = None) -> SkippedRow:
        return cls(
            feed=feed,
            key=row_key(row_id),
            row_id=safe_text(row_id),
            reason=_printable(reason, MAX_REASON_CHARS),
            version=None if version is None else safe_text(version, 40),
        )

    @property
    def parked_key(self) -> str:
        """How the operator names it: `pos-ecom-sync parked show <connection> <parked key>`."""
        return f"{self.feed}#{self.key}"

    def log_fields(self) -> dict[str, Any]:
        return {"feed": self.feed, "row_id": self.row_id, "version": self.version, "reason": self.reason}


@dataclass(frozen=True)
class ParkedRow:
    parked_key: str
    feed: str
    row_id: str
    reason: str
    version: str | None
    first_seen: int
    last_seen: int
    seen: int
    expires_at: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.parked_key,
            "feed": self.feed,
            "row_id": self.row_id,
            "version": self.version,
            "reason": self.reason,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "seen": self.seen,
            "expires_at": self.expires_at,
        }
