"""OrderStore transitions against moto: every one conditional, a lost race reported, never overwritten. The customer
email index: an entry and its reverse item move together, a drop only removes the entry that still names the customer,
a live creating lock is never overwritten by a match, and a new order's intent, reverse item and payment status are
one write. The customer census: its marks and progress are read with the order's other lookups, and a dropped index
entry leaves its email's mark."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from pos_ecom_sync.errors import Conflict, OrderBusy
from pos_ecom_sync.models.ledger import CustomerBusy, CustomerCensus, CustomerClaimed, CustomerKnown
from pos_ecom_sync.state.order_store import OrderStore

from tests.support import ManualClock

CID = "shop"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(1_800_000_000.0)


@pytest.fixture
def store(sync_table: str, clock: ManualClock) -> OrderStore:
    return OrderStore(sync_table, client=boto3.client("dynamodb", region_name="us-east-1"), clock=clock)


def _complete(store: OrderStore, claim: Any, **overrides: Any) -> Any:
    fields = {"number": "ORD1", "sale_id": "sale-1", "customer_id": "c-1", "outlet_ids": ("o-1",)}
    return store.complete_order(CID, claim, adopted=False, notify=True, **{**fields, **overrides})


def test_the_first_claim_records_the_intent_and_a_live_claim_keeps_others_out(store: OrderStore) -> None:
    claim = store.claim_order(CID, 7, source_id="ecom-7", lease_seconds=150)
    assert claim.previous is None and not claim.may_have_created_a_sale
    record = store.get_order(CID, 7)
    assert record is not None and record.status == "importing" and record.source_id == "ecom-7"

    with pytest.raises(OrderBusy):
        store.claim_order(CID, 7, source_id="ecom-7", lease_seconds=150)


def test_an_expired_claim_is_taken_over_and_the_next_attempt_looks_for_the_sale(
    store: OrderStore, clock: ManualClock
) -> None:
    dead = store.claim_order(CID, 7, source_id="ecom-7", lease_seconds=150)
    clock.now += 152
    retry = store.claim_order(CID, 7, source_id="ecom-7", lease_seconds=150)
    assert retry.may_have_created_a_sale and retry.previous is not None and retry.previous.attempts == 1

    with pytest.raises(Conflict):  # the dead worker's claim is gone: it can record nothing any more
        _complete(store, dead)
    _complete(store, retry)
    with pytest.raises(Conflict, match="already imported"):
        store.claim_order(CID, 7, source_id="ecom-7", lease_seconds=150)


def test_a_held_order_is_listed_until_imported_and_its_retry_needs_no_sale_lookup(store: OrderStore) -> None:
    claim = store.claim_order(CID, 9, source_id="ecom-9", lease_seconds=150)
    store.hold_order(CID, claim, number="ORD9", reason="line 1 (Gift box): no POS product has SKU 'GIFT-1'")
    [held] = store.held_orders(CID)
    assert (held.order_id, held.number, held.attempts) == (9, "ORD9", 1) and "GIFT-1" in held.reason

    retry = store.claim_order(CID, 9, source_id="ecom-9", lease_seconds=150)  # a held order is free at once
    assert not retry.may_have_created_a_sale
    record = _complete(store, retry)
    assert record.status == "imported" and store.held_orders(CID) == []
    stored = store.get_order(CID, 9)
    assert stored is not None and stored.held_reason is None and stored.notifications_pending
    store.mark_notified(CID, 9)
    stored = store.get_order(CID, 9)
    assert stored is not None and not stored.notifications_pending


def test_several_imported_orders_are_marked_notified_in_one_write_and_none_if_one_is_not_imported(
    store: OrderStore,
) -> None:
    for order_id in (11, 12, 13):
        _complete(store, store.claim_order(CID, order_id, source_id=f"ecom-{order_id}", lease_seconds=150))
    store.claim_order(CID, 14, source_id="ecom-14", lease_seconds=150)  # still importing

    with pytest.raises(Conflict):
        store.mark_notified_many(CID, [11, 12, 14])
    pending = [store.get_order(CID, order_id) for order_id in (11, 12)]
    assert all(record is not None and record.notifications_pending for record in pending)

    store.mark_notified_many(CID, [11, 12, 13])
    marked = [store.get_order(CID, order_id) for order_id in (11, 12, 13)]
    assert all(record is not None and not record.notifications_pending for record in marked)


def test_an_sqs_batchs_ledgers_read_together_answer_each_orders_first_read_once(store: OrderStore) -> None:
    _complete(store, store.claim_order(CID, 21, source_id="ecom-21", lease_seconds=150))
    store.prefetch_orders(CID, [21, 22, 21])
    store.claim_order(CID, 22, source_id="ecom-22", lease_seconds=150)  # after the batched read

    first = store.get_order(CID, 21)
    assert first is not None and first.status == "imported"
    assert store.get_order(CID, 22) is None  # as read with the batch: the importer's claim then settles it
    record = store.get_order(CID, 22)  # a second read of the same order reads again
    assert record is not None and record.status == "importing"


def test_a_released_claim_frees_the_order_at_once(store: OrderStore) -> None:
    claim = store.claim_order(CID, 5, source_id="ecom-5", lease_seconds=150)
    store.release(CID, claim)
    assert store.claim_order(CID, 5, source_id="ecom-5", lease_seconds=150).may_have_created_a_sale


def test_an_attempt_released_before_asking_for_the_sale_spares_the_next_one_the_sale_lookup_until_a_crash(
    store: OrderStore, clock: ManualClock
) -> None:
    throttled = store.claim_order(CID, 6, source_id="ecom-6", lease_seconds=150)
    store.release(CID, throttled, error="RateLimited: ecom: rate budget exhausted", sale_possible=False)
    retry = store.claim_order(CID, 6, source_id="ecom-6", lease_seconds=150)
    assert not retry.may_have_created_a_sale  # no attempt asked the POS for the sale

    clock.now += 152  # this attempt dies (no release) after it may have asked: the mark is gone with its claim
    after_crash = store.claim_order(CID, 6, source_id="ecom-6", lease_seconds=150)
    assert after_crash.may_have_created_a_sale


def test_one_order_at_a_time_may_create_the_customer_of_an_email(store: OrderStore, clock: ManualClock) -> None:
    assert isinstance(store.claim_customer(CID, "k", owner="order:1", lease_seconds=150), CustomerClaimed)
    busy = store.claim_customer(CID, "k", owner="order:2", lease_seconds=150)
    assert isinstance(busy, CustomerBusy)
    # the same order again (its worker died after the create): it may go on
    assert isinstance(store.claim_customer(CID, "k", owner="order:1", lease_seconds=150), CustomerClaimed)

    store.record_customer(CID, "k", owner="order:1", customer_id="cust-1")
    assert store.claim_customer(CID, "k", owner="order:2", lease_seconds=150) == CustomerKnown("cust-1")
    clock.now += 3601  # past the trust window the POS search is the truth again
    assert isinstance(store.claim_customer(CID, "k", owner="order:3", lease_seconds=150), CustomerClaimed)


def test_a_dead_creators_customer_lock_expires(store: OrderStore, clock: ManualClock) -> None:
    store.claim_customer(CID, "k", owner="order:1", lease_seconds=150)
    clock.now += 152
    assert isinstance(store.claim_customer(CID, "k", owner="order:2", lease_seconds=150), CustomerClaimed)


def test_the_order_lease_outlives_the_order_worker_and_sqs_redelivery_outlives_the_lease() -> None:
    """An expired claim must belong to a stopped worker (no live create can race the next attempt), and SQS must
    not hand a dead worker's message out before its claim expired (the retry would only find it busy)."""
    from pos_ecom_sync.orders.importer import LEASE_SECONDS

    from local_stack.cfn_yaml import load_template
    from local_stack.provision import TEMPLATE_PATH

    resources = load_template(TEMPLATE_PATH)["Resources"]
    function = resources["OrderImportFunction"]["Properties"]
    queue = resources[function["Events"]["OrderChanges"]["Properties"]["Queue"]["Fn::GetAtt"][0]]["Properties"]
    assert 2 * function["Timeout"] < LEASE_SECONDS
    assert queue["VisibilityTimeout"] > LEASE_SECONDS
    assert function["Environment"]["Variables"]["ORDER_EVENTS_BUS_NAME"] == "default"


def test_the_sale_id_is_recorded_with_the_claim_so_a_sale_leads_back_to_its_order_before_it_exists(
    store: OrderStore, clock: ManualClock
) -> None:
    claim = store.claim_order(CID, 7, source_id="ecom-7", lease_seconds=150, sale_id="sale-7")
    record = store.get_order(CID, 7)
    assert claim.sale_id == "sale-7" and record is not None and record.sale_id == "sale-7"
    assert store.order_for_sale(CID, "sale-7") == record  # before the POS has the sale
    clock.now += 152
    retry = store.claim_order(CID, 7, source_id="ecom-7", lease_seconds=150, sale_id="sale-7")
    assert retry.previous is not None and retry.previous.sale_id == "sale-7"  # the retry knows which sale to read
    done = _complete(store, retry, sale_id="sale-7")
    found = store.order_for_sale(CID, "sale-7")
    assert found is not None and found.status == "imported" and found.order_id == done.order_id == 7


def test_a_sale_this_sync_did_not_make_leads_to_no_order(store: OrderStore) -> None:
    assert store.order_for_sale(CID, "in-store-sale") is None


def test_completing_with_a_sale_id_the_pos_chose_records_that_sale_too(store: OrderStore) -> None:
    claim = store.claim_order(CID, 8, source_id="ecom-8", lease_seconds=150, sale_id="ours-8")
    _complete(store, claim, sale_id="theirs-8")
    found = store.order_for_sale(CID, "theirs-8")
    assert found is not None and found.order_id == 8 and found.sale_id == "theirs-8"


def test_the_ecom_payment_status_a_sale_is_built_from_is_kept_by_the_imported_record_and_an_adopting_retry(
    store: OrderStore, clock: ManualClock
) -> None:
    dead = store.claim_order(CID, 11, source_id="ecom-11", lease_seconds=150)
    store.note_payment_status(CID, dead, "paid")  # then the worker dies after creating the sale
    clock.now += 152
    retry = store.claim_order(CID, 11, source_id="ecom-11", lease_seconds=150)
    assert retry.previous is not None and retry.previous.ecom_payment_status == "paid"
    with pytest.raises(Conflict):  # only the claim that owns the order records what it builds from
        store.note_payment_status(CID, dead, "not_paid")
    _complete(store, retry)  # the retry adopts the sale: it reads no order and notes nothing
    stored = store.get_order(CID, 11)
    assert stored is not None and stored.status == "imported" and stored.ecom_payment_status == "paid"


def test_each_attempt_adds_its_correlation_id_and_a_failed_one_leaves_its_error_for_the_operator(
    store: OrderStore,
) -> None:
    first = store.claim_order(CID, 8, source_id="ecom-8", lease_seconds=150, correlation_id="webhook-1")
    store.release(CID, first, error="UpstreamUnavailable: xseries POST /sales answered 503")
    second = store.claim_order(CID, 8, source_id="ecom-8", lease_seconds=150, correlation_id="redrive-of-webhook-1")
    store.complete_order(
        CID, second, number="ORD8", sale_id="s8", customer_id=None, outlet_ids=("o1",), adopted=False, notify=False
    )

    record = store.get_order(CID, 8)
    assert record is not None and record.status == "imported" and record.imported_at is not None
    assert record.correlation_ids == ("webhook-1", "redrive-of-webhook-1")
    assert record.last_error == "UpstreamUnavailable: xseries POST /sales answered 503"  # kept after the success
    assert record.last_error_at is not None


# -- the customer email index and the folded claim -------------------------------------------------------------

MIRA, ANA = "k-mira", "k-ana"


def test_a_matched_customer_is_indexed_with_its_reverse_item_and_found_with_the_order_links(store: OrderStore) -> None:
    assert store.index_customer(CID, MIRA, customer_id="c-1")
    store.record_customer(CID, ANA, owner="order:2", customer_id="c-1")  # the same customer, another address

    assert store.indexed_keys(CID, ["c-1", "c-unknown"]) == {"c-1": frozenset({MIRA, ANA})}
    found = store.order_lookups(CID, [501, 502], MIRA)
    assert found.links == {} and found.customer is not None
    assert (found.customer.customer_id, found.customer.origin) == ("c-1", "matched")
    assert store.order_lookups(CID, [], "k-nobody").customer is None


def test_the_census_marks_and_progress_come_with_the_order_lookups_and_outlive_a_dropped_entry(
    store: OrderStore, clock: ManualClock
) -> None:
    assert store.customer_census(CID) is None and store.order_lookups(CID, [501], MIRA).census is None
    store.census_walked(CID, caught_up=False)  # begun, its first walk not at the end yet
    assert store.customer_census(CID) == CustomerCensus(caught_up_at=None)
    store.mark_emails_in_pos(CID, [f"k-{n}" for n in range(30)] + [MIRA])  # more than one batch write
    clock.now += 60
    store.census_walked(CID, caught_up=True)
    store.index_customer(CID, MIRA, customer_id="c-1")
    store.forget_customer(CID, MIRA, "c-1")  # the customer went; the mark stays (a stale mark costs a search)

    found = store.order_lookups(CID, [501], MIRA)
    assert found.email_in_pos and found.customer is None
    assert found.census == CustomerCensus(caught_up_at=int(clock.now))
    assert store.order_lookups(CID, [], "k-29").email_in_pos
    assert not store.order_lookups(CID, [], ANA).email_in_pos


def test_a_drop_removes_the_entry_only_while_it_still_names_that_customer(store: OrderStore) -> None:
    store.index_customer(CID, MIRA, customer_id="c-1")
    store.index_customer(CID, MIRA, customer_id="c-2")  # a later search matched another customer

    assert not store.forget_customer(CID, MIRA, "c-1")  # stale reverse item: the entry names c-2 now
    assert store.customer_entry(CID, MIRA) is not None
    assert store.indexed_keys(CID, ["c-1"]) == {}  # its key left c-1's reverse item all the same
    assert store.forget_customer(CID, MIRA, "c-2")
    assert store.customer_entry(CID, MIRA) is None


def test_a_match_never_overwrites_a_live_creating_lock(store: OrderStore, clock: ManualClock) -> None:
    assert isinstance(store.claim_customer(CID, MIRA, owner="order:1", lease_seconds=150), CustomerClaimed)
    assert not store.index_customer(CID, MIRA, customer_id="c-9")
    assert isinstance(store.claim_customer(CID, MIRA, owner="order:2", lease_seconds=150), CustomerBusy)
    clock.now += 152  # the creator died: its lock may be replaced
    assert store.index_customer(CID, MIRA, customer_id="c-9")


def test_a_matched_entry_whose_customer_the_search_no_longer_finds_may_be_created_again(store: OrderStore) -> None:
    """A customer we created is trusted over a lagging search for an hour; one the search once matched is not."""
    store.record_customer(CID, ANA, owner="order:1", customer_id="c-ana")
    assert store.claim_customer(CID, ANA, owner="order:2", lease_seconds=150) == CustomerKnown("c-ana")
    store.index_customer(CID, MIRA, customer_id="c-mira")
    assert isinstance(store.claim_customer(CID, MIRA, owner="order:3", lease_seconds=150), CustomerClaimed)


def test_a_new_orders_intent_reverse_item_and_payment_status_are_written_at_once(store: OrderStore) -> None:
    claim = store.claim_order(
        CID, 7, source_id="ecom-7", lease_seconds=150, sale_id="sale-7", expect_new=True, payment_status="not_paid"
    )
    assert claim.previous is None and claim.payment_status == "not_paid"
    record = store.get_order(CID, 7)
    assert record is not None and record.ecom_payment_status == "not_paid" and record.sale_id == "sale-7"
    assert store.order_for_sale(CID, "sale-7") == record
    with pytest.raises(OrderBusy):  # a second worker that also read no ledger item
        store.claim_order(CID, 7, source_id="ecom-7", lease_seconds=150, sale_id="sale-7", expect_new=True)


def test_expect_new_on_an_order_written_meanwhile_takes_the_general_claim(
    store: OrderStore, clock: ManualClock
) -> None:
    first = store.claim_order(CID, 8, source_id="ecom-8", lease_seconds=150, sale_id="sale-8")
    store.release(CID, first)
    clock.now += 1

    again = store.claim_order(CID, 8, source_id="ecom-8", lease_seconds=150, sale_id="sale-8", expect_new=True)

    assert again.previous is not None and again.may_have_created_a_sale
    found = store.order_for_sale(CID, "sale-8")
    assert found is not None and found.order_id == 8
