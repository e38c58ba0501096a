"""What the orders of one SQS batch share: a queue's "idle" answer for a few seconds (`queues.RecentIdle`), and the
sending of their new-fulfillment events when the batch ends (`orders.importer.BatchedNotifications`), whose unsent
orders' records go back to SQS (`orders.batch`)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest
from pos_ecom_sync.errors import Conflict, UpstreamUnavailable
from pos_ecom_sync.models.messages import ChangeMessage, Concern
from pos_ecom_sync.models.orders import NewFulfillmentEvent
from pos_ecom_sync.orders.batch import NamedOrder, orders_named, with_unsent_as_failures
from pos_ecom_sync.orders.importer import BatchedNotifications
from pos_ecom_sync.queues import IDLE_REUSE_SECONDS, RecentIdle

from tests.support import ManualClock


class Queues:
    """SQS's counts as the test sets them; counts the GetQueueAttributes calls."""

    def __init__(self) -> None:
        self.waiting: dict[str, int] = {"stock": 0, "products": 0}
        self.asked: list[str] = []

    def idle(self, concern: Concern) -> bool:
        self.asked.append(concern)
        return not self.waiting[concern]


def test_an_idle_answer_is_reused_for_a_few_seconds_then_asked_again() -> None:
    queues, clock = Queues(), ManualClock(100.0)
    recent = RecentIdle(queues, clock=clock)

    assert recent.idle("stock") and recent.idle("stock") and recent.idle("products")
    assert queues.asked == ["stock", "products"]  # one call per queue

    queues.waiting["stock"] = 1  # a change the feed queued after the check: not seen within the window
    clock.now += IDLE_REUSE_SECONDS
    assert recent.idle("stock")
    clock.now += 0.01
    assert not recent.idle("stock")  # past the window: asked again, and the backlog is seen
    assert queues.asked == ["stock", "products", "stock"]


def test_a_busy_answer_is_never_reused() -> None:
    queues, clock = Queues(), ManualClock(100.0)
    recent = RecentIdle(queues, clock=clock)
    queues.waiting["stock"] = 2
    assert not recent.idle("stock")
    queues.waiting["stock"] = 0  # drained a moment later: the next order may route on the state at once
    assert recent.idle("stock")
    assert queues.asked == ["stock", "stock"]


class Notifier:
    def __init__(self, failing_from_call: int | None = None) -> None:
        self.calls: list[list[str]] = []
        self.failing_from_call = failing_from_call

    def publish(self, events: Sequence[NewFulfillmentEvent]) -> int:
        if self.failing_from_call is not None and len(self.calls) + 1 >= self.failing_from_call:
            raise UpstreamUnavailable("eventbridge put_events failed")
        self.calls.append([f"{e.sale_id}/{e.outlet_id}" for e in events])
        return len(events)


class Marks:
    def __init__(self, refuse: bool = False) -> None:
        self.marked: list[tuple[str, list[int]]] = []
        self.refuse = refuse

    def mark_notified_many(self, connection_id: str, order_ids: Sequence[int]) -> None:
        if self.refuse:
            raise Conflict("one is not imported")
        self.marked.append((connection_id, list(order_ids)))


def events(order_id: int, outlets: int) -> list[NewFulfillmentEvent]:
    return [
        NewFulfillmentEvent(
            connection_id="shop", outlet_id=f"o{n}", sale_id=f"s{order_id}", order_number=str(order_id), lines=[]
        )
        for n in range(outlets)
    ]


def test_a_batchs_events_go_out_ten_at_a_time_in_whole_orders_and_their_orders_are_marked_once() -> None:
    notifier, marks = Notifier(), Marks()
    outbox = BatchedNotifications(notifier, marks)
    for order_id, outlets in ((1, 1), (2, 3), (3, 2), (4, 4), (5, 1), (6, 12), (7, 0)):
        assert outbox.add("shop", order_id, events(order_id, outlets)) == outlets

    assert outbox.flush() == []

    sizes = [len(call) for call in notifier.calls]
    assert sizes == [10, 1, 12]  # orders 1-4, then 5 (6's twelve would not fit), then 6 (its notifier splits it)
    assert marks.marked == [("shop", [1, 2, 3, 4, 5, 6, 7])]
    assert outbox.flush() == [] and len(notifier.calls) == 3  # sent once


def test_an_order_queued_twice_in_a_batch_is_sent_once() -> None:
    notifier, marks = Notifier(), Marks()
    outbox = BatchedNotifications(notifier, marks)
    outbox.add("shop", 1, events(1, 2))
    assert outbox.add("shop", 1, events(1, 2)) == 0  # its second message found the events still pending
    outbox.flush()
    assert [len(call) for call in notifier.calls] == [2]


def test_events_that_cannot_be_sent_stay_pending_and_their_orders_are_not_marked() -> None:
    notifier, marks = Notifier(failing_from_call=2), Marks()
    outbox = BatchedNotifications(notifier, marks)
    outbox.add("shop", 1, events(1, 6))
    outbox.add("shop", 2, events(2, 6))
    outbox.add("other", 3, events(3, 1))

    assert outbox.flush() == [("shop", 2), ("other", 3)]  # not tried once a send failed

    assert marks.marked == [("shop", [1])]


def test_a_mark_the_ledger_refuses_leaves_the_events_pending_and_raises_nothing() -> None:
    outbox = BatchedNotifications(Notifier(), Marks(refuse=True))
    outbox.add("shop", 1, events(1, 1))
    assert outbox.flush() == []  # sent; the order's next attempt would send them again (at least once)


@pytest.mark.parametrize("outlets", [0, 1])
def test_an_empty_outbox_sends_nothing_and_an_order_without_events_is_only_marked(outlets: int) -> None:
    notifier, marks = Notifier(), Marks()
    outbox = BatchedNotifications(notifier, marks)
    assert outbox.flush() == [] and notifier.calls == [] and marks.marked == []
    outbox.add("shop", 1, events(1, outlets))
    outbox.flush()
    assert [len(call) for call in notifier.calls] == ([outlets] if outlets else [])
    assert marks.marked == [("shop", [1])]  # an order without events is marked all the same


def _record(message_id: str, entity: str, entity_id: str, connection_id: str = "shop") -> dict[str, str]:
    message = ChangeMessage(
        connection_id=connection_id,
        source="ecom",
        entity=entity,  # type: ignore[arg-type]
        entity_id=entity_id,
        via="webhook",
        received_at=datetime(2026, 12, 6, tzinfo=UTC),
        payload={},
        concern="orders",
    )
    return {"messageId": message_id, "body": message.model_dump_json()}


def test_a_batch_names_the_orders_of_its_parsable_order_records_only() -> None:
    event = {
        "Records": [
            _record("m1", "order", "41"),
            _record("m2", "variant", "7"),
            {"messageId": "m3", "body": json.dumps({"not": "a change"})},
            _record("m4", "order", "41", connection_id="other"),
        ]
    }
    assert orders_named(event) == [NamedOrder("m1", "shop", 41), NamedOrder("m4", "other", 41)]


def test_every_record_of_an_order_whose_events_were_not_sent_is_failed_once_and_the_others_are_kept() -> None:
    named = [NamedOrder("m1", "shop", 41), NamedOrder("m2", "shop", 42), NamedOrder("m3", "shop", 41)]
    response = {"batchItemFailures": [{"itemIdentifier": "m3"}]}  # m3 failed on its own already

    result = with_unsent_as_failures(named, response, {("shop", 41)})

    assert result == {"batchItemFailures": [{"itemIdentifier": "m3"}, {"itemIdentifier": "m1"}]}
    assert with_unsent_as_failures(named, {"batchItemFailures": []}, set()) == {"batchItemFailures": []}
