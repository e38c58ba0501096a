"""DynamoDB operations several stores share: a conditional put over the revision a caller loaded, a consistent
bulk read of one connection's items, and a bulk put. Failures are mapped as everywhere in `state/` (a lost condition
is `Conflict`, anything else `UpstreamUnavailable`)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from pos_ecom_sync.errors import Conflict, UpstreamUnavailable
from pos_ecom_sync.state import keys
from pos_ecom_sync.state.dynamodb_errors import dynamodb_call

BATCH_GET_LIMIT = 100  # DynamoDB's BatchGetItem maximum
BATCH_WRITE_LIMIT = 25  # DynamoDB's BatchWriteItem maximum
BATCH_ATTEMPTS = 5  # rounds for keys or items DynamoDB leaves unprocessed (throttling), with backoff


def put_over_revision(table: Any, item: dict[str, Any], loaded_revision: int, *, conflict: str, action: str) -> None:
    """Write `item` only if the stored one is still at `loaded_revision` (0: none may exist yet).

    The item carries its new `revision`; a writer that lost the race gets `Conflict(conflict)` and re-reads."""
    if loaded_revision:
        condition: dict[str, Any] = {
            "ConditionExpression": "revision = :seen",
            "ExpressionAttributeValues": {":seen": loaded_revision},
        }
    else:
        condition = {"ConditionExpression": "attribute_not_exists(pk)"}
    with dynamodb_call(action, on_condition_failure=lambda: Conflict(conflict)):
        table.put_item(Item=item, **condition)


def batch_read(
    reader: Any,
    table_name: str,
    wanted_keys: Sequence[dict[str, Any]],
    what: str,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> list[dict[str, Any]]:
    """The items of `wanted_keys` that exist, through `reader.batch_get_item` (a boto3 resource or client: keys and
    items in its own form), consistent reads, 100 keys a call, unprocessed keys retried with backoff."""
    found: list[dict[str, Any]] = []

    def read(wanted: list[Any]) -> list[Any]:
        with dynamodb_call(f"get {what}"):
            response = reader.batch_get_item(RequestItems={table_name: {"Keys": wanted, "ConsistentRead": True}})
        found.extend(response.get("Responses", {}).get(table_name, []))
        return list(response.get("UnprocessedKeys", {}).get(table_name, {}).get("Keys", []))

    for start in range(0, len(wanted_keys), BATCH_GET_LIMIT):
        _until_processed(read, list(wanted_keys[start : start + BATCH_GET_LIMIT]), f"{what} read(s)", sleep)
    return found


def batch_put(
    writer: Any,
    table_name: str,
    items: Sequence[dict[str, Any]],
    what: str,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Put `items` through `writer.batch_write_item` (a boto3 resource or client: items in its own form), 25 a call,
    unprocessed items retried with backoff. Unconditional puts: for items any copy of which is as good as another."""

    def write(pending: list[Any]) -> list[Any]:
        with dynamodb_call(f"put {what}"):
            response = writer.batch_write_item(RequestItems={table_name: pending})
        return list(response.get("UnprocessedItems", {}).get(table_name, []))

    for start in range(0, len(items), BATCH_WRITE_LIMIT):
        batch = [{"PutRequest": {"Item": item}} for item in items[start : start + BATCH_WRITE_LIMIT]]
        _until_processed(write, batch, f"{what} write(s)", sleep)


def _until_processed(
    send: Callable[[list[Any]], list[Any]], batch: list[Any], what: str, sleep: Callable[[float], None]
) -> None:
    """Send `batch`, then what DynamoDB left unprocessed (throttling), with backoff, for a bounded number of rounds."""
    for attempt in range(BATCH_ATTEMPTS):
        batch = send(batch)
        if not batch:
            return
        sleep(min(0.05 * 2**attempt, 1.0))
    raise UpstreamUnavailable(f"dynamodb kept {len(batch)} {what} unprocessed")


def get_many(
    resource: Any,
    table: Any,
    connection_id: str,
    sort_keys: Sequence[str],
    what: str,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, dict[str, Any]]:
    """Sort key -> item for those of `sort_keys` that exist in the connection's partition (`batch_read`)."""
    pk = keys.connection_pk(connection_id)
    items = batch_read(resource, table.name, [{"pk": pk, "sk": sk} for sk in sort_keys], what, sleep=sleep)
    return {str(item["sk"]): item for item in items}
