"""A recording transport under every vendor call a test makes, checked against the vendors' contracts.

While a test runs, each simulator that starts is registered with its contract, records its answers, and every httpx
request to it (from our connectors, through the real code paths) is captured before it leaves the process. At the end
the requests must be ones the vendor documents (route, query parameters, body) and the answers must have the
documented statuses and shapes. A connector that sends an undeclared filter, or a simulator that serves an
undocumented field, fails the test that exercised it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from local_stack import contract as contracts
from local_stack.contract import Violation
from local_stack.simulators.common import Exchange, VendorSimulator


@dataclass(frozen=True)
class SentRequest:
    api: str
    method: str
    path: str
    query: dict[str, str]
    body: Any


def _body(request: httpx.Request) -> Any:
    content = request.content
    if not content:
        return None
    if "form" in request.headers.get("content-type", ""):
        return dict(parse_qsl(content.decode("utf-8", "replace"), keep_blank_values=True))
    try:
        return json.loads(content)
    except ValueError:
        return content.decode("utf-8", "replace")


# Every simulator started in this process, by origin, and the recorders of the tests now running.
_SIMULATORS: dict[str, VendorSimulator] = {}
_RECORDERS: list[ContractRecorder] = []


@dataclass
class ContractRecorder:
    """The vendor requests sent while it is active, and the answers the simulators gave meanwhile."""

    sent: list[SentRequest] = field(default_factory=list)
    answered: list[tuple[str, Exchange]] = field(default_factory=list)

    def capture(self, request: httpx.Request) -> None:
        origin = f"{request.url.scheme}://{request.url.host}:{request.url.port}"
        simulator = _SIMULATORS.get(origin)
        if simulator is None or simulator.contract_api is None:
            return
        query = dict(parse_qsl(urlsplit(str(request.url)).query, keep_blank_values=True))
        self.sent.append(SentRequest(simulator.contract_api, request.method, request.url.path, query, _body(request)))

    def collect_answers(self, simulators: list[VendorSimulator] | None = None) -> None:
        for simulator in _SIMULATORS.values() if simulators is None else simulators:
            assert simulator.contract_api is not None
            self.answered.extend((simulator.contract_api, exchange) for exchange in simulator.exchanges)
            simulator.exchanges.clear()

    def request_violations(self) -> list[Violation]:
        found: list[Violation] = []
        for sent in self.sent:
            found.extend(contracts.load(sent.api).check_request(sent.method, sent.path, sent.query, sent.body))
        return _unique(found)

    def answer_violations(self) -> list[Violation]:
        self.collect_answers()
        found: list[Violation] = []
        for api, exchange in self.answered:
            try:
                body = json.loads(exchange.body) if exchange.body else None
            except ValueError:
                body = exchange.body.decode("utf-8", "replace")
            found.extend(contracts.load(api).check_answer(exchange.method, exchange.path, exchange.status, body))
        return _unique(found)


def _unique(violations: list[Violation]) -> list[Violation]:
    return list(dict.fromkeys(violations))


@pytest.fixture(scope="session", autouse=True)
def _vendor_request_hooks() -> Iterator[None]:
    """Process-wide: simulators register when they start; every httpx request goes past the active recorders."""
    original_start, original_stop = VendorSimulator.start, VendorSimulator.stop
    original_send = httpx.HTTPTransport.handle_request

    def start(self: VendorSimulator, port: int = 0) -> str:
        url = original_start(self, port)
        if self.contract is not None:
            self.record_exchanges = True
            _SIMULATORS[url] = self
        return url

    def stop(self: VendorSimulator) -> None:
        # Its port is free for anything else now (e.g. a later test's webhook API): it is no vendor any more. What it
        # answered still counts for the tests recording now.
        origins = [origin for origin, simulator in _SIMULATORS.items() if simulator is self]
        for recorder in list(_RECORDERS) if origins else []:
            recorder.collect_answers([self])
        for origin in origins:
            del _SIMULATORS[origin]
        original_stop(self)

    def handle_request(self: httpx.HTTPTransport, request: httpx.Request) -> httpx.Response:
        for recorder in list(_RECORDERS):
            recorder.capture(request)
        return original_send(self, request)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(VendorSimulator, "start", start)
        patch.setattr(VendorSimulator, "stop", stop)
        patch.setattr(httpx.HTTPTransport, "handle_request", handle_request)
        yield


@pytest.fixture
def contract_recorder() -> Iterator[ContractRecorder]:
    """Record the vendor requests and answers of one test; the caller decides what to assert."""
    for simulator in _SIMULATORS.values():
        simulator.exchanges.clear()
    recorder = ContractRecorder()
    _RECORDERS.append(recorder)
    try:
        yield recorder
    finally:
        _RECORDERS.remove(recorder)
        recorder.collect_answers()


def assert_conforms(recorder: ContractRecorder, *, requests: bool = True) -> None:
    """Fail with every request (unless `requests` is off) and answer the vendors' contracts do not allow."""
    problems = [f"request  {v}" for v in recorder.request_violations()] if requests else []
    problems += [f"answer   {v}" for v in recorder.answer_violations()]
    assert not problems, "vendor contract violations:\n" + "\n".join(problems)


@pytest.fixture
def vendor_contracts(request: pytest.FixtureRequest, contract_recorder: ContractRecorder) -> Iterator[ContractRecorder]:
    """Autouse in the integration and end-to-end tiers: the test's vendor traffic must conform to the contracts.
    A test marked `vendor_contract_exempt` sends requests that break the contract on purpose (to prove a simulator
    refuses or ignores them); the simulators' answers to it must still be the documented ones."""
    yield contract_recorder
    assert_conforms(contract_recorder, requests=request.node.get_closest_marker("vendor_contract_exempt") is None)
