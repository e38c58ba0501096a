"""The shared rate budget in DynamoDB (moto), and clients sharing one budget against the X-Series simulator."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from pos_ecom_sync.connectors.http import VendorHttp
from pos_ecom_sync.errors import ConfigurationError, RateLimited
from pos_ecom_sync.profiles.rseries.client import RSeriesClient
from pos_ecom_sync.profiles.xseries.client import XSeriesClient
from pos_ecom_sync.ratelimit import (
    DEFAULT_MARGIN_S,
    ECOM_POLICY,
    XSERIES_POLICY,
    BucketSpec,
    InMemoryRateBudget,
    Observation,
    RateBudget,
    RatePolicy,
    WindowReading,
    WindowSpec,
    rseries_observation,
    rseries_policy,
    rseries_request_cost,
    xseries_observation,
)
from pos_ecom_sync.state.budget import DynamoRateBudget

from local_stack.simulators.rseries import RSeriesSimulator
from local_stack.simulators.xseries import XSeriesSimulator
from tests.support import ManualClock

T0 = 1_750_000_000.0
SMALL = RatePolicy("xseries", (WindowSpec("5min", 5, 300.0),))


class AtomicItemWrites:
    """DynamoDB applies each conditional UpdateItem atomically and reads whole items; moto's in-process
    backend does neither under threads. This restores that guarantee (one call at a time), so concurrency
    tests check our read -> conditional write logic, not moto's. Our read and write stay separate calls,
    so other threads still get in between them.
    """

    def __init__(self, client: Any) -> None:
        self._client = client
        self._lock = threading.Lock()

    def get_item(self, **kwargs: Any) -> Any:
        with self._lock:
            return self._client.get_item(**kwargs)

    def update_item(self, **kwargs: Any) -> Any:
        with self._lock:
            return self._client.update_item(**kwargs)


@pytest.fixture
def dynamo(sync_table: str, dynamodb_client: Any) -> Callable[..., DynamoRateBudget]:
    atomic = AtomicItemWrites(dynamodb_client)

    def make(api: str = "xseries", connection_id: str = "shop", **kwargs: Any) -> DynamoRateBudget:
        return DynamoRateBudget(sync_table, connection_id, api, client=atomic, **kwargs)

    return make


def _item(dynamodb_client: Any, table: str, connection_id: str, api: str) -> dict[str, Any]:
    key = {"pk": {"S": f"CONN#{connection_id}"}, "sk": {"S": f"RATE#{api}"}}
    return dynamodb_client.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item", {})


def test_dynamo_budget_grants_up_to_the_limit_then_raises_rate_limited(dynamo, dynamodb_client, sync_table) -> None:
    clock = ManualClock(T0)
    budget = dynamo(clock=clock, sleep=clock.sleep)
    for _ in range(5):
        budget.acquire(SMALL, max_wait_s=0)
    with pytest.raises(RateLimited) as raised:
        budget.acquire(SMALL, max_wait_s=10)
    assert raised.value.retry_at == pytest.approx(T0 + 300 + DEFAULT_MARGIN_S)
    item = _item(dynamodb_client, sync_table, "shop", "xseries")
    assert item["used_5min"] == {"N": "5"}
    assert float(item["end_5min"]["N"]) == pytest.approx(T0 + 300 + DEFAULT_MARGIN_S)
    assert float(item["expires_at"]["N"]) > T0 + 86_400  # idle budgets expire through the table's TTL


def test_dynamo_budget_starts_a_new_window_once_the_old_one_ended(dynamo) -> None:
    clock = ManualClock(T0)
    budget = dynamo(clock=clock, sleep=clock.sleep)
    for _ in range(5):
        budget.acquire(SMALL, max_wait_s=0)
    budget.acquire(SMALL, max_wait_s=400)  # waits out the window, then a reset takes the first slot
    assert clock.slept == [pytest.approx(300 + DEFAULT_MARGIN_S)]
    state = budget.load(SMALL)
    assert state.windows[0].used == 1
    assert state.windows[0].end == pytest.approx(clock.now + 300 + DEFAULT_MARGIN_S)


def test_dynamo_budget_learns_limit_count_and_reset_from_headers(dynamo, dynamodb_client, sync_table) -> None:
    clock = ManualClock(T0)
    budget = dynamo(clock=clock)
    budget.acquire(XSERIES_POLICY, max_wait_s=0)
    budget.observe(XSERIES_POLICY, Observation((WindowReading(limit=650, remaining=600, reset_at=T0 + 60),)))
    budget.acquire(XSERIES_POLICY, max_wait_s=0)  # more room than we thought: saved with this take
    item = _item(dynamodb_client, sync_table, "shop", "xseries")
    assert item["limit_5min"] == {"N": "650"}
    assert item["used_5min"] == {"N": "51"}
    assert float(item["end_5min"]["N"]) == pytest.approx(T0 + 60 + DEFAULT_MARGIN_S)


def test_a_429_in_one_invocation_blocks_every_other_invocation(dynamo) -> None:
    clock = ManualClock(T0)
    first, second = dynamo(clock=clock, sleep=clock.sleep), dynamo(clock=clock, sleep=clock.sleep)
    first.acquire(XSERIES_POLICY, max_wait_s=0)
    first.observe(XSERIES_POLICY, Observation(throttled=True, retry_at=T0 + 30))
    with pytest.raises(RateLimited) as raised:
        second.acquire(XSERIES_POLICY, max_wait_s=5)
    assert raised.value.retry_at == T0 + 30
    second.acquire(XSERIES_POLICY, max_wait_s=60)
    assert clock.slept == [30]


def test_a_stale_cache_never_grants_past_the_limit(dynamo) -> None:
    # Each instance caches what it last saw; the conditional write, not the cache, decides.
    clock = ManualClock(T0)
    first, second = dynamo(clock=clock), dynamo(clock=clock)
    first.acquire(SMALL, max_wait_s=0)
    second.acquire(SMALL, max_wait_s=0)  # second's cache now says 2 used
    for _ in range(3):
        first.acquire(SMALL, max_wait_s=0)  # the item is full; second does not know
    with pytest.raises(RateLimited):
        second.acquire(SMALL, max_wait_s=0)
    assert first.granted + second.granted == 5


def test_budget_items_are_kept_per_connection_and_api(dynamo, dynamodb_client, sync_table) -> None:
    clock = ManualClock(T0)
    dynamo("xseries", "shop-a", clock=clock).acquire(XSERIES_POLICY, max_wait_s=0)
    dynamo("ecom", "shop-a", clock=clock).acquire(ECOM_POLICY, max_wait_s=0)
    dynamo("xseries", "shop-b", clock=clock).acquire(XSERIES_POLICY, max_wait_s=0)
    assert _item(dynamodb_client, sync_table, "shop-a", "xseries")["used_5min"] == {"N": "1"}
    assert _item(dynamodb_client, sync_table, "shop-b", "xseries")["used_5min"] == {"N": "1"}
    ecom = _item(dynamodb_client, sync_table, "shop-a", "ecom")
    assert {k for k in ecom if k.startswith("used_")} == {"used_5min", "used_hour", "used_day", "used_second"}
    with pytest.raises(ConfigurationError):
        dynamo("xseries", "shop-a").acquire(ECOM_POLICY, max_wait_s=0)


def test_many_invocations_hammering_one_budget_never_take_more_than_the_limit(dynamo, dynamodb_client) -> None:
    policy = RatePolicy("xseries", (WindowSpec("5min", 40, 300.0),))
    clock = ManualClock(T0)
    shared = dynamo(clock=clock)
    # Half the threads share one instance (one warm Lambda), half have their own (separate Lambdas).
    budgets = [shared if i % 2 else dynamo(clock=clock) for i in range(8)]
    granted = _hammer(budgets, policy)
    assert sum(granted) == 40  # 120 attempts, exactly the limit granted
    assert shared.load(policy).windows[0].used == 40


def test_pairs_and_single_takes_hammering_one_budget_never_take_more_than_the_limit(dynamo) -> None:
    policy = RatePolicy("ecom", (WindowSpec("5min", 41, 300.0), WindowSpec("second", 1000, 1.0, margin_s=0.1)))
    clock = ManualClock(T0)
    budgets = [dynamo("ecom", clock=clock) for _ in range(6)]
    granted = _hammer(budgets, policy, slots_of=lambda i: 2 if i % 2 else 1)  # an order and its lines, or one request
    assert 40 <= sum(granted) <= 41  # never past the limit (one slot no pair fits may be left if no single came)
    assert budgets[0].load(policy).windows[0].used == sum(granted)


def test_two_slots_cost_one_write_and_count_until_the_earliest_window_end(counted, dynamodb_client, sync_table) -> None:
    clock = ManualClock(T0)
    budget, calls = counted("ecom", clock=clock)

    until = budget.acquire(ECOM_POLICY, max_wait_s=0, slots=2)

    assert (calls.reads, calls.writes) == (1, 1)
    assert until == pytest.approx(T0 + 1.1)  # the 20 / s window ends first
    item = _item(dynamodb_client, sync_table, "shop", "ecom")
    assert {item[f"used_{w}"]["N"] for w in ("5min", "hour", "day", "second")} == {"2"}
    assert budget.granted == 2


def test_a_take_of_two_is_refused_when_one_slot_is_left(dynamo) -> None:
    clock = ManualClock(T0)
    budget = dynamo(clock=clock, sleep=clock.sleep)
    for _ in range(4):
        budget.acquire(SMALL, max_wait_s=0)
    with pytest.raises(RateLimited):
        budget.acquire(SMALL, max_wait_s=0, slots=2)
    budget.acquire(SMALL, max_wait_s=0)  # the last slot is still there for one request
    assert budget.load(SMALL).windows[0].used == 5


def test_concurrent_headers_and_takes_never_lower_the_count_below_what_was_granted(dynamo) -> None:
    policy = RatePolicy("xseries", (WindowSpec("5min", 1000, 300.0),))
    clock = ManualClock(T0)
    takers = [dynamo(clock=clock) for _ in range(4)]
    observer = dynamo(clock=clock)

    def take_many(budget: DynamoRateBudget) -> None:
        for _ in range(25):
            budget.acquire(policy, max_wait_s=0)

    def observe_many() -> None:
        for remaining in range(999, 949, -1):  # the vendor reports 1..50 calls while ours climb to 100
            observer.observe(policy, Observation((WindowReading(limit=1000, remaining=remaining, reset_at=T0 + 200),)))

    threads = [threading.Thread(target=take_many, args=(b,)) for b in takers] + [threading.Thread(target=observe_many)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert observer.load(policy).windows[0].used >= 100


# -- one write per request: what a response teaches rides on the next take --------------------------------------


class CountingItemWrites(AtomicItemWrites):
    """AtomicItemWrites that counts the budget's DynamoDB calls."""

    def __init__(self, client: Any) -> None:
        super().__init__(client)
        self.reads = self.writes = 0

    def get_item(self, **kwargs: Any) -> Any:
        self.reads += 1
        return super().get_item(**kwargs)

    def update_item(self, **kwargs: Any) -> Any:
        self.writes += 1
        return super().update_item(**kwargs)


@pytest.fixture
def counted(sync_table: str, dynamodb_client: Any) -> Callable[..., tuple[DynamoRateBudget, CountingItemWrites]]:
    def make(api: str = "xseries", **kwargs: Any) -> tuple[DynamoRateBudget, CountingItemWrites]:
        calls = CountingItemWrites(dynamodb_client)
        return DynamoRateBudget(sync_table, "shop", api, client=calls, **kwargs), calls

    return make


def _vendor(
    budget: RateBudget, policy: RatePolicy, answer: Callable[[], httpx.Response], clock: ManualClock
) -> VendorHttp:
    """A connector whose vendor answers every request with `answer()`."""
    reader = rseries_observation if policy.bucket is not None else xseries_observation
    return VendorHttp(
        "https://vendor.test",
        policy,
        budget,
        reader,
        transport=httpx.MockTransport(lambda request: answer()),
        clock=clock,
        sleep=clock.sleep,
        request_cost=rseries_request_cost if policy.bucket is not None else None,
        max_wait_s=2.0,
    )


def test_a_request_whose_answer_only_frees_capacity_costs_one_budget_write(
    counted, dynamodb_client, sync_table
) -> None:
    # R-Series reports its bucket level on every answer, below our estimate (it drained, or counts requests still in
    # flight later): that lowers the estimate for everyone, but no one is refused anything they could take.
    clock = ManualClock(T0)
    budget, calls = counted("rseries", clock=clock)
    policy = rseries_policy(1)
    vendor = _vendor(budget, policy, lambda: httpx.Response(200, headers={"X-LS-Api-Bucket-Level": "1/90"}), clock)

    for _ in range(20):
        vendor.request("GET", "/API/V3/Account/1/Shop.json")
        clock.now += 0.5  # the burst window allows 5 a second

    assert vendor.calls == 20
    assert (calls.reads, calls.writes) == (1, 20)  # the first take reads the item; then one write per request
    item = _item(dynamodb_client, sync_table, "shop", "rseries")
    assert float(item["bucket_floor"]["N"]) > 0  # the vendor's readings were saved, with the takes


def test_a_reading_that_leaves_less_room_than_others_may_take_is_saved_at_once(counted) -> None:
    clock = ManualClock(T0)
    (first, calls), (second, _) = counted(clock=clock), counted(clock=clock)
    second.acquire(XSERIES_POLICY, max_wait_s=0)  # a concurrent worker, warm: it knows 1 of 350 used
    vendor = _vendor(
        first,
        XSERIES_POLICY,
        lambda: httpx.Response(200, headers={"X-RateLimit-Limit": "350", "X-RateLimit-Remaining": "0"}),
        clock,
    )

    vendor.request("GET", "/api/2.0/products")  # another app of the retailer used up the window

    assert calls.writes == 2  # the take, and the reading at once
    with pytest.raises(RateLimited):
        second.acquire(XSERIES_POLICY, max_wait_s=0)


def test_a_429s_retry_after_still_stops_a_concurrent_worker_at_once(counted) -> None:
    clock = ManualClock(T0)
    (first, _), (second, _) = counted(clock=clock, sleep=clock.sleep), counted(clock=clock, sleep=clock.sleep)
    second.acquire(XSERIES_POLICY, max_wait_s=0)  # warm, its cached item not blocked
    vendor = _vendor(first, XSERIES_POLICY, lambda: httpx.Response(429, headers={"Retry-After": "30"}), clock)

    with pytest.raises(RateLimited) as mine:
        vendor.request("GET", "/api/2.0/products")  # the 30 s block is longer than this worker waits

    assert mine.value.retry_at == T0 + 30
    with pytest.raises(RateLimited) as theirs:
        second.acquire(XSERIES_POLICY, max_wait_s=5)
    assert theirs.value.retry_at == T0 + 30
    assert vendor.calls == 1


def test_a_kept_reading_is_saved_with_the_next_take_though_another_worker_took_meanwhile(
    counted, dynamodb_client, sync_table
) -> None:
    clock = ManualClock(T0)
    (first, calls), (second, _) = counted(clock=clock), counted(clock=clock)
    first.acquire(XSERIES_POLICY, max_wait_s=0)
    first.observe(XSERIES_POLICY, Observation((WindowReading(limit=650, remaining=649, reset_at=T0 + 100),)))
    assert calls.writes == 1  # more room than the item says: kept, not written
    second.acquire(XSERIES_POLICY, max_wait_s=0)  # first's copy of the item is now one take behind

    first.acquire(XSERIES_POLICY, max_wait_s=0)

    item = _item(dynamodb_client, sync_table, "shop", "xseries")
    assert item["limit_5min"] == {"N": "650"} and item["used_5min"] == {"N": "3"}  # no take lost
    assert float(item["end_5min"]["N"]) == pytest.approx(T0 + 100 + DEFAULT_MARGIN_S)
    assert (calls.reads, calls.writes) == (1, 2)  # the count is added, not set: a stale copy costs no read


def test_a_kept_bucket_reading_is_folded_again_when_the_take_loses_the_race(
    counted, dynamodb_client, sync_table
) -> None:
    clock = ManualClock(T0)
    (first, calls), (second, _) = counted("rseries", clock=clock), counted("rseries", clock=clock)
    first.acquire(BUCKET, max_wait_s=0, cost=1)
    # The vendor saw half a drip: nothing to lower yet (requests may be in flight), but a floor worth keeping.
    first.observe(BUCKET, rseries_observation({"X-LS-Api-Bucket-Level": "0.5/90"}, 200, T0))
    second.acquire(BUCKET, max_wait_s=0, cost=1)  # changes the bucket first's next write is conditioned on

    first.acquire(BUCKET, max_wait_s=0, cost=1)

    item = _item(dynamodb_client, sync_table, "shop", "rseries")
    assert (item["bucket_level"], item["bucket_floor"]) == ({"N": "3"}, {"N": "0.5"})
    # The first take's read, the lost write (its refusal returns the item: no read of its own), the write that holds.
    assert (calls.reads, calls.writes) == (1, 3)


@pytest.mark.slow
def test_against_the_rseries_simulator_a_request_costs_about_one_budget_write(counted) -> None:
    # What a worker pays per R-Series request: the take, with the previous answer's bucket reading folded in. Before,
    # each answer's reading was a second write (2.0 per request).
    sim = RSeriesSimulator(seed=5)
    sim.start()
    try:
        budget, calls = counted("rseries")
        client = RSeriesClient(sim.url, budget, token=sim.issue_tokens()["access_token"], account_id="88000")
        for _ in range(30):
            client.list_shops()
    finally:
        sim.stop()
    assert sim.throttled == 0
    assert client.calls == 30
    assert calls.writes / client.calls <= 1.2


# -- R-Series: the leaky bucket in the same item -------------------------------------------------------------

# The bucket alone (no burst window), so a fixed clock can fill it: 90 drips, 10 of headroom, 80 usable.
BUCKET = RatePolicy("rseries", (), bucket=BucketSpec(size=90.0, drip_rate=1.0))


def test_dynamo_bucket_pours_costs_and_refuses_what_would_pass_size_minus_headroom(
    dynamo, dynamodb_client, sync_table
) -> None:
    clock = ManualClock(T0)
    budget = dynamo("rseries", clock=clock, sleep=clock.sleep)
    budget.acquire(BUCKET, max_wait_s=0, cost=70)
    budget.acquire(BUCKET, max_wait_s=0, cost=9.5)
    with pytest.raises(RateLimited) as raised:
        budget.acquire(BUCKET, max_wait_s=1, cost=2)
    assert raised.value.retry_at == pytest.approx(T0 + 1.5, abs=0.01)  # 79.5 + 2 fits 80 once 1.5 drips drained
    item = _item(dynamodb_client, sync_table, "shop", "rseries")
    assert item["bucket_level"] == {"N": "79.5"} and float(item["bucket_at"]["N"]) == T0
    assert {item["bucket_size"]["N"], item["bucket_drip"]["N"]} == {"90", "1"}
    budget.acquire(BUCKET, max_wait_s=2, cost=2)
    assert clock.slept == [pytest.approx(1.5, abs=0.01)]


def test_a_second_invocation_sees_the_level_drained_since_the_first_poured(dynamo) -> None:
    clock = ManualClock(T0)
    first, second = dynamo("rseries", clock=clock), dynamo("rseries", clock=clock)
    first.acquire(BUCKET, max_wait_s=0, cost=80)
    clock.now += 10
    second.acquire(BUCKET, max_wait_s=0, cost=10)  # 70 left after 10 s at 1 drip/s
    with pytest.raises(RateLimited):
        first.acquire(BUCKET, max_wait_s=0, cost=0.5)  # its cache says 80 - 10 = 70: the write's condition says no
    assert second.load(BUCKET).bucket is not None and second.load(BUCKET).bucket.level_at(clock.now) == 80.0


def test_two_invocations_pouring_from_threads_never_together_exceed_the_bucket(dynamo) -> None:
    """Two concurrent Lambda invocations (separate instances, one item), four threads each, mixed costs."""
    clock = ManualClock(T0)  # frozen: nothing drains, so the bucket caps the total exactly
    invocations = [dynamo("rseries", clock=clock), dynamo("rseries", clock=clock)]
    poured: list[float] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def pour(budget: DynamoRateBudget, cost: float) -> None:
        try:
            for _ in range(40):
                try:
                    budget.acquire(BUCKET, max_wait_s=0, cost=cost)
                except RateLimited:
                    continue
                with lock:
                    poured.append(cost)
        except BaseException as exc:
            errors.append(exc)

    threads = [
        threading.Thread(target=pour, args=(invocations[i % 2], cost)) for i, cost in enumerate((1, 2, 0.5, 1.5) * 2)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sum(poured) <= 80.0  # size 90 less the headroom, across both invocations
    assert sum(poured) >= 78.0  # and the bucket was really used (the cheapest take left over is 0.5 .. 2)
    stored = invocations[0].load(BUCKET).bucket
    assert stored is not None and stored.level == pytest.approx(sum(poured))


def test_backfill_leaves_live_traffic_its_share_of_the_shared_bucket(dynamo) -> None:
    clock = ManualClock(T0)
    backfill = dynamo("rseries", clock=clock, reserve_share=0.3)
    live = dynamo("rseries", clock=clock)
    taken = 0
    with pytest.raises(RateLimited):
        while True:
            backfill.acquire(BUCKET, max_wait_s=0, cost=1)
            taken += 1
    assert taken == 56  # 70% of the 80 usable drips
    for _ in range(24):
        live.acquire(BUCKET, max_wait_s=0, cost=1)  # stock and orders still have 24
    with pytest.raises(RateLimited):
        live.acquire(BUCKET, max_wait_s=0, cost=1)


def test_dynamo_bucket_learns_the_vendors_level_and_a_429_blocks_every_invocation(dynamo) -> None:
    clock = ManualClock(T0)
    first, second = dynamo("rseries", clock=clock, sleep=clock.sleep), dynamo("rseries", clock=clock, sleep=clock.sleep)
    policy = rseries_policy(1)
    first.acquire(policy, max_wait_s=0, cost=1)
    first.observe(policy, rseries_observation({"X-LS-Api-Bucket-Level": "75/90", "X-LS-Api-Drip-Rate": "1"}, 200, T0))
    with pytest.raises(RateLimited) as raised:
        second.acquire(policy, max_wait_s=0, cost=10)
    assert raised.value.retry_at == pytest.approx(T0 + 5, abs=0.01)  # 75 + 10 fits 80 after 5 s
    first.observe(policy, rseries_observation({"X-LS-Api-Bucket-Level": "20/90"}, 200, T0))
    assert second.load(policy).bucket is not None and second.load(policy).bucket.level_at(T0) == 75.0  # a late answer
    headers = {"X-LS-API-RateLimit-Type": "api-leaky-bucket", "Retry-After": "7"}
    first.observe(policy, rseries_observation(headers, 429, T0))
    with pytest.raises(RateLimited) as raised:
        second.acquire(policy, max_wait_s=5, cost=1)
    assert raised.value.retry_at == T0 + 7
    second.acquire(policy, max_wait_s=10, cost=1)
    assert clock.slept == [7]


def test_the_burst_window_and_the_bucket_share_one_item(dynamo, dynamodb_client, sync_table) -> None:
    clock = ManualClock(T0)
    budget = dynamo("rseries", clock=clock)
    policy = rseries_policy(1)
    for _ in range(5):
        budget.acquire(policy, max_wait_s=0, cost=2)
    with pytest.raises(RateLimited) as raised:
        budget.acquire(policy, max_wait_s=0, cost=2)  # the bucket has room; this second's burst window has not
    assert raised.value.retry_at == pytest.approx(T0 + 1.1)
    item = _item(dynamodb_client, sync_table, "shop", "rseries")
    assert item["used_burst"] == {"N": "5"} and item["bucket_level"] == {"N": "10"}
    assert float(item["expires_at"]["N"]) > T0 + 86_400


# -- the must-show: two clients sharing one budget never exceed the simulator's limit ------------------


LIMIT, WINDOW_S, CALLS_PER_CLIENT = 30, 3.0, 35


def _run_two_clients(url: str, budgets: tuple[RateBudget, RateBudget]) -> tuple[list[int], int]:
    """Two clients call concurrently; a RateLimited call is delayed until its retry time, never dropped."""
    succeeded = [0, 0]
    delayed = [0]
    errors: list[BaseException] = []
    lock = threading.Lock()

    def work(index: int) -> None:
        with httpx.Client() as http:
            client = XSeriesClient(url, "sim-token", budgets[index], max_wait_s=1.0, client=http)
            try:
                for _ in range(CALLS_PER_CLIENT):
                    while True:
                        try:
                            client.list_changes("products", after=None, page_size=5)
                            succeeded[index] += 1
                            break
                        except RateLimited as limited:  # what a worker turns into an SQS visibility delay
                            with lock:
                                delayed[0] += 1
                            time.sleep(max(limited.retry_at - time.time(), 0.01))
            except BaseException as exc:
                errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors
    return succeeded, delayed[0]


@pytest.fixture
def simulator() -> Any:
    sim = XSeriesSimulator(token="sim-token", seed=7, rate_limit=LIMIT, rate_window_s=WINDOW_S)
    sim.seed_catalog(3, 2, seed=7)
    url = sim.start()
    yield sim, url
    sim.stop()


@pytest.mark.slow
@pytest.mark.parametrize("store", ["in-memory", "dynamodb"])
def test_two_concurrent_clients_sharing_one_budget_never_exceed_the_simulators_limit(
    store: str, simulator: Any, request: pytest.FixtureRequest
) -> None:
    sim, url = simulator
    budgets: tuple[RateBudget, RateBudget]
    if store == "in-memory":
        shared = InMemoryRateBudget()
        budgets = (shared, shared)
    else:  # two Lambda invocations: separate instances, one table item
        make = request.getfixturevalue("dynamo")
        budgets = (make(), make())

    succeeded, delayed = _run_two_clients(url, budgets)

    total = 2 * CALLS_PER_CLIENT
    assert succeeded == [CALLS_PER_CLIENT, CALLS_PER_CLIENT]  # every call eventually succeeded
    assert sim.throttled == 0  # the simulator never had to refuse one: the budget learned its limit
    assert sim.requests == total  # and nothing was sent twice
    assert total > 2 * LIMIT  # the run needed three windows, so the budget really was the limit
    assert delayed >= 1  # some calls were delayed past max_wait (RateLimited), then retried


def _hammer(budgets: list[Any], policy: RatePolicy, *, slots_of: Callable[[int], int] = lambda i: 1) -> list[int]:
    """Each budget on its own thread, 15 takes of `slots_of(its index)` slots without waiting: the slots each was
    granted (any error but a refusal fails the test)."""
    granted = [0] * len(budgets)
    errors: list[BaseException] = []

    def hammer(index: int) -> None:
        slots = slots_of(index)
        try:
            for _ in range(15):
                try:
                    budgets[index].acquire(policy, max_wait_s=0, slots=slots)
                    granted[index] += slots
                except RateLimited:
                    pass
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=hammer, args=(i,)) for i in range(len(budgets))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    return granted
