"""The status ledger: the only code touching DynamoDB for order statuses.

One item per eCom order (`STATUS#<order id>`, keys in `state/keys.py`) holds
- a lease: the POS sale webhook and the eCom order webhook of one order travel in different message groups, so two
  workers may look at one order at once; only the lease holder reads, decides and writes,
- `frozen`: the order is voided and cancelled; every later change is recorded and ignored,
- `pos_returns`: the POS returns of the order's sale seen so far (return sale id -> POS product id -> quantity), whose
  sum is what eCom must show refunded,
- `ecom_unpaid_seen`: a status sync has read the order unpaid in eCom (sticky): with the payment status the order was
  imported with (order ledger), it tells a change to Paid from an order that was already paid at import (seed 004),
- `ecom_written` / `pos_written`: what our last writes left each side as (eCom's stamp of the order, the POS sale's
  digest), so their echoes are known without a read (`status.sync`),
- `ecom_digests`: the eCom order as the last syncs read it and as our writes left it, so a notice of a state already
  seen is settled without a read (`status.sync`),
- both sides as last seen, and a short history of what was applied or ignored and why (newest last, capped), so an
  operator can answer "why did this status not sync?" from `pos-ecom-sync` or the table.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import boto3
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError

from pos_ecom_sync.errors import Conflict, StatusBusy
from pos_ecom_sync.models.ledger import StatusLease, StatusRecord
from pos_ecom_sync.models.sales import WrittenSale
from pos_ecom_sync.state import keys
from pos_ecom_sync.state.dynamodb_errors import dynamodb_call

HISTORY_LIMIT = 25
# eCom stamps of our own order writes remembered to recognise their echoes (a status change makes one or two).
ECOM_WRITES_KEPT = 3
# POS writes of one sync (voids, payments, a fulfil) awaiting their echo (a sync makes one, at most two).
POS_WRITES_KEPT = 4
# eCom order states seen (a sync reads one and its writes leave one or two): the last two syncs' worth.
ECOM_DIGESTS_KEPT = 6

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def _attrs(values: Mapping[str, Any]) -> dict[str, Any]:
    return {name: _serializer.serialize(value) for name, value in values.items()}


def _history(lease: StatusLease, entries: Sequence[Mapping[str, Any]], now: int) -> list[dict[str, Any]]:
    """The order's history with `entries` added, stamped `now`: newest last, the last HISTORY_LIMIT kept."""
    previous = list(lease.previous.history) if lease.previous else []
    return [*previous, *({**e, "at": now} for e in entries)][-HISTORY_LIMIT:]


def status_record(item: Mapping[str, Any]) -> StatusRecord:
    """A status ledger item as its record."""
    data = {name: _deserializer.deserialize(value) for name, value in item.items()}
    return StatusRecord(
        order_id=int(data["order_id"]),
        frozen=bool(data.get("frozen", False)),
        ecom_seen=data.get("ecom_seen"),
        pos_seen=data.get("pos_seen"),
        history=tuple(dict(h) for h in data.get("history", []) or []),
        updated_at=int(data["updated_at"]) if data.get("updated_at") is not None else None,
        returns={
            str(sale): {str(p): int(q) for p, q in dict(lines).items()}
            for sale, lines in dict(data.get("pos_returns") or {}).items()
        },
        ecom_unpaid_seen=bool(data.get("ecom_unpaid_seen", False)),
        ecom_written=tuple(str(stamp) for stamp in data.get("ecom_written", []) or []),
        ecom_digests=tuple(str(digest) for digest in data.get("ecom_digests", []) or []),
        pos_written=tuple(_written_sale(entry) for entry in data.get("pos_written", []) or []),
    )


def _written_sale(entry: Mapping[str, Any]) -> WrittenSale:
    also = tuple(str(d) for d in entry.get("also", []) or [])
    return WrittenSale(str(entry["digest"]), bool(entry.get("stock_pending", False)), also)


def _written_items(written: Sequence[WrittenSale]) -> list[dict[str, Any]]:
    return [
        {"digest": w.digest, "stock_pending": w.stock_pending, **({"also": list(w.also)} if w.also else {})}
        for w in written
    ]


class StatusStore:
    def __init__(self, table_name: str, *, client: Any = None, clock: Callable[[], float] = time.time) -> None:
        self._table = table_name
        self._client = client or boto3.client("dynamodb")
        self._clock = clock

    def _key(self, connection_id: str, order_id: int) -> dict[str, Any]:
        return _attrs({"pk": keys.connection_pk(connection_id), "sk": keys.status_sk(order_id)})

    def get(self, connection_id: str, order_id: int) -> StatusRecord | None:
        with dynamodb_call("get order status"):
            item = self._client.get_item(
                TableName=self._table, Key=self._key(connection_id, order_id), ConsistentRead=True
            ).get("Item")
        return status_record(item) if item else None

    def lease(self, connection_id: str, order_id: int, *, seconds: float) -> StatusLease:
        """Take the order's lease (free, or expired because its holder died); `StatusBusy` when it is live."""
        now = self._clock()
        token = uuid.uuid4().hex
        with dynamodb_call("lease order status", allow_condition_failure=True) as call:
            response = self._client.update_item(
                TableName=self._table,
                Key=self._key(connection_id, order_id),
                UpdateExpression=(
                    "SET lease_token = :token, lease_until = :until, order_id = :oid, "
                    "created_at = if_not_exists(created_at, :now)"
                ),
                ConditionExpression="attribute_not_exists(lease_until) OR lease_until < :now",
                ExpressionAttributeValues=_attrs(
                    {":token": token, ":until": int(now + seconds) + 1, ":oid": order_id, ":now": int(now)}
                ),
                ReturnValues="ALL_OLD",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",  # the live lease, without a second read
            )
        if call.condition_failure is not None:
            current = call.condition_failure.response.get("Item")
            until = float(_deserializer.deserialize(current["lease_until"])) if current else now + seconds
            raise StatusBusy(order_id, until) from call.condition_failure
        old = response.get("Attributes")
        return StatusLease(order_id, token, status_record(old) if old and "order_id" in old else None)

    def settle(
        self,
        connection_id: str,
        lease: StatusLease,
        *,
        frozen: bool,
        ecom_seen: str,
        pos_seen: str,
        entries: Sequence[Mapping[str, Any]],
        returns: Mapping[str, Mapping[str, int]] | None = None,
        ecom_unpaid_seen: bool | None = None,
        ecom_written: Sequence[str] = (),
        pos_written: Sequence[WrittenSale] = (),
        ecom_digests: Sequence[str] = (),
    ) -> None:
        """Record the outcome and free the lease, only while this worker still holds it. `returns` and
        `ecom_unpaid_seen` None: unchanged (what earlier messages recorded); `ecom_unpaid_seen` never goes back.
        `ecom_written`: eCom's stamps of the order after this message's writes, added to the last few kept.
        `pos_written`: the POS sale as this message's writes left it, and the earlier writes whose result its read
        saw; they replace the earlier ones, whose echoes this message's read of the sale has overtaken (such an echo
        is read again: never swallowed late). `ecom_digests`: the eCom order states this message saw, added to the
        last few kept (one seen again moves to the newest end)."""
        now = int(self._clock())
        if returns is None:  # unchanged: keep what earlier messages recorded
            returns = lease.previous.returns if lease.previous else {}
        history = _history(lease, entries, now)
        unpaid_seen = bool(ecom_unpaid_seen) or bool(lease.previous and lease.previous.ecom_unpaid_seen)
        written = [*(lease.previous.ecom_written if lease.previous else ()), *ecom_written][-ECOM_WRITES_KEPT:]
        seen = [d for d in (lease.previous.ecom_digests if lease.previous else ()) if d not in ecom_digests]
        seen = [*seen, *dict.fromkeys(ecom_digests)][-ECOM_DIGESTS_KEPT:]
        lost = f"order {lease.order_id}: the status lease was lost before settling"
        with dynamodb_call("settle order status", on_condition_failure=lambda: Conflict(lost)):
            self._client.update_item(
                TableName=self._table,
                Key=self._key(connection_id, lease.order_id),
                UpdateExpression=(
                    "SET frozen = :frozen, ecom_seen = :ecom, pos_seen = :pos, history = :history, "
                    "pos_returns = :returns, ecom_unpaid_seen = :unpaid, ecom_written = :written, "
                    "pos_written = :pos_written, ecom_digests = :seen, updated_at = :now, lease_until = :zero"
                ),
                ConditionExpression="lease_token = :token",
                ExpressionAttributeValues=_attrs(
                    {
                        ":frozen": frozen,
                        ":ecom": ecom_seen,
                        ":pos": pos_seen,
                        ":history": history,
                        ":returns": {k: dict(v) for k, v in returns.items()},
                        ":unpaid": unpaid_seen,
                        ":written": written,
                        ":pos_written": _written_items(pos_written[-POS_WRITES_KEPT:]),
                        ":seen": seen,
                        ":now": now,
                        ":zero": 0,
                        ":token": lease.token,
                    }
                ),
            )

    def settle_echo(
        self,
        connection_id: str,
        lease: StatusLease,
        *,
        pos_written: Sequence[WrittenSale],
        entries: Sequence[Mapping[str, Any]] = (),
    ) -> None:
        """Free the lease after the echo of one of our POS writes, keeping `pos_written` (the writes not echoed yet)
        and adding `entries` to the history: each echo is taken once, so a later change that happens to leave the
        sale as our write did (a POS user packing it: fulfilments are not in the digest) is read. Raises like
        `settle` when the lease was lost, so the message is retried rather than the write kept for a second echo."""
        self._settle_unread(connection_id, lease, entries, "an echo", {"pos_written": _written_items(pos_written)})

    def settle_unread(self, connection_id: str, lease: StatusLease, *, entries: Sequence[Mapping[str, Any]]) -> None:
        """Free the lease after a message settled without a read, adding `entries` (why) to the history and changing
        nothing else. Raises like `settle` when the lease was lost (the message is retried)."""
        self._settle_unread(connection_id, lease, entries, "unread", {})

    def _settle_unread(
        self,
        connection_id: str,
        lease: StatusLease,
        entries: Sequence[Mapping[str, Any]],
        what: str,
        fields: Mapping[str, Any],
    ) -> None:
        """Free the lease held by this worker, adding `entries` to the history and setting `fields` (nothing read)."""
        now = int(self._clock())
        history = _history(lease, entries, now)
        sets = "".join(f"{name} = :{name}, " for name in fields)
        lost = f"order {lease.order_id}: the status lease was lost before settling {what}"
        with dynamodb_call(f"settle order status {what}", on_condition_failure=lambda: Conflict(lost)):
            self._client.update_item(
                TableName=self._table,
                Key=self._key(connection_id, lease.order_id),
                UpdateExpression=f"SET {sets}history = :history, lease_until = :zero",
                ConditionExpression="lease_token = :token",
                ExpressionAttributeValues=_attrs(
                    {
                        **{f":{name}": value for name, value in fields.items()},
                        ":history": history,
                        ":zero": 0,
                        ":token": lease.token,
                    }
                ),
            )

    def release(self, connection_id: str, lease: StatusLease) -> None:
        """Free the lease after a failure (best effort: an expired lease frees the order anyway)."""
        with contextlib.suppress(ClientError, BotoCoreError):
            self._client.update_item(
                TableName=self._table,
                Key=self._key(connection_id, lease.order_id),
                UpdateExpression="SET lease_until = :zero",
                ConditionExpression="lease_token = :token",
                ExpressionAttributeValues=_attrs({":zero": 0, ":token": lease.token}),
            )
