"""Vendor time stamps (ISO 8601) read the same way everywhere: always aware, a stamp without an offset being UTC."""

from __future__ import annotations

from datetime import UTC, datetime


def parse_instant(value: str) -> datetime:
    """An ISO 8601 stamp ("Z", an offset, or none = UTC) as an aware datetime, in the offset it was written in;
    ValueError when unreadable."""
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def instant_or_none(value: object) -> datetime | None:
    """`parse_instant` for a value that may be anything: None when it is not a readable stamp."""
    if not isinstance(value, str):
        return None
    try:
        return parse_instant(value)
    except ValueError:
        return None
