"""Brand and category ids kept by a warm sandbox that eCom no longer has (`CatalogSync._send_naming`).

Through the catalog benchmark's rig (small): the X-Series and eCom simulators in-process, a virtual clock, the worker's
CatalogSync per message and one ReferenceCache for the whole run, as a warm sandbox keeps it.
"""

from __future__ import annotations

from typing import Any

import pytest
from pos_ecom_sync.errors import UpstreamError

from tests.perf import bench_catalog_import as bench


def _rig() -> bench.Bench:
    """Four families imported (categories Tops and Knitwear), their lists kept."""
    rig = bench.Bench(4, 2, reserve_share=0.3, latency_s=0.1, seed=5, redelivery="hold", indexed=True)
    rig.run_pass(None, progress=False)
    return rig


def _family(rig: bench.Bench, category: str) -> tuple[str, int]:
    """The first POS family filed under `category`: its key and its eCom product."""
    parents = (row for row in rig.pos_sim.products() if row["variant_parent_id"] is None)
    key = next(row["id"] for row in parents if row["type"]["name"] == category)
    product_id = rig.store.get_catalog_state(bench.CONNECTION_ID, key).state.ecom_product_id
    assert product_id is not None
    return key, product_id


def _categories_titled(rig: bench.Bench, title: str) -> list[int]:
    return [row["id"] for row in rig.ecom_sim.tables["categories"].values() if row["title"] == title]


def _routes(rig: bench.Bench) -> dict[str, int]:
    return dict(rig.ecom_sim.calls_by_route)


def test_a_category_deleted_in_ecom_is_made_again_when_its_family_is_next_written() -> None:
    # Given: an imported family's category is deleted in eCom (its links with it) while the list is kept
    rig = _rig()
    key, product_id = _family(rig, "Tops")
    [gone] = _categories_titled(rig, "Tops")
    tables = rig.ecom_sim.tables
    with rig.ecom_sim.lock:
        del tables["categories"][gone]
        for link in [row for row in tables["categoriesProducts"].values() if row["category"] == gone]:
            del tables["categoriesProducts"][link["id"]]
    rig.clock.sleep(2 * 60)  # the list is kept (as it was for five minutes before)
    before = _routes(rig)

    # When: the POS renames the family
    rig.pos_sim.update_family(key, name="Renamed Tee")
    rig.run_pass(None, progress=False)

    # Then: the link naming the deleted category was refused once; the list was read again, the category made anew
    # and the product filed under it (nothing raised: the rig would have)
    [made] = _categories_titled(rig, "Tops")
    assert made != gone
    assert [row["category"] for row in tables["categoriesProducts"].values() if row["product"] == product_id] == [made]
    assert tables["products"][product_id]["title"] == "Renamed Tee"
    after = _routes(rig)
    assert after["POST /{lang}/categories/products.json"] - before["POST /{lang}/categories/products.json"] == 2
    assert after["GET /{lang}/categories.json"] - before["GET /{lang}/categories.json"] == 1
    assert after["POST /{lang}/categories.json"] - before["POST /{lang}/categories.json"] == 1


def test_a_write_refused_for_another_reason_is_sent_once_more_and_then_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given: eCom refuses every product update (not for its brand, which still exists)
    rig = _rig()
    key, _ = _family(rig, "Knitwear")
    sent: list[dict[str, Any]] = []

    def refuse(product_id: int, fields: dict[str, Any]) -> dict[str, Any]:
        sent.append(fields)
        raise UpstreamError("ecom", 422, "product title is too long", "PUT", f"/en/products/{product_id}.json")

    monkeypatch.setattr(rig.ecom_catalog, "update_product", refuse)
    reads = rig.ecom_sim.calls_by_route["GET /{lang}/brands.json"]

    # When: the POS renames the family
    rig.pos_sim.update_family(key, name="Renamed Sweater")

    # Then: the update went twice (the second time from a fresh brand list, which still holds the brand) and eCom's
    # refusal is the answer, parked by the worker as before
    with pytest.raises(UpstreamError, match="too long"):
        rig.run_pass(None, progress=False)
    assert len(sent) == 2 and sent[0]["brand"] == sent[1]["brand"]
    assert rig.ecom_sim.calls_by_route["GET /{lang}/brands.json"] - reads == 1
