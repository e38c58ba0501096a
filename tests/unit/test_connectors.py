"""Vendor connectors against fake transports: request shapes, paging, error mapping, retries, budget."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from pos_ecom_sync.connectors.ecom import EcomClient
from pos_ecom_sync.errors import ConfigurationError, NotFound, RateLimited, UpstreamError, UpstreamUnavailable
from pos_ecom_sync.profiles.rseries.client import RSeriesClient
from pos_ecom_sync.profiles.xseries.client import ChangePage, XSeriesClient
from pos_ecom_sync.ratelimit import ECOM_POLICY, XSERIES_POLICY, InMemoryRateBudget

from tests.support import ManualClock

T0 = 1_750_000_000.0
TOKEN = "tok-secret-123"
KEY, SECRET = "ecom-key", "ecom-secret"


Answer = httpx.Response | Exception
Route = Callable[[httpx.Request], Answer]


class FakeVendor:
    """A MockTransport handler: answers from a list of scripted replies (or a function), records requests."""

    def __init__(self, *answers: Answer | Route) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if callable(answer) and not isinstance(answer, httpx.Response):
            answer = answer(request)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def query(self, index: int = -1) -> dict[str, str]:
        return {k: v[-1] for k, v in parse_qs(self.requests[index].url.query.decode()).items()}


def ok(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers)


def throttled(retry_after: str) -> httpx.Response:
    return httpx.Response(
        429,
        json={"error": "Too Many Requests", "message": "Rate limiting enforced"},
        headers={"Retry-After": retry_after},
    )


def http_date(epoch: float) -> str:
    return format_datetime(datetime.fromtimestamp(epoch, UTC), usegmt=True)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def budget(clock: ManualClock) -> InMemoryRateBudget:
    return InMemoryRateBudget(clock=clock, sleep=clock.sleep)


def xseries(vendor: FakeVendor, budget: InMemoryRateBudget, clock: ManualClock, **kwargs: Any) -> XSeriesClient:
    return XSeriesClient(
        "https://shop.retail.lightspeed.app/",
        TOKEN,
        budget,
        transport=httpx.MockTransport(vendor),
        clock=clock,
        sleep=clock.sleep,
        **kwargs,
    )


def ecom(vendor: FakeVendor, budget: InMemoryRateBudget, clock: ManualClock, **kwargs: Any) -> EcomClient:
    return EcomClient(
        "https://api.webshopapp.com",
        KEY,
        SECRET,
        budget,
        language="nl",
        transport=httpx.MockTransport(vendor),
        clock=clock,
        sleep=clock.sleep,
        **kwargs,
    )


# -- X-Series: shapes ---------------------------------------------------------------------------------


def test_xseries_sends_the_bearer_token_and_pages_changes_by_version(budget, clock) -> None:
    vendor = FakeVendor(
        ok({"data": [{"id": "p1", "version": 11}, {"id": "p2", "version": 12}], "version": {"min": 11, "max": 12}})
    )
    page = xseries(vendor, budget, clock).list_changes("products", after=10, page_size=2)

    request = vendor.requests[0]
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.url.path == "/api/2.0/products"
    assert vendor.query() == {"after": "10", "page_size": "2", "deleted": "true"}
    assert page == ChangePage([{"id": "p1", "version": 11}, {"id": "p2", "version": 12}], 12)


def test_xseries_first_page_has_no_after_and_an_empty_page_has_no_cursor(budget, clock) -> None:
    vendor = FakeVendor(ok({"data": [], "version": {"min": None, "max": None}}))
    page = xseries(vendor, budget, clock).list_changes("inventory", after=None, include_deleted=False)
    assert vendor.query() == {"page_size": "200"}
    assert page == ChangePage([], None)


def test_xseries_asks_for_deleted_rows_only_on_feeds_that_declare_the_parameter(budget, clock) -> None:
    vendor = FakeVendor(ok({"data": [], "version": {"min": 5, "max": 5}}))
    client = xseries(vendor, budget, clock)
    for feed in ("products", "customers", "inventory", "sales"):
        client.list_changes(feed, after=5)
    sent = {r.url.path.rsplit("/", 1)[-1]: "deleted" in r.url.query.decode() for r in vendor.requests}
    assert sent == {"products": True, "customers": True, "inventory": False, "sales": False}


def test_xseries_refuses_a_feed_it_does_not_know(budget, clock) -> None:
    with pytest.raises(ValueError, match="change feed"):
        xseries(FakeVendor(ok({})), budget, clock).list_changes("registers", after=None)


def test_xseries_reference_lists_walk_every_page(budget, clock) -> None:
    first = ok({"data": [{"id": f"r{i}"} for i in range(200)], "version": {"min": 1, "max": 200}})
    last = ok({"data": [{"id": "r200"}], "version": {"min": 201, "max": 201}})
    vendor = FakeVendor(first, last)
    registers = xseries(vendor, budget, clock).list_registers()
    assert len(registers) == 201
    assert [r.url.path for r in vendor.requests] == ["/api/2.0/registers"] * 2
    assert vendor.query(1)["after"] == "200"


def test_xseries_lookups_return_none_for_a_404(budget, clock) -> None:
    client = xseries(FakeVendor(ok({"error": "Not Found"}, 404)), budget, clock)
    assert client.get_product("missing") is None
    assert client.get_sale("missing") is None


def test_xseries_inventory_of_an_unknown_product_is_not_found_never_zero_stock(budget, clock) -> None:
    client = xseries(FakeVendor(ok({"error": "Not Found"}, 404)), budget, clock)
    with pytest.raises(NotFound):
        client.list_product_inventory("missing")


def test_xseries_find_by_sku_and_customer_search_match_exactly(budget, clock) -> None:
    products = ok({"data": [{"id": "1", "sku": "HT-1"}, {"id": "2", "sku": "HT-10"}]})
    customers = ok({"data": [{"id": "c1", "email": "Mira@Example.com"}, {"id": "c2", "email": "other@example.com"}]})
    vendor = FakeVendor(products, customers)
    client = xseries(vendor, budget, clock)
    assert [p["id"] for p in client.find_products_by_sku("HT-1")] == ["1"]
    assert [c["id"] for c in client.search_customers("mira@example.com")] == ["c1"]
    assert vendor.requests[1].url.path == "/api/2.0/search"
    assert vendor.query(1) == {"type": "customers", "email": "mira@example.com"}


def test_xseries_creates_customers_and_sales_with_their_bodies(budget, clock) -> None:
    vendor = FakeVendor(ok({"data": {"id": "c9", "first_name": "Mira"}}, 201), ok({"data": {"id": "s1"}}))
    client = xseries(vendor, budget, clock)
    assert client.create_customer("Mira", "Okafor", "mira@example.com")["id"] == "c9"  # 201, as X20 documents
    sale = {"id": "s1", "source": {"author_id": "u1", "id": "ecom-1"}, "state": "pending"}
    assert client.create_sale(sale) == {"id": "s1"}
    assert json.loads(vendor.requests[0].content) == {
        "first_name": "Mira",
        "last_name": "Okafor",
        "email": "mira@example.com",
    }
    assert vendor.requests[1].url.path == "/api/2026-07/sales" and json.loads(vendor.requests[1].content) == sale


def test_xseries_reads_a_sale_by_the_id_we_chose_and_none_when_the_pos_has_none(budget, clock) -> None:
    vendor = FakeVendor(ok({"data": {"id": "s2", "source": {"id": "ecom-1"}}}), ok({"error": "Not Found"}, 404))
    client = xseries(vendor, budget, clock)
    assert client.find_sale("s2") == {"id": "s2", "source": {"id": "ecom-1"}}
    assert client.find_sale("s3") is None
    assert [r.url.path for r in vendor.requests] == ["/api/2026-07/sales/s2", "/api/2026-07/sales/s3"]
    assert all(not r.url.query for r in vendor.requests)  # a read by id: no search, no filter


def test_xseries_payments_and_voids_go_through_0_9_register_sales(budget, clock) -> None:
    vendor = FakeVendor(ok({"register_sale": {"id": "s1", "status": "VOIDED"}}))
    assert xseries(vendor, budget, clock).update_register_sale({"id": "s1", "status": "VOIDED"})["status"] == "VOIDED"
    assert vendor.requests[0].url.path == "/api/register_sales"


def test_xseries_reads_a_family_from_its_parent_and_the_variant_search_never_a_family_filter(budget, clock) -> None:
    parent = {"id": "p", "has_variants": True, "variant_parent_id": None}
    variants = [{"id": f"v{n}", "variant_parent_id": "p"} for n in range(3)]
    stranger = {"id": "x", "variant_parent_id": "other"}  # a vendor answering more than asked is filtered here
    vendor = FakeVendor(ok({"data": parent}), ok({"data": [*variants, stranger]}))
    family = xseries(vendor, budget, clock).list_family("p")
    assert [row["id"] for row in family] == ["p", "v0", "v1", "v2"]
    assert vendor.requests[0].url.path == "/api/2.0/products/p"
    assert vendor.requests[1].url.path == "/api/2.0/search"
    assert vendor.query(1) == {"type": "products", "variant_parent_id": "p", "deleted": "true", "page_size": "1000"}


def test_xseries_family_search_walks_offset_pages_until_a_short_one(budget, clock) -> None:
    page = [{"id": f"v{n}", "variant_parent_id": "p"} for n in range(1000)]
    rest = [{"id": "v1000", "variant_parent_id": "p"}]
    vendor = FakeVendor(ok({"data": {"id": "p", "has_variants": True}}), ok({"data": page}), ok({"data": rest}))
    assert len(xseries(vendor, budget, clock).list_family("p")) == 1002
    assert vendor.query(2)["offset"] == "1000"


def test_xseries_webhook_subscription_is_idempotent(budget, clock) -> None:
    existing = {"id": "w1", "url": "https://hooks/x", "type": "sale.update", "active": True}
    vendor = FakeVendor(ok({"error": "already exists"}, 409), ok({"data": [existing]}))
    hook = xseries(vendor, budget, clock).create_webhook("https://hooks/x", "sale.update")
    assert hook == existing
    assert json.loads(vendor.requests[0].content) == {"url": "https://hooks/x", "active": True, "type": "sale.update"}


# -- errors and retries -------------------------------------------------------------------------------


def test_a_4xx_becomes_upstream_error_with_the_vendors_text_and_no_token(budget, clock) -> None:
    vendor = FakeVendor(ok({"error": "Bad Request", "details": "first_name is required"}, 400))
    with pytest.raises(UpstreamError) as raised:
        xseries(vendor, budget, clock).create_customer("", "", "a@example.com")
    assert raised.value.status == 400
    assert "first_name is required" in raised.value.body
    assert TOKEN not in str(raised.value)


def test_a_get_is_retried_with_exponential_backoff_after_a_5xx(budget, clock) -> None:
    vendor = FakeVendor(ok({}, 503), ok({}, 500), ok({"data": {"id": "p1"}}))
    client = xseries(vendor, budget, clock)
    assert client.get_product("p1") == {"id": "p1"}
    assert clock.slept == [0.5, 1.0]
    assert client.calls == 3 == budget.granted


def test_a_get_that_keeps_failing_becomes_upstream_unavailable(budget, clock) -> None:
    vendor = FakeVendor(ok({"error": "boom"}, 502))
    with pytest.raises(UpstreamUnavailable, match="502"):
        xseries(vendor, budget, clock, max_retries=2).get_product("p1")
    assert len(vendor.requests) == 3


def test_a_post_that_may_have_been_applied_is_never_sent_twice(budget, clock) -> None:
    for failure in (ok({}, 500), httpx.ReadTimeout("read timed out")):
        vendor = FakeVendor(failure)
        with pytest.raises(UpstreamUnavailable):
            xseries(vendor, budget, clock).create_sale({"id": "s1"})
        assert len(vendor.requests) == 1


def test_a_post_whose_connection_never_opened_is_retried(budget, clock) -> None:
    vendor = FakeVendor(httpx.ConnectError("refused"), ok({"data": {"id": "s1"}}))
    assert xseries(vendor, budget, clock).create_sale({"id": "s1"}) == {"id": "s1"}
    assert len(vendor.requests) == 2


def test_a_timed_out_get_is_retried_and_the_error_names_no_query(budget, clock) -> None:
    vendor = FakeVendor(httpx.ReadTimeout("timed out"))
    with pytest.raises(UpstreamUnavailable) as raised:
        xseries(vendor, budget, clock, max_retries=1).search_customers("private@example.com")
    assert len(vendor.requests) == 2
    assert "private@example.com" not in str(raised.value)
    assert "ReadTimeout" in str(raised.value)


# -- rate limits through the connector ------------------------------------------------------------------


def test_every_call_takes_a_slot_and_the_headers_teach_the_budget(budget, clock) -> None:
    headers = {"X-RateLimit-Limit": "650", "X-RateLimit-Remaining": "600", "X-RateLimit-Reset": str(int(T0) + 100)}
    client = xseries(FakeVendor(ok({"data": []}, headers=headers)), budget, clock)
    client.list_registers()
    window = budget.state(XSERIES_POLICY).windows[0]
    assert (window.limit, window.used) == (650, 50)
    assert window.end == pytest.approx(T0 + 100, abs=2)
    assert client.calls == budget.granted == 1


def test_a_429_with_an_http_date_waits_when_short_and_the_call_then_succeeds(budget, clock) -> None:
    vendor = FakeVendor(throttled(http_date(T0 + 1)), ok({"data": {"id": "p1"}}))
    assert xseries(vendor, budget, clock, max_wait_s=2.0).get_product("p1") == {"id": "p1"}
    assert clock.slept == [pytest.approx(1.0)]
    assert len(vendor.requests) == 2


def test_a_429_with_a_long_retry_after_raises_rate_limited_with_the_vendors_time(budget, clock) -> None:
    vendor = FakeVendor(throttled(http_date(T0 + 120)), ok({"data": []}))
    with pytest.raises(RateLimited) as raised:
        xseries(vendor, budget, clock, max_wait_s=2.0).list_changes("sales", after=5)
    assert raised.value.retry_at == T0 + 120
    assert len(vendor.requests) == 1  # delayed, not retried in a loop


def test_a_throttled_post_is_retried_because_the_vendor_did_nothing(budget, clock) -> None:
    vendor = FakeVendor(throttled(http_date(T0 + 1)), ok({"data": {"id": "s1"}}))
    assert xseries(vendor, budget, clock).create_sale({"id": "s1"}) == {"id": "s1"}
    assert len(vendor.requests) == 2


def test_a_vendor_that_keeps_throttling_past_its_own_retry_after_ends_in_rate_limited(budget, clock) -> None:
    vendor = FakeVendor(lambda _request: throttled("0"))
    with pytest.raises(RateLimited):
        xseries(vendor, budget, clock).get_product("p1")
    assert len(vendor.requests) == 5


def test_an_exhausted_budget_sends_nothing(budget, clock) -> None:
    headers = {"X-RateLimit-Limit": "1", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(T0) + 200)}
    vendor = FakeVendor(ok({"data": {"id": "p1"}}, headers=headers))
    client = xseries(vendor, budget, clock)
    client.get_product("p1")
    with pytest.raises(RateLimited):
        client.get_product("p1")
    assert len(vendor.requests) == 1


class CountingBudget(InMemoryRateBudget):
    """Counts `acquire` calls (a shared budget's writes) and the slots each took."""

    def __init__(self, clock: ManualClock) -> None:
        super().__init__(clock=clock, sleep=clock.sleep)
        self.takes: list[int] = []

    def acquire(self, policy: Any, *, max_wait_s: float, cost: float = 1.0, slots: int = 1) -> float:
        self.takes.append(slots)
        return super().acquire(policy, max_wait_s=max_wait_s, cost=cost, slots=slots)


def test_an_order_and_its_lines_take_their_two_slots_in_one_take(clock) -> None:
    budget = CountingBudget(clock)
    vendor = FakeVendor(ok({"order": {"id": 5}}), ok({"orderProducts": [{"id": 1}]}))
    client = ecom(vendor, budget, clock)

    assert client.order_with_lines(5) == ({"id": 5}, [{"id": 1}])

    assert budget.takes == [2] and client.calls == len(vendor.requests) == 2
    assert [w.used for w in budget.state(ECOM_POLICY).windows] == [2, 2, 2, 2]  # both counted in every window
    client.get_order(6)
    assert budget.takes == [2, 1]  # nothing left ahead: the next request takes its own


def test_a_slot_taken_ahead_is_not_used_once_a_window_that_counted_it_has_ended(clock) -> None:
    budget = CountingBudget(clock)
    order = ok({"order": {"id": 5}})

    def slow(request: httpx.Request) -> httpx.Response:
        clock.now += 1.2  # past eCom's 20 / s window (1 s + 0.1 s margin) that counted both slots
        return order

    client = ecom(FakeVendor(slow, ok({"orderProducts": []})), budget, clock)
    client.order_with_lines(5)

    assert budget.takes == [2, 1]  # the lines took a slot of their own, in the window they fall in
    second = budget.state(ECOM_POLICY).windows[3]
    assert second.used == 1 and second.end > clock.now


def test_a_429_drops_the_slot_taken_ahead(clock) -> None:
    budget = CountingBudget(clock)
    vendor = FakeVendor(throttled("1"), ok({"order": {"id": 5}}), ok({"orderProducts": []}))
    client = ecom(vendor, budget, clock, max_wait_s=5.0)
    client.order_with_lines(5)
    assert budget.takes == [2, 1, 1]  # the retry waited for the budget like any request, then the lines


def test_a_budget_that_prices_each_request_is_not_taken_ahead(budget, clock) -> None:
    client = RSeriesClient("https://api.lightspeedapp.com", budget, token=TOKEN, account_id="1", clock=clock)
    client.http.take_ahead(2)  # R-Series' bucket: each request's cost is known only when it is sent
    assert budget.granted == 0
    with pytest.raises(ConfigurationError):
        budget.acquire(client.http.policy, max_wait_s=0, slots=2)


# -- eCom ---------------------------------------------------------------------------------------------


NZDT = timezone(timedelta(hours=13))


def test_ecom_uses_basic_auth_and_language_urls_and_sorts_orders_by_id(budget, clock) -> None:
    vendor = FakeVendor(ok({"orders": [{"id": 9}, {"id": 3}]}))
    page = ecom(vendor, budget, clock).list_orders(datetime(2026, 1, 2, 16, 4, 5, tzinfo=NZDT), since_id=2, limit=500)

    request = vendor.requests[0]
    assert request.headers["Authorization"] == "Basic " + base64.b64encode(f"{KEY}:{SECRET}".encode()).decode()
    assert request.url.path == "/nl/orders.json"
    # since_id, never a deep page; the date in NT types.ts's "YYYY-MM-DD HH:MM:SS", in UTC.
    assert vendor.query() == {"since_id": "2", "limit": "250", "updated_at_min": "2026-01-02 03:04:05"}
    assert [o["id"] for o in page.orders] == [3, 9]
    assert page.next_since_id is None  # a short page is the last


def test_ecom_order_pages_continue_after_the_highest_id_until_a_short_page(budget, clock) -> None:
    full = [{"id": i} for i in range(1, 251)]
    vendor = FakeVendor(ok({"orders": full}), ok({"orders": [{"id": 251}]}))
    client = ecom(vendor, budget, clock)
    first = client.list_orders(None, limit=250)
    second = client.list_orders(None, since_id=first.next_since_id)
    assert (first.next_since_id, second.next_since_id) == (250, None)
    assert "since_id" not in vendor.query(0) and vendor.query(1)["since_id"] == "250"


def test_ecom_orders_a_shop_returned_despite_the_date_filter_are_dropped_but_the_walk_goes_on(budget, clock) -> None:
    """A shop that ignored (or misread) `updated_at_min` answers every order: only the ones updated since the bound
    come back, and the next page is still read, so an ignored filter costs calls, never orders."""
    old = [{"id": i, "updatedAt": "2026-01-01T00:00:00+00:00"} for i in range(1, 250)]
    fresh = {"id": 250, "updatedAt": "2026-01-02T14:00:00+13:00"}  # 01:00 UTC: after the bound
    vendor = FakeVendor(ok({"orders": [*old, fresh]}))
    page = ecom(vendor, budget, clock).list_orders(datetime(2026, 1, 2, tzinfo=UTC))
    assert [o["id"] for o in page.orders] == [250]
    assert page.next_since_id == 250


def test_ecom_headers_teach_all_three_windows(budget, clock) -> None:
    headers = {
        "X-RateLimit-Limit": "300/3000/12000",
        "X-RateLimit-Remaining": "250/2500/11000",
        "X-RateLimit-Reset": "60/600/6000",
    }
    ecom(FakeVendor(ok({"orders": []}, headers=headers)), budget, clock).list_orders(None)
    assert [w.used for w in budget.state(ECOM_POLICY).windows] == [50, 500, 1000, 1]


def test_ecom_429_in_seconds_is_waited_out(budget, clock) -> None:
    vendor = FakeVendor(throttled("1"), ok({"order": {"id": 5}}))
    assert ecom(vendor, budget, clock).get_order(5) == {"id": 5}
    assert clock.slept[0] == pytest.approx(1.0)


def test_ecom_webhook_subscription_body(budget, clock) -> None:
    vendor = FakeVendor(ok({"webhook": {"id": 1, "address": "https://hooks/e"}}))
    hook = ecom(vendor, budget, clock).create_webhook("orders", "*", "https://hooks/e")
    assert hook["id"] == 1
    assert vendor.requests[0].url.path == "/nl/webhooks.json"
    # No `language` (NT webhookInputSchema has none): the hook takes the URL path's language.
    assert json.loads(vendor.requests[0].content) == {
        "webhook": {
            "isActive": True,
            "url": "https://hooks/e",
            "format": "json",
            "itemGroup": "orders",
            "itemAction": "*",
        }
    }


def test_ecom_writes_use_singular_envelopes(budget, clock) -> None:
    vendor = FakeVendor(
        ok({"product": {"id": 1}}),
        ok({"product": {"id": 1, "title": "B"}}),
        ok({"variant": {"id": 2}}),
        ok({"variant": {"id": 2, "stockLevel": 7}}),
        ok({"order": {"id": 3, "status": "cancelled"}}),
    )
    client = ecom(vendor, budget, clock)
    client.create_product({"title": "A", "brand": None})  # no brand: a new product has none to clear
    client.update_product(1, {"title": "B"})
    client.create_variant({"product": 1, "sku": "S"})
    assert client.update_variant(2, {"stockLevel": 7}) == {"id": 2, "stockLevel": 7}
    client.update_order(3, {"status": "cancelled"})
    sent = [(r.method, r.url.path, json.loads(r.content)) for r in vendor.requests]
    assert sent == [
        ("POST", "/nl/products.json", {"product": {"title": "A"}}),
        ("PUT", "/nl/products/1.json", {"product": {"title": "B"}}),
        ("POST", "/nl/variants.json", {"variant": {"product": 1, "sku": "S"}}),
        ("PUT", "/nl/variants/2.json", {"variant": {"stockLevel": 7}}),
        ("PUT", "/nl/orders/3.json", {"order": {"status": "cancelled"}}),
    ]
    assert not hasattr(client, "update_shipping_method")  # shipping methods are read-only (PHP: get/count)


def test_ecom_deletes_are_idempotent(budget, clock) -> None:
    vendor = FakeVendor(httpx.Response(200), ok({"error": {"message": "Not found"}}, 404))
    client = ecom(vendor, budget, clock)
    assert client.delete_variant(2) is True
    assert client.delete_product(1) is False


def test_ecom_lookups_return_none_for_a_404_and_lines_of_an_unknown_order_raise(budget, clock) -> None:
    client = ecom(FakeVendor(ok({"error": "Not found"}, 404)), budget, clock)
    assert client.get_product(1) is None
    assert client.get_order(1) is None
    with pytest.raises(NotFound):
        client.list_order_products(1)


def test_ecom_order_lines_and_lists_read_their_envelopes(budget, clock) -> None:
    vendor = FakeVendor(
        ok({"orderProducts": [{"id": 1, "sku": "S"}]}),
        ok({"webhooks": [{"id": 8}]}),
    )
    client = ecom(vendor, budget, clock)
    assert client.list_order_products(5) == [{"id": 1, "sku": "S"}]
    assert client.list_webhooks() == [{"id": 8}]
    assert vendor.requests[0].url.path == "/nl/orders/5/products.json"


def test_ecom_variants_are_paged_and_filtered(budget, clock) -> None:
    def ref(product_id: int) -> dict[str, Any]:
        return {"resource": {"id": product_id, "url": f"products/{product_id}"}}

    full = [{"id": i, "sku": f"S{i}", "product": ref(1)} for i in range(250)]
    rest = [{"id": 250, "sku": "S250", "product": ref(1)}, {"id": 251, "sku": "X", "product": ref(2)}]
    vendor = FakeVendor(ok({"variants": full}), ok({"variants": rest}))
    variants = ecom(vendor, budget, clock).list_variants(product_id=1)
    assert len(variants) == 251
    assert vendor.query(0) == {"product": "1", "limit": "250"}
    assert vendor.query(1) == {"product": "1", "since_id": "249", "limit": "250"}  # after the highest id, no page


def test_ecom_ids_cannot_change_the_path(budget, clock) -> None:
    with pytest.raises(ValueError):
        ecom(FakeVendor(ok({})), budget, clock).get_product("1/../../admin")  # type: ignore[arg-type]


def test_an_injected_httpx_client_is_used_as_is(budget, clock) -> None:
    vendor = FakeVendor(ok({"data": []}))
    with httpx.Client(transport=httpx.MockTransport(vendor)) as shared:
        client = XSeriesClient("https://shop.retail.lightspeed.app", TOKEN, budget, client=shared)
        assert client.list_registers() == []
    assert vendor.requests[0].headers["Authorization"] == f"Bearer {TOKEN}"


# -- eCom catalog: images, brands, categories -----------------------------------------------------------


def test_ecom_product_images_are_a_product_sub_resource(budget, clock) -> None:
    vendor = FakeVendor(
        ok({"productImages": [{"id": 12, "sortOrder": 2}, {"id": 11, "sortOrder": 1}]}),
        ok({"productImage": {"id": 13, "src": "https://cdn.webshopapp.com/shops/1/files/2/a.jpg"}}, 201),
        httpx.Response(204),
        ok({"error": {"message": "Not found"}}, 404),
    )
    client = ecom(vendor, budget, clock)

    assert [i["id"] for i in client.list_product_images(7)] == [11, 12]  # display order
    assert client.create_product_image(7, "https://img.example.com/a.jpg")["id"] == 13
    assert client.delete_product_image(7, 13) is True
    assert client.delete_product_image(7, 13) is False  # already gone

    sent = [(r.method, r.url.path) for r in vendor.requests]
    assert sent == [
        ("GET", "/nl/products/7/images.json"),
        ("POST", "/nl/products/7/images.json"),
        ("DELETE", "/nl/products/7/images/13.json"),
        ("DELETE", "/nl/products/7/images/13.json"),
    ]
    assert vendor.query(0) == {"limit": "250"}
    assert json.loads(vendor.requests[1].content) == {"productImage": {"attachment": "https://img.example.com/a.jpg"}}


def test_ecom_images_of_an_unknown_product_raise_not_found(budget, clock) -> None:
    with pytest.raises(NotFound):
        ecom(FakeVendor(ok({"error": "Not found"}, 404)), budget, clock).list_product_images(7)


def test_ecom_image_ids_cannot_change_the_path(budget, clock) -> None:
    with pytest.raises(ValueError):
        ecom(FakeVendor(ok({})), budget, clock).delete_product_image(7, "1/../../x")  # type: ignore[arg-type]


def test_ecom_an_image_upload_is_never_sent_twice_but_list_and_delete_are_retried(budget, clock) -> None:
    vendor = FakeVendor(ok({}, 503))
    client = ecom(vendor, budget, clock, max_retries=1)
    with pytest.raises(UpstreamUnavailable):
        client.create_product_image(7, "https://img.example.com/a.jpg")
    assert len(vendor.requests) == 1

    vendor = FakeVendor(ok({}, 500), ok({"productImages": []}), ok({}, 503), httpx.Response(204))
    client = ecom(vendor, budget, clock)
    assert client.list_product_images(7) == []
    assert client.delete_product_image(7, 1) is True
    assert len(vendor.requests) == 4


def test_ecom_brands_and_categories_are_listed_and_created_with_singular_envelopes(budget, clock) -> None:
    full = [{"id": i, "title": f"B{i}"} for i in range(250)]
    vendor = FakeVendor(
        ok({"brands": full}),
        ok({"brands": [{"id": 250, "title": "Last"}]}),
        ok({"brand": {"id": 301, "title": "Harbor"}}, 201),
        ok({"categories": [{"id": 9001, "title": "Tees", "parent": False}]}),
        ok({"category": {"id": 9002, "title": "Caps"}}, 201),
    )
    client = ecom(vendor, budget, clock)

    assert len(client.list_brands()) == 251
    assert client.create_brand("Harbor") == {"id": 301, "title": "Harbor"}
    assert client.list_categories() == [{"id": 9001, "title": "Tees", "parent": False}]
    assert client.create_category("Caps")["id"] == 9002

    sent = [(r.method, r.url.path) for r in vendor.requests]
    assert sent == [
        ("GET", "/nl/brands.json"),
        ("GET", "/nl/brands.json"),
        ("POST", "/nl/brands.json"),
        ("GET", "/nl/categories.json"),
        ("POST", "/nl/categories.json"),
    ]
    assert vendor.query(1)["since_id"] == "249" and "page" not in vendor.query(1)
    assert json.loads(vendor.requests[2].content) == {"brand": {"title": "Harbor"}}
    assert json.loads(vendor.requests[4].content) == {"category": {"title": "Caps"}}


def test_ecom_category_links_are_listed_by_product_and_created(budget, clock) -> None:
    def ref(kind: str, entity_id: int) -> dict[str, Any]:
        return {"resource": {"id": entity_id, "url": f"{kind}/{entity_id}", "link": ""}}

    links = [
        {"id": 1, "category": ref("categories", 9001), "product": ref("products", 7)},
        {"id": 2, "category": ref("categories", 9002), "product": ref("products", 8)},  # a vendor ignoring the filter
    ]
    vendor = FakeVendor(
        ok({"categoriesProducts": links}),
        ok({"categoriesProduct": {"id": 3, "sortOrder": 1}}, 201),
    )
    client = ecom(vendor, budget, clock)

    assert [link["id"] for link in client.list_category_links(7)] == [1]
    assert client.link_category(7, 9002) == {"id": 3, "sortOrder": 1}

    sent = [(r.method, r.url.path) for r in vendor.requests]
    assert sent == [
        ("GET", "/nl/categories/products.json"),
        ("POST", "/nl/categories/products.json"),
    ]
    assert vendor.query(0) == {"product": "7", "limit": "250"}
    assert json.loads(vendor.requests[1].content) == {"categoriesProduct": {"category": 9002, "product": 7}}


def test_ecom_a_duplicate_category_link_is_an_upstream_error(budget, clock) -> None:
    vendor = FakeVendor(ok({"error": {"message": "product 7 is already in category 9001"}}, 400))
    with pytest.raises(UpstreamError) as raised:
        ecom(vendor, budget, clock).link_category(7, 9001)
    assert raised.value.status == 400 and "already in category" in raised.value.body
    assert len(vendor.requests) == 1


def test_ecom_variant_image_is_sent_as_a_product_image_id(budget, clock) -> None:
    vendor = FakeVendor(ok({"variant": {"id": 2, "image": {"src": "https://cdn/a.jpg"}}}))
    client = ecom(vendor, budget, clock)
    assert client.set_variant_image(2, 13) is True
    assert json.loads(vendor.requests[0].content) == {"variant": {"image": 13}}
    assert client.limits == []


def test_ecom_a_refused_variant_image_lets_the_other_fields_land(budget, clock) -> None:
    vendor = FakeVendor(
        refusal("unknown variant field(s): image"),
        ok({"variant": {"id": 2, "priceIncl": 9.0, "image": False}}),
        ok({"variant": {"id": 3, "priceIncl": 8.0, "image": False}}),
    )
    client = ecom(vendor, budget, clock)
    assert client.update_variant(2, {"priceIncl": 9.0, "image": 13})["priceIncl"] == 9.0
    assert client.update_variant(3, {"priceIncl": 8.0, "image": 14})["priceIncl"] == 8.0  # learnt: not sent again
    assert client.set_variant_image(3, 14) is False  # nothing sent at all now
    bodies = [json.loads(r.content)["variant"] for r in vendor.requests]
    assert bodies == [{"priceIncl": 9.0, "image": 13}, {"priceIncl": 9.0}, {"priceIncl": 8.0}]
    assert len(client.limits) == 3


def test_ecom_a_variant_image_refused_on_its_own_is_logged_not_raised(budget, clock) -> None:
    client = ecom(FakeVendor(refusal("unknown variant field(s): image")), budget, clock)
    assert client.set_variant_image(2, 13) is False
    assert client.limits == ["variant 2: eCom refused its image"]


def test_ecom_an_ignored_variant_image_is_noticed(budget, clock) -> None:
    client = ecom(FakeVendor(ok({"variant": {"id": 2, "image": False}})), budget, clock)
    assert client.set_variant_image(2, 13) is False
    assert client.limits == ["variant 2: eCom ignored its image"]


def test_ecom_products_created_since_are_walked_with_created_at_min_and_sorted(budget, clock) -> None:
    before = {"id": 2, "createdAt": "2026-01-02T03:00:00+00:00"}  # a shop that ignored the filter sends it too
    vendor = FakeVendor(ok({"products": [{"id": 9}, {"id": 4, "createdAt": "2026-01-02T03:04:05+00:00"}, before]}))
    products = ecom(vendor, budget, clock).list_products_created_since(datetime(2026, 1, 2, 3, 4, 5))
    assert [p["id"] for p in products] == [4, 9]  # no readable stamp: kept (the caller matches titles anyway)
    assert vendor.requests[0].url.path == "/nl/products.json"
    assert vendor.query() == {"created_at_min": "2026-01-02 03:04:05", "limit": "250"}


def test_ecom_a_list_whose_vendor_ignores_since_id_ends_instead_of_looping(budget, clock) -> None:
    full = [{"id": i, "title": f"B{i}"} for i in range(1, 251)]
    vendor = FakeVendor(ok({"brands": full}), ok({"brands": full}))
    assert len(ecom(vendor, budget, clock).list_brands()) == 250
    assert len(vendor.requests) == 2


# -- eCom points no source settles: each survives either answer ------------------------------------------


def refusal(message: str) -> httpx.Response:
    return ok({"error": {"code": 400, "method": "PUT", "request": "/nl/x.json", "message": message}}, 400)


def test_ecom_clearing_a_brand_sends_false_and_lands_when_accepted(budget, clock) -> None:
    vendor = FakeVendor(ok({"product": {"id": 1, "brand": False}}))
    client = ecom(vendor, budget, clock)
    assert client.update_product(1, {"title": "B", "brand": None}) == {"id": 1, "brand": False}
    assert json.loads(vendor.requests[0].content) == {"product": {"title": "B", "brand": False}}
    assert client.limits == []


def test_ecom_a_refused_brand_clear_still_writes_the_rest_and_is_not_sent_again(budget, clock) -> None:
    vendor = FakeVendor(refusal("brand must be a number"), ok({"product": {"id": 1}}), ok({"product": {"id": 1}}))
    client = ecom(vendor, budget, clock)
    client.update_product(1, {"title": "B", "brand": None})
    client.update_product(1, {"title": "C", "brand": None})
    bodies = [json.loads(r.content)["product"] for r in vendor.requests]
    assert bodies == [{"title": "B", "brand": False}, {"title": "B"}, {"title": "C"}]
    assert len(client.limits) == 2 and "brand" in client.limits[0]


def test_ecom_a_refusal_that_is_not_the_brands_is_raised(budget, clock) -> None:
    vendor = FakeVendor(refusal("title too long"), refusal("title too long"))
    client = ecom(vendor, budget, clock)
    with pytest.raises(UpstreamError):
        client.update_product(1, {"title": "x" * 999, "brand": None})
    with pytest.raises(UpstreamError):
        client.update_product(1, {"title": "x" * 999, "brand": 301})  # a real brand id is never retried
    assert len(vendor.requests) == 3
