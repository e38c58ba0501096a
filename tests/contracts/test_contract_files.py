"""The contract files themselves: every entry cites a source, every schema compiles, nothing is left unexplained."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from local_stack.contract import APIS, Contract, normalize_template

METHODS = {"GET", "POST", "PUT", "DELETE", "PATCH"}
QUERY_TYPES = {"integer", "string", "boolean", "number"}


@pytest.fixture(params=APIS)
def contract(request: pytest.FixtureRequest) -> Contract:
    return Contract.load(request.param)


def _schemas(entry: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    request = entry.get("request")
    if isinstance(request, Mapping) and request.get("schema") is not None:
        yield "request", request["schema"]
    for status, response in (entry.get("responses") or {}).items():
        if isinstance(response, Mapping) and response.get("schema") is not None:
            yield f"response {status}", response["schema"]


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, Mapping):
        for key, value in node.items():
            if key == "$ref":
                yield str(value)
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def _cites_a_source(contract: Contract, citation: Any) -> bool:
    keys = tuple(contract.document.get("sources", {}))
    return isinstance(citation, str) and citation.strip() != "" and citation.startswith(keys)


def test_every_route_is_well_formed_and_cites_a_listed_source(contract: Contract) -> None:
    assert contract.document["api"] == contract.api
    assert contract.routes, "a contract without routes"
    problems = []
    for route in contract.routes:
        name = f"{route.method} {route.path}"
        if route.method not in METHODS or not route.path.startswith("/"):
            problems.append(f"{name}: bad method or path")
        if route.documented and not _cites_a_source(contract, route.entry.get("source")):
            problems.append(
                f"{name}: source {route.entry.get('source')!r} names none of {list(contract.document['sources'])}"
            )
        specs = dict(route.entry.get("query") or {})
        for values in ((route.entry.get("query_by") or {}).get("values") or {}).values():
            specs.update(values)
        for param, spec in specs.items():
            if spec.get("type", "string") not in QUERY_TYPES:
                problems.append(f"{name}: query {param} has type {spec.get('type')!r}")
    assert not problems, "\n".join(problems)


def test_no_route_is_declared_twice(contract: Contract) -> None:
    keys = [f"{r.method} {normalize_template(r.path)}" for r in contract.routes]
    assert sorted(k for k in set(keys) if keys.count(k) > 1) == []


def test_every_schema_compiles_and_every_reference_resolves(contract: Contract) -> None:
    defs = contract.document.get("$defs", {})
    schemas = [("$defs", {"$defs": defs})]
    schemas += [
        (f"{r.method} {r.path} {where}", schema) for r in contract.routes for where, schema in _schemas(r.entry)
    ]
    schemas += [("error_body", (contract.document.get("error_body") or {}).get("schema") or {})]
    problems = []
    for where, schema in schemas:
        Draft202012Validator.check_schema(schema)
        for ref in _refs(schema):
            name = ref.removeprefix("#/$defs/")
            if not ref.startswith("#/$defs/") or name not in defs:
                problems.append(f"{where}: unresolved $ref {ref}")
    assert not problems, "\n".join(problems)


def test_what_no_source_documents_says_how_the_code_survives_it(contract: Contract) -> None:
    problems = []
    for route in contract.routes:
        points = route.entry.get("unverified") or []
        if not route.documented and not points:
            problems.append(f"{route.method} {route.path}: undocumented and no unverified note")
        for point in points:
            if not point.get("point") or not point.get("survival"):
                problems.append(f"{route.method} {route.path}: unverified entry without point and survival")
    assert not problems, "\n".join(problems)


def test_errors_and_rate_limits_are_described(contract: Contract) -> None:
    assert (contract.document.get("error_body") or {}).get("schema"), "no error body"
    rate_limit = contract.document.get("rate_limit") or {}
    assert rate_limit.get("headers") and rate_limit.get("throttled_status") == 429
    assert 400 <= contract.refusal_status < 500
