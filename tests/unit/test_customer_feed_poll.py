"""The poller's walk of the POS customer feed: it queues nothing, drops the customer email index's entries of the
customers the POS changed, keeps the customer census (marks of the emails live customers hold, and when the walk
last reached the feed's end), moves its own cursor after each page, costs one POS request when nothing changed, and
reads at most `CUSTOMER_FEED_MAX_PAGES` pages a poll."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from pos_ecom_sync.intake.poller import CUSTOMER_FEED_MAX_PAGES, ChangePoller
from pos_ecom_sync.models.ledger import CustomerCensus
from pos_ecom_sync.orders.customers import email_key
from pos_ecom_sync.profiles.xseries.customers import CUSTOMER_FEED
from pos_ecom_sync.profiles.xseries.feeds import XSeriesFeeds

from tests.unit.test_change_poller import CONNECTION, NOW, Cursors, Feeds, Publisher

MIRA, ANA, TAMA = "mira.okafor@example.com", "ana.silva@example.com", "tama.ngata@example.com"


def _customer(customer_id: str, version: int, email: str | None, deleted: bool = False) -> dict[str, Any]:
    return {
        "id": customer_id,
        "email": email,
        "version": version,
        "deleted_at": "2026-11-22T08:59:00+00:00" if deleted else None,
    }


@dataclass
class Index:
    """The customer email index: email key -> customer, and its reverse items; and the customer census."""

    entries: dict[str, str] = field(default_factory=dict)
    reads: int = 0
    marks: set[str] = field(default_factory=set)
    census: CustomerCensus | None = None
    census_writes: int = 0
    now: int = 1_000

    def customer_census(self, connection_id: str) -> CustomerCensus | None:
        return self.census

    def mark_emails_in_pos(self, connection_id: str, email_keys: Collection[str]) -> None:
        self.marks |= set(email_keys)

    def census_walked(self, connection_id: str, *, caught_up: bool) -> None:
        self.census_writes += 1
        caught_up_at = self.now if caught_up else (self.census.caught_up_at if self.census else None)
        self.census = CustomerCensus(caught_up_at)

    def indexed_keys(self, connection_id: str, customer_ids: Collection[str]) -> dict[str, frozenset[str]]:
        self.reads += 1
        found: dict[str, set[str]] = {}
        for key, customer in self.entries.items():
            if customer in customer_ids:
                found.setdefault(customer, set()).add(key)
        return {customer: frozenset(keys) for customer, keys in found.items()}

    def forget_customer(self, connection_id: str, key: str, customer_id: str) -> bool:
        if self.entries.get(key) != customer_id:
            return False
        del self.entries[key]
        return True


class CountingFeeds(Feeds):
    requests: int = 0

    def list_changes(self, resource: str, after: int | None, page_size: int = 200, include_deleted: bool = True) -> Any:
        self.requests += resource == "customers"
        return super().list_changes(resource, after, page_size, include_deleted)


def _poll(feeds: CountingFeeds, index: Index, cursors: Cursors, page_size: int = 200) -> Any:
    poller = ChangePoller(cursors, Publisher(), page_size=page_size, clock=lambda: NOW, customers=index)
    report = poller.poll(CONNECTION, XSeriesFeeds(feeds), feeds)
    return next(f for f in report.feeds if f.feed == CUSTOMER_FEED)


def test_deleted_merged_away_and_re_addressed_customers_lose_their_entries_and_others_keep_theirs() -> None:
    index = Index({email_key(MIRA): "c-mira", email_key(ANA): "c-ana", email_key(TAMA): "c-tama"})
    rows = [
        _customer("c-mira", 10, MIRA, deleted=True),  # deleted, or merged away ("Merge and delete customer")
        _customer("c-ana", 11, "ana@new.example"),  # her email was changed in the POS
        _customer("c-tama", 12, "TAMA.Ngata@example.com"),  # another edit: the address still keys the same
        _customer("c-other", 13, "someone@example.com"),  # not indexed: nothing to drop
    ]
    feeds, cursors = CountingFeeds({"customers": rows}), Cursors()

    report = _poll(feeds, index, cursors)

    assert index.entries == {email_key(TAMA): "c-tama"}
    assert (report.dropped, report.rows, report.cursor, report.queued) == (2, 4, "13", 0)
    assert cursors.values[CUSTOMER_FEED] == "13"


def test_a_poll_with_no_customer_change_costs_one_pos_request_and_no_index_read() -> None:
    index = Index({email_key(MIRA): "c-mira"})
    feeds, cursors = CountingFeeds({"customers": [_customer("c-mira", 10, MIRA)]}), Cursors()
    _poll(feeds, index, cursors)
    feeds.requests, index.reads = 0, 0

    report = _poll(feeds, index, cursors)

    assert (feeds.requests, index.reads, report.pages, report.cursor) == (1, 0, 0, "10")
    assert index.entries == {email_key(MIRA): "c-mira"}


def test_a_long_customer_list_is_walked_a_few_pages_a_poll_from_its_cursor() -> None:
    rows = [_customer(f"c-{n}", n + 1, f"buyer{n}@example.com") for n in range(2 * CUSTOMER_FEED_MAX_PAGES * 2 + 1)]
    index = Index({email_key("buyer20@example.com"): "c-20"})
    feeds, cursors = CountingFeeds({"customers": rows}), Cursors()

    first = _poll(feeds, index, cursors, page_size=2)
    assert first.pages == CUSTOMER_FEED_MAX_PAGES and first.stopped and first.lag_s == 0
    assert first.cursor == str(2 * CUSTOMER_FEED_MAX_PAGES)
    rows[20]["deleted_at"], rows[20]["version"] = "2026-11-22T09:00:00+00:00", 999  # deleted meanwhile
    rows.append(rows.pop(20))

    second = _poll(feeds, index, cursors, page_size=2)
    third = _poll(feeds, index, cursors, page_size=2)
    assert (second.pages, third.pages) == (CUSTOMER_FEED_MAX_PAGES, 1)
    assert third.cursor == "999" and not third.stopped
    assert index.entries == {}  # its deletion reached the index once the walk got there


def test_without_a_customer_index_the_customer_feed_is_not_read() -> None:
    feeds = CountingFeeds({"customers": [_customer("c-mira", 10, MIRA)]})
    report = ChangePoller(Cursors(), Publisher(), clock=lambda: NOW).poll(CONNECTION, XSeriesFeeds(feeds), feeds)
    assert feeds.requests == 0 and all(f.feed != CUSTOMER_FEED for f in report.feeds)


def test_the_census_marks_every_email_a_live_customer_holds_and_when_the_walk_reached_the_end() -> None:
    rows = [
        _customer("c-mira", 10, " Mira.Okafor@Example.com "),
        _customer("c-ana", 11, ANA, deleted=True),  # gone: her email is not marked by her
        _customer("c-none", 12, None),
    ]
    index, feeds, cursors = Index(), CountingFeeds({"customers": rows}), Cursors()

    _poll(feeds, index, cursors)

    assert index.marks == {email_key(MIRA)}
    assert index.census == CustomerCensus(caught_up_at=1_000)
    index.now = 1_060
    _poll(feeds, index, cursors)  # nothing changed: the walk is at the end again
    assert index.census == CustomerCensus(caught_up_at=1_060)


def test_a_census_walk_stopped_by_the_page_cap_is_not_caught_up_until_a_later_poll_reaches_the_end() -> None:
    rows = [_customer(f"c-{n}", n + 1, f"buyer{n}@example.com") for n in range(2 * CUSTOMER_FEED_MAX_PAGES + 1)]
    index, feeds, cursors = Index(), CountingFeeds({"customers": rows}), Cursors()

    first = _poll(feeds, index, cursors, page_size=2)
    assert first.stopped and index.census == CustomerCensus(caught_up_at=None)
    assert index.census_writes == 1  # begun, once: not a write per page
    assert len(index.marks) == 2 * CUSTOMER_FEED_MAX_PAGES

    index.now = 1_060
    second = _poll(feeds, index, cursors, page_size=2)
    assert not second.stopped and index.census == CustomerCensus(caught_up_at=1_060)
    assert index.marks == {email_key(f"buyer{n}@example.com") for n in range(len(rows))}


def test_a_customer_feed_walked_before_the_census_existed_is_walked_again_from_its_beginning_once() -> None:
    rows = [_customer("c-mira", 10, MIRA), _customer("c-tama", 12, TAMA)]
    index, feeds, cursors = Index(), CountingFeeds({"customers": rows}), Cursors()
    cursors.values[CUSTOMER_FEED] = "12"  # an older deployment's walk: past every customer, nothing marked

    report = _poll(feeds, index, cursors)

    assert index.marks == {email_key(MIRA), email_key(TAMA)} and report.cursor == "12"
    assert index.census == CustomerCensus(caught_up_at=1_000)
    feeds.requests = 0
    _poll(feeds, index, cursors)
    assert feeds.requests == 1  # from its cursor now: nothing changed
