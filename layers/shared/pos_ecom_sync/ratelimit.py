"""The rate-limit budget: one per connection and vendor API, shared by every caller of that API.

A budget is a set of fixed windows (X-Series: 350 per 5 min; eCom: 300 / 5 min, 3,000 / h, 12,000 / day
plus 20 / s) or a leaky bucket (R-Series: 90 drips draining at 1/s, more per register, plus its 1 s burst
window). It starts from the documented defaults and learns from the vendor's headers after each
response: the limit, what is left (`used = max(ours, limit - remaining)`: never undercount) and when the
window resets; for a bucket, its level, size and drip rate. A 429 blocks the whole API until its
`Retry-After`. Taking a slot (a bucket: `cost` drips) either succeeds, waits (at most the caller's
`max_wait_s`) or raises `RateLimited`, which workers turn into a queue delay: a throttled call is delayed,
never dropped.

The arithmetic is pure functions over frozen dataclasses, so the in-memory budget here and the DynamoDB
budget (`state/budget.py`) share one set of rules. Policies are data: `XSERIES_POLICY`, `ECOM_POLICY` and
`rseries_policy(registers)`.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlsplit

from pos_ecom_sync.errors import ConfigurationError, RateLimited

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
class BucketSpec:
    """A documented leaky bucket: `size` drips that drain at `drip_rate` per second; a request adds its cost.

    We never fill it past `size - headroom`, although the vendor admits the first request that overflows
    (R-Series, KVH `docs/introduction/rate-limiting.md`): the headroom absorbs requests still in flight,
    costs we estimate low and clock drift between invocations. A vendor reading lower than our estimate
    lowers it, but keeps up to `in_flight_drips` above the reading: requests we granted after the observed
    one may not have reached the vendor yet (a stale answer must not erase them) [I].
    """

    size: float
    drip_rate: float
    headroom: float = 10.0  # the costliest common request (Category write, count=1: 10 drips)
    in_flight_drips: float = 5.0


@dataclass(frozen=True)
class RatePolicy:
    """The limits of one vendor API: fixed `windows` and/or a leaky `bucket`.

    Header triples map onto `windows` by position; extra windows are ours only. Windows count requests,
    the bucket counts each request's cost.
    """

    api: str
    windows: tuple[WindowSpec, ...]
    # How long a 429 without a usable Retry-After blocks the API.
    fallback_retry_s: float = 5.0
    bucket: BucketSpec | None = None


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

# R-Series (KVH `docs/introduction/rate-limiting.md`): a bucket of 90 drips (+10 per register beyond the first)
# draining at 1 drip/s (+0.5/s per register beyond the first), per account and API client; the allowance follows
# the subscription's register limit, so the headers (size, drip rate) correct what the connection record says.
RSERIES_API = "rseries"
RSERIES_BUCKET_SIZE, RSERIES_BUCKET_PER_REGISTER = 90.0, 10.0
RSERIES_DRIP_RATE, RSERIES_DRIP_PER_REGISTER = 1.0, 0.5
# The burst limiter: fixed 1 s windows of "a fraction of the allowed bucket size", every request counting 1 (same
# page). Its size is only documented by example (`X-LS-API-Burst-Level: 1/20` for a 90 bucket); until a response
# reports it we assume half that [I]. Our window starts at first use, not on the vendor's second, so one vendor
# second can overlap two of ours: we allow half the vendor's size per window (`burst_window_limit`).
RSERIES_DEFAULT_BURST_SIZE = 10
RSERIES_BURST_WINDOW = "burst"


def burst_window_limit(vendor_burst_size: int) -> int:
    """Requests per our 1 s window for a vendor burst limit of `vendor_burst_size` per second (see above)."""
    return max(vendor_burst_size // 2, 1)


def rseries_policy(registers: int = 1) -> RatePolicy:
    """The R-Series policy of an account whose subscription has `registers` registers (at least one)."""
    extra = max(int(registers), 1) - 1
    return RatePolicy(
        RSERIES_API,
        (WindowSpec(RSERIES_BURST_WINDOW, burst_window_limit(RSERIES_DEFAULT_BURST_SIZE), 1.0, margin_s=0.1),),
        bucket=BucketSpec(
            size=RSERIES_BUCKET_SIZE + RSERIES_BUCKET_PER_REGISTER * extra,
            drip_rate=RSERIES_DRIP_RATE + RSERIES_DRIP_PER_REGISTER * extra,
        ),
    )


@dataclass(frozen=True)
class WindowState:
    limit: int
    used: int = 0
    end: float = 0.0  # epoch seconds; 0 = not started (a window starts at the first slot taken after it expired)

    def active(self, now: float) -> bool:
        return self.end > now


@dataclass(frozen=True)
class BucketState:
    """The bucket's level at `at` (epoch s; 0 = never used) and the size and drip rate in force.

    `floor` is the highest level the vendor reported, drained to `at` like the level: the vendor's bucket only
    rises by requests and falls by draining, so its level now is at least that. A late answer reporting less
    describes an older moment and must not lower our estimate below it.
    """

    level: float
    at: float
    size: float
    drip_rate: float
    floor: float = 0.0

    def level_at(self, now: float) -> float:
        """The level drained to `now` (never below 0; a clock behind `at` drains nothing)."""
        return self._drained(self.level, now)

    def floor_at(self, now: float) -> float:
        return self._drained(self.floor, now)

    def _drained(self, level: float, now: float) -> float:
        return max(level - self.drip_rate * max(now - self.at, 0.0), 0.0)


@dataclass(frozen=True)
class BudgetState:
    windows: tuple[WindowState, ...]
    blocked_until: float = 0.0  # set by a 429's Retry-After
    bucket: BucketState | None = None  # policies with a bucket only


@dataclass(frozen=True)
class WindowReading:
    """What one response said about one window (any part may be missing)."""

    limit: int | None = None
    remaining: int | None = None
    reset_at: float | None = None  # epoch seconds


@dataclass(frozen=True)
class BucketReading:
    """What one response said about a leaky bucket (any part may be missing)."""

    level: float | None = None
    size: float | None = None
    drip_rate: float | None = None


@dataclass(frozen=True)
class Observation:
    """What one response taught the budget."""

    windows: tuple[WindowReading, ...] = ()
    throttled: bool = False
    retry_at: float | None = None  # from Retry-After, when throttled
    bucket: BucketReading | None = None


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

    `acquire` takes one request from every window and `cost` drips from the bucket, if the policy has one
    (R-Series: `rseries_request_cost`); window-only policies ignore `cost`. `slots` > 1 takes that many requests at
    once (window-only policies: `VendorHttp.take_ahead`). It returns until when the slots taken count in every
    window that counted them (`counted_until`).
    `observe` is advisory and must never raise: it runs after the vendor already acted, and an error
    there must not make a caller retry a call that succeeded.
    """

    def acquire(self, policy: RatePolicy, *, max_wait_s: float, cost: float = 1.0, slots: int = 1) -> float: ...

    def observe(self, policy: RatePolicy, observation: Observation) -> None: ...


def counted_until(state: BudgetState) -> float:
    """Until when requests just taken in `state` count in every window that counted them: its earliest window end. A
    slot taken ahead and used later stays inside the limit only while that window is open (its request then falls
    in the window that counted it, as one taken at that moment would)."""
    return min((window.end for window in state.windows), default=math.inf)


def check_slots(policy: RatePolicy, slots: int) -> None:
    """Several slots at once only from window-only policies: a bucket prices each request (`rseries_request_cost`)."""
    if slots < 1 or (slots > 1 and policy.bucket is not None):
        raise ConfigurationError(f"{policy.api}: cannot take {slots} slots at once")


# -- pure window arithmetic ----------------------------------------------------------------------------


def _initial_bucket(spec: BucketSpec) -> BucketState:
    return BucketState(0.0, 0.0, spec.size, spec.drip_rate)


def initial_state(policy: RatePolicy) -> BudgetState:
    """The documented defaults; a bucket starts empty (nothing of ours is in it) and the first response corrects it."""
    return BudgetState(
        tuple(WindowState(limit=w.limit) for w in policy.windows),
        bucket=None if policy.bucket is None else _initial_bucket(policy.bucket),
    )


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


# Bucket levels equal within this many drips are equal (float drain arithmetic on epoch seconds).
LEVEL_TOLERANCE = 1e-6
# A bucket refusal names the moment enough has drained, plus this: the retry then surely fits, despite rounding.
DRIP_SLACK_S = 0.001


def bucket_limit(spec: BucketSpec, bucket: BucketState, reserve_share: float) -> float:
    """The level a take may fill the bucket to: `size - headroom`, less `reserve_share` of that for low-priority
    work (the catalog import, reconciliation), which so leaves stock and orders a share of the bucket on top of
    the headroom. Live callers take from the bucket as soon as it drains below their higher limit, so they come
    first whenever both wait."""
    usable = max(bucket.size - spec.headroom, 0.0)
    return usable * (1.0 - min(max(reserve_share, 0.0), 1.0))


def take_from_bucket(
    spec: BucketSpec, bucket: BucketState, now: float, *, cost: float, reserve_share: float = 0.0
) -> Take | BucketState:
    """Pour `cost` drips into the bucket (the new bucket), or say when enough will have drained (a refused Take).

    A request costlier than the limit waits for an empty bucket: the vendor admits the first request that
    overflows, and refusing it forever would strand it.
    """
    cost = max(cost, 0.0)
    level = bucket.level_at(now)
    room = max(bucket_limit(spec, bucket, reserve_share) - cost, 0.0)
    if level <= room + LEVEL_TOLERANCE:
        # Never move `at` back: an invocation whose clock lags must not make the others drain twice.
        at = max(now, bucket.at)
        return BucketState(level + cost, at, bucket.size, bucket.drip_rate, bucket.floor_at(at))
    if bucket.drip_rate <= 0:
        return Take(None, now + 1.0)
    return Take(None, now + (level - room) / bucket.drip_rate + DRIP_SLACK_S)


def take(
    policy: RatePolicy,
    state: BudgetState,
    now: float,
    *,
    n: int = 1,
    reserve_share: float = 0.0,
    cost: float = 1.0,
) -> Take:
    """Take `n` slots from every window and `cost` drips from the bucket at once, or say when the earliest retry
    could succeed."""
    if state.blocked_until > now:
        return Take(None, state.blocked_until)
    windows = [roll(w, now) for w in state.windows]
    full = [
        _frees_at(w, spec, reserve_share, n)
        for w, spec in zip(windows, policy.windows, strict=True)
        if w.used + n > capacity(w, spec, reserve_share, now)
    ]
    retry_at = None
    if full:
        # A full window that was never started cannot free up by waiting (n exceeds the capacity): wait one
        # full length so the caller backs off instead of spinning.
        longest = max(spec.length_s for spec in policy.windows)
        retry_at = max(end if end > now else now + longest for end in full)
    bucket = state.bucket
    if policy.bucket is not None:
        poured = take_from_bucket(
            policy.bucket, bucket or _initial_bucket(policy.bucket), now, cost=cost, reserve_share=reserve_share
        )
        if isinstance(poured, Take):
            retry_at = max(retry_at or 0.0, poured.retry_at or now)
        else:
            bucket = poured
    if retry_at is not None:
        return Take(None, retry_at)
    taken = tuple(
        WindowState(w.limit, w.used + n, w.end if w.active(now) else now + spec.length_s + spec.margin_s)
        for w, spec in zip(windows, policy.windows, strict=True)
    )
    return Take(BudgetState(taken, state.blocked_until, bucket), None)


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


# A reported level above this many bucket sizes is garbage, not a level (the vendor admits one overflowing request).
MAX_LEVEL_SIZES = 2.0


def reconcile_bucket(spec: BucketSpec, bucket: BucketState, reading: BucketReading, now: float) -> BucketState:
    """Fold one response's bucket headers into our estimate (the same object when nothing was learned).

    The vendor's level is the truth (the bucket is per account and API client, so only our own invocations fill
    it): a higher reading raises our estimate to it; a lower one lowers it to the reading plus
    `spec.in_flight_drips`, which stands for requests we granted that the vendor had not counted yet, but never
    below `floor` (an answer that arrives late reports an older, lower level). Size and drip rate follow the
    vendor (they track the subscription's register limit, not the connection record).
    """
    size = reading.size if reading.size is not None and reading.size > 0 else bucket.size
    drip_rate = reading.drip_rate if reading.drip_rate is not None and reading.drip_rate > 0 else bucket.drip_rate
    at = max(now, bucket.at)
    ours, floor = bucket.level_at(at), bucket.floor_at(at)
    level = ours
    if reading.level is not None and reading.level >= 0:
        floor = max(floor, min(reading.level, size * MAX_LEVEL_SIZES))
        level = max(floor, min(ours, floor + spec.in_flight_drips))
    unchanged = abs(level - ours) <= LEVEL_TOLERANCE and abs(floor - bucket.floor_at(at)) <= LEVEL_TOLERANCE
    if unchanged and size == bucket.size and drip_rate == bucket.drip_rate:
        return bucket
    return BucketState(level, at, size, drip_rate, floor)


def reconcile(policy: RatePolicy, state: BudgetState, observation: Observation, now: float) -> BudgetState:
    windows = list(state.windows)
    for index, reading in enumerate(observation.windows[: len(windows)]):
        windows[index] = reconcile_window(policy.windows[index], windows[index], reading, now)
    blocked_until = state.blocked_until
    if observation.throttled:
        retry_at = observation.retry_at if observation.retry_at is not None else now + policy.fallback_retry_s
        blocked_until = max(blocked_until, retry_at)
    bucket = state.bucket
    if policy.bucket is not None and observation.bucket is not None:
        bucket = reconcile_bucket(policy.bucket, bucket or _initial_bucket(policy.bucket), observation.bucket, now)
    return BudgetState(tuple(windows), blocked_until, bucket)


def tightens(policy: RatePolicy, before: BudgetState, after: BudgetState, now: float) -> bool:
    """Whether `after` (`before` with a response folded in) may refuse a caller what `before` grants: a 429's block,
    a window with less room now (a lower limit, or the vendor counted more than we did) or one the vendor says ends
    later than ours, a fuller, smaller or slower bucket. A shared budget saves such an observation at once, for every
    other invocation; any other only lets callers take more, so it can wait for this one's next take."""
    if after.blocked_until > before.blocked_until:
        return True
    for spec, old, new in zip(policy.windows, before.windows, after.windows, strict=True):
        old, new = roll(old, now), roll(new, now)
        if new.limit - new.used < old.limit - old.used:
            return True
        if old.active(now) and new.end - spec.margin_s > old.end:  # the vendor's own end (`reconcile_window`)
            return True
    if after.bucket is None or before.bucket is None:
        return after.bucket is not None and after.bucket.level_at(now) > LEVEL_TOLERANCE
    old_bucket, new_bucket = before.bucket, after.bucket
    return (
        new_bucket.level_at(now) > old_bucket.level_at(now) + LEVEL_TOLERANCE
        or new_bucket.size < old_bucket.size
        or new_bucket.drip_rate < old_bucket.drip_rate
    )


def aged(observation: Observation, observed_at: float, now: float, drip_rate: float) -> Observation:
    """An observation made at `observed_at`, as it reads at `now` (a budget folds one that did not tighten it into its
    next take). A window count without a reset time described the window of `observed_at`, which has since counted at
    least as much or started anew: only its limit still holds. A bucket level has drained at its drip rate (the
    reading's, else `drip_rate`). A reset time is absolute, and `reconcile_window` ignores one already past."""
    elapsed = max(now - observed_at, 0.0)
    windows = tuple(
        reading if reading.reset_at is not None else WindowReading(limit=reading.limit)
        for reading in observation.windows
    )
    bucket = observation.bucket
    if bucket is not None and bucket.level is not None and elapsed:
        rate = bucket.drip_rate if bucket.drip_rate is not None and bucket.drip_rate > 0 else drip_rate
        bucket = replace(bucket, level=max(bucket.level - rate * elapsed, 0.0))
    return replace(observation, windows=windows, bucket=bucket)


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


def _fraction(value: str | None) -> tuple[float | None, float | None]:
    """`"54.131335496901/90"` as (54.131335496901, 90.0); a missing or malformed part is None."""
    parts = _triple(value)
    first = _float_or_none(parts[0]) if parts else None
    second = _float_or_none(parts[1]) if len(parts) > 1 else None
    return first, second


def rseries_observation(headers: Mapping[str, str], status: int, now: float) -> Observation:
    """R-Series (KVH `docs/introduction/rate-limiting.md` "Response Headers"; fractional levels as recorded in
    MKP `spec/fixtures/vcr_cassettes/items/show.yml`): `X-LS-Api-Bucket-Level: <level>/<size>`,
    `X-LS-Api-Drip-Rate: <drips/s>`, `X-LS-API-Burst-Level: <requests this second>/<per second>`; on a 429
    `X-LS-API-RateLimit-Type: api-leaky-bucket|api-burst-limiter` and `Retry-After: <seconds>`. A burst 429
    blocks at least 1 s ("back off for at least 1 second"). Header names are matched case-insensitively (the
    vendor's own examples mix `X-LS-API-` and `X-LS-Api-`).
    """
    lowered = {str(name).lower(): value for name, value in headers.items()}
    level, size = _fraction(lowered.get("x-ls-api-bucket-level"))
    drip_rate = _float_or_none(lowered.get("x-ls-api-drip-rate"))
    bucket = BucketReading(level, size, drip_rate)
    burst_used, burst_size = _fraction(lowered.get("x-ls-api-burst-level"))
    windows: tuple[WindowReading, ...] = ()
    if burst_size is not None and burst_size >= 1:
        limit = burst_window_limit(int(burst_size))
        remaining = None if burst_used is None else limit - math.ceil(max(burst_used, 0.0))
        windows = (WindowReading(limit=limit, remaining=remaining),)
    throttled = status == 429
    retry_at = parse_retry_after(lowered.get("retry-after"), now) if throttled else None
    if throttled and (lowered.get("x-ls-api-ratelimit-type") or "").strip().lower() == "api-burst-limiter":
        retry_at = max(retry_at or 0.0, now + 1.0)
    return Observation(
        windows=windows,
        throttled=throttled,
        retry_at=retry_at,
        bucket=bucket if bucket != BucketReading() else None,
    )


# -- R-Series request costs ---------------------------------------------------------------------------------

# Write costs by endpoint (the last named path segment, lower case) and method; anything else costs 1
# (KVH `docs/introduction/rate-limiting.md` "Endpoint Costs", and each endpoint page's "Request Cost" table).
RSERIES_WRITE_COSTS: dict[str, dict[str, float]] = {
    "sale": {"POST": 2.0, "PUT": 2.0, "DELETE": 2.0},  # endpoints/sale.md
    "saleline": {"POST": 2.0, "PUT": 2.0, "DELETE": 2.0},  # endpoints/saleline.md, sale-saleline.md
    "category": {"POST": 10.0, "PUT": 10.0, "DELETE": 10.0},  # endpoints/category.md
    "refund": {"POST": 10.0},  # Sale/{saleID}/refund
    "inventorycountreconcile": {"POST": 10.0},
    "emailreceipt": {"POST": 5.0},  # Sale/{saleID}/EmailReceipt
}
RSERIES_COMPLETED_SALE_COST = 3.0  # "If `complete = true` is included the payload" (sale.md; the field is `completed`)
RSERIES_NESTED_ENTITY_COST = 0.5  # per nested relation entity in a POST/PUT payload (rate-limiting.md)
RSERIES_COUNT_COST = 10.0  # `count=1` (query-parameters.md, pagination.md)
RSERIES_OFFSET_COST = 0.005  # per record skipped by `offset` (query-parameters.md; V3 dropped offset)
# `load_relations` (relations.md): 0.1 per X-to-one and 0.2 per X-to-many relation on a single record, doubled
# on queries and on relations nested under a to-many one. We cannot tell the kind from the name, so charge the
# to-many price [I]; `all` sums every relation of the entity, which we charge as this many [I].
RSERIES_RELATION_COST = 0.2
RSERIES_ALL_RELATIONS = 20
# `or=` (query-parameters.md): operands on one field are free; on one entity's fields +1 per operand; over several
# entities, or with more than one range operator, +10 per entity and +1 per further operand on it.
RSERIES_OR_ENTITY_COST = 10.0
_RANGE_OPERATORS = (">", "<")
_TRUE = {"true", "1", "yes"}


def _rseries_segments(path: str) -> list[str]:
    """The resource segments of an R-Series path, with or without the `/API/V3/Account/{accountID}` prefix."""
    segments = [part for part in urlsplit(path).path.split("/") if part]
    if segments:
        segments[-1] = segments[-1].removesuffix(".json").removesuffix(".xml")
    if segments and segments[0].lower() == "api":
        segments = segments[1:]
        if segments and segments[0].lower().startswith("v") and segments[0][1:].isdigit():
            segments = segments[1:]
        if segments and segments[0].lower() == "account":
            segments = segments[2:] if len(segments) > 1 else segments
    return segments


def _nested_entities(value: Any, depth: int = 0) -> int:
    """Relation entities nested in a payload: objects below the top with a field of their own (a wrapper such as
    `"SaleLines": {"SaleLine": [...]}` holds only relations, so it is not one)."""
    if isinstance(value, list):
        return sum(_nested_entities(item, depth) for item in value)
    if not isinstance(value, dict):
        return 0
    own = depth > 0 and any(not isinstance(item, dict | list) for item in value.values())
    return int(own) + sum(_nested_entities(item, depth + 1) for item in value.values())


def _relations_cost(value: str, *, query: bool) -> float:
    value = value.strip()
    if value.lower() == "all":
        names: list[str] = ["?"] * RSERIES_ALL_RELATIONS
    else:
        try:
            parsed = json.loads(value)
        except ValueError:
            parsed = [part for part in value.strip("[]").split(",") if part.strip()]
        names = [str(name) for name in parsed] if isinstance(parsed, list) else [str(parsed)]
    return sum(RSERIES_RELATION_COST * (2 if query or "." in name else 1) for name in names)


def _or_cost(value: str) -> float:
    operands = [part for part in value.split("|") if part.strip()]
    fields = [part.split("=", 1)[0].strip() for part in operands]
    if len(set(fields)) <= 1:
        return 0.0
    by_entity: dict[str, int] = {}
    for field in fields:
        entity = field.rsplit(".", 1)[0] if "." in field else ""
        by_entity[entity] = by_entity.get(entity, 0) + 1
    ranges = sum(1 for part in operands if part.split("=", 1)[-1].lstrip().startswith(_RANGE_OPERATORS))
    if len(by_entity) == 1 and ranges <= 1:
        return float(len(operands))
    return sum(RSERIES_OR_ENTITY_COST + count - 1 for count in by_entity.values())


def _completes(body: Any) -> bool:
    """The payload sets `completed` true (`true` or `"true"`); `complete` too, as sale.md spells it."""
    if not isinstance(body, dict):
        return False
    return any(
        body.get(key) is True or (isinstance(body.get(key), str | int) and str(body.get(key)).strip().lower() in _TRUE)
        for key in ("completed", "complete")
    )


def rseries_request_cost(method: str, path: str, body: Any = None, params: Mapping[str, Any] | None = None) -> float:
    """The drips an R-Series request will add to the bucket, from the request alone ("costs are determined ...
    based solely on the request contents", KVH `docs/introduction/rate-limiting.md`): base 1; the endpoint write
    costs above (Sale +3 when the payload completes it); +0.5 per nested relation entity in a POST/PUT payload
    (each SaleLine, ItemPrice, ContactEmail...); `count=1` 10; `load_relations`, `offset` and `or=` surcharges.
    Where the docs leave the exact figure open we round up [I]; the bucket level header corrects us either way.
    `path` may carry the query string, `params` the query as sent. Pure, and never raises on odd input.
    """
    method = method.upper()
    query = dict(parse_qsl(urlsplit(path).query, keep_blank_values=True))
    query.update({str(key): str(value) for key, value in (params or {}).items() if value is not None})
    segments = _rseries_segments(path)
    named = [part for part in segments if not part.isdigit()]
    endpoint = named[-1].lower() if named else ""
    is_query = method == "GET" and bool(segments) and not segments[-1].isdigit()
    cost = RSERIES_WRITE_COSTS.get(endpoint, {}).get(method, 1.0)
    if query.get("count", "").strip() == "1":
        cost = max(cost, RSERIES_COUNT_COST)
    if method in ("POST", "PUT"):
        cost += RSERIES_NESTED_ENTITY_COST * _nested_entities(body)
        if endpoint == "sale" and _completes(body):
            cost += RSERIES_COMPLETED_SALE_COST
    if query.get("load_relations"):
        cost += _relations_cost(query["load_relations"], query=is_query)
    offset = _float_or_none(query.get("offset"))
    if offset is not None and offset > 0:
        cost += RSERIES_OFFSET_COST * offset
    if query.get("or"):
        cost += _or_cost(query["or"])
    return cost


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

    def acquire(self, policy: RatePolicy, *, max_wait_s: float, cost: float = 1.0, slots: int = 1) -> float:
        check_slots(policy, slots)
        granted: list[float] = []

        def try_take(now: float) -> float | None:
            with self._lock:
                current = self._states.get(policy.api) or initial_state(policy)
                outcome = take(policy, current, now, n=slots, reserve_share=self._reserve_share, cost=cost)
                if outcome.state is None:
                    return outcome.retry_at
                self._states[policy.api] = outcome.state
                self.granted += slots
                granted.append(counted_until(outcome.state))
                return None

        wait_for_slot(try_take, api=policy.api, max_wait_s=max_wait_s, clock=self._clock, sleep=self._sleep)
        return granted[-1]

    def observe(self, policy: RatePolicy, observation: Observation) -> None:
        with self._lock:
            current = self._states.get(policy.api) or initial_state(policy)
            self._states[policy.api] = reconcile(policy, current, observation, self._clock())
