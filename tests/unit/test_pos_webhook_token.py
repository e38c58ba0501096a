"""`pos_webhook_token` is needed by a POS that sends webhooks (X-Series) and by no other (R-Series: every change is
polled); a POS delivery to a connection without one is refused with a 4xx that says why."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pos_ecom_sync.api import status_for
from pos_ecom_sync.errors import Unauthorized
from pos_ecom_sync.intake.webhooks import IncomingWebhook, WebhookIntake
from pos_ecom_sync.models.connection import Connection, ConnectionSecrets, WebhookSecrets
from pos_ecom_sync.profiles import profile_for, profile_named

from tests.support import DEMO_SECRETS, ecom_signature

WITHOUT_TOKEN = {k: v for k, v in DEMO_SECRETS.items() if k != "pos_webhook_token"}


def _sends_webhooks(profile: str) -> bool:
    return profile_named(profile).webhook_parser() is not None


def test_an_r_series_connection_needs_no_pos_webhook_token() -> None:
    secrets = ConnectionSecrets.model_validate(WITHOUT_TOKEN)

    secrets.require_pos_webhook_token(_sends_webhooks("r-series"))

    assert secrets.webhook_part().pos_webhook_token is None
    assert "pos_webhook_token" not in secrets.webhook_part().to_json_dict()


def test_an_x_series_connection_still_needs_its_pos_webhook_token() -> None:
    with pytest.raises(ValueError, match="pos_webhook_token is required"):
        ConnectionSecrets.model_validate(WITHOUT_TOKEN).require_pos_webhook_token(_sends_webhooks("x-series"))
    ConnectionSecrets.model_validate(DEMO_SECRETS).require_pos_webhook_token(_sends_webhooks("x-series"))


class _Store:
    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    def get_connection(self, connection_id: str) -> Connection | None:
        return self.connection if connection_id == self.connection.connection_id else None

    def delivery_seen(self, connection_id: str, delivery_key: str) -> bool:
        return False

    def remember_delivery(self, connection_id: str, delivery_key: str, ttl_seconds: int) -> None:
        pass


class _Secrets:
    def __init__(self, secrets: WebhookSecrets) -> None:
        self.secrets = secrets

    def get(self, connection_id: str) -> WebhookSecrets:
        return self.secrets

    def reread(self, connection_id: str, source: str) -> WebhookSecrets | None:
        return self.secrets


class _Publisher:
    def __init__(self) -> None:
        self.sent: list[Any] = []

    def publish(self, outgoing: list[Any]) -> int:
        self.sent.extend(outgoing)
        return len(outgoing)


def _intake(profile: str) -> tuple[WebhookIntake, _Publisher]:
    connection = Connection.model_validate(
        {"connection_id": "shop", "pos_profile": profile, "pos_base_url": "http://pos", "ecom_base_url": "http://ecom"}
    )
    publisher = _Publisher()
    secrets = _Secrets(ConnectionSecrets.model_validate(WITHOUT_TOKEN).webhook_part())
    intake = WebhookIntake(
        _Store(connection),
        secrets,
        publisher,
        dedup_ttl_seconds=60,
        pos_webhooks=lambda c: profile_for(c).webhook_parser(),
    )
    return intake, publisher


@pytest.mark.parametrize("profile", ["x-series", "r-series"])
@pytest.mark.parametrize("token", [None, "any-token-at-all-0001"])
def test_a_pos_webhook_to_a_connection_without_a_token_is_refused_401_saying_why(
    profile: str, token: str | None
) -> None:
    intake, publisher = _intake(profile)
    webhook = IncomingWebhook(
        source="pos",
        connection_id="shop",
        body=b"type=product.update&payload=%7B%7D",
        headers={"content-type": "application/x-www-form-urlencoded"},
        query={"token": token} if token else {},
    )

    with pytest.raises(Unauthorized, match="no pos_webhook_token") as refused:
        intake.accept(webhook, now=datetime(2026, 12, 5, tzinfo=UTC))

    assert status_for(refused.value) == 401 and publisher.sent == []


def test_the_ecom_webhooks_of_a_connection_without_a_pos_token_are_still_accepted() -> None:
    intake, publisher = _intake("r-series")
    body = b'{"order": {"id": 5501001, "updatedAt": "2026-12-05T10:00:00+00:00"}}'
    webhook = IncomingWebhook(
        source="ecom",
        connection_id="shop",
        body=body,
        headers={
            "content-type": "application/json",
            "x-signature": ecom_signature(body, DEMO_SECRETS["ecom_webhook_secret"]),
        },
        query={},
    )

    assert intake.accept(webhook, now=datetime(2026, 12, 5, tzinfo=UTC)).outcome == "queued"
    assert publisher.sent
