"""Reconciliation rules: what counts as drift, and how a run starts, moves through its phases and resumes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pos_ecom_sync.models.catalog import CatalogState, EcomVariantRef, FamilyRow
from pos_ecom_sync.models.links import VariantLink
from pos_ecom_sync.models.reconcile import ReconcileCheckpoint
from pos_ecom_sync.models.stock import OutletLevel, VariantStockState, WriteClaim
from pos_ecom_sync.profiles.xseries.catalog_walk import family_row
from pos_ecom_sync.reconcile.rules import (
    DRIFT_KINDS,
    advance,
    catalog_drift,
    count_by_kind,
    gone_variants,
    next_due,
    order_drift,
    product_content_drift,
    run_step,
    start_run,
    stock_drift,
    stock_finding,
    variant_content_drift,
)

NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
CREATED = NOW - timedelta(days=30)
DAY = timedelta(hours=24)


def _row(row_id: str, version: int, parent: str | None = None, deleted: bool = False) -> FamilyRow:
    """An X-Series product row as the compare reads it (through the X-Series profile)."""
    return family_row(
        {
            "id": row_id,
            "version": version,
            "variant_parent_id": parent,
            "deleted_at": "2026-11-20T10:00:00+00:00" if deleted else None,
        }
    )


def _synced(applied: int, product_id: int | None = 500) -> CatalogState:
    variants = {"v1": EcomVariantRef(ecom_product_id=product_id, ecom_variant_id=900)} if product_id else {}
    return CatalogState(ecom_product_id=product_id, applied_version=applied, variants=variants)


# -- run and checkpoint ---------------------------------------------------------------------------------------------


def test_a_new_connection_is_first_reconciled_one_interval_after_it_was_created() -> None:
    # Given: a connection created an hour ago, never reconciled (its initial import is the poller's)
    blank = ReconcileCheckpoint()
    created = NOW - timedelta(hours=1)

    # Then: no run yet; one is due a day after the creation
    assert run_step(blank, NOW, DAY, created) == "idle"
    assert next_due(blank, DAY, created) == created + DAY
    assert run_step(blank, created + DAY, DAY, created) == "start"


def test_a_run_starts_once_the_last_completed_run_is_older_than_the_interval() -> None:
    done = ReconcileCheckpoint(run_id="r1", phase="done", completed_at=NOW - timedelta(hours=23), revision=9)

    assert run_step(done, NOW, DAY, CREATED) == "idle"
    assert run_step(done, NOW + timedelta(hours=1), DAY, CREATED) == "start"


def test_an_unfinished_run_continues_whatever_the_interval_and_force_starts_over() -> None:
    unfinished = ReconcileCheckpoint(run_id="r1", phase="variants", cursor="880100", revision=4)

    assert run_step(unfinished, NOW, DAY, CREATED) == "continue"
    assert run_step(unfinished, NOW, timedelta(0), CREATED) == "continue"
    assert run_step(unfinished, NOW, DAY, CREATED, force=True) == "start"


def test_a_new_run_begins_at_the_catalog_with_an_order_window_never_before_the_connection() -> None:
    previous = ReconcileCheckpoint(run_id="r1", completed_at=NOW - DAY, drift={"stock_differs": 3}, revision=7)

    run = start_run(previous, "r2", NOW, timedelta(hours=48), CREATED)
    young = start_run(previous, "r2", NOW, timedelta(hours=48), NOW - timedelta(hours=2))

    assert (run.run_id, run.phase, run.cursor, run.revision) == ("r2", "catalog", None, 8)
    assert run.drift == {} and run.pages == {}
    assert run.orders_since == NOW - timedelta(hours=48)
    assert young.orders_since == NOW - timedelta(hours=2)
    assert run.completed_at == previous.completed_at  # the last completed run still counts until this one ends


def test_the_checkpoint_moves_page_by_page_then_phase_by_phase_to_done() -> None:
    run = start_run(ReconcileCheckpoint(), "r1", NOW, DAY, CREATED)
    found = catalog_drift([_row("p1", 12)], {"p1": _synced(10)})

    step1 = advance(run, NOW, cursor="120", phase_finished=False, found=found)
    step2 = advance(step1, NOW, cursor="120", phase_finished=True)
    products = advance(step2, NOW, cursor=None, phase_finished=True)
    step3 = advance(products, NOW, cursor=None, phase_finished=True)
    step4 = advance(step3, NOW + timedelta(minutes=5), cursor="2", phase_finished=False)
    done = advance(step4, NOW + timedelta(minutes=6), cursor=None, phase_finished=True)

    assert (step1.phase, step1.cursor, step1.drift) == ("catalog", "120", {"catalog_outdated": 1})
    assert (step2.phase, step2.cursor) == ("products", None)  # a new phase starts from its beginning
    assert (products.phase, products.cursor) == ("variants", None)
    assert (step3.phase, step4.phase, step4.cursor) == ("orders", "orders", "2")
    assert done.phase == "done" and done.completed_at == NOW + timedelta(minutes=6)
    assert done.pages == {"catalog": 2, "products": 1, "variants": 1, "orders": 2}
    assert [s.revision for s in (run, step1, step2, products, step3, step4, done)] == [1, 2, 3, 4, 5, 6, 7]
    with pytest.raises(ValueError, match="no reconciliation run"):
        advance(done, NOW, cursor=None, phase_finished=True)


# -- catalog ----------------------------------------------------------------------------------------------------------


def test_a_family_whose_pos_version_is_newer_than_the_applied_one_is_outdated() -> None:
    rows = [_row("p1", 10), _row("v1", 14, parent="p1"), _row("p2", 20), _row("v2", 19, parent="p2")]
    states = {"p1": _synced(12), "p2": _synced(20)}

    [drift] = catalog_drift(rows, states)

    assert (drift.kind, drift.concern, drift.entity, drift.entity_id, drift.group_key) == (
        "catalog_outdated",
        "products",
        "product",
        "p1",
        "p1",
    )
    assert drift.version == 14
    message = drift.message("shop", NOW)
    assert message.via == "reconcile" and message.source == "pos" and message.message_group_id == "shop:pos:product:p1"


def test_a_live_family_never_created_in_ecom_is_missing_but_a_deleted_one_is_not() -> None:
    rows = [_row("p3", 5), _row("v3", 6, parent="p3"), _row("p4", 7, deleted=True), _row("v4", 8, "p4", deleted=True)]

    found = catalog_drift(rows, {})

    assert [(d.kind, d.entity_id) for d in found] == [("catalog_missing", "p3")]


def test_a_family_hidden_after_a_pos_delete_or_fully_applied_needs_nothing() -> None:
    hidden = CatalogState(ecom_product_id=501, applied_version=30, deleted_in_pos=True)
    rows = [_row("p5", 30, deleted=True), _row("p6", 8)]

    assert catalog_drift(rows, {"p5": hidden, "p6": _synced(8)}) == []


def test_a_family_unlinked_after_a_hand_delete_in_ecom_is_left_out_until_the_operator_relinks_it() -> None:
    unlinked = CatalogState(applied_version=30, unlinked_reason="deleted by hand in eCom")

    assert catalog_drift([_row("p7", 31)], {"p7": unlinked}) == []
    assert [d.kind for d in catalog_drift([_row("p7", 31)], {"p7": CatalogState()})] == ["catalog_missing"]


def test_a_family_seen_only_through_a_deleted_variant_on_this_page_is_left_to_its_live_rows() -> None:
    # The parent is on another page; a deleted variant alone says nothing about a family never created.
    assert catalog_drift([_row("v9", 40, parent="p9", deleted=True)], {}) == []


# -- stock -------------------------------------------------------------------------------------------------------------


def _stock(last_written: int | None, *, ecom_id: int | None = 900, **changes: Any) -> VariantStockState:
    levels = {"o1": OutletLevel(level=4, version=1), "o2": OutletLevel(level=-2, version=1)}
    return VariantStockState(
        product_id="v1", ecom_variant_id=ecom_id, levels=levels, last_written=last_written, **changes
    )


def test_an_ecom_level_other_than_the_total_we_last_wrote_is_stock_drift() -> None:
    assert stock_finding(_stock(4), 900, 9, ["o1", "o2"]) == "stock_differs"
    assert stock_finding(_stock(4), 900, 4, ["o1", "o2"]) is None


def test_without_a_confirmed_write_the_levels_we_hold_give_the_expected_total() -> None:
    assert stock_finding(_stock(None), 900, 4, ["o1", "o2"]) is None  # 4 + max(0, -2)
    assert stock_finding(_stock(None), 900, 7, ["o1", "o2"]) == "stock_differs"
    assert stock_finding(_stock(None), 900, 7, []) is None  # default outlet: nothing to compare with


def test_a_variant_the_stock_worker_never_settled_is_queued_and_one_with_a_write_in_flight_is_not() -> None:
    claim = WriteClaim(revision=3, level=4, claimed_at=0.0)

    assert stock_finding(_stock(None, ecom_id=None), 900, 0, ["o1"]) == "stock_unsettled"
    assert stock_finding(_stock(4, ecom_id=900, claims=(claim,)), 900, 9, ["o1"]) is None
    assert stock_finding(_stock(4), 900, None, ["o1"]) is None  # no level shown


def test_stock_drift_goes_to_the_stock_worker_as_an_ecom_variant_change_without_a_stamp() -> None:
    links = {900: VariantLink("v1", "p1", 500, 900)}
    rows = [
        {"id": 900, "stockLevel": 12, "updatedAt": "2026-11-22T08:00:00+00:00"},
        {"id": 901, "stockLevel": 3},  # added by the merchant in eCom: not ours
    ]

    [drift] = stock_drift(rows, links, {"v1": _stock(4)}, ["o1", "o2"])

    message = drift.message("shop", NOW)
    assert (message.concern, message.source, message.entity, message.entity_id) == ("stock", "ecom", "variant", "900")
    assert message.payload["stockLevel"] == 12 and message.updated_at is None  # never taken for an old echo
    assert drift.delivery_key("r1") != drift.delivery_key("r2")


def test_linked_variants_missing_from_the_range_a_page_covered_are_gone_once_per_family() -> None:
    links = {
        10: VariantLink("a1", "pa", 1, 10),
        11: VariantLink("a2", "pa", 1, 11),
        12: VariantLink("a3", "pa", 1, 12),
        30: VariantLink("b1", "pb", 2, 30),
        50: VariantLink("c1", "pc", 3, 50),
    }
    ids = sorted(links)

    page = gone_variants(links, ids, seen=[10, 30], after=None, upto=30)
    end = gone_variants(links, ids, seen=[], after=30, upto=None)  # the empty last page covers the rest

    assert [(d.kind, d.entity_id, d.payload["ecom_variant_ids"]) for d in page] == [("variant_gone", "pa", [11, 12])]
    assert [(d.entity_id, d.concern) for d in end] == [("pc", "products")]


# -- orders ------------------------------------------------------------------------------------------------------------


def test_a_recent_order_the_ledger_shows_neither_imported_nor_held_is_queued_for_import() -> None:
    orders = [
        {"id": 1, "updatedAt": "2026-11-22T08:00:00+00:00"},
        {"id": 2},
        {"id": 3},
        {"id": 4},
    ]
    statuses = {2: "imported", 3: "held", 4: "importing"}

    found = order_drift(orders, statuses)

    assert [(d.entity_id, d.concern, d.entity) for d in found] == [("1", "orders", "order"), ("4", "orders", "order")]
    assert found[0].message("shop", NOW).updated_at == "2026-11-22T08:00:00+00:00"


def test_counts_name_every_kind() -> None:
    found = catalog_drift([_row("p3", 5)], {}) + order_drift([{"id": 1}], {})

    counts = count_by_kind(found)

    assert set(counts) == set(DRIFT_KINDS)
    assert counts["catalog_missing"] == counts["order_missing"] == 1 and sum(counts.values()) == 2


# -- content -----------------------------------------------------------------------------------------------------------


def _shown_family(**update: Any) -> CatalogState:
    """Family p1: eCom product 500 with our variant 900 (POS v1), eCom's answers to our last writes recorded."""
    state = _synced(10).model_copy(
        update={
            "product_shown": {"title": "Tee", "fulltitle": "Tee", "description": "Soft", "visibility": "visible"},
            "main_image": "https://cdn.ecom/1/tee.jpg",
            "variants_shown": {"v1": {"title": "M", "sku": "TEE-M", "priceIncl": 20.0, "priceExcl": 16.5289}},
        }
    )
    return state.model_copy(update=update)


def _product(**fields: Any) -> dict[str, Any]:
    row = {"id": 500, "title": "Tee", "fulltitle": "Tee", "description": "Soft", "visibility": "visible"}
    return row | {"image": {"src": "https://cdn.ecom/1/tee.jpg", "title": "tee"}, "subtitle": "", **fields}


def _variant(**fields: Any) -> dict[str, Any]:
    row = {"id": 900, "title": "M", "sku": "TEE-M", "priceIncl": 20, "priceExcl": 16.5289, "oldPriceIncl": 0}
    return row | {"stockAlert": 0, "stockMinimum": 0, **fields}


def test_a_product_as_we_left_it_is_no_drift_and_an_edited_pos_owned_field_is() -> None:
    states = {"p1": _shown_family()}

    assert product_content_drift([_product()], {500: "p1"}, states) == []
    found = product_content_drift([_product(title="Tee SALE", visibility="hidden")], {500: "p1"}, states)

    assert [(d.kind, d.entity_id, d.concern) for d in found] == [("catalog_content", "p1", "products")]
    assert found[0].payload["fields"] == ["title", "visibility"]


def test_ecom_owned_fields_a_merchant_product_and_an_unknown_field_are_never_drift() -> None:
    states = {"p1": _shown_family()}
    owned = _product(subtitle="Now 20% off", content="<p>Story</p>")
    partial = {"id": 500, "title": "Tee"}  # a row without the other fields: unknown, not empty

    assert product_content_drift([owned, partial, _product(id=777, title="Gift card")], {500: "p1"}, states) == []
    assert variant_content_drift([_variant(oldPriceIncl=25.0, stockAlert=3, stockMinimum=1)], _links(), states) == []


def test_a_replaced_main_image_is_drift_of_its_family() -> None:
    states = {"p1": _shown_family()}

    found = product_content_drift([_product(image={"src": "https://cdn.ecom/9/other.jpg"})], {500: "p1"}, states)
    removed = product_content_drift([_product(image=False)], {500: "p1"}, states)

    assert found[0].payload["fields"] == ["image"] and removed[0].payload["fields"] == ["image"]


def _links() -> dict[int, VariantLink]:
    return {900: VariantLink("v1", "p1", 500, 900)}


def test_an_edited_variant_price_or_title_is_drift_and_a_merchant_added_variant_is_not() -> None:
    states = {"p1": _shown_family()}
    rows = [_variant(priceIncl=9.99, title="M (sale)"), _variant(id=901, title="XL", sku="")]

    found = variant_content_drift(rows, _links(), states)

    assert [(d.kind, d.entity_id) for d in found] == [("catalog_content", "p1")]
    assert found[0].payload["fields"] == {"900": ["title", "priceIncl"]}


@pytest.mark.parametrize(
    "update",
    [{"deleted_in_pos": True}, {"unlinked_reason": "deleted in eCom"}, {"ecom_product_id": 501}],
    ids=["hidden for a POS delete", "unlinked by the operator's policy", "another product now"],
)
def test_content_of_a_family_not_live_in_this_product_is_not_compared(update: dict[str, Any]) -> None:
    states = {"p1": _shown_family(**update)}

    assert product_content_drift([_product(title="x", visibility="hidden")], {500: "p1"}, states) == []
    assert variant_content_drift([_variant(priceIncl=1.0)], _links(), states) == []
