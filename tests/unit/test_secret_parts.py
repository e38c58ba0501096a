"""A connection's secret in two parts (API / webhook), the webhook overlap window, and how verification uses it."""

from __future__ import annotations

import contextlib
import hmac
import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pos_ecom_sync.errors import Unauthorized
from pos_ecom_sync.intake import verify
from pos_ecom_sync.intake.verify import authenticate
from pos_ecom_sync.intake.webhooks import IncomingWebhook
from pos_ecom_sync.models.connection import ApiSecrets, ConnectionSecrets, WebhookSecrets
from pydantic import SecretStr, ValidationError

from tests.support import DEMO_SECRETS, ecom_signature

NOW = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
OLD, NEW = "old-pos-webhook-token-0001", "new-pos-webhook-token-0002"


def _webhook(token: str | None = None, *, source: str = "pos", body: bytes = b"payload=%7B%7D", **headers: str) -> Any:
    return IncomingWebhook(
        source=source,  # type: ignore[arg-type]
        connection_id="demo",
        body=body,
        headers={k.lower().replace("_", "-"): v for k, v in headers.items()},
        query={"token": token} if token else {},
    )


def _current() -> WebhookSecrets:
    """The demo connection's webhook part, its POS token `OLD`."""
    webhook = ConnectionSecrets.model_validate(DEMO_SECRETS).webhook_part().to_json_dict()
    return WebhookSecrets.model_validate({**webhook, "pos_webhook_token": OLD})


def _rotated(overlap: timedelta = timedelta(hours=48)) -> WebhookSecrets:
    return _current().rotated("pos_webhook_token", SecretStr(NEW), now=NOW, overlap=overlap)


def test_the_combined_secret_splits_into_an_api_part_and_a_webhook_part_with_no_field_in_both() -> None:
    combined = ConnectionSecrets.model_validate(DEMO_SECRETS)
    api, webhook = combined.api_part().to_json_dict(), combined.webhook_part().to_json_dict()

    assert {**api, **webhook} == DEMO_SECRETS and not set(api) & set(webhook)
    assert set(webhook) == {"pos_webhook_token", "ecom_webhook_secret"}  # no API credential reaches the webhook side


def test_no_part_prints_a_value() -> None:
    combined = ConnectionSecrets.model_validate(DEMO_SECRETS)
    shown = " ".join(repr(x) for x in (combined, combined.api_part(), _rotated()))
    assert not any(value in shown for value in (*DEMO_SECRETS.values(), OLD, NEW))


def test_a_rotation_keeps_the_old_value_as_previous_until_the_window_ends() -> None:
    rotated = _rotated()

    assert rotated.pos_webhook_token.get_secret_value() == NEW
    assert rotated.previous_pos_webhook_token == SecretStr(OLD)
    assert rotated.previous_valid_until == NOW + timedelta(hours=48)
    assert rotated.accepted("pos_webhook_token", NOW + timedelta(hours=47)) == (SecretStr(NEW), SecretStr(OLD))
    assert rotated.accepted("pos_webhook_token", NOW + timedelta(hours=48)) == (SecretStr(NEW), None)
    # The stored JSON round-trips (the window as an ISO timestamp).
    assert WebhookSecrets.model_validate(rotated.to_json_dict()) == rotated


def test_a_rotation_without_overlap_accepts_the_old_value_no_more() -> None:
    rotated = _rotated(overlap=timedelta(0))
    assert rotated.previous_pos_webhook_token is None and rotated.previous_valid_until is None


def test_rotating_a_second_credential_keeps_an_open_window_and_drops_an_ended_one() -> None:
    first = _rotated()
    later = first.rotated(
        "ecom_webhook_secret",
        SecretStr("new-ecom-app-secret-0002"),
        now=NOW + timedelta(hours=1),
        overlap=timedelta(hours=2),
    )
    assert later.previous_pos_webhook_token == SecretStr(OLD)
    assert later.previous_valid_until == NOW + timedelta(hours=48)  # the later end of the two windows

    after_window = first.rotated(
        "ecom_webhook_secret",
        SecretStr("new-ecom-app-secret-0002"),
        now=NOW + timedelta(hours=49),
        overlap=timedelta(hours=2),
    )
    assert after_window.previous_pos_webhook_token is None
    assert after_window.previous_valid_until == NOW + timedelta(hours=51)


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({"previous_pos_webhook_token": OLD}, id="previous-without-window"),
        pytest.param({"previous_pos_webhook_token": "short", "previous_valid_until": NOW.isoformat()}, id="short"),
        pytest.param({"previous_pos_webhook_token": OLD, "previous_valid_until": "2026-07-01T12:00:00"}, id="naive"),
        pytest.param({"pos_access_token": "x" * 20}, id="api-field-in-webhook-part"),
    ],
)
def test_an_invalid_webhook_part_is_refused(fields: dict[str, str]) -> None:
    with pytest.raises(ValidationError):
        WebhookSecrets.model_validate({"pos_webhook_token": NEW, "ecom_webhook_secret": "e" * 20, **fields})


def test_the_api_part_refuses_webhook_fields_and_needs_one_pos_authorization() -> None:
    api = ConnectionSecrets.model_validate(DEMO_SECRETS).api_part().to_json_dict()
    with pytest.raises(ValidationError):
        ApiSecrets.model_validate({**api, "pos_webhook_token": NEW})
    with pytest.raises(ValidationError, match="personal token"):
        ApiSecrets.model_validate({k: v for k, v in api.items() if k != "pos_access_token"})


@pytest.mark.parametrize(
    ("token", "when", "accepted"),
    [
        (NEW, NOW, True),
        (OLD, NOW + timedelta(hours=47), True),
        (OLD, NOW + timedelta(hours=48), False),
        ("someone-elses-token-0000", NOW, False),
    ],
)
def test_the_pos_token_verifies_against_the_current_or_the_previous_value_in_its_window(
    token: str, when: datetime, accepted: bool
) -> None:
    webhook = _webhook(token)
    if accepted:
        verify.verify(webhook, _rotated(), when)
    else:
        with pytest.raises(Unauthorized, match="token does not match"):
            verify.verify(webhook, _rotated(), when)


@pytest.mark.parametrize("token", [NEW, OLD, "someone-elses-token-0000"])
@pytest.mark.parametrize("in_window", [True, False])
def test_both_values_are_always_compared_whichever_matches(
    monkeypatch: pytest.MonkeyPatch, token: str, in_window: bool
) -> None:
    """No early exit: the same number of constant-time compares whether the current value, the previous one or
    none matches, and whether a rotation is under way."""
    calls = itertools.count()
    real = hmac.compare_digest

    def counting(a: Any, b: Any) -> bool:
        next(calls)
        return real(a, b)

    monkeypatch.setattr(verify.hmac, "compare_digest", counting)
    when = NOW if in_window else NOW + timedelta(days=3)
    with contextlib.suppress(Unauthorized):
        verify.verify_pos_token(_webhook(token), _rotated(), when)
    assert next(calls) == 2


def test_the_ecom_signature_verifies_with_the_previous_secret_during_the_window() -> None:
    secrets = ConnectionSecrets.model_validate(DEMO_SECRETS).webhook_part()
    rotated = secrets.rotated(
        "ecom_webhook_secret", SecretStr("new-ecom-app-secret-0002"), now=NOW, overlap=timedelta(hours=1)
    )
    body = b'{"order": {"id": 1}}'
    for key in (DEMO_SECRETS["ecom_webhook_secret"], "new-ecom-app-secret-0002"):
        verify.verify(_webhook(source="ecom", body=body, x_signature=ecom_signature(body, key)), rotated, NOW)
    old_signed = _webhook(
        source="ecom", body=body, x_signature=ecom_signature(body, DEMO_SECRETS["ecom_webhook_secret"])
    )
    with pytest.raises(Unauthorized):
        verify.verify(old_signed, rotated, NOW + timedelta(hours=2))


class _Source:
    """The webhook part as the reader serves it: `cached` until a re-read returns `stored` (or None: rate-limited)."""

    def __init__(self, cached: WebhookSecrets, stored: WebhookSecrets | None) -> None:
        self.cached, self.stored, self.rereads = cached, stored, 0

    def get(self, connection_id: str) -> WebhookSecrets:
        return self.cached

    def reread(self, connection_id: str, source: str) -> WebhookSecrets | None:
        self.rereads += 1
        return self.stored


def test_a_credential_that_fails_the_cached_secret_is_checked_once_against_a_fresh_read() -> None:
    before = _current()
    source = _Source(before, _rotated())

    authenticate(_webhook(NEW), source, NOW)  # rotated after this sandbox cached the secret
    authenticate(_webhook(OLD), source, NOW)  # the cached value matches: no read

    assert source.rereads == 1


def test_when_the_reread_is_rate_limited_the_delivery_is_refused() -> None:
    source = _Source(_rotated(), None)
    with pytest.raises(Unauthorized):
        authenticate(_webhook("someone-elses-token-0000"), source, NOW)
    assert source.rereads == 1
