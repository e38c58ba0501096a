"""change_poller against the X-Series and eCom simulators and moto: nothing lost, nothing skipped."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from pos_ecom_sync import runtime
from pos_ecom_sync.connectors.ecom import EcomClient
from pos_ecom_sync.intake.poller import ChangePoller
from pos_ecom_sync.models.connection import Connection
from pos_ecom_sync.models.feeds import Cursor
from pos_ecom_sync.profiles.xseries.client import ChangePage, XSeriesClient
from pos_ecom_sync.profiles.xseries.feeds import XSeriesFeeds
from pos_ecom_sync.queues import ChangePublisher
from pos_ecom_sync.ratelimit import InMemoryRateBudget
from pos_ecom_sync.state.parked_store import ParkedStore
from pos_ecom_sync.state.store import SyncStore

from local_stack.demo import DEMO_SECRETS
from local_stack.lambda_events import LambdaContext, scheduled_event
from local_stack.simulators.ecom import EcomSimulator
from local_stack.simulators.xseries import XSeriesSimulator
from tests.integration.conftest import Deployment
from tests.support import drain_queue


@dataclass
class Vendors:
    pos: XSeriesSimulator
    ecom: EcomSimulator
    connection: Connection


@pytest.fixture
def vendors(deployment: Deployment) -> Iterator[Vendors]:
    pos = XSeriesSimulator(token=DEMO_SECRETS["pos_access_token"], seed=1)
    ecom = EcomSimulator(
        api_key=DEMO_SECRETS["ecom_api_key"],
        api_secret=DEMO_SECRETS["ecom_api_secret"],
        webhook_secret=DEMO_SECRETS["ecom_webhook_secret"],
        seed=1,
    )
    pos_url, ecom_url = pos.start(), ecom.start()
    connection = Connection(connection_id="shop", pos_base_url=pos_url, ecom_base_url=ecom_url)
    deployment.add_connection(connection, DEMO_SECRETS)
    yield Vendors(pos, ecom, connection)
    pos.stop()
    ecom.stop()


class QueueCollector:
    """Drains queues while the poller runs, as workers would (moto's send cost grows with queue depth)."""

    def __init__(self, deployment: Deployment, concerns: tuple[str, ...]) -> None:
        self.deployment = deployment
        self.urls = [deployment.queue_url(c) for c in concerns]
        self.bodies: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> QueueCollector:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._collect()

    def _collect(self) -> None:
        for url in self.urls:
            self.bodies.extend(json.loads(m["Body"]) for m in drain_queue(self.deployment.sqs, url))

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self._collect()

    def ids(self, entity: str) -> set[str]:
        return {b["entity_id"] for b in self.bodies if b["entity"] == entity}

    def products(self) -> list[dict[str, Any]]:
        return [b for b in self.bodies if b["entity"] == "product"]


def _family(row: dict[str, Any]) -> str:
    """A product row's family key: its parent's id, or its own (the products messages' entity id and group)."""
    return str(row["variant_parent_id"] or row["id"])


def _families(pos: XSeriesSimulator) -> set[str]:
    return {_family(p) for p in pos.products()}


def _clients(connection: Connection) -> tuple[XSeriesClient, EcomClient]:
    pos = XSeriesClient(connection.pos_base_url, DEMO_SECRETS["pos_access_token"], InMemoryRateBudget())
    ecom = EcomClient(
        connection.ecom_base_url, DEMO_SECRETS["ecom_api_key"], DEMO_SECRETS["ecom_api_secret"], InMemoryRateBudget()
    )
    return pos, ecom


def _poller(deployment: Deployment, store: Any = None, page_size: int = 200) -> ChangePoller:
    publisher = ChangePublisher(deployment.queue_url, client=deployment.sqs)
    return ChangePoller(store or deployment.store, publisher, page_size=page_size)


def _version_of_last_product(pos: XSeriesSimulator) -> str:
    return str(max(p["version"] for p in pos.products()))


@pytest.mark.slow
def test_one_poll_enqueues_1000_pos_changes(deployment: Deployment, vendors: Vendors) -> None:
    vendors.pos.seed_catalog(250, 3, seed=3)  # 250 families of a parent + 3 variants: 1,000 product rows
    vendors.pos.seed_catalog(750, 0, seed=13)  # and 750 simple products: 1,000 families in 1,750 rows
    assert len(vendors.pos.products()) == 1750 and len(_families(vendors.pos)) == 1000

    with QueueCollector(deployment, ("products",)) as queued:
        from functions.change_poller import app

        result = app.lambda_handler(
            scheduled_event("poll"), LambdaContext(function_name="change_poller", timeout_s=120)
        )

    # One message per family and page: a family split by a page boundary (200 rows) gets one on each side.
    assert queued.ids("product") == _families(vendors.pos)
    pages = -(-1750 // 200)
    assert 1000 <= len(queued.products()) <= 1000 + pages - 1
    assert result["connections"]["shop"]["pos:products"]["queued"] == len(queued.products())
    assert deployment.store.get_cursor("shop", "pos:products").value == _version_of_last_product(vendors.pos)


class Killed(BaseException):
    """Stands for the process dying (not an exception any code would catch)."""


class DiesOnFirstCursorWrite:
    def __init__(self, store: SyncStore) -> None:
        self.store = store
        self.died = False

    def get_cursor(self, connection_id: str, feed: str) -> Cursor:
        return self.store.get_cursor(connection_id, feed)

    def advance_cursor(self, connection_id: str, cursor: Cursor, new_value: str) -> bool:
        if not self.died and cursor.feed == "pos:products":
            self.died = True
            raise Killed
        return self.store.advance_cursor(connection_id, cursor, new_value)


def test_poller_killed_between_enqueue_and_cursor_write_loses_and_skips_nothing(
    deployment: Deployment, vendors: Vendors
) -> None:
    vendors.pos.seed_catalog(10, 2, seed=4)  # 10 families, 30 rows, polled in pages of 10
    families = _families(vendors.pos)
    pos, ecom = _clients(vendors.connection)
    dying = DiesOnFirstCursorWrite(deployment.store)

    with QueueCollector(deployment, ("products", "stock", "orders", "statuses")) as first, pytest.raises(Killed):
        _poller(deployment, store=dying, page_size=10).poll(vendors.connection, XSeriesFeeds(pos), ecom)
    # The feed is in version order: its first page holds 3 whole families and the 4th one's parent.
    first_page = sorted(vendors.pos.products(), key=lambda r: r["version"])[:10]
    assert first.ids("product") == {_family(r) for r in first_page}  # the first page was queued ...
    assert len(first.products()) == 4
    assert deployment.store.get_cursor("shop", "pos:products").value is None  # ... but the cursor never moved

    with QueueCollector(deployment, ("products", "stock", "orders", "statuses")) as second:
        _poller(deployment, store=dying, page_size=10).poll(vendors.connection, XSeriesFeeds(pos), ecom)

    assert first.ids("product") | second.ids("product") == families
    assert deployment.store.get_cursor("shop", "pos:products").value == _version_of_last_product(vendors.pos)

    # A later change is picked up alone: the sweep resumes exactly after the cursor.
    changed = next(r for r in vendors.pos.products() if r["variant_parent_id"])
    vendors.pos.update_product(changed["id"], name="Renamed")
    with QueueCollector(deployment, ("products",)) as third:
        _poller(deployment, page_size=10).poll(vendors.connection, XSeriesFeeds(pos), ecom)
    [message] = third.products()
    assert message["entity_id"] == message["group_key"] == _family(changed)
    assert message["payload"]["id"] == changed["id"]


class RecordingStore:
    """Records every successful cursor move so the test can check they form one unbroken chain."""

    def __init__(self, store: SyncStore, moves: list[tuple[str | None, str]], lock: threading.Lock) -> None:
        self.store, self.moves, self.lock = store, moves, lock

    def get_cursor(self, connection_id: str, feed: str) -> Cursor:
        return self.store.get_cursor(connection_id, feed)

    def advance_cursor(self, connection_id: str, cursor: Cursor, new_value: str) -> bool:
        moved = self.store.advance_cursor(connection_id, cursor, new_value)
        if moved and cursor.feed == "pos:products":
            with self.lock:
                self.moves.append((cursor.value, new_value))
        return moved


def test_two_concurrent_pollers_never_skip_or_double_advance(deployment: Deployment, vendors: Vendors) -> None:
    vendors.pos.seed_catalog(40, 4, seed=5)  # 200 rows in pages of 20
    moves: list[tuple[str | None, str]] = []
    lock = threading.Lock()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            pos, ecom = _clients(vendors.connection)
            store = RecordingStore(deployment.store, moves, lock)
            for _ in range(3):  # each poller keeps polling, like consecutive schedule runs
                _poller(deployment, store=store, page_size=20).poll(vendors.connection, XSeriesFeeds(pos), ecom)
        except BaseException as exc:
            errors.append(exc)

    with QueueCollector(deployment, ("products", "stock", "orders", "statuses")) as queued:
        threads = [threading.Thread(target=run) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    assert not errors
    assert queued.ids("product") == _families(vendors.pos)
    starts = [old for old, _ in moves]
    assert len(starts) == len(set(starts)), "two pollers advanced from the same cursor value"
    chain = {old: new for old, new in moves}
    value, walked = None, 0
    while value in chain:
        value, walked = chain[value], walked + 1
    assert walked == len(moves) and value == _version_of_last_product(vendors.pos)


def test_ecom_orders_are_swept_and_a_later_update_is_found_again(deployment: Deployment, vendors: Vendors) -> None:
    vendors.pos.seed_catalog(2, 2, seed=6)
    first = vendors.ecom.place_order(lines=[], email="a@example.com")
    second = vendors.ecom.place_order(lines=[], email="b@example.com")
    pos, ecom = _clients(vendors.connection)

    with QueueCollector(deployment, ("orders",)) as queued:
        _poller(deployment).poll(vendors.connection, XSeriesFeeds(pos), ecom)
    assert queued.ids("order") == {str(first["id"]), str(second["id"])}
    cursor = deployment.store.get_cursor("shop", "ecom:orders").value
    assert cursor is not None

    vendors.ecom.update_order_status(first["id"], payment_status="cancelled")
    with QueueCollector(deployment, ("orders",)) as again:
        _poller(deployment).poll(vendors.connection, XSeriesFeeds(pos), ecom)
    assert str(first["id"]) in again.ids("order")


def test_runtime_builds_real_clients_for_a_connection(deployment: Deployment, vendors: Vendors) -> None:
    runtime.reset()
    pos = runtime.pos_client(vendors.connection)
    assert pos.list_registers()


class WithUnreadableRows:
    """The POS client, with rows no handler can take added to the first products page (a vendor answer gone wrong)."""

    def __init__(self, pos: XSeriesClient, rows: list[dict[str, Any]]) -> None:
        self.pos, self.rows = pos, rows

    def list_changes(
        self, resource: str, after: int | None, page_size: int = 200, include_deleted: bool = True
    ) -> ChangePage:
        page = self.pos.list_changes(resource, after, page_size, include_deleted)
        if resource == "products" and after is None:
            return ChangePage(page.items + self.rows, page.max_version)
        return page

    def list_price_book_product_changes(self, after: int | None, page_size: int = 200) -> ChangePage:
        return self.pos.list_price_book_product_changes(after, page_size)


def test_a_300_kb_description_and_unreadable_rows_never_stall_the_feed_and_are_parked_once(
    deployment: Deployment, vendors: Vendors
) -> None:
    vendors.pos.seed_catalog(3, 2, seed=8)
    parent = next(p for p in vendors.pos.products() if p["has_variants"])
    vendors.pos.update_family(parent["id"], description="x" * 300_000)  # every row of the family, 300 KB each
    renamed = next(p for p in vendors.pos.products() if _family(p) != parent["id"])
    vendors.pos.update_product(renamed["id"], name="Poster \udcff")  # sent JSON-escaped, as "\\udcff"
    pos, ecom = _clients(vendors.connection)
    unreadable = [{"id": None, "version": 1}, {"id": "p-\udcff", "version": 2}, {"id": "p-3", "version": "²"}]
    parked = ParkedStore(deployment.env["TABLE_NAME"], resource=deployment.session.resource("dynamodb"))
    publisher = ChangePublisher(deployment.queue_url, client=deployment.sqs)
    poller = ChangePoller(deployment.store, publisher, parked=parked)

    with QueueCollector(deployment, ("products", "stock", "orders", "statuses")) as queued:
        report = poller.poll(vendors.connection, XSeriesFeeds(WithUnreadableRows(pos, unreadable)), ecom)

    # Every family was queued (ids, not rows: no page is near an SQS batch limit) and the cursor is past them all.
    assert queued.ids("product") == _families(vendors.pos)
    assert max(len(json.dumps(b)) for b in queued.bodies) < 2_000
    assert deployment.store.get_cursor("shop", "pos:products").value == _version_of_last_product(vendors.pos)
    # The unreadable rows: skipped with their reasons, parked in the connection's partition for the operator.
    listed = {(p.feed, p.row_id, p.reason, p.seen) for p in parked.list("shop")}
    assert listed == {
        ("pos:products", "None", "no id", 1),
        ("pos:products", "p-\\udcff", "id holds character U+DCFF, which no id may hold", 1),
        ("pos:products", "p-3", "version is not an integer: \\xb2", 1),
    }
    assert len(report.skipped) == 3
    first = parked.list("shop")[0]
    assert first.first_seen == first.last_seen and first.expires_at - first.last_seen == 30 * 86_400
    assert parked.get("shop", first.parked_key) == first

    # The cursor moved past them: the next poll neither reads nor parks them again.
    with QueueCollector(deployment, ("products",)) as again:
        poller.poll(vendors.connection, XSeriesFeeds(WithUnreadableRows(pos, unreadable)), ecom)
    assert again.products() == [] and {p.seen for p in parked.list("shop")} == {1}


def test_a_connection_that_crashes_the_poller_is_a_failure_of_its_own_and_the_next_connection_is_polled(
    deployment: Deployment, vendors: Vendors, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pos_ecom_sync import runtime

    from functions.change_poller import app

    vendors.pos.seed_catalog(2, 1, seed=9)

    def clients(connection: Connection) -> tuple[Any, Any]:
        if connection.connection_id == "demo":  # polled first: connections come in id order
            raise UnicodeEncodeError("utf-8", "\udcff", 0, 1, "surrogates not allowed")
        pos = WithUnreadableRows(runtime.pos_client(connection), [{"id": None, "version": 1}])
        return XSeriesFeeds(pos), runtime.ecom_client(connection)

    monkeypatch.setattr(app, "_clients", clients)
    with QueueCollector(deployment, ("products",)) as queued:
        result = app.lambda_handler(scheduled_event("poll"), LambdaContext(function_name="change_poller", timeout_s=60))

    assert list(result["failures"]) == ["demo"] and result["failures"]["demo"].startswith("UnicodeEncodeError: ")
    assert queued.ids("product") == _families(vendors.pos)
    assert deployment.store.get_cursor("shop", "pos:products").value == _version_of_last_product(vendors.pos)
    # The handler's poller parks what it skips (runtime wiring): the operator lists it.
    assert result["connections"]["shop"]["pos:products"]["skipped"] == 1
    parked = ParkedStore(deployment.env["TABLE_NAME"], resource=deployment.session.resource("dynamodb"))
    assert [(p.feed, p.reason) for p in parked.list("shop")] == [("pos:products", "no id")]
