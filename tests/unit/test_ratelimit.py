"""Rate budget: window arithmetic, header learning, waiting vs RateLimited, and sharing between threads."""

from __future__ import annotations

import contextlib
import math
import threading
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pos_ecom_sync.errors import RateLimited
from pos_ecom_sync.ratelimit import (
    DEFAULT_MARGIN_S,
    ECOM_POLICY,
    XSERIES_POLICY,
    BucketReading,
    BucketSpec,
    BucketState,
    BudgetState,
    InMemoryRateBudget,
    Observation,
    RatePolicy,
    WindowReading,
    WindowSpec,
    WindowState,
    aged,
    ecom_observation,
    initial_state,
    parse_retry_after,
    reconcile,
    rseries_observation,
    rseries_policy,
    rseries_request_cost,
    take,
    tightens,
    xseries_observation,
)

from tests.support import ManualClock

T0 = 1_750_000_000.0
SMALL = RatePolicy("xseries", (WindowSpec("5min", 3, 300.0),))


def _state(*windows: WindowState, blocked_until: float = 0.0) -> BudgetState:
    return BudgetState(windows, blocked_until)


# -- take ---------------------------------------------------------------------------------------------


def test_first_slot_starts_the_window_at_first_use_plus_length_and_margin() -> None:
    outcome = take(XSERIES_POLICY, initial_state(XSERIES_POLICY), T0)
    assert outcome.state == _state(WindowState(350, 1, T0 + 300 + DEFAULT_MARGIN_S))


def test_a_full_window_refuses_until_its_end() -> None:
    full = _state(WindowState(3, 3, T0 + 100))
    outcome = take(SMALL, full, T0)
    assert not outcome.granted
    assert outcome.retry_at == T0 + 100


def test_an_expired_window_starts_again_from_zero() -> None:
    expired = _state(WindowState(3, 3, T0 - 1))
    outcome = take(SMALL, expired, T0)
    assert outcome.state is not None
    assert outcome.state.windows[0].used == 1
    assert outcome.state.windows[0].end > T0


def test_the_safety_reserve_keeps_slots_back() -> None:
    state = _state(WindowState(10, 8, T0 + 300))  # the whole window still to run
    assert not take(SMALL, state, T0, reserve_share=0.2).granted
    assert take(SMALL, state, T0, reserve_share=0.1).granted


def test_the_reserve_shrinks_with_the_time_the_window_has_left_so_no_slot_is_left_idle() -> None:
    """A 30% reserve of 100 slots: 30 held back with the whole window to run, 15 at half-time, 2 in its last step
    (1/24 of the window); live callers (no reserve) can always take what is left."""
    policy = RatePolicy("ecom", (WindowSpec("day", 100, 1_000.0),))

    def granted_at(used: int, left_s: float) -> bool:
        return take(policy, _state(WindowState(100, used, T0 + left_s)), T0, reserve_share=0.3).granted

    assert granted_at(69, 1_000.0) and not granted_at(70, 1_000.0)
    assert granted_at(84, 500.0) and not granted_at(85, 500.0)
    assert granted_at(97, 10.0) and not granted_at(98, 10.0)
    assert take(policy, _state(WindowState(100, 99, T0 + 10.0)), T0).granted
    # Refused for now, a reserve-holding caller learns when the shrinking reserve lets it in, not the window's end.
    retry_at = take(policy, _state(WindowState(100, 85, T0 + 500.0)), T0, reserve_share=0.3).retry_at
    assert retry_at is not None and T0 < retry_at < T0 + 500.0
    assert take(policy, _state(WindowState(100, 85, T0 + 500.0)), retry_at, reserve_share=0.3).granted


def test_a_reserve_larger_than_the_limit_still_lets_one_call_through() -> None:
    assert take(SMALL, initial_state(SMALL), T0, reserve_share=0.99).granted


def test_a_throttle_blocks_every_window_until_retry_after() -> None:
    blocked = _state(WindowState(3, 0, 0.0), blocked_until=T0 + 7)
    assert take(SMALL, blocked, T0).retry_at == T0 + 7
    assert take(SMALL, blocked, T0 + 7).granted


def test_ecom_needs_room_in_every_window_and_waits_for_the_one_that_is_full() -> None:
    state = initial_state(ECOM_POLICY)
    hour_full = BudgetState(
        (WindowState(300, 5, T0 + 200), WindowState(3000, 3000, T0 + 1800), *state.windows[2:]), 0.0
    )
    outcome = take(ECOM_POLICY, hour_full, T0)
    assert outcome.retry_at == T0 + 1800


def test_ecom_paces_at_20_calls_a_second() -> None:
    state = initial_state(ECOM_POLICY)
    for _ in range(20):
        outcome = take(ECOM_POLICY, state, T0)
        assert outcome.state is not None
        state = outcome.state
    refused = take(ECOM_POLICY, state, T0)
    assert refused.retry_at is not None and T0 + 1 <= refused.retry_at < T0 + 1.5


# -- reconcile ----------------------------------------------------------------------------------------


def _learn(state: BudgetState, *readings: WindowReading, policy: RatePolicy = SMALL, now: float = T0) -> BudgetState:
    return reconcile(policy, state, Observation(windows=readings), now)


def test_reconcile_never_undercounts_our_own_calls() -> None:
    ours = _state(WindowState(10, 6, T0 + 100))
    assert _learn(ours, WindowReading(limit=10, remaining=8)).windows[0].used == 6


def test_reconcile_raises_our_count_to_what_the_vendor_counted() -> None:
    ours = _state(WindowState(10, 2, T0 + 100))
    assert _learn(ours, WindowReading(limit=10, remaining=3)).windows[0].used == 7


def test_reconcile_learns_the_limit_from_the_header() -> None:
    ours = _state(WindowState(350, 1, T0 + 100))
    assert _learn(ours, WindowReading(limit=650, remaining=640)).windows[0].limit == 650


def test_reconcile_moves_a_guessed_window_end_to_the_vendors_reset() -> None:
    guessed = _state(WindowState(350, 1, T0 + 300 + DEFAULT_MARGIN_S))
    learned = _learn(guessed, WindowReading(limit=30, remaining=29, reset_at=T0 + 5))
    assert learned.windows[0] == WindowState(30, 1, T0 + 5 + DEFAULT_MARGIN_S)


def test_reconcile_keeps_our_end_when_the_vendors_differs_only_by_rounding() -> None:
    ours = _state(WindowState(30, 4, T0 + 5.2 + DEFAULT_MARGIN_S))
    learned = _learn(ours, WindowReading(limit=30, remaining=26, reset_at=T0 + 5))
    assert learned.windows[0].end == T0 + 5.2 + DEFAULT_MARGIN_S


def test_a_response_from_the_vendors_next_window_replaces_our_old_count() -> None:
    # The vendor rolled before us (our end carries a margin): its fresh count wins over our full old one.
    ours = _state(WindowState(30, 30, T0 + 0.5))
    learned = _learn(ours, WindowReading(limit=30, remaining=28, reset_at=T0 + 5))
    assert learned.windows[0] == WindowState(30, 2, T0 + 5 + DEFAULT_MARGIN_S)


def test_a_late_response_about_a_window_already_over_changes_no_count() -> None:
    ours = _state(WindowState(30, 3, T0 + 6))
    late = _learn(ours, WindowReading(limit=30, remaining=0, reset_at=T0 - 10))
    assert late.windows[0] == WindowState(30, 3, T0 + 6)


def test_without_a_reset_header_the_vendors_count_applies_to_our_current_window() -> None:
    ours = _state(WindowState(350, 2, T0 + 100))
    assert _learn(ours, WindowReading(limit=350, remaining=300)).windows[0] == WindowState(350, 50, T0 + 100)
    idle = initial_state(SMALL)
    started = _learn(idle, WindowReading(limit=3, remaining=1)).windows[0]
    assert started.used == 2 and started.end == T0 + 300 + DEFAULT_MARGIN_S


def test_absent_headers_teach_nothing() -> None:
    ours = _state(WindowState(3, 2, T0 + 100))
    assert reconcile(SMALL, ours, Observation(), T0) == ours


def test_a_429_blocks_until_retry_after() -> None:
    blocked = reconcile(SMALL, initial_state(SMALL), Observation(throttled=True, retry_at=T0 + 42), T0)
    assert blocked.blocked_until == T0 + 42


def test_a_429_without_retry_after_blocks_for_the_fallback_pause() -> None:
    blocked = reconcile(SMALL, initial_state(SMALL), Observation(throttled=True), T0)
    assert blocked.blocked_until == T0 + SMALL.fallback_retry_s


def test_ecom_triples_map_onto_the_windows_in_order_and_the_pacing_window_is_left_alone() -> None:
    headers = {
        "X-RateLimit-Limit": "300/3000/12000",
        "X-RateLimit-Remaining": "290/2900/11000",
        "X-RateLimit-Reset": "120/1800/40000",
    }
    from httpx import Headers

    learned = reconcile(
        ECOM_POLICY,
        take(ECOM_POLICY, initial_state(ECOM_POLICY), T0).state or initial_state(ECOM_POLICY),
        ecom_observation(Headers(headers), 200, T0),
        T0,
    )
    assert [w.used for w in learned.windows] == [10, 100, 1000, 1]
    assert learned.windows[0].end == T0 + 120 + DEFAULT_MARGIN_S
    assert learned.windows[2].end == T0 + 40000 + DEFAULT_MARGIN_S


# -- headers ------------------------------------------------------------------------------------------


def test_retry_after_is_read_as_an_http_date_or_as_seconds() -> None:
    assert parse_retry_after("Wed, 15 Jul 2020 15:04:05 GMT", 0.0) == 1594825445.0
    assert parse_retry_after("30", T0) == T0 + 30
    assert parse_retry_after("not a date", T0) is None
    assert parse_retry_after(None, T0) is None


def test_xseries_headers_become_one_reading_and_a_429_carries_its_retry_date() -> None:
    from httpx import Headers

    headers = Headers(
        {
            "X-RateLimit-Limit": "350",
            "X-RateLimit-Remaining": "12",
            "X-RateLimit-Reset": str(int(T0) + 60),
            "Retry-After": "Wed, 15 Jul 2020 15:04:05 GMT",
        }
    )
    observation = xseries_observation(headers, 429, T0)
    assert observation.windows == (WindowReading(350, 12, int(T0) + 60),)
    assert observation.throttled and observation.retry_at == 1594825445.0
    assert xseries_observation(Headers({}), 200, T0) == Observation()


def test_malformed_rate_headers_are_ignored_not_fatal() -> None:
    from httpx import Headers

    observation = ecom_observation(Headers({"X-RateLimit-Limit": "abc/3000", "X-RateLimit-Remaining": "1/x/"}), 200, T0)
    assert observation.windows[0] == WindowReading(None, 1, None)
    assert observation.windows[1] == WindowReading(3000, None, None)


# -- the in-memory budget -----------------------------------------------------------------------------


def test_acquire_sleeps_when_the_wait_fits_max_wait() -> None:
    clock = ManualClock(T0)
    budget = InMemoryRateBudget(clock=clock, sleep=clock.sleep)
    budget.observe(SMALL, Observation(throttled=True, retry_at=T0 + 1.5))
    budget.acquire(SMALL, max_wait_s=2.0)
    assert clock.slept == [1.5]
    assert budget.granted == 1


def test_acquire_raises_rate_limited_with_the_retry_time_when_the_wait_is_too_long() -> None:
    clock = ManualClock(T0)
    budget = InMemoryRateBudget(clock=clock, sleep=clock.sleep)
    for _ in range(3):
        budget.acquire(SMALL, max_wait_s=0)
    with pytest.raises(RateLimited) as raised:
        budget.acquire(SMALL, max_wait_s=2.0)
    assert raised.value.api == "xseries"
    assert raised.value.retry_at == T0 + 300 + DEFAULT_MARGIN_S
    assert clock.slept == []  # it did not wait for a slot it could not get in time


def test_one_budget_keeps_apis_apart() -> None:
    budget = InMemoryRateBudget(clock=ManualClock(T0))
    budget.acquire(XSERIES_POLICY, max_wait_s=0)
    assert budget.state(XSERIES_POLICY).windows[0].used == 1
    assert budget.state(ECOM_POLICY).windows[0].used == 0


def test_threads_sharing_one_budget_never_take_more_than_the_limit() -> None:
    policy = RatePolicy("xseries", (WindowSpec("5min", 100, 300.0),))
    budget = InMemoryRateBudget(clock=ManualClock(T0))
    granted: list[int] = []
    lock = threading.Lock()

    def hammer() -> None:
        mine = 0
        for _ in range(50):
            try:
                budget.acquire(policy, max_wait_s=0)
                mine += 1
            except RateLimited:
                pass
        with lock:
            granted.append(mine)

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(granted) == 100 == budget.granted


# -- property: a budget fed by the vendor's headers never gets a 429 once it has learned ------------------


@dataclass
class VendorWindow:
    """The simulators' fixed window: starts at the first request after the previous one ended."""

    limit: int
    length: float
    start: float | None = None
    count: int = 0
    refused: int = 0
    served: list[float] = field(default_factory=list)

    def call(self, now: float, round_reset: str) -> tuple[int, dict[str, str]]:
        if self.start is None or now >= self.start + self.length:
            self.start, self.count = now, 0
        end = self.start + self.length
        reset = {"floor": math.floor, "ceil": math.ceil, "exact": float}[round_reset](end)
        if self.count >= self.limit:
            self.refused += 1
            return 429, {"Retry-After": "1", "X-RateLimit-Limit": str(self.limit), "X-RateLimit-Remaining": "0"}
        self.count += 1
        self.served.append(now)
        headers = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.limit - self.count),
            "X-RateLimit-Reset": str(reset),
        }
        return 200, headers


@settings(max_examples=60, deadline=None)
@given(
    limit=st.integers(min_value=2, max_value=15),
    length=st.sampled_from([3.0, 5.0, 10.0]),
    gaps=st.lists(st.floats(min_value=0.0, max_value=1.5), min_size=20, max_size=200),
    latency=st.floats(min_value=0.0, max_value=0.3),
    round_reset=st.sampled_from(["floor", "ceil", "exact"]),
)
def test_a_budget_fed_by_headers_gets_no_429_after_the_first_response(
    limit: int, length: float, gaps: list[float], latency: float, round_reset: str
) -> None:
    from httpx import Headers

    clock = ManualClock(T0)
    budget = InMemoryRateBudget(clock=clock, sleep=clock.sleep)
    vendor = VendorWindow(limit, length)
    for gap in gaps:
        clock.now += gap
        try:
            budget.acquire(XSERIES_POLICY, max_wait_s=length + 5)
        except RateLimited:
            continue
        clock.now += latency  # the request reaches the vendor a little after the slot was taken
        status, headers = vendor.call(clock.now, round_reset)
        budget.observe(XSERIES_POLICY, xseries_observation(Headers(headers), status, clock.now))
    assert vendor.refused == 0


@settings(max_examples=150, deadline=None)
@given(
    limit=st.integers(min_value=4, max_value=15),
    length=st.sampled_from([3.0, 5.0]),
    steps=st.lists(
        st.tuples(st.floats(min_value=0.0, max_value=1.0), st.integers(min_value=1, max_value=3), st.randoms()),
        min_size=20,
        max_size=150,
    ),
    round_reset=st.sampled_from(["floor", "ceil", "exact"]),
)
def test_concurrent_callers_sharing_a_budget_get_no_429_after_learning(
    limit: int, length: float, steps: list[tuple[float, int, object]], round_reset: str
) -> None:
    """Several calls in flight at once, answered in any order, as two clients sharing one budget are."""
    import random

    from httpx import Headers

    clock = ManualClock(T0)
    budget = InMemoryRateBudget(clock=clock, sleep=clock.sleep)
    vendor = VendorWindow(limit, length)
    for gap, in_flight, rng in steps:
        assert isinstance(rng, random.Random)
        clock.now += gap
        taken = 0
        for _ in range(in_flight):
            try:
                budget.acquire(XSERIES_POLICY, max_wait_s=0)
                taken += 1
            except RateLimited:
                break
        answers = []
        for _ in range(taken):
            clock.now += rng.uniform(0, 0.2)
            answers.append(vendor.call(clock.now, round_reset))
        rng.shuffle(answers)
        for status, headers in answers:
            budget.observe(XSERIES_POLICY, xseries_observation(Headers(headers), status, clock.now))
    assert vendor.refused == 0


# == R-Series: a leaky bucket with per-request costs, plus a 1 s burst window ===============================

RSERIES = rseries_policy(1)
# The bucket alone (no burst window), for tests about the bucket's arithmetic.
BUCKET_ONLY = RatePolicy("rseries", (), bucket=BucketSpec(size=90.0, drip_rate=1.0))
USABLE = 90.0 - BUCKET_ONLY.bucket.headroom if BUCKET_ONLY.bucket else 0.0


def _bucket(level: float, at: float = T0, size: float = 90.0, drip_rate: float = 1.0) -> BudgetState:
    return BudgetState((), bucket=BucketState(level, at, size, drip_rate))


def _level(state: BudgetState | None, now: float) -> float:
    assert state is not None and state.bucket is not None
    return state.bucket.level_at(now)


def test_the_rseries_policy_grows_with_the_subscriptions_registers() -> None:
    """KVH rate-limiting.md: 90 drips + 10 per register beyond the first, 1 drip/s + 0.5/s per further register."""
    assert (RSERIES.bucket.size, RSERIES.bucket.drip_rate) == (90.0, 1.0) if RSERIES.bucket else False
    three = rseries_policy(3).bucket
    assert three is not None and (three.size, three.drip_rate) == (110.0, 2.0)
    assert rseries_policy(0) == rseries_policy(1)  # a record without registers still has the base allowance
    assert [(w.name, w.length_s) for w in RSERIES.windows] == [("burst", 1.0)]
    assert XSERIES_POLICY.bucket is None and ECOM_POLICY.bucket is None
    assert initial_state(XSERIES_POLICY).bucket is None


# -- request costs --------------------------------------------------------------------------------------------


def test_reads_cost_one_drip_and_count_queries_ten() -> None:
    assert rseries_request_cost("GET", "/Item/5.json") == 1.0
    assert rseries_request_cost("GET", "/API/V3/Account/83050/Item.json", params={"limit": 100}) == 1.0
    assert rseries_request_cost("GET", "/Item.json?count=1") == 10.0
    assert rseries_request_cost("get", "/Sale.json", params={"count": "1"}) == 10.0


def test_sale_writes_cost_two_and_completing_one_three_more_plus_half_a_drip_per_sale_line() -> None:
    lines = {"SaleLines": {"SaleLine": [{"itemID": "7", "unitQuantity": "1"}, {"itemID": "8", "unitQuantity": "2"}]}}
    assert rseries_request_cost("POST", "/API/V3/Account/1/Sale.json", {"shopID": "1"}) == 2.0
    assert rseries_request_cost("POST", "/Sale.json", {"completed": "true", **lines}) == 2 + 3 + 2 * 0.5
    assert rseries_request_cost("PUT", "/Sale/44.json", {"completed": True}) == 5.0
    assert rseries_request_cost("PUT", "/Sale/44.json", {"completed": "false"}) == 2.0
    assert rseries_request_cost("DELETE", "/Sale/44.json") == 2.0
    assert rseries_request_cost("POST", "/Sale/44/refund.json", {}) == 10.0
    assert rseries_request_cost("POST", "/Sale/44/EmailReceipt.json", {}) == 5.0
    assert rseries_request_cost("PUT", "/SaleLine/9.json", {"unitQuantity": "3"}) == 2.0


def test_category_writes_cost_ten_drips_and_reading_them_one() -> None:
    for method in ("POST", "PUT", "DELETE"):
        assert rseries_request_cost(method, "/Category/3.json", {"name": "Shoes"}) == 10.0
    assert rseries_request_cost("GET", "/Category.json") == 1.0


def test_nested_entities_cost_half_a_drip_each_but_their_wrappers_nothing() -> None:
    # relations.md: a customer with a phone and an email (Contact holds only relations: a wrapper).
    customer = {
        "firstName": "Jane",
        "Contact": {
            "Phones": {"ContactPhone": {"number": "360 555 2453", "useType": "Home"}},
            "Emails": {"ContactEmail": {"address": "jane@example.com", "useType": "Primary"}},
        },
    }
    assert rseries_request_cost("POST", "/Customer.json", customer) == 2.0
    prices = {"Prices": {"ItemPrice": [{"amount": "9.99", "useTypeID": "1"}, {"amount": "8.99", "useTypeID": "5"}]}}
    assert rseries_request_cost("PUT", "/Item/5.json", prices) == 2.0
    assert rseries_request_cost("GET", "/Item/5.json", prices) == 1.0  # only POST/PUT payloads are charged


def test_loaded_relations_offsets_and_or_queries_add_their_surcharges() -> None:
    relations = {"load_relations": '["ItemShops","Images"]'}
    assert rseries_request_cost("GET", "/Item/5.json", params=relations) == pytest.approx(1.4)
    assert rseries_request_cost("GET", "/Item.json", params=relations) == pytest.approx(1.8)  # doubled on queries
    assert rseries_request_cost("GET", "/Item.json?load_relations=all") == pytest.approx(9.0)
    assert rseries_request_cost("GET", "/Item.json", params={"offset": 1000}) == pytest.approx(6.0)
    assert rseries_request_cost("GET", "/Item.json", params={"or": "description=foo|description=bar"}) == 1.0
    assert rseries_request_cost("GET", "/Item.json", params={"or": "description=foo|customSku=bar"}) == 3.0
    assert rseries_request_cost("GET", "/Item.json", params={"or": "ItemShops.qoh=>,1|description=x"}) == 21.0


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=5),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=15,
)


@settings(max_examples=200, deadline=None)
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "patch", ""]),
    path=st.text(max_size=40) | st.sampled_from(["/Sale.json", "/Category/1", "/API/V3/Account", "?count=1"]),
    body=json_values,
    params=st.dictionaries(
        st.sampled_from(["count", "load_relations", "offset", "or", "limit"]), st.text(max_size=12), max_size=4
    ),
)
def test_any_request_costs_at_least_one_drip_and_never_raises(
    method: str, path: str, body: object, params: dict
) -> None:
    cost = rseries_request_cost(method, path, body, params)
    assert math.isfinite(cost) and cost >= 1.0


# -- reading the headers --------------------------------------------------------------------------------------


def test_rseries_headers_give_the_bucket_level_size_drip_rate_and_this_seconds_burst() -> None:
    """The successful-request example of KVH rate-limiting.md; a burst of 1/20 is 1 of our 10 (half: see policy)."""
    from httpx import Headers

    headers = {
        "X-LS-Acct-Id": "83050",
        "X-LS-Api-Bucket-Level": "54.131335496901/90",  # fractional, as MKP's recorded cassettes show
        "X-LS-API-Burst-Level": "1/20",
        "X-LS-Api-Drip-Rate": "1",
        "X-LS-Api-Request-Cost": "1",
    }
    observation = rseries_observation(Headers(headers), 200, T0)
    assert observation.bucket == BucketReading(54.131335496901, 90.0, 1.0)
    assert observation.windows == (WindowReading(limit=10, remaining=9),)
    assert not observation.throttled and observation.retry_at is None
    assert rseries_observation(headers, 200, T0) == observation  # a plain dict, any case, reads the same
    assert rseries_observation({}, 200, T0) == Observation()


def test_a_leaky_bucket_429_carries_its_retry_after_in_seconds() -> None:
    headers = {
        "X-LS-API-Bucket-Level": "92.57/90",
        "X-LS-API-Burst-Level": "18/20",
        "X-LS-Api-Drip-Rate": "1",
        "X-LS-API-RateLimit-Type": "api-leaky-bucket",
        "Retry-After": "3",
    }
    observation = rseries_observation(headers, 429, T0)
    assert observation.throttled and observation.retry_at == T0 + 3
    assert observation.bucket == BucketReading(92.57, 90.0, 1.0)


def test_a_burst_429_blocks_at_least_a_second() -> None:
    headers = {"X-LS-API-RateLimit-Type": "api-burst-limiter", "Retry-After": "0"}
    assert rseries_observation(headers, 429, T0).retry_at == T0 + 1.0
    assert rseries_observation({**headers, "Retry-After": "4"}, 429, T0).retry_at == T0 + 4.0


def test_malformed_bucket_headers_are_ignored_not_fatal() -> None:
    observation = rseries_observation({"X-LS-Api-Bucket-Level": "x/90", "X-LS-API-Burst-Level": "/abc"}, 200, T0)
    assert observation.bucket == BucketReading(None, 90.0, None)
    assert observation.windows == ()


# -- the bucket's arithmetic ----------------------------------------------------------------------------------


def test_a_take_pours_its_cost_and_the_level_drains_at_the_drip_rate() -> None:
    outcome = take(BUCKET_ONLY, initial_state(BUCKET_ONLY), T0, cost=10)
    assert _level(outcome.state, T0) == 10.0
    assert _level(outcome.state, T0 + 4) == 6.0
    assert _level(outcome.state, T0 + 60) == 0.0  # never below empty


def test_a_take_that_would_pass_size_minus_headroom_waits_until_enough_has_dripped() -> None:
    state = _bucket(USABLE - 1)
    assert take(BUCKET_ONLY, state, T0, cost=1).granted
    refused = take(BUCKET_ONLY, state, T0, cost=3)
    assert refused.retry_at == pytest.approx(T0 + 2, abs=0.01)
    assert refused.retry_at is not None and take(BUCKET_ONLY, state, refused.retry_at, cost=3).granted


def test_a_request_costlier_than_the_usable_bucket_waits_for_an_empty_bucket() -> None:
    """The vendor admits the first overflowing request; refusing it forever would strand it."""
    refused = take(BUCKET_ONLY, _bucket(5), T0, cost=200)
    assert refused.retry_at == pytest.approx(T0 + 5, abs=0.01)
    granted = take(BUCKET_ONLY, _bucket(5), T0 + 5.01, cost=200)
    assert _level(granted.state, T0 + 5.01) == pytest.approx(200)


def test_backfill_leaves_its_reserve_share_of_the_bucket_to_live_traffic() -> None:
    """30% reserve: backfill fills the bucket to 70% of size - headroom (56 of 80); live callers to 80."""
    assert take(BUCKET_ONLY, _bucket(55), T0, cost=1, reserve_share=0.3).granted
    refused = take(BUCKET_ONLY, _bucket(56), T0, cost=1, reserve_share=0.3)
    assert refused.retry_at == pytest.approx(T0 + 1, abs=0.01)
    assert take(BUCKET_ONLY, _bucket(79), T0, cost=1).granted
    assert not take(BUCKET_ONLY, _bucket(79.5), T0, cost=1).granted


def test_the_window_and_the_bucket_must_both_have_room() -> None:
    """R-Series: a request needs a burst slot and its drips; a refusal names the later of the two."""
    state = take(RSERIES, initial_state(RSERIES), T0, cost=1).state
    assert state is not None and state.windows[0].used == 1 and _level(state, T0) == 1.0
    full_bucket = BudgetState(state.windows, bucket=BucketState(80.0, T0, 90.0, 1.0))
    assert take(RSERIES, full_bucket, T0, cost=5).retry_at == pytest.approx(T0 + 5, abs=0.01)


def test_a_clock_behind_the_last_take_drains_nothing_and_keeps_the_time() -> None:
    """Two invocations' clocks differ a little: the lagging one must not make the level drain twice."""
    outcome = take(BUCKET_ONLY, _bucket(40, at=T0 + 1), T0, cost=1)
    assert outcome.state is not None and outcome.state.bucket == BucketState(41.0, T0 + 1, 90.0, 1.0)


# -- learning from the headers --------------------------------------------------------------------------------


def _observe_level(ours: float, vendor: float, now: float = T0) -> float:
    learned = reconcile(BUCKET_ONLY, _bucket(ours), Observation(bucket=BucketReading(vendor, 90.0, 1.0)), now)
    return _level(learned, now)


def test_a_higher_vendor_level_raises_our_estimate() -> None:
    assert _observe_level(20.0, 60.0) == 60.0


def test_a_lower_vendor_level_lowers_our_estimate_but_keeps_room_for_requests_still_in_flight() -> None:
    in_flight = BUCKET_ONLY.bucket.in_flight_drips if BUCKET_ONLY.bucket else 0.0
    assert _observe_level(70.0, 20.0) == 20.0 + in_flight
    assert _observe_level(22.0, 20.0) == 22.0  # within the in-flight allowance: ours stands


def test_a_late_answer_reporting_an_older_lower_level_does_not_lower_our_estimate_again() -> None:
    """The vendor's level only falls by draining: after reading 60, a later answer saying 20 is an old one."""
    state = _bucket(30.0)
    for vendor in (60.0, 20.0, 10.0):
        state = reconcile(BUCKET_ONLY, state, Observation(bucket=BucketReading(vendor, 90.0, 1.0)), T0 + 1)
    assert _level(state, T0 + 1) == 60.0
    assert state.bucket is not None and state.bucket.floor_at(T0 + 11) == 50.0  # the floor drains like the level


def test_the_vendors_size_and_drip_rate_replace_the_documented_ones() -> None:
    """The allowance follows the subscription's register limit, which the connection record may not know."""
    learned = reconcile(
        BUCKET_ONLY,
        _bucket(0),
        rseries_observation({"X-LS-Api-Bucket-Level": "10/110", "X-LS-Api-Drip-Rate": "2"}, 200, T0),
        T0,
    )
    assert learned.bucket == BucketState(10.0, T0, 110.0, 2.0, floor=10.0)
    assert take(BUCKET_ONLY, learned, T0, cost=90).granted  # 10 + 90 <= 110 - 10


def test_an_observation_without_bucket_headers_changes_nothing() -> None:
    state = _bucket(33)
    assert reconcile(BUCKET_ONLY, state, Observation(), T0) == state
    known = BudgetState((), bucket=BucketState(33.0, T0, 90.0, 1.0, floor=33.0))
    assert reconcile(BUCKET_ONLY, known, Observation(bucket=BucketReading(33.0, 90.0, 1.0)), T0) == known


def test_a_rseries_429_blocks_acquire_until_retry_after_seconds() -> None:
    clock = ManualClock(T0)
    budget = InMemoryRateBudget(clock=clock, sleep=clock.sleep)
    headers = {"X-LS-API-RateLimit-Type": "api-leaky-bucket", "Retry-After": "3", "X-LS-API-Bucket-Level": "20/90"}
    budget.observe(RSERIES, rseries_observation(headers, 429, T0))
    with pytest.raises(RateLimited) as raised:
        budget.acquire(RSERIES, max_wait_s=1.0)
    assert raised.value.retry_at == T0 + 3
    budget.acquire(RSERIES, max_wait_s=5.0, cost=2)
    assert clock.slept == [3.0]
    assert _level(budget.state(RSERIES), clock.now) == pytest.approx(17.0 + 2.0)  # 20 drained 3 s, plus ours


def test_the_burst_window_limits_takes_per_second() -> None:
    """Until a response reports the burst size we allow 5 a second (half an assumed 10); `1/20` raises it to 10."""
    clock = ManualClock(T0)
    budget = InMemoryRateBudget(clock=clock, sleep=clock.sleep)

    def burst() -> int:
        granted = 0
        with contextlib.suppress(RateLimited):
            for _ in range(30):
                budget.acquire(RSERIES, max_wait_s=0, cost=0.1)
                granted += 1
        return granted

    assert burst() == 5
    budget.observe(RSERIES, rseries_observation({"X-LS-API-Burst-Level": "1/20"}, 200, clock.now))
    clock.now += 1.2  # our window (1 s + margin) is over
    assert burst() == 10


# -- properties -----------------------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    steps=st.lists(
        st.tuples(
            st.floats(min_value=0.0, max_value=5.0),  # time passing before the take
            st.floats(min_value=0.0, max_value=USABLE),  # its cost
            st.sampled_from([0.0, 0.0, 0.3]),  # live traffic, or backfill holding a reserve
            st.booleans(),  # refused: wait until the retry time and take again
        ),
        min_size=1,
        max_size=120,
    ),
    size=st.sampled_from([90.0, 110.0, 280.0]),
)
def test_the_bucket_never_exceeds_size_minus_headroom_nor_grants_more_than_it_drips(
    steps: list[tuple[float, float, float, bool]], size: float
) -> None:
    spec = BucketSpec(size=size, drip_rate=1.0 + (size - 90) / 20)
    policy = RatePolicy("rseries", (), bucket=spec)
    state, now, granted = initial_state(policy), T0, 0.0
    for gap, cost, reserve, wait in steps:
        now += gap
        outcome = take(policy, state, now, cost=cost, reserve_share=reserve)
        if outcome.state is None and wait:
            assert outcome.retry_at is not None and outcome.retry_at > now
            now = outcome.retry_at
            outcome = take(policy, state, now, cost=cost, reserve_share=reserve)
            assert outcome.granted  # the retry time it named was enough
        if outcome.state is None:
            continue
        state, granted = outcome.state, granted + cost
        level = _level(state, now)
        # Backfill fills up to its share; a take costlier than that share waited for an empty bucket.
        assert 0.0 <= level <= max((size - spec.headroom) * (1 - reserve), cost) + 1e-6
        assert level <= size - spec.headroom + 1e-6
        assert granted <= size - spec.headroom + spec.drip_rate * (now - T0) + 1e-6


# -- a run against a model of the vendor's bucket ----------------------------------------------------------------


@dataclass
class VendorBucket:
    """The R-Series limiter as KVH rate-limiting.md describes it: a bucket draining continuously, 429 while it is
    above its size, and a burst limit per (wall-clock) second. `overflows` counts requests that left it above its
    size: the vendor still admits the first, but we never want to depend on that."""

    size: float = 90.0
    drip_rate: float = 1.0
    burst: int = 20
    level: float = 0.0
    at: float = 0.0
    second: int = -1
    in_second: int = 0
    overflows: int = 0
    throttled: int = 0

    def call(self, now: float, cost: float) -> tuple[int, dict[str, str]]:
        self.level = max(self.level - self.drip_rate * max(now - self.at, 0.0), 0.0)
        self.at = max(self.at, now)
        if math.floor(now) != self.second:
            self.second, self.in_second = math.floor(now), 0
        headers = {"X-LS-Api-Drip-Rate": f"{self.drip_rate:g}"}
        limiter = None
        if self.in_second >= self.burst:
            limiter, retry = "api-burst-limiter", 1
        elif self.level > self.size:
            limiter, retry = "api-leaky-bucket", math.ceil((self.level - self.size) / self.drip_rate)
        if limiter:
            self.throttled += 1
            headers.update({"X-LS-API-RateLimit-Type": limiter, "Retry-After": str(retry)})
        else:
            self.in_second += 1
            self.level += cost
            self.overflows += self.level > self.size
        headers["X-LS-Api-Bucket-Level"] = f"{self.level}/{self.size:g}"
        headers["X-LS-API-Burst-Level"] = f"{self.in_second}/{self.burst}"
        return (429 if limiter else 200), headers


# What a sync sends to R-Series, roughly: stock and product polls, price updates, a completed web sale, a category.
REQUEST_MIX: tuple[tuple[str, str, Any, dict[str, Any] | None], ...] = (
    ("GET", "/ItemShop.json", None, {"sort": "timeStamp", "timeStamp": ">=,2026-01-01T00:00:00-00:00"}),
    ("GET", "/ItemShop.json", None, {"sort": "timeStamp"}),
    ("GET", "/Item.json", None, {"load_relations": '["ItemShops","Images"]'}),
    ("PUT", "/Item/5.json", {"Prices": {"ItemPrice": [{"amount": "9.99", "useTypeID": "5"}]}}, None),
    ("GET", "/Sale.json", None, {"referenceNumber": "1001", "referenceNumberSource": "eCom"}),
    (
        "POST",
        "/Sale.json",
        {"completed": "true", "SaleLines": {"SaleLine": [{"itemID": "5", "unitQuantity": "1"}] * 3}},
        None,
    ),
    ("PUT", "/Category/3.json", {"name": "Shoes"}, None),
)


@dataclass(frozen=True)
class BucketRun:
    requests: int
    total_cost: float  # drips the vendor charged
    duration_s: float  # virtual
    lower_bound_s: float  # total_cost / drip rate: no client can be faster for long
    overflows: int
    throttled: int


def run_rseries_bucket(
    requests: int = 70_000,
    *,
    registers: int = 1,
    latency_s: float = 0.2,
    estimate_factor: float = 1.0,
    seed: int = 17,
) -> BucketRun:
    """One client sending `requests` calls of REQUEST_MIX through an in-memory budget on a virtual clock, against
    `VendorBucket`, each response's headers fed back. `estimate_factor` scales our cost estimate (the vendor
    charges the true one) to show the headers correct a wrong estimate. Cheap: no I/O, no real sleeping."""
    import random

    rng = random.Random(seed)
    policy = rseries_policy(registers)
    assert policy.bucket is not None
    clock = ManualClock(T0)
    budget = InMemoryRateBudget(clock=clock, sleep=clock.sleep)
    vendor = VendorBucket(size=policy.bucket.size, drip_rate=policy.bucket.drip_rate)
    total = 0.0
    for _ in range(requests):
        method, path, body, params = rng.choice(REQUEST_MIX)
        cost = rseries_request_cost(method, path, body, params)
        budget.acquire(policy, max_wait_s=3_600, cost=cost * estimate_factor)
        clock.now += latency_s / 2  # the request reaches the vendor
        status, headers = vendor.call(clock.now, cost)
        total += cost if status == 200 else 0.0
        clock.now += latency_s / 2  # and its answer reaches us
        budget.observe(policy, rseries_observation(headers, status, clock.now))
    return BucketRun(
        requests, total, clock.now - T0, total / policy.bucket.drip_rate, vendor.overflows, vendor.throttled
    )


def test_a_70000_request_run_never_overflows_the_bucket_and_keeps_within_3_percent_of_the_drip_rate() -> None:
    run = run_rseries_bucket(70_000)
    assert run.overflows == 0 and run.throttled == 0
    assert run.lower_bound_s - 90 <= run.duration_s <= run.lower_bound_s * 1.03


@pytest.mark.parametrize("estimate_factor", [0.6, 1.8])
def test_the_headers_correct_a_wrong_cost_estimate(estimate_factor: float) -> None:
    """Estimating low, the vendor's level raises ours (no overflow); estimating high, it lowers ours (no crawl)."""
    run = run_rseries_bucket(3_000, estimate_factor=estimate_factor)
    assert run.overflows == 0 and run.throttled == 0
    assert run.duration_s <= run.lower_bound_s * 1.05


@settings(max_examples=150, deadline=None)
@given(
    steps=st.lists(
        st.tuples(
            st.sampled_from([0.0, 0.0, 0.05]) | st.floats(min_value=0.0, max_value=1.5),  # time before the next calls
            st.lists(st.sampled_from(REQUEST_MIX), min_size=1, max_size=3),  # calls taken at once
            st.randoms(),  # when they arrive, which answers come back now, and in which order
        ),
        min_size=10,
        max_size=200,
    ),
    registers=st.sampled_from([1, 3]),
)
def test_concurrent_callers_sharing_the_bucket_never_overflow_it(
    steps: list[tuple[float, list[tuple[str, str, Any, dict[str, Any] | None]], Any]], registers: int
) -> None:
    """Several invocations share the budget: calls are taken, reach the vendor, and their answers come back late
    and in any order, so a stale (lower) bucket level arrives after newer takes. The in-flight allowance plus the
    headroom (15 drips) absorb that as long as the calls in flight cost no more than that together."""
    policy = rseries_policy(registers)
    assert policy.bucket is not None
    in_flight_max = 15.0
    assert in_flight_max == policy.bucket.headroom + policy.bucket.in_flight_drips
    clock = ManualClock(T0)
    budget = InMemoryRateBudget(clock=clock, sleep=clock.sleep)
    vendor = VendorBucket(size=policy.bucket.size, drip_rate=policy.bucket.drip_rate)
    in_flight: list[tuple[float, int, dict[str, str]]] = []
    for gap, calls, rng in steps:
        clock.now += gap
        for method, path, body, params in calls:
            cost = rseries_request_cost(method, path, body, params)
            if sum(c for c, _, _ in in_flight) + cost > in_flight_max:
                break
            try:
                budget.acquire(policy, max_wait_s=0, cost=cost)
            except RateLimited:
                break
            in_flight.append((cost, *vendor.call(clock.now + rng.uniform(0, 0.2), cost)))  # answered, not yet read
        rng.shuffle(in_flight)
        for _ in range(rng.randint(0, len(in_flight))):
            clock.now += rng.uniform(0, 0.2)
            _, status, headers = in_flight.pop()
            budget.observe(policy, rseries_observation(headers, status, clock.now))
    assert vendor.overflows == 0 and vendor.throttled == 0


# -- which observations a shared budget must save at once ---------------------------------------------------------

TIGHT_WINDOW = RatePolicy("xseries", (WindowSpec("5min", 350, 300.0),))
OURS = _state(WindowState(limit=350, used=100, end=T0 + 200))


def _learned(reading: WindowReading) -> BudgetState:
    return reconcile(TIGHT_WINDOW, OURS, Observation((reading,)), T0)


@pytest.mark.parametrize(
    ("reading", "tighter"),
    [
        (WindowReading(limit=350, remaining=250, reset_at=T0 + 198), False),  # the vendor counted what we did
        (WindowReading(limit=350, remaining=300, reset_at=T0 + 198), False),  # less: ours may still be in flight
        (WindowReading(limit=650, remaining=540, reset_at=T0 + 198), False),  # more counted, but far more room
        (WindowReading(limit=350, remaining=240, reset_at=T0 + 198), True),  # the vendor counted 10 more
        (WindowReading(limit=200, remaining=100, reset_at=T0 + 198), True),  # a lower limit
        (WindowReading(limit=350, remaining=250, reset_at=T0 + 150), False),  # the vendor's window ends first
        (WindowReading(limit=350, remaining=250, reset_at=T0 + 230), True),  # it outlives ours: a later end
        (WindowReading(limit=350, remaining=250, reset_at=T0 + 199.4), False),  # within the margin: rounding
    ],
)
def test_only_a_reading_that_may_refuse_what_the_shared_state_grants_tightens_it(
    reading: WindowReading, tighter: bool
) -> None:
    assert tightens(TIGHT_WINDOW, OURS, _learned(reading), T0) is tighter


def test_a_429_tightens_the_budget() -> None:
    throttled = reconcile(TIGHT_WINDOW, OURS, Observation(throttled=True, retry_at=T0 + 30), T0)
    assert tightens(TIGHT_WINDOW, OURS, throttled, T0)


def test_a_fuller_smaller_or_slower_bucket_tightens_it_a_drained_one_does_not() -> None:
    policy = rseries_policy()
    ours = BudgetState((WindowState(limit=5),), bucket=BucketState(level=40.0, at=T0, size=90.0, drip_rate=1.0))

    def learned(reading: BucketReading) -> BudgetState:
        return reconcile(policy, ours, Observation(bucket=reading), T0)

    assert tightens(policy, ours, learned(BucketReading(level=60.0)), T0)
    assert tightens(policy, ours, learned(BucketReading(size=60.0)), T0)
    assert tightens(policy, ours, learned(BucketReading(drip_rate=0.5)), T0)
    assert not tightens(policy, ours, learned(BucketReading(level=20.0, size=90.0, drip_rate=1.0)), T0)
    assert not tightens(policy, ours, learned(BucketReading(level=40.0, size=180.0, drip_rate=2.0)), T0)


def test_an_aged_observation_drains_its_bucket_level_and_keeps_no_count_without_a_reset_time() -> None:
    observation = Observation(
        (WindowReading(limit=10, remaining=2), WindowReading(limit=300, remaining=200, reset_at=T0 + 60)),
        bucket=BucketReading(level=30.0, size=90.0),
    )

    later = aged(observation, T0, T0 + 12, drip_rate=2.0)

    assert later.windows == (WindowReading(limit=10), WindowReading(limit=300, remaining=200, reset_at=T0 + 60))
    assert later.bucket == BucketReading(level=6.0, size=90.0)  # 30 drips less 12 s at 2 a second
    assert aged(observation, T0, T0 + 60, drip_rate=2.0).bucket == BucketReading(level=0.0, size=90.0)
    assert aged(observation, T0, T0, drip_rate=2.0) == Observation(
        (WindowReading(limit=10), observation.windows[1]), bucket=observation.bucket
    )
