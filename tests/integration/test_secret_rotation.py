"""Rotations without downtime, in-process against moto: the webhook function and the workers keep working while a
connection's credentials change under their warm caches.

Webhook side: during the overlap window the new and the previous credential both verify; a credential the cached
secret does not know makes one fresh read (at most one per connection per interval) before a 401. Worker side: a
vendor 401 on the cached API credential re-reads the secret and retries once; a 401 on the fresh one is parked.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pos_ecom_sync import runtime
from pos_ecom_sync.models.connection import ApiSecrets, WebhookCredential, WebhookSecrets
from pos_ecom_sync.secrets import read_secret_part, write_secret_part
from pydantic import SecretStr

from functions.webhook_ingest import app
from tests.integration.conftest import Deployment
from tests.integration.test_stock_sync import StockRig, _make_rig
from tests.support import (
    DEMO_SECRETS,
    INVENTORY_PAYLOAD,
    ORDER_BODY,
    LambdaContext,
    drain_queue,
    ecom_webhook_event,
    pos_form,
    pos_webhook_event,
)

OLD_TOKEN, NEW_TOKEN = DEMO_SECRETS["pos_webhook_token"], "rotated-pos-webhook-token-0002"
OLD_ECOM, NEW_ECOM = DEMO_SECRETS["ecom_webhook_secret"], "rotated-ecom-app-secret-0002"
_counts = iter(range(1, 1_000_000))


def invoke(event: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    response = app.lambda_handler(event, LambdaContext(function_name="webhook_ingest"))
    return response["statusCode"], json.loads(response["body"])


def pos_delivery(token: str) -> int:
    """A new inventory change (a new body each time: a repeated body is a duplicate, answered 200)."""
    body = pos_form("inventory.update", {**INVENTORY_PAYLOAD, "count": next(_counts)})
    return invoke(pos_webhook_event("demo", body, token=token))[0]


def ecom_delivery(secret: str) -> int:
    body = json.dumps({"order": {**ORDER_BODY["order"], "id": 5_600_000 + next(_counts)}}).encode()
    return invoke(ecom_webhook_event("demo", body, secret=secret))[0]


def rotate_webhook(
    deployment: Deployment,
    credential: WebhookCredential,
    new: str,
    *,
    overlap: timedelta = timedelta(hours=48),
    now: datetime | None = None,
) -> WebhookSecrets:
    """What `connections rotate-webhook-secret` writes."""
    client, prefix = deployment.session.client("secretsmanager"), deployment.env["SECRET_PREFIX"]
    current = read_secret_part(client, prefix, "demo", WebhookSecrets)
    assert current is not None
    rotated = current.rotated(credential, SecretStr(new), now=now or datetime.now(UTC), overlap=overlap)
    write_secret_part(client, prefix, "demo", rotated)
    return rotated


def secret_reads() -> int:
    return runtime.webhook_secrets_reader().reads


# -- webhooks: the overlap window ----------------------------------------------------------------------------------


def test_after_a_pos_token_rotation_both_the_new_and_the_previous_token_are_accepted(deployment: Deployment) -> None:
    assert pos_delivery(OLD_TOKEN) == 202  # the webhook function caches the secret holding the old token

    rotate_webhook(deployment, "pos_webhook_token", NEW_TOKEN)

    assert pos_delivery(NEW_TOKEN) == 202  # before: 401 until the cache expired
    assert pos_delivery(OLD_TOKEN) == 202  # a retry the vendor queued before the switch
    assert pos_delivery("someone-elses-token-0000") == 401
    assert len(drain_queue(deployment.sqs, deployment.queue_url("stock"))) == 3


def test_once_the_window_has_ended_the_previous_token_is_refused(deployment: Deployment) -> None:
    rotate_webhook(deployment, "pos_webhook_token", NEW_TOKEN, now=datetime.now(UTC) - timedelta(hours=49))

    assert pos_delivery(OLD_TOKEN) == 401
    assert pos_delivery(NEW_TOKEN) == 202


def test_a_rotation_without_overlap_refuses_the_old_token_at_once(deployment: Deployment) -> None:
    rotate_webhook(deployment, "pos_webhook_token", NEW_TOKEN, overlap=timedelta(0))  # after a leak

    assert pos_delivery(OLD_TOKEN) == 401
    assert pos_delivery(NEW_TOKEN) == 202


def test_after_an_ecom_secret_rotation_deliveries_signed_with_either_secret_are_accepted(
    deployment: Deployment,
) -> None:
    assert ecom_delivery(OLD_ECOM) == 202

    rotate_webhook(deployment, "ecom_webhook_secret", NEW_ECOM, overlap=timedelta(hours=1))

    assert ecom_delivery(NEW_ECOM) == 202
    assert ecom_delivery(OLD_ECOM) == 202
    assert ecom_delivery("another-shops-app-secret") == 401


def test_a_signing_secret_rotation_accepts_deliveries_signed_with_either_key(deployment: Deployment) -> None:
    from tests.integration.test_webhook_ingest import xseries_signature

    old_key, new_key = "oauth-app-client-secret-0001", "oauth-app-client-secret-0002"
    client, prefix = deployment.session.client("secretsmanager"), deployment.env["SECRET_PREFIX"]
    current = read_secret_part(client, prefix, "demo", WebhookSecrets)
    assert current is not None
    write_secret_part(
        client, prefix, "demo", current.model_copy(update={"pos_webhook_signing_secret": SecretStr(old_key)})
    )
    rotate_webhook(deployment, "pos_webhook_signing_secret", new_key)

    for key, expected in ((old_key, 202), (new_key, 202), ("a-third-client-secret-03", 401)):
        body = pos_form("inventory.update", {**INVENTORY_PAYLOAD, "count": next(_counts)})
        event = pos_webhook_event("demo", body, headers={"X-Signature": xseries_signature(body, key)})
        assert invoke(event)[0] == expected, key


# -- webhooks: the cached secret -----------------------------------------------------------------------------------


def test_a_warm_webhook_function_sees_a_rotation_through_one_fresh_read(deployment: Deployment) -> None:
    assert pos_delivery(OLD_TOKEN) == 202
    reads = secret_reads()

    rotate_webhook(deployment, "pos_webhook_token", NEW_TOKEN)

    assert [pos_delivery(NEW_TOKEN) for _ in range(3)] == [202, 202, 202]
    assert secret_reads() - reads == 1  # the first new-token delivery re-read it; the others use the fresh value


def test_a_flood_of_wrong_tokens_costs_at_most_one_secret_read(deployment: Deployment) -> None:
    assert pos_delivery(OLD_TOKEN) == 202
    reads = secret_reads()

    answers = {pos_delivery(f"guessed-token-{n:012d}") for n in range(40)}

    assert answers == {401}
    assert secret_reads() - reads == 1
    assert pos_delivery(OLD_TOKEN) == 202


def test_wrong_pos_tokens_do_not_hold_back_an_ecom_rotation(deployment: Deployment) -> None:
    assert pos_delivery(OLD_TOKEN) == 202 and ecom_delivery(OLD_ECOM) == 202
    assert pos_delivery("guessed-token-000000000001") == 401  # the POS side's re-read for this interval

    rotate_webhook(deployment, "ecom_webhook_secret", NEW_ECOM)

    assert ecom_delivery(NEW_ECOM) == 202


# -- workers: a vendor 401 on the cached API credential -----------------------------------------------------------


@pytest.fixture
def synced(deployment: Deployment) -> Iterator[StockRig]:
    """Stock syncing for connection `shop`, its workers holding the API secret in their cache."""
    for rig in _make_rig(deployment):
        rig.pos.seed_catalog(1, 2, seed=3)
        rig.sync_catalog()
        yield rig


def rotate_api(rig: StockRig, **fields: str) -> None:
    """What `connections rotate-api-secret` writes: the given API fields, the others as they were."""
    client, prefix = rig.deployment.session.client("secretsmanager"), rig.deployment.env["SECRET_PREFIX"]
    current = read_secret_part(client, prefix, "shop", ApiSecrets)
    assert current is not None
    write_secret_part(client, prefix, "shop", ApiSecrets.model_validate({**current.to_json_dict(), **fields}))


def parked(deployment: Deployment) -> list[str]:
    """Why each record in any dead-letter queue was parked. Every DLQ: in-process the functions share one
    environment, so a worker parks in whichever DEAD_LETTER_QUEUE_URL the merge left (a local-stack limit)."""
    reasons = []
    for logical_id, url in deployment.resources.queue_urls.items():
        if "DeadLetter" in logical_id:
            messages = deployment.sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], WaitTimeSeconds=0
            ).get("Messages", [])
            reasons += [m.get("MessageAttributes", {}).get("error", {}).get("StringValue", "?") for m in messages]
    return reasons


def _change_stock(rig: StockRig, level: int) -> str:
    variant = rig.variants()[0]["id"]
    rig.pos.set_inventory(variant, rig.outlets[0], level)
    rig.settle()
    return variant


def test_a_pos_token_replaced_under_a_warm_worker_costs_one_refusal_and_one_reread(synced: StockRig) -> None:
    refused, reads = synced.pos.unauthorized, runtime.secrets_reader().reads

    rotate_api(synced, pos_access_token="rotated-pos-access-token-2")
    synced.pos.replace_personal_token("rotated-pos-access-token-2")  # the old token is refused from now on
    variant = _change_stock(synced, 17)

    assert synced.ecom_level(variant) == synced.pos_total(variant)
    assert synced.pos.unauthorized - refused == 1
    assert runtime.secrets_reader().reads - reads == 1
    assert parked(synced.deployment) == []


def test_an_ecom_key_replaced_under_a_warm_worker_costs_one_refusal_and_one_reread(synced: StockRig) -> None:
    refused = synced.ecom.unauthorized

    rotate_api(synced, ecom_api_key="rotated-ecom-api-key-2", ecom_api_secret="rotated-ecom-api-secret-2")
    synced.ecom.replace_api_key("rotated-ecom-api-key-2", "rotated-ecom-api-secret-2", OLD_ECOM)
    variant = _change_stock(synced, 23)

    assert synced.ecom_level(variant) == synced.pos_total(variant)
    assert synced.ecom.unauthorized - refused == 1
    assert parked(synced.deployment) == []


def test_a_credential_refused_after_a_fresh_read_is_parked_with_the_vendors_reason(synced: StockRig) -> None:
    refused = synced.pos.unauthorized

    synced.pos.replace_personal_token("a-token-nobody-stored-0003")  # revoked, and the secret was not updated
    _change_stock(synced, 5)

    assert synced.pos.unauthorized - refused == 2  # the cached token, then the freshly read one: no more
    [reason] = parked(synced.deployment)
    assert "401" in reason and "Access token is not valid" in reason  # the vendor's own reason
