"""Seed 000 table "Attribute Values <-> Option Values", two-way for an R-Series connection, through the real path: the
merchant renames a variant's option value in the eCom simulator (its title, "Black, M" -> "Black, Medium") -> eCom's
webhook -> webhook_ingest (moto) -> products queue -> product_sync -> R-Series simulator (`PUT Item` with its
`ItemAttributes`). Neither the R-Series feed's echo nor eCom's bounces; the POS wins when it renamed the value too;
a combination another variant holds is refused with the reason (on our side, and by the R-Series simulator when a
PUT reaches it either way the switch says). X-Series connections keep seed 003."""

from __future__ import annotations

import json

import pytest
from pos_ecom_sync import runtime
from pos_ecom_sync.catalog.ecom_edits import PosEdit
from pos_ecom_sync.errors import InvalidInput, UpstreamError
from pos_ecom_sync.models.connection import Connection
from pos_ecom_sync.profiles.rseries.catalog import RSeriesCatalog
from pos_ecom_sync.profiles.rseries.client import RSeriesClient
from pos_ecom_sync.ratelimit import InMemoryRateBudget

from functions.webhook_ingest import app as webhook_ingest
from local_stack.simulators.rseries import RSeriesSimulator
from tests.integration.conftest import Deployment
from tests.integration.test_rseries_ecom_edits import a_matrix_variant, deliver, synced, writes
from tests.integration.test_rseries_product_sync import RSeriesCatalogRig
from tests.integration.test_rseries_product_sync import rig as rig  # the R-Series + eCom + moto fixture
from tests.support import LambdaContext, drain_queue, ecom_webhook_event


def attributes(rig: RSeriesCatalogRig, item_id: str) -> list[str]:
    held = rig.pos.item(int(item_id))["ItemAttributes"]
    return [held[f"attribute{n}"] for n in (1, 2, 3) if held[f"attribute{n}"]]


def renamed(title: str, last: str) -> str:
    """The variant title with its last option value replaced."""
    return ", ".join([*title.split(", ")[:-1], last])


def test_an_option_value_edit_renames_the_items_attribute_value_and_neither_echo_writes_back(
    rig: RSeriesCatalogRig,
) -> None:
    synced(rig)
    key, item_id, variant = a_matrix_variant(rig)
    assert variant["title"] == ", ".join(attributes(rig, item_id))
    pos_writes, ecom_writes = writes(rig)

    edited = rig.ecom.edit_variant(variant["id"], title=renamed(variant["title"], "Medium"))
    deliver(rig, "variant", edited)
    rig.drain()

    values = attributes(rig, item_id)
    assert values[-1] == "Medium" and ", ".join(values) == edited["title"]
    matrix = rig.pos.matrix(int(key[1:]))["description"]
    assert rig.pos.item(int(item_id))["description"] == " ".join([matrix, *values])  # KVH itemmatrix.md
    assert writes(rig) == (pos_writes + 1, ecom_writes)  # one PUT Item (ItemAttributes); no eCom write
    assert rig.dead_letters() == []

    assert rig.poll() >= 1  # R-Series' echo of our PUT: the family maps to what eCom shows
    rig.drain()
    assert writes(rig) == (pos_writes + 1, ecom_writes)
    assert rig.ecom_variants_of(key)[item_id]["title"] == edited["title"]

    deliver(rig, "variant", rig.ecom_variants_of(key)[item_id])  # eCom's echo (or a retry): nothing to take
    rig.drain()
    assert writes(rig) == (pos_writes + 1, ecom_writes)


def test_the_pos_wins_when_it_renamed_the_value_too(rig: RSeriesCatalogRig) -> None:
    synced(rig)
    key, item_id, variant = a_matrix_variant(rig)
    edited = rig.ecom.edit_variant(variant["id"], title=renamed(variant["title"], "Medium"))
    held = rig.pos.item(int(item_id))["ItemAttributes"]
    slot = max(n for n in (1, 2, 3) if held[f"attribute{n}"])
    rig.pos.edit_item(int(item_id), ItemAttributes={f"attribute{slot}": "Med"})  # a POS user, meanwhile
    pos_writes, _ = writes(rig)

    deliver(rig, "variant", edited)
    rig.drain()

    assert attributes(rig, item_id)[-1] == "Med"
    assert writes(rig)[0] == pos_writes  # nothing written to R-Series
    rig.sync_all()  # the POS change reaches eCom over the merchant's edit
    assert rig.ecom_variants_of(key)[item_id]["title"] == ", ".join(attributes(rig, item_id))
    assert rig.dead_letters() == []


def test_a_combination_another_variant_holds_is_refused_with_the_reason(rig: RSeriesCatalogRig) -> None:
    synced(rig)
    key, item_id, variant = a_matrix_variant(rig)
    other_id, other = next((i, v) for i, v in rig.ecom_variants_of(key).items() if i != item_id)
    before = attributes(rig, item_id)
    pos_writes, ecom_writes = writes(rig)

    deliver(rig, "variant", rig.ecom.edit_variant(variant["id"], title=other["title"]))
    rig.drain()

    assert attributes(rig, item_id) == before
    assert writes(rig) == (pos_writes, ecom_writes)
    assert rig.dead_letters() == []
    # What the worker logs for that message ("eCom edits taken", its `edits`): the refusal and its reason.
    result = runtime.catalog_sync(rig.connection).take_ecom_edits("variant", variant["id"])
    assert result.outcome == "unchanged"
    assert f"variant {item_id} options {other['title']!r}: variant {other_id} has those values" in (
        result.taken_from_ecom
    )
    assert writes(rig) == (pos_writes, ecom_writes)


@pytest.mark.parametrize("refused", [True, False])
def test_r_series_duplicate_attribute_values_either_way_never_reach_a_put_from_the_sync(refused: bool) -> None:
    # Undocumented whether R-Series refuses a second item with one matrix's combination (contracts/rseries.json):
    # the profile checks the matrix's items first, so the sync never relies on the vendor's answer.
    sim = RSeriesSimulator(seed=3, rate_limit=False, duplicate_attributes_refused=refused)
    sim.start()
    try:
        matrix_id, (first, second) = sim.add_matrix("Tee", 10.0, [("Black", "S"), ("Black", "M")])
        client = RSeriesClient(sim.url, InMemoryRateBudget(), token=sim.issue_tokens()["access_token"])
        connection = Connection(
            connection_id="c", pos_profile="r-series", pos_base_url=sim.url, ecom_base_url="http://ecom"
        )
        catalog = RSeriesCatalog(client, connection)

        with pytest.raises(InvalidInput, match=f"item {first} of matrix {matrix_id} has them"):
            catalog.apply_edits(f"m{matrix_id}", [PosEdit(str(second), "options", ("black", "S"))])
        assert sim.item(second)["ItemAttributes"]["attribute2"] == "M"

        duplicate = {"ItemAttributes": {"attribute1": "Black", "attribute2": "S"}}
        if refused:
            with pytest.raises(UpstreamError, match="same attribute values"):
                client.update_item(second, duplicate)
        else:
            assert client.update_item(second, duplicate)["description"] == "Tee Black S"
    finally:
        sim.stop()


def test_for_x_series_an_option_edit_never_flows_back_seed_003(deployment: Deployment) -> None:
    row = {"id": 78, "title": "Black, Medium", "stockLevel": 3}
    event = ecom_webhook_event("demo", json.dumps({"variant": row}).encode())
    answer = json.loads(webhook_ingest.lambda_handler(event, LambdaContext(function_name="webhook_ingest"))["body"])

    assert answer["concern"] == "stock"  # the stock worker's copy only: no products message to take it back
    assert drain_queue(deployment.sqs, deployment.queue_url("products")) == []
