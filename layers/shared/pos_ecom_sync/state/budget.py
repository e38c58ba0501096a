"""The rate budget kept in the sync table, shared by every concurrent Lambda invocation of a connection.

One item per connection and API (pk=`CONN#<id>`, sk=`RATE#<api>`) holds, per window, `used_<name>`,
`end_<name>` (epoch s) and `limit_<name>`, plus `blocked_until`. Taking a slot is ONE conditional
UpdateItem over every window at once: `used + 1` only while `used <= capacity - 1` and the window is
still open, or a reset (`used = 1`, new end) only while the window is over. Two invocations can never
both take the last slot. The last state seen is cached, so the usual call costs a single write; a lost
condition costs a consistent read and another try.

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
    capacity,
    initial_state,
    reconcile,
    roll,
    take,
    wait_for_slot,
)
from pos_ecom_sync.state import keys
from pos_ecom_sync.state.dynamodb_errors import dynamodb_call

# Idle budget items expire (table TTL) a day after their longest window would have ended.
IDLE_TTL_S = 86_400
# Lost conditions in a row before backing off briefly (each loss means another invocation progressed).
MAX_LOST_RACES = 10


class _LostRace(Exception):
    """The item changed between our read and our conditional write."""


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
        self.granted = 0  # slots this instance took, for tests and benchmarks

    # -- RateBudget ---------------------------------------------------------------------------------

    def acquire(self, policy: RatePolicy, *, max_wait_s: float, cost: float = 1.0) -> None:
        self._check(policy)
        wait_for_slot(
            lambda now: self._try_take(policy, now, cost),
            api=policy.api,
            max_wait_s=max_wait_s,
            clock=self._clock,
            sleep=self._sleep,
        )

    def observe(self, policy: RatePolicy, observation: Observation) -> None:
        """Fold a response's headers into the shared item. Advisory: storage errors are swallowed (see RateBudget)."""
        self._check(policy)
        try:
            for attempt in range(MAX_LOST_RACES):
                cached = self._cached if attempt == 0 else None
                state = cached or self.load(policy)
                now = self._clock()
                update = self._reconcile_update(policy, state, reconcile(policy, state, observation, now), now)
                if update is None:
                    return
                try:
                    self._write(policy, update)
                    return
                except _LostRace:
                    continue
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

    def _try_take(self, policy: RatePolicy, now: float, cost: float = 1.0) -> float | None:
        state, fresh = self._cached, False
        if state is None:
            state, fresh = self.load(policy), True
        for _ in range(MAX_LOST_RACES):
            outcome = take(policy, state, now, reserve_share=self._reserve_share, cost=cost)
            if outcome.state is None:
                if fresh:
                    return outcome.retry_at
                state, fresh = self.load(policy), True  # our copy may be older than the item
                continue
            try:
                self._write(policy, self._take_update(policy, state, now, outcome.state.bucket))
            except _LostRace:
                state, fresh = self.load(policy), True
                now = self._clock()
                continue
            with self._lock:
                self.granted += 1
            return None
        return now + MIN_SLEEP_S  # heavy contention: let wait_for_slot back off and come again

    def _take_update(
        self, policy: RatePolicy, state: BudgetState, now: float, bucket: BucketState | None = None
    ) -> _Update:
        update = _Update(names={"#b": "blocked_until", "#x": "expires_at"})
        update.values.update({":now": _num(now), ":one": _num(1), ":exp": _num(now + self._idle_ttl(policy))})
        update.sets.append("#x = :exp")
        update.conditions.append("attribute_not_exists(#b) OR #b <= :now")
        for index, (spec, window) in enumerate(zip(policy.windows, state.windows, strict=True)):
            used, end, limit = _window_names(update, index, policy)
            if window.active(now):
                # DynamoDB conditions have no arithmetic: `used + 1 <= capacity` is written `used <= capacity - 1`.
                update.values[f":max{index}"] = _num(capacity(window, spec, self._reserve_share, now) - 1)
                update.values[f":lim{index}"] = _num(window.limit)
                update.sets.append(f"{used} = {used} + :one")
                update.conditions.append(f"{used} <= :max{index} AND {end} > :now AND {limit} = :lim{index}")
            else:
                update.values[f":end{index}"] = _num(now + spec.length_s + spec.margin_s)
                update.values[f":lim{index}"] = _num(window.limit)
                update.sets += [f"{used} = :one", f"{end} = :end{index}"]
                update.sets.append(f"{limit} = if_not_exists({limit}, :lim{index})")
                update.conditions.append(f"attribute_not_exists({end}) OR {end} <= :now")
        if bucket is not None and state.bucket is not None:
            _bucket_is(update, state.bucket)
            _set_bucket(update, bucket)
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

    def _write(self, policy: RatePolicy, update: _Update) -> None:
        with dynamodb_call("write rate budget", on_condition_failure=_LostRace):
            answer = self._client.update_item(
                TableName=self._table, Key=self._key, ReturnValues="ALL_NEW", **update.kwargs()
            )
        self._remember(self._parse(policy, answer.get("Attributes", {})))

    # -- helpers ------------------------------------------------------------------------------------

    def _check(self, policy: RatePolicy) -> None:
        if policy.api != self.api:
            raise ConfigurationError(f"rate budget for {self.api!r} used for {policy.api!r}")

    def _remember(self, state: BudgetState) -> None:
        with self._lock:
            self._cached = state

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
