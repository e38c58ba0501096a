"""Seed 000 images, one way R-Series -> eCom, through the whole local stack: a POS change -> change poller (`Item`,
`ItemMatrix` feeds) -> products queue -> product_sync (`GET Item/ItemMatrix ... load_relations=["Images"]`) -> eCom
product images (`products/{id}/images`) and each variant's one image.

Seed 000: "A simple product in your Retail POS can have 12 images"; a matrix "12 images assigned to each variant, and
12 images assigned to the Matrix Master"; "A variation in eCom can only have one image assigned to the product, chosen
from the [...] images attached to the parent product"; "Images added to products in eCom [...] will automatically be
overridden when updated in Retail POS". An R-Series image is at `{baseImageURL}{publicID}.{extension}` (KVH
endpoints/image.md "Getting the Image"); eCom re-hosts what it is sent, so the tests compare the URLs eCom was sent
(`EcomSimulator.image_sources`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.conftest import RSeriesLiveStack

pytestmark = pytest.mark.e2e

SHOP = 1
MERCHANT_IMAGE = "https://images.example.com/merchant/summer-banner.jpg"


@pytest.fixture(scope="module")
def live(rseries_stack: RSeriesLiveStack) -> Iterator[RSeriesLiveStack]:
    rseries_stack.import_catalog()
    yield rseries_stack


def _url(image: dict[str, Any]) -> str:
    """Where an R-Series Image row's picture is (KVH image.md: `{baseImageURL}/{publicID}.{extension}`)."""
    extension = image["filename"].rsplit(".", 1)[-1].lower()
    return f"{image['baseImageURL'].rstrip('/')}/{image['publicID']}.{extension}"


def _in_display_order(images: list[dict[str, Any]]) -> list[str]:
    """Image rows by `ordering` ("Display order of Image", KVH image.md), then id."""
    return [_url(i) for i in sorted(images, key=lambda i: (int(i["ordering"]), int(i["imageID"])))]


def _pos_images(live: RSeriesLiveStack, item_id: int) -> list[str]:
    rows = live.rseries.item(item_id)["Images"]
    images = rows.get("Image", []) if isinstance(rows, dict) else []
    return _in_display_order(images if isinstance(images, list) else [images])


def _variant_image(live: RSeriesLiveStack, item_id: int) -> str | None:
    """The URL eCom was sent for the one image the item's eCom variant shows (None: it shows none)."""
    link = live.variant_link(item_id)
    variant = next(v for v in live.ecom.variants(link.ecom_product_id) if v["id"] == link.ecom_variant_id)
    if not variant["image"]:
        return None
    shown = [image["src"] for image in live.ecom.product_images(link.ecom_product_id)]
    return live.ecom.image_sources(link.ecom_product_id)[shown.index(variant["image"]["src"])]


def _synced(live: RSeriesLiveStack, item_ids: list[int]) -> None:
    live.poll()
    live.wait_until(
        lambda: all(live.store().variant_link(live.connection_id, pos_product_id=str(i)) for i in item_ids),
        timeout=60,
        what="the new POS items in eCom",
    )
    live.wait_until(lambda: live.queue_idle("products"), what="product sync done")


def test_a_simple_items_twelve_images_reach_its_ecom_product_in_the_pos_display_order(live: RSeriesLiveStack) -> None:
    item = live.rseries.add_item("Lighthouse Print", 24.0, custom_sku="PRINT-12", qoh={SHOP: 4})
    images = [live.rseries.add_image(f"print-{n}.jpg", item_id=item, ordering=11 - n) for n in range(12)]
    with pytest.raises(ValueError):
        live.rseries.add_image("print-12.jpg", item_id=item)  # seed 000: 12 per item, the POS takes no 13th

    _synced(live, [item])

    product = live.variant_link(item).ecom_product_id
    assert live.ecom.image_sources(product) == _in_display_order(images)
    assert _in_display_order(images)[0] == _url(images[-1])  # ordering 0 first, whatever the upload order
    assert _variant_image(live, item) == _url(images[-1])


def test_a_matrix_product_shows_the_master_images_then_the_variants_and_each_variant_one_of_them(
    live: RSeriesLiveStack,
) -> None:
    matrix, items = live.rseries.add_matrix("Harbour Parka", 120.0, [("Navy", "S"), ("Navy", "M"), ("Red", "S")])
    master = [live.rseries.add_image(f"parka-{n}.jpg", matrix_id=matrix, ordering=n) for n in range(2)]
    own = live.rseries.add_image("parka-navy-s.jpg", item_id=items[0])

    _synced(live, items)

    product = live.variant_link(items[0]).ecom_product_id
    assert {live.variant_link(i).ecom_product_id for i in items} == {product}
    sources = live.ecom.image_sources(product)
    assert sources == [*_in_display_order(master), _url(own)]  # the Matrix Master's, then the variant's own
    assert _variant_image(live, items[0]) == _url(own)
    assert all(_variant_image(live, i) in _in_display_order(master) for i in items[1:])


@pytest.mark.parametrize("replace_main", [False, True], ids=["image-added", "main-image-replaced"])
def test_an_image_edited_in_ecom_is_overwritten_at_the_next_pos_update_of_the_item(
    live: RSeriesLiveStack, replace_main: bool
) -> None:
    item = live.rseries.add_item(f"Tide Chart ({replace_main})", 12.0, custom_sku=f"TIDE-{replace_main}")
    live.rseries.add_image("tide-chart.jpg", item_id=item)
    _synced(live, [item])
    product = live.variant_link(item).ecom_product_id
    pos_images = _pos_images(live, item)
    assert live.ecom.image_sources(product) == pos_images

    # The merchant changes the images in eCom's back office (eCom sends products/updated to its subscribers).
    index = 0 if replace_main else len(pos_images)
    live.ecom.replace_image_in_backoffice(product, MERCHANT_IMAGE, index=index)
    live.ecom.wait_for_webhooks(timeout=10)
    live.wait_until(lambda: live.queue_idle("products"), what="whatever the eCom edit set off, done")
    assert MERCHANT_IMAGE in live.ecom.image_sources(product)  # images are one way: kept until the POS updates
    assert _pos_images(live, item) == pos_images  # and never written to the POS

    live.rseries.edit_item(item, description="Tide Chart 2027")  # the next update of the item in the POS
    live.poll()

    # The worker puts the images back, then points the variant at its image: wait for both, not the first alone.
    def pos_images_back() -> bool:
        if live.ecom.image_sources(product) != pos_images:
            return False
        with contextlib.suppress(ValueError):  # the variant may still name an image being replaced
            return _variant_image(live, item) == pos_images[0]
        return False

    live.wait_until(pos_images_back, timeout=60, what="the POS images back, the variant showing the first")
