"""R-Series refunds of imported online sales credit the eCom order, as X-Series returns do, through the real path:
a refund made at the till (`POST Sale/{id}/refund.json` in the R-Series simulator, KVH sale-refund.md) -> the
change_poller's Sale feed -> statuses queue -> status_sync (the R-Series profile reads the refund, then its parent
lines' sale) -> eCom simulator's credit. Orders are imported by `runtime.order_importer` first; AWS is moto.

The refund's undocumented sides run both ways through simulator switches: whether it copies the original's
referenceNumber, and whether it moves the original sale's updatetime (contracts/rseries.json `unverified`)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from pos_ecom_sync import runtime
from pos_ecom_sync.connectors.ecom import EcomClient
from pos_ecom_sync.intake.poller import ChangePoller
from pos_ecom_sync.models.connection import Connection
from pos_ecom_sync.profiles.rseries.feeds import cursor_at
from pos_ecom_sync.queues import ChangePublisher
from pos_ecom_sync.ratelimit import InMemoryRateBudget
from pos_ecom_sync.state.status_store import StatusStore

from local_stack.demo import DEMO_SECRETS
from local_stack.event_sources import SqsPoller
from local_stack.functions import LocalFunction
from local_stack.simulators.ecom import EcomSimulator
from local_stack.simulators.rseries import RSeriesSimulator
from tests.integration.conftest import Deployment
from tests.integration.test_rseries_client import START
from tests.integration.test_rseries_orders import CONNECTION, SHOP_A, SHOP_B, lines_of, rseries_shop
from tests.support import RunningClock, drain_queue

SALE_LINES = "GET /API/V3/Account/{accountID}/SaleLine.json"


@dataclass
class RefundRig:
    deployment: Deployment
    pos: RSeriesSimulator
    ecom: EcomSimulator
    clock: RunningClock
    items: dict[str, int]  # eCom variant sku -> R-Series itemID
    worker: SqsPoller

    @property
    def connection(self) -> Connection:
        found = self.deployment.store.get_connection(CONNECTION)
        assert found is not None
        return found

    def variant(self, n: int) -> dict[str, Any]:
        return sorted(self.ecom.variants(), key=lambda v: v["sku"])[n]

    def online_sale(self, *quantities: int) -> tuple[dict[str, Any], dict[str, Any]]:
        """A paid online order of variants 0, 1, ... in these quantities, imported as a completed R-Series sale and
        settled (the import's own Sale change polled and found in step); (eCom order, R-Series sale)."""
        lines = [{"variant_id": self.variant(n)["id"], "quantity": q} for n, q in enumerate(quantities)]
        order = self.ecom.place_order(lines, "mira.okafor@example.com", allow_backorder=True)
        result = runtime.order_importer(self.connection).import_order(order["id"])
        assert result.outcome == "imported", result.held_reason
        [sale] = [s for s in self.pos.sales() if s["referenceNumber"] == f"ecom-{order['id']}"]
        assert sale["completed"] == "true"
        self.sync()
        self.clock.sleep(2)  # stamps are whole seconds: what happens next is newer
        return order, sale

    def line_of(self, sale: dict[str, Any], n: int) -> dict[str, Any]:
        """The sale's line of variant n."""
        item = str(self.items[self.variant(n)["sku"]])
        [line] = [li for li in lines_of(sale) if li["itemID"] == item]
        return line

    def sync(self) -> int:
        """One change_poller sweep (the R-Series feeds and eCom's order sweep), then the statuses queue drained
        through status_sync; the number of status messages handled. Other concerns' messages are dropped."""
        ecom = EcomClient(
            self.ecom.url, DEMO_SECRETS["ecom_api_key"], DEMO_SECRETS["ecom_api_secret"], InMemoryRateBudget()
        )
        publisher = ChangePublisher(self.deployment.queue_url, client=self.deployment.sqs)
        ChangePoller(self.deployment.store, publisher).poll(
            self.connection, runtime.pos_change_feeds(self.connection), ecom
        )
        for concern in ("products", "stock", "orders"):
            drain_queue(self.deployment.sqs, self.deployment.queue_url(concern))
        handled = 0
        for _ in range(50):
            done = self.worker.poll_once(wait_seconds=0)
            if not done:
                return handled
            handled += done
        raise AssertionError("statuses queue did not drain")

    def refunded(self, order: dict[str, Any]) -> dict[str, int]:
        """eCom order line sku -> quantityRefunded."""
        return {p["sku"]: p["quantityRefunded"] for p in self.ecom.order_products(order["id"])}

    def credits(self) -> int:
        return sum(n for route, n in self.ecom.calls_by_route.items() if route.endswith("/credit.json"))

    def history(self, order: dict[str, Any]) -> list[str]:
        store = StatusStore(self.deployment.env["TABLE_NAME"], client=self.deployment.session.client("dynamodb"))
        ledger = store.get(CONNECTION, order["id"])
        return [f"{h['kind']}: {h['detail']}" for h in ledger.history] if ledger is not None else []

    def dead_letters(self) -> list[dict[str, Any]]:
        url = self.deployment.queue_url("statuses").replace("-statuses.fifo", "-statuses-dlq.fifo")
        return drain_queue(self.deployment.sqs, url)


@pytest.fixture
def switches() -> dict[str, Any]:
    """The R-Series simulator's answers to the refund's undocumented sides (default: neither)."""
    return {}


@pytest.fixture
def rig(deployment: Deployment, switches: dict[str, Any]) -> Iterator[RefundRig]:
    clock = RunningClock(START)
    pos = RSeriesSimulator(clock=clock, seed=3, shops=2, registers=2, rate_limit=False, **switches)
    with rseries_shop(deployment, pos) as (ecom, items, _):
        subscription = next(s for s in deployment.resources.subscriptions if s.function == "StatusSyncFunction")
        function = LocalFunction(deployment.resources.functions["StatusSyncFunction"])
        worker = SqsPoller(deployment.sqs, subscription, function, narrate=lambda line: None)
        yield RefundRig(deployment, pos, ecom, clock, items, worker)


@pytest.mark.parametrize(
    "switches",
    [{}, {"refund_copies_reference": True}, {"refund_touches_original": True}],
    ids=["plain", "refund-copies-reference", "refund-touches-original"],
)
def test_a_full_refund_of_an_imported_sale_credits_every_item_on_the_ecom_order(
    rig: RefundRig, switches: dict[str, Any]
) -> None:
    order, sale = rig.online_sale(2, 1)
    tee, cap = rig.variant(0), rig.variant(1)
    item = rig.items[tee["sku"]]
    assert rig.pos.qoh_of(item, SHOP_A) == 3

    refund = rig.pos.refund_sale(int(sale["saleID"]))  # Sales history > Refund, the whole sale, at the till
    rig.sync()

    assert rig.refunded(order) == {tee["sku"]: 2, cap["sku"]: 1}
    assert rig.credits() == 1
    assert rig.pos.qoh_of(item, SHOP_A) == 5  # back in stock by the refund itself, once
    assert any(h.startswith("applied: credit 3 item") for h in rig.history(order))
    assert rig.pos.calls_by_route[SALE_LINES] == 1  # the refund's parent lines, read once
    # Each switch took: the refund carries the order's reference, or the original sale was stamped anew.
    copied = f"ecom-{order['id']}" if switches.get("refund_copies_reference") else ""
    assert refund["referenceNumber"] == copied
    [original] = [s for s in rig.pos.sales() if s["saleID"] == sale["saleID"]]
    assert (original["updatetime"] != sale["updatetime"]) == bool(switches.get("refund_touches_original"))
    assert rig.dead_letters() == []


def test_a_partial_refund_credits_what_it_took_back_and_a_second_one_adds_the_rest(rig: RefundRig) -> None:
    order, sale = rig.online_sale(2, 1)
    tee, cap = rig.variant(0), rig.variant(1)

    rig.pos.refund_sale(int(sale["saleID"]), [(int(rig.line_of(sale, 0)["saleLineID"]), 1)])
    rig.sync()
    assert rig.refunded(order) == {tee["sku"]: 1, cap["sku"]: 0}

    rig.clock.sleep(2)
    rig.pos.refund_sale(int(sale["saleID"]), [(int(rig.line_of(sale, 1)["saleLineID"]), 1)])
    rig.sync()
    assert rig.refunded(order) == {tee["sku"]: 1, cap["sku"]: 1}  # the first refund's item is not credited again
    assert rig.credits() == 2
    assert rig.dead_letters() == []


def test_an_open_refund_credits_nothing_until_it_is_completed_at_the_till(rig: RefundRig) -> None:
    order, sale = rig.online_sale(1)
    tee = rig.variant(0)

    refund = rig.pos.refund_sale(int(sale["saleID"]), completed=False)
    rig.sync()
    assert rig.refunded(order) == {tee["sku"]: 0}
    assert any("parked, not completed" in h for h in rig.history(order))

    rig.clock.sleep(2)
    completed = httpx.put(
        f"{rig.pos.api_base}/Sale/{refund['saleID']}.json",
        json={"completed": "true"},
        headers={"Authorization": f"Bearer {rig.pos.issue_tokens()['access_token']}"},
    )
    assert completed.status_code == 200, completed.text
    rig.sync()
    assert rig.refunded(order) == {tee["sku"]: 1}
    assert rig.dead_letters() == []


def test_a_refund_of_an_in_store_sale_changes_nothing_in_ecom(rig: RefundRig) -> None:
    order, _ = rig.online_sale(1)  # an online order of the same item exists: a wrong match would credit it
    item = rig.items[rig.variant(0)["sku"]]
    till = rig.pos.create_sale([(item, 1)], shop_id=SHOP_A, reference_number="till-7", reference_number_source="Till")
    rig.sync()
    rig.clock.sleep(2)
    ecom_writes = rig.ecom.stats()["writes"]

    rig.pos.refund_sale(int(till["saleID"]))
    assert rig.sync() >= 1  # the refund's change was handled ...

    assert rig.ecom.stats()["writes"] == ecom_writes  # ... and wrote nothing to eCom
    assert rig.refunded(order) == {rig.variant(0)["sku"]: 0}
    assert rig.dead_letters() == []


def test_the_same_refund_polled_twice_credits_once(rig: RefundRig) -> None:
    order, sale = rig.online_sale(2)
    tee = rig.variant(0)
    since = int(rig.clock())
    rig.pos.refund_sale(int(sale["saleID"]))
    rig.sync()
    assert rig.refunded(order) == {tee["sku"]: 2}

    # The Sale feed's cursor put back before the refund (a poller that died before advancing it): read again.
    store = rig.deployment.store
    assert store.advance_cursor(CONNECTION, store.get_cursor(CONNECTION, "pos:Sale"), cursor_at(since - 1))
    assert rig.sync() >= 1

    assert rig.refunded(order) == {tee["sku"]: 2}
    assert rig.credits() == 1
    assert rig.pos.calls_by_route[SALE_LINES] == 1  # the second read of the refund found its parents cached
    assert rig.dead_letters() == []


@pytest.mark.vendor_contract_exempt  # a body without SalePayments, on purpose: the contract refuses it
def test_the_refund_route_takes_back_at_most_what_each_line_sold_and_restocks_the_refunds_shop(
    rig: RefundRig, request: pytest.FixtureRequest
) -> None:
    """`POST Sale/{id}/refund.json` as KVH sale-refund.md documents it (the simulator the tests above drive)."""
    _, sale = rig.online_sale(2)
    line = rig.line_of(sale, 0)
    item = int(line["itemID"])
    token = rig.pos.issue_tokens()["access_token"]
    http = httpx.Client(base_url=rig.pos.api_base, headers={"Authorization": f"Bearer {token}"})
    request.addfinalizer(http.close)
    cash = {"SalePayments": {"SalePayment": {"paymentTypeID": "1"}}}

    def refund(sale_id: str, quantity: int, **body: Any) -> httpx.Response:
        lines = {"SaleLines": {"SaleLine": {"parentSaleLineID": line["saleLineID"], "unitQuantity": -quantity}}}
        return http.post(f"/Sale/{sale_id}/refund.json", json={**cash, **lines, **body})

    too_many = refund(sale["saleID"], 3)
    no_payment = http.post(f"/Sale/{sale['saleID']}/refund.json", json={})
    sales = len(rig.pos.sales())
    assert (too_many.status_code, no_payment.status_code) == (400, 400)
    assert "exceeds" in too_many.json()["message"] and len(rig.pos.sales()) == sales

    # The sale's ticketNumber names it too; the refund is sold back at shop B, whose stock it restocks.
    taken = refund(sale["ticketNumber"], 2, shopID=str(SHOP_B), employeeID="1", registerID="2")
    assert taken.status_code == 200, taken.text
    made = taken.json()["Sale"]
    refund_line = made["SaleLines"]["SaleLine"]
    assert (refund_line["parentSaleLineID"], refund_line["unitQuantity"], refund_line["itemID"]) == (
        line["saleLineID"],
        "-2",
        line["itemID"],
    )
    assert made["completed"] == "true" and float(made["total"]) == -float(line["calcTotal"])
    assert made["SalePayments"]["SalePayment"]["amount"] == made["total"]  # the amount left out: the refund's total
    assert (rig.pos.qoh_of(item, SHOP_A), rig.pos.qoh_of(item, SHOP_B)) == (3, 7)
    assert refund(sale["saleID"], 1).status_code == 400  # nothing left of that line
