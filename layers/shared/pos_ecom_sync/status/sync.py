"""Status worker: the I/O around the pure status rules (`status.rules`).

A message on the statuses queue only says "this order may have changed state": an eCom order update (webhook or
the poller's sweep), an eCom shipment, or a POS sale update. Each is handled the same way:
1. Find the eCom order it concerns. A POS sale is looked up in the order ledger by its sale id
   (`OrderStore.order_for_sale`), else by the reference it carries, "ecom-<order id>"; a return
   by the sale it returns; a shipment by its `order` reference. A POS sale that did not come from eCom
   is ignored: POS sales never go to eCom.
2. Check the order ledger: a status can only be synced once the order is a POS sale. An order never claimed is left
   to its import, which reads the order as it is then; an import in flight delays this message until it ends.
3. Take the order's status lease (the POS and eCom messages of one order travel in different message groups).
4. Re-read both sides (the sale, the order, and the sale's fulfilments when they can change the plan:
   `fulfillments_matter`), plan with `plan_status_sync`, apply, and
   record what was applied or ignored in the status ledger. The payment rule also takes what the sync saw before
   (`PaymentBasis`: the eCom payment status the order ledger says the sale was imported with, and whether the status
   ledger has read the order unpaid since), so an order already paid in eCom at import is never paid by a hint.
   Packing names the fulfilment's version: a stale one (Conflict) is re-read and retried once, or found already done.
   A return of the sale counts only once it is completed in the POS (a return starts parked and may be voided): it
   is recorded in the ledger, and the eCom order is credited what all completed returns took back minus what eCom
   already shows refunded (`plan_refund`).
   The POS is reached through `PosSales`, which the connection's POS profile implements in neutral terms
   (`models.sales`): the domain names no POS field.
   Every write moves a status forward to where the other side already is, so repeating it (after a crash, or for
   the echo of our own write) re-reads, finds both sides agree and writes nothing.
5. The echo of our own write, and a notice of what a read already saw, are known without that read. An eCom order
   notice carrying a content digest (`ChangeMessage.content_digest`: the order's status, payment and shipment statuses
   and its stamp, which intake computes from the row delivered) that is the order as one of the last syncs read it
   (every planned action applied) or as our own update's answer left it is skipped (`ecom_digests`), however often it
   comes: it tells of nothing new. One without a digest is skipped when stamped as one of our writes left the order
   (`ecom_written`; eCom stamps whole seconds, so this accepts a merchant's edit within the second of our write as our
   echo; the sweep brings it later). A POS sale change whose digest (its `content_digest`: the sale's status, total and
   payments, which the POS profile computes from the row delivered and from the body of its own void or payment) is one
   the last sync's void or payment left is skipped once (`pos_written`: each digest is taken by one message, so a later
   change that leaves the sale as our write did, such as a POS user packing it, is read); when our write voided or
   completed a sale holding units back (R-Series), its echo releases them, as a read of the sale would. A fulfil leaves
   a set of digests, as the POS decides the sale's status after it (the sale as read, or the status the vendor documents
   for a fulfilled sale): the first message carrying any of them is its echo and takes the whole set. A pack leaves none
   (it changes only fulfilments, which are not in the digest), so its echo is read. A message without a digest, or with
   another one, is read as any other change. A read of the sale drops the digests of earlier writes, so an echo
   overtaken by a read is read too, except a write whose result the read saw (`PosSale.digest`): its echo tells of
   nothing the read did not see.
6. Messages of one SQS batch about one order share one read (`BatchReads`): each was queued before the batch was
   received, so before the first of them read both sides. A later one that carries an echo's digest still takes it
   (step 5 comes first); the others are settled unread.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

from pos_ecom_sync.correlation import current_correlation_id
from pos_ecom_sync.errors import Conflict, RetryLater, StatusBusy
from pos_ecom_sync.intake.rows import stamp
from pos_ecom_sync.models.connection import Connection
from pos_ecom_sync.models.ledger import OrderRecord, StatusLease
from pos_ecom_sync.models.links import VariantLink
from pos_ecom_sync.models.messages import ChangeMessage, Via
from pos_ecom_sync.models.references import in_store_reference, order_in_reference
from pos_ecom_sync.models.sales import (
    FulfillmentKind,
    PosFulfillment,
    PosSale,
    SaleHint,
    SaleState,
    WrittenSale,
)
from pos_ecom_sync.orders.payments import method_key, setting_for
from pos_ecom_sync.queues import Outgoing
from pos_ecom_sync.status.digest import ecom_order_digest
from pos_ecom_sync.status.rules import (
    CompleteFulfillments,
    CreditEcomOrder,
    EcomOrderState,
    PackFulfillments,
    PaymentBasis,
    PosSaleState,
    RecordPosPayment,
    StatusAction,
    UpdateEcomOrder,
    VoidSale,
    completed_return,
    describe,
    fulfillments_matter,
    plan_refund,
    plan_status_sync,
    returned_quantities,
)
from pos_ecom_sync.stock.reservations import hold_messages, release_messages, reservation_change, sale_units

if TYPE_CHECKING:  # the order models: read only to record a payment (`PosSales.payment_types`)
    from pos_ecom_sync.models.orders import PaymentType

JsonObject = dict[str, Any]
# Outlives the worker's 60 s timeout, so an unexpired lease always belongs to a live worker.
LEASE_SECONDS = 90.0
# How long a message waits for an order import in flight before it looks again.
IMPORT_WAIT_SECONDS = 30.0
# How long a message waits when a fulfilment keeps changing under it (a POS user at work on it).
BUSY_FULFILLMENT_WAIT_SECONDS = 15.0


class PosSales(Protocol):
    """The POS as status sync reads and changes it, in neutral terms (each profile implements it)."""

    @property
    def calls(self) -> int: ...
    def sale(self, sale_id: str) -> PosSale | None:
        """The sale (or return) as it is now; None when it does not exist."""
        ...

    def fulfillments(self, sale_id: str) -> tuple[PosFulfillment, ...]:
        """The sale's fulfilments as they are now (none for a POS without fulfilments)."""
        ...

    def sale_hint(self, message: ChangeMessage) -> SaleHint:
        """What a queued POS sale change says of its sale (its reference, the sale it returns), without a read."""
        ...

    def payment_types(self) -> list[PaymentType]:
        """The live POS payment types (a profile may keep them a while: they rarely change)."""
        ...

    def sku_of(self, product_id: str) -> str | None:
        """A POS product's SKU (how a returned product is matched to an eCom order line without a variant link)."""
        ...

    def void(self, sale: PosSale) -> WrittenSale | None:
        """Void the sale, as last read. Returns the sale as the write leaves it (its digest is what the change
        message of its echo will carry, `ChangeMessage.content_digest`), None when the profile cannot tell."""
        ...

    def record_payment(self, sale: PosSale, payment_type_id: str, amount: Decimal) -> WrittenSale | None:
        """Add a payment of `amount` on this payment type to the sale, as last read. Returns the sale as the write
        leaves it, as `void` does."""
        ...

    def complete_fulfillments(self, sale: PosSale) -> WrittenSale | None:
        """Fulfil the sale, as last read: completes every fulfilment of it. Returns the digests the sale may show
        after it (the POS decides its status then: `WrittenSale.also`), as `void` does. Conflict: something changed
        under it (re-read)."""
        ...

    def pack(self, fulfillment: PosFulfillment) -> None:
        """Pack what the fulfilment still needs packed, at its version as read. Conflict: the version is stale."""
        ...


class EcomOrders(Protocol):
    @property
    def calls(self) -> int: ...
    def get_order(self, order_id: int) -> JsonObject | None: ...
    def get_shipment(self, shipment_id: int) -> JsonObject | None: ...
    def update_order(self, order_id: int, fields: JsonObject) -> JsonObject: ...
    def list_order_products(self, order_id: int) -> list[JsonObject]: ...
    def credit_order(self, order_id: int, lines: list[tuple[int, int]]) -> JsonObject: ...


class OrderLedger(Protocol):
    def get_order(self, connection_id: str, order_id: int) -> OrderRecord | None: ...
    def order_for_sale(self, connection_id: str, sale_id: str) -> OrderRecord | None: ...
    def record_stock_held(self, connection_id: str, order_id: int, product_ids: tuple[str, ...]) -> None: ...


class StockQueue(Protocol):
    """Where status sync sends holds and releases of an open sale's units (the stock queue's publisher)."""

    def publish(self, outgoing: Sequence[Outgoing]) -> int: ...


class VariantLinks(Protocol):
    def variant_link(
        self, connection_id: str, *, pos_product_id: str | None = None, ecom_variant_id: int | None = None
    ) -> VariantLink | None: ...


class StatusLedger(Protocol):
    def lease(self, connection_id: str, order_id: int, *, seconds: float) -> StatusLease: ...
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
    ) -> None: ...
    def settle_unread(
        self, connection_id: str, lease: StatusLease, *, entries: Sequence[Mapping[str, Any]]
    ) -> None: ...
    def settle_echo(
        self,
        connection_id: str,
        lease: StatusLease,
        *,
        pos_written: Sequence[WrittenSale],
        entries: Sequence[Mapping[str, Any]] = (),
    ) -> None: ...
    def release(self, connection_id: str, lease: StatusLease) -> None: ...


@dataclass
class StatusResult:
    subject: str  # "order <id>" or what the message named
    # "synced", "in step" (nothing to change), "frozen", or why the message was ignored
    outcome: str
    applied: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    pos_calls: int = 0
    ecom_calls: int = 0


@dataclass
class BatchReads:
    """The orders a status sync read (both sides) and settled while handling one SQS batch.

    Every record of a batch was on the queue before the batch was received, so before any read made while handling
    it: that read covers the change each other record of the batch about the order hints at (reads are the truth),
    and those records need no read of their own, whatever their order in the batch. Only within the batch: a record
    received later may announce a change made after the read. The status function makes one per invocation."""

    orders: set[tuple[str, int]] = field(default_factory=set)


@dataclass(frozen=True)
class _Target:
    """The eCom order a status message concerns; the POS sale and the return when the message was about them."""

    order_id: int
    sale: PosSale | None = None
    returned: PosSale | None = None


class _Ignore(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class StatusSync:
    def __init__(
        self,
        connection: Connection,
        pos: PosSales,
        ecom: EcomOrders,
        orders: OrderLedger,
        statuses: StatusLedger,
        links: VariantLinks,
        *,
        stock: StockQueue | None = None,
        batch: BatchReads | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.connection = connection
        self.pos = pos
        self.ecom = ecom
        self.orders = orders
        self.statuses = statuses
        self.links = links
        self.stock = stock
        self.batch = batch
        self._clock = clock
        self._ecom_written: list[str] = []  # eCom's stamps of the order after this message's writes
        self._ecom_digests: list[str] = []  # the eCom order as this message's writes left it
        self._pos_written: list[WrittenSale] = []  # the POS sale as this message's writes left it

    @property
    def _cid(self) -> str:
        return self.connection.connection_id

    def handle(self, message: ChangeMessage) -> StatusResult:
        pos_before, ecom_before = self.pos.calls, self.ecom.calls
        try:
            result = self._handle(message)
        except _Ignore as ignored:
            result = StatusResult(f"{message.source} {message.entity} {message.entity_id}", ignored.reason)
        result.pos_calls = self.pos.calls - pos_before
        result.ecom_calls = self.ecom.calls - ecom_before
        return result

    def _handle(self, message: ChangeMessage) -> StatusResult:
        target = self._order_of(message)
        order_id = target.order_id
        record = self.orders.get_order(self._cid, order_id)
        if record is None:
            raise _Ignore(f"order {order_id} is not imported yet: its import applies the order's state as it is then")
        if record.status == "held":
            raise _Ignore(f"order {order_id} is held ({record.held_reason}): its import applies the current state")
        if record.status != "imported" or not record.sale_id:
            raise RetryLater(f"order {order_id} is being imported", self._clock() + IMPORT_WAIT_SECONDS)
        try:
            lease = self.statuses.lease(self._cid, order_id, seconds=LEASE_SECONDS)
        except StatusBusy as busy:
            raise RetryLater(str(busy), busy.lease_until) from busy
        if _seen_before(message, lease):
            self.statuses.settle_unread(self._cid, lease, entries=_history_entries(ignored=[SEEN_NOTE]))
            return StatusResult(f"order {order_id}", "in step", ignored=[SEEN_NOTE])
        if _echo_of_our_write(message, lease):
            self.statuses.release(self._cid, lease)
            return StatusResult(f"order {order_id}", "in step", ignored=[ECHO_NOTE])
        if (echo := _echo_of_our_pos_write(message, lease, record)) is not None:
            try:
                return self._settle_echo(record, lease, *echo, via=message.via)
            except BaseException:
                self.statuses.release(self._cid, lease)
                raise
        if target.returned is None and self.batch is not None and (self._cid, order_id) in self.batch.orders:
            # A return is not covered: the read was of the order's sale, and the return is another sale.
            self.statuses.release(self._cid, lease)
            return StatusResult(f"order {order_id}", "in step", ignored=[BATCH_NOTE])
        try:
            sale = target.sale if target.sale is not None else record.sale_id
            result = self._sync(target, sale, lease, record, via=message.via)
        except BaseException:
            self.statuses.release(self._cid, lease)
            raise
        return result

    def _settle_echo(
        self, record: OrderRecord, lease: StatusLease, written: WrittenSale, left: list[WrittenSale], *, via: Via
    ) -> StatusResult:
        """The echo of our own POS write: nothing read. Units still held for a sale our write voided or completed
        are released now, as `_keep_stock_held` would on reading the sale so."""
        applied = []
        if record.stock_held and not written.stock_pending and self.stock is not None:
            applied.append(
                self._release_held(self.stock, record, "(voided or completed by our write, as its echo shows)", via)
            )
        entries = _history_entries(applied=applied)
        self.statuses.settle_echo(self._cid, lease, pos_written=left, entries=entries)
        return StatusResult(f"order {record.order_id}", "synced" if applied else "in step", applied, [POS_ECHO_NOTE])

    def _order_of(self, message: ChangeMessage) -> _Target:
        """The eCom order a message concerns, with the POS sale (and return) when reading them was needed to tell."""
        if message.source == "ecom" and message.entity == "order":
            return _Target(int(message.entity_id))
        if message.source == "ecom" and message.entity == "shipment":
            # The webhook carries the shipment, its order reference included; a sweep's message may not.
            order_id = _reference_id(message.payload.get("order"))
            if order_id is None:
                order_id = _reference_id((self.ecom.get_shipment(int(message.entity_id)) or {}).get("order"))
            if order_id is None:
                raise _Ignore(f"shipment {message.entity_id} names no order")
            return _Target(order_id)
        if message.source == "pos" and message.entity == "sale":
            return self._order_of_sale(message)
        raise _Ignore(f"{message.source} {message.entity} changes are not status changes")

    def _order_of_sale(self, message: ChangeMessage) -> _Target:
        """The eCom order of a POS sale (or of the sale a return returns): by the ledger's sale id, else the
        reference the sale carries."""
        hint = self.pos.sale_hint(message)
        record = self._record_for_sale(message.entity_id)
        if record is not None:
            return _Target(record.order_id)
        if in_store_reference(hint.reference) and not hint.return_for:
            raise _Ignore("an in-store sale: POS sales never go to eCom")
        sale = self.pos.sale(message.entity_id)
        returned = None
        if sale is not None and sale.return_for:
            original = sale.return_for
            returned, sale = sale, None
            record = self._record_for_sale(original)
            if record is not None:
                return _Target(record.order_id, None, returned)
            sale = self.pos.sale(original)
        order_id = order_in_reference(sale.reference) if sale is not None else None
        if sale is None or order_id is None:
            raise _Ignore("an in-store sale (or its return): POS sales never go to eCom")
        return _Target(order_id, sale, returned)

    def _record_for_sale(self, sale_id: str) -> OrderRecord | None:
        """The ledger's record of the order imported as this sale (None for a sale this sync did not make)."""
        return self.orders.order_for_sale(self._cid, sale_id)

    def _sync(
        self, target: _Target, sale_or_id: PosSale | str, lease: StatusLease, record: OrderRecord, *, via: Via
    ) -> StatusResult:
        order_id = target.order_id
        order = self.ecom.get_order(order_id)
        sale = self.pos.sale(sale_or_id) if isinstance(sale_or_id, str) else sale_or_id
        if order is None or sale is None:
            missing = f"eCom order {order_id}" if order is None else "its POS sale"
            raise _Ignore(f"{missing} no longer exists: nothing to sync")
        ecom = EcomOrderState.of(order)
        read = fulfillments_matter(ecom, sale.state, frozen=lease.frozen)
        pos = PosSaleState.of(sale, self.pos.fulfillments(sale.sale_id) if read else None)
        basis = PaymentBasis(
            paid_at_import=record.ecom_payment_status == "paid",
            unpaid_seen_since=bool(lease.previous and lease.previous.ecom_unpaid_seen),
        )
        plan = plan_status_sync(ecom, pos, frozen=lease.frozen, payment=basis)

        applied: list[str] = []
        ignored = list(plan.ignored)
        self._ecom_written, self._ecom_digests, self._pos_written = [], [], _writes_seen(lease, sale)
        if held := self._keep_stock_held(record, sale, via):
            applied.append(held)
        skipped_any = False
        for action in plan.actions:
            skipped = self._apply(action, ecom, sale)
            if skipped:
                ignored.append(skipped)
                skipped_any = True
            else:
                applied.append(describe(action))
        # The order as read is kept as seen only when every planned action went through: an action skipped for a
        # reason that may pass (no POS payment type yet, a busy fulfilment) is tried again by the order's next
        # notice, even one of the same state.
        read_digest = ecom_order_digest(order)
        seen = [read_digest] if read_digest and not skipped_any else []
        returns = dict(lease.previous.returns) if lease.previous else {}
        if target.returned is not None:
            return_id = target.returned.sale_id
            if completed_return(target.returned):
                returns[return_id] = returned_quantities(target.returned)
            elif return_id not in returns:
                returned_state = target.returned.state
                state = "parked, not completed" if returned_state == SaleState.OPEN else returned_state.name.lower()
                ignored.append(f"POS return {return_id} is {state}: nothing is refunded for it")
        if returns:
            self._refund(ecom, returns, applied, ignored)
        entries = _history_entries(applied=applied, ignored=ignored)
        # A freezing plan (void or cancel) freezes the order only once its action went through.
        frozen = plan.frozen and len(applied) == len(plan.actions)
        self.statuses.settle(
            self._cid,
            lease,
            frozen=frozen,
            ecom_seen=ecom.summary(),
            pos_seen=pos.summary(),
            entries=entries,
            returns=returns,
            ecom_unpaid_seen=basis.after(ecom).unpaid_seen_since,
            ecom_written=self._ecom_written,
            pos_written=self._pos_written,
            ecom_digests=[*seen, *self._ecom_digests],
        )
        if self.batch is not None:
            self.batch.orders.add((self._cid, order_id))
        if lease.frozen:
            outcome = "frozen"
        elif applied:
            outcome = "synced"
        elif ignored:
            outcome = "ignored"
        else:
            outcome = "in step"
        return StatusResult(f"order {order_id}", outcome, applied, ignored)

    def _keep_stock_held(self, record: OrderRecord, sale: PosSale, via: Via) -> str | None:
        """Hold the units of an open sale the POS has not taken from stock, or release them once it has completed
        or been voided (`stock.reservations`); the ledger records what is held. A completion or void of ours is
        released when the POS feed brings the changed sale back (its echo, which `_settle_echo` releases unread):
        until then its units are both taken and held, which can only under-state the online stock, never oversell
        it."""
        change = reservation_change(sale, record.stock_held)
        if change is None or self.stock is None:
            return None
        if change == "release":
            return self._release_held(self.stock, record, f"({sale.label})", via)
        now = datetime.fromtimestamp(self._clock(), UTC)
        units = sale_units(sale, skip_product=self.connection.shipping_product_id)
        if not units:
            return None
        self.stock.publish(hold_messages(self._cid, record.order_id, units, via=via, now=now))
        self.orders.record_stock_held(self._cid, record.order_id, tuple(units))
        return f"held {sum(units.values())} unit(s) of open POS sale {sale.sale_id} back from the online stock"

    def _release_held(self, stock: StockQueue, record: OrderRecord, how: str, via: Via) -> str:
        """Release the units the ledger holds for the order's sale (it completed or was voided) and record none held."""
        now = datetime.fromtimestamp(self._clock(), UTC)
        stock.publish(release_messages(self._cid, record.order_id, record.stock_held, via=via, now=now))
        self.orders.record_stock_held(self._cid, record.order_id, ())
        return f"released the units held for POS sale {record.sale_id} {how} back to the online stock"

    def _refund(
        self, ecom: EcomOrderState, returns: Mapping[str, Mapping[str, int]], applied: list[str], ignored: list[str]
    ) -> None:
        """Credit the eCom order for every item the POS returns took back that eCom has not refunded yet."""
        lines = self.ecom.list_order_products(ecom.order_id)
        line_of: dict[str, int] = {}
        returned: dict[int, int] = {}
        for quantities in returns.values():
            for product_id, quantity in quantities.items():
                if product_id == self.connection.shipping_product_id:
                    continue  # the shipping line is not an order product
                if product_id not in line_of:
                    line = self._order_line_of(product_id, lines)
                    if line is None:
                        ignored.append(f"returned POS product {product_id} matches no line of the eCom order")
                        continue
                    line_of[product_id] = line
                returned[line_of[product_id]] = returned.get(line_of[product_id], 0) + quantity
        refunded = {int(line["id"]): int(line.get("quantityRefunded") or 0) for line in lines}
        credit = plan_refund(returned, refunded)
        if credit is not None:
            self._apply(credit, ecom, None)
            applied.append(describe(credit))

    def _order_line_of(self, pos_product_id: str, lines: Sequence[JsonObject]) -> int | None:
        """The eCom order line a POS product was sold as: through our variant link, else by SKU."""
        link = self.links.variant_link(self._cid, pos_product_id=pos_product_id)
        if link is not None:
            for line in lines:
                if _reference_id(line.get("variant")) == link.ecom_variant_id:
                    return int(line["id"])
        sku = self.pos.sku_of(pos_product_id) or ""
        matches = [int(line["id"]) for line in lines if sku and str(line.get("sku") or "") == sku]
        return matches[0] if matches else None

    def _apply(self, action: StatusAction, ecom: EcomOrderState, sale: PosSale | None) -> str | None:
        """Carry out one action; returns why it was skipped instead, if it was. `sale`: the POS sale as read (None
        for an action on eCom alone)."""
        match action:
            case VoidSale():
                if voided := self.pos.void(_read(sale)):
                    self._pos_written.append(voided)
            case RecordPosPayment(amount=amount, method_title=title):
                type_id = self._payment_type_for(title)
                if type_id is None:
                    return f"eCom marked paid by {title or 'an unnamed method'}, but no POS payment type matches it"
                if paid := self.pos.record_payment(_read(sale), type_id, amount):
                    self._pos_written.append(paid)
            case CompleteFulfillments():
                return self._fulfill(_read(sale))
            case PackFulfillments(fulfillments=fulfillments):
                skipped = [why for f in fulfillments if (why := self._pack(_read(sale).sale_id, f))]
                return "; ".join(skipped) if len(skipped) == len(fulfillments) else None
            case UpdateEcomOrder():
                answer = self.ecom.update_order(ecom.order_id, dict(action.as_dict()))
                if stamped := stamp(answer.get("updatedAt")):
                    self._ecom_written.append(stamped)
                if left := ecom_order_digest(answer):  # the order as our write left it (the PUT answers it)
                    self._ecom_digests.append(left)
            case CreditEcomOrder(lines=lines):
                self.ecom.credit_order(ecom.order_id, list(lines))
        return None

    def _fulfill(self, sale: PosSale) -> str | None:
        """Complete the sale's (DISPATCH) fulfilments. The call is idempotent; a 409 is settled by re-reading."""
        try:
            if fulfilled := self.pos.complete_fulfillments(sale):
                self._pos_written.append(fulfilled)
        except Conflict as conflict:
            fresh = self.pos.fulfillments(sale.sale_id)
            if all(f.done for f in fresh if f.kind == FulfillmentKind.DISPATCH):
                return "the POS fulfilments were completed meanwhile (409 on fulfil): nothing more to do"
            raise RetryLater(str(conflict), self._clock() + BUSY_FULFILLMENT_WAIT_SECONDS) from conflict
        return None

    def _pack(self, sale_id: str, fulfillment: PosFulfillment) -> str | None:
        """Pack one fulfilment at the version read. A stale version (409: someone changed it since) is re-read: if
        it is packed (or further) by now, that is the end; if not, pack once more at its new version. A second 409
        retries the message later. Never a second pack of the same quantities: each try names a version."""
        current: PosFulfillment | None = fulfillment
        for attempt in range(2):
            if current is None or not current.packable:
                state = current.state if current is not None else "gone"
                return f"POS fulfillment {fulfillment.fulfillment_id} is {state} by now (stale version): not packed"
            if current.version is None or not current.to_pack:
                return f"POS fulfillment {fulfillment.fulfillment_id} names no version or no lines: not packed"
            try:
                self.pos.pack(current)
                return None
            except Conflict as conflict:
                if attempt:
                    raise RetryLater(str(conflict), self._clock() + BUSY_FULFILLMENT_WAIT_SECONDS) from conflict
                fresh = self.pos.fulfillments(sale_id)
                current = next((f for f in fresh if f.fulfillment_id == fulfillment.fulfillment_id), None)
        return None  # pragma: no cover - the loop always returns or raises

    def _payment_type_for(self, title: str) -> str | None:
        """The POS payment type for a payment eCom confirmed: the connection's setting for the method (its
        processor for an integrated one), else a POS payment type named like the method. Never a guess."""
        setting = setting_for(title, self.connection.payment_methods) if title else None
        types = self.pos.payment_types()
        if setting is not None and setting.payment_type_id:
            return setting.payment_type_id if any(t.id == setting.payment_type_id for t in types) else None
        wanted = {method_key(n) for n in (setting.payment_type_name if setting else None, title) if n}
        for kind in sorted(types, key=lambda t: t.id):
            if method_key(kind.name) in wanted:
                return kind.id
        return None


ECHO_NOTE = "the eCom order change is the echo of our own write (same updatedAt): nothing read, nothing to do"
SEEN_NOTE = (
    "the eCom order notice tells of the order as a read or write of ours already saw it (same content digest): "
    "nothing read, nothing to do"
)


def _seen_before(message: ChangeMessage, lease: StatusLease) -> bool:
    """An eCom order notice whose content (`ecom_order_digest`: the statuses status sync acts on and eCom's stamp) is
    the order as one of our last reads saw it or our writes left it: it tells of nothing that read did not plan from.
    Not taken once, unlike a POS write's echo: a second notice of a state seen (a retried delivery, the sweep's
    copy) is no newer. A notice's content is never acted on: one with another digest, or none, is read."""
    if message.source != "ecom" or message.entity != "order" or not message.content_digest or lease.previous is None:
        return False
    return message.content_digest in lease.previous.ecom_digests


def _echo_of_our_write(message: ChangeMessage, lease: StatusLease) -> bool:
    """An eCom order change without a content digest (queued before digests, or a payload without the statuses),
    stamped as one of our writes left the order: it brings nothing new (eCom stamps whole seconds, so a merchant's
    edit within the second of our write is taken for it; the next change or the sweep brings that edit). A notice
    with a digest is judged by it alone (`_seen_before`). POS changes and shipments are always read."""
    if message.source != "ecom" or message.entity != "order" or not message.updated_at or lease.previous is None:
        return False
    if message.content_digest:
        return False
    return message.updated_at in lease.previous.ecom_written


BATCH_NOTE = "an earlier message of the same SQS batch read both sides after this one was queued: nothing read"
POS_ECHO_NOTE = "the POS sale change is the echo of our own write (same digest): nothing read"


def _echo_of_our_pos_write(
    message: ChangeMessage, lease: StatusLease, record: OrderRecord
) -> tuple[WrittenSale, list[WrittenSale]] | None:
    """When the message is the echo of one of our POS writes: that write, and those still awaiting their echo once
    this message takes its own; None when it is not (it is then read). An echo is a change of the order's own sale
    (a return of it is another sale) carrying a digest one of our last sync's voids, payments or fulfil left."""
    if message.source != "pos" or message.entity != "sale" or not message.content_digest or lease.previous is None:
        return None
    if message.entity_id != record.sale_id:
        return None
    written = list(lease.previous.pos_written)
    match = next((w for w in written if w.left(message.content_digest)), None)
    if match is None:
        return None
    written.remove(match)
    return match, written


def _history_entries(applied: Sequence[str] = (), ignored: Sequence[str] = ()) -> list[dict[str, str]]:
    """Ledger history entries for what a message applied and ignored, each naming the change it came from (`orders
    show` prints the correlation id next to the worker's log lines)."""
    cid = {"correlation_id": c} if (c := current_correlation_id()) else {}
    return [
        *({"kind": "applied", "detail": a, **cid} for a in applied),
        *({"kind": "ignored", "detail": i, **cid} for i in ignored),
    ]


def _writes_seen(lease: StatusLease, sale: PosSale) -> list[WrittenSale]:
    """Our earlier POS writes whose result the sale as read shows: kept for their echo, which then tells of nothing
    this read did not see (an eCom notice read after our fulfil must not make the fulfil's echo cost a read too).
    Every other earlier write is dropped: its echo, should it come, is read."""
    if lease.previous is None or sale.digest is None:
        return []
    return [w for w in lease.previous.pos_written if w.left(sale.digest)]


def _reference_id(ref: Any) -> int | None:
    """eCom relation `{"resource": {"id": ...}}` (or a bare id) -> the id."""
    if isinstance(ref, dict):
        ref = (ref.get("resource") or {}).get("id") if isinstance(ref.get("resource"), dict) else ref.get("id")
    if isinstance(ref, int) and not isinstance(ref, bool):
        return ref
    return int(ref) if isinstance(ref, str) and ref.isdigit() else None


def _read(sale: PosSale | None) -> PosSale:
    """The sale a POS action applies to: every POS action is planned from a sale that was read."""
    if sale is None:
        raise AssertionError("a POS action without the sale it was planned from")  # pragma: no cover
    return sale
