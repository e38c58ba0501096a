"""The R-Series V3 envelope, read the same way everywhere (pure functions, no I/O).

What the vendor does (KVH = koop-voor-hoop/lightspeed-retail-client `docs/**`, a mirror of
developers.lightspeedhq.com/retail; MKP = marketplacer/lightspeed_pos recorded cassettes):
- every scalar is a string: ids `"141"`, booleans `"true"`/`"false"`, numbers `"4.39"`, and a foreign key that
  points nowhere is `"0"` (KVH `endpoints/item.md` samples; MKP `account/items/show.yml`);
- a single read is `{"@attributes": {"count": "1"}, "Item": {...}}`, a list `{"@attributes": {"next": url | "",
  "previous": url | ""}, "Item": [...]}` (KVH `introduction/pagination.md`);
- a relation holding one record is an object, several an array, none `""` (KVH `tutorials/sales.md`,
  `endpoints/customer.md`); a list page holding one row may be an object too (MKP `lib/lightspeed/collection.rb`
  `Array.wrap`, unverified for V3) and an empty page may have no entity key at all (unverified): both read as lists.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

JsonObject = dict[str, Any]

_TRUE = frozenset({"true", "1"})
_FALSE = frozenset({"false", "0", ""})


def as_list(value: Any) -> list[JsonObject]:
    """A relation or list value as a list of objects: an object is one row, `""`/None/missing none, and anything
    that is not an object (a stray scalar) is dropped."""
    if isinstance(value, dict):
        return [value]
    if isinstance(value, list):
        return [row for row in value if isinstance(row, dict)]
    return []


def rows(body: Any, key: str) -> list[JsonObject]:
    """The rows of a list answer (`body[key]`), whichever way the vendor wrapped them."""
    return as_list(body.get(key)) if isinstance(body, dict) else []


def single(body: Any, key: str) -> JsonObject | None:
    """The record of a single read or write answer (`body[key]`), None when the answer holds none."""
    found = rows(body, key)
    return found[0] if found else None


def relation(row: Mapping[str, Any], name: str, key: str) -> list[JsonObject]:
    """A loaded relation's records: `row[name][key]` (e.g. `ItemShops.ItemShop`) as a list, `""` being none."""
    holder = row.get(name)
    return as_list(holder.get(key)) if isinstance(holder, dict) else []


def next_url(body: Any) -> str | None:
    """`@attributes.next` of a list answer: the URL of the next page, or None at the end (`""`)."""
    attributes = body.get("@attributes") if isinstance(body, dict) else None
    value = attributes.get("next") if isinstance(attributes, dict) else None
    return value if isinstance(value, str) and value.strip() else None


def flag(value: Any) -> bool | None:
    """`"true"`/`"false"` (or a JSON boolean) as a bool; None when it is neither."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
    return None


def decimal(value: Any) -> Decimal | None:
    """A numeric string (`"4.39"`, `"-2"`) as a Decimal; None when it is not a finite number."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def integer(value: Any) -> int | None:
    """A whole numeric string (`"45"`, `"-3"`, `"45.0"`) as an int; None otherwise."""
    number = decimal(value)
    if number is None or number != number.to_integral_value():
        return None
    return int(number)


def reference(value: Any) -> str | None:
    """A foreign key as an id string; `"0"`, `""` and missing mean "none" (KVH item.md: `itemMatrixID: "0"`)."""
    if isinstance(value, bool) or value is None:
        return None
    text = str(value).strip()
    if not text or (text.isdigit() and int(text) == 0):
        return None
    return text


def epoch(value: Any) -> int | None:
    """A `timeStamp` (`2021-03-30T19:38:07+00:00`, `-00:00`, `+0000`, `Z`) as whole epoch seconds (the vendor
    stores seconds); None when unreadable or without a date and time."""
    if not isinstance(value, str) or "T" not in value:
        return None
    text = value.strip().replace("Z", "+00:00")
    if len(text) >= 5 and text[-5] in "+-" and text[-4:].isdigit():  # `+0000` -> `+00:00`
        text = f"{text[:-2]}:{text[-2:]}"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)  # "All times are stored in UTC" (KVH tutorials/searching.md)
    return int(moment.timestamp())


def query_stamp(seconds: int) -> str:
    """Epoch seconds as a filter value, `YYYY-MM-DDTHH:MM:SS-00:00` (KVH introduction/query-parameters.md)."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S-00:00")


def prices(row: Mapping[str, Any]) -> dict[str, Decimal]:
    """An Item's or ItemMatrix's `Prices.ItemPrice` as {price level id (`useTypeID`): amount}; entries without a
    level id or a readable amount are left out (KVH item.md "ItemPrice Fields")."""
    found: dict[str, Decimal] = {}
    for entry in relation(row, "Prices", "ItemPrice"):
        level = reference(entry.get("useTypeID"))
        amount = decimal(entry.get("amount"))
        if level is not None and amount is not None:
            found[level] = amount
    return found
