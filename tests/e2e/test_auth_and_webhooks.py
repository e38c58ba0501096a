"""X-Series OAuth and signed webhooks through the whole local stack (webhook/poll -> queue -> worker -> simulator).

The demo connection starts on a personal token; these tests switch it to an OAuth app the way an operator would
(the app's first grant and client secret in the connection's secret, webhooks re-created by the app, so the
simulator signs them), then let the access token expire while several workers need the POS at once.
"""

from __future__ import annotations

import hashlib
import hmac
import http.server
import itertools
import json
import os
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from pos_ecom_sync import runtime
from pos_ecom_sync.models.connection import ConnectionSecrets
from pos_ecom_sync.profiles.xseries.client import XSeriesClient
from pos_ecom_sync.ratelimit import InMemoryRateBudget
from pos_ecom_sync.secrets import write_connection_secrets

from local_stack.demo import DEMO_SECRETS
from local_stack.lambda_events import scheduled_event
from tests.e2e.conftest import LiveStack

CLIENT_ID, CLIENT_SECRET = "demo-oauth-app", "demo-oauth-app-client-secret"
SYNCED_WEBHOOKS = ("product.update", "inventory.update", "sale.update")


def _pos_webhook_url(live: LiveStack) -> str:
    return f"{live.api_url}/connections/{live.connection_id}/webhooks/pos?token={DEMO_SECRETS['pos_webhook_token']}"


def _ecom_variant(live: LiveStack, sku: str) -> dict[str, Any] | None:
    return next((v for v in live.ecom.variants() if v.get("sku") == sku), None)


def _pos_total(live: LiveStack, product_id: str) -> int:
    return sum(max(0, live.pos.level(product_id, o["id"])) for o in live.pos.outlets())


def _stock_in_step(live: LiveStack, variants: list[dict[str, Any]]) -> bool:
    for variant in variants:
        ecom = _ecom_variant(live, variant["sku"])
        if ecom is None or ecom.get("stockLevel") != _pos_total(live, variant["id"]):
            return False
    return True


def _sellable(live: LiveStack) -> list[dict[str, Any]]:
    return [p for p in live.pos.products() if p["variant_parent_id"]]


@pytest.fixture(scope="module")
def oauth_demo(live_stack: LiveStack) -> Iterator[LiveStack]:
    """The catalog imported on the personal token, then the connection switched to an OAuth app."""
    live = live_stack
    live.poll()
    live.wait_until(lambda: _stock_in_step(live, _sellable(live)), timeout=60, what="the initial catalog import")

    live.pos.oauth.register(CLIENT_ID, CLIENT_SECRET)
    grant = live.pos.oauth.authorize(CLIENT_ID)
    secrets = {
        **DEMO_SECRETS,
        "pos_access_token": grant["access_token"],
        "pos_client_id": CLIENT_ID,
        "pos_client_secret": CLIENT_SECRET,
        "pos_refresh_token": grant["refresh_token"],
        "pos_webhook_signing_secret": CLIENT_SECRET,  # the app's deliveries are signed with its client secret
    }
    write_connection_secrets(
        live.session.client("secretsmanager"),
        os.environ["SECRET_PREFIX"],
        live.connection_id,
        ConnectionSecrets.model_validate(secrets),
    )
    runtime.reset()  # warm sandboxes would keep the old secret for SECRETS_MAX_AGE_SECONDS
    # The app re-creates the webhooks: deliveries of an OAuth app's webhooks are signed.
    personal = {"Authorization": f"Bearer {DEMO_SECRETS['pos_access_token']}"}
    for hook in httpx.get(f"{live.pos.url}/api/2.0/webhooks", headers=personal).json()["data"]:
        assert httpx.delete(f"{live.pos.url}/api/2.0/webhooks/{hook['id']}", headers=personal).status_code == 200
    app = XSeriesClient(live.pos.url, grant["access_token"], InMemoryRateBudget())
    for webhook_type in SYNCED_WEBHOOKS:
        app.create_webhook(_pos_webhook_url(live), webhook_type)
    app.close()
    yield live


def test_token_expiry_under_concurrent_workers_costs_one_refresh_and_every_change_syncs(oauth_demo: LiveStack) -> None:
    live = oauth_demo
    grants_before = live.pos.oauth.refresh_grants
    live.pos.oauth.expire_access_tokens()  # a week passes: every worker's token is refused from now on
    variants = _sellable(live)[:4]
    outlet = live.pos.outlets()[0]["id"]
    parent = variants[0]["variant_parent_id"]

    # Signed webhooks wake the stock and product workers while the poller reads the POS feeds: all at once.
    for n, variant in enumerate(variants):
        live.pos.set_inventory(variant["id"], outlet, 11 + n)
    live.pos.update_family(parent, name="Harbour Tee (renamed)")
    poller = threading.Thread(target=live.poll)
    poller.start()
    second = live.sandbox("ChangePollerFunction")  # a second concurrent invocation, in its own sandbox
    sandbox = threading.Thread(target=second.invoke, args=(scheduled_event("ChangePollerFunction-schedule"),))
    sandbox.start()
    poller.join(timeout=60)
    sandbox.join(timeout=60)

    live.wait_until(lambda: _stock_in_step(live, variants), timeout=60, what="every stock change in eCom")
    live.wait_until(
        lambda: any(p.get("title") == "Harbour Tee (renamed)" for p in live.ecom.products()),
        timeout=60,
        what="the renamed family in eCom",
    )
    assert live.pos.oauth.refresh_grants - grants_before == 1
    assert live.pos.oauth.refused_grants == 0
    signed = [r for r in live.pos.deliveries.log if r.url.startswith(live.api_url)][-5:]
    assert signed and all(r.status in (200, 202) for r in signed)  # the API accepted the signed deliveries


def _delivery_marked(live: LiveStack, body: bytes) -> bool:
    """The intake marks a delivery after queueing it (never before): no mark, never queued."""
    key = hashlib.sha256(b"pos|" + body).hexdigest()
    item = live.session.client("dynamodb").get_item(
        TableName=os.environ["TABLE_NAME"],
        Key={"pk": {"S": f"DELIVERY#{live.connection_id}"}, "sk": {"S": f"DELIVERY#{key}"}},
        ConsistentRead=True,
    )
    return "Item" in item


def test_a_signed_webhook_is_accepted_and_a_forged_one_is_refused_and_never_queued(oauth_demo: LiveStack) -> None:
    live = oauth_demo
    variant = _sellable(live)[-1]
    outlet = live.pos.outlets()[-1]["id"]
    payload = {"id": "inv-e2e", "product_id": variant["id"], "outlet_id": outlet, "count": 3}
    body = urlencode({"payload": json.dumps(payload)}).encode()  # only `payload`: the guaranteed field
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    forged = hmac.new(b"not-the-client-secret", body, hashlib.sha256).hexdigest()

    refused = httpx.post(
        _pos_webhook_url(live),
        content=body,
        headers={**headers, "X-Signature": f"signature={forged},algorithm=HMAC-SHA256"},
    )

    assert refused.status_code == 401 and "X-Signature" in refused.json()["error"]
    assert not _delivery_marked(live, body)

    genuine = hmac.new(CLIENT_SECRET.encode(), body, hashlib.sha256).hexdigest()
    accepted = httpx.post(
        _pos_webhook_url(live),
        content=body,
        headers={**headers, "X-Signature": f"signature={genuine},algorithm=HMAC-SHA256"},
    )
    assert accepted.status_code == 202 and accepted.json()["concern"] == "stock"
    assert _delivery_marked(live, body)
    live.pos.set_inventory(variant["id"], outlet, 9)  # the real change: the signed delivery syncs it
    live.wait_until(lambda: _stock_in_step(live, [variant]), timeout=60, what="the signed change in eCom")


class _Receiver:
    """A webhook endpoint that fails the first `failures` deliveries (503), then acknowledges."""

    def __init__(self, failures: int) -> None:
        self.failures, self.received = failures, 0
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.received += 1
                self.send_response(503 if receiver.received <= receiver.failures else 204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"


@pytest.mark.parametrize(("failures", "attempts"), [(5, 6), (100, 21)], ids=["recovers", "gives-up"])
def test_a_failed_delivery_is_retried_with_exponential_back_off_up_to_20_times_over_48_hours(
    oauth_demo: LiveStack, failures: int, attempts: int
) -> None:
    live = oauth_demo
    receiver = _Receiver(failures)
    dispatcher = live.pos.deliveries
    dispatcher_scale = 48 * 3600 / 4  # the vendor's 48 hours in 4 seconds
    dispatcher.time_scale = dispatcher_scale
    personal = {"Authorization": f"Bearer {DEMO_SECRETS['pos_access_token']}"}
    hook = httpx.post(
        f"{live.pos.url}/api/2.0/webhooks",
        json={"url": receiver.url, "active": True, "type": "customer.update"},
        headers=personal,
    ).json()["data"]
    try:
        created = httpx.post(
            f"{live.pos.url}/api/2.0/customers",
            json={"first_name": "Retry", "last_name": f"Case{failures}", "email": f"retry{failures}@example.com"},
            headers=personal,
        )
        assert created.status_code in (200, 201)

        record = live.wait_until(
            lambda: next((r for r in dispatcher.log if r.url == receiver.url), None),
            timeout=30,
            what="the delivery to be acknowledged or given up",
        )
    finally:
        dispatcher.time_scale = 1.0
        httpx.delete(f"{live.pos.url}/api/2.0/webhooks/{hook['id']}", headers=personal)
        receiver.server.shutdown()

    assert record.attempts == attempts == receiver.received
    offsets = [at for at, _ in record.history]  # vendor seconds after the first attempt
    gaps = [b - a for a, b in itertools.pairwise(offsets)]
    assert all(later > earlier * 1.3 for earlier, later in itertools.pairwise(gaps))  # exponential back-off
    assert record.waited_s >= offsets[-1] / dispatcher_scale * 0.9  # the dispatcher really waited them out
    if attempts == 21:
        assert record.status == 503 and offsets[-1] == pytest.approx(48 * 3600)  # 20 retries over 48 h, then none
    else:
        assert record.status == 204 and offsets[-1] < 3600  # the early retries come quickly


def test_a_refused_refresh_parks_the_change_with_the_vendors_reason(oauth_demo: LiveStack) -> None:
    """Last: it leaves the connection needing re-authorization."""
    live = oauth_demo
    live.pos.oauth.revoke_refresh_tokens()  # the retailer disconnected the app
    live.pos.oauth.expire_access_tokens()
    variant = _sellable(live)[1]

    live.pos.set_inventory(variant["id"], live.pos.outlets()[0]["id"], 2)

    # Where this process's workers park records (the local stack runs every function with one environment).
    dlq_url = os.environ["DEAD_LETTER_QUEUE_URL"]
    sqs = live.session.client("sqs")

    seen: list[str] = []

    def parked_reason() -> str | None:
        # Each received message is deleted: a FIFO queue holds back the rest of a group while one is in flight.
        for message in sqs.receive_message(
            QueueUrl=dlq_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], WaitTimeSeconds=1
        ).get("Messages", []):
            sqs.delete_message(QueueUrl=dlq_url, ReceiptHandle=message["ReceiptHandle"])
            error = str(message.get("MessageAttributes", {}).get("error", {}).get("StringValue", ""))
            seen.append(error)
            if "invalid_grant" in error:
                return error
        return None

    reason = live.wait_until(parked_reason, timeout=60, what=f"the stock change parked with invalid_grant; {seen}")
    assert "re-authorize" in reason and CLIENT_SECRET not in reason
