"""R-Series Category and Manufacturer renames reach eCom through the real path: R-Series simulator -> change_poller's
`pos:Category` / `pos:Manufacturer` feeds (a changed row fans out to the families using it) -> products queue ->
product_sync -> eCom simulator. A family's eCom category and brand are its Category and Manufacturer names (seed
000 "brand = Manufacturer"), and an Item's timeStamp does not move when they are renamed (KVH item.md), so without
these feeds a rename would never reach eCom."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from pos_ecom_sync import runtime
from pos_ecom_sync.connectors.ecom import EcomClient
from pos_ecom_sync.intake.poller import ChangePoller, PollReport
from pos_ecom_sync.models.feeds import PosFeed
from pos_ecom_sync.queues import ChangePublisher
from pos_ecom_sync.ratelimit import InMemoryRateBudget

from local_stack.demo import DEMO_SECRETS
from tests.integration.test_rseries_product_sync import CONNECTION, RSeriesCatalogRig
from tests.integration.test_rseries_product_sync import rig as rig  # the R-Series + eCom + moto fixture
from tests.support import drain_queue

REFERENCE_FEEDS = ("pos:Category", "pos:Manufacturer")


@dataclass(frozen=True)
class Shop:
    """A small catalog: a matrix and a simple item in Tops by Dockside, the same in Misc by Northwind."""

    tops: int
    misc: int
    dockside: int
    northwind: int
    tops_families: tuple[str, str]
    misc_families: tuple[str, str]


def later(rig: RSeriesCatalogRig, seconds: float = 60.0) -> None:
    """The vendor's clock moves on (a poll interval): its bucket drips, so our rate budget never waits for it."""
    rig.pos.clock.sleep(seconds)  # type: ignore[attr-defined]


def drain(rig: RSeriesCatalogRig) -> None:
    later(rig)
    rig.drain()


def poll(rig: RSeriesCatalogRig, *, has_time: Callable[[], bool] = lambda: True, **options: int) -> PollReport:
    """One change_poller run through the connection's R-Series feeds (other queues than products emptied)."""
    later(rig)
    ecom = EcomClient(rig.ecom.url, DEMO_SECRETS["ecom_api_key"], DEMO_SECRETS["ecom_api_secret"], InMemoryRateBudget())
    publisher = ChangePublisher(rig.deployment.queue_url, client=rig.deployment.sqs)
    report = ChangePoller(rig.deployment.store, publisher, **options).poll(  # type: ignore[arg-type]
        rig.connection, runtime.pos_change_feeds(rig.connection), ecom, has_time
    )
    for concern in ("stock", "orders", "statuses"):
        drain_queue(rig.deployment.sqs, rig.deployment.queue_url(concern))
    return report


def queued(report: PollReport, feeds: tuple[str, ...] = REFERENCE_FEEDS) -> int:
    return sum(feed.queued for feed in report.feeds if feed.feed in feeds)


def synced_shop(rig: RSeriesCatalogRig) -> Shop:
    pos = rig.pos
    tops, misc = pos.add_category("Tops"), pos.add_category("Misc")
    dockside, northwind = pos.add_manufacturer("Dockside"), pos.add_manufacturer("Northwind")
    families = []
    for category, maker, name in ((tops, dockside, "Harbor Tee"), (misc, northwind, "Canvas Tote")):
        matrix_id, _ = pos.add_matrix(name, 30.0, [("Navy", "M"), ("White", "M")])
        pos.edit_matrix(matrix_id, categoryID=category, manufacturerID=maker)
        item_id = pos.add_item(f"{name} Solo", 20.0, custom_sku=f"SOLO-{category}", category_id=category,
                               manufacturer_id=maker)  # fmt: skip
        families.append((f"m{matrix_id}", str(item_id)))
    first = poll(rig)
    drain(rig)
    assert queued(first) == 0  # a first read records the categories and manufacturers: the import reads the names
    assert rig.dead_letters() == []
    later(rig)  # stamps are whole seconds: later edits are newer
    return Shop(tops, misc, dockside, northwind, families[0], families[1])


def category_titles(rig: RSeriesCatalogRig, family_key: str) -> set[str]:
    product = rig.ecom_product_of(family_key)
    assert product is not None
    titles = {category["id"]: category["title"] for category in rig.ecom.categories()}
    return {titles[link["category"]["resource"]["id"]] for link in rig.ecom.category_links(product["id"])}


def brand_title(rig: RSeriesCatalogRig, family_key: str) -> str | None:
    product = rig.ecom_product_of(family_key)
    assert product is not None
    brand = product.get("brand")
    if not isinstance(brand, dict):
        return None
    titles = {row["id"]: str(row["title"]) for row in rig.ecom.brands()}
    return titles[brand["resource"]["id"]]


def hashes(rig: RSeriesCatalogRig, families: tuple[str, ...]) -> dict[str, str | None]:
    return {key: rig.deployment.store.get_catalog_state(CONNECTION, key).state.product_hash for key in families}


def test_a_category_rename_reaches_every_ecom_product_filed_under_it_and_only_those(rig: RSeriesCatalogRig) -> None:
    shop = synced_shop(rig)
    everyone = shop.tops_families + shop.misc_families
    assert all(category_titles(rig, key) == {"Tops"} for key in shop.tops_families)
    before = hashes(rig, everyone)

    rig.pos.edit_category(shop.tops, name="Shirts")  # the items in it keep their timeStamp
    report = poll(rig)
    drain(rig)

    assert queued(report, ("pos:Item", "pos:ItemMatrix")) == 0  # the product feeds never see a rename
    assert queued(report, ("pos:Category",)) == 2  # the matrix and the simple item filed under Tops
    after = hashes(rig, everyone)
    for key in shop.tops_families:
        assert "Shirts" in category_titles(rig, key)
        assert after[key] != before[key]  # the family's content changed with the name: eCom was written
    assert {key: after[key] for key in shop.misc_families} == {key: before[key] for key in shop.misc_families}
    assert rig.dead_letters() == []
    assert queued(poll(rig)) == 0  # fanned out once


def test_a_manufacturer_rename_becomes_the_brand_of_its_products(rig: RSeriesCatalogRig) -> None:
    shop = synced_shop(rig)
    assert brand_title(rig, shop.misc_families[0]) == "Northwind"

    rig.pos.edit_manufacturer(shop.northwind, "Northwind & Co")
    report = poll(rig)
    drain(rig)

    assert queued(report, ("pos:Manufacturer",)) == 2
    assert [brand_title(rig, key) for key in shop.misc_families] == ["Northwind & Co"] * 2
    assert [brand_title(rig, key) for key in shop.tops_families] == ["Dockside"] * 2
    assert rig.dead_letters() == []


def test_moving_a_category_reaches_its_families_and_writes_nothing_when_the_name_is_unchanged(
    rig: RSeriesCatalogRig,
) -> None:
    shop = synced_shop(rig)
    everyone = shop.tops_families + shop.misc_families
    before, ecom_writes = hashes(rig, everyone), rig.ecom.stats()["writes"]

    rig.pos.edit_category(shop.tops, parent_id=shop.misc)  # fullPathName "Misc/Tops"; eCom files by name
    report = poll(rig)
    drain(rig)

    assert queued(report, ("pos:Category",)) == 2
    assert hashes(rig, everyone) == before
    assert rig.ecom.stats()["writes"] == ecom_writes
    assert rig.dead_letters() == []


def test_a_rename_used_by_many_items_is_fanned_out_page_by_page_across_runs_without_loss_or_repeat(
    rig: RSeriesCatalogRig,
) -> None:
    shop = synced_shop(rig)
    socks = [str(rig.pos.add_item(f"Sock {n}", 5.0, custom_sku=f"SOCK-{n}", category_id=shop.tops)) for n in range(11)]
    poll(rig)
    drain(rig)
    later(rig)
    rig.pos.edit_category(shop.tops, name="Shirts")
    cursor = rig.deployment.store.get_cursor(CONNECTION, "pos:Category").value

    # Every run ends after one page (a spent time or rate budget): the next resumes from the stored cursor.
    families: list[str] = []
    pages = requests = 0
    for _ in range(40):
        later(rig)  # a poll interval between runs
        feed = next(f for f in category_feeds(rig, page_size=3) if f.name == "pos:Category")
        before = rig.pos.stats()["requests"]
        page = feed.read(cursor)
        requests = max(requests, rig.pos.stats()["requests"] - before)
        if not page.rows or page.cursor is None:
            break
        assert len(page.rows) <= 3
        families += [m.entity_id for m in feed.to_messages(page.rows, datetime.now(UTC))]
        cursor, pages = page.cursor, pages + 1

    assert sorted(families) == sorted([*socks, *shop.tops_families])  # every family using Tops, each once
    assert pages >= 1 + 12 // 3 + 1  # the category row, then the simple items 3 a page, then the matrix
    assert requests <= 2  # one list request a page (plus the account id a new client asks once)


def category_feeds(rig: RSeriesCatalogRig, *, page_size: int) -> list[PosFeed]:
    pos = runtime.pos_change_feeds(rig.connection)
    return pos.change_feeds(rig.connection, page_size=page_size, family_of=lambda product_id: product_id)


def test_an_ignored_category_filter_still_queues_only_the_families_using_it(rig: RSeriesCatalogRig) -> None:
    shop = synced_shop(rig)
    rig.pos.using_filters = False  # the vendor ignores categoryID/manufacturerID: every row comes back

    rig.pos.edit_category(shop.tops, name="Shirts")
    report = poll(rig, page_size=2)
    drain(rig)

    assert queued(report, ("pos:Category",)) == 2
    assert all("Shirts" in category_titles(rig, key) for key in shop.tops_families)
    assert all(category_titles(rig, key) == {"Misc"} for key in shop.misc_families)
    assert rig.dead_letters() == []


def test_a_full_products_queue_pauses_the_fan_out_until_it_drains(rig: RSeriesCatalogRig) -> None:
    shop = synced_shop(rig)
    rig.pos.edit_manufacturer(shop.dockside, "Dockside Ltd")

    paused = poll(rig, max_products_backlog=1)
    resumed = poll(rig)
    drain(rig)

    feed = next(f for f in paused.feeds if f.feed == "pos:Manufacturer")
    assert feed.stopped is not None and "products queue is full" in feed.stopped
    assert queued(paused) + queued(resumed) == 2
    assert [brand_title(rig, key) for key in shop.tops_families] == ["Dockside Ltd"] * 2
