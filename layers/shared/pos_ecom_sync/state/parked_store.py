"""Parked feed rows: rows the change poller or a reconciliation page could not handle, skipped so the feed moves on.

A row that cannot become a message (no or a garbled id, a version that is no integer or out of range, a value that
cannot be serialised...) is skipped, its feed's cursor moves past it, and it is recorded here for the operator
(`pos-ecom-sync parked list <connection>`). One item per feed and row, in the connection's partition
(`PARKED#<feed>#<row key>`, keys in `state/keys.py`): the feed, the row's id and version as printable text, the
reason, when it was first and last seen, how many times, and `expires_at` (the table's TTL attribute, 30 days after
it was last seen). Seeing the same row again (a poller that died before moving its cursor, an order inside the
sweep's overlap window) updates the item, never adds one. Nothing here is a vendor value: ids and reasons are escaped
to ASCII and cut, so no item can grow past a few KB whatever a vendor sent.

A parked row is handled again once the vendor changes it (its new version is on the feed) or when a forced
reconciliation run re-reads it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import boto3
from boto3.dynamodb.conditions import Key

from pos_ecom_sync.models.feeds import ParkedRow, SkippedRow
from pos_ecom_sync.state import keys
from pos_ecom_sync.state.dynamodb_errors import dynamodb_call

PARK_TTL_SECONDS = 30 * 86_400


def _parked(item: dict[str, Any]) -> ParkedRow:
    return ParkedRow(
        parked_key=str(item["sk"]).removeprefix(keys.PARKED_PREFIX),
        feed=str(item.get("feed", "")),
        row_id=str(item.get("row_id", "")),
        reason=str(item.get("reason", "")),
        version=str(item["version"]) if item.get("version") is not None else None,
        first_seen=int(item.get("first_seen", 0)),
        last_seen=int(item.get("last_seen", 0)),
        seen=int(item.get("seen", 0)),
        expires_at=int(item.get("expires_at", 0)),
    )


class ParkedStore:
    def __init__(
        self,
        table_name: str,
        *,
        resource: Any = None,
        clock: Callable[[], float] = time.time,
        ttl_seconds: int = PARK_TTL_SECONDS,
    ) -> None:
        self._table = (resource or boto3.resource("dynamodb")).Table(table_name)
        self._clock = clock
        self._ttl = ttl_seconds

    def park(self, connection_id: str, rows: Sequence[SkippedRow]) -> None:
        """Record (or refresh) each skipped row: one UpdateItem per row, `first_seen` kept from the first time."""
        now = int(self._clock())
        unique = {row.parked_key: row for row in rows}
        for parked_key, row in unique.items():
            with dynamodb_call("park a skipped row"):
                self._table.update_item(
                    Key={"pk": keys.connection_pk(connection_id), "sk": keys.PARKED_PREFIX + parked_key},
                    UpdateExpression=(
                        "SET #feed = :feed, #row = :row, #reason = :reason, #version = :version, #last = :now, "
                        "#first = if_not_exists(#first, :now), #exp = :exp ADD #seen :one"
                    ),
                    ExpressionAttributeNames={
                        "#feed": "feed",
                        "#row": "row_id",
                        "#reason": "reason",
                        "#version": "version",
                        "#last": "last_seen",
                        "#first": "first_seen",
                        "#exp": "expires_at",
                        "#seen": "seen",
                    },
                    ExpressionAttributeValues={
                        ":feed": row.feed,
                        ":row": row.row_id,
                        ":reason": row.reason,
                        ":version": row.version,
                        ":now": now,
                        ":exp": now + self._ttl,
                        ":one": 1,
                    },
                )

    def list(self, connection_id: str, feed: str | None = None) -> list[ParkedRow]:
        """The connection's parked rows (of one feed, when given), by feed and key; expired ones left out (TTL
        deletion is lazy)."""
        prefix = keys.PARKED_PREFIX + (f"{feed}#" if feed else "")
        query: dict[str, Any] = {
            "KeyConditionExpression": Key("pk").eq(keys.connection_pk(connection_id)) & Key("sk").begins_with(prefix),
            "ConsistentRead": True,
        }
        now = self._clock()
        found: list[ParkedRow] = []
        with dynamodb_call("list parked rows"):
            while True:
                page = self._table.query(**query)
                found.extend(p for p in map(_parked, page.get("Items", [])) if p.expires_at > now)
                if "LastEvaluatedKey" not in page:
                    return found
                query["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def get(self, connection_id: str, parked_key: str) -> ParkedRow | None:
        with dynamodb_call("get a parked row"):
            item = self._table.get_item(
                Key={"pk": keys.connection_pk(connection_id), "sk": keys.PARKED_PREFIX + parked_key},
                ConsistentRead=True,
            ).get("Item")
        return _parked(item) if item else None
