"""The sync state store: the one place that reads and writes the DynamoDB table.

Every write that could race is conditional; a lost race is reported, never silently overwritten.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import boto3
from boto3.dynamodb.conditions import Key

from pos_ecom_sync.errors import Conflict
from pos_ecom_sync.models.connection import Connection
from pos_ecom_sync.state import keys
from pos_ecom_sync.state.dynamodb_errors import TRANSACTION_CANCELED, dynamodb_call

# Cursors and catalog records are imported where read: the webhook function and the workers use this store for
# connections and deliveries, and the poller never reads catalog records.
if TYPE_CHECKING:
    from pos_ecom_sync.models.catalog import CatalogState, StoredCatalogState
    from pos_ecom_sync.models.feeds import Cursor
    from pos_ecom_sync.models.links import VariantLink


class SyncStore:
    def __init__(self, table_name: str, *, resource: Any = None, clock: Any = time.time) -> None:
        self._table = (resource or boto3.resource("dynamodb")).Table(table_name)
        self._clock = clock

    # -- connections -------------------------------------------------------------------------------

    def get_connection(self, connection_id: str) -> Connection | None:
        with dynamodb_call("get connection"):
            item = self._table.get_item(
                Key={"pk": keys.connection_pk(connection_id), "sk": keys.CONFIG_SK}, ConsistentRead=True
            ).get("Item")
        return Connection.model_validate_json(item["settings"]) if item else None

    def save_connection(self, connection: Connection, *, create: bool = False) -> None:
        """Create (refused if it exists) or replace a connection's settings."""
        item = {
            "pk": keys.connection_pk(connection.connection_id),
            "sk": keys.CONFIG_SK,
            "gsi1pk": keys.CONNECTIONS_GSI_PK,
            "gsi1sk": connection.connection_id,
            "status": connection.status,
            "settings": connection.model_dump_json(),
        }
        condition = {"ConditionExpression": "attribute_not_exists(pk)"} if create else {}
        exists = f"connection {connection.connection_id!r} already exists"
        with dynamodb_call("save connection", on_condition_failure=lambda: Conflict(exists)):
            self._table.put_item(Item=item, **condition)

    def iter_connections(self, *, active_only: bool = False) -> Iterator[Connection]:
        query: dict[str, Any] = {
            "IndexName": "gsi1",
            "KeyConditionExpression": Key("gsi1pk").eq(keys.CONNECTIONS_GSI_PK),
        }
        with dynamodb_call("list connections"):
            while True:
                page = self._table.query(**query)
                for item in page.get("Items", []):
                    connection = Connection.model_validate_json(item["settings"])
                    if connection.is_active or not active_only:
                        yield connection
                if "LastEvaluatedKey" not in page:
                    return
                query["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    # -- change-feed cursors -----------------------------------------------------------------------

    def get_cursor(self, connection_id: str, feed: str) -> Cursor:
        from pos_ecom_sync.models.feeds import Cursor

        with dynamodb_call("get cursor"):
            item = self._table.get_item(
                Key={"pk": keys.connection_pk(connection_id), "sk": keys.cursor_sk(feed)}, ConsistentRead=True
            ).get("Item")
        if not item:
            return Cursor(feed=feed, value=None)
        moved = item.get("updated_at")
        return Cursor(feed=feed, value=item.get("value"), moved_at=float(moved) if moved is not None else None)

    def list_cursors(self, connection_id: str) -> list[Cursor]:
        """Every change-feed cursor the connection has (a feed never read has none), by feed name."""
        from pos_ecom_sync.models.feeds import Cursor

        prefix = keys.cursor_sk("")
        query: dict[str, Any] = {
            "KeyConditionExpression": Key("pk").eq(keys.connection_pk(connection_id)) & Key("sk").begins_with(prefix),
            "ConsistentRead": True,
        }
        cursors: list[Cursor] = []
        with dynamodb_call("list cursors"):
            while True:
                page = self._table.query(**query)
                for item in page.get("Items", []):
                    moved = item.get("updated_at")
                    cursors.append(
                        Cursor(
                            feed=str(item["sk"]).removeprefix(prefix),
                            value=item.get("value"),
                            moved_at=float(moved) if moved is not None else None,
                        )
                    )
                if "LastEvaluatedKey" not in page:
                    return sorted(cursors, key=lambda c: c.feed)
                query["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def advance_cursor(self, connection_id: str, cursor: Cursor, new_value: str) -> bool:
        """Move a cursor from the value it was read at to `new_value`.

        Returns False when another poller moved it first (this poller then stops that feed): two
        pollers can never both advance from the same point, so none skips or double-advances.
        """
        if cursor.value is None:
            condition, values = "attribute_not_exists(pk) OR attribute_not_exists(#v)", {":new": new_value}
        else:
            condition, values = "#v = :old", {":new": new_value, ":old": cursor.value}
        with dynamodb_call("advance cursor", allow_condition_failure=True) as call:
            self._table.update_item(
                Key={"pk": keys.connection_pk(connection_id), "sk": keys.cursor_sk(cursor.feed)},
                UpdateExpression="SET #v = :new, updated_at = :now",
                ConditionExpression=condition,
                ExpressionAttributeNames={"#v": "value"},
                ExpressionAttributeValues={**values, ":now": int(self._clock())},
            )
        return not call.condition_failed

    # -- webhook delivery de-duplication -------------------------------------------------------------

    def delivery_seen(self, connection_id: str, delivery_key: str) -> bool:
        with dynamodb_call("read delivery mark"):
            item = self._table.get_item(
                Key={"pk": keys.delivery_pk(connection_id), "sk": keys.delivery_sk(delivery_key)}
            ).get("Item")
        # TTL deletion is lazy (up to days late), so an expired mark must be ignored here.
        return bool(item) and int(item.get("expires_at", 0)) > self._clock()

    def remember_delivery(self, connection_id: str, delivery_key: str, ttl_seconds: int) -> None:
        now = int(self._clock())
        with dynamodb_call("write delivery mark"):
            self._table.put_item(
                Item={
                    "pk": keys.delivery_pk(connection_id),
                    "sk": keys.delivery_sk(delivery_key),
                    "queued_at": now,
                    "expires_at": now + ttl_seconds,
                }
            )

    # -- catalog state (one item per POS family) ------------------------------------------------------

    def get_catalog_state(self, connection_id: str, family_key: str) -> StoredCatalogState:
        from pos_ecom_sync.models.catalog import CatalogState, StoredCatalogState

        with dynamodb_call("get catalog state"):
            item = self._table.get_item(
                Key={"pk": keys.connection_pk(connection_id), "sk": keys.family_sk(family_key)}, ConsistentRead=True
            ).get("Item")
        if not item:
            return StoredCatalogState(CatalogState(), revision=0)
        intent_at = item.get("intent_at")
        return StoredCatalogState(
            CatalogState.model_validate_json(str(item["state"])),
            revision=int(item["revision"]),
            intent_at=int(intent_at) if intent_at is not None else None,
        )

    def save_catalog_state(
        self, connection_id: str, family_key: str, stored: StoredCatalogState, new_state: CatalogState
    ) -> StoredCatalogState:
        """Write `new_state` if the item is still at `stored.revision`; the connection's variant count moves in
        the same transaction, so the plan cap never drifts from what the family items say.
        """
        from pos_ecom_sync.models.catalog import StoredCatalogState

        now = int(self._clock())
        intent_at = now if len(new_state.create_intents) > len(stored.state.create_intents) else stored.intent_at
        if not new_state.create_intents:
            intent_at = None
        revision = stored.revision + 1
        item: dict[str, Any] = {
            "pk": keys.connection_pk(connection_id),
            "sk": keys.family_sk(family_key),
            "state": new_state.model_dump_json(),
            "revision": revision,
            "updated_at": now,
        }
        if intent_at is not None:
            item["intent_at"] = intent_at
        put: dict[str, Any] = {"TableName": self._table.name, "Item": item}
        if stored.revision:
            put |= {"ConditionExpression": "revision = :seen", "ExpressionAttributeValues": {":seen": stored.revision}}
        else:
            put |= {"ConditionExpression": "attribute_not_exists(pk)"}
        actions: list[dict[str, Any]] = [{"Put": put}]
        actions += self._variant_link_changes(connection_id, family_key, stored.state, new_state)
        delta = len(new_state.variants) - len(stored.state.variants)
        if delta:
            actions.append(
                {
                    "Update": {
                        "TableName": self._table.name,
                        "Key": {"pk": keys.connection_pk(connection_id), "sk": keys.CATALOG_COUNT_SK},
                        "UpdateExpression": "ADD variants :delta",
                        "ExpressionAttributeValues": {":delta": delta},
                    }
                }
            )
        changed = f"catalog state of {family_key} changed while it was being synced"
        with dynamodb_call(
            "save catalog state", on_condition_failure=lambda: Conflict(changed), condition_code=TRANSACTION_CANCELED
        ):
            self._table.meta.client.transact_write_items(TransactItems=actions)
        return StoredCatalogState(new_state, revision, intent_at)

    def _variant_link_changes(
        self, connection_id: str, family_key: str, old: CatalogState, new: CatalogState
    ) -> list[dict[str, Any]]:
        """Link items (both directions) for variants created or deleted by this save, in the same transaction."""
        pk = keys.connection_pk(connection_id)
        changes: list[dict[str, Any]] = []
        for pos_id, ref in new.variants.items():
            if old.variants.get(pos_id, None) is None or old.variants[pos_id].ecom_variant_id != ref.ecom_variant_id:
                link = {
                    "pos_product_id": pos_id,
                    "family_key": family_key,
                    "ecom_product_id": ref.ecom_product_id,
                    "ecom_variant_id": ref.ecom_variant_id,
                }
                for sk in (keys.pos_variant_link_sk(pos_id), keys.ecom_variant_link_sk(ref.ecom_variant_id)):
                    changes.append({"Put": {"TableName": self._table.name, "Item": {"pk": pk, "sk": sk, **link}}})
        for pos_id, ref in old.variants.items():
            if pos_id not in new.variants:
                for sk in (keys.pos_variant_link_sk(pos_id), keys.ecom_variant_link_sk(ref.ecom_variant_id)):
                    changes.append({"Delete": {"TableName": self._table.name, "Key": {"pk": pk, "sk": sk}}})
        return changes

    def variant_link(
        self, connection_id: str, *, pos_product_id: str | None = None, ecom_variant_id: int | None = None
    ) -> VariantLink | None:
        """The POS <-> eCom variant pair we manage, looked up from either side (None: not ours, or not yet)."""
        from pos_ecom_sync.models.links import VariantLink

        if (pos_product_id is None) == (ecom_variant_id is None):
            raise ValueError("look a variant link up by exactly one of pos_product_id or ecom_variant_id")
        sk = (
            keys.pos_variant_link_sk(pos_product_id)
            if pos_product_id is not None
            else keys.ecom_variant_link_sk(int(ecom_variant_id or 0))
        )
        with dynamodb_call("get variant link"):
            item = self._table.get_item(Key={"pk": keys.connection_pk(connection_id), "sk": sk}).get("Item")
        if not item:
            return None
        return VariantLink(
            pos_product_id=str(item["pos_product_id"]),
            family_key=str(item["family_key"]),
            ecom_product_id=int(item["ecom_product_id"]),
            ecom_variant_id=int(item["ecom_variant_id"]),
        )

    def catalog_variant_count(self, connection_id: str) -> int:
        with dynamodb_call("get catalog count"):
            item = self._table.get_item(
                Key={"pk": keys.connection_pk(connection_id), "sk": keys.CATALOG_COUNT_SK}, ConsistentRead=True
            ).get("Item")
        return int(item.get("variants", 0)) if item else 0
