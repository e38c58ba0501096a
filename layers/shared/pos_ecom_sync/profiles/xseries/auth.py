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
from collections.abc import Callable, Generator
from typing import Any

import httpx

from pos_ecom_sync.errors import AuthorizationRefused, UpstreamError, UpstreamUnavailable
from pos_ecom_sync.profiles.base import TokenPairStore
from pos_ecom_sync.profiles.oauth import (
    LEASE_S,
    POLL_S,
    REFRESH_MARGIN_S,
    WAIT_FOR_REFRESH_S,
    RotatingOAuthTokens,
    TokenPair,
    TokenProvider,
    seed_fingerprint,
)

__all__ = [
    "LEASE_S",
    "POLL_S",
    "REFRESH_MARGIN_S",
    "WAIT_FOR_REFRESH_S",
    "BearerAuth",
    "OAuthTokens",
    "TokenPair",
    "TokenProvider",
    "seed_fingerprint",
]

TOKEN_PATH = "/api/1.0/token"
TOKEN_TIMEOUT = httpx.Timeout(10.0, connect=5.0)


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
        form = {
            "refresh_token": refresh_token,
            "client_id": self._client_id,
            "client_secret": self._client_secret,
            "grant_type": "refresh_token",
        }
        try:
            with httpx.Client(transport=self._transport, timeout=TOKEN_TIMEOUT) as client:
                response = client.post(self._token_url, data=form, headers={"Accept": "application/json"})
        except httpx.TransportError as exc:
            raise UpstreamUnavailable(f"xseries POST {TOKEN_PATH}: {type(exc).__name__}") from exc
        body = _json(response)
        status = response.status_code
        if status == 429 or status >= 500:
            raise UpstreamUnavailable(f"xseries POST {TOKEN_PATH} answered {status}")
        if status >= 400:
            # Only the OAuth error fields: the rest of an error body is never needed and could echo the request.
            error = str(body.get("error") or "error")[:100]
            detail = str(body.get("error_description") or body.get("message") or "")[:200]
            raise AuthorizationRefused(
                f"xseries refused the token refresh ({status} {error}{': ' + detail if detail else ''}); "
                "re-authorize the app and put its new refresh token in the connection's secret"
            )
        access = body.get("access_token")
        if not isinstance(access, str) or not access:
            raise UpstreamError("xseries", status, "token answer without access_token", "POST", TOKEN_PATH)
        rotated = body.get("refresh_token")
        return TokenPair(
            access,
            rotated if isinstance(rotated, str) and rotated else refresh_token,
            self._expiry(body),
        )

    def _expiry(self, body: dict[str, Any]) -> float | None:
        expires, expires_in = body.get("expires"), body.get("expires_in")
        if isinstance(expires, int | float) and not isinstance(expires, bool) and expires > 0:
            return float(expires)
        if isinstance(expires_in, int | float) and not isinstance(expires_in, bool) and expires_in > 0:
            return self._clock() + float(expires_in)
        return None


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


class BearerAuth(httpx.Auth):
    """Sets the current token on each request; on a 401, refreshes once and resends the request once.

    A 401 means the vendor did nothing, so resending even a POST is safe. `before_retry` takes a rate slot for the
    resend (it is a second request against the vendor's limit).
    """

    def __init__(self, tokens: TokenProvider, before_retry: Callable[[], None] | None = None) -> None:
        self._tokens = tokens
        self._before_retry = before_retry

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        token = self._tokens.current()
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code != 401:
            return
        fresh = self._tokens.refresh(token)
        if not fresh or fresh == token:
            return
        if self._before_retry is not None:
            self._before_retry()
        request.headers["Authorization"] = f"Bearer {fresh}"
        yield request
