"""Checks that turn one vendor feed row into a message or into a reason to skip it (pure).

The change poller and reconciliation read pages of vendor rows. A row they cannot handle (no or a garbled id, a
version that is no integer or out of range, a value that cannot be serialised, a message SQS would refuse) must cost
that row only, never its page: `built()` makes one row's messages and says why it cannot, and the caller skips and
parks the row (`state.parked_store`) while its cursor moves on. Messages carry ids, versions and stamps only
(`models.messages.vendor_payload`), so a checked message is a few hundred bytes and a batch of ten can never reach
SQS's 256 KiB request limit, whatever a row holds (a 300 KB description stays with the vendor).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from pos_ecom_sync.errors import InvalidInput, safe_text
from pos_ecom_sync.models.messages import SQS_REFUSED_TEXT, ChangeMessage

# Entity ids become message fields and (through `group_id_part`) MessageGroupIds. Real vendor ids are UUIDs or
# digits; a longer one, or one holding a character no id has (controls, surrogates, noncharacters SQS refuses), is
# refused.
MAX_ID_CHARS = 256
_NOT_IN_AN_ID = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
_INT64 = 2**63
_MAX_VERSION_DIGITS = 19
# A stamp worth keeping: ISO 8601 as both vendors write it; anything else is left out (the worker re-reads).
MAX_STAMP_CHARS = 40
_TIMESTAMP = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,9})?)?)?(Z|[+-][0-9]{2}:?[0-9]{2})?"
)
# Ten of these (one SQS batch) stay far below SQS's 256 KiB per request.
MAX_MESSAGE_BYTES = 16 * 1024


def row_id(row: Mapping[str, Any], name: str = "id") -> str:
    """A row's id field as a message's entity id: a non-empty string (or a non-negative 64-bit integer) without
    control, surrogate or noncharacter characters; else InvalidInput with the reason."""
    value = row.get(name)
    if value is None or value == "":
        raise InvalidInput(f"no {name}")
    if isinstance(value, int) and not isinstance(value, bool):
        if 0 <= value < _INT64:
            return str(value)
        raise InvalidInput(f"{name} is an integer out of range")
    if not isinstance(value, str):
        raise InvalidInput(f"{name} is a {type(value).__name__}, not a string")
    if len(value) > MAX_ID_CHARS:
        raise InvalidInput(f"{name} is {len(value)} characters long; the limit is {MAX_ID_CHARS}")
    bad = _NOT_IN_AN_ID.search(value)
    if bad:
        raise InvalidInput(f"{name} holds character U+{ord(bad.group()):04X}, which no id may hold")
    return value


def positive_id(row: Mapping[str, Any], name: str = "id") -> int:
    """An eCom id: a positive 64-bit integer."""
    value = row.get(name)
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value < _INT64:
        return value
    raise InvalidInput(f"{name} is not a positive integer: {safe_text(value, 40)}")


def row_version(row: Mapping[str, Any], *, required: bool = True) -> int | None:
    """A POS row's `version`: a non-negative 64-bit integer (or its ASCII digits); None only when not required."""
    value = row.get("version")
    if value is None and not required:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        if 0 <= value < _INT64:
            return value
        raise InvalidInput("version is an integer out of range")
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= _MAX_VERSION_DIGITS:
        return row_version({"version": int(value)})
    raise InvalidInput("no version" if value is None else f"version is not an integer: {safe_text(value, 40)}")


def stamp(value: Any) -> str | None:
    """A vendor time stamp for a message's `updated_at`: kept when it is a plausible ISO 8601 string, else None."""
    if isinstance(value, str) and len(value) <= MAX_STAMP_CHARS and _TIMESTAMP.fullmatch(value):
        return value
    return None


def message_problem(message: ChangeMessage, delivery_key: str | None = None) -> str | None:
    """Why SQS would refuse this message (or it cannot be serialised at all); None when it can be sent."""
    try:
        body = message.model_dump_json()
        group = message.message_group_id
        message.deduplication_id(delivery_key)
    except Exception as exc:  # whatever serialising a vendor value raises, the row is what failed
        return f"its message cannot be serialised ({type(exc).__name__})"
    size = len(body.encode("utf-8"))
    if size > MAX_MESSAGE_BYTES:
        return f"its message would be {size} bytes (limit {MAX_MESSAGE_BYTES})"
    if SQS_REFUSED_TEXT.search(body):
        return "its message holds characters SQS refuses"
    if not (0 < len(group) <= 128 and all("!" <= ch <= "~" for ch in group)):
        return "no valid message group id"
    return None


def built(
    build: Callable[[], list[ChangeMessage]], delivery_key: Callable[[ChangeMessage], str | None] = lambda _: None
) -> tuple[list[ChangeMessage], str | None]:
    """The messages `build` makes for one row, or none and the reason the row cannot be handled."""
    try:
        messages = build()
    except InvalidInput as exc:
        return [], exc.message
    except Exception as exc:  # anything one row makes a build raise costs that row, never the page
        return [], f"its message cannot be built ({type(exc).__name__})"
    for message in messages:
        problem = message_problem(message, delivery_key(message))
        if problem:
            return [], problem
    return messages, None
