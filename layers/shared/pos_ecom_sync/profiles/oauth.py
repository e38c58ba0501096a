"""OAuth with expiring access tokens and rotating refresh tokens, whichever POS issues them (the vendor-neutral part).

A POS that rotates refresh tokens revokes the old one once the new pair is in use (X-Series: docs/authorization;
R-Series: KVH `docs/authentication/refresh-token.md` "Once the new access token is used to authenticate a request,
the old refresh token will be revoked"). So a pair is used until its expiry (less a margin) or until the API answers
401, then refreshed once; the refresh is single-flight across every concurrent invocation of the connection (a lease
on the pair's item, `profiles.base.TokenPairStore`): one invocation refreshes, the others wait briefly and take the
pair it stored. The new pair is stored BEFORE anyone uses it; an invocation that lost its lease meanwhile discards the
pair it got (never used, so it revokes nothing). A profile supplies only the grant call (`RotatingOAuthTokens._grant`).
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

from pos_ecom_sync.connectors.http import tls_context
from pos_ecom_sync.errors import AuthorizationRefused, RetryLater, UpstreamError, UpstreamUnavailable
from pos_ecom_sync.models.tokens import StoredTokens
from pos_ecom_sync.profiles.base import TokenPairStore

# Refresh this long before the announced expiry: a call in flight must not carry a token that dies on the way.
REFRESH_MARGIN_S = 300.0
# A refresher holds the lease at most this long (the token call times out well inside it).
LEASE_S = 30.0
# How long an invocation waits for another one's refresh before delaying its work (RetryLater).
WAIT_FOR_REFRESH_S = 10.0
POLL_S = 0.2


class TokenProvider(Protocol):
    """The bearer token of a connection: `current()` before a call, `refresh(rejected)` after a 401 (None: no
    other token to try, the 401 stands)."""

    def current(self) -> str: ...
    def refresh(self, rejected: str) -> str | None: ...


@dataclass(frozen=True)
class TokenPair:
    access_token: str | None
    refresh_token: str
    expires_at: float | None  # epoch s; None: unknown (used until a 401)


TOKEN_TIMEOUT = httpx.Timeout(10.0, connect=5.0)


@dataclass(frozen=True)
class GrantAnswer:
    """A token endpoint's successful answer: the new access token, the rotated refresh token (None when the vendor
    sent none: keep the one used) and the whole body (each vendor states expiry its own way)."""

    access_token: str
    refresh_token: str | None
    body: dict[str, Any]


def _json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def post_refresh_grant(
    api: str,
    url: str,
    path: str,
    fields: dict[str, str],
    *,
    as_json: bool,
    detail_keys: tuple[str, ...],
    transport: httpx.BaseTransport | None = None,
) -> GrantAnswer:
    """POST a refresh-token grant (`fields`, as JSON or a form) and read the answer the way every OAuth vendor here
    answers: a 429 or 5xx (or no answer) is an outage (`UpstreamUnavailable`, retried); another 4xx is the vendor
    refusing our grant (`AuthorizationRefused`, with only its OAuth error fields: `error` and the first of
    `detail_keys`); a 2xx without an access token is an `UpstreamError`."""
    try:
        with httpx.Client(transport=transport, timeout=TOKEN_TIMEOUT, verify=tls_context()) as client:
            payload: dict[str, Any] = {"json": fields} if as_json else {"data": fields}
            response = client.post(url, headers={"Accept": "application/json"}, **payload)
    except httpx.TransportError as exc:
        raise UpstreamUnavailable(f"{api} POST {path}: {type(exc).__name__}") from exc
    body = _json_object(response)
    status = response.status_code
    if status == 429 or status >= 500:
        raise UpstreamUnavailable(f"{api} POST {path} answered {status}")
    if status >= 400:
        # Only the OAuth error fields: the rest of an error body is never needed and could echo the request.
        error = str(body.get("error") or "error")[:100]
        detail = str(next((body[key] for key in detail_keys if body.get(key)), ""))[:200]
        raise AuthorizationRefused(
            f"{api} refused the token refresh ({status} {error}{': ' + detail if detail else ''}); "
            "re-authorize the app and put its new refresh token in the connection's secret"
        )
    access = body.get("access_token")
    if not isinstance(access, str) or not access:
        raise UpstreamError(api, status, "token answer without access_token", "POST", path)
    rotated = body.get("refresh_token")
    return GrantAnswer(access, rotated if isinstance(rotated, str) and rotated else None, body)


def seed_fingerprint(refresh_token: str) -> str:
    """Identifies the secret's refresh token without storing it twice: a stored chain from another seed is stale."""
    return hashlib.sha256(refresh_token.encode()).hexdigest()[:32]


class RotatingOAuthTokens:
    """The rotating OAuth pair of one connection (one instance per client; concurrent clients share the store).
    Subclasses implement `_grant` (the vendor's refresh_token grant); `api` names the vendor in errors."""

    api = "pos"

    def __init__(
        self,
        refresh_token: str,
        store: TokenPairStore,
        *,
        access_token: str | None = None,
        expires_at: float | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        margin_s: float = REFRESH_MARGIN_S,
        lease_s: float = LEASE_S,
        wait_s: float = WAIT_FOR_REFRESH_S,
    ) -> None:
        self._seed = TokenPair(access_token, refresh_token, expires_at)
        self._seed_id = seed_fingerprint(refresh_token)
        self._store = store
        self._clock = clock
        self._sleep = sleep
        self._margin_s = margin_s
        self._lease_s = lease_s
        self._wait_s = wait_s
        self._owner = uuid.uuid4().hex
        self._lock = threading.Lock()
        self._pair: TokenPair | None = None
        self.refreshes = 0  # token grants this instance obtained and stored (tests, benchmarks)

    def _grant(self, refresh_token: str) -> TokenPair:
        """Exchange `refresh_token` for a new pair at the vendor (raises AuthorizationRefused when refused)."""
        raise NotImplementedError

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
                raise RetryLater(
                    f"another invocation is refreshing the {self.api} token", self._clock() + self._lease_s
                )
            self._sleep(POLL_S)


class BearerAuth(httpx.Auth):
    """Sets the current token on each request; on a 401 the vendor means as "this token", refreshes once and resends
    the request once.

    A 401 means the vendor did nothing, so resending even a POST is safe. `before_retry(request)` takes a rate slot
    for the resend (a second request against the vendor's limit). `refreshable(response)` says whether a 401 is
    about the token (a refresh can cure it); reading it needs the body, so this auth asks httpx for it.
    """

    requires_response_body = True

    def __init__(
        self,
        tokens: TokenProvider,
        before_retry: Callable[[httpx.Request], None] | None = None,
        refreshable: Callable[[httpx.Response], bool] = lambda response: True,
    ) -> None:
        self._tokens = tokens
        self._before_retry = before_retry
        self._refreshable = refreshable

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        token = self._tokens.current()
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code != 401 or not self._refreshable(response):
            return
        fresh = self._tokens.refresh(token)
        if not fresh or fresh == token:
            return
        if self._before_retry is not None:
            self._before_retry(request)
        request.headers["Authorization"] = f"Bearer {fresh}"
        yield request
