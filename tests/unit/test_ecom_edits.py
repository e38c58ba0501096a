"""The pure rule that turns a merchant's eCom edits into POS edits (seed 000, R-Series two-way product sync):
what counts as an edit (eCom differs from its answer to our last write), the POS winning when it changed too, and
the state that records the new agreement so neither side's echo bounces."""

from __future__ import annotations

from typing import Any

from pos_ecom_sync.catalog.ecom_edits import PosEdit, edited_in_ecom, plan_ecom_edits, settled
from pos_ecom_sync.catalog.mapping import DesiredProduct, map_family
from pos_ecom_sync.catalog.shown import product_shown, variant_shown
from pos_ecom_sync.models.catalog import CatalogState, EcomVariantRef, PosFamily, PosItem

PRODUCT_ID, VARIANT_A, VARIANT_B = 900, 901, 902


def family(
    *, name: str = "Tee", online_a: float | None = None, sku_a: str = "TEE-S", price_b: float = 20.0
) -> DesiredProduct:
    parent = PosItem(id="m7", stamp=100, name=name)
    items = (
        PosItem(id="41", stamp=100, name=f"{name} S", sku=sku_a, price_excluding_tax=20.0, online_price_excl=online_a),
        PosItem(id="42", stamp=100, name=f"{name} M", sku="TEE-M", price_excluding_tax=price_b),
    )
    return map_family(
        PosFamily(
            key="m7", stamp=100, parent=parent, sellable=items, ecom_owned=frozenset({"visibility", "description"})
        )
    )


def ecom_rows(desired: DesiredProduct) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """eCom's rows as they stand right after our write of `desired` (what eCom answered)."""
    product = {"id": PRODUCT_ID, **desired.payload.ecom_body(), "brand": False}
    ids = {"41": VARIANT_A, "42": VARIANT_B}
    variants = [{"id": ids[v.pos_id], **v.payload.ecom_body(), "image": False} for v in desired.variants]
    return product, variants


def synced_state(desired: DesiredProduct) -> CatalogState:
    product, variants = ecom_rows(desired)
    by_pos = {"41": variants[0], "42": variants[1]}
    return CatalogState(
        ecom_product_id=PRODUCT_ID,
        applied_version=desired.family_version,
        product_hash=desired.content_hash,
        variants={
            v.pos_id: EcomVariantRef(
                ecom_product_id=PRODUCT_ID,
                ecom_variant_id=int(by_pos[v.pos_id]["id"]),
                content_hash=v.content_hash,
                applied_version=v.version,
            )
            for v in desired.variants
        },
        product_shown={k: v for k, v in product_shown(product).items() if k not in ("visibility", "description")},
        variants_shown={pos_id: variant_shown(row) for pos_id, row in by_pos.items()},
    )


def merchant_sets_price(variants: list[dict[str, Any]], excl: float, tax: float = 0.15) -> None:
    """eCom's back office: the merchant types a tax-exclusive price, eCom derives the other side."""
    variants[0].update(priceExcl=excl, priceIncl=round(excl * (1 + tax), 2))


def test_an_ecom_price_edit_becomes_an_online_price_edit_of_that_item() -> None:
    desired = family()
    state = synced_state(desired)
    _, variants = ecom_rows(desired)
    merchant_sets_price(variants, 17.5)

    plan = plan_ecom_edits(state, desired, None, variants)

    assert plan.edits == (PosEdit("41", "online_price", 17.5),)
    assert edited_in_ecom(state, None, variants)


def test_a_price_typed_tax_inclusive_is_taken_as_the_tax_exclusive_price_ecom_derived() -> None:
    desired = family(price_b=18.0)
    state = synced_state(desired)
    _, variants = ecom_rows(desired)
    variants[1].update(priceIncl=23.0, priceExcl=20.0)  # typed incl 23; eCom derived excl at 15% tax

    assert plan_ecom_edits(state, desired, None, variants).edits == (PosEdit("42", "online_price", 20.0),)


def test_eCom_unchanged_since_our_write_gives_no_edit() -> None:
    desired = family()
    state = synced_state(desired)
    product, variants = ecom_rows(desired)

    assert plan_ecom_edits(state, desired, product, variants).edits == ()
    assert not edited_in_ecom(state, product, variants)


def test_the_echo_of_our_own_ecom_write_gives_no_edit() -> None:
    # The POS changed the price; we wrote it to eCom and recorded eCom's answer: its webhook re-reads the same row.
    before = family()
    state = synced_state(before)
    after = family(online_a=15.0)
    state = synced_state(after).model_copy(update={"applied_version": state.applied_version})
    product, variants = ecom_rows(after)

    assert plan_ecom_edits(state, after, product, variants).edits == ()
    assert not edited_in_ecom(state, product, variants)


def test_when_the_pos_changed_the_field_too_the_pos_wins() -> None:
    desired = family()
    state = synced_state(desired)
    _, variants = ecom_rows(desired)
    merchant_sets_price(variants, 17.5)
    pos_now = family(online_a=16.0)  # the POS's Online price changed since our last write as well

    plan = plan_ecom_edits(state, pos_now, None, variants)

    assert plan.edits == ()
    assert plan.pos_wins == ("variant 41 online_price",)


def test_a_pos_change_of_another_field_does_not_stop_the_edit() -> None:
    desired = family()
    state = synced_state(desired)
    _, variants = ecom_rows(desired)
    merchant_sets_price(variants, 17.5)

    plan = plan_ecom_edits(state, family(sku_a="TEE-S2"), None, variants)

    assert plan.edits == (PosEdit("41", "online_price", 17.5),)


def test_title_sku_and_ean_edits_name_the_family_and_the_items() -> None:
    desired = family()
    state = synced_state(desired)
    product, variants = ecom_rows(desired)
    product["title"] = "Organic Tee"
    variants[0]["sku"] = "OT-S"
    variants[1]["ean"] = "9400000000009"

    plan = plan_ecom_edits(state, desired, product, variants)

    assert set(plan.edits) == {
        PosEdit("m7", "name", "Organic Tee"),
        PosEdit("41", "sku", "OT-S"),
        PosEdit("42", "ean", "9400000000009"),
    }


def test_values_the_pos_cannot_take_are_refused_not_sent() -> None:
    desired = family()
    state = synced_state(desired)
    product, variants = ecom_rows(desired)
    product["title"] = "  "
    variants[0].update(priceExcl=0.0, priceIncl=0.0)

    plan = plan_ecom_edits(state, desired, product, variants)

    assert plan.edits == ()
    assert set(plan.refused) == {"product m7 name", "variant 41 online_price"}


def test_eCom_owned_and_one_way_fields_are_never_taken_back() -> None:
    desired = family()
    state = synced_state(desired)
    product, variants = ecom_rows(desired)
    product.update(description="Soft cotton", visibility="visible")
    variants[0].update(image={"src": "https://cdn/x.jpg"}, weight=999.0)

    assert plan_ecom_edits(state, desired, product, variants).edits == ()


def test_a_family_without_a_recorded_baseline_takes_nothing_back() -> None:
    desired = family()
    state = synced_state(desired).model_copy(update={"product_shown": {}, "variants_shown": {}})
    product, variants = ecom_rows(desired)
    product["title"] = "Other"
    merchant_sets_price(variants, 1.0)

    assert plan_ecom_edits(state, desired, product, variants).edits == ()


def test_once_the_pos_took_the_price_the_state_records_the_agreement_so_nothing_bounces() -> None:
    before = family()
    state = synced_state(before)
    _, variants = ecom_rows(before)
    merchant_sets_price(variants, 17.5)
    edits = plan_ecom_edits(state, before, None, variants).edits
    after = family(online_a=17.5)  # the POS as read again after the write

    new_state = settled(state, before, after, None, variants, edits)

    # (a) the POS feed's echo maps to `after`: its hash is recorded, so planning sends nothing to eCom;
    assert new_state.variants["41"].content_hash == after.variants[0].content_hash
    # (b) eCom's own rows are the new baseline: their webhook is no edit.
    assert plan_ecom_edits(new_state, after, None, variants).edits == ()
    assert new_state.variants["42"] == state.variants["42"]


def test_a_pos_change_pending_beside_the_edit_keeps_the_hash_so_the_plan_writes_it() -> None:
    before = family(price_b=20.0)
    state = synced_state(before)
    _, variants = ecom_rows(before)
    variants[1].update(priceExcl=25.0, priceIncl=28.75)
    edits = plan_ecom_edits(state, before, None, variants).edits
    after = family(price_b=20.0, sku_a="NEW")  # the POS also changed item 41's SKU meanwhile

    new_state = settled(state, before, after, None, variants, edits)

    assert new_state.variants["42"].content_hash == after.variants[1].content_hash
    assert new_state.variants["41"].content_hash == state.variants["41"].content_hash  # 41's change still to write


def test_a_rename_records_the_product_hash_and_the_new_title_as_shown() -> None:
    before = family()
    state = synced_state(before)
    product, variants = ecom_rows(before)
    product["title"] = "Organic Tee"  # the merchant edits the title only; fulltitle follows the name in the POS
    edits = plan_ecom_edits(state, before, product, variants).edits
    after = family(name="Organic Tee")

    new_state = settled(state, before, after, product, variants, edits)

    assert new_state.product_hash == after.content_hash
    assert new_state.product_shown["title"] == "Organic Tee"
    assert plan_ecom_edits(new_state, after, product, variants).edits == ()


def test_the_x_series_catalog_refuses_ecom_edits_seed_003() -> None:
    import pytest
    from pos_ecom_sync.errors import ConfigurationError
    from pos_ecom_sync.profiles import profile_named
    from pos_ecom_sync.profiles.xseries.catalog import XSeriesCatalog

    assert profile_named("x-series").takes_ecom_edits is False
    assert profile_named("r-series").takes_ecom_edits is True
    catalog = XSeriesCatalog(None, None)  # type: ignore[arg-type]  # never reaches the client
    with pytest.raises(ConfigurationError, match="seed 003"):
        catalog.apply_edits("p-1", [PosEdit("p-1", "online_price", 9.0)])
