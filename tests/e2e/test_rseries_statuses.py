"""Order statuses on R-Series through the whole local stack (`make run RUN_ARGS="--pos r-series"`).

An R-Series sale has no status, only `completed` and `voided` (KVH endpoints/sale.md): an unpaid online order is an
open sale, a paid one a completed sale with its SalePayment, a cancelled one a voided sale.
- eCom -> POS: the merchant pays or cancels the order in eCom's back office -> orders/updated webhook -> API ->
  statuses queue -> status_sync -> `PUT Sale/{id}.json` on the R-Series simulator.
- POS -> eCom: R-Series sends no webhooks, so a void at the till reaches eCom at the next poll: change poller (`Sale`
  feed) -> statuses queue -> status_sync -> `PUT orders/{id}.json` on the eCom simulator.
- Our own writes come back (the Sale feed sees our PUT, eCom sends orders/updated for ours): both sides then agree
  and nothing is written again, above all no second payment.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest
from pos_ecom_sync.models.connection import PaymentMethodSetting

from tests.e2e.conftest import RSeriesLiveStack

pytestmark = pytest.mark.e2e

# The simulated account has no "Lightspeed Payments" payment type: the operator maps eCom's integrated method to the
# POS type it is paid on (`pos-ecom-sync orders payment-method demo "Lightspeed Payments" --integrated
# --payment-type "Credit Card"`).
PAYMENT_TYPE = "Credit Card"
_emails = (f"rseries-status-{n}@example.com" for n in itertools.count())
# A status message that arrives while its order is being imported waits 30 s (`status.sync.IMPORT_WAIT_SECONDS`)
# before it looks again: an idle statuses queue can be that far off.
IDLE_TIMEOUT_S = 90.0


@pytest.fixture(scope="module")
def live(rseries_stack: RSeriesLiveStack) -> Iterator[RSeriesLiveStack]:
    rseries_stack.import_catalog()
    setting = PaymentMethodSetting(mode="integrated", payment_type_name=PAYMENT_TYPE)
    connection = rseries_stack.connection()
    rseries_stack.store().save_connection(
        connection.model_copy(update={"payment_methods": {"Lightspeed Payments": setting}})
    )
    rseries_stack.rseries.record_exchanges = rseries_stack.ecom.record_exchanges = True
    yield rseries_stack


def _payments(sale: dict[str, Any]) -> list[dict[str, Any]]:
    """A sale's SalePayments: none is "", one an object, several an array (rseries.md §2)."""
    rows = (sale.get("SalePayments") or {}).get("SalePayment") or []
    return rows if isinstance(rows, list) else [rows]


def _item_of(live: RSeriesLiveStack, sale: dict[str, Any]) -> int:
    """The ordered item of a one-item sale (its other line, if any, is the connection's shipping item)."""
    lines = sale["SaleLines"]["SaleLine"]
    shipping = str(live.rseries_stack.shipping_item_id)
    [line] = [li for li in (lines if isinstance(lines, list) else [lines]) if li["itemID"] != shipping]
    return int(line["itemID"])


def _place(live: RSeriesLiveStack, *, paid: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    """A shopper orders one item online (Lightspeed Payments, paid or not yet); the order and its R-Series sale."""
    variant = live.variants_in_stock()[0]
    order = live.ecom.place_order(
        [{"variant_id": variant["id"], "quantity": 1}],
        email=next(_emails),
        payment_status="paid" if paid else "not_paid",
    )
    return order, live.imported_sale(order)


def _sale(live: RSeriesLiveStack, order: dict[str, Any]) -> dict[str, Any]:
    [sale] = live.sales_of(order)
    return sale


def _ecom_order(live: RSeriesLiveStack, order: dict[str, Any]) -> dict[str, Any]:
    return next(o for o in live.ecom.orders() if o["id"] == order["id"])


def _sale_requests(live: RSeriesLiveStack, sale: dict[str, Any], method: str) -> int:
    """Requests our connector sent to this one sale (`GET`: a read, `PUT`: a write)."""
    path = f"/Sale/{sale['saleID']}.json"
    return sum(1 for x in list(live.rseries.exchanges) if x.method == method and x.path.endswith(path))


def _order_writes(live: RSeriesLiveStack, order: dict[str, Any]) -> int:
    return sum(1 for x in list(live.ecom.exchanges) if x.method != "GET" and f"/orders/{order['id']}" in x.path)


def _settled(live: RSeriesLiveStack, what: str) -> None:
    """Wait until status sync has handled every message so far: the webhooks delivered (queued) and the statuses
    queue empty. Not by a read of the sale: an echo of our own write, or a notice of a state already read, is settled
    without one."""
    live.ecom.wait_for_webhooks(timeout=10)
    # As long as the idle wait: a message that finds the order's lease still held (the previous message, on a loaded
    # machine) is retried when that lease ends.
    live.wait_until(lambda: live.queue_idle("statuses"), timeout=IDLE_TIMEOUT_S, what=f"status sync to handle {what}")


def _pay_in_ecom(live: RSeriesLiveStack, order: dict[str, Any]) -> dict[str, Any]:
    """The merchant marks the order paid in eCom; wait until its sale is completed in the POS."""
    live.ecom.update_order_status(order["id"], payment_status="paid")
    live.wait_until(lambda: _sale(live, order)["completed"] == "true", what="the R-Series sale completed")
    return _sale(live, order)


def test_an_unpaid_order_is_an_open_sale_that_is_paid_and_completed_once_paid_in_ecom(live: RSeriesLiveStack) -> None:
    order, sale = _place(live, paid=False)
    assert (sale["completed"], sale["voided"], _payments(sale)) == ("false", "false", [])
    item, shop = _item_of(live, sale), int(sale["shopID"])
    qoh = live.rseries.qoh(item, shop)  # an open sale has taken nothing from the shop yet

    paid = _pay_in_ecom(live, order)

    [payment] = _payments(paid)
    credit_card = next(t for t in live.rseries.resources["PaymentType"].rows.values() if t["name"] == PAYMENT_TYPE)
    assert payment["paymentTypeID"] == str(credit_card["id"])
    assert float(payment["amount"]) == float(paid["total"]) > 0
    assert payment["remoteReference"] == f"ecom-{order['id']}:paid:1"  # our key: told apart from a till payment
    assert live.rseries.qoh(item, shop) == qoh - 1  # completing the sale takes its item off the shop


def test_the_echoes_of_our_payment_never_pay_the_completed_sale_twice(live: RSeriesLiveStack) -> None:
    order, sale = _place(live, paid=False)
    _pay_in_ecom(live, order)
    writes, order_writes = _sale_requests(live, sale, "PUT"), _order_writes(live, order)

    live.poll()  # the Sale feed finds our PUT: the echo of our own write
    _settled(live, "the Sale feed's echo")
    live.ecom.update_order_status(order["id"], payment_status="paid")  # eCom says "paid" once more
    _settled(live, "eCom's orders/updated")

    assert len(_payments(_sale(live, order))) == 1
    assert (_sale_requests(live, sale, "PUT"), _order_writes(live, order)) == (writes, order_writes)


def test_an_order_paid_at_checkout_is_one_completed_sale_that_later_updates_never_pay_again(
    live: RSeriesLiveStack,
) -> None:
    order, sale = _place(live, paid=True)
    assert sale["completed"] == "true" and len(_payments(sale)) == 1  # the import paid it
    writes = _sale_requests(live, sale, "PUT")  # 1 when the POS totalled the sale otherwise than eCom (tax)

    live.poll()  # the Sale feed finds the sale the import made
    live.ecom.update_order_status(order["id"], status="processing_awaiting_shipment")  # the merchant edits it
    _settled(live, "the poll and eCom's orders/updated")

    assert len(_payments(_sale(live, order))) == 1
    assert _sale_requests(live, sale, "PUT") == writes


def test_a_cancel_in_ecom_voids_the_open_sale_which_takes_no_stock(live: RSeriesLiveStack) -> None:
    order, sale = _place(live, paid=False)
    item, shop = _item_of(live, sale), int(sale["shopID"])
    qoh = live.rseries.qoh(item, shop)

    live.ecom.update_order_status(order["id"], payment_status="cancelled")  # eCom cancels the order with it

    live.wait_until(lambda: _sale(live, order)["voided"] == "true", what="the R-Series sale voided")
    voided = _sale(live, order)
    assert voided["completed"] == "false" and _payments(voided) == []
    assert live.rseries.qoh(item, shop) == qoh


def test_a_void_at_the_till_cancels_the_ecom_order_at_the_next_poll(live: RSeriesLiveStack) -> None:
    order, sale = _place(live, paid=False)

    live.rseries.void_sale(int(sale["saleID"]))  # staff void the online sale in the POS
    assert _ecom_order(live, order)["paymentStatus"] == "not_paid"  # R-Series sends no webhook: nothing moves yet

    live.poll()

    live.wait_until(lambda: _ecom_order(live, order)["paymentStatus"] == "cancelled", what="the eCom order cancelled")
    live.ecom.wait_for_webhooks(timeout=10)  # eCom's orders/updated for our cancel: its echo
    live.wait_until(lambda: live.queue_idle("statuses"), timeout=IDLE_TIMEOUT_S, what="the echo handled")
    assert _sale_requests(live, sale, "PUT") == 0  # the voided sale is left as staff left it
