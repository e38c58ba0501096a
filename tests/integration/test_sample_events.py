"""The checked-in sample events (events/, for `sam local invoke -e`) do what they claim, and are up to date."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools.utilities.parser.models import APIGatewayProxyEventV2Model, EventBridgeModel
from pos_ecom_sync.state import keys

from events import generate
from functions.change_poller import app as change_poller
from functions.webhook_ingest import app as webhook_ingest
from local_stack.cfn_yaml import load_template
from local_stack.provision import TEMPLATE_PATH, HttpRoute
from tests.integration.conftest import Deployment, demo_connection
from tests.support import LambdaContext, drain_queue

EVENTS_DIR = Path(__file__).resolve().parents[2] / "events"
CONCERNS = ("products", "stock", "orders", "statuses")
ROUTES = {
    route.route_key: route
    for logical, resource in load_template(TEMPLATE_PATH)["Resources"].items()
    if resource["Type"] == "AWS::Serverless::Function"
    for event in resource["Properties"].get("Events", {}).values()
    if event["Type"] == "HttpApi"
    for route in [HttpRoute(event["Properties"]["Method"], event["Properties"]["Path"], logical)]
}


@dataclass(frozen=True)
class Expected:
    status: int
    concern: str | None = None
    source: str | None = None
    entity: str | None = None
    entity_id: str | None = None
    # Rows of one POS product family share the parent's message group (one worker syncs the family).
    group_key: str | None = None


EXPECTED = {
    "pos_inventory_update.json": Expected(202, "stock", "pos", "inventory", "0a1b0000-aaaa-11ee-8c90-000000000002"),
    "pos_product_update.json": Expected(
        202,
        "products",
        "pos",
        "product",
        "0a1b0000-aaaa-11ee-8c90-000000000002",
        "0a1b0000-aaaa-11ee-8c90-000000000001",
    ),
    "pos_sale_update.json": Expected(202, "statuses", "pos", "sale", "0a1b0000-dddd-11ee-8c90-000000000010"),
    "ecom_order_created.json": Expected(202, "orders", "ecom", "order", "5501042"),
    "ecom_order_updated.json": Expected(202, "statuses", "ecom", "order", "5501042"),
    "ecom_variant_updated.json": Expected(202, "stock", "ecom", "variant", "880001"),
    "ecom_bad_signature.json": Expected(401),
}


def load(relative: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS_DIR / relative).read_text())
    return event


def webhook_files() -> list[str]:
    return sorted(p.name for p in (EVENTS_DIR / "webhook_ingest").glob("*.json"))


def test_every_webhook_sample_has_an_expected_outcome() -> None:
    assert webhook_files() == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_webhook_sample_is_a_complete_http_api_v2_event_on_a_template_route(name: str) -> None:
    event = load(f"webhook_ingest/{name}")

    APIGatewayProxyEventV2Model.model_validate(event)
    assert event["version"] == "2.0"
    route = ROUTES[event["routeKey"]]
    assert route.function == "WebhookIngestFunction"
    assert route.match("POST", event["rawPath"]) == event["pathParameters"] == {"connection_id": "demo"}
    assert all(header == header.lower() for header in event["headers"])
    context = event["requestContext"]
    assert context["http"]["method"] == "POST" and context["http"]["path"] == event["rawPath"]
    assert context["http"]["sourceIp"] and context["requestId"] and context["time"] and context["timeEpoch"]
    assert context["routeKey"] == event["routeKey"] and context["stage"] == "$default"
    if event["rawPath"].endswith("/pos"):
        # HTTP API base64-encodes form bodies; X-Series authenticates with the token in the URL.
        assert event["isBase64Encoded"] is True
        assert event["headers"]["content-type"].startswith("application/x-www-form-urlencoded")
        assert event["rawQueryString"] == f"token={event['queryStringParameters']['token']}"
    else:
        assert event["isBase64Encoded"] is False and event["headers"]["content-type"] == "application/json"
        assert event["headers"]["x-signature"] and event["headers"]["x-action"]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_webhook_sample_gets_its_status_and_queues_on_the_right_queue(deployment: Deployment, name: str) -> None:
    expected = EXPECTED[name]

    response = webhook_ingest.lambda_handler(load(f"webhook_ingest/{name}"), LambdaContext(function_name="ingest"))

    body = json.loads(response["body"])
    assert response["statusCode"] == expected.status, body
    queued = {concern: drain_queue(deployment.sqs, deployment.queue_url(concern)) for concern in CONCERNS}
    if expected.concern is None:
        assert body["error"]
        assert queued == {concern: [] for concern in CONCERNS}
        return
    assert body["outcome"] == "queued" and body["concern"] == expected.concern
    assert {c: len(m) for c, m in queued.items()} == {c: int(c == expected.concern) for c in CONCERNS}
    [message] = queued[expected.concern]
    change = json.loads(message["Body"])
    assert (change["connection_id"], change["source"], change["entity"], change["entity_id"]) == (
        "demo",
        expected.source,
        expected.entity,
        expected.entity_id,
    )
    assert change["via"] == "webhook"
    group = f"demo:{expected.source}:{expected.entity}:{expected.group_key or expected.entity_id}"
    assert message["Attributes"]["MessageGroupId"] == body["message_group_id"] == group


def test_sample_events_match_the_generator() -> None:
    assert generate.out_of_date(EVENTS_DIR) == []


def test_generator_is_deterministic_and_reproduces_every_file(tmp_path: Path) -> None:
    generate.main(["--out", str(tmp_path)])

    produced = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.json"))
    checked_in = sorted(p.relative_to(EVENTS_DIR).as_posix() for p in EVENTS_DIR.rglob("*.json"))
    assert produced == checked_in
    for relative in produced:
        assert (tmp_path / relative).read_bytes() == (EVENTS_DIR / relative).read_bytes(), relative


def test_generator_check_reports_an_edited_and_a_stray_file(tmp_path: Path) -> None:
    generate.write_events(tmp_path)
    edited = tmp_path / "webhook_ingest" / "ecom_order_created.json"
    edited.write_text(edited.read_text().replace("ORD10042", "ORD99999"))
    (tmp_path / "change_poller" / "old.json").write_text("{}")

    assert generate.main(["--check", "--out", str(tmp_path)]) == 1
    assert generate.out_of_date(tmp_path) == [
        "webhook_ingest/ecom_order_created.json: differs",
        "change_poller/old.json: not generated (stale?)",
    ]


def _poll(event: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = change_poller.lambda_handler(event, LambdaContext(function_name="change_poller"))
    return result


def test_operator_run_for_a_connection_that_does_not_exist_polls_nothing(deployment: Deployment) -> None:
    table = deployment.session.resource("dynamodb").Table(deployment.env["TABLE_NAME"])
    table.delete_item(Key={"pk": keys.connection_pk("demo"), "sk": keys.CONFIG_SK})
    event = load("change_poller/one_connection.json")
    assert event == {"connection_id": "demo"}

    summary = _poll(event)

    assert summary == {"queued": 0, "connections": {}, "failures": {}}
    assert all(drain_queue(deployment.sqs, deployment.queue_url(c)) == [] for c in CONCERNS)


def test_operator_run_for_a_paused_connection_polls_nothing(deployment: Deployment) -> None:
    deployment.store.save_connection(demo_connection(status="paused"))

    assert _poll(load("change_poller/one_connection.json")) == {"queued": 0, "connections": {}, "failures": {}}


def test_scheduled_sample_is_accepted_and_skips_paused_connections(deployment: Deployment) -> None:
    deployment.store.save_connection(demo_connection(status="paused"))
    event = load("change_poller/scheduled.json")
    EventBridgeModel.model_validate(event)
    assert event["detail-type"] == "Scheduled Event" and event["source"] == "aws.events"

    summary = _poll(event)

    assert summary == {"queued": 0, "connections": {}, "failures": {}}
    assert all(drain_queue(deployment.sqs, deployment.queue_url(c)) == [] for c in CONCERNS)
