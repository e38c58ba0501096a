"""Order statuses and returns through the whole local stack, each proven on the real path.

An online order is placed in the eCom simulator and imported by the stack itself (orders/created webhook -> API ->
orders queue -> order_import -> POS). The test then acts as a person in one back office (the POS user through the
X-Series simulator's Python API, the merchant through eCom's) and waits for the other side: the vendor's webhook
(X-Series sale.update, eCom orders/updated, shipments/created) -> API -> statuses queue -> status_sync -> the other
vendor's API. POS fulfilments are the 2026-07 Fulfillments API's (type, state, version); returns start parked.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pos_ecom_sync.models.ledger import StatusRecord
from pos_ecom_sync.state.status_store import StatusStore
from pos_ecom_sync.status.sync import IMPORT_WAIT_SECONDS

from local_stack.demo import DEMO_SECRETS
from tests.e2e.conftest import LiveStack
from tests.support import pos_form

pytestmark = pytest.mark.e2e

_emails = (f"status-flow-{n}@example.com" for n in itertools.count())


@pytest.fixture(scope="module")
def live(live_stack: LiveStack) -> Iterator[LiveStack]:
    """The stack with the POS catalog in eCom (the first poll imports it), every exchange recorded."""
    live_stack.import_catalog()
    live_stack.pos.record_exchanges = live_stack.ecom.record_exchanges = True
    yield live_stack


def _ledger(live: LiveStack, order: dict[str, Any]) -> StatusRecord | None:
    store = StatusStore(os.environ["TABLE_NAME"], client=live.session.client("dynamodb"))
    return store.get(live.connection_id, order["id"])


def _place(live: LiveStack, *, pickup: bool = False) -> tuple[dict[str, Any], str]:
    """A shopper orders one item online; returns the order and the POS sale the stack imported it as."""
    variant = live.variants_in_stock()[0]
    order = live.ecom.place_order(
        [{"variant_id": variant["id"], "quantity": 1}],
        email=next(_emails),
        shipment_title="Pick up in store" if pickup else "Courier",
        is_pickup=pickup,
    )

    def imported() -> str | None:
        record = live.order_store().get_order(live.connection_id, order["id"])
        return record.sale_id if record is not None and record.status == "imported" else None

    sale_id = live.wait_until(imported, timeout=60, what=f"order {order['number']} imported as a POS sale")
    kinds = live.wait_until(lambda: {f["type"] for f in live.pos.fulfillments(sale_id)}, what="its fulfilments")
    assert kinds == {"PICKUP" if pickup else "DISPATCH"}
    return order, sale_id


def _ecom_order(live: LiveStack, order: dict[str, Any]) -> dict[str, Any]:
    return next(o for o in live.ecom.orders() if o["id"] == order["id"])


def _states(live: LiveStack, sale_id: str) -> list[str]:
    return [f["state"] for f in live.pos.fulfillments(sale_id)]


def _sale(live: LiveStack, sale_id: str) -> dict[str, Any]:
    return next(s for s in live.pos.sales() if s["id"] == sale_id)


def _order_writes(live: LiveStack, order: dict[str, Any]) -> list[str]:
    """Every write our connector sent to this eCom order (status updates, credits)."""
    return [
        f"{x.method} {x.path}"
        for x in list(live.ecom.exchanges)
        if x.method != "GET" and f"/orders/{order['id']}" in x.path
    ]


def _credited(live: LiveStack, order: dict[str, Any]) -> int:
    return sum(int(line["quantityRefunded"]) for line in live.ecom.order_products(order["id"]))


# Longer than one retry of a message that found the order's import (or its lease) busy.
IDLE_S = 2 * IMPORT_WAIT_SECONDS + 15


def _shipped(live: LiveStack) -> tuple[dict[str, Any], str]:
    """A delivery order the merchant shipped in eCom: its POS sale is fulfilled and closed (returnable)."""
    order, sale_id = _place(live)
    live.ecom.create_shipment(order["id"])
    live.wait_until(lambda: _sale(live, sale_id)["status"] == "DISPATCHED_CLOSED", what="the POS sale fulfilled")
    return order, sale_id


# -- fulfilments -------------------------------------------------------------------------------------------------


def test_shipped_in_ecom_completes_the_pos_dispatch_fulfilment(live: LiveStack) -> None:
    order, sale_id = _place(live)
    assert _states(live, sale_id) == ["OPEN"]

    live.ecom.create_shipment(order["id"])  # shipments/created + orders/updated (completed_shipped)

    live.wait_until(lambda: _states(live, sale_id) == ["FULFILLED"], what="the dispatch fulfilment FULFILLED")
    assert _sale(live, sale_id)["status"] == "DISPATCHED_CLOSED"
    fulfils = [x for x in list(live.pos.exchanges) if x.path == "/api/2026-07/fulfillments/fulfill"]
    assert [x.status for x in fulfils] == [200]
    assert json.loads(fulfils[0].body)["data"]  # the fulfilments it completed


def test_packed_in_the_pos_makes_the_pickup_order_ready_for_pickup_in_ecom(live: LiveStack) -> None:
    order, sale_id = _place(live, pickup=True)

    live.pos.pack_fulfillments(sale_id)  # the POS user packs it (Fulfillments page)

    live.wait_until(
        lambda: _ecom_order(live, order)["status"] == "processing_ready_for_pickup", what="eCom ready for pickup"
    )
    writes = _order_writes(live, order)
    assert writes and all(w.startswith("PUT ") and w.endswith(f"/orders/{order['id']}.json") for w in writes)


def test_ready_for_pickup_in_ecom_packs_the_pos_pickup_fulfilment(live: LiveStack) -> None:
    order, sale_id = _place(live, pickup=True)

    live.ecom.update_order_status(order["id"], status="processing_ready_for_pickup")

    live.wait_until(lambda: _states(live, sale_id) == ["PACKED"], what="the pickup fulfilment PACKED")
    [fulfillment] = live.pos.fulfillments(sale_id)
    assert all(li["packed_quantity"] == li["quantity"] for li in fulfillment["line_items"])


def test_a_pack_at_a_stale_version_gets_409_and_is_settled_at_the_new_version(live: LiveStack) -> None:
    order, sale_id = _place(live, pickup=True)
    [fulfillment] = live.pos.fulfillments(sale_id)
    # A POS user starts picking just as our pack arrives: the version it names is stale by then.
    live.pos.before_next_pack(lambda row: live.pos.start_fulfillment(sale_id))

    live.ecom.update_order_status(order["id"], status="processing_ready_for_pickup")

    live.wait_until(lambda: _states(live, sale_id) == ["PACKED"], what="the pickup fulfilment PACKED after a 409")
    path = f"/api/2026-07/fulfillments/{fulfillment['id']}/pack"
    packs = [x for x in list(live.pos.exchanges) if x.path == path]
    assert [x.status for x in packs] == [409, 200]
    assert [json.loads(x.body)["data"]["version"] for x in packs[1:]] == [3]  # opened 1, started 2, packed 3


def test_in_progress_in_the_pos_causes_no_ecom_write(live: LiveStack) -> None:
    order, sale_id = _place(live, pickup=True)
    # A status message that finds the import still running waits IMPORT_WAIT_SECONDS (30 s) before it looks again.
    live.wait_until(lambda: live.queue_idle("statuses"), timeout=IDLE_S, what="the import's echoes handled")
    writes = _order_writes(live, order)

    live.pos.start_fulfillment(sale_id)  # "In progress" (STARTED)

    live.wait_until(
        lambda: "STARTED" in ((_ledger(live, order) or StatusRecord(order["id"])).pos_seen or ""),
        what="status sync to read the STARTED fulfilment",
    )
    live.wait_until(lambda: live.queue_idle("statuses"), timeout=IDLE_S, what="the statuses queue idle")
    assert _order_writes(live, order) == writes
    assert _ecom_order(live, order)["status"] == "processing_awaiting_pickup"


# -- returns -----------------------------------------------------------------------------------------------------


def test_a_parked_then_voided_return_refunds_nothing(live: LiveStack) -> None:
    order, sale_id = _shipped(live)
    returned = live.pos.start_return(sale_id)  # parked (SAVED), as the return action makes it
    assert (returned["status"], returned["return_for"]) == ("SAVED", sale_id)

    def ledger_says(word: str) -> bool:
        record = _ledger(live, order)
        return record is not None and any(word in h["detail"] for h in record.history if h["kind"] == "ignored")

    live.wait_until(lambda: ledger_says("parked"), what="status sync to see the parked return")
    live.pos.void_return(returned["id"])
    live.wait_until(lambda: ledger_says("voided"), what="status sync to see the voided return")
    live.wait_until(lambda: live.queue_idle("statuses"), timeout=IDLE_S, what="the statuses queue idle")

    assert _credited(live, order) == 0
    assert not any("credit" in w for w in _order_writes(live, order))


def test_a_completed_return_refunds_exactly_once(live: LiveStack) -> None:
    order, sale_id = _shipped(live)
    returned = live.pos.start_return(sale_id)
    live.pos.complete_return(returned["id"])  # the POS user finishes it: cash back, items back in stock

    live.wait_until(lambda: _credited(live, order) == 1, what="the eCom order credited")
    credits = [w for w in _order_writes(live, order) if w.endswith("/credit.json")]
    assert len(credits) == 1
    answer = next(json.loads(x.body) for x in list(live.ecom.exchanges) if x.path.endswith("/credit.json"))
    [line] = live.ecom.order_products(order["id"])
    assert answer["credit"]["orderProducts"] == [{"id": line["id"], "quantity": 1}]

    # The return's webhook again (a vendor retry) and a poller sweep: both re-read, neither credits again.
    response = httpx.post(
        f"{live.api_url}/connections/{live.connection_id}/webhooks/pos",
        params={"token": DEMO_SECRETS["pos_webhook_token"]},
        content=pos_form("sale.update", {"id": returned["id"], "return_for": sale_id, "status": "CLOSED"}),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code < 300, response.text
    live.poll()
    live.wait_until(lambda: live.queue_idle("statuses"), timeout=60, what="the replays handled")
    assert _credited(live, order) == 1
    assert len([w for w in _order_writes(live, order) if w.endswith("/credit.json")]) == 1
