"""Reconciliation heals drift nobody reported, through the whole local stack (issue 13, "never needs a manual resync").

The merchant edits eCom by hand in its back office (the simulator's API, as the eCom admin writes it): the stack
subscribes to no product webhook (eCom product edits never flow back under X-Series, seed 003), so only a
reconciliation run (`live.reconcile()`: the schedule's tick through functions/reconcile/app.py) can find them; the
products queue then reaches product_sync, which plans the family against what eCom actually holds. The interval
between full runs is set to 0 here, so every tick starts a run (in production a run starts every
`RECONCILE_INTERVAL_HOURS`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from pos_ecom_sync.connectors.ecom import EcomClient
from pos_ecom_sync.ratelimit import InMemoryRateBudget
from pos_ecom_sync.settings import get_settings

from local_stack.demo import DEMO_SECRETS
from local_stack.simulators.common import Faults
from tests.e2e.conftest import LiveStack

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def live(live_stack: LiveStack) -> Iterator[LiveStack]:
    """The stack with the POS catalog in eCom; every reconcile tick starts a full run."""
    live_stack.import_catalog()
    saved = os.environ.get("RECONCILE_INTERVAL_HOURS")
    os.environ["RECONCILE_INTERVAL_HOURS"] = "0"
    get_settings.cache_clear()
    yield live_stack
    if saved is None:
        os.environ.pop("RECONCILE_INTERVAL_HOURS", None)
    else:
        os.environ["RECONCILE_INTERVAL_HOURS"] = saved
    get_settings.cache_clear()


def _merchant(live: LiveStack) -> EcomClient:
    """The merchant's hands in the eCom back office."""
    return EcomClient(
        live.ecom.url, DEMO_SECRETS["ecom_api_key"], DEMO_SECRETS["ecom_api_secret"], InMemoryRateBudget()
    )


def _ours(live: LiveStack) -> list[tuple[str, int, int]]:
    """(POS variant id, eCom product id, eCom variant id) of every variant the stack manages, in a stable order."""
    rows = []
    for row in sorted(live.pos.products(), key=lambda r: r["id"]):
        link = live.store().variant_link(live.connection_id, pos_product_id=row["id"])
        if link is not None:
            rows.append((row["id"], link.ecom_product_id, link.ecom_variant_id))
    return rows


def _variant(live: LiveStack, ecom_id: int) -> dict[str, Any] | None:
    return next((v for v in live.ecom.variants() if v["id"] == ecom_id), None)


def _pos_total(live: LiveStack, pos_id: str) -> int:
    connection = live.store().get_connection(live.connection_id)
    assert connection is not None
    return sum(max(0, live.pos.level(pos_id, outlet)) for outlet in connection.connected_outlet_ids)


def _drift(summary: dict[str, Any]) -> dict[str, int]:
    return {kind: n for kind, n in summary["drift"].items() if n}


def test_a_hand_edit_of_title_and_price_in_ecom_is_restored_within_one_reconciliation_run(live: LiveStack) -> None:
    # Given: the merchant renames a synced product and changes one of its variants' price in eCom, no webhook
    _, product_id, variant_id = _ours(live)[0]
    product = next(p for p in live.ecom.products() if p["id"] == product_id)
    before = _variant(live, variant_id)
    assert before is not None
    merchant = _merchant(live)
    merchant.update_product(product_id, {"title": "Hand-edited title", "fulltitle": "Hand-edited title"})
    merchant.update_variant(variant_id, {"priceIncl": before["priceIncl"] + 25.0})

    # When: one reconciliation run
    summary = live.reconcile()

    # Then: the run found the family's edited content, and product_sync put the POS values back
    assert summary["connections"][live.connection_id]["completed"] is True
    assert _drift(summary).get("catalog_content", 0) >= 1

    def restored() -> bool:
        now = _variant(live, variant_id) or {}
        shown = next(p for p in live.ecom.products() if p["id"] == product_id)
        return shown["title"] == product["title"] and now.get("priceIncl") == before["priceIncl"]

    live.wait_until(restored, timeout=60, what="the POS title and price back in eCom")


def test_a_variant_deleted_by_hand_in_ecom_is_recreated_with_the_pos_stock_total(live: LiveStack) -> None:
    # Given: the merchant deletes one of our variants in eCom (its webhook lost: the stack is not told)
    pos_id, product_id, variant_id = _ours(live)[1]
    sku = (_variant(live, variant_id) or {})["sku"]
    live.ecom.set_faults(Faults(webhook_loss_rate=1.0))
    try:
        _merchant(live).delete_variant(variant_id)
    finally:
        live.ecom.set_faults(Faults())

    # When: one reconciliation run
    summary = live.reconcile()

    # Then: found gone, created again in its product from the POS, and given the POS stock total
    assert _drift(summary).get("variant_gone") == 1

    def recreated() -> dict[str, Any] | None:
        link = live.store().variant_link(live.connection_id, pos_product_id=pos_id)
        if link is None or link.ecom_variant_id == variant_id:
            return None
        row = _variant(live, link.ecom_variant_id)
        return row if row is not None and row["stockLevel"] == _pos_total(live, pos_id) else None

    row = live.wait_until(recreated, timeout=60, what="the variant re-created in eCom with the POS stock total")
    assert row["sku"] == sku and row["product"]["resource"]["id"] == product_id


def test_ecom_only_fields_and_an_ecom_added_variant_survive_reconciliation(live: LiveStack) -> None:
    # Given: on a synced variant the merchant sets eCom's own fields (compare-at price, low-stock threshold), and
    # adds a variant of their own to the same product; then edits our variant's price, so the family is rewritten
    _, product_id, variant_id = _ours(live)[2]
    merchant = _merchant(live)
    price = (_variant(live, variant_id) or {})["priceIncl"]
    merchant.update_variant(variant_id, {"oldPriceIncl": 149.0, "stockAlert": 3, "priceIncl": price + 1.0})
    gift = merchant.create_variant({"product": product_id, "title": "Gift wrap", "sku": "ECOM-GIFT", "priceIncl": 2.5})

    # When: reconciliation runs (twice: the second finds nothing left to repair)
    first = live.reconcile()
    live.wait_until(lambda: (_variant(live, variant_id) or {}).get("priceIncl") == price, timeout=60, what="price")
    second = live.reconcile()

    # Then: POS price back; eCom's own fields and the eCom-added variant untouched; nothing found the second time
    assert _drift(first).get("catalog_content") == 1
    ours = _variant(live, variant_id) or {}
    assert (ours["oldPriceIncl"], ours["stockAlert"]) == (149.0, 3)
    added = _variant(live, gift["id"])
    assert added is not None and (added["title"], added["sku"], added["priceIncl"]) == ("Gift wrap", "ECOM-GIFT", 2.5)
    assert _drift(second) == {}
