"""Stock sync through the real path: POS inventory change -> POS webhook (or poll) -> webhook API -> stock queue ->
stock_sync -> eCom API; eCom variants/updated webhooks come back the same way.

The POS and eCom simulators speak the vendor APIs on 127.0.0.1 and deliver their webhooks to the template's
webhook route served locally (webhook_ingest loaded from functions/webhook_ingest/app.py); AWS is moto,
provisioned from template.yaml; stock_sync is loaded from functions/stock_sync/app.py and fed by the SQS event
source the local stack runs. Catalog mappings come from the real product_sync, except for the 1,000-variant
catalog, whose links and starting stock are written directly (creating 1,000 variants is not what it tests).
"""

from __future__ import annotations

import functools
import json
import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from moto.server import ThreadedMotoServer
from pos_ecom_sync import workers
from pos_ecom_sync.connectors.ecom import EcomClient
from pos_ecom_sync.errors import InvalidInput
from pos_ecom_sync.intake.poller import ChangePoller
from pos_ecom_sync.models.catalog import EcomVariantRef
from pos_ecom_sync.models.connection import Connection
from pos_ecom_sync.models.stock import OutletLevel, VariantStockState
from pos_ecom_sync.profiles.xseries.client import XSeriesClient
from pos_ecom_sync.profiles.xseries.feeds import XSeriesFeeds
from pos_ecom_sync.queues import ChangePublisher
from pos_ecom_sync.ratelimit import InMemoryRateBudget
from pos_ecom_sync.state import keys
from pos_ecom_sync.state.stock_store import StockStore
from pos_ecom_sync.state.store import SyncStore
from pos_ecom_sync.stock.sync import request_outlet_change, request_register_change

from local_stack.api_server import LocalApi
from local_stack.demo import DEMO_SECRETS
from local_stack.event_sources import SqsPoller
from local_stack.functions import LocalFunction
from local_stack.provision import provision
from local_stack.simulators.common import Faults
from local_stack.simulators.ecom import EcomSimulator
from local_stack.simulators.xseries import XSeriesSimulator
from pos_ecom_sync_cli.main import main as cli_main
from tests.integration.conftest import Deployment
from tests.support import drain_queue, pos_form

CONNECTION = "shop"
STOCK_PUT = "PUT /{lang}/variants/{id}.json"


class SerialFunction(LocalFunction):
    """One invocation at a time across every function of the rig: in-process moto is not thread-safe (a
    transaction deep-copies the table while a webhook's PutItem, on the API's thread, changes it)."""

    everything = threading.RLock()

    def invoke(self, event: dict[str, Any]) -> Any:
        with self.everything:
            return super().invoke(event)


@dataclass
class StockRig:
    deployment: Deployment
    pos: XSeriesSimulator
    ecom: EcomSimulator
    api: LocalApi
    stock: SqsPoller
    catalog: SqsPoller
    # eCom stock writes made by each stock_sync invocation, and how many records it was given.
    invocations: list[tuple[int, int]] = field(default_factory=list)

    @functools.cached_property
    def sqs(self) -> Any:
        return self.deployment.sqs  # a new client on every access there

    @property
    def connection(self) -> Connection:
        found = self.deployment.store.get_connection(CONNECTION)
        assert found is not None
        return found

    @property
    def stock_store(self) -> StockStore:
        return StockStore(self.deployment.env["TABLE_NAME"], resource=self.deployment.session.resource("dynamodb"))

    @property
    def outlets(self) -> list[str]:
        return [o["id"] for o in self.pos.outlets()]

    def publisher(self) -> ChangePublisher:
        return ChangePublisher(self.deployment.queue_url, client=self.sqs)

    def stock_writes(self) -> int:
        return self.ecom.calls_by_route[STOCK_PUT]

    def poll(self) -> int:
        """One change_poller sweep: POS products and inventory, eCom orders (dropped: not this worker's)."""
        pos = XSeriesClient(self.pos.url, DEMO_SECRETS["pos_access_token"], InMemoryRateBudget())
        ecom = EcomClient(
            self.ecom.url, DEMO_SECRETS["ecom_api_key"], DEMO_SECRETS["ecom_api_secret"], InMemoryRateBudget()
        )
        report = ChangePoller(self.deployment.store, self.publisher()).poll(self.connection, XSeriesFeeds(pos), ecom)
        for concern in ("orders", "statuses"):
            drain_queue(self.sqs, self.deployment.queue_url(concern))
        return report.queued

    def _visible(self, concern: str) -> int:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.deployment.queue_url(concern), AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"])

    def _quiet(self) -> None:
        assert self.pos.wait_for_webhooks() and self.ecom.wait_for_webhooks()

    def settle(self, max_batches: int = 2_000) -> int:
        """Deliver webhooks and the stock queue to stock_sync until nothing is left (as Lambda would)."""
        handled = 0
        for _ in range(max_batches):
            self._quiet()
            before = self.stock_writes()
            received = self._visible("stock")
            done = self.stock.poll_once(wait_seconds=0)
            if received or done:
                self.invocations.append((self.stock_writes() - before, min(received, 10)))
            handled += done
            if not done:
                self._quiet()
                if not self._visible("stock"):
                    return handled
        raise AssertionError("stock queue did not settle")

    def sync_catalog(self) -> None:
        """Poll, then let product_sync create the eCom variants (their variants/created webhooks reach stock)."""
        self.poll()
        for _ in range(500):
            if not self.catalog.poll_once(wait_seconds=0) and not self._visible("products"):
                break
        self.settle()

    def ecom_variant_id(self, pos_product_id: str) -> int:
        link = self.deployment.store.variant_link(CONNECTION, pos_product_id=pos_product_id)
        assert link is not None, f"{pos_product_id} has no eCom variant"
        return link.ecom_variant_id

    def linked_ecom_variant_ids(self) -> dict[str, int]:
        """POS variant id -> eCom variant id of every link, read in pages as the stock worker's recomputation reads
        them (a thousand-variant catalog read link by link costs the big tests seconds)."""
        linked: dict[str, int] = {}
        after: str | None = None
        while True:
            chunk = self.stock_store.stock_chunk(CONNECTION, after, 500)
            linked.update((entry.pos_product_id, entry.ecom_variant_id) for entry in chunk.entries)
            if chunk.next_after is None:
                return linked
            after = chunk.next_after

    def ecom_level(self, pos_product_id: str) -> int:
        wanted = self.ecom_variant_id(pos_product_id)
        return int(next(v for v in self.ecom.variants() if v["id"] == wanted)["stockLevel"])

    def all_match(self, pos_ids: list[str], outlets: list[str]) -> bool:
        """Every variant's eCom level is its POS total over `outlets` (one read of each side, and of the links)."""
        with self.ecom.lock:
            levels = {vid: int(v["stockLevel"]) for vid, v in self.ecom.tables["variants"].items()}
        linked = self.linked_ecom_variant_ids()
        wrong = [p for p in pos_ids if p not in linked or levels[linked[p]] != self.pos_total(p, outlets)]
        assert not wrong, f"{len(wrong)} of {len(pos_ids)} differ, e.g. {wrong[:3]}"
        return True

    def pos_total(self, pos_product_id: str, outlets: list[str] | None = None) -> int:
        chosen = outlets if outlets is not None else self.connection.connected_outlet_ids
        return sum(max(0, self.pos.level(pos_product_id, outlet)) for outlet in chosen)

    def variants(self) -> list[dict[str, Any]]:
        return [p for p in self.pos.products() if p.get("variant_parent_id")]

    def set_outlets(self, outlets: list[str], primary: str | None = None) -> Connection:
        return request_outlet_change(self.deployment.store, self.publisher(), CONNECTION, outlets, primary)

    def stock_dead_letters(self) -> list[str]:
        """Why each dead-lettered record was parked (the DLQ message's `error` attribute, or "redriven")."""
        url = self.deployment.env["STOCK_QUEUE_URL"].replace("-stock.fifo", "-stock-dlq.fifo")
        messages = self.sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], AttributeNames=["All"]
        ).get("Messages", [])
        return [
            m.get("MessageAttributes", {}).get("error", {}).get("StringValue", "redriven")
            + " | receives "
            + m["Attributes"].get("ApproximateReceiveCount", "?")
            for m in messages
        ]


def _make_rig(
    deployment: Deployment, *, outlets: int = 3, connect: int | None = None, registers: int = 1
) -> Iterator[StockRig]:
    pos = XSeriesSimulator(
        token=DEMO_SECRETS["pos_access_token"], seed=21, outlets=outlets, registers=registers, rate_limit=0
    )
    ecom = EcomSimulator(
        api_key=DEMO_SECRETS["ecom_api_key"],
        api_secret=DEMO_SECRETS["ecom_api_secret"],
        webhook_secret=DEMO_SECRETS["ecom_webhook_secret"],
        seed=21,
        limits=None,
    )
    pos_url, ecom_url = pos.start(), ecom.start()
    outlet_ids = [o["id"] for o in pos.outlets()][: connect or outlets]
    register = pos.registers()[0]
    deployment.add_connection(
        Connection(
            connection_id=CONNECTION,
            pos_base_url=pos_url,
            ecom_base_url=ecom_url,
            online_register_id=register["id"],
            # As `connections create --register` stores it (seed 003: it always counts).
            register_outlet_id=register["outlet_id"] if register["outlet_id"] in outlet_ids else None,
            connected_outlet_ids=outlet_ids,
            primary_outlet_id=register["outlet_id"] if register["outlet_id"] in outlet_ids else None,
        ),
        DEMO_SECRETS,
    )
    # Failed records come back after 1 s here instead of the template's 360 s (what a retry sees is the same).
    deployment.sqs.set_queue_attributes(QueueUrl=deployment.queue_url("stock"), Attributes={"VisibilityTimeout": "1"})
    functions: dict[str, LocalFunction] = {
        name: SerialFunction(spec) for name, spec in deployment.resources.functions.items()
    }
    api = LocalApi(deployment.resources.routes, functions, port=0)
    api.start()
    pollers = {
        s.function: SqsPoller(deployment.sqs, s, functions[s.function], narrate=lambda line: None)
        for s in deployment.resources.subscriptions
    }
    base = f"{api.url}/connections/{CONNECTION}/webhooks"
    XSeriesClient(pos_url, DEMO_SECRETS["pos_access_token"], InMemoryRateBudget()).create_webhook(
        f"{base}/pos?token={DEMO_SECRETS['pos_webhook_token']}", "inventory.update"
    )
    EcomClient(
        ecom_url, DEMO_SECRETS["ecom_api_key"], DEMO_SECRETS["ecom_api_secret"], InMemoryRateBudget()
    ).create_webhook("variants", "*", f"{base}/ecom")
    yield StockRig(deployment, pos, ecom, api, pollers["StockSyncFunction"], pollers["ProductSyncFunction"])
    pos.stop()
    ecom.stop()
    api.stop()


@pytest.fixture
def rig(deployment: Deployment) -> Iterator[StockRig]:
    yield from _make_rig(deployment)


@pytest.fixture
def synced(rig: StockRig) -> StockRig:
    """Two families of two variants, in eCom with their stock."""
    rig.pos.seed_catalog(2, 2, seed=3)
    rig.sync_catalog()
    return rig


def test_the_ecom_total_is_the_sum_over_connected_outlets_with_negatives_as_zero(rig: StockRig) -> None:
    a, b, c = rig.outlets  # all three connected
    rig.pos.seed_catalog(1, 2, seed=4)
    first, second = (v["id"] for v in rig.variants())
    for outlet, level in zip((a, b, c), (5, -3, 2), strict=True):
        rig.pos.set_inventory(first, outlet, level)
    rig.sync_catalog()

    assert rig.ecom_level(first) == 7  # 5 + max(0, -3) + 2
    assert rig.ecom_level(second) == rig.pos_total(second)
    assert all(v["stockTracking"] == "enabled" for v in rig.ecom.variants())

    rig.pos.set_inventory(first, a, -1)  # oversold in store: counts as 0, never below
    rig.settle()
    assert rig.ecom_level(first) == 2
    state = rig.stock_store.get_stock(CONNECTION, first)
    assert {outlet: held.level for outlet, held in state.levels.items()} == {a: -1, b: -3, c: 2}
    assert not rig.stock_dead_letters()


def test_a_pos_sale_lowers_the_ecom_stock(synced: StockRig) -> None:
    variant = synced.variants()[0]
    register = synced.pos.registers()[0]
    synced.pos.set_inventory(variant["id"], register["outlet_id"], 6)
    synced.settle()
    before = synced.ecom_level(variant["id"])

    synced.pos.create_sale([{"product_id": variant["id"], "quantity": 2}], register_id=register["id"])
    synced.settle()

    assert synced.ecom_level(variant["id"]) == before - 2 == synced.pos_total(variant["id"])


def test_a_stock_edit_made_in_ecom_is_reverted_to_the_pos_total(synced: StockRig) -> None:
    variant = synced.variants()[1]
    total = synced.pos_total(variant["id"])
    ecom_id = synced.ecom_variant_id(variant["id"])
    synced.ecom.edit_variant(ecom_id, stockTracking="disabled")  # tracking switched off by hand too
    synced.settle()
    writes = synced.stock_writes()

    synced.ecom.set_stock_manually(ecom_id, total + 40)
    synced.settle()

    reverted = next(v for v in synced.ecom.variants() if v["id"] == ecom_id)
    assert (reverted["stockLevel"], reverted["stockTracking"]) == (total, "enabled")
    # One write reverted it; its own variants/updated echo came back and cost nothing.
    assert synced.stock_writes() == writes + 1


def test_a_failed_or_untrusted_pos_read_never_writes_zero(synced: StockRig, monkeypatch: pytest.MonkeyPatch) -> None:
    variant = synced.variants()[0]
    outlet = synced.outlets[0]
    total = synced.ecom_level(variant["id"])
    assert total == synced.pos_total(variant["id"]) and total > 0
    writes = synced.stock_writes()

    # A 1.0-shaped webhook without a version: its count cannot be trusted, so the worker must read the POS...
    payload = {"id": "inv-x", "product_id": variant["id"], "outlet_id": outlet, "count": 0}
    synced.pos.set_faults(error_rate=1.0)  # ... and every POS read fails
    # A failing attempt retries its GET for 3.5 s; the record must not come back while it does. The worker delays
    # a failed record by its back-off (30 s at the first failure; 6 s here).
    monkeypatch.setattr(workers, "BACKOFF_BASE_S", 6)
    url = f"{synced.api.url}/connections/{CONNECTION}/webhooks/pos?token={DEMO_SECRETS['pos_webhook_token']}"
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    assert httpx.post(url, content=pos_form("inventory.update", payload), headers=headers).status_code == 202
    synced.settle()

    assert synced.ecom_level(variant["id"]) == total  # not 0: nothing was written
    assert synced.stock_writes() == writes
    assert synced.invocations[-1][1] == 1  # the record was failed, so SQS keeps it

    synced.pos.set_faults(Faults())
    synced.pos.set_inventory(variant["id"], outlet, 9)  # what the POS really holds now
    time.sleep(6.2)  # the failed record's back-off
    synced.settle()

    assert synced.ecom_level(variant["id"]) == synced.pos_total(variant["id"])
    assert not synced.stock_dead_letters()


def test_fifty_rapid_changes_of_one_variant_cost_at_most_a_few_ecom_writes(synced: StockRig) -> None:
    variant = synced.variants()[0]
    outlet = synced.outlets[1]
    writes = synced.stock_writes()

    for level in range(50):
        synced.pos.set_inventory(variant["id"], outlet, level)
    synced.settle()

    made = synced.stock_writes() - writes
    assert made <= 5, f"{made} eCom writes for 50 changes"  # at most one per SQS batch of 10, echoes free
    assert synced.ecom_level(variant["id"]) == synced.pos_total(variant["id"])


def test_disconnecting_an_outlet_subtracts_its_stock_and_stops_routing_by_its_shipping_methods(
    synced: StockRig, caplog: pytest.LogCaptureFixture
) -> None:
    a, b, c = synced.outlets
    only_at_b, elsewhere = (v["id"] for v in synced.variants()[:2])
    for outlet, level in ((a, 0), (b, 4), (c, 0)):
        synced.pos.set_inventory(only_at_b, outlet, level)
    synced.settle()
    assert synced.ecom_level(only_at_b) == 4
    pickup_b = synced.ecom.add_shipping_method("Pickup at B", is_pickup=True)
    pickup_c = synced.ecom.add_shipping_method("Pickup at C", is_pickup=True)
    links = {str(pickup_b["id"]): b, str(pickup_c["id"]): c}
    synced.deployment.store.save_connection(synced.connection.model_copy(update={"shipping_method_outlets": links}))

    synced.set_outlets([a, c], primary=a)
    synced.settle()

    assert synced.ecom_level(only_at_b) == 0  # out of stock online
    assert synced.ecom_level(elsewhere) == synced.pos_total(elsewhere, [a, c])
    # Seed 002: B's method no longer routes orders to B; eCom has no API to disable it, so the operator is told.
    assert synced.connection.shipping_method_outlets == {str(pickup_c["id"]): c}
    warnings = [r for r in caplog.records if "disable them in the eCom back office" in r.getMessage()]
    assert [getattr(w, "shipping_methods", None) for w in warnings] == [[str(pickup_b["id"])]]

    synced.set_outlets([a, b, c])  # reconnecting adds the stock back; the method's link stays gone
    synced.settle()
    assert synced.ecom_level(only_at_b) == 4
    assert str(pickup_b["id"]) not in synced.connection.shipping_method_outlets
    assert not synced.stock_dead_letters()


@pytest.fixture
def two_register_rig(deployment: Deployment) -> Iterator[StockRig]:
    yield from _make_rig(deployment, outlets=3, registers=2)  # register 1 at outlet a, register 2 at outlet b


def test_the_registers_outlet_always_counts_and_a_register_change_adds_the_new_ones_stock(
    two_register_rig: StockRig,
) -> None:
    rig = two_register_rig
    rig.pos.seed_catalog(2, 2, seed=3)
    rig.sync_catalog()
    a, b, c = rig.outlets
    first, second = rig.pos.registers()
    assert (first["outlet_id"], second["outlet_id"], rig.connection.register_outlet_id) == (a, b, a)
    pos_ids = [v["id"] for v in rig.variants()]
    for n, pos_id in enumerate(pos_ids):
        for outlet, level in ((a, 2 + n), (b, 5), (c, 1)):
            rig.pos.set_inventory(pos_id, outlet, level)
    rig.settle()

    # Seed 003: the register's outlet cannot be disconnected; the operator is told to change the register.
    with pytest.raises(InvalidInput, match="change the register"):
        rig.set_outlets([c])
    assert rig.connection.connected_outlet_ids == [a, b, c]
    rig.set_outlets([c, a])
    rig.settle()
    assert rig.all_match(pos_ids, [a, c])
    rig.pos.set_inventory(pos_ids[0], a, 9)  # a POS change at the register's outlet moves the eCom total
    rig.settle()
    assert rig.ecom_level(pos_ids[0]) == 9 + 1

    changed = request_register_change(rig.deployment.store, rig.publisher(), CONNECTION, second["id"], b)
    rig.settle()

    assert (changed.register_outlet_id, changed.connected_outlet_ids) == (b, [c, a, b])
    assert rig.all_match(pos_ids, [a, b, c])  # recomputed: the new register's outlet counts
    rig.set_outlets([c, b])  # the previous register's outlet can go now
    rig.settle()
    assert rig.all_match(pos_ids, [b, c])
    assert not rig.stock_dead_letters()


# ----------------------------------------------------------------------- 1,000 variants, bounded recomputation


def _link_catalog(rig: StockRig, families: int, per_family: int, stocked_at_b: float, seed: int) -> list[str]:
    """A catalog as product_sync and stock_sync leave it, written directly: POS levels (outlet A 0-6; outlet B
    stocks a share of the variants, 0 or -1 elsewhere), eCom variants holding the totals, the links, the states."""
    rng = random.Random(seed)
    rig.pos.seed_catalog(families, per_family, seed=seed)
    rig.ecom.seed_catalog(families, per_family, seed=seed)
    a = rig.outlets[0]
    with rig.pos.lock:  # seeding sends no webhook, and neither does this
        for row in rig.pos.tables["inventory"].rows.values():
            stocked = rng.random() < stocked_at_b
            row["inventory_level"] = (
                rng.randint(0, 6) if row["outlet_id"] == a else rng.randint(1, 9) if stocked else rng.choice((0, -1))
            )
    store, stock = rig.deployment.store, rig.stock_store
    pos_by_family: dict[str, list[dict[str, Any]]] = {}
    for row in rig.variants():
        pos_by_family.setdefault(row["variant_parent_id"], []).append(row)
    ecom_by_product: dict[int, list[dict[str, Any]]] = {}
    for variant in rig.ecom.variants():
        ecom_by_product.setdefault(variant["product"]["resource"]["id"], []).append(variant)
    pos_ids: list[str] = []
    synced: list[VariantStockState] = []
    links: list[tuple[str, int, dict[str, EcomVariantRef]]] = []
    for (family, rows), (product_id, ecom_rows) in zip(pos_by_family.items(), ecom_by_product.items(), strict=True):
        refs = {
            row["id"]: EcomVariantRef(ecom_product_id=product_id, ecom_variant_id=ev["id"])
            for row, ev in zip(rows, ecom_rows, strict=True)
        }
        links.append((family, product_id, refs))
        for row in rows:
            levels = {
                r["outlet_id"]: OutletLevel(level=r["inventory_level"], version=r["version"])
                for r in rig.pos.inventory(row["id"])
            }
            total = sum(max(0, held.level) for held in levels.values())
            ecom_id = refs[row["id"]].ecom_variant_id
            with rig.ecom.lock:
                rig.ecom.tables["variants"][ecom_id]["stockLevel"] = total
            synced.append(
                VariantStockState(
                    product_id=row["id"], ecom_variant_id=ecom_id, levels=levels, last_written=total, revision=1
                )
            )
            pos_ids.append(row["id"])
    # The link items exactly as SyncStore.save_catalog_state writes them (its transactions make moto copy the whole
    # table each time, minutes for a catalog this size); SyncStore.variant_link reads them back below.
    with rig.deployment.session.resource("dynamodb").Table(rig.deployment.env["TABLE_NAME"]).batch_writer() as batch:
        for family, product_id, refs in links:
            for pos_id, ref in refs.items():
                link = {"pos_product_id": pos_id, "family_key": family, "ecom_product_id": product_id}
                link["ecom_variant_id"] = ref.ecom_variant_id
                for sk in (keys.pos_variant_link_sk(pos_id), keys.ecom_variant_link_sk(ref.ecom_variant_id)):
                    batch.put_item(Item={"pk": keys.connection_pk(CONNECTION), "sk": sk, **link})
    for state in synced:
        stock.save_stock(CONNECTION, 0, state)
    assert store.variant_link(CONNECTION, pos_product_id=pos_ids[0]) is not None
    return pos_ids


@pytest.fixture
def big_rig(deployment: Deployment) -> Iterator[StockRig]:
    yield from _make_rig(deployment, outlets=2)


@pytest.mark.slow
def test_connecting_and_disconnecting_an_outlet_over_1000_variants_runs_in_bounded_chunks(big_rig: StockRig) -> None:
    rig = big_rig
    a, b = rig.outlets
    pos_ids = _link_catalog(rig, 40, 25, stocked_at_b=0.1, seed=5)
    assert len(pos_ids) == 1000
    stocked_at_b = {p for p in pos_ids if rig.pos.level(p, b) > 0}
    assert 50 < len(stocked_at_b) < 150
    assert rig.all_match(pos_ids, [a, b])
    writes = rig.stock_writes()

    rig.set_outlets([a], primary=a)
    rig.settle()

    assert rig.all_match(pos_ids, [a])
    assert rig.stock_writes() - writes == len(stocked_at_b)  # only the totals that changed
    chunks = [(w, n) for w, n in rig.invocations if n]
    assert len(chunks) >= 1000 // 50  # one message per chunk of 50, each queued by the one before
    assert max(w for w, _ in rig.invocations) <= 50  # bounded work per message

    rig.invocations.clear()
    writes = rig.stock_writes()
    rig.set_outlets([a, b], primary=a)
    rig.settle()

    assert rig.all_match(pos_ids, [a, b])
    assert rig.stock_writes() - writes == len(stocked_at_b)
    assert max(w for w, _ in rig.invocations) <= 50
    assert not rig.stock_dead_letters()


# ----------------------------------------------------------------------- randomized: any order, any duplication


@pytest.fixture
def partial_rig(deployment: Deployment) -> Iterator[StockRig]:
    yield from _make_rig(deployment, outlets=3, connect=2)  # the third outlet is not connected


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_changes_with_lost_duplicated_and_reordered_webhooks_end_at_the_pos_totals(
    partial_rig: StockRig, seed: int
) -> None:
    rig = partial_rig
    rig.pos.seed_catalog(1, 3, seed=seed)
    rig.sync_catalog()
    rng = random.Random(seed)
    rig.pos.set_faults(webhook_loss_rate=0.2, webhook_duplicate_rate=0.3, webhook_reorder=True)
    rig.ecom.set_faults(webhook_duplicate_rate=0.3, webhook_reorder=True)
    variants = [v["id"] for v in rig.variants()]
    register = rig.pos.registers()[0]
    for _ in range(40):
        pos_id = rng.choice(variants)
        action = rng.random()
        if action < 0.65:
            rig.pos.set_inventory(pos_id, rng.choice(rig.outlets), rng.randint(-3, 12))
        elif action < 0.8:
            rig.pos.create_sale([{"product_id": pos_id, "quantity": rng.randint(1, 3)}], register_id=register["id"])
        elif action < 0.9:
            rig.ecom.set_stock_manually(rig.ecom_variant_id(pos_id), rng.randint(0, 99))
        if rng.random() < 0.4:  # workers run while changes keep coming
            for _ in range(rng.randint(1, 3)):
                rig.stock.poll_once(wait_seconds=0)
    assert rig.pos.deliveries.lost and rig.pos.deliveries.duplicated  # the faults did happen
    rig.pos.set_faults(Faults())
    rig.ecom.set_faults(Faults())
    rig.settle()
    rig.poll()  # the poller's inventory feed brings what the lost webhooks did not
    rig.settle()

    connected = rig.connection.connected_outlet_ids
    assert {p: rig.ecom_level(p) for p in variants} == {p: rig.pos_total(p, connected) for p in variants}
    assert not rig.stock_dead_letters()


def test_stock_sync_is_wired_in_the_template_on_the_stock_queue(deployment: Deployment) -> None:
    subscription = next(s for s in deployment.resources.subscriptions if s.function == "StockSyncFunction")
    assert subscription.queue_url == deployment.queue_url("stock")
    assert subscription.report_batch_item_failures
    assert Counter(s.function for s in deployment.resources.subscriptions)["StockSyncFunction"] == 1


def test_the_cli_links_shipping_methods_saves_the_outlets_and_queues_their_application(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`pos-ecom-sync connections set-shipping-outlets` and `set-outlets` against a stack on a moto server, as an
    operator runs them."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
        session = boto3.Session(region_name="us-east-1")
        env = provision(session, stack_name="local").shared_environment()  # the stack `make run` starts
        outputs = {"Endpoint": endpoint, "Region": "us-east-1", "TableName": env["TABLE_NAME"]}
        (tmp_path / ".local-stack").mkdir()
        (tmp_path / ".local-stack" / "outputs.json").write_text(json.dumps({**outputs, "SecretPrefix": "p/"}))
        monkeypatch.chdir(tmp_path)
        store = SyncStore(env["TABLE_NAME"], resource=session.resource("dynamodb"))
        store.save_connection(
            Connection(
                connection_id="dockside",
                pos_base_url="http://pos",
                ecom_base_url="http://ecom",
                connected_outlet_ids=["o-1", "o-2"],
                primary_outlet_id="o-1",
            ),
            create=True,
        )

        assert cli_main(["connections", "set-shipping-outlets", "dockside", "12=o-1,13=o-2"]) == 0
        assert json.loads(capsys.readouterr().out)["shipping_method_outlets"] == {"12": "o-1", "13": "o-2"}
        # A method linked to an outlet that is not connected could never route: refused, nothing saved.
        assert cli_main(["connections", "set-shipping-outlets", "dockside", "14=o-9"]) == 2
        assert "not connected" in capsys.readouterr().err
        assert cli_main(["connections", "set-shipping-outlets", "dockside", "pickup=o-1"]) == 2
        capsys.readouterr()

        code = cli_main(["connections", "set-outlets", "dockside", "--outlets", "o-1,o-3", "--primary-outlet", "o-3"])
        out = capsys.readouterr().out

        assert code == 0, out
        assert json.loads(out)["connected_outlet_ids"] == ["o-1", "o-3"]
        # o-2's method no longer routes; eCom has no API to disable it, so the operator is told to.
        assert json.loads(out)["shipping_method_outlets"] == {"12": "o-1"}
        assert "['13']" in json.loads(out)["disable_in_ecom"]
        saved = store.get_connection("dockside")
        assert saved is not None and (saved.connected_outlet_ids, saved.primary_outlet_id) == (["o-1", "o-3"], "o-3")
        queued = drain_queue(session.client("sqs"), env["STOCK_QUEUE_URL"])
        bodies = [json.loads(m["Body"]) for m in queued]
        assert [(b["entity"], b["via"], b["payload"]["previous_outlets"]) for b in bodies] == [
            ("outlets", "operator", ["o-1", "o-2"])
        ]
        assert bodies[0]["payload"]["retired_shipping_methods"] == ["13"]
        assert cli_main(["connections", "set-outlets", "nobody", "--outlets", "o-1"]) == 2
    finally:
        server.stop()
