"""The vendor simulators speak the contracts of reference/vendor-apis.md: paging, auth, rate limits, webhooks,
and the side effects (a POS sale lowers POS stock, an online order lowers eCom stock)."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from pos_ecom_sync.connectors.ecom import EcomClient
from pos_ecom_sync.errors import NotFound, UpstreamError
from pos_ecom_sync.ratelimit import InMemoryRateBudget

from local_stack.simulators.catalog import ean13
from local_stack.simulators.common import Faults
from local_stack.simulators.ecom import EcomSimulator
from local_stack.simulators.xseries import XSeriesSimulator
from tests.support import ManualClock

# These tests drive the simulators directly, including with requests the vendors refuse or ignore, to prove the
# simulators refuse or ignore them too; their answers are still held to the contracts.
pytestmark = pytest.mark.vendor_contract_exempt

TOKEN = "pos-token"
KEY, SECRET, HOOK_SECRET = "ecom-key", "ecom-secret", "ecom-hook-secret"


class Receiver:
    """A webhook endpoint on 127.0.0.1 that records deliveries and answers with `statuses` in turn (then 204)."""

    def __init__(self, statuses: list[int] | None = None) -> None:
        self.deliveries: list[tuple[dict[str, str], bytes]] = []
        self.statuses = list(statuses or [])
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                status = receiver.statuses.pop(0) if receiver.statuses else 204
                if status < 300:
                    receiver.deliveries.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def forms(self) -> list[dict[str, str]]:
        return [{k: v[0] for k, v in parse_qs(body.decode()).items()} for _, body in self.deliveries]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    yield receiver
    receiver.server.shutdown()


@pytest.fixture
def pos() -> Iterator[XSeriesSimulator]:
    simulator = XSeriesSimulator(token=TOKEN, seed=11)
    simulator.start()
    yield simulator
    simulator.stop()


@pytest.fixture
def ecom() -> Iterator[EcomSimulator]:
    simulator = EcomSimulator(api_key=KEY, api_secret=SECRET, webhook_secret=HOOK_SECRET, seed=11, limits=None)
    simulator.start()
    yield simulator
    simulator.stop()


def pos_client(simulator: XSeriesSimulator) -> httpx.Client:
    return httpx.Client(base_url=simulator.url, headers={"Authorization": f"Bearer {TOKEN}"})


def ecom_client(simulator: EcomSimulator) -> httpx.Client:
    return httpx.Client(base_url=simulator.url, auth=(KEY, SECRET))


def walk(client: httpx.Client, path: str, page_size: int, after: int | None = None, **params: Any) -> list[Any]:
    """Follow the version cursor until an empty page, as a poller does."""
    rows: list[Any] = []
    while True:
        body = client.get(path, params={"page_size": page_size, **params, **({"after": after} if after else {})}).json()
        if not body["data"]:
            assert body["version"] == {"min": after or 0, "max": after or 0}  # integers on 2.0 (X20 `Version`)
            return rows
        assert body["version"]["min"] == body["data"][0]["version"] and body["version"]["max"] > (after or 0)
        rows.extend(body["data"])
        after = body["version"]["max"]


# -- X-Series catalog and version paging -------------------------------------------------------------


def test_seeded_catalog_has_a_parent_row_and_variant_rows_per_family(pos: XSeriesSimulator) -> None:
    pos.seed_catalog(250, 3, seed=3)

    products = pos.products()
    parents = [p for p in products if p["has_variants"]]
    variants = [p for p in products if p["variant_parent_id"]]
    assert (len(products), len(parents), len(variants)) == (1000, 250, 750)
    assert len({p["sku"] for p in products}) == 1000
    variant = variants[0]
    parent = next(p for p in parents if p["id"] == variant["variant_parent_id"])
    assert parent["variant_count"] == 3 and "variant_count" not in variant  # X20 shows it on a parent only
    assert variant["type"] == parent["type"] and set(parent["type"]) == {"id", "name"}  # X20 ProductTypeSample
    assert [o["name"] for o in variant["variant_options"]] == ["Colour", "Size"]
    [code] = variant["product_codes"]
    assert code["type"] == "EAN" and ean13(code["code"][:12]) == code["code"]
    assert variant["price_excluding_tax"] < variant["price_including_tax"] and variant["weight"] > 0
    assert len(pos.inventory()) == 750 * len(pos.outlets())  # parents hold no stock
    assert any(row["inventory_level"] < 0 for row in pos.inventory())  # negative levels happen in real shops


def test_version_paging_walks_the_whole_catalog_exactly_once(pos: XSeriesSimulator) -> None:
    pos.seed_catalog(40, 4, seed=5)  # 200 product rows, 320 inventory rows
    client = pos_client(pos)

    products = walk(client, "/api/2.0/products", page_size=30)
    inventory = walk(client, "/api/2.0/inventory", page_size=70)

    assert sorted(p["id"] for p in products) == sorted(p["id"] for p in pos.products())
    assert len(inventory) == len({r["id"] for r in inventory}) == 320
    versions = [p["version"] for p in products]
    assert versions == sorted(versions) and len(set(versions)) == len(versions)


def test_a_change_moves_only_that_row_past_the_cursor(pos: XSeriesSimulator) -> None:
    pos.seed_catalog(5, 2, seed=6)
    client = pos_client(pos)
    cursor = max(p["version"] for p in walk(client, "/api/2.0/products", page_size=100))
    variant = next(p for p in pos.products() if p["variant_parent_id"])

    pos.update_product(variant["id"], price_including_tax=99.0)

    [changed] = walk(client, "/api/2.0/products", page_size=100, after=cursor)
    assert changed["id"] == variant["id"] and changed["price_including_tax"] == 99.0
    assert changed["price_excluding_tax"] == pytest.approx(99.0 / 1.15, abs=1e-4)


def test_deleted_rows_are_listed_only_with_deleted_true(pos: XSeriesSimulator) -> None:
    pos.seed_catalog(3, 2, seed=7)
    client = pos_client(pos)
    variant = next(p for p in pos.products() if p["variant_parent_id"])

    pos.delete_product(variant["id"])

    plain = walk(client, "/api/2.0/products", page_size=100)
    with_deleted = walk(client, "/api/2.0/products", page_size=100, deleted="true")
    assert variant["id"] not in {p["id"] for p in plain}
    [deleted] = [p for p in with_deleted if p["id"] == variant["id"]]
    assert deleted["deleted_at"].endswith("+00:00")
    assert client.get(f"/api/2.0/products/{variant['id']}").json()["data"]["deleted_at"]


def test_product_lookup_by_sku_and_page_size_is_capped(pos: XSeriesSimulator) -> None:
    pos.seed_catalog(300, 3, seed=8)  # 1,200 rows
    client = pos_client(pos)
    sku = pos.products()[5]["sku"]

    assert [p["sku"] for p in client.get("/api/2.0/products", params={"sku": sku}).json()["data"]] == [sku]
    assert len(client.get("/api/2.0/products", params={"page_size": 5000}).json()["data"]) == 1000


# -- auth and rate limits ----------------------------------------------------------------------------


def test_requests_without_valid_credentials_get_401(pos: XSeriesSimulator, ecom: EcomSimulator) -> None:
    assert httpx.get(f"{pos.url}/api/2.0/products").status_code == 401
    assert httpx.get(f"{pos.url}/api/2.0/products", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert httpx.get(f"{ecom.url}/en/products.json").status_code == 401
    assert httpx.get(f"{ecom.url}/en/products.json", auth=(KEY, "wrong")).status_code == 401
    assert pos.throttled == 0 and pos.requests == 2


def test_xseries_rate_limit_headers_and_429_with_an_http_date_retry_after() -> None:
    clock = ManualClock(1_800_000_000.0)
    simulator = XSeriesSimulator(token=TOKEN, rate_limit=3, rate_window_s=300, clock=clock)
    simulator.start()
    try:
        client = pos_client(simulator)
        answers = [client.get("/api/2.0/outlets") for _ in range(4)]

        assert [r.status_code for r in answers] == [200, 200, 200, 429]
        assert [r.headers["X-RateLimit-Remaining"] for r in answers[:3]] == ["2", "1", "0"]
        assert answers[0].headers["X-RateLimit-Limit"] == "3"
        assert int(answers[0].headers["X-RateLimit-Reset"]) == clock.now + 300  # unverified on API answers: contract
        throttled = answers[3]
        assert throttled.json() == {"error": "Too Many Requests", "message": "Rate limiting enforced"}
        assert parsedate_to_datetime(throttled.headers["Retry-After"]).timestamp() == clock.now + 300
        assert simulator.throttled == 1

        clock.now += 300  # the window ends; the next request opens a new one
        again = client.get("/api/2.0/outlets")
        assert again.status_code == 200 and again.headers["X-RateLimit-Remaining"] == "2"
    finally:
        simulator.stop()


def test_ecom_rate_limit_triples_and_429_with_seconds_retry_after() -> None:
    clock = ManualClock(1_800_000_000.0)
    simulator = EcomSimulator(
        api_key=KEY, api_secret=SECRET, webhook_secret=HOOK_SECRET, limits=(2, 5, 10), per_second=None, clock=clock
    )
    simulator.start()
    try:
        client = ecom_client(simulator)
        first, _, refused = (client.get("/en/products.json") for _ in range(3))

        assert first.headers["X-RateLimit-Limit"] == "2/5/10"
        assert first.headers["X-RateLimit-Remaining"] == "1/4/9"
        assert first.headers["X-RateLimit-Reset"] == "300/3600/86400"
        assert refused.status_code == 429 and refused.headers["Retry-After"] == "300"
        assert refused.json()["error"]["code"] == 429

        clock.now += 300
        later = client.get("/en/products.json")
        assert later.status_code == 200 and later.headers["X-RateLimit-Remaining"] == "1/2/7"
        assert later.headers["X-RateLimit-Reset"] == "300/3300/86100"
    finally:
        simulator.stop()


def test_ecom_per_second_limit_answers_429_with_retry_after_one_second() -> None:
    clock = ManualClock(1_800_000_000.0)
    simulator = EcomSimulator(api_key=KEY, api_secret=SECRET, webhook_secret=HOOK_SECRET, per_second=2, clock=clock)
    simulator.start()
    try:
        client = ecom_client(simulator)
        statuses = [client.get("/en/orders.json").status_code for _ in range(3)]
        clock.now += 1
        assert statuses == [200, 200, 429] and client.get("/en/orders.json").status_code == 200
    finally:
        simulator.stop()


# -- X-Series sales ----------------------------------------------------------------------------------


def test_register_sale_lowers_inventory_at_the_register_outlet_and_bumps_its_version(pos: XSeriesSimulator) -> None:
    pos.seed_catalog(2, 2, seed=9)
    client = pos_client(pos)
    variant = next(p for p in pos.products() if p["variant_parent_id"])
    register = pos.registers()[0]
    [before] = [r for r in pos.inventory(variant["id"]) if r["outlet_id"] == register["outlet_id"]]
    cash = next(t for t in pos.payment_types() if t["name"] == "Cash")

    response = client.post(
        "/api/register_sales",
        json={
            "register_id": register["id"],
            "status": "CLOSED",
            "invoice_number": "WEB-1",
            "register_sale_products": [{"product_id": variant["id"], "quantity": 2, "price": 10.0, "tax": 1.5}],
            "register_sale_payments": [{"retailer_payment_type_id": cash["id"], "amount": 23.0}],
        },
    )

    assert response.status_code == 200
    sale = response.json()["register_sale"]
    assert sale["status"] == "CLOSED" and sale["totals"]["total_to_pay"] == 0
    [after] = [r for r in pos.inventory(variant["id"]) if r["outlet_id"] == register["outlet_id"]]
    assert after["inventory_level"] == before["inventory_level"] - 2 and after["version"] > before["version"]
    [listed] = client.get("/api/2.0/sales").json()["data"]
    assert listed["id"] == sale["id"] and listed["status"] == "CLOSED" and listed["version"] > after["version"]
    found = client.get("/api/2.0/search", params={"type": "sales", "invoice_number": "WEB-1"}).json()["data"]
    assert [s["id"] for s in found] == [sale["id"]]

    pos.void_sale(sale["id"])  # voiding gives the stock back
    assert pos.level(variant["id"], register["outlet_id"]) == before["inventory_level"]


def test_register_sale_with_an_unknown_product_is_a_400_with_a_reason(pos: XSeriesSimulator) -> None:
    response = pos_client(pos).post(
        "/api/register_sales",
        json={
            "register_id": pos.registers()[0]["id"],
            "register_sale_products": [{"product_id": "nope", "quantity": 1}],
        },
    )

    assert response.status_code == 400 and "nope" in response.json()["message"]
    assert pos.sales() == []


def _dispatch_sale(pos: XSeriesSimulator, status: str = "AWAITING_DISPATCH") -> tuple[dict[str, Any], str]:
    pos.seed_catalog(1, 2, seed=10)
    first, second = (p for p in pos.products() if p["variant_parent_id"])
    other_outlet = pos.outlets()[1]["id"]
    sale = pos.create_sale(
        [
            {"product_id": first["id"], "quantity": 2},
            {"product_id": second["id"], "quantity": 1, "fulfillment_outlet_id": other_outlet},
        ],
        status=status,
    )
    return sale, other_outlet


def test_a_dispatch_sale_gets_open_fulfilments_per_outlet_shaped_as_the_2026_07_summary(pos: XSeriesSimulator) -> None:
    sale, other_outlet = _dispatch_sale(pos)
    client = pos_client(pos)
    response = client.get("/api/2026-07/fulfillments", params={"sale_id": sale["id"], "page_size": 100})
    assert response.status_code == 200
    rows = response.json()["data"]
    assert [(f["type"], f["state"], f["version"]) for f in rows] == [("DISPATCH", "OPEN", 1)] * 2
    assert {f["outlet_id"] for f in rows} == {pos.registers()[0]["outlet_id"], other_outlet}
    required = {"id", "outlet_id", "sale_id", "type", "state", "user_ids", "note", "created_at", "updated_at"}
    assert all(required | {"version", "line_items"} <= set(f) and f["id"].isdigit() for f in rows)
    line = rows[0]["line_items"][0]
    assert {k: line[k] for k in ("quantity", "picked_quantity", "packed_quantity", "fulfilled_quantity")} == {
        "quantity": "2.00",
        "picked_quantity": "0.00",
        "packed_quantity": "0.00",
        "fulfilled_quantity": "0.00",
    }
    # The 2.0 routes the project once invented are gone.
    assert client.get(f"/api/2.0/sales/{sale['id']}/fulfillments").status_code == 404
    assert client.post(f"/api/2.0/fulfillments/{rows[0]['id']}/pack", json={}).status_code == 404


def test_fulfilments_list_filters_by_its_declared_params_and_pages_by_number(pos: XSeriesSimulator) -> None:
    _, other_outlet = _dispatch_sale(pos)
    client = pos_client(pos)
    by_outlet = client.get("/api/2026-07/fulfillments", params={"outlet_id": other_outlet}).json()["data"]
    assert [f["outlet_id"] for f in by_outlet] == [other_outlet]
    assert client.get("/api/2026-07/fulfillments", params={"fulfillment_type": "PICKUP"}).json()["data"] == []
    first = client.get("/api/2026-07/fulfillments", params={"page_size": 1, "page_number": 1}).json()["data"]
    second = client.get("/api/2026-07/fulfillments", params={"page_size": 1, "page_number": 2}).json()["data"]
    assert len(first) == len(second) == 1 and first[0]["id"] != second[0]["id"]
    assert client.get("/api/2026-07/fulfillments", params={"page_size": 101}).status_code == 400


def test_pack_checks_the_version_packs_the_lines_and_answers_the_new_version(pos: XSeriesSimulator) -> None:
    sale, _ = _dispatch_sale(pos, status="AWAITING_PICKUP")
    client = pos_client(pos)
    fulfillment = pos.fulfillments(sale["id"])[0]
    path = f"/api/2026-07/fulfillments/{fulfillment['id']}/pack"
    items = [{"sale_line_item_id": li["sale_line_item_id"], "quantity": 2} for li in fulfillment["line_items"]]

    assert client.post(path, json={"line_items": items}).status_code == 400  # version is required
    stale = client.post(path, json={"version": 0, "line_items": items})
    assert stale.status_code == 409 and stale.json()["error"] == "Conflict"
    packed = client.post(path, json={"version": 1, "line_items": items})
    assert packed.status_code == 200 and packed.json()["data"] == {"id": fulfillment["id"], "version": 2}
    assert pos.fulfillments(sale["id"])[0]["state"] == "PACKED"
    again = client.post(path, json={"version": 1, "line_items": items})  # a repeat after a lost answer
    assert again.status_code == 409 and pos.fulfillments(sale["id"])[0]["line_items"][0]["packed_quantity"] == "2.00"


def test_a_pos_user_starting_a_fulfilment_makes_it_in_progress_and_moves_its_version(pos: XSeriesSimulator) -> None:
    sale, _ = _dispatch_sale(pos, status="AWAITING_PICKUP")
    pos.start_fulfillment(sale["id"])
    assert [(f["state"], f["version"]) for f in pos.fulfillments(sale["id"])] == [("STARTED", 2)] * 2


def test_fulfil_completes_every_fulfilment_of_the_sale_once_and_closes_it(pos: XSeriesSimulator) -> None:
    sale, _ = _dispatch_sale(pos)
    client = pos_client(pos)
    assert client.post("/api/2026-07/fulfillments/fulfill", json={}).status_code == 400  # sale_id is required
    done = client.post("/api/2026-07/fulfillments/fulfill", json={"sale_id": sale["id"]})
    assert done.status_code == 200 and [r["version"] for r in done.json()["data"]] == [2, 2]
    assert {f["state"] for f in pos.fulfillments(sale["id"])} == {"FULFILLED"}
    closed = client.get(f"/api/2.0/sales/{sale['id']}").json()["data"]
    assert closed["status"] == "DISPATCHED_CLOSED"
    again = client.post("/api/2026-07/fulfillments/fulfill", json={"sale_id": sale["id"]})
    assert again.status_code == 200 and again.json()["data"] == []  # idempotent


def test_a_voided_sale_has_no_fulfilments_left(pos: XSeriesSimulator) -> None:
    sale, _ = _dispatch_sale(pos)
    pos.void_sale(sale["id"])
    assert pos.fulfillments(sale["id"]) == []


@pytest.mark.parametrize(("method", "path"), [("PUT", "/api/2.0"), ("POST", "/api/2026-07")])
def test_a_return_starts_parked_takes_no_stock_and_is_then_completed_or_voided(
    pos: XSeriesSimulator, method: str, path: str
) -> None:
    pos.seed_catalog(1, 1, seed=10)
    [product] = [p for p in pos.products() if p["variant_parent_id"]]
    outlet = pos.registers()[0]["outlet_id"]
    sale = pos.create_sale([{"product_id": product["id"], "quantity": 1}])
    client = pos_client(pos)
    level = pos.level(product["id"], outlet)

    first = client.request(method, f"{path}/sales/{sale['id']}/actions/return").json()["data"]
    assert (first["status"], first["return_for"]) == ("SAVED", sale["id"])
    assert first.get("state", "parked") == "parked"  # 2026-07 also shows the state; 2.0 has none
    assert [(li["quantity"], li["status"], li["is_return"]) for li in first["line_items"]] == [(-1, "SAVED", True)]
    assert pos.level(product["id"], outlet) == level  # parked: nothing back in stock yet
    pos.void_return(first["id"])
    assert pos.level(product["id"], outlet) == level

    second = client.request(method, f"{path}/sales/{sale['id']}/actions/return").json()["data"]
    completed = pos.complete_return(second["id"])
    assert completed["status"] == "CLOSED" and [li["status"] for li in completed["line_items"]] == ["CONFIRMED"]
    assert pos.level(product["id"], outlet) == level + 1
    assert completed["payments"][0]["amount"] == pytest.approx(completed["total_price"] + completed["total_tax"])


def test_ecom_credit_takes_the_documented_body_and_refuses_the_old_one(ecom: EcomSimulator) -> None:
    ecom.seed_catalog(1, 1, stock=5)
    variant = ecom.variants()[0]
    order = ecom.place_order([{"variant_id": variant["id"], "quantity": 2}], email="credit@example.com")
    [line] = ecom.order_products(order["id"])
    client = ecom_client(ecom)
    path = f"/nl/orders/{order['id']}/credit.json"

    old = client.post(path, json={"credit": {"products": [{"orderProduct": line["id"], "quantity": 1}], "comment": ""}})
    assert old.status_code == 400 and {"code", "message"} <= set(old.json()["error"])  # eCom's error body
    assert ecom.order_products(order["id"])[0]["quantityRefunded"] == 0
    body = {
        "credit": {
            "creditPayment": True,
            "creditShipment": False,
            "notifyNew": False,
            "updateStock": False,
            "orderProducts": [{"id": line["id"], "quantity": 1}],
        }
    }
    assert client.post(path, json=body).status_code in (200, 201)
    assert ecom.order_products(order["id"])[0]["quantityRefunded"] == 1
    too_many = {"credit": {**body["credit"], "orderProducts": [{"id": line["id"], "quantity": 2}]}}
    assert client.post(path, json=too_many).status_code == 400
    assert ecom.order_products(order["id"])[0]["quantityRefunded"] == 1


# -- webhooks ----------------------------------------------------------------------------------------


def test_xseries_webhooks_are_form_encoded_unsigned_with_an_unversioned_1_0_json_payload(
    pos: XSeriesSimulator, receiver: Receiver
) -> None:
    pos.seed_catalog(1, 1, seed=12)
    client = pos_client(pos)
    body = {"url": receiver.url, "active": True, "type": "inventory.update"}
    created = client.post("/api/2.0/webhooks", json=body)
    assert created.status_code == 201 and created.json()["data"]["retailer_id"] == pos.retailer_id
    assert client.post("/api/2.0/webhooks", json=body).status_code == 409
    variant = next(p for p in pos.products() if p["variant_parent_id"])
    outlet = pos.outlets()[0]["id"]

    pos.set_inventory(variant["id"], outlet, 7)

    assert pos.wait_for_webhooks()
    [(headers, _)] = receiver.deliveries
    assert headers["content-type"].startswith("application/x-www-form-urlencoded")
    assert not any("signature" in name for name in headers)
    [form] = receiver.forms()
    # Only `payload` is guaranteed; the others "may be present" (docs/webhooks).
    assert set(form) <= {"payload", "type", "domain_prefix", "environment", "retailer_id"}
    assert form.get("type", "inventory.update") == "inventory.update" and form.get("domain_prefix", "demo") == "demo"
    payload = json.loads(form["payload"])
    assert "version" not in payload  # no source shows a version in a 1.0 payload
    assert (payload["product_id"], payload["outlet_id"], payload["count"]) == (variant["id"], outlet, 7)
    assert isinstance(payload["reorder_point"], str) and isinstance(payload["attributed_cost"], str)


def test_ecom_webhook_signature_verifies_and_api_writes_echo_back(ecom: EcomSimulator, receiver: Receiver) -> None:
    client = ecom_client(ecom)
    hook = {"isActive": True, "url": receiver.url, "format": "json", "itemGroup": "variants", "itemAction": "*"}
    read_back = client.post("/en/webhooks.json", json={"webhook": hook}).json()["webhook"]
    assert read_back["address"] == receiver.url and "url" not in read_back
    product = client.post("/en/products.json", json={"product": {"title": "Harbor Tee"}}).json()["product"]
    assert product["isVisible"] is False  # products synced from the POS arrive disabled
    variant = client.post("/en/variants.json", json={"variant": {"product": product["id"], "sku": "HT-1"}}).json()

    client.put(f"/en/variants/{variant['variant']['id']}.json", json={"variant": {"stockLevel": 4}})

    assert ecom.wait_for_webhooks()
    assert [d.event for d in ecom.deliveries.log] == ["variants/created", "variants/updated"]
    for headers, raw in receiver.deliveries:
        assert "x-action" not in headers  # no source documents a header besides x-signature (F4574)
        assert headers["content-type"] == "application/json"
        assert headers["x-signature"] == hashlib.md5(raw + HOOK_SECRET.encode(), usedforsecurity=False).hexdigest()
    assert json.loads(receiver.deliveries[-1][1])["variant"]["stockLevel"] == 4


def test_failed_webhook_delivery_is_retried_until_acknowledged(pos: XSeriesSimulator) -> None:
    flaky = Receiver(statuses=[500, 503])
    pos.deliveries.time_scale = 3600.0  # the vendor's back-off (up to 20 retries over 48 h), an hour a second
    try:
        pos.seed_catalog(1, 0, seed=13)
        pos_client(pos).post("/api/2.0/webhooks", json={"url": flaky.url, "active": True, "type": "product.update"})

        pos.update_product(pos.products()[0]["id"], name="Renamed")

        assert pos.deliveries.wait_idle(timeout=10, include_retries=True)
        assert len(flaky.deliveries) == 1 and pos.deliveries.log[-1].attempts == 3
    finally:
        flaky.server.shutdown()


@pytest.mark.parametrize(
    ("faults", "expected"),
    [
        pytest.param(Faults(webhook_loss_rate=1.0), 0, id="lost"),
        pytest.param(Faults(webhook_duplicate_rate=1.0), 6, id="duplicated"),
    ],
)
def test_webhook_loss_and_duplication_faults(receiver: Receiver, faults: Faults, expected: int) -> None:
    simulator = XSeriesSimulator(token=TOKEN, seed=14, faults=faults)
    simulator.start()
    try:
        simulator.seed_catalog(3, 0, seed=14)
        pos_client(simulator).post(
            "/api/2.0/webhooks", json={"url": receiver.url, "active": True, "type": "product.update"}
        )

        for product in simulator.products():
            simulator.update_product(product["id"], name="Renamed")

        assert simulator.wait_for_webhooks()
        assert len(receiver.deliveries) == expected
        assert (simulator.deliveries.lost, simulator.deliveries.duplicated) == ((3, 0) if expected == 0 else (0, 3))
    finally:
        simulator.stop()


def test_reordered_webhooks_all_arrive_but_not_in_change_order(receiver: Receiver) -> None:
    simulator = XSeriesSimulator(token=TOKEN, seed=15, faults=Faults(webhook_reorder=True))
    simulator.start()
    try:
        simulator.seed_catalog(5, 0, seed=15)
        pos_client(simulator).post(
            "/api/2.0/webhooks", json={"url": receiver.url, "active": True, "type": "inventory.update"}
        )
        products = simulator.products()

        simulator.create_sale([{"product_id": p["id"], "quantity": 1} for p in products])  # 5 inventory changes

        assert simulator.wait_for_webhooks()
        received = [json.loads(form["payload"])["product_id"] for form in receiver.forms()]
        assert sorted(received) == sorted(p["id"] for p in products) and received != [p["id"] for p in products]
    finally:
        simulator.stop()


# -- injected API faults -----------------------------------------------------------------------------


def test_injected_errors_change_nothing_but_lost_responses_do_apply_the_write(pos: XSeriesSimulator) -> None:
    pos.seed_catalog(1, 0, seed=16)
    product = pos.products()[0]
    client = pos_client(pos)

    pos.set_faults(error_rate=1.0)
    failed = client.put(f"/api/2.1/products/{product['id']}", json={"name": "First"})
    pos.set_faults(error_rate=0.0, lost_response_rate=1.0)
    lost = client.put(f"/api/2.1/products/{product['id']}", json={"name": "Second"})

    assert failed.status_code in (500, 503) and lost.status_code == 503
    assert pos.products()[0]["name"] == "Second"  # the "failed" second write did happen: retries must be safe
    assert pos.errors_injected == 2


# -- eCom orders and catalog -------------------------------------------------------------------------


def test_place_order_lowers_ecom_stock_and_sends_orders_created(ecom: EcomSimulator, receiver: Receiver) -> None:
    client = ecom_client(ecom)
    hook = {"isActive": True, "url": receiver.url, "format": "json", "itemGroup": "orders", "itemAction": "created"}
    client.post("/en/webhooks.json", json={"webhook": hook})
    product = client.post("/en/products.json", json={"product": {"title": "Tee"}}).json()["product"]
    variant = client.post(
        "/en/variants.json", json={"variant": {"product": product["id"], "priceIncl": 32.0, "stockLevel": 9}}
    ).json()["variant"]

    order = ecom.place_order([{"variant_id": variant["id"], "quantity": 2}], email="mira.okafor@example.com")

    assert isinstance(order["id"], int) and order["number"] == "ORD00001" and order["paymentStatus"] == "paid"
    assert order["firstname"] == "Mira" and order["priceIncl"] == 64.0 + 8.5  # lines + Courier
    assert client.get(f"/en/variants/{variant['id']}.json").json()["variant"]["stockLevel"] == 7
    [line] = client.get(f"/en/orders/{order['id']}/products.json").json()["orderProducts"]
    assert line["quantityOrdered"] == 2 and line["variant"]["resource"]["id"] == variant["id"]
    assert ecom.wait_for_webhooks()
    [(headers, raw)] = receiver.deliveries
    assert "x-action" not in headers and json.loads(raw)["order"]["id"] == order["id"]
    with pytest.raises(ValueError, match="in stock"):
        ecom.place_order([{"variant_id": variant["id"], "quantity": 8}], email="b@example.com")


def test_ecom_orders_filter_by_updated_at_min_and_cancelled_orders_are_frozen(ecom: EcomSimulator) -> None:
    clock = ManualClock(1_800_000_000.0)
    ecom.clock = clock
    old = ecom.place_order([], email="old@example.com")
    clock.now += 3600
    new = ecom.place_order([], email="new@example.com")
    client = ecom_client(ecom)
    sql = datetime.fromisoformat(new["createdAt"]).strftime("%Y-%m-%d %H:%M:%S")  # NT types.ts form, UTC

    def listed(value: str) -> list[int]:
        return [o["id"] for o in client.get("/en/orders.json", params={"updated_at_min": value}).json()["orders"]]

    # The simulator reads one date format (sources disagree); the other is ignored: the whole list comes back.
    assert ecom.date_filter_format == "sql"
    assert (listed(sql), listed(new["createdAt"])) == ([new["id"]], [old["id"], new["id"]])
    ecom.date_filter_format = "iso"
    assert (listed(new["createdAt"]), listed(sql)) == ([new["id"]], [old["id"], new["id"]])

    ecom.update_order_status(old["id"], payment_status="cancelled")
    frozen = client.put(f"/en/orders/{old['id']}.json", json={"order": {"status": "completed"}})
    assert frozen.status_code == 400 and "cancelled" in frozen.json()["error"]["message"]
    assert client.get(f"/en/orders/{old['id']}.json").json()["order"]["shipmentStatus"] == "cancelled"


def test_ecom_lists_page_by_limit_and_since_id_and_count(ecom: EcomSimulator) -> None:
    ecom.seed_catalog(6, 50, seed=17)  # 300 variants
    client = ecom_client(ecom)

    capped = client.get("/en/variants.json", params={"limit": 1000}).json()["variants"]
    rest = client.get("/en/variants.json", params={"since_id": capped[-1]["id"]}).json()["variants"]
    page_two = client.get("/en/variants.json", params={"limit": 250, "page": 2}).json()["variants"]

    assert len(capped) == 250 and len(rest) == 50 and [v["id"] for v in rest] == [v["id"] for v in page_two]
    assert client.get("/en/variants/count.json").json() == {"count": 300}
    sku = capped[3]["sku"]
    assert [v["sku"] for v in client.get("/en/variants.json", params={"sku": sku}).json()["variants"]] == [sku]


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "reason"),
    [
        ("POST", "/en/variants.json", {"variant": {"sku": "x"}}, 400, "product"),
        ("POST", "/en/variants.json", {"sku": "x"}, 400, "variant"),
        ("POST", "/en/products.json", {"product": {"title": "T", "isVisible": "yes"}}, 400, "isVisible"),
        ("POST", "/en/products.json", {"product": {"name": "T"}}, 400, "unknown"),
        ("GET", "/en/orders/999.json", None, 404, "not found"),
        ("GET", "/english/orders.json", None, 404, ""),
        ("POST", "/en/brands.json", {"brand": {"name": "Acme"}}, 400, "'title' is a required property"),
        ("POST", "/en/brands.json", {"brand": {"title": ""}}, 400, "title is required"),
        ("POST", "/en/categories.json", {"category": {"title": "Tees", "parent": 1}}, 400, "parent 1"),
        ("POST", "/en/categories/products.json", {"categoriesProduct": {"product": 40001}}, 400, "category"),
        ("POST", "/en/products/999/images.json", {"productImage": {"src": "https://x/a.jpg"}}, 404, "not found"),
        ("GET", "/en/categories/999.json", None, 404, "not found"),
        ("DELETE", "/en/categories/products/999.json", None, 404, "not found"),
    ],
)
def test_ecom_rejects_invalid_writes_and_unknown_ids(
    ecom: EcomSimulator, method: str, path: str, body: Any, status: int, reason: str
) -> None:
    response = ecom_client(ecom).request(method, path, json=body)

    assert response.status_code == status
    assert reason in response.json()["error"]["message"]


def test_common_fields_are_written_to_the_whole_family_and_details_to_one_row(pos: XSeriesSimulator) -> None:
    pos.seed_catalog(2, 3, seed=18)
    variant = next(p for p in pos.products() if p["variant_parent_id"])
    family = {p["id"] for p in pos.products() if variant["variant_parent_id"] in (p["id"], p["variant_parent_id"])}

    response = pos_client(pos).put(
        f"/api/2.1/products/{variant['id']}",  # product update is API 2.1 (XPM "Update a product")
        json={"common": {"name": "Renamed Tee"}, "details": {"sku": "NEW-SKU"}},
    )

    assert response.status_code == 200 and response.json()["data"]["sku"] == "NEW-SKU"
    members = [p for p in pos.products() if p["id"] in family]
    assert len(members) == 4 and {p["name"] for p in members} == {"Renamed Tee"}
    assert [p["sku"] for p in members].count("NEW-SKU") == 1
    assert all(p["variant_name"].startswith("Renamed Tee") for p in members)


# -- eCom catalog extras: images, brands, categories ----------------------------------------------------


def _ecom_product(client: httpx.Client, title: str = "Harbor Tee") -> dict[str, Any]:
    product = client.post("/en/products.json", json={"product": {"title": title}}).json()["product"]
    variant = client.post("/en/variants.json", json={"variant": {"product": product["id"], "sku": title}})
    return {**product, "variant": variant.json()["variant"]}


def _hook(client: httpx.Client, receiver: Receiver, group: str) -> None:
    hook = {"isActive": True, "url": receiver.url, "format": "json", "itemGroup": group, "itemAction": "*"}
    assert client.post("/en/webhooks.json", json={"webhook": hook}).status_code == 201


def test_product_images_are_rehosted_listed_in_order_and_deleted(ecom: EcomSimulator, receiver: Receiver) -> None:
    client = ecom_client(ecom)
    product = _ecom_product(client)
    _hook(client, receiver, "products")
    images = f"/en/products/{product['id']}/images"
    no_images = client.get(f"/en/products/{product['id']}.json").json()["product"]
    assert no_images["image"] is False and no_images["images"]["resource"]["id"] is False  # NT: images is a ref
    writes = ecom.writes

    first = client.post(f"{images}.json", json={"productImage": {"src": "https://img.example.com/tee/Front View.jpg"}})
    second = client.post(f"{images}.json", json={"productImage": {"attachment": "https://img.example.com/tee/2"}})

    assert (first.status_code, second.status_code, ecom.writes - writes) == (201, 201, 2)
    front = first.json()["productImage"]
    assert isinstance(front["id"], int) and front["sortOrder"] == 1 and front["extension"] == "jpg"
    assert front["src"].startswith("https://cdn.webshopapp.com/shops/") and front["src"].endswith("/front-view.jpg")
    assert "/50x50x2/" in front["thumb"] and front["title"] == "front-view" and front["size"] > 0
    assert set(front) == {"id", "createdAt", "updatedAt", "sortOrder", "extension", "size", "title", "thumb", "src"}
    listed = client.get(f"{images}.json").json()["productImages"]
    assert [i["id"] for i in listed] == [front["id"], second.json()["productImage"]["id"]]
    assert [i["sortOrder"] for i in listed] == [1, 2] and listed == ecom.product_images(product["id"])
    assert ecom.image_sources(product["id"]) == [
        "https://img.example.com/tee/Front View.jpg",
        "https://img.example.com/tee/2",
    ]
    assert client.get(f"{images}/count.json").json() == {"count": 2}
    assert client.get(f"{images}/{front['id']}.json").json()["productImage"] == front
    read = client.get(f"/en/products/{product['id']}.json").json()["product"]
    inline = {k: v for k, v in front.items() if k not in ("id", "sortOrder")}  # NT fileObject: no id, no sortOrder
    assert read["image"] == inline and read["images"]["resource"]["url"] == f"products/{product['id']}/images"

    assert client.delete(f"{images}/{front['id']}.json").status_code == 204
    assert client.delete(f"{images}/{front['id']}.json").status_code == 404
    assert [i["sortOrder"] for i in ecom.product_images(product["id"])] == [2]
    assert ecom.wait_for_webhooks()
    assert [d.event for d in ecom.deliveries.log] == ["products/updated"] * 3  # two uploads and a delete


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"productImage": {"src": "ftp://img.example.com/a.jpg"}}, "http(s) URL"),
        ({"productImage": {"attachment": "aGVsbG8="}}, "base64"),
        ({"productImage": {"title": "no source"}}, "exactly one of src or attachment"),
        ({"productImage": {"src": "https://x/a.jpg", "attachment": "https://x/a.jpg"}}, "exactly one"),
        ({"productImage": {"url": "https://x/a.jpg"}}, "unknown productImage field(s): url"),
        ({"image": {"src": "https://x/a.jpg"}}, "productImage"),
    ],
)
def test_product_image_uploads_are_validated(ecom: EcomSimulator, body: dict[str, Any], reason: str) -> None:
    client = ecom_client(ecom)
    product = _ecom_product(client)

    response = client.post(f"/en/products/{product['id']}/images.json", json=body)

    assert response.status_code == 400 and reason in response.json()["error"]["message"]
    assert ecom.product_images(product["id"]) == []


def test_a_variant_image_must_be_one_of_its_products_images(ecom: EcomSimulator) -> None:
    client = ecom_client(ecom)
    tee, cap = _ecom_product(client), _ecom_product(client, "Harbor Cap")
    tee_image = client.post(
        f"/en/products/{tee['id']}/images.json", json={"productImage": {"src": "https://img.example.com/tee.jpg"}}
    ).json()["productImage"]
    cap_image = client.post(
        f"/en/products/{cap['id']}/images.json", json={"productImage": {"src": "https://img.example.com/cap.jpg"}}
    ).json()["productImage"]
    variant_url = f"/en/variants/{tee['variant']['id']}.json"
    assert tee["variant"]["image"] is False

    foreign = client.put(variant_url, json={"variant": {"image": cap_image["id"]}})
    unknown = client.post("/en/variants.json", json={"variant": {"product": tee["id"], "image": 1}})
    options = client.put(variant_url, json={"variant": {"options": [{"name": "Colour", "value": "Navy"}]}})
    own = client.put(variant_url, json={"variant": {"image": tee_image["id"]}})

    assert foreign.status_code == 400 and f"not an image of product {tee['id']}" in foreign.json()["error"]["message"]
    assert unknown.status_code == 400 and "variant image 1" in unknown.json()["error"]["message"]
    assert options.status_code == 400 and "options is read-only" in options.json()["error"]["message"]
    inline = {k: v for k, v in tee_image.items() if k not in ("id", "sortOrder")}  # NT fileObject (live shape)
    assert own.status_code == 200 and own.json()["variant"]["image"] == inline
    client.delete(f"/en/products/{tee['id']}/images/{tee_image['id']}.json")
    assert client.get(variant_url).json()["variant"]["image"] is False
    assert client.put(variant_url, json={"variant": {"image": False}}).status_code == 200


def test_a_product_brand_must_exist_and_brands_filter_by_title(ecom: EcomSimulator) -> None:
    client = ecom_client(ecom)
    product = _ecom_product(client)

    missing = client.put(f"/en/products/{product['id']}.json", json={"product": {"brand": 999}})
    created = client.post("/en/brands.json", json={"brand": {"title": "Harbor & Co"}})
    brand = created.json()["brand"]
    linked = client.put(f"/en/products/{product['id']}.json", json={"product": {"brand": brand["id"]}})
    new_product = client.post("/en/products.json", json={"product": {"title": "Cap", "brand": 998}})

    assert missing.status_code == 400 and "brand 999 does not exist" in missing.json()["error"]["message"]
    assert new_product.status_code == 400
    assert created.status_code == 201 and brand["url"] == "harbor-co" and brand["isVisible"] is True
    assert brand["content"] is False and brand["image"] is False
    assert linked.json()["product"]["brand"]["resource"]["id"] == brand["id"]
    ecom.add_brand("Other")
    found = client.get("/en/brands.json", params={"title": "harbor & co"}).json()["brands"]
    assert [b["id"] for b in found] == [brand["id"]] and len(ecom.brands()) == 2
    assert client.get(f"/en/brands/{brand['id']}.json").json()["brand"]["title"] == "Harbor & Co"
    by_brand = client.get("/en/products.json", params={"brand": brand["id"]}).json()["products"]
    assert [p["id"] for p in by_brand] == [product["id"]]
    # Clearing with `false` is in no source (NT: brand is a number): one switch, both answers.
    ecom.brand_false = "refused"
    refused = client.put(f"/en/products/{product['id']}.json", json={"product": {"brand": False}})
    assert refused.status_code == 400 and "brand" in refused.json()["error"]["message"]
    assert client.get(f"/en/products/{product['id']}.json").json()["product"]["brand"] is not False
    ecom.brand_false = "accepted"
    cleared = client.put(f"/en/products/{product['id']}.json", json={"product": {"brand": False}})
    assert cleared.status_code == 200 and cleared.json()["product"]["brand"] is False


def test_category_links_join_products_to_categories_once(ecom: EcomSimulator) -> None:
    client = ecom_client(ecom)
    product, other = _ecom_product(client), _ecom_product(client, "Harbor Cap")
    tees = client.post("/en/categories.json", json={"category": {"title": "Tees"}}).json()["category"]
    summer = ecom.add_category("Summer", parent=tees["id"])
    link_body = {"categoriesProduct": {"category": tees["id"], "product": product["id"]}}

    created = client.post("/en/categories/products.json", json=link_body)
    again = client.post("/en/categories/products.json", json=link_body)
    client.post(
        "/en/categories/products.json", json={"categoriesProduct": {"category": tees["id"], "product": other["id"]}}
    )

    assert (tees["depth"], tees["path"], tees["parent"], tees["type"]) == (1, [str(tees["id"])], False, "category")
    assert summer["depth"] == 2 and summer["parent"]["resource"]["id"] == tees["id"]
    assert summer["path"] == [str(tees["id"]), str(summer["id"])]
    link = created.json()["categoriesProduct"]
    assert created.status_code == 201 and link["sortOrder"] == 1
    assert link["category"]["resource"]["id"] == tees["id"] and link["product"]["resource"]["id"] == product["id"]
    assert again.status_code == 400 and f"categoriesProduct {link['id']}" in again.json()["error"]["message"]
    mine = client.get("/en/categories/products.json", params={"product": product["id"]}).json()["categoriesProducts"]
    assert [lk["id"] for lk in mine] == [link["id"]] == [lk["id"] for lk in ecom.category_links(product["id"])]
    assert client.get("/en/categories/products/count.json").json() == {"count": 2}
    assert client.get(f"/en/categories/products/{link['id']}.json").json()["categoriesProduct"] == link
    assert [c["title"] for c in client.get("/en/categories.json").json()["categories"]] == ["Tees", "Summer"]
    children = client.get("/en/categories.json", params={"parent": tees["id"]}).json()["categories"]
    assert [c["id"] for c in children] == [summer["id"]] and len(ecom.categories()) == 2

    assert client.delete(f"/en/categories/products/{link['id']}.json").status_code == 204
    assert ecom.category_links(product["id"]) == [] and len(ecom.category_links()) == 1
    client.delete(f"/en/products/{other['id']}.json")  # a deleted product takes its links with it
    assert ecom.category_links() == []


def test_merchant_replacing_an_image_in_the_back_office(ecom: EcomSimulator, receiver: Receiver) -> None:
    client = ecom_client(ecom)
    product = _ecom_product(client)
    images = f"/en/products/{product['id']}/images.json"
    for name in ("a", "b"):
        client.post(images, json={"productImage": {"src": f"https://img.example.com/{name}.jpg"}})
    old = ecom.product_images(product["id"])[0]
    client.put(f"/en/variants/{product['variant']['id']}.json", json={"variant": {"image": old["id"]}})
    _hook(client, receiver, "products")

    new = ecom.replace_image_in_backoffice(product["id"], "https://merchant.example.com/own.png")

    assert new["sortOrder"] == 1 and new["extension"] == "png" and new["id"] != old["id"]
    assert ecom.image_sources(product["id"]) == [
        "https://merchant.example.com/own.png",
        "https://img.example.com/b.jpg",
    ]
    assert ecom.variants(product["id"])[0]["image"] is False
    assert ecom.wait_for_webhooks()
    assert [d.event for d in ecom.deliveries.log] == ["products/updated"]


# -- the eCom connector against the simulator ----------------------------------------------------------


@pytest.fixture
def connector(ecom: EcomSimulator) -> Iterator[EcomClient]:
    client = EcomClient(ecom.url, KEY, SECRET, InMemoryRateBudget())
    yield client
    client.close()


def test_connector_list_product_images(ecom: EcomSimulator, connector: EcomClient) -> None:
    product = connector.create_product({"title": "Tee"})
    for name in ("one", "two", "three"):
        ecom_client(ecom).post(
            f"/en/products/{product['id']}/images.json", json={"productImage": {"src": f"https://i.example.com/{name}"}}
        )

    images = connector.list_product_images(product["id"])

    assert [i["title"] for i in images] == ["one", "two", "three"] and images == ecom.product_images(product["id"])
    with pytest.raises(NotFound):
        connector.list_product_images(999)


def test_connector_create_product_image(ecom: EcomSimulator, connector: EcomClient) -> None:
    product = connector.create_product({"title": "Tee"})

    image = connector.create_product_image(product["id"], "https://i.example.com/tee/front.jpg")

    assert image["id"] == ecom.product_images(product["id"])[0]["id"] and image["src"].endswith("/front.jpg")
    assert ecom.image_sources(product["id"]) == ["https://i.example.com/tee/front.jpg"]
    with pytest.raises(UpstreamError) as refused:
        connector.create_product_image(product["id"], "not-a-url")
    assert refused.value.status == 400


def test_connector_delete_product_image(ecom: EcomSimulator, connector: EcomClient) -> None:
    product = connector.create_product({"title": "Tee"})
    image = connector.create_product_image(product["id"], "https://i.example.com/a.jpg")

    assert connector.delete_product_image(product["id"], image["id"]) is True
    assert connector.delete_product_image(product["id"], image["id"]) is False
    assert ecom.product_images(product["id"]) == []


def test_connector_update_variant_links_an_image(ecom: EcomSimulator, connector: EcomClient) -> None:
    product = connector.create_product({"title": "Tee"})
    variant = connector.create_variant({"product": product["id"], "sku": "T-1"})
    image = connector.create_product_image(product["id"], "https://i.example.com/a.jpg")

    updated = connector.update_variant(variant["id"], {"image": image["id"]})

    assert updated["image"]["src"] == image["src"] and "id" not in updated["image"]  # inline NT fileObject
    assert connector.update_variant(variant["id"], {"image": False})["image"] is False


def test_connector_list_brands(ecom: EcomSimulator, connector: EcomClient) -> None:
    for n in range(260):  # past one page
        ecom.add_brand(f"Brand {n}")

    brands = connector.list_brands()

    assert len(brands) == 260 and brands[-1]["title"] == "Brand 259"


def test_connector_create_brand(ecom: EcomSimulator, connector: EcomClient) -> None:
    brand = connector.create_brand("Harbor")
    product = connector.create_product({"title": "Tee", "brand": brand["id"]})

    assert [b["id"] for b in ecom.brands()] == [brand["id"]] and brand["title"] == "Harbor"
    assert product["brand"]["resource"]["id"] == brand["id"]


def test_connector_list_categories(ecom: EcomSimulator, connector: EcomClient) -> None:
    parent = ecom.add_category("Tees")
    ecom.add_category("Summer", parent=parent["id"])

    assert [c["title"] for c in connector.list_categories()] == ["Tees", "Summer"]


def test_connector_create_category(ecom: EcomSimulator, connector: EcomClient) -> None:
    category = connector.create_category("Tees")

    assert category["title"] == "Tees" and category["parent"] is False
    assert [c["id"] for c in ecom.categories()] == [category["id"]]


def test_connector_list_category_links(ecom: EcomSimulator, connector: EcomClient) -> None:
    tee, cap = connector.create_product({"title": "Tee"}), connector.create_product({"title": "Cap"})
    tees, summer = connector.create_category("Tees"), connector.create_category("Summer")
    for product, category in ((tee, tees), (tee, summer), (cap, tees)):
        connector.link_category(product["id"], category["id"])

    links = connector.list_category_links(tee["id"])

    assert [lk["category"]["resource"]["id"] for lk in links] == [tees["id"], summer["id"]]


def test_connector_link_category(ecom: EcomSimulator, connector: EcomClient) -> None:
    product, category = connector.create_product({"title": "Tee"}), connector.create_category("Tees")

    link = connector.link_category(product["id"], category["id"])

    assert link["product"]["resource"]["id"] == product["id"] and link["category"]["resource"]["id"] == category["id"]
    assert ecom.category_links(product["id"]) == [link]
    with pytest.raises(UpstreamError) as duplicate:
        connector.link_category(product["id"], category["id"])
    assert duplicate.value.status == 400 and "already in category" in duplicate.value.body


def test_connector_list_products_created_since(ecom: EcomSimulator, connector: EcomClient) -> None:
    clock = ManualClock(1_800_000_000.0)
    ecom.clock = clock
    connector.create_product({"title": "Old"})
    clock.now += 600
    new = connector.create_product({"title": "New"})

    found = connector.list_products_created_since(datetime.fromtimestamp(clock.now - 60, UTC))

    assert [p["id"] for p in found] == [new["id"]]


# -- eCom points no source settles: the simulator's switches, and the connector surviving each answer ----------


def test_ecom_deep_pages_are_capped_and_since_id_reaches_every_row_past_the_cap(ecom: EcomSimulator) -> None:
    ecom.seed_catalog(6, 50, seed=17)  # 300 variants
    ecom.page_cap = 1  # the sources give no depth: a switch
    client = ecom_client(ecom)
    deep = client.get("/en/variants.json", params={"limit": 250, "page": 2}).json()["variants"]
    assert deep == []  # past the cap: looks like the end
    first = client.get("/en/variants.json", params={"limit": 250}).json()["variants"]
    rest = client.get("/en/variants.json", params={"limit": 250, "since_id": first[-1]["id"]}).json()["variants"]
    assert len(first) + len(rest) == 300


def test_connector_walks_every_list_and_the_order_sweep_past_the_page_cap(
    ecom: EcomSimulator, connector: EcomClient
) -> None:
    ecom.seed_catalog(3, 200, seed=5)  # 600 variants: three pages of 250
    for n in range(260):
        ecom.place_order([], email=f"shopper{n}@example.com")
    ecom.page_cap = 1

    assert len(connector.list_variants()) == 600
    ids, since_id, calls = [], None, 0
    while True:
        page = connector.list_orders(None, since_id=since_id)
        ids += [o["id"] for o in page.orders]
        calls += 1
        if page.next_since_id is None:
            break
        since_id = page.next_since_id
    assert (len(ids), len(set(ids)), calls) == (260, 260, 2)


@pytest.mark.parametrize("shop_reads", ["sql", "iso"])
def test_connector_order_sweep_returns_only_updated_orders_whichever_date_format_the_shop_reads(
    ecom: EcomSimulator, connector: EcomClient, shop_reads: str
) -> None:
    clock = ManualClock(1_800_000_000.0)
    ecom.clock = clock
    ecom.date_filter_format = shop_reads
    old = [ecom.place_order([], email=f"old{n}@example.com") for n in range(3)]
    clock.now += 3600
    ecom.update_order_status(old[1]["id"], payment_status="paid", status="completed")
    new = ecom.place_order([], email="new@example.com")
    ecom.record_exchanges, before = True, ecom.requests

    page = connector.list_orders(datetime.fromtimestamp(clock.now - 60, UTC))

    assert sorted(o["id"] for o in page.orders) == [old[1]["id"], new["id"]]
    assert page.next_since_id is None and ecom.requests - before == 1
    # "sql" reads the connector's format and filters; "iso" ignores it and answers every order, which the connector
    # re-checks on updatedAt: the cost is rows (and calls, on a big shop), never a missed or extra order.
    answered = json.loads(ecom.exchanges[-1].body)["orders"]
    assert len(answered) == (2 if shop_reads == "sql" else 4)


@pytest.mark.parametrize("answer", ["accepted", "refused"])
def test_connector_clearing_a_brand_lands_the_update_either_way(
    ecom: EcomSimulator, connector: EcomClient, answer: str
) -> None:
    ecom.brand_false = answer
    brand = connector.create_brand("Harbor")
    product = connector.create_product({"title": "Tee", "brand": brand["id"]})

    updated = connector.update_product(product["id"], {"title": "Tee v2", "brand": None})

    assert updated["title"] == "Tee v2"  # the rest of the update always lands
    assert (updated["brand"] is False) == (answer == "accepted")
    assert bool(connector.limits) == (answer == "refused")


@pytest.mark.parametrize("answer", ["accepted", "refused", "ignored"])
def test_connector_variant_image_survives_each_answer(ecom: EcomSimulator, connector: EcomClient, answer: str) -> None:
    ecom.variant_image = answer
    product = connector.create_product({"title": "Tee"})
    image = connector.create_product_image(product["id"], "https://i.example.com/a.jpg")

    body = {"product": product["id"], "sku": "T-1", "priceIncl": 20.0, "image": image["id"]}
    variant = connector.create_variant(body)
    updated = connector.update_variant(variant["id"], {"priceIncl": 25.0, "image": image["id"]})
    shown = connector.set_variant_image(variant["id"], image["id"])

    assert variant["sku"] == "T-1" and updated["priceIncl"] == 25.0  # the other fields always land
    assert shown == (answer == "accepted") and (ecom.variants(product["id"])[0]["image"] is not False) == shown
    assert bool(connector.limits) == (answer != "accepted")


def test_ecom_weight_is_grams_and_a_shopper_sees_it_in_the_shops_unit(ecom: EcomSimulator) -> None:
    client = ecom_client(ecom)
    product = _ecom_product(client)
    url = f"/en/variants/{product['variant']['id']}.json"

    in_kg = client.put(url, json={"variant": {"weight": 350}}).json()["variant"]
    in_lb = client.put(url, json={"variant": {"weightUnit": "lb"}}).json()["variant"]
    refused = client.put(url, json={"variant": {"weightUnit": "stone"}})

    assert (in_kg["weight"], in_kg["weightValue"], in_kg["weightUnit"]) == (350, "0.35", "kg")  # vendor example's way
    assert (in_lb["weight"], in_lb["weightValue"]) == (350, "0.772")
    assert refused.status_code == 400


def test_ecom_shipping_methods_are_read_only_and_name_no_outlet(ecom: EcomSimulator) -> None:
    client = ecom_client(ecom)
    pickup = ecom.add_shipping_method("Pick up in store", is_pickup=True)
    listed = client.get("/en/shippingmethods.json").json()["shippingmethods"]

    assert pickup in listed and set(pickup) == {"id", "createdAt", "updatedAt", "title", "price"}
    write = client.put(f"/en/shippingmethods/{pickup['id']}.json", json={"shippingmethod": {"isActive": False}})
    assert write.status_code == 404  # no such route: PHP ApiResourceShippingmethods has get/count only


def test_ecom_a_webhook_takes_the_url_paths_language(ecom: EcomSimulator) -> None:
    client = ecom_client(ecom)
    hook = {"url": "https://hooks.example.com/e", "itemGroup": "orders", "itemAction": "*"}
    created = client.post("/nl/webhooks.json", json={"webhook": hook}).json()["webhook"]
    with_language = client.post("/en/webhooks.json", json={"webhook": {**hook, "language": "en"}})

    assert created["language"]["code"] == "nl"
    assert with_language.status_code == 400 and "language" in with_language.json()["error"]["message"]
