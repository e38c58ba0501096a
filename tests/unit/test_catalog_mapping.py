"""Catalog mapping POS -> eCom, field by field, from X-Series rows shaped as X20 `Product` (contracts/xseries.json)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pos_ecom_sync.catalog.actions import CreateVariant, HideProduct
from pos_ecom_sync.catalog.mapping import (
    ECOM_OWNED_FIELDS,
    DesiredProduct,
    content_hash,
)
from pos_ecom_sync.profiles.xseries.mapping import PosProduct, online_price_entries

from tests.support import map_xseries_family

PARENT_ROW: dict[str, Any] = {
    "id": "0a1b0000-aaaa-11ee-8c90-000000000001",
    "name": "Harbor Tee",
    "variant_name": "Harbor Tee",
    "handle": "harbortee",
    "sku": "HT-PARENT",
    "has_variants": True,
    "variant_count": 2,
    "variant_parent_id": None,
    "variant_options": [],
    "active": True,
    "is_active": True,
    "has_inventory": True,
    "is_composite": False,
    "price_including_tax": 35.0,
    "price_excluding_tax": 30.43478,
    "supply_price": 12.0,
    "product_codes": [{"type": "CUSTOM", "code": "HT-PARENT"}],
    "brand": {"id": "0a1b0000-bbbb-11ee-8c90-000000000001", "name": "Dockside"},
    "product_type_id": "cat-1",
    "type": {"id": "cat-1", "name": "Tees"},
    "description": "<p>Heavy cotton.</p>",
    "tag_ids": [],
    "categories": [],
    "images": [],
    "source": "USER",
    "created_at": "2024-03-01T10:00:00+00:00",
    "updated_at": "2024-05-02T08:15:00+00:00",
    "deleted_at": None,
    "version": 8812345001,
}
VARIANT_ROW: dict[str, Any] = {
    "id": "0a1b0000-aaaa-11ee-8c90-000000000002",
    "name": "Harbor Tee",
    "variant_name": "Harbor Tee / Navy / M",
    "handle": "harbortee",
    "sku": "HT-NAVY-M",
    "has_variants": False,
    "variant_parent_id": "0a1b0000-aaaa-11ee-8c90-000000000001",
    "variant_options": [
        {"id": "va-colour", "name": "Colour", "value": "Navy"},
        {"id": "va-size", "name": "Size", "value": "M"},
    ],
    "product_codes": [{"type": "EAN", "code": "9400000000012"}],
    "active": True,
    "is_active": True,
    "has_inventory": True,
    "is_composite": False,
    "price_including_tax": 35.0,
    "price_excluding_tax": 30.43478,
    "supply_price": 12.0,
    "weight": 0.2,
    "weight_unit": "KG",
    "deleted_at": None,
    "version": 8812345007,
}
SECOND_VARIANT_ID = "0a1b0000-aaaa-11ee-8c90-000000000003"


def row(base: dict[str, Any], **changes: Any) -> PosProduct:
    return PosProduct.model_validate({**copy.deepcopy(base), **changes})


def second_variant(**changes: Any) -> PosProduct:
    values: dict[str, Any] = {
        "id": SECOND_VARIANT_ID,
        "variant_name": "Harbor Tee / Navy / L",
        "sku": "HT-NAVY-L",
        "variant_options": [{"name": "Colour", "value": "Navy"}, {"name": "Size", "value": "L"}],
        "product_codes": [{"type": "EAN", "code": "9400000000029"}],
        "version": 8812345008,
    }
    return row(VARIANT_ROW, **{**values, **changes})


def family(**variant_changes: Any) -> DesiredProduct:
    return map_xseries_family(row(PARENT_ROW), [row(VARIANT_ROW, **variant_changes)])


def simple(**changes: Any) -> DesiredProduct:
    values = {"has_variants": False, "sku": "MUG-1", **changes}
    return map_xseries_family(row(PARENT_ROW, **values), [])


# --- product level -------------------------------------------------------------------------------------------------


def test_one_ecom_product_per_family_with_one_variant_per_variant_row() -> None:
    desired = map_xseries_family(row(PARENT_ROW), [row(VARIANT_ROW), second_variant()])
    assert desired.pos_id == PARENT_ROW["id"]
    assert [v.pos_id for v in desired.variants] == [VARIANT_ROW["id"], SECOND_VARIANT_ID]
    assert desired.family_version == 8812345008


def test_simple_product_is_its_own_single_variant() -> None:
    desired = simple()
    assert [v.pos_id for v in desired.variants] == [PARENT_ROW["id"]]
    assert desired.variants[0].payload.sku == "MUG-1"
    assert desired.variants[0].payload.title == "Default"


def test_family_whose_variants_are_all_deleted_falls_back_to_the_parent_row() -> None:
    desired = family(deleted_at="2024-06-01T00:00:00+00:00", version=8812345100)
    assert [v.pos_id for v in desired.variants] == [PARENT_ROW["id"]]
    assert desired.removed_variant_ids == (VARIANT_ROW["id"],)
    assert desired.family_version == 8812345100


def test_parent_carrying_options_is_itself_a_sellable_variant() -> None:
    parent = row(PARENT_ROW, variant_options=[{"name": "Size", "value": "S"}], sku="HT-S")
    desired = map_xseries_family(parent, [row(VARIANT_ROW)])
    assert [v.payload.sku for v in desired.variants] == ["HT-S", "HT-NAVY-M"]


def test_name_maps_to_title_and_fulltitle() -> None:
    payload = family().payload
    assert (payload.title, payload.fulltitle) == ("Harbor Tee", "Harbor Tee")


def test_brand_category_and_description_map_by_name() -> None:
    payload = family().payload
    assert payload.brand == "Dockside"
    assert payload.category == "Tees"
    assert payload.description == "<p>Heavy cotton.</p>"
    # An untyped, unbranded product shows `{}` samples (X20 `GET /products` example).
    bare = map_xseries_family(row(PARENT_ROW, brand={}, type={}, product_type_id=None, description=None), []).payload
    assert (bare.brand, bare.category, bare.description) == (None, None, "")


def test_the_category_is_the_product_type_and_never_a_tag() -> None:
    # X20 `categories` are tags (X20 `Tag`); the eCom category comes from the product type alone.
    tagged = row(PARENT_ROW, categories=[{"id": "tag-1", "name": "Sale"}], tag_ids=["tag-1"])
    assert map_xseries_family(tagged, []).payload.category == "Tees"
    untyped = row(PARENT_ROW, type={}, categories=[{"id": "tag-1", "name": "Sale"}])
    assert map_xseries_family(untyped, []).payload.category is None


@pytest.mark.parametrize(("active", "visibility"), [(True, "visible"), (False, "hidden")])
def test_active_maps_to_visibility_and_is_visible(active: bool, visibility: str) -> None:
    payload = map_xseries_family(row(PARENT_ROW, active=active), [row(VARIANT_ROW)]).payload
    assert payload.ecom_body()["visibility"] == visibility
    assert payload.ecom_body()["isVisible"] is active


def test_deleted_parent_marks_the_family_deleted() -> None:
    assert map_xseries_family(row(PARENT_ROW, deleted_at="2024-06-01T00:00:00+00:00"), []).deleted


def test_rows_of_another_family_are_refused() -> None:
    stranger = row(VARIANT_ROW, variant_parent_id="other")
    with pytest.raises(ValueError, match="not a variant"):
        map_xseries_family(row(PARENT_ROW), [stranger])


def test_family_membership_is_read_from_variant_parent_id_only() -> None:
    # A field no X20 source documents (the simulator's old `family_id`) never makes a row a member.
    stranger = row(VARIANT_ROW, variant_parent_id=None, family_id=PARENT_ROW["id"])
    with pytest.raises(ValueError, match="not a variant"):
        map_xseries_family(row(PARENT_ROW, family_id=PARENT_ROW["id"]), [stranger])


# --- variant level -------------------------------------------------------------------------------------------------


def test_sku_maps_to_sku_and_article_code() -> None:
    body = family().variants[0].payload.ecom_body()
    assert (body["sku"], body["articleCode"]) == ("HT-NAVY-M", "HT-NAVY-M")


@pytest.mark.parametrize(
    ("codes", "ean"),
    [
        ([{"type": "EAN", "code": "9400000000012"}], "9400000000012"),
        ([{"type": "UPC", "code": "012345678905"}], "012345678905"),
        ([{"type": "UPC", "code": "012345678905"}, {"type": "EAN", "code": "9400000000012"}], "9400000000012"),
        ([{"type": "CUSTOM", "code": "X1"}, {"type": "ISBN", "code": "978"}], ""),
        ([{"type": "EAN", "code": "  "}, {"type": "UPC", "code": "012345678905"}], "012345678905"),
        ([], ""),
    ],
)
def test_barcode_prefers_ean_then_upc(codes: list[dict[str, str]], ean: str) -> None:
    assert family(product_codes=codes).variants[0].payload.ean == ean


def test_attributes_map_to_options_and_the_variant_title() -> None:
    payload = family().variants[0].payload
    assert [(o.name, o.value) for o in payload.options] == [("Colour", "Navy"), ("Size", "M")]
    body = payload.ecom_body()
    assert body["title"] == "Navy, M"
    assert "options" not in body  # read-only in eCom: the title carries the values


def test_at_most_three_options_are_synced() -> None:
    options = [{"name": f"A{i}", "value": f"v{i}"} for i in range(4)]
    payload = family(variant_options=options).variants[0].payload
    assert [o.name for o in payload.options] == ["A0", "A1", "A2"]
    assert payload.title == "v0, v1, v2"


def test_retail_prices_map_straight() -> None:
    payload = family().variants[0].payload
    assert (payload.price_incl, payload.price_excl) == (35.0, 30.43478)


def test_the_online_price_book_entry_is_tax_exclusive_and_keeps_the_rows_tax_ratio() -> None:
    variant = row(VARIANT_ROW)
    desired = map_xseries_family(row(PARENT_ROW), [variant], online_prices_excl={variant.id: 30.0})
    payload = desired.variants[0].payload
    assert payload.price_excl == 30.0
    assert payload.price_incl == pytest.approx(30.0 * 35.0 / 30.43478, abs=1e-5)


def test_a_row_without_an_online_price_book_entry_gets_its_retail_price() -> None:
    desired = map_xseries_family(row(PARENT_ROW), [row(VARIANT_ROW)], online_prices_excl={"another-product": 1.0})
    payload = desired.variants[0].payload
    assert (payload.price_incl, payload.price_excl) == (35.0, 30.43478)


def test_online_price_entries_keep_the_books_live_unit_prices_newest_first() -> None:
    entries = [
        {"product_id": "a", "price_book_id": "book", "price": 10.0, "tax_id": "t", "version": 5},
        {"product_id": "a", "price_book_id": "book", "price": 9.0, "tax_id": "t", "version": 7},
        {"product_id": "b", "price_book_id": "book", "price": 1.0, "tax_id": "t", "min_units": 10, "version": 9},
        {"product_id": "c", "price_book_id": "other", "price": 2.0, "tax_id": "t", "version": 9},
        {"product_id": "d", "price_book_id": "book", "price": 3.0, "tax_id": "t", "deleted_at": "2026-01-01T00:00Z"},
        {"product_id": "e", "price_book_id": "book", "price": True, "tax_id": "t"},
        {"product_id": "f", "price_book_id": "book", "price": 4, "tax_id": "t", "min_units": 1},
    ]
    assert online_price_entries(entries, "book") == {"a": 9.0, "f": 4.0}


def test_a_missing_price_side_copies_the_other_rather_than_selling_for_free() -> None:
    payload = family(price_excluding_tax=None).variants[0].payload
    assert (payload.price_incl, payload.price_excl) == (35.0, 35.0)


@pytest.mark.parametrize(
    ("weight", "unit", "grams"),
    [(0.2, "KG", 200.0), (5, "CT", 1.0), (250, "G", 250.0), (1, "OZ", 28.35), (1, "LB", 453.592), (2, None, 2000.0)],
)
def test_weight_is_sent_in_grams(weight: float, unit: str | None, grams: float) -> None:
    assert family(weight=weight, weight_unit=unit).variants[0].payload.weight == grams


def test_weight_falls_back_to_the_parent_then_zero() -> None:
    parent = row(PARENT_ROW, weight=1.5, weight_unit="KG")
    assert map_xseries_family(parent, [row(VARIANT_ROW, weight=None)]).variants[0].payload.weight == 1500.0
    assert family(weight=None).variants[0].payload.weight == 0.0


@pytest.mark.parametrize(
    ("unit", "expected"),
    [("CM", (10.0, 20.0, 30.0)), ("MM", (1.0, 2.0, 3.0)), ("IN", (25.4, 50.8, 76.2)), ("YD", (914.4, 1828.8, 2743.2))],
)
def test_dimensions_are_sent_in_centimetres(unit: str, expected: tuple[float, float, float]) -> None:
    payload = family(length=10, width=20, height=30, dimensions_unit=unit).variants[0].payload
    assert (payload.size_x, payload.size_y, payload.size_z) == expected


def test_dimensions_fall_back_to_the_parent() -> None:
    parent = row(PARENT_ROW, length=1, width=2, height=3, dimensions_unit="IN")
    payload = map_xseries_family(parent, [row(VARIANT_ROW)]).variants[0].payload
    assert (payload.size_x, payload.size_y, payload.size_z) == (2.54, 5.08, 7.62)


def test_new_variants_are_created_with_stock_tracking_but_stock_is_never_mapped() -> None:
    variant = family().variants[0]
    assert "stockLevel" not in variant.payload.ecom_body()
    create = CreateVariant(variant.pos_id, None, variant.payload, variant.content_hash, variant.version)
    assert create.ecom_body()["stockTracking"] == "enabled"


# --- images --------------------------------------------------------------------------------------------------------


def images(prefix: str, count: int) -> list[dict[str, Any]]:
    """X20 `ImageSample` rows: id, url, sizes; no position (the list order is the image order)."""
    return [
        {"id": f"img-{prefix}{i}", "url": f"https://img/{prefix}{i}.jpg", "sizes": {"thumb": f"https://img/t{i}.jpg"}}
        for i in range(count)
    ]


def test_images_keep_the_vendors_list_order_and_are_capped_at_twelve_per_pos_item() -> None:
    reversed_order = list(reversed(images("p", 15)))
    desired = simple(images=reversed_order)
    assert desired.image_urls == tuple(f"https://img/p{i}.jpg" for i in range(14, 2, -1))
    assert desired.variants[0].payload.image_url == "https://img/p14.jpg"


def test_family_images_are_the_parents_twelve_plus_each_variants_twelve() -> None:
    parent = row(PARENT_ROW, images=images("p", 13))
    desired = map_xseries_family(
        parent, [row(VARIANT_ROW, images=images("a", 13)), second_variant(images=images("b", 2))]
    )
    assert len(desired.image_urls) == 12 + 12 + 2
    assert desired.image_urls[:2] == ("https://img/p0.jpg", "https://img/p1.jpg")


def test_each_variant_gets_exactly_one_image_from_the_products_images() -> None:
    parent = row(PARENT_ROW, images=images("p", 2))
    third = second_variant(id="0a1b0000-aaaa-11ee-8c90-000000000004", sku="HT-NAVY-XL")
    desired = map_xseries_family(parent, [row(VARIANT_ROW, images=images("own", 3)), second_variant(), third])
    chosen = [v.payload.image_url for v in desired.variants]
    # Own first image; else the parent's image at (index mod count).
    assert chosen == ["https://img/own0.jpg", "https://img/p1.jpg", "https://img/p0.jpg"]
    assert all(url in desired.image_urls for url in chosen)


def test_no_images_anywhere_means_no_variant_image() -> None:
    desired = family()
    assert desired.image_urls == ()
    assert desired.variants[0].payload.image_url is None


def test_images_hash_changes_only_with_the_image_list() -> None:
    base = simple(images=images("p", 2))
    assert simple(images=images("p", 2), name="Renamed").images_hash == base.images_hash
    assert simple(images=images("q", 2)).images_hash != base.images_hash


# --- what never syncs ----------------------------------------------------------------------------------------------


def test_payloads_hold_only_pos_owned_fields() -> None:
    desired = map_xseries_family(row(PARENT_ROW), [row(VARIANT_ROW)], online_prices_excl={VARIANT_ROW["id"]: 30.0})
    variant = desired.variants[0]
    bodies = [
        desired.payload.ecom_body(),
        variant.payload.ecom_body(),
        CreateVariant(variant.pos_id, None, variant.payload, variant.content_hash, variant.version).ecom_body(),
        HideProduct(1).ecom_body(),
    ]
    for body in bodies:
        assert not set(body) & ECOM_OWNED_FIELDS


@pytest.mark.parametrize(
    "unsynced",
    [
        {"handle": "other-handle"},
        {"supply_price": 99.0},
        {"supplier_id": "sup-9", "supplier_code": "SC-9"},
        {"tag_ids": ["tag-1"]},
        {"has_inventory": False},
        {"reorder_point": 5},
    ],
)
def test_unsynced_pos_fields_never_change_what_ecom_gets(unsynced: dict[str, Any]) -> None:
    before = map_xseries_family(row(PARENT_ROW), [row(VARIANT_ROW)])
    after = map_xseries_family(row(PARENT_ROW, **unsynced), [row(VARIANT_ROW, **unsynced)])
    assert after.content_hash == before.content_hash
    assert after.variants[0].content_hash == before.variants[0].content_hash


# --- hashes --------------------------------------------------------------------------------------------------------


def test_content_hash_is_canonical_json_sha256() -> None:
    assert content_hash({"b": 1, "a": [1, "x"]}) == content_hash({"a": [1, "x"], "b": 1})
    assert len(content_hash({})) == 64


def test_row_order_never_changes_the_mapping() -> None:
    first = map_xseries_family(row(PARENT_ROW), [row(VARIANT_ROW), second_variant()])
    second = map_xseries_family(row(PARENT_ROW), [second_variant(), row(VARIANT_ROW)])
    assert first == second


def test_product_hash_tracks_product_fields_and_variant_hash_tracks_variant_fields() -> None:
    base = family()
    renamed = map_xseries_family(row(PARENT_ROW, name="Harbour Tee"), [row(VARIANT_ROW)])
    repriced = family(price_including_tax=40.0)
    assert renamed.content_hash != base.content_hash
    assert repriced.content_hash == base.content_hash
    assert repriced.variants[0].content_hash != base.variants[0].content_hash


@given(
    name=st.text(max_size=20),
    price=st.floats(min_value=0, max_value=10_000, allow_nan=False),
    active=st.booleans(),
)
def test_mapping_is_deterministic(name: str, price: float, active: bool) -> None:
    def build() -> DesiredProduct:
        parent = row(PARENT_ROW, name=name, active=active)
        return map_xseries_family(parent, [row(VARIANT_ROW, price_including_tax=price)])

    first, second = build(), build()
    assert first == second
    assert first.content_hash == second.content_hash
    assert [v.content_hash for v in first.variants] == [v.content_hash for v in second.variants]


def test_lookup_skus_identify_the_product_for_find_or_create() -> None:
    desired = map_xseries_family(
        row(PARENT_ROW), [row(VARIANT_ROW), second_variant(), second_variant(id="x-4", sku="")]
    )
    assert desired.lookup_skus == ("HT-NAVY-M", "HT-NAVY-L")
