"""Stock state in the sync table: the only code that reads and writes it (the stock worker's store).

Items (keys in `state/keys.py`), all in the connection's partition:
- `STOCK#v#<pos variant id>`: a `VariantStockState` (per-outlet levels, what eCom holds, claimed writes). Every
  save is conditional on the revision loaded, so two workers can never both move a variant from the same state
  (the claim protocol of `stock.rules` rests on it). A lost race raises `Conflict`.
- `STOCK#OUTLETS`: the connected outlets and primary outlet the worker last applied, so an outlet change is
  planned against what was really applied (conditional on its revision too).

Recomputation walks the catalog worker's `LINK#pos#...` items (every variant that exists in eCom) in id order,
a bounded chunk at a time, with each variant's stock state read in one batch.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import boto3
from boto3.dynamodb.conditions import Key

from pos_ecom_sync.errors import InvalidInput
from pos_ecom_sync.models.stock import AppliedOutlets, StockChunk, StockEntry, VariantStockState
from pos_ecom_sync.state import keys
from pos_ecom_sync.state.dynamodb_errors import dynamodb_call
from pos_ecom_sync.state.table_ops import get_many, put_over_revision

LINK_PREFIX = keys.pos_variant_link_sk("")
# Sorts right after every `LINK#pos#...` key ('$' follows '#'), closing the range query.
LINK_RANGE_END = LINK_PREFIX[:-1] + "$"


class StockStore:
    def __init__(self, table_name: str, *, resource: Any = None, clock: Any = time.time) -> None:
        self._resource = resource or boto3.resource("dynamodb")
        self._table = self._resource.Table(table_name)
        self._clock = clock

    # -- one variant ------------------------------------------------------------------------------------

    def get_stock(self, connection_id: str, pos_product_id: str) -> VariantStockState:
        """The variant's stock state; a new one (revision 0, nothing known) when none is stored."""
        with dynamodb_call("get stock state"):
            item = self._table.get_item(
                Key={"pk": keys.connection_pk(connection_id), "sk": keys.stock_sk(pos_product_id)},
                ConsistentRead=True,
            ).get("Item")
        return self._parse(item, pos_product_id)

    def save_stock(self, connection_id: str, loaded_revision: int, new_state: VariantStockState) -> None:
        """Write `new_state` if the stored state is still at `loaded_revision` (0: none stored); else `Conflict`."""
        if new_state.revision <= loaded_revision:
            raise InvalidInput(f"stock state of {new_state.product_id} saved without a new revision")
        item = {
            "pk": keys.connection_pk(connection_id),
            "sk": keys.stock_sk(new_state.product_id),
            "state": new_state.model_dump_json(),
            "revision": new_state.revision,
            "updated_at": int(self._clock()),
        }
        conflict = f"stock state of {new_state.product_id} changed since it was read"
        put_over_revision(self._table, item, loaded_revision, conflict=conflict, action="save stock state")

    # -- outlet settings applied ----------------------------------------------------------------------------

    def get_applied_outlets(self, connection_id: str) -> AppliedOutlets:
        with dynamodb_call("get applied outlets"):
            item = self._table.get_item(
                Key={"pk": keys.connection_pk(connection_id), "sk": keys.STOCK_OUTLETS_SK}, ConsistentRead=True
            ).get("Item")
        if not item:
            return AppliedOutlets()
        primary = item.get("primary_outlet_id")
        return AppliedOutlets(
            outlets=tuple(str(o) for o in item.get("outlets", [])),
            primary_outlet_id=str(primary) if primary else None,
            revision=int(item["revision"]),
        )

    def save_applied_outlets(
        self, connection_id: str, applied: AppliedOutlets, outlets: Sequence[str], primary_outlet_id: str | None
    ) -> AppliedOutlets:
        """Record the outlets now applied, if nobody recorded others since `applied` was read (else `Conflict`)."""
        saved = AppliedOutlets(tuple(sorted(set(outlets))), primary_outlet_id, applied.revision + 1)
        item: dict[str, Any] = {
            "pk": keys.connection_pk(connection_id),
            "sk": keys.STOCK_OUTLETS_SK,
            "outlets": list(saved.outlets),
            "revision": saved.revision,
            "updated_at": int(self._clock()),
        }
        if primary_outlet_id:
            item["primary_outlet_id"] = primary_outlet_id
        conflict = "the applied outlets changed while an outlet change was being applied"
        put_over_revision(self._table, item, applied.revision, conflict=conflict, action="save applied outlets")
        return saved

    # -- recomputation chunks ---------------------------------------------------------------------------------

    def stock_chunk(self, connection_id: str, after: str | None, limit: int) -> StockChunk:
        """The next at most `limit` variants linked to eCom after POS id `after`, in id order, with their state."""
        if limit < 1:
            raise InvalidInput("chunk limit must be at least 1")
        pk = keys.connection_pk(connection_id)
        start = keys.pos_variant_link_sk(after) if after is not None else LINK_PREFIX
        query: dict[str, Any] = {
            # BETWEEN is inclusive: the cursor's own item comes back first and is skipped.
            "KeyConditionExpression": Key("pk").eq(pk) & Key("sk").between(start, LINK_RANGE_END),
            "ConsistentRead": True,
            "Limit": limit + 1,
        }
        links: list[tuple[str, int]] = []
        more = False
        with dynamodb_call("list variant links"):
            while True:
                page = self._table.query(**query)
                for item in page.get("Items", []):
                    pos_id = str(item["pos_product_id"])
                    if after is not None and pos_id <= after:
                        continue
                    if len(links) == limit:
                        more = True
                        break
                    links.append((pos_id, int(item["ecom_variant_id"])))
                if more or "LastEvaluatedKey" not in page:
                    break
                query["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        states = self._get_many(connection_id, [pos_id for pos_id, _ in links])
        entries = tuple(StockEntry(pos_id, ecom_id, states[pos_id]) for pos_id, ecom_id in links)
        return StockChunk(entries, links[-1][0] if more else None)

    # -- order routing ----------------------------------------------------------------------------------------

    def routing_view(
        self, connection_id: str, pos_ids: Sequence[str], family_keys: Sequence[str] = ()
    ) -> tuple[dict[str, VariantStockState], frozenset[str]]:
        """What order routing may take from the table instead of the POS, in one batched read (BatchGetItem, 100 keys
        a call): the stock state of each of `pos_ids` (a new, empty one when none is stored), and which of
        `family_keys` the catalog worker's state shows live (stored, and not deleted in the POS)."""
        from pos_ecom_sync.models.catalog import CatalogState  # order routing's only: the stock worker never reads it

        pos_ids, family_keys = list(dict.fromkeys(pos_ids)), list(dict.fromkeys(family_keys))
        sort_keys = [keys.stock_sk(pos_id) for pos_id in pos_ids] + [keys.family_sk(key) for key in family_keys]
        found = get_many(self._resource, self._table, connection_id, sort_keys, "routing state")
        states = {pos_id: self._parse(found.get(keys.stock_sk(pos_id)), pos_id) for pos_id in pos_ids}
        live = set()
        for key in family_keys:
            item = found.get(keys.family_sk(key))
            if item and not CatalogState.model_validate_json(str(item["state"])).deleted_in_pos:
                live.add(key)
        return states, frozenset(live)

    def _get_many(self, connection_id: str, pos_ids: Sequence[str]) -> dict[str, VariantStockState]:
        sort_keys = [keys.stock_sk(pos_id) for pos_id in pos_ids]
        found = get_many(self._resource, self._table, connection_id, sort_keys, "stock state")
        return {pos_id: self._parse(found.get(keys.stock_sk(pos_id)), pos_id) for pos_id in pos_ids}

    @staticmethod
    def _parse(item: dict[str, Any] | None, pos_product_id: str) -> VariantStockState:
        if not item:
            return VariantStockState(product_id=pos_product_id)
        return VariantStockState.model_validate_json(str(item["state"]))
