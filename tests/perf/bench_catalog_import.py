"""Benchmark: the initial catalog import (POS -> eCom) of 70,000 variants on a virtual clock. Prints figures only.

Run: `.venv/bin/python -m tests.perf.bench_catalog_import [--families 14000 --variants 5]` (scale down first:
`--families 500` takes seconds; the full size about 10 minutes of CPU and 0.8 GB).

What runs, and what stands in for AWS:
- The X-Series and eCom simulators with their real limits (POS 350 / 5 min; eCom 300 / 5 min, 3,000 / h,
  12,000 / day, 20 / s), called in-process through an httpx transport: every request goes through the
  simulator's whole pipeline (auth, rate windows, 429s, routing, handlers) but no socket. Subclasses add lookup
  indexes (the plain simulators scan every row per lookup: quadratic at 70,000 variants); `--plain-simulators`
  runs without them and prints the same figures, only slower.
- One virtual clock shared by the simulators, the budgets and the clients: `sleep()` moves it forward at once,
  so weeks of rate-limited traffic run in minutes of CPU. Each call costs `--latency-ms` of simulated time.
- The real ChangePoller walks the POS products feed from cursor None (the initial import), paced by
  POLL_MAX_PRODUCTS_BACKLOG, every simulated minute. It queues one message per product family and page, as in
  production (a family split by a page boundary gets one message on each page).
- No SQS/moto (far too slow at this scale): an in-memory FIFO queue keeps message groups in order, hides records
  skipped behind a failed one for the queue's visibility timeout, and counts receives against maxReceiveCount.
- One worker handles batches of 10 like product_sync: a new CatalogSync per message (runtime.catalog_sync),
  catalog clients with reserve_share=CATALOG_RATE_RESERVE_SHARE and max_wait_s=WORKER_MAX_RATE_WAIT_SECONDS.
  A RateLimited record comes back at retry_at: `--redelivery hold` (default) retries it then, before anything
  else (the family-by-family import); `--redelivery sqs` hides it until retry_at (at most 12 h) while the worker
  goes on with other groups, as the SQS event source really does (every throttled delivery is a receive).
- Catalog state lives in a small in-memory CatalogStateStore (conditional on revision, JSON like the table).
- A stock writer (reserve_share=0, the same shared budget) PUTs one variant's stockLevel every `--stock-every-s`
  simulated seconds while the import runs; its wait is from the moment it wants a slot to the moment it gets one.
Then a second pass re-queues the whole unchanged feed (cursor reset): it should write nothing to eCom.
"""

from __future__ import annotations

import argparse
import heapq
import math
import os
import resource
import sys
import time
import tracemalloc
from array import array
from bisect import bisect_left
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import parse_qs

import httpx
from pos_ecom_sync.catalog.sync import CatalogSync
from pos_ecom_sync.connectors.ecom import EcomClient, OrderPage
from pos_ecom_sync.errors import Conflict, RateLimited
from pos_ecom_sync.intake.poller import ChangePoller, FeedReport
from pos_ecom_sync.models.catalog import CatalogState, StoredCatalogState
from pos_ecom_sync.models.connection import Connection
from pos_ecom_sync.models.feeds import Cursor
from pos_ecom_sync.models.messages import ChangeMessage
from pos_ecom_sync.profiles.xseries.catalog import XSeriesCatalog
from pos_ecom_sync.profiles.xseries.client import ChangePage, XSeriesClient
from pos_ecom_sync.profiles.xseries.feeds import XSeriesFeeds
from pos_ecom_sync.queues import Outgoing
from pos_ecom_sync.ratelimit import (
    ECOM_POLICY,
    BudgetState,
    Observation,
    RatePolicy,
    counted_until,
    initial_state,
    reconcile,
    take,
    wait_for_slot,
)
from pos_ecom_sync.reference import ReferenceCache
from pos_ecom_sync.settings import RuntimeSettings
from pos_ecom_sync.workers import MAX_VISIBILITY_S

from local_stack.cfn_yaml import load_template
from local_stack.provision import TEMPLATE_PATH
from local_stack.simulators.common import Request as SimRequest
from local_stack.simulators.common import Response, VendorSimulator
from local_stack.simulators.ecom import EcomSimulator
from local_stack.simulators.xseries import XSeriesSimulator

SETTINGS = RuntimeSettings.model_fields
RESERVE_SHARE = float(SETTINGS["CATALOG_RATE_RESERVE_SHARE"].default)
WORKER_MAX_WAIT_S = float(SETTINGS["WORKER_MAX_RATE_WAIT_SECONDS"].default)
POLL_PAGE_SIZE = int(SETTINGS["POLL_PAGE_SIZE"].default)
MAX_PRODUCTS_BACKLOG = int(SETTINGS["POLL_MAX_PRODUCTS_BACKLOG"].default)
# template.yaml, ProductsQueue / ProductSyncFunction.
QUEUE_VISIBILITY_S = 360
# What template.yaml gives the products queue (a throttled delivery counts as a receive).
MAX_RECEIVE_COUNT = int(
    load_template(TEMPLATE_PATH)["Resources"]["ProductsQueue"]["Properties"]["RedrivePolicy"]["maxReceiveCount"]
)
BATCH_SIZE = 10
POLL_EVERY_S = 60.0
START = datetime(2025, 3, 3, tzinfo=UTC).timestamp()
CONNECTION_ID = "bench"
DAY_S = 86_400.0


# -- virtual time ------------------------------------------------------------------------------------


class VirtualClock:
    """Simulated epoch seconds. `sleep` advances at once and fires due timers (the stock writer) on the way.

    A timer's action runs with timers held (it may sleep itself); timers that fell due meanwhile fire after it,
    late, which is what a single serial stock worker would see too.
    """

    def __init__(self, start: float) -> None:
        self.now = start
        self._timers: list[tuple[float, int, Callable[[float], None]]] = []
        self._seq = 0
        self._firing = False

    def __call__(self) -> float:
        return self.now

    def at(self, due: float, action: Callable[[float], None]) -> None:
        self._seq += 1
        heapq.heappush(self._timers, (due, self._seq, action))

    def sleep(self, seconds: float) -> None:
        self.advance_to(self.now + max(seconds, 0.0))

    def advance_to(self, moment: float) -> None:
        while not self._firing and self._timers and self._timers[0][0] <= moment:
            due, _, action = heapq.heappop(self._timers)
            self.now = max(self.now, due)
            self._firing = True
            try:
                action(due)
            finally:
                self._firing = False
        self.now = max(self.now, moment)


# -- the shared rate budget -----------------------------------------------------------------------------


class SharedBudget:
    """One budget state per API, shared by callers that each leave their own share to others.

    InMemoryRateBudget fixes one reserve share per instance and keeps its state to itself, so two priorities
    cannot share it; DynamoRateBudget shares through the table. This does the same in memory, on the library's
    own window arithmetic (`take`, `reconcile`, `wait_for_slot`).
    """

    def __init__(self, clock: VirtualClock) -> None:
        self.clock = clock
        self.states: dict[str, BudgetState] = {}

    def view(self, reserve_share: float) -> BudgetView:
        return BudgetView(self, reserve_share)


class BudgetView:
    def __init__(self, shared: SharedBudget, reserve_share: float) -> None:
        self.shared = shared
        self.reserve_share = reserve_share
        self.last_granted_at = 0.0  # when this caller last got a slot (the stock writer's wait ends there)

    def acquire(self, policy: RatePolicy, *, max_wait_s: float, cost: float = 1.0, slots: int = 1) -> float:
        states = self.shared.states

        def try_take(now: float) -> float | None:
            outcome = take(
                policy, states.get(policy.api) or initial_state(policy), now, n=slots, reserve_share=self.reserve_share
            )
            if outcome.state is None:
                return outcome.retry_at
            states[policy.api] = outcome.state
            self.last_granted_at = now
            return None

        clock = self.shared.clock
        wait_for_slot(try_take, api=policy.api, max_wait_s=max_wait_s, clock=clock, sleep=clock.sleep)
        return counted_until(states[policy.api])

    def observe(self, policy: RatePolicy, observation: Observation) -> None:
        states = self.shared.states
        current = states.get(policy.api) or initial_state(policy)
        states[policy.api] = reconcile(policy, current, observation, self.shared.clock())


# -- the simulators, in-process ---------------------------------------------------------------------------


class SimulatorTransport(httpx.BaseTransport):
    """Hands each request to a simulator's pipeline; records when it was served and the simulator's CPU."""

    def __init__(self, simulator: VendorSimulator, clock: VirtualClock, latency_s: float) -> None:
        self.simulator = simulator
        self.clock = clock
        self.half_latency_s = latency_s / 2
        self.served_at = array("d")
        self.simulator_cpu_s = 0.0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.clock.sleep(self.half_latency_s)
        query = {k: v[-1] for k, v in parse_qs(request.url.query.decode(), keep_blank_values=True).items()}
        headers = {k.lower(): v for k, v in request.headers.items()}
        sim_request = SimRequest(request.method, request.url.path, query, headers, request.read())
        cpu = time.process_time()
        status, response_headers, payload = self.simulator.handle(sim_request)
        self.simulator_cpu_s += time.process_time() - cpu
        self.served_at.append(self.clock())
        self.clock.sleep(self.half_latency_s)
        if payload:
            response_headers["Content-Type"] = "application/json"
        return httpx.Response(status, headers=response_headers, content=payload)


class IndexedEcomSimulator(EcomSimulator):
    """The eCom simulator plus indexes on the lookups the catalog worker makes: variants by product or SKU, a
    product's images and category links, a new variant's siblings. The plain simulator scans every row for each,
    which makes a 70,000-variant import quadratic in CPU. Same answers: an index only proposes candidates (a
    superset, in id order) and the simulator's own code checks each of them again.
    """

    INDEXED: ClassVar[dict[str, tuple[str, ...]]] = {
        "variants": ("product", "sku"),
        "productImages": ("product",),
        "categoriesProducts": ("product",),
    }

    def __init__(self, **kwargs: Any) -> None:
        self._index: defaultdict[tuple[str, str, str], set[int]] = defaultdict(set)
        super().__init__(**kwargs)

    def _note(self, table: str, row: dict[str, Any]) -> None:
        for name in self.INDEXED.get(table, ()):
            self._index[(table, name, str(row.get(name)).lower())].add(row["id"])

    def _candidates(self, table: str, name: str, value: Any) -> list[dict[str, Any]]:
        rows = self.tables[table]
        return [rows[i] for i in sorted(self._index.get((table, name, str(value).lower()), ())) if i in rows]

    def _insert(self, table: str, row: dict[str, Any]) -> dict[str, Any]:
        inserted = super()._insert(table, row)
        self._note(table, inserted)
        return inserted

    def _create_variant(self, body: Mapping[str, Any]) -> dict[str, Any]:
        # The plain method scans every variant for the product's siblings: let it see only the candidates.
        product_id = body.get("product")
        everything = self.tables["variants"]
        family = {v["id"]: v for v in self._candidates("variants", "product", product_id) if v["product"] == product_id}
        self.tables["variants"] = family
        try:
            return super()._create_variant(body)
        finally:
            self.tables["variants"] = everything
            everything.update((key, row) for key, row in family.items() if key not in everything)

    def _update_variant(self, variant: dict[str, Any], body: Mapping[str, Any]) -> dict[str, Any]:
        updated = super()._update_variant(variant, body)
        self._note("variants", updated)  # its SKU may have changed
        return updated

    def _filtered(
        self,
        table: str,
        query: Mapping[str, str],
        filters: Mapping[str, Any],
        rows: list[dict[str, Any]] | None = None,
    ) -> list[dict[str, Any]]:
        if rows is None:
            name = next((n for n in self.INDEXED.get(table, ()) if n in query and n in filters), None)
            if name is not None:
                rows = self._candidates(table, name, query[name])
        return super()._filtered(table, query, filters, rows)

    def _images_of(self, product_id: int) -> list[dict[str, Any]]:
        rows = [i for i in self._candidates("productImages", "product", product_id) if i["product"] == product_id]
        return sorted(rows, key=lambda i: (i["sortOrder"], i["id"]))

    def _set_default(self, variant: dict[str, Any]) -> None:
        if variant["isDefault"]:
            for other in self._candidates("variants", "product", variant["product"]):
                if other["product"] == variant["product"] and other is not variant:
                    other["isDefault"] = False


class IndexedXSeriesSimulator(XSeriesSimulator):
    """The X-Series simulator plus an index for `GET /search?type=products&variant_parent_id=` (the plain search
    scans every row), answering what the plain one would."""

    def __init__(self, **kwargs: Any) -> None:
        self._variants_index: defaultdict[str, set[str]] = defaultdict(set)
        super().__init__(**kwargs)

    def _save(self, table: str, row: dict[str, Any]) -> dict[str, Any]:
        saved = super()._save(table, row)
        if table == "products" and saved.get("variant_parent_id"):
            self._variants_index[saved["variant_parent_id"]].add(saved["id"])
        return saved

    def _search(self, request: SimRequest) -> Response:
        q = request.query
        parent = q.get("variant_parent_id")
        others = {"sku", "supplier_id", "brand_id", "tag_id", "product_type_id", "_id", "-_id"} & set(q)
        if q.get("type") != "products" or parent is None or others or any(k.startswith("-") for k in q):
            return super()._search(request)
        rows = self.tables["products"].rows
        found = [rows[i] for i in self._variants_index.get(parent, ()) if rows[i]["variant_parent_id"] == parent]
        found.sort(key=lambda r: r["version"])  # the table's own order: a saved row moves to the end
        if q.get("deleted", "").lower() != "true":
            found = [r for r in found if r["deleted_at"] is None]
        offset = int(q.get("offset") or 0)
        size = min(int(q.get("page_size") or 1000), 1000)
        return Response(200, {"data": [dict(r) for r in found[offset : offset + size]]})


# -- stand-ins for DynamoDB and SQS ---------------------------------------------------------------------------


class MemoryCatalogStore:
    """CatalogStateStore + the poller's CursorStore in memory; state kept as JSON, writes conditional on revision."""

    def __init__(self, clock: VirtualClock) -> None:
        self.clock = clock
        self.items: dict[str, tuple[str, int, int | None]] = {}  # family key -> (state json, revision, intent_at)
        self.variant_count = 0
        self.cursors: dict[str, str | None] = {}

    def get_catalog_state(self, connection_id: str, family_key: str) -> StoredCatalogState:
        item = self.items.get(family_key)
        if item is None:
            return StoredCatalogState(CatalogState(), revision=0)
        state_json, revision, intent_at = item
        return StoredCatalogState(CatalogState.model_validate_json(state_json), revision, intent_at)

    def save_catalog_state(
        self, connection_id: str, family_key: str, stored: StoredCatalogState, new_state: CatalogState
    ) -> StoredCatalogState:
        current = self.items.get(family_key)
        if (current[1] if current else 0) != stored.revision:
            raise Conflict(f"catalog state of {family_key} changed while it was being synced")
        intent_at = stored.intent_at
        if len(new_state.create_intents) > len(stored.state.create_intents):
            intent_at = int(self.clock())
        if not new_state.create_intents:
            intent_at = None
        self.items[family_key] = (new_state.model_dump_json(), stored.revision + 1, intent_at)
        self.variant_count += len(new_state.variants) - len(stored.state.variants)
        return StoredCatalogState(new_state, stored.revision + 1, intent_at)

    def catalog_variant_count(self, connection_id: str) -> int:
        return self.variant_count

    def get_cursor(self, connection_id: str, feed: str) -> Cursor:
        return Cursor(feed, self.cursors.get(feed))

    def advance_cursor(self, connection_id: str, cursor: Cursor, new_value: str) -> bool:
        if self.cursors.get(cursor.feed) != cursor.value:
            return False
        self.cursors[cursor.feed] = new_value
        return True


@dataclass
class Queued:
    message: ChangeMessage
    visible_at: float
    receives: int = 0


class ProductsQueue:
    """The products FIFO queue (and the poller's Publisher): groups in order, visibility, receive counts."""

    def __init__(self, clock: VirtualClock) -> None:
        self.clock = clock
        self.items: dict[int, Queued] = {}  # insertion order = queue order
        self._next = 0
        self.published = 0

    def publish(self, outgoing: Sequence[Outgoing]) -> int:
        for item in outgoing:
            self.items[self._next] = Queued(item.message, self.clock())
            self._next += 1
        self.published += len(outgoing)
        return len(outgoing)

    def backlog(self, concern: str) -> int:
        return len(self.items)

    def receive(self, limit: int) -> list[tuple[int, Queued]]:
        """Up to `limit` messages; a group whose oldest message is invisible yields none (FIFO)."""
        now, batch, blocked = self.clock(), [], set()
        for key, item in self.items.items():
            group = item.message.message_group_id
            if group in blocked:
                continue
            if item.visible_at > now:
                blocked.add(group)
                continue
            item.receives += 1
            batch.append((key, item))
            if len(batch) == limit:
                break
        return batch

    def next_visible_at(self) -> float:
        """When the next group's oldest message can be received (the later ones wait behind it)."""
        heads: dict[str, float] = {}
        for item in self.items.values():
            heads.setdefault(item.message.message_group_id, item.visible_at)
        return min(heads.values(), default=math.inf)


class ProductsFeedOnly:
    """The POS client as the poller sees it, with only the products feed (the other feeds are not this test's)."""

    def __init__(self, pos: XSeriesClient) -> None:
        self.pos = pos

    def list_changes(
        self, resource: str, after: int | None, page_size: int = 200, include_deleted: bool = True
    ) -> ChangePage:
        if resource != "products":
            return ChangePage()
        return self.pos.list_changes(resource, after, page_size, include_deleted)


class NoOrders:
    def list_orders(self, updated_at_min: datetime | None, since_id: int | None = None, limit: int = 250) -> OrderPage:
        return OrderPage([], None)


# -- the live stock writer ---------------------------------------------------------------------------------


class StockWriter:
    """A high-priority eCom write every `every_s` simulated seconds; records each one's wait for its slot."""

    def __init__(self, clock: VirtualClock, ecom: EcomClient, budget: BudgetView, every_s: float) -> None:
        self.clock, self.ecom, self.budget, self.every_s = clock, ecom, budget, every_s
        self.variant_id = 0
        self.waits: list[float] = []
        self.rate_limited = 0
        self.active = False

    def start(self) -> None:
        product = self.ecom.create_product({"title": "Stock probe"})
        self.variant_id = int(self.ecom.create_variant({"product": product["id"], "sku": "STOCK-PROBE"})["id"])
        self.active = True
        self.clock.at(self.clock() + self.every_s, self._write)

    def _write(self, due: float) -> None:
        if not self.active:
            return
        while True:
            try:
                self.ecom.update_variant(self.variant_id, {"stockLevel": len(self.waits) % 50})
                break
            except RateLimited as exc:  # the stock message would come back at retry_at
                self.rate_limited += 1
                self.clock.advance_to(exc.retry_at)
        self.waits.append(self.budget.last_granted_at - due)
        self.clock.at(due + self.every_s, self._write)


# -- the run -------------------------------------------------------------------------------------------------


@dataclass
class PassFigures:
    started_at: float
    ended_at: float = 0.0
    cpu_s: float = 0.0
    wall_s: float = 0.0
    ecom_catalog_calls: int = 0
    ecom_writes: int = 0
    ecom_throttled: int = 0
    pos_calls: int = 0
    pos_throttled: int = 0
    messages: int = 0
    syncs: int = 0
    rate_limited_deliveries: int = 0
    max_receives: int = 0
    dead_lettered: int = 0  # received more than maxReceiveCount times: SQS would have dead-lettered them
    outcomes: Counter[str] = field(default_factory=Counter)
    routes: Counter[str] = field(default_factory=Counter)
    simulator_cpu_s: float = 0.0

    @property
    def duration_s(self) -> float:
        return self.ended_at - self.started_at


class Bench:
    def __init__(
        self,
        families: int,
        variants: int,
        *,
        reserve_share: float,
        latency_s: float,
        seed: int,
        redelivery: str,
        indexed: bool,
    ) -> None:
        self.families, self.variants, self.redelivery = families, variants, redelivery
        self.clock = VirtualClock(START)
        pos_class, ecom_class = (
            (IndexedXSeriesSimulator, IndexedEcomSimulator) if indexed else (XSeriesSimulator, EcomSimulator)
        )
        self.pos_sim = pos_class(token="pos-token", seed=seed, clock=self.clock)
        self.ecom_sim = ecom_class(api_key="k", api_secret="s", webhook_secret="w", seed=seed, clock=self.clock)
        self.pos_sim.seed_catalog(families, variants, seed=seed)
        self.budget = SharedBudget(self.clock)
        self.pos_transport = SimulatorTransport(self.pos_sim, self.clock, latency_s)
        self.catalog_transport = SimulatorTransport(self.ecom_sim, self.clock, latency_s)
        self.stock_transport = SimulatorTransport(self.ecom_sim, self.clock, latency_s)
        catalog_budget = self.budget.view(reserve_share)
        live_budget = self.budget.view(0.0)
        clock_kw: dict[str, Any] = {"clock": self.clock, "sleep": self.clock.sleep}
        self.pos_catalog = XSeriesClient(
            "http://pos", "pos-token", catalog_budget, max_wait_s=WORKER_MAX_WAIT_S,
            transport=self.pos_transport, **clock_kw,
        )  # fmt: skip
        self.pos_poller = XSeriesClient(
            "http://pos", "pos-token", live_budget, transport=self.pos_transport, **clock_kw
        )
        self.ecom_catalog = EcomClient(
            "http://ecom", "k", "s", catalog_budget, max_wait_s=WORKER_MAX_WAIT_S,
            transport=self.catalog_transport, **clock_kw,
        )  # fmt: skip
        self.stock_budget = self.budget.view(0.0)
        self.ecom_stock = EcomClient(
            "http://ecom", "k", "s", self.stock_budget, max_wait_s=WORKER_MAX_WAIT_S,
            transport=self.stock_transport, **clock_kw,
        )  # fmt: skip
        now = datetime.fromtimestamp(START, UTC)
        # 70,000 variants is the Unlimited plan's hold: exactly at the cap, nothing refused.
        self.connection = Connection(
            connection_id=CONNECTION_ID, pos_base_url="http://pos", ecom_base_url="http://ecom",
            plan="unlimited", created_at=now, updated_at=now,
        )  # fmt: skip
        self.store = MemoryCatalogStore(self.clock)
        # A warm worker's brand/category lists (runtime.reference_cache), expiring on the virtual clock.
        self.reference = ReferenceCache(clock=self.clock)
        self.queue = ProductsQueue(self.clock)
        self.poller = ChangePoller(
            self.store, self.queue, page_size=POLL_PAGE_SIZE, max_products_backlog=MAX_PRODUCTS_BACKLOG,
            clock=lambda: datetime.fromtimestamp(self.clock(), UTC),
        )  # fmt: skip

    def run_pass(self, stock: StockWriter | None, progress: bool) -> PassFigures:
        figures = PassFigures(started_at=self.clock())
        ecom_before = (self.ecom_catalog.calls, self.ecom_sim.writes, self.ecom_sim.throttled)
        pos_before = (self.pos_sim.requests, self.pos_sim.throttled)
        routes_before = Counter(self.ecom_sim.calls_by_route)
        stock_calls_before = self.ecom_stock.calls
        sim_cpu_before = self.pos_transport.simulator_cpu_s + self.catalog_transport.simulator_cpu_s
        cpu, wall = time.process_time(), time.perf_counter()
        next_poll, caught_up, last_report = self.clock(), False, wall
        while True:
            if self.clock() >= next_poll:
                caught_up = self._poll().stopped is None
                next_poll = self.clock() + POLL_EVERY_S
            batch = self.queue.receive(BATCH_SIZE)
            if batch:
                self._handle(batch, figures)
            elif caught_up and not self.queue.items:
                break
            else:
                self.clock.advance_to(min(self.queue.next_visible_at(), next_poll))
            if progress and time.perf_counter() - last_report > 30:
                last_report = time.perf_counter()
                done = self.store.variant_count
                print(
                    f"  ... {done:,} variants in eCom, simulated day {(self.clock() - figures.started_at) / DAY_S:.1f}"
                    f", cpu {time.process_time() - cpu:.0f} s",
                    file=sys.stderr,
                    flush=True,
                )
        if stock is not None:
            stock.active = False
        figures.ended_at = self.clock()
        figures.cpu_s, figures.wall_s = time.process_time() - cpu, time.perf_counter() - wall
        figures.simulator_cpu_s = (
            self.pos_transport.simulator_cpu_s + self.catalog_transport.simulator_cpu_s - sim_cpu_before
        )
        stock_calls = self.ecom_stock.calls - stock_calls_before
        figures.ecom_catalog_calls = self.ecom_catalog.calls - ecom_before[0]
        # Writes and 429s as the simulator counts them, less the stock writer's own PUTs.
        figures.ecom_writes = self.ecom_sim.writes - ecom_before[1] - stock_calls
        figures.ecom_throttled = self.ecom_sim.throttled - ecom_before[2]
        figures.pos_calls = self.pos_sim.requests - pos_before[0]
        figures.pos_throttled = self.pos_sim.throttled - pos_before[1]
        routes = Counter(self.ecom_sim.calls_by_route)
        routes.subtract(routes_before)
        routes["PUT /{lang}/variants/{id}.json"] -= stock_calls
        figures.routes = +routes
        return figures

    def _poll(self) -> FeedReport:
        report = self.poller.poll(self.connection, XSeriesFeeds(ProductsFeedOnly(self.pos_poller)), NoOrders())
        return next(feed for feed in report.feeds if feed.feed == "pos:products")

    def _handle(self, batch: list[tuple[int, Queued]], figures: PassFigures) -> None:
        """One product_sync invocation: its records in order, each synced by a new CatalogSync (as runtime does)."""
        failed_groups: set[str] = set()
        for key, item in batch:
            figures.messages += item.receives == 1
            group = item.message.message_group_id
            if group in failed_groups:  # skip_group_on_error: back after the queue's visibility timeout
                item.visible_at = self.clock() + QUEUE_VISIBILITY_S
                continue
            while True:
                sync = CatalogSync(
                    self.connection,
                    XSeriesCatalog(self.pos_catalog, self.connection),
                    self.ecom_catalog,
                    self.store,
                    clock=self.clock,
                    reference=self.reference,
                )
                try:
                    result = sync.sync(item.message.entity_id)
                    break
                except RateLimited as exc:
                    figures.rate_limited_deliveries += 1
                    if self.redelivery == "hold":  # the message comes back at retry_at, and nothing overtakes it
                        self.clock.advance_to(exc.retry_at)
                        continue
                    # As SQS does it: this record is hidden until retry_at (at most 12 h), other groups go on.
                    item.visible_at = self.clock() + int(min(MAX_VISIBILITY_S, max(1, exc.retry_at - self.clock() + 1)))
                    failed_groups.add(group)
                    result = None
                    break
            if result is None:
                continue
            figures.syncs += 1
            figures.outcomes[result.outcome] += 1
            figures.max_receives = max(figures.max_receives, item.receives)
            figures.dead_lettered += item.receives > MAX_RECEIVE_COUNT
            del self.queue.items[key]

    def restart_feed(self) -> None:
        """The second pass: the products cursor is reset, so the whole unchanged feed is queued again."""
        self.store.cursors.pop("pos:products", None)


# -- figures ---------------------------------------------------------------------------------------------------


def fixed_windows(stamps: Sequence[float], length_s: float) -> list[tuple[float, int]]:
    """The vendor's fixed windows over these calls (each starts at the first call after the previous ended)."""
    windows: list[tuple[float, int]] = []
    end = -math.inf
    for stamp in sorted(stamps):
        if stamp >= end:
            windows.append((stamp, 0))
            end = stamp + length_s
        start, count = windows[-1]
        windows[-1] = (start, count + 1)
    return windows


def percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(share * len(ordered)) - 1))] if ordered else math.nan


def minimum_calls(ecom: EcomSimulator) -> dict[str, int]:
    """What the API cannot do with less, for what the import created (the stock probe left out)."""
    tables = ecom.tables
    probe_variants = [v for v in tables["variants"].values() if v["sku"] == "STOCK-PROBE"]
    return {
        "POST products": len(tables["products"]) - len(probe_variants),
        "POST variants": len(tables["variants"]) - len(probe_variants),
        "POST products/{id}/images": len(tables["productImages"]),
        "POST categories/products": len(tables["categoriesProducts"]),
        "POST brands + categories": len(tables["brands"]) + len(tables["categories"]),
        "GET brands + categories (once)": 2,
    }


def in_window(stamps: Sequence[float], start: float, length_s: float) -> int:
    return bisect_left(stamps, start + length_s) - bisect_left(stamps, start)


def report(bench: Bench, first: PassFigures, second: PassFigures, stock: StockWriter, args: argparse.Namespace) -> None:
    variants, families = bench.families * bench.variants, bench.families
    minimum = minimum_calls(bench.ecom_sim)
    floor = sum(minimum.values())
    calls = first.ecom_catalog_calls
    reads = sum(count for route, count in first.routes.items() if route.startswith("GET "))
    windows = {spec.name: spec for spec in ECOM_POLICY.windows}
    caps = {name: spec.limit - math.ceil(spec.limit * args.reserve_share) for name, spec in windows.items()}
    day = windows["day"]
    print(f"\nPass 1: initial import of {variants:,} variants ({families:,} families x {bench.variants})")
    print(f"  simulated duration: {first.duration_s / DAY_S:.2f} days ({first.duration_s / 3600:,.1f} h)")
    print(
        f"  eCom calls (catalog worker): {calls:,} = {calls / variants:.2f} per variant "
        f"({reads / variants:.2f} reads + {(calls - reads) / variants:.2f} writes); API minimum {floor:,} = "
        f"{floor / variants:.2f} per variant; x{calls / floor:.2f} the minimum"
    )
    print("    minimum = " + ", ".join(f"{name} {count:,}" for name, count in minimum.items()))
    print(
        f"    at the minimum the import would take {floor / caps['day']:.1f} days at {caps['day']:,}/day "
        f"({floor / day.limit:.1f} days at the whole {day.limit:,}/day)"
    )
    print(
        "    why: eCom has no bulk or nested writes: a product is one POST (brand id inline), each variant one POST "
        "(its image id inline), each image one POST (uploaded by URL), a category membership one POST "
        "(categories/products); brands and categories are listed once and created once each. No read is needed "
        "when importing into an empty shop."
    )
    print("    by route:")
    for route, count in first.routes.most_common():
        print(f"      {count:>9,}  {route}  ({count / families:.2f} per family)")
    print(f"  eCom 429s received: {first.ecom_throttled:,} (goal 0); POS 429s: {first.pos_throttled:,}")

    everyone = sorted(s for s in (*bench.catalog_transport.served_at, *bench.stock_transport.served_at))
    everyone = [s for s in everyone if first.started_at <= s <= first.ended_at]
    catalog = sorted(s for s in bench.catalog_transport.served_at if first.started_at <= s <= first.ended_at)
    days = fixed_windows(everyone, day.length_s)
    complete = days[:-1]
    print(
        f"  budget share: the catalog may take {caps['second']}/s, {caps['5min']}/5 min, {caps['hour']:,}/h, "
        f"{caps['day']:,}/day (reserve_share={args.reserve_share}); {caps['hour']:,}/h x 24 > {caps['day']:,}, so "
        "the day window binds"
    )
    if complete:
        used = sum(count for _, count in complete)
        mine = sum(in_window(catalog, start, day.length_s) for start, _ in complete)
        available, own = day.limit * len(complete), caps["day"] * len(complete)
        print(
            f"    over the {len(complete)} complete day window(s): {used / available:.1%} of {day.limit:,}/day used by "
            f"all callers (goal >= 95%); the catalog alone {mine / available:.1%}, i.e. {mine / own:.1%} of its "
            f"{caps['day']:,}/day"
        )
    last_start, last_count = days[-1]
    print(
        f"    last day window (partial: the import ended {(first.ended_at - last_start) / 3600:.1f} h into it): "
        f"{last_count:,} calls"
    )
    print(
        f"  POS: {first.pos_calls:,} calls ({first.pos_calls / families:.1f} per family); {first.messages:,} messages "
        f"(one per family and page), {first.syncs:,} syncs {dict(first.outcomes)}; {first.rate_limited_deliveries:,} "
        f"RateLimited (message back at retry_at)"
    )
    print(
        f"  receives per message: max {first.max_receives}; more than maxReceiveCount={MAX_RECEIVE_COUNT} (SQS would "
        f"have dead-lettered them; kept here): {first.dead_lettered:,}"
    )
    waits = stock.waits
    print(
        f"  live stock write every {args.stock_every_s:g} simulated s during the import (reserve_share=0, same budget):"
        f" {len(waits):,} writes; wait for a slot p50 {percentile(waits, 0.5):.2f} s, p95 "
        f"{percentile(waits, 0.95):.2f} s, max {max(waits, default=math.nan):.2f} s; RateLimited {stock.rate_limited}"
    )
    ours = first.cpu_s - first.simulator_cpu_s
    print(
        f"  local CPU: {first.cpu_s:,.0f} s, of which simulators {first.simulator_cpu_s:,.0f} s and sync code + "
        f"clients + driver {ours:,.0f} s ({ours * 1000 / families:.1f} ms per family); wall {first.wall_s:,.0f} s"
    )
    print(f"\nPass 2: the whole unchanged feed queued again ({second.messages:,} messages)")
    print(
        f"  eCom writes: {second.ecom_writes:,} (goal 0); eCom calls: {second.ecom_catalog_calls:,}; "
        f"429s: {second.ecom_throttled:,}; POS calls: {second.pos_calls:,}; syncs {dict(second.outcomes)}; "
        f"RateLimited {second.rate_limited_deliveries:,}; more than maxReceiveCount: {second.dead_lettered:,}"
    )
    print(
        f"  simulated duration: {second.duration_s / 3600:.1f} h (bound by the POS budget: 2 reads per message); "
        f"local CPU {second.cpu_s:,.0f} s (simulators {second.simulator_cpu_s:,.0f} s); wall {second.wall_s:,.0f} s"
    )


def run(
    families: int,
    variants: int = 5,
    *,
    second_pass: bool = True,
    reserve_share: float = RESERVE_SHARE,
    latency_ms: float = 100.0,
    stock_every_s: float = 60.0,
    seed: int = 7,
    redelivery: str = "hold",
) -> dict[str, Any]:
    """The import's figures (the first pass, and the second when asked) as a dict; what `main` prints in full."""
    bench = Bench(
        families, variants, reserve_share=reserve_share, latency_s=latency_ms / 1000,
        seed=seed, redelivery=redelivery, indexed=True,
    )  # fmt: skip
    stock = StockWriter(bench.clock, bench.ecom_stock, bench.stock_budget, stock_every_s)
    stock.start()
    first = bench.run_pass(stock, progress=False)
    minimum = minimum_calls(bench.ecom_sim)
    total = families * variants
    figures: dict[str, Any] = {
        "families": families,
        "variants": total,
        "ecom_calls": first.ecom_catalog_calls,
        "ecom_calls_per_variant": first.ecom_catalog_calls / total,
        "minimum_calls": sum(minimum.values()),
        "minimum_per_variant": sum(minimum.values()) / total,
        "minimum": minimum,
        "routes": dict(first.routes),
        "ecom_429": first.ecom_throttled,
        "pos_429": first.pos_throttled,
        "simulated_s": first.duration_s,
        "cpu_s": first.cpu_s,
        "stock_writes": len(stock.waits),
        "stock_wait_p95_s": percentile(stock.waits, 0.95),
    }
    if second_pass:
        bench.restart_feed()
        second = bench.run_pass(None, progress=False)
        figures.update(second_pass_ecom_writes=second.ecom_writes, second_pass_ecom_calls=second.ecom_catalog_calls)
    return figures


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--families", type=int, default=14_000)
    parser.add_argument("--variants", type=int, default=5, help="variants per family")
    parser.add_argument("--reserve-share", type=float, default=RESERVE_SHARE, help="the catalog worker's reserve")
    parser.add_argument("--stock-every-s", type=float, default=60.0)
    parser.add_argument("--latency-ms", type=float, default=100.0, help="simulated time per API call")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--redelivery",
        choices=("hold", "sqs"),
        default="hold",
        help="hold: a throttled message is retried at retry_at before anything else (the family-by-family import); "
        "sqs: it is hidden until retry_at while other groups are received, as SQS FIFO does (slow: churn)",
    )
    parser.add_argument(
        "--plain-simulators", action="store_true", help="without the lookup indexes (same figures, quadratic CPU)"
    )
    parser.add_argument("--tracemalloc", action="store_true", help="also trace the Python heap peak (slower)")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    args = parser.parse_args(argv)

    print(f"python {sys.version.split()[0]} on {os.cpu_count()} cores")
    simulators = "plain simulators" if args.plain_simulators else "simulators with lookup indexes (same answers)"
    redelivery = {
        "hold": "a throttled message is retried at its retry_at before any other (the family-by-family import)",
        "sqs": "a throttled message is hidden until retry_at (<= 12 h) while other groups are received, as SQS does",
    }[args.redelivery]
    print(
        f"Set-up: X-Series + eCom {simulators}, called in-process (the whole request pipeline, no sockets); one "
        f"virtual clock, {args.latency_ms:g} ms simulated per call. The real ChangePoller walks the products feed "
        f"from cursor None (page {POLL_PAGE_SIZE}, backlog cap {MAX_PRODUCTS_BACKLOG:,}) every {POLL_EVERY_S:g} s. "
        "No SQS/moto (far too slow at this scale): an in-memory FIFO queue (groups, visibility, receive counts); "
        f"one worker, batches of {BATCH_SIZE}, a new CatalogSync per message; {redelivery}. Catalog clients: "
        f"reserve_share={args.reserve_share}, max_wait_s={WORKER_MAX_WAIT_S:g}."
    )
    if args.tracemalloc:
        tracemalloc.start()
    cpu = time.process_time()
    bench = Bench(
        args.families, args.variants, reserve_share=args.reserve_share, latency_s=args.latency_ms / 1000,
        seed=args.seed, redelivery=args.redelivery, indexed=not args.plain_simulators,
    )  # fmt: skip
    print(
        f"seeded the POS simulator in {time.process_time() - cpu:.1f} s CPU; "
        f"RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MiB"
    )
    stock = StockWriter(bench.clock, bench.ecom_stock, bench.stock_budget, args.stock_every_s)
    stock.start()
    first = bench.run_pass(stock, progress=not args.quiet)
    bench.restart_feed()
    second = bench.run_pass(None, progress=not args.quiet)
    report(bench, first, second, stock, args)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    line = f"\npeak memory: {peak / 1024:,.0f} MiB RSS (ru_maxrss; both simulators' data included)"
    if args.tracemalloc:
        line += f"; Python heap peak {tracemalloc.get_traced_memory()[1] / 2**20:,.0f} MiB (tracemalloc)"
    print(line)


if __name__ == "__main__":
    main()
