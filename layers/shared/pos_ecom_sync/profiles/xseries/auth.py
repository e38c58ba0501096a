"""X-Series OAuth: expiring access tokens, rotating refresh tokens, one refresher per connection at a time.

The vendor side (docs/authorization; changelog 2025-03-refresh-token-flow-update; Postman "Refresh Token request"):
`POST /api/1.0/token` (form: refresh_token, client_id, client_secret, grant_type=refresh_token) answers
`{access_token, token_type, expires, expires_in, refresh_token, domain_prefix, scope}`, and the refresh token it
was given is revoked; always use the latest one. Personal tokens do not expire and never come here.

Our side: a pair is used until `expires` (less a margin) or until the API answers 401, then refreshed once. The
refresh is single-flight across every concurrent invocation of the connection (a lease on the pair's item in the
sync table, `state.token_store`): one invocation refreshes, the others wait briefly and take the pair it stored.
The new pair is stored BEFORE anyone uses it; an invocation that lost its lease meanwhile discards the pair it got
(never used, so it revokes nothing). A refused grant (`invalid_grant`: revoked, or the app was disconnected) is
`AuthorizationRefused`, which parks the record with the vendor's reason.
"""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from pos_ecom_sync.errors import AuthorizationRefused, RetryLater, UpstreamError, UpstreamUnavailable
from pos_ecom_sync.models.tokens import StoredTokens

TOKEN_PATH = "/api/1.0/token"
# Refresh this long before the announced expiry: a call in flight must not carry a token that dies on the way.
REFRESH_MARGIN_S = 300.0
# A refresher holds the lease at most this long (the token call times out well inside it).
LEASE_S = 30.0
# How long an invocation waits for another one's refresh before delaying its work (RetryLater).
WAIT_FOR_REFRESH_S = 10.0
POLL_S = 0.2
TOKEN_TIMEOUT = httpx.Timeout(10.0, connect=5.0)


class TokenProvider(Protocol):
    """The bearer token of a connection: `current()` before a call, `refresh(rejected)` after a 401 (None: no
    other token to try, the 401 stands)."""

    def current(self) -> str: ...
    def refresh(self, rejected: str) -> str | None: ...


class TokenPairStore(Protocol):
    def load(self) -> StoredTokens | None: ...
    def acquire_lease(self, owner: str, lease_s: float) -> StoredTokens | None: ...
    def save_pair(
        self, owner: str, access_token: str, refresh_token: str, expires_at: float | None, seed: str | None
    ) -> bool: ...
    def release(self, owner: str) -> None: ...


@dataclass(frozen=True)
class TokenPair:
    access_token: str | None
    refresh_token: str
    expires_at: float | None  # epoch s; None: unknown (used until a 401)


def seed_fingerprint(refresh_token: str) -> str:
    """Identifies the secret's refresh token without storing it twice: a stored chain from another seed is stale."""
    return hashlib.sha256(refresh_token.encode()).hexdigest()[:32]


class OAuthTokens:
    """The rotating OAuth pair of one connection (one instance per client; concurrent clients share the store)."""

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
        self._token_url = base_url.rstrip("/") + TOKEN_PATH
        self._client_id = client_id
        self._client_secret = client_secret
        self._seed = TokenPair(access_token, refresh_token, expires_at)
        self._seed_id = seed_fingerprint(refresh_token)
        self._store = store
        self._transport = transport
        self._clock = clock
        self._sleep = sleep
        self._margin_s = margin_s
        self._lease_s = lease_s
        self._wait_s = wait_s
        self._owner = uuid.uuid4().hex
        self._lock = threading.Lock()
        self._pair: TokenPair | None = None
        self.refreshes = 0  # token grants this instance obtained and stored (tests, benchmarks)

    # -- TokenProvider --------------------------------------------------------------------------------

    def current(self) -> str:
        with self._lock:
            pair = self._pair
            if pair is None or not self._usable(pair, None):
                pair = self._stored()
                if not self._usable(pair, None):
                    pair = self._refresh(pair.access_token)
                self._pair = pair
            assert pair.access_token is not None
            return pair.access_token

    def refresh(self, rejected: str) -> str | None:
        with self._lock:
            self._pair = self._refresh(rejected)
            return self._pair.access_token

    # -- internals ------------------------------------------------------------------------------------

    def _usable(self, pair: TokenPair, rejected: str | None) -> bool:
        if not pair.access_token or pair.access_token == rejected:
            return False
        return pair.expires_at is None or pair.expires_at - self._margin_s > self._clock()

    def _chain(self, stored: StoredTokens | None) -> TokenPair:
        """The stored pair if it descends from the secret's refresh token, else the secret's own (re-authorized)."""
        if stored is not None and stored.refresh_token and stored.seed == self._seed_id:
            return TokenPair(stored.access_token, stored.refresh_token, stored.expires_at)
        return self._seed

    def _stored(self) -> TokenPair:
        return self._chain(self._store.load())

    def _refresh(self, rejected: str | None) -> TokenPair:
        deadline = self._clock() + self._wait_s
        while True:
            pair = self._stored()
            if self._usable(pair, rejected):
                return pair  # another invocation refreshed since our token was rejected
            leased = self._store.acquire_lease(self._owner, self._lease_s)
            if leased is not None:
                try:
                    pair = self._chain(leased)
                    if self._usable(pair, rejected):
                        self._store.release(self._owner)
                        return pair
                    fresh = self._grant(pair.refresh_token)
                except BaseException:
                    self._store.release(self._owner)
                    raise
                if self._store.save_pair(
                    self._owner, fresh.access_token or "", fresh.refresh_token, fresh.expires_at, self._seed_id
                ):
                    self.refreshes += 1
                    return fresh
                continue  # our lease ran out mid-refresh: the pair we got is discarded unused; read the winner's
            if self._clock() >= deadline:
                raise RetryLater("another invocation is refreshing the X-Series token", self._clock() + self._lease_s)
            self._sleep(POLL_S)

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
