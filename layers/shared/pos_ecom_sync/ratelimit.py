"""The rate-limit budget: one per connection and vendor API, shared by every caller of that API.

A budget is a set of fixed windows (X-Series: 350 per 5 min; eCom: 300 / 5 min, 3,000 / h, 12,000 / day
plus 20 / s). It starts from the documented defaults and learns from the vendor's headers after each
response: the limit, what is left (`used = max(ours, limit - remaining)`: never undercount) and when the
window resets. A 429 blocks the whole API until its `Retry-After`. Taking a slot either succeeds, waits
(at most the caller's `max_wait_s`) or raises `RateLimited`, which workers turn into a queue delay: a
throttled call is delayed, never dropped.

The window arithmetic is pure functions over frozen dataclasses, so the in-memory budget here and the
DynamoDB budget (`state/budget.py`) share one set of rules.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Protocol

from pos_ecom_sync.errors import RateLimited

# A window end read from a header, or guessed from first use, is pushed this much later: vendors round
# to whole seconds and count a request when it arrives, so our window must never close before theirs
# (or we would send a full window's worth into the end of the vendor's old one).
DEFAULT_MARGIN_S = 1.5
# Estimates of the same window end that differ by less than this are noise (rounding, latency): keep ours.
END_TOLERANCE_S = 0.5
# Shortest sleep while waiting for a slot, so a wait that ends "now" cannot spin.
MIN_SLEEP_S = 0.01


@dataclass(frozen=True)
class WindowSpec:
    """A documented limit: `limit` calls per fixed window of `length_s` seconds."""

    name: str
    limit: int
    length_s: float
    margin_s: float = DEFAULT_MARGIN_S


@dataclass(frozen=True)
class RatePolicy:
    """The windows of one vendor API. Header triples map onto `windows` by position; extra windows are ours only."""

    api: str
    windows: tuple[WindowSpec, ...]
    # How long a 429 without a usable Retry-After blocks the API.
    fallback_retry_s: float = 5.0


XSERIES_POLICY = RatePolicy("xseries", (WindowSpec("5min", 350, 300.0),))  # 300 x registers + 50, one register
ECOM_POLICY = RatePolicy(
    "ecom",
    (
        WindowSpec("5min", 300, 300.0),
        WindowSpec("hour", 3_000, 3_600.0),
        WindowSpec("day", 12_000, 86_400.0),
        WindowSpec("second", 20, 1.0, margin_s=0.1),  # 20 req/s pacing; no header reports it
    ),
)
POLICIES: dict[str, RatePolicy] = {p.api: p for p in (XSERIES_POLICY, ECOM_POLICY)}


@dataclass(frozen=True)
class WindowState:
    limit: int
    used: int = 0
    end: float = 0.0  # epoch seconds; 0 = not started (a window starts at the first slot taken after it expired)

    def active(self, now: float) -> bool:
        return self.end > now


@dataclass(frozen=True)
class BudgetState:
    windows: tuple[WindowState, ...]
    blocked_until: float = 0.0  # set by a 429's Retry-After


@dataclass(frozen=True)
class WindowReading:
    """What one response said about one window (any part may be missing)."""

    limit: int | None = None
    remaining: int | None = None
    reset_at: float | None = None  # epoch seconds


@dataclass(frozen=True)
class Observation:
    """What one response taught the budget."""

    windows: tuple[WindowReading, ...] = ()
    throttled: bool = False
    retry_at: float | None = None  # from Retry-After, when throttled


@dataclass(frozen=True)
class Take:
    """Outcome of trying to take slots: the new state when granted, else when to try again."""

    state: BudgetState | None
    retry_at: float | None

    @property
    def granted(self) -> bool:
        return self.state is not None


class RateBudget(Protocol):
    """A budget shared by every client of one API of one connection.

    `observe` is advisory and must never raise: it runs after the vendor already acted, and an error
    there must not make a caller retry a call that succeeded.
    """

    def acquire(self, policy: RatePolicy, *, max_wait_s: float) -> None: ...

    def observe(self, policy: RatePolicy, observation: Observation) -> None: ...


# -- pure window arithmetic ----------------------------------------------------------------------------


def initial_state(policy: RatePolicy) -> BudgetState:
    return BudgetState(tuple(WindowState(limit=w.limit) for w in policy.windows))


def roll(window: WindowState, now: float) -> WindowState:
    """An expired window counts nothing until it is started again."""
    return window if window.active(now) else WindowState(limit=window.limit)


# The reserve shrinks in this many steps per window (hourly on eCom's day window): slots free in blocks, so the
# throttled catalog messages waiting for them come back at a step and mostly succeed, instead of each coming back
# for every single slot (a receive each on SQS). At most share/steps of a window (1.25% at 30%) is left idle.
RESERVE_STEPS = 24


def _reserved_fraction(window: WindowState, spec: WindowSpec, now: float) -> float:
    left = window.end - now if window.active(now) else spec.length_s
    return math.ceil(min(1.0, max(0.0, left / spec.length_s)) * RESERVE_STEPS) / RESERVE_STEPS


def capacity(window: WindowState, spec: WindowSpec, reserve_share: float, now: float) -> int:
    """Slots a window may grant a caller that leaves `reserve_share` of the window's rate to others.

    Low-priority work (the catalog import, reconciliation) holds back, for stock and orders, `reserve_share` of the
    window for the time the window has left (in `RESERVE_STEPS` steps): the whole share when it starts, shrinking
    to almost nothing at its end. Live traffic arriving at any moment can still use `reserve_share` of the window's
    rate until it resets, while slots nobody claimed are not left idle at the reset (a fixed share kept 30% of
    eCom's 12,000/day unused). A share, not a count, so it scales with each window (20/s as well as 12,000/day).
    Never below one, or nothing could run.
    """
    if reserve_share <= 0:
        return window.limit
    reserved = math.ceil(window.limit * reserve_share * _reserved_fraction(window, spec, now) - 1e-9)
    return max(window.limit - reserved, 1)


def _frees_at(window: WindowState, spec: WindowSpec, reserve_share: float, n: int) -> float:
    """When a window refusing `n` more slots to a reserve-holding caller grants them: at its end when the slots are
    simply used up, else at the step where its shrinking reserve leaves room (see `capacity`)."""
    room = window.limit - window.used - n
    if reserve_share <= 0 or room < 0 or not window.end:
        return window.end
    steps_allowed = min(RESERVE_STEPS, math.floor(room * RESERVE_STEPS / (window.limit * reserve_share) + 1e-9))
    return window.end - steps_allowed * spec.length_s / RESERVE_STEPS + 0.001


def take(policy: RatePolicy, state: BudgetState, now: float, *, n: int = 1, reserve_share: float = 0.0) -> Take:
    """Take `n` slots from every window at once, or say when the earliest retry could succeed."""
    if state.blocked_until > now:
        return Take(None, state.blocked_until)
    windows = [roll(w, now) for w in state.windows]
    full = [
        _frees_at(w, spec, reserve_share, n)
        for w, spec in zip(windows, policy.windows, strict=True)
        if w.used + n > capacity(w, spec, reserve_share, now)
    ]
    if full:
        # A full window that was never started cannot free up by waiting (n exceeds the capacity): wait one
        # full length so the caller backs off instead of spinning.
        longest = max(spec.length_s for spec in policy.windows)
        return Take(None, max(end if end > now else now + longest for end in full))
    taken = tuple(
        WindowState(w.limit, w.used + n, w.end if w.active(now) else now + spec.length_s + spec.margin_s)
        for w, spec in zip(windows, policy.windows, strict=True)
    )
    return Take(BudgetState(taken, state.blocked_until), None)


def reconcile_window(spec: WindowSpec, window: WindowState, reading: WindowReading, now: float) -> WindowState:
    """Fold one response's reading into our view of a window.

    - A reset time already past describes a window that is over: only its limit is worth learning.
    - A vendor window that ends after ours is a later window (the vendor rolled first): its count replaces ours.
    - Otherwise it is the same window: `used = max(ours, vendor's)` and the end moves to the vendor's (+ margin).
    - Without a reset time the vendor's count is applied to our current window, started now if need be.
    """
    limit = reading.limit if reading.limit and reading.limit > 0 else window.limit
    current = roll(window, now)
    vendor_used = None if reading.remaining is None else max(limit - reading.remaining, 0)
    if reading.reset_at is not None and reading.reset_at + spec.margin_s <= now:
        return replace(current, limit=limit)
    if vendor_used is None and reading.reset_at is None:
        return replace(current, limit=limit)
    if reading.reset_at is None:
        end = current.end if current.active(now) else now + spec.length_s + spec.margin_s
        return WindowState(limit, max(current.used, vendor_used or 0), end)
    vendor_end = reading.reset_at + spec.margin_s
    if not current.active(now) or reading.reset_at > current.end:
        return WindowState(limit, vendor_used if vendor_used is not None else current.used, vendor_end)
    end = vendor_end if abs(vendor_end - current.end) > END_TOLERANCE_S else current.end
    return WindowState(limit, max(current.used, vendor_used or 0), end)


def reconcile(policy: RatePolicy, state: BudgetState, observation: Observation, now: float) -> BudgetState:
    windows = list(state.windows)
    for index, reading in enumerate(observation.windows[: len(windows)]):
        windows[index] = reconcile_window(policy.windows[index], windows[index], reading, now)
    blocked_until = state.blocked_until
    if observation.throttled:
        retry_at = observation.retry_at if observation.retry_at is not None else now + policy.fallback_retry_s
        blocked_until = max(blocked_until, retry_at)
    return BudgetState(tuple(windows), blocked_until)


# -- reading the vendors' headers -------------------------------------------------------------------------


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(float(value)) if value is not None and value.strip() != "" else None
    except ValueError:
        return None


def _float_or_none(value: str | None) -> float | None:
    try:
        parsed = float(value) if value is not None and value.strip() != "" else None
    except ValueError:
        return None
    return parsed if parsed is not None and math.isfinite(parsed) else None


def parse_retry_after(value: str | None, now: float) -> float | None:
    """`Retry-After` as epoch seconds: delta seconds (eCom, R-Series) or an RFC 1123 date (X-Series)."""
    if value is None or not value.strip():
        return None
    seconds = _float_or_none(value)
    if seconds is not None:
        return now + max(seconds, 0.0)
    try:
        moment = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def xseries_observation(headers: Mapping[str, str], status: int, now: float) -> Observation:
    """X-Series: `X-RateLimit-Limit/-Remaining` and, when sent, `-Reset` as the epoch second the window ends."""
    reading = WindowReading(
        limit=_int_or_none(headers.get("x-ratelimit-limit")),
        remaining=_int_or_none(headers.get("x-ratelimit-remaining")),
        reset_at=_float_or_none(headers.get("x-ratelimit-reset")),
    )
    throttled = status == 429
    return Observation(
        windows=(reading,) if reading != WindowReading() else (),
        throttled=throttled,
        retry_at=parse_retry_after(headers.get("retry-after"), now) if throttled else None,
    )


def _triple(value: str | None) -> list[str | None]:
    return [part.strip() for part in value.split("/")] if value else []


def ecom_observation(headers: Mapping[str, str], status: int, now: float) -> Observation:
    """eCom: slash-separated triples per header (5 min / hour / day); `-Reset` is seconds until each window resets."""
    limits = _triple(headers.get("x-ratelimit-limit"))
    remaining = _triple(headers.get("x-ratelimit-remaining"))
    resets = _triple(headers.get("x-ratelimit-reset"))
    readings = []
    for index in range(max(len(limits), len(remaining), len(resets))):
        reset_in = _float_or_none(resets[index] if index < len(resets) else None)
        readings.append(
            WindowReading(
                limit=_int_or_none(limits[index] if index < len(limits) else None),
                remaining=_int_or_none(remaining[index] if index < len(remaining) else None),
                reset_at=None if reset_in is None else now + max(reset_in, 0.0),
            )
        )
    throttled = status == 429
    return Observation(
        windows=tuple(readings),
        throttled=throttled,
        retry_at=parse_retry_after(headers.get("retry-after"), now) if throttled else None,
    )


# -- waiting for a slot ----------------------------------------------------------------------------------


def wait_for_slot(
    try_take: Callable[[float], float | None],
    *,
    api: str,
    max_wait_s: float,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
) -> None:
    """Call `try_take(now)` (None = granted, else the retry time) until granted or the wait would pass `max_wait_s`."""
    deadline = clock() + max(max_wait_s, 0.0)
    while True:
        now = clock()
        retry_at = try_take(now)
        if retry_at is None:
            return
        if retry_at > deadline:
            raise RateLimited(api, retry_at)
        sleep(max(retry_at - now, MIN_SLEEP_S))


class InMemoryRateBudget:
    """A budget held in this process (tests, the local stack). Thread-safe; one instance may serve several
    clients and APIs (state is kept per `policy.api`), so clients sharing it never exceed the limit together.
    """

    def __init__(
        self,
        *,
        reserve_share: float = 0.0,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._reserve_share = reserve_share
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._states: dict[str, BudgetState] = {}
        self.granted = 0  # slots handed out, for tests and benchmarks

    def state(self, policy: RatePolicy) -> BudgetState:
        with self._lock:
            return self._states.get(policy.api) or initial_state(policy)

    def acquire(self, policy: RatePolicy, *, max_wait_s: float) -> None:
        def try_take(now: float) -> float | None:
            with self._lock:
                current = self._states.get(policy.api) or initial_state(policy)
                outcome = take(policy, current, now, reserve_share=self._reserve_share)
                if outcome.state is None:
                    return outcome.retry_at
                self._states[policy.api] = outcome.state
                self.granted += 1
                return None

        wait_for_slot(try_take, api=policy.api, max_wait_s=max_wait_s, clock=self._clock, sleep=self._sleep)

    def observe(self, policy: RatePolicy, observation: Observation) -> None:
        with self._lock:
            current = self._states.get(policy.api) or initial_state(policy)
            self._states[policy.api] = reconcile(policy, current, observation, self._clock())
