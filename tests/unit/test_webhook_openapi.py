"""contracts/webhook-api.openapi.json: generated from the webhook function's routes, current, exactly the template's
HttpApi routes, describing every answer the function gives (with the body it really sends), valid OpenAPI 3.1."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from pos_ecom_sync import runtime
from pos_ecom_sync.api import answerable_statuses
from pos_ecom_sync.errors import Conflict, Paused, UpstreamUnavailable
from pos_ecom_sync.intake.webhooks import WebhookIntake
from pos_ecom_sync.models.connection import Connection, WebhookSecrets
from pos_ecom_sync.queues import Outgoing
from pos_ecom_sync.runtime import pos_webhook_parser

from functions.webhook_ingest import app as webhook_app
from local_stack.cfn_yaml import load_template
from local_stack.openapi import DOCUMENT, project_version, render, webhook_api_document
from local_stack.provision import TEMPLATE_PATH
from tests.support import (
    DEMO_SECRETS,
    INVENTORY_PAYLOAD,
    ORDER_BODY,
    LambdaContext,
    ecom_webhook_event,
    pos_form,
    pos_webhook_event,
)

PUBLISHED: dict[str, Any] = json.loads(DOCUMENT.read_text(encoding="utf-8"))
METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield method, path, operation


def _template_http_routes() -> set[tuple[str, str, str]]:
    """(function, method, path) of every HttpApi event in the template."""
    resources: dict[str, Any] = load_template(TEMPLATE_PATH)["Resources"]
    return {
        (name, event["Properties"]["Method"].lower(), event["Properties"]["Path"])
        for name, resource in resources.items()
        if resource["Type"] == "AWS::Serverless::Function"
        for event in resource["Properties"].get("Events", {}).values()
        if event["Type"] == "HttpApi"
    }


def test_the_checked_in_document_is_what_the_webhook_routes_generate() -> None:
    assert DOCUMENT.read_text(encoding="utf-8") == render(webhook_api_document()), (
        f"{DOCUMENT.name} is stale: run `make openapi` and commit the result"
    )


def test_the_document_has_exactly_the_templates_http_api_routes_all_served_by_the_webhook_function() -> None:
    routes = _template_http_routes()

    assert {function for function, _, _ in routes} == {"WebhookIngestFunction"}
    documented = {(method, path) for method, path, _ in _operations(PUBLISHED)}
    assert documented == {(method, path) for _, method, path in routes}


@pytest.mark.parametrize(
    ("method", "path", "operation"), [pytest.param(*op, id=f"{op[0]} {op[1]}") for op in _operations(PUBLISHED)]
)
def test_every_answer_the_error_mapping_can_give_is_documented_on_every_route(
    method: str, path: str, operation: dict[str, Any]
) -> None:
    documented = {int(status) for status in operation["responses"]}

    missing = ({200, 202} | answerable_statuses()) - documented
    assert not missing, f"{method.upper()} {path} does not document {sorted(missing)}"


# -- the answers the function really gives match the documented ones -------------------------------------------


class _Store:
    def __init__(self, fail: Exception | None = None, pos_profile: str = "x-series") -> None:
        self.fail = fail
        self.marks: set[str] = set()
        self.pos_profile = pos_profile

    def get_connection(self, connection_id: str) -> Connection | None:
        if self.fail:
            raise self.fail
        urls = {"pos_base_url": "http://127.0.0.1:9", "ecom_base_url": "http://127.0.0.1:9"}
        return Connection.model_validate({"connection_id": "demo", "pos_profile": self.pos_profile, **urls})

    def delivery_seen(self, connection_id: str, delivery_key: str) -> bool:
        return delivery_key in self.marks

    def remember_delivery(self, connection_id: str, delivery_key: str, ttl_seconds: int) -> None:
        self.marks.add(delivery_key)


class _Secrets:
    def get(self, connection_id: str) -> WebhookSecrets:
        return WebhookSecrets(
            pos_webhook_token=DEMO_SECRETS["pos_webhook_token"], ecom_webhook_secret=DEMO_SECRETS["ecom_webhook_secret"]
        )

    def reread(self, connection_id: str, source: str) -> WebhookSecrets | None:
        return None


class _Publisher:
    def __init__(self, fail: Exception | None = None) -> None:
        self.fail = fail

    def publish(self, outgoing: list[Outgoing]) -> int:
        if self.fail:
            raise self.fail
        return len(outgoing)


INVENTORY = pos_form("inventory.update", INVENTORY_PAYLOAD)
ORDER = json.dumps(ORDER_BODY).encode()
Scenario = tuple[Callable[[], dict[str, Any]], _Store, _Publisher, int]
SCENARIOS: dict[str, Scenario] = {
    "pos change queued": (lambda: pos_webhook_event("demo", INVENTORY), _Store(), _Publisher(), 202),
    "ecom order queued": (lambda: ecom_webhook_event("demo", ORDER), _Store(), _Publisher(), 202),
    "a POS delivery for a POS that sends no webhooks (R-Series: polled)": (
        lambda: pos_webhook_event("demo", INVENTORY),
        _Store(pos_profile="r-series"),
        _Publisher(),
        400,
    ),
    "change type not synced": (
        lambda: pos_webhook_event("demo", pos_form("customer.update", {"id": "c-1", "customer_code": "C1"})),
        _Store(),
        _Publisher(),
        200,
    ),
    "not the vendor's format": (
        lambda: ecom_webhook_event("demo", b"[1]"),
        _Store(),
        _Publisher(),
        400,
    ),
    "wrong url token": (lambda: pos_webhook_event("demo", INVENTORY, token="x" * 24), _Store(), _Publisher(), 401),
    "unsigned ecom delivery": (lambda: ecom_webhook_event("demo", ORDER, secret=None), _Store(), _Publisher(), 401),
    "path cannot name a connection": (
        lambda: pos_webhook_event("Not_A_Connection", INVENTORY),
        _Store(),
        _Publisher(),
        404,
    ),
    "table unavailable": (
        lambda: pos_webhook_event("demo", INVENTORY),
        _Store(UpstreamUnavailable("dynamodb: timed out")),
        _Publisher(),
        503,
    ),
    "a conflict (mapped, not raised by intake today)": (
        lambda: pos_webhook_event("demo", INVENTORY),
        _Store(),
        _Publisher(Conflict("lost a race")),
        409,
    ),
    "a domain error no status is mapped to": (
        lambda: pos_webhook_event("demo", INVENTORY),
        _Store(),
        _Publisher(Paused("paused")),
        500,
    ),
}


def _answer(event: dict[str, Any], intake: WebhookIntake, monkeypatch: pytest.MonkeyPatch) -> tuple[int, Any]:
    monkeypatch.setattr(runtime, "webhook_intake", lambda: intake)
    response = webhook_app.lambda_handler(event, LambdaContext(function_name="webhook_ingest"))
    return response["statusCode"], json.loads(response["body"])


def _documented_schema(event: dict[str, Any], status: int) -> dict[str, Any]:
    path = event["routeKey"].split(" ", 1)[1]
    answer = PUBLISHED["paths"][path]["post"]["responses"][str(status)]
    schema: dict[str, Any] = answer["content"]["application/json"]["schema"]
    return schema


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_each_answer_the_function_gives_has_the_documented_status_and_body(
    scenario: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    build, store, publisher, expected = SCENARIOS[scenario]
    event = build()
    intake = WebhookIntake(store, _Secrets(), publisher, dedup_ttl_seconds=60, pos_webhooks=pos_webhook_parser)

    status, body = _answer(event, intake, monkeypatch)

    assert status == expected, body
    errors = [e.message for e in Draft202012Validator(_documented_schema(event, status)).iter_errors(body)]
    assert errors == [], f"{scenario}: {body} is not the documented {status} body"


def test_a_repeated_delivery_gets_the_documented_duplicate_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    intake = WebhookIntake(_Store(), _Secrets(), _Publisher(), dedup_ttl_seconds=60, pos_webhooks=pos_webhook_parser)
    _answer(pos_webhook_event("demo", INVENTORY), intake, monkeypatch)

    event = pos_webhook_event("demo", INVENTORY)
    status, body = _answer(event, intake, monkeypatch)

    assert (status, body["outcome"]) == (200, "duplicate")
    assert list(Draft202012Validator(_documented_schema(event, 200)).iter_errors(body)) == []


def test_the_documented_queued_answer_refuses_a_body_without_the_correlation_id() -> None:
    """The schema check above can fail: the 202 body must carry the id that follows the change."""
    schema = _documented_schema(pos_webhook_event("demo", INVENTORY), 202)
    body = {"outcome": "queued", "reason": "queued for sync", "concern": "stock", "message_group_id": "g"}

    assert not Draft202012Validator(schema).is_valid(body)
    assert Draft202012Validator(schema).is_valid({**body, "correlation_id": "req-1"})


# -- a valid OpenAPI 3.1 document ------------------------------------------------------------------------------


def _schemas(operation: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for media in operation.get("requestBody", {}).get("content", {}).values():
        yield media["schema"]
    for answer in operation["responses"].values():
        for media in answer.get("content", {}).values():
            yield media["schema"]


def test_the_document_is_a_well_formed_openapi_3_1_description() -> None:
    assert PUBLISHED["openapi"].startswith("3.1.")
    assert PUBLISHED["info"]["title"] and PUBLISHED["info"]["version"] == project_version()
    schemes = PUBLISHED["components"]["securitySchemes"]
    operation_ids = [operation["operationId"] for _, _, operation in _operations(PUBLISHED)]
    assert len(operation_ids) == len(set(operation_ids))
    for method, path, operation in _operations(PUBLISHED):
        where = f"{method.upper()} {path}"
        templated = set(re.findall(r"{([^}]+)}", path))
        declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path" and p["required"]}
        assert declared == templated, where
        assert operation["requestBody"]["content"], where
        for status, answer in operation["responses"].items():
            assert re.fullmatch(r"[1-5]\d\d", status) and answer["description"], f"{where} {status}"
        assert operation["security"] and all(name in schemes for need in operation["security"] for name in need)
        for schema in _schemas(operation):
            Draft202012Validator.check_schema(schema)  # OpenAPI 3.1 schemas are JSON Schema 2020-12
    assert all(scheme["type"] == "apiKey" and scheme["in"] in ("query", "header") for scheme in schemes.values())
    for ref in re.findall(r'"\$ref": "([^"]*)"', json.dumps(PUBLISHED)):
        assert _resolves(ref), f"{ref} points at nothing"


def _resolves(ref: str) -> bool:
    node: Any = PUBLISHED
    for part in ref.removeprefix("#/").split("/"):
        if not ref.startswith("#/") or not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def test_the_document_passes_the_openapi_spec_validator() -> None:
    # Not a declared dependency: this runs where the package happens to be installed, the checks above everywhere.
    validator = pytest.importorskip("openapi_spec_validator")
    validator.validate(PUBLISHED)
