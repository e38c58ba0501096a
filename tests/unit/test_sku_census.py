"""The SKU census (`catalog.census`): a product create skips its eCom SKU lookup only when eCom held no such SKU.

First the census alone against a list of eCom variants paged by `since_id`; then whole imports through the in-process
simulators (the catalog benchmark's rig, small), run with and without the census, which must end in the same eCom
and the same links: the census saves reads, never changes what the import does.
"""

from __future__ import annotations

from typing import Any

import pytest
from pos_ecom_sync.catalog.census import PAGE, SkuCensus
from pos_ecom_sync.catalog.mapping import DesiredProduct
from pos_ecom_sync.profiles.xseries.mapping import PosProduct

from tests.perf import bench_catalog_import as bench
from tests.support import ManualClock, map_xseries_family

TTL_S = 300.0


class Variants:
    """eCom's variants as `GET variants.json?since_id=&limit=` pages them (ids ascending); counts the reads."""

    def __init__(self, skus: list[str], *, ignores_since_id: bool = False) -> None:
        self.rows: list[dict[str, Any]] = []
        self.ignores_since_id = ignores_since_id
        self.reads = 0
        for sku in skus:
            self.add(sku)

    def add(self, sku: str) -> None:
        self.rows.append({"id": 1000 + len(self.rows), "sku": sku})

    def list_variants_since(self, since_id: int | None, limit: int = PAGE) -> list[dict[str, Any]]:
        self.reads += 1
        after = 0 if since_id is None or self.ignores_since_id else since_id
        return [row for row in self.rows if row["id"] > after][:limit]


def test_an_empty_shop_costs_one_read_and_then_no_lookup() -> None:
    ecom, clock = Variants([]), ManualClock()
    census = SkuCensus(TTL_S, clock)
    assert census.may_hold("A-1", ecom)  # the walk is not complete before this read: the caller looks it up
    assert ecom.reads == 1 and census.trusted
    assert not census.may_hold("A-1", ecom)
    assert not census.may_hold("B-1", ecom)
    assert ecom.reads == 1


def test_a_shop_walk_is_paid_one_page_per_create_and_then_answers_for_every_sku_it_holds() -> None:
    skus = [f"M-{n}" for n in range(2 * PAGE + 10)]  # three pages, the last short
    ecom, clock = Variants(skus), ManualClock()
    census = SkuCensus(TTL_S, clock)
    answers = [census.may_hold("absent", ecom) for _ in range(3)]
    assert answers == [True, True, True]  # each of these creates made its own lookup meanwhile
    assert ecom.reads == 3 and census.trusted
    assert all(census.may_hold(sku, ecom) for sku in skus)
    assert not census.may_hold("absent", ecom)
    assert ecom.reads == 3


def test_a_variant_created_in_ecom_after_the_walk_is_seen_once_the_ttl_passed() -> None:
    ecom, clock = Variants(["M-1"]), ManualClock()
    census = SkuCensus(TTL_S, clock)
    census.may_hold("X", ecom)
    ecom.add("LATE-1")  # the merchant's, in the back office
    clock.now = TTL_S - 1
    assert not census.may_hold("LATE-1", ecom)  # within the lists' freshness: not read yet
    clock.now = TTL_S
    assert census.may_hold("LATE-1", ecom)
    assert ecom.reads == 2  # one tail read from the highest id seen
    assert not census.may_hold("OTHER", ecom) and ecom.reads == 2


def test_skus_we_write_count_at_once() -> None:
    ecom, clock = Variants([]), ManualClock()
    census = SkuCensus(TTL_S, clock)
    census.may_hold("X", ecom)
    census.note("OURS-1")
    census.note(None)
    assert census.may_hold("OURS-1", ecom)
    assert not census.may_hold("", ecom)


def test_when_ecom_ignores_since_id_every_create_looks_its_sku_up() -> None:
    ecom, clock = Variants(["M-1"], ignores_since_id=True), ManualClock()
    census = SkuCensus(TTL_S, clock)
    census.may_hold("X", ecom)
    clock.now = TTL_S
    assert census.may_hold("absent", ecom)  # the tail came back from the start: never trusted again
    assert not census.trusted
    reads = ecom.reads
    assert census.may_hold("absent", ecom) and ecom.reads == reads


# -- whole imports, with and without the census ---------------------------------------------------------------


class NoCensus(SkuCensus):
    """Every create looks its SKU up (the behaviour before the census)."""

    def may_hold(self, sku: str, ecom: Any) -> bool:
        return True


def _first_skus(rig: bench.Bench) -> list[str]:
    """Each POS family's first SKU (what a create looks up), in feed order."""
    rows = [PosProduct.model_validate(r) for r in rig.pos_sim.tables["products"].rows.values()]
    families: dict[str, list[PosProduct]] = {}
    for row in rows:
        families.setdefault(row.variant_parent_id or row.id, []).append(row)
    skus = []
    for members in families.values():
        parent = next(r for r in members if r.variant_parent_id is None)
        desired: DesiredProduct = map_xseries_family(parent, [r for r in members if r.id != parent.id])
        skus.append(desired.lookup_skus[0])
    return skus


def _import(monkeypatch: pytest.MonkeyPatch, *, census: bool) -> tuple[bench.Bench, list[int], int, int]:
    """A 12-family import into a shop where the merchant already sells 3 of the POS's SKUs (and one other product),
    then the unchanged feed again. Returns the rig, the merchant's product ids, and both passes' eCom writes."""
    monkeypatch.setattr("pos_ecom_sync.catalog.sync.SkuCensus", SkuCensus if census else NoCensus)
    rig = bench.Bench(12, 3, reserve_share=0.3, latency_s=0.1, seed=5, redelivery="hold", indexed=True)
    merchant = rig.ecom_stock
    theirs = []
    for sku in [*_first_skus(rig)[2:8:2], "MERCHANT-ONLY"]:
        product = merchant.create_product({"title": f"Merchant's {sku}"})
        merchant.create_variant({"product": product["id"], "sku": sku})
        theirs.append(int(product["id"]))
    first = rig.run_pass(None, progress=False)
    rig.restart_feed()
    second = rig.run_pass(None, progress=False)
    return rig, theirs, first.ecom_writes, second.ecom_writes


def _outcome(rig: bench.Bench) -> tuple[Any, ...]:
    """What the import left: every eCom product and variant (ids and the fields we write) and every family's link."""
    sim = rig.ecom_sim
    products = sorted((p["id"], p["title"]) for p in sim.tables["products"].values())
    variants = sorted((v["id"], v["product"], v.get("sku"), v.get("title")) for v in sim.tables["variants"].values())
    links = sorted(
        (key, state.ecom_product_id, tuple(sorted((p, r.ecom_variant_id) for p, r in state.variants.items())))
        for key in rig.store.items
        for state in [rig.store.get_catalog_state(bench.CONNECTION_ID, key).state]
    )
    return products, variants, links


def test_an_import_with_the_census_links_the_merchants_products_as_lookups_did_and_a_rerun_writes_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with_census, theirs, writes, rerun_writes = _import(monkeypatch, census=True)
    plain, plain_theirs, plain_writes, plain_rerun = _import(monkeypatch, census=False)

    assert _outcome(with_census) == _outcome(plain)
    assert (theirs, writes, rerun_writes) == (plain_theirs, plain_writes, plain_rerun)
    assert rerun_writes == 0
    # The merchant's three products carry three of our families, and no SKU is in two products.
    store = with_census.store
    linked = {store.get_catalog_state(bench.CONNECTION_ID, key).state.ecom_product_id for key in store.items}
    assert set(theirs[:3]) <= linked and theirs[3] not in linked
    skus = [v["sku"] for v in with_census.ecom_sim.tables["variants"].values() if v.get("sku")]
    assert len(skus) == len(set(skus))
    # ... with fewer SKU lookups: without the census all 12 families look theirs up (plus one listing of each
    # merchant's product's variants, to adopt them); with it the walk's one page, the first create's own lookup (made
    # before the walk was complete) and the three the merchant holds.
    lookups = with_census.ecom_sim.calls_by_route["GET /{lang}/variants.json"]
    plain_lookups = plain.ecom_sim.calls_by_route["GET /{lang}/variants.json"]
    assert (plain_lookups, lookups) == (12 + 3, 1 + 1 + 3 + 3)
