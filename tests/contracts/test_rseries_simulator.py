"""The R-Series simulator answers as contracts/rseries.json and the vendor docs (KVH) say: string scalars, object /
array / "" relations, V3 cursor paging, ignored undeclared filters, rotating OAuth tokens, the leaky bucket."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from local_stack.contract import load as load_contract
from local_stack.simulators.rseries import RSeriesSimulator
from tests.contract_recording import ContractRecorder
from tests.support import ManualClock

START = 1_750_000_000.0
UNDECLARED = "zz_undeclared_filter"


def _client(sim: RSeriesSimulator, token: str) -> httpx.Client:
    return httpx.Client(base_url=sim.api_base, headers={"Authorization": f"Bearer {token}"}, timeout=10)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def sim(clock: ManualClock) -> Iterator[RSeriesSimulator]:
    simulator = RSeriesSimulator(clock=clock, rate_limit=False, shops=3, online_price_level_id=5, seed=7)
    simulator.start()
    simulator.seed_catalog(matrices=3, variants_per_matrix=4, simple_items=5, seed=7)
    yield simulator
    simulator.stop()


@pytest.fixture
def http(sim: RSeriesSimulator) -> Iterator[httpx.Client]:
    with _client(sim, sim.issue_tokens()["access_token"]) as client:
        yield client


def _rows(body: dict[str, Any], key: str) -> list[dict[str, Any]]:
    value = body.get(key)
    return value if isinstance(value, list) else [value] if value else []


def _walk(http: httpx.Client, path: str, params: dict[str, str]) -> list[dict[str, Any]]:
    """Follow @attributes.next to the end, as KVH pagination.md prescribes."""
    key = path.split("/")[-1].removesuffix(".json")
    body = http.get(path, params=params).json()
    rows = _rows(body, key)
    while body["@attributes"]["next"]:
        body = http.get(body["@attributes"]["next"]).json()
        rows += _rows(body, key)
    return rows


def _all_scalars(node: Any) -> Iterator[Any]:
    if isinstance(node, dict):
        for value in node.values():
            yield from _all_scalars(value)
    elif isinstance(node, list):
        for value in node:
            yield from _all_scalars(value)
    else:
        yield node


# -- the contract ---------------------------------------------------------------------------------------------------


def test_the_simulator_serves_no_route_its_contract_does_not_declare(sim: RSeriesSimulator) -> None:
    contract = load_contract("rseries")
    served = {(route.method, route.template) for route in sim.router._routes}
    assert [key for key in served if contract.route_for_template(*key) is None] == []


def test_reads_and_writes_answer_the_documented_shapes(
    sim: RSeriesSimulator, http: httpx.Client, contract_recorder: ContractRecorder
) -> None:
    sim.create_sale([(1, 1)], reference_number="pos-1")
    for name, relations in [
        ("Shop", '["Registers"]'),
        ("Register", ""),
        ("PriceLevel", ""),
        ("PaymentType", ""),
        ("Category", ""),
        ("Manufacturer", ""),
        ("Item", "all"),
        ("ItemMatrix", "all"),
        ("ItemShop", ""),
        ("Image", ""),
        ("Customer", '["Contact"]'),
        ("Sale", "all"),
    ]:
        params = {"load_relations": relations} if relations else {}
        listed = http.get(f"/{name}.json", params={**params, "limit": "3"})
        assert listed.status_code == 200, listed.text
        first = _rows(listed.json(), name)[0]
        id_field = sim.resources[name].id_field
        assert http.get(f"/{name}/{first[id_field]}.json", params=params).status_code == 200
        assert http.get(f"/{name}.json", params={"count": "1"}).json()["@attributes"]["count"].isdigit()
    item = http.post(
        "/Item.json", json={"description": "Gift wrap", "Prices": {"ItemPrice": [{"useTypeID": "1", "amount": "4.39"}]}}
    )
    assert item.status_code == 200, item.text
    item_id = item.json()["Item"]["itemID"]
    assert http.put(f"/Item/{item_id}.json", json={"description": "Gift wrap XL"}).status_code == 200
    assert http.delete(f"/Item/{item_id}.json").status_code == 200
    matrix = http.post("/ItemMatrix.json", json={"description": "Sock", "itemAttributeSetID": "2"}).json()["ItemMatrix"]
    variant = http.post(
        "/Item.json", json={"itemMatrixID": matrix["itemMatrixID"], "ItemAttributes": {"attribute1": "M"}}
    )
    assert variant.json()["Item"]["description"] == "Sock M"
    assert http.post("/Manufacturer.json", json={"name": "Acme"}).status_code == 200
    assert http.post("/Category.json", json={"name": "Bath", "parentID": "0"}).status_code == 200
    customer = http.post(
        "/Customer.json",
        json={
            "firstName": "Jane",
            "Contact": {"Emails": {"ContactEmail": {"address": "j@x.io", "useType": "Primary"}}},
        },
    )
    assert customer.json()["Customer"]["Contact"]["Emails"]["ContactEmail"]["address"] == "j@x.io"
    sale = http.post(
        "/Sale.json",
        json={
            "shopID": 1,
            "SaleLines": {"SaleLine": [{"itemID": 1, "unitQuantity": 1}, {"itemID": 2, "unitQuantity": 2}]},
        },
    )
    assert sale.status_code == 200, sale.text
    assert http.get("/Nope/1.json").status_code == 404
    assert http.get("/Item/999999.json").status_code == 404
    assert [str(v) for v in contract_recorder.answer_violations()] == []
    assert len(contract_recorder.answered) > 40  # the check above saw the answers


def test_a_body_missing_a_required_field_is_refused_with_the_vendors_error_body(
    sim: RSeriesSimulator, http: httpx.Client
) -> None:
    contract = load_contract("rseries")
    error_schema = contract.document["error_body"]["schema"]
    writes_before = sim.writes
    for method, path in [
        ("POST", "/Manufacturer.json"),
        ("PUT", "/Manufacturer/1.json"),
        ("POST", "/Item.json"),
        ("POST", "/ItemMatrix.json"),
    ]:
        response = http.request(method, path, json={})
        assert response.status_code == 400, f"{method} {path}: {response.text}"
        assert contract.schema_errors(error_schema, response.json()) == []
        assert "required" in response.json()["message"]
    assert sim.writes == writes_before, "a refused body reached a handler"
    token = httpx.post(sim.token_url, json={"client_id": sim.client_id})
    assert token.status_code == 400 and "grant_type" in json.dumps(token.json())


# -- envelope quirks ------------------------------------------------------------------------------------------------


def test_every_scalar_is_a_string_and_a_missing_foreign_key_is_zero(http: httpx.Client) -> None:
    body = http.get("/Item.json", params={"load_relations": "all", "limit": "100"}).json()
    assert {type(v) for v in _all_scalars(body)} == {str}
    simple = next(i for i in body["Item"] if i["itemMatrixID"] == "0")
    assert simple["archived"] == "false" and re.fullmatch(r"\d+(\.\d+)?", simple["Prices"]["ItemPrice"][0]["amount"])
    assert "ItemAttributes" not in simple  # not a variant: no attributes relation


def test_relations_are_an_object_for_one_row_an_array_for_several_and_empty_string_for_none(
    sim: RSeriesSimulator, http: httpx.Client
) -> None:
    matrix_item = sim.items()[0]["itemID"]
    with_images = http.get("/ItemMatrix/1.json", params={"load_relations": '["Images","Items"]'}).json()["ItemMatrix"]
    assert isinstance(with_images["Images"]["Image"], dict)  # one image: an object
    assert isinstance(with_images["Items"]["Item"], list)  # four variants: an array
    variant = http.get(f"/Item/{matrix_item}.json", params={"load_relations": '["Images","ItemShops"]'}).json()["Item"]
    assert variant["Images"] == ""  # images hang on the matrix, none on the variant
    assert len(variant["ItemShops"]["ItemShop"]) == 4  # three shops + the shopID "0" summary row
    customer = http.get("/Customer/1.json", params={"load_relations": '["Contact"]'}).json()["Customer"]
    assert customer["Contact"]["Phones"] == "" and isinstance(customer["Contact"]["Emails"]["ContactEmail"], dict)
    plain = http.get(f"/Item/{matrix_item}.json").json()["Item"]
    assert "ItemShops" not in plain and "Images" not in plain and "ItemPrice" in plain["Prices"]


def test_a_single_row_list_page_is_an_object_unless_the_switch_says_array(
    sim: RSeriesSimulator, http: httpx.Client
) -> None:
    assert isinstance(http.get("/Item.json", params={"itemID": "1"}).json()["Item"], dict)
    sim.single_row_list_as_object = False
    assert isinstance(http.get("/Item.json", params={"itemID": "1"}).json()["Item"], list)


# -- paging and queries ---------------------------------------------------------------------------------------------


def test_next_url_paging_by_timestamp_walks_every_row_once_across_equal_stamps(
    sim: RSeriesSimulator, http: httpx.Client
) -> None:
    since = "2020-01-01T00:00:00-00:00"
    rows = _walk(http, "/Item.json", {"sort": "timeStamp", "timeStamp": f">=,{since}", "limit": "3"})
    assert sorted(int(r["itemID"]) for r in rows) == sorted(int(i["itemID"]) for i in sim.items())
    stamps = [r["timeStamp"] for r in rows]
    assert stamps == sorted(stamps)
    # pages of 3 over groups of 4 rows per second: some page edge splits rows sharing one stamp
    assert any(stamps[n - 1] == stamps[n] for n in range(3, len(stamps), 3))
    first = http.get("/Item.json", params={"sort": "timeStamp", "limit": "3"}).json()["@attributes"]
    assert first["previous"] == "" and "after=" in first["next"] and "limit=3" in first["next"]
    second = http.get(first["next"]).json()["@attributes"]
    assert "before=" in second["previous"]
    descending = _walk(http, "/Item.json", {"sort": "-timeStamp", "limit": "4"})
    assert [r["itemID"] for r in descending] == [r["itemID"] for r in reversed(rows)]


def test_a_poll_from_the_last_stamp_sees_a_change_made_in_the_same_second(
    sim: RSeriesSimulator, http: httpx.Client, clock: ManualClock
) -> None:
    clock.now += 100
    sim.set_qoh(1, 1, 7)
    cursor = http.get(
        "/ItemShop.json", params={"sort": "timeStamp", "timeStamp": ">=,2025-06-15T15:08:20-00:00"}
    ).json()
    last = _rows(cursor, "ItemShop")[-1]["timeStamp"]
    sim.set_qoh(2, 1, 3)  # same second as the last poll's newest row
    again = _rows(
        http.get(
            "/ItemShop.json", params={"sort": "timeStamp", "timeStamp": f">=,{last.replace('+00:00', '-00:00')}"}
        ).json(),
        "ItemShop",
    )
    assert {("2", "1"), ("2", "0")} <= {(r["itemID"], r["shopID"]) for r in again}


def test_an_undeclared_filter_is_ignored_and_the_whole_list_comes_back(
    sim: RSeriesSimulator, http: httpx.Client
) -> None:
    plain = http.get("/Item.json").json()
    assert http.get("/Item.json", params={UNDECLARED: "nothing", "offset": "5"}).json() == plain
    assert any(UNDECLARED in key for key in sim.ignored_params)
    assert len(_rows(http.get("/Item.json", params={"customSku": "~,%XS"}).json(), "Item")) == 3


def test_operators_filter_declared_fields(http: httpx.Client) -> None:
    assert [r["itemID"] for r in _rows(http.get("/Item.json", params={"itemID": "IN,[2,4]"}).json(), "Item")] == [
        "2",
        "4",
    ]
    assert [r["itemID"] for r in _rows(http.get("/Item.json", params={"itemID": "><,3,5"}).json(), "Item")] == [
        "3",
        "4",
        "5",
    ]
    assert len(_rows(http.get("/Item.json", params={"itemMatrixID": "!=,0"}).json(), "Item")) == 12
    customers = http.get(
        "/Customer.json", params={"load_relations": '["Contact"]', "Contact.email": "grace.customer2@example.com"}
    )
    assert _rows(customers.json(), "Customer")[0]["firstName"] == "Grace"


def test_archived_rows_come_back_only_with_archived_true_or_only(sim: RSeriesSimulator, http: httpx.Client) -> None:
    sim.archive_item(3)
    live = {r["itemID"] for r in _walk(http, "/Item.json", {})}
    both = {r["itemID"] for r in _walk(http, "/Item.json", {"archived": "true"})}
    only = [r["itemID"] for r in _walk(http, "/Item.json", {"archived": "only"})]
    assert "3" not in live and "3" in both and only == ["3"]
    assert sim.qoh(3, 0) == 0 and all(r["qoh"] == "0" for r in sim.item_shops(3))


def test_customers_read_archived_rows_through_the_parameter_the_switch_names(
    sim: RSeriesSimulator, http: httpx.Client
) -> None:
    assert http.delete("/Customer/1.json").json()["Customer"]["archived"] == "true"
    ids = lambda params: {r["customerID"] for r in _rows(http.get("/Customer.json", params=params).json(), "Customer")}  # noqa: E731
    assert "1" in ids({"archived": "true"}) and "1" not in ids({"archive": "1"})
    sim.customer_archive_param = "archive"
    assert "1" in ids({"archive": "1"}) and "1" not in ids({"archived": "true"})


def test_sorting_on_an_unsortable_field_lists_the_allowed_ones_and_crafted_cursors_are_refused(
    http: httpx.Client,
) -> None:
    refused = http.get("/Item.json", params={"sort": "customSku"})
    assert refused.status_code == 400 and "itemID, timeStamp, description" in refused.json()["message"]
    assert http.get("/Item.json", params={"after": "WzEwMF0="}).status_code == 400
    assert http.get("/Item.json", params={"count": "1", "limit": "5"}).status_code == 400


# -- OAuth ----------------------------------------------------------------------------------------------------------


def test_an_expired_access_token_answers_401_with_the_documented_hint(
    sim: RSeriesSimulator, clock: ManualClock
) -> None:
    pair = sim.issue_tokens()
    assert pair["expires_in"] == 1800
    with _client(sim, pair["access_token"]) as http:
        assert http.get("/Shop.json").status_code == 200
        clock.now += 1800
        refused = http.get("/Shop.json")
    assert refused.status_code == 401
    assert refused.json() == {
        "error": "access_denied",
        "error_description": "The resource owner or authorization server denied the request.",
        "hint": "Access token could not be verified",
    }
    assert refused.headers["X-LS-Acct-Id"] == str(sim.account_id)


def test_a_refresh_rotates_the_pair_and_the_old_refresh_token_dies_when_the_new_access_token_is_first_used(
    sim: RSeriesSimulator, clock: ManualClock
) -> None:
    first = sim.issue_tokens()
    form = {"grant_type": "refresh_token", "client_id": sim.client_id, "client_secret": sim.client_secret}
    second = httpx.post(sim.token_url, data={**form, "refresh_token": first["refresh_token"]}).json()
    assert second["refresh_token"] != first["refresh_token"] and second["access_token"] != first["access_token"]
    # before the new access token is used the old refresh token still answers (the same pending pair)
    again = httpx.post(sim.token_url, json={**form, "refresh_token": first["refresh_token"]}).json()
    assert again["access_token"] == second["access_token"]
    with _client(sim, second["access_token"]) as http:
        assert http.get("/Shop.json").status_code == 200
    revoked = httpx.post(
        sim.token_url, files={k: (None, v) for k, v in {**form, "refresh_token": first["refresh_token"]}.items()}
    )
    assert revoked.status_code == 400 and revoked.json()["error"] == "invalid_grant"
    assert httpx.post(sim.token_url, json={**form, "refresh_token": second["refresh_token"]}).status_code == 200
    clock.now += 31 * 86400
    unused = sim.issue_tokens()["refresh_token"]
    clock.now += 31 * 86400
    assert httpx.post(sim.token_url, json={**form, "refresh_token": unused}).json()["error"] == "invalid_grant"


def test_the_authorization_code_grant_issues_a_pair_once(sim: RSeriesSimulator) -> None:
    code = sim.authorization_code()
    body = {
        "grant_type": "authorization_code",
        "client_id": sim.client_id,
        "client_secret": sim.client_secret,
        "code": code,
    }
    assert httpx.post(sim.token_url, json=body).json()["token_type"] == "Bearer"
    assert httpx.post(sim.token_url, json=body).status_code == 400
    assert httpx.post(sim.token_url, json={**body, "client_secret": "wrong"}).status_code == 401


def test_a_revoked_app_sees_the_revoked_hint_and_a_token_in_the_query_is_not_accepted(sim: RSeriesSimulator) -> None:
    token = sim.issue_tokens()["access_token"]
    assert httpx.get(f"{sim.api_base}/Shop.json", params={"access_token": token}).status_code == 401
    sim.revoke_refresh_tokens()
    with _client(sim, token) as http:
        assert http.get("/Shop.json").json()["hint"] == "Access token has been revoked"


# -- rate limit -----------------------------------------------------------------------------------------------------


@pytest.fixture
def limited(clock: ManualClock) -> Iterator[tuple[RSeriesSimulator, httpx.Client]]:
    simulator = RSeriesSimulator(clock=clock, burst_limit=0, seed=1)
    simulator.start()
    simulator.seed_catalog(1, 2, 1, seed=1)
    with _client(simulator, simulator.issue_tokens()["access_token"]) as http:
        yield simulator, http
    simulator.stop()


def test_the_first_request_over_the_bucket_is_allowed_the_next_gets_429_until_the_drip_makes_room(
    limited: tuple[RSeriesSimulator, httpx.Client], clock: ManualClock
) -> None:
    sim, http = limited
    for n in range(90):
        answer = http.get("/Shop.json")
        assert answer.status_code == 200 and answer.headers["X-LS-Api-Bucket-Level"] == f"{n + 1}/90"
    overflow = http.get("/Shop.json")
    assert overflow.status_code == 200 and overflow.headers["X-LS-Api-Bucket-Level"] == "91/90"
    refused = http.get("/Shop.json")
    assert refused.status_code == 429
    assert refused.headers["X-LS-API-RateLimit-Type"] == "api-leaky-bucket" and refused.headers["Retry-After"] == "1"
    clock.now += 0.5
    assert http.get("/Shop.json").status_code == 429
    clock.now += 0.5
    drained = http.get("/Shop.json")
    assert drained.status_code == 200 and drained.headers["X-LS-Api-Bucket-Level"] == "91/90"
    assert sim.stats()["throttled_bucket"] == 2 and sim.stats()["drips_used"] == 92


def test_sale_writes_cost_two_drips_plus_three_to_complete_and_half_a_drip_per_line(
    limited: tuple[RSeriesSimulator, httpx.Client],
) -> None:
    _, http = limited
    open_sale = http.post(
        "/Sale.json", json={"shopID": "1", "SaleLines": {"SaleLine": {"itemID": "1", "unitQuantity": "1"}}}
    )
    assert open_sale.headers["X-LS-Api-Request-Cost"] == "2.5"
    sale_id = open_sale.json()["Sale"]["saleID"]
    total = open_sale.json()["Sale"]["total"]
    done = http.put(
        f"/Sale/{sale_id}.json", json={"completed": True, "SalePayments": [{"amount": total, "paymentTypeID": "1"}]}
    )
    assert done.status_code == 200 and done.headers["X-LS-Api-Request-Cost"] == "5.5"
    assert http.get("/Item.json", params={"count": "1"}).headers["X-LS-Api-Request-Cost"] == "10"
    assert http.post("/Category.json", json={"name": "X"}).headers["X-LS-Api-Request-Cost"] == "10"
    assert http.get("/Item.json", params={"load_relations": '["ItemShops"]'}).headers["X-LS-Api-Request-Cost"] == "1.4"


def test_the_burst_limiter_refuses_past_its_one_second_window(clock: ManualClock) -> None:
    sim = RSeriesSimulator(clock=clock, burst_limit=5)
    sim.start()
    try:
        with _client(sim, sim.issue_tokens()["access_token"]) as http:
            assert [http.get("/Shop.json").status_code for _ in range(6)] == [200] * 5 + [429]
            refused = http.get("/Shop.json")
            assert (
                refused.headers["X-LS-API-RateLimit-Type"] == "api-burst-limiter"
                and refused.headers["Retry-After"] == "1"
            )
            clock.now += 1
            assert http.get("/Shop.json").headers["X-LS-API-Burst-Level"] == "1/5"
    finally:
        sim.stop()


def test_more_registers_mean_a_bigger_bucket_and_faster_drip(clock: ManualClock) -> None:
    sim = RSeriesSimulator(clock=clock, registers=3)
    assert (sim.bucket_size, sim.drip_rate) == (110, 2)


# -- sales, stock, prices -------------------------------------------------------------------------------------------


def test_completing_a_sale_without_balancing_payments_is_refused_and_changes_nothing(
    sim: RSeriesSimulator, http: httpx.Client
) -> None:
    before = sim.qoh(1, 1)
    sales_before = len(sim.sales())
    body = {
        "shopID": "1",
        "completed": True,
        "SaleLines": {"SaleLine": {"itemID": "1", "unitQuantity": "2"}},
        "SalePayments": {"SalePayment": {"amount": "1.00", "paymentTypeID": "3"}},
    }
    refused = http.post("/Sale.json", json=body)
    assert refused.status_code == 400 and "must equal" in refused.json()["message"]
    assert sim.qoh(1, 1) == before and len(sim.sales()) == sales_before


def test_a_completed_sale_takes_stock_at_its_shop_and_bumps_the_itemshop_stamp(
    sim: RSeriesSimulator, http: httpx.Client, clock: ManualClock
) -> None:
    clock.now += 60
    price = float(sim.item(1)["Prices"]["ItemPrice"][0]["amount"])
    before, other = sim.qoh(1, 2), sim.qoh(1, 1)
    payment = {"amount": str(price * 3 + 5), "paymentTypeID": "1", "remoteReference": "ecom-1001"}
    body = {
        "shopID": "2",
        "completed": "true",
        "referenceNumber": "ecom-1001",
        "referenceNumberSource": "eCom",
        "SaleLines": {"SaleLine": [{"itemID": "1", "unitQuantity": "3"}]},
        "SalePayments": {"SalePayment": [payment]},
    }
    sale = http.post("/Sale.json", json=body).json()["Sale"]
    assert sale["completed"] == "true" and sale["change"] == "5"
    assert sale["SalePayments"]["SalePayment"]["remoteReference"] == "ecom-1001"
    assert sim.qoh(1, 2) == before - 3 and sim.qoh(1, 1) == other
    shop_row = next(r for r in sim.item_shops(1) if r["shopID"] == "2")
    assert shop_row["timeStamp"] == "2025-06-15T15:07:40+00:00"
    found = http.get("/Sale.json", params={"referenceNumber": "ecom-1001", "referenceNumberSource": "eCom"}).json()[
        "Sale"
    ]
    assert found["saleID"] == sale["saleID"]


def test_an_itemshop_put_changes_reorder_fields_only_and_qoh_is_ignored_or_refused_by_switch(
    sim: RSeriesSimulator, http: httpx.Client
) -> None:
    row = next(r for r in sim.item_shops(1) if r["shopID"] == "1")
    answer = http.put(f"/ItemShop/{row['itemShopID']}.json", json={"qoh": "999", "reorderPoint": "2"}).json()[
        "ItemShop"
    ]
    assert answer["qoh"] == row["qoh"] and answer["reorderPoint"] == "2"
    sim.itemshop_qoh_put = "refuse"
    assert http.put(f"/ItemShop/{row['itemShopID']}.json", json={"qoh": "999"}).status_code == 400


def test_an_item_put_with_one_price_keeps_or_zeroes_the_other_levels_by_switch(
    sim: RSeriesSimulator, http: httpx.Client
) -> None:
    prices = lambda: {p["useType"]: p["amount"] for p in sim.item(1)["Prices"]["ItemPrice"]}  # noqa: E731
    default = prices()["Default"]
    http.put("/Item/1.json", json={"Prices": {"ItemPrice": {"useTypeID": "5", "amount": "12.5"}}})
    assert prices()["Online"] == "12.5" and prices()["Default"] == default
    sim.price_put_keeps_other_levels = False
    http.put("/Item/1.json", json={"Prices": {"ItemPrice": [{"useType": "Online", "amount": "11"}]}})
    assert prices() == {"Default": "0", "MSRP": "0", "My Online Store": "0", "Wholesale": "0", "Online": "11"}


def test_archiving_by_put_is_refused_but_unarchiving_works(sim: RSeriesSimulator, http: httpx.Client) -> None:
    assert http.put("/Item/2.json", json={"archived": "true"}).status_code == 400
    sim.archive_item(2)
    assert http.put("/Item/2.json", json={"archived": "false"}).json()["Item"]["archived"] == "false"


def test_the_online_price_level_id_is_the_constructors_and_an_account_may_have_none(clock: ManualClock) -> None:
    sim = RSeriesSimulator(clock=clock, online_price_level_id=None)
    assert [p["name"] for p in sim.price_levels()] == ["Default", "MSRP"]
    sim.seed_catalog(1, 1, 1)
    assert [p["useType"] for p in sim.item(1)["Prices"]["ItemPrice"]] == ["Default", "MSRP"]


def test_helpers_stamp_changes_with_the_clocks_current_second(sim: RSeriesSimulator, clock: ManualClock) -> None:
    clock.now += 1000.7
    sim.edit_item(5, description="Renamed")
    sim.set_online_price(6, 9.5)
    stamp = "2025-06-15T15:23:20+00:00"
    assert sim.item(5)["timeStamp"] == stamp and sim.item(6)["timeStamp"] == stamp
    assert sim.item(5)["description"] == "Renamed"
