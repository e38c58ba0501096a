"""The order ledger, the held-order index and the customer email index: the only code touching DynamoDB for orders.

Items, all in the connection's partition of the one sync table (keys in `state/keys.py`):
- `ORDER#<eCom order id>`: the ledger. `importing` (an intent with a lease: the worker holding `attempt` may act
  until `lease_until`), `held` (why, and since when) or `imported` (the POS sale, its customer and outlets, and
  whether the new-fulfillment events went out). Created by the first claim, before any POS write. Before the sale is
  created the claim records the eCom payment status the sale is built from (`ecom_payment_status`): status sync
  records a POS payment only for an order that was unpaid in eCom then (seed 004), and an adopted sale keeps it.
- `SALE#<POS sale id>`: the reverse of the ledger (sale -> eCom order), written with the claim that chooses the sale
  id, before the sale exists, and again with the completion (covers a sale id the POS chose itself).
- `HELD#<eCom order id>`: present exactly while the order is held, written and removed in the same transaction as
  the ledger item, so listing held orders is one query.
- `EMAIL#<sha256 of the email>`: the customer email index. While `creating`, the lock two orders from one new email
  race for (the winner creates the POS customer, the loser then uses its id); once `created` or `matched` (found by
  the email search), the POS customer the next order from that email uses with no search (`orders.customers`).
- `CUSTOMER#<POS customer id>`: the index's reverse item, the email keys that customer is indexed under
  (`email_keys`, a string set), so the poller can drop the entries of a customer the POS changed.
- `EMAIL_IN_POS#<sha256 of the email>` and `CUSTOMER_CENSUS`: the customer census, the emails the POS customer feed
  showed on some customer, and how far that walk got (`models.ledger.CustomerCensus`). Marks are never dropped.

Every transition is a conditional write: a claim only succeeds on a free, held or expired order; holding and
completing only succeed for the claim that still owns the lease. A lost race is a `Conflict` (or `OrderBusy`),
never a silent overwrite. DynamoDB errors become `UpstreamUnavailable` (retried), as in `SyncStore`.
"""

from __future__ import annotations

import contextlib
import functools
import time
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

import boto3
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError

from pos_ecom_sync.errors import Conflict, OrderBusy
from pos_ecom_sync.models.ledger import (
    Claim,
    CustomerBusy,
    CustomerCensus,
    CustomerClaim,
    CustomerClaimed,
    CustomerKnown,
    HeldOrder,
    IndexedCustomer,
    OrderLookups,
    OrderRecord,
)
from pos_ecom_sync.models.links import VariantLink
from pos_ecom_sync.state import keys
from pos_ecom_sync.state.dynamodb_errors import TRANSACTION_CANCELED, dynamodb_call
from pos_ecom_sync.state.table_ops import batch_put, batch_read

# A customer id we recorded is trusted over a POS search that does not (yet) show it for this long: covers a
# search index that lags a create. Past it, the POS search is the truth again (the customer may be gone).
EMAIL_INDEX_TRUST_SECONDS = 3600
# DynamoDB's TransactWriteItems maximum.
TRANSACTION_LIMIT = 100
# Index entries that name a POS customer (the others are `creating` locks).
INDEXED = ("created", "matched")

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def _attrs(values: Mapping[str, Any]) -> dict[str, Any]:
    return {name: _serializer.serialize(value) for name, value in values.items()}


def _plain(item: Mapping[str, Any]) -> dict[str, Any]:
    return {name: _deserializer.deserialize(value) for name, value in item.items()}


def order_record(item: Mapping[str, Any]) -> OrderRecord:
    """A ledger item as its record."""
    data = _plain(item)

    def optional_int(name: str) -> int | None:
        return int(data[name]) if data.get(name) is not None else None

    return OrderRecord(
        order_id=int(data["order_id"]),
        status=data["status"],
        source_id=str(data.get("source_id", "")),
        attempts=int(data.get("attempts", 0)),
        attempt=data.get("attempt"),
        lease_until=float(data.get("lease_until", 0)),
        number=data.get("number"),
        held_reason=data.get("held_reason"),
        held_at=optional_int("held_at"),
        sale_id=data.get("sale_id"),
        customer_id=data.get("customer_id"),
        outlet_ids=tuple(str(o) for o in data.get("outlet_ids", []) or []),
        adopted=bool(data.get("adopted", False)),
        notifications_pending=bool(data.get("notifications_pending", False)),
        ecom_payment_status=data.get("ecom_payment_status"),
        created_at=optional_int("created_at"),
        updated_at=optional_int("updated_at"),
        imported_at=optional_int("imported_at"),
        correlation_ids=tuple(str(c) for c in data.get("correlation_ids", []) or []),
        last_error=data.get("last_error"),
        last_error_at=optional_int("last_error_at"),
        stock_held=tuple(str(p) for p in data.get("stock_held", []) or []),
        sale_ruled_out=bool(data.get("no_sale", False)),
    )


class OrderStore:
    def __init__(self, table_name: str, *, client: Any = None, clock: Callable[[], float] = time.time) -> None:
        self._table = table_name
        self._client = client or boto3.client("dynamodb")
        self._clock = clock
        # (connection, order) -> its ledger as `prefetch_orders` read it (None: absent), for one `get_order` each
        self._prefetched: dict[tuple[str, int], OrderRecord | None] = {}

    def _key(self, connection_id: str, sk: str) -> dict[str, Any]:
        return _attrs({"pk": keys.connection_pk(connection_id), "sk": sk})

    # -- the ledger ---------------------------------------------------------------------------------------

    def _get(self, connection_id: str, sk: str, action: str) -> dict[str, Any] | None:
        """One consistent read of a ledger item (raw attribute values), None when absent."""
        with dynamodb_call(action):
            item = self._client.get_item(
                TableName=self._table, Key=self._key(connection_id, sk), ConsistentRead=True
            ).get("Item")
        return dict(item) if item else None

    def get_order(self, connection_id: str, order_id: int) -> OrderRecord | None:
        """The order's ledger (consistent read); the first call for an order `prefetch_orders` read is answered from
        that read instead, the later ones read again."""
        prefetched = (connection_id, order_id)
        if prefetched in self._prefetched:
            return self._prefetched.pop(prefetched)
        item = self._get(connection_id, keys.order_sk(order_id), "get order")
        return order_record(item) if item else None

    def prefetch_orders(self, connection_id: str, order_ids: Collection[int]) -> None:
        """Read the ledgers of `order_ids` (an SQS batch's orders) in one batched consistent read, each to answer the
        next `get_order` of its order once. The importer's first read of an order only chooses a path: a ledger
        changed since (the same order earlier in the batch is read again, being asked for a second time) is settled
        by the claim's conditions, as a change between a read and the claim always was."""
        wanted = sorted(set(order_ids))
        found: dict[int, OrderRecord] = {}
        wanted_keys = [self._key(connection_id, keys.order_sk(order_id)) for order_id in wanted]
        for item in batch_read(self._client, self._table, wanted_keys, "orders"):
            record = order_record(item)
            found[record.order_id] = record
        for order_id in wanted:
            self._prefetched[(connection_id, order_id)] = found.get(order_id)

    def claim_order(
        self,
        connection_id: str,
        order_id: int,
        *,
        source_id: str,
        lease_seconds: float,
        sale_id: str | None = None,
        correlation_id: str | None = None,
        expect_new: bool = False,
        payment_status: str | None = None,
    ) -> Claim:
        """Record the intent to import (before any POS write) and take the lease.

        Succeeds on an order never seen, a held one, or one whose earlier claim expired (its worker is gone: the
        lease outlives the function timeout). An imported order raises `Conflict`; a live claim raises `OrderBusy`.
        `sale_id` (the id the sale will be created with) is recorded with the intent, and its reverse item first;
        `correlation_id` is appended to the order's list (an order has a few attempts: the list stays small).
        `expect_new`: the caller has just read no ledger item: the intent and the reverse item are then written in
        one transaction, on condition that the order is still new (else the general claim decides).
        `payment_status`: the eCom payment status the sale will be built from, when already known (recorded with the
        intent, as `note_payment_status` would).
        """
        now = self._clock()
        token = uuid.uuid4().hex
        until = now + lease_seconds
        sale_set = ", sale_id = :sale" if sale_id else ""
        if correlation_id:
            sale_set += ", correlation_ids = list_append(if_not_exists(correlation_ids, :no_ids), :cid)"
        if payment_status:
            sale_set += ", ecom_payment_status = :paid"
        update: dict[str, Any] = {
            "TableName": self._table,
            "Key": self._key(connection_id, keys.order_sk(order_id)),
            "UpdateExpression": (
                "SET #s = :importing, attempt = :token, lease_until = :until, source_id = :source, "
                "order_id = :oid, updated_at = :now, created_at = if_not_exists(created_at, :now)"
                f"{sale_set} ADD attempts :one REMOVE no_sale"
            ),
            "ExpressionAttributeNames": {"#s": "status"},
        }
        values = {
            ":importing": "importing",
            ":token": token,
            ":until": int(until) + 1,
            ":source": source_id,
            ":oid": order_id,
            ":now": int(now),
            ":one": 1,
            **({":sale": sale_id} if sale_id else {}),
            **({":cid": [correlation_id], ":no_ids": []} if correlation_id else {}),
            **({":paid": payment_status} if payment_status else {}),
        }
        if expect_new and sale_id:
            new_order = {
                **update,
                "ConditionExpression": "attribute_not_exists(pk)",
                "ExpressionAttributeValues": _attrs(values),
            }
            reverse = {"TableName": self._table, "Item": self._sale_order_item(connection_id, sale_id, order_id)}
            with dynamodb_call(
                "claim new order", allow_condition_failure=True, condition_code=TRANSACTION_CANCELED
            ) as first:
                self._client.transact_write_items(TransactItems=[{"Update": new_order}, {"Put": reverse}])
            if not first.condition_failed:
                return Claim(order_id, source_id, token, int(until) + 1, None, sale_id, payment_status)
        if sale_id:  # (again, when the order was written meanwhile: the same content)
            self._put_sale_order(connection_id, sale_id, order_id)
        with dynamodb_call("claim order", allow_condition_failure=True) as call:
            response = self._client.update_item(
                **update,
                ConditionExpression=(
                    "attribute_not_exists(pk) OR #s = :held OR (#s = :importing AND lease_until < :now)"
                ),
                ExpressionAttributeValues=_attrs({**values, ":held": "held"}),
                ReturnValues="ALL_OLD",
            )
        if call.condition_failure is not None:
            refused = call.condition_failure
            current = self.get_order(connection_id, order_id)
            if current is not None and current.status == "imported":
                raise Conflict(f"order {order_id} is already imported as sale {current.sale_id}") from refused
            raise OrderBusy(order_id, current.lease_until if current else until) from refused
        old = response.get("Attributes")
        previous = order_record(old) if old else None
        return Claim(order_id, source_id, token, int(until) + 1, previous, sale_id, payment_status)

    def note_payment_status(self, connection_id: str, claim: Claim, payment_status: str) -> None:
        """Record the eCom payment status the sale is about to be built from, for the claim that owns the order
        (before the create, so a sale adopted after a crash keeps it)."""
        lost = f"order {claim.order_id}: this worker's claim was lost (lease expired)"
        with dynamodb_call("note order payment status", on_condition_failure=lambda: Conflict(lost)):
            self._update_claimed(connection_id, claim, "SET ecom_payment_status = :paid", {":paid": payment_status})

    def _update_claimed(self, connection_id: str, claim: Claim, update: str, values: dict[str, Any]) -> None:
        """One update of the order item, only while `claim` still owns it (same attempt, still importing)."""
        self._client.update_item(
            TableName=self._table,
            Key=self._key(connection_id, keys.order_sk(claim.order_id)),
            UpdateExpression=update,
            ConditionExpression="attempt = :token AND #s = :importing",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues=_attrs({**values, ":token": claim.attempt, ":importing": "importing"}),
        )

    def hold_order(self, connection_id: str, claim: Claim, *, number: str | None, reason: str) -> OrderRecord:
        """Park the order with `reason` (nothing was written to the POS); it stays listed until imported."""
        now = int(self._clock())
        reason = reason[:2000]
        update = {
            "TableName": self._table,
            "Key": self._key(connection_id, keys.order_sk(claim.order_id)),
            "UpdateExpression": (
                "SET #s = :held, held_reason = :reason, held_at = :now, lease_until = :zero, updated_at = :now"
                + (", #n = :number" if number else "")
            ),
            "ConditionExpression": "attempt = :token AND #s = :importing",
            "ExpressionAttributeNames": {"#s": "status", **({"#n": "number"} if number else {})},
            "ExpressionAttributeValues": _attrs(
                {
                    ":held": "held",
                    ":importing": "importing",
                    ":reason": reason,
                    ":now": now,
                    ":zero": 0,
                    ":token": claim.attempt,
                    **({":number": number} if number else {}),
                }
            ),
        }
        attempts = (claim.previous.attempts if claim.previous else 0) + 1
        held = {
            **_plain(self._key(connection_id, keys.held_order_sk(claim.order_id))),
            "order_id": claim.order_id,
            "reason": reason,
            "held_at": now,
            "attempts": attempts,
            **({"number": number} if number else {}),
        }
        self._transact("hold order", [{"Update": update}, {"Put": {"TableName": self._table, "Item": _attrs(held)}}])
        record = self.get_order(connection_id, claim.order_id)
        assert record is not None
        return record

    def complete_order(
        self,
        connection_id: str,
        claim: Claim,
        *,
        number: str | None,
        sale_id: str,
        customer_id: str | None,
        outlet_ids: tuple[str, ...],
        adopted: bool,
        notify: bool,
        stock_held: tuple[str, ...] = (),
    ) -> OrderRecord:
        """The POS sale exists: record it (and drop the order from the held list) for the claim that owns it."""
        now = int(self._clock())
        values: dict[str, Any] = {
            ":imported": "imported",
            ":importing": "importing",
            ":sale": sale_id,
            ":outlets": list(outlet_ids),
            ":held": list(stock_held),
            ":adopted": adopted,
            ":notify": notify,
            ":now": now,
            ":zero": 0,
            ":token": claim.attempt,
        }
        sets = [
            "#s = :imported",
            "sale_id = :sale",
            "outlet_ids = :outlets",
            "stock_held = :held",
            "adopted = :adopted",
            "notifications_pending = :notify",
            "imported_at = :now",
            "updated_at = :now",
            "lease_until = :zero",
        ]
        if customer_id:
            sets.append("customer_id = :customer")
            values[":customer"] = customer_id
        if number:
            sets.append("#n = :number")
            values[":number"] = number
        update = {
            "TableName": self._table,
            "Key": self._key(connection_id, keys.order_sk(claim.order_id)),
            "UpdateExpression": "SET " + ", ".join(sets) + " REMOVE held_reason",
            "ConditionExpression": "attempt = :token AND #s = :importing",
            "ExpressionAttributeNames": {"#s": "status", **({"#n": "number"} if number else {})},
            "ExpressionAttributeValues": _attrs(values),
        }
        delete = {"TableName": self._table, "Key": self._key(connection_id, keys.held_order_sk(claim.order_id))}
        reverse = {"TableName": self._table, "Item": self._sale_order_item(connection_id, sale_id, claim.order_id)}
        self._transact("complete order", [{"Update": update}, {"Delete": delete}, {"Put": reverse}])
        return OrderRecord(
            order_id=claim.order_id,
            status="imported",
            source_id=claim.source_id,
            attempts=(claim.previous.attempts if claim.previous else 0) + 1,
            attempt=claim.attempt,
            number=number,
            sale_id=sale_id,
            customer_id=customer_id,
            outlet_ids=outlet_ids,
            adopted=adopted,
            notifications_pending=notify,
            updated_at=now,
            stock_held=stock_held,
        )

    def order_for_sale(self, connection_id: str, sale_id: str) -> OrderRecord | None:
        """The ledger of the eCom order a POS sale was made for; None for a sale this sync did not make (in-store).
        Two reads: the reverse item, then the order."""
        item = self._get(connection_id, keys.sale_order_sk(sale_id), "get order of sale")
        if not item:
            return None
        return self.get_order(connection_id, int(_plain(item)["order_id"]))

    def _sale_order_item(self, connection_id: str, sale_id: str, order_id: int) -> dict[str, Any]:
        values = {**_plain(self._key(connection_id, keys.sale_order_sk(sale_id))), "order_id": order_id}
        return _attrs({**values, "sale_id": sale_id, "updated_at": int(self._clock())})

    def _put_sale_order(self, connection_id: str, sale_id: str, order_id: int) -> None:
        # Same content on every attempt (the sale id is derived from the order), so an unconditional put is safe.
        with dynamodb_call("record sale of order"):
            self._client.put_item(TableName=self._table, Item=self._sale_order_item(connection_id, sale_id, order_id))

    def release(
        self, connection_id: str, claim: Claim, *, error: str | None = None, sale_possible: bool = True
    ) -> None:
        """Give the lease up early (the attempt failed and its record will be retried or dead-lettered), noting
        `error` for the operator. `sale_possible=False`: the attempt never asked the POS to create the sale, so the
        next one need not look for it (a claim clears the mark: a crash leaves it "possible"). Best effort: an
        expired lease frees the order anyway."""
        update = "SET lease_until = :zero"
        values: dict[str, Any] = {":zero": 0}
        if not sale_possible:
            update += ", no_sale = :true"
            values[":true"] = True
        if error:
            update += ", last_error = :error, last_error_at = :now"
            values.update({":error": error[:1000], ":now": int(self._clock())})
        with contextlib.suppress(ClientError, BotoCoreError):
            self._update_claimed(connection_id, claim, update, values)

    def record_stock_held(self, connection_id: str, order_id: int, product_ids: tuple[str, ...]) -> None:
        """Record which products stock sync holds units of for the imported order's open sale (empty: none)."""
        not_imported = f"order {order_id} is not imported: no stock is held for it"
        with dynamodb_call("record stock held", on_condition_failure=lambda: Conflict(not_imported)):
            self._client.update_item(
                TableName=self._table,
                Key=self._key(connection_id, keys.order_sk(order_id)),
                UpdateExpression="SET stock_held = :held, updated_at = :now",
                ConditionExpression="#s = :imported",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues=_attrs(
                    {":held": list(product_ids), ":now": int(self._clock()), ":imported": "imported"}
                ),
            )

    def mark_notified(self, connection_id: str, order_id: int) -> None:
        not_imported = f"order {order_id} is not imported: nothing to mark notified"
        with dynamodb_call("mark order notified", on_condition_failure=lambda: Conflict(not_imported)):
            self._client.update_item(**self._notified(connection_id, order_id))

    def mark_notified_many(self, connection_id: str, order_ids: Sequence[int]) -> None:
        """`mark_notified` for several imported orders (an SQS batch's) in one write: a transaction of at most
        `TRANSACTION_LIMIT` updates, each conditional as `mark_notified`'s (one order not imported fails them all:
        `Conflict`)."""
        wanted = sorted(set(order_ids))
        if len(wanted) == 1:
            self.mark_notified(connection_id, wanted[0])
            return
        for start in range(0, len(wanted), TRANSACTION_LIMIT):
            chunk = wanted[start : start + TRANSACTION_LIMIT]
            updates = [{"Update": self._notified(connection_id, order_id)} for order_id in chunk]
            refused = functools.partial(Conflict, f"orders {chunk}: one is not imported, none marked notified")
            with dynamodb_call(
                "mark orders notified", on_condition_failure=refused, condition_code=TRANSACTION_CANCELED
            ):
                self._client.transact_write_items(TransactItems=updates)

    def _notified(self, connection_id: str, order_id: int) -> dict[str, Any]:
        return {
            "TableName": self._table,
            "Key": self._key(connection_id, keys.order_sk(order_id)),
            "UpdateExpression": "SET notifications_pending = :no, notified_at = :now",
            "ConditionExpression": "#s = :imported",
            "ExpressionAttributeNames": {"#s": "status"},
            "ExpressionAttributeValues": _attrs({":no": False, ":now": int(self._clock()), ":imported": "imported"}),
        }

    def held_orders(self, connection_id: str) -> list[HeldOrder]:
        """Every held order of the connection, oldest order id first."""
        query: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "ExpressionAttributeValues": _attrs(
                {":pk": keys.connection_pk(connection_id), ":prefix": keys.HELD_ORDER_PREFIX}
            ),
            "ConsistentRead": True,
        }
        held: list[HeldOrder] = []
        with dynamodb_call("list held orders"):
            while True:
                page = self._client.query(**query)
                for item in page.get("Items", []):
                    data = _plain(item)
                    held.append(
                        HeldOrder(
                            order_id=int(data["order_id"]),
                            number=data.get("number"),
                            reason=str(data.get("reason", "")),
                            held_at=int(data.get("held_at", 0)),
                            attempts=int(data.get("attempts", 0)),
                        )
                    )
                if "LastEvaluatedKey" not in page:
                    return held
                query["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def _transact(self, action: str, items: list[dict[str, Any]]) -> None:
        lost = f"{action}: this worker's claim on the order was lost (lease expired)"
        with dynamodb_call(action, on_condition_failure=lambda: Conflict(lost), condition_code=TRANSACTION_CANCELED):
            self._client.transact_write_items(TransactItems=items)

    # -- the customer email index -------------------------------------------------------------------------

    def claim_customer(self, connection_id: str, email_key: str, *, owner: str, lease_seconds: float) -> CustomerClaim:
        """Take the right to create the customer of `email_key`, or learn who has it / what it created. The caller's
        email search found nobody: a customer we created is still trusted for `EMAIL_INDEX_TRUST_SECONDS` (the search
        may lag the create), one the search once matched is not (it is gone now)."""
        now = self._clock()
        with dynamodb_call("claim customer", allow_condition_failure=True) as call:
            self._client.put_item(
                TableName=self._table,
                Item=_attrs(
                    {
                        **_plain(self._key(connection_id, keys.customer_email_sk(email_key))),
                        "status": "creating",
                        "owner": owner,
                        "lease_until": int(now + lease_seconds) + 1,
                        "updated_at": int(now),
                    }
                ),
                ConditionExpression=(
                    "attribute_not_exists(pk) OR (#s = :creating AND (lease_until < :now OR #o = :owner)) "
                    "OR (#s = :created AND recorded_at < :stale) OR #s = :matched"
                ),
                ExpressionAttributeNames={"#s": "status", "#o": "owner"},
                ExpressionAttributeValues=_attrs(
                    {
                        ":creating": "creating",
                        ":created": "created",
                        ":matched": "matched",
                        ":now": int(now),
                        ":owner": owner,
                        ":stale": int(now - EMAIL_INDEX_TRUST_SECONDS),
                    }
                ),
            )
        if call.condition_failed:
            current = self._get_email(connection_id, email_key)
            if current and current.get("status") == "created" and current.get("customer_id"):
                return CustomerKnown(str(current["customer_id"]))
            return CustomerBusy(float(current.get("lease_until", now)) if current else now)
        return CustomerClaimed()

    def record_customer(self, connection_id: str, email_key: str, *, owner: str, customer_id: str) -> None:
        """The customer this order created under its lock, and the reverse item, in one transaction."""
        now = int(self._clock())
        item = {
            **_plain(self._key(connection_id, keys.customer_email_sk(email_key))),
            "status": "created",
            "owner": owner,
            "customer_id": customer_id,
            "recorded_at": now,
            "updated_at": now,
        }
        put = {"TableName": self._table, "Item": _attrs(item)}
        with dynamodb_call("record customer"):
            self._client.transact_write_items(
                TransactItems=[{"Put": put}, {"Update": self._reverse_add(connection_id, customer_id, email_key, now)}]
            )

    def index_customer(self, connection_id: str, email_key: str, *, customer_id: str) -> bool:
        """Record (or confirm) the customer the email search matched, with the reverse item, in one transaction.
        Leaves a live `creating` lock alone (another order is creating this email's customer): False then."""
        now = int(self._clock())
        item = {
            **_plain(self._key(connection_id, keys.customer_email_sk(email_key))),
            "status": "matched",
            "customer_id": customer_id,
            "recorded_at": now,
            "updated_at": now,
        }
        put = {
            "TableName": self._table,
            "Item": _attrs(item),
            "ConditionExpression": "attribute_not_exists(pk) OR #s <> :creating OR lease_until < :now",
            "ExpressionAttributeNames": {"#s": "status"},
            "ExpressionAttributeValues": _attrs({":creating": "creating", ":now": now}),
        }
        update = self._reverse_add(connection_id, customer_id, email_key, now)
        with dynamodb_call("index customer", allow_condition_failure=True, condition_code=TRANSACTION_CANCELED) as call:
            self._client.transact_write_items(TransactItems=[{"Put": put}, {"Update": update}])
        return not call.condition_failed

    def _reverse_add(self, connection_id: str, customer_id: str, email_key: str, now: int) -> dict[str, Any]:
        return {
            "TableName": self._table,
            "Key": self._key(connection_id, keys.customer_index_sk(customer_id)),
            "UpdateExpression": "ADD email_keys :key SET customer_id = :customer, updated_at = :now",
            "ExpressionAttributeValues": _attrs({":key": {email_key}, ":customer": customer_id, ":now": now}),
        }

    def indexed_keys(self, connection_id: str, customer_ids: Collection[str]) -> dict[str, frozenset[str]]:
        """POS customer id -> the email keys it is indexed under, for those of `customer_ids` the index knows
        (reverse items, read in batches)."""
        found: dict[str, frozenset[str]] = {}
        for data in self._get_many(connection_id, [keys.customer_index_sk(c) for c in sorted(set(customer_ids))]):
            email_keys = frozenset(str(k) for k in data.get("email_keys") or ())
            if email_keys and data.get("customer_id"):
                found[str(data["customer_id"])] = email_keys
        return found

    def order_lookups(
        self, connection_id: str, ecom_variant_ids: Collection[int], email_key: str | None
    ) -> OrderLookups:
        """Our variant links of an order's lines and the customer index's entry for its email, in one batched read
        (the links are written by the catalog worker, `SyncStore`)."""
        wanted = [keys.ecom_variant_link_sk(v) for v in sorted(set(ecom_variant_ids))]
        email_sk = keys.customer_email_sk(email_key) if email_key else None
        in_pos_sk = keys.email_in_pos_sk(email_key) if email_key else None
        census_sk = keys.customer_census_sk()
        customer_sks = [email_sk, in_pos_sk, census_sk] if email_sk and in_pos_sk else []
        links: dict[int, VariantLink] = {}
        customer: IndexedCustomer | None = None
        email_in_pos, census = False, None
        for data in self._get_many(connection_id, [*wanted, *customer_sks]):
            if data["sk"] == email_sk:
                customer = _indexed(data)
                continue
            if data["sk"] == in_pos_sk:
                email_in_pos = True
                continue
            if data["sk"] == census_sk:
                census = _census(data)
                continue
            link = VariantLink(
                pos_product_id=str(data["pos_product_id"]),
                family_key=str(data["family_key"]),
                ecom_product_id=int(data["ecom_product_id"]),
                ecom_variant_id=int(data["ecom_variant_id"]),
            )
            links[link.ecom_variant_id] = link
        return OrderLookups(links, customer, email_in_pos, census)

    def _get_many(self, connection_id: str, sort_keys: list[str]) -> list[dict[str, Any]]:
        """The items of `sort_keys` that exist (`table_ops.batch_read`)."""
        wanted = [self._key(connection_id, sk) for sk in sort_keys]
        return [_plain(item) for item in batch_read(self._client, self._table, wanted, "order lookups")]

    def forget_customer(self, connection_id: str, email_key: str, customer_id: str) -> bool:
        """Drop the index entry of `email_key` if it still names `customer_id` (True then), and the key from that
        customer's reverse item either way. The next order from that email searches the POS again."""
        with dynamodb_call("forget indexed customer", allow_condition_failure=True) as call:
            self._client.delete_item(
                TableName=self._table,
                Key=self._key(connection_id, keys.customer_email_sk(email_key)),
                ConditionExpression="customer_id = :customer",
                ExpressionAttributeValues=_attrs({":customer": customer_id}),
            )
        with dynamodb_call("forget indexed customer key"):
            self._client.update_item(
                TableName=self._table,
                Key=self._key(connection_id, keys.customer_index_sk(customer_id)),
                UpdateExpression="DELETE email_keys :key SET updated_at = :now",
                ExpressionAttributeValues=_attrs({":key": {email_key}, ":now": int(self._clock())}),
            )
        return not call.condition_failed

    def release_customer(self, connection_id: str, email_key: str, *, owner: str) -> None:
        """Best effort, like `release`."""
        with contextlib.suppress(ClientError, BotoCoreError):
            self._client.update_item(
                TableName=self._table,
                Key=self._key(connection_id, keys.customer_email_sk(email_key)),
                UpdateExpression="SET lease_until = :zero",
                ConditionExpression="#o = :owner AND #s = :creating",
                ExpressionAttributeNames={"#s": "status", "#o": "owner"},
                ExpressionAttributeValues=_attrs({":zero": 0, ":owner": owner, ":creating": "creating"}),
            )

    # -- the customer census (written by the poller's walk of the POS customer feed) ----------------------------

    def customer_census(self, connection_id: str) -> CustomerCensus | None:
        """The census's progress; None: its walk has not begun."""
        item = self._get(connection_id, keys.customer_census_sk(), "get customer census")
        return _census(_plain(item)) if item else None

    def mark_emails_in_pos(self, connection_id: str, email_keys: Collection[str]) -> None:
        """Some POS customer holds each of these emails (batched puts: a mark carries nothing but its key)."""
        pk = keys.connection_pk(connection_id)
        items = [_attrs({"pk": pk, "sk": keys.email_in_pos_sk(k)}) for k in sorted(set(email_keys))]
        batch_put(self._client, self._table, items, "customer census marks")

    def census_walked(self, connection_id: str, *, caught_up: bool) -> None:
        """The census's walk has begun (kept if it had), and with `caught_up` it reached the feed's end just now."""
        now = int(self._clock())
        update = "SET begun_at = if_not_exists(begun_at, :now)" + (", caught_up_at = :now" if caught_up else "")
        with dynamodb_call("record customer census"):
            self._client.update_item(
                TableName=self._table,
                Key=self._key(connection_id, keys.customer_census_sk()),
                UpdateExpression=update,
                ExpressionAttributeValues=_attrs({":now": now}),
            )

    def customer_entry(self, connection_id: str, email_key: str) -> dict[str, Any] | None:
        """The raw index entry (tests and the CLI)."""
        return self._get_email(connection_id, email_key)

    def _get_email(self, connection_id: str, email_key: str) -> dict[str, Any] | None:
        item = self._get(connection_id, keys.customer_email_sk(email_key), "get customer index")
        return _plain(item) if item else None


def _census(item: Mapping[str, Any]) -> CustomerCensus:
    caught_up = item.get("caught_up_at")
    return CustomerCensus(caught_up_at=int(caught_up) if caught_up is not None else None)


def _indexed(entry: Mapping[str, Any]) -> IndexedCustomer | None:
    """An email index entry as the customer it names; None for a `creating` lock."""
    if entry.get("status") not in INDEXED or not entry.get("customer_id"):
        return None
    return IndexedCustomer(
        customer_id=str(entry["customer_id"]),
        origin=str(entry["status"]),
        recorded_at=int(entry.get("recorded_at", 0)),
    )
