"""Seed 000, brand = Manufacturer both ways, eCom -> POS: a merchant changing a product's brand in eCom (its products/
updated webhook) -> webhook_ingest (moto) -> products queue -> product_sync -> the family's R-Series manufacturer,
found by name (case-insensitive) or created (`POST Manufacturer`, KVH manufacturer.md). The echoes of that write
(the R-Series feeds re-read the restamped family and the new manufacturer) and of our own brand writes to eCom
(its products/updated) write nothing back; the POS wins when it changed the brand too; X-Series connections never
take brand edits (seed 003)."""

from __future__ import annotations

from typing import Any

from pos_ecom_sync.connectors.ecom import EcomClient
from pos_ecom_sync.ratelimit import InMemoryRateBudget

from local_stack.demo import DEMO_SECRETS
from tests.integration.conftest import Deployment
from tests.integration.test_rseries_ecom_edits import _ingest, _queued, deliver, synced, writes
from tests.integration.test_rseries_product_sync import RSeriesCatalogRig
from tests.integration.test_rseries_product_sync import rig as rig  # the R-Series + eCom + moto fixture


def later(rig: RSeriesCatalogRig) -> None:
    """The vendor's clock moves on: later stamps are newer, and its bucket drips (our budget does not wait)."""
    rig.pos.clock.sleep(60)  # type: ignore[attr-defined]


def set_brand_in_ecom(rig: RSeriesCatalogRig, product_id: int, brand_id: int | None) -> dict[str, Any]:
    """The merchant picks another brand (or none) for the product in eCom; its row as products/updated sends it."""
    ecom = EcomClient(rig.ecom.url, DEMO_SECRETS["ecom_api_key"], DEMO_SECRETS["ecom_api_secret"], InMemoryRateBudget())
    ecom.update_product(product_id, {"brand": brand_id})
    return next(p for p in rig.ecom.products() if p["id"] == product_id)


def a_family(rig: RSeriesCatalogRig, *, matrix: bool) -> tuple[str, dict[str, Any]]:
    """(family key, its eCom product) of a synced matrix or simple item."""
    item = next(i for i in rig.pos.items() if (i["itemMatrixID"] != "0") == matrix)
    key = f"m{item['itemMatrixID']}" if matrix else item["itemID"]
    product = rig.ecom_product_of(key)
    assert product is not None
    return key, product


def manufacturer_of(rig: RSeriesCatalogRig, key: str) -> str | None:
    """The name of the family's manufacturer in R-Series (the matrix's, or the simple item's)."""
    row = rig.pos.matrix(int(key[1:])) if key.startswith("m") else rig.pos.item(int(key))
    names = {m["manufacturerID"]: m["name"] for m in rig.pos.manufacturers()}
    return names.get(row["manufacturerID"])


def test_an_ecom_brand_change_becomes_the_matrix_manufacturer_created_by_name_and_its_echoes_bounce_nowhere(
    rig: RSeriesCatalogRig,
) -> None:
    synced(rig)
    key, product = a_family(rig, matrix=True)
    brand = rig.ecom.add_brand("Harbor Goods")  # the merchant makes a brand R-Series does not have
    makers = len(rig.pos.manufacturers())
    pos_writes, ecom_writes = writes(rig)

    answer = deliver(rig, "product", set_brand_in_ecom(rig, product["id"], brand["id"]))
    later(rig)
    rig.drain()

    assert answer["outcome"] == "queued"
    assert manufacturer_of(rig, key) == "Harbor Goods"
    assert len(rig.pos.manufacturers()) == makers + 1
    variants = [i for i in rig.pos.items() if i["itemMatrixID"] == key[1:]]
    assert {i["manufacturerID"] for i in variants} == {rig.pos.matrix(int(key[1:]))["manufacturerID"]}
    # R-Series: POST Manufacturer and PUT ItemMatrix; eCom: only the merchant's own change (we wrote nothing back).
    assert writes(rig) == (pos_writes + 2, ecom_writes + 1)
    assert rig.dead_letters() == []

    # The R-Series feeds bring our write back (the matrix and its variants restamped, a new Manufacturer row fanned
    # out to the family using it): the family maps to what eCom shows, so nothing is written anywhere.
    later(rig)
    rig.poll()
    later(rig)
    rig.drain()
    assert writes(rig) == (pos_writes + 2, ecom_writes + 1)
    assert rig.ecom_product_of(key)["brand"]["resource"]["id"] == brand["id"]  # type: ignore[index]
    assert rig.dead_letters() == []


def test_an_ecom_brand_change_to_a_brand_the_pos_has_reuses_its_manufacturer_whatever_the_case(
    rig: RSeriesCatalogRig,
) -> None:
    synced(rig)
    key, product = a_family(rig, matrix=False)
    other = next(m["name"] for m in rig.pos.manufacturers() if m["name"] != manufacturer_of(rig, key))
    brand = rig.ecom.add_brand(other.upper())  # eCom matches brand titles case-insensitively, so does the POS side
    makers = len(rig.pos.manufacturers())
    pos_writes, _ = writes(rig)

    deliver(rig, "product", set_brand_in_ecom(rig, product["id"], brand["id"]))
    later(rig)
    rig.drain()

    assert manufacturer_of(rig, key) == other
    assert len(rig.pos.manufacturers()) == makers  # found, not created
    assert writes(rig)[0] == pos_writes + 1  # PUT Item manufacturerID
    assert rig.dead_letters() == []


def test_clearing_the_brand_in_ecom_clears_the_manufacturer(rig: RSeriesCatalogRig) -> None:
    synced(rig)
    key, product = a_family(rig, matrix=False)
    assert manufacturer_of(rig, key) is not None

    deliver(rig, "product", set_brand_in_ecom(rig, product["id"], None))
    later(rig)
    rig.drain()

    assert rig.pos.item(int(key))["manufacturerID"] == "0"
    assert rig.dead_letters() == []


def test_our_own_brand_write_echoed_by_ecom_writes_nothing_to_the_pos(rig: RSeriesCatalogRig) -> None:
    synced(rig)
    key, _ = a_family(rig, matrix=False)
    other = next(m for m in rig.pos.manufacturers() if m["name"] != manufacturer_of(rig, key))
    rig.pos.edit_item(int(key), manufacturerID=other["manufacturerID"])  # a POS edit: the sync writes the brand
    later(rig)
    rig.sync_all()
    written = rig.ecom_product_of(key)
    assert written is not None
    assert {b["id"]: b["title"] for b in rig.ecom.brands()}[written["brand"]["resource"]["id"]] == other["name"]
    pos_writes, ecom_writes = writes(rig)

    deliver(rig, "product", written)  # eCom's products/updated for our own write
    later(rig)
    rig.drain()

    assert writes(rig) == (pos_writes, ecom_writes)
    assert manufacturer_of(rig, key) == other["name"]


def test_when_the_pos_changed_the_brand_too_the_pos_wins(rig: RSeriesCatalogRig) -> None:
    synced(rig)
    key, product = a_family(rig, matrix=False)
    names = [m for m in rig.pos.manufacturers() if m["name"] != manufacturer_of(rig, key)]
    rig.pos.edit_item(int(key), manufacturerID=names[0]["manufacturerID"])  # not synced yet
    brand = rig.ecom.add_brand("Harbor Goods")
    pos_writes, _ = writes(rig)

    deliver(rig, "product", set_brand_in_ecom(rig, product["id"], brand["id"]))
    later(rig)
    rig.drain()

    assert writes(rig)[0] == pos_writes  # the eCom brand is dropped: the POS is the system of record
    assert manufacturer_of(rig, key) == names[0]["name"]
    later(rig)
    rig.sync_all()  # the POS change has its own message: its sync writes the POS brand over the eCom edit
    written = rig.ecom_product_of(key)
    assert written is not None
    assert {b["id"]: b["title"] for b in rig.ecom.brands()}[written["brand"]["resource"]["id"]] == names[0]["name"]


def test_for_x_series_an_ecom_brand_change_never_flows_back_seed_003(deployment: Deployment) -> None:
    answer = _ingest("demo", "product", {"id": 77, "title": "Tee", "brand": {"resource": {"id": 5}}})

    assert answer["outcome"] == "ignored"
    assert _queued(deployment)["products"] == []
