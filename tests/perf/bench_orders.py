"""Benchmark: order import (eCom order -> POS sale) against the simulators, in-process, AWS on moto.

Run: `.venv/bin/python -m tests.perf.bench_orders [--orders 300] [--latency 60] [--burst 1000] [--workers N]`.
Prints figures; asserts only that nothing was lost or doubled.

1. Throughput, vendor limits off: orders queued by the poller's sweep, drained by order_import (the function
   from functions/order_import/app.py) one batch at a time; orders/s, and POS calls per order by route against
   the minimum (one 2026-07 `POST /sales` per order, plus one customer create per new email).
2. Latency, order placed -> POS sale: the eCom simulator's orders/created webhook -> the template's API route ->
   webhook_ingest -> orders queue -> order_import (long-polling event source) -> POS sale; p50/p95 over
   sequential orders.
3. Burst: 1,000 orders at once under the real X-Series limit (300 x 1 register + 50 per 5 min) and eCom's
   (300 / 5 min, 3,000 / h, 12,000 / day, 20 / s), order_import's real handler in as many concurrent sandboxes as
   the template's MaximumConcurrency, sharing the DynamoDB rate budgets. Everything runs on one VIRTUAL CLOCK
   (tests/perf/virtual_time.py: simulators, budgets, clients, leases and SQS visibility; time moves only when every
   sandbox waits), over SQS FIFO queues on that clock (tests/perf/virtual_sqs.py). Reports lost, duplicated,
   429s, POS calls by route, and the drain time in simulated minutes next to the lower bound the limits allow
   for the calls made (and for the POS minimum).
"""

from __future__ import annotations

import argparse
import math
import os
import random
import statistics
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from tests.perf.offline import use_offline_aws

use_offline_aws("CRITICAL")

import boto3
import botocore.client
from moto import mock_aws
from pos_ecom_sync.profiles.xseries.feeds import XSeriesFeeds

CONNECTION = "bench"
EMAILS = [f"shopper{n}@example.com" for n in range(60)] + ["mira.okafor@example.com", "tama.ngata@example.com"]
PAYMENTS = (
    [("Lightspeed Payments", "paid")] * 6 + [("Bank transfer", "paid")] * 2 + [("Lightspeed Payments", "not_paid")]
)


AWS_CALLS: Counter[str] = Counter()  # "service operation" -> calls, every AWS call the process made
BUDGET_LOADS: Counter[str] = Counter()  # rate budget reads (GetItem of a RATE# item) per API


@contextmanager
def dynamodb_one_call_at_a_time() -> Iterator[None]:
    """moto's in-process DynamoDB is not thread-safe; real DynamoDB serialises conflicting writes itself. Counts every
    AWS call (AWS_CALLS) and every rate budget read (BUDGET_LOADS); moto's hot paths made cheap (moto_speed: its
    transactions roll back only the items they name, which needs these calls serialised)."""
    from local_stack.moto_speed import speed_up_moto

    speed_up_moto()
    lock = threading.RLock()
    original = botocore.client.BaseClient._make_api_call

    def serialised(self: Any, operation: str, params: dict[str, Any]) -> Any:
        service = self.meta.service_model.service_name
        AWS_CALLS[f"{service} {operation}"] += 1
        if service == "dynamodb":
            sort_key = params.get("Key", {}).get("sk", "") if operation == "GetItem" else ""
            sort_key = str(sort_key.get("S", "") if isinstance(sort_key, dict) else sort_key)  # client or resource
            if sort_key.startswith("RATE#"):
                BUDGET_LOADS[sort_key.removeprefix("RATE#")] += 1
            with lock:
                return original(self, operation, params)
        return original(self, operation, params)

    botocore.client.BaseClient._make_api_call = serialised  # type: ignore[method-assign]
    try:
        yield
    finally:
        botocore.client.BaseClient._make_api_call = original  # type: ignore[method-assign]


@contextmanager
def counting_http_clients() -> Iterator[list[int]]:
    """Counts `httpx.Client` constructions while the context lasts (each is a new connection pool: new TCP/TLS)."""
    import httpx

    built = [0]
    original = httpx.Client.__init__

    def init(self: httpx.Client, *args: Any, **kwargs: Any) -> None:
        built[0] += 1
        original(self, *args, **kwargs)

    httpx.Client.__init__ = init  # type: ignore[method-assign]
    try:
        yield built
    finally:
        httpx.Client.__init__ = original  # type: ignore[method-assign]


@contextmanager
def limits_off() -> Iterator[None]:
    """Our own budgets follow the documented limits whatever the simulators say; "limits off" lifts them too."""
    import pos_ecom_sync.connectors.ecom as ecom_module
    import pos_ecom_sync.profiles.xseries.client as xseries_module
    from pos_ecom_sync.ratelimit import RatePolicy, WindowSpec

    saved = xseries_module.XSERIES_POLICY, ecom_module.ECOM_POLICY
    xseries_module.XSERIES_POLICY = RatePolicy("xseries", (WindowSpec("5min", 10**9, 300.0),))
    ecom_module.ECOM_POLICY = RatePolicy("ecom", (WindowSpec("5min", 10**9, 300.0),))
    try:
        yield
    finally:
        xseries_module.XSERIES_POLICY, ecom_module.ECOM_POLICY = saved


@dataclass
class Shop:
    """A provisioned stack (moto), both simulators and one connection whose catalog is linked."""

    session: Any
    resources: Any
    env: dict[str, str]
    pos: Any
    ecom: Any
    connection: Any
    variants: list[tuple[str, int]] = field(default_factory=list)  # (POS product id, eCom variant id)

    def queue_url(self, concern: str) -> str:
        return self.env[f"{concern.upper()}_QUEUE_URL"]

    def place(self, rng: random.Random) -> dict[str, Any]:
        lines = rng.sample(self.variants, rng.choice((1, 1, 1, 2, 2, 3)))
        title, status = rng.choice(PAYMENTS)
        pickup = rng.random() < 0.1
        return dict(
            self.ecom.place_order(
                [{"variant_id": ecom_id, "quantity": rng.choice((1, 1, 2))} for _, ecom_id in lines],
                email=rng.choice(EMAILS),
                payment_title=title,
                payment_status=status,
                shipment_title="Pick up in store" if pickup else "Courier",
                is_pickup=pickup,
                allow_backorder=True,
            )
        )

    def sales_by_source(self) -> Counter[str]:
        return Counter(s["source_id"] for s in self.pos.sales() if str(s.get("source_id") or "").startswith("ecom-"))


def open_shop(
    stack: str,
    *,
    families: int,
    limits: bool,
    clock: Callable[[], float] = time.time,
    sync_catalog: bool = True,
) -> Shop:
    from pos_ecom_sync import runtime
    from pos_ecom_sync.models.connection import Connection, ConnectionSecrets
    from pos_ecom_sync.profiles.xseries.client import XSeriesClient
    from pos_ecom_sync.profiles.xseries.shipping import ensure_shipping_product
    from pos_ecom_sync.ratelimit import InMemoryRateBudget
    from pos_ecom_sync.secrets import write_connection_secrets
    from pos_ecom_sync.state.store import SyncStore

    from local_stack.demo import DEMO_SECRETS
    from local_stack.provision import provision
    from local_stack.simulators.ecom import EcomSimulator
    from local_stack.simulators.xseries import XSeriesSimulator

    session = boto3.Session(region_name="us-east-1")
    resources = provision(session, stack_name=stack)
    env = resources.shared_environment()
    os.environ.update(env)
    os.environ.update({"POWERTOOLS_LOG_LEVEL": "CRITICAL", "POWERTOOLS_METRICS_DISABLED": "true"})
    runtime.reset()
    pos = XSeriesSimulator(
        token=DEMO_SECRETS["pos_access_token"], seed=5, outlets=3, rate_limit=None if limits else 0, clock=clock
    )
    ecom = EcomSimulator(
        api_key=DEMO_SECRETS["ecom_api_key"],
        api_secret=DEMO_SECRETS["ecom_api_secret"],
        webhook_secret=DEMO_SECRETS["ecom_webhook_secret"],
        seed=5,
        limits=(300, 3000, 12000) if limits else None,
        clock=clock,
    )
    pos.start(), ecom.start()
    pos.seed_catalog(families, 3, seed=5)
    register = pos.registers()[0]
    outlets = [register["outlet_id"], *(o["id"] for o in pos.outlets() if o["id"] != register["outlet_id"])]
    pickup_outlet = outlets[1]
    pickup = ecom.add_shipping_method("Pick up in store", is_pickup=True)
    shipping = ensure_shipping_product(XSeriesClient(pos.url, DEMO_SECRETS["pos_access_token"], InMemoryRateBudget()))
    connection = Connection(
        connection_id=CONNECTION,
        pos_base_url=pos.url,
        ecom_base_url=ecom.url,
        online_register_id=register["id"],
        connected_outlet_ids=outlets,
        primary_outlet_id=register["outlet_id"],
        shipping_method_outlets={str(pickup["id"]): pickup_outlet},
        shipping_product_id=shipping.product_id,
    )
    store = SyncStore(env["TABLE_NAME"], resource=session.resource("dynamodb"))
    store.save_connection(connection, create=True)
    write_connection_secrets(
        session.client("secretsmanager"),
        env["SECRET_PREFIX"],
        CONNECTION,
        ConnectionSecrets.model_validate(DEMO_SECRETS),
    )
    shop = Shop(session, resources, env, pos, ecom, connection)
    if sync_catalog:
        _sync_catalog(shop)
    else:
        _link_catalog(shop, families)
    return shop


def _sync_catalog(shop: Shop) -> None:
    """The catalog arrives in eCom through product_sync, which records the variant links orders match by."""
    from pos_ecom_sync.connectors.ecom import EcomClient
    from pos_ecom_sync.intake.poller import ChangePoller
    from pos_ecom_sync.profiles.xseries.client import XSeriesClient
    from pos_ecom_sync.queues import ChangePublisher
    from pos_ecom_sync.ratelimit import InMemoryRateBudget
    from pos_ecom_sync.state.order_store import OrderStore
    from pos_ecom_sync.state.store import SyncStore

    from local_stack.demo import DEMO_SECRETS
    from local_stack.event_sources import SqsPoller
    from local_stack.functions import LocalFunction
    from tests.support import drain_queue

    store = SyncStore(shop.env["TABLE_NAME"], resource=shop.session.resource("dynamodb"))
    sqs = shop.session.client("sqs")
    pos = XSeriesClient(shop.pos.url, DEMO_SECRETS["pos_access_token"], InMemoryRateBudget())
    ecom = EcomClient(
        shop.ecom.url, DEMO_SECRETS["ecom_api_key"], DEMO_SECRETS["ecom_api_secret"], InMemoryRateBudget()
    )
    # As the deployed poller (runtime.change_poller), it also walks the POS customer feed: the customer census.
    customers = OrderStore(shop.env["TABLE_NAME"], client=shop.session.client("dynamodb"))
    poller = ChangePoller(store, ChangePublisher(shop.queue_url, client=sqs), customers=customers)
    poller.poll(shop.connection, XSeriesFeeds(pos), ecom)
    for concern in ("stock", "statuses", "orders"):
        drain_queue(sqs, shop.queue_url(concern))
    subscription = next(s for s in shop.resources.subscriptions if s.function == "ProductSyncFunction")
    worker = SqsPoller(sqs, subscription, LocalFunction(shop.resources.functions["ProductSyncFunction"]), print)
    while worker.poll_once(wait_seconds=0) or _depth(sqs, shop.queue_url("products")):
        pass
    for row in shop.pos.products():
        link = store.variant_link(CONNECTION, pos_product_id=row["id"])
        if link is not None:
            shop.variants.append((row["id"], link.ecom_variant_id))


def _link_catalog(shop: Shop, families: int) -> None:
    """The same catalog in eCom (same generator, same seed), the links and family states as product_sync leaves them
    and each variant's outlet levels as the stock worker keeps them, written directly: the burst measures orders,
    and catalog and stock calls would only spend the windows first."""
    from pos_ecom_sync.models.catalog import CatalogState
    from pos_ecom_sync.models.stock import OutletLevel, VariantStockState
    from pos_ecom_sync.state import keys
    from pos_ecom_sync.state.stock_store import StockStore
    from pos_ecom_sync.state.store import SyncStore

    shop.ecom.seed_catalog(families, 3, seed=5)
    table = shop.session.resource("dynamodb").Table(shop.env["TABLE_NAME"])
    by_sku = {v["sku"]: v for v in shop.ecom.variants()}
    items: list[dict[str, Any]] = []
    for row in shop.pos.products():
        variant = by_sku.get(row["sku"])
        if row["has_variants"] or variant is None:
            continue
        link = {
            "pos_product_id": row["id"],
            "family_key": row["variant_parent_id"] or row["id"],
            "ecom_product_id": variant["product"]["resource"]["id"],
            "ecom_variant_id": variant["id"],
        }
        pk = keys.connection_pk(CONNECTION)
        for sk in (keys.pos_variant_link_sk(row["id"]), keys.ecom_variant_link_sk(variant["id"])):
            items.append({"pk": pk, "sk": sk, **link})
        shop.variants.append((row["id"], variant["id"]))
    with table.batch_writer() as batch:
        for item in items:
            batch.put_item(Item=item)
    store = SyncStore(shop.env["TABLE_NAME"], resource=shop.session.resource("dynamodb"))
    families: dict[str, int] = {}
    for item in items:
        families[str(item["family_key"])] = int(item["ecom_product_id"])
    for family_key, ecom_product_id in families.items():
        stored = store.get_catalog_state(CONNECTION, family_key)
        store.save_catalog_state(CONNECTION, family_key, stored, CatalogState(ecom_product_id=ecom_product_id))
    stock = StockStore(shop.env["TABLE_NAME"], resource=shop.session.resource("dynamodb"))
    for pos_id, ecom_variant_id in shop.variants:
        levels = {
            str(row["outlet_id"]): OutletLevel(level=int(row["inventory_level"]), version=int(row.get("version") or 0))
            for row in shop.pos.inventory(pos_id)
        }
        state = VariantStockState(product_id=pos_id, ecom_variant_id=ecom_variant_id, levels=levels, revision=1)
        stock.save_stock(CONNECTION, 0, state)


def _depth(sqs: Any, url: str) -> int:
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    return sum(int(attributes[n]) for n in names)


def _queue_orders(shop: Shop, orders: list[dict[str, Any]], sqs: Any = None) -> None:
    """As the poller's sweep queues them (one message per order, the order as payload), on `sqs` (default: moto)."""
    from datetime import UTC, datetime

    from pos_ecom_sync.models.messages import ChangeMessage
    from pos_ecom_sync.queues import ChangePublisher, Outgoing

    now = datetime.now(UTC)
    publisher = ChangePublisher(shop.queue_url, client=sqs or shop.session.client("sqs"))
    publisher.publish(
        [
            Outgoing(
                ChangeMessage(
                    connection_id=CONNECTION,
                    source="ecom",
                    entity="order",
                    entity_id=str(o["id"]),
                    updated_at=o["updatedAt"],
                    via="poll",
                    received_at=now,
                    payload={"id": o["id"], "number": o["number"]},
                    concern="orders",
                )
            )
            for o in orders
        ]
    )


def _stop(shop: Shop) -> None:
    shop.pos.stop()
    shop.ecom.stop()


# -- 1. throughput ------------------------------------------------------------------------------------------


def _settle_stock(shop: Shop) -> None:
    """Run the stock worker over what product_sync queued (each new variant's first level), as the deployed stack
    does: routing then finds every product's outlet levels in the stock state, as it would in a running shop."""
    from local_stack.event_sources import SqsPoller
    from local_stack.functions import LocalFunction

    sqs = shop.session.client("sqs")
    subscription = next(s for s in shop.resources.subscriptions if s.function == "StockSyncFunction")
    worker = SqsPoller(sqs, subscription, LocalFunction(shop.resources.functions["StockSyncFunction"]), print)
    while worker.poll_once(wait_seconds=0) or _depth(sqs, shop.queue_url("stock")):
        pass


def throughput(orders: int) -> dict[str, Any]:
    from local_stack.event_sources import SqsPoller
    from local_stack.functions import LocalFunction

    shop = open_shop("bench-throughput", families=20, limits=False)
    _settle_stock(shop)
    rng = random.Random(1)
    placed = [shop.place(rng) for _ in range(orders)]
    _queue_orders(shop, placed)
    sqs = shop.session.client("sqs")
    subscription = next(s for s in shop.resources.subscriptions if s.function == "OrderImportFunction")
    worker = SqsPoller(sqs, subscription, LocalFunction(shop.resources.functions["OrderImportFunction"]), print)
    pos_before, ecom_before = Counter(shop.pos.calls_by_route), Counter(shop.ecom.calls_by_route)
    customers_before = len(shop.pos.customers())
    aws_before, loads_before = Counter(AWS_CALLS), Counter(BUDGET_LOADS)
    started = time.perf_counter()
    with counting_http_clients() as built:
        while worker.poll_once(wait_seconds=0) or _depth(sqs, shop.queue_url("orders")):
            pass
    elapsed = time.perf_counter() - started
    aws_calls = Counter(AWS_CALLS) - aws_before
    pos_calls = Counter(shop.pos.calls_by_route) - pos_before
    ecom_calls = Counter(shop.ecom.calls_by_route) - ecom_before
    sales = shop.sales_by_source()
    created = len(shop.pos.customers()) - customers_before
    lines = sum(len(shop.ecom.order_products(o["id"])) for o in placed)
    _stop(shop)
    return {
        "orders": orders,
        "lines": lines,
        "elapsed_s": elapsed,
        "orders_per_s": orders / elapsed,
        "pos_calls": pos_calls,
        "ecom_calls": ecom_calls,
        "customers_created": created,
        "aws_calls": aws_calls,
        # One warm sandbox (this thread) through every record: clients and budget reads it made for them.
        "http_clients_built": built[0],
        "budget_loads": Counter(BUDGET_LOADS) - loads_before,
        "lost": sum(1 for o in placed if sales[f"ecom-{o['id']}"] == 0),
        "duplicated": sum(1 for n in sales.values() if n > 1),
    }


# -- 2. latency ---------------------------------------------------------------------------------------------


def latency(orders: int) -> dict[str, Any]:
    from pos_ecom_sync.connectors.ecom import EcomClient
    from pos_ecom_sync.ratelimit import InMemoryRateBudget

    from local_stack.api_server import LocalApi
    from local_stack.demo import DEMO_SECRETS
    from local_stack.event_sources import SqsPoller
    from local_stack.functions import LocalFunction

    shop = open_shop("bench-latency", families=10, limits=False)
    functions = {name: LocalFunction(spec) for name, spec in shop.resources.functions.items()}
    api = LocalApi(shop.resources.routes, functions, port=0)
    api.start()
    client = EcomClient(
        shop.ecom.url, DEMO_SECRETS["ecom_api_key"], DEMO_SECRETS["ecom_api_secret"], InMemoryRateBudget()
    )
    client.create_webhook("orders", "created", f"{api.url}/connections/{CONNECTION}/webhooks/ecom")
    subscription = next(s for s in shop.resources.subscriptions if s.function == "OrderImportFunction")
    worker = SqsPoller(shop.session.client("sqs"), subscription, functions["OrderImportFunction"], print)
    worker.start()
    rng = random.Random(2)
    seconds: list[float] = []
    for _ in range(orders):
        started = time.perf_counter()
        order = shop.place(rng)
        wanted = f"ecom-{order['id']}"
        deadline = started + 30
        while not any(s.get("source_id") == wanted for s in shop.pos.tables["sales"].rows.values()):
            if time.perf_counter() > deadline:
                raise SystemExit(f"order {order['number']} did not reach the POS in 30 s")
            time.sleep(0.002)
        seconds.append(time.perf_counter() - started)
    worker.stop()
    api.stop()
    _stop(shop)
    seconds.sort()
    return {
        "orders": orders,
        "p50_ms": statistics.median(seconds) * 1000,
        "p95_ms": seconds[max(0, math.ceil(len(seconds) * 0.95) - 1)] * 1000,
        "max_ms": seconds[-1] * 1000,
    }


# -- 3. burst under the real limits, virtual clock -----------------------------------------------------------


def simulator_windows(simulator: Any) -> list[tuple[int, float]]:
    """The fixed windows (limit, length s) a simulator enforces (X-Series: one; eCom: three plus 20 / s)."""
    windows = [
        getattr(simulator, "_window", None),
        *getattr(simulator, "_windows", ()),
        getattr(simulator, "_per_second", None),
    ]
    return [(w.limit, w.window_s) for w in windows if w is not None]


def _window_name(window: tuple[int, float]) -> str:
    limit, length = window
    return f"{limit:,} / {'s' if length == 1 else f'{length / 60:g} min' if length < 3600 else f'{length / 3600:g} h'}"


def burst_bound(calls: dict[str, int], windows: dict[str, list[tuple[int, float]]]) -> tuple[float, str]:
    """The drain's lower bound over every API: (seconds, "<api> <binding window>")."""
    from tests.perf.virtual_time import windows_lower_bound_s

    best, why = 0.0, "no calls"
    for api, count in calls.items():
        seconds, index = windows_lower_bound_s(count, windows[api])
        if seconds >= best:
            best, why = seconds, f"{api} {_window_name(windows[api][index])}"
    return best, why


def burst(orders: int, workers: int | None = None, families: int = 40) -> dict[str, Any]:
    """`orders` placed at once, imported by order_import's real handler in `workers` concurrent sandboxes (default:
    the template's MaximumConcurrency), all on one virtual clock with both simulators enforcing their real limits."""
    from pos_ecom_sync import runtime

    from local_stack.cfn_yaml import load_template
    from local_stack.provision import TEMPLATE_PATH
    from tests.perf.virtual_sqs import VirtualSqs, drain_with_workers, runtime_sqs
    from tests.perf.virtual_time import SharedClock, virtual_defaults

    if workers is None:
        workers = template_concurrency(load_template(TEMPLATE_PATH), "OrderImportFunction")
    clock = SharedClock(float(int(time.time())))
    sqs = VirtualSqs(clock)
    with virtual_defaults(clock, clock.sleep), runtime_sqs(sqs):
        shop = open_shop("bench-burst", families=families, limits=True, clock=clock, sync_catalog=False)
        url = shop.queue_url("orders")
        sqs.mirror(shop.session.client("sqs"), [url])
        rng = random.Random(3)
        placed = [shop.place(rng) for _ in range(orders)]
        clock.sleep(86_400 + 60)  # past every window the set-up opened: the burst meets fresh limits
        _queue_orders(shop, placed, sqs=sqs)
        subscription = next(s for s in shop.resources.subscriptions if s.function == "OrderImportFunction")
        pos_routes, ecom_routes = Counter(shop.pos.calls_by_route), Counter(shop.ecom.calls_by_route)
        pos_before, ecom_before = shop.pos.requests, shop.ecom.requests
        throttled_before = shop.pos.throttled, shop.ecom.throttled
        customers_before = len(shop.pos.customers())
        aws_before = Counter(AWS_CALLS)
        started_real, started = time.perf_counter(), clock()
        run = drain_with_workers(clock, sqs, subscription, shop.resources.functions["OrderImportFunction"], workers)
        real_s = time.perf_counter() - started_real
        sales = shop.sales_by_source()
        pos_calls, ecom_calls = shop.pos.requests - pos_before, shop.ecom.requests - ecom_before
        created = len(shop.pos.customers()) - customers_before
        windows = {"POS": simulator_windows(shop.pos), "eCom": simulator_windows(shop.ecom)}
        bound_s, binding = burst_bound({"POS": pos_calls, "eCom": ecom_calls}, windows)
        minimum = len(sales) + created  # one sale per order, one customer create per new email
        ideal_s, ideal_binding = burst_bound({"POS": minimum, "eCom": ecom_calls}, windows)
        dead = sum(q.sent for u, q in sqs.queues.items() if u != url)
        result = {
            "orders": orders,
            "workers": workers,
            "families": families,
            "real_s": real_s,
            "drain_s": run.last_done_at - started,
            "bound_s": bound_s,
            "binding": binding,
            "ideal_bound_s": ideal_s,
            "ideal_binding": ideal_binding,
            "pos_calls": pos_calls,
            "pos_minimum": minimum,
            "pos_routes": Counter(shop.pos.calls_by_route) - pos_routes,
            "ecom_calls": ecom_calls,
            "ecom_routes": Counter(shop.ecom.calls_by_route) - ecom_routes,
            "lost": sum(1 for o in placed if sales[f"ecom-{o['id']}"] == 0),
            "duplicated": sum(1 for n in sales.values() if n > 1),
            "pos_429": shop.pos.throttled - throttled_before[0],
            "ecom_429": shop.ecom.throttled - throttled_before[1],
            "dead_lettered": dead,
            "aws_calls": Counter(AWS_CALLS) - aws_before,
            "delayed": len(sqs.visibility_changes),
            "invocations": run.invocations,
            "records": run.records,
            "failed_invocations": len(run.failed_invocations),
        }
        _stop(shop)
    runtime.reset()
    return result


def template_concurrency(template: dict[str, Any], function: str) -> int:
    """The SQS event source's MaximumConcurrency of `function` (Lambda's concurrent sandboxes for its queue)."""
    events = template["Resources"][function]["Properties"].get("Events", {})
    for event in events.values():
        if event.get("Type") == "SQS":
            return int(event["Properties"].get("ScalingConfig", {}).get("MaximumConcurrency", 5))
    return 1


def print_burst(b: dict[str, Any]) -> None:
    print(
        f"\n3. burst of {b['orders']:,} orders at once ({b['families']} families x 3 variants), order_import's "
        f"handler in {b['workers']} concurrent sandboxes, X-Series and eCom simulators at their real limits, "
        "virtual clock:"
    )
    print(
        f"   lost {b['lost']}, duplicated {b['duplicated']}, 429s POS {b['pos_429']} / eCom {b['ecom_429']}, "
        f"dead-lettered {b['dead_lettered']}"
    )
    print(
        f"   drained in {b['drain_s'] / 60:.1f} simulated min ({b['real_s']:.0f} s real) vs lower bound "
        f"{b['bound_s'] / 60:.1f} min ({b['binding']} binds) for the {b['pos_calls']:,} POS calls "
        f"({b['pos_calls'] / b['orders']:.2f} per order) and {b['ecom_calls']:,} eCom calls made; at the POS minimum "
        f"({b['pos_minimum']:,} calls: 1 sale per order + 1 customer create per new email) the bound would be "
        f"{b['ideal_bound_s'] / 60:.1f} min ({b['ideal_binding']})"
    )
    for label, routes in (("POS", b["pos_routes"]), ("eCom", b["ecom_routes"])):
        for route, n in sorted(routes.items(), key=lambda kv: -kv[1]):
            print(f"     {n / b['orders']:5.2f}  {label} {route}")
    aws = b["aws_calls"]
    print(
        f"   {b['invocations']:,} invocations for {b['records']:,} records ({b['records'] / b['orders']:.1f} per "
        f"order); records delayed through SQS (throttled or busy): {b['delayed']:,}; batches with a retried record: "
        f"{b['failed_invocations']}; AWS calls per order {sum(aws.values()) / b['orders']:.1f} "
        f"({_per(aws, b['orders'])})"
    )


def _per(calls: Counter[str], per: int, top: int = 4) -> str:
    return ", ".join(f"{n / per:.2f} {name}" for name, n in calls.most_common(top))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.perf.bench_orders", description=__doc__)
    parser.add_argument("--orders", type=int, default=300, help="orders for the throughput run")
    parser.add_argument("--latency", type=int, default=60, help="orders for the latency run")
    parser.add_argument("--burst", type=int, default=1000, help="orders in the burst (0: skip)")
    parser.add_argument("--workers", type=int, default=None, help="burst sandboxes (default: the template's)")
    args = parser.parse_args(argv)
    print(f"python {sys.version.split()[0]} on {os.cpu_count()} cores; AWS = moto in-process, vendors = simulators")
    with mock_aws(), dynamodb_one_call_at_a_time():
        with limits_off():
            t = throughput(args.orders)
            lat = latency(args.latency)
        pos_total = sum(t["pos_calls"].values())
        creates = t["pos_calls"]["POST /api/2026-07/sales"]
        minimum = creates + t["customers_created"]
        print(
            f"\n1. throughput, limits off, 1 worker: {t['orders_per_s']:.1f} orders/s "
            f"({t['orders']} orders, {t['lines']} lines, {t['elapsed_s']:.1f} s); lost {t['lost']}, "
            f"duplicated {t['duplicated']}"
        )
        print(
            f"   POS calls per order: {pos_total / t['orders']:.2f} vs minimum {minimum / t['orders']:.2f} "
            f"(1 POST /sales per order + 1 customer create per new email: {t['customers_created']} created)"
        )
        for route, n in sorted(t["pos_calls"].items(), key=lambda kv: -kv[1]):
            print(f"     {n / t['orders']:5.2f}  {route}")
        ecom_total = sum(t["ecom_calls"].values())
        print(f"   eCom calls per order: {ecom_total / t['orders']:.2f} (the order and its lines, re-read)")
        for route, n in sorted(t["ecom_calls"].items(), key=lambda kv: -kv[1]):
            print(f"     {n / t['orders']:5.2f}  {route}")
        aws_total = sum(t["aws_calls"].values())
        print(f"   AWS calls per order (moto, where the time goes): {aws_total / t['orders']:.1f}")
        for call, n in sorted(t["aws_calls"].items(), key=lambda kv: -kv[1])[:8]:
            print(f"     {n / t['orders']:5.2f}  {call}")
        loads = ", ".join(f"{api} {n}" for api, n in sorted(t["budget_loads"].items())) or "none"
        print(
            f"   one warm sandbox through {t['orders']} records: {t['http_clients_built']} httpx.Client built, "
            f"rate budget reads: {loads}"
        )

        print(
            f"\n2. order placed -> POS sale (webhook -> API -> webhook_ingest -> SQS -> order_import -> POS), "
            f"{lat['orders']} sequential orders: p50 {lat['p50_ms']:.0f} ms, p95 {lat['p95_ms']:.0f} ms, "
            f"max {lat['max_ms']:.0f} ms"
        )

        if args.burst:
            print_burst(burst(args.burst, args.workers))


if __name__ == "__main__":
    main()
