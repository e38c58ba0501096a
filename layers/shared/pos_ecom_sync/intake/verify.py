"""Who sent a webhook: the X-Series URL token and optional body signature, the eCom body signature.

Each check accepts the connection's current credential or, during a rotation's overlap window, the previous one
(`WebhookSecrets.previous_*` until `previous_valid_until`). Every comparison is constant-time and both candidates
are always compared, so timing tells neither which one matched nor whether a rotation is under way. Every refusal
is an `Unauthorized` with a reason that echoes no credential.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol

from pydantic import SecretStr

from pos_ecom_sync.errors import Unauthorized
from pos_ecom_sync.models.connection import WebhookCredential, WebhookSecrets

if TYPE_CHECKING:
    from pos_ecom_sync.intake.webhooks import IncomingWebhook


class WebhookSecretsSource(Protocol):
    """The webhook part of each connection's secret (`secrets.WebhookSecretsReader`)."""

    def get(self, connection_id: str) -> WebhookSecrets: ...

    def reread(self, connection_id: str, source: str) -> WebhookSecrets | None:
        """Read again, bypassing the cache; None when `source` made it re-read too recently (rate limit)."""
        ...


def authenticate(webhook: IncomingWebhook, secrets: WebhookSecretsSource, now: datetime | None = None) -> None:
    """Verify a delivery against the cached webhook secret; if it does not verify, the secret may have been rotated
    since this sandbox read it: read it once more (rate-limited per connection and vendor) and verify again before
    refusing."""
    now = now or datetime.now(UTC)
    cached = secrets.get(webhook.connection_id)
    try:
        verify(webhook, cached, now)
    except Unauthorized:
        fresh = secrets.reread(webhook.connection_id, webhook.source)
        if fresh is None or fresh == cached:
            raise
        verify(webhook, fresh, now)


def verify(webhook: IncomingWebhook, secrets: WebhookSecrets, now: datetime) -> None:
    if webhook.source == "pos":
        verify_pos_token(webhook, secrets, now)
        verify_pos_signature(webhook, secrets, now)
    else:
        verify_ecom_signature(webhook, secrets, now)


def _candidates(secrets: WebhookSecrets, credential: WebhookCredential, now: datetime) -> tuple[bytes, bytes]:
    """The current value and the previous one in its window; else the current one twice (always two compares)."""
    current, previous = secrets.accepted(credential, now)
    assert current is not None  # callers check that the credential is configured
    chosen: SecretStr = previous or current
    return current.get_secret_value().encode(), chosen.get_secret_value().encode()


def _matches_any(given: bytes, expected: tuple[bytes, ...]) -> bool:
    matched = False
    for value in expected:
        matched |= hmac.compare_digest(given, value)  # no early exit
    return matched


def verify_pos_token(webhook: IncomingWebhook, secrets: WebhookSecrets, now: datetime) -> None:
    if secrets.pos_webhook_token is None:  # a POS that sends no webhooks (R-Series): nothing to authenticate by
        raise Unauthorized("this connection has no pos_webhook_token: it takes no POS webhooks")
    token = webhook.query.get("token")
    if not token:
        raise Unauthorized("missing token query parameter")
    if not _matches_any(token.encode("utf-8", "replace"), _candidates(secrets, "pos_webhook_token", now)):
        raise Unauthorized("token does not match this connection")


SIGNATURE_ALGORITHM = "HMAC-SHA256"


def _signature_fields(header: str) -> dict[str, str]:
    """`signature=<digest>,algorithm=HMAC-SHA256` -> fields (split at the first `=`: base64 ends in `=`)."""
    fields: dict[str, str] = {}
    for part in header.split(","):
        name, sep, value = part.partition("=")
        if sep:
            fields[name.strip().lower()] = value.strip()
    return fields


def verify_pos_signature(webhook: IncomingWebhook, secrets: WebhookSecrets, now: datetime) -> None:
    """X-Series signs deliveries to OAuth apps: `X-Signature: signature=...,algorithm=HMAC-SHA256` over the raw
    body. Required only when the connection has a signing secret. [unverified] the key (the app's client secret)
    and the digest encoding: hex (any case) and base64 are both accepted, each compared in constant time."""
    if secrets.pos_webhook_signing_secret is None:
        return
    header = webhook.header("x-signature")
    if not header:
        raise Unauthorized("missing X-Signature header: this connection accepts signed deliveries only")
    fields = _signature_fields(header)
    algorithm = fields.get("algorithm", SIGNATURE_ALGORITHM)
    if algorithm.upper() != SIGNATURE_ALGORITHM:
        raise Unauthorized(f"X-Signature algorithm {algorithm[:40]!r} is not {SIGNATURE_ALGORITHM}")
    given = fields.get("signature", "").encode("utf-8", "replace")
    matched = False
    for key in _candidates(secrets, "pos_webhook_signing_secret", now):
        digest = hmac.new(key, webhook.body, hashlib.sha256).digest()
        # Both encodings compared for both keys: no early exit on which key or encoding matched.
        matched |= _matches_any(given.lower(), (digest.hex().encode(),)) | _matches_any(
            given, (base64.b64encode(digest),)
        )
    if not matched:
        raise Unauthorized("X-Signature does not match the body")


def verify_ecom_signature(webhook: IncomingWebhook, secrets: WebhookSecrets, now: datetime) -> None:
    """eCom: `x-signature` = md5 hex of the raw body + the shop API key's secret (F4574)."""
    signature = webhook.header("x-signature")
    if not signature:
        raise Unauthorized("missing x-signature header")
    given = signature.strip().lower().encode("utf-8", "replace")
    expected = tuple(
        hashlib.md5(webhook.body + key, usedforsecurity=False).hexdigest().encode()
        for key in _candidates(secrets, "ecom_webhook_secret", now)
    )
    if not _matches_any(given, expected):
        raise Unauthorized("x-signature does not match the body")
