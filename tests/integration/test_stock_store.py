"""StockStore against moto: conditional saves, the applied outlets, and chunks walked over the catalog's links."""

from __future__ import annotations

import boto3
import pytest
from pos_ecom_sync.errors import Conflict, InvalidInput
from pos_ecom_sync.models.catalog import CatalogState, EcomVariantRef, StoredCatalogState
from pos_ecom_sync.models.stock import AppliedOutlets, OutletLevel, StockEntry, VariantStockState
from pos_ecom_sync.state.stock_store import StockStore
from pos_ecom_sync.state.store import SyncStore


@pytest.fixture
def stores(sync_table: str) -> tuple[StockStore, SyncStore]:
    resource = boto3.resource("dynamodb", region_name="us-east-1")
    return StockStore(sync_table, resource=resource), SyncStore(sync_table, resource=resource)


def state(pos_id: str, revision: int, level: int = 3) -> VariantStockState:
    return VariantStockState(
        product_id=pos_id, levels={"o1": OutletLevel(level=level, version=revision)}, revision=revision
    )


def test_a_state_is_saved_only_from_the_revision_it_was_read_at(stores: tuple[StockStore, SyncStore]) -> None:
    stock, _ = stores
    assert stock.get_stock("shop", "p1") == VariantStockState(product_id="p1")

    stock.save_stock("shop", 0, state("p1", 1))
    with pytest.raises(Conflict):
        stock.save_stock("shop", 0, state("p1", 2))  # someone else created it first
    stock.save_stock("shop", 1, state("p1", 2, level=7))
    with pytest.raises(Conflict):
        stock.save_stock("shop", 1, state("p1", 3))  # read at 1, but it is at 2 now
    with pytest.raises(InvalidInput):
        stock.save_stock("shop", 2, state("p1", 2))

    assert stock.get_stock("shop", "p1") == state("p1", 2, level=7)
    assert stock.get_stock("other", "p1") == VariantStockState(product_id="p1")


def test_applied_outlets_move_only_from_what_was_read(stores: tuple[StockStore, SyncStore]) -> None:
    stock, _ = stores
    never = stock.get_applied_outlets("shop")
    assert never == AppliedOutlets()

    first = stock.save_applied_outlets("shop", never, ["o2", "o1", "o1"], "o1")
    assert first == AppliedOutlets(("o1", "o2"), "o1", 1) == stock.get_applied_outlets("shop")
    with pytest.raises(Conflict):
        stock.save_applied_outlets("shop", never, ["o1"], None)
    assert stock.save_applied_outlets("shop", first, ["o1"], None) == AppliedOutlets(("o1",), None, 2)


def test_chunks_walk_every_linked_variant_once_in_id_order_with_its_state(stores: tuple[StockStore, SyncStore]) -> None:
    stock, catalog = stores
    ids = [f"p{n:03d}" for n in range(23)]
    for family in range(0, 23, 5):
        members = ids[family : family + 5]
        refs = {p: EcomVariantRef(ecom_product_id=family, ecom_variant_id=1000 + ids.index(p)) for p in members}
        new = CatalogState(ecom_product_id=family, variants=refs)
        catalog.save_catalog_state("shop", f"f{family}", StoredCatalogState(CatalogState(), 0), new)
    for pos_id in ids[::3]:
        stock.save_stock("shop", 0, state(pos_id, 1))
    catalog.save_catalog_state(  # another connection's links are never walked
        "other", "f", StoredCatalogState(CatalogState(), 0), CatalogState(variants={"zz": refs[ids[-1]]})
    )

    walked: list[StockEntry] = []
    sizes: list[int] = []
    after: str | None = None
    while True:
        chunk = stock.stock_chunk("shop", after, 5)
        sizes.append(len(chunk.entries))
        walked += chunk.entries
        if chunk.next_after is None:
            break
        after = chunk.next_after

    assert [e.pos_product_id for e in walked] == ids
    assert sizes == [5, 5, 5, 5, 3]
    assert all(e.ecom_variant_id == 1000 + ids.index(e.pos_product_id) for e in walked)
    assert [e.pos_product_id for e in walked if e.state.revision] == ids[::3]
    assert stock.stock_chunk("shop", ids[-1], 5).entries == ()
