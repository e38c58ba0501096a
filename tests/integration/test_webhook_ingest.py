"""webhook_ingest in-process against moto: authentication, validation, exactly-one queueing."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pos_ecom_sync.intake.webhooks import MAX_BODY_BYTES

from functions.webhook_ingest import app
from tests.integration.conftest import Deployment, demo_connection
from tests.support import (
    INVENTORY_PAYLOAD,
    ORDER_BODY,
    LambdaContext,
    drain_queue,
    ecom_signature,
    ecom_webhook_event,
    pos_form,
    pos_webhook_event,
)


def invoke(event: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    response = app.lambda_handler(event, LambdaContext(function_name="webhook_ingest"))
    return response["statusCode"], json.loads(response["body"])


def test_pos_inventory_webhook_queues_one_stock_message_grouped_by_variant(deployment: Deployment) -> None:
    status, body = invoke(pos_webhook_event("demo", pos_form("inventory.update", INVENTORY_PAYLOAD)))

    assert status == 202 and body["outcome"] == "queued" and body["concern"] == "stock"
    [message] = drain_queue(deployment.sqs, deployment.queue_url("stock"))
    change = json.loads(message["Body"])
    assert change["entity"] == "inventory" and change["entity_id"] == INVENTORY_PAYLOAD["product_id"]
    assert change["payload"]["outlet_id"] == INVENTORY_PAYLOAD["outlet_id"]
    assert message["Attributes"]["MessageGroupId"] == f"demo:pos:inventory:{INVENTORY_PAYLOAD['product_id']}"


def test_base64_form_body_from_api_gateway_is_decoded(deployment: Deployment) -> None:
    event = pos_webhook_event("demo", pos_form("product.update", {"id": "p-1", "handle": "tee"}), base64_body=True)

    status, body = invoke(event)

    assert status == 202 and body["concern"] == "products"
    assert len(drain_queue(deployment.sqs, deployment.queue_url("products"))) == 1


def test_ecom_order_created_is_queued_for_import(deployment: Deployment) -> None:
    raw = json.dumps(ORDER_BODY).encode()
    status, body = invoke(ecom_webhook_event("demo", raw, headers={"x-action": "created"}))

    assert status == 202 and body["concern"] == "orders"
    [message] = drain_queue(deployment.sqs, deployment.queue_url("orders"))
    assert json.loads(message["Body"])["entity_id"] == "5501042"


@pytest.mark.parametrize("source", ["pos", "ecom"])
def test_webhook_delivered_three_times_queues_one_message(deployment: Deployment, source: str) -> None:
    if source == "pos":
        event, concern = pos_webhook_event("demo", pos_form("inventory.update", INVENTORY_PAYLOAD)), "stock"
    else:
        event, concern = ecom_webhook_event("demo", json.dumps(ORDER_BODY).encode()), "orders"

    outcomes = [invoke(event)[1]["outcome"] for _ in range(3)]

    assert outcomes == ["queued", "duplicate", "duplicate"]
    assert len(drain_queue(deployment.sqs, deployment.queue_url(concern))) == 1


def test_a_new_change_to_the_same_entity_is_queued_again(deployment: Deployment) -> None:
    invoke(pos_webhook_event("demo", pos_form("inventory.update", INVENTORY_PAYLOAD)))
    invoke(pos_webhook_event("demo", pos_form("inventory.update", {**INVENTORY_PAYLOAD, "count": 4})))

    assert len(drain_queue(deployment.sqs, deployment.queue_url("stock"))) == 2


FORGED = [
    pytest.param(
        lambda: pos_webhook_event("demo", pos_form("inventory.update", INVENTORY_PAYLOAD), token=None),
        id="pos-no-token",
    ),
    pytest.param(
        lambda: pos_webhook_event(
            "demo", pos_form("inventory.update", INVENTORY_PAYLOAD), token="demo-pos-webhook-tokeX"
        ),
        id="pos-wrong-token",
    ),
    pytest.param(
        lambda: ecom_webhook_event("demo", json.dumps(ORDER_BODY).encode(), secret=None), id="ecom-no-signature"
    ),
    pytest.param(
        lambda: ecom_webhook_event("demo", json.dumps(ORDER_BODY).encode(), secret="some-other-app-secret"),
        id="ecom-signed-with-another-secret",
    ),
    pytest.param(
        lambda: ecom_webhook_event(
            "demo",
            json.dumps(ORDER_BODY).encode(),
            headers={"x-signature": ecom_signature(json.dumps({"order": {"id": 1}}).encode(), "demo-ecom-app-secret")},
        ),
        id="ecom-signature-of-another-body",
    ),
]


@pytest.mark.parametrize("make_event", FORGED)
def test_forged_or_absent_credentials_are_rejected_and_nothing_is_queued(
    deployment: Deployment, make_event: Any
) -> None:
    status, body = invoke(make_event())

    assert status == 401 and body["error"]
    for concern in ("products", "stock", "orders", "statuses"):
        assert drain_queue(deployment.sqs, deployment.queue_url(concern)) == []


def test_unknown_connection_is_404(deployment: Deployment) -> None:
    status, body = invoke(pos_webhook_event("nobody", pos_form("inventory.update", INVENTORY_PAYLOAD)))
    assert status == 404 and "nobody" in body["error"]


def _pos(body: bytes, **kwargs: Any) -> dict[str, Any]:
    return pos_webhook_event("demo", body, **kwargs)


def _ecom(body: bytes, **kwargs: Any) -> dict[str, Any]:
    return ecom_webhook_event("demo", body, **kwargs)


MALFORMED = [
    pytest.param(
        _pos(b"payload=%7B%7D", headers={"Content-Type": "application/json"}),
        "Content-Type",
        id="pos-wrong-content-type",
    ),
    pytest.param(_pos(b"type=inventory.update&payload=%FF%FE"), "UTF-8", id="pos-invalid-utf8-in-field"),
    pytest.param(_pos(b"\xff\xfe\xfd"), "UTF-8", id="pos-invalid-utf8-body"),
    pytest.param(_pos(b"type=inventory.update"), "payload", id="pos-missing-payload"),
    pytest.param(_pos(pos_form("inventory.update", "{not json")), "JSON", id="pos-payload-not-json"),
    pytest.param(_pos(pos_form("inventory.update", "[1, 2]")), "object", id="pos-payload-not-object"),
    pytest.param(_pos(pos_form("tax.update", {"id": "x"})), "unknown webhook type", id="pos-unknown-type"),
    pytest.param(_pos(pos_form(None, {"id": "x"})), "unknown webhook type", id="pos-unrecognisable-payload"),
    pytest.param(
        _pos(pos_form("inventory.update", {"outlet_id": "o", "count": 1})), "product_id", id="pos-no-entity-id"
    ),
    pytest.param(_pos(b"a=1&&&b"), "form", id="pos-not-form-encoded"),
    pytest.param(_pos(b"x" * (MAX_BODY_BYTES + 1)), "limit", id="pos-body-too-large"),
    pytest.param({**_pos(b""), "body": "%%%not-base64", "isBase64Encoded": True}, "base64", id="pos-bad-base64"),
    pytest.param(_ecom(b'{"order": ', headers={}), "JSON", id="ecom-not-json"),
    pytest.param(
        _ecom(json.dumps(ORDER_BODY).encode(), headers={"Content-Type": "text/plain"}),
        "Content-Type",
        id="ecom-wrong-content-type",
    ),
    pytest.param(_ecom(b'"just a string"'), "object", id="ecom-not-object"),
    pytest.param(_ecom(json.dumps({"tax": {"id": 1}}).encode()), "unknown webhook type", id="ecom-unknown-type"),
    pytest.param(
        _ecom(json.dumps({"order": {"id": 1}, "variant": {"id": 2}}).encode()), "exactly one", id="ecom-two-envelopes"
    ),
    pytest.param(_ecom(json.dumps({"order": {"id": "12"}}).encode()), "integer id", id="ecom-string-id"),
    pytest.param(_ecom(b"\xff" + json.dumps(ORDER_BODY).encode()), "UTF-8", id="ecom-invalid-utf8"),
]


@pytest.mark.parametrize(("event", "reason"), MALFORMED)
def test_malformed_bodies_get_400_with_a_reason(deployment: Deployment, event: dict[str, Any], reason: str) -> None:
    status, body = invoke(event)

    assert status == 400, body
    assert reason.lower() in body["error"].lower()


def test_changes_that_are_not_synced_are_acknowledged_without_queueing(deployment: Deployment) -> None:
    status, body = invoke(pos_webhook_event("demo", pos_form("customer.update", {"id": "c-1", "email": "a@b.c"})))

    assert status == 200 and body["outcome"] == "ignored"
    assert drain_queue(deployment.sqs, deployment.queue_url("statuses")) == []


def test_paused_connection_acknowledges_and_leaves_the_change_to_the_poller(deployment: Deployment) -> None:
    deployment.add_connection(demo_connection("paused-shop", status="paused"))
    event = pos_webhook_event("paused-shop", pos_form("inventory.update", INVENTORY_PAYLOAD))

    status, body = invoke(event)

    assert status == 200 and body["outcome"] == "ignored" and "paused" in body["reason"]


def test_missing_secret_is_reported_as_retryable_without_leaking_detail(deployment: Deployment) -> None:
    deployment.store.save_connection(demo_connection("no-secret"), create=True)

    status, body = invoke(pos_webhook_event("no-secret", pos_form("inventory.update", INVENTORY_PAYLOAD)))

    assert status == 503 and "secret" not in body["error"]
