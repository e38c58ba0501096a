"""The whole system on one machine: moto (server mode), both vendor simulators, the template's API
routes, its queue -> function mappings and its schedules, plus a demo connection.

Everything is wired from template.yaml (see provision.py); only ports and demo data are local choices.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import boto3

from local_stack.api_server import LocalApi
from local_stack.demo import DEMO_CONNECTION_ID, DEMO_SECRETS
from local_stack.event_sources import ScheduleTimer, SqsPoller
from local_stack.functions import LocalFunction
from local_stack.lambda_service import LocalLambdaService
from local_stack.provision import ACCOUNT_ID, LocalStackResources, local_outputs, provision
from local_stack.simulators.ecom import EcomSimulator
from local_stack.simulators.xseries import XSeriesSimulator

OUTPUTS_FILE = Path(".local-stack/outputs.json")


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


@dataclass
class StackConfig:
    api_port: int = field(default_factory=lambda: _env_int("API_PORT", 3000))
    pos_port: int = field(default_factory=lambda: _env_int("POS_PORT", 8081))
    ecom_port: int = field(default_factory=lambda: _env_int("ECOM_PORT", 8082))
    moto_port: int = field(default_factory=lambda: _env_int("MOTO_PORT", 5000))
    lambda_port: int = field(default_factory=lambda: _env_int("LAMBDA_PORT", 3001))
    # The template polls every minute; locally a shorter period makes the demo visible sooner.
    schedule_seconds: float = field(default_factory=lambda: float(os.environ.get("LOCAL_SCHEDULE_SECONDS", 20)))
    families: int = field(default_factory=lambda: _env_int("DEMO_FAMILIES", 10))
    variants_per_family: int = field(default_factory=lambda: _env_int("DEMO_VARIANTS", 3))
    demo_every_seconds: float = field(default_factory=lambda: float(os.environ.get("DEMO_EVERY_SECONDS", 15)))
    run_demo: bool = True
    stack_name: str = "local"
    region: str = "us-east-1"
    # Where the CLI finds this stack (`make run`: the repo's .local-stack/outputs.json). None writes nothing: the
    # tests' in-process stacks, which run beside a `make run` and must not replace or delete its file.
    outputs_file: Path | None = OUTPUTS_FILE


def narrate(line: str) -> None:
    print(f"[{datetime.now().strftime('%H:%M:%S')}] {line}", flush=True)


class LocalStack:
    def __init__(self, config: StackConfig) -> None:
        self.config = config
        self.stopping = threading.Event()
        self.moto: Any = None
        self.pos: XSeriesSimulator | None = None
        self.ecom: EcomSimulator | None = None
        self.api: LocalApi | None = None
        self.lambda_service: LocalLambdaService | None = None
        self.resources: LocalStackResources | None = None
        self.functions: dict[str, LocalFunction] = {}
        self.pollers: list[SqsPoller] = []
        self.timers: list[ScheduleTimer] = []
        self.session: Any = None

    # -- start -------------------------------------------------------------------------------------

    def start(self) -> None:
        self._start_moto()
        self.resources = provision(self.session, stack_name=self.config.stack_name, region=self.config.region)
        self._export_function_environment(self.resources)
        self._start_simulators()
        self._register_demo_connection()
        self._start_functions(self.resources)
        self._subscribe_vendor_webhooks()
        self._write_outputs()

    def _start_moto(self) -> None:
        import logging

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's per-request access log drowns the narration
        from local_stack.moto_server import LocalMotoServer

        self.moto = LocalMotoServer(ip_address="127.0.0.1", port=self.config.moto_port, verbose=False)
        self.moto.start()
        endpoint = f"http://127.0.0.1:{self.config.moto_port}"
        os.environ.update(
            {
                "AWS_ENDPOINT_URL": endpoint,
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_DEFAULT_REGION": self.config.region,
            }
        )
        os.environ.pop("AWS_PROFILE", None)
        self.session = boto3.Session(region_name=self.config.region)

    def _export_function_environment(self, resources: LocalStackResources) -> None:
        # Functions share one process here; their template environments do not conflict. THIRD_PARTY_LOG_LEVEL, set
        # before start, wins over the template's (debugging httpx/botocore locally).
        third_party = os.environ.get("THIRD_PARTY_LOG_LEVEL")
        os.environ.update(resources.shared_environment())
        if third_party:
            os.environ["THIRD_PARTY_LOG_LEVEL"] = third_party
        # The template's INFO suits CloudWatch; here the narration tells the story and LOG_LEVEL=INFO adds the logs.
        os.environ["POWERTOOLS_LOG_LEVEL"] = os.environ.get("LOG_LEVEL", "WARNING")
        os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
        os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")

    def _start_simulators(self) -> None:
        self._start_pos()
        self.ecom = EcomSimulator(
            api_key=DEMO_SECRETS["ecom_api_key"],
            api_secret=DEMO_SECRETS["ecom_api_secret"],
            webhook_secret=DEMO_SECRETS["ecom_webhook_secret"],
            seed=7,
            narrate=lambda s: narrate(f"eCom | {s}"),
        )
        self.ecom_url = self.ecom.start(port=self.config.ecom_port)

    def _start_pos(self) -> None:
        """The POS simulator, started and seeded (another POS's stack overrides this)."""
        self.pos = XSeriesSimulator(
            domain_prefix="demo",
            token=DEMO_SECRETS["pos_access_token"],
            seed=7,
            narrate=lambda s: narrate(f"POS  | {s}"),
        )
        self.pos_url = self.pos.start(port=self.config.pos_port)
        self.pos.seed_catalog(self.config.families, self.config.variants_per_family, seed=7)

    def _register_demo_connection(self) -> None:
        from pos_ecom_sync.models.connection import Connection, ConnectionSecrets
        from pos_ecom_sync.profiles.xseries.client import XSeriesClient
        from pos_ecom_sync.profiles.xseries.shipping import ensure_shipping_product
        from pos_ecom_sync.ratelimit import InMemoryRateBudget
        from pos_ecom_sync.secrets import write_connection_secrets
        from pos_ecom_sync.state.store import SyncStore

        assert self.pos is not None
        env = os.environ
        outlets = [o["id"] for o in self.pos.outlets()]
        register = self.pos.registers()[0]
        # Shipping is a sale line on a POS product, found or created at setup as `connections create` does.
        pos = XSeriesClient(self.pos_url, DEMO_SECRETS["pos_access_token"], InMemoryRateBudget())
        shipping = ensure_shipping_product(pos)
        connection = Connection(
            connection_id=DEMO_CONNECTION_ID,
            pos_base_url=self.pos_url,
            ecom_base_url=self.ecom_url,
            online_register_id=register["id"],
            register_outlet_id=register["outlet_id"],  # as `connections create --register` stores it (seed 003)
            connected_outlet_ids=outlets,
            primary_outlet_id=register["outlet_id"],
            shipping_product_id=shipping.product_id,
        )
        secrets = ConnectionSecrets.model_validate(DEMO_SECRETS)
        write_connection_secrets(
            self.session.client("secretsmanager"), env["SECRET_PREFIX"], DEMO_CONNECTION_ID, secrets
        )
        SyncStore(env["TABLE_NAME"], resource=self.session.resource("dynamodb")).save_connection(
            connection, create=True
        )

    def _start_functions(self, resources: LocalStackResources) -> None:
        self.functions = {name: LocalFunction(spec) for name, spec in resources.functions.items()}
        self.api = LocalApi(resources.routes, self.functions, self.config.api_port, on_request=self._on_request)
        self.api.start()
        self.lambda_service = LocalLambdaService(
            self.functions, self.config.lambda_port, self.config.region, ACCOUNT_ID
        )
        self.lambda_service.start()
        sqs = self.session.client("sqs")
        for subscription in resources.subscriptions:
            poller = SqsPoller(sqs, subscription, self.functions[subscription.function], narrate)
            poller.start()
            self.pollers.append(poller)
        for schedule in resources.schedules:
            timer = ScheduleTimer(schedule, self.functions[schedule.function], self.config.schedule_seconds, narrate)
            timer.start()
            self.timers.append(timer)

    def _on_request(self, route_key: str, status: int, body: dict[str, Any]) -> None:
        outcome = body.get("outcome") or body.get("error") or ""
        concern = f" -> {body['concern']} queue" if body.get("concern") and outcome == "queued" else ""
        narrate(f"API  | {route_key} {status} {outcome}{concern}")

    def _subscribe_vendor_webhooks(self) -> None:
        """Register our webhook URLs through the vendors' own webhook APIs, as an operator would."""
        from pos_ecom_sync.connectors.ecom import EcomClient
        from pos_ecom_sync.profiles.xseries.client import XSeriesClient
        from pos_ecom_sync.ratelimit import InMemoryRateBudget

        assert self.api is not None
        base = f"{self.api.url}/connections/{DEMO_CONNECTION_ID}/webhooks"
        pos = XSeriesClient(self.pos_url, DEMO_SECRETS["pos_access_token"], InMemoryRateBudget())
        for webhook_type in ("product.update", "inventory.update", "sale.update"):
            pos.create_webhook(f"{base}/pos?token={DEMO_SECRETS['pos_webhook_token']}", webhook_type)
        ecom = EcomClient(
            self.ecom_url, DEMO_SECRETS["ecom_api_key"], DEMO_SECRETS["ecom_api_secret"], InMemoryRateBudget()
        )
        for group in ("orders", "variants", "shipments"):
            ecom.create_webhook(group, "*", f"{base}/ecom")

    def outputs(self) -> dict[str, str]:
        """What the CLI reads from `.local-stack/outputs.json`: the template's outputs and the local endpoints."""
        assert self.resources is not None
        return {
            **local_outputs(self.resources, os.environ["AWS_ENDPOINT_URL"], self.config.region),
            "WebhookBaseUrl": self.api.url if self.api else "",
            "LambdaEndpoint": self.lambda_service.url if self.lambda_service else "",
            "PosSimulatorUrl": self.pos_url,
            "EcomSimulatorUrl": self.ecom_url,
        }

    def _write_outputs(self) -> None:
        if self.config.outputs_file is not None:
            self.config.outputs_file.parent.mkdir(exist_ok=True)
            self.config.outputs_file.write_text(json.dumps(self.outputs(), indent=2))

    # -- demo ---------------------------------------------------------------------------------------

    def run_demo(self) -> None:
        """Make the kind of changes a retailer makes, so the flow is visible."""
        assert self.pos is not None and self.ecom is not None
        rng = random.Random(7)
        actions = [
            self._demo_stock_change,
            self._demo_product_edit,
            self._demo_online_order,
            self._demo_outlets,
            self._demo_order_shipped,
            self._demo_refund,
        ]
        step = 0
        while not self.stopping.wait(self.config.demo_every_seconds):
            try:
                actions[step % len(actions)](rng)
            except Exception as exc:
                narrate(f"demo step failed: {exc!r}")
            step += 1
            self._narrate_queue_depths()

    def _demo_stock_change(self, rng: random.Random) -> None:
        assert self.pos is not None
        variant = rng.choice([p for p in self.pos.products() if p.get("variant_parent_id")])
        outlet = rng.choice(self.pos.outlets())["id"]
        level = rng.randint(0, 20)
        narrate(f"demo | POS stock of {variant['sku']} at outlet {outlet[:8]} set to {level}")
        self.pos.set_inventory(variant["id"], outlet, level)
        watch = (f"eCom stock of {variant['sku']}", [variant["id"]], time.time())
        threading.Thread(target=self._narrate_stock_arrival, args=watch, daemon=True).start()

    def _demo_outlets(self, rng: random.Random) -> None:
        """The operator disconnects the second outlet (or connects it back), as `pos-ecom-sync connections
        set-outlets` does: totals are recomputed in queued chunks; its pickup method stops routing orders there
        (for good: eCom has no API to disable it, so stock_sync names it for the operator to disable)."""
        from pos_ecom_sync.queues import ChangePublisher
        from pos_ecom_sync.state.store import SyncStore
        from pos_ecom_sync.stock.sync import request_outlet_change

        assert self.pos is not None and self.ecom is not None
        store = SyncStore(os.environ["TABLE_NAME"], resource=self.session.resource("dynamodb"))
        connection = store.get_connection(DEMO_CONNECTION_ID)
        assert connection is not None
        names = {o["id"]: o["name"] for o in self.pos.outlets()}
        primary = connection.primary_outlet_id or next(iter(names))
        other = next(o for o in names if o != primary)
        title = f"Pickup at {names[other]}"
        method = next((m for m in self.ecom.shipping_methods() if m["title"] == title), None)
        method = method or self.ecom.add_shipping_method(title, is_pickup=True)
        disconnect = other in connection.connected_outlet_ids
        if disconnect and str(method["id"]) not in connection.shipping_method_outlets:
            # As `pos-ecom-sync connections set-shipping-outlets demo <method>=<outlet>` does.
            links = {**connection.shipping_method_outlets, str(method["id"]): other}
            store.save_connection(connection.model_copy(update={"shipping_method_outlets": links}))
        wanted = [o for o in names if o != other] if disconnect else list(names)
        narrate(f"demo | operator {'disconnects' if disconnect else 'reconnects'} outlet {names[other]} (eCom stock)")
        if disconnect:
            narrate(
                f"demo | {title!r} no longer routes orders to {names[other]}; eCom has no API to disable a shipping "
                "method, so stock_sync asks the operator to (ShippingMethodsToDisable)"
            )
        queues = self.session.client("sqs")
        publisher = ChangePublisher(lambda concern: os.environ[f"{concern.upper()}_QUEUE_URL"], client=queues)
        request_outlet_change(store, publisher, DEMO_CONNECTION_ID, wanted, primary)
        variants = [p["id"] for p in self.pos.products() if p.get("variant_parent_id")]
        watch = (f"eCom totals over {len(variants)} variants", variants, time.time(), wanted)
        threading.Thread(target=self._narrate_stock_arrival, args=watch, daemon=True).start()

    def _narrate_stock_arrival(
        self, what: str, product_ids: list[str], since: float, outlets: list[str] | None = None, timeout_s: float = 120
    ) -> None:
        """Watch eCom until these variants show their POS totals (sum over connected outlets), then say so."""
        assert self.pos is not None and self.ecom is not None
        pos, ecom = self.pos, self.ecom
        if outlets is None:
            from pos_ecom_sync.state.store import SyncStore

            store = SyncStore(os.environ["TABLE_NAME"], resource=self.session.resource("dynamodb"))
            connection = store.get_connection(DEMO_CONNECTION_ID)
            outlets = connection.connected_outlet_ids if connection else []
        skus = {p["id"]: p["sku"] for p in pos.products() if p["id"] in product_ids}
        while not self.stopping.wait(0.5):
            online = {v.get("sku"): v.get("stockLevel") for v in ecom.variants()}
            wanted = {pid: sum(max(0, pos.level(pid, o)) for o in outlets) for pid in skus}
            pending = [pid for pid, total in wanted.items() if online.get(skus[pid]) != total]
            if not pending:
                shown = f"{next(iter(wanted.values()))}" if len(wanted) == 1 else "their POS totals"
                narrate(f"eCom | {what} now {shown}, {time.time() - since:.1f}s after the change")
                return
            if time.time() > since + timeout_s:
                narrate(f"eCom | ! {what}: {len(pending)} still differ from the POS after {timeout_s:.0f}s (see logs)")
                return

    def _demo_product_edit(self, rng: random.Random) -> None:
        from pos_ecom_sync.profiles.xseries.shipping import SHIPPING_SKU

        assert self.pos is not None
        product = rng.choice(
            [p for p in self.pos.products() if not p.get("variant_parent_id") and p["sku"] != SHIPPING_SKU]
        )
        name = f"{product['name'].split(' (')[0]} ({rng.choice(['new season', 'bestseller', 'limited'])})"
        narrate(f"demo | POS product {product['sku']} renamed to {name!r}")
        self.pos.update_product(product["id"], name=name)

    def _demo_online_order(self, rng: random.Random) -> None:
        assert self.ecom is not None
        variants = [v for v in self.ecom.variants() if v.get("stockLevel", 0) > 0]
        if not variants:
            narrate("demo | nothing in stock online yet, so no online order this round")
            return
        variant = rng.choice(variants)
        email = rng.choice(["mira.okafor@example.com", "ana.silva@example.com", "tom.baker@example.com"])
        narrate(f"demo | online order for 1 x {variant.get('sku')} by {email}")
        order = self.ecom.place_order(lines=[{"variant_id": variant["id"], "quantity": 1}], email=email)
        threading.Thread(target=self._narrate_order_arrival, args=(order, time.time()), daemon=True).start()

    def _narrate_order_arrival(self, order: dict[str, Any], placed_at: float, timeout_s: float = 120.0) -> None:
        """Watch the POS until the order's sale appears (source_id ecom-<id>), then tell what arrived."""
        assert self.pos is not None
        deadline = time.time() + timeout_s
        while not self.stopping.wait(0.5):
            sale = next((s for s in self.pos.sales() if s.get("source_id") == f"ecom-{order['id']}"), None)
            if sale is None:
                if time.time() > deadline:
                    narrate(f"POS  | ! order {order['number']} has no POS sale after {timeout_s:.0f}s (held? see logs)")
                    return
                continue
            outlets = {o["id"]: o["name"] for o in self.pos.outlets()}
            customer = next((c for c in self.pos.customers() if c["id"] == sale.get("customer_id")), None)
            who = "no customer"
            if customer:
                new = datetime.fromisoformat(customer["created_at"]).timestamp() >= placed_at - 1
                who = f"customer {customer['name']} ({'created' if new else 'matched by email'})"
            paid = ", ".join(f"{p['name']} {p['amount']:.2f}" for p in sale.get("payments", [])) or "unpaid"
            fulfillments = ", ".join(
                f"{outlets.get(f['outlet_id'], f['outlet_id'][:8])} {f['type']} {f['state']}"
                for f in self.pos.fulfillments(sale["id"])
            )
            took = time.time() - placed_at
            narrate(
                f"POS  | online order {order['number']} arrived in {took:.1f}s as sale {sale['invoice_number']} "
                f"({sale['status']}, {paid}) for {who}; fulfillment(s): {fulfillments or 'none'}"
            )
            return

    def _demo_order_shipped(self, rng: random.Random) -> None:
        """The merchant ships an imported online order in eCom: status_sync completes its POS fulfillment."""
        assert self.pos is not None and self.ecom is not None
        sales = {s.get("source_id"): s for s in self.pos.sales() if s.get("status") == "AWAITING_DISPATCH"}
        orders = [o for o in self.ecom.orders() if f"ecom-{o['id']}" in sales and o["shipmentStatus"] == "not_shipped"]
        if not orders:
            narrate("demo | no imported online order awaits dispatch yet, so nothing to ship this round")
            return
        order = orders[-1]
        sale = sales[f"ecom-{order['id']}"]
        narrate(f"demo | merchant ships online order {order['number']} in eCom (out for delivery)")
        shipped_at = time.time()
        self.ecom.create_shipment(order["id"])
        threading.Thread(target=self._narrate_fulfilled, args=(order, sale, shipped_at), daemon=True).start()

    def _narrate_fulfilled(
        self, order: dict[str, Any], sale: dict[str, Any], since: float, timeout_s: float = 60.0
    ) -> None:
        assert self.pos is not None
        while not self.stopping.wait(0.5):
            statuses = [f["state"] for f in self.pos.fulfillments(sale["id"])]
            if statuses and all(s == "FULFILLED" for s in statuses):
                current = next(s for s in self.pos.sales() if s["id"] == sale["id"])
                narrate(
                    f"POS  | sale {sale['invoice_number']} of order {order['number']}: fulfillment completed "
                    f"({current['status']}) {time.time() - since:.1f}s after eCom shipped it"
                )
                return
            if time.time() > since + timeout_s:
                narrate(f"POS  | ! order {order['number']}: fulfillment still {statuses} after {timeout_s:.0f}s")
                return

    def _demo_refund(self, rng: random.Random) -> None:
        """A customer brings an online order back to the store: the POS return starts parked; once the cashier
        completes it, status_sync credits the returned lines on the eCom order (the documented credit body)."""
        assert self.pos is not None and self.ecom is not None
        returned = {s.get("return_for") for s in self.pos.sales() if s.get("return_for")}
        ecom_ids = {f"ecom-{o['id']}": o for o in self.ecom.orders()}
        sales = [s for s in self.pos.sales() if s.get("source_id") in ecom_ids and s["id"] not in returned]
        if not sales:
            narrate("demo | no imported online order to return yet, so no refund this round")
            return
        sale, order = sales[0], ecom_ids[sales[0]["source_id"]]
        narrate(f"demo | customer returns online order {order['number']} in store; the cashier completes the return")
        since = time.time()
        self.pos.complete_return(self.pos.start_return(sale["id"])["id"])
        threading.Thread(target=self._narrate_refunded, args=(order, since), daemon=True).start()

    def _narrate_refunded(self, order: dict[str, Any], since: float, timeout_s: float = 60.0) -> None:
        assert self.ecom is not None
        while not self.stopping.wait(0.5):
            refunded = sum(int(line["quantityRefunded"]) for line in self.ecom.order_products(order["id"]))
            if refunded:
                narrate(
                    f"eCom | order {order['number']}: {refunded} item(s) credited {time.time() - since:.1f}s after "
                    "the POS return was completed"
                )
                return
            if time.time() > since + timeout_s:
                narrate(f"eCom | ! order {order['number']}: nothing credited after {timeout_s:.0f}s (see logs)")
                return

    def _narrate_queue_depths(self) -> None:
        sqs = self.session.client("sqs")
        depths = []
        for logical, url in (self.resources.queue_urls if self.resources else {}).items():
            attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
            depths.append(f"{logical.removesuffix('Queue')}={attrs['Attributes']['ApproximateNumberOfMessages']}")
        narrate("queues | " + " ".join(depths))

    # -- stop ---------------------------------------------------------------------------------------

    def stop(self) -> None:
        self.stopping.set()
        workers: list[SqsPoller | ScheduleTimer] = [*self.pollers, *self.timers]
        for worker in workers:
            worker.stop()
        if self.api:
            self.api.stop()
        if self.lambda_service:
            self.lambda_service.stop()
        for simulator in (self.pos, self.ecom):
            if simulator:
                simulator.stop()
        if self.moto:
            self.moto.stop()
        if self.config.outputs_file is not None:
            self.config.outputs_file.unlink(missing_ok=True)

    def banner(self) -> str:
        assert self.api is not None
        return "\n".join(
            [
                "pos-ecom-sync local stack is ready",
                f"  webhook API    {self.api.url}/connections/{DEMO_CONNECTION_ID}/webhooks/{{pos,ecom}}",
                f"  POS simulator  {self.pos_url}   (X-Series API 2.0, bearer {DEMO_SECRETS['pos_access_token']})",
                f"  eCom simulator {self.ecom_url}   (eCom API, basic auth)",
                f"  moto (AWS)     {os.environ['AWS_ENDPOINT_URL']}",
                f"  Lambda API     {self.lambda_service.url if self.lambda_service else '-'}   "
                "(pos-ecom-sync poll now / reconcile now)",
                f"  polling every {self.config.schedule_seconds:g}s; Ctrl-C stops everything",
                f"  started in {time.process_time():.1f}s CPU",
            ]
        )
