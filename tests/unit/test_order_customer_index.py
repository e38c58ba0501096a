"""The customer email index's rules (`orders.customers`): when an indexed customer may be used with no search, and
which entries a change of that customer in the POS drops; when the customer census spares a new email its search."""

from __future__ import annotations

from pos_ecom_sync.models.ledger import CustomerCensus, CustomerChange, IndexedCustomer
from pos_ecom_sync.orders.customers import (
    CENSUS_FRESH_SECONDS,
    INDEX_REUSE_SECONDS,
    email_key,
    must_search,
    present_email_keys,
    reusable,
    stale_index_keys,
)

MIRA = email_key("mira.okafor@example.com")
WORK = email_key("mira@work.example")


def test_an_entry_is_used_with_no_search_until_its_reuse_window_ends() -> None:
    entry = IndexedCustomer(customer_id="c-1", origin="matched", recorded_at=1_000)
    assert reusable(entry, 1_000 + INDEX_REUSE_SECONDS) == "c-1"
    assert reusable(entry, 1_000 + INDEX_REUSE_SECONDS + 1) is None  # searched again, and recorded afresh
    assert reusable(None, 1_000) is None


def test_a_customer_deleted_archived_or_merged_away_drops_every_entry() -> None:
    gone = CustomerChange("c-1", ("mira.okafor@example.com",), gone=True)
    assert stale_index_keys(gone, {MIRA, WORK}) == {MIRA, WORK}


def test_a_changed_email_drops_only_the_keys_the_customer_no_longer_holds() -> None:
    moved = CustomerChange("c-1", (" Mira@Work.Example ",))  # compared as the index keys them: trimmed, any case
    assert stale_index_keys(moved, {MIRA, WORK}) == {MIRA}
    assert stale_index_keys(CustomerChange("c-1", ()), {MIRA}) == {MIRA}  # no address left


def test_a_change_that_keeps_the_indexed_address_drops_nothing() -> None:
    renamed = CustomerChange("c-1", ("MIRA.OKAFOR@example.com", "mira@work.example"))
    assert stale_index_keys(renamed, {MIRA, WORK}) == frozenset()
    assert stale_index_keys(renamed, ()) == frozenset()  # not indexed: nothing to drop


def test_a_new_email_is_searched_unless_a_fresh_census_shows_no_pos_customer_holds_it() -> None:
    now = 10_000
    fresh = CustomerCensus(caught_up_at=now - CENSUS_FRESH_SECONDS)
    assert not must_search(False, fresh, now)
    assert must_search(True, fresh, now)  # some POS customer holds it: search and match
    assert must_search(False, CustomerCensus(caught_up_at=now - CENSUS_FRESH_SECONDS - 1), now)  # stale
    assert must_search(False, CustomerCensus(caught_up_at=None), now)  # its first walk is not at the end yet
    assert must_search(False, None, now)  # never begun


def test_the_census_marks_every_address_of_live_customers_only() -> None:
    changes = [
        CustomerChange("c-1", ("A@Example.com ", "b@example.com")),
        CustomerChange("c-2", ("gone@example.com",), gone=True),
        CustomerChange("c-3", ("  ",)),
    ]
    assert present_email_keys(changes) == {email_key("a@example.com"), email_key("b@example.com")}
