"""Order import and product families through the whole local stack, each proven on the real path.

Orders: a shopper orders in the eCom simulator; its orders/created webhook -> API -> orders queue -> order_import ->
X-Series 2026-07 `POST /sales` with the sale id we chose. The retry of a create whose answer was lost reads the sale by
that id and adopts it; two invocations of one message at once still make one sale. Families: a new POS family of six
variants -> the poller's product feed -> products queue -> product_sync, which reads the family through
`search?type=products&variant_parent_id=` (never a `family_id` filter) and creates all six in eCom.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from pos_ecom_sync.models.ledger import OrderRecord
from pos_ecom_sync.orders.sale import sale_uuid

from local_stack.lambda_events import sqs_event
from tests.e2e.conftest import LiveStack

pytestmark = pytest.mark.e2e

_emails = (f"order-flow-{n}@example.com" for n in itertools.count())
CREATE = "POST /api/2026-07/sales"


@pytest.fixture(scope="module")
def live(live_stack: LiveStack) -> Iterator[LiveStack]:
    """The stack with the POS catalog in eCom (the first poll imports it)."""
    live_stack.import_catalog()
    yield live_stack


def _record(live: LiveStack, order: dict[str, Any]) -> OrderRecord | None:
    return live.order_store().get_order(live.connection_id, order["id"])


def _sales_of(live: LiveStack, order: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for s in live.pos.sales() if s.get("source_id") == f"ecom-{order['id']}"]


def _creates(live: LiveStack) -> int:
    return int(live.pos.stats()["calls_by_route"].get(CREATE, 0))


def _pos_variant(live: LiveStack, ecom_variant: dict[str, Any]) -> dict[str, Any]:
    return next(p for p in live.pos.products() if p["sku"] == ecom_variant["sku"])


def _total_stock(live: LiveStack, product_id: str) -> int:
    return sum(live.pos.level(product_id, o["id"]) for o in live.pos.outlets())


def _message(live: LiveStack, order: dict[str, Any]) -> dict[str, Any]:
    """The orders-queue message webhook_ingest queues for an orders/created webhook, as SQS hands it out."""
    body = {
        "connection_id": live.connection_id, "source": "ecom", "entity": "order", "entity_id": str(order["id"]),
        "via": "webhook", "received_at": "2026-11-23T00:00:00Z", "payload": {"id": order["id"]},
        "action": "created", "concern": "orders",
    }  # fmt: skip
    group = f"{live.connection_id}:ecom:order:{order['id']}"
    now_ms = str(int(time.time() * 1000))
    attributes = {
        "MessageGroupId": group,
        "MessageDeduplicationId": str(uuid.uuid4()),
        "ApproximateReceiveCount": "1",
        "ApproximateFirstReceiveTimestamp": now_ms,
        "SentTimestamp": now_ms,
        "SenderId": "AIDAEXAMPLE",
        "SequenceNumber": "18849496460467696128",
    }
    return {"MessageId": str(uuid.uuid4()), "ReceiptHandle": "rh", "Body": json.dumps(body), "Attributes": attributes}


def _orders_queue_arn(live: LiveStack) -> str:
    assert live.stack.resources is not None
    return next(s.queue_arn for s in live.stack.resources.subscriptions if s.function == "OrderImportFunction")


def test_a_lost_answer_to_the_sale_create_is_retried_and_the_sale_adopted_not_made_twice(live: LiveStack) -> None:
    variant = live.variants_in_stock()[0]
    product = _pos_variant(live, variant)
    stock_before, creates_before = _total_stock(live, product["id"]), _creates(live)
    live.pos.lose_next_sale_answers(1)  # the POS applies the create; its answer never arrives

    order = live.ecom.place_order([{"variant_id": variant["id"], "quantity": 1}], email=next(_emails))
    [made] = live.wait_until(lambda: _sales_of(live, order), what="the sale made by the create whose answer was lost")
    assert made["id"] == sale_uuid(live.connection_id, order["id"])  # our id, chosen before the create
    live.wait_until(
        lambda: (r := _record(live, order)) is not None and r.status == "importing" and r.lease_until == 0,
        what="the failed attempt released its claim, the sale id recorded",
    )

    # SQS hands the message out again once its visibility timeout (360 s) has passed: the same message, invoked now.
    live.sandbox("OrderImportFunction").invoke(sqs_event([_message(live, order)], _orders_queue_arn(live)))
    record = live.wait_until(
        lambda: (r := _record(live, order)) is not None and r.status == "imported" and r,
        what=f"order {order['number']} imported",
    )
    assert record.adopted and record.sale_id == made["id"]
    assert [s["id"] for s in _sales_of(live, order)] == [made["id"]]  # one sale
    assert _creates(live) - creates_before == 1  # the retry read the sale by its id, sent no second create
    assert _total_stock(live, product["id"]) == stock_before - 1  # stock taken once
    assert live.order_store().order_for_sale(live.connection_id, made["id"]) == record


def test_two_workers_given_the_same_order_message_at_once_make_one_sale(live: LiveStack) -> None:
    variant = live.variants_in_stock()[1]
    live.ecom.set_faults(webhook_loss_rate=1.0)  # this order reaches the stack only through the message below
    try:
        order = live.ecom.place_order([{"variant_id": variant["id"], "quantity": 1}], email=next(_emails))
    finally:
        live.ecom.set_faults(webhook_loss_rate=0.0)
    event = sqs_event([_message(live, order)], _orders_queue_arn(live))
    creates_before = _creates(live)

    start = threading.Barrier(2)
    results: list[Any] = []

    def invoke() -> None:
        sandbox = live.sandbox("OrderImportFunction")  # Lambda runs concurrent invocations in separate sandboxes
        start.wait(10)
        try:
            results.append(sandbox.invoke(event))
        except Exception as exc:  # reported below with the others
            results.append(exc)

    workers = [threading.Thread(target=invoke) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)

    assert results == [{"batchItemFailures": []}] * 2  # one imports; the other leaves it to the live claim
    record = _record(live, order)
    assert record is not None and record.status == "imported"
    assert [s["id"] for s in _sales_of(live, order)] == [record.sale_id]
    assert _creates(live) - creates_before == 1


def test_a_new_family_of_six_variants_reaches_ecom_whole_through_the_variant_search(live: LiveStack) -> None:
    live.pos.seed_catalog(1, 6, seed=606)
    parent = max((p for p in live.pos.products() if p["has_variants"]), key=lambda p: p["version"])
    skus = {p["sku"] for p in live.pos.products() if p["variant_parent_id"] == parent["id"]}
    assert len(skus) == 6
    searches = live.pos.stats()["calls_by_route"].get("GET /api/2.0/search", 0)

    live.poll()  # the product feed queues the family; product_sync reads it and writes eCom

    def arrived() -> set[str]:
        return {v["sku"] for v in live.ecom.variants() if v.get("sku") in skus}

    assert live.wait_until(lambda: arrived() == skus and arrived(), timeout=60, what="all six variants in eCom")
    products = {json.dumps(v.get("product"), sort_keys=True) for v in live.ecom.variants() if v.get("sku") in skus}
    assert len(products) == 1  # one eCom product holds the six
    assert live.pos.stats()["calls_by_route"].get("GET /api/2.0/search", 0) > searches  # read through search
