"""Rate budget: window arithmetic, header learning, waiting vs RateLimited, and sharing between threads."""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pos_ecom_sync.errors import RateLimited
from pos_ecom_sync.ratelimit import (
    DEFAULT_MARGIN_S,
    ECOM_POLICY,
    XSERIES_POLICY,
    BudgetState,
    InMemoryRateBudget,
    Observation,
    RatePolicy,
    WindowReading,
    WindowSpec,
    WindowState,
    ecom_observation,
    initial_state,
    parse_retry_after,
    reconcile,
    take,
    xseries_observation,
)

T0 = 1_750_000_000.0
SMALL = RatePolicy("xseries", (WindowSpec("5min", 3, 300.0),))


class FakeClock:
    """A clock that only moves when someone sleeps (or the test says so)."""

    def __init__(self, now: float = T0) -> None:
        self.now = now
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


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
    clock = FakeClock()
    budget = InMemoryRateBudget(clock=clock, sleep=clock.sleep)
    budget.observe(SMALL, Observation(throttled=True, retry_at=T0 + 1.5))
    budget.acquire(SMALL, max_wait_s=2.0)
    assert clock.slept == [1.5]
    assert budget.granted == 1


def test_acquire_raises_rate_limited_with_the_retry_time_when_the_wait_is_too_long() -> None:
    clock = FakeClock()
    budget = InMemoryRateBudget(clock=clock, sleep=clock.sleep)
    for _ in range(3):
        budget.acquire(SMALL, max_wait_s=0)
    with pytest.raises(RateLimited) as raised:
        budget.acquire(SMALL, max_wait_s=2.0)
    assert raised.value.api == "xseries"
    assert raised.value.retry_at == T0 + 300 + DEFAULT_MARGIN_S
    assert clock.slept == []  # it did not wait for a slot it could not get in time


def test_one_budget_keeps_apis_apart() -> None:
    budget = InMemoryRateBudget(clock=FakeClock())
    budget.acquire(XSERIES_POLICY, max_wait_s=0)
    assert budget.state(XSERIES_POLICY).windows[0].used == 1
    assert budget.state(ECOM_POLICY).windows[0].used == 0


def test_threads_sharing_one_budget_never_take_more_than_the_limit() -> None:
    policy = RatePolicy("xseries", (WindowSpec("5min", 100, 300.0),))
    budget = InMemoryRateBudget(clock=FakeClock())
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

    clock = FakeClock()
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

    clock = FakeClock()
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
