"""Hostile webhook deliveries through the real webhook handler (API Gateway v2 events, moto with SQS's real limits).

Whatever a sender puts in a body, header, query or path: no 5xx (vendors retry a 5xx for days), nothing queued that
SQS or a worker would choke on, and no valid delivery lost. A fixed corpus replays every case known to have broken
intake; hypothesis adds generated ones. Bounded for `make test`; `FUZZ_EXAMPLES=20000` runs a long campaign.
Counts are printed (past pytest's capture) so CI output shows what was driven.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

import boto3
import pytest
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pos_ecom_sync.intake.webhooks import MAX_BODY_BYTES
from pos_ecom_sync.models.messages import PAYLOAD_FIELDS, ChangeMessage

from functions.webhook_ingest import app
from local_stack.moto_server import LocalMotoServer
from local_stack.sqs_limits import FIFO_ID, MAX_MESSAGE_BYTES, check_message
from tests.integration.conftest import Deployment
from tests.support import (
    DEMO_SECRETS,
    INVENTORY_PAYLOAD,
    ORDER_BODY,
    LambdaContext,
    ecom_signature,
    free_port,
    pos_form,
)

LONG_RUN = int(os.environ.get("FUZZ_EXAMPLES", "0"))
EXAMPLES = LONG_RUN or 800
VALID_EVERY = 5  # a valid delivery among every few generated ones (each costs five moto calls)
FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    derandomize=not LONG_RUN,  # the bounded run is the same in every CI job; a long run explores
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
CONCERNS = ("products", "stock", "orders", "statuses")
POS_TOKEN = DEMO_SECRETS["pos_webhook_token"]
ECOM_SECRET = DEMO_SECRETS["ecom_webhook_secret"]
_serial = itertools.count()


# -- events ----------------------------------------------------------------------------------------------------------


def _event(source: str, body: bytes | str, *, connection_id: str = "demo", **overrides: Any) -> dict[str, Any]:
    """An API Gateway HTTP API v2 event. Bytes travel base64-encoded (any byte reaches the handler); a str is the
    event's text body as is (it may hold what no HTTP request can: a lone surrogate)."""
    route = f"POST /connections/{{connection_id}}/webhooks/{source}"
    headers = overrides.pop("headers", None)
    if headers is None:
        headers = {"content-type": "application/x-www-form-urlencoded" if source == "pos" else "application/json"}
        if source == "ecom" and isinstance(body, bytes):
            headers["x-signature"] = ecom_signature(body, ECOM_SECRET)
    query = overrides.pop("query", {"token": POS_TOKEN} if source == "pos" else None)
    is_bytes = isinstance(body, bytes)
    return {
        "version": "2.0",
        "routeKey": route,
        "rawPath": f"/connections/{connection_id}/webhooks/{source}",
        "rawQueryString": urlencode(query or {}, errors="surrogatepass"),
        "headers": headers,
        "queryStringParameters": query,
        "pathParameters": {"connection_id": connection_id},
        "requestContext": {
            "http": {"method": "POST", "path": f"/connections/{connection_id}/webhooks/{source}"},
            "requestId": f"fuzz-{next(_serial)}",
            "routeKey": route,
            "stage": "$default",
        },
        "body": base64.b64encode(body).decode() if is_bytes else body,
        "isBase64Encoded": is_bytes,
        **overrides,
    }


def pos_event(payload: dict[str, Any] | str, webhook_type: str | None = "product.update", **kw: Any) -> dict[str, Any]:
    return _event("pos", pos_form(webhook_type, payload), **kw)


def ecom_event(body: dict[str, Any] | str | bytes, **kw: Any) -> dict[str, Any]:
    raw = body if isinstance(body, bytes) else (body if isinstance(body, str) else json.dumps(body)).encode()
    return _event("ecom", raw, **kw)


# -- the ledger: every request, every queued message -----------------------------------------------------------------


@dataclass
class Ledger:
    deployment: Deployment
    statuses: Counter[str] = field(default_factory=Counter)
    requests: int = 0
    queued: int = 0
    valid_sent: int = 0
    accepted_groups: list[str] = field(default_factory=list)
    must_queue: dict[str, str] = field(default_factory=dict)  # entity id of a valid delivery -> concern

    def send(self, event: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        self.requests += 1
        try:
            response = app.lambda_handler(event, LambdaContext(function_name="webhook_ingest"))
        except Exception as exc:  # an unhandled error: API Gateway answers 500
            self.statuses["5xx"] += 1
            raise AssertionError(f"the handler raised {type(exc).__name__}: {str(exc)[:300]}") from exc
        status = int(response["statusCode"])
        self.statuses[f"{status // 100}xx"] += 1
        body = json.loads(response["body"]) if response.get("body") else {}
        assert status < 500, (status, body)
        if status >= 400:
            reason = body.get("error") or body.get("message")
            assert reason and len(reason) <= 300, body  # a reason, cut short: never the input echoed whole
        if status == 202:
            self.accepted_groups.append(body["message_group_id"])
        return status, body

    def send_valid(self, event: dict[str, Any], entity_id: str, concern: str) -> None:
        """A delivery that must be queued, whatever surrounds it."""
        self.valid_sent += 1
        status, body = self.send(event)
        assert status == 202 and body["outcome"] == "queued", body
        self.must_queue[entity_id] = concern

    def settle(self) -> None:
        """Drain every queue: each message is well-formed, within SQS's limits, small, and answers a 202; every
        valid delivery is there."""
        seen: dict[str, set[str]] = {}
        for concern in CONCERNS:
            for message in _drain(self.deployment, concern):
                self.queued += 1
                body = message["Body"]
                attributes = message["Attributes"]
                check_message(body, attributes["MessageGroupId"], attributes.get("MessageDeduplicationId"))
                assert FIFO_ID.fullmatch(attributes["MessageGroupId"])
                assert len(body.encode()) < MAX_MESSAGE_BYTES // 100  # ids and a few scalars, never a resource
                change = ChangeMessage.model_validate_json(body)
                assert change.concern == concern
                assert set(change.payload) <= set(PAYLOAD_FIELDS[(change.source, change.entity)])
                assert attributes["MessageGroupId"] in self.accepted_groups, attributes["MessageGroupId"]
                seen.setdefault(change.entity_id, set()).add(concern)
        lost = {eid: c for eid, c in self.must_queue.items() if c not in seen.get(eid, set())}
        assert not lost, f"valid deliveries not queued: {lost}"
        self.must_queue.clear()
        self.accepted_groups.clear()

    def settle_now_and_then(self, every: int = 60) -> None:
        """Settle once enough has been sent: a drain per example would cost more than the requests themselves."""
        if len(self.accepted_groups) >= every:
            self.settle()

    def report(self, name: str) -> str:
        return (
            f"\n[webhook fuzz] {name}: {self.requests} requests, 2xx {self.statuses['2xx']}, "
            f"4xx {self.statuses['4xx']}, 5xx {self.statuses['5xx']}; {self.valid_sent} valid deliveries, "
            f"{self.queued} messages queued"
        )


def _drain(deployment: Deployment, concern: str) -> Iterator[dict[str, Any]]:
    sqs, url = deployment.sqs, deployment.queue_url(concern)
    while True:
        batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"]).get("Messages", [])
        if not batch:
            return
        yield from batch
        sqs.delete_message_batch(
            QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)]
        )


@pytest.fixture
def ledger(
    deployment: Deployment,
    capsys: pytest.CaptureFixture[str],
    request: pytest.FixtureRequest,
) -> Iterator[Ledger]:
    ledger = Ledger(deployment)
    yield ledger
    ledger.settle()
    with capsys.disabled():
        print(ledger.report(request.node.name))


def valid_pos(ledger: Ledger) -> None:
    product_id = f"fuzz-valid-{next(_serial)}"
    payload = {**INVENTORY_PAYLOAD, "product_id": product_id, "count": 3, "version": 7}
    ledger.send_valid(pos_event(payload, "inventory.update"), product_id, "stock")


def valid_ecom(ledger: Ledger) -> None:
    order_id = 9_000_000 + next(_serial)
    body = {"order": {**ORDER_BODY["order"], "id": order_id}}
    ledger.send_valid(ecom_event(body), str(order_id), "orders")


# -- the fixed corpus: every case that has broken intake, and its neighbours ------------------------------------------

DEEP_OBJECT = '{"a":' * 12_000 + "1" + "}" * 12_000  # past the parser's C recursion limit on 3.13 (1000 on 3.11)
DEEP_BUT_PARSED = "[" * 9000 + "]" * 9000  # within it: parsed, then refused without recursing into it
DEEP_ARRAY = "[" * 60_000  # the parser gives up long before it would notice the missing "]"
HUGE_INT = "1" * 5000
PRODUCT = '{"id":"p-1","handle":"tee"'


def _pos_payload_text(**fields: str) -> str:
    """A POS product payload as JSON text with raw (unparsed) values, e.g. version=HUGE_INT."""
    return PRODUCT + "".join(f',"{name}":{value}' for name, value in fields.items()) + "}"


HOSTILE: list[tuple[str, Callable[[], dict[str, Any]], int]] = [
    # JSON the parser chokes on
    ("pos-deep-object", lambda: pos_event(DEEP_OBJECT), 400),
    ("pos-deep-array", lambda: _event("pos", ("payload=" + quote(DEEP_ARRAY)).encode()), 400),
    ("ecom-deep-array", lambda: ecom_event('{"order":' + DEEP_ARRAY * 3), 400),
    ("pos-deep-version", lambda: pos_event(_pos_payload_text(version=DEEP_BUT_PARSED)), 400),
    ("ecom-deep-id", lambda: ecom_event('{"order":{"id":' + DEEP_BUT_PARSED + "}}"), 400),
    ("pos-huge-int-version", lambda: pos_event(_pos_payload_text(version=HUGE_INT)), 400),
    ("pos-huge-int-elsewhere", lambda: pos_event(_pos_payload_text(supply_price=HUGE_INT)), 400),
    ("pos-nan", lambda: pos_event(_pos_payload_text(version="NaN")), 400),
    ("pos-infinity", lambda: pos_event(_pos_payload_text(price="-Infinity")), 400),
    ("ecom-deep-object", lambda: ecom_event('{"order":' + DEEP_OBJECT + "}"), 400),
    ("ecom-huge-int-id", lambda: ecom_event('{"order":{"id":' + HUGE_INT + "}}"), 400),
    # versions that are digits only to str.isdigit, or out of range
    *[
        (f"pos-version-{label}", (lambda v=value: pos_event(_pos_payload_text(version=json.dumps(v)))), 400)
        for label, value in [
            ("superscript-two", "²"),
            ("circled-one", "①"),
            ("arabic-indic-three", "٣"),
            ("fullwidth-seven", "\uff17"),
            ("negative", -1),
            ("negative-text", "-1"),
            ("fraction", 1.5),
            ("over-64-bits", 2**64),
            ("20-digit-text", "1" * 20),
            ("bool", True),
            ("list", [1]),
            ("empty", ""),
        ]
    ],
    # surrogates: escaped in JSON, raw in the API Gateway event, in headers, query and path
    ("pos-surrogate-escape-in-id", lambda: pos_event('{"id":"\\udcff","handle":"tee"}'), 400),
    ("pos-surrogate-escape-in-parent", lambda: pos_event('{"id":"v","handle":"t","variant_parent_id":"\\ud800"}'), 400),
    ("pos-surrogate-escape-in-type", lambda: _event("pos", b"type=%ED%B3%BF&payload=%7B%7D"), 400),
    ("ecom-surrogate-escape-in-envelope", lambda: ecom_event('{"\\udcff":{"id":1}}'), 400),
    ("pos-raw-surrogate-in-event-body", lambda: _event("pos", "payload=\udcff"), 400),
    ("ecom-raw-surrogate-in-event-body", lambda: _event("ecom", '{"order":{"id":1,"x":"\udcff"}}'), 400),
    ("pos-surrogate-in-token", lambda: pos_event('{"id":"p","handle":"t"}', query={"token": "\udcff"}), 400),
    (
        "ecom-surrogate-in-header",
        lambda: ecom_event(
            b'{"order":{"id":1}}', headers={"content-type": "application/json", "x-signature": "\ud800"}
        ),
        400,
    ),
    ("pos-surrogate-in-connection-id", lambda: pos_event('{"id":"p"}', connection_id="demo\udcff"), 404),
    # entity ids no vendor hands out
    ("pos-id-with-control-character", lambda: pos_event({"id": "p\x07", "handle": "t"}), 400),
    ("pos-id-with-nul", lambda: pos_event({"id": "p\x00", "handle": "t"}), 400),
    ("pos-id-with-c1-control", lambda: pos_event({"id": "p\x85", "handle": "t"}), 400),
    ("pos-id-with-noncharacter", lambda: pos_event({"id": "p\uffff", "handle": "t"}), 400),
    ("pos-id-257-characters", lambda: pos_event({"id": "p" * 257, "handle": "t"}), 400),
    ("pos-id-not-a-string", lambda: pos_event({"id": 12, "handle": "t"}), 400),
    ("pos-id-empty", lambda: pos_event({"id": "", "handle": "t"}), 400),
    ("pos-outlet-id-control", lambda: pos_event({**INVENTORY_PAYLOAD, "outlet_id": "o\x1b"}, "inventory.update"), 400),
    ("pos-outlet-id-number", lambda: pos_event({**INVENTORY_PAYLOAD, "outlet_id": 5}, "inventory.update"), 400),
    *[
        (f"ecom-id-{label}", (lambda v=value: ecom_event({"order": {"id": v}})), 400)
        for label, value in [("zero", 0), ("negative", -5), ("over-63-bits", 2**63), ("text", "5"), ("bool", True)]
    ],
    ("ecom-id-float", lambda: ecom_event('{"order":{"id":5.0}}'), 400),
    # bodies that are not what the route takes
    ("pos-invalid-utf8", lambda: _event("pos", b"payload=\xff\xfe"), 400),
    ("pos-percent-encoded-invalid-utf8", lambda: _event("pos", b"payload=%FF%FE"), 400),
    ("pos-not-a-form", lambda: _event("pos", b"a=1&&&b"), 400),
    ("pos-empty-body", lambda: _event("pos", b""), 400),
    ("pos-payload-array", lambda: pos_event("[1,2]"), 400),
    ("pos-oversized", lambda: _event("pos", b"payload=" + b"x" * MAX_BODY_BYTES), 400),
    ("ecom-oversized", lambda: ecom_event(b'{"order":{"id":1,"x":"' + b"x" * MAX_BODY_BYTES + b'"}}'), 400),
    ("ecom-envelope-key-200kb", lambda: ecom_event({"k" * 200_000: {"id": 1}}), 400),
    ("ecom-not-json", lambda: ecom_event(b'{"order": '), 400),
    ("ecom-invalid-utf8", lambda: ecom_event(b'{"order":{"id":1,"x":"\xff"}}'), 400),
    ("ecom-bad-base64", lambda: {**ecom_event(b"{}"), "body": "%%%", "isBase64Encoded": True}, 400),
    ("pos-content-type-huge", lambda: pos_event({"id": "p"}, headers={"content-type": "x" * 100_000}), 400),
    # credentials that are wrong, odd or absent
    ("pos-wrong-token", lambda: pos_event({"id": "p", "handle": "t"}, query={"token": "wrong"}), 401),
    ("pos-non-ascii-token", lambda: pos_event({"id": "p", "handle": "t"}, query={"token": "tökén"}), 401),
    ("pos-no-query", lambda: pos_event({"id": "p", "handle": "t"}, query=None), 401),
    (
        "ecom-non-ascii-signature",
        lambda: ecom_event(
            b'{"order":{"id":1}}', headers={"content-type": "application/json", "x-signature": "é" * 32}
        ),
        401,
    ),
    ("ecom-no-signature", lambda: ecom_event(b'{"order":{"id":1}}', headers={"content-type": "application/json"}), 401),
    # paths that name no connection
    ("pos-connection-id-2000-characters", lambda: pos_event({"id": "p"}, connection_id="c" * 2000), 404),
    ("pos-connection-id-uppercase", lambda: pos_event({"id": "p"}, connection_id="DEMO"), 404),
    ("ecom-unknown-connection", lambda: ecom_event({"order": {"id": 1}}, connection_id="nobody"), 404),
]

# Odd but valid: each must be queued (a 4xx would make the vendor retry it for days, then give up).
ODD_BUT_VALID: list[tuple[str, Callable[[], dict[str, Any]], str, str]] = [
    # a kept field SQS could not carry is left out of the message (the worker reads the sale itself)
    (
        "pos-sale-field-sqs-refuses",
        lambda: pos_event({"id": "s", "source_id": "\uffff"}, "sale.update"),
        "s",
        "statuses",
    ),
    ("pos-id-with-spaces", lambda: pos_event({"id": "odd id 1", "handle": "t"}), "odd id 1", "products"),
    ("pos-id-non-ascii", lambda: pos_event({"id": "café☕", "handle": "t"}), "café☕", "products"),
    ("pos-id-256-characters", lambda: pos_event({"id": "é" * 256, "handle": "t"}), "é" * 256, "products"),
    (
        "pos-id-astral",
        lambda: pos_event({"id": "\U0001d52d\U0001d52f", "handle": "t"}),
        "\U0001d52d\U0001d52f",
        "products",
    ),
    ("pos-version-text-digits", lambda: pos_event(_pos_payload_text(version='"42"')), "p-1", "products"),
    ("pos-version-null", lambda: pos_event({"id": "vnull", "handle": "t", "version": None}), "vnull", "products"),
    (
        "pos-surrogate-in-a-field-not-kept",
        lambda: pos_event('{"id":"surr-name","handle":"t","name":"\\udcff"}'),
        "surr-name",
        "products",
    ),
    (
        "pos-implausible-updated-at",
        lambda: pos_event({"id": "stamp", "handle": "t", "updated_at": "²⁰²⁶-01-01" * 50}),
        "stamp",
        "products",
    ),
    (
        "pos-deep-field-not-kept",
        lambda: pos_event('{"id":"deepish","handle":"t","x":' + "[" * 500 + "]" * 500 + "}"),
        "deepish",
        "products",
    ),
    (
        "pos-sale-huge-description",
        lambda: pos_event({"id": "big-sale", "invoice_number": "7", "note": "n" * 200_000}, "sale.update"),
        "big-sale",
        "statuses",
    ),
    (
        "ecom-order-nearly-256kb",
        lambda: ecom_event({"order": {**ORDER_BODY["order"], "id": 7_700_001, "comment": "c" * 250_000}}),
        "7700001",
        "orders",
    ),
    (
        "ecom-order-surrogate-in-a-field-not-kept",
        lambda: ecom_event('{"order":{"id":7700002,"firstname":"\\udcff","updatedAt":"\\ud800"}}'),
        "7700002",
        "orders",
    ),
    (
        "ecom-order-number-too-long-to-keep",
        lambda: ecom_event({"order": {"id": 7_700_003, "number": "N" * 500}}),
        "7700003",
        "orders",
    ),
    ("ecom-largest-id", lambda: ecom_event({"variant": {"id": 2**63 - 1, "stockLevel": 3}}), str(2**63 - 1), "stock"),
]


def test_every_hostile_delivery_in_the_corpus_is_refused_with_a_4xx_and_a_reason(ledger: Ledger) -> None:
    for name, make, expected in HOSTILE:
        valid_pos(ledger)
        status, body = ledger.send(make())
        assert status == expected, (name, status, body)
        valid_ecom(ledger)
        ledger.settle()


def test_every_odd_but_valid_delivery_in_the_corpus_is_queued_small(ledger: Ledger) -> None:
    for name, make, entity_id, concern in ODD_BUT_VALID:
        status, body = ledger.send(make())
        assert status == 202, (name, status, body)
        ledger.must_queue[entity_id] = concern
        ledger.valid_sent += 1
        ledger.settle()


# -- generated deliveries --------------------------------------------------------------------------------------------

# Any character, surrogates and noncharacters included.
ANY_TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=40)
JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | ANY_TEXT
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(ANY_TEXT, inner, max_size=4),
    max_leaves=12,
)
ID_LIKE = ANY_TEXT | st.integers() | st.none() | st.text(min_size=200, max_size=300)
# Values that have broken intake before, as parsed values and as raw JSON text the generator splices in.
NASTY_VALUES = st.sampled_from(
    ["²", "①", "\u0663", "\udcff", "\ud800x", "\uffff", "a\x00b", "\x85", "p" * 257, "", 2**64, -1, 1e308, True]
)
NASTY_JSON = st.sampled_from(['{"a":' * 1200 + "1" + "}" * 1200, "[" * 3000, HUGE_INT, "-" + HUGE_INT, "NaN", "1e999"])
SPLICE = "__splice__"
POS_TYPES = st.sampled_from([*("product.update", "inventory.update", "sale.update", "customer.update"), None, "x"])


@st.composite
def pos_bodies(draw: st.DrawFn) -> bytes:
    """Form bodies around a payload: shaped like the vendor's with fields swapped for anything, or anything."""
    kind = draw(st.sampled_from(["mutated", "arbitrary-json", "raw-text", "bytes"]))
    if kind == "bytes":
        return draw(st.binary(max_size=300))
    if kind == "raw-text":
        return ("payload=" + quote(draw(ANY_TEXT), safe="", errors="surrogatepass")).encode()
    if kind == "arbitrary-json":
        payload_text = json.dumps(draw(JSON_VALUES))
    else:
        payload = {**INVENTORY_PAYLOAD, "id": "p-1", "handle": "tee", "variant_parent_id": ""}
        for name in draw(st.lists(st.sampled_from([*payload, "version", "updated_at", "source_id"]), max_size=4)):
            payload[name] = draw(ID_LIKE | JSON_VALUES | NASTY_VALUES | st.just(SPLICE))
        # ensure_ascii: a surrogate travels as a \\udcff escape; a splice puts raw JSON text in a value's place
        payload_text = json.dumps(payload).replace(f'"{SPLICE}"', draw(NASTY_JSON), 1)
    fields = {"payload": payload_text}
    webhook_type = draw(POS_TYPES)
    if webhook_type:
        fields["type"] = webhook_type
    return urlencode(fields).encode()


@st.composite
def ecom_bodies(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["mutated", "arbitrary-json", "bytes"]))
    if kind == "bytes":
        return draw(st.binary(max_size=300))
    if kind == "arbitrary-json":
        return json.dumps(draw(JSON_VALUES)).encode()
    envelope = draw(st.sampled_from(["order", "variant", "shipment", "product", "tax"]) | ANY_TEXT)
    resource: dict[str, Any] = {"id": 1234, "number": "ORD-1", "updatedAt": "2026-07-01T10:00:00+02:00"}
    for name in draw(st.lists(st.sampled_from(["id", "number", "updatedAt", "stockLevel", "order", "x"]), max_size=3)):
        resource[name] = draw(ID_LIKE | JSON_VALUES | NASTY_VALUES | st.just(SPLICE))
    return json.dumps({envelope: resource}).replace(f'"{SPLICE}"', draw(NASTY_JSON), 1).encode()


@FUZZ_SETTINGS
@given(body=pos_bodies(), right_token=st.booleans())
def test_generated_pos_deliveries_never_get_a_5xx_nor_queue_an_invalid_message(
    ledger: Ledger, body: bytes, right_token: bool
) -> None:
    if ledger.requests % VALID_EVERY == 0:
        valid_pos(ledger)
    status, _ = ledger.send(_event("pos", body, query={"token": POS_TOKEN if right_token else "x" + POS_TOKEN}))
    assert right_token or status == 401
    ledger.settle_now_and_then()


@FUZZ_SETTINGS
@given(body=ecom_bodies(), right_signature=st.booleans())
def test_generated_ecom_deliveries_never_get_a_5xx_nor_queue_an_invalid_message(
    ledger: Ledger, body: bytes, right_signature: bool
) -> None:
    if ledger.requests % VALID_EVERY == 0:
        valid_ecom(ledger)
    secret = ECOM_SECRET if right_signature else "another-app-secret"
    headers = {"content-type": "application/json", "x-signature": ecom_signature(body, secret)}
    status, _ = ledger.send(_event("ecom", body, headers=headers))
    assert right_signature or status == 401
    ledger.settle_now_and_then()


# -- the emulator refuses what SQS refuses (so the assertions above mean what they would on AWS) ---------------------

OK_BODY = '{"ok": true}'
SQS_REFUSALS = [
    pytest.param({"MessageGroupId": "demo:pos:product:has space"}, "InvalidParameterValue", id="group-id-space"),
    pytest.param({"MessageGroupId": "demo:pos:product:café"}, "InvalidParameterValue", id="group-id-non-ascii"),
    pytest.param({"MessageGroupId": "g" * 129}, "InvalidParameterValue", id="group-id-129"),
    pytest.param({"MessageDeduplicationId": "d\x07"}, "InvalidParameterValue", id="dedup-id-control"),
    pytest.param({"MessageBody": "bell \x07"}, "InvalidMessageContents", id="body-control-character"),
    pytest.param({"MessageBody": "x\uffff"}, "InvalidMessageContents", id="body-noncharacter"),
    pytest.param({"MessageBody": "é" * 131_073}, "InvalidParameterValue", id="body-262146-bytes-in-131073-chars"),
    pytest.param({"Id": "entrée"}, "InvalidBatchEntryId", id="entry-id-non-ascii"),
]


@pytest.mark.parametrize(("entry", "code"), SQS_REFUSALS)
def test_the_emulated_sqs_refuses_a_send_real_sqs_refuses(
    deployment: Deployment, entry: dict[str, str], code: str
) -> None:
    message = {"MessageBody": OK_BODY, "MessageGroupId": "g", "MessageDeduplicationId": "d", **entry}
    url = deployment.queue_url("stock")

    with pytest.raises(ClientError) as refused:
        if "Id" in message:
            deployment.sqs.send_message_batch(QueueUrl=url, Entries=[message])
        else:
            deployment.sqs.send_message(QueueUrl=url, **message)

    # SQS's JSON protocol reports the query-compatible code (`AWS.SimpleQueueService.<code>` for some of them).
    assert refused.value.response["Error"]["Code"].removeprefix("AWS.SimpleQueueService.") == code
    assert list(_drain(deployment, "stock")) == []


def test_the_emulated_sqs_takes_what_real_sqs_takes_up_to_each_limit(deployment: Deployment) -> None:
    url = deployment.queue_url("stock")
    printable = "".join(chr(c) for c in range(0x21, 0x7F))  # every character a group id may hold: 94 of them
    deployment.sqs.send_message(
        QueueUrl=url,
        MessageBody="a" * MAX_MESSAGE_BYTES,
        MessageGroupId=(printable * 2)[:128],
        MessageDeduplicationId="1",
    )
    deployment.sqs.send_message(
        QueueUrl=url, MessageBody="\t\n\r \U0001d52d\ue000", MessageGroupId="g", MessageDeduplicationId="2"
    )

    assert len(list(_drain(deployment, "stock"))) == 2


def test_the_emulated_sqs_refuses_a_batch_over_256_kib_in_total(deployment: Deployment) -> None:
    entries = [
        {"Id": str(i), "MessageBody": "b" * 140_000, "MessageGroupId": "g", "MessageDeduplicationId": str(i)}
        for i in range(2)
    ]

    with pytest.raises(ClientError) as refused:
        deployment.sqs.send_message_batch(QueueUrl=deployment.queue_url("stock"), Entries=entries)

    assert refused.value.response["Error"]["Code"].endswith("BatchRequestTooLong")


def test_the_local_stacks_moto_server_refuses_what_sqs_refuses_too() -> None:
    server = LocalMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        sqs = boto3.client("sqs", region_name="us-east-1", endpoint_url=f"http://{host}:{port}")
        url = sqs.create_queue(QueueName="limits.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
        with pytest.raises(ClientError) as refused:
            sqs.send_message(QueueUrl=url, MessageBody=OK_BODY, MessageGroupId="a b", MessageDeduplicationId="1")
        sqs.send_message(QueueUrl=url, MessageBody=OK_BODY, MessageGroupId="a-b", MessageDeduplicationId="2")
    finally:
        server.stop()

    assert refused.value.response["Error"]["Code"] == "InvalidParameterValue"
    assert "MessageGroupId can only include alphanumeric and punctuation" in refused.value.response["Error"]["Message"]
