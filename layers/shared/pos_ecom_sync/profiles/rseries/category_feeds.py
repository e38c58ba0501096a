"""R-Series Category and Manufacturer feeds: a category or manufacturer renamed (or a category moved) reaches every
eCom product whose family uses it.

A family's eCom category and brand are the names of its matrix's or simple item's Category and Manufacturer (seed
000 "brand = Manufacturer"; `mapping`, read fresh with each family by `catalog.RSeriesCatalog`), so a rename changes
the family's eCom content; but an Item's `timeStamp` "doesn't include changes to related records" (KVH item.md), so
the product feeds never see one. These feeds poll `Category.json` / `Manufacturer.json` by `timeStamp` (KVH
category.md and manufacturer.md "Sortable Fields"; neither endpoint declares `archived`: a Category DELETE deletes,
a Manufacturer cannot be deleted) with the `>=` + de-duplication scheme of `feeds.StampFeedReader`, and fan each
changed row out into `pos`/`product` messages, one per family using it:

- Families are listed by `client.list_using`: simple items (`Item.json?categoryID=<id>&itemMatrixID=0&sort=itemID
  &itemID=>,<last>`; a variant's family takes its matrix's category and brand), then matrices (`ItemMatrix.json?
  categoryID=<id>&sort=itemMatrixID&itemMatrixID=>,<last>`), live rows only (an archived family is gone from eCom).
  No sample shows these filters (contract `unverified`): every row's category / manufacturer and matrix are checked
  again here, so a filter the vendor ignores costs pages, never a wrong family.
- One vendor request per page, like every feed. The cursor holds the changed rows still to fan out and the last id
  listed, so a rename used by thousands of items spreads over as many pages and poller runs as the rate budget
  allows, resumes where it stopped, and is paced by the products queue's backlog like the initial import
  (`PosFeed.backfill`).
- A family's message: entity "product", `entity_id` = `group_key` = the family key, `updated_at` = the Category or
  Manufacturer row's stamp, `change_key` "<entity>:<id>:<digest>", so SQS never drops it as a repeat of the family's
  own last change.
- A connection's first read records every row as seen without fanning out: the initial import (`pos:Item`) reads
  each family with its current names.
- Which Category changes count: name, parent, path and depth (`CHANGE_FIELDS`); `leftNode`/`rightNode` move when any
  category is added elsewhere (KVH category.md: "Used to build the category structure").

Pages are vendor rows: the Category / Manufacturer rows as read (they queue nothing), then the listed Item /
ItemMatrix rows, each tagged with the row it is listed for under `REFERENCE_KEY` (never a vendor field: V3 keeps
"@" for its envelope), or only that tag when none of a page's rows uses it (a filter ignored).
Cursor (JSON): a `feeds.StampCursor` plus `fan` ([id, stamp, digest] of the rows still to fan out, the first in
progress), `step` (0 simple items, 1 matrices), `after` (the last id listed in that step), `base` (the first read
still in progress); `feeds.cursor_at` resumes one from a moment.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pos_ecom_sync.errors import ConfigurationError, InvalidInput
from pos_ecom_sync.intake.rows import row_id, stamp
from pos_ecom_sync.models.feeds import ChangePage, PosFeed, VendorRow
from pos_ecom_sync.models.messages import CONCERN_OF, ChangeMessage, Entity
from pos_ecom_sync.profiles.rseries import envelope
from pos_ecom_sync.profiles.rseries.client import MAX_LIMIT
from pos_ecom_sync.profiles.rseries.feeds import (
    MATRIX_PREFIX,
    MAX_SKIPPED_PAGES,
    StampCursor,
    UsingLists,
    VendorEntity,
    digest,
)

REFERENCE_KEY = "@reference"
# Category fields whose change can change what a family shows in eCom (the name) or may one day (the path).
CATEGORY_CHANGE_FIELDS = ("categoryID", "name", "parentID", "fullPathName", "nodeDepth", "timeStamp")


@dataclass(frozen=True)
class ReferenceSpec(VendorEntity):
    entity: str  # the vendor entity polled: "Category" | "Manufacturer"
    field: str  # the foreign key naming it on Item and ItemMatrix rows
    change_fields: tuple[str, ...] | None = None  # the fields a change is made of (None: the whole row)

    @property
    def name(self) -> str:
        return f"pos:{self.entity}"


SPECS: tuple[ReferenceSpec, ...] = (
    ReferenceSpec("Category", "categoryID", CATEGORY_CHANGE_FIELDS),  # KVH endpoints/category.md
    ReferenceSpec("Manufacturer", "manufacturerID"),  # KVH endpoints/manufacturer.md
)
# What is listed per changed row, in order: (entity, its id field).
STEPS: tuple[tuple[str, str], ...] = (("Item", "itemID"), ("ItemMatrix", "itemMatrixID"))


@dataclass(frozen=True)
class Reference:
    """A changed Category or Manufacturer row being fanned out: its id, its `timeStamp` as read, its digest."""

    id: str
    stamp: str
    digest: str

    def tag(self) -> dict[str, str]:
        return {"id": self.id, "timeStamp": self.stamp, "digest": self.digest}


@dataclass(frozen=True)
class FanCursor:
    stamps: StampCursor = field(default_factory=StampCursor)
    pending: tuple[Reference, ...] = ()
    step: int = 0
    after: str | None = None
    baseline: bool = False

    def encode(self) -> str:
        data: dict[str, Any] = json.loads(self.stamps.encode())
        data.update(
            fan=[[ref.id, ref.stamp, ref.digest] for ref in self.pending],
            step=self.step,
            after=self.after,
            base=self.baseline,
        )
        return json.dumps(data, separators=(",", ":"), sort_keys=True)

    @classmethod
    def decode(cls, value: str | None) -> FanCursor:
        """A stored cursor; None (never read) is a first read. A plain `StampCursor` (`feeds.cursor_at`) has
        nothing to fan out."""
        stamps = StampCursor.decode(value)
        if value is None:
            return cls(stamps, baseline=True)
        try:
            data = json.loads(value)
            pending = tuple(Reference(*(str(part) for part in entry)) for entry in data.get("fan", []))
            step, after, baseline = data.get("step", 0), data.get("after"), data.get("base", False)
            if step not in range(len(STEPS)) or not (after is None or str(after).isdigit()):
                raise ValueError("no fan-out position")
            if not isinstance(baseline, bool) or not all(ref.id.isdigit() for ref in pending):
                raise ValueError("no fan-out rows")
        except (ValueError, TypeError, AttributeError) as exc:
            raise ConfigurationError(f"not an R-Series reference feed cursor: {value[:80]!r}") from exc
        return cls(stamps, pending, step, None if after is None else str(after), baseline)

    def listed(self, last_id: str | None, done: bool) -> FanCursor:
        """This cursor after one page of the current step: on past `last_id`, or to the next step or row."""
        if not done and last_id is not None:
            return FanCursor(self.stamps, self.pending, self.step, last_id, self.baseline)
        if self.step + 1 < len(STEPS):
            return FanCursor(self.stamps, self.pending, self.step + 1, None, self.baseline)
        return FanCursor(self.stamps, self.pending[1:], 0, None, self.baseline)


def _digits(row: Mapping[str, Any], name: str) -> str:
    value = row_id(row, name)
    if not value.isdigit():
        raise InvalidInput(f"{name} is not an R-Series id: {value[:40]!r}")
    return value


def change_digest(spec: ReferenceSpec, row: Mapping[str, Any]) -> str:
    """What tells one change of a Category or Manufacturer row from another with the same stamp."""
    kept = row if spec.change_fields is None else {name: row.get(name) for name in spec.change_fields}
    return digest(kept)


def _row_key(spec: ReferenceSpec, row: Mapping[str, Any]) -> tuple[str, int, str] | None:
    value, second = row.get(spec.id_field), envelope.epoch(row.get("timeStamp"))
    if not isinstance(value, str | int) or isinstance(value, bool) or second is None:
        return None
    return str(value), second, change_digest(spec, row)


def family_of(spec: ReferenceSpec, row: Mapping[str, Any]) -> str | None:
    """The family key a listed row stands for, when it uses the tagged Category or Manufacturer (None: a row a
    filter the vendor ignored let through, or only the tag); InvalidInput when its ids cannot be read."""
    tag = row.get(REFERENCE_KEY)
    if not isinstance(tag, dict):
        raise InvalidInput(f"{REFERENCE_KEY} is missing")
    if envelope.reference(row.get(spec.field)) != tag.get("id"):
        return None
    if "itemID" in row:
        item_id = _digits(row, "itemID")
        return None if envelope.reference(row.get("itemMatrixID")) is not None else item_id
    if "itemMatrixID" in row:
        return MATRIX_PREFIX + _digits(row, "itemMatrixID")
    return None


def row_messages(connection_id: str, spec: ReferenceSpec, row: VendorRow, now: datetime) -> list[ChangeMessage]:
    """One page row's messages: none for a Category or Manufacturer row itself (its id and stamp checked), one
    "product" message for a listed family that uses it; InvalidInput when the row cannot be handled."""
    if REFERENCE_KEY not in row:
        _digits(row, spec.id_field)
        if envelope.epoch(row.get("timeStamp")) is None:
            raise InvalidInput("timeStamp is not a time stamp")
        return []
    key = family_of(spec, row)
    if key is None:
        return []
    tag = row[REFERENCE_KEY]
    updated_at = stamp(tag.get("timeStamp"))
    if updated_at is None:
        raise InvalidInput(f"the {spec.entity} timeStamp is not a time stamp")
    id_field = "itemID" if "itemID" in row else "itemMatrixID"
    entity: Entity = "product"
    return [
        ChangeMessage(
            connection_id=connection_id,
            source="pos",
            entity=entity,
            entity_id=key,
            version=None,
            updated_at=updated_at,
            via="poll",
            received_at=now,
            payload={id_field: row[id_field], spec.field: tag["id"], "timeStamp": updated_at},
            concern=CONCERN_OF[("pos", entity)],
            group_key=key,
            change_key=f"{spec.entity}:{tag['id']}:{tag.get('digest')}"[:64],
        )
    ]


def page_messages(
    connection_id: str, spec: ReferenceSpec, rows: Sequence[VendorRow], now: datetime
) -> list[ChangeMessage]:
    """A page's messages, one per family (a page lists for one Category or Manufacturer row)."""
    messages: dict[str, ChangeMessage] = {}
    for row in rows:
        for message in row_messages(connection_id, spec, row, now):
            messages.setdefault(message.entity_id, message)
    return list(messages.values())


class ReferenceFeedReader:
    """`PosFeed.read` of the Category or Manufacturer feed for one run (see the module doc)."""

    def __init__(self, client: UsingLists, spec: ReferenceSpec, page_size: int) -> None:
        self._client = client
        self._spec = spec
        self._limit = max(1, min(page_size, MAX_LIMIT))
        self._next: dict[str, str] = {}  # cursor this run returned -> the vendor's next URL after that page

    def __call__(self, value: str | None) -> ChangePage:
        cursor = FanCursor.decode(value)
        return self._fan_out(cursor) if cursor.pending else self._changes(cursor, value)

    def _changes(self, cursor: FanCursor, value: str | None) -> ChangePage:
        entity = self._spec.entity
        url = self._next.pop(value, None) if value is not None else None
        page = (
            self._client.next_page(entity, url)
            if url
            else self._client.list_changes(entity, cursor.stamps.since, self._limit)
        )
        fresh: list[VendorRow] = []
        for _ in range(MAX_SKIPPED_PAGES):
            fresh = [row for row in page.rows if not cursor.stamps.delivered(_row_key(self._spec, row))]
            if fresh or page.next_url is None:
                break
            page = self._client.next_page(entity, page.next_url)
        if not fresh:
            return ChangePage()
        keyed = [(row, key) for row in fresh if (key := _row_key(self._spec, row)) is not None]
        pending = () if cursor.baseline else tuple(self._references(keyed))
        advanced = FanCursor(
            cursor.stamps.advanced([key for _, key in keyed]),
            pending,
            baseline=cursor.baseline and page.next_url is not None,
        )
        encoded = advanced.encode()
        if page.next_url is not None:
            self._next[encoded] = page.next_url
        return ChangePage(fresh, encoded, more=bool(pending) or page.next_url is not None)

    def _references(self, keyed: list[tuple[VendorRow, tuple[str, int, str]]]) -> list[Reference]:
        found: dict[str, Reference] = {}
        for row, (ref_id, _, row_digest) in keyed:
            if ref_id.isdigit() and stamp(row.get("timeStamp")) is not None:  # others are parked (row_messages)
                found[ref_id] = Reference(ref_id, str(row["timeStamp"]), row_digest)
        return list(found.values())

    def _fan_out(self, cursor: FanCursor) -> ChangePage:
        """One page of the families using the first pending row (one request)."""
        ref = cursor.pending[0]
        entity, id_field = STEPS[cursor.step]
        page = self._client.list_using(entity, self._spec.field, ref.id, after_id=cursor.after, limit=self._limit)
        after = int(cursor.after) if cursor.after is not None else -1
        ids = [(envelope.integer(row.get(id_field)), row) for row in page.rows]
        listed = [(row_number, row) for row_number, row in ids if row_number is not None and row_number > after]
        last = max((row_number for row_number, _ in listed), default=None)
        # Done with this step at the list's end, or when the vendor answered nothing past `after` (a sort or id
        # filter it ignored must not loop forever).
        advanced = cursor.listed(None if last is None else str(last), done=page.next_url is None or last is None)
        tag = ref.tag()
        rows = [{**row, REFERENCE_KEY: tag} for _, row in listed if _uses(self._spec, row, ref)]
        # More: the next step or row, or (all fanned out) the Category / Manufacturer rows changed meanwhile.
        return ChangePage(rows or [{REFERENCE_KEY: tag}], advanced.encode(), more=True)


def _uses(spec: ReferenceSpec, row: Mapping[str, Any], ref: Reference) -> bool:
    return envelope.reference(row.get(spec.field)) == ref.id


def reference_feed(client: UsingLists, connection_id: str, spec: ReferenceSpec, page_size: int) -> PosFeed:
    return PosFeed(
        name=spec.name,
        concern=CONCERN_OF[("pos", "product")],
        read=ReferenceFeedReader(client, spec, page_size),
        to_messages=lambda rows, now: page_messages(connection_id, spec, rows, now),
        row_messages=lambda row, now: row_messages(connection_id, spec, row, now),
        row_id=lambda row: _row_name(spec, row),
        row_version=lambda row: row.get("timeStamp"),
        backfill=True,  # a rename may fan out to thousands of families: paced by the products queue like the import
    )


def _row_name(spec: ReferenceSpec, row: Mapping[str, Any]) -> Any:
    if REFERENCE_KEY not in row:
        return row.get(spec.id_field)
    return row.get("itemID", row.get("itemMatrixID", row.get(REFERENCE_KEY)))


def reference_feeds(client: UsingLists, connection_id: str, page_size: int) -> list[PosFeed]:
    """The Category and Manufacturer feeds, in that order."""
    return [reference_feed(client, connection_id, spec, page_size) for spec in SPECS]
