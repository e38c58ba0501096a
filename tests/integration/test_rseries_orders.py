"""R-Series order import and order statuses through the real wiring: a connection with `pos_profile = "r-series"`
(OAuth pair in Secrets Manager, token pair and rate budget in moto DynamoDB), `runtime.order_importer` and
`runtime.status_sync` building `RSeriesOrders` / `RSeriesSales` over the R-Series client, against the R-Series and
eCom simulators. Lines are matched by SKU (`customSku`) or EAN (`itemCode`): no catalog sync runs here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from pos_ecom_sync import runtime
from pos_ecom_sync.models.connection import Connection, PaymentMethodSetting
from pos_ecom_sync.models.messages import ChangeMessage
from pos_ecom_sync.state.order_store import OrderStore

from local_stack.demo import DEMO_SECRETS
from local_stack.simulators.ecom import EcomSimulator
from local_stack.simulators.rseries import RSeriesSimulator
from tests.integration.conftest import Deployment

CONNECTION = "rshop"
SHOP_A, SHOP_B = 1, 2
CREDIT_CARD = "Credit Card"
ECOM_TAX_RATE = 0.15  # the eCom simulator's  # a payment type every simulated R-Series account has


class Killed(BaseException):
    """The worker's process dying (nothing catches it)."""


@dataclass
class Rig:
    deployment: Deployment
    pos: RSeriesSimulator
    ecom: EcomSimulator
    items: dict[str, int]  # eCom variant sku -> R-Series itemID
    shipping_item: int

    @property
    def connection(self) -> Connection:
        found = self.deployment.store.get_connection(CONNECTION)
        assert found is not None
        return found

    @property
    def ledger(self) -> OrderStore:
        return OrderStore(self.deployment.env["TABLE_NAME"], client=self.deployment.session.client("dynamodb"))

    def variant(self, n: int) -> dict[str, Any]:
        return sorted(self.ecom.variants(), key=lambda v: v["sku"])[n]

    def place(self, variant: dict[str, Any], quantity: int = 1, **kwargs: Any) -> dict[str, Any]:
        kwargs.setdefault("email", "mira.okafor@example.com")
        return self.ecom.place_order(
            [{"variant_id": variant["id"], "quantity": quantity}], allow_backorder=True, **kwargs
        )

    def import_order(self, order: dict[str, Any]) -> Any:
        return runtime.order_importer(self.connection).import_order(order["id"])

    def sales_of(self, order: dict[str, Any]) -> list[dict[str, Any]]:
        return [s for s in self.pos.sales() if s["referenceNumber"] == f"ecom-{order['id']}"]

    def sale_of(self, order: dict[str, Any]) -> dict[str, Any]:
        sales = self.sales_of(order)
        assert len(sales) == 1, f"{len(sales)} R-Series sales for order {order['number']}"
        return sales[0]

    def status(self, source: str, entity: str, entity_id: str, payload: dict[str, Any] | None = None) -> Any:
        message = ChangeMessage(
            connection_id=CONNECTION,
            source=source,  # type: ignore[arg-type]
            entity=entity,  # type: ignore[arg-type]
            entity_id=entity_id,
            via="poll",
            received_at=datetime.now(UTC),
            payload=payload or {},
            concern="statuses",
        )
        return runtime.status_sync(self.connection).handle(message)

    def expire_leases(self) -> None:
        """A dead worker's claims expire before SQS redelivers its message: fast-forward that."""
        table = self.deployment.session.resource("dynamodb").Table(self.deployment.env["TABLE_NAME"])
        items = table.query(KeyConditionExpression="pk = :pk", ExpressionAttributeValues={":pk": f"CONN#{CONNECTION}"})
        for item in items["Items"]:
            if str(item["sk"]).startswith(("ORDER#", "EMAIL#")) and "lease_until" in item:
                table.update_item(
                    Key={"pk": item["pk"], "sk": item["sk"]},
                    UpdateExpression="SET lease_until = :zero",
                    ExpressionAttributeValues={":zero": 0},
                )


@pytest.fixture
def pos_tax_rate() -> float:
    """The POS's sales tax (the simulator's one rate): by default none, so its totals differ from eCom's."""
    return 0.0


@contextmanager
def rseries_shop(
    deployment: Deployment, pos: RSeriesSimulator, *, pos_sku: Callable[[int, str], str] = lambda n, sku: sku
) -> Iterator[tuple[EcomSimulator, dict[str, int], int]]:
    """Both simulators running: eCom's seeded catalog, each of its variants an R-Series item (SKU `pos_sku(n, eCom
    SKU)`, its EAN, 5 at each shop), a shipping item, and the R-Series connection with its OAuth pair in Secrets
    Manager. Yields (eCom simulator, eCom SKU -> itemID, shipping itemID); stops both after."""
    ecom = EcomSimulator(
        api_key=DEMO_SECRETS["ecom_api_key"],
        api_secret=DEMO_SECRETS["ecom_api_secret"],
        webhook_secret=DEMO_SECRETS["ecom_webhook_secret"],
        seed=3,
    )
    pos.start(), ecom.start()
    try:
        ecom.seed_catalog(2, 2, seed=3)
        items = {
            variant["sku"]: pos.add_item(
                f"Item {n}", 20.0, custom_sku=pos_sku(n, variant["sku"]), ean=variant["ean"], qoh={SHOP_A: 5, SHOP_B: 5}
            )
            for n, variant in enumerate(sorted(ecom.variants(), key=lambda v: v["sku"]))
        }
        shipping = pos.add_item("Shipping", 0.0, custom_sku="ECOM-SHIPPING", item_type="non_inventory")
        registers = {r["shopID"]: r["registerID"] for r in pos_registers(pos)}
        grant = pos.issue_tokens()
        connection = Connection(
            connection_id=CONNECTION,
            pos_profile="r-series",
            pos_base_url=pos.url,
            pos_account_id=str(pos.account_id),
            ecom_base_url=ecom.url,
            online_register_id=registers[str(SHOP_A)],
            connected_outlet_ids=[str(SHOP_A), str(SHOP_B)],
            primary_outlet_id=str(SHOP_A),
            shipping_product_id=str(shipping),
            payment_methods={
                "Lightspeed Payments": PaymentMethodSetting(mode="integrated", payment_type_name=CREDIT_CARD)
            },
        )
        secrets = {
            **{k: v for k, v in DEMO_SECRETS.items() if k.startswith("ecom_")},
            "pos_client_id": pos.client_id,
            "pos_client_secret": pos.client_secret,
            "pos_refresh_token": grant["refresh_token"],
            "pos_access_token": grant["access_token"],
        }
        deployment.add_connection(connection, secrets)
        yield ecom, items, shipping
    finally:
        pos.stop()
        ecom.stop()


@pytest.fixture
def rig(deployment: Deployment, pos_tax_rate: float) -> Iterator[Rig]:
    pos = RSeriesSimulator(seed=3, shops=2, registers=2, rate_limit=False, tax_rate=pos_tax_rate)
    # Variant 3 is in the POS under another SKU: only its EAN (the POS's itemCode) finds it.
    with rseries_shop(deployment, pos, pos_sku=lambda n, sku: sku if n != 3 else f"POS-{n}") as (ecom, items, ship):
        yield Rig(deployment, pos, ecom, items, ship)


def pos_registers(pos: RSeriesSimulator) -> list[dict[str, str]]:
    return [{"registerID": str(r["id"]), "shopID": str(r["shop_id"])} for r in pos.resources["Register"].rows.values()]


def lines_of(sale: dict[str, Any]) -> list[dict[str, Any]]:
    lines = sale["SaleLines"]["SaleLine"] if sale["SaleLines"] else []
    return lines if isinstance(lines, list) else [lines]


def payments_of(sale: dict[str, Any]) -> list[dict[str, Any]]:
    payments = sale["SalePayments"]["SalePayment"] if sale["SalePayments"] else []
    return payments if isinstance(payments, list) else [payments]


# -- order import ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("pos_tax_rate", [ECOM_TAX_RATE])
def test_a_pos_taxing_like_ecom_takes_the_paid_sale_in_one_request_at_the_ecom_total(rig: Rig) -> None:
    order = rig.place(rig.variant(0), 2)
    result = rig.import_order(order)

    sale = rig.sale_of(order)
    assert sale["completed"] == "true" and sale["total"] == f"{order['priceIncl']:g}"
    assert not any("totals the sale" in w for w in result.warnings)
    assert not any("its own id" in w for w in result.warnings)  # R-Series always numbers its sales: no news
    writes = {k: n for k, n in rig.pos.calls_by_route.items() if k.startswith(("POST", "PUT")) and "/Sale" in k}
    assert writes == {"POST /API/V3/Account/{accountID}/Sale.json": 1}  # the documented one-request completed sale


def test_a_pos_taxing_otherwise_gets_the_sale_open_then_paid_its_own_total_with_a_warning(rig: Rig) -> None:
    order = rig.place(rig.variant(0), 2)
    result = rig.import_order(order)

    sale = rig.sale_of(order)
    [payment] = payments_of(sale)
    assert sale["completed"] == "true" and payment["amount"] == sale["total"] != f"{order['priceIncl']:g}"
    assert any("totals the sale" in w for w in result.warnings)


def test_a_paid_online_order_becomes_one_completed_r_series_sale_paid_by_its_integrated_method(rig: Rig) -> None:
    variant = rig.variant(0)
    rig.pos.add_customer("Mira", "Okafor", email="mira.okafor@example.com")
    order = rig.place(variant, 2)

    result = rig.import_order(order)

    assert result.outcome == "imported"
    sale = rig.sale_of(order)
    assert sale["referenceNumberSource"] == "eCom" and sale["completed"] == "true" and sale["voided"] == "false"
    assert sale["shopID"] == str(SHOP_A) and sale["registerID"] == rig.connection.online_register_id
    mira = next(c for c in rig.pos.customers() if c["firstName"] == "Mira")
    assert sale["customerID"] == mira["customerID"]  # matched through Contact.email, not created
    item = str(rig.items[variant["sku"]])
    assert {(li["itemID"], li["unitQuantity"]) for li in lines_of(sale)} >= {(item, "2")}
    [payment] = payments_of(sale)
    credit_card = next(t for t in rig.pos.resources["PaymentType"].rows.values() if t["name"] == CREDIT_CARD)
    assert payment["paymentTypeID"] == str(credit_card["id"]) and payment["remoteReference"]
    assert payment["amount"] == sale["total"]
    assert rig.pos.qoh_of(rig.items[variant["sku"]], SHOP_A) == 3  # completing took the stock at the shop
    record = rig.ledger.get_order(CONNECTION, order["id"])
    assert record is not None and record.status == "imported" and record.sale_id == sale["saleID"]
    assert result.events_sent == 1  # the shop selling it is told, as for any POS (the plan's one outlet)


def test_an_unpaid_order_stays_an_open_sale_and_a_new_buyer_is_created_once(rig: Rig) -> None:
    order = rig.place(rig.variant(1), email="ana.silva@example.com", payment_status="not_paid")
    rig.import_order(order)

    sale = rig.sale_of(order)
    assert sale["completed"] == "false" and payments_of(sale) == []
    [ana] = [c for c in rig.pos.customers() if c["firstName"] == "Ana"]
    assert sale["customerID"] == ana["customerID"]

    second = rig.place(rig.variant(2), email="ana.silva@example.com", payment_status="not_paid")
    rig.import_order(second)
    assert rig.sale_of(second)["customerID"] == ana["customerID"]
    assert len([c for c in rig.pos.customers() if c["firstName"] == "Ana"]) == 1


def test_a_line_only_its_ean_matches_is_sold_as_the_item_with_that_ean(rig: Rig) -> None:
    variant = rig.variant(3)  # its SKU is not in the POS; its EAN is
    order = rig.place(variant, 1)
    result = rig.import_order(order)

    assert result.outcome == "imported", result.held_reason
    items = {li["itemID"] for li in lines_of(rig.sale_of(order))}
    assert str(rig.items[variant["sku"]]) in items


def test_a_retry_after_a_crash_between_create_and_ledger_adopts_the_sale_instead_of_a_second(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    order = rig.place(rig.variant(0), 1)
    original = OrderStore.complete_order

    def dies(*args: Any, **kwargs: Any) -> Any:
        raise Killed

    monkeypatch.setattr(OrderStore, "complete_order", dies)
    with pytest.raises(Killed):
        rig.import_order(order)
    assert len(rig.sales_of(order)) == 1  # the sale exists; the ledger does not know it

    monkeypatch.setattr(OrderStore, "complete_order", original)
    rig.expire_leases()
    result = rig.import_order(order)

    assert result.outcome == "adopted"
    sale = rig.sale_of(order)  # still exactly one
    record = rig.ledger.get_order(CONNECTION, order["id"])
    assert record is not None and record.status == "imported" and record.sale_id == sale["saleID"]


def stock_queue_messages(rig: Rig) -> list[ChangeMessage]:
    """Drain the stock queue: what the order and status workers asked the stock worker to do."""
    found: list[ChangeMessage] = []
    while batch := rig.deployment.sqs.receive_message(
        QueueUrl=rig.deployment.queue_url("stock"), MaxNumberOfMessages=10
    ).get("Messages", []):
        for message in batch:
            found.append(ChangeMessage.model_validate_json(message["Body"]))
            rig.deployment.sqs.delete_message(
                QueueUrl=rig.deployment.queue_url("stock"), ReceiptHandle=message["ReceiptHandle"]
            )
    return found


def reservations(messages: list[ChangeMessage]) -> list[tuple[str, int, int | None]]:
    return [(m.entity_id, m.payload["order_id"], m.payload["quantity"]) for m in messages if m.entity == "reservation"]


def test_an_unpaid_order_holds_its_units_and_a_paid_one_holds_nothing(rig: Rig) -> None:
    unpaid, paid = rig.variant(1), rig.variant(2)
    order = rig.place(unpaid, 2, payment_status="not_paid")
    rig.import_order(order)
    assert reservations(stock_queue_messages(rig)) == [(str(rig.items[unpaid["sku"]]), order["id"], 2)]
    record = rig.ledger.get_order(CONNECTION, order["id"])
    assert record is not None and record.stock_held == (str(rig.items[unpaid["sku"]]),)

    rig.import_order(rig.place(paid, 1))  # completed at once: R-Series took the units
    assert reservations(stock_queue_messages(rig)) == []


def test_an_open_sale_adopted_after_a_crash_is_held_by_status_sync_and_released_when_voided_in_the_pos(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    variant = rig.variant(0)
    item = str(rig.items[variant["sku"]])
    order = rig.place(variant, 1, payment_status="not_paid")
    monkeypatch.setattr(OrderStore, "complete_order", lambda *args, **kwargs: (_ for _ in ()).throw(Killed()))
    monkeypatch.setattr(
        "pos_ecom_sync.queues.ChangePublisher.publish", lambda *args, **kwargs: (_ for _ in ()).throw(Killed())
    )
    with pytest.raises(Killed):
        rig.import_order(order)  # died after creating the open sale, before its holds went out
    monkeypatch.undo()
    rig.expire_leases()
    assert rig.import_order(order).outcome == "adopted"
    assert reservations(stock_queue_messages(rig)) == []  # the adopted sale's lines are not the importer's to know

    result = rig.status("ecom", "order", str(order["id"]))
    assert any("held 1 unit(s)" in line for line in result.applied), result
    assert reservations(stock_queue_messages(rig)) == [(item, order["id"], 1)]
    assert rig.status("ecom", "order", str(order["id"])).applied == []  # held once

    sale = rig.sale_of(order)
    rig.pos.void_sale(int(sale["saleID"]))
    payload = {"saleID": sale["saleID"], "referenceNumber": f"ecom-{order['id']}", "referenceNumberSource": "eCom"}
    rig.status("pos", "sale", sale["saleID"], payload)

    assert reservations(stock_queue_messages(rig)) == [(item, order["id"], None)]
    record = rig.ledger.get_order(CONNECTION, order["id"])
    assert record is not None and record.stock_held == ()


def test_a_cancelled_order_becomes_a_voided_sale_that_takes_no_stock(rig: Rig) -> None:
    variant = rig.variant(0)
    order = rig.place(variant, 1, payment_status="cancelled")
    rig.import_order(order)

    sale = rig.sale_of(order)
    assert sale["voided"] == "true" and sale["completed"] == "false" and payments_of(sale) == []
    assert rig.pos.qoh_of(rig.items[variant["sku"]], SHOP_A) == 5


def test_an_order_without_stock_at_the_register_shop_is_sold_from_the_shop_holding_it(rig: Rig) -> None:
    variant = rig.variant(1)
    rig.pos.set_qoh(rig.items[variant["sku"]], SHOP_A, 0)
    order = rig.place(variant, 2)
    rig.import_order(order)

    sale = rig.sale_of(order)
    assert sale["shopID"] == str(SHOP_B) and sale["completed"] == "true"
    assert rig.pos.qoh_of(rig.items[variant["sku"]], SHOP_B) == 3


# -- statuses ----------------------------------------------------------------------------------------------------


def test_an_ecom_payment_marked_paid_later_is_recorded_on_the_r_series_sale(rig: Rig) -> None:
    order = rig.place(rig.variant(0), 1, payment_status="not_paid")
    rig.import_order(order)
    assert rig.sale_of(order)["completed"] == "false"

    rig.ecom.update_order_status(order["id"], payment_status="paid")
    result = rig.status("ecom", "order", str(order["id"]))

    assert result.outcome == "synced", result.ignored
    sale = rig.sale_of(order)
    [payment] = payments_of(sale)
    assert payment["amount"] == sale["total"] and sale["completed"] == "true"
    # The echo pays nothing again; the sale it reads is complete, so the units held for it are released.
    echo = rig.status("ecom", "order", str(order["id"]))
    assert [line for line in echo.applied if not line.startswith("released the units held")] == [], echo
    assert rig.status("ecom", "order", str(order["id"])).outcome == "in step"


class SaleFeed:
    """The R-Series Sale feed as the change poller walks it (`runtime.pos_change_feeds`): each `changes()` is the
    messages of the rows changed since the last call."""

    def __init__(self, rig: Rig) -> None:
        feeds = runtime.pos_change_feeds(rig.connection).change_feeds(rig.connection, page_size=100, family_of=str)
        self.feed = next(f for f in feeds if f.name == "pos:Sale")
        self.cursor: str | None = None
        self.changes()

    def changes(self) -> list[ChangeMessage]:
        messages: list[ChangeMessage] = []
        while True:
            page = self.feed.read(self.cursor)
            messages += self.feed.to_messages(page.rows, datetime.now(UTC))
            self.cursor = page.cursor or self.cursor
            if not page.more:
                return messages


@pytest.mark.parametrize("payment_status", ["paid", "cancelled"])
def test_the_sale_feed_echo_of_our_payment_or_void_reads_nothing_and_releases_the_held_units(
    rig: Rig, payment_status: str
) -> None:
    variant = rig.variant(0)
    order = rig.place(variant, 1, payment_status="not_paid")
    rig.import_order(order)  # an open sale, its unit held back from the online stock
    stock_queue_messages(rig)
    feed = SaleFeed(rig)
    rig.ecom.update_order_status(order["id"], payment_status=payment_status)
    assert rig.status("ecom", "order", str(order["id"])).outcome == "synced"  # completed (paid in full) or voided

    [echo] = feed.changes()  # our PUT moved the sale's updatetime: the feed brings it back
    result = runtime.status_sync(rig.connection).handle(echo)

    assert (result.pos_calls, result.ecom_calls) == (0, 0), result
    assert any(line.startswith("released the units held") for line in result.applied), result
    assert reservations(stock_queue_messages(rig)) == [(str(rig.items[variant["sku"]]), order["id"], None)]
    record = rig.ledger.get_order(CONNECTION, order["id"])
    assert record is not None and record.stock_held == ()
    # The same row polled again (a replay): read this time, and it finds nothing left to do.
    again = runtime.status_sync(rig.connection).handle(echo)
    assert again.pos_calls > 0 and again.applied == [] and reservations(stock_queue_messages(rig)) == []
    assert len(payments_of(rig.sale_of(order))) == (1 if payment_status == "paid" else 0)


def test_an_ecom_cancel_voids_the_open_r_series_sale(rig: Rig) -> None:
    order = rig.place(rig.variant(0), 1, payment_status="not_paid")
    rig.import_order(order)

    rig.ecom.update_order_status(order["id"], payment_status="cancelled")
    result = rig.status("ecom", "order", str(order["id"]))

    assert result.outcome == "synced", result.ignored
    assert rig.sale_of(order)["voided"] == "true"


def test_a_void_in_the_pos_cancels_the_ecom_order(rig: Rig) -> None:
    order = rig.place(rig.variant(0), 1, payment_status="not_paid")
    rig.import_order(order)
    sale = rig.sale_of(order)

    rig.pos.void_sale(int(sale["saleID"]))
    payload = {"saleID": sale["saleID"], "referenceNumber": f"ecom-{order['id']}", "referenceNumberSource": "eCom"}
    result = rig.status("pos", "sale", sale["saleID"], payload)

    assert result.outcome == "synced", result.ignored
    [ecom_order] = [o for o in rig.ecom.orders() if o["id"] == order["id"]]
    assert ecom_order["paymentStatus"] == "cancelled"


def test_an_in_store_sale_never_reaches_ecom(rig: Rig) -> None:
    sale = rig.pos.create_sale([(rig.items[rig.variant(0)["sku"]], 1)], shop_id=SHOP_A)
    payload = {"saleID": sale["saleID"], "referenceNumber": "", "referenceNumberSource": ""}
    result = rig.status("pos", "sale", sale["saleID"], payload)
    assert "in-store" in result.outcome
