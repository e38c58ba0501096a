"""The warm sandbox's reference lists (`reference.ReferenceCache`): `get` re-reads past an age, `find` trusts a row
it holds for long and re-reads a list that lacks one unless the list is brand new (the brand and category policy of
`catalog.sync.CatalogSync._named_id`, NAMES_KEPT_S / NAMES_RECHECK_S)."""

from __future__ import annotations

from typing import Any

from pos_ecom_sync.catalog.sync import NAMES_KEPT_S, NAMES_RECHECK_S
from pos_ecom_sync.reference import ReferenceCache

from tests.support import ManualClock

KEY = "shop|http://ecom|brands"
OLD_TTL_S = 300.0  # brands and categories were read again this often before


class Brands:
    """eCom's brand list as the merchant leaves it; counts the reads."""

    def __init__(self, *titles: str) -> None:
        self.rows: list[dict[str, Any]] = []
        self.reads = 0
        for title in titles:
            self.add(title)

    def add(self, title: str) -> dict[str, Any]:
        row = {"id": 300 + len(self.rows), "title": title}
        self.rows.append(row)
        return row

    def list(self) -> list[dict[str, Any]]:
        self.reads += 1
        return [dict(row) for row in self.rows]


def _find(cache: ReferenceCache, brands: Brands, title: str) -> dict[str, Any] | None:
    return cache.find(
        KEY, brands.list, lambda row: row["title"] == title, keep_s=NAMES_KEPT_S, recheck_s=NAMES_RECHECK_S
    )


def test_a_hit_after_the_old_ttl_costs_no_read() -> None:
    clock, brands = ManualClock(), Brands("Dockside")
    cache = ReferenceCache(clock=clock)
    assert _find(cache, brands, "Dockside") == {"id": 300, "title": "Dockside"}
    clock.now = 25 * 60  # the next import burst
    assert _find(cache, brands, "Dockside") == {"id": 300, "title": "Dockside"}
    assert brands.reads == 1


def test_a_hit_past_the_kept_age_reads_the_list_again() -> None:
    clock, brands = ManualClock(), Brands("Dockside")
    cache = ReferenceCache(clock=clock)
    _find(cache, brands, "Dockside")
    brands.rows[0]["title"] = "Dockside Supply"  # renamed in eCom
    clock.now = NAMES_KEPT_S - 1
    assert _find(cache, brands, "Dockside") is not None and brands.reads == 1
    clock.now = NAMES_KEPT_S
    assert _find(cache, brands, "Dockside") is None
    assert brands.reads == 2  # the fresh list answered the miss: no third read


def test_a_miss_reads_the_list_again_and_finds_what_the_merchant_made_since() -> None:
    clock, brands = ManualClock(), Brands("Dockside")
    cache = ReferenceCache(clock=clock)
    _find(cache, brands, "Dockside")
    merchants = brands.add("Northwind")
    clock.now = NAMES_RECHECK_S  # well within the old five minutes, which would have answered "none"
    assert _find(cache, brands, "Northwind") == merchants
    assert brands.reads == 2
    assert _find(cache, brands, "Northwind") == merchants and brands.reads == 2  # now held


def test_a_miss_right_after_a_read_does_not_read_again() -> None:
    clock, brands = ManualClock(), Brands("Dockside")
    cache = ReferenceCache(clock=clock)
    assert _find(cache, brands, "Northwind") is None  # the first read answers it: no second
    assert brands.reads == 1
    clock.now = NAMES_RECHECK_S - 1
    assert _find(cache, brands, "Tidewater") is None
    assert brands.reads == 1


def test_a_created_row_is_visible_without_a_read_until_the_list_is_read_again() -> None:
    clock, brands = ManualClock(), Brands("Dockside")
    cache = ReferenceCache(clock=clock)
    _find(cache, brands, "Northwind")
    ours = brands.add("Northwind")  # what our POST brands.json made
    cache.add(KEY, ours)
    clock.now = 10 * 60
    assert _find(cache, brands, "Northwind") == ours
    assert brands.reads == 1


def test_a_dropped_list_is_read_on_next_use() -> None:
    clock, brands = ManualClock(), Brands("Dockside")
    cache = ReferenceCache(clock=clock)
    _find(cache, brands, "Dockside")
    brands.rows.clear()  # deleted in eCom
    cache.drop(KEY)
    assert _find(cache, brands, "Dockside") is None
    assert brands.reads == 2


def test_get_keeps_its_ttl_for_the_other_lists() -> None:
    clock, registers = ManualClock(), Brands("Main")
    cache = ReferenceCache(clock=clock)
    cache.get("pos|registers", registers.list)
    clock.now = OLD_TTL_S - 1
    cache.get("pos|registers", registers.list)
    assert registers.reads == 1
    clock.now = OLD_TTL_S
    cache.get("pos|registers", registers.list)
    assert registers.reads == 2
    clock.now = OLD_TTL_S + 30
    cache.get("pos|registers", registers.list, max_age_s=20)  # a caller's own age
    assert registers.reads == 3
