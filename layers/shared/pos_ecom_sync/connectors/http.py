"""Shared HTTP plumbing for the vendor connectors: budget, retries and error mapping in one place.

Every call takes a slot from the rate budget first and feeds the response headers back after. Errors
become domain errors: 404 -> NotFound (or None where the caller looks something up), other 4xx ->
UpstreamError with the vendor's text, 5xx/timeouts/connection errors -> UpstreamUnavailable, 429 ->
wait for Retry-After (through the budget) or RateLimited. Only calls that are safe to repeat are retried:
GET/PUT/DELETE, a 429 (the vendor did nothing) and a connection that never opened. A POST that may have
reached the vendor is never sent twice.
"""

from __future__ import annotations

import functools
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from pos_ecom_sync.errors import CredentialsRejected, NotFound, RateLimited, UpstreamError, UpstreamUnavailable
from pos_ecom_sync.ratelimit import Observation, RateBudget, RatePolicy

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE"})
# Errors raised before the request could reach the vendor: retrying them is safe for any method.
NOT_SENT_ERRORS: tuple[type[httpx.TransportError], ...] = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
# Sized to the workers' 60 s timeout: a vendor that accepts and never answers costs an idempotent call at most
# 3 attempts x 10 s + 1.5 s of back-off before UpstreamUnavailable (the record is retried later, with back-off).
DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=3.0)
DEFAULT_MAX_RETRIES = 2


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The one TLS context of this sandbox's vendor clients (httpx's default: certifi's CA bundle). httpx builds a
    new one for every client it makes, which loads that bundle: about 20 ms of CPU per client, a cold start's
    clients and every rotated credential's included. A context is shared safely across clients and threads."""
    return httpx.create_ssl_context()


# The same call answered 429 this many times in a row means the vendor disagrees with our budget; give up for now.
MAX_THROTTLED_ATTEMPTS = 5

Params = Mapping[str, str | int | bool | None]
ObservationReader = Callable[[Mapping[str, str], int, float], Observation]
# What one request costs against a metered budget (method, path, JSON body, query): R-Series' leaky bucket.
RequestCost = Callable[[str, str, Any, Params | None], float]


def _clean(params: Params | None) -> dict[str, str | int] | None:
    if params is None:
        return None
    return {k: ("true" if v is True else "false" if v is False else v) for k, v in params.items() if v is not None}


class VendorHttp:
    """One vendor API behind a rate budget (`calls` counts requests actually sent, for benchmarks)."""

    def __init__(
        self,
        base_url: str,
        policy: RatePolicy,
        budget: RateBudget,
        read_observation: ObservationReader,
        *,
        headers: Mapping[str, str] | None = None,
        auth: httpx.Auth | None = None,
        max_wait_s: float = 2.0,
        client: httpx.Client | None = None,
        transport: httpx.BaseTransport | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        backoff_s: float = 0.5,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        request_cost: RequestCost | None = None,
    ) -> None:
        """`request_cost` prices each request for a budget that counts cost (a leaky bucket); without it every
        request takes one slot."""
        self.base_url = base_url.rstrip("/")
        self.policy = policy
        self.budget = budget
        self.max_wait_s = max_wait_s
        self._read_observation = read_observation
        # Auth travels with each request so an injected client needs no setup.
        self._headers = {"Accept": "application/json", **(headers or {})}
        self._auth = auth
        self._client = client or httpx.Client(transport=transport, timeout=timeout, verify=tls_context())
        self._max_retries = max_retries
        self._backoff_s = backoff_s
        self._clock = clock
        self._sleep = sleep
        self._request_cost = request_cost
        self._count_lock = threading.Lock()
        self.calls = 0
        self._ahead: tuple[int, float] = (0, 0.0)  # slots taken ahead (`take_ahead`), usable until then

    @property
    def api(self) -> str:
        return self.policy.api

    def close(self) -> None:
        self._client.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        json: Any = None,
        absent_ok: bool = False,
        accept_statuses: frozenset[int] = frozenset(),
    ) -> httpx.Response | None:
        """Send one call; None only when `absent_ok` and the vendor answered 404.

        `accept_statuses` are non-2xx answers the caller handles itself (e.g. 409 "already exists").
        """
        method = method.upper()
        failures = throttled = 0
        while True:
            self.take_slot(method, path, json, params)
            with self._count_lock:
                self.calls += 1
            try:
                response = self._send(method, path, params, json)
            except httpx.TransportError as exc:
                # The error text may carry the URL; keep to the path and the error kind (no query, no secrets).
                safe = method in IDEMPOTENT_METHODS or isinstance(exc, NOT_SENT_ERRORS)
                if safe and failures < self._max_retries:
                    self._backoff(failures)
                    failures += 1
                    continue
                raise UpstreamUnavailable(f"{self.api} {method} {path}: {type(exc).__name__}") from exc
            self._observe(response)
            status = response.status_code
            if status == 429:
                self._drop_ahead()  # the budget is blocked until Retry-After: a slot taken before must wait too
                throttled += 1
                if throttled >= MAX_THROTTLED_ATTEMPTS:
                    raise RateLimited(self.api, self._clock() + self.policy.fallback_retry_s, "vendor keeps throttling")
                continue  # the budget is now blocked until Retry-After: acquire waits or raises RateLimited
            if status >= 500:
                if method in IDEMPOTENT_METHODS and failures < self._max_retries:
                    self._backoff(failures)
                    failures += 1
                    continue
                raise UpstreamUnavailable(f"{self.api} {method} {path} answered {status}: {response.text[:300]}")
            if status < 300 or status in accept_statuses:
                return response
            if status == 404:
                if absent_ok:
                    return None
                raise NotFound(f"{self.api} {method} {path}: not found")
            if status in (401, 403):
                raise CredentialsRejected(self.api, status, response.text, method, path)
            raise UpstreamError(self.api, status, response.text, method, path)

    def take_ahead(self, requests: int) -> None:
        """Take the budget slots of the next `requests` requests in one take (a shared budget then costs one write
        instead of one per request), for requests sent back to back (an order and its lines). A slot taken ahead is
        used only while every window that counted it is still open (`ratelimit.counted_until`), so its request falls
        in the window that counted it, as one taken at that moment would; past that, or once the vendor answers 429,
        a request takes its own and the unused slot is lost (counted, never sent: the budget errs on the safe side).
        A budget that prices each request (a leaky bucket) is not taken ahead."""
        if requests < 2 or self._request_cost is not None:
            return
        until = self.budget.acquire(self.policy, max_wait_s=self.max_wait_s, slots=requests)
        with self._count_lock:
            self._ahead = (requests, until)

    def _drop_ahead(self) -> None:
        with self._count_lock:
            self._ahead = (0, 0.0)

    def _use_ahead(self) -> bool:
        with self._count_lock:
            left, until = self._ahead
            if left and self._clock() < until:
                self._ahead = (left - 1, until)
                return True
            self._ahead = (0, 0.0)
            return False

    def take_slot(self, method: str, path: str, body: Any = None, params: Params | None = None) -> None:
        """Take the budget slot(s) one request needs (waits, or raises RateLimited); one taken ahead if any."""
        if self._request_cost is None:
            if self._use_ahead():
                return
            self.budget.acquire(self.policy, max_wait_s=self.max_wait_s)
        else:
            cost = self._request_cost(method.upper(), path, body, params)
            self.budget.acquire(self.policy, max_wait_s=self.max_wait_s, cost=cost)

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        """`request` and decode the body (None for an empty body or an absent entity)."""
        response = self.request(method, path, **kwargs)
        if response is None or not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise UpstreamError(self.api, response.status_code, response.text, method, path) from exc

    def _send(self, method: str, path: str, params: Params | None, body: Any) -> httpx.Response:
        return self._client.request(
            method, self.base_url + path, params=_clean(params), json=body, headers=self._headers, auth=self._auth
        )

    def _observe(self, response: httpx.Response) -> None:
        try:
            observation = self._read_observation(response.headers, response.status_code, self._clock())
            self.budget.observe(self.policy, observation)
        except Exception:  # noqa: S110 - the call already happened; bad headers must not fail it
            pass

    def _backoff(self, failures: int) -> None:
        self._sleep(min(self._backoff_s * 2**failures, 8.0))
