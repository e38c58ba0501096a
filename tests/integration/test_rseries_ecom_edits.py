"""Seed 000, two-way product sync for an R-Series connection, through the real path: a merchant's edit in the eCom
simulator -> its eCom webhook -> webhook_ingest (moto) -> products queue -> product_sync -> R-Series simulator. A
price edit becomes the item's Online price (Default untouched), a title edit renames the item; the R-Series feed's
echo of our write and eCom's echo of our own eCom writes bounce nowhere; an edit found by reconciliation's content
compare (its webhook lost) goes to the POS too. X-Series connections keep seed 003: eCom product edits never flow
back."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from pos_ecom_sync.connectors.ecom import EcomClient
from pos_ecom_sync.models.messages import ChangeMessage
from pos_ecom_sync.queues import ChangePublisher, Outgoing
from pos_ecom_sync.ratelimit import InMemoryRateBudget

from functions.webhook_ingest import app as webhook_ingest
from local_stack.demo import DEMO_SECRETS
from tests.integration.conftest import Deployment, demo_connection
from tests.integration.test_rseries_product_sync import CONNECTION, RSeriesCatalogRig
from tests.integration.test_rseries_product_sync import rig as rig  # the R-Series + eCom + moto fixture
from tests.support import LambdaContext, drain_queue, ecom_webhook_event

ONLINE, DEFAULT = "5", "1"  # the rig's Online level id (online_price_level_id=5); Default is level 1


def deliver(rig: RSeriesCatalogRig, envelope: str, row: dict[str, Any]) -> dict[str, Any]:
    """eCom's webhook for `row` (its rendered resource, as the simulator sends it) into webhook_ingest."""
    event = ecom_webhook_event(CONNECTION, json.dumps({envelope: row}).encode())
    response = webhook_ingest.lambda_handler(event, LambdaContext(function_name="webhook_ingest"))
    answer: dict[str, Any] = json.loads(response["body"])
    assert response["statusCode"] in (200, 202), answer
    drain_queue(rig.deployment.sqs, rig.deployment.queue_url("stock"))  # the stock worker's copy is not tested here
    return answer


def prices(rig: RSeriesCatalogRig, item_id: str) -> dict[str, float]:
    return {p["useTypeID"]: float(p["amount"]) for p in rig.pos.item(int(item_id))["Prices"]["ItemPrice"]}


def a_matrix_variant(rig: RSeriesCatalogRig) -> tuple[str, str, dict[str, Any]]:
    """(family key, item id, its eCom variant) of a synced matrix variant."""
    item = next(i for i in rig.pos.items() if i["itemMatrixID"] != "0")
    key = f"m{item['itemMatrixID']}"
    return key, item["itemID"], rig.ecom_variants_of(key)[item["itemID"]]


def synced(rig: RSeriesCatalogRig) -> None:
    """A small catalog (two matrices of two variants, one simple item) synced to eCom, the clock past it."""
    rig.pos.seed_catalog(matrices=2, variants_per_matrix=2, simple_items=1, seed=1)
    rig.sync_all()
    assert rig.dead_letters() == []
    rig.pos.clock.sleep(3)  # type: ignore[attr-defined]  # stamps are whole seconds: later edits are newer


def writes(rig: RSeriesCatalogRig) -> tuple[int, int]:
    """(R-Series writes, eCom writes) so far."""
    return rig.pos.stats()["writes"], rig.ecom.stats()["writes"]


def test_an_ecom_price_edit_becomes_the_online_price_and_its_echoes_bounce_nowhere(rig: RSeriesCatalogRig) -> None:
    synced(rig)
    key, item_id, variant = a_matrix_variant(rig)
    default_before = prices(rig, item_id)[DEFAULT]
    pos_writes, ecom_writes = writes(rig)

    edited = rig.ecom.edit_variant(variant["id"], priceExcl=17.5)  # the merchant, in eCom's back office
    answer = deliver(rig, "variant", edited)
    rig.drain()

    assert answer["outcome"] == "queued"
    assert prices(rig, item_id)[ONLINE] == 17.5
    assert prices(rig, item_id)[DEFAULT] == default_before  # seed 000: "without changing the default price"
    assert writes(rig) == (pos_writes + 1, ecom_writes)  # one PUT Item (all levels, Online changed); no eCom write
    assert rig.dead_letters() == []

    # The R-Series feed brings our own write back: the family maps to what eCom shows, so no eCom call is made.
    assert rig.poll() >= 1
    rig.drain()
    assert writes(rig) == (pos_writes + 1, ecom_writes)
    assert rig.ecom_variants_of(key)[item_id]["priceExcl"] == 17.5

    # The same delivery again (eCom retries): the edit is taken once.
    assert deliver(rig, "variant", edited)["outcome"] == "duplicate"
    rig.drain()
    assert writes(rig) == (pos_writes + 1, ecom_writes)


def test_our_own_ecom_write_echoed_by_ecom_writes_nothing_to_the_pos(rig: RSeriesCatalogRig) -> None:
    synced(rig)
    key, item_id, _ = a_matrix_variant(rig)
    rig.pos.set_online_price(int(item_id), 13.0)  # a POS edit: the sync writes it to eCom
    rig.sync_all()
    written = rig.ecom_variants_of(key)[item_id]
    assert written["priceExcl"] == 13.0
    pos_writes, ecom_writes = writes(rig)

    deliver(rig, "variant", written)  # eCom's variants/updated for our own write
    rig.drain()

    assert writes(rig) == (pos_writes, ecom_writes)
    assert prices(rig, item_id)[ONLINE] == 13.0


def test_an_ecom_title_edit_renames_the_item_and_a_sku_edit_sets_its_custom_sku(rig: RSeriesCatalogRig) -> None:
    synced(rig)
    simple = next(i for i in rig.pos.items() if i["itemMatrixID"] == "0")
    item_id = simple["itemID"]
    product = rig.ecom_product_of(item_id)
    assert product is not None
    ecom = EcomClient(rig.ecom.url, DEMO_SECRETS["ecom_api_key"], DEMO_SECRETS["ecom_api_secret"], InMemoryRateBudget())
    pos_writes, ecom_writes = writes(rig)

    ecom.update_product(product["id"], {"title": "Renamed in eCom"})  # as the merchant would, in the back office
    renamed = next(p for p in rig.ecom.products() if p["id"] == product["id"])
    deliver(rig, "product", renamed)
    rig.drain()

    assert rig.pos.item(int(item_id))["description"] == "Renamed in eCom"
    variant = rig.ecom_variants_of(item_id)[item_id]
    edited = rig.ecom.edit_variant(variant["id"], sku="NEW-SKU")
    deliver(rig, "variant", edited)
    rig.drain()

    assert rig.pos.item(int(item_id))["customSku"] == "NEW-SKU"
    assert rig.dead_letters() == []
    pos_after, ecom_after = writes(rig)
    assert pos_after == pos_writes + 2  # one PUT Item per edit
    # eCom writes: only the merchant's title edit (made through the API here; the SKU edit is the simulator's back
    # office). The worker wrote nothing to eCom: eCom already shows the POS's new name and SKU (its fulltitle and
    # articleCode, which the POS name and SKU also fill, are left as the merchant has them until the next POS edit).
    assert ecom_after == ecom_writes + 1


def test_a_matrix_title_edit_renames_the_matrix_master(rig: RSeriesCatalogRig) -> None:
    synced(rig)
    key, _, _ = a_matrix_variant(rig)
    product = rig.ecom_product_of(key)
    assert product is not None
    ecom = EcomClient(rig.ecom.url, DEMO_SECRETS["ecom_api_key"], DEMO_SECRETS["ecom_api_secret"], InMemoryRateBudget())

    ecom.update_product(product["id"], {"title": "Matrix renamed", "fulltitle": "Matrix renamed"})
    deliver(rig, "product", next(p for p in rig.ecom.products() if p["id"] == product["id"]))
    rig.drain()

    assert rig.pos.matrix(int(key[1:]))["description"] == "Matrix renamed"
    assert rig.dead_letters() == []


def _ingest(connection_id: str, envelope: str, row: dict[str, Any]) -> dict[str, Any]:
    event = ecom_webhook_event(connection_id, json.dumps({envelope: row}).encode())
    response = webhook_ingest.lambda_handler(event, LambdaContext(function_name="webhook_ingest"))
    answer: dict[str, Any] = json.loads(response["body"])
    return answer


def _queued(deployment: Deployment) -> dict[str, list[dict[str, Any]]]:
    return {
        concern: [json.loads(m["Body"]) for m in drain_queue(deployment.sqs, deployment.queue_url(concern))]
        for concern in ("products", "stock")
    }


def test_for_r_series_ecom_product_and_variant_changes_reach_the_catalog_worker(deployment: Deployment) -> None:
    deployment.add_connection(demo_connection("rseries-shop").model_copy(update={"pos_profile": "r-series"}))

    product = _ingest("rseries-shop", "product", {"id": 77, "title": "Tee", "updatedAt": "2026-12-05T10:00:00+00:00"})
    variant = _ingest("rseries-shop", "variant", {"id": 78, "stockLevel": 3, "updatedAt": "2026-12-05T10:00:00+00:00"})

    assert product["outcome"] == "queued" and product["concern"] == "products"
    assert variant["outcome"] == "queued" and variant["concern"] == "stock"
    queued = _queued(deployment)
    assert sorted((m["entity"], m["entity_id"]) for m in queued["products"]) == [("product", "77"), ("variant", "78")]
    assert [(m["entity"], m["entity_id"]) for m in queued["stock"]] == [("variant", "78")]


def test_for_x_series_ecom_product_edits_never_flow_back_seed_003(deployment: Deployment) -> None:
    product = _ingest("demo", "product", {"id": 77, "title": "Tee"})
    variant = _ingest("demo", "variant", {"id": 78, "stockLevel": 3})

    assert product["outcome"] == "ignored"
    assert variant["outcome"] == "queued" and variant["concern"] == "stock"
    queued = _queued(deployment)
    assert queued["products"] == [] and len(queued["stock"]) == 1


def test_an_ecom_edit_found_by_reconciliation_goes_to_the_pos_not_over_the_edit(rig: RSeriesCatalogRig) -> None:
    # The variant webhook was lost; the daily content compare finds eCom differing and queues the family.
    synced(rig)
    key, item_id, variant = a_matrix_variant(rig)
    rig.ecom.edit_variant(variant["id"], priceExcl=21.0)
    finding = ChangeMessage(
        connection_id=CONNECTION,
        source="pos",
        entity="product",
        entity_id=key,
        group_key=key,
        via="reconcile",
        received_at=datetime.now(UTC),
        payload={"id": key, "reconcile": "catalog_content"},
        concern="products",
    )
    ChangePublisher(rig.deployment.queue_url, client=rig.deployment.sqs).publish([Outgoing(finding)])
    pos_writes, ecom_writes = writes(rig)

    rig.drain()

    assert prices(rig, item_id)[ONLINE] == 21.0
    assert rig.ecom_variants_of(key)[item_id]["priceExcl"] == 21.0  # not "repaired" from the POS
    assert writes(rig) == (pos_writes + 1, ecom_writes)
    assert rig.dead_letters() == []
