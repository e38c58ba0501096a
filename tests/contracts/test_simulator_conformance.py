"""The simulators answer as the vendors' contracts say: only declared routes, undeclared filters ignored (the whole
list comes back, as from the real API), bodies the vendor refuses refused with its error body, documented shapes."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator

import httpx
import pytest

from local_stack.contract import Contract, ContractRoute, normalize_template
from local_stack.contract import load as load_contract
from local_stack.simulators.common import VendorSimulator
from local_stack.simulators.ecom import EcomSimulator
from local_stack.simulators.xseries import XSeriesSimulator
from tests.contract_recording import ContractRecorder
from tests.support import DEMO_SECRETS

UNDECLARED = "zz_undeclared_filter"


@pytest.fixture(scope="module")
def pos() -> Iterator[XSeriesSimulator]:
    simulator = XSeriesSimulator(token=DEMO_SECRETS["pos_access_token"], seed=3, rate_limit=0)
    simulator.start()
    simulator.seed_catalog(3, 2, seed=3)
    yield simulator
    simulator.stop()


@pytest.fixture(scope="module")
def ecom() -> Iterator[EcomSimulator]:
    simulator = EcomSimulator(
        api_key=DEMO_SECRETS["ecom_api_key"],
        api_secret=DEMO_SECRETS["ecom_api_secret"],
        webhook_secret=DEMO_SECRETS["ecom_webhook_secret"],
        seed=3,
        limits=None,
    )
    simulator.start()
    simulator.seed_catalog(3, 2, seed=3)
    yield simulator
    simulator.stop()


def _client(simulator: VendorSimulator) -> httpx.Client:
    if isinstance(simulator, XSeriesSimulator):
        headers = {"Authorization": f"Bearer {DEMO_SECRETS['pos_access_token']}"}
    else:
        pair = f"{DEMO_SECRETS['ecom_api_key']}:{DEMO_SECRETS['ecom_api_secret']}".encode()
        headers = {"Authorization": "Basic " + base64.b64encode(pair).decode()}
    return httpx.Client(base_url=simulator.url, headers={"Accept": "application/json", **headers}, timeout=10)


def _concrete(route: ContractRoute, language: str = "en") -> str:
    return route.path.replace("{lang}", language)


def _collection_routes(contract: Contract) -> list[ContractRoute]:
    """GET routes without an entity id in their path: the lists whose filters matter."""
    return [
        r for r in contract.routes if r.method == "GET" and "{" not in r.path.replace("{lang}", "") and r.documented
    ]


@pytest.mark.parametrize(("simulator_name", "api"), [("pos", "xseries"), ("ecom", "ecom")])
def test_the_simulator_serves_no_route_its_contract_does_not_declare(
    simulator_name: str, api: str, request: pytest.FixtureRequest
) -> None:
    simulator: VendorSimulator = request.getfixturevalue(simulator_name)
    contract = load_contract(api)
    served = {f"{route.method} {route.template}" for route in simulator.router._routes}
    missing = sorted(key for key in served if contract.route_for_template(*key.split(" ", 1)) is None)
    assert missing == [], f"simulator routes with no {api} contract entry: {missing}"


@pytest.mark.parametrize(("simulator_name", "api"), [("pos", "xseries"), ("ecom", "ecom")])
def test_list_routes_ignore_an_undeclared_filter_and_answer_the_whole_list(
    simulator_name: str, api: str, request: pytest.FixtureRequest, contract_recorder: ContractRecorder
) -> None:
    simulator: VendorSimulator = request.getfixturevalue(simulator_name)
    contract = load_contract(api)
    checked = 0
    with _client(simulator) as http:
        for route in _collection_routes(contract):
            variants: list[dict[str, str]] = [{}]
            by = route.entry.get("query_by")
            if by:
                variants = [{by["param"]: value} for value in by.get("values", {})]
            for base in variants:
                plain = http.get(_concrete(route), params=base)
                filtered = http.get(_concrete(route), params={**base, UNDECLARED: "nothing-matches-this"})
                assert filtered.status_code == plain.status_code, f"{route.path} {base}"
                assert filtered.json() == plain.json(), f"{route.path} {base}: an undeclared filter changed the answer"
                checked += 1
    assert checked >= 5
    assert any(UNDECLARED in key for key in simulator.ignored_params)
    # The requests broke the contract on purpose; the answers must still be the documented ones.
    assert [str(v) for v in contract_recorder.answer_violations()] == []


def test_products_ignore_family_id_and_search_ignores_source_id_as_the_real_api_does(pos: XSeriesSimulator) -> None:
    """The two filters the old code relied on: the real API declares neither, so it returns everything."""
    family = next(p for p in pos.products() if p.get("variant_parent_id"))
    with _client(pos) as http:
        everything = http.get("/api/2.0/products").json()["data"]
        by_family = http.get("/api/2.0/products", params={"family_id": family["variant_parent_id"]}).json()["data"]
        sales = http.get("/api/2.0/search", params={"type": "sales"}).json()
        by_source = http.get("/api/2.0/search", params={"type": "sales", "source_id": "ecom-1"}).json()
    assert len(by_family) == len(everything) > 2
    assert by_source == sales


def _served(simulator: VendorSimulator, route: ContractRoute) -> bool:
    wanted = (route.method, normalize_template(route.path))
    return any((r.method, normalize_template(r.template)) == wanted for r in simulator.router._routes)


def _required_body_routes(contract: Contract, simulator: VendorSimulator) -> list[ContractRoute]:
    """Documented routes the simulator serves whose request schema requires fields."""
    return [
        r
        for r in contract.routes
        if (r.request_schema or {}).get("required") and r.documented and _served(simulator, r)
    ]


@pytest.mark.parametrize(("simulator_name", "api"), [("pos", "xseries"), ("ecom", "ecom")])
def test_a_body_missing_a_required_field_is_refused_with_the_vendors_error_body(
    simulator_name: str, api: str, request: pytest.FixtureRequest
) -> None:
    simulator: VendorSimulator = request.getfixturevalue(simulator_name)
    contract = load_contract(api)
    routes = _required_body_routes(contract, simulator)
    assert routes, f"the {api} contract declares no required request field"
    error_schema = contract.document["error_body"]["schema"]
    writes_before = simulator.writes
    with _client(simulator) as http:
        for route in routes:
            path = _fill_path_parameters(_concrete(route))
            content_type = route.request_content_type
            if "form" in content_type:
                response = http.request(route.method, path, content=b"", headers={"Content-Type": content_type})
            else:
                response = http.request(route.method, path, json={})
            assert response.status_code == contract.refusal_status, f"{route.method} {route.path}: {response.text}"
            assert contract.schema_errors(error_schema, response.json()) == [], f"{route.method} {route.path}"
    assert simulator.writes == writes_before, "a refused body reached a handler"


def _fill_path_parameters(path: str) -> str:
    """Any value will do: the body is refused before the entity is looked up."""
    return re.sub(r"\{[^/{}]+\}", "1", path)


def test_a_refusal_names_the_missing_field(pos: XSeriesSimulator) -> None:
    contract = load_contract("xseries")
    route = next(r for r in _required_body_routes(contract, pos) if r.method == "POST")
    required: list[str] = list(route.request_schema["required"])  # type: ignore[index]
    with _client(pos) as http:
        response = http.post(_fill_path_parameters(route.path), json={})
    assert response.status_code == contract.refusal_status
    assert any(name in json.dumps(response.json()) for name in required)
