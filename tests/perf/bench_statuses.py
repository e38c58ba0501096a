"""Benchmark: order status sync (seed 004's mapping) through the real path, in-process, AWS on moto.

Run: `.venv/bin/python -m tests.perf.bench_statuses [--orders 60]`. Prints figures; asserts only that every
change arrived.

Orders are placed in the eCom simulator and imported by order_import first. Then, one order at a time, a person
changes it in one back office, and the benchmark waits until the other side shows it:
- eCom marks an unpaid order paid          -> a POS payment (POS `register_sales` update)
- eCom ships a delivery order              -> the POS fulfilment completes (2026-07 `POST /fulfillments/fulfill`)
- eCom cancels the payment                 -> the POS sale is voided
- the POS voids the sale                   -> the eCom order is cancelled
- the POS packs a pickup order             -> eCom "ready for pickup"
- the POS takes the payment (sell screen)  -> eCom paid
Path: the vendor's webhook (eCom orders/updated + shipments/created, X-Series sale.update) -> the template's API
route -> webhook_ingest -> statuses queue -> status_sync (long-polling event source) -> the other vendor. Vendor
limits are off. Reported: change -> other side p50/p95, vendor calls per change against the minimum (one write),
and status messages handled per change (each write's own webhook echo comes back and must cost no write).
"""

from __future__ import annotations

import argparse
import math
import os
import random
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from moto import mock_aws

from tests.perf.bench_orders import (
    CONNECTION,
    Shop,
    _depth,
    _queue_orders,
    _stop,
    dynamodb_one_call_at_a_time,
    limits_off,
    open_shop,
)

# (what a person does, on which kind of order); cycled over the orders.
SCENARIOS = ("ecom_paid", "ecom_shipped", "ecom_cancelled", "pos_voided", "pos_packed", "pos_paid")


def _place(shop: Shop, rng: random.Random, scenario: str) -> dict[str, Any]:
    unpaid = scenario in ("ecom_paid", "pos_paid")
    pickup = scenario == "pos_packed"
    _, variant = rng.choice(shop.variants)
    return dict(
        shop.ecom.place_order(
            [{"variant_id": variant, "quantity": 1}],
            email=f"status{rng.randrange(10**6)}@example.com",
            payment_title="Bank deposit" if unpaid else "Lightspeed Payments",
            payment_status="not_paid" if unpaid else "paid",
            shipment_title="Pick up in store" if pickup else "Courier",
            is_pickup=pickup,
            allow_backorder=True,
        )
    )


def _change(shop: Shop, scenario: str, order: dict[str, Any], sale: dict[str, Any]) -> Callable[[], bool]:
    """Make the change; returns the check that the other side shows it."""
    pos, ecom = shop.pos, shop.ecom

    def pos_sale() -> dict[str, Any]:
        return dict(pos.tables["sales"].rows[sale["id"]])

    def ecom_order() -> dict[str, Any]:
        return next(o for o in ecom.orders() if o["id"] == order["id"])

    if scenario == "ecom_paid":
        ecom.update_order_status(order["id"], payment_status="paid")
        return lambda: bool(pos_sale()["payments"])
    if scenario == "ecom_shipped":
        ecom.create_shipment(order["id"])
        return lambda: all(f["state"] == "FULFILLED" for f in pos.fulfillments(sale["id"]))
    if scenario == "ecom_cancelled":
        ecom.update_order_status(order["id"], payment_status="cancelled")
        return lambda: pos_sale()["status"] == "VOIDED"
    if scenario == "pos_voided":
        pos.void_sale(sale["id"])
        return lambda: ecom_order()["paymentStatus"] == "cancelled"
    if scenario == "pos_packed":
        pos.pack_fulfillments(sale["id"])
        return lambda: ecom_order()["status"] == "processing_ready_for_pickup"
    if scenario == "pos_paid":
        pos.pay_sale(sale["id"], "Cash")
        return lambda: ecom_order()["paymentStatus"] == "paid"
    raise ValueError(scenario)


def run(orders: int) -> dict[str, Any]:
    from pos_ecom_sync.connectors.ecom import EcomClient
    from pos_ecom_sync.profiles.xseries.client import XSeriesClient
    from pos_ecom_sync.ratelimit import InMemoryRateBudget

    from local_stack.api_server import LocalApi
    from local_stack.demo import DEMO_SECRETS
    from local_stack.event_sources import SqsPoller
    from local_stack.functions import LocalFunction

    shop = open_shop("bench-statuses", families=10, limits=False)
    rng = random.Random(3)
    scenarios = [SCENARIOS[n % len(SCENARIOS)] for n in range(orders)]
    placed = [_place(shop, rng, s) for s in scenarios]
    sqs = shop.session.client("sqs")
    functions = {name: LocalFunction(spec) for name, spec in shop.resources.functions.items()}

    def worker(name: str) -> SqsPoller:
        subscription = next(s for s in shop.resources.subscriptions if s.function == name)
        return SqsPoller(sqs, subscription, functions[name], lambda line: None)

    _queue_orders(shop, placed)
    importer = worker("OrderImportFunction")
    while importer.poll_once(wait_seconds=0) or _depth(sqs, shop.queue_url("orders")):
        pass
    sales = {s["source_id"]: s for s in shop.pos.sales() if str(s.get("source_id") or "").startswith("ecom-")}
    assert len(sales) == orders, "every order is imported first"

    api = LocalApi(shop.resources.routes, functions, port=0)
    api.start()
    base = f"{api.url}/connections/{CONNECTION}/webhooks"
    ecom = EcomClient(
        shop.ecom.url, DEMO_SECRETS["ecom_api_key"], DEMO_SECRETS["ecom_api_secret"], InMemoryRateBudget()
    )
    ecom.create_webhook("orders", "updated", f"{base}/ecom")
    ecom.create_webhook("shipments", "created", f"{base}/ecom")
    XSeriesClient(shop.pos.url, DEMO_SECRETS["pos_access_token"], InMemoryRateBudget()).create_webhook(
        f"{base}/pos?token={DEMO_SECRETS['pos_webhook_token']}", "sale.update"
    )
    statuses = worker("StatusSyncFunction")
    handled = Counter[str]()
    original_invoke = statuses.function.invoke

    def counting_invoke(event: dict[str, Any]) -> Any:
        handled["messages"] += len(event.get("Records", []))
        return original_invoke(event)

    statuses.function.invoke = counting_invoke  # type: ignore[method-assign]
    statuses.start()
    pos_before, ecom_before = Counter(shop.pos.calls_by_route), Counter(shop.ecom.calls_by_route)
    seconds: dict[str, list[float]] = {s: [] for s in SCENARIOS}
    calls = Counter[str]()  # vendor calls per scenario, its echoes included
    routes: dict[str, Counter[str]] = {s: Counter() for s in SCENARIOS}  # "<vendor> <route>" -> calls, per scenario

    def vendor_routes() -> Counter[str]:
        return Counter({f"{vendor} {route}": count for vendor, sim in (("POS", shop.pos), ("eCom", shop.ecom))
                        for route, count in sim.calls_by_route.items()})  # fmt: skip

    for scenario, order in zip(scenarios, placed, strict=True):
        before = sum(shop.pos.calls_by_route.values()) + sum(shop.ecom.calls_by_route.values())
        routes_before = vendor_routes()
        started = time.perf_counter()
        arrived = _change(shop, scenario, order, sales[f"ecom-{order['id']}"])
        while not arrived():
            if time.perf_counter() > started + 30:
                raise SystemExit(f"{scenario} of order {order['number']} did not reach the other side in 30 s")
            time.sleep(0.002)
        seconds[scenario].append(time.perf_counter() - started)
        # Let the change's own echo settle before the next one, so every call is counted against its change.
        assert shop.pos.wait_for_webhooks() and shop.ecom.wait_for_webhooks()
        while _depth(sqs, shop.queue_url("statuses")):
            time.sleep(0.005)
        calls[scenario] += sum(shop.pos.calls_by_route.values()) + sum(shop.ecom.calls_by_route.values()) - before
        routes[scenario] += vendor_routes() - routes_before
    statuses.stop()
    api.stop()
    pos_calls = Counter(shop.pos.calls_by_route) - pos_before
    ecom_calls = Counter(shop.ecom.calls_by_route) - ecom_before
    dead = _depth(sqs, shop.queue_url("statuses").replace("-statuses.fifo", "-statuses-dlq.fifo"))
    _stop(shop)
    return {
        "orders": orders,
        "seconds": seconds,
        "calls": calls,
        "routes": routes,
        "pos_calls": pos_calls,
        "ecom_calls": ecom_calls,
        "messages": handled["messages"],
        "dead_lettered": dead,
    }


def _pct(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(len(ordered) * share) - 1)] * 1000


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.perf.bench_statuses", description=__doc__)
    parser.add_argument("--orders", type=int, default=60, help="orders, one status change each")
    args = parser.parse_args(argv)
    print(f"python {sys.version.split()[0]} on {os.cpu_count()} cores; AWS = moto in-process, vendors = simulators")
    with mock_aws(), dynamodb_one_call_at_a_time(), limits_off():
        r = run(args.orders)
    everything = [s for values in r["seconds"].values() for s in values]
    n = len(everything)
    print(
        f"\n{n} status changes, each through webhook -> API -> webhook_ingest -> SQS -> status_sync -> other vendor: "
        f"p50 {statistics.median(everything) * 1000:.0f} ms, p95 {_pct(everything, 0.95):.0f} ms, "
        f"max {max(everything) * 1000:.0f} ms"
    )
    for scenario, values in r["seconds"].items():
        if values:
            print(f"   {scenario:15s} {len(values):3d} changes: p50 {statistics.median(values) * 1000:.0f} ms, "
                  f"p95 {_pct(values, 0.95):.0f} ms, {r['calls'][scenario] / len(values):.2f} vendor calls "
                  "per change")  # fmt: skip
    writes = {route: c for route, c in (r["pos_calls"] + r["ecom_calls"]).items() if not route.startswith("GET")}
    total = sum(r["pos_calls"].values()) + sum(r["ecom_calls"].values())
    print(
        f"   vendor calls per change: {total / n:.2f} ({sum(writes.values()) / n:.2f} writes; minimum 1 write, "
        f"the change itself); status messages handled per change: {r['messages'] / n:.2f} (incl. echoes of our "
        f"own writes); dead-lettered: {r['dead_lettered']}"
    )
    for label, calls in (("POS", r["pos_calls"]), ("eCom", r["ecom_calls"])):
        for route, count in sorted(calls.items(), key=lambda kv: -kv[1]):
            print(f"     {count / n:5.2f}  {label} {route}")


if __name__ == "__main__":
    main()
