"""webhook_ingest in-process against moto: authentication, validation, exactly-one queueing."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from pos_ecom_sync.intake.webhooks import MAX_BODY_BYTES
from pos_ecom_sync.profiles.xseries import webhooks as xseries_webhooks

from functions.webhook_ingest import app
from local_stack.api_server import LocalApi
from local_stack.functions import LocalFunction
from tests.integration.conftest import Deployment, demo_connection
from tests.support import (
    DEMO_SECRETS,
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


def test_every_ecom_order_delivery_is_queued_for_import_and_as_a_status_hint(deployment: Deployment) -> None:
    # No eCom source documents a header or field saying "created" or "updated": both queues get the order, and
    # each worker is idempotent (import is a no-op once imported, status sync ignores an order not imported yet).
    raw = json.dumps(ORDER_BODY).encode()
    status, body = invoke(ecom_webhook_event("demo", raw))

    assert status == 202 and body["concern"] == "orders"
    [message] = drain_queue(deployment.sqs, deployment.queue_url("orders"))
    [hint] = drain_queue(deployment.sqs, deployment.queue_url("statuses"))
    assert json.loads(message["Body"])["entity_id"] == json.loads(hint["Body"])["entity_id"] == "5501042"


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


# -- X-Series signatures (OAuth apps) and the 1.0 payload shape ---------------------------------------------------

SIGNING_SECRET = "oauth-app-client-secret-0001"


def xseries_signature(body: bytes, secret: str = SIGNING_SECRET, *, encoding: str = "hex") -> str:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    value = digest.hex() if encoding == "hex" else base64.b64encode(digest).decode()
    return f"signature={value},algorithm=HMAC-SHA256"


@pytest.fixture
def signed_shop(deployment: Deployment) -> str:
    secrets = {**DEMO_SECRETS, "pos_webhook_signing_secret": SIGNING_SECRET}
    deployment.add_connection(demo_connection("signed-shop"), secrets)
    return "signed-shop"


def _nothing_queued(deployment: Deployment) -> bool:
    return all(drain_queue(deployment.sqs, deployment.queue_url(c)) == [] for c in ("products", "stock", "statuses"))


@pytest.mark.parametrize("encoding", ["hex", "base64"])
def test_a_correctly_signed_delivery_is_accepted(deployment: Deployment, signed_shop: str, encoding: str) -> None:
    body = pos_form("inventory.update", INVENTORY_PAYLOAD)
    headers = {"X-Signature": xseries_signature(body, encoding=encoding)}

    status, result = invoke(pos_webhook_event(signed_shop, body, headers=headers))

    assert status == 202 and result["outcome"] == "queued"
    assert len(drain_queue(deployment.sqs, deployment.queue_url("stock"))) == 1


SIGNATURE_FORGERIES = [
    pytest.param({}, "missing X-Signature", id="missing-signature"),
    pytest.param({"X-Signature": xseries_signature(b"another body")}, "does not match", id="signature-of-another-body"),
    pytest.param(
        {"X-Signature": xseries_signature(pos_form("inventory.update", INVENTORY_PAYLOAD), "another-app-secret-01")},
        "does not match",
        id="signed-with-another-secret",
    ),
    pytest.param({"X-Signature": "signature=,algorithm=HMAC-SHA256"}, "does not match", id="empty-signature"),
    pytest.param(
        {"X-Signature": xseries_signature(pos_form("inventory.update", INVENTORY_PAYLOAD)).replace("256", "1")},
        "algorithm",
        id="other-algorithm",
    ),
]


@pytest.mark.parametrize(("headers", "reason"), SIGNATURE_FORGERIES)
def test_a_connection_with_a_signing_secret_refuses_unsigned_or_forged_deliveries_and_queues_nothing(
    deployment: Deployment, signed_shop: str, headers: dict[str, str], reason: str
) -> None:
    body = pos_form("inventory.update", INVENTORY_PAYLOAD)

    status, result = invoke(pos_webhook_event(signed_shop, body, headers=headers))

    assert status == 401 and reason in result["error"]
    assert _nothing_queued(deployment)


def test_a_valid_signature_does_not_replace_the_url_token(deployment: Deployment, signed_shop: str) -> None:
    body = pos_form("inventory.update", INVENTORY_PAYLOAD)
    event = pos_webhook_event(
        signed_shop, body, token="demo-pos-webhook-tokeX", headers={"X-Signature": xseries_signature(body)}
    )

    status, _ = invoke(event)

    assert status == 401 and _nothing_queued(deployment)


def test_without_a_signing_secret_a_signature_header_is_not_required(deployment: Deployment) -> None:
    status, result = invoke(pos_webhook_event("demo", pos_form("inventory.update", INVENTORY_PAYLOAD)))

    assert status == 202 and result["outcome"] == "queued"


def _bare_form(payload: dict[str, Any]) -> bytes:
    """Only `payload`: the one form field the vendor guarantees, in the 1.0 shape (which has no `version`)."""
    return urlencode({"payload": json.dumps(payload)}).encode()


UNVERSIONED_1_0 = [
    pytest.param(INVENTORY_PAYLOAD, "stock", f"demo:pos:inventory:{INVENTORY_PAYLOAD['product_id']}", id="inventory"),
    pytest.param(
        {"id": "v-2", "handle": "tee", "base_name": "Tee", "variant_parent_id": "p-1", "sku": "TEE-M"},
        "products",
        "demo:pos:product:p-1",
        id="product-variant",
    ),
    pytest.param(
        {"id": "s-1", "invoice_number": "7", "status": "CLOSED", "register_sale_products": []},
        "statuses",
        "demo:pos:sale:s-1",
        id="sale",
    ),
]


@pytest.mark.parametrize(("payload", "concern", "group"), UNVERSIONED_1_0)
def test_a_1_0_payload_without_version_or_type_is_routed_by_its_shape_for_a_re_read(
    deployment: Deployment, payload: dict[str, Any], concern: str, group: str
) -> None:
    assert "version" not in payload

    status, result = invoke(pos_webhook_event("demo", _bare_form(payload)))

    assert status == 202 and result["concern"] == concern
    [message] = drain_queue(deployment.sqs, deployment.queue_url(concern))
    change = json.loads(message["Body"])
    assert change["version"] is None  # nothing to trust: the worker re-reads the entity
    assert message["Attributes"]["MessageGroupId"] == group


def test_a_customer_payload_without_type_is_acknowledged_not_refused(deployment: Deployment) -> None:
    payload = {"id": "c-1", "customer_code": "MIRA-0001", "first_name": "Mira", "email": "mira@example.com"}

    status, result = invoke(pos_webhook_event("demo", _bare_form(payload)))

    assert status == 200 and result["outcome"] == "ignored"  # a 4xx would make the vendor retry it for 48 h


# -- what a queued message carries -----------------------------------------------------------------------------------


def test_a_queued_order_change_carries_ids_and_stamps_never_the_customer(deployment: Deployment) -> None:
    order = {**ORDER_BODY["order"], "email": "mira@example.com", "firstname": "Mira", "comment": "x" * 200_000}

    status, _ = invoke(ecom_webhook_event("demo", json.dumps({"order": order}).encode()))

    assert status == 202
    for concern in ("orders", "statuses"):
        [message] = drain_queue(deployment.sqs, deployment.queue_url(concern))
        assert "mira" not in message["Body"].lower() and len(message["Body"]) < 1024
        assert set(json.loads(message["Body"])["payload"]) <= {"id", "number", "updatedAt"}


def test_a_pos_sale_change_keeps_what_the_status_worker_reads_to_skip_in_store_sales(deployment: Deployment) -> None:
    sale = {"id": "s-9", "invoice_number": "9", "source_id": "in-store-1", "return_for": None, "version": 12}
    sale |= {"customer": {"email": "mira@example.com"}, "register_sale_products": [{"note": "n" * 100_000}]}

    status, _ = invoke(pos_webhook_event("demo", pos_form("sale.update", sale)))

    assert status == 202
    [message] = drain_queue(deployment.sqs, deployment.queue_url("statuses"))
    change = json.loads(message["Body"])
    assert change["payload"] == {"id": "s-9", "source_id": "in-store-1", "return_for": None, "version": 12}
    assert change["version"] == 12


ODD_IDS = [
    pytest.param("has spaces", id="spaces"),
    pytest.param("café-☕", id="non-ascii"),
    pytest.param("x" * 256, id="256-characters"),
]


@pytest.mark.parametrize("entity_id", ODD_IDS)
def test_an_odd_entity_id_is_queued_under_a_group_id_sqs_accepts(deployment: Deployment, entity_id: str) -> None:
    payload = {**INVENTORY_PAYLOAD, "product_id": entity_id}

    status, body = invoke(pos_webhook_event("demo", pos_form("inventory.update", payload)))

    assert status == 202, body
    [message] = drain_queue(deployment.sqs, deployment.queue_url("stock"))
    assert json.loads(message["Body"])["entity_id"] == entity_id
    assert message["Attributes"]["MessageGroupId"].startswith("demo:pos:inventory:#")


REFUSED_FIELDS = [
    pytest.param({"product_id": "p\x07"}, "U+0007", id="control-character-id"),
    pytest.param({"product_id": "p" * 257}, "limit is 256", id="id-over-256-characters"),
    pytest.param({"outlet_id": "o\x00"}, "outlet_id", id="control-character-outlet"),
    pytest.param({"version": "²"}, "version", id="superscript-version"),
    pytest.param({"version": "①"}, "version", id="circled-version"),
    pytest.param({"version": 2**64}, "version", id="version-over-64-bits"),
    pytest.param({"version": -3}, "version", id="negative-version"),
]


@pytest.mark.parametrize(("fields", "reason"), REFUSED_FIELDS)
def test_an_id_or_version_no_vendor_sends_is_refused_with_400_and_nothing_is_queued(
    deployment: Deployment, fields: dict[str, Any], reason: str
) -> None:
    status, body = invoke(pos_webhook_event("demo", pos_form("inventory.update", {**INVENTORY_PAYLOAD, **fields})))

    assert status == 400 and reason in body["error"], body
    assert drain_queue(deployment.sqs, deployment.queue_url("stock")) == []


def test_an_implausible_updated_at_is_dropped_and_the_change_still_queued(deployment: Deployment) -> None:
    payload = {"id": "p-5", "handle": "tee", "updated_at": "²⁰²⁶" * 100}

    status, _ = invoke(pos_webhook_event("demo", pos_form("product.update", payload)))

    assert status == 202
    [message] = drain_queue(deployment.sqs, deployment.queue_url("products"))
    assert json.loads(message["Body"])["updated_at"] is None


PARSER_BREAKERS = [
    pytest.param(pos_form("product.update", '{"id":"p","v":' + "[" * 60_000), "nested too deeply", id="deep"),
    pytest.param(pos_form("product.update", '{"id":"p","version":' + "9" * 5000 + "}"), "JSON", id="huge-int"),
    pytest.param(pos_form("product.update", '{"id":"\\udcff","handle":"t"}'), "U+DCFF", id="surrogate-escape"),
    pytest.param(pos_form("product.update", '{"id":"p","version":NaN}'), "JSON", id="nan"),
]


@pytest.mark.parametrize(("body", "reason"), PARSER_BREAKERS)
def test_bodies_that_broke_the_parser_get_400_with_a_reason(deployment: Deployment, body: bytes, reason: str) -> None:
    status, result = invoke(pos_webhook_event("demo", body))

    assert status == 400 and reason in result["error"], result


def test_a_refusal_echoes_at_most_a_short_escaped_piece_of_the_input(deployment: Deployment) -> None:
    status, body = invoke(ecom_webhook_event("demo", json.dumps({"\x1b[31m" + "k" * 100_000: {"id": 1}}).encode()))

    assert status == 400 and len(body["error"]) < 120 and "\x1b" not in body["error"]


def test_a_lone_surrogate_in_a_query_value_is_refused_not_crashed_on(deployment: Deployment) -> None:
    event = pos_webhook_event("demo", pos_form("inventory.update", INVENTORY_PAYLOAD))
    event["queryStringParameters"] = {"token": "\udcff"}  # a JSON event may hold one; no HTTP request can

    status, body = invoke(event)

    assert status == 400 and "UTF-8" in body["error"]


@pytest.mark.parametrize("connection_id", ["c" * 2000, "Demo", "demo\udcff"])
def test_a_path_that_cannot_name_a_connection_is_404_without_a_table_read(
    deployment: Deployment, connection_id: str
) -> None:
    status, body = invoke(pos_webhook_event(connection_id, pos_form("inventory.update", INVENTORY_PAYLOAD)))

    # Refused by intake, or (the surrogate) by the resolver's path pattern before it: a 404 either way.
    assert status == 404 and len(body.get("error") or body["message"]) < 120


# -- the local API answers what API Gateway answers -------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "DELETE", "PATCH", "OPTIONS", "PUT", "BREW"])
def test_the_local_api_answers_a_method_without_a_route_with_api_gateways_json_404(
    deployment: Deployment, method: str
) -> None:
    functions = {name: LocalFunction(spec) for name, spec in deployment.resources.functions.items()}
    api = LocalApi(deployment.resources.routes, functions, port=0)
    api.start()
    try:
        response = httpx.request(method, f"{api.url}/connections/demo/webhooks/pos", timeout=5)
        head = httpx.head(f"{api.url}/nowhere", timeout=5)
    finally:
        api.stop()

    assert response.status_code == 404 and response.json() == {"message": "Not Found"}
    assert response.headers["content-type"] == "application/json"
    assert head.status_code == 404 and head.content == b""


def test_a_parser_bug_on_unforeseen_input_is_a_400_not_a_retry_storm(
    deployment: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_parser(*args: Any) -> None:
        raise KeyError("a case nobody foresaw")

    monkeypatch.setattr(xseries_webhooks, "parse_pos_webhook", broken_parser)

    status, body = invoke(pos_webhook_event("demo", pos_form("inventory.update", INVENTORY_PAYLOAD)))

    assert status == 400 and "could not be read" in body["error"]


def test_a_queue_that_refuses_the_send_is_a_503_the_vendor_retries(deployment: Deployment) -> None:
    deployment.sqs.delete_queue(QueueUrl=deployment.queue_url("stock"))

    status, body = invoke(pos_webhook_event("demo", pos_form("inventory.update", INVENTORY_PAYLOAD)))

    assert status == 503 and body["error"] == "temporarily unavailable, retry later"
