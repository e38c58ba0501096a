"""The checked-in sample events (events/, for `sam local invoke -e`) do what they claim, and are up to date."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from aws_lambda_powertools.utilities.parser.models import APIGatewayProxyEventV2Model, EventBridgeModel, SqsModel
from pos_ecom_sync import runtime
from pos_ecom_sync.connectors.http import VendorHttp
from pos_ecom_sync.models.messages import ChangeMessage, Concern
from pos_ecom_sync.state import keys

from events import generate
from functions.change_poller import app as change_poller
from functions.webhook_ingest import app as webhook_ingest
from local_stack.cfn_yaml import load_template
from local_stack.functions import LocalFunction
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
    # An eCom order change is also a status hint (no delivery says created or updated): same message, statuses queue.
    hint: bool = False


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
    "ecom_order_created.json": Expected(202, "orders", "ecom", "order", "5501042", hint=True),
    "ecom_order_updated.json": Expected(202, "orders", "ecom", "order", "5501042", hint=True),
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
        assert event["headers"]["x-signature"] and "x-action" not in event["headers"]  # undocumented: never sent


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
    wanted = {expected.concern, *(["statuses"] if expected.hint else [])}
    assert {c: len(m) for c, m in queued.items()} == {c: int(c in wanted) for c in CONCERNS}
    if expected.hint:
        [hint] = queued["statuses"]
        assert {**json.loads(hint["Body"]), "concern": expected.concern} == json.loads(
            queued[expected.concern][0]["Body"]
        )
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


# -- SQS workers ---------------------------------------------------------------------------------------------------
WORKERS = {
    "product_sync": "ProductSyncFunction",
    "stock_sync": "StockSyncFunction",
    "order_import": "OrderImportFunction",
    "status_sync": "StatusSyncFunction",
}


@dataclass(frozen=True)
class ExpectedBatch:
    concern: Concern
    # (source, entity, entity_id, via) of each record, in order.
    changes: tuple[tuple[str, str, str, str], ...]
    # With the vendors unreachable (the demo connection points at a closed port and holds no sync state): True when
    # the worker must call a vendor, so the whole batch is retried; False when the change settles without one.
    needs_vendor: bool


PARENT, VARIANT = "0a1b0000-aaaa-11ee-8c90-000000000001", "0a1b0000-aaaa-11ee-8c90-000000000002"
EXPECTED_BATCHES = {
    # One message for the family's page (parent and variant rows); the family is re-read before anything is written.
    "product_sync/pos_product_changed.json": ExpectedBatch(
        "products", (("pos", "product", PARENT, "poll"),), needs_vendor=True
    ),
    # The versioned level is recorded; no eCom variant is linked yet and no outlet connected: nothing to write.
    "stock_sync/pos_inventory_changed.json": ExpectedBatch(
        "stock", (("pos", "inventory", VARIANT, "poll"),), needs_vendor=False
    ),
    # Not a variant we created (no link, and the grace for a fresh link is long over): acknowledged.
    "stock_sync/ecom_variant_edited.json": ExpectedBatch(
        "stock", (("ecom", "variant", "880001", "webhook"),), needs_vendor=False
    ),
    # The order is read from eCom before the sale is made.
    "order_import/ecom_order_created.json": ExpectedBatch(
        "orders", (("ecom", "order", "5501042", "webhook"),), needs_vendor=True
    ),
    # Not imported yet: its import applies the order's state as it is then.
    "status_sync/ecom_order_updated.json": ExpectedBatch(
        "statuses", (("ecom", "order", "5501042", "webhook"),), needs_vendor=False
    ),
    # A web sale (source_id ecom-...): the POS sale is read to find its order.
    "status_sync/pos_sale_updated.json": ExpectedBatch(
        "statuses", (("pos", "sale", "0a1b0000-dddd-11ee-8c90-000000000010", "webhook"),), needs_vendor=True
    ),
}


def worker_files() -> list[str]:
    return sorted(p.relative_to(EVENTS_DIR).as_posix() for folder in WORKERS for p in (EVENTS_DIR / folder).glob("*"))


def _worker(deployment: Deployment, relative: str, monkeypatch: pytest.MonkeyPatch) -> LocalFunction:
    """The function's own handler with its own environment (each worker parks records in its own DLQ)."""
    spec = deployment.resources.functions[WORKERS[relative.split("/")[0]]]
    for name, value in spec.environment.items():
        monkeypatch.setenv(name, value)
    runtime.reset()
    return LocalFunction(spec)


def _retried(function: LocalFunction, event: dict[str, Any]) -> list[str]:
    """The message ids SQS delivers again. When every record fails, Powertools raises and Lambda returns the whole
    batch to the queue; otherwise the partial batch response names the failed records."""
    try:
        response = function.invoke(event)
    except BatchProcessingError:
        return [record["messageId"] for record in event["Records"]]
    assert set(response) == {"batchItemFailures"}, response
    failures = response["batchItemFailures"]
    assert all(set(failure) == {"itemIdentifier"} for failure in failures), failures
    return [failure["itemIdentifier"] for failure in failures]


def test_every_worker_sample_has_an_expected_outcome() -> None:
    assert worker_files() == sorted(EXPECTED_BATCHES)


@pytest.mark.parametrize("relative", sorted(EXPECTED_BATCHES))
def test_worker_sample_is_a_fifo_batch_of_change_messages_from_its_functions_queue(
    deployment: Deployment, relative: str
) -> None:
    expected = EXPECTED_BATCHES[relative]
    event = load(relative)
    [subscription] = [s for s in deployment.resources.subscriptions if s.function == WORKERS[relative.split("/")[0]]]
    # The queue template.yaml subscribes the function to, in the stack the samples name.
    arn = subscription.queue_arn.replace(f":{deployment.resources.stack_name}-", f":{generate.STACK_NAME}-")

    SqsModel.model_validate(event)
    records = event["Records"]
    assert subscription.report_batch_item_failures and len(records) <= subscription.batch_size
    assert len({r["messageId"] for r in records}) == len({r["receiptHandle"] for r in records}) == len(records)
    changes = []
    for record in records:
        message = ChangeMessage.model_validate_json(record["body"])
        attributes = record["attributes"]
        assert record["eventSource"] == "aws:sqs"
        assert record["eventSourceARN"] == arn == generate.queue_arn(expected.concern)
        assert record["awsRegion"] == generate.REGION and record["messageAttributes"] == {}
        assert record["md5OfBody"] == hashlib.md5(record["body"].encode(), usedforsecurity=False).hexdigest()
        assert attributes["MessageGroupId"] == message.message_group_id
        assert attributes["MessageDeduplicationId"] and attributes["SequenceNumber"].isdigit()
        assert attributes["ApproximateReceiveCount"] == "1" and attributes["SenderId"].startswith("AROA")
        assert int(attributes["SentTimestamp"]) <= int(attributes["ApproximateFirstReceiveTimestamp"])
        assert message.connection_id == "demo" and message.concern == expected.concern
        changes.append((message.source, message.entity, message.entity_id, message.via))
    assert tuple(changes) == expected.changes
    sequence = [int(r["attributes"]["SequenceNumber"]) for r in records]
    assert sequence == sorted(sequence)


def test_worker_samples_carry_what_webhook_ingest_queues_for_the_same_delivery(deployment: Deployment) -> None:
    for worker_sample, webhook_sample in (
        ("stock_sync/ecom_variant_edited.json", "ecom_variant_updated.json"),
        ("order_import/ecom_order_created.json", "ecom_order_created.json"),
        ("status_sync/ecom_order_updated.json", "ecom_order_updated.json"),
        ("status_sync/pos_sale_updated.json", "pos_sale_update.json"),
    ):
        webhook_ingest.lambda_handler(load(f"webhook_ingest/{webhook_sample}"), LambdaContext(function_name="ingest"))
        [record] = load(worker_sample)["Records"]
        queued_by = {concern: drain_queue(deployment.sqs, deployment.queue_url(concern)) for concern in CONCERNS}
        [queued] = queued_by[EXPECTED_BATCHES[worker_sample].concern]
        sent, sample = json.loads(queued["Body"]), json.loads(record["body"])
        assert {**sent, "received_at": None} == {**sample, "received_at": None}, worker_sample
        for attribute in ("MessageGroupId", "MessageDeduplicationId"):
            assert queued["Attributes"][attribute] == record["attributes"][attribute], worker_sample


@pytest.mark.parametrize("relative", sorted(EXPECTED_BATCHES))
def test_worker_sample_through_its_handler_with_the_vendors_down_is_retried_or_settled_never_lost(
    deployment: Deployment, relative: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(VendorHttp, "_backoff", lambda self, failures: None)  # connection refused: no need to wait
    function = _worker(deployment, relative, monkeypatch)
    event = load(relative)

    retried = _retried(function, event)

    ids = [record["messageId"] for record in event["Records"]]
    assert retried == (ids if EXPECTED_BATCHES[relative].needs_vendor else [])
    assert drain_queue(deployment.sqs, function.spec.environment["DEAD_LETTER_QUEUE_URL"]) == []


@pytest.mark.parametrize("relative", sorted(EXPECTED_BATCHES))
def test_worker_sample_of_a_paused_connection_is_parked_in_its_dead_letter_queue_with_why(
    deployment: Deployment, relative: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    deployment.store.save_connection(demo_connection(status="paused"))
    function = _worker(deployment, relative, monkeypatch)
    event = load(relative)

    assert function.invoke(event) == {"batchItemFailures": []}

    parked = deployment.sqs.receive_message(
        QueueUrl=function.spec.environment["DEAD_LETTER_QUEUE_URL"],
        MaxNumberOfMessages=10,
        AttributeNames=["All"],
        MessageAttributeNames=["All"],
    ).get("Messages", [])
    assert [m["Body"] for m in parked] == [r["body"] for r in event["Records"]]
    for message, record in zip(parked, event["Records"], strict=True):
        assert message["Attributes"]["MessageGroupId"] == record["attributes"]["MessageGroupId"]
        attributes = {name: value["StringValue"] for name, value in message["MessageAttributes"].items()}
        assert attributes["error_type"] == "Paused" and attributes["source_message_id"] == record["messageId"]
