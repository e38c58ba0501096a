"""The whole local stack in this process: moto server, both simulators, the template's API, queues and functions.

`make run` starts the same `LocalStack` in a subprocess (tests/e2e/test_local_stack.py proves that path); here the
tests also hold the simulators' Python API, so they can act as a POS user or a shopper and then watch the change
travel the real path: webhook or poll -> queue -> worker -> vendor API.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from aws_lambda_powertools import Logger
from pos_ecom_sync.models.connection import Connection
from pos_ecom_sync.models.links import VariantLink
from pos_ecom_sync.queues import ChangePublisher
from pos_ecom_sync.state.order_store import OrderStore
from pos_ecom_sync.state.store import SyncStore
from pos_ecom_sync.stock.sync import request_outlet_change

from local_stack.demo import DEMO_CONNECTION_ID
from local_stack.functions import LocalFunction, current_function
from local_stack.rseries_stack import RSeriesLocalStack
from local_stack.simulators.ecom import EcomSimulator
from local_stack.simulators.rseries import RSeriesSimulator
from local_stack.simulators.xseries import XSeriesSimulator
from local_stack.stack import LocalStack, StackConfig
from tests.contract_recording import ContractRecorder
from tests.support import free_port

T = TypeVar("T")
COMMAND = Path(sys.executable).with_name("pos-ecom-sync")  # the venv's console script (pyproject [project.scripts])
Cli = Callable[..., tuple[int, Any]]


@dataclass
class LiveStack:
    stack: LocalStack
    connection_id: str = DEMO_CONNECTION_ID

    @property
    def pos(self) -> XSeriesSimulator:
        assert self.stack.pos is not None
        return self.stack.pos

    @property
    def ecom(self) -> EcomSimulator:
        assert self.stack.ecom is not None
        return self.stack.ecom

    @property
    def api_url(self) -> str:
        assert self.stack.api is not None
        return self.stack.api.url

    @property
    def session(self) -> Any:
        return self.stack.session

    def function(self, logical_id: str) -> LocalFunction:
        return self.stack.functions[logical_id]

    def sandbox(self, logical_id: str) -> LocalFunction:
        """A second warm sandbox of a function: Lambda runs concurrent invocations in separate sandboxes."""
        return LocalFunction(self.stack.functions[logical_id].spec)

    def _fire(self, logical_id: str) -> Any:
        timer = next(t for t in self.stack.timers if t.function.spec.logical_id == logical_id)
        return timer.fire()

    def poll(self) -> Any:
        """One run of the change poller, as its EventBridge schedule would start it."""
        return self._fire("ChangePollerFunction")

    def reconcile(self) -> Any:
        return self._fire("ReconcileFunction")

    def store(self) -> SyncStore:
        """The sync table, as the workers read it (connections, catalog states, links)."""
        return SyncStore(os.environ["TABLE_NAME"], resource=self.session.resource("dynamodb"))

    def connection(self) -> Connection:
        connection = self.store().get_connection(self.connection_id)
        assert connection is not None
        return connection

    def order_store(self) -> OrderStore:
        return OrderStore(os.environ["TABLE_NAME"], client=self.session.client("dynamodb"))

    def queue_idle(self, concern: str) -> bool:
        """Nothing waiting, in flight or delayed on a concern's queue ("statuses", "products", "stock", "orders"):
        every message sent to it so far has been handled."""
        names = [
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ]
        url = os.environ[f"{concern.upper()}_QUEUE_URL"]
        counts = self.session.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
        return all(int(counts.get(name, 0)) == 0 for name in names)

    def variants_in_stock(self, minimum: int = 2) -> list[dict[str, Any]]:
        """eCom variants with at least `minimum` in stock: what a shopper can order."""
        return [v for v in self.ecom.variants() if v.get("stockLevel", 0) >= minimum]

    def import_catalog(self) -> None:
        """The first poll imports the POS catalog; wait until eCom shows it with stock."""
        self.poll()
        self.wait_until(self.variants_in_stock, timeout=90, what="the catalog with stock in eCom")

    def wait_until(self, predicate: Callable[[], T], timeout: float = 30.0, what: str = "condition") -> T:
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                pytest.fail(f"timed out after {timeout:g}s waiting for: {what}")
            time.sleep(0.2)


class FunctionLogCapture(logging.Handler):
    """Every record emitted while a function runs, as the functions' JSON log handler writes it (message, extra
    fields and Powertools' keys such as the correlation id)."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []  # "<function> <logger> <JSON line>"
        self.entries: list[tuple[str, dict[str, Any]]] = []  # (function, JSON line parsed)

    def emit(self, record: logging.LogRecord) -> None:
        function = current_function()
        if function is None:
            return
        line = self.format(record)
        self.lines.append(f"{function} {record.name} {line}")
        self.entries.append((function, json.loads(line)))

    def correlation_ids(self, function: str) -> set[str]:
        return {str(e["correlation_id"]) for f, e in self.entries if f == function and e.get("correlation_id")}


@contextmanager
def capture_function_logs(level: int = logging.INFO) -> Iterator[FunctionLogCapture]:
    """Every log record a function emits at `level` or above (ours and the libraries'), while the block runs."""
    capture = FunctionLogCapture()
    # Powertools takes the service logger's first handler for its own: configure it (as the functions' first
    # import does) before adding the capture after it.
    service = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME", "pos-ecom-sync"))
    capture.setFormatter(service.registered_formatter)
    loggers = [logging.getLogger(), logging.getLogger(service.service)]
    level_before = loggers[1].level
    loggers[1].setLevel(level)  # the functions' own lines (the stack runs them at WARNING)
    for logger in loggers:
        logger.addHandler(capture)
    try:
        yield capture
    finally:
        loggers[1].setLevel(level_before)
        for logger in loggers:
            logger.removeHandler(capture)


@pytest.fixture(autouse=True)
def _conforms_to_vendor_contracts(vendor_contracts: ContractRecorder) -> ContractRecorder:
    """Every vendor request a test makes, and every simulator answer, must be what the vendors document."""
    return vendor_contracts


@contextlib.contextmanager
def _running(stack: LocalStack) -> Iterator[LocalStack]:
    """`stack` started for one test module, then stopped. The stack exports the AWS endpoint and the template's
    function environment: restored afterwards, so later in-process moto tests do not talk to a stopped server."""
    saved = dict(os.environ)
    from pos_ecom_sync import runtime

    runtime.reset()
    try:
        stack.start()
        yield stack
    finally:
        # Let in-flight invocations and webhook deliveries finish before the servers and environment go away.
        for worker in stack.pollers:
            worker.stop()
        for worker in stack.pollers:
            worker.thread.join(timeout=10)
        for simulator in (stack.pos, stack.ecom):
            if simulator is not None:
                simulator.wait_for_webhooks(timeout=5)
        stack.stop()
        os.environ.clear()
        os.environ.update(saved)
        runtime.reset()


def _e2e_config() -> StackConfig:
    return StackConfig(
        api_port=free_port(),
        pos_port=free_port(),
        ecom_port=free_port(),
        moto_port=free_port(),
        lambda_port=free_port(),
        schedule_seconds=3600.0,  # the tests fire the schedules themselves (.poll / .reconcile)
        families=2,
        variants_per_family=3,
        run_demo=False,
        # moto's backends live in this process for its whole run: each module's stack gets its own resource names.
        stack_name=f"e2e-{uuid.uuid4().hex[:8]}",
        # The CLI tests give the CLI this stack's outputs themselves; the repo's file belongs to `make run`, which
        # tests/e2e/test_local_stack.py starts on another worker meanwhile.
        outputs_file=None,
    )


@pytest.fixture(scope="module")
def live_stack() -> Iterator[LiveStack]:
    with _running(LocalStack(_e2e_config())) as stack:
        yield LiveStack(stack)


@pytest.fixture
def cli(live_stack: LiveStack, tmp_path: Path) -> Cli:
    """`pos-ecom-sync ...` against this stack as an operator runs it: the installed command, in a directory holding
    the stack's .local-stack/outputs.json (as `make run` writes it). Returns (exit code, parsed JSON with --json,
    else the text)."""
    (tmp_path / ".local-stack").mkdir()
    (tmp_path / ".local-stack" / "outputs.json").write_text(json.dumps(live_stack.stack.outputs()))

    def run(*argv: str, ok: bool = True) -> tuple[int, Any]:
        # A separate process: this one's stdout also carries the stack's narration and log lines.
        done = subprocess.run([str(COMMAND), *argv], cwd=tmp_path, capture_output=True, text=True, timeout=300)
        if ok:
            assert done.returncode == 0, done.stderr
        output = json.loads(done.stdout) if "--json" in argv and done.returncode == 0 else done.stdout + done.stderr
        return done.returncode, output

    return run


@dataclass
class RSeriesLiveStack(LiveStack):
    """`live_stack` with an R-Series POS (`make run RUN_ARGS="--pos r-series"`): `.rseries` is the simulator, the
    connection's `pos_profile` is "r-series", and every POS change arrives by `.poll()` (R-Series has no webhooks)."""

    @property
    def rseries(self) -> RSeriesSimulator:
        assert isinstance(self.stack, RSeriesLocalStack) and self.stack.rseries is not None
        return self.stack.rseries

    @property
    def rseries_stack(self) -> RSeriesLocalStack:
        assert isinstance(self.stack, RSeriesLocalStack)
        return self.stack

    def stocked_item_ids(self) -> list[int]:
        return [int(item["itemID"]) for item in self.rseries_stack.stocked_items()]

    def ecom_level(self, item_id: int) -> int | None:
        return self.rseries_stack.ecom_level(item_id)

    def pos_total(self, item_id: int) -> int:
        return self.rseries_stack.pos_total(item_id, self.connection().connected_outlet_ids)

    def variant_link(self, item_id: int | str) -> VariantLink:
        """The eCom variant product sync linked to this R-Series item (the test fails when it has none)."""
        link = self.store().variant_link(self.connection_id, pos_product_id=str(item_id))
        assert link is not None, f"item {item_id} has no eCom variant"
        return link

    def set_outlets(self, shops: list[str], primary: str) -> None:
        """What `pos-ecom-sync connections set-outlets demo --outlets ... --primary-outlet ...` does: save, then
        queue the recomputation of every eCom total."""
        publisher = ChangePublisher(
            lambda concern: os.environ[f"{concern.upper()}_QUEUE_URL"], client=self.session.client("sqs")
        )
        request_outlet_change(self.store(), publisher, self.connection_id, shops, primary)

    def sales_of(self, order: dict[str, Any]) -> list[dict[str, Any]]:
        """The R-Series sales carrying this eCom order's reference (`referenceNumber` "ecom-<order id>")."""
        reference = f"ecom-{order['id']}"
        return [sale for sale in self.rseries.sales() if sale.get("referenceNumber") == reference]

    def imported_sale(self, order: dict[str, Any], timeout: float = 60.0) -> dict[str, Any]:
        """Wait until the stack imported the order (the order ledger names its sale); its one R-Series sale."""

        def sale_id() -> str | None:
            record = self.order_store().get_order(self.connection_id, int(order["id"]))
            return record.sale_id if record is not None and record.status == "imported" else None

        found = self.wait_until(sale_id, timeout=timeout, what=f"order {order['number']} imported as an R-Series sale")
        sales = self.sales_of(order)
        assert [sale["saleID"] for sale in sales] == [found], f"order {order['number']}: one sale, the ledger's"
        return sales[0]

    def import_catalog(self) -> None:
        """The first poll imports the R-Series catalog; wait until every stocked item is in eCom at its POS total."""
        self.poll()
        self.wait_until(
            lambda: all(self.ecom_level(i) == self.pos_total(i) for i in self.stocked_item_ids()),
            timeout=120,
            what="every R-Series item in eCom at its POS total",
        )


@pytest.fixture(scope="module")
def rseries_stack() -> Iterator[RSeriesLiveStack]:
    """The local stack with the R-Series simulator and an R-Series demo connection (OAuth app + merchant grant)."""
    with _running(RSeriesLocalStack(_e2e_config())) as stack:
        yield RSeriesLiveStack(stack)
