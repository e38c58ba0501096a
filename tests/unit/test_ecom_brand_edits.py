"""The eCom brand as an edit that flows back to the POS (seed 000, brand = Manufacturer both ways; pure rules of
`catalog.ecom_edits`): which eCom brands a plan needs titles of, the brand edit by title, "" for none, the POS
winning when its brand changed too, an unknown title refused, and the agreement recorded only when the POS family
then carries the brand."""

from __future__ import annotations

from typing import Any

from pos_ecom_sync.catalog.ecom_edits import PosEdit, brand_ids, edited_in_ecom, plan_ecom_edits, settled
from pos_ecom_sync.catalog.mapping import DesiredProduct, map_family
from pos_ecom_sync.catalog.shown import product_shown
from pos_ecom_sync.models.catalog import CatalogState, EcomOwnedField, PosFamily, PosItem

PRODUCT_ID, DOCKSIDE, HARBOR = 900, 31, 32
OWNED: frozenset[EcomOwnedField] = frozenset({"visibility", "description"})


def family(*, brand: str | None = "Dockside", name: str = "Tee") -> DesiredProduct:
    parent = PosItem(id="41", stamp=100, name=name, sku="TEE", price_excluding_tax=20.0, brand=brand)
    return map_family(PosFamily(key="41", stamp=100, parent=parent, sellable=(parent,), ecom_owned=OWNED))


def ecom_product(desired: DesiredProduct, brand: int | None = DOCKSIDE) -> dict[str, Any]:
    relation: Any = {"resource": {"id": brand, "url": "brands/x", "link": "..."}} if brand else False
    return {"id": PRODUCT_ID, **desired.payload.ecom_body(), "brand": relation}


def synced_state(desired: DesiredProduct) -> CatalogState:
    shown = product_shown(ecom_product(desired))
    return CatalogState(
        ecom_product_id=PRODUCT_ID,
        applied_version=desired.family_version,
        product_hash=desired.content_hash,
        product_shown={k: v for k, v in shown.items() if k not in OWNED},
    )


def test_a_brand_changed_in_ecom_is_a_brand_edit_by_title() -> None:
    desired = family()
    state = synced_state(desired)
    product = ecom_product(desired, HARBOR)

    assert edited_in_ecom(state, product, [])
    assert brand_ids(state, desired, product) == {HARBOR}  # the POS is as we wrote it: the old title is not needed
    plan = plan_ecom_edits(state, desired, product, [], {HARBOR: " Harbor Goods "})
    assert plan.edits == (PosEdit("41", "brand", "Harbor Goods"),)


def test_a_brand_removed_in_ecom_clears_the_pos_brand() -> None:
    desired = family()
    state = synced_state(desired)

    plan = plan_ecom_edits(state, desired, ecom_product(desired, None), [], {})

    assert plan.edits == (PosEdit("41", "brand", ""),)


def test_a_brand_whose_title_is_unknown_is_refused() -> None:
    desired = family()
    state = synced_state(desired)

    plan = plan_ecom_edits(state, desired, ecom_product(desired, HARBOR), [])

    assert plan.edits == () and plan.refused == ("product 41 brand",)


def test_when_the_pos_brand_changed_too_the_pos_wins() -> None:
    state = synced_state(family())
    pos_now = family(brand="Northwind")
    product = ecom_product(family(), HARBOR)

    assert brand_ids(state, pos_now, product) == {HARBOR, DOCKSIDE}  # the title our write left is asked too
    plan = plan_ecom_edits(state, pos_now, product, [], {HARBOR: "Harbor Goods", DOCKSIDE: "Dockside"})
    assert plan.edits == () and plan.pos_wins == ("product 41 brand",)
    # Without the title of the brand our write left, the POS wins too (it is the system of record).
    assert plan_ecom_edits(state, pos_now, product, [], {HARBOR: "Harbor Goods"}).pos_wins == ("product 41 brand",)


def test_a_pos_change_of_another_product_field_does_not_stop_a_brand_edit() -> None:
    state = synced_state(family())
    pos_now = family(name="Organic Tee")  # the name changed in the POS; the brand is still the one we wrote
    product = ecom_product(family(), HARBOR)

    plan = plan_ecom_edits(state, pos_now, product, [], {HARBOR: "Harbor Goods", DOCKSIDE: "DOCKSIDE"})

    assert plan.edits == (PosEdit("41", "brand", "Harbor Goods"),)


def test_our_own_brand_write_echoed_gives_no_edit_and_needs_no_title() -> None:
    desired = family(brand="Harbor Goods")
    state = synced_state(desired).model_copy(update={"product_shown": product_shown(ecom_product(desired, HARBOR))})
    product = ecom_product(desired, HARBOR)

    assert not edited_in_ecom(state, product, [])
    assert brand_ids(state, desired, product) == frozenset()
    assert plan_ecom_edits(state, desired, product, []).edits == ()


def test_once_the_pos_carries_the_brand_the_state_records_the_agreement() -> None:
    before = family()
    state = synced_state(before)
    product = ecom_product(before, HARBOR)
    edits = [PosEdit("41", "brand", "Harbor Goods")]

    taken = settled(state, before, family(brand="harbor goods"), product, [], edits)
    not_taken = settled(state, before, before, product, [], edits)

    assert taken.product_hash == family(brand="harbor goods").content_hash
    assert taken.product_shown["brand"] == HARBOR
    assert not_taken == state  # the POS does not show the brand: the next plan writes what differs
