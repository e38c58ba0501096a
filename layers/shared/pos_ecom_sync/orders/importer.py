"""Order worker: one eCom order -> exactly one POS sale with its fulfillments, customer and payment (the I/O around
the pure rules of this package).

Steps, each safe to repeat after a crash at any point:
1. Ledger first. An imported order costs one DynamoDB read and nothing else (the poller re-sweeps every order
   that changes). Otherwise `claim_order` records the intent with the sale id the sale will be created with (ours:
   uuid5 of the connection and the order id, `sale_uuid`) and its reverse item (sale -> order), and takes a lease
   before anything is written to the POS. An order another invocation holds a live claim on is left to it (its own
   message settles the order, whatever happens to that invocation). An order the ledger has never seen is read
   from eCom (step 3) just before its claim, which then also records the eCom payment status the sale is built
   from; the intent and the reverse item of a new order are one transaction.
2. If an earlier claim on the order ended neither held nor imported (its worker died or failed, or the create's
   answer was lost), the sale may exist: read it by its id (`GET /api/2026-07/sales/{id}`) and adopt it instead of
   creating another. A first claim skips this read (no sale can exist without an earlier claim), which saves a POS
   call on nearly every order. No search is involved: the vendor declares no search by external reference.
3. Re-read the order and its lines from eCom (the message is only a hint), match each line to a POS product
   (variant link, then SKU; an EAN cannot be looked up, the X-Series API has no barcode filter) and get its level
   per outlet (see "Levels for routing" below), which also proves the product still exists.
   Any line that matches nothing, or a deleted product, holds the whole order with the reason, and so does a
   shipping charge without a shipping product on the connection (the sale would not total the order): nothing is
   written to the POS, the message is acknowledged (a held order never blocks others), and the order is listed
   by `pos-ecom-sync orders held` until a retry (operator, or the poller seeing the order change) imports it.
4. Route (ship-method outlet / one outlet in full / split), decide the payment, then find the customer: the
   customer email index first (a repeat buyer costs no search, `orders.customers`), else search by email and match
   or create (an email the customer census shows no POS customer holds is created with no search). Creating takes
   the email-index lock first, so two orders from a new email create one customer; a crash after the create is
   healed by the next attempt's email search finding that customer.
5. Create the sale with `POST /api/2026-07/sales` and our sale id, on the online register, made by the POS user
   chosen in `_author_id`, then record it in the ledger (conditional on still owning the lease). The lease
   (`LEASE_SECONDS`) outlives the function timeout, so an expired claim always belongs to a dead worker. Should two
   creates of one id still meet (a worker stalled past its lease), the POS holds one sale per id: whether it refuses
   the second (a 4xx) or answers 200 is undocumented, so after a refusal the sale is read back and adopted.
6. One EventBridge event per new fulfillment (per outlet), when the connection has notifications on. Events are
   at least once: a crash between sending and recording re-sends them; `event_id` lets consumers drop repeats.
   Within an SQS batch (`runtime.sqs_batch`) they are sent when the batch ends, together with the other orders'
   (`BatchedNotifications`): the import is recorded with its events pending first, so nothing is lost meanwhile.

Levels for routing. The stock worker keeps every outlet's POS level per variant (`VariantStockState.levels`), fed by
the inventory feed and webhooks. A product's levels come from that state, with one batched table read for the whole
order and no POS call, when all of these hold:
- the state has a level for every candidate outlet (connected + primary); a product never seen there is read from
  the POS (`PosOrders.routing_levels`), and so is one missing any candidate outlet (a missing level is not 0);
- the stock queue is idle (SQS's approximate counts of waiting, in-flight and delayed messages all 0; one
  GetQueueAttributes call, made only when some product could use the state, whose "idle" the later orders of the same
  SQS batch reuse for up to `queues.IDLE_REUSE_SECONDS`, 10 s: `queues.RecentIdle`), so nothing the change feed or a
  webhook had read by then is still waiting to be applied: a cached level is never older than what the feed's cursor
  had passed 10 s before;
- for a product matched by our variant link, the link itself proves the product still exists, as the POS read with
  `confirm_exists` did: a POS delete reaches us through the products feed, and product_sync then removes the
  variant's link (or, under the `hide` policy, marks the family `deleted_in_pos`, read in the same batch). So the
  products queue must be idle too (a second GetQueueAttributes, only then, reused the same way), or a delete the
  poller has read but product_sync not yet applied could be missed. Otherwise the POS confirms it, and a deleted
  product holds the order as before;
- it is the order's first attempt: a retry (an earlier attempt failed) and an operator's retry of a held order read
  the POS. A sale the POS refuses on a first attempt that used the table (levels, or an indexed customer) is built
  once more from POS reads alone in the same attempt (`_rebuild_from_pos`): a product deleted before any feed showed
  it then holds the order, as a POS read would have.
Why approximate counts and a level as old as the feed are acceptable: routing only picks the outlet(s) that fulfil
the order; it never changes what eCom shows (the stock worker writes eCom from the POS), so a stale level cannot
oversell eCom. A POS read made now races in-store sales exactly the same way (the till may sell the unit a moment
after the read), and the sale is created whatever the levels say (units no outlet holds go to the primary,
`beyond_stock`). SQS's counts may briefly miss a message just sent; that message is at most as fresh as the feed
poll that sent it, the same race. A delete no feed has read yet is not seen in the table; a POS read made just before
the delete would miss it too, and a POS that refuses the sale for it gets the rebuild above.

Choices: an order whose payment was cancelled before it was imported becomes a VOIDED sale (seed 004:
Canceled <-> Voided): it shows in sales history, takes no stock and opens no fulfillment. A connection without
`online_register_id` uses the POS's first register (as the registers list returns them), logged each time. A
connection without connected outlets routes to that register's outlet.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from pos_ecom_sync.correlation import current_correlation_id
from pos_ecom_sync.errors import (
    Conflict,
    InvalidInput,
    OrderBusy,
    RateLimited,
    RetryLater,
    UpstreamError,
    UpstreamUnavailable,
    safe_text,
)
from pos_ecom_sync.models.connection import Connection
from pos_ecom_sync.models.ledger import (
    Claim,
    CustomerBusy,
    CustomerClaim,
    CustomerKnown,
    OrderLookups,
    OrderRecord,
)
from pos_ecom_sync.models.links import VariantLink
from pos_ecom_sync.models.messages import Concern
from pos_ecom_sync.models.orders import (
    CreatedSale,
    EcomOrder,
    EcomOrderLine,
    FoundSale,
    FulfillmentPlan,
    NewFulfillmentEvent,
    PaymentType,
    PosCustomer,
    Register,
    SaleFulfillment,
)
from pos_ecom_sync.models.stock import VariantStockState
from pos_ecom_sync.orders.customers import (
    CreateCustomer,
    CustomerMatch,
    NoCustomer,
    email_key,
    match_customer,
    must_search,
    reusable,
)
from pos_ecom_sync.orders.payments import LeaveUnpaid, PaymentDecision, payment_for, setting_for
from pos_ecom_sync.orders.routing import LineDemand, cached_levels, candidate_outlets, route_order
from pos_ecom_sync.orders.sale import Hold, SaleDraft, Unmatched, match_lines, sale_uuid, source_id
from pos_ecom_sync.orders.shipping import shipping_hold_reason
from pos_ecom_sync.queues import Outgoing
from pos_ecom_sync.stock.reservations import held_units, hold_messages

JsonObject = dict[str, Any]
# An order's claim lasts this long: more than twice the worker's 60 s timeout, so a claim can only expire after
# the worker holding it was stopped. SQS redelivers a dead worker's message after 360 s, past the lease.
LEASE_SECONDS = 150.0
# How long an order waits in-process for another order that is creating the same new customer.
CUSTOMER_WAIT_SECONDS = 10.0
CUSTOMER_POLL_SECONDS = 0.2
Outcome = Literal["imported", "adopted", "already imported", "held", "in progress elsewhere"]


# -- what the worker talks to ---------------------------------------------------------------------------------


class PosOrders(Protocol):
    """The connection's POS as the importer needs it, from its profile (e.g. `profiles.xseries.orders.XSeriesOrders`).
    Reference lists (registers, payment types) are the profile's to cache."""

    @property
    def calls(self) -> int: ...
    def find_sale(self, sale_key: str, reference: str) -> FoundSale | None:
        """The sale an earlier attempt created for the order (its `sale_key` and `reference`), by the mechanism the
        vendor documents; None when there is none. Raises InvalidInput for a sale that is not this order's."""
        ...

    def fulfillments(self, sale_id: str) -> list[SaleFulfillment]: ...
    def sellable_by_sku(self, sku: str) -> list[str]: ...
    def sellable_by_barcode(self, code: str) -> list[str] | None:
        """None: this POS cannot be searched by barcode."""
        ...

    def routing_levels(self, product_id: str, *, confirm_exists: bool) -> dict[str, int] | None:
        """Location -> level of a product that still exists; None when it is gone."""
        ...

    def registers(self) -> list[Register]: ...
    def payment_types(self) -> list[PaymentType]: ...
    def prepare_sale(self) -> None:
        """Raise InvalidInput when the POS lacks what every sale needs, before anything is written."""
        ...

    def customers_by_email(self, email: str) -> list[PosCustomer]: ...
    def create_customer(self, first_name: str, last_name: str, email: str, code: str) -> str: ...
    def create_sale(self, draft: SaleDraft) -> CreatedSale:
        """Create the sale; UpstreamError when the POS refuses it."""
        ...


class EcomOrders(Protocol):
    @property
    def calls(self) -> int: ...
    def order_with_lines(self, order_id: int) -> tuple[JsonObject | None, list[JsonObject]]:
        """The order (None when eCom has none) and its lines, read back to back."""
        ...


class OrderLedger(Protocol):
    def get_order(self, connection_id: str, order_id: int) -> OrderRecord | None: ...
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
    ) -> Claim: ...
    def note_payment_status(self, connection_id: str, claim: Claim, payment_status: str) -> None: ...
    def hold_order(self, connection_id: str, claim: Claim, *, number: str | None, reason: str) -> OrderRecord: ...
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
    ) -> OrderRecord: ...
    def release(
        self, connection_id: str, claim: Claim, *, error: str | None = None, sale_possible: bool = True
    ) -> None: ...
    def mark_notified(self, connection_id: str, order_id: int) -> None: ...
    def claim_customer(
        self, connection_id: str, email_key: str, *, owner: str, lease_seconds: float
    ) -> CustomerClaim: ...
    def record_customer(self, connection_id: str, email_key: str, *, owner: str, customer_id: str) -> None: ...
    def release_customer(self, connection_id: str, email_key: str, *, owner: str) -> None: ...
    def order_lookups(
        self, connection_id: str, ecom_variant_ids: Collection[int], email_key: str | None
    ) -> OrderLookups: ...
    def index_customer(self, connection_id: str, email_key: str, *, customer_id: str) -> bool: ...
    def forget_customer(self, connection_id: str, email_key: str, customer_id: str) -> bool: ...


class FulfillmentNotifier(Protocol):
    def publish(self, events: Sequence[NewFulfillmentEvent]) -> int: ...


class StockQueue(Protocol):
    """Where the importer sends holds of an open sale's units (the stock queue's publisher)."""

    def publish(self, outgoing: Sequence[Outgoing]) -> int: ...


class StockStates(Protocol):
    """The stock state the stock worker keeps per POS variant, read for routing (`state.stock_store.StockStore`)."""

    def routing_view(
        self, connection_id: str, pos_ids: Sequence[str], family_keys: Sequence[str] = ()
    ) -> tuple[Mapping[str, VariantStockState], frozenset[str]]:
        """Each product's stock state (empty when never seen) and which families the catalog state shows live."""
        ...


class QueueDepth(Protocol):
    """Whether a concern's queue is empty (`queues.ChangePublisher.idle`)."""

    def idle(self, concern: Concern) -> bool: ...


# -- notifications --------------------------------------------------------------------------------------------

EVENT_SOURCE = "pos-ecom-sync.orders"
EVENT_DETAIL_TYPE = "New fulfillment"
PUT_EVENTS_LIMIT = 10


def event_id(event: NewFulfillmentEvent) -> str:
    """Stable per fulfillment, so a consumer can drop the repeat a crash-and-retry may send."""
    return f"{event.connection_id}:{event.sale_id}:{event.outlet_id}"


class EventBridgeNotifier:
    """Sends new-fulfillment events to an EventBridge bus. Consumers filter on `detail.connection_id` and
    `detail.outlet_id`, so only that outlet's staff are notified; no customer data is in the event."""

    def __init__(self, client: Any, bus_name: str) -> None:
        self._client = client
        self._bus = bus_name

    def publish(self, events: Sequence[NewFulfillmentEvent]) -> int:
        for start in range(0, len(events), PUT_EVENTS_LIMIT):
            entries = [
                {
                    "Source": EVENT_SOURCE,
                    "DetailType": EVENT_DETAIL_TYPE,
                    "Detail": json.dumps(
                        {
                            **event.model_dump(mode="json"),
                            "event_id": event_id(event),
                            "correlation_id": current_correlation_id(),  # the order's webhook or poll run
                        }
                    ),
                    "EventBusName": self._bus,
                }
                for event in events[start : start + PUT_EVENTS_LIMIT]
            ]
            try:
                response = self._client.put_events(Entries=entries)
            except Exception as exc:  # botocore errors: retried with the record
                raise UpstreamUnavailable(f"eventbridge put_events failed: {exc}") from exc
            if int(response.get("FailedEntryCount", 0)):
                raise UpstreamUnavailable(f"eventbridge refused {response['FailedEntryCount']} event(s)")
        return len(events)


class NotifiedMarks(Protocol):
    def mark_notified_many(self, connection_id: str, order_ids: Sequence[int]) -> None: ...


class BatchedNotifications:
    """The new-fulfillment events of one SQS batch's orders, sent when the batch ends (`flush`): one PutEvents per ten
    events and one ledger write marking the orders notified, instead of one of each per order. An order's events
    are queued only once its import is recorded with them pending (`notifications_pending`), so a crash before the
    flush, or a send that fails, leaves them pending: the order's next attempt sends them (`_already_imported`).
    They reach the outlets when the batch ends instead of when their order does (seconds later at most)."""

    def __init__(self, notifier: FulfillmentNotifier, ledger: NotifiedMarks) -> None:
        self._notifier = notifier
        self._ledger = ledger
        self._queued: list[tuple[str, int, list[NewFulfillmentEvent]]] = []

    def add(self, connection_id: str, order_id: int, events: Sequence[NewFulfillmentEvent]) -> int:
        """Queue an order's events; an order queued already (its second message in the batch finds them pending:
        they are not sent yet) is not queued again."""
        if any(queued[:2] == (connection_id, order_id) for queued in self._queued):
            return 0
        self._queued.append((connection_id, order_id, list(events)))
        return len(events)

    def flush(self) -> list[tuple[str, int]]:
        """Send what was queued, a PutEvents' worth of whole orders at a time, then mark the orders whose events went
        out; returns the (connection, order) pairs whose events could not be sent (still pending in the ledger)."""
        queued, self._queued = self._queued, []
        sent: dict[str, list[int]] = {}
        unsent: list[tuple[str, int]] = []
        group: list[tuple[str, int, list[NewFulfillmentEvent]]] = []
        for index, entry in enumerate(queued):
            group.append(entry)
            following = len(queued[index + 1][2]) if index + 1 < len(queued) else PUT_EVENTS_LIMIT + 1
            if sum(len(events) for _, _, events in group) + following <= PUT_EVENTS_LIMIT:
                continue  # the next order's events fit in the same call
            try:
                if unsent:
                    raise UpstreamUnavailable("an earlier send of this batch failed")
                if any(events for _, _, events in group):
                    self._notifier.publish([event for _, _, events in group for event in events])
            except UpstreamUnavailable:
                unsent += [(connection_id, order_id) for connection_id, order_id, _ in group]
            else:
                for connection_id, order_id, _ in group:
                    sent.setdefault(connection_id, []).append(order_id)
            group = []
        for connection_id, order_ids in sent.items():
            # Best effort: events sent and still marked pending are sent again by the order's next attempt.
            with contextlib.suppress(Conflict, UpstreamUnavailable):
                self._ledger.mark_notified_many(connection_id, order_ids)
        return unsent


# -- the result -----------------------------------------------------------------------------------------------


@dataclass
class OrderImportResult:
    order_id: int
    outcome: Outcome
    number: str | None = None
    sale_id: str | None = None
    customer_id: str | None = None
    # "matched", "matched (name differs)", "known (email index)", "created", "created by another order", "none"
    customer: str = ""
    strategy: str = ""
    outlet_ids: tuple[str, ...] = ()
    payment: str = ""
    held_reason: str = ""
    warnings: list[str] = field(default_factory=list)
    events_sent: int = 0
    customers_created: int = 0
    payment_needs_attention: bool = False
    levels: str = ""  # where routing read the levels: "stock state", "POS", or "stock state + POS"
    pos_calls: int = 0
    ecom_calls: int = 0


@dataclass
class _Draft:
    """What an attempt has learned so far (carried into the result)."""

    order: EcomOrder
    lines: list[EcomOrderLine]
    register_id: str = ""
    plan: FulfillmentPlan | None = None
    payment: PaymentDecision | None = None
    customer_id: str | None = None
    customer: str = "none"
    customers_created: int = 0
    # A first attempt (or a throttled one's retry) may use what the table knows (stock state, customer index); a
    # retry after any other failure asks the POS.
    first_attempt: bool = True
    levels: str = ""
    # The email key of a customer taken from the index (not searched in this attempt).
    indexed_key: str | None = None
    email_key: str | None = None
    lookups: OrderLookups = field(default_factory=OrderLookups)


def failure_text(exc: BaseException) -> str:
    """What the ledger keeps of a failed attempt (`orders show`): the error's type and message."""
    return safe_text(f"{type(exc).__name__}: {exc}", 1000)


def may_use_the_table(previous: OrderRecord | None) -> bool:
    """Whether this attempt may route and find the buyer from the table: a first attempt, or a retry of one that was
    only throttled (it learnt nothing against the table; reading the POS then would spend the very budget that ran
    out, and a burst of orders would read twice as much). A retry after any other failure asks the POS."""
    if previous is None:
        return True
    return (previous.last_error or "").startswith(f"{RateLimited.__name__}:")


class _Held(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# -- the worker -----------------------------------------------------------------------------------------------


class OrderImporter:
    """Imports orders of one connection (one instance per connection and invocation)."""

    def __init__(
        self,
        connection: Connection,
        pos: PosOrders,
        ecom: EcomOrders,
        ledger: OrderLedger,
        *,
        notifier: FulfillmentNotifier | None = None,
        outbox: BatchedNotifications | None = None,
        stock: StockQueue | None = None,
        stock_states: StockStates | None = None,
        queues: QueueDepth | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.connection = connection
        self.pos = pos
        self.ecom = ecom
        self.ledger = ledger
        self.notifier = notifier
        self.outbox = outbox  # an SQS batch's: its events then go out when the batch ends
        self.stock = stock
        # Routing reads levels from the stock state only with both (see "Levels for routing"); else from the POS.
        self.stock_states = stock_states
        self.queues = queues
        self._sleep = sleep
        self._clock = clock
        self._wall = wall
        self.notes: list[str] = []  # things an operator should know (e.g. the register fallback), for the log
        # POS products the last match found through our variant links -> their family (catalog state key)
        self._linked: dict[str, str] = {}
        self._sale_possible = True

    @property
    def _cid(self) -> str:
        return self.connection.connection_id

    # -- entry point ----------------------------------------------------------------------------------

    def import_order(self, order_id: int) -> OrderImportResult:
        pos_before, ecom_before = self.pos.calls, self.ecom.calls
        result = self._import(order_id)
        result.pos_calls = self.pos.calls - pos_before
        result.ecom_calls = self.ecom.calls - ecom_before
        return result

    def _import(self, order_id: int) -> OrderImportResult:
        record = self.ledger.get_order(self._cid, order_id)
        if record is not None and record.status == "imported":
            return self._already_imported(record)
        # A new order is read from eCom before the claim, so the claim records the payment status the sale is built
        # from (one ledger write fewer); any other is read after it (it may have a sale to adopt, read nothing).
        early = self._read_early(order_id) if record is None else None
        try:
            claim = self.ledger.claim_order(
                self._cid,
                order_id,
                source_id=source_id(order_id),
                lease_seconds=LEASE_SECONDS,
                sale_id=sale_uuid(self._cid, order_id),
                correlation_id=current_correlation_id(),
                expect_new=record is None,
                payment_status=early[0].payment_status if early else None,
            )
        except OrderBusy as busy:
            # Another invocation holds a live claim (the same order by webhook and by sweep at once). Its own
            # message settles the order: imported, held, retried if it fails, redelivered if it dies. This one
            # has nothing left to do, and failing it would only count as an error.
            return OrderImportResult(order_id, "in progress elsewhere", held_reason=busy.message)
        except Conflict:  # imported between our read and our claim
            record = self.ledger.get_order(self._cid, order_id)
            if record is None or record.status != "imported":
                raise
            return self._already_imported(record)
        # Whether a sale with our id may exist: an earlier attempt may have created it, until one looks and finds
        # none; this one makes it possible again when it asks the POS to create it.
        self._sale_possible = claim.may_have_created_a_sale
        try:
            return self._import_claimed(claim, early)
        except Exception as exc:
            # Failed attempt (vendor down, throttled, ...): free the order at once for the retry, with the reason
            # (`orders show`), and whether the retry must look for a sale first (most throttled attempts never
            # reached the create: their retries then spend no POS read on it). A crash skips this, and then the
            # lease expires before SQS hands the message out again, the sale still "possible".
            self.ledger.release(self._cid, claim, error=failure_text(exc), sale_possible=self._sale_possible)
            raise

    def _already_imported(self, record: OrderRecord) -> OrderImportResult:
        sent = 0
        if record.notifications_pending and record.sale_id:
            # The worker that imported it died before its events went out.
            if self._notifications_on:
                fulfillments = self.pos.fulfillments(record.sale_id)
                events = self._events_from(record.sale_id, record.number or "", fulfillments)
                sent = self._notify(record.order_id, events)
            else:  # switched off since: these are not sent any more
                self.ledger.mark_notified(self._cid, record.order_id)
        return OrderImportResult(
            record.order_id,
            "already imported",
            number=record.number,
            sale_id=record.sale_id,
            customer_id=record.customer_id,
            outlet_ids=record.outlet_ids,
            events_sent=sent,
        )

    def _read_early(self, order_id: int) -> tuple[EcomOrder, list[EcomOrderLine]] | None:
        """The order and its lines, read before the claim; None when that fails (the claimed path reads again, and
        records why it fails). A throttle is raised as it is: nothing is claimed yet, and reading again after the
        claim would only wait for the same budget twice."""
        try:
            raw, rows = self.ecom.order_with_lines(order_id)
            if raw is None:
                return None
            return EcomOrder.model_validate(raw), [EcomOrderLine.model_validate(row) for row in rows]
        except RetryLater:
            raise
        except Exception:
            return None

    def _import_claimed(
        self, claim: Claim, early: tuple[EcomOrder, list[EcomOrderLine]] | None = None
    ) -> OrderImportResult:
        if claim.may_have_created_a_sale:
            existing = self._existing_sale(claim)
            if existing is not None:
                return self._adopt(claim, existing)
            self._sale_possible = False
        if early is not None:
            order, lines = early
        else:
            raw, rows = self.ecom.order_with_lines(claim.order_id)
            if raw is None:
                reason = f"eCom has no order {claim.order_id} (deleted, or not visible to this key)"
                return self._hold(claim, None, reason)
            try:
                order = EcomOrder.model_validate(raw)
                lines = [EcomOrderLine.model_validate(row) for row in rows]
            except ValueError as exc:  # pydantic's ValidationError is a ValueError
                raise InvalidInput(f"eCom order {claim.order_id} cannot be read: {exc}") from exc
        draft = _Draft(order, lines, first_attempt=may_use_the_table(claim.previous))
        try:
            self._prepare(draft)
        except _Held as held:
            return self._hold(claim, order.number, held.reason)
        # Status sync pays an unintegrated order in the POS only if it was unpaid in eCom when imported (seed 004).
        if claim.payment_status != order.payment_status:
            self.ledger.note_payment_status(self._cid, claim, order.payment_status)
        return self._create(claim, draft)

    # -- steps ------------------------------------------------------------------------------------------

    def _prepare(self, draft: _Draft) -> None:
        """Everything that may hold the order, then the customer: no POS write happens before the order is known
        to be importable."""
        order, lines = draft.order, draft.lines
        if not any(line.quantity_ordered > 0 for line in lines):
            raise _Held(f"eCom order {order.number} has no line with a quantity")
        shipping_missing = shipping_hold_reason(order, self.connection.shipping_product_id)
        if shipping_missing:
            raise _Held(shipping_missing)
        email = (order.email or "").strip()
        draft.email_key = email_key(email) if "@" in email else None
        variant_ids = [v for line in lines if line.quantity_ordered > 0 and (v := line.variant_id) is not None]
        # Our links of the lines and the customer index's entry for the email: one batched read.
        draft.lookups = self.ledger.order_lookups(self._cid, variant_ids, draft.email_key)
        matched = self._match(lines, draft.lookups.links)
        if isinstance(matched, Hold):
            raise _Held(matched.reason)
        draft.register_id, connected, primary = self._register_and_outlets()
        stock = self._stock(matched, lines, candidate_outlets(connected, primary), linked=self._linked, draft=draft)
        self.pos.prepare_sale()
        draft.plan = route_order(
            matched,
            stock=stock,
            connected_outlets=connected,
            primary_outlet=primary,
            shipping_method_outlet=self._shipping_method_outlet(order, [primary, *connected]),
        )
        draft.payment = self._payment(order)
        self._customer(draft)

    def _existing_sale(self, claim: Claim) -> FoundSale | None:
        """The sale an earlier attempt created under this claim, if the POS has it."""
        if not claim.sale_id:
            return None
        return self.pos.find_sale(claim.sale_id, claim.source_id)

    def _match(self, lines: Sequence[EcomOrderLine], links: Mapping[int, VariantLink]) -> list[LineDemand] | Hold:
        """Variant link first; only lines it does not resolve cost a POS lookup (SKU, then barcode where the POS can
        be searched by one: an undeclared filter would be ignored and match everything)."""
        variant_map: dict[int, str] = {}
        by_sku: dict[str, list[str]] = {}
        by_ean: dict[str, list[str]] | None = {}
        self._linked = {}
        for line in lines:
            if line.quantity_ordered <= 0:
                continue
            variant_id = line.variant_id
            if variant_id is not None:
                link = links.get(variant_id)
                if link is not None:
                    variant_map[variant_id] = link.pos_product_id
                    self._linked[link.pos_product_id] = link.family_key
                    continue
            sku = (line.sku or "").strip()
            if sku and sku not in by_sku:
                by_sku[sku] = self.pos.sellable_by_sku(sku)
            ean = (line.ean or "").strip()
            if ean and by_ean is not None and ean not in by_ean and len(by_sku.get(sku, [])) != 1:
                found = self.pos.sellable_by_barcode(ean)
                if found is None:
                    by_ean = None
                else:
                    by_ean[ean] = found
        return match_lines(lines, variant_map=variant_map, by_sku=by_sku, by_ean=by_ean)

    def _stock(
        self,
        demands: Sequence[LineDemand],
        lines: Sequence[EcomOrderLine],
        candidates: Sequence[str],
        *,
        linked: Mapping[str, str],
        draft: _Draft,
    ) -> dict[str, dict[str, int]]:
        """Outlet -> POS product -> level, for products that still exist in the POS: from the stock state where it
        may be used ("Levels for routing"), else from the POS. A product matched by our variant link is confirmed to
        exist first (it may have been deleted since we linked it); one matched by SKU came from a live list."""
        products = list(dict.fromkeys(d.product_id for d in demands))
        cached = self._cached_levels(products, candidates, linked) if draft.first_attempt else {}
        stock: dict[str, dict[str, int]] = {}
        gone: set[str] = set()
        for product_id in products:
            levels = cached.get(product_id)
            if levels is None:
                levels = self.pos.routing_levels(product_id, confirm_exists=product_id in linked)
            if levels is None:
                gone.add(product_id)
                continue
            for outlet, level in levels.items():
                stock.setdefault(outlet, {})[product_id] = level
        read = len(products) - len(cached)
        draft.levels = "POS" if not cached else "stock state" if not read else "stock state + POS"
        if gone:
            titles = {line.id: line.title for line in lines}
            missing = tuple(
                Unmatched(
                    d.line_id, titles.get(d.line_id, f"line {d.line_id}"), f"POS product {d.product_id} is deleted"
                )
                for d in demands
                if d.product_id in gone
            )
            raise _Held(Hold(unmatched=missing).reason)
        return stock

    def _cached_levels(
        self, products: Sequence[str], candidates: Sequence[str], linked: Mapping[str, str]
    ) -> dict[str, dict[str, int]]:
        """Product -> outlet -> level for the products the stock state may route ("Levels for routing"); the others
        are left to the POS."""
        if self.stock_states is None or self.queues is None or not products:
            return {}
        families = [linked[p] for p in products if p in linked]
        states, live = self.stock_states.routing_view(self._cid, products, families)
        usable: dict[str, dict[str, int]] = {}
        for product_id in products:
            state = states.get(product_id)
            levels = cached_levels(state.levels, candidates) if state is not None else None
            if levels is None or (product_id in linked and linked[product_id] not in live):
                continue
            usable[product_id] = levels
        if not usable or not self._idle("stock"):
            return {}
        if any(p in linked for p in usable) and not self._idle("products"):
            return {p: levels for p, levels in usable.items() if p not in linked}
        return usable

    def _idle(self, concern: Concern) -> bool:
        """The queue's counts, or False when SQS cannot tell (the POS is read instead of failing the order)."""
        assert self.queues is not None
        try:
            return self.queues.idle(concern)
        except UpstreamUnavailable:
            return False

    def _register_and_outlets(self) -> tuple[str, list[str], str]:
        """(online register, connected outlets, primary outlet). The registers list (cached) is read only when a
        setting is missing: no register -> the POS's first one (reported in `notes`); no outlets -> the register's
        outlet; no primary -> the register's outlet when connected, else the first connected outlet."""
        register_id = self.connection.online_register_id
        connected = list(self.connection.connected_outlet_ids)
        primary = self.connection.primary_outlet_id
        if register_id and connected and primary:
            return register_id, connected, primary
        live = self.pos.registers()
        register = next((r for r in live if r.id == register_id), None) if register_id else None
        if register is None and not register_id:
            if not live:
                raise InvalidInput("the POS has no register for online sales (set the connection's register)")
            register = live[0]
            register_id = register.id
            self.notes.append(f"no online register configured: using the POS's first register {register_id}")
        register_outlet = (register.location_id or "") if register else ""
        if not connected:
            if not register_outlet:
                raise InvalidInput("no connected outlet to route the order to (set the connection's outlets)")
            connected = [register_outlet]
        if not primary:
            primary = register_outlet if register_outlet in connected else connected[0]
        assert register_id is not None
        return register_id, connected, primary

    def _shipping_method_outlet(self, order: EcomOrder, connected: Sequence[str]) -> str | None:
        """The outlet the operator tied the order's shipping method to (`connections set-shipping-outlets`: no eCom
        source documents an outlet on a shipping method). A tie to an outlet that is no longer connected does not
        route (seed 002: disconnecting a location disconnects its shipping methods), noted for the operator."""
        method_id = order.shipping_method_id
        if method_id is None:
            return None
        outlet = self.connection.shipping_method_outlets.get(str(method_id))
        if outlet and outlet not in connected:
            self.notes.append(
                f"shipping method {method_id} is tied to outlet {outlet}, which is not connected: routed by stock"
            )
            return None
        return outlet or None

    def _payment(self, order: EcomOrder) -> PaymentDecision:
        mapping = self.connection.payment_methods
        title = (order.payment_title or "").strip()
        setting = setting_for(title, mapping) if title else None
        needs_types = order.payment_status == "paid" and setting is not None and setting.mode == "integrated"
        return payment_for(order, mapping, self.pos.payment_types() if needs_types else [])

    def _customer(self, draft: _Draft) -> None:
        order = draft.order
        email = (order.email or "").strip()
        key = draft.email_key
        searched = bool(email)
        if key is not None and draft.first_attempt:
            lookups, now = draft.lookups, self._wall()
            known = reusable(lookups.customer, now)
            if known is not None:
                draft.customer_id, draft.customer, draft.indexed_key = known, "known (email index)", key
                return
            searched = must_search(lookups.email_in_pos, lookups.census, now)
        candidates = self.pos.customers_by_email(email) if searched else []
        decision = match_customer(email, order.firstname, order.lastname, candidates)
        if isinstance(decision, NoCustomer):
            draft.customer = f"none ({decision.reason})"
            return
        if isinstance(decision, CustomerMatch):
            draft.customer_id = decision.customer_id
            draft.customer = "matched (name differs, nothing overwritten)" if decision.name_differs else "matched"
            if key is not None:  # the next order from this email needs no search
                self.ledger.index_customer(self._cid, key, customer_id=decision.customer_id)
            return
        assert isinstance(decision, CreateCustomer)
        owner = f"order:{order.id}"
        deadline = self._clock() + CUSTOMER_WAIT_SECONDS
        while True:
            claim = self.ledger.claim_customer(self._cid, decision.email_key, owner=owner, lease_seconds=LEASE_SECONDS)
            if isinstance(claim, CustomerKnown):
                draft.customer_id = claim.customer_id
                draft.customer = "created by another order"
                return
            if not isinstance(claim, CustomerBusy):
                break
            if self._clock() >= deadline:
                raise Conflict("another order is creating this customer; retried later")
            self._sleep(CUSTOMER_POLL_SECONDS)
        try:
            customer_id = self.pos.create_customer(
                decision.first_name, decision.last_name, decision.email, decision.customer_code
            )
        except Exception:
            self.ledger.release_customer(self._cid, decision.email_key, owner=owner)
            raise
        self.ledger.record_customer(self._cid, decision.email_key, owner=owner, customer_id=customer_id)
        draft.customer_id = customer_id
        draft.customer = "created" if searched else "created (no POS customer has the email: customer census)"
        draft.customers_created = 1

    def _create(self, claim: Claim, draft: _Draft) -> OrderImportResult:
        order, plan, payment = draft.order, draft.plan, draft.payment
        assert plan is not None and payment is not None and claim.sale_id
        sale = SaleDraft(
            order,
            draft.lines,
            sale_key=claim.sale_id,
            plan=plan,
            payment=payment,
            register_id=draft.register_id,
            customer_id=draft.customer_id,
            shipping_product_id=self.connection.shipping_product_id,
        )
        self._sale_possible = True
        try:
            created = self.pos.create_sale(sale)
        except UpstreamError as refused:
            # A 4xx: either the body is refused, or a sale with our id exists already (a create whose answer was
            # lost, or a worker that outlived its lease). Only the sale itself tells which.
            existing = self._existing_sale(claim)
            if existing is None:
                if draft.first_attempt and (draft.levels != "POS" or draft.indexed_key is not None):
                    return self._rebuild_from_pos(claim, draft, refused)
                raise
            note = f"the POS refused a second create ({refused.status}): the sale with our id was adopted"
            return self._adopt(claim, existing, note=note, number=order.number)
        sale_id = created.sale_id
        warnings = [*created.warnings, *self.notes]
        if sale_id != claim.sale_id and not created.pos_chooses_ids:
            warnings.append(f"the POS gave the sale its own id {sale_id} instead of ours {claim.sale_id}")
        cancelled = order.payment_status == "cancelled"
        outlets = () if cancelled else tuple(plan.outlet_ids)
        notify = self._notifications_on and not cancelled
        held = self._hold_stock(claim.order_id, plan, warnings) if created.stock_pending and not cancelled else ()
        record = self._complete(
            claim,
            number=order.number,
            sale_id=sale_id,
            customer_id=draft.customer_id,
            outlets=outlets,
            notify=notify,
            stock_held=held,
        )
        if record is None:
            return self._lost_to_another(claim)
        sent = self._notify(record.order_id, plan.notifications(self._cid, sale_id, order.number)) if notify else 0
        return OrderImportResult(
            claim.order_id,
            "imported",
            number=order.number,
            sale_id=sale_id,
            customer_id=draft.customer_id,
            customer=draft.customer,
            strategy="voided (payment cancelled in eCom)" if cancelled else plan.strategy,
            outlet_ids=outlets,
            payment=self._describe(payment),
            warnings=warnings,
            events_sent=sent,
            customers_created=draft.customers_created,
            payment_needs_attention=isinstance(payment, LeaveUnpaid) and payment.needs_attention,
            levels=draft.levels,
        )

    def _rebuild_from_pos(self, claim: Claim, draft: _Draft, refused: UpstreamError) -> OrderImportResult:
        """The POS refused a sale built on what the table knew (stock state levels, an indexed customer), and no sale
        with our id exists. The table may be behind the POS (a product deleted, or a customer deleted, that no feed
        has shown yet; no source documents how the POS refuses either, so any refusal counts): drop the indexed
        customer and build the order again from POS reads alone, as a retry would. A deleted product then holds the
        order; a second refusal fails it as before."""
        if draft.indexed_key is not None and draft.customer_id is not None:
            self.ledger.forget_customer(self._cid, draft.indexed_key, draft.customer_id)
        fresh = _Draft(draft.order, draft.lines, first_attempt=False)
        try:
            self._prepare(fresh)
        except _Held as held:
            return self._hold(claim, draft.order.number, held.reason)
        self.notes.append(f"the POS refused the sale ({refused.status}): built again from POS reads")
        return self._create(claim, fresh)

    def _complete(
        self,
        claim: Claim,
        *,
        number: str | None,
        sale_id: str,
        customer_id: str | None,
        outlets: tuple[str, ...],
        notify: bool,
        adopted: bool = False,
        stock_held: tuple[str, ...] = (),
    ) -> OrderRecord | None:
        """Record the sale for this claim; None when the claim was lost meanwhile and another worker recorded it."""
        try:
            return self.ledger.complete_order(
                self._cid,
                claim,
                number=number,
                sale_id=sale_id,
                customer_id=customer_id,
                outlet_ids=outlets,
                adopted=adopted,
                notify=notify,
                stock_held=stock_held,
            )
        except Conflict:
            current = self.ledger.get_order(self._cid, claim.order_id)
            if current is not None and current.status == "imported":
                return None
            raise

    def _hold_stock(self, order_id: int, plan: FulfillmentPlan, warnings: list[str]) -> tuple[str, ...]:
        """Hold the units of a sale the POS left open (it takes them from stock only when the sale completes), before
        the import is recorded: a crash in between leaves an open sale whose holds status sync sends on its next
        change. Returns the products held."""
        lines = ((line.product_id, line.quantity) for a in plan.assignments for line in a.lines)
        units = held_units(lines, skip_product=self.connection.shipping_product_id)
        if not units:
            return ()
        if self.stock is None:
            warnings.append("the sale is open and its units are not held back from the online stock (no stock queue)")
            return ()
        self.stock.publish(hold_messages(self._cid, order_id, units, via="import", now=datetime.now(UTC)))
        return tuple(units)

    def _lost_to_another(self, claim: Claim) -> OrderImportResult:
        current = self.ledger.get_order(self._cid, claim.order_id)
        assert current is not None
        result = self._already_imported(current)
        result.warnings.append("this worker's lease expired; another worker recorded the same sale")
        return result

    def _adopt(self, claim: Claim, sale: FoundSale, note: str = "", number: str | None = None) -> OrderImportResult:
        """An earlier attempt created the sale and did not record it (it died, or lost the create's answer): record
        it, create nothing."""
        sale_id = sale.sale_id
        fulfillments = self.pos.fulfillments(sale_id)
        number = number or (claim.previous.number if claim.previous else None)
        outlets = tuple(dict.fromkeys(f.location_id for f in fulfillments))
        notify = self._notifications_on and bool(fulfillments)
        customer_id = sale.customer_id
        record = self._complete(
            claim, number=number, sale_id=sale_id, customer_id=customer_id, outlets=outlets, notify=notify, adopted=True
        )
        if record is None:
            return self._lost_to_another(claim)
        sent = self._notify(record.order_id, self._events_from(sale_id, number or "", fulfillments)) if notify else 0
        return OrderImportResult(
            claim.order_id,
            "adopted",
            number=number,
            sale_id=sale_id,
            customer_id=record.customer_id,
            outlet_ids=outlets,
            warnings=[note] if note else [],
            events_sent=sent,
        )

    def _hold(self, claim: Claim, number: str | None, reason: str) -> OrderImportResult:
        self.ledger.hold_order(self._cid, claim, number=number, reason=reason)
        return OrderImportResult(claim.order_id, "held", number=number, held_reason=reason)

    # -- notifications ----------------------------------------------------------------------------------

    @property
    def _notifications_on(self) -> bool:
        return self.connection.notifications_enabled and self.notifier is not None

    def _notify(self, order_id: int, events: Sequence[NewFulfillmentEvent]) -> int:
        if not self._notifications_on or self.notifier is None:
            return 0
        if self.outbox is not None:
            return self.outbox.add(self._cid, order_id, events)  # sent and marked when the batch ends
        sent = self.notifier.publish(events) if events else 0
        self.ledger.mark_notified(self._cid, order_id)
        return sent

    def _events_from(
        self, sale_id: str, number: str, fulfillments: Sequence[SaleFulfillment]
    ) -> list[NewFulfillmentEvent]:
        return [
            NewFulfillmentEvent(
                connection_id=self._cid,
                outlet_id=f.location_id,
                sale_id=sale_id,
                order_number=number,
                lines=list(f.lines),
            )
            for f in fulfillments
            if f.new  # nothing done on it yet
        ]

    @staticmethod
    def _describe(payment: PaymentDecision) -> str:
        if isinstance(payment, LeaveUnpaid):
            return f"unpaid ({payment.reason})"
        return f"paid on {payment.name}"
