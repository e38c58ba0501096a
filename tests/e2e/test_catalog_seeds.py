"""Catalog seed behaviours (seeds 000, 003; DESIGN §3) through the whole local stack, each on the real path:
a POS edit in the X-Series simulator -> change_poller -> products queue -> product_sync -> the eCom simulator's API.

- A product (or one variant) deleted by hand in eCom is a final answer, never a retry loop: under the default
  `recreate` policy the family is created again on its next POS change (the POS is the system of record), under
  `unlink` it stays out of eCom with the reason in its catalog state (what `pos-ecom-sync catalog show` prints).
- The online price on X-Series is the entry of the connection's online price book, else the retail price.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from pos_ecom_sync.models.catalog import CatalogState
from pos_ecom_sync.models.connection import Connection

from tests.e2e.conftest import LiveStack

pytestmark = pytest.mark.e2e

EXTRA_FAMILIES = 6  # one family per test below, on top of the stack's own catalog


@pytest.fixture(scope="module")
def live(live_stack: LiveStack) -> Iterator[LiveStack]:
    """The stack with every POS family in eCom (the first poll imports them), every exchange recorded."""
    live_stack.pos.seed_catalog(EXTRA_FAMILIES, 2, seed=1203)
    live_stack.import_catalog()
    live_stack.wait_until(
        lambda: all(_state(live_stack, key).ecom_product_id for key in _families(live_stack)),
        timeout=90,
        what="every POS family linked to an eCom product",
    )
    live_stack.pos.record_exchanges = live_stack.ecom.record_exchanges = True
    yield live_stack


_used: set[str] = set()


def _families(live: LiveStack) -> list[str]:
    """POS family keys (parent ids) of the live multi-variant families, in a stable order."""
    return sorted(p["id"] for p in live.pos.products() if p["has_variants"])


def _fresh_family(live: LiveStack) -> str:
    """A family no other test of this module touched."""
    key = next(k for k in _families(live) if k not in _used)
    _used.add(key)
    return key


def _state(live: LiveStack, family: str) -> CatalogState:
    return live.store().get_catalog_state(live.connection_id, family).state


def _set_policy(live: LiveStack, **changes: Any) -> None:
    store = live.store()
    current = store.get_connection(live.connection_id)
    assert current is not None
    store.save_connection(Connection.model_validate({**current.model_dump(), **changes}))


def _delete_product_by_hand(live: LiveStack, product_id: int) -> None:
    """The merchant deletes the product in the eCom back office and the products/deleted webhook never arrives
    (deliveries can be lost): the product, its variants, images and category links are gone."""
    sim = live.ecom
    with sim.lock:
        for table in ("variants", "productImages", "categoriesProducts"):
            for row in [r for r in sim.tables[table].values() if r["product"] == product_id]:
                del sim.tables[table][row["id"]]
        del sim.tables["products"][product_id]


def _delete_variant_by_hand(live: LiveStack, variant_id: int) -> None:
    with live.ecom.lock:
        del live.ecom.tables["variants"][variant_id]


def _products_titled(live: LiveStack, title: str) -> list[dict[str, Any]]:
    return [p for p in live.ecom.products() if p["title"] == title]


def _queue_settled(live: LiveStack) -> bool:
    """Nothing on the products queue, visible or in flight: no message is being retried."""
    sqs = live.session.client("sqs")
    attributes = sqs.get_queue_attributes(
        QueueUrl=os.environ["PRODUCTS_QUEUE_URL"],
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return (
        attributes["ApproximateNumberOfMessages"] == "0" and attributes["ApproximateNumberOfMessagesNotVisible"] == "0"
    )


def _dead_lettered(live: LiveStack) -> list[dict[str, Any]]:
    sqs = live.session.client("sqs")
    url = os.environ["PRODUCTS_QUEUE_URL"].replace("-products.fifo", "-products-dlq.fifo")
    return sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])


def _pos_variant_skus(live: LiveStack, family: str) -> set[str]:
    return {p["sku"] for p in live.pos.products() if p["variant_parent_id"] == family}


# -- a product deleted by hand in eCom -----------------------------------------------------------------------------


def test_a_product_deleted_by_hand_in_ecom_is_recreated_on_its_next_pos_change(live: LiveStack) -> None:
    _set_policy(live, ecom_deleted_product_policy="recreate")
    family = _fresh_family(live)
    before = _state(live, family)
    assert before.ecom_product_id is not None
    _delete_product_by_hand(live, before.ecom_product_id)

    live.pos.update_family(family, name="Recreated Parka")
    live.poll()

    recreated = live.wait_until(
        lambda: _products_titled(live, "Recreated Parka"), timeout=60, what="the family created again in eCom"
    )
    assert len(recreated) == 1 and recreated[0]["id"] != before.ecom_product_id
    skus = _pos_variant_skus(live, family)
    live.wait_until(
        lambda: {v["sku"] for v in live.ecom.variants(recreated[0]["id"])} == skus, what="its variants recreated"
    )
    live.wait_until(lambda: _queue_settled(live), what="no products message left in flight (no retry loop)")
    after = _state(live, family)
    assert after.ecom_product_id == recreated[0]["id"]
    assert {ref.ecom_variant_id for ref in after.variants.values()} == {
        v["id"] for v in live.ecom.variants(recreated[0]["id"])
    }
    live.wait_until(lambda: _queue_settled(live), what="no products message left in flight (no retry loop)")
    assert _dead_lettered(live) == []


def _operator(live: LiveStack, command: str, **args: Any) -> Any:
    """Run a `pos-ecom-sync catalog` command against this stack, as the operator would."""
    from pos_ecom_sync_cli import catalog

    target = SimpleNamespace(store=live.store(), session=live.session)
    namespace = SimpleNamespace(stack=live.stack.config.stack_name, connection_id=live.connection_id, **args)
    return getattr(catalog, f"cmd_{command}")(namespace, target)


def test_under_unlink_a_product_deleted_by_hand_stays_out_of_ecom_with_its_reason_until_relinked(
    live: LiveStack,
) -> None:
    _set_policy(live, ecom_deleted_product_policy="unlink")
    try:
        family = _fresh_family(live)
        before = _state(live, family)
        assert before.ecom_product_id is not None
        _delete_product_by_hand(live, before.ecom_product_id)

        live.pos.update_family(family, name="Unlinked Anorak")
        live.poll()
        state = live.wait_until(
            lambda: (s := _state(live, family)).unlinked_reason and s, timeout=60, what="the family unlinked"
        )
        live.wait_until(lambda: _queue_settled(live), what="no products message left in flight (no retry loop)")
        assert _dead_lettered(live) == []
        assert _products_titled(live, "Unlinked Anorak") == []
        assert state.ecom_product_id is None and state.variants == {}
        shown = _operator(live, "show", family_id=family)
        assert f"eCom product {before.ecom_product_id} was deleted in eCom" in shown["unlinked_reason"]
        assert "catalog relink" in shown["unlinked_reason"] and shown["unlinked_since"]

        # Later POS edits leave it out of eCom and fail nothing.
        live.pos.update_family(family, description="still unlinked")
        live.poll()
        live.wait_until(lambda: _queue_settled(live), what="the edit handled")
        assert _products_titled(live, "Unlinked Anorak") == [] and _dead_lettered(live) == []

        _operator(live, "relink", family_id=family)
        relinked = live.wait_until(
            lambda: _products_titled(live, "Unlinked Anorak"), timeout=60, what="the family back in eCom"
        )
        skus = _pos_variant_skus(live, family)
        live.wait_until(lambda: {v["sku"] for v in live.ecom.variants(relinked[0]["id"])} == skus, what="variants")
        live.wait_until(lambda: _queue_settled(live), what="the re-link handled")
        assert _state(live, family).unlinked_reason is None
    finally:
        _set_policy(live, ecom_deleted_product_policy="recreate")


@pytest.mark.parametrize("policy", ["recreate", "unlink"])
def test_a_variant_deleted_by_hand_while_its_product_remains_follows_the_policy(live: LiveStack, policy: str) -> None:
    _set_policy(live, ecom_deleted_product_policy=policy)
    try:
        family = _fresh_family(live)
        before = _state(live, family)
        lost_pos_id, lost_ref = sorted(before.variants.items())[0]
        kept = {pos_id: ref for pos_id, ref in before.variants.items() if pos_id != lost_pos_id}
        _delete_variant_by_hand(live, lost_ref.ecom_variant_id)

        # A price change on every variant: the lost one answers 404, the others must still be updated.
        for pos_id in before.variants:
            live.pos.update_product(pos_id, price_including_tax=77.0)
        live.poll()
        live.wait_until(
            lambda: (
                all(v["priceIncl"] == 77.0 for v in live.ecom.variants(before.ecom_product_id) if v["sku"] != "")
                and len(live.ecom.variants(before.ecom_product_id)) >= len(kept)
            ),
            timeout=60,
            what="the family's other variants updated",
        )
        live.wait_until(lambda: _queue_settled(live), what="no products message left in flight (no retry loop)")
        assert _dead_lettered(live) == []
        after = _state(live, family)
        assert after.ecom_product_id == before.ecom_product_id
        for pos_id, ref in kept.items():
            assert after.variants[pos_id].ecom_variant_id == ref.ecom_variant_id
        lost_sku = next(p["sku"] for p in live.pos.products() if p["id"] == lost_pos_id)
        ecom_skus = {v["sku"] for v in live.ecom.variants(before.ecom_product_id)}
        if policy == "recreate":
            assert lost_sku in ecom_skus
            assert after.variants[lost_pos_id].ecom_variant_id != lost_ref.ecom_variant_id
            assert not after.unlinked_variants
        else:
            assert lost_sku not in ecom_skus and lost_pos_id not in after.variants
            assert f"{lost_ref.ecom_variant_id}" in after.unlinked_variants[lost_pos_id]
            assert _operator(live, "show", family_id=family)["unlinked_variants"] == after.unlinked_variants
    finally:
        _set_policy(live, ecom_deleted_product_policy="recreate")


# -- the online price (seed 000) on X-Series: the online price book's entry, else the retail price -------------------


def _ecom_variant(live: LiveStack, family: str, pos_id: str) -> dict[str, Any]:
    ref = _state(live, family).variants[pos_id]
    return next(v for v in live.ecom.variants(ref.ecom_product_id) if v["id"] == ref.ecom_variant_id)


def _online_book(live: LiveStack) -> str:
    book = live.pos.add_price_book("Online store", restrict_to_platform_key="2")
    _set_policy(live, online_price_book_id=book["id"])
    return str(book["id"])


@pytest.fixture
def price_book_bumps_product(live: LiveStack, request: pytest.FixtureRequest) -> Iterator[bool]:
    """The unverified point, played both ways: does a price-book change give the product a new version?"""
    live.pos.price_book_change_bumps_product = request.param
    yield request.param
    live.pos.price_book_change_bumps_product = False
    _set_policy(live, online_price_book_id=None)


@pytest.mark.parametrize("price_book_bumps_product", [True, False], indirect=True)
def test_the_online_price_is_the_online_price_book_entry_else_the_retail_price(
    live: LiveStack, price_book_bumps_product: bool
) -> None:
    family = _fresh_family(live)
    online_id, retail_id = sorted(_state(live, family).variants)
    retail_row = next(p for p in live.pos.products() if p["id"] == retail_id)
    book = _online_book(live)

    def price_changes_travel() -> None:
        """The poller's sweep: when a price-book change moves the product's version the products feed carries it;
        when it does not, the poller's price-book feed (`pos:price_book_products`) does."""
        live.poll()

    for online_excl in (40.0, 35.5):  # an entry made, then changed
        live.pos.set_price_book_price(book, online_id, online_excl)
        live.pos.set_price_book_price(book, retail_id, 1.0, min_units=10)  # a quantity break is no unit price
        price_changes_travel()
        live.wait_until(
            lambda: _ecom_variant(live, family, online_id)["priceExcl"] == online_excl,  # noqa: B023
            timeout=60,
            what=f"the online price {online_excl} in eCom",
        )
        online_row = next(p for p in live.pos.products() if p["id"] == online_id)
        ratio = online_row["price_including_tax"] / online_row["price_excluding_tax"]
        assert _ecom_variant(live, family, online_id)["priceIncl"] == pytest.approx(online_excl * ratio, abs=1e-4)
        retail = _ecom_variant(live, family, retail_id)
        assert (retail["priceIncl"], retail["priceExcl"]) == pytest.approx(
            (retail_row["price_including_tax"], retail_row["price_excluding_tax"])
        )
    live.wait_until(lambda: _queue_settled(live), what="the price changes handled")
    assert _dead_lettered(live) == []
