"""X-Series OAuth: expiring access tokens, rotating refresh tokens, one refresher per connection at a time.

The vendor side (docs/authorization; changelog 2025-03-refresh-token-flow-update; Postman "Refresh Token request"):
`POST /api/1.0/token` (form: refresh_token, client_id, client_secret, grant_type=refresh_token) answers
`{access_token, token_type, expires, expires_in, refresh_token, domain_prefix, scope}`, and the refresh token it
was given is revoked; always use the latest one. Personal tokens do not expire and never come here.

Our side (`profiles.oauth`, shared with R-Series): a pair is used until `expires` (less a margin) or until the API
answers 401, then refreshed once, single-flight across every concurrent invocation of the connection, the new pair
stored BEFORE anyone uses it. A refused grant (`invalid_grant`: revoked, or the app was disconnected) is
`AuthorizationRefused`, which parks the record with the vendor's reason.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

from pos_ecom_sync.profiles.base import TokenPairStore
from pos_ecom_sync.profiles.oauth import (
    LEASE_S,
    POLL_S,
    REFRESH_MARGIN_S,
    WAIT_FOR_REFRESH_S,
    RotatingOAuthTokens,
    TokenPair,
    TokenProvider,
    post_refresh_grant,
    seed_fingerprint,
)

__all__ = [
    "LEASE_S",
    "POLL_S",
    "REFRESH_MARGIN_S",
    "WAIT_FOR_REFRESH_S",
    "OAuthTokens",
    "TokenPair",
    "TokenProvider",
    "seed_fingerprint",
]

TOKEN_PATH = "/api/1.0/token"


class OAuthTokens(RotatingOAuthTokens):
    """The rotating OAuth pair of one X-Series connection (one instance per client; concurrent clients share the
    store)."""

    api = "X-Series"

    def __init__(
        self,
        base_url: str,
        client_id: str,
        client_secret: str,
        refresh_token: str,
        store: TokenPairStore,
        *,
        access_token: str | None = None,
        expires_at: float | None = None,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        margin_s: float = REFRESH_MARGIN_S,
        lease_s: float = LEASE_S,
        wait_s: float = WAIT_FOR_REFRESH_S,
    ) -> None:
        super().__init__(
            refresh_token,
            store,
            access_token=access_token,
            expires_at=expires_at,
            clock=clock,
            sleep=sleep,
            margin_s=margin_s,
            lease_s=lease_s,
            wait_s=wait_s,
        )
        self._token_url = base_url.rstrip("/") + TOKEN_PATH
        self._client_id = client_id
        self._client_secret = client_secret
        self._transport = transport

    def _grant(self, refresh_token: str) -> TokenPair:
        fields = {
            "refresh_token": refresh_token,
            "client_id": self._client_id,
            "client_secret": self._client_secret,
            "grant_type": "refresh_token",
        }
        answer = post_refresh_grant(
            "xseries",
            self._token_url,
            TOKEN_PATH,
            fields,
            as_json=False,
            detail_keys=("error_description", "message"),
            transport=self._transport,
        )
        return TokenPair(answer.access_token, answer.refresh_token or refresh_token, self._expiry(answer.body))

    def _expiry(self, body: dict[str, Any]) -> float | None:
        expires, expires_in = body.get("expires"), body.get("expires_in")
        if isinstance(expires, int | float) and not isinstance(expires, bool) and expires > 0:
            return float(expires)
        if isinstance(expires_in, int | float) and not isinstance(expires_in, bool) and expires_in > 0:
            return self._clock() + float(expires_in)
        return None
