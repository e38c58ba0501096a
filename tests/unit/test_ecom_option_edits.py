"""A merchant's edit of a variant's option values in eCom (seed 000 table "Attribute Values <-> Option Values",
two-way for R-Series): eCom carries them in the variant title ("Red, M"), the only place it lets them be written.
An edited title becomes the item's new option values; our own write's echo is no edit; the POS wins when it changed
them too; values that do not fit the item, or that another variant of the family holds, are refused with the
reason."""

from __future__ import annotations

from typing import Any

from pos_ecom_sync.catalog.ecom_edits import PosEdit, edited_in_ecom, plan_ecom_edits, settled
from pos_ecom_sync.catalog.mapping import DesiredProduct, map_family
from pos_ecom_sync.catalog.shown import variant_shown
from pos_ecom_sync.models.catalog import CatalogState, EcomVariantRef, PosFamily, PosItem, VariantOption

PRODUCT_ID = 900
ECOM_IDS = {"41": 901, "42": 902}


def family(a: tuple[str, str] = ("Red", "M"), b: tuple[str, str] = ("Red", "L")) -> DesiredProduct:
    def item(pos_id: str, values: tuple[str, str]) -> PosItem:
        options = (VariantOption(name="Color", value=values[0]), VariantOption(name="Size", value=values[1]))
        return PosItem(id=pos_id, stamp=100, name=f"Tee {' '.join(values)}", options=options, price_excluding_tax=20.0)

    parent = PosItem(id="m7", stamp=100, name="Tee")
    return map_family(PosFamily(key="m7", stamp=100, parent=parent, sellable=(item("41", a), item("42", b))))


def simple() -> DesiredProduct:
    item = PosItem(id="41", stamp=100, name="Mug", price_excluding_tax=8.0)
    return map_family(PosFamily(key="41", stamp=100, parent=item, sellable=(item,)))


def rows(desired: DesiredProduct) -> list[dict[str, Any]]:
    """eCom's variant rows as eCom answered our write of `desired`."""
    return [{"id": ECOM_IDS[v.pos_id], **v.payload.ecom_body(), "image": False} for v in desired.variants]


def synced(desired: DesiredProduct) -> CatalogState:
    by_pos = {v.pos_id: row for v, row in zip(desired.variants, rows(desired), strict=True)}
    return CatalogState(
        ecom_product_id=PRODUCT_ID,
        applied_version=desired.family_version,
        product_hash=desired.content_hash,
        variants={
            v.pos_id: EcomVariantRef(
                ecom_product_id=PRODUCT_ID,
                ecom_variant_id=ECOM_IDS[v.pos_id],
                content_hash=v.content_hash,
                applied_version=v.version,
            )
            for v in desired.variants
        },
        product_shown={"title": "Tee"},
        variants_shown={pos_id: variant_shown(row) for pos_id, row in by_pos.items()},
    )


def test_an_edited_variant_title_becomes_the_items_new_option_values() -> None:
    desired = family()
    state, variants = synced(desired), rows(desired)
    variants[0]["title"] = "Red, Medium"  # the merchant renames size M in eCom

    plan = plan_ecom_edits(state, desired, None, variants)

    assert plan.edits == (PosEdit("41", "options", ("Red", "Medium")),)
    assert plan.refused == () and plan.pos_wins == ()
    assert edited_in_ecom(state, None, variants)


def test_the_echo_of_our_own_write_is_no_option_edit() -> None:
    desired = family()
    state, variants = synced(desired), rows(desired)

    assert not edited_in_ecom(state, None, variants)
    assert plan_ecom_edits(state, desired, None, variants).edits == ()


def test_the_pos_wins_when_it_changed_the_option_values_too() -> None:
    written = family()
    state, variants = synced(written), rows(written)
    variants[0]["title"] = "Red, Medium"
    now_in_pos = family(a=("Red", "Small"))  # renamed in R-Series since our last write

    plan = plan_ecom_edits(state, now_in_pos, None, variants)

    assert plan.edits == () and plan.pos_wins == ("variant 41 options",)


def test_a_title_with_more_or_fewer_values_than_the_item_has_options_is_refused_with_the_reason() -> None:
    desired = family()
    for title, reason in (("Red, M, Cotton", "3 values for the 2 options Color, Size"), ("Medium", "1 values")):
        state, variants = synced(desired), rows(desired)
        variants[0]["title"] = title

        plan = plan_ecom_edits(state, desired, None, variants)

        assert plan.edits == ()
        assert len(plan.refused) == 1 and reason in plan.refused[0] and plan.refused[0].startswith("variant 41")


def test_an_empty_option_value_is_refused() -> None:
    desired = family()
    state, variants = synced(desired), rows(desired)
    variants[0]["title"] = "Red, "

    plan = plan_ecom_edits(state, desired, None, variants)

    assert plan.edits == () and "an empty option value" in plan.refused[0]


def test_values_another_variant_holds_are_refused_naming_it() -> None:
    desired = family()
    state, variants = synced(desired), rows(desired)
    variants[0]["title"] = "red, l"  # variant 42 is "Red, L": one combination for two variants

    plan = plan_ecom_edits(state, desired, None, variants)

    assert plan.edits == ()
    assert plan.refused == ("variant 41 options 'red, l': variant 42 has those values",)
    assert "not taken: invalid for the POS" in plan.describe()


def test_two_variants_edited_into_one_combination_are_both_refused_but_a_swap_is_taken() -> None:
    desired = family()
    state, variants = synced(desired), rows(desired)
    variants[0]["title"] = variants[1]["title"] = "Blue, M"

    clash = plan_ecom_edits(state, desired, None, variants)

    assert clash.edits == () and len(clash.refused) == 2
    variants[0]["title"], variants[1]["title"] = "Red, L", "Red, M"
    swap = plan_ecom_edits(state, desired, None, variants)
    assert swap.edits == (PosEdit("41", "options", ("Red", "L")), PosEdit("42", "options", ("Red", "M")))


def test_the_same_values_spaced_differently_change_nothing_in_the_pos() -> None:
    desired = family()
    state, variants = synced(desired), rows(desired)
    variants[0]["title"] = "Red ,M"

    plan = plan_ecom_edits(state, desired, None, variants)

    assert plan.edits == () and plan.refused == ()


def test_a_simple_items_default_variant_title_edit_is_refused_it_has_no_option_values() -> None:
    desired = simple()
    written = {"id": 901, **desired.variants[0].payload.ecom_body()}
    assert written["title"] == "Default"  # eCom's title for the one variant of a product without options
    state = CatalogState(
        ecom_product_id=PRODUCT_ID,
        product_hash=desired.content_hash,
        variants={
            "41": EcomVariantRef(
                ecom_product_id=PRODUCT_ID, ecom_variant_id=901, content_hash=desired.variants[0].content_hash
            )
        },
        variants_shown={"41": variant_shown(written)},
    )

    plan = plan_ecom_edits(state, desired, None, [{**written, "title": "Large"}])

    assert plan.edits == () and "no option values" in plan.refused[0]


def test_once_the_pos_took_the_values_the_state_records_the_agreement_so_no_echo_bounces() -> None:
    before = family()
    state, variants = synced(before), rows(before)
    variants[0]["title"] = "Red, Medium"
    edits = plan_ecom_edits(state, before, None, variants).edits
    after = family(a=("Red", "Medium"))  # the POS family read again after the write

    agreed = settled(state, before, after, None, variants, edits)

    assert agreed.variants["41"].content_hash == after.variants[0].content_hash
    assert agreed.variants_shown["41"]["title"] == "Red, Medium"
    assert not edited_in_ecom(agreed, None, variants)  # eCom's echo of the edit is no longer an edit
