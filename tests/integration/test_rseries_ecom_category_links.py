"""Seed 000, category two-way, eCom -> POS: a merchant filing one of our products under a category in eCom (a
`categories/products` link, for which eCom sends no webhook) reaches the R-Series family's Category through the real
path: change_poller's `ecom:category-links` sweep (`since_id`, NT categories-product.ts / ListQuery) -> products
queue -> product_sync -> R-Series simulator (`PUT ItemMatrix` / `PUT Item` categoryID). Links to eCom-only
categories stay eCom's, our own links are never taken back, and an X-Series connection never sweeps links."""

from __future__ import annotations

from typing import Any

from pos_ecom_sync import runtime
from pos_ecom_sync.connectors.ecom import EcomClient
from pos_ecom_sync.intake.category_links import ECOM_CATEGORY_LINKS_FEED, link_feed_for
from pos_ecom_sync.intake.poller import ChangePoller, FeedReport
from pos_ecom_sync.models.connection import Connection
from pos_ecom_sync.queues import ChangePublisher
from pos_ecom_sync.ratelimit import InMemoryRateBudget

from local_stack.demo import DEMO_SECRETS
from tests.integration.test_rseries_ecom_edits import synced, writes
from tests.integration.test_rseries_product_sync import CONNECTION, RSeriesCatalogRig
from tests.integration.test_rseries_product_sync import rig as rig  # the R-Series + eCom + moto fixture
from tests.support import drain_queue


def ecom(rig: RSeriesCatalogRig, reserve_share: float = 0.0) -> EcomClient:
    budget = InMemoryRateBudget(reserve_share=reserve_share)
    return EcomClient(rig.ecom.url, DEMO_SECRETS["ecom_api_key"], DEMO_SECRETS["ecom_api_secret"], budget)


def sweep(rig: RSeriesCatalogRig) -> FeedReport:
    """One change_poller run (POS feeds, eCom orders, eCom category links as runtime would wire them), then the
    products queue drained; the category-link feed's report."""
    rig.pos.clock.sleep(60)  # type: ignore[attr-defined]
    links = link_feed_for(runtime.takes_ecom_edits, lambda connection: ecom(rig, reserve_share=0.3))
    publisher = ChangePublisher(rig.deployment.queue_url, client=rig.deployment.sqs)
    report = ChangePoller(rig.deployment.store, publisher, category_links=links).poll(
        rig.connection, runtime.pos_change_feeds(rig.connection), ecom(rig)
    )
    for concern in ("stock", "orders", "statuses"):
        drain_queue(rig.deployment.sqs, rig.deployment.queue_url(concern))
    rig.pos.clock.sleep(3)  # type: ignore[attr-defined]
    rig.drain()
    return next(feed for feed in report.feeds if feed.feed == ECOM_CATEGORY_LINKS_FEED)


def a_matrix(rig: RSeriesCatalogRig) -> tuple[str, dict[str, Any]]:
    """(family key, its eCom product) of a synced matrix."""
    item = next(i for i in rig.pos.items() if i["itemMatrixID"] != "0")
    key = f"m{item['itemMatrixID']}"
    product = rig.ecom_product_of(key)
    assert product is not None
    return key, product


def category_name(rig: RSeriesCatalogRig, key: str) -> str | None:
    row = rig.pos.matrix(int(key[1:])) if key.startswith("m") else rig.pos.item(int(key))
    return {c["categoryID"]: c["name"] for c in rig.pos.categories()}.get(row["categoryID"])


def another_category(rig: RSeriesCatalogRig, key: str) -> tuple[str, int]:
    """(name, eCom category id) of an R-Series Category the family is not in, as the forward sync maps it: the eCom
    category of that title (made by the merchant here when no family used it yet)."""
    name = next(c["name"] for c in rig.pos.categories() if c["name"] != category_name(rig, key))
    found = next((c for c in rig.ecom.categories() if c["title"].casefold() == name.casefold()), None)
    return name, (found or rig.ecom.add_category(name))["id"]


def test_a_merchants_link_to_a_synced_category_becomes_the_matrix_category_and_its_echoes_bounce_nowhere(
    rig: RSeriesCatalogRig,
) -> None:
    synced(rig)
    first = sweep(rig)  # the links that exist already are the shop's: walked, never queued
    assert (first.queued, first.stopped) == (0, None)
    assert first.cursor == str(max(link["id"] for link in rig.ecom.category_links()))
    key, product = a_matrix(rig)
    name, category = another_category(rig, key)
    pos_writes, ecom_writes = writes(rig)

    ecom(rig).link_category(product["id"], category)  # the merchant, in eCom's back office
    report = sweep(rig)

    assert report.queued == 1
    assert category_name(rig, key) == name
    variants = [i for i in rig.pos.items() if i["itemMatrixID"] == key[1:]]
    assert {i["categoryID"] for i in variants} == {rig.pos.matrix(int(key[1:]))["categoryID"]}
    assert writes(rig) == (pos_writes + 1, ecom_writes + 1)  # PUT ItemMatrix; eCom: only the merchant's link

    # The R-Series feeds bring our write back (the matrix restamped): eCom already files the product there.
    again = sweep(rig)
    assert again.queued == 0
    assert writes(rig) == (pos_writes + 1, ecom_writes + 1)
    assert rig.dead_letters() == []


def test_a_link_to_an_ecom_only_category_changes_nothing_in_the_pos(rig: RSeriesCatalogRig) -> None:
    synced(rig)
    sweep(rig)
    key, product = a_matrix(rig)
    before = category_name(rig, key)
    clearance = rig.ecom.add_category("Clearance")  # no R-Series Category has that name
    pos_writes, _ = writes(rig)

    ecom(rig).link_category(product["id"], clearance["id"])
    report = sweep(rig)

    assert report.queued == 1  # queued, then judged by the worker: not a category synced with the POS
    assert category_name(rig, key) == before
    assert writes(rig)[0] == pos_writes
    assert rig.dead_letters() == []


def test_our_own_category_links_are_never_taken_back(rig: RSeriesCatalogRig) -> None:
    first = sweep(rig)  # a connection swept before its catalog arrives: nothing to walk, later links are all new
    assert first.cursor == "0"
    synced(rig)  # the import files every product under its category: our links
    key, _ = a_matrix(rig)
    name, _ = another_category(rig, key)
    target = next(c["categoryID"] for c in rig.pos.categories() if c["name"] == name)
    rig.pos.edit_matrix(int(key[1:]), categoryID=target)  # a POS change: the sync links the product there
    pos_writes = writes(rig)[0]

    report = sweep(rig)  # the POS change syncs and the import's links are swept, in one run
    report = sweep(rig)  # the link that sync made is swept

    assert report.queued == 1
    state = rig.deployment.store.get_catalog_state(CONNECTION, key).state
    ours = max(link["id"] for link in rig.ecom.category_links(state.ecom_product_id))
    assert state.category_link == ours
    assert category_name(rig, key) == name
    assert writes(rig)[0] == pos_writes
    assert rig.dead_letters() == []


def test_an_xseries_connection_never_sweeps_category_links() -> None:
    built: list[str] = []
    feed = link_feed_for(runtime.takes_ecom_edits, lambda connection: built.append(connection.connection_id))
    xseries = Connection(connection_id="xshop", pos_base_url="https://x.example", ecom_base_url="https://e.example")
    rseries = xseries.model_copy(update={"connection_id": "rshop", "pos_profile": "r-series"})

    assert xseries.pos_profile == "x-series"
    assert feed(xseries) is None
    feed(rseries)
    assert built == ["rshop"]
