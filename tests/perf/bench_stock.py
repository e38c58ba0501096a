"""Benchmark: stock sync. Run: `.venv/bin/python -m tests.perf.bench_stock [--burst 5000]` (prints figures; asserts
nothing but that section 4 lost nothing).

1. POS stock change -> eCom updated, through the local stack's real path in one process: POS simulator ->
   inventory.update webhook -> webhook API (webhook_ingest) -> stock queue (moto, from template.yaml) -> the SQS
   event source thread -> stock_sync (functions/stock_sync/app.py) -> eCom simulator. Split into: webhook delivery
   + intake, queue wait (the event source's receive), and the worker's processing. The poll path (no webhook) is
   the poller's schedule window plus one poll run plus the same processing.
2. eCom writes per stock change under bursts (one variant changed 50 times quickly; 20 variants x 10 changes).
3. Disconnecting an outlet of a 70,000-variant catalog: the real StockSync and EcomClient (rate budget with the
   documented eCom windows 300/5 min, 3,000/h, 12,000/day, 20/s) on a simulated clock, with the stock state in
   memory (moto would take hours for 70,000 items) and eCom answered by an in-process transport: eCom calls,
   queued chunk messages, and the simulated duration under the eCom limits.
4. A burst of 5,000 POS stock changes under eCom's limits (300 / 5 min, 3,000 / h, 12,000 / day, 20 / s, enforced
   by the eCom simulator): 2,100 variants at 3 outlets whose stock state is settled, changed over 10 simulated
   minutes (a tenth of the variants hot, some levels put back); change_poller's real handler every minute walks the
   inventory feed, and stock_sync's real handler (StockSync, EcomClient and the DynamoDB rate budget as runtime
   builds them) drains the stock queue in the template's MaximumConcurrency sandboxes. One VIRTUAL CLOCK for
   simulators, budgets, clients and SQS (tests/perf/virtual_time.py, virtual_sqs.py). Reports eCom writes against
   the totals the polls found changed (a live sync's writes) and the fewest (one per variant whose total changed),
   lost (eCom level != POS total), 429s, and the drain time against the lower bound for the calls made.
"""

from __future__ import annotations

import json
import os
import random
import sys
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tests.perf.offline import provision_bench_stack, use_offline_aws

use_offline_aws()

import httpx
from pos_ecom_sync.connectors.ecom import EcomClient
from pos_ecom_sync.errors import Conflict
from pos_ecom_sync.models.connection import Connection
from pos_ecom_sync.models.links import VariantLink
from pos_ecom_sync.models.messages import ChangeMessage
from pos_ecom_sync.models.stock import AppliedOutlets, OutletLevel, StockChunk, StockEntry, VariantStockState
from pos_ecom_sync.profiles.xseries.feeds import XSeriesFeeds
from pos_ecom_sync.profiles.xseries.stock import XSeriesInventory
from pos_ecom_sync.queues import Outgoing
from pos_ecom_sync.ratelimit import ECOM_POLICY, InMemoryRateBudget
from pos_ecom_sync.stock.sync import StockSync, request_outlet_change

from local_stack.functions import LocalFunction


def pct(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def ms(values: Sequence[float]) -> str:
    return f"p50 {pct(values, 0.5) * 1000:.0f} ms, p95 {pct(values, 0.95) * 1000:.0f} ms"


# -- 1 and 2: the local stack's path, in process ---------------------------------------------------------------------


class TimedFunction(LocalFunction):
    """Records each invocation's start and end; one invocation at a time across functions (in-process moto is not
    thread-safe), as in tests/integration/test_stock_sync.py."""

    everything = threading.RLock()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.spans: list[list[float]] = []  # [start, end]; end is 0 while the invocation runs

    def invoke(self, event: dict[str, Any]) -> Any:
        with self.everything:
            span = [time.perf_counter(), 0.0]
            self.spans.append(span)
            try:
                return super().invoke(event)
            finally:
                span[1] = time.perf_counter()


@dataclass
class PathFigures:
    end_to_end: list[float] = field(default_factory=list)
    intake: list[float] = field(default_factory=list)
    queue_wait: list[float] = field(default_factory=list)
    processing: list[float] = field(default_factory=list)
    poll_run: list[float] = field(default_factory=list)
    burst_one: tuple[int, int] = (0, 0)
    burst_many: tuple[int, int] = (0, 0)


@dataclass
class StockRig:
    """The local stack in one process for parts 1 and 2: moto, both simulators, the template's webhook API and the
    stock queue's event source, with one connection ("bench") whose catalog is synced."""

    env: dict[str, str]
    sqs: Any
    store: Any
    pos: Any
    ecom: Any
    api: Any
    outlets: list[str]
    functions: dict[str, TimedFunction]
    subscriptions: dict[str, Any]  # per function logical id
    publisher: Any
    pos_client: Any
    ecom_client: Any
    stock: Any = None  # the stock queue's event source (SqsPoller), once the catalog is synced
    variants: list[str] = field(default_factory=list)  # POS variant ids
    ecom_of: dict[str, int] = field(default_factory=dict)  # POS variant id -> linked eCom variant id

    def poll(self) -> None:
        """One change_poller run; the order queues it may fill are drained (this benchmark measures stock)."""
        from pos_ecom_sync.intake.poller import ChangePoller

        from tests.support import drain_queue

        connection = self.store.get_connection("bench")
        assert connection is not None
        ChangePoller(self.store, self.publisher).poll(connection, XSeriesFeeds(self.pos_client), self.ecom_client)
        for concern in ("orders", "statuses"):
            drain_queue(self.sqs, self.env[f"{concern.upper()}_QUEUE_URL"])

    def level_of(self, ecom_id: int) -> int:
        with self.ecom.lock:
            return int(self.ecom.tables["variants"][ecom_id]["stockLevel"])

    def wait_for(self, ecom_id: int, level: int, timeout: float = 20.0) -> float:
        """When eCom showed `level` for the variant (perf_counter)."""
        deadline = time.perf_counter() + timeout
        while self.level_of(ecom_id) != level:
            if time.perf_counter() > deadline:
                raise TimeoutError(f"eCom variant {ecom_id} never showed {level}")
            time.sleep(0.0005)
        return time.perf_counter()

    def expected(self, pid: str) -> int:
        """The eCom level the POS variant's levels add up to (negative outlet levels count as 0)."""
        return sum(max(0, self.pos.level(pid, o)) for o in self.outlets)

    def writes(self) -> int:
        return int(self.ecom.calls_by_route["PUT /{lang}/variants/{id}.json"])

    def drain(self) -> None:
        """Every webhook delivered and every stock message handled, including the echoes of our own writes."""
        for _ in range(3):
            self.pos.wait_for_webhooks()
            self.ecom.wait_for_webhooks()
            while self.stock.poll_once(0):
                pass

    def stop(self) -> None:
        self.api.stop()
        self.pos.stop()
        self.ecom.stop()


def open_stock_rig() -> StockRig:
    """Provision the template (in moto), start both simulators and the webhook API, and save the connection with
    its secrets. Call inside `mock_aws()`."""
    from pos_ecom_sync.models.connection import ConnectionSecrets
    from pos_ecom_sync.profiles.xseries.client import XSeriesClient
    from pos_ecom_sync.queues import ChangePublisher
    from pos_ecom_sync.secrets import write_connection_secrets
    from pos_ecom_sync.state.store import SyncStore

    from local_stack.api_server import LocalApi
    from local_stack.demo import DEMO_SECRETS
    from local_stack.simulators.ecom import EcomSimulator
    from local_stack.simulators.xseries import XSeriesSimulator

    session, resources, env = provision_bench_stack()
    sqs = session.client("sqs")
    store = SyncStore(env["TABLE_NAME"], resource=session.resource("dynamodb"))
    pos = XSeriesSimulator(token=DEMO_SECRETS["pos_access_token"], seed=3, rate_limit=0)
    ecom = EcomSimulator(
        api_key=DEMO_SECRETS["ecom_api_key"],
        api_secret=DEMO_SECRETS["ecom_api_secret"],
        webhook_secret=DEMO_SECRETS["ecom_webhook_secret"],
        seed=3,
        # Announced (and so learned by the rate budget) far above the real windows: this part measures
        # latency, not throttling; part 3 runs under the documented limits.
        limits=(1_000_000, 10_000_000, 100_000_000),
        per_second=None,
    )
    pos_url, ecom_url = pos.start(), ecom.start()
    outlets = [o["id"] for o in pos.outlets()]
    store.save_connection(
        Connection(
            connection_id="bench",
            pos_base_url=pos_url,
            ecom_base_url=ecom_url,
            connected_outlet_ids=outlets,
            primary_outlet_id=outlets[0],
        ),
        create=True,
    )
    write_connection_secrets(
        session.client("secretsmanager"),
        env["SECRET_PREFIX"],
        "bench",
        ConnectionSecrets.model_validate(DEMO_SECRETS),
    )
    functions = {name: TimedFunction(spec) for name, spec in resources.functions.items()}
    api = LocalApi(resources.routes, dict(functions), port=0)
    api.start()
    return StockRig(
        env=env,
        sqs=sqs,
        store=store,
        pos=pos,
        ecom=ecom,
        api=api,
        outlets=outlets,
        functions=functions,
        subscriptions={s.function: s for s in resources.subscriptions},
        publisher=ChangePublisher(lambda concern: env[f"{concern.upper()}_QUEUE_URL"], client=sqs),
        pos_client=XSeriesClient(pos_url, DEMO_SECRETS["pos_access_token"], InMemoryRateBudget()),
        ecom_client=EcomClient(
            ecom_url, DEMO_SECRETS["ecom_api_key"], DEMO_SECRETS["ecom_api_secret"], InMemoryRateBudget()
        ),
    )


def sync_catalog_and_subscribe(rig: StockRig) -> None:
    """The catalog (6 families x 4 variants) and its stock in eCom before anything is measured, both vendors'
    webhooks pointed at the local API, and the stock event source started (long polls of 1 s, as in `make run`)."""
    from pos_ecom_sync.profiles.xseries.client import XSeriesClient

    from local_stack.demo import DEMO_SECRETS
    from local_stack.event_sources import SqsPoller

    rig.pos.seed_catalog(6, 4, seed=3)
    rig.poll()
    catalog = SqsPoller(rig.sqs, rig.subscriptions["ProductSyncFunction"], rig.functions["ProductSyncFunction"], print)
    rig.stock = SqsPoller(rig.sqs, rig.subscriptions["StockSyncFunction"], rig.functions["StockSyncFunction"], print)
    while catalog.poll_once(0):
        pass
    while rig.stock.poll_once(0):
        pass
    rig.variants = [p["id"] for p in rig.pos.products() if p.get("variant_parent_id")]
    rig.ecom_of = {
        pid: link.ecom_variant_id
        for pid in rig.variants
        if (link := rig.store.variant_link("bench", pos_product_id=pid)) is not None
    }
    base = f"{rig.api.url}/connections/bench/webhooks"
    XSeriesClient(rig.pos.url, DEMO_SECRETS["pos_access_token"], InMemoryRateBudget()).create_webhook(
        f"{base}/pos?token={DEMO_SECRETS['pos_webhook_token']}", "inventory.update"
    )
    rig.ecom_client.create_webhook("variants", "*", f"{base}/ecom")
    rig.stock.start()


def measure_webhook_path(rig: StockRig, figures: PathFigures, changes: int, rng: random.Random) -> None:
    """`changes` POS stock changes, one at a time, each timed until eCom shows the new total, and split into
    intake, queue wait and the processing of the stock_sync invocation that wrote it."""
    stock_fn = rig.functions["StockSyncFunction"]
    ingest_fn = rig.functions["WebhookIngestFunction"]
    for n in range(changes):
        pid = rig.variants[n % len(rig.variants)]
        outlet = rig.outlets[n % 2]
        current = rig.pos.level(pid, outlet)
        # Always a change of the total (a negative level moving to another negative one would not be).
        new_level = rng.choice([n for n in range(1, 30) if n != max(0, current)])
        spans_before = len(stock_fn.spans)
        ingest_before = len(ingest_fn.spans)
        started = time.perf_counter()
        rig.pos.set_inventory(pid, outlet, new_level)
        done = rig.wait_for(rig.ecom_of[pid], rig.expected(pid))
        figures.end_to_end.append(done - started)
        # Queued when webhook_ingest returned (it sent the message): the first ingest after the change.
        intake = next(sp for sp in ingest_fn.spans[ingest_before:] if sp[0] >= started)
        queued = _ended(intake)
        # The invocation that made the write: the last one started before eCom showed the level.
        span = [sp for sp in stock_fn.spans[spans_before:] if sp[0] <= done][-1]
        _ended(span)
        figures.intake.append(queued - started)
        figures.queue_wait.append(max(0.0, span[0] - queued))
        figures.processing.append(span[1] - span[0])
        rig.pos.wait_for_webhooks()
        rig.ecom.wait_for_webhooks()
        time.sleep(0.05)  # let the echo of our write be handled before the next change


def _ended(span: list[float]) -> float:
    """When the invocation of `span` returned, waiting for it if it still runs."""
    while not span[1]:
        time.sleep(0.001)
    return span[1]


def measure_poll_path(rig: StockRig, figures: PathFigures) -> None:
    """The poll path: a POS change found by the poller's next run (no webhook); times the poll run."""
    rig.stock.stop()
    time.sleep(1.5)
    for n in range(10):
        pid = rig.variants[n]
        rig.pos.set_inventory(pid, rig.outlets[0], rig.pos.level(pid, rig.outlets[0]) + 1)
        started = time.perf_counter()
        rig.poll()
        figures.poll_run.append(time.perf_counter() - started)
        while rig.stock.poll_once(0):
            pass


def measure_bursts(rig: StockRig, figures: PathFigures, rng: random.Random) -> None:
    """eCom writes when every change arrives as its own webhook and message: one variant changed 50 times, then
    20 variants x 10 changes."""
    rig.drain()
    before = rig.writes()
    pid = rig.variants[0]
    for level in range(50):
        rig.pos.set_inventory(pid, rig.outlets[1], level)
    rig.drain()
    assert rig.level_of(rig.ecom_of[pid]) == rig.expected(pid)
    figures.burst_one = (50, rig.writes() - before)
    before = rig.writes()
    for round_ in range(10):
        for pid in rig.variants[:20]:
            rig.pos.set_inventory(pid, rig.outlets[round_ % 2], rng.randint(0, 30))
    rig.drain()
    assert all(rig.level_of(rig.ecom_of[p]) == rig.expected(p) for p in rig.variants[:20])
    figures.burst_many = (200, rig.writes() - before)


def local_path(changes: int = 60) -> PathFigures:
    from moto import mock_aws

    figures = PathFigures()
    with mock_aws():
        rig = open_stock_rig()
        sync_catalog_and_subscribe(rig)
        rng = random.Random(3)  # one sequence for the webhook changes and the bursts
        measure_webhook_path(rig, figures, changes, rng)
        measure_poll_path(rig, figures)
        measure_bursts(rig, figures, rng)
        rig.stop()
    return figures


# -- 3: a 70,000-variant outlet disconnect on a simulated clock -----------------------------------------------------


class SimClock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class MemoryStock:
    """The stock worker's store and links, in memory (same contract: conditional saves, id-ordered chunks)."""

    def __init__(self) -> None:
        self.states: dict[str, VariantStockState] = {}
        self.links: dict[str, int] = {}
        self.applied = AppliedOutlets()
        self._ordered: list[str] = []

    def get_stock(self, connection_id: str, pos_product_id: str) -> VariantStockState:
        return self.states.get(pos_product_id) or VariantStockState(product_id=pos_product_id)

    def save_stock(self, connection_id: str, loaded_revision: int, new_state: VariantStockState) -> None:
        held = self.states.get(new_state.product_id)
        if (held.revision if held else 0) != loaded_revision:
            raise Conflict("changed")
        self.states[new_state.product_id] = new_state

    def stock_chunk(self, connection_id: str, after: str | None, limit: int) -> StockChunk:
        if len(self._ordered) != len(self.links):
            self._ordered = sorted(self.links)
        from bisect import bisect_right

        start = bisect_right(self._ordered, after) if after is not None else 0
        ids = self._ordered[start : start + limit]
        more = start + limit < len(self._ordered)
        entries = tuple(StockEntry(p, self.links[p], self.get_stock(connection_id, p)) for p in ids)
        return StockChunk(entries, ids[-1] if more else None)

    def get_applied_outlets(self, connection_id: str) -> AppliedOutlets:
        return self.applied

    def save_applied_outlets(
        self, connection_id: str, applied: AppliedOutlets, outlets: Sequence[str], primary_outlet_id: str | None
    ) -> AppliedOutlets:
        self.applied = AppliedOutlets(tuple(sorted(outlets)), primary_outlet_id, applied.revision + 1)
        return self.applied

    def variant_link(
        self, connection_id: str, *, pos_product_id: str | None = None, ecom_variant_id: int | None = None
    ) -> VariantLink | None:
        if pos_product_id in self.links:
            return VariantLink(pos_product_id, pos_product_id, 1, self.links[pos_product_id])
        return None


class MemoryQueue:
    def __init__(self) -> None:
        self.messages: list[ChangeMessage] = []

    def publish(self, outgoing: Sequence[Outgoing]) -> int:
        self.messages.extend(item.message for item in outgoing)
        return len(outgoing)


class Connections:
    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    def get_connection(self, connection_id: str) -> Connection | None:
        return self.connection

    def save_connection(self, connection: Connection, *, create: bool = False) -> None:
        self.connection = connection


@dataclass
class DisconnectFigures:
    variants: int
    changed: int
    ecom_calls: int
    stock_writes: int
    messages: int
    max_variants_per_message: int
    max_writes_per_message: int
    simulated_s: float
    wall_s: float
    shipping_retired: int  # shipping methods of the disconnected outlet named for the operator
    shipping_calls: int  # eCom calls on shipping methods (none: eCom documents no write on them)


def disconnect_outlet(variants: int = 70_000, seed: int = 7) -> DisconnectFigures:
    rng = random.Random(seed)
    clock = SimClock()
    outlets = ["outlet-a", "outlet-b"]
    memory = MemoryStock()
    changed = 0
    for n in range(variants):
        pid = f"{n:08d}"
        levels = {}
        for outlet in outlets:  # the simulator's seed distribution: 12% at 0 or below, else 1..30
            level = rng.choice((0, 0, -2)) if rng.random() < 0.12 else rng.randint(1, 30)
            levels[outlet] = OutletLevel(level=level, version=1000 + n)
        total = sum(max(0, held.level) for held in levels.values())
        changed += max(0, levels["outlet-b"].level) > 0
        memory.links[pid] = 5_000_000 + n
        memory.states[pid] = VariantStockState(
            product_id=pid, ecom_variant_id=5_000_000 + n, levels=levels, last_written=total, revision=1
        )
    memory.applied = AppliedOutlets(tuple(outlets), "outlet-a", 1)
    routes: dict[str, int] = {}

    def answer(request: httpx.Request) -> httpx.Response:
        key = f"{request.method} {request.url.path.split('/')[2]}"
        routes[key] = routes.get(key, 0) + 1
        stamp = datetime.fromtimestamp(clock(), UTC).isoformat(timespec="seconds")
        body = json.loads(request.content or b"{}")
        if "variant" in body:
            return httpx.Response(200, json={"variant": {**body["variant"], "updatedAt": stamp}})
        return httpx.Response(404, json={"error": {"code": 404, "message": "not found"}})

    budget = InMemoryRateBudget(clock=clock, sleep=clock.sleep)
    ecom = EcomClient(
        "http://ecom",
        "k",
        "s",
        budget,
        transport=httpx.MockTransport(answer),
        max_wait_s=10 * 86_400,  # simulated: a throttled chunk waits (Lambda: delayed in the queue, same total)
        clock=clock,
        sleep=clock.sleep,
    )
    connection = Connection(
        connection_id="bench",
        pos_base_url="http://pos",
        ecom_base_url="http://ecom",
        connected_outlet_ids=outlets,
        primary_outlet_id="outlet-a",
        shipping_method_outlets={"2": "outlet-b", "3": "outlet-a"},
    )
    connections = Connections(connection)
    queue = MemoryQueue()
    started_sim, started_wall = clock(), time.perf_counter()
    request_outlet_change(
        connections, queue, "bench", ["outlet-a"], "outlet-a", now=datetime.fromtimestamp(clock(), UTC)
    )
    messages = max_variants = max_writes = writes = calls = retired = 0
    while queue.messages:
        message = queue.messages.pop(0)
        worker = StockSync(connections.connection, XSeriesInventory(_NoPos()), ecom, memory, memory, queue, clock=clock)
        result = worker.handle(message)
        messages += 1
        max_variants = max(max_variants, result.variants)
        max_writes = max(max_writes, result.ecom_writes)
        writes += result.ecom_writes
        calls += result.ecom_calls
        retired += len(result.shipping_methods_to_disable)
    return DisconnectFigures(
        variants=variants,
        changed=changed,
        ecom_calls=calls,
        stock_writes=writes,
        messages=messages,
        max_variants_per_message=max_variants,
        max_writes_per_message=max_writes,
        simulated_s=clock() - started_sim,
        wall_s=time.perf_counter() - started_wall,
        shipping_retired=retired,
        shipping_calls=sum(n for route, n in routes.items() if "shippingmethods" in route),
    )


class _NoPos:
    """Every level is known: a recomputation never reads the POS (a read here would be a bug worth seeing)."""

    def list_product_inventory(self, product_id: str) -> list[dict[str, Any]]:
        raise AssertionError(f"unexpected POS read of {product_id}")

    def list_registers(self) -> list[dict[str, Any]]:
        return []


def lower_bound_s(calls: int) -> float:
    """Shortest time `calls` eCom calls can take under the documented windows (each window full, back to back)."""
    from tests.perf.virtual_time import windows_lower_bound_s

    return windows_lower_bound_s(calls, [(w.limit, w.length_s) for w in ECOM_POLICY.windows])[0]


# -- 4: a burst of POS stock changes under eCom's limits, virtual clock ------------------------------------------


@dataclass
class Change:
    at: float  # seconds after the burst started
    pos_id: str
    outlet: str
    level: int


def plan_changes(variants: list[str], outlets: list[str], changes: int, spread_s: float, seed: int) -> list[Change]:
    """`changes` POS level changes over `spread_s`: a tenth of the variants are hot (half the changes, so several
    each, some across polls), the others get the rest; one change in five puts a level back where it was."""
    rng = random.Random(seed)
    hot = variants[: max(1, len(variants) // 10)]
    planned, last = [], {}
    for n in range(changes):
        pos_id = rng.choice(hot) if rng.random() < 0.5 else rng.choice(variants)
        outlet = rng.choice(outlets)
        previous = last.get((pos_id, outlet))
        level = previous[1] if previous and rng.random() < 0.2 else rng.randint(0, 30)
        last[(pos_id, outlet)] = (level, previous[0] if previous else level)
        planned.append(Change(spread_s * n / changes, pos_id, outlet, level))
    return planned


def settled_levels(initial: dict[str, int], changes: list[Change], polls: list[float], outlets: list[str],
                   levels: dict[tuple[str, str], int]) -> int:  # fmt: skip
    """eCom writes a live sync needs when it writes each total that a poll found changed (it cannot know what comes
    after): per variant, the polls whose total differs from the one the previous poll found."""
    current = dict(levels)
    totals = dict(initial)
    writes, index = 0, 0
    for poll in sorted(polls):
        while index < len(changes) and changes[index].at <= poll:
            change = changes[index]
            current[(change.pos_id, change.outlet)] = change.level
            index += 1
        for pos_id in initial:
            total = sum(max(0, current[(pos_id, o)]) for o in outlets)
            if total != totals[pos_id]:
                writes += 1
                totals[pos_id] = total
    return writes


def stock_burst(changes: int = 5000, families: int = 700, spread_s: float = 600.0, workers: int | None = None,
                seed: int = 11) -> dict[str, Any]:  # fmt: skip
    """`changes` POS stock changes over `spread_s` simulated seconds on `families` x 3 variants at 3 outlets, found by
    change_poller's real handler every minute and written by stock_sync's real handler in `workers` concurrent
    sandboxes (default: the template's MaximumConcurrency), eCom at its real limits, one virtual clock."""
    from pos_ecom_sync import runtime
    from pos_ecom_sync.models.feeds import Cursor
    from pos_ecom_sync.state.stock_store import StockStore

    from local_stack.cfn_yaml import load_template
    from local_stack.functions import LocalFunction
    from local_stack.lambda_events import scheduled_event
    from local_stack.provision import TEMPLATE_PATH
    from tests.perf.bench_orders import (
        AWS_CALLS,
        CONNECTION,
        burst_bound,
        open_shop,
        simulator_windows,
        template_concurrency,
    )
    from tests.perf.virtual_sqs import VirtualSqs, drain_with_workers, runtime_sqs
    from tests.perf.virtual_time import SharedClock, virtual_defaults

    if workers is None:
        workers = template_concurrency(load_template(TEMPLATE_PATH), "StockSyncFunction")
    clock = SharedClock(float(int(time.time())))
    sqs = VirtualSqs(clock)
    with virtual_defaults(clock, clock.sleep), runtime_sqs(sqs):
        shop = open_shop("bench-stock-burst", families=families, limits=True, clock=clock, sync_catalog=False)
        outlets = list(shop.connection.connected_outlet_ids)
        url = shop.queue_url("stock")
        sqs.mirror(shop.session.client("sqs"), [url])
        resource = shop.session.resource("dynamodb")
        store = StockStore(shop.env["TABLE_NAME"], resource=resource)
        # The state a running sync keeps: every outlet's level known at its version, eCom showing the total.
        inventory = {(row["product_id"], row["outlet_id"]): row for row in shop.pos.inventory()}
        levels = {key: int(row["inventory_level"]) for key, row in inventory.items()}
        initial: dict[str, int] = {}
        ecom_of = dict(shop.variants)
        for pos_id, ecom_id in shop.variants:
            held = {
                o: OutletLevel(level=levels[(pos_id, o)], version=inventory[(pos_id, o)]["version"]) for o in outlets
            }
            total = sum(max(0, level.level) for level in held.values())
            initial[pos_id] = total
            shop.ecom.tables["variants"][ecom_id]["stockLevel"] = total
            stored = store.get_stock(CONNECTION, pos_id).revision  # open_shop may have saved the levels already
            store.save_stock(CONNECTION, stored, VariantStockState(
                product_id=pos_id, ecom_variant_id=ecom_id, levels=held, last_written=total, revision=stored + 1,
            ))  # fmt: skip
        for feed, rows in (("inventory", shop.pos.inventory()), ("products", shop.pos.products()),
                           ("sales", shop.pos.sales())):  # fmt: skip
            newest = max((int(r["version"]) for r in rows), default=0)
            if newest:  # a running sync's cursors: only what changes from now on is read
                from pos_ecom_sync.state.store import SyncStore

                SyncStore(shop.env["TABLE_NAME"], resource=resource).advance_cursor(
                    CONNECTION, Cursor(f"pos:{feed}", None), str(newest)
                )
        plan = plan_changes(sorted(initial), outlets, changes, spread_s, seed)
        clock.sleep(86_400 + 60)  # past every window the set-up opened
        started = clock()
        poller = LocalFunction(shop.resources.functions["ChangePollerFunction"])
        polls: list[float] = []
        state = {"shop_done": False, "poller_done": False}

        def shop_changes() -> None:
            for change in plan:
                clock.sleep(started + change.at - clock())
                shop.pos.set_inventory(change.pos_id, change.outlet, change.level)
            state["shop_done"] = True

        def schedule() -> None:  # EventBridge's rate(1 minute)
            while True:
                done_before = state["shop_done"]
                polls.append(clock() - started)
                poller.invoke(scheduled_event("bench-poll"))
                if done_before:
                    state["poller_done"] = True
                    return
                clock.sleep(60.0)

        subscription = next(s for s in shop.resources.subscriptions if s.function == "StockSyncFunction")
        routes_before = Counter(shop.ecom.calls_by_route)
        ecom_before, pos_before = shop.ecom.requests, shop.pos.requests
        throttled_before = shop.pos.throttled, shop.ecom.throttled
        aws_before = Counter(AWS_CALLS)
        started_real = time.perf_counter()
        run = drain_with_workers(
            clock, sqs, subscription, shop.resources.functions["StockSyncFunction"], workers,
            producers_done=lambda: state["poller_done"], others=(shop_changes, schedule),
        )  # fmt: skip
        real_s = time.perf_counter() - started_real
        routes = Counter(shop.ecom.calls_by_route) - routes_before
        writes = routes["PUT /{lang}/variants/{id}.json"]
        ecom_calls = shop.ecom.requests - ecom_before
        final = {pid: sum(max(0, shop.pos.level(pid, o)) for o in outlets) for pid in initial}
        shown = {pid: int(shop.ecom.tables["variants"][ecom_of[pid]]["stockLevel"]) for pid in initial}
        minimum = sum(1 for pid in initial if final[pid] != initial[pid])
        settled = settled_levels(initial, plan, polls, outlets, levels)
        windows = {"eCom": simulator_windows(shop.ecom)}
        # Nothing can be written before the poll that finds the last change.
        arrival = min((p for p in polls if p >= plan[-1].at), default=0.0) if plan else 0.0

        def bound(calls: int) -> tuple[float, str]:
            seconds, binding = burst_bound({"eCom": calls}, windows)
            return (seconds, binding) if seconds >= arrival else (arrival, "the poll finding the last change")

        (bound_s, binding), (ideal_s, ideal_binding) = bound(ecom_calls), bound(minimum)
        result = {
            "changes": changes,
            "variants": len(initial),
            "changed_variants": len({c.pos_id for c in plan}),
            "outlets": len(outlets),
            "spread_s": spread_s,
            "workers": workers,
            "polls": len(polls),
            "real_s": real_s,
            "drain_s": max(run.last_done_at, started) - started,
            "bound_s": bound_s,
            "binding": binding,
            "ideal_bound_s": ideal_s,
            "ideal_binding": ideal_binding,
            "ecom_writes": writes,
            "ecom_calls": ecom_calls,
            "ecom_routes": routes,
            "settled_levels": settled,
            "minimum_writes": minimum,
            "pos_calls": shop.pos.requests - pos_before,
            "lost": sum(1 for pid in initial if shown[pid] != final[pid]),
            "ecom_429": shop.ecom.throttled - throttled_before[1],
            "pos_429": shop.pos.throttled - throttled_before[0],
            "messages": sqs.queues[url].sent,
            "records": run.records,
            "invocations": run.invocations,
            "delayed": len(sqs.visibility_changes),
            "aws_calls": Counter(AWS_CALLS) - aws_before,
            "dead_lettered": sum(q.sent for u, q in sqs.queues.items() if u.endswith("-dlq.fifo")),
        }
        shop.pos.stop()
        shop.ecom.stop()
    runtime.reset()
    return result


def print_stock_burst(b: dict[str, Any]) -> None:
    print(
        f"4. burst of {b['changes']:,} POS stock changes over {b['spread_s'] / 60:g} simulated min "
        f"({b['changed_variants']:,} of {b['variants']:,} variants at {b['outlets']} outlets; a tenth of them hot), "
        f"change_poller's handler every minute ({b['polls']} polls) -> stock queue -> stock_sync's handler in "
        f"{b['workers']} concurrent sandboxes -> eCom at its real limits, virtual clock:"
    )
    print(
        f"  eCom stock writes {b['ecom_writes']:,} (a live sync writes each total a poll found changed: "
        f"{b['settled_levels']:,}; the fewest, one per variant whose final total changed: {b['minimum_writes']:,}); "
        f"eCom calls {b['ecom_calls']:,}; lost {b['lost']} (eCom level != POS total), 429s eCom {b['ecom_429']} / POS "
        f"{b['pos_429']}, dead-lettered {b['dead_lettered']}"
    )
    print(
        f"  drained in {b['drain_s'] / 60:.1f} simulated min ({b['real_s']:.0f} s real) vs lower bound "
        f"{b['bound_s'] / 60:.1f} min ({b['binding']} binds) for the eCom calls made; for the fewest writes "
        f"{b['ideal_bound_s'] / 60:.1f} min ({b['ideal_binding']})"
    )
    print(
        f"  {b['messages']:,} stock messages queued, {b['records']:,} records handled in {b['invocations']:,} "
        f"invocations; records delayed through SQS (throttled or busy): {b['delayed']:,}; AWS calls per change "
        f"{sum(b['aws_calls'].values()) / b['changes']:.1f} ("
        + ", ".join(f"{n / b['changes']:.2f} {call}" for call, n in b["aws_calls"].most_common(3))
        + ")"
    )


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m tests.perf.bench_stock", description=__doc__)
    parser.add_argument("--burst", type=int, default=5000, help="stock changes in section 4 (0: skip)")
    parser.add_argument("--burst-families", type=int, default=700, help="x 3 variants")
    parser.add_argument("--burst-spread-s", type=float, default=600.0, help="simulated seconds the changes span")
    args = parser.parse_args(argv)
    print(f"python {sys.version.split()[0]} on {os.cpu_count()} cores")
    path = local_path()
    print(
        f"POS stock change -> eCom updated, webhook path, {len(path.end_to_end)} changes (in-process local stack, "
        f"moto in-process): end to end {ms(path.end_to_end)}"
    )
    print(f"  webhook delivery + webhook_ingest (to queued): {ms(path.intake)}")
    print(f"  queue wait (event source receive window, 1 s long poll): {ms(path.queue_wait)}")
    print(
        f"  stock_sync processing (the invocation that wrote: state read, claim, PUT, finish; moto + simulators): "
        f"{ms(path.processing)}"
    )
    print(
        f"  poll path instead of a webhook: schedule window 0-60 s (template rate(1 minute): p50 30 s, p95 57 s) "
        f"+ one poll run {ms(path.poll_run)} + the processing above"
    )
    one_changes, one_writes = path.burst_one
    many_changes, many_writes = path.burst_many
    print(
        f"eCom writes under bursts: 1 variant x {one_changes} rapid changes -> {one_writes} write(s) "
        f"({one_writes / one_changes:.2f} per change); 20 variants x 10 changes -> {many_writes} write(s) "
        f"({many_writes / many_changes:.2f} per change: moto hands out a FIFO batch round-robin over message groups, "
        f"so no batch held two changes of one variant; SQS fills a batch from one group first); echoes of our own "
        f"writes cost none"
    )
    figures = disconnect_outlet()
    days = figures.simulated_s / 86_400
    print(
        f"disconnecting 1 of 2 outlets, {figures.variants:,} variants (stock state in memory, real StockSync + "
        f"EcomClient + rate budget on a simulated clock): {figures.changed:,} totals changed -> "
        f"{figures.stock_writes:,} stock writes, {figures.ecom_calls:,} eCom calls in all "
        f"({figures.shipping_calls} on shipping methods; {figures.shipping_retired} retired and named for the "
        f"operator), {figures.messages:,} queued messages (<= {figures.max_variants_per_message} variants and "
        f"<= {figures.max_writes_per_message} writes each)"
    )
    print(
        f"  simulated duration under 300/5 min, 3,000/h, 12,000/day: {figures.simulated_s / 3600:,.1f} h "
        f"({days:.2f} days; lower bound for {figures.ecom_calls:,} calls "
        f"{lower_bound_s(figures.ecom_calls) / 86_400:.2f} days); local CPU {figures.wall_s:.0f} s"
    )

    if args.burst:
        from moto import mock_aws

        from tests.perf.bench_orders import dynamodb_one_call_at_a_time

        with mock_aws(), dynamodb_one_call_at_a_time():
            burst = stock_burst(args.burst, args.burst_families, args.burst_spread_s)
        print_stock_burst(burst)
        if burst["lost"]:
            raise SystemExit(f"{burst['lost']} variants show another level in eCom than their POS total")


if __name__ == "__main__":
    main()
