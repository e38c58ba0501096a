"""Seed behaviours of order import and status sync, each proven through the whole local stack.

Seed 004 payments: a shopper's order -> eCom orders/created webhook -> API -> orders queue -> order_import -> POS sale;
then status hints (every later eCom order webhook, and the poller's order sweep) -> statuses queue -> status_sync.
An unintegrated order already paid in eCom at import stays unpaid in the POS whatever the hints; an unpaid one changed
to Paid in eCom gets its POS payment exactly once.

Totals: the POS sale totals the eCom order (lines net of discount, shipping, taxes). The shipping charge is a line on
the connection's shipping product, found or created by the operator command `orders shipping-product --find-or-create`
(X-Series `GET /api/2.0/products?sku=`, `POST /api/2.0/products`); without one an order that charges shipping is held
with the reason, never imported short.
"""

from __future__ import annotations

import argparse
import itertools
import os
import time
from collections.abc import Iterator
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
from pos_ecom_sync.models.ledger import OrderRecord, StatusRecord
from pos_ecom_sync.state.status_store import StatusStore
from pos_ecom_sync.state.store import SyncStore

from pos_ecom_sync_cli.main import CliError
from pos_ecom_sync_cli.orders import cmd_held, cmd_payment_method, cmd_retry, cmd_shipping_product
from tests.e2e.conftest import LiveStack

pytestmark = pytest.mark.e2e

_emails = (f"order-seed-{n}@example.com" for n in itertools.count())
CENT = Decimal("0.01")


def _cli(live: LiveStack, command: Any, **args: Any) -> Any:
    """An operator command against the running stack (what `pos-ecom-sync orders ...` runs)."""
    target = SimpleNamespace(
        session=live.session,
        table_name=os.environ["TABLE_NAME"],
        store=SyncStore(os.environ["TABLE_NAME"], resource=live.session.resource("dynamodb")),
        secret_prefix=os.environ["SECRET_PREFIX"],
        secrets=live.session.client("secretsmanager"),
    )
    stack = live.stack.config.stack_name
    return command(argparse.Namespace(stack=stack, connection_id=live.connection_id, **args), target)


def _find_or_create_shipping_product(live: LiveStack) -> Any:
    return _cli(live, cmd_shipping_product, product_id=None, none=False, find_or_create=True)


@pytest.fixture(scope="module")
def live(live_stack: LiveStack) -> Iterator[LiveStack]:
    """The stack with the POS catalog in eCom and the shipping product set up as the operator does at setup."""
    live_stack.import_catalog()
    _find_or_create_shipping_product(live_stack)
    yield live_stack


def _record(live: LiveStack, order: dict[str, Any]) -> OrderRecord | None:
    return live.order_store().get_order(live.connection_id, order["id"])


def _imported(live: LiveStack, order: dict[str, Any]) -> str:
    def sale_id() -> str | None:
        record = _record(live, order)
        return record.sale_id if record is not None and record.status == "imported" else None

    found: str = live.wait_until(sale_id, timeout=60, what=f"order {order['number']} imported as a POS sale")
    time.sleep(1.1)  # eCom stamps whole seconds: a change in the second the order was placed is no status hint
    return found


def _sale(live: LiveStack, sale_id: str) -> dict[str, Any]:
    return next(s for s in live.pos.sales() if s["id"] == sale_id)


def _total(sale: dict[str, Any]) -> Decimal:
    return (Decimal(str(sale["total_price"])) + Decimal(str(sale["total_tax"]))).quantize(CENT)


def _status(live: LiveStack, order: dict[str, Any]) -> StatusRecord | None:
    store = StatusStore(os.environ["TABLE_NAME"], client=live.session.client("dynamodb"))
    return store.get(live.connection_id, order["id"])


def _statuses_idle(live: LiveStack) -> bool:
    """Nothing waiting, in flight or delayed on the statuses queue, and no webhook still to deliver."""
    if not (live.ecom.wait_for_webhooks(timeout=5) and live.pos.wait_for_webhooks(timeout=5)):
        return False
    sqs = live.session.client("sqs")
    queue = f"/{live.stack.config.stack_name}-statuses.fifo"
    url = next(u for u in sqs.list_queues()["QueueUrls"] if u.endswith(queue))
    names = [
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed",
    ]
    counts = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    return all(int(counts.get(name, 0)) == 0 for name in names)


def _place(live: LiveStack, **checkout: Any) -> dict[str, Any]:
    variant = live.variants_in_stock()[0]
    return live.ecom.place_order([{"variant_id": variant["id"], "quantity": 1}], email=next(_emails), **checkout)


# -- seed 004: payments -----------------------------------------------------------------------------------------


def test_a_cash_order_already_paid_in_ecom_stays_unpaid_in_the_pos_after_repeated_status_hints(live: LiveStack) -> None:
    order = _place(live, payment_title="Cash", payment_status="paid")
    sale_id = _imported(live, order)
    assert _sale(live, sale_id)["payments"] == []  # unintegrated: arrives unpaid even though eCom says paid

    for _ in range(3):  # the merchant saves the paid order again and again: each save is a status hint
        live.ecom.update_order_status(order["id"], payment_status="paid")
    live.poll()  # and the poller's order sweep re-queues it as a status change too

    def settled() -> StatusRecord | None:
        record = _status(live, order)
        ignored = [h for h in record.history if "already said paid (Cash)" in h["detail"]] if record else []
        return record if len(ignored) >= 3 and _statuses_idle(live) else None

    live.wait_until(settled, timeout=60, what="status sync to see the hints and record why it pays nothing")
    assert _sale(live, sale_id)["payments"] == []
    assert next(o for o in live.ecom.orders() if o["id"] == order["id"])["paymentStatus"] == "paid"


def test_a_not_paid_bank_transfer_order_changed_to_paid_in_ecom_gets_its_pos_payment_exactly_once(
    live: LiveStack,
) -> None:
    # The operator's setting: bank transfers arrive unpaid; a later Paid is recorded on the POS "Bank Deposit" type.
    mode = {"integrated": False, "unpaid": True, "remove": False, "payment_type_id": None}
    _cli(live, cmd_payment_method, title="Bank transfer", payment_type="Bank Deposit", **mode)
    order = _place(live, payment_title="Bank transfer", payment_status="not_paid")
    sale_id = _imported(live, order)
    assert _sale(live, sale_id)["payments"] == []

    live.ecom.update_order_status(order["id"], payment_status="paid")  # the transfer arrived
    live.wait_until(lambda: _sale(live, sale_id)["payments"], what="the POS payment")
    for _ in range(2):  # later hints: the merchant saves it again, and the sweep
        live.ecom.update_order_status(order["id"], payment_status="paid")
    live.poll()
    live.wait_until(lambda: _statuses_idle(live), timeout=60, what="the statuses queue to settle")

    sale = _sale(live, sale_id)
    assert [(p["name"], Decimal(str(p["amount"])).quantize(CENT)) for p in sale["payments"]] == [
        ("Bank Deposit", _total(sale))
    ]


# -- totals: shipping, discounts, taxes --------------------------------------------------------------------------


def test_an_order_with_shipping_and_a_discount_imports_with_the_pos_total_equal_to_the_ecom_total(
    live: LiveStack,
) -> None:
    variant = live.variants_in_stock()[0]
    # A discount code at checkout: the simulator's checkout has none, so the shop applies it to the new order before
    # anything can read it (the import reads the order through the API, which waits for the simulator's lock).
    with live.ecom.lock:
        order = live.ecom.place_order([{"variant_id": variant["id"], "quantity": 2}], email=next(_emails))
        [line] = live.ecom.order_products(order["id"])
        row = live.ecom.tables["orderProducts"][line["id"]]
        discount_incl = round(row["priceIncl"] * 0.1, 2)
        discount_excl = round(discount_incl / (1 + row["taxRate"]), 4)
        row.update(discountIncl=discount_incl, discountExcl=discount_excl)
        stored = live.ecom.tables["orders"][order["id"]]
        stored.update(
            priceIncl=round(stored["priceIncl"] - discount_incl, 2),
            priceExcl=round(stored["priceExcl"] - discount_excl, 4),
        )
        expected = Decimal(str(stored["priceIncl"])).quantize(CENT)
    assert order["shipmentPriceIncl"] > 0 and discount_incl > 0

    sale = _sale(live, _imported(live, order))
    assert _total(sale) == expected
    shipping = SyncStore(os.environ["TABLE_NAME"], resource=live.session.resource("dynamodb")).get_connection(
        live.connection_id
    )
    assert shipping is not None and shipping.shipping_product_id in [li["product_id"] for li in sale["line_items"]]


def test_with_no_shipping_product_and_none_creatable_an_order_charging_shipping_is_held_with_the_reason(
    live: LiveStack,
) -> None:
    _cli(live, cmd_shipping_product, product_id=None, none=True, find_or_create=False)
    for product in live.pos.products():  # and the one set up earlier is deleted in the POS: nothing to find by SKU
        if product["sku"] == "ECOM-SHIPPING":
            live.pos.delete_product(product["id"])
    pos_before = {p["id"] for p in live.pos.products()}
    live.pos.products_writable = False  # the POS refuses product creates (a token without products:write)
    try:
        with pytest.raises(CliError, match="refused to create the shipping product"):
            _find_or_create_shipping_product(live)

        order = _place(live)
        held = live.wait_until(
            lambda: [h for h in _cli(live, cmd_held) if h["order_id"] == order["id"]], what="the order held"
        )
        assert "charges shipping 8.50" in held[0]["reason"] and "no POS shipping product" in held[0]["reason"]
        assert not [s for s in live.pos.sales() if s.get("source_id") == f"ecom-{order['id']}"]
    finally:
        live.pos.products_writable = True
    assert {p["id"] for p in live.pos.products()} == pos_before  # nothing was created

    # Once the product can be created, the operator sets it up and retries the held order: it imports in full.
    assert _find_or_create_shipping_product(live)["created"]
    _cli(live, cmd_retry, order_id=order["id"])
    sale = _sale(live, _imported(live, order))
    assert _total(sale) == Decimal(str(order["priceIncl"])).quantize(CENT)
