"""eCom behaviours the sources show only by example, proved end to end on the real path: a POS edit in the X-Series
simulator -> change_poller -> products queue -> product_sync -> the eCom simulator's API -> what a shopper sees.

- Weight: eCom `weight` is grams and a shopper sees `weightValue` in `weightUnit` (the vendor example: weight 200,
  weightValue "0.2", weightUnit "kg"). Whatever the POS unit (KG, G, LB), the weight a shopper sees is the POS weight.
- Brand: a brand removed in the POS is cleared in eCom when eCom takes `brand: false`, and when it refuses it the rest
  of the update still lands (the limit is logged, nothing is parked).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from pos_ecom_sync.state.store import SyncStore

from tests.e2e.conftest import LiveStack

pytestmark = pytest.mark.e2e

POS_GRAMS = {"KG": 1000.0, "G": 1.0, "LB": 453.59237}
SHOP_GRAMS = {"kg": 1000.0, "g": 1.0, "lb": 453.59237, "oz": 28.349523125}


@pytest.fixture(scope="module")
def live(live_stack: LiveStack) -> Iterator[LiveStack]:
    live_stack.import_catalog()
    live_stack.pos.record_exchanges = live_stack.ecom.record_exchanges = True
    yield live_stack


def _variant_rows(live: LiveStack) -> list[dict[str, Any]]:
    """POS rows that are an eCom variant (a simple product or a family member), with a SKU eCom shows."""
    shown = {v["sku"] for v in live.ecom.variants()}
    return [p for p in live.pos.products() if not p["has_variants"] and p["sku"] in shown]


def _ecom_variant(live: LiveStack, sku: str) -> dict[str, Any] | None:
    return next((v for v in live.ecom.variants() if v["sku"] == sku), None)


def _shopper_grams(variant: dict[str, Any]) -> float:
    """The weight a shopper sees, back in grams: `weightValue` (a string) in `weightUnit`."""
    return float(variant["weightValue"]) * SHOP_GRAMS[variant["weightUnit"]]


@pytest.mark.parametrize(
    ("weight", "unit", "shown"),
    [(0.35, "KG", "0.35"), (500, "G", "0.5"), (2, "LB", "0.907")],
)
def test_the_weight_a_shopper_sees_is_the_pos_weight_in_the_shops_unit(
    live: LiveStack, weight: float, unit: str, shown: str
) -> None:
    row = _variant_rows(live)[["KG", "G", "LB"].index(unit)]

    live.pos.update_product(row["id"], weight=weight, weight_unit=unit)
    live.poll()

    variant = live.wait_until(
        lambda: (v := _ecom_variant(live, row["sku"])) and v["weightValue"] == shown and v,
        timeout=60,
        what=f"eCom to show {row['sku']} weighing {shown} kg",
    )
    assert variant["weightUnit"] == "kg"  # the shop's display unit: never overwritten by the sync
    assert variant["weight"] == pytest.approx(weight * POS_GRAMS[unit], abs=0.001)  # grams, as the API stores it
    assert _shopper_grams(variant) == pytest.approx(weight * POS_GRAMS[unit], abs=0.5)  # 3 decimals of a kg


def test_a_shop_showing_pounds_shows_the_pos_weight_in_pounds(live: LiveStack) -> None:
    row = _variant_rows(live)[3]
    current = _ecom_variant(live, row["sku"])
    assert current is not None
    live.ecom.edit_variant(current["id"], weightUnit="lb")  # the merchant's display choice, in the back office

    live.pos.update_product(row["id"], weight=1.2, weight_unit="KG")
    live.poll()

    variant = live.wait_until(
        lambda: (v := _ecom_variant(live, row["sku"])) and v["weight"] == pytest.approx(1200) and v,
        timeout=60,
        what=f"eCom to store 1200 g for {row['sku']}",
    )
    assert (variant["weightUnit"], variant["weightValue"]) == ("lb", "2.646")  # 1.2 kg = 2.6455 lb
    assert _shopper_grams(variant) == pytest.approx(1200, abs=0.5)


@pytest.mark.parametrize("answer", ["accepted", "refused"])
def test_a_brand_removed_in_the_pos_never_blocks_the_products_update(live: LiveStack, answer: str) -> None:
    families = sorted(p["id"] for p in live.pos.products() if p["has_variants"])
    family = families[["accepted", "refused"].index(answer)]
    store = SyncStore(os.environ["TABLE_NAME"], resource=live.session.resource("dynamodb"))
    product_id = store.get_catalog_state(live.connection_id, family).state.ecom_product_id
    assert product_id is not None
    live.wait_until(lambda: _product(live, product_id)["brand"] is not False, what="the POS brand in eCom")
    live.ecom.brand_false = answer

    live.pos.update_family(family, brand_id=None, description="Now without a brand")
    live.poll()

    product = live.wait_until(
        lambda: (p := _product(live, product_id))["description"] == "Now without a brand" and p,
        timeout=60,
        what="the brandless update to land in eCom",
    )
    assert (product["brand"] is False) == (answer == "accepted")  # refused: the brand stays, logged as a limit
    live.ecom.brand_false = "accepted"


def _product(live: LiveStack, product_id: int) -> dict[str, Any]:
    return next(p for p in live.ecom.products() if p["id"] == product_id)
