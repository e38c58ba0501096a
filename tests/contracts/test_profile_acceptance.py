"""One acceptance suite for every POS profile: the same behaviours, held against each profile's simulator.

Each profile is driven only through its seam (`profiles.profile_named(name)`: `client(...)` with an in-memory rate
budget and token pair store, `change_feeds(...)`), the way connector frameworks hold every connector to one standard
suite. What differs per POS (how a POS user changes a product, what identifies one change of a row, a cursor in the
future, the token and throttling switches of its simulator) lives in a small adapter; a third POS passes by adding an
adapter and its name to `PROFILE_NAMES`.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import pytest
from pos_ecom_sync.errors import RateLimited
from pos_ecom_sync.models.connection import ApiSecrets, Connection
from pos_ecom_sync.models.feeds import ChangePage, PosFeed, VendorRow
from pos_ecom_sync.models.tokens import StoredTokens
from pos_ecom_sync.profiles import profile_named
from pos_ecom_sync.profiles.rseries.feeds import cursor_at
from pos_ecom_sync.ratelimit import InMemoryRateBudget

from local_stack.simulators.common import VendorSimulator
from local_stack.simulators.rseries import RSeriesSimulator
from local_stack.simulators.xseries import XSeriesSimulator
from tests.contract_recording import ContractRecorder

PROFILE_NAMES = ["x-series", "r-series"]
PAGE_SIZE = 3
XSERIES_APP = ("acceptance-app", "acceptance-app-secret-0001")


class FakeClock:
    """The simulators' and the budget's clock: a wait for a Retry-After passes instantly and is counted."""

    def __init__(self) -> None:
        self.now = float(int(time.time()))
        self.slept = 0.0
        self.on_sleep: Callable[[], Any] | None = None  # what the world does while we wait

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept += seconds
        self.now += seconds
        if self.on_sleep is not None:
            self.on_sleep()


class MemoryTokenPairStore:
    """`profiles.base.TokenPairStore` in memory, with the same lease rules as `state.token_store.TokenStore`."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self.item: StoredTokens | None = None
        self.saves = 0

    def load(self) -> StoredTokens | None:
        with self._lock:
            return self.item

    def acquire_lease(self, owner: str, lease_s: float) -> StoredTokens | None:
        with self._lock:
            item = self.item or StoredTokens(None, None, None, None)
            if item.lease_owner not in (None, owner) and (item.lease_until or 0) >= self._clock():
                return None
            self.item = StoredTokens(
                item.access_token, item.refresh_token, item.expires_at, item.seed, item.revision, owner,
                self._clock() + lease_s,
            )  # fmt: skip
            return self.item

    def save_pair(
        self, owner: str, access_token: str, refresh_token: str, expires_at: float | None, seed: str | None
    ) -> bool:
        with self._lock:
            if self.item is None or self.item.lease_owner != owner:
                return False
            self.item = StoredTokens(access_token, refresh_token, expires_at, seed, self.item.revision + 1)
            self.saves += 1
            return True

    def release(self, owner: str) -> None:
        with self._lock:
            if self.item is not None and self.item.lease_owner == owner:
                self.item = StoredTokens(
                    self.item.access_token, self.item.refresh_token, self.item.expires_at, self.item.seed,
                    self.item.revision,
                )  # fmt: skip


class PosAdapter(Protocol):
    """What the suite needs to know about one POS beyond its profile."""

    @property
    def name(self) -> str: ...
    @property
    def sim(self) -> VendorSimulator: ...
    @property
    def clock(self) -> FakeClock: ...
    @property
    def shares_positions(self) -> bool:
        """Whether several rows of the products feed can share one position (R-Series: one-second time stamps)."""
        ...

    def secrets(self) -> ApiSecrets: ...
    def connection(self) -> Connection: ...
    def change_products(self, count: int) -> list[str]: ...
    def row_id(self, row: VendorRow) -> str: ...
    def change_key(self, row: VendorRow) -> tuple[str, str]: ...
    def future_cursor(self) -> str: ...
    def expire_access_tokens(self) -> None: ...
    def refresh_grants(self) -> int: ...


@dataclass
class XSeriesAdapter:
    clock: FakeClock
    name: str = "x-series"
    shares_positions: bool = False
    sim: XSeriesSimulator = field(init=False)
    grant: dict[str, Any] = field(init=False)

    def __post_init__(self) -> None:
        self.sim = XSeriesSimulator(token="acceptance-personal-token", seed=17, clock=self.clock)
        self.sim.oauth.register(*XSERIES_APP)
        self.sim.start()
        self.sim.seed_catalog(4, 3, seed=17)
        self.grant = self.sim.oauth.authorize(XSERIES_APP[0])

    def secrets(self) -> ApiSecrets:
        return ApiSecrets.model_validate(
            {
                "pos_client_id": XSERIES_APP[0],
                "pos_client_secret": XSERIES_APP[1],
                "pos_refresh_token": self.grant["refresh_token"],
                "pos_access_token": self.grant["access_token"],
                "ecom_api_key": "key",
                "ecom_api_secret": "secret",
            }
        )

    def connection(self) -> Connection:
        return Connection(connection_id="acceptance", pos_base_url=self.sim.url, ecom_base_url="http://ecom.invalid")

    def change_products(self, count: int) -> list[str]:
        ids = [row["id"] for row in self.sim.products() if not row.get("deleted_at")][:count]
        for product_id in ids:
            self.sim.update_product(product_id, name=f"Renamed {product_id[:8]}")
        return ids

    def row_id(self, row: VendorRow) -> str:
        return str(row["id"])

    def change_key(self, row: VendorRow) -> tuple[str, str]:
        return str(row["id"]), str(row["version"])

    def future_cursor(self) -> str:
        return str(10**15)  # a version no retailer reaches

    def expire_access_tokens(self) -> None:
        self.sim.oauth.expire_access_tokens()

    def refresh_grants(self) -> int:
        return self.sim.oauth.refresh_grants


@dataclass
class RSeriesAdapter:
    clock: FakeClock
    name: str = "r-series"
    shares_positions: bool = True
    sim: RSeriesSimulator = field(init=False)
    grant: dict[str, Any] = field(init=False)

    def __post_init__(self) -> None:
        self.sim = RSeriesSimulator(seed=17, clock=self.clock)
        self.sim.start()
        self.sim.seed_catalog(matrices=3, variants_per_matrix=4, simple_items=3, seed=17)  # 4 rows per second
        self.grant = self.sim.issue_tokens()

    def secrets(self) -> ApiSecrets:
        return ApiSecrets.model_validate(
            {
                "pos_client_id": self.sim.client_id,
                "pos_client_secret": self.sim.client_secret,
                "pos_refresh_token": self.grant["refresh_token"],
                "pos_access_token": self.grant["access_token"],
                "ecom_api_key": "key",
                "ecom_api_secret": "secret",
            }
        )

    def connection(self) -> Connection:
        return Connection(
            connection_id="acceptance",
            pos_profile="r-series",
            pos_base_url=self.sim.url,
            pos_account_id=str(self.sim.account_id),
            ecom_base_url="http://ecom.invalid",
        )

    def change_products(self, count: int) -> list[str]:
        ids = [row["itemID"] for row in self.sim.items()][:count]
        for item_id in ids:  # all within the clock's current second: equal stamps
            self.sim.edit_item(int(item_id), description=f"Renamed {item_id}")
        return ids

    def row_id(self, row: VendorRow) -> str:
        return str(row["itemID"])

    def change_key(self, row: VendorRow) -> tuple[str, str]:
        return str(row["itemID"]), str(row["timeStamp"])

    def future_cursor(self) -> str:
        return cursor_at(int(self.clock()) + 10 * 86_400)

    def expire_access_tokens(self) -> None:
        self.sim.expire_access_tokens()

    def refresh_grants(self) -> int:
        return self.sim.refresh_grants


ADAPTERS: dict[str, Callable[[FakeClock], PosAdapter]] = {"x-series": XSeriesAdapter, "r-series": RSeriesAdapter}


@dataclass
class Rig:
    pos: PosAdapter
    clock: FakeClock
    tokens: MemoryTokenPairStore

    def products_feed(self, *, max_wait_s: float = 30.0, page_size: int = PAGE_SIZE) -> PosFeed:
        """A new run's products feed (the first `products` feed the profile gives), built through the seam."""
        profile = profile_named(self.pos.name)
        connection = self.pos.connection()
        budget = InMemoryRateBudget(clock=self.clock, sleep=self.clock.sleep)
        client = profile.client(connection, self.pos.secrets(), budget, lambda: self.tokens, max_wait_s=max_wait_s)
        feeds = profile.change_feeds(client, connection, page_size=page_size, family_of=lambda product_id: product_id)
        return next(feed for feed in feeds if feed.concern == "products")

    def walk(self, cursor: str | None = None, *, new_run_per_page: bool = False) -> list[ChangePage]:
        """Every page from `cursor` to the feed's end, as the poller walks it (`intake.poller`): the cursor moves
        to each page's, and a page with `more=False` (or an empty one) ends the run. `new_run_per_page` starts a
        new run (a new feed, nothing remembered) at every page, as when every run ends after one page."""
        feed = self.products_feed()
        pages: list[ChangePage] = []
        for _ in range(1000):
            page = feed.read(cursor)
            if not page.rows or page.cursor is None:
                return pages
            pages.append(page)
            cursor = page.cursor
            if new_run_per_page:
                feed = self.products_feed()
            elif not page.more:
                return pages
        raise AssertionError("the feed never ended")


def _keys(pos: PosAdapter, pages: list[ChangePage]) -> list[tuple[str, str]]:
    return [pos.change_key(row) for page in pages for row in page.rows]


@pytest.fixture(params=PROFILE_NAMES)
def rig(request: pytest.FixtureRequest, vendor_contracts: ContractRecorder) -> Iterator[Rig]:
    """A profile against its own simulator; its vendor traffic must conform to the vendor's contract."""
    clock = FakeClock()
    pos = ADAPTERS[request.param](clock)
    try:
        yield Rig(pos, clock, MemoryTokenPairStore(clock))
    finally:
        pos.sim.stop()


def test_a_feed_read_twice_gives_a_superset(rig: Rig) -> None:
    first = _keys(rig.pos, rig.walk())
    assert first
    rig.clock.now += 5
    changed = rig.pos.change_products(2)

    second = _keys(rig.pos, rig.walk())

    assert {row_id for row_id, _ in first} <= {row_id for row_id, _ in second}
    newer = {row_id for row_id, position in second if (row_id, position) not in set(first)}
    assert set(changed) <= newer  # the changes made since are in, as new changes


def test_resuming_from_every_checkpoint_yields_only_changes_at_or_after_it(rig: Rig) -> None:
    pages = rig.walk()
    assert len(pages) > 3, "too few pages to have checkpoints"
    for index, page in enumerate(pages[:-1]):
        assert page.cursor is not None
        later = _keys(rig.pos, pages[index + 1 :])

        resumed = _keys(rig.pos, rig.walk(page.cursor))

        assert sorted(resumed) == sorted(later), f"resuming after page {index}"


def test_a_cursor_in_the_future_yields_nothing_and_keeps_the_cursor(rig: Rig) -> None:
    rig.pos.change_products(1)  # a change before the cursor's moment is no change after it

    page = rig.products_feed().read(rig.pos.future_cursor())

    assert page.rows == []
    assert page.cursor is None  # the poller keeps the stored cursor when a page has none (intake.poller)


def test_equal_positions_at_a_page_edge_lose_nothing(rig: Rig) -> None:
    rig.clock.now += 5
    rig.pos.change_products(7)  # several rows at one position (R-Series: one second) spanning page edges
    whole = _keys(rig.pos, rig.walk())

    pages = rig.walk(new_run_per_page=True)  # every page edge is also a run's end: resumed from the stored cursor
    resumed = _keys(rig.pos, pages)

    assert sorted(resumed) == sorted(whole)
    assert len(resumed) == len(set(resumed)), "a change was delivered twice"
    if rig.pos.shares_positions:
        edges = [(a.rows[-1], b.rows[0]) for a, b in itertools.pairwise(pages)]
        assert any(rig.pos.change_key(a)[1] == rig.pos.change_key(b)[1] for a, b in edges), "no edge inside a second"


def test_an_access_token_expiring_mid_feed_is_refreshed_once(rig: Rig) -> None:
    whole = _keys(rig.pos, rig.walk())
    grants = rig.pos.refresh_grants()
    feed = rig.products_feed()
    first = feed.read(None)
    assert first.more

    rig.pos.expire_access_tokens()
    pages = [first]
    cursor = first.cursor
    while pages[-1].more:
        pages.append(feed.read(cursor))
        cursor = pages[-1].cursor

    assert sorted(_keys(rig.pos, pages)) == sorted(whole)
    assert rig.pos.refresh_grants() == grants + 1
    assert rig.tokens.saves == 1  # the rotated pair was stored (before its first use: profiles.oauth)


def test_a_429_is_honoured_never_retried_blindly(rig: Rig) -> None:
    rig.pos.sim.set_faults(throttle_rate=1.0)  # every call answered 429 with a Retry-After
    before = rig.pos.sim.requests

    with pytest.raises(RateLimited) as refused:
        rig.products_feed(max_wait_s=0.0).read(None)

    assert rig.pos.sim.requests == before + 1  # asked once, then waits for the Retry-After instead of re-asking
    assert refused.value.retry_at > rig.clock()

    # Allowed to wait, the client waits for the Retry-After and asks again once; the vendor serves it by then.
    before, slept = rig.pos.sim.requests, rig.clock.slept
    rig.clock.on_sleep = lambda: rig.pos.sim.set_faults(throttle_rate=0.0)
    page = rig.products_feed(max_wait_s=60.0).read(None)

    assert page.rows
    assert rig.pos.sim.requests == before + 2
    assert rig.clock.slept - slept >= 1.0  # both simulators' injected Retry-After is at least 1 s away
