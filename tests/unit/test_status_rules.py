"""The fixed status mapping (seed 004) as pure rules: each row, the finalized/frozen exceptions, and the invariants
that make a status message a hint (re-planning after applying plans nothing; message timing does not matter).
The rules read the POS sale in neutral terms (`models.sales`); sales here are named by their X-Series status and
read through the X-Series mapping, whose fulfilments (2026-07 `FulfillmentSummaryItem`s: type PICKUP|DISPATCH|
SERVICE, state OPEN|STARTED|PICKED|PACKED|FULFILLED) the neutral ones mirror."""

from __future__ import annotations

import dataclasses
import itertools
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pos_ecom_sync.models.connection import Connection
from pos_ecom_sync.models.messages import ChangeMessage
from pos_ecom_sync.models.orders import PaymentType
from pos_ecom_sync.models.references import in_store_reference, order_in_reference
from pos_ecom_sync.models.sales import (
    FulfillmentKind,
    FulfillmentState,
    PosFulfillment,
    PosSale,
    SaleHint,
    SaleLine,
    SaleState,
)
from pos_ecom_sync.profiles.xseries.sales import fulfillment_of_row, sale_of_row, sale_state_of
from pos_ecom_sync.profiles.xseries.status import XSeriesSales
from pos_ecom_sync.reference import ReferenceCache
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
    fulfillments_matter,
    plan_refund,
    plan_status_sync,
    returned_quantities,
)


def ecom(
    status: str = "processing_awaiting_shipment",
    payment: str = "paid",
    shipment: str = "not_shipped",
    pickup: bool = False,
    title: str = "Bank transfer",
) -> EcomOrderState:
    return EcomOrderState(7, status, payment, shipment, pickup, title)


def fulfillment(n: int, state: str, kind: str = "DISPATCH") -> PosFulfillment:
    to_pack = () if state in ("PACKED", "FULFILLED") else ((f"line{n}", Decimal(1)),)
    return PosFulfillment(f"f{n}", f"o{n}", FulfillmentKind(kind), FulfillmentState(state), 1, to_pack)


def with_status(sale: PosSaleState, status: str) -> PosSaleState:
    """The sale now in this X-Series status (its neutral state as the X-Series profile reads it)."""
    return dataclasses.replace(sale, state=sale_state_of({"status": status}), label=status)


def pos(
    status: str = "AWAITING_DISPATCH",
    paid: bool = True,
    fulfillments: tuple[str, ...] = ("OPEN",),
    kind: str = "DISPATCH",
) -> PosSaleState:
    rows = tuple(fulfillment(n, s, kind) for n, s in enumerate(fulfillments))
    total = Decimal("50.00")
    return PosSaleState("s1", sale_state_of({"status": status}), status, total, total if paid else Decimal(0), rows)


# -- each row of the mapping ---------------------------------------------------------------------------------


def test_ecom_payment_cancelled_voids_the_pos_sale_and_freezes_the_order() -> None:
    plan = plan_status_sync(ecom(payment="cancelled", status="cancelled"), pos(), frozen=False)
    assert plan.actions == (VoidSale("eCom payment cancelled"),)
    assert plan.frozen


def test_pos_void_cancels_the_ecom_payment_and_freezes_the_order() -> None:
    plan = plan_status_sync(ecom(), pos(status="VOIDED", fulfillments=()), frozen=False)
    assert plan.actions == (UpdateEcomOrder((("paymentStatus", "cancelled"),), "the POS sale was voided"),)
    assert plan.frozen


def test_a_frozen_order_takes_no_change_and_says_why() -> None:
    plan = plan_status_sync(ecom(payment="paid"), pos(paid=False), frozen=True)
    assert plan.actions == ()
    assert plan.frozen and "frozen" in plan.ignored[0]


def test_ecom_cancel_after_the_pos_sale_is_finalized_is_recorded_and_ignored() -> None:
    plan = plan_status_sync(
        ecom(payment="cancelled"), pos(status="DISPATCHED_CLOSED", fulfillments=("FULFILLED",)), frozen=False
    )
    assert plan.actions == ()
    assert not plan.frozen
    assert "finalized" in plan.ignored[0]


def test_unpaid_order_marked_paid_in_ecom_records_the_outstanding_amount_in_the_pos() -> None:
    plan = plan_status_sync(ecom(payment="paid", title="Bank transfer"), pos(paid=False), frozen=False)
    assert plan.actions == (RecordPosPayment(Decimal("50.00"), "Bank transfer"),)


def test_an_order_already_paid_in_ecom_at_import_stays_unpaid_in_the_pos_whatever_the_hint() -> None:
    paid_at_import = PaymentBasis(paid_at_import=True)
    plan = plan_status_sync(ecom(payment="paid", title="Cash"), pos(paid=False), frozen=False, payment=paid_at_import)
    assert plan.actions == ()
    assert "already said paid (Cash) when the order was imported" in plan.ignored[0]


def test_an_order_paid_at_import_then_unpaid_then_paid_again_in_ecom_is_a_change_to_paid() -> None:
    basis = PaymentBasis(paid_at_import=True).after(ecom(payment="not_paid", status="processing_awaiting_payment"))
    assert basis.unpaid_seen_since
    plan = plan_status_sync(ecom(payment="paid", title="Cash"), pos(paid=False), frozen=False, payment=basis)
    assert plan.actions == (RecordPosPayment(Decimal("50.00"), "Cash"),)


UNINTEGRATED_READS = st.lists(st.sampled_from(["not_paid", "partially_paid", "paid"]), max_size=12)


@given(at_import=st.sampled_from(["not_paid", "partially_paid", "paid"]), reads=UNINTEGRATED_READS)
def test_the_pos_payment_is_recorded_at_most_once_and_only_after_ecom_changed_from_unpaid_to_paid(
    at_import: str, reads: list[str]
) -> None:
    """An unintegrated order imported unpaid in the POS, then status hints each reading eCom's payment status (any
    number of webhooks and sweeps, any order): the POS is paid exactly when some read says Paid after the order was
    seen unpaid in eCom (at import or by an earlier read), and never twice."""
    basis, pos_paid, payments = PaymentBasis(paid_at_import=at_import == "paid"), False, 0
    for n, status in enumerate(reads):
        order = ecom(payment=status, status="processing_awaiting_shipment", title="Cheque")
        plan = plan_status_sync(order, pos(paid=pos_paid, fulfillments=()), frozen=False, payment=basis)
        recorded = [a for a in plan.actions if isinstance(a, RecordPosPayment)]
        if recorded:
            was_unpaid = at_import != "paid" or any(r != "paid" for r in reads[:n])
            assert status == "paid" and was_unpaid
            payments, pos_paid = payments + len(recorded), True
        basis = basis.after(order)
    assert payments <= 1
    change_to_paid = any(
        r == "paid" and (at_import != "paid" or any(e != "paid" for e in reads[:n])) for n, r in enumerate(reads)
    )
    assert payments == int(change_to_paid)


def test_sale_paid_on_the_pos_sell_screen_marks_the_ecom_order_paid() -> None:
    plan = plan_status_sync(
        ecom(payment="not_paid", status="processing_awaiting_payment"), pos(paid=True), frozen=False
    )
    assert plan.actions == (UpdateEcomOrder((("paymentStatus", "paid"),), "paid in the POS"),)


def test_ecom_marked_paid_after_finalization_is_ignored() -> None:
    plan = plan_status_sync(
        ecom(payment="paid"), pos(status="PICKED_UP_CLOSED", paid=False, fulfillments=()), frozen=False
    )
    assert plan.actions == ()
    assert "finalized" in plan.ignored[0]


def test_out_for_delivery_in_ecom_completes_every_open_dispatch_fulfillment() -> None:
    order = ecom(status="completed_shipped", shipment="shipped")
    sale = pos(fulfillments=("OPEN", "STARTED", "PACKED", "FULFILLED"))
    plan = plan_status_sync(order, sale, frozen=False)
    assert plan.actions == (CompleteFulfillments(sale.fulfillments[:3]),)


def test_out_for_delivery_never_completes_a_sale_that_also_has_open_pickup_fulfillments() -> None:
    """The fulfil call completes all of a sale's fulfilments: it would hand over the pickup part as collected."""
    order = ecom(status="completed_shipped", shipment="shipped")
    sale = dataclasses.replace(pos(), fulfillments=(fulfillment(0, "OPEN"), fulfillment(1, "OPEN", "PICKUP")))
    plan = plan_status_sync(order, sale, frozen=False)
    assert plan.actions == ()
    assert plan.ignored == ("eCom out for delivery, but the sale also has open PICKUP fulfilments",)


@pytest.mark.parametrize("state", ["OPEN", "STARTED", "PICKED"])
def test_ready_for_pickup_in_ecom_packs_every_pickup_fulfillment_not_packed_yet(state: str) -> None:
    order = ecom(status="processing_ready_for_pickup", pickup=True)
    sale = pos(status="AWAITING_PICKUP", kind="PICKUP", fulfillments=(state, "PACKED"))
    plan = plan_status_sync(order, sale, frozen=False)
    assert plan.actions == (PackFulfillments(sale.fulfillments[:1]),)


@pytest.mark.parametrize("state", ["STARTED", "PICKED"])
def test_in_progress_in_the_pos_never_reaches_ecom(state: str) -> None:
    for pickup in (True, False):
        status = "processing_awaiting_pickup" if pickup else "processing_awaiting_shipment"
        kind = "PICKUP" if pickup else "DISPATCH"
        sale = pos(status=f"AWAITING_{kind}", kind=kind, fulfillments=(state,))
        plan = plan_status_sync(ecom(status=status, pickup=pickup), sale, frozen=False)
        assert plan.actions == () and plan.ignored == ()


def test_packed_in_the_pos_makes_a_pickup_order_ready_for_pickup_in_ecom() -> None:
    order = ecom(status="processing_awaiting_pickup", pickup=True)
    plan = plan_status_sync(order, pos(status="AWAITING_PICKUP", kind="PICKUP", fulfillments=("PACKED",)), frozen=False)
    assert plan.actions == (UpdateEcomOrder((("status", "processing_ready_for_pickup"),), "packed in the POS"),)


def test_one_of_two_pickup_fulfillments_packed_does_not_make_the_order_ready() -> None:
    order = ecom(status="processing_awaiting_pickup", pickup=True)
    sale = pos(status="AWAITING_PICKUP", kind="PICKUP", fulfillments=("PACKED", "STARTED"))
    assert plan_status_sync(order, sale, frozen=False).actions == ()


def test_ready_for_pickup_is_never_synced_for_a_shipment() -> None:
    plan = plan_status_sync(ecom(status="processing_ready_for_pickup"), pos(fulfillments=("OPEN",)), frozen=False)
    assert plan.actions == ()
    assert plan.ignored == ("ready for pickup is never synced for a shipment",)
    packed = plan_status_sync(ecom(), pos(fulfillments=("PACKED",)), frozen=False)
    assert packed.actions == ()


@pytest.mark.parametrize("status", ["processing_awaiting_shipment", "on_hold", "processing_awaiting_payment"])
def test_processing_and_in_progress_are_never_synced(status: str) -> None:
    assert plan_status_sync(ecom(status=status), pos(), frozen=False).actions == ()


ECOM_STATUSES = (
    "processing_awaiting_payment",
    "processing_awaiting_shipment",
    "processing_awaiting_pickup",
    "processing_ready_for_pickup",
    "completed_shipped",
    "completed_picked_up",
    "completed",
    "on_hold",
    "cancelled",
)
# Every single fulfilment, and the mixes of two that the pickup and delivery rows tell apart.
FULFILLMENT_SETS = (
    (),
    *(((state.value, kind.value),) for state in FulfillmentState for kind in FulfillmentKind),
    *(
        ((first, kind), (second, kind))
        for kind in ("PICKUP", "DISPATCH")
        for first, second in (("PACKED", "OPEN"), ("PACKED", "FULFILLED"), ("FULFILLED", "OPEN"), ("OPEN", "OPEN"))
    ),
    (("OPEN", "DISPATCH"), ("OPEN", "PICKUP")),
)


def test_fulfillments_left_unread_could_not_have_changed_the_plan() -> None:
    """Exhaustive over the states the rules tell apart: whenever `fulfillments_matter` says no, the plan is the same
    with any fulfilments as without them (a sampled search missed a wrong answer that only one combination in
    several hundred shows)."""
    checked = 0
    for status, payment, shipment, pickup, sale_status, paid, frozen, at_import in itertools.product(
        ECOM_STATUSES,
        ("not_paid", "partially_paid", "paid", "cancelled"),
        ("not_shipped", "partially_shipped", "shipped"),
        (False, True),
        ("SAVED", "ONACCOUNT", "AWAITING_DISPATCH", "AWAITING_PICKUP", "CLOSED", "VOIDED"),
        (False, True),
        (False, True),
        (False, True),
    ):
        order = ecom(status=status, payment=payment, shipment=shipment, pickup=pickup)
        sale = pos(status=sale_status, paid=paid, fulfillments=())
        if fulfillments_matter(order, sale.state, frozen=frozen):
            continue
        basis = PaymentBasis(paid_at_import=at_import)
        unread = plan_status_sync(order, dataclasses.replace(sale, fulfillments_read=False), frozen=frozen,
                                  payment=basis)  # fmt: skip
        for rows in FULFILLMENT_SETS:
            fulfillments = tuple(fulfillment(n, state, kind) for n, (state, kind) in enumerate(rows))
            read = dataclasses.replace(sale, fulfillments=fulfillments)
            assert plan_status_sync(order, read, frozen=frozen, payment=basis) == unread, (order, read)
            checked += 1
    assert checked > 50_000  # most combinations need no read: the loop is not vacuous


def test_a_payment_cancel_or_void_needs_no_fulfilment_read_and_a_shipment_or_pickup_does() -> None:
    live = SaleState.OPEN
    assert not fulfillments_matter(ecom(payment="paid"), live, frozen=False)  # a delivery not shipped
    assert not fulfillments_matter(ecom(payment="cancelled"), live, frozen=False)
    assert not fulfillments_matter(ecom(), SaleState.VOIDED, frozen=False)
    assert not fulfillments_matter(ecom(shipment="shipped"), live, frozen=True)
    assert fulfillments_matter(ecom(shipment="shipped"), live, frozen=False)
    assert fulfillments_matter(ecom(status="processing_awaiting_pickup", pickup=True), live, frozen=False)
    assert fulfillments_matter(ecom(status="processing_ready_for_pickup", pickup=True), live, frozen=False)
    assert not fulfillments_matter(ecom(status="completed_picked_up", pickup=True), live, frozen=False)
    unread = PosSaleState.of(sale_of_row({"id": "s1", "status": "ONACCOUNT", "total_price": 5}), None)
    assert unread.summary().endswith("/fulfillments not read")


def test_a_ready_pickup_order_is_never_moved_back_when_one_of_two_fulfillments_is_still_open() -> None:
    order = ecom(status="completed_picked_up", pickup=True)
    plan = plan_status_sync(
        order, pos(status="AWAITING_PICKUP", kind="PICKUP", fulfillments=("PACKED", "OPEN")), frozen=False
    )
    assert plan.actions == ()


def test_the_xseries_sale_and_fulfilment_rows_read_as_the_neutral_sale() -> None:
    sale = {
        "id": "s1",
        "status": "AWAITING_PICKUP",
        "total_price": 40.0,
        "total_tax": 6.0,
        "payments": [{"amount": 20.0}, {"amount": 26.0}],
    }
    row = {
        "id": "1947700198720344064",
        "outlet_id": "o1",
        "sale_id": "s1",
        "type": "PICKUP",
        "state": "PACKED",
        "version": 3,
        "line_items": [
            {"sale_line_item_id": "l1", "quantity": "2.00", "packed_quantity": "2.00", "fulfilled_quantity": "0.00"}
        ],
    }
    state = PosSaleState.of(sale_of_row(sale), [fulfillment_of_row(row)])
    assert state.paid and state.outstanding == 0
    assert (state.state, state.label) == (SaleState.OPEN, "AWAITING_PICKUP")
    packed = PosFulfillment("1947700198720344064", "o1", FulfillmentKind.PICKUP, FulfillmentState.PACKED, 3, ())
    assert state.fulfillments == (packed,)
    assert state.packed_for_pickup
    started = fulfillment_of_row(
        {**row, "state": "STARTED", "line_items": [{**row["line_items"][0], "packed_quantity": "0.50"}]}
    )
    assert started.packable and started.to_pack == (("l1", Decimal("1.50")),)
    order = EcomOrderState.of(
        {"id": 5, "status": "completed_shipped", "paymentStatus": "paid", "shipmentStatus": "shipped"}
    )
    assert order.out_for_delivery and not order.is_pickup


@pytest.mark.parametrize(
    ("status", "state"),
    [
        ("SAVED", SaleState.OPEN),
        ("AWAITING_DISPATCH", SaleState.OPEN),
        ("ONACCOUNT", SaleState.OPEN),
        ("DISPATCHED_CLOSED", SaleState.CLOSED),
        ("CLOSED", SaleState.CLOSED),
        ("VOIDED", SaleState.VOIDED),
    ],
)
def test_an_xseries_sale_is_finalized_once_closed_and_frozen_once_voided(status: str, state: SaleState) -> None:
    assert sale_state_of({"status": status}) == state


def test_an_xseries_fulfilment_of_a_kind_the_sync_does_not_know_keeps_a_shipment_from_being_completed() -> None:
    """The fulfil call completes every fulfilment of the sale: an open one of an unknown kind would be handed over."""
    unknown = fulfillment_of_row({"id": "f9", "outlet_id": "o1", "type": "COURIER", "state": "BOOKED", "version": 1})
    assert (unknown.kind, unknown.state, unknown.open, unknown.packable) == (
        FulfillmentKind.OTHER,
        FulfillmentState.OTHER,
        True,
        False,
    )
    sale = dataclasses.replace(pos(), fulfillments=(fulfillment(0, "OPEN"), unknown))
    plan = plan_status_sync(ecom(status="completed_shipped", shipment="shipped"), sale, frozen=False)
    assert plan.actions == ()
    assert plan.ignored == ("eCom out for delivery, but the sale also has open OTHER fulfilments",)


# -- a model of both vendors, to check the rules as a whole --------------------------------------------------


@dataclasses.dataclass
class Vendors:
    ecom: EcomOrderState
    pos: PosSaleState


def _set_fulfillments(sale: PosSaleState, state: str, which: set[str] | None = None) -> PosSaleState:
    rows = tuple(
        dataclasses.replace(f, state=FulfillmentState(state), version=(f.version or 0) + 1)
        if (which is None or f.fulfillment_id in which) and not f.done
        else f
        for f in sale.fulfillments
    )
    sale = dataclasses.replace(sale, fulfillments=rows)
    if rows and all(f.done for f in rows):
        sale = with_status(sale, "PICKED_UP_CLOSED" if rows[0].kind == "PICKUP" else "DISPATCHED_CLOSED")
    return sale


def apply_action(world: Vendors, action: StatusAction) -> None:
    """What the simulators do with each action; refusing what they would refuse."""
    match action:
        case VoidSale():
            assert not world.pos.voided, "voided twice"
            world.pos = dataclasses.replace(with_status(world.pos, "VOIDED"), fulfillments=())
        case RecordPosPayment(amount=amount):
            assert not world.pos.finalized and not world.pos.voided
            world.pos = dataclasses.replace(world.pos, paid_amount=world.pos.paid_amount + amount)
        case CompleteFulfillments():
            world.pos = _set_fulfillments(world.pos, "FULFILLED")  # the fulfil call completes all of them
        case PackFulfillments(fulfillments=rows):
            assert all(f.packable for f in rows)
            world.pos = _set_fulfillments(world.pos, "PACKED", {f.fulfillment_id for f in rows})
        case UpdateEcomOrder():
            assert not world.ecom.cancelled, "wrote to a cancelled (frozen) eCom order"
            fields = action.as_dict()
            update = {"status": fields.get("status", world.ecom.status)}
            update["payment_status"] = fields.get("paymentStatus", world.ecom.payment_status)
            if update["payment_status"] == "cancelled":
                update.update(status="cancelled", shipment_status="cancelled")
            world.ecom = dataclasses.replace(world.ecom, **update)


def sync(world: Vendors, frozen: bool) -> bool:
    plan = plan_status_sync(world.ecom, world.pos, frozen=frozen)
    for action in plan.actions:
        apply_action(world, action)
    return plan.frozen


MERCHANT_ACTIONS = [
    "ecom_pay", "ecom_cancel", "ecom_ready", "ecom_ship", "pos_pay", "pos_void", "pos_start", "pos_pack", "pos_done",
]  # fmt: skip
MONOTONIC_ACTIONS = ["ecom_pay", "ecom_cancel", "ecom_ready", "pos_pay", "pos_void", "pos_start", "pos_pack"]


def merchant(world: Vendors, what: str) -> None:
    """A person changes one side, as its back office allows."""
    e, p = world.ecom, world.pos
    ecom_open = not e.cancelled
    pos_open = not p.voided and not p.finalized
    if what == "ecom_pay" and ecom_open:
        world.ecom = dataclasses.replace(e, payment_status="paid")
    elif what == "ecom_cancel" and ecom_open:
        world.ecom = dataclasses.replace(e, payment_status="cancelled", status="cancelled", shipment_status="cancelled")
    elif what == "ecom_ready" and ecom_open and e.is_pickup and e.status not in ("completed_picked_up",):
        world.ecom = dataclasses.replace(e, status="processing_ready_for_pickup")
    elif what == "ecom_ship" and ecom_open and not e.is_pickup:
        world.ecom = dataclasses.replace(e, status="completed_shipped", shipment_status="shipped")
    elif what == "pos_pay" and pos_open:
        world.pos = dataclasses.replace(p, paid_amount=p.total)
    elif what == "pos_void" and not p.voided:
        world.pos = dataclasses.replace(with_status(p, "VOIDED"), fulfillments=())
    elif what == "pos_start" and pos_open and any(f.state == "OPEN" for f in p.fulfillments):
        world.pos = _set_fulfillments(p, "STARTED", {f.fulfillment_id for f in p.fulfillments if f.state == "OPEN"})
    elif what == "pos_pack" and pos_open and any(f.packable for f in p.fulfillments):
        world.pos = _set_fulfillments(p, "PACKED", {f.fulfillment_id for f in p.fulfillments if f.packable})
    elif what == "pos_done" and pos_open:
        world.pos = _set_fulfillments(p, "FULFILLED")


def new_world(pickup: bool, paid: bool, outlets: int) -> Vendors:
    status = "processing_awaiting_pickup" if pickup else "processing_awaiting_shipment"
    order = ecom(status=status, payment="paid" if paid else "not_paid", pickup=pickup)
    kind = "PICKUP" if pickup else "DISPATCH"
    sale = pos(
        status=f"AWAITING_{'PICKUP' if pickup else 'DISPATCH'}", paid=paid, fulfillments=("OPEN",) * outlets, kind=kind
    )
    return Vendors(order, sale)


worlds = st.builds(new_world, st.booleans(), st.booleans(), st.integers(min_value=1, max_value=2))


@settings(max_examples=300, deadline=None)
@given(world=worlds, steps=st.lists(st.tuples(st.sampled_from(MERCHANT_ACTIONS), st.booleans()), max_size=10))
def test_after_any_history_a_second_sync_plans_nothing_and_the_sides_agree(
    world: Vendors, steps: list[tuple[str, bool]]
) -> None:
    frozen = False
    for what, sync_now in steps:
        merchant(world, what)
        if sync_now:  # a message arrives, maybe twice: the repeat must change nothing
            frozen = sync(world, frozen)
            assert plan_status_sync(world.ecom, world.pos, frozen=frozen).actions == ()
    frozen = sync(world, frozen)
    assert plan_status_sync(world.ecom, world.pos, frozen=frozen).actions == ()

    e, p = world.ecom, world.pos
    if e.cancelled and not p.finalized:
        assert p.voided
    if p.voided:
        assert e.cancelled
    if e.paid and not p.finalized and not p.voided:
        assert p.paid
    if p.paid and not e.cancelled:
        assert e.payment_status == "paid"
    if e.out_for_delivery and not (p.finalized or p.voided):
        assert not any(f.open for f in p.fulfillments)
    if e.is_pickup and p.packed_for_pickup and not e.cancelled:
        assert e.status in ("processing_ready_for_pickup", "completed_picked_up")


@settings(max_examples=300, deadline=None)
@given(
    world=worlds,
    steps=st.lists(st.sampled_from(MONOTONIC_ACTIONS), max_size=8),
    sync_points=st.lists(st.booleans(), min_size=8, max_size=8),
)
def test_when_messages_arrive_does_not_change_where_the_order_ends(
    world: Vendors, steps: list[str], sync_points: list[bool]
) -> None:
    """Each merchant action happens once, in order; status messages arrive at arbitrary moments (late, batched,
    duplicated). Without a finalization race, the end state is the same as syncing after every single change."""
    eager, lazy = dataclasses.replace(world), dataclasses.replace(world)
    eager_frozen = lazy_frozen = False
    for what, sync_now in zip(steps, sync_points, strict=False):
        merchant(eager, what)
        eager_frozen = sync(eager, eager_frozen)
        merchant(lazy, what)
        if sync_now:
            lazy_frozen = sync(lazy, lazy_frozen)
    lazy_frozen = sync(lazy, lazy_frozen)

    def outcome(world: Vendors) -> tuple[object, ...]:
        # A voided sale's payments are moot (voiding reverses them), so they are not compared.
        packed = tuple(f.state for f in world.pos.fulfillments)
        return (
            world.ecom.status,
            world.ecom.payment_status,
            world.pos.voided,
            world.pos.voided or world.pos.paid,
            packed,
        )

    assert outcome(lazy) == outcome(eager)
    assert lazy.ecom.cancelled == eager.ecom.cancelled
    assert lazy_frozen == eager_frozen


# -- refunds (POS returns -> eCom credit) ---------------------------------------------------------------------


def test_a_pos_return_credits_what_ecom_has_not_refunded_yet() -> None:
    assert plan_refund({11: 2, 12: 1}, {11: 0, 12: 0}) == CreditEcomOrder(((11, 2), (12, 1)))
    assert plan_refund({11: 2, 12: 1}, {11: 1, 12: 1}) == CreditEcomOrder(((11, 1),))


def test_a_repeated_return_message_credits_nothing_twice() -> None:
    assert plan_refund({11: 2}, {11: 2}) is None
    assert plan_refund({}, {11: 0}) is None


@settings(max_examples=200, deadline=None)
@given(
    returns=st.lists(st.dictionaries(st.integers(1, 4), st.integers(1, 3), min_size=1), max_size=5),
    deliveries=st.lists(st.integers(0, 4), max_size=15),
)
def test_any_order_and_repetition_of_return_messages_ends_with_exactly_the_returned_items_refunded(
    returns: list[dict[int, int]], deliveries: list[int]
) -> None:
    """Each delivery re-reads eCom and credits the difference to all returns recorded so far; in the end eCom
    shows exactly the sum of the returns, however the messages were duplicated or reordered."""
    refunded: dict[int, int] = {}
    recorded: set[int] = set()

    def deliver(n: int) -> None:
        recorded.add(n)
        wanted: dict[int, int] = {}
        for index in recorded:
            for line, quantity in returns[index].items():
                wanted[line] = wanted.get(line, 0) + quantity
        credit = plan_refund(wanted, refunded)
        for line, quantity in credit.lines if credit else ():
            refunded[line] = refunded.get(line, 0) + quantity

    for n in deliveries:
        if n < len(returns):
            deliver(n)
    for n in range(len(returns)):  # the poller's sweep brings every return at least once
        deliver(n)
    total: dict[int, int] = {}
    for items in returns:
        for line, quantity in items.items():
            total[line] = total.get(line, 0) + quantity
    assert refunded == total


# -- which returns count ---------------------------------------------------------------------------------------


def _return(status: str, state: str, quantity: int = -1) -> dict[str, object]:
    return {
        "id": "r1",
        "status": status,
        "state": state,
        "return_for": "s1",
        "line_items": [
            {"product_id": "p1", "quantity": quantity, "status": status if status == "SAVED" else "CONFIRMED"}
        ],
    }


def _read_return(status: str, state: str, quantity: int = -1) -> PosSale:
    return sale_of_row(_return(status, state, quantity))


def test_only_a_completed_return_counts_as_items_taken_back() -> None:
    assert not completed_return(_read_return("SAVED", "parked"))  # as the return action answers it (X20/X26 example)
    assert not completed_return(_read_return("VOIDED", "voided"))
    assert completed_return(_read_return("CLOSED", "closed"))
    assert completed_return(sale_of_row({"id": "r1", "status": "CLOSED"}))  # a 2.0 read without `state`
    assert returned_quantities(_read_return("CLOSED", "closed", quantity=-2)) == {"p1": 2}
    assert sale_of_row(_return("CLOSED", "closed")).return_for == "s1"


RETURN_EVENTS = ["start", "complete", "void", "deliver"]


@settings(max_examples=300, deadline=None)
@given(
    plans=st.lists(st.tuples(st.integers(1, 3), st.booleans()), min_size=1, max_size=4),
    schedule=st.lists(st.tuples(st.integers(0, 3), st.sampled_from(RETURN_EVENTS)), max_size=30),
)
def test_returns_refund_exactly_what_completed_returns_took_back_whatever_the_messages_order(
    plans: list[tuple[int, bool]], schedule: list[tuple[int, str]]
) -> None:
    """Each return is started (parked), then completed or voided by the POS user; each of its sale.update
    messages may arrive late, twice, or out of order, and the worker reads the return as it is when the message is
    handled. In the end eCom shows refunded exactly the items of the completed returns: never a parked or voided
    one, never twice."""
    states = ["none"] * len(plans)  # none -> parked -> closed | voided
    recorded: dict[int, int] = {}  # the ledger: completed returns seen (return -> quantity), as status sync keeps it
    refunded: dict[int, int] = {}  # eCom: order line 1 -> quantity refunded

    def deliver(n: int) -> None:
        if states[n] == "none":
            return
        sale = _read_return(
            {"parked": "SAVED", "closed": "CLOSED", "voided": "VOIDED"}[states[n]], states[n], -plans[n][0]
        )
        if completed_return(sale):
            recorded[n] = returned_quantities(sale)["p1"]
        credit = plan_refund({1: sum(recorded.values())} if recorded else {}, refunded)
        for line, quantity in credit.lines if credit else ():
            refunded[line] = refunded.get(line, 0) + quantity

    for n, event in schedule:
        if n >= len(plans):
            continue
        if event == "start" and states[n] == "none":
            states[n] = "parked"
        elif event in ("complete", "void") and states[n] == "parked":
            states[n] = "closed" if event == "complete" else "voided"
        deliver(n)
    for n in range(len(plans)):  # the POS user finishes each return as planned; the sweep delivers them all
        if states[n] == "parked":
            states[n] = "closed" if plans[n][1] else "voided"
        deliver(n)
        deliver(n)
    completed = sum(q for n, (q, _) in enumerate(plans) if states[n] == "closed")
    assert refunded.get(1, 0) == completed


# -- a POS without fulfilments (R-Series: a sale is only open, completed or voided) -----------------------------


@pytest.mark.parametrize("pickup", [False, True])
def test_a_sale_without_fulfilments_still_syncs_payment_and_cancel_and_never_plans_a_fulfilment(pickup: bool) -> None:
    shipped = ecom(status="completed_shipped", shipment="shipped", pickup=pickup)
    ready = ecom(status="processing_ready_for_pickup", pickup=pickup)
    for order in (shipped, ready):
        assert plan_status_sync(order, pos(fulfillments=()), frozen=False).actions == ()
    unpaid = pos(paid=False, fulfillments=())
    assert plan_status_sync(ecom(payment="paid", pickup=pickup), unpaid, frozen=False).actions == (
        RecordPosPayment(Decimal("50.00"), "Bank transfer"),
    )
    cancelled = plan_status_sync(ecom(payment="cancelled", pickup=pickup), unpaid, frozen=False)
    assert cancelled.actions == (VoidSale("eCom payment cancelled"),) and cancelled.frozen


# -- the X-Series profile's side of the port ---------------------------------------------------------------------


class FakeXSeries:
    """The X-Series client calls status sync makes, answering one sale, recording what is sent."""

    def __init__(self, sale: dict[str, Any]) -> None:
        self.sale = sale
        self.calls = 0
        self.sent: list[dict[str, Any]] = []
        self.packed: list[tuple[str, int, tuple[tuple[str, Decimal], ...]]] = []
        self.type_lists = 0

    def get_sale(self, sale_id: str) -> dict[str, Any] | None:
        self.calls += 1
        return dict(self.sale) if sale_id == self.sale["id"] else None

    def list_fulfillments(self, sale_id: str) -> list[dict[str, Any]]:
        return []

    def list_payment_types(self) -> list[dict[str, Any]]:
        self.type_lists += 1
        return [{"id": "pt1", "name": "Cash"}, {"id": "pt0", "name": "Old", "deleted_at": "2024-01-01T00:00:00Z"}]

    def update_register_sale(self, sale: dict[str, Any]) -> dict[str, Any]:
        self.sent.append(sale)
        return sale

    def fulfill_sale(self, sale_id: str) -> list[dict[str, Any]]:
        return []

    def pack_fulfillment(self, fulfillment_id: str, version: int, line_items: Any) -> dict[str, Any]:
        self.packed.append((fulfillment_id, version, tuple(line_items)))
        return {}

    def get_product(self, product_id: str) -> dict[str, Any] | None:
        return {"id": product_id, "sku": "SKU-1"}


XSERIES_SALE = {
    "id": "s1",
    "register_id": "r1",
    "user_id": "u1",
    "status": "AWAITING_DISPATCH",
    "source_id": "ecom-7",
    "total_price": 40.0,
    "total_tax": 10.0,
    "line_items": [
        {"id": "l1", "product_id": "p1", "quantity": 1, "price": 40.0, "unit_tax": 10.0, "tax_id": "t1"},
    ],
    "payments": [{"retailer_payment_type_id": "pt9", "amount": 5.0, "payment_date": "2026-01-01T00:00:00Z"}],
}


def _xseries_sales(sale: dict[str, Any] = XSERIES_SALE) -> tuple[XSeriesSales, FakeXSeries]:
    client = FakeXSeries(sale)
    connection = Connection(connection_id="c1", pos_base_url="http://pos", ecom_base_url="http://ecom")
    return XSeriesSales(client, connection, ReferenceCache()), client


def test_the_xseries_profile_pays_and_voids_by_re_stating_the_sale_as_last_read_without_reading_it_again() -> None:
    sales, client = _xseries_sales()
    sale = sales.sale("s1")
    assert sale is not None
    assert (sale.total, sale.paid, sale.reference, sale.lines) == (
        Decimal("50.0"),
        Decimal("5.0"),
        "ecom-7",
        (SaleLine("l1", "p1", Decimal(1)),),
    )
    sales.record_payment(sale, "pt1", Decimal("45.00"))
    sales.void(sale)
    assert client.calls == 1  # both writes took the row read
    paid, voided = client.sent
    assert paid["status"] == "AWAITING_DISPATCH"
    assert paid["register_sale_payments"] == [
        {"retailer_payment_type_id": "pt9", "amount": 5.0, "payment_date": "2026-01-01T00:00:00Z"},
        {"retailer_payment_type_id": "pt1", "amount": 45.0},
    ]
    assert paid["register_sale_products"] == [
        {"id": "l1", "product_id": "p1", "quantity": 1, "price": 40.0, "tax": 10.0, "tax_id": "t1"}
    ]
    assert (voided["status"], voided["register_sale_products"]) == ("VOIDED", paid["register_sale_products"])


def test_the_xseries_profile_offers_live_payment_types_only_and_reads_them_once_a_while() -> None:
    sales, client = _xseries_sales()
    assert sales.payment_types() == [PaymentType("pt1", "Cash")]
    assert sales.payment_types() == [PaymentType("pt1", "Cash")]
    assert client.type_lists == 1


def test_the_xseries_profile_packs_at_the_version_read_and_reads_a_hint_from_the_queued_payload() -> None:
    sales, client = _xseries_sales()
    sales.pack(fulfillment(3, "STARTED", "PICKUP"))
    assert client.packed == [("f3", 1, (("line3", Decimal(1)),))]
    message = ChangeMessage(
        connection_id="c1",
        source="pos",
        entity="sale",
        entity_id="r9",
        via="webhook",
        received_at=datetime.now(UTC),
        payload={"id": "r9", "source_id": "till-7", "return_for": "s1"},
        concern="statuses",
    )
    assert sales.sale_hint(message) == SaleHint(reference="till-7", return_for="s1")
    assert in_store_reference("till-7") and not in_store_reference("ecom-7") and not in_store_reference(None)
    assert order_in_reference("ecom-7") == 7 and order_in_reference("till-7") is None
