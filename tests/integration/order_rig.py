"""The order rig shared by the order-import and status-sync tests: the POS and eCom simulators on 127.0.0.1, moto
provisioned from template.yaml, the webhook API, and the workers fed by the SQS event sources the local stack runs."""

from __future__ import annotations

import argparse
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from pos_ecom_sync.connectors.ecom import EcomClient
from pos_ecom_sync.intake.poller import ChangePoller
from pos_ecom_sync.models.connection import Connection
from pos_ecom_sync.profiles.xseries.client import XSeriesClient
from pos_ecom_sync.profiles.xseries.feeds import XSeriesFeeds
from pos_ecom_sync.queues import ChangePublisher
from pos_ecom_sync.ratelimit import InMemoryRateBudget
from pos_ecom_sync.state.order_store import OrderStore

from local_stack.api_server import LocalApi
from local_stack.demo import DEMO_SECRETS
from local_stack.event_sources import SqsPoller
from local_stack.functions import LocalFunction
from local_stack.lambda_events import sqs_event
from local_stack.simulators.ecom import EcomSimulator
from local_stack.simulators.xseries import XSeriesSimulator
from tests.integration.conftest import Deployment
from tests.support import drain_queue

CONNECTION = "shop"


@dataclass
class OrderRig:
    deployment: Deployment
    pos: XSeriesSimulator
    ecom: EcomSimulator
    api: LocalApi
    products: SqsPoller
    orders: SqsPoller
    events_queue: str
    seeded_shipping_product_id: str | None = None

    # -- settings ------------------------------------------------------------------------------------

    @property
    def connection(self) -> Connection:
        found = self.deployment.store.get_connection(CONNECTION)
        assert found is not None
        return found

    def update_connection(self, **changes: Any) -> None:
        data = {**self.connection.model_dump(), **changes}
        self.deployment.store.save_connection(Connection.model_validate(data))

    @property
    def outlets(self) -> list[str]:
        return self.connection.connected_outlet_ids

    @property
    def ledger(self) -> OrderStore:
        return OrderStore(self.deployment.env["TABLE_NAME"], client=self.deployment.session.client("dynamodb"))

    # -- driving the system --------------------------------------------------------------------------

    def poll(self) -> None:
        """One change_poller sweep: POS products reach the products queue, eCom orders the orders queue."""
        pos = XSeriesClient(self.pos.url, DEMO_SECRETS["pos_access_token"], InMemoryRateBudget())
        ecom = EcomClient(
            self.ecom.url, DEMO_SECRETS["ecom_api_key"], DEMO_SECRETS["ecom_api_secret"], InMemoryRateBudget()
        )
        publisher = ChangePublisher(self.deployment.queue_url, client=self.deployment.sqs)
        ChangePoller(self.deployment.store, publisher).poll(self.connection, XSeriesFeeds(pos), ecom)
        for concern in ("stock", "statuses"):  # not this worker's
            drain_queue(self.deployment.sqs, self.deployment.queue_url(concern))

    def sync_catalog(self) -> None:
        self.poll()
        self._drain(self.products, "products")
        drain_queue(self.deployment.sqs, self.deployment.queue_url("orders"))

    def drain_orders(self) -> int:
        return self._drain(self.orders, "orders")

    def _drain(self, worker: SqsPoller, concern: str, deadline_s: float = 60.0) -> int:
        """Run the worker until its queue shows nothing visible. A visible message the worker cannot receive yet (its
        FIFO group busy) is waited for, by the clock rather than a count of polls: a loaded machine (parallel test
        workers) stretches how long that takes, not whether it ends."""
        handled, deadline = 0, time.monotonic() + deadline_s
        while time.monotonic() < deadline:
            done = worker.poll_once(wait_seconds=0)
            if not done:
                if not self._visible(concern):
                    return handled
                time.sleep(0.02)
            handled += done
        raise AssertionError(f"{concern} queue did not drain in {deadline_s:.0f} s")

    def _visible(self, concern: str) -> int:
        attributes = self.deployment.sqs.get_queue_attributes(
            QueueUrl=self.deployment.queue_url(concern), AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"])

    def receive_orders(self) -> list[dict[str, Any]]:
        """The orders queue's visible messages, received (in flight) but not deleted."""
        messages: list[dict[str, Any]] = []
        url = self.deployment.queue_url("orders")
        while batch := self.deployment.sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"], MessageAttributeNames=["All"]
        ).get("Messages", []):
            messages.extend(batch)
        return messages

    def redeliver(self, messages: list[dict[str, Any]]) -> None:
        """SQS hands an unacknowledged message out again once its visibility timeout (360 s) ends: here, now."""
        for message in messages:
            self.deployment.sqs.change_message_visibility(
                QueueUrl=self.deployment.queue_url("orders"),
                ReceiptHandle=message["ReceiptHandle"],
                VisibilityTimeout=0,
            )

    def expire_leases(self) -> None:
        """A dead worker's claims expire (150 s) before SQS redelivers its message (360 s): fast-forward that."""
        table = self.deployment.session.resource("dynamodb").Table(self.deployment.env["TABLE_NAME"])
        items = table.query(KeyConditionExpression="pk = :pk", ExpressionAttributeValues={":pk": f"CONN#{CONNECTION}"})
        for item in items["Items"]:
            if str(item["sk"]).startswith(("ORDER#", "EMAIL#")) and "lease_until" in item:
                table.update_item(
                    Key={"pk": item["pk"], "sk": item["sk"]},
                    UpdateExpression="SET lease_until = :zero",
                    ExpressionAttributeValues={":zero": 0},
                )

    def invoke(self, messages: list[dict[str, Any]], sandbox: LocalFunction | None = None) -> dict[str, Any]:
        """One invocation; another `sandbox` runs at the same time as this one (Lambda scales out per batch)."""
        function = sandbox or self.orders.function
        result: dict[str, Any] = function.invoke(sqs_event(messages, self.orders.subscription.queue_arn))
        return result

    def invoke_at_once(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Each message in its own invocation, all at the same moment, each in its own sandbox."""
        results: list[dict[str, Any]] = []
        sandboxes = [LocalFunction(self.orders.function.spec) for _ in messages]
        threads = [
            threading.Thread(target=lambda m=m, f=f: results.append(self.invoke([m], f)))
            for m, f in zip(messages, sandboxes, strict=True)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        return results

    # -- the shop --------------------------------------------------------------------------------------

    def variant_of(self, pos_product_id: str) -> int:
        link = self.deployment.store.variant_link(CONNECTION, pos_product_id=pos_product_id)
        assert link is not None, "the catalog worker links every POS variant it syncs"
        return link.ecom_variant_id

    def place(self, lines: dict[str, int], email: str = "mira.okafor@example.com", **kwargs: Any) -> dict[str, Any]:
        """A shopper orders `{POS product id: quantity}` (eCom stock is the stock worker's, so backorders are on)."""
        order = self.ecom.place_order(
            [{"variant_id": self.variant_of(pid), "quantity": n} for pid, n in lines.items()],
            email=email,
            allow_backorder=True,
            **kwargs,
        )
        assert self.ecom.wait_for_webhooks()
        return order

    def sales_of(self, order: dict[str, Any]) -> list[dict[str, Any]]:
        return [s for s in self.pos.sales() if s.get("source_id") == f"ecom-{order['id']}"]

    def sale_of(self, order: dict[str, Any]) -> dict[str, Any]:
        sales = self.sales_of(order)
        assert len(sales) == 1, f"{len(sales)} POS sales for order {order['number']}"
        return sales[0]

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(m["Body"])["detail"] for m in drain_queue(self.deployment.sqs, self.events_queue)]

    def variants(self) -> list[dict[str, Any]]:
        """Sellable POS variants, in a stable order (the seeded "Shipping" line is not one, set or not)."""
        shipping = {self.connection.shipping_product_id, self.seeded_shipping_product_id}
        return sorted(
            (p for p in self.pos.products() if not p["has_variants"] and p["id"] not in shipping),
            key=lambda p: p["sku"],
        )

    def stock_only_at(self, product_id: str, outlet: str, level: int) -> None:
        for other in self.outlets:
            self.pos.set_inventory(product_id, other, level if other == outlet else 0)

    def cli(self, command: Callable[[argparse.Namespace, Any], Any], **args: Any) -> Any:
        target = SimpleNamespace(
            session=self.deployment.session,
            table_name=self.deployment.env["TABLE_NAME"],
            store=self.deployment.store,
            secret_prefix=self.deployment.env["SECRET_PREFIX"],
            secrets=self.deployment.session.client("secretsmanager"),
        )
        return command(argparse.Namespace(stack="test", connection_id=CONNECTION, **args), target)


def start_shop(
    deployment: Deployment,
    *,
    seed: int,
    outlets: int,
    families: int,
    pos_options: dict[str, Any] | None = None,
    ecom_options: dict[str, Any] | None = None,
    **connection: Any,
) -> tuple[XSeriesSimulator, EcomSimulator]:
    """Start both simulators (POS seeded with `families` x 2 variants and one plain "Shipping" product) and add the
    connection `shop` between them: the online register's outlet first and primary, every outlet connected.
    The caller stops the simulators."""
    pos = XSeriesSimulator(token=DEMO_SECRETS["pos_access_token"], seed=seed, outlets=outlets, **(pos_options or {}))
    ecom = EcomSimulator(
        api_key=DEMO_SECRETS["ecom_api_key"],
        api_secret=DEMO_SECRETS["ecom_api_secret"],
        webhook_secret=DEMO_SECRETS["ecom_webhook_secret"],
        seed=seed,
        **(ecom_options or {}),
    )
    pos_url, ecom_url = pos.start(), ecom.start()
    pos.seed_catalog(families, 2, seed=seed)
    pos.seed_catalog(1, 0, seed=seed + 1)  # a plain product: the shop's "Shipping" line
    register = pos.registers()[0]
    connected = [register["outlet_id"], *(o["id"] for o in pos.outlets() if o["id"] != register["outlet_id"])]
    shipping = next(p for p in pos.products() if not p["variant_parent_id"] and not p["has_variants"])
    settings: dict[str, Any] = {
        "connection_id": CONNECTION,
        "pos_base_url": pos_url,
        "ecom_base_url": ecom_url,
        "online_register_id": register["id"],
        "connected_outlet_ids": connected,
        "primary_outlet_id": register["outlet_id"],
        "shipping_product_id": shipping["id"],
    }
    deployment.add_connection(Connection.model_validate({**settings, **connection}), DEMO_SECRETS)
    return pos, ecom


@contextmanager
def open_order_rig(deployment: Deployment, families: int = 3) -> Iterator[OrderRig]:
    """Both simulators, the connection, the webhook API with orders/created registered, and the catalog synced:
    `families` x 2 variants and the shipping product (each family a product sync per test: ask for what you use)."""
    pos, ecom = start_shop(deployment, seed=21, outlets=3, families=families)
    ecom_url = ecom.url
    functions = {name: LocalFunction(spec) for name, spec in deployment.resources.functions.items()}
    api = LocalApi(deployment.resources.routes, functions, port=0)
    api.start()
    ecom_client = EcomClient(
        ecom_url, DEMO_SECRETS["ecom_api_key"], DEMO_SECRETS["ecom_api_secret"], InMemoryRateBudget()
    )
    ecom_client.create_webhook("orders", "created", f"{api.url}/connections/{CONNECTION}/webhooks/ecom")

    def worker(function: str) -> SqsPoller:
        subscription = next(s for s in deployment.resources.subscriptions if s.function == function)
        return SqsPoller(deployment.sqs, subscription, functions[function], narrate=lambda line: None)

    # Whoever staffs an outlet subscribes to its new fulfillments on the default bus; here a queue collects all.
    sqs, events = deployment.sqs, deployment.session.client("events")
    events_queue = sqs.create_queue(QueueName="fulfillment-events")["QueueUrl"]
    events_arn = sqs.get_queue_attributes(QueueUrl=events_queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="new-fulfillments", EventPattern=json.dumps({"source": ["pos-ecom-sync.orders"]}))
    events.put_targets(Rule="new-fulfillments", Targets=[{"Id": "collect", "Arn": events_arn}])

    rig = OrderRig(
        deployment, pos, ecom, api, worker("ProductSyncFunction"), worker("OrderImportFunction"), events_queue
    )
    rig.seeded_shipping_product_id = rig.connection.shipping_product_id
    rig.sync_catalog()
    try:
        yield rig
    finally:
        api.stop()
        pos.stop()
        ecom.stop()
