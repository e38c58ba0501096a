"""Status sync through the real path: a change made in one back office -> its webhook (POS sale.update, eCom
orders/updated or shipments/created) or the poller's order sweep -> statuses queue -> status_sync -> the other
vendor's API; both simulators on 127.0.0.1, AWS in moto provisioned from template.yaml. POS fulfilments are read,
packed and fulfilled through the 2026-07 Fulfillments API; returns start parked, as the vendor's return action
makes them."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pos_ecom_sync.connectors.ecom import EcomClient
from pos_ecom_sync.intake.poller import ChangePoller
from pos_ecom_sync.models.messages import ChangeMessage
from pos_ecom_sync.profiles.xseries.client import XSeriesClient
from pos_ecom_sync.profiles.xseries.feeds import XSeriesFeeds
from pos_ecom_sync.queues import ChangePublisher
from pos_ecom_sync.ratelimit import InMemoryRateBudget
from pos_ecom_sync.state.status_store import StatusStore
from pos_ecom_sync.status.digest import ecom_order_digest
from pos_ecom_sync.status.sync import SEEN_NOTE

from local_stack.demo import DEMO_SECRETS
from local_stack.event_sources import SqsPoller
from local_stack.functions import LocalFunction
from local_stack.lambda_events import sqs_event
from local_stack.simulators.common import Faults
from tests.integration.conftest import Deployment
from tests.integration.order_rig import CONNECTION, OrderRig, open_order_rig
from tests.support import drain_queue


@dataclass
class StatusRig:
    orders: OrderRig
    statuses: SqsPoller

    @property
    def pos(self) -> Any:
        return self.orders.pos

    @property
    def ecom(self) -> Any:
        return self.orders.ecom

    def order(self, *, pickup: bool = False, **kwargs: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        """A shopper orders one item; the order is imported; returns (eCom order, POS sale)."""
        variant = self.orders.variants()[0]
        self.orders.stock_only_at(variant["id"], self.orders.outlets[0], 5)
        if pickup:
            title = "Pick up in store"
            if not any(m["title"] == title for m in self.ecom.shipping_methods()):
                method = self.ecom.add_shipping_method(title, is_pickup=True)
                self.orders.update_connection(shipping_method_outlets={str(method["id"]): self.orders.outlets[0]})
            kwargs["shipment_title"] = title
        order = self.orders.place({variant["id"]: 1}, **kwargs)
        self.orders.drain_orders()
        self.drain()  # the import's own echoes (sale.update of the new sale) settle as "in step"
        return order, self.orders.sale_of(order)

    def drain(self, max_batches: int = 50) -> int:
        assert self.pos.wait_for_webhooks() and self.ecom.wait_for_webhooks()
        handled = 0
        for _ in range(max_batches):
            done = self.statuses.poll_once(wait_seconds=0)
            if not done:
                assert self.pos.wait_for_webhooks() and self.ecom.wait_for_webhooks()
                if not self.statuses.poll_once(wait_seconds=0):
                    return handled
            handled += done
        raise AssertionError("statuses queue did not drain")

    def vendor_calls(self) -> int:
        return sum(self.pos.calls_by_route.values()) + sum(self.ecom.calls_by_route.values())

    def write_status(self, order: dict[str, Any], **change: str) -> None:
        """The merchant changes the order in eCom's back office; its own message is handled, and the POS write it
        makes is left on the statuses queue as the sale.update webhook brings it back."""
        self.ecom.update_order_status(order["id"], **change)
        assert self.ecom.wait_for_webhooks()
        assert self.statuses.poll_once(wait_seconds=0)
        assert self.pos.wait_for_webhooks()

    def take_queued(self) -> list[dict[str, Any]]:
        """Every message on the statuses queue, taken off it: the test delivers them itself, in batches it chooses."""
        deployment = self.orders.deployment
        return drain_queue(deployment.sqs, deployment.queue_url("statuses"))

    def deliver(self, messages: list[dict[str, Any]]) -> None:
        """One invocation of the status function with `messages` as its SQS batch; every record succeeds."""
        event = sqs_event(messages, self.statuses.subscription.queue_arn)
        assert self.statuses.function.invoke(event)["batchItemFailures"] == []

    def ecom_order(self, order: dict[str, Any]) -> dict[str, Any]:
        return next(o for o in self.ecom.orders() if o["id"] == order["id"])

    def sale(self, sale: dict[str, Any]) -> dict[str, Any]:
        return next(s for s in self.pos.sales() if s["id"] == sale["id"])

    def ledger(self, order: dict[str, Any]) -> Any:
        deployment = self.orders.deployment
        store = StatusStore(deployment.env["TABLE_NAME"], client=deployment.session.client("dynamodb"))
        return store.get(CONNECTION, order["id"])

    def dead_letters(self) -> list[dict[str, Any]]:
        deployment = self.orders.deployment
        url = deployment.queue_url("statuses").replace("-statuses.fifo", "-statuses-dlq.fifo")
        return drain_queue(deployment.sqs, url)


@pytest.fixture
def rig(deployment: Deployment) -> Iterator[StatusRig]:
    with open_order_rig(deployment, families=1) as orders:  # the tests sell its first variant
        base = f"{orders.api.url}/connections/{CONNECTION}/webhooks"
        XSeriesClient(orders.pos.url, DEMO_SECRETS["pos_access_token"], InMemoryRateBudget()).create_webhook(
            f"{base}/pos?token={DEMO_SECRETS['pos_webhook_token']}", "sale.update"
        )
        ecom = EcomClient(
            orders.ecom.url, DEMO_SECRETS["ecom_api_key"], DEMO_SECRETS["ecom_api_secret"], InMemoryRateBudget()
        )
        ecom.create_webhook("orders", "updated", f"{base}/ecom")
        ecom.create_webhook("shipments", "created", f"{base}/ecom")
        subscription = next(s for s in deployment.resources.subscriptions if s.function == "StatusSyncFunction")
        function = LocalFunction(deployment.resources.functions["StatusSyncFunction"])
        yield StatusRig(orders, SqsPoller(deployment.sqs, subscription, function, narrate=lambda line: None))


# -- Canceled <-> Voided -------------------------------------------------------------------------------------


def test_ecom_payment_cancelled_voids_the_pos_sale_gives_the_stock_back_and_freezes_the_order(rig: StatusRig) -> None:
    order, sale = rig.order()
    shipping = rig.orders.connection.shipping_product_id
    [line] = [li for li in sale["line_items"] if li["product_id"] != shipping]
    outlet = line["fulfillment_outlet_id"]
    before = rig.pos.level(line["product_id"], outlet)

    rig.ecom.update_order_status(order["id"], payment_status="cancelled")
    rig.drain()

    assert rig.sale(sale)["status"] == "VOIDED"
    assert rig.pos.level(line["product_id"], outlet) == before + 1
    assert rig.pos.fulfillments(sale["id"]) == []  # a voided sale has nothing left to fulfil
    ledger = rig.ledger(order)
    assert ledger.frozen
    assert any(h["kind"] == "applied" and "void" in h["detail"] for h in ledger.history)
    assert rig.dead_letters() == []  # the void's own sale.update echo planned nothing


def test_pos_void_cancels_the_ecom_order_with_its_delivery(rig: StatusRig) -> None:
    order, sale = rig.order()
    rig.pos.void_sale(sale["id"])
    rig.drain()

    ecom_order = rig.ecom_order(order)
    assert (ecom_order["paymentStatus"], ecom_order["shipmentStatus"], ecom_order["status"]) == (
        "cancelled",
        "cancelled",
        "cancelled",
    )
    assert rig.ledger(order).frozen


@pytest.mark.parametrize("known_by", ["digest", "stamp"])
def test_the_echo_of_our_ecom_write_is_known_by_its_content_or_else_its_stamp_and_costs_no_vendor_read(
    rig: StatusRig, known_by: str
) -> None:
    order, sale = rig.order()
    rig.pos.void_sale(sale["id"])
    assert rig.pos.wait_for_webhooks()
    # The void's own message: reads both sides and cancels the eCom order (its orders/updated echo is queued).
    assert rig.statuses.poll_once(wait_seconds=0)
    assert rig.ecom.wait_for_webhooks()
    reads = (rig.ecom.calls_by_route["GET /{lang}/orders/{id}.json"], rig.pos.calls_by_route["GET /api/2.0/sales/{id}"])
    cancelled = rig.ecom_order(order)
    ledger = rig.ledger(order)
    assert cancelled["updatedAt"] in ledger.ecom_written and ecom_order_digest(cancelled) in ledger.ecom_digests
    if known_by == "stamp":  # a notice without a digest (queued before digests, or a payload without statuses)
        [echo] = rig.take_queued()
        rig.deliver([_without_digest(echo)])
    else:
        assert rig.drain() >= 1  # the echo: eCom's orders/updated for our own cancel

    ecom_reads = rig.ecom.calls_by_route["GET /{lang}/orders/{id}.json"] - reads[0]
    pos_reads = rig.pos.calls_by_route["GET /api/2.0/sales/{id}"] - reads[1]
    assert (ecom_reads, pos_reads) == (0, 0)
    assert rig.ecom_order(order)["status"] == "cancelled" and rig.dead_letters() == []


@pytest.mark.parametrize(("payment_status", "written"), [("paid", "payments"), ("cancelled", "status")])
def test_the_echo_of_our_pos_payment_or_void_is_known_by_its_digest_and_costs_no_vendor_call(
    rig: StatusRig, payment_status: str, written: str
) -> None:
    order, sale = rig.order(payment_title="Bank deposit", payment_status="not_paid")
    before = rig.sale(sale)
    rig.write_status(order, payment_status=payment_status)
    after = rig.sale(sale)
    assert after[written] != before[written]  # our write: a payment recorded, or the sale voided
    assert len(rig.ledger(order).pos_written) == 1
    calls = rig.vendor_calls()

    assert rig.drain() >= 1  # the echo: the POS's sale.update of our own write (and eCom's of ours, if any)

    assert rig.vendor_calls() == calls  # not one read, of either side
    ledger = rig.ledger(order)
    assert ledger.pos_written == ()  # each echo is taken once
    assert rig.sale(sale) == after and rig.dead_letters() == []


@pytest.mark.parametrize("pos_change", ["pack", "void"])
def test_a_pos_change_right_after_our_payment_is_read_and_synced_even_when_it_looks_like_our_write(
    rig: StatusRig, pos_change: str
) -> None:
    order, sale = rig.order(pickup=True, payment_title="Bank deposit", payment_status="not_paid")
    rig.write_status(order, payment_status="paid")  # the POS payment is recorded; its echo is queued
    # Before that echo is handled, a POS user packs the order (its status and payments stay as our write left them:
    # the same digest as our echo's) or voids the sale (another digest).
    if pos_change == "pack":
        rig.pos.pack_fulfillments(sale["id"])
    else:
        rig.pos.void_sale(sale["id"])
    rig.drain()

    ecom_order = rig.ecom_order(order)
    if pos_change == "pack":
        assert (ecom_order["status"], ecom_order["paymentStatus"]) == ("processing_ready_for_pickup", "paid")
    else:
        assert ecom_order["paymentStatus"] == "cancelled"
    assert len(rig.sale(sale)["payments"]) == 1
    assert rig.ledger(order).pos_written == () and rig.dead_letters() == []


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(deliveries=st.permutations(["echo", "echo", "pack", "pack"]))
def test_our_echo_and_a_pos_change_like_it_delivered_twice_in_any_order_end_in_the_same_state(
    rig: StatusRig, deliveries: list[str]
) -> None:
    order, sale = rig.order(pickup=True, payment_title="Bank deposit", payment_status="not_paid")
    rig.write_status(order, payment_status="paid")
    rig.pos.pack_fulfillments(sale["id"])
    assert rig.pos.wait_for_webhooks()
    echo, pack = rig.take_queued()  # FIFO: our echo first
    assert ChangeMessage.model_validate_json(echo["Body"]).content_digest == (
        ChangeMessage.model_validate_json(pack["Body"]).content_digest
    )  # the pack leaves the sale's status and payments as our payment did

    arn = rig.statuses.subscription.queue_arn
    for name in deliveries:  # webhook retries and the poller's copies, in any order
        result = rig.statuses.function.invoke(sqs_event([echo if name == "echo" else pack], arn))
        assert result["batchItemFailures"] == []

    ecom_order = rig.ecom_order(order)
    assert (ecom_order["status"], ecom_order["paymentStatus"]) == ("processing_ready_for_pickup", "paid")
    assert len(rig.sale(sale)["payments"]) == 1
    assert rig.ledger(order).pos_written == () and rig.dead_letters() == []


def test_a_change_to_a_frozen_order_is_recorded_and_ignored(rig: StatusRig) -> None:
    order, sale = rig.order(payment_title="Bank deposit", payment_status="not_paid")
    rig.pos.void_sale(sale["id"])
    rig.drain()
    # The staff then take a payment on the voided sale's order in eCom's back office: refused there (frozen) ...
    with pytest.raises(Exception, match="cancelled"):
        rig.ecom.update_order_status(order["id"], payment_status="paid")
    # ... and a late duplicate of an order update, replayed from a stale delivery, changes nothing either.
    rig.orders.deployment.sqs.send_message(
        QueueUrl=rig.orders.deployment.queue_url("statuses"),
        MessageBody=_status_message(order["id"]),
        MessageGroupId=f"{CONNECTION}:ecom:order:{order['id']}",
        MessageDeduplicationId="replay-1",
    )
    rig.drain()
    assert rig.sale(sale)["status"] == "VOIDED" and rig.sale(sale)["payments"] == []
    history = rig.ledger(order).history
    assert history[-1]["kind"] == "ignored" and "frozen" in history[-1]["detail"]
    assert rig.dead_letters() == []


def test_ecom_cancel_after_the_pos_sale_was_finalized_is_recorded_and_not_applied(rig: StatusRig) -> None:
    order, sale = rig.order()
    rig.pos.set_fulfillment_status(sale["id"], "FULFILLED")  # dispatched: DISPATCHED_CLOSED, final
    rig.drain()
    rig.ecom.update_order_status(order["id"], payment_status="cancelled")
    rig.drain()

    assert rig.sale(sale)["status"] == "DISPATCHED_CLOSED"
    ledger = rig.ledger(order)
    assert not ledger.frozen
    assert ledger.history[-1]["kind"] == "ignored" and "finalized" in ledger.history[-1]["detail"]


# -- payment -------------------------------------------------------------------------------------------------


def test_an_unpaid_order_marked_paid_in_ecom_gets_its_payment_in_the_pos(rig: StatusRig) -> None:
    order, sale = rig.order(payment_title="Bank deposit", payment_status="not_paid")
    assert sale["payments"] == []

    rig.ecom.update_order_status(order["id"], payment_status="paid")
    rig.drain()

    paid = rig.sale(sale)
    [payment] = paid["payments"]
    assert payment["name"] == "Bank Deposit"
    assert payment["amount"] == pytest.approx(paid["total_price"] + paid["total_tax"], abs=0.01)
    assert paid["status"] == "AWAITING_DISPATCH"  # still to be shipped


def test_an_order_already_paid_in_ecom_by_bank_deposit_at_import_stays_unpaid_in_the_pos_through_every_hint(
    rig: StatusRig,
) -> None:
    order, sale = rig.order(payment_title="Bank deposit", payment_status="paid")
    assert sale["payments"] == []  # unintegrated: arrives unpaid (seed 004)
    record = rig.orders.ledger.get_order(CONNECTION, order["id"])
    assert record is not None and record.ecom_payment_status == "paid"
    # Intake drops a delivery whose body it has queued before; eCom stamps whole seconds, so each change below
    # waits for the next second to be a delivery of its own (as the merchant's clicks would be).
    for _ in range(2):  # the merchant saves the order again (orders/updated): a status hint each time
        time.sleep(1.1)
        rig.ecom.update_order_status(order["id"], payment_status="paid")
        rig.drain()
    assert rig.sale(sale)["payments"] == []
    history = rig.ledger(order).history
    assert "already said paid (Bank deposit) when the order was imported" in history[-1]["detail"]

    time.sleep(1.1)
    rig.ecom.update_order_status(order["id"], payment_status="not_paid")  # the deposit bounced ...
    rig.drain()
    time.sleep(1.1)
    rig.ecom.update_order_status(order["id"], payment_status="paid")  # ... and was paid again: a change to Paid
    rig.drain()
    assert [p["name"] for p in rig.sale(sale)["payments"]] == ["Bank Deposit"]


def test_a_sale_paid_on_the_pos_sell_screen_marks_the_ecom_order_paid(rig: StatusRig) -> None:
    order, sale = rig.order(payment_title="Cash on pickup", payment_status="not_paid")
    rig.pos.pay_sale(sale["id"], "Cash")
    rig.drain()
    assert rig.ecom_order(order)["paymentStatus"] == "paid"


def test_a_paid_order_whose_method_has_no_pos_payment_type_is_recorded_not_guessed(rig: StatusRig) -> None:
    order, sale = rig.order(payment_title="Crypto wallet", payment_status="not_paid")
    rig.ecom.update_order_status(order["id"], payment_status="paid")
    rig.drain()
    assert rig.sale(sale)["payments"] == []
    assert "no POS payment type" in rig.ledger(order).history[-1]["detail"]


# -- fulfillment ---------------------------------------------------------------------------------------------


def states(rig: StatusRig, sale: dict[str, Any]) -> list[str]:
    return [f["state"] for f in rig.pos.fulfillments(sale["id"])]


def test_out_for_delivery_in_ecom_completes_the_pos_fulfillment(rig: StatusRig) -> None:
    order, sale = rig.order()
    assert [(f["type"], f["state"]) for f in rig.pos.fulfillments(sale["id"])] == [("DISPATCH", "OPEN")]
    rig.pos.record_exchanges = True
    rig.ecom.create_shipment(order["id"])  # shipments/created + orders/updated (completed_shipped)
    rig.drain()
    assert states(rig, sale) == ["FULFILLED"]
    assert rig.sale(sale)["status"] == "DISPATCHED_CLOSED"
    fulfils = [x for x in rig.pos.exchanges if x.path == "/api/2026-07/fulfillments/fulfill"]
    assert [x.status for x in fulfils] == [200]  # once, though two eCom webhooks and the echo arrived


READS = ("GET /{lang}/orders/{id}.json", "GET /api/2.0/sales/{id}", "GET /api/2026-07/fulfillments")


def reads(rig: StatusRig) -> tuple[int, int, int]:
    """Status sync's reads so far: eCom orders, POS sales, POS fulfilment lists."""
    order, sale, fulfillments = READS
    return (rig.ecom.calls_by_route[order], rig.pos.calls_by_route[sale], rig.pos.calls_by_route[fulfillments])


def test_a_shipment_and_its_order_update_in_one_batch_share_one_read_and_the_fulfils_echo_costs_none(
    rig: StatusRig,
) -> None:
    order, sale = rig.order()
    rig.pos.record_exchanges = True
    before = reads(rig)
    rig.ecom.create_shipment(order["id"])  # shipments/created + orders/updated: two message groups
    assert rig.ecom.wait_for_webhooks()

    assert rig.statuses.poll_once(wait_seconds=0) == 2  # both notices in one batch
    assert tuple(b - a for a, b in zip(before, reads(rig), strict=True)) == (1, 1, 1)
    [fulfilled] = rig.ledger(order).pos_written
    assert fulfilled.also  # the sale as read, or closed: the POS decides
    calls = rig.vendor_calls()

    assert rig.drain() >= 1  # the POS's sale.update of our fulfil
    assert rig.vendor_calls() == calls  # its echo: not one read
    assert states(rig, sale) == ["FULFILLED"] and rig.sale(sale)["status"] == "DISPATCHED_CLOSED"
    assert len([x for x in rig.pos.exchanges if x.path == "/api/2026-07/fulfillments/fulfill"]) == 1
    assert rig.ledger(order).pos_written == () and rig.dead_letters() == []


def test_an_order_notice_read_after_our_fulfil_saw_what_it_left_so_the_fulfils_echo_costs_no_call(
    rig: StatusRig,
) -> None:
    order, _sale = rig.order()
    rig.ecom.create_shipment(order["id"])
    assert rig.ecom.wait_for_webhooks()
    queued = rig.take_queued()
    notices = {ChangeMessage.model_validate_json(m["Body"]).entity: m for m in queued}
    # Each notice in a batch of its own (as a consumer that takes the first alone gets them): the shipment's fulfils.
    rig.deliver([notices["shipment"]])
    assert rig.pos.wait_for_webhooks()  # the fulfil's echo is queued
    before = reads(rig)
    # An order notice that is read: one without a digest (one with the digest of what the shipment's read saw is
    # settled unread, see the next test).
    order_notice = _without_digest(notices["order"])

    rig.deliver([order_notice])

    assert tuple(b - a for a, b in zip(before, reads(rig), strict=True))[:2] == (1, 1)  # read after the fulfil
    assert len(rig.ledger(order).pos_written) == 1  # it saw the sale as our fulfil left it: the write is kept
    calls = rig.vendor_calls()
    assert rig.drain() >= 1  # the POS's sale.update of our fulfil
    assert rig.vendor_calls() == calls  # its echo tells of nothing that read did not see: not one call
    assert rig.ledger(order).pos_written == () and rig.dead_letters() == []


def _without_digest(message: dict[str, Any]) -> dict[str, Any]:
    """An SQS message whose change carries no content digest (as one queued before digests were)."""
    change = ChangeMessage.model_validate_json(message["Body"]).model_copy(update={"content_digest": None})
    return {**message, "Body": change.model_dump_json(), "MessageId": f"{message['MessageId']}-bare"}


def _shipment_notices(rig: StatusRig, order: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The merchant ships the order: its shipments/created and orders/updated notices, taken off the queue."""
    rig.ecom.create_shipment(order["id"])
    assert rig.ecom.wait_for_webhooks()
    queued = rig.take_queued()
    notices = {ChangeMessage.model_validate_json(m["Body"]).entity: m for m in queued}
    assert set(notices) == {"shipment", "order"}
    return notices


def _seen_notes(rig: StatusRig, order: dict[str, Any]) -> int:
    return sum(h["detail"] == SEEN_NOTE for h in rig.ledger(order).history)


def test_a_shipments_order_notice_in_a_batch_of_its_own_tells_of_what_its_read_saw_and_costs_no_call(
    rig: StatusRig,
) -> None:
    order, sale = rig.order()
    notices = _shipment_notices(rig, order)
    calls = rig.vendor_calls()
    rig.deliver([notices["shipment"]])
    assert rig.vendor_calls() - calls == 4  # the order, the sale and its fulfilments read, and the fulfil
    shipped = rig.ecom_order(order)
    assert ecom_order_digest(shipped) in rig.ledger(order).ecom_digests
    assert ChangeMessage.model_validate_json(notices["order"]["Body"]).content_digest == ecom_order_digest(shipped)
    calls = rig.vendor_calls()

    rig.deliver([notices["order"]])

    assert rig.vendor_calls() == calls  # not one read, of either side
    assert _seen_notes(rig, order) == 1  # the ledger says why
    assert rig.drain() >= 1  # the POS's sale.update of our fulfil: its echo
    assert rig.vendor_calls() == calls
    assert states(rig, sale) == ["FULFILLED"] and rig.sale(sale)["status"] == "DISPATCHED_CLOSED"
    assert rig.ledger(order).pos_written == () and rig.dead_letters() == []


@contextmanager
def ecom_stamps_one_second(rig: StatusRig) -> Iterator[None]:
    """eCom stamps every change with one whole second while this lasts. The second is two ahead of now: a frozen
    clock never ends the simulator's current 20-per-second window, so the requests the set-up made in it would
    count against the frozen second (on a fast set-up, enough to throttle the sync for good)."""
    second = float(int(time.time()) + 2)
    clock, rig.ecom.clock = rig.ecom.clock, lambda: second
    try:
        yield
    finally:
        rig.ecom.clock = clock


def test_a_payment_marked_within_the_second_of_the_shipment_has_another_digest_and_is_read(rig: StatusRig) -> None:
    order, sale = rig.order(payment_title="Bank deposit", payment_status="not_paid")
    with ecom_stamps_one_second(rig):
        notices = _shipment_notices(rig, order)
        rig.deliver([notices["shipment"]])
        rig.ecom.update_order_status(order["id"], payment_status="paid")  # the merchant, within the same second
        assert rig.ecom.wait_for_webhooks()
    assert rig.pos.wait_for_webhooks()
    queued = rig.take_queued()  # and the POS's echo of our fulfil
    [payment] = [m for m in queued if ChangeMessage.model_validate_json(m["Body"]).source == "ecom"]
    shipped, paid = (ChangeMessage.model_validate_json(n["Body"]) for n in (notices["order"], payment))
    assert shipped.updated_at == paid.updated_at and shipped.content_digest != paid.content_digest
    before = reads(rig)

    rig.deliver([notices["order"]])
    assert reads(rig) == before  # the shipment's order notice: what the shipment's read saw
    rig.deliver([payment])

    assert reads(rig)[:2] == (before[0] + 1, before[1] + 1)  # the payment's notice was read
    # Our fulfil closed the sale (the simulated POS closes a fulfilled sale), so seed 004 records the payment and
    # ignores it; a payment the POS can still take is synced (next test).
    assert (
        rig.ledger(order).history[-1]["detail"]
        == "eCom marked paid after the POS sale was finalized (DISPATCHED_CLOSED)"
    )
    rest = [m for m in queued if m is not payment]
    rig.deliver(rest)
    assert states(rig, sale) == ["FULFILLED"] and rig.dead_letters() == []


def test_a_payment_marked_within_the_second_of_our_ecom_write_is_read_and_synced_not_taken_for_its_echo(
    rig: StatusRig,
) -> None:
    order, sale = rig.order(pickup=True, payment_title="Bank deposit", payment_status="not_paid")
    with ecom_stamps_one_second(rig):
        rig.pos.pack_fulfillments(sale["id"])
        assert rig.pos.wait_for_webhooks()
        assert rig.statuses.poll_once(wait_seconds=0)  # the pack's notice: we set the eCom order ready for pickup
        rig.ecom.update_order_status(order["id"], payment_status="paid")  # the merchant, within our write's second
        assert rig.ecom.wait_for_webhooks()
    echo, payment = rig.take_queued()
    ours, paid = (ChangeMessage.model_validate_json(n["Body"]) for n in (echo, payment))
    # Both carry our write's stamp: the stamp alone would take the payment for our echo.
    assert ours.updated_at == paid.updated_at and paid.updated_at in rig.ledger(order).ecom_written
    assert ours.content_digest != paid.content_digest
    calls = rig.vendor_calls()

    rig.deliver([echo])
    assert rig.vendor_calls() == calls  # our echo: what our write's answer showed
    rig.deliver([payment])

    assert rig.vendor_calls() > calls and len(rig.sale(sale)["payments"]) == 1  # read, and the POS payment made
    rig.drain()
    assert rig.ecom_order(order)["status"] == "processing_ready_for_pickup"
    assert len(rig.sale(sale)["payments"]) == 1 and rig.dead_letters() == []


def test_an_order_notice_delivered_twice_costs_no_call_the_second_time(rig: StatusRig) -> None:
    order, sale = rig.order(payment_title="Bank deposit", payment_status="not_paid")
    rig.ecom.update_order_status(order["id"], payment_status="paid")
    assert rig.ecom.wait_for_webhooks()
    [notice] = rig.take_queued()
    rig.deliver([notice])
    assert len(rig.sale(sale)["payments"]) == 1  # read, and the POS payment recorded
    calls = rig.vendor_calls()

    again = {**notice, "MessageId": f"{notice['MessageId']}-again"}  # a retried delivery, outside FIFO deduplication
    rig.deliver([again])

    assert rig.vendor_calls() == calls and _seen_notes(rig, order) == 1
    rig.drain()  # the payment's echo
    assert len(rig.sale(sale)["payments"]) == 1 and rig.dead_letters() == []


@pytest.mark.parametrize("echo", ["lost", "delivered"])
def test_a_pos_payment_where_the_fulfils_echo_was_expected_is_read_and_synced(rig: StatusRig, echo: str) -> None:
    order, sale = rig.order(payment_title="Bank deposit", payment_status="not_paid")
    if echo == "lost":
        rig.pos.set_faults(webhook_loss_rate=1.0)
    rig.ecom.create_shipment(order["id"])
    assert rig.ecom.wait_for_webhooks()
    assert rig.statuses.poll_once(wait_seconds=0) == 2  # the fulfil
    assert rig.pos.wait_for_webhooks()
    rig.pos.set_faults(Faults())
    assert len(rig.ledger(order).pos_written) == 1
    # A POS user takes the payment on the sell screen: its sale.update comes where the fulfil's echo was expected
    # (or after it), with payments our fulfil did not leave.
    rig.pos.pay_sale(sale["id"], "Cash")
    before = reads(rig)
    rig.drain()

    assert reads(rig)[1] > before[1]  # the payment's message was read
    assert rig.ecom_order(order)["paymentStatus"] == "paid"
    assert rig.ledger(order).pos_written == () and rig.dead_letters() == []


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=st.permutations(["shipment", "order", "shipment", "order"]))
def test_a_shipments_notices_duplicated_and_reordered_in_one_batch_fulfil_once_after_one_read(
    rig: StatusRig, batch: list[str]
) -> None:
    order, sale = rig.order()
    rig.pos.set_faults(webhook_loss_rate=1.0)  # the echo is not what this checks
    rig.ecom.create_shipment(order["id"])
    assert rig.ecom.wait_for_webhooks()
    queued = rig.take_queued()
    notices = {ChangeMessage.model_validate_json(m["Body"]).entity: m for m in queued}
    assert set(notices) == {"shipment", "order"}
    before = reads(rig)
    copies = [{**notices[name], "MessageId": f"copy-{n}"} for n, name in enumerate(batch)]  # retries, sweep copies

    result = rig.statuses.function.invoke(sqs_event(copies, rig.statuses.subscription.queue_arn))
    rig.pos.set_faults(Faults())

    assert result["batchItemFailures"] == []
    assert tuple(b - a for a, b in zip(before, reads(rig), strict=True)) == (1, 1, 1)
    assert states(rig, sale) == ["FULFILLED"]
    applied = [h for h in rig.ledger(order).history if h["kind"] == "applied"]
    assert len(applied) == 1 and rig.dead_letters() == []


def test_packed_in_the_pos_makes_a_pickup_order_ready_for_pickup_in_ecom(rig: StatusRig) -> None:
    order, sale = rig.order(pickup=True)
    assert sale["status"] == "AWAITING_PICKUP"
    rig.pos.pack_fulfillments(sale["id"])
    rig.drain()
    assert rig.ecom_order(order)["status"] == "processing_ready_for_pickup"


def test_in_progress_in_the_pos_causes_no_ecom_write(rig: StatusRig) -> None:
    order, sale = rig.order(pickup=True)
    writes_before = sum(n for route, n in rig.ecom.calls_by_route.items() if not route.startswith("GET"))
    rig.pos.start_fulfillment(sale["id"])  # "In progress": STARTED
    assert rig.drain() >= 1  # its sale.update was handled
    assert states(rig, sale) == ["STARTED"]
    assert sum(n for route, n in rig.ecom.calls_by_route.items() if not route.startswith("GET")) == writes_before
    assert rig.ecom_order(order)["status"] == "processing_awaiting_pickup"


def test_ready_for_pickup_in_ecom_packs_the_pos_pickup_fulfillment(rig: StatusRig) -> None:
    order, sale = rig.order(pickup=True)
    rig.ecom.update_order_status(order["id"], status="processing_ready_for_pickup")
    rig.drain()
    [fulfillment] = rig.pos.fulfillments(sale["id"])
    assert fulfillment["state"] == "PACKED"
    assert all(li["packed_quantity"] == li["quantity"] for li in fulfillment["line_items"])


def _pack_statuses(rig: StatusRig) -> list[int]:
    return [x.status for x in rig.pos.exchanges if x.method == "POST" and x.path.endswith("/pack")]


def test_a_pack_at_a_stale_version_is_re_read_and_packed_at_the_new_one(rig: StatusRig) -> None:
    order, sale = rig.order(pickup=True)
    rig.pos.record_exchanges = True
    # A POS user starts the fulfilment just as our pack arrives: its version moves on, the pack gets 409.
    rig.pos.before_next_pack(lambda fulfillment: rig.pos.start_fulfillment(sale["id"]))
    rig.ecom.update_order_status(order["id"], status="processing_ready_for_pickup")
    rig.drain()
    assert _pack_statuses(rig) == [409, 200]
    [fulfillment] = rig.pos.fulfillments(sale["id"])
    assert fulfillment["state"] == "PACKED" and fulfillment["version"] == 3  # started, then packed: no third change
    assert rig.dead_letters() == []


def test_a_pack_refused_because_the_pos_user_packed_it_meanwhile_is_settled_without_packing_again(
    rig: StatusRig,
) -> None:
    order, sale = rig.order(pickup=True)
    rig.pos.record_exchanges = True
    rig.pos.before_next_pack(lambda fulfillment: rig.pos.pack_fulfillments(sale["id"]))
    rig.ecom.update_order_status(order["id"], status="processing_ready_for_pickup")
    rig.drain()
    assert _pack_statuses(rig) == [409]
    [fulfillment] = rig.pos.fulfillments(sale["id"])
    assert fulfillment["state"] == "PACKED" and fulfillment["version"] == 2
    assert rig.ecom_order(order)["status"] == "processing_ready_for_pickup"
    assert rig.dead_letters() == []


def test_ready_for_pickup_on_a_shipment_and_processing_never_reach_the_pos(rig: StatusRig) -> None:
    order, sale = rig.order()
    rig.ecom.update_order_status(order["id"], status="processing_ready_for_pickup")
    rig.drain()
    assert states(rig, sale) == ["OPEN"]
    assert rig.sale(sale)["status"] == "AWAITING_DISPATCH"


# -- refunds -------------------------------------------------------------------------------------------------


def _delivered(rig: StatusRig) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """An order shipped in eCom (its POS sale fulfilled and closed, so it can be returned) and its one item line."""
    order, sale = rig.order()
    rig.ecom.create_shipment(order["id"])
    rig.drain()
    shipping = rig.orders.connection.shipping_product_id
    [line] = [li for li in rig.sale(sale)["line_items"] if li["product_id"] != shipping]
    return order, sale, line


def _start_return(rig: StatusRig, sale: dict[str, Any]) -> dict[str, Any]:
    """Staff start a return (Sales history > Return items) through the 2.0 return action: a parked return."""
    response = httpx.put(
        f"{rig.pos.url}/api/2.0/sales/{sale['id']}/actions/return",
        headers={"Authorization": f"Bearer {DEMO_SECRETS['pos_access_token']}"},
    )
    assert response.status_code == 200, response.text
    returned = dict(response.json()["data"])
    assert (returned["status"], returned["return_for"]) == ("SAVED", sale["id"])  # parked
    return returned


def test_a_parked_return_refunds_nothing_and_once_voided_never_will(rig: StatusRig) -> None:
    order, sale, line = _delivered(rig)
    before = rig.pos.level(line["product_id"], line["fulfillment_outlet_id"])
    returned = _start_return(rig, sale)
    rig.drain()
    [ordered] = rig.ecom.order_products(order["id"])
    assert ordered["quantityRefunded"] == 0
    assert "parked" in rig.ledger(order).history[-1]["detail"]

    rig.pos.void_return(returned["id"])
    rig.drain()
    [ordered] = rig.ecom.order_products(order["id"])
    assert ordered["quantityRefunded"] == 0
    assert rig.pos.level(line["product_id"], line["fulfillment_outlet_id"]) == before  # nothing came back either
    assert not any(route.startswith("POST") and "credit" in route for route in rig.ecom.calls_by_route)
    assert rig.dead_letters() == []


def test_a_completed_return_credits_the_ecom_order_once_and_restocks_once(rig: StatusRig) -> None:
    order, sale, line = _delivered(rig)
    outlet = line["fulfillment_outlet_id"]
    before = rig.pos.level(line["product_id"], outlet)
    returned = _start_return(rig, sale)
    rig.drain()
    rig.pos.complete_return(returned["id"])  # the POS user finishes it: refunded in cash, items back in stock
    rig.drain()

    [ordered] = rig.ecom.order_products(order["id"])
    assert ordered["quantityRefunded"] == ordered["quantityOrdered"] == 1
    assert rig.pos.level(line["product_id"], outlet) == before + 1  # back in stock once, by the return itself
    # The return's webhook again, and the sweep's copy of the order: nothing is credited twice.
    deployment = rig.orders.deployment
    return_id = returned["id"]
    for n, (source, entity, entity_id) in enumerate((("pos", "sale", return_id), ("ecom", "order", str(order["id"])))):
        deployment.sqs.send_message(
            QueueUrl=deployment.queue_url("statuses"),
            MessageBody=_status_message(order["id"])
            .replace('"source":"ecom"', f'"source":"{source}"')
            .replace('"entity":"order"', f'"entity":"{entity}"')
            .replace(f'"entity_id":"{order["id"]}"', f'"entity_id":"{entity_id}"'),
            MessageGroupId=f"replay-{n}",
            MessageDeduplicationId=f"replay-return-{n}",
        )
    rig.drain()
    [ordered] = rig.ecom.order_products(order["id"])
    assert ordered["quantityRefunded"] == 1
    assert sum(n for route, n in rig.ecom.calls_by_route.items() if route.endswith("/credit.json")) == 1
    assert [h["detail"] for h in rig.ledger(order).history if h["kind"] == "applied"][-1].startswith("credit 1 item")
    assert rig.dead_letters() == []


def test_in_store_sales_never_reach_ecom(rig: StatusRig) -> None:
    order, _ = rig.order()  # an online order exists, so a wrong match would have something to cancel
    variant = rig.orders.variants()[0]
    writes_before = sum(n for route, n in rig.ecom.calls_by_route.items() if not route.startswith("GET"))
    sale = rig.pos.create_sale([{"product_id": variant["id"], "quantity": 1}], source_id="till-7")
    rig.pos.void_sale(sale["id"])

    assert rig.drain() >= 2  # the sale's and the void's sale.update, both handled
    writes_after = sum(n for route, n in rig.ecom.calls_by_route.items() if not route.startswith("GET"))
    assert writes_after == writes_before  # no eCom write at all
    assert rig.ecom_order(order)["paymentStatus"] == "paid"
    assert rig.dead_letters() == []


# -- never lost, never doubled --------------------------------------------------------------------------------


def test_a_status_change_whose_webhook_was_lost_arrives_through_the_poller_sweep(rig: StatusRig) -> None:
    order, sale = rig.order(payment_title="Bank deposit", payment_status="not_paid")
    rig.ecom.set_faults(webhook_loss_rate=1.0)
    rig.ecom.update_order_status(order["id"], payment_status="paid")
    rig.ecom.set_faults(Faults())
    assert rig.drain() == 0  # nothing arrived

    deployment = rig.orders.deployment
    pos = XSeriesClient(rig.pos.url, DEMO_SECRETS["pos_access_token"], InMemoryRateBudget())
    ecom = EcomClient(rig.ecom.url, DEMO_SECRETS["ecom_api_key"], DEMO_SECRETS["ecom_api_secret"], InMemoryRateBudget())
    ChangePoller(deployment.store, ChangePublisher(deployment.queue_url, client=deployment.sqs)).poll(
        rig.orders.connection, XSeriesFeeds(pos), ecom
    )
    drain_queue(deployment.sqs, deployment.queue_url("products"))
    drain_queue(deployment.sqs, deployment.queue_url("stock"))
    rig.orders.drain_orders()
    rig.drain()
    assert len(rig.sale(sale)["payments"]) == 1


def test_the_same_change_delivered_many_times_and_at_once_is_applied_once(rig: StatusRig) -> None:
    order, sale = rig.order(payment_title="Bank deposit", payment_status="not_paid")
    rig.ecom.set_faults(webhook_loss_rate=1.0)
    rig.ecom.update_order_status(order["id"], payment_status="paid")
    rig.ecom.set_faults(Faults())
    deployment = rig.orders.deployment
    for n in range(4):  # webhook retries and a sweep: separate messages, outside FIFO deduplication
        deployment.sqs.send_message(
            QueueUrl=deployment.queue_url("statuses"),
            MessageBody=_status_message(order["id"]),
            MessageGroupId=f"{CONNECTION}:ecom:order:{order['id']}:{n}",
            MessageDeduplicationId=f"dup-{n}",
        )
    messages = deployment.sqs.receive_message(
        QueueUrl=deployment.queue_url("statuses"), MaxNumberOfMessages=10, AttributeNames=["All"]
    )["Messages"]
    assert len(messages) == 4
    # All four at once, each in its own sandbox: the lease lets one apply the payment and turns the others into
    # delayed retries; once retried they find both sides in step.
    arn = rig.statuses.subscription.queue_arn
    outcomes: list[str] = []

    def invoke(message: dict[str, Any]) -> None:
        try:
            result = LocalFunction(rig.statuses.function.spec).invoke(sqs_event([message], arn))
            outcomes.append("retry" if result["batchItemFailures"] else "done")
        except BatchProcessingError:  # a batch whose every record failed fails the invocation: all retried
            outcomes.append("retry")

    threads = [threading.Thread(target=invoke, args=(m,)) for m in messages]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert "done" in outcomes and len(outcomes) == 4
    for message in messages:  # the retry delay (the lease, 90 s) has passed
        deployment.sqs.change_message_visibility(
            QueueUrl=deployment.queue_url("statuses"), ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
        )
    rig.drain()
    assert len(rig.sale(sale)["payments"]) == 1
    applied = [h for h in rig.ledger(order).history if h["kind"] == "applied"]
    assert len(applied) == 1
    assert rig.dead_letters() == []


def _status_message(order_id: int) -> str:
    from datetime import UTC, datetime

    from pos_ecom_sync.models.messages import ChangeMessage

    return ChangeMessage(
        connection_id=CONNECTION,
        source="ecom",
        entity="order",
        entity_id=str(order_id),
        via="webhook",
        received_at=datetime.now(UTC),
        payload={"id": order_id},
        action="updated",
        concern="statuses",
    ).model_dump_json()
