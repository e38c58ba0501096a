"""Benchmark: order import (eCom order -> POS sale) against the simulators, in-process, AWS on moto.

Run: `.venv/bin/python -m tests.perf.bench_orders [--orders 300] [--latency 60] [--burst 1000] [--speed 10]`.
Prints figures; asserts only that nothing was lost or doubled.

1. Throughput, vendor limits off: orders queued by the poller's sweep, drained by order_import (the function
   from functions/order_import/app.py) one batch at a time; orders/s, and POS calls per order by route against
   the minimum (one 2026-07 `POST /sales` per order, plus one customer create per new email).
2. Latency, order placed -> POS sale: the eCom simulator's orders/created webhook -> the template's API route ->
   webhook_ingest -> orders queue -> order_import (long-polling event source) -> POS sale; p50/p95 over
   sequential orders.
3. Burst: 1,000 orders at once under the real X-Series limit (300 x 1 register + 50 per 5 min) and eCom's
   (300 / 5 min, 3,000 / h), five concurrent workers sharing the DynamoDB rate budget, exactly as Lambda runs
   them (SqsFifoPartialProcessor, throttled records delayed through their visibility). The vendors' windows run on
   an ACCELERATED CLOCK (`--speed` x real time, the same clock for simulators, budgets and Retry-After dates;
   SQS delays are scaled by the same factor). Reports lost, duplicated, 429s, and the drain time in simulated
   minutes next to the floor the limit allows.
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
from pos_ecom_sync.profiles.xseries.orders import XSeriesOrders

CONNECTION = "bench"
EMAILS = [f"shopper{n}@example.com" for n in range(60)] + ["mira.okafor@example.com", "tama.ngata@example.com"]
PAYMENTS = (
    [("Lightspeed Payments", "paid")] * 6 + [("Bank transfer", "paid")] * 2 + [("Lightspeed Payments", "not_paid")]
)


AWS_CALLS: Counter[str] = Counter()  # "service operation" -> calls, every AWS call the process made


@contextmanager
def dynamodb_one_call_at_a_time() -> Iterator[None]:
    """moto's in-process DynamoDB is not thread-safe; real DynamoDB serialises conflicting writes itself."""
    lock = threading.RLock()
    original = botocore.client.BaseClient._make_api_call

    def serialised(self: Any, operation: str, params: dict[str, Any]) -> Any:
        AWS_CALLS[f"{self.meta.service_model.service_name} {operation}"] += 1
        if self.meta.service_model.service_name == "dynamodb":
            with lock:
                return original(self, operation, params)
        return original(self, operation, params)

    botocore.client.BaseClient._make_api_call = serialised  # type: ignore[method-assign]
    try:
        yield
    finally:
        botocore.client.BaseClient._make_api_call = original  # type: ignore[method-assign]


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
    ChangePoller(store, ChangePublisher(shop.queue_url, client=sqs)).poll(shop.connection, XSeriesFeeds(pos), ecom)
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
    """The same catalog in eCom (same generator, same seed) and the links as product_sync leaves them, written
    directly: the burst measures orders, and catalog calls would only spend the windows first."""
    from pos_ecom_sync.state import keys

    shop.ecom.seed_catalog(families, 3, seed=5)
    table = shop.session.resource("dynamodb").Table(shop.env["TABLE_NAME"])
    by_sku = {v["sku"]: v for v in shop.ecom.variants()}
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
            table.put_item(Item={"pk": pk, "sk": sk, **link})
        shop.variants.append((row["id"], variant["id"]))


def _depth(sqs: Any, url: str) -> int:
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    return sum(int(attributes[n]) for n in names)


def _queue_orders(shop: Shop, orders: list[dict[str, Any]]) -> None:
    """As the poller's sweep queues them (one message per order, the order as payload)."""
    from datetime import UTC, datetime

    from pos_ecom_sync.models.messages import ChangeMessage
    from pos_ecom_sync.queues import ChangePublisher, Outgoing

    now = datetime.now(UTC)
    publisher = ChangePublisher(shop.queue_url, client=shop.session.client("sqs"))
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


def throughput(orders: int) -> dict[str, Any]:
    from local_stack.event_sources import SqsPoller
    from local_stack.functions import LocalFunction

    shop = open_shop("bench-throughput", families=20, limits=False)
    rng = random.Random(1)
    placed = [shop.place(rng) for _ in range(orders)]
    _queue_orders(shop, placed)
    sqs = shop.session.client("sqs")
    subscription = next(s for s in shop.resources.subscriptions if s.function == "OrderImportFunction")
    worker = SqsPoller(sqs, subscription, LocalFunction(shop.resources.functions["OrderImportFunction"]), print)
    pos_before, ecom_before = Counter(shop.pos.calls_by_route), Counter(shop.ecom.calls_by_route)
    customers_before = len(shop.pos.customers())
    aws_before = Counter(AWS_CALLS)
    started = time.perf_counter()
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


# -- 3. burst under the real limits, accelerated clock -------------------------------------------------------


class AcceleratedClock:
    """`speed` x real time, from now on; `sleep` sleeps the real share of a simulated wait."""

    def __init__(self, speed: float) -> None:
        self.speed = speed
        self._origin = time.time()

    def __call__(self) -> float:
        return self._origin + (time.time() - self._origin) * self.speed

    def sleep(self, seconds: float) -> None:
        time.sleep(max(0.0, seconds) / self.speed)


class ScaledSqs:
    """The SQS client the workers see: a visibility delay in simulated seconds becomes real seconds."""

    def __init__(self, sqs: Any, speed: float) -> None:
        self._sqs = sqs
        self._speed = speed
        self.delays: list[int] = []

    def change_message_visibility(self, **kwargs: Any) -> Any:
        self.delays.append(int(kwargs["VisibilityTimeout"]))
        kwargs["VisibilityTimeout"] = max(1, math.ceil(int(kwargs["VisibilityTimeout"]) / self._speed))
        return self._sqs.change_message_visibility(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sqs, name)


def burst(orders: int, speed: float, workers: int = 5) -> dict[str, Any]:
    from aws_lambda_powertools import Logger, Metrics
    from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
    from pos_ecom_sync.connectors.ecom import EcomClient
    from pos_ecom_sync.orders.importer import EventBridgeNotifier, OrderImporter
    from pos_ecom_sync.profiles.xseries.client import XSeriesClient
    from pos_ecom_sync.reference import ReferenceCache
    from pos_ecom_sync.state.budget import DynamoRateBudget
    from pos_ecom_sync.state.order_store import OrderStore
    from pos_ecom_sync.state.store import SyncStore
    from pos_ecom_sync.workers import DeadLetters, consume_changes

    from local_stack.demo import DEMO_SECRETS
    from local_stack.lambda_events import LambdaContext, sqs_event

    clock = AcceleratedClock(speed)
    shop = open_shop("bench-burst", families=40, limits=True, clock=clock, sync_catalog=False)
    rng = random.Random(3)
    placed = [shop.place(rng) for _ in range(orders)]
    _queue_orders(shop, placed)

    table = shop.env["TABLE_NAME"]
    ddb = shop.session.client("dynamodb")
    sync_store = SyncStore(table, resource=shop.session.resource("dynamodb"))
    order_store = OrderStore(table, client=ddb)
    events = shop.session.client("events")
    reference = ReferenceCache()
    sqs = ScaledSqs(shop.session.client("sqs"), speed)
    url = shop.queue_url("orders")
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    dead_letters = DeadLetters(sqs, url.replace("-orders.fifo", "-orders-dlq.fifo"))
    logger, metrics = Logger(service="bench"), Metrics(namespace="Bench")

    def importer() -> OrderImporter:
        """What runtime.order_importer builds, on the accelerated clock (WORKER_MAX_RATE_WAIT_SECONDS = 20)."""
        timing = {"clock": clock, "sleep": clock.sleep}
        pos_budget = DynamoRateBudget(table, CONNECTION, "xseries", client=ddb, **timing)
        ecom_budget = DynamoRateBudget(table, CONNECTION, "ecom", client=ddb, **timing)
        pos = XSeriesClient(shop.pos.url, DEMO_SECRETS["pos_access_token"], pos_budget, max_wait_s=20, **timing)
        ecom = EcomClient(
            shop.ecom.url,
            DEMO_SECRETS["ecom_api_key"],
            DEMO_SECRETS["ecom_api_secret"],
            ecom_budget,
            max_wait_s=20,
            **timing,
        )
        notifier = EventBridgeNotifier(events, "default")
        orders = XSeriesOrders(pos, shop.connection, reference)
        return OrderImporter(shop.connection, orders, ecom, order_store, sync_store, notifier=notifier)

    outcomes: Counter[str] = Counter()
    lock = threading.Lock()

    def handle(message: Any) -> Any:
        result = importer().import_order(int(message.entity_id))
        with lock:
            outcomes[result.outcome] += 1
        return result

    def work() -> None:
        while True:
            batch = sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"], MessageAttributeNames=["All"]
            ).get("Messages", [])
            if not batch:
                if not _depth(sqs, url):
                    return
                time.sleep(0.05)
                continue
            try:
                response = consume_changes(
                    sqs_event(batch, arn),
                    LambdaContext(function_name="order_import", timeout_s=60),
                    handle,
                    sqs=sqs,
                    dead_letters=dead_letters,
                    logger=logger,
                    metrics=metrics,
                    clock=clock,
                )
                failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
            except BatchProcessingError:
                failed = {m["MessageId"] for m in batch}  # the whole batch is retried
            done = [m for m in batch if m["MessageId"] not in failed]
            if done:
                sqs.delete_message_batch(
                    QueueUrl=url,
                    Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
                )
            with lock:
                outcomes["retried later"] += len(failed)

    pos_before = shop.pos.requests
    started_real, started_sim = time.perf_counter(), clock()
    threads = [threading.Thread(target=work, name=f"worker-{n}") for n in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    real_s, sim_s = time.perf_counter() - started_real, clock() - started_sim
    sales = shop.sales_by_source()
    pos_calls = shop.pos.requests - pos_before
    parked = len(sqs.receive_message(QueueUrl=dead_letters.queue_url, MaxNumberOfMessages=10).get("Messages", []))
    result = {
        "orders": orders,
        "workers": workers,
        "speed": speed,
        "real_s": real_s,
        "simulated_min": sim_s / 60,
        "pos_calls": pos_calls,
        "lost": sum(1 for o in placed if sales[f"ecom-{o['id']}"] == 0),
        "duplicated": sum(1 for n in sales.values() if n > 1),
        "pos_429": shop.pos.throttled,
        "ecom_429": shop.ecom.throttled,
        "ecom_calls": shop.ecom.requests,
        "dead_lettered": parked,
        "delayed": len(sqs.delays),
        "outcomes": dict(outcomes),
    }
    _stop(shop)
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.perf.bench_orders", description=__doc__)
    parser.add_argument("--orders", type=int, default=300, help="orders for the throughput run")
    parser.add_argument("--latency", type=int, default=60, help="orders for the latency run")
    parser.add_argument("--burst", type=int, default=1000, help="orders in the burst (0: skip)")
    parser.add_argument("--speed", type=float, default=10.0, help="clock acceleration for the burst")
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

        print(
            f"\n2. order placed -> POS sale (webhook -> API -> webhook_ingest -> SQS -> order_import -> POS), "
            f"{lat['orders']} sequential orders: p50 {lat['p50_ms']:.0f} ms, p95 {lat['p95_ms']:.0f} ms, "
            f"max {lat['max_ms']:.0f} ms"
        )

        if args.burst:
            b = burst(args.burst, args.speed)
            floor = (math.ceil(b["pos_calls"] / 350) - 1) * 5  # fixed windows: the last one opens at this minute
            print(
                f"\n3. burst of {b['orders']} orders, X-Series 350 / 5 min and eCom 300 / 5 min + 3,000 / h, "
                f"{b['workers']} workers, clock accelerated {b['speed']:g}x:"
            )
            print(
                f"   lost {b['lost']}, duplicated {b['duplicated']}, 429s POS {b['pos_429']} / eCom {b['ecom_429']}, "
                f"dead-lettered {b['dead_lettered']}"
            )
            print(
                f"   drained in {b['simulated_min']:.1f} simulated min ({b['real_s']:.0f} s real); "
                f"{b['pos_calls']} POS calls ({b['pos_calls'] / b['orders']:.2f} per order) need at least "
                f"{floor:.0f}+ min at 350 per 5-min window; {b['ecom_calls']} eCom calls"
            )
            print(f"   records: {b['outcomes']}; throttled records delayed through SQS: {b['delayed']}")


if __name__ == "__main__":
    main()
