"""R-Series OAuth: expiring access tokens and rotating refresh tokens (the shared refresher: `profiles.oauth`).

The vendor side (KVH `docs/authentication/refresh-token.md`, `authorization-code-grant.md`):
`POST https://cloud.lightspeedapp.com/auth/oauth/token` with a JSON (or multipart) body `{grant_type:
"refresh_token", refresh_token, client_id, client_secret}` answers `{token_type: "Bearer", expires_in,
access_token, refresh_token}` (`expires_in` shown as 1800 and 3600: read, never assumed). The old refresh token is
revoked once the new access token is first used, so the new pair is stored before that (`profiles.oauth`). An
expired access token answers 401 `{"error": "access_denied", ..., "hint": "Access token could not be verified"}`
(a revoked app: "Access token has been revoked", whose refresh then fails with `invalid_grant`). "Excessive use of
refresh tokens may result in rate limiting or your client being blocked": we refresh only on a known expiry or on
that 401, once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from urllib.parse import urlsplit

import httpx

from pos_ecom_sync.profiles.base import TokenPairStore
from pos_ecom_sync.profiles.oauth import REFRESH_MARGIN_S, RotatingOAuthTokens, TokenPair, post_refresh_grant

TOKEN_PATH = "/auth/oauth/token"
# The API and the token endpoint live on different hosts (KVH authorization-code-grant.md, refresh-token.md).
API_HOST = "api.lightspeedapp.com"
TOKEN_ORIGIN = "https://cloud.lightspeedapp.com"


def token_url(api_base_url: str) -> str:
    """The token endpoint for an API base URL: Lightspeed's cloud host for the real API, the same origin otherwise
    (a simulator or a proxy serves both)."""
    parts = urlsplit(api_base_url)
    if (parts.hostname or "").lower() == API_HOST:
        return TOKEN_ORIGIN + TOKEN_PATH
    return f"{parts.scheme}://{parts.netloc}{TOKEN_PATH}"


def token_rejected(response: httpx.Response) -> bool:
    """A 401 a refresh can cure: the OAuth `access_denied` body (any `hint`), or a body we cannot read (the token is
    the only credential we send, so an unreadable 401 is about it too)."""
    try:
        body = response.json()
    except ValueError:
        return True
    if not isinstance(body, dict):
        return True
    return body.get("error") == "access_denied" or "hint" in body or not body


class RSeriesTokens(RotatingOAuthTokens):
    """The rotating pair of one R-Series connection."""

    api = "rseries"

    def __init__(
        self,
        api_base_url: str,
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
    ) -> None:
        super().__init__(
            refresh_token,
            store,
            access_token=access_token,
            expires_at=expires_at,
            clock=clock,
            sleep=sleep,
            margin_s=margin_s,
        )
        self._token_url = token_url(api_base_url)
        self._client_id = client_id
        self._client_secret = client_secret
        self._transport = transport

    def _grant(self, refresh_token: str) -> TokenPair:
        fields = {
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "client_id": self._client_id,
            "client_secret": self._client_secret,
        }
        answer = post_refresh_grant(
            "rseries",
            self._token_url,
            TOKEN_PATH,
            fields,
            as_json=True,
            detail_keys=("hint", "error_description"),
            transport=self._transport,
        )
        expires_in = answer.body.get("expires_in")
        expires_at = None
        if isinstance(expires_in, int | float) and not isinstance(expires_in, bool) and expires_in > 0:
            expires_at = self._clock() + float(expires_in)
        return TokenPair(answer.access_token, answer.refresh_token or refresh_token, expires_at)
