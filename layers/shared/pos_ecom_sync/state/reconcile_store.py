"""Reconciliation state in the sync table: its checkpoint, and the bulk reads a full compare needs.

Items (keys in `state/keys.py`), all in the connection's partition:
- `RECONCILE#RUN`: the `ReconcileCheckpoint` (run, phase, cursor). Saved only over the revision loaded, so two
  overlapping invocations never both advance one run; a lost race is a `Conflict`.

Everything else is read, never written here: catalog states (`FAMILY#`), variant links (`LINK#ecom#`), stock states
(`STOCK#v#`) and the order ledger (`ORDER#`) belong to their workers' stores. A compare reads them a page at a
time with BatchGetItem (100 keys a call), not one GetItem per entity.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import boto3
from boto3.dynamodb.conditions import Key

from pos_ecom_sync.errors import InvalidInput
from pos_ecom_sync.models.catalog import CatalogState
from pos_ecom_sync.models.links import VariantLink
from pos_ecom_sync.models.reconcile import ReconcileCheckpoint
from pos_ecom_sync.models.stock import VariantStockState
from pos_ecom_sync.state import keys
from pos_ecom_sync.state.dynamodb_errors import dynamodb_call
from pos_ecom_sync.state.table_ops import get_many, put_over_revision

ECOM_LINK_PREFIX = keys.ecom_variant_link_sk(0).removesuffix("0")
# Sorts right after every `LINK#ecom#...` key ('$' follows '#'), closing the range query.
ECOM_LINK_RANGE_END = ECOM_LINK_PREFIX[:-1] + "$"


class ReconcileStore:
    def __init__(self, table_name: str, *, resource: Any = None, sleep: Callable[[float], None] = time.sleep) -> None:
        self._resource = resource or boto3.resource("dynamodb")
        self._table = self._resource.Table(table_name)
        self._sleep = sleep

    # -- checkpoint ---------------------------------------------------------------------------------------

    def get_checkpoint(self, connection_id: str) -> ReconcileCheckpoint:
        """The connection's checkpoint; a blank one (never reconciled, revision 0) when none is stored."""
        with dynamodb_call("get reconcile checkpoint"):
            item = self._table.get_item(
                Key={"pk": keys.connection_pk(connection_id), "sk": keys.RECONCILE_SK}, ConsistentRead=True
            ).get("Item")
        return ReconcileCheckpoint.model_validate_json(str(item["checkpoint"])) if item else ReconcileCheckpoint()

    def save_checkpoint(self, connection_id: str, loaded_revision: int, checkpoint: ReconcileCheckpoint) -> None:
        """Write `checkpoint` if the stored one is still at `loaded_revision` (0: none stored); else `Conflict`."""
        if checkpoint.revision <= loaded_revision:
            raise InvalidInput("reconcile checkpoint saved without a new revision")
        item = {
            "pk": keys.connection_pk(connection_id),
            "sk": keys.RECONCILE_SK,
            "checkpoint": checkpoint.model_dump_json(),
            "revision": checkpoint.revision,
            "phase": checkpoint.phase,
            "updated_at": int(time.time()),
        }
        conflict = f"reconciliation of {connection_id!r} was advanced by another invocation"
        put_over_revision(self._table, item, loaded_revision, conflict=conflict, action="save reconcile checkpoint")

    # -- bulk reads -----------------------------------------------------------------------------------------

    def catalog_states(self, connection_id: str, family_keys: Iterable[str]) -> dict[str, CatalogState]:
        """Catalog state per POS family; a blank state for a family never synced."""
        wanted = sorted(set(family_keys))
        items = self._get_many(connection_id, [keys.family_sk(k) for k in wanted], "catalog states")
        found: dict[str, CatalogState] = {}
        for key in wanted:
            item = items.get(keys.family_sk(key))
            found[key] = CatalogState.model_validate_json(str(item["state"])) if item else CatalogState()
        return found

    def stock_states(self, connection_id: str, pos_product_ids: Iterable[str]) -> dict[str, VariantStockState]:
        """Stock state per POS variant; a blank one (nothing known) for a variant never settled."""
        wanted = sorted(set(pos_product_ids))
        items = self._get_many(connection_id, [keys.stock_sk(p) for p in wanted], "stock states")
        found: dict[str, VariantStockState] = {}
        for pos_id in wanted:
            item = items.get(keys.stock_sk(pos_id))
            found[pos_id] = (
                VariantStockState.model_validate_json(str(item["state"]))
                if item
                else VariantStockState(product_id=pos_id)
            )
        return found

    def order_statuses(self, connection_id: str, order_ids: Iterable[int]) -> dict[int, str]:
        """Ledger status per eCom order ("importing", "held", "imported"); orders never claimed are absent."""
        wanted = sorted(set(order_ids))
        items = self._get_many(connection_id, [keys.order_sk(o) for o in wanted], "order ledger")
        return {o: str(items[keys.order_sk(o)]["status"]) for o in wanted if keys.order_sk(o) in items}

    def ecom_links(self, connection_id: str) -> dict[int, VariantLink]:
        """Every eCom variant the catalog worker created for this connection, by eCom variant id."""
        query: dict[str, Any] = {
            "KeyConditionExpression": Key("pk").eq(keys.connection_pk(connection_id))
            & Key("sk").between(ECOM_LINK_PREFIX, ECOM_LINK_RANGE_END),
        }
        links: dict[int, VariantLink] = {}
        with dynamodb_call("list eCom variant links"):
            while True:
                page = self._table.query(**query)
                for item in page.get("Items", []):
                    link = VariantLink(
                        pos_product_id=str(item["pos_product_id"]),
                        family_key=str(item["family_key"]),
                        ecom_product_id=int(item["ecom_product_id"]),
                        ecom_variant_id=int(item["ecom_variant_id"]),
                    )
                    links[link.ecom_variant_id] = link
                if "LastEvaluatedKey" not in page:
                    return links
                query["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def _get_many(self, connection_id: str, sort_keys: Sequence[str], what: str) -> dict[str, dict[str, Any]]:
        return get_many(self._resource, self._table, connection_id, sort_keys, what, sleep=self._sleep)
