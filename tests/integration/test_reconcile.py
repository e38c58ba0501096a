"""Reconciliation through the real path: drift whose webhook was lost (and that the poller missed) -> reconcile
(functions/reconcile/app.py, the template's schedule event) -> concern queue -> the worker -> the vendor is repaired.

The POS and eCom simulators speak the vendor APIs on 127.0.0.1; AWS is moto, provisioned from template.yaml; the
workers are loaded from functions/<name>/app.py and fed by the SQS event source the local stack runs. The shop is
synced first with webhooks on; then every webhook is lost, so only reconciliation can find what changes next.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pos_ecom_sync import runtime
from pos_ecom_sync.connectors.ecom import EcomClient
from pos_ecom_sync.errors import UpstreamUnavailable
from pos_ecom_sync.intake.poller import ECOM_ORDERS_FEED, ChangePoller
from pos_ecom_sync.models.connection import Connection
from pos_ecom_sync.profiles.xseries.client import XSeriesClient
from pos_ecom_sync.profiles.xseries.feeds import XSeriesFeeds
from pos_ecom_sync.queues import ChangePublisher
from pos_ecom_sync.ratelimit import InMemoryRateBudget
from pos_ecom_sync.reconcile.rules import DRIFT_KINDS
from pos_ecom_sync.state.reconcile_store import ReconcileStore

from local_stack.api_server import LocalApi
from local_stack.demo import DEMO_SECRETS
from local_stack.event_sources import SqsPoller
from local_stack.functions import LocalFunction
from local_stack.lambda_events import LambdaContext
from local_stack.simulators.common import Faults
from local_stack.simulators.ecom import EcomSimulator
from local_stack.simulators.xseries import XSeriesSimulator
from tests.integration.conftest import Deployment, demo_connection
from tests.integration.order_rig import CONNECTION, start_shop
from tests.support import drain_queue

EVENTS_DIR = Path(__file__).resolve().parents[2] / "events"
CONCERNS = ("products", "stock", "orders", "statuses")
WORKERS = {"products": "ProductSyncFunction", "stock": "StockSyncFunction", "orders": "OrderImportFunction"}


class SerialFunction(LocalFunction):
    """One invocation at a time across the rig: in-process moto is not thread-safe, and webhooks arrive on the
    local API's threads while workers run."""

    everything = threading.RLock()

    def invoke(self, event: dict[str, Any]) -> Any:
        with self.everything:
            return super().invoke(event)


class CountdownContext(LambdaContext):
    """A Lambda context whose time runs out after `checks` questions (the reconciler asks before every page)."""

    def __init__(self, checks: int) -> None:
        super().__init__(function_name="ReconcileFunction", timeout_s=300)
        self.left = checks

    def get_remaining_time_in_millis(self) -> int:
        self.left -= 1
        return 300_000 if self.left >= 0 else 1_000


@dataclass
class ReconcileRig:
    deployment: Deployment
    pos: XSeriesSimulator
    ecom: EcomSimulator
    api: LocalApi
    workers: dict[str, SqsPoller]

    @property
    def sqs(self) -> Any:
        return self.deployment.sqs

    @property
    def connection(self) -> Connection:
        found = self.deployment.store.get_connection(CONNECTION)
        assert found is not None
        return found

    @property
    def checkpoints(self) -> ReconcileStore:
        return ReconcileStore(self.deployment.env["TABLE_NAME"], resource=self.deployment.session.resource("dynamodb"))

    def reconcile(self, event: dict[str, Any] | None = None, context: LambdaContext | None = None) -> dict[str, Any]:
        """One tick of the schedule: the template's sample event through functions/reconcile/app.py."""
        from functions.reconcile import app

        tick = event or json.loads((EVENTS_DIR / "reconcile" / "scheduled.json").read_text())
        with SerialFunction.everything:
            result: dict[str, Any] = app.lambda_handler(tick, context or LambdaContext("ReconcileFunction", 300))
        return result

    def poll(self) -> int:
        pos = XSeriesClient(self.pos.url, DEMO_SECRETS["pos_access_token"], InMemoryRateBudget())
        ecom = EcomClient(
            self.ecom.url, DEMO_SECRETS["ecom_api_key"], DEMO_SECRETS["ecom_api_secret"], InMemoryRateBudget()
        )
        publisher = ChangePublisher(self.deployment.queue_url, client=self.sqs)
        with SerialFunction.everything:
            report = ChangePoller(self.deployment.store, publisher).poll(self.connection, XSeriesFeeds(pos), ecom)
        return report.queued

    def _visible(self, concern: str) -> int:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.deployment.queue_url(concern),
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])

    def settle(self, max_rounds: int = 500) -> int:
        """Deliver webhooks and every worker's queue until nothing is left (as Lambda would)."""
        handled = 0
        for _ in range(max_rounds):
            assert self.pos.wait_for_webhooks() and self.ecom.wait_for_webhooks()
            done = sum(worker.poll_once(wait_seconds=0) for worker in self.workers.values())
            drain_queue(self.sqs, self.deployment.queue_url("statuses"))  # not this test's worker
            handled += done
            if not done and not any(self._visible(c) for c in WORKERS):
                assert self.pos.wait_for_webhooks() and self.ecom.wait_for_webhooks()
                if not any(self._visible(c) for c in WORKERS):
                    return handled
        raise AssertionError("queues did not settle")

    def queued(self) -> dict[str, list[dict[str, Any]]]:
        """What is waiting on each concern queue (received and deleted)."""
        return {
            c: [json.loads(m["Body"]) for m in drain_queue(self.sqs, self.deployment.queue_url(c))] for c in CONCERNS
        }

    def lose_webhooks(self) -> None:
        self.pos.set_faults(Faults(webhook_loss_rate=1.0))
        self.ecom.set_faults(Faults(webhook_loss_rate=1.0))

    def variants(self) -> list[dict[str, Any]]:
        """Sellable POS variants (the shipping product excluded), in a stable order."""
        shipping = self.connection.shipping_product_id
        return sorted((p for p in self.pos.products() if p["variant_parent_id"] and p["id"] != shipping), key=str)

    def ecom_variant(self, pos_product_id: str) -> dict[str, Any]:
        link = self.deployment.store.variant_link(CONNECTION, pos_product_id=pos_product_id)
        assert link is not None
        return next(v for v in self.ecom.variants() if v["id"] == link.ecom_variant_id)

    def pos_total(self, pos_product_id: str) -> int:
        return sum(max(0, self.pos.level(pos_product_id, o)) for o in self.connection.connected_outlet_ids)


@pytest.fixture
def rig(deployment: Deployment, monkeypatch: pytest.MonkeyPatch) -> Iterator[ReconcileRig]:
    # Every tick starts a new full compare once the last one completed; small pages, so a run has several.
    monkeypatch.setenv("RECONCILE_INTERVAL_HOURS", "0")
    monkeypatch.setenv("RECONCILE_POS_PAGE_SIZE", "5")
    monkeypatch.setenv("RECONCILE_ECOM_PAGE_SIZE", "3")
    runtime.reset()
    deployment.store.save_connection(demo_connection(status="paused"))  # its vendors are not running here
    pos, ecom = start_shop(
        deployment,
        seed=31,
        outlets=2,
        families=4,
        pos_options={"rate_limit": 0},
        ecom_options={"limits": None},
        created_at=datetime.now(UTC) - timedelta(days=10),
    )
    pos_url, ecom_url = pos.url, ecom.url
    functions: dict[str, LocalFunction] = {n: SerialFunction(s) for n, s in deployment.resources.functions.items()}
    api = LocalApi(deployment.resources.routes, functions, port=0)
    api.start()
    workers = {
        concern: SqsPoller(
            deployment.sqs,
            next(s for s in deployment.resources.subscriptions if s.function == function),
            functions[function],
            narrate=lambda line: None,
        )
        for concern, function in WORKERS.items()
    }
    base = f"{api.url}/connections/{CONNECTION}/webhooks"
    XSeriesClient(pos_url, DEMO_SECRETS["pos_access_token"], InMemoryRateBudget()).create_webhook(
        f"{base}/pos?token={DEMO_SECRETS['pos_webhook_token']}", "product.update"
    )
    ecom_client = EcomClient(
        ecom_url, DEMO_SECRETS["ecom_api_key"], DEMO_SECRETS["ecom_api_secret"], InMemoryRateBudget()
    )
    ecom_client.create_webhook("variants", "*", f"{base}/ecom")
    ecom_client.create_webhook("orders", "created", f"{base}/ecom")
    rig = ReconcileRig(deployment, pos, ecom, api, workers)
    rig.poll()  # the initial import: products, then each new eCom variant's stock through its created webhook
    rig.settle()
    rig.lose_webhooks()
    yield rig
    api.stop()
    pos.stop()
    ecom.stop()


def _drift(summary: dict[str, Any]) -> dict[str, int]:
    return {kind: n for kind, n in summary["drift"].items() if n}


def test_a_pos_product_change_whose_webhook_was_lost_reaches_ecom_after_reconcile(rig: ReconcileRig) -> None:
    # Given: a price change in the POS; its product.update webhook is lost and no poll runs
    variant = rig.variants()[0]
    rig.pos.update_product(variant["id"], price_including_tax=42.0, price_excluding_tax=36.52)
    assert rig.ecom_variant(variant["id"])["priceIncl"] != 42.0

    # When: one reconcile tick, then the products queue reaches product_sync
    summary = rig.reconcile()
    rig.settle()

    # Then: one outdated family was found, queued and synced
    assert _drift(summary) == {"catalog_outdated": 1}
    assert summary["connections"][CONNECTION]["completed"] is True
    assert rig.ecom_variant(variant["id"])["priceIncl"] == 42.0


def test_an_ecom_stock_edit_whose_webhook_was_lost_is_reverted_after_reconcile(rig: ReconcileRig) -> None:
    # Given: the merchant sets an eCom level by hand; the variants/updated webhook is lost
    variant = rig.variants()[1]
    total = rig.pos_total(variant["id"])
    rig.ecom.set_stock_manually(rig.ecom_variant(variant["id"])["id"], total + 40)

    # When
    summary = rig.reconcile()
    rig.settle()

    # Then: found as stock drift, and stock_sync put the POS total back
    assert _drift(summary) == {"stock_differs": 1}
    assert rig.ecom_variant(variant["id"])["stockLevel"] == total


def test_an_ecom_order_whose_webhook_was_lost_and_the_poller_missed_is_imported_after_reconcile(
    rig: ReconcileRig,
) -> None:
    # Given: an online order whose orders/created webhook is lost, and a poller whose order cursor is already past it
    variant = rig.variants()[2]
    order = rig.ecom.place_order(
        [{"variant_id": rig.ecom_variant(variant["id"])["id"], "quantity": 1}],
        email="ines.duarte@example.com",
        allow_backorder=True,
    )
    cursor = rig.deployment.store.get_cursor(CONNECTION, ECOM_ORDERS_FEED)
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert rig.deployment.store.advance_cursor(CONNECTION, cursor, later)
    rig.poll()
    assert rig.queued()["orders"] == []  # the poller missed it

    # When
    summary = rig.reconcile()
    rig.settle()

    # Then: queued by reconcile and imported as exactly one POS sale
    assert _drift(summary)["order_missing"] == 1
    sales = [s for s in rig.pos.sales() if s.get("source_id") == f"ecom-{order['id']}"]
    assert len(sales) == 1

    # And: the next run does not queue the imported order again
    assert "order_missing" not in _drift(rig.reconcile())


def test_a_second_reconcile_without_drift_publishes_nothing(rig: ReconcileRig) -> None:
    # When: two full compares of a synced shop
    first = rig.reconcile()
    after_first = rig.queued()
    second = rig.reconcile()

    # Then: both walked everything, found nothing and queued nothing
    for summary in (first, second):
        report = summary["connections"][CONNECTION]
        assert report["completed"] is True and summary["queued"] == 0 and _drift(summary) == {}
        # 17 rows / 5, 4 products / 3, 9 variants / 3, + the empty page ending each walk
        assert report["pages"] == {"catalog": 4, "products": 3, "variants": 4, "orders": 1}
    assert first["connections"][CONNECTION]["run_id"] != second["connections"][CONNECTION]["run_id"]
    assert after_first == rig.queued() == {c: [] for c in CONCERNS}


def test_a_run_out_of_time_resumes_from_its_checkpoint_without_reading_from_the_start(rig: ReconcileRig) -> None:
    # Given: a price change and a stock edit to find
    first_variant = rig.variants()[0]
    second_variant = max(rig.variants(), key=lambda v: rig.ecom_variant(v["id"])["id"])  # on the last eCom page
    rig.pos.update_product(first_variant["id"], price_including_tax=43.0, price_excluding_tax=37.39)
    total = rig.pos_total(second_variant["id"])
    rig.ecom.set_stock_manually(rig.ecom_variant(second_variant["id"])["id"], total + 7)

    # When: the invocation's time runs out after 8 pages (1 check for the connection, then one per page): the POS
    # catalog (4), eCom products (3), one page of eCom variants
    interrupted = rig.reconcile(context=CountdownContext(checks=9))
    stopped_at = rig.checkpoints.get_checkpoint(CONNECTION)
    resumed = rig.reconcile()

    # Then: the first stopped cleanly mid-run with its checkpoint saved; the second continued from it
    first, second = interrupted["connections"][CONNECTION], resumed["connections"][CONNECTION]
    assert first["completed"] is False and "out of time" in first["stopped"]
    assert (stopped_at.phase, stopped_at.cursor) == ("variants", first["cursor"]) and stopped_at.cursor
    assert second["step"] == "continue" and second["completed"] is True and second["run_id"] == first["run_id"]
    assert "catalog" not in second["pages"] and "products" not in second["pages"]  # not read again
    assert first["pages"]["catalog"] + first["pages"]["variants"] + second["pages"]["variants"] == 4 + 4
    assert second["pos_calls"] == 0
    # Nothing was found twice or lost: one finding of each kind over the two invocations
    assert _drift(interrupted) == {"catalog_outdated": 1} and _drift(resumed) == {"stock_differs": 1}
    assert stopped_at.drift == {"catalog_outdated": 1}

    rig.settle()
    assert rig.ecom_variant(first_variant["id"])["priceIncl"] == 43.0
    assert rig.ecom_variant(second_variant["id"])["stockLevel"] == total


def test_a_run_that_fails_mid_way_resumes_from_its_checkpoint(
    rig: ReconcileRig, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given: eCom fails the first variants page of a run
    original = EcomClient.list_variants_since
    failures = iter([True])

    def flaky(self: EcomClient, since_id: int | None, limit: int = 250) -> list[dict[str, Any]]:
        if next(failures, False):
            raise UpstreamUnavailable("ecom GET /variants.json answered 503")
        return original(self, since_id, limit)

    monkeypatch.setattr(EcomClient, "list_variants_since", flaky)

    # When
    failed = rig.reconcile()
    resumed = rig.reconcile()

    # Then: the failure is reported for the connection, and the next tick picks the run up at the variants phase
    assert failed["failures"] == {CONNECTION: "ecom GET /variants.json answered 503"}
    report = resumed["connections"][CONNECTION]
    assert report["step"] == "continue" and report["completed"] is True
    assert report["pages"] == {"variants": 4, "orders": 1} and report["pos_calls"] == 0


def _tick(event_file: str) -> dict[str, Any]:
    from functions.reconcile import app

    event = json.loads((EVENTS_DIR / "reconcile" / event_file).read_text())
    result: dict[str, Any] = app.lambda_handler(event, LambdaContext("ReconcileFunction", 300))
    return result


def test_a_tick_before_a_run_is_due_reads_nothing_and_says_when_the_next_one_is(deployment: Deployment) -> None:
    # Given: the demo connection was created just now (the default interval is a day); its vendors are not running

    # When: the schedule's sample event
    summary = _tick("scheduled.json")

    # Then: no vendor was called (it would have failed), and the next run is a day after the creation
    report = summary["connections"]["demo"]
    assert summary["failures"] == {} and report["step"] == "idle" and report["pages"] == {}
    wait = datetime.fromisoformat(report["next_due"]) - datetime.now(UTC)
    assert timedelta(hours=23, minutes=59) < wait <= timedelta(hours=24)
    assert all(drain_queue(deployment.sqs, deployment.queue_url(c)) == [] for c in CONCERNS)


def test_the_operator_sample_for_a_paused_connection_reconciles_nothing(deployment: Deployment) -> None:
    deployment.store.save_connection(demo_connection(status="paused"))
    event = json.loads((EVENTS_DIR / "reconcile" / "one_connection.json").read_text())
    assert event == {"connection_id": "demo", "force": True}

    summary = _tick("one_connection.json")

    assert summary == {
        "queued": 0,
        "pages": 0,
        "drift": dict.fromkeys(DRIFT_KINDS, 0),
        "connections": {},
        "failures": {},
    }


def test_a_hand_edit_of_title_and_price_in_ecom_is_found_and_restored_and_ecom_owned_fields_survive(
    rig: ReconcileRig,
) -> None:
    # Given: by hand in eCom (no product webhook reaches the stack) the merchant renames a synced product, changes a
    # variant's price, and sets a compare-at price and a low-stock threshold (eCom's own fields) on that variant
    variant = rig.variants()[0]
    ecom_variant = rig.ecom_variant(variant["id"])
    product_id = int(ecom_variant["product"]["resource"]["id"])
    title, price = rig.ecom.tables["products"][product_id]["title"], ecom_variant["priceIncl"]
    merchant = EcomClient(
        rig.ecom.url, DEMO_SECRETS["ecom_api_key"], DEMO_SECRETS["ecom_api_secret"], InMemoryRateBudget()
    )
    merchant.update_product(product_id, {"title": "Hand edited"})
    merchant.update_variant(ecom_variant["id"], {"priceIncl": price + 10, "oldPriceIncl": 199.0, "stockAlert": 4})

    # When: one reconcile run, then the workers
    summary = rig.reconcile()
    rig.settle()

    # Then: the family was found once per list that shows an edit (product row, variant row) and rewritten
    assert _drift(summary) == {"catalog_content": 2}
    restored = rig.ecom_variant(variant["id"])
    assert rig.ecom.tables["products"][product_id]["title"] == title and restored["priceIncl"] == price
    assert (restored["oldPriceIncl"], restored["stockAlert"]) == (199.0, 4)
    # And: the next run finds eCom as we left it
    assert _drift(rig.reconcile()) == {}


def test_a_variant_deleted_by_hand_in_ecom_is_recreated_and_gets_the_pos_stock_total(rig: ReconcileRig) -> None:
    # Given: the merchant deletes one of our variants in eCom; its webhook is lost
    variant = rig.variants()[1]
    gone = rig.ecom_variant(variant["id"])
    EcomClient(
        rig.ecom.url, DEMO_SECRETS["ecom_api_key"], DEMO_SECRETS["ecom_api_secret"], InMemoryRateBudget()
    ).delete_variant(gone["id"])

    # When: a run finds it gone and product_sync re-creates it (its variants/created webhook is lost too); product_sync
    # queues the new variant's first stock write itself, so stock_sync writes it without that webhook
    first = rig.reconcile()
    rig.settle()

    # Then: eCom shows the variant again, under a new id, with the POS total, and the next run finds nothing left
    assert _drift(first) == {"variant_gone": 1}
    recreated = rig.ecom_variant(variant["id"])
    assert recreated["id"] != gone["id"] and recreated["sku"] == gone["sku"]
    assert recreated["stockLevel"] == rig.pos_total(variant["id"])
    assert _drift(rig.reconcile()) == {}
