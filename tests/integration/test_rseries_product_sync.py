"""R-Series catalog sync through the real path: R-Series simulator -> change_poller's timeStamp feeds -> products
queue -> product_sync (the R-Series profile's catalog, its client built by runtime from the connection's OAuth
secrets) -> eCom simulator. Seed 000: matrices become products with one variant per variant item, created disabled;
an archive deletes the eCom product; a POS description or Online price edit reaches eCom; the merchant's enable in
eCom is never undone."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from pos_ecom_sync import runtime
from pos_ecom_sync.connectors.ecom import EcomClient
from pos_ecom_sync.intake.poller import ChangePoller
from pos_ecom_sync.models.connection import Connection
from pos_ecom_sync.profiles.rseries.catalog import RSeriesCatalog, RSeriesCatalogWalk
from pos_ecom_sync.profiles.rseries.client import RSeriesClient
from pos_ecom_sync.queues import ChangePublisher
from pos_ecom_sync.ratelimit import InMemoryRateBudget
from pos_ecom_sync.reference import ReferenceCache

from local_stack.demo import DEMO_SECRETS
from local_stack.event_sources import SqsPoller
from local_stack.functions import LocalFunction
from local_stack.simulators.ecom import EcomSimulator
from local_stack.simulators.rseries import RSeriesSimulator
from tests.integration.conftest import Deployment
from tests.integration.test_rseries_client import START
from tests.support import RunningClock, drain_queue

CONNECTION = "rshop"


@dataclass
class RSeriesCatalogRig:
    deployment: Deployment
    pos: RSeriesSimulator
    ecom: EcomSimulator
    worker: SqsPoller

    @property
    def connection(self) -> Connection:
        found = self.deployment.store.get_connection(CONNECTION)
        assert found is not None
        return found

    def poll(self) -> int:
        """One change_poller sweep through the connection's R-Series feeds; the products messages queued."""
        ecom = EcomClient(
            self.ecom.url, DEMO_SECRETS["ecom_api_key"], DEMO_SECRETS["ecom_api_secret"], InMemoryRateBudget()
        )
        publisher = ChangePublisher(self.deployment.queue_url, client=self.deployment.sqs)
        report = ChangePoller(self.deployment.store, publisher).poll(
            self.connection, runtime.pos_change_feeds(self.connection), ecom
        )
        for concern in ("stock", "orders", "statuses"):
            drain_queue(self.deployment.sqs, self.deployment.queue_url(concern))
        return sum(feed.queued for feed in report.feeds if feed.feed in ("pos:Item", "pos:ItemMatrix"))

    def drain(self, max_batches: int = 200) -> int:
        handled = 0
        for _ in range(max_batches):
            done = self.worker.poll_once(wait_seconds=0)
            if not done:
                return handled
            handled += done
        raise AssertionError("products queue did not drain")

    def sync_all(self) -> None:
        self.poll()
        self.drain()

    def dead_letters(self) -> list[dict[str, Any]]:
        url = self.deployment.env["PRODUCTS_QUEUE_URL"].replace("-products.fifo", "-products-dlq.fifo")
        return drain_queue(self.deployment.sqs, url)

    def ecom_product_of(self, family_key: str) -> dict[str, Any] | None:
        state = self.deployment.store.get_catalog_state(CONNECTION, family_key).state
        if state.ecom_product_id is None:
            return None
        return next((p for p in self.ecom.products() if p["id"] == state.ecom_product_id), None)

    def ecom_variants_of(self, family_key: str) -> dict[str, dict[str, Any]]:
        """POS item id -> its eCom variant."""
        state = self.deployment.store.get_catalog_state(CONNECTION, family_key).state
        by_id = {v["id"]: v for v in self.ecom.variants()}
        return {pos_id: by_id[ref.ecom_variant_id] for pos_id, ref in state.variants.items()}


@pytest.fixture
def rig(deployment: Deployment) -> Iterator[RSeriesCatalogRig]:
    clock = RunningClock(START)
    pos = RSeriesSimulator(clock=clock, seed=5, rate_limit=False, online_price_level_id=5)
    ecom = EcomSimulator(
        api_key=DEMO_SECRETS["ecom_api_key"],
        api_secret=DEMO_SECRETS["ecom_api_secret"],
        webhook_secret=DEMO_SECRETS["ecom_webhook_secret"],
        seed=5,
    )
    pos_url, ecom_url = pos.start(), ecom.start()
    tokens = pos.issue_tokens()
    secrets = {
        **{k: v for k, v in DEMO_SECRETS.items() if k.startswith("ecom_") or k == "pos_webhook_token"},
        "pos_client_id": pos.client_id,
        "pos_client_secret": pos.client_secret,
        "pos_refresh_token": tokens["refresh_token"],
        "pos_access_token": tokens["access_token"],
    }
    deployment.add_connection(
        Connection(connection_id=CONNECTION, pos_profile="r-series", pos_base_url=pos_url, ecom_base_url=ecom_url),
        secrets,
    )
    subscription = next(s for s in deployment.resources.subscriptions if s.function == "ProductSyncFunction")
    function = LocalFunction(deployment.resources.functions["ProductSyncFunction"])
    worker = SqsPoller(deployment.sqs, subscription, function, narrate=lambda line: None)
    yield RSeriesCatalogRig(deployment, pos, ecom, worker)
    pos.stop()
    ecom.stop()


def _online_price(item: dict[str, Any]) -> float:
    return next(float(p["amount"]) for p in item["Prices"]["ItemPrice"] if p["useType"] == "Online")


def _clock(rig: RSeriesCatalogRig) -> RunningClock:
    clock = rig.pos.clock
    assert isinstance(clock, RunningClock)
    return clock


def test_the_seeded_catalog_arrives_as_disabled_products_a_matrix_with_one_variant_per_item(
    rig: RSeriesCatalogRig,
) -> None:
    rig.pos.seed_catalog(matrices=3, variants_per_matrix=4, simple_items=2, seed=1)

    rig.sync_all()

    assert not rig.dead_letters()
    matrices = sorted({int(i["itemMatrixID"]) for i in rig.pos.items() if i["itemMatrixID"] != "0"})
    simples = [i for i in rig.pos.items() if i["itemMatrixID"] == "0"]
    assert len(matrices) == 3 and len(simples) == 2
    assert len(rig.ecom.products()) == 5
    for matrix_id in matrices:
        matrix = rig.pos.matrix(matrix_id)
        product = rig.ecom_product_of(f"m{matrix_id}")
        assert product is not None
        assert product["title"] == matrix["description"]
        assert product["visibility"] == "hidden"  # seed 000: synced products start disabled
        variants = rig.ecom_variants_of(f"m{matrix_id}")
        items = {i["itemID"]: i for i in rig.pos.items() if i["itemMatrixID"] == str(matrix_id)}
        assert set(variants) == set(items)
        for item_id, variant in variants.items():
            assert variant["sku"] == items[item_id]["customSku"]
            assert variant["priceExcl"] == pytest.approx(_online_price(rig.pos.item(int(item_id))))
    for item in simples:
        product = rig.ecom_product_of(item["itemID"])
        assert product is not None and product["title"] == item["description"] and product["visibility"] == "hidden"
    assert rig.deployment.store.catalog_variant_count(CONNECTION) == 3 * 4 + 2


def test_archiving_a_matrix_in_the_pos_deletes_its_ecom_product(rig: RSeriesCatalogRig) -> None:
    matrix_id, _ = rig.pos.add_matrix("Harbor Tee", 35.0, [("Navy", "M"), ("White", "M")])
    rig.sync_all()
    product = rig.ecom_product_of(f"m{matrix_id}")
    assert product is not None

    _clock(rig).sleep(3)
    rig.pos.archive_matrix(matrix_id)
    rig.sync_all()

    assert all(p["id"] != product["id"] for p in rig.ecom.products())
    assert rig.deployment.store.get_catalog_state(CONNECTION, f"m{matrix_id}").state.deleted_in_pos
    assert not rig.dead_letters()


def test_archiving_one_variant_deletes_only_its_ecom_variant(rig: RSeriesCatalogRig) -> None:
    matrix_id, (navy, white) = rig.pos.add_matrix("Harbor Tee", 35.0, [("Navy", "M"), ("White", "M")])
    rig.sync_all()

    _clock(rig).sleep(3)
    rig.pos.archive_item(white)
    rig.sync_all()

    assert set(rig.ecom_variants_of(f"m{matrix_id}")) == {str(navy)}
    assert rig.ecom_product_of(f"m{matrix_id}") is not None


def test_a_pos_description_edit_updates_ecom_and_keeps_the_merchants_enable(rig: RSeriesCatalogRig) -> None:
    item_id = rig.pos.add_item("Canvas Tote", 20.0, custom_sku="TOTE")
    rig.sync_all()
    product = rig.ecom_product_of(str(item_id))
    assert product is not None and product["visibility"] == "hidden"
    merchant = EcomClient(
        rig.ecom.url, DEMO_SECRETS["ecom_api_key"], DEMO_SECRETS["ecom_api_secret"], InMemoryRateBudget()
    )
    merchant.update_product(product["id"], {"visibility": "visible", "description": "<p>Written in eCom</p>"})

    _clock(rig).sleep(3)
    rig.pos.edit_item(item_id, description="Canvas Tote Bag")
    rig.sync_all()

    updated = rig.ecom_product_of(str(item_id))
    assert updated is not None
    assert updated["title"] == "Canvas Tote Bag"
    assert updated["visibility"] == "visible"  # eCom owns availability once the product exists
    assert updated["description"] == "<p>Written in eCom</p>"


def test_an_online_price_change_reaches_ecom_and_without_one_the_default_price_shows(rig: RSeriesCatalogRig) -> None:
    item_id = rig.pos.add_item("Canvas Tote", 20.0, custom_sku="TOTE", online_price=18.0)
    rig.sync_all()
    [variant] = rig.ecom_variants_of(str(item_id)).values()
    assert variant["priceExcl"] == 18.0

    _clock(rig).sleep(3)
    rig.pos.set_online_price(item_id, 16.5)
    rig.sync_all()
    [variant] = rig.ecom_variants_of(str(item_id)).values()
    assert (variant["priceExcl"], variant["priceIncl"]) == (16.5, 16.5)

    _clock(rig).sleep(3)
    rig.pos.set_online_price(item_id, 0)  # the Online level cleared: the Default price is the online price
    rig.sync_all()
    [variant] = rig.ecom_variants_of(str(item_id)).values()
    assert variant["priceExcl"] == 20.0


def _client(rig: RSeriesCatalogRig) -> RSeriesClient:
    return RSeriesClient(rig.pos.url, InMemoryRateBudget(), token=rig.pos.issue_tokens()["access_token"])


def test_a_family_is_read_from_its_key_or_any_variant_id_in_few_calls(rig: RSeriesCatalogRig) -> None:
    matrix_id, (navy, white) = rig.pos.add_matrix("Harbor Tee", 35.0, [("Navy", "M"), ("White", "M")])
    client = _client(rig)
    catalog = RSeriesCatalog(client, rig.connection, reference=ReferenceCache())
    catalog.read_family(f"m{matrix_id}")  # fills the reference lists (categories, brands, Online level)

    before = client.calls
    by_key = catalog.read_family(f"m{matrix_id}")
    assert client.calls - before == 2  # the matrix, then its items
    before = client.calls
    by_variant = catalog.read_family(str(white))
    assert client.calls - before == 3  # the item names its matrix

    assert by_key == by_variant
    assert by_key is not None and by_key.key == f"m{matrix_id}"
    assert [(i.id, [(o.name, o.value) for o in i.options]) for i in by_key.sellable] == [
        (str(navy), [("Color", "Navy"), ("Size", "M")]),
        (str(white), [("Color", "White"), ("Size", "M")]),
    ]
    assert catalog.read_family("987654") is None and catalog.read_family("m987654") is None


def test_the_catalog_walk_reads_every_item_archived_ones_included_as_family_rows(rig: RSeriesCatalogRig) -> None:
    rig.pos.seed_catalog(matrices=2, variants_per_matrix=3, simple_items=2, seed=2)
    archived = int(rig.pos.items()[0]["itemID"])
    rig.pos.archive_item(archived)
    walk = RSeriesCatalogWalk(_client(rig))

    rows, cursor = [], None
    for _ in range(20):
        page = walk.catalog_page(cursor, 3)
        if not page.rows:
            break
        rows += [walk.family_row(row) for row in page.rows]
        cursor = page.cursor

    expected = {
        (i["itemID"], f"m{i['itemMatrixID']}" if i["itemMatrixID"] != "0" else i["itemID"], i["archived"] == "true")
        for i in rig.pos.items(archived=True)
    }
    assert {(r.item_id, r.family_key, r.deleted) for r in rows} == expected
    assert len(rows) == len(expected) == 8
    assert all(r.stamp is not None for r in rows)
