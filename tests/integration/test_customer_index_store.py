"""The order ledger's customer email index and the import's folded ledger writes, against moto: an entry and its
reverse item move together, a drop only removes the entry that still names the customer, a live creating lock is
never overwritten by a match, and a new order's intent, reverse item and payment status are one write."""

from __future__ import annotations

import boto3
import pytest
from pos_ecom_sync.errors import OrderBusy
from pos_ecom_sync.models.ledger import CustomerBusy, CustomerClaimed, CustomerKnown
from pos_ecom_sync.state.order_store import OrderStore

from tests.integration.test_order_store import CID, Clock

MIRA, ANA = "k-mira", "k-ana"


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(sync_table: str, clock: Clock) -> OrderStore:
    return OrderStore(sync_table, client=boto3.client("dynamodb", region_name="us-east-1"), clock=clock)


def test_a_matched_customer_is_indexed_with_its_reverse_item_and_found_with_the_order_links(store: OrderStore) -> None:
    assert store.index_customer(CID, MIRA, customer_id="c-1")
    store.record_customer(CID, ANA, owner="order:2", customer_id="c-1")  # the same customer, another address

    assert store.indexed_keys(CID, ["c-1", "c-unknown"]) == {"c-1": frozenset({MIRA, ANA})}
    found = store.order_lookups(CID, [501, 502], MIRA)
    assert found.links == {} and found.customer is not None
    assert (found.customer.customer_id, found.customer.origin) == ("c-1", "matched")
    assert store.order_lookups(CID, [], "k-nobody").customer is None


def test_a_drop_removes_the_entry_only_while_it_still_names_that_customer(store: OrderStore) -> None:
    store.index_customer(CID, MIRA, customer_id="c-1")
    store.index_customer(CID, MIRA, customer_id="c-2")  # a later search matched another customer

    assert not store.forget_customer(CID, MIRA, "c-1")  # stale reverse item: the entry names c-2 now
    assert store.customer_entry(CID, MIRA) is not None
    assert store.indexed_keys(CID, ["c-1"]) == {}  # its key left c-1's reverse item all the same
    assert store.forget_customer(CID, MIRA, "c-2")
    assert store.customer_entry(CID, MIRA) is None


def test_a_match_never_overwrites_a_live_creating_lock(store: OrderStore, clock: Clock) -> None:
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


def test_expect_new_on_an_order_written_meanwhile_takes_the_general_claim(store: OrderStore, clock: Clock) -> None:
    first = store.claim_order(CID, 8, source_id="ecom-8", lease_seconds=150, sale_id="sale-8")
    store.release(CID, first)
    clock.now += 1

    again = store.claim_order(CID, 8, source_id="ecom-8", lease_seconds=150, sale_id="sale-8", expect_new=True)

    assert again.previous is not None and again.may_have_created_a_sale
    found = store.order_for_sale(CID, "sale-8")
    assert found is not None and found.order_id == 8
