"""What both vendor simulators share: the HTTP server and request pipeline, fault injection, fixed
rate-limit windows, and the asynchronous webhook delivery worker.

Request pipeline (`VendorSimulator.handle`): count -> injected latency -> auth (401) -> rate limit (429)
-> injected 429 -> injected 5xx -> route (404) -> the vendor's contract (undeclared query parameters dropped, as the
real API ignores them; a body the vendor refuses answered with its error) -> handler under the state lock -> injected
lost response.
Everything time-based reads the injected `clock`, so tests can run the windows on an accelerated clock.
"""

from __future__ import annotations

import functools
import heapq
import json
import random
import re
import socket
import threading
import time
import urllib.error
import urllib.request
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, parse_qsl, unquote, urlsplit

from local_stack.contract import CONTRACTS_DIR, Contract, ContractRoute

Narrate = Callable[[str], None]
Clock = Callable[[], float]
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# How often a local HTTP server's loop looks for a shutdown: http.server's default (0.5 s) made every stop wait about
# 0.4 s, and the tests start and stop servers for each test.
SERVER_POLL_S = 0.05


@dataclass(frozen=True)
class Faults:
    """Per-run fault injection. Rates are fractions in [0, 1]; draws come from the simulator's seeded RNG."""

    error_rate: float = 0.0  # API calls answered 500/503 before anything is applied
    latency_s: float = 0.0  # added to every API call (real time, not the injected clock)
    throttle_rate: float = 0.0  # extra 429s on top of the real windows, with a short Retry-After
    lost_response_rate: float = 0.0  # writes that ARE applied but answered 503, as if the response was lost
    webhook_loss_rate: float = 0.0  # deliveries never sent
    webhook_duplicate_rate: float = 0.0  # deliveries sent twice
    webhook_reorder: bool = False  # deliveries shuffled within small batches


class ApiError(Exception):
    """Raised by route handlers; the simulator renders it in its vendor's error shape."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def iso_utc(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")


def parse_iso(value: str) -> float:
    """ISO-8601 (with Z, an offset, or none = UTC) -> epoch seconds."""
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise ApiError(400, f"{value!r} is not an ISO-8601 date") from exc
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


def int_param(query: Mapping[str, str], name: str, default: int | None = None, minimum: int = 0) -> int | None:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ApiError(400, f"query parameter {name} must be an integer") from exc
    if value < minimum:
        raise ApiError(400, f"query parameter {name} must be >= {minimum}")
    return value


# -- requests, responses, routing ------------------------------------------------------------------


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]  # last value of each parameter
    headers: dict[str, str]  # lower-cased names
    body: bytes
    params: dict[str, str] = field(default_factory=dict)  # path parameters

    def json(self) -> Any:
        if not self.body.strip():
            return {}
        try:
            return json.loads(self.body)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ApiError(400, f"request body is not valid JSON: {exc}") from exc

    def json_object(self, envelope: str | None = None) -> dict[str, Any]:
        """The body as an object; with `envelope`, the object inside it (eCom wraps writes: {"variant": {...}})."""
        body = self.json()
        if envelope is not None:
            if not isinstance(body, dict) or not isinstance(body.get(envelope), dict):
                raise ApiError(400, f'request body must be {{"{envelope}": {{...}}}}')
            body = body[envelope]
        if not isinstance(body, dict):
            raise ApiError(400, "request body must be a JSON object")
        return body


@dataclass
class Response:
    status: int = 200
    body: Any = None  # JSON-serialisable; None sends no body
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[Request], Response]


@dataclass(frozen=True)
class Route:
    method: str
    template: str
    pattern: re.Pattern[str]
    handler: Handler


class Router:
    """Path templates like `/{lang}/products/{id}.json`; the first registered match wins."""

    def __init__(self) -> None:
        self._routes: list[Route] = []

    def add(self, method: str, template: str, handler: Handler) -> None:
        regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+?)", re.escape(template))
        self._routes.append(Route(method, template, re.compile(regex), handler))

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        for route in self._routes:
            found = route.pattern.fullmatch(path)
            if found and route.method == method:
                return route, found.groupdict()
        return None


def reject_unknown(names: Iterable[str], allowed: frozenset[str], what: str) -> None:
    """Strict writes: a misspelt field is a 400, so a connector bug shows up instead of being ignored."""
    unknown = sorted(set(names) - allowed)
    if unknown:
        raise ApiError(400, f"unknown {what} field(s): {', '.join(unknown)}")


# -- rate limits -----------------------------------------------------------------------------------


class FixedWindow:
    """`limit` requests per window; a window starts at the first request after the previous one ended."""

    def __init__(self, limit: int, window_s: float) -> None:
        self.limit = limit
        self.window_s = window_s
        self._start: float | None = None
        self._count = 0

    def _roll(self, now: float) -> None:
        if self._start is None or now >= self._start + self.window_s:
            self._start, self._count = now, 0

    def has_room(self, now: float) -> bool:
        self._roll(now)
        return self._count < self.limit

    def take(self, now: float) -> None:
        self._roll(now)
        self._count += 1

    def remaining(self, now: float) -> int:
        self._roll(now)
        return max(0, self.limit - self._count)

    def reset_at(self, now: float) -> float:
        self._roll(now)
        assert self._start is not None
        return self._start + self.window_s


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    headers: dict[str, str]
    retry_after: str = ""  # header value when refused


def acquire(windows: list[FixedWindow], now: float) -> list[FixedWindow]:
    """Take one request from every window, or none if any is full; returns the full windows."""
    full = [w for w in windows if not w.has_room(now)]
    if not full:
        for window in windows:
            window.take(now)
    return full


# -- webhook delivery ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    event: str
    url: str
    body: bytes
    headers: dict[str, str]
    # Seconds (vendor time) before each retry of a failed delivery; None: the dispatcher's default.
    retry_delays: tuple[float, ...] | None = None


@dataclass
class DeliveryRecord:
    event: str
    url: str
    status: int | None  # final HTTP status, None when the receiver could not be reached
    attempts: int
    # (vendor seconds since the first attempt, by the retry schedule; status) of every attempt.
    history: list[tuple[float, int | None]] = field(default_factory=list)
    waited_s: float = 0.0  # real seconds from the first attempt to the last


def backoff_schedule(retries: int, window_s: float, factor: float = 1.5) -> tuple[float, ...]:
    """`retries` exponentially growing delays (each `factor` times the last) that add up to `window_s`."""
    first = window_s * (factor - 1) / (factor**retries - 1)
    return tuple(first * factor**n for n in range(retries))


@dataclass(order=True)
class _Retry:
    due: float  # time.monotonic()
    seq: int
    delivery: Delivery = field(compare=False)
    record: DeliveryRecord = field(compare=False)
    started: float = field(compare=False)  # monotonic time of the first attempt
    offset: float = field(compare=False)  # vendor seconds of this attempt after the first, by the schedule


@functools.cache
def _local_opener() -> urllib.request.OpenerDirector:
    """One opener for every simulator's webhook deliveries: building one makes an HTTPS handler and its TLS context
    (about 20 ms of CPU), and webhook URLs are local anyway. Never through a proxy from the environment."""
    return urllib.request.build_opener(urllib.request.ProxyHandler({}))


class WebhookDispatcher:
    """Delivers webhooks from one worker thread, as the vendors do: after the API call has returned, with a 5 s
    timeout, possibly lost, duplicated or reordered. A non-2xx (or no) answer is retried after each of the
    delivery's `retry_delays` (default: two quick retries), scheduled so other deliveries keep flowing meanwhile.
    `time_scale` speeds the vendor's clock up (3600: an hour of back-off passes in a second), so a 48-hour
    schedule can run in a test."""

    def __init__(
        self,
        faults: Callable[[], Faults],
        rng: random.Random,
        narrate: Narrate,
        *,
        timeout_s: float = 5.0,
        attempts: int = 3,
        backoff_s: float = 0.2,
        batch: int = 5,
        time_scale: float = 1.0,
    ) -> None:
        self._faults = faults
        self._rng = rng
        self._narrate = narrate
        self.timeout_s, self.attempts, self.backoff_s, self.batch = timeout_s, attempts, backoff_s, batch
        self.time_scale = time_scale
        self._queue: deque[Delivery] = deque()
        self._retries: list[_Retry] = []  # heap by due time
        self._seq = 0
        self._cond = threading.Condition()
        self._in_flight = 0
        self._stopped = False
        self._thread: threading.Thread | None = None
        self._opener = _local_opener()
        self.sent = 0  # deliveries answered 2xx (each duplicate counts)
        self.failed = 0  # deliveries given up after all attempts
        self.lost = 0
        self.duplicated = 0
        self.log: list[DeliveryRecord] = []  # finished deliveries (acknowledged or given up)

    def default_delays(self) -> tuple[float, ...]:
        return tuple(self.backoff_s * 2**n for n in range(self.attempts - 1))

    def enqueue(self, delivery: Delivery) -> None:
        faults = self._faults()
        with self._cond:
            if self._rng.random() < faults.webhook_loss_rate:
                self.lost += 1
                return
            self._queue.append(delivery)
            if self._rng.random() < faults.webhook_duplicate_rate:
                self._queue.append(delivery)
                self.duplicated += 1
            self._cond.notify_all()

    def start(self) -> None:
        with self._cond:
            self._stopped = False
        self._thread = threading.Thread(target=self._run, name="webhook-dispatcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        if self._thread:
            self._thread.join(timeout=self.timeout_s + 1)
            self._thread = None

    @property
    def pending_retries(self) -> int:
        with self._cond:
            return len(self._retries)

    def wait_idle(self, timeout: float = 10.0, *, include_retries: bool = False) -> bool:
        """Block until nothing is queued or being delivered (and, with `include_retries`, no failed delivery waits
        for its next attempt); False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._queue or self._in_flight or (include_retries and self._retries):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def _next_work(self) -> tuple[list[Delivery], list[_Retry]] | None:
        """Wait for new deliveries or a retry that is due; None once stopped."""
        with self._cond:
            while not self._stopped:
                now = time.monotonic()
                if self._retries and self._retries[0].due <= now:
                    due = heapq.heappop(self._retries)
                    self._in_flight += 1
                    return [], [due]
                if self._queue:
                    reorder = self._faults().webhook_reorder
                    if reorder:
                        self._cond.wait(0.05)  # let a burst accumulate so there is something to shuffle
                    take = min(self.batch if reorder else 1, len(self._queue))
                    batch = [self._queue.popleft() for _ in range(take)]
                    self._in_flight += take
                    if reorder:
                        self._rng.shuffle(batch)
                    return batch, []
                self._cond.wait(self._retries[0].due - now if self._retries else None)
            return None

    def _run(self) -> None:
        while (work := self._next_work()) is not None:
            fresh, retries = work
            for delivery in fresh:
                record = DeliveryRecord(delivery.event, delivery.url, None, 0)
                self._attempt(delivery, record, time.monotonic(), 0.0)
            for retry in retries:
                self._attempt(retry.delivery, retry.record, retry.started, retry.offset)

    def _attempt(self, delivery: Delivery, record: DeliveryRecord, started: float, offset: float) -> None:
        status = self._post(delivery)
        now = time.monotonic()
        record.attempts += 1
        record.status = status
        record.history.append((offset, status))
        record.waited_s = now - started
        delays = self.default_delays() if delivery.retry_delays is None else delivery.retry_delays
        with self._cond:
            self._in_flight -= 1
            if status is not None and 200 <= status < 300:
                self.sent += 1
                self.log.append(record)
            elif record.attempts <= len(delays) and not self._stopped:
                delay = delays[record.attempts - 1]
                self._seq += 1
                retry = _Retry(now + delay / self.time_scale, self._seq, delivery, record, started, offset + delay)
                heapq.heappush(self._retries, retry)
            else:
                self.failed += 1
                self.log.append(record)
                self._narrate(
                    f"webhook {delivery.event} to {delivery.url} failed ({status or 'unreachable'}), gave up "
                    f"after {record.attempts} attempt(s)"
                )
            self._cond.notify_all()

    def _post(self, delivery: Delivery) -> int | None:
        request = urllib.request.Request(delivery.url, data=delivery.body, headers=delivery.headers, method="POST")
        try:
            with self._opener.open(request, timeout=self.timeout_s) as response:
                return int(response.status)
        except urllib.error.HTTPError as exc:
            return exc.code
        except (OSError, ValueError):
            return None


# -- the simulator base ----------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    simulator: VendorSimulator


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: clients reuse connections, as against the real APIs
    server: _Server

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes; without this, Nagle + delayed ACK add ~40 ms per call.
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _dispatch(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        split = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        headers = {k.lower(): v for k, v in self.headers.items()}
        request = Request(self.command, unquote(split.path), query, headers, body)
        try:
            status, response_headers, payload = self.server.simulator.handle(request)
        except Exception as exc:  # never drop the connection: answer like a broken server would
            status, response_headers, payload = 500, {}, json.dumps({"error": f"simulator error: {exc!r}"}).encode()
        self.send_response(status)
        for name, value in response_headers.items():
            self.send_header(name, value)
        if payload:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _dispatch

    def log_message(self, format: str, *args: Any) -> None:  # the stack narrates instead
        return


@dataclass(frozen=True)
class Exchange:
    """One request and the simulator's answer, kept while `record_exchanges` is on (contract tests)."""

    method: str
    path: str
    query: dict[str, str]
    status: int
    body: bytes


class VendorSimulator:
    """HTTP server + pipeline; subclasses add routes, auth, rate headers and their error shape."""

    vendor = "vendor"
    contract_api: str | None = None  # contracts/<contract_api>.json: the vendor's documented routes

    def __init__(self, *, seed: int, narrate: Narrate | None, faults: Faults | None, clock: Clock) -> None:
        self.lock = threading.RLock()  # guards all vendor state; handlers run under it
        self.clock = clock
        self.faults = faults or Faults()
        self.rng = random.Random(seed)  # ids and generated data
        self._fault_rng = random.Random(f"{seed}:faults")
        self._narrate = narrate
        self.router = Router()
        self.deliveries = WebhookDispatcher(lambda: self.faults, random.Random(f"{seed}:webhooks"), self.narrate)
        self._stats_lock = threading.Lock()
        self.requests = 0  # every API request received
        self.throttled = 0  # 429s served (real windows and injected)
        self.errors_injected = 0  # injected 5xx, including lost responses
        self.writes = 0  # POST/PUT/PATCH/DELETE that reached a handler
        self.unauthorized = 0  # 401s served: missing, wrong or revoked credentials
        self.calls_by_route: Counter[str] = Counter()
        self.contract = self._load_contract()
        # What the real API would have silently ignored (undeclared query parameters), per route: a connector that
        # relies on one of these is relying on something the vendor never does.
        self.ignored_params: Counter[str] = Counter()
        self.record_exchanges = False
        self.exchanges: deque[Exchange] = deque(maxlen=10_000)
        self.url = ""
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self, port: int = 0) -> str:
        server = _Server(("127.0.0.1", port), _RequestHandler)
        server.simulator = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, args=(SERVER_POLL_S,), name=f"{self.vendor}-sim", daemon=True
        )
        self._thread.start()
        self.deliveries.start()
        self.url = f"http://127.0.0.1:{server.server_address[1]}"
        return self.url

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        self.deliveries.stop()

    def set_faults(self, faults: Faults | None = None, **changes: Any) -> Faults:
        """Replace the faults, or change some fields: `sim.set_faults(error_rate=0.1)`."""
        known = {f.name for f in fields(Faults)}
        if set(changes) - known:
            raise TypeError(f"unknown fault(s): {sorted(set(changes) - known)}")
        self.faults = replace(faults or self.faults, **changes)
        return self.faults

    def wait_for_webhooks(self, timeout: float = 10.0) -> bool:
        return self.deliveries.wait_idle(timeout)

    def narrate(self, line: str) -> None:
        if self._narrate:
            self._narrate(line)

    def stats(self) -> dict[str, Any]:
        with self._stats_lock:
            return {
                "requests": self.requests,
                "throttled": self.throttled,
                "errors_injected": self.errors_injected,
                "writes": self.writes,
                "unauthorized": self.unauthorized,
                "calls_by_route": dict(self.calls_by_route),
                "webhooks_sent": self.deliveries.sent,
                "webhooks_failed": self.deliveries.failed,
                "webhooks_lost": self.deliveries.lost,
                "webhooks_duplicated": self.deliveries.duplicated,
            }

    def _load_contract(self) -> Contract | None:
        if self.contract_api is None or not (CONTRACTS_DIR / f"{self.contract_api}.json").exists():
            return None
        return Contract.load(self.contract_api)

    def _contract_refusal(self, request: Request, route: ContractRoute) -> Response | None:
        """Apply the vendor's contract to a routed request: drop what it ignores, refuse what it refuses."""
        assert self.contract is not None
        request.query, ignored = self.contract.split_query(route, request.query)
        if ignored:
            with self._stats_lock:
                for name in ignored:
                    self.ignored_params[f"{request.method} {route.path} ?{name}"] += 1
        if route.request_schema is None:
            return None
        body = self._contract_body(request, route)
        if body is None:
            return None  # not parseable: the handler answers the vendor's "invalid body" error
        refusal = self.contract.body_refusal(route, body)
        if refusal is None:
            return None
        status = self.contract.refusal_status
        return Response(status, self._error_body(request, status, refusal))

    @staticmethod
    def _contract_body(request: Request, route: ContractRoute) -> Any:
        if "form" in route.request_content_type:
            return dict(parse_qsl(request.body.decode("utf-8", "replace"), keep_blank_values=True))
        try:
            return json.loads(request.body) if request.body.strip() else {}
        except (json.JSONDecodeError, UnicodeDecodeError):
            return None

    # -- subclass hooks ----------------------------------------------------------------------------

    def _authenticate(self, request: Request) -> bool:
        raise NotImplementedError

    def _rate_limit(self, now: float) -> RateDecision:
        raise NotImplementedError

    def _injected_retry_after(self, now: float) -> str:
        raise NotImplementedError

    def _error_body(self, request: Request, status: int, message: str) -> Any:
        raise NotImplementedError

    def _throttle_body(self, request: Request) -> Any:
        raise NotImplementedError

    # -- pipeline ----------------------------------------------------------------------------------

    def _count(self, name: str) -> None:
        with self._stats_lock:
            setattr(self, name, getattr(self, name) + 1)

    def handle(self, request: Request) -> tuple[int, dict[str, str], bytes]:
        faults = self.faults
        self._count("requests")
        if faults.latency_s > 0:
            time.sleep(faults.latency_s)
        if not self._authenticate(request):
            self._count("unauthorized")
            return self._encode(Response(401, self._error_body(request, 401, "missing or invalid credentials")))
        matched = self.router.match(request.method, request.path)
        route_key = f"{request.method} {matched[0].template}" if matched else f"{request.method} <unknown>"
        with self._stats_lock:
            self.calls_by_route[route_key] += 1
        now = self.clock()
        with self.lock:
            decision = self._rate_limit(now)
        if not decision.allowed or self._fault_rng.random() < faults.throttle_rate:
            self._count("throttled")
            retry_after = decision.retry_after or self._injected_retry_after(now)
            headers = {**decision.headers, "Retry-After": retry_after}
            return self._encode(Response(429, self._throttle_body(request), headers))
        if self._fault_rng.random() < faults.error_rate:
            self._count("errors_injected")
            status = self._fault_rng.choice((500, 503))
            return self._encode(Response(status, self._error_body(request, status, "injected fault"), decision.headers))
        if matched is None:
            return self._encode(Response(404, self._error_body(request, 404, "no such route"), decision.headers))
        route, request.params = matched
        contract_route = self.contract.route(request.method, request.path) if self.contract else None
        refusal = self._contract_refusal(request, contract_route) if contract_route is not None else None
        if refusal is not None:
            return self._record(request, self._encode(refusal, decision.headers))
        if request.method in WRITE_METHODS:
            self._count("writes")
        with self.lock:
            try:
                response = route.handler(request)
            except ApiError as exc:
                response = Response(exc.status, self._error_body(request, exc.status, exc.message))
            except Exception as exc:  # a simulator bug: answer like a broken server, and say so
                self.narrate(f"simulator error on {request.method} {request.path}: {exc!r}")
                response = Response(500, self._error_body(request, 500, f"simulator error: {exc!r}"))
            status, headers, payload = self._encode(response, decision.headers)
        if request.method in WRITE_METHODS and status < 300 and self._fault_rng.random() < faults.lost_response_rate:
            self._count("errors_injected")
            return self._encode(Response(503, self._error_body(request, 503, "injected fault"), decision.headers))
        return self._record(request, (status, headers, payload))

    def _record(self, request: Request, answer: tuple[int, dict[str, str], bytes]) -> tuple[int, dict[str, str], bytes]:
        if self.record_exchanges:
            self.exchanges.append(Exchange(request.method, request.path, dict(request.query), answer[0], answer[2]))
        return answer

    @staticmethod
    def _encode(response: Response, base_headers: Mapping[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        payload = b"" if response.body is None else json.dumps(response.body).encode()
        return response.status, {**(base_headers or {}), **response.headers}, payload
