"""The rate budget kept in the sync table, shared by every concurrent Lambda invocation of a connection.

One item per connection and API (pk=`CONN#<id>`, sk=`RATE#<api>`) holds, per window, `used_<name>`,
`end_<name>` (epoch s) and `limit_<name>`, plus `blocked_until`. Taking a slot is ONE conditional
UpdateItem over every window at once: `used + 1` only while `used <= capacity - 1` and the window is
still open, or a reset (`used = 1`, new end) only while the window is over. Two invocations can never
both take the last slot. The last state seen is cached, so the usual call costs a single write; a lost
condition returns the item as it stood (`ReturnValuesOnConditionCheckFailure`) and costs only another try.

What a response's headers teach is saved at once only when it tightens the budget for the others
(`ratelimit.tightens`: a 429, less room, a later window end, a fuller bucket). Anything else (a higher
limit, an earlier end, a vendor count below ours, a bucket that drained more than we thought: R-Series
reports its level on every answer) only lets callers take more: it is kept by this warm budget and folded
into its next take's write, so a request costs one write, not two. Kept observations die with the
sandbox; the others then just keep the tighter view a little longer.

A policy with a leaky bucket (R-Series) also keeps `bucket_level` and `bucket_floor` as of `bucket_at`
(epoch s) and the learned `bucket_size` and `bucket_drip`. DynamoDB conditions have no arithmetic to drain a
level by the time elapsed, so a take computes the new level from the state it read (`ratelimit.take`) and
writes it in the same UpdateItem only while the stored bucket is still the one it read: any take or header
fold in between changes it and costs the loser a re-read, so concurrent invocations never pour past the
bucket together.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3

from pos_ecom_sync.errors import ConfigurationError, UpstreamUnavailable
from pos_ecom_sync.ratelimit import (
    MIN_SLEEP_S,
    BucketState,
    BudgetState,
    Observation,
    RatePolicy,
    WindowState,
    aged,
    capacity,
    check_slots,
    counted_until,
    initial_state,
    reconcile,
    roll,
    take,
    tightens,
    wait_for_slot,
)
from pos_ecom_sync.state import keys
from pos_ecom_sync.state.dynamodb_errors import dynamodb_call

# Idle budget items expire (table TTL) a day after their longest window would have ended.
IDLE_TTL_S = 86_400
# Lost conditions in a row before backing off briefly (each loss means another invocation progressed).
MAX_LOST_RACES = 10
# Observations a budget keeps for its next take at most (the oldest go first: each only ever frees capacity).
MAX_KEPT_OBSERVATIONS = 8


class _LostRace(Exception):
    """The item changed between our read and our conditional write; `current` is the item as the write found it."""

    def __init__(self, current: BudgetState) -> None:
        super().__init__("rate budget changed since it was read")
        self.current = current


def _num(value: float) -> dict[str, str]:
    return {"N": f"{value:.3f}".rstrip("0").rstrip(".")}


def _num_up(value: float) -> dict[str, str]:
    """`value` rounded up to what `_num` keeps: a stored bucket level or time never undercounts."""
    return _num(math.ceil(value * 1000 - 1e-6) / 1000)


BUCKET_NAMES = {
    "#bl": "bucket_level",
    "#bt": "bucket_at",
    "#bs": "bucket_size",
    "#bd": "bucket_drip",
    "#bf": "bucket_floor",
}


def _bucket_is(update: _Update, old: BucketState) -> None:
    """Condition: the bucket is still the one we based our decision on (none stored yet when `at` is 0)."""
    update.names.update(BUCKET_NAMES)
    if old.at == 0:
        update.conditions.append("attribute_not_exists(#bl)")
        return
    update.values.update({":obl": _num(old.level), ":obt": _num(old.at), ":obs": _num(old.size)})
    update.values.update({":obd": _num(old.drip_rate), ":obf": _num(old.floor)})
    update.conditions.append("#bl = :obl AND #bt = :obt AND #bs = :obs AND #bd = :obd AND #bf = :obf")


def _set_bucket(update: _Update, new: BucketState) -> None:
    update.names.update(BUCKET_NAMES)
    update.values.update({":bl": _num_up(new.level), ":bt": _num_up(new.at), ":bs": _num(new.size)})
    update.values.update({":bd": _num(new.drip_rate), ":bf": _num(new.floor)})
    update.sets += ["#bl = :bl", "#bt = :bt", "#bs = :bs", "#bd = :bd", "#bf = :bf"]


@dataclass
class _Update:
    """An UpdateItem under construction: SET clauses, AND-ed conditions and their placeholders."""

    sets: list[str] = field(default_factory=list)
    conditions: list[str] = field(default_factory=list)
    names: dict[str, str] = field(default_factory=dict)
    values: dict[str, dict[str, str]] = field(default_factory=dict)

    def kwargs(self) -> dict[str, Any]:
        expression = "SET " + ", ".join(self.sets)
        condition = " AND ".join(f"({c})" for c in self.conditions)
        # DynamoDB refuses placeholders that no expression uses.
        used = set(re.findall(r"[#:]\w+", f"{expression} {condition}"))
        request: dict[str, Any] = {
            "UpdateExpression": expression,
            "ExpressionAttributeNames": {k: v for k, v in self.names.items() if k in used},
        }
        values = {k: v for k, v in self.values.items() if k in used}
        if values:
            request["ExpressionAttributeValues"] = values
        if condition:
            request["ConditionExpression"] = condition
        return request


def _window_names(update: _Update, index: int, policy: RatePolicy) -> tuple[str, str, str]:
    name = policy.windows[index].name
    used, end, limit = f"#u{index}", f"#e{index}", f"#l{index}"
    update.names.update({used: f"used_{name}", end: f"end_{name}", limit: f"limit_{name}"})
    return used, end, limit


def _end_is(update: _Update, end: str, index: int, value: float) -> str:
    """Condition: the window end is still the one we based our decision on."""
    if value == 0:
        return f"attribute_not_exists({end})"
    update.values[f":old_e{index}"] = _num(value)
    return f"{end} = :old_e{index}"


class DynamoRateBudget:
    def __init__(
        self,
        table_name: str,
        connection_id: str,
        api: str,
        *,
        client: Any = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        reserve_share: float = 0.0,
    ) -> None:
        self.api = api
        self._table = table_name
        self._key = {"pk": {"S": keys.connection_pk(connection_id)}, "sk": {"S": keys.rate_sk(api)}}
        self._client = client or boto3.client("dynamodb")
        self._clock = clock
        self._sleep = sleep
        self._reserve_share = reserve_share
        self._lock = threading.Lock()
        self._cached: BudgetState | None = None
        self._kept: list[tuple[Observation, float]] = []  # observations for the next take, with when they were made
        self.granted = 0  # slots this instance took, for tests and benchmarks

    # -- RateBudget ---------------------------------------------------------------------------------

    def acquire(self, policy: RatePolicy, *, max_wait_s: float, cost: float = 1.0, slots: int = 1) -> float:
        """Take `slots` requests in one conditional write (see the module docstring); returns until when they count
        in every window (`ratelimit.counted_until`)."""
        self._check(policy)
        check_slots(policy, slots)
        granted: list[float] = []
        wait_for_slot(
            lambda now: self._try_take(policy, now, cost, slots, granted),
            api=policy.api,
            max_wait_s=max_wait_s,
            clock=self._clock,
            sleep=self._sleep,
        )
        return granted[-1]

    def observe(self, policy: RatePolicy, observation: Observation) -> None:
        """Fold a response's headers into the shared item: now when they tighten the budget, else with this
        budget's next take. Advisory: storage errors are swallowed (see RateBudget)."""
        self._check(policy)
        try:
            state = self._cached or self.load(policy)
            now = self._clock()
            learned = reconcile(policy, state, observation, now)
            if not tightens(policy, state, learned, now):
                if self._reconcile_update(policy, state, learned, now) is not None:  # it frees capacity
                    self._keep(observation, now)
                return
            for _ in range(MAX_LOST_RACES):
                kept = self._kept_now()  # saved along, as a take would
                learned = reconcile(policy, self._fold(policy, state, kept, now), observation, now)
                update = self._reconcile_update(policy, state, learned, now)
                if update is None:
                    return
                try:
                    self._write(policy, update)
                except _LostRace as lost:
                    state, now = lost.current, self._clock()
                    continue
                self._forget(kept)
                return
        except UpstreamUnavailable:
            return

    # -- reading and writing the item ---------------------------------------------------------------

    def load(self, policy: RatePolicy) -> BudgetState:
        """The stored state (consistent read); the documented defaults when nothing is stored yet."""
        with dynamodb_call("read rate budget"):
            item = self._client.get_item(TableName=self._table, Key=self._key, ConsistentRead=True).get("Item")
        state = self._parse(policy, item) if item else initial_state(policy)
        self._remember(state)
        return state

    def _try_take(
        self, policy: RatePolicy, now: float, cost: float = 1.0, slots: int = 1, granted: list[float] | None = None
    ) -> float | None:
        """None when `slots` were taken (their `counted_until` appended to `granted`), else when to try again."""
        state, fresh = self._cached, False
        if state is None:
            state, fresh = self.load(policy), True
        for _ in range(MAX_LOST_RACES):
            kept = self._kept_now()
            folded = self._fold(policy, state, kept, now)  # what our kept observations taught, saved with the take
            outcome = take(policy, folded, now, n=slots, reserve_share=self._reserve_share, cost=cost)
            if outcome.state is None:
                if fresh:
                    return outcome.retry_at
                state, fresh = self.load(policy), True  # our copy may be older than the item
                continue
            try:
                written = self._write(policy, self._take_update(policy, state, folded, outcome.state, now, slots))
            except _LostRace as lost:
                state, fresh = lost.current, True
                now = self._clock()
                continue
            self._forget(kept)
            with self._lock:
                self.granted += slots
            if granted is not None:
                granted.append(counted_until(written))  # the item as our write left it: the windows we counted in
            return None
        return now + MIN_SLEEP_S  # heavy contention: let wait_for_slot back off and come again

    def _take_update(
        self,
        policy: RatePolicy,
        stored: BudgetState,
        folded: BudgetState,
        taken: BudgetState,
        now: float,
        slots: int = 1,
    ) -> _Update:
        """The conditional write of a take of `slots` requests: `stored` is the item as we read it, `folded` that with
        our kept observations (the take's base), `taken` the result. Without kept observations `folded` is `stored`."""
        update = _Update(names={"#b": "blocked_until", "#x": "expires_at"})
        update.values.update({":now": _num(now), ":exp": _num(now + self._idle_ttl(policy))})
        update.sets.append("#x = :exp")
        update.conditions.append("attribute_not_exists(#b) OR #b <= :now")
        windows = zip(policy.windows, stored.windows, folded.windows, taken.windows, strict=True)
        for index, (spec, window, base, new) in enumerate(windows):
            used, end, limit = _window_names(update, index, policy)
            update.values[f":lim{index}"] = _num(window.limit)
            if window.active(now):
                # DynamoDB conditions have no arithmetic: `used + n <= capacity` is written `used <= capacity - n`.
                added = max(new.used - window.used, slots)  # a count is only ever raised here, never lowered
                cap = capacity(roll(base, now), spec, self._reserve_share, now)
                update.values.update({f":add{index}": _num(added), f":max{index}": _num(cap - added)})
                update.sets.append(f"{used} = {used} + :add{index}")
                update.conditions.append(f"{used} <= :max{index} AND {end} > :now AND {limit} = :lim{index}")
                if new.end != window.end:  # a kept reading moved the end: only of the window we read
                    update.values[f":end{index}"] = _num(new.end)
                    update.sets.append(f"{end} = :end{index}")
                    update.conditions.append(_end_is(update, end, index, window.end))
            else:
                update.values.update({f":used{index}": _num(new.used), f":end{index}": _num(new.end)})
                update.sets += [f"{used} = :used{index}", f"{end} = :end{index}"]
                update.conditions.append(f"attribute_not_exists({end}) OR {end} <= :now")
            if new.limit != window.limit:
                update.values[f":new_lim{index}"] = _num(new.limit)
                update.sets.append(f"{limit} = :new_lim{index}")
            elif not window.active(now):
                update.sets.append(f"{limit} = if_not_exists({limit}, :lim{index})")
        if taken.bucket is not None and stored.bucket is not None:
            _bucket_is(update, stored.bucket)
            _set_bucket(update, taken.bucket)
        return update

    def _reconcile_update(self, policy: RatePolicy, old: BudgetState, new: BudgetState, now: float) -> _Update | None:
        """The conditional write that turns `old` (what we read) into `new`, or None when nothing was learned."""
        update = _Update()
        for index, (before, after) in enumerate(zip(old.windows, new.windows, strict=True)):
            if after == roll(before, now):
                continue
            used, end, limit = _window_names(update, index, policy)
            update.conditions.append(_end_is(update, end, index, before.end))
            if after.limit != before.limit:
                update.values[f":l{index}"] = _num(after.limit)
                update.sets.append(f"{limit} = :l{index}")
            if after.end != before.end:
                update.values[f":e{index}"] = _num(after.end)
                update.sets.append(f"{end} = :e{index}")
            if after.used != roll(before, now).used or after.end != before.end:
                update.values[f":u{index}"] = _num(after.used)
                update.sets.append(f"{used} = :u{index}")
                if before.active(now) and after.used >= before.used:
                    # Raising the count: concurrent takes since our read must not be overwritten with less.
                    update.conditions.append(f"{used} <= :u{index}")
        if new.bucket is not None and old.bucket is not None and new.bucket != old.bucket:
            _bucket_is(update, old.bucket)
            _set_bucket(update, new.bucket)
        if new.blocked_until > old.blocked_until:
            update.names["#b"] = "blocked_until"
            update.values[":b"] = _num(new.blocked_until)
            update.sets.append("#b = :b")
            update.conditions.append("attribute_not_exists(#b) OR #b < :b")
        if not update.sets:
            return None
        update.names["#x"] = "expires_at"
        update.values[":exp"] = _num(now + self._idle_ttl(policy))
        update.sets.append("#x = :exp")
        return update

    def _write(self, policy: RatePolicy, update: _Update) -> BudgetState:
        """The item as the write left it; a refused condition raises `_LostRace` with the item as DynamoDB found it
        (returned by the refusal itself: the loser needs no read of its own before trying again)."""
        with dynamodb_call("write rate budget", allow_condition_failure=True) as call:
            answer = self._client.update_item(
                TableName=self._table,
                Key=self._key,
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
                **update.kwargs(),
            )
        if call.condition_failure is not None:
            item = call.condition_failure.response.get("Item")
            current = self._parse(policy, item) if item else initial_state(policy)
            self._remember(current)
            raise _LostRace(current)
        written = self._parse(policy, answer.get("Attributes", {}))
        self._remember(written)
        return written

    # -- helpers ------------------------------------------------------------------------------------

    def _check(self, policy: RatePolicy) -> None:
        if policy.api != self.api:
            raise ConfigurationError(f"rate budget for {self.api!r} used for {policy.api!r}")

    def _remember(self, state: BudgetState) -> None:
        with self._lock:
            self._cached = state

    def _keep(self, observation: Observation, now: float) -> None:
        with self._lock:
            self._kept = [*self._kept[-(MAX_KEPT_OBSERVATIONS - 1) :], (observation, now)]

    def _kept_now(self) -> list[tuple[Observation, float]]:
        with self._lock:
            return list(self._kept)

    def _forget(self, saved: list[tuple[Observation, float]]) -> None:
        """Drop the kept observations a write just saved (others may have been kept meanwhile)."""
        if saved:
            with self._lock:
                self._kept = [kept for kept in self._kept if not any(kept is done for done in saved)]

    @staticmethod
    def _fold(policy: RatePolicy, state: BudgetState, kept: list[tuple[Observation, float]], now: float) -> BudgetState:
        """`state` with the kept observations folded in, each as it reads at `now` (`ratelimit.aged`)."""
        for observation, observed_at in kept:
            drip_rate = state.bucket.drip_rate if state.bucket is not None else 0.0
            state = reconcile(policy, state, aged(observation, observed_at, now, drip_rate), now)
        return state

    @staticmethod
    def _idle_ttl(policy: RatePolicy) -> float:
        return max((spec.length_s for spec in policy.windows), default=0.0) + IDLE_TTL_S

    @staticmethod
    def _parse(policy: RatePolicy, item: dict[str, Any]) -> BudgetState:
        def number(name: str, default: float) -> float:
            return float(item[name]["N"]) if name in item else default

        windows = tuple(
            WindowState(
                limit=int(number(f"limit_{spec.name}", spec.limit)),
                used=int(number(f"used_{spec.name}", 0)),
                end=number(f"end_{spec.name}", 0.0),
            )
            for spec in policy.windows
        )
        bucket = None
        if policy.bucket is not None:
            bucket = BucketState(
                level=number("bucket_level", 0.0),
                at=number("bucket_at", 0.0),
                size=number("bucket_size", policy.bucket.size),
                drip_rate=number("bucket_drip", policy.bucket.drip_rate),
                floor=number("bucket_floor", 0.0),
            )
        return BudgetState(windows, number("blocked_until", 0.0), bucket)
