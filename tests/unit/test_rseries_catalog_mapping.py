"""R-Series rows -> the neutral catalog family -> the eCom product (profiles.rseries.mapping, then catalog.mapping),
from rows shaped as the V3 API answers them (KVH item.md / itemmatrix.md samples: every scalar a string, one related
row an object, several an array). Then the planner: R-Series products are created hidden and their availability is
eCom's from then on, while X-Series visibility keeps following the POS active flag."""

from __future__ import annotations

import copy
import json
from typing import Any

from pos_ecom_sync.catalog.actions import CreateProduct, UpdateProduct
from pos_ecom_sync.catalog.mapping import DesiredProduct, map_family
from pos_ecom_sync.catalog.planning import CatalogSettings, plan_catalog_sync, state_after, state_shown
from pos_ecom_sync.models.catalog import CatalogState, PosFamily
from pos_ecom_sync.profiles.rseries.mapping import matrix_family, simple_family
from pos_ecom_sync.profiles.xseries.mapping import PosProduct
from pos_ecom_sync.reconcile.rules import product_content_drift

from tests.support import map_xseries_family
from tests.unit.test_catalog_mapping import PARENT_ROW, VARIANT_ROW

BIG = CatalogSettings(product_cap=1_000_000)
ONLINE = "5"  # the Online level's id in this account (KVH tutorials/item-matrices.md: 5 = "Online")
CATEGORIES = {"7": "Tops"}
BRANDS = {"3": "Dockside"}
CLOUDINARY = "https://res.cloudinary.com/lightspeed-retail/image/upload/"


def prices(default: str, online: str | None = None) -> dict[str, Any]:
    rows = [
        {"amount": default, "useTypeID": "1", "useType": "Default"},
        {"amount": "0", "useTypeID": "2", "useType": "MSRP"},
    ]
    if online is not None:
        rows.append({"amount": online, "useTypeID": ONLINE, "useType": "Online"})
    return {"ItemPrice": rows}


def images(owner: str, count: int) -> dict[str, Any] | str:
    rows = [
        {
            "imageID": str(900 + n),
            "filename": f"{owner}-{n}.png",
            "ordering": str(n),
            "publicID": f"{owner}pub{n}",
            "baseImageURL": CLOUDINARY,
        }
        for n in range(count)
    ]
    return "" if not rows else rows[0] if len(rows) == 1 else {"Image": rows}


def matrix_row(**changes: Any) -> dict[str, Any]:
    row = {
        "itemMatrixID": "12",
        "description": "Harbor Tee",
        "tax": "true",
        "archived": "false",
        "timeStamp": "2026-03-31T18:32:28+00:00",
        "itemAttributeSetID": "1",
        "manufacturerID": "3",
        "categoryID": "7",
        "defaultVendorID": "44",
        "Prices": prices("35"),
        "attribute1Values": ["Navy", "White"],
        "attribute2Values": ["M"],
        "Images": {"Image": images("master", 1)},
    }
    return {**row, **changes}


def variant_row(item_id: str, color: str, size: str, **changes: Any) -> dict[str, Any]:
    row = {
        "itemID": item_id,
        "systemSku": f"2100000000{item_id}",
        "customSku": f"HT-{color}-{size}".upper(),
        "description": f"Harbor Tee {color} {size}",
        "upc": "",
        "ean": f"94000000000{item_id}",
        "archived": "false",
        "publishToEcom": "true",
        "timeStamp": "2026-03-31T18:32:30+00:00",
        "itemMatrixID": "12",
        "categoryID": "7",
        "manufacturerID": "3",
        "defaultVendorID": "44",
        "ItemAttributes": {"attribute1": color, "attribute2": size, "attribute3": "", "itemAttributeSetID": "1"},
        "ItemShops": {
            "ItemShop": [{"itemShopID": "1", "shopID": "1", "qoh": "4", "reorderPoint": "3", "reorderLevel": "9"}]
        },
        "TagRelations": {"TagRelation": {"Tag": {"name": "clearance-rack"}}},
        "Prices": prices("35", "32"),
        "Images": "",
    }
    return {**row, **changes}


def simple_row(**changes: Any) -> dict[str, Any]:
    row = variant_row("30", "x", "y", itemMatrixID="0", description="Canvas Tote", customSku="TOTE", ItemAttributes="")
    row.pop("ItemAttributes")
    return {**row, **changes}


def family(matrix: dict[str, Any] | None = None, items: list[dict[str, Any]] | None = None) -> PosFamily:
    return matrix_family(
        matrix or matrix_row(),
        items if items is not None else [variant_row("21", "Navy", "M"), variant_row("22", "White", "M")],
        online_level_id=ONLINE,
        categories=CATEGORIES,
        brands=BRANDS,
    )


# --- mapping ----------------------------------------------------------------------------------------------------------


def test_a_matrix_and_its_variants_are_one_family_and_each_variant_one_ecom_variant_with_its_options() -> None:
    fam = family()
    desired = map_family(fam)

    assert fam.key == "m12" and fam.parent.id == "m12"
    assert (desired.payload.title, desired.payload.category, desired.payload.brand) == (
        "Harbor Tee",
        "Tops",
        "Dockside",
    )
    assert [v.pos_id for v in desired.variants] == ["21", "22"]
    first = desired.variants[0].payload
    assert [(o.name, o.value) for o in first.options] == [("Color", "Navy"), ("Size", "M")]
    assert (first.title, first.sku, first.ean) == ("Navy, M", "HT-NAVY-M", "9400000000021")
    assert fam.stamp == max(fam.parent.stamp, *(item.stamp for item in fam.sellable))


def test_attribute_names_come_from_the_attribute_set_relation_when_it_is_loaded() -> None:
    named = matrix_row(
        itemAttributeSetID="5",
        ItemAttributeSet={
            "itemAttributeSetID": "5",
            "name": "Color/Size/Fabric",
            "attributeName1": "Colour",
            "attributeName2": "Maat",
            "attributeName3": "Fabric",
        },
    )
    unknown = matrix_row(itemAttributeSetID="9")

    assert [o.name for o in family(named).sellable[0].options] == ["Colour", "Maat"]
    assert [o.name for o in family(unknown).sellable[0].options] == ["Attribute 1", "Attribute 2"]


def test_a_simple_item_is_a_family_of_one_keyed_by_its_item_id_that_sells_itself() -> None:
    fam = simple_family(simple_row(), online_level_id=ONLINE, categories=CATEGORIES, brands=BRANDS)
    desired = map_family(fam)

    assert fam.key == "30" and [item.id for item in fam.sellable] == ["30"]
    assert (desired.payload.title, desired.payload.category, desired.payload.brand) == (
        "Canvas Tote",
        "Tops",
        "Dockside",
    )
    assert [(v.pos_id, v.payload.title, v.payload.sku) for v in desired.variants] == [("30", "Default", "TOTE")]


def test_an_item_without_custom_sku_is_known_in_ecom_by_its_system_sku() -> None:
    fam = simple_family(simple_row(customSku=""), online_level_id=ONLINE)
    assert fam.sellable[0].sku == "210000000030"


def test_an_archived_variant_is_removed_and_not_sold() -> None:
    fam = family(items=[variant_row("21", "Navy", "M"), variant_row("22", "White", "M", archived="true")])

    assert [item.id for item in fam.sellable] == ["21"]
    assert fam.removed == ("22",)
    assert not fam.deleted


def test_an_archived_matrix_or_simple_item_deletes_the_family() -> None:
    matrix = family(matrix_row(archived="true"))
    simple = simple_family(simple_row(archived="true"), online_level_id=ONLINE)

    assert matrix.deleted and matrix.sellable == ()
    assert simple.deleted and simple.sellable == ()
    assert map_family(matrix).deleted and map_family(simple).deleted


def test_an_item_not_published_to_ecom_is_left_out_like_an_archived_one() -> None:
    fam = family(items=[variant_row("21", "Navy", "M"), variant_row("22", "White", "M", publishToEcom="false")])
    assert fam.removed == ("22",)
    assert simple_family(simple_row(publishToEcom="false"), online_level_id=ONLINE).deleted


def test_the_online_price_level_found_by_name_wins_and_a_missing_or_zero_one_falls_back_to_default() -> None:
    online, no_level, unset = (
        variant_row("21", "Navy", "M", Prices=prices("35", "32")),
        variant_row("22", "Navy", "L", Prices=prices("35")),
        variant_row("23", "Navy", "S", Prices=prices("35", "0")),  # KVH item.md sample: Online "0" = unset
    )
    desired = map_family(family(items=[online, no_level, unset]))
    got = {v.pos_id: (v.payload.price_incl, v.payload.price_excl) for v in desired.variants}

    assert got == {"21": (32.0, 32.0), "22": (35.0, 35.0), "23": (35.0, 35.0)}
    no_online_level = matrix_family(matrix_row(), [online], online_level_id=None)
    assert map_family(no_online_level).variants[0].payload.price_excl == 35.0


def test_tags_vendor_and_reorder_levels_are_never_in_an_ecom_payload() -> None:
    desired = map_family(family())
    bodies = json.dumps(
        [desired.payload.ecom_body(create=True), *(v.payload.ecom_body() for v in desired.variants)]
    ) + json.dumps(desired.model_dump(mode="json"))

    for never in ("clearance-rack", "44", "reorder", '"9"', "tags", "supplier"):
        assert never not in bodies


def test_thirteen_images_on_the_master_and_on_a_variant_each_sync_as_twelve() -> None:
    many = variant_row("21", "Navy", "M", Images=images("variant", 13))
    fam = family(matrix_row(Images=images("master", 13)), [many])

    assert len(fam.parent.images) == 12 and len(fam.sellable[0].images) == 12
    assert fam.parent.images[0] == f"{CLOUDINARY}masterpub0.png"  # KVH image.md {baseImageURL}{publicID}.{ext}
    assert len(map_family(fam).image_urls) == 24


# --- planning: who owns the product's availability -------------------------------------------------------------------


def _created(desired: DesiredProduct) -> tuple[CreateProduct, CatalogState]:
    plan = plan_catalog_sync(desired, False, CatalogState(), BIG, catalog_count=0)
    create = plan.actions[0]
    assert isinstance(create, CreateProduct)
    state = state_after(CatalogState(), create, created_id=500)
    return create, state


def _ecom_row(body: dict[str, Any], **edits: Any) -> dict[str, Any]:
    """eCom's product row after a write of `body`, with the merchant's later `edits`."""
    return {
        "id": 500,
        "title": body["title"],
        "fulltitle": body["fulltitle"],
        "description": "",
        "brand": False,
        "visibility": body.get("visibility", "hidden"),
        **edits,
    }


def test_rseries_products_are_created_hidden_and_a_later_pos_change_never_touches_their_availability() -> None:
    desired = map_family(family())
    create, state = _created(desired)
    body = create.payload.ecom_body(create=True)
    assert (body["visibility"], body["isVisible"]) == ("hidden", False)
    assert "description" not in body  # eCom's: no R-Series field feeds it

    state = state_shown(state, product=_ecom_row(body), ecom_owned=desired.payload.ecom_owned)
    renamed = family(matrix_row(description="Harbor Tee II", timeStamp="2026-03-31T19:00:00+00:00"))
    plan = plan_catalog_sync(map_family(renamed), False, state, BIG, catalog_count=2)
    [update] = [a for a in plan.actions if isinstance(a, UpdateProduct)]
    update_body = update.payload.ecom_body()
    assert update_body["title"] == "Harbor Tee II"
    assert not {"visibility", "isVisible", "description"} & set(update_body)

    # The merchant enabled it in eCom: not a drift content reconciliation would undo.
    enabled = _ecom_row(body, visibility="visible", description="<p>Written in eCom</p>")
    assert product_content_drift([enabled], {500: "m12"}, {"m12": state}) == []
    assert product_content_drift([_ecom_row(body, title="Edited")], {500: "m12"}, {"m12": state}) != []


def test_xseries_visibility_still_follows_the_pos_active_flag_and_an_ecom_edit_of_it_is_drift() -> None:
    parent, variant = PosProduct.model_validate(PARENT_ROW), PosProduct.model_validate(VARIANT_ROW)
    inactive = PosProduct.model_validate({**copy.deepcopy(PARENT_ROW), "active": False, "is_active": False})
    active_body = map_xseries_family(parent, [variant]).payload.ecom_body()
    assert (active_body["visibility"], active_body["isVisible"]) == ("visible", True)
    assert map_xseries_family(inactive, [variant]).payload.ecom_body()["visibility"] == "hidden"

    desired = map_xseries_family(parent, [variant])
    _, state = _created(desired)
    state = state_shown(state, product=_ecom_row(active_body), ecom_owned=desired.payload.ecom_owned)
    hidden = _ecom_row(active_body, visibility="hidden")
    assert [d.kind for d in product_content_drift([hidden], {500: "p1"}, {"p1": state})] == ["catalog_content"]
