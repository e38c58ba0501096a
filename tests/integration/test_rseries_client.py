"""The R-Series client against the R-Series simulator, the token pair in (moto) DynamoDB: V3 envelope quirks either
way the vendor may answer, next-URL paging, the leaky bucket priced per request and fed by the vendor's headers,
rotating OAuth tokens refreshed once and stored before use, and the calls later sync work makes (customers by email,
sales found again by their reference, the Online price set without touching the others)."""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from pos_ecom_sync.errors import AuthorizationRefused, RateLimited, UpstreamError
from pos_ecom_sync.profiles.rseries.auth import RSeriesTokens, token_url
from pos_ecom_sync.profiles.rseries.client import RSeriesClient
from pos_ecom_sync.profiles.rseries.feeds import FEEDS, StampFeedReader
from pos_ecom_sync.ratelimit import InMemoryRateBudget, rseries_policy
from pos_ecom_sync.state.token_store import TokenStore

from local_stack.simulators.rseries import RSeriesSimulator
from tests.integration.test_rate_budget import AtomicItemWrites
from tests.support import ManualClock

START = 1_796_000_000.0


@dataclass
class Rig:
    sim: RSeriesSimulator
    clock: ManualClock
    table: str
    dynamodb: Any

    def store(self) -> TokenStore:
        return TokenStore(self.table, "shop", "rseries", client=self.dynamodb, clock=self.clock)

    def tokens(self, grant: dict[str, Any], *, knows_expiry: bool = True) -> RSeriesTokens:
        """A worker's view of the connection: the secret holds the first grant, the sync table the live pair."""
        return RSeriesTokens(
            self.sim.url,
            self.sim.client_id,
            self.sim.client_secret,
            grant["refresh_token"],
            self.store(),
            access_token=grant["access_token"],
            expires_at=self.clock() + grant["expires_in"] if knows_expiry else None,
            clock=self.clock,  # waits for another worker's refresh really sleep: the refresher's grant takes real time
        )

    def client(
        self, tokens: RSeriesTokens | None = None, *, budget: InMemoryRateBudget | None = None, **kwargs: Any
    ) -> RSeriesClient:
        return RSeriesClient(
            self.sim.url,
            budget or InMemoryRateBudget(clock=self.clock, sleep=self.clock.sleep),
            token=None if tokens else self.sim.issue_tokens()["access_token"],
            token_provider=tokens,
            clock=self.clock,
            sleep=self.clock.sleep,
            **kwargs,
        )


def _simulator(clock: ManualClock, **options: Any) -> RSeriesSimulator:
    sim = RSeriesSimulator(clock=clock, seed=5, **{"rate_limit": False, **options})
    sim.start()
    return sim


@pytest.fixture
def rig(request: pytest.FixtureRequest, sync_table: str, dynamodb_client: Any) -> Iterator[Rig]:
    clock = ManualClock(START)
    options = request.param if hasattr(request, "param") else {}
    sim = _simulator(clock, **options)
    sim.seed_catalog(matrices=3, variants_per_matrix=4, simple_items=4, seed=5)
    try:
        yield Rig(sim, clock, sync_table, AtomicItemWrites(dynamodb_client))
    finally:
        sim.stop()


# -- envelope and paging --------------------------------------------------------------------------------------------


def test_the_account_is_resolved_when_the_connection_does_not_name_it(rig: Rig) -> None:
    client = rig.client()
    assert client.get_account_id() == str(rig.sim.account_id)
    assert len(client.list_shops()) == 2


@pytest.mark.parametrize(
    "rig", [{"single_row_list_as_object": True}, {"single_row_list_as_object": False}], indirect=True
)
def test_a_one_row_list_reads_the_same_whether_the_vendor_sends_an_object_or_an_array(rig: Rig) -> None:
    client = rig.client(account_id=str(rig.sim.account_id))
    item = rig.sim.items()[0]

    [found] = client.get_items([item["itemID"]])
    [one_shop] = [row for row in client.list_item_shops([item["itemID"]]) if row["shopID"] == "1"]

    assert found["itemID"] == item["itemID"]
    assert one_shop["itemID"] == item["itemID"]


def test_a_list_is_followed_through_its_next_urls_to_the_end(rig: Rig) -> None:
    client = rig.client(account_id=str(rig.sim.account_id))
    items = [row["itemID"] for row in rig.sim.items()]
    before = rig.sim.requests

    rows = client.list_item_shops(items)

    assert len(rows) == len(items) * 3  # two shops and the all-shops row per item
    assert rig.sim.requests - before == 1  # 48 rows: one page of 100
    assert len(client.get_items(items)) == len(items)


def test_the_online_price_level_is_found_by_name_and_a_missing_one_is_none(rig: Rig) -> None:
    client = rig.client()
    level = client.find_price_level("Online")
    assert level is not None and level["priceLevelID"] == str(rig.sim.online_price_level_id)

    other = _simulator(rig.clock, online_price_level_id=None)
    try:
        assert (
            RSeriesClient(other.url, InMemoryRateBudget(), token=other.issue_tokens()["access_token"]).find_price_level(
                "Online"
            )
            is None
        )
    finally:
        other.stop()


# -- rate budget ----------------------------------------------------------------------------------------------------


def test_each_request_is_priced_and_the_vendors_bucket_level_corrects_the_estimate(
    sync_table: str, dynamodb_client: Any
) -> None:
    clock = ManualClock(START)
    sim = _simulator(clock, rate_limit=True)
    try:
        budget = InMemoryRateBudget(clock=clock, sleep=clock.sleep)
        client = RSeriesClient(sim.url, budget, token=sim.issue_tokens()["access_token"], account_id="88000")
        item_id = sim.add_item("Gift wrap", 4.0, qoh={1: 5})
        client.list_shops()
        client.create_sale(
            {
                "shopID": "1",
                "registerID": "1",
                "employeeID": "1",
                "completed": "true",
                "SaleLines": {"SaleLine": [{"itemID": str(item_id), "unitQuantity": "1"}]},
                "SalePayments": {"SalePayment": [{"paymentTypeID": "1", "amount": "4"}]},
            }
        )
        bucket = budget.state(rseries_policy()).bucket
        assert bucket is not None
        # 1 (Shop) + 2 (Sale POST) + 3 (completed) + 0.5 x (line + payment) = 7 drips, as the vendor counts them.
        assert sim.drips_used == pytest.approx(7.0)
        assert bucket.level_at(clock()) == pytest.approx(sim.bucket_level(), abs=0.5)
    finally:
        sim.stop()


def test_a_full_bucket_is_waited_out_never_hammered(sync_table: str, dynamodb_client: Any) -> None:
    clock = ManualClock(START)
    sim = _simulator(clock, rate_limit=True, burst_limit=0)
    try:
        token = sim.issue_tokens()["access_token"]
        with httpx.Client(base_url=sim.api_base, headers={"Authorization": f"Bearer {token}"}) as other:
            while other.get("/Shop.json").status_code != 429:  # another invocation of the app drained the bucket
                pass
        client = RSeriesClient(sim.url, InMemoryRateBudget(clock=clock, sleep=clock.sleep), token=token,
                               account_id="88000", max_wait_s=0.0, clock=clock)  # fmt: skip
        before = sim.requests

        with pytest.raises(RateLimited) as throttled:
            client.list_shops()

        assert sim.requests == before + 1  # one 429, then the Retry-After is honoured
        assert throttled.value.retry_at >= clock() + 1
    finally:
        sim.stop()


# -- OAuth ----------------------------------------------------------------------------------------------------------


def test_the_token_endpoint_is_lightspeeds_cloud_host_for_the_real_api() -> None:
    assert token_url("https://api.lightspeedapp.com") == "https://cloud.lightspeedapp.com/auth/oauth/token"
    assert token_url("http://127.0.0.1:8123") == "http://127.0.0.1:8123/auth/oauth/token"


def test_an_expired_token_is_refreshed_once_and_the_rotated_pair_is_stored_before_its_first_use(rig: Rig) -> None:
    grant = rig.sim.issue_tokens()
    tokens = rig.tokens(grant, knows_expiry=False)  # only the 401 says it expired
    store = tokens._store
    original_save = store.save_pair
    unused_when_saved: list[bool] = []

    def save_pair(owner: str, access: str, refresh: str, expires_at: float | None, seed: str | None) -> bool:
        unused_when_saved.append(not rig.sim.oauth.access[access].used)
        return original_save(owner, access, refresh, expires_at, seed)

    store.save_pair = save_pair  # type: ignore[method-assign,assignment]
    client = rig.client(tokens)
    assert client.list_shops()
    rig.sim.expire_access_tokens()
    before = rig.sim.requests

    assert client.list_shops() and client.list_price_levels()

    assert rig.sim.refresh_grants == 1 and tokens.refreshes == 1
    assert rig.sim.requests - before == 4  # the refused call, the token grant, the resend, the next call
    assert unused_when_saved == [True]
    stored = rig.store().load()
    assert stored is not None and stored.refresh_token not in (None, grant["refresh_token"])
    assert stored.expires_at == pytest.approx(rig.clock() + 1800)
    # The new access token's first use revoked the refresh token it was granted for.
    old = httpx.post(
        rig.sim.token_url,
        json={
            "grant_type": "refresh_token",
            "refresh_token": grant["refresh_token"],
            "client_id": rig.sim.client_id,
            "client_secret": rig.sim.client_secret,
        },
    )
    assert old.status_code == 400 and old.json()["error"] == "invalid_grant"


def test_a_token_is_refreshed_ahead_of_its_known_expiry(rig: Rig) -> None:
    grant = rig.sim.issue_tokens()
    tokens = rig.tokens(grant)
    rig.clock.now += grant["expires_in"] - 60  # inside the margin: a call could outlive the token

    rig.client(tokens).list_shops()

    assert rig.sim.refresh_grants == 1 and rig.sim.unauthorized == 0


def test_concurrent_workers_of_one_connection_refresh_once_and_all_succeed(rig: Rig) -> None:
    grant = rig.sim.issue_tokens()
    rig.sim.expire_access_tokens()
    workers = [rig.tokens(grant, knows_expiry=False) for _ in range(6)]
    start = threading.Barrier(len(workers))
    results: list[Any] = [None] * len(workers)

    def work(index: int) -> None:
        start.wait()
        try:
            results[index] = rig.client(workers[index], account_id="88000").list_shops()
        except Exception as exc:  # reported below with the others' results
            results[index] = exc

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(workers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert all(isinstance(r, list) and r for r in results), results
    assert rig.sim.refresh_grants == 1 and sum(w.refreshes for w in workers) == 1
    assert rig.sim.refused_grants == 0


def test_a_revoked_app_is_a_clear_authorization_error(rig: Rig) -> None:
    grant = rig.sim.issue_tokens()
    tokens = rig.tokens(grant, knows_expiry=False)
    rig.sim.revoke_refresh_tokens()  # the merchant removed the app

    with pytest.raises(AuthorizationRefused) as refused:
        rig.client(tokens).list_shops()

    assert "invalid_grant" in refused.value.message and "re-authorize" in refused.value.message
    assert grant["refresh_token"] not in refused.value.message and rig.sim.client_secret not in refused.value.message


# -- calls later sync work makes ----------------------------------------------------------------------------------


def test_customers_are_found_by_any_of_their_email_addresses_and_created_with_one(rig: Rig) -> None:
    client = rig.client(account_id="88000")
    assert client.find_customers_by_email("ann@example.com") == []

    created = client.create_customer("Ann", "Lee", "ann@example.com")
    found = client.find_customers_by_email("ANN@example.com ")

    assert [row["customerID"] for row in found] == [created["customerID"]]


def test_an_online_order_becomes_a_sale_found_again_by_its_reference(rig: Rig) -> None:
    client = rig.client(account_id="88000")
    item = rig.sim.items()[0]
    sale = client.create_sale(
        {
            "shopID": "1",
            "registerID": "1",
            "employeeID": "1",
            "completed": "true",
            "referenceNumber": "5501001",
            "referenceNumberSource": "eCom",
            "SaleLines": {"SaleLine": {"itemID": item["itemID"], "unitQuantity": "1", "unitPrice": "10"}},
            "SalePayments": {"SalePayment": {"paymentTypeID": "1", "amount": "10", "remoteReference": "ecom-5501001"}},
        }
    )

    found = client.find_sale_by_reference("5501001", "eCom")

    assert found is not None and found["saleID"] == sale["saleID"]
    assert found["SalePayments"]["SalePayment"]["remoteReference"] == "ecom-5501001"
    assert client.find_sale_by_reference("5501001", "amazon") is None
    again = client.get_sale(sale["saleID"])
    assert again is not None and again["completed"] == "true"
    assert client.get_sale("999999") is None


@pytest.mark.parametrize("rig", [{"price_put_keeps_other_levels": True}, {"price_put_keeps_other_levels": False}],
                         indirect=True)  # fmt: skip
def test_setting_the_online_price_never_touches_the_default_price(rig: Rig) -> None:
    client = rig.client(account_id="88000")
    item = rig.sim.items()[0]
    default = next(p["amount"] for p in item["Prices"]["ItemPrice"] if p["useType"] == "Default")
    online = str(rig.sim.online_price_level_id)

    client.set_item_price(item["itemID"], online, Decimal("12.5"))

    prices = {p["useTypeID"]: p["amount"] for p in rig.sim.item(int(item["itemID"]))["Prices"]["ItemPrice"]}
    assert prices[online] == "12.5" and prices["1"] == default


def test_items_are_found_by_code_and_sku_and_never_archived_by_update(rig: Rig) -> None:
    client = rig.client(account_id="88000")
    item = rig.sim.items()[0]

    assert [row["itemID"] for row in client.find_items_by_code(item["ean"])] == [item["itemID"]]
    assert [row["itemID"] for row in client.find_items_by_sku(item["customSku"])] == [item["itemID"]]
    assert client.update_item(item["itemID"], {"description": "Renamed"})["description"] == "Renamed"
    with pytest.raises(ValueError, match="DELETE"):
        client.update_item(item["itemID"], {"archived": "true"})
    matrix = client.get_matrix(item["itemMatrixID"])
    assert matrix is not None and len(client.list_matrix_items(item["itemMatrixID"])) == 4


def test_a_next_url_on_another_origin_is_never_followed(rig: Rig) -> None:
    client = rig.client(account_id="88000")
    with pytest.raises(UpstreamError, match="another origin"):
        client.next_page("Item", "https://evil.example.com/API/V3/Account/88000/Item.json?after=x")


# -- feeds ----------------------------------------------------------------------------------------------------------


def _read_all(client: RSeriesClient, entity: str, cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
    spec = next(s for s in FEEDS if s.entity == entity)
    read = StampFeedReader(client, spec, 100)
    rows: list[dict[str, Any]] = []
    while True:
        page = read(cursor)
        if not page.rows:
            return rows, cursor
        rows += page.rows
        cursor = page.cursor
        if not page.more:
            return rows, cursor


def test_archivals_stock_changes_and_voids_reach_their_feeds(rig: Rig) -> None:
    client = rig.client(account_id="88000")
    item = rig.sim.items()[0]
    sale = rig.sim.create_sale([(int(item["itemID"]), 1)])
    cursors = {entity: _read_all(client, entity, None)[1] for entity in ("Item", "ItemShop", "Sale")}
    rig.clock.now += 10

    rig.sim.archive_item(int(rig.sim.items()[1]["itemID"]))
    rig.sim.set_qoh(int(item["itemID"]), 2, 7)
    rig.sim.void_sale(int(sale["saleID"]))

    items, _ = _read_all(client, "Item", cursors["Item"])
    shops, _ = _read_all(client, "ItemShop", cursors["ItemShop"])
    sales, _ = _read_all(client, "Sale", cursors["Sale"])
    assert [row["archived"] for row in items] == ["true"]  # archived=true: the archival is seen
    assert {(row["itemID"], row["shopID"]) for row in shops} >= {(item["itemID"], "2")}
    assert [(row["saleID"], row["voided"]) for row in sales] == [(sale["saleID"], "true")]


def test_every_next_url_the_vendor_gives_is_followed_to_the_end(rig: Rig) -> None:
    client = rig.client(account_id="88000")
    page = client.list_changes("ItemShop", None, limit=1)
    rows, signatures = list(page.rows), []
    while page.next_url is not None:
        after = dict(parse_qsl(urlsplit(page.next_url).query))["after"]
        signatures.append(base64.urlsafe_b64decode(after)[-6:])
        page = client.next_page("ItemShop", page.next_url)
        rows += page.rows

    assert len(rows) == len({row["itemShopID"] for row in rows}) == 16 * 3
    assert any(b"." in signature for signature in signatures)  # an opaque cursor of any content is followed
