"""Order import routes from the stock state, finds repeat buyers in the customer email index and knows a new email
from the customer census, with no POS read, and falls back to the POS whenever the table cannot be trusted
(X-Series, through the real path: the change_poller and stock_sync functions keep the state, order_import is fed by
the orders queue).

POS calls are counted by route on the simulator around each import."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import botocore.client
import botocore.exceptions
import pytest
from pos_ecom_sync.orders.customers import email_key
from pos_ecom_sync.profiles.xseries.client import XSeriesClient
from pos_ecom_sync.ratelimit import InMemoryRateBudget
from pos_ecom_sync.state import keys

from local_stack.demo import DEMO_SECRETS
from local_stack.event_sources import SqsPoller
from local_stack.functions import LocalFunction
from pos_ecom_sync_cli.orders import cmd_held
from tests.integration.conftest import Deployment
from tests.integration.order_rig import CONNECTION, OrderRig, open_order_rig
from tests.support import drain_queue

SALE = "POST /api/2026-07/sales"
SEARCH = "GET /api/2.0/search"
PRODUCT = "GET /api/2.0/products/{id}"
INVENTORY = "GET /api/2.0/products/{id}/inventory"
CREATE_CUSTOMER = "POST /api/2.0/customers"
MIRA = "mira.okafor@example.com"  # a customer the simulator seeds
NEW_EMAIL = "ana.silva@example.com"


@pytest.fixture
def rig(deployment: Deployment) -> Iterator[OrderRig]:
    with open_order_rig(deployment) as opened:
        settle(opened)
        yield opened


def worker(rig: OrderRig, function: str) -> SqsPoller:
    subscription = next(s for s in rig.deployment.resources.subscriptions if s.function == function)
    function_ = LocalFunction(rig.deployment.resources.functions[function])
    return SqsPoller(rig.deployment.sqs, subscription, function_, narrate=lambda line: None)


def settle(rig: OrderRig) -> None:
    """One run of the change_poller function (POS feeds, the POS customer feed, the eCom order sweep), then the
    workers until the stock and products queues are empty: what the deployed stack does between orders."""
    LocalFunction(rig.deployment.resources.functions["ChangePollerFunction"]).invoke({"connection_id": CONNECTION})
    stock, products = worker(rig, "StockSyncFunction"), worker(rig, "ProductSyncFunction")
    while stock.poll_once(wait_seconds=0) + products.poll_once(wait_seconds=0):
        pass
    drain_queue(rig.deployment.sqs, rig.deployment.queue_url("statuses"))
    rig.drain_orders()  # the sweep's orders: already imported, nothing done


def import_counting(
    rig: OrderRig, lines: dict[str, int], before_import: Callable[[], Any] = lambda: None, **order: Any
) -> tuple[dict[str, Any], Counter[str]]:
    """Place an order, import it, and count the POS calls the import made, by route."""
    placed = rig.place(lines, **order)
    before_import()
    before = Counter(rig.pos.calls_by_route)
    rig.drain_orders()
    return placed, Counter(rig.pos.calls_by_route) - before


def waiting(rig: OrderRig, concern: str) -> int:
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    url = rig.deployment.queue_url(concern)
    found = rig.deployment.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    return sum(int(found[name]) for name in names)


def customer_named(rig: OrderRig, email: str) -> dict[str, Any]:
    return next(c for c in rig.pos.customers() if (c["email"] or "").lower() == email)


# -- routing -------------------------------------------------------------------------------------------------


def test_an_order_routes_on_the_stock_state_with_no_pos_read_while_the_stock_queue_is_idle(rig: OrderRig) -> None:
    first, second = rig.variants()[0], rig.variants()[1]
    rig.stock_only_at(first["id"], rig.outlets[2], 4)
    rig.stock_only_at(second["id"], rig.outlets[2], 4)
    settle(rig)  # the inventory feed brings the new levels; the stock worker applies them

    order, calls = import_counting(rig, {first["id"]: 1, second["id"]: 2}, email=MIRA)

    assert calls[PRODUCT] == calls[INVENTORY] == 0 and calls[SALE] == 1  # no product or inventory read
    sale = rig.sale_of(order)
    assert {li["fulfillment_outlet_id"] for li in sale["line_items"]} == {rig.outlets[2]}  # routed on those levels


def test_a_backlogged_stock_queue_routes_on_fresh_pos_reads(rig: OrderRig) -> None:
    variant = rig.variants()[0]
    rig.stock_only_at(variant["id"], rig.outlets[1], 5)
    settle(rig)
    rig.stock_only_at(variant["id"], rig.outlets[2], 5)  # the stock moved; the poll queues it, unapplied yet
    LocalFunction(rig.deployment.resources.functions["ChangePollerFunction"]).invoke({"connection_id": CONNECTION})
    rig.drain_orders()
    assert waiting(rig, "stock")

    order, calls = import_counting(rig, {variant["id"]: 1}, email=MIRA)

    assert calls[INVENTORY] == 1 and calls[PRODUCT] == 1  # confirmed and read, as before the stock state
    assert {li["fulfillment_outlet_id"] for li in rig.sale_of(order)["line_items"]} == {rig.outlets[2]}


def test_a_product_the_stock_state_never_saw_is_read_from_the_pos_and_the_others_are_not(rig: OrderRig) -> None:
    seen, unseen = rig.variants()[0], rig.variants()[1]
    table = rig.deployment.session.resource("dynamodb").Table(rig.deployment.env["TABLE_NAME"])
    table.delete_item(Key={"pk": keys.connection_pk(CONNECTION), "sk": keys.stock_sk(unseen["id"])})

    _, calls = import_counting(rig, {seen["id"]: 1, unseen["id"]: 1}, email=MIRA)

    assert calls[PRODUCT] == 1 and calls[INVENTORY] == 1  # the unseen one only
    assert calls[SALE] == 1


def test_a_product_deleted_in_the_pos_and_polled_holds_the_order_without_being_routed_from_the_state(
    rig: OrderRig,
) -> None:
    doomed = rig.variants()[0]
    rig.pos.delete_product(doomed["id"])
    LocalFunction(rig.deployment.resources.functions["ChangePollerFunction"]).invoke({"connection_id": CONNECTION})
    rig.drain_orders()  # the products feed has read the delete; product_sync has not applied it yet

    order, _ = import_counting(rig, {doomed["id"]: 1})
    assert rig.sales_of(order) == []
    [listed] = rig.cli(cmd_held)
    assert f"POS product {doomed['id']} is deleted" in listed["reason"]


def test_a_product_deleted_before_any_feed_read_it_is_held_once_the_pos_refuses_the_sale(rig: OrderRig) -> None:
    """The state still shows the product (nothing has read the delete): the order is routed on it, the POS refuses
    the sale, and the order is built again from POS reads in the same attempt, which hold it."""
    doomed = rig.variants()[0]
    order, calls = import_counting(
        rig, {doomed["id"]: 1}, email=MIRA, before_import=lambda: rig.pos.delete_product(doomed["id"])
    )

    assert calls[SALE] == 1 and calls[PRODUCT] == 1  # refused, then the POS read that finds it deleted
    assert rig.sales_of(order) == []
    [listed] = rig.cli(cmd_held)
    assert f"POS product {doomed['id']} is deleted" in listed["reason"]


# -- one SQS batch ---------------------------------------------------------------------------------------------


def test_the_orders_of_one_batch_share_their_connection_ledger_and_queue_reads_and_their_events_sending(
    rig: OrderRig, monkeypatch: pytest.MonkeyPatch
) -> None:
    variants = rig.variants()
    placed = [rig.place({variants[n]["id"]: 1}, email=MIRA) for n in range(3)]
    calls: Counter[str] = Counter()
    original = botocore.client.BaseClient._make_api_call
    stock_url, products_url = rig.deployment.queue_url("stock"), rig.deployment.queue_url("products")

    def counting(self: Any, operation: str, params: dict[str, Any]) -> Any:
        if operation in ("GetItem", "UpdateItem"):
            sort_key = params["Key"]["sk"]  # a client's {"S": ...} or a resource's str
            sort_key = str(sort_key.get("S") if isinstance(sort_key, dict) else sort_key)
            counted = f"{operation} {sort_key if sort_key.startswith('RATE#') else sort_key.split('#')[0]}"
            calls[counted] += 1
            if sort_key.startswith("RATE#"):
                try:
                    return original(self, operation, params)
                except botocore.exceptions.ClientError as error:
                    if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                        calls[f"{counted} lost"] += 1
                    raise
        elif operation == "GetQueueAttributes" and params["QueueUrl"] in (stock_url, products_url):
            calls[f"GetQueueAttributes {'stock' if params['QueueUrl'] == stock_url else 'products'}"] += 1
        elif operation in ("PutEvents", "BatchGetItem"):
            calls[operation] += 1
        elif operation == "TransactWriteItems" and any(
            "notified_at" in i.get("Update", {}).get("UpdateExpression", "") for i in params["TransactItems"]
        ):
            calls["TransactWriteItems marking notified"] += 1
        return original(self, operation, params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", counting)
    ecom_before = rig.ecom.requests
    assert rig.drain_orders() == 3  # one invocation
    monkeypatch.undo()

    assert all(len(rig.sales_of(order)) == 1 for order in placed) and len(rig.events()) == 3
    assert calls["GetItem CONFIG"] == 1 and calls["GetItem ORDER"] == 0  # the connection once, the ledgers batched
    assert calls["GetQueueAttributes stock"] == calls["GetQueueAttributes products"] == 1
    assert calls["BatchGetItem"] == 1 + 2 * 3  # the ledgers, then each order's links and routing state
    assert calls["PutEvents"] == 1 and calls["TransactWriteItems marking notified"] == 1
    assert calls["UpdateItem ORDER"] == 0
    # An order and its lines: one take, which also saves the headers of the take before. The set-up's catalog worker
    # takes eCom slots from the same budget item through a budget of its own (its catalog share makes it another
    # client, as another sandbox is): when it opened a new per-second window after the order worker's cached one
    # ended, the order worker's first take loses its condition once (`state.budget`: a lost race costs another try,
    # with the item as it stands).
    ecom_writes = calls["UpdateItem RATE#ecom"] - calls["UpdateItem RATE#ecom lost"]
    assert rig.ecom.requests - ecom_before == 6 and ecom_writes == 3 and calls["UpdateItem RATE#ecom lost"] <= 1
    records = [rig.ledger.get_order(CONNECTION, order["id"]) for order in placed]
    assert all(record is not None and not record.notifications_pending for record in records)


# -- customers -----------------------------------------------------------------------------------------------


def test_a_repeat_buyer_costs_no_customer_search(rig: OrderRig) -> None:
    variant = rig.variants()[0]
    first, calls = import_counting(rig, {variant["id"]: 1}, email=NEW_EMAIL, firstname="Ana", lastname="Silva")
    assert calls[SEARCH] == 0 and calls[CREATE_CUSTOMER] == 1  # no POS customer holds it (the customer census)
    matched, calls = import_counting(rig, {variant["id"]: 1}, email=MIRA)
    assert calls[SEARCH] == 1  # found by the search, and indexed

    again, calls = import_counting(rig, {variant["id"]: 1}, email=" Ana.Silva@Example.com")
    assert calls == Counter({SALE: 1})
    mira_again, calls = import_counting(rig, {variant["id"]: 1}, email=MIRA)
    assert calls == Counter({SALE: 1})

    assert (
        rig.sale_of(again)["customer_id"] == rig.sale_of(first)["customer_id"] == customer_named(rig, NEW_EMAIL)["id"]
    )
    assert (
        rig.sale_of(mira_again)["customer_id"] == rig.sale_of(matched)["customer_id"] == customer_named(rig, MIRA)["id"]
    )


def test_a_new_email_the_fresh_customer_census_never_saw_is_created_with_no_search(rig: OrderRig) -> None:
    variant = rig.variants()[0]
    census = rig.ledger.customer_census(CONNECTION)
    assert census is not None and census.caught_up_at is not None  # the poll walked the customer list to its end

    order, calls = import_counting(rig, {variant["id"]: 1}, email=NEW_EMAIL, firstname="Ana", lastname="Silva")

    assert calls[SEARCH] == 0 and calls[CREATE_CUSTOMER] == 1
    created = customer_named(rig, NEW_EMAIL)
    assert (created["first_name"], created["last_name"]) == ("Ana", "Silva")
    assert rig.sale_of(order)["customer_id"] == created["id"]


def test_a_customer_made_at_the_till_and_polled_is_found_by_a_search_not_duplicated(rig: OrderRig) -> None:
    variant = rig.variants()[0]
    pos = XSeriesClient(rig.pos.url, DEMO_SECRETS["pos_access_token"], InMemoryRateBudget())
    at_till = pos.create_customer("Ana", "Silva", NEW_EMAIL)["id"]
    settle(rig)  # the customer feed shows her: the census marks her email

    order, calls = import_counting(rig, {variant["id"]: 1}, email=NEW_EMAIL.upper())

    assert calls[SEARCH] == 1 and calls[CREATE_CUSTOMER] == 0
    assert rig.sale_of(order)["customer_id"] == at_till


def test_a_new_email_is_searched_once_the_census_is_older_than_its_window(
    rig: OrderRig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The poller stopped (or the POS budget starved it): the census's last walk to the end is too old to say that no
    POS customer holds an email, so the order searches, as it did before the census."""
    import pos_ecom_sync.orders.customers as customers

    variant = rig.variants()[0]
    monkeypatch.setattr(customers, "CENSUS_FRESH_SECONDS", -1)
    order, calls = import_counting(rig, {variant["id"]: 1}, email=NEW_EMAIL)
    assert calls[SEARCH] == 1 and calls[CREATE_CUSTOMER] == 1
    assert rig.sale_of(order)["customer_id"] == customer_named(rig, NEW_EMAIL)["id"]


def test_a_customer_deleted_in_the_pos_is_not_reused_after_the_next_poll(rig: OrderRig) -> None:
    variant = rig.variants()[0]
    import_counting(rig, {variant["id"]: 1}, email=MIRA)
    mira = customer_named(rig, MIRA)
    assert rig.ledger.customer_entry(CONNECTION, email_key(MIRA)) is not None

    rig.pos.delete_customer(mira["id"])
    settle(rig)  # the customer feed sees the delete and drops the entry
    assert rig.ledger.customer_entry(CONNECTION, email_key(MIRA)) is None

    order, calls = import_counting(rig, {variant["id"]: 1}, email=MIRA)
    assert calls[SEARCH] == 1 and calls[CREATE_CUSTOMER] == 1  # searched again; the deleted one is not found
    assert rig.sale_of(order)["customer_id"] == customer_named(rig, MIRA)["id"] != mira["id"]


def test_a_customer_merged_away_in_the_pos_is_not_reused_and_the_survivor_is_found(rig: OrderRig) -> None:
    variant = rig.variants()[0]
    first, _ = import_counting(rig, {variant["id"]: 1}, email=NEW_EMAIL, firstname="Ana", lastname="Silva")
    duplicate = rig.sale_of(first)["customer_id"]
    pos = XSeriesClient(rig.pos.url, DEMO_SECRETS["pos_access_token"], InMemoryRateBudget())
    survivor = pos.create_customer("Ana", "Silva", NEW_EMAIL)["id"]  # made at the till, the same person

    rig.pos.merge_customers(survivor, duplicate)  # "Merge and delete customer": the duplicate is deleted
    settle(rig)

    order, calls = import_counting(rig, {variant["id"]: 1}, email=NEW_EMAIL)
    assert calls[SEARCH] == 1 and calls[CREATE_CUSTOMER] == 0
    assert rig.sale_of(order)["customer_id"] == survivor


def test_an_email_changed_in_the_pos_drops_the_index_entry(rig: OrderRig) -> None:
    variant = rig.variants()[0]
    import_counting(rig, {variant["id"]: 1}, email=MIRA)
    mira = customer_named(rig, MIRA)

    rig.pos.update_customer(mira["id"], email="mira@new-address.example")
    settle(rig)
    assert rig.ledger.customer_entry(CONNECTION, email_key(MIRA)) is None

    order, calls = import_counting(rig, {variant["id"]: 1}, email=MIRA)
    assert calls[SEARCH] == 1 and calls[CREATE_CUSTOMER] == 1  # nobody holds that address any more
    assert rig.sale_of(order)["customer_id"] != mira["id"]


def test_a_delete_the_customer_feed_never_shows_is_reused_only_until_the_reuse_window_ends(
    rig: OrderRig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Unverified (contract): whether a delete gives the customer a new version. When it does not, the feed cannot
    see it; the entry is then trusted for at most the reuse window, and the order after it searches again."""
    import pos_ecom_sync.orders.customers as customers

    variant = rig.variants()[0]
    import_counting(rig, {variant["id"]: 1}, email=MIRA)
    mira = customer_named(rig, MIRA)
    rig.pos.customer_delete_moves_version = False
    rig.pos.delete_customer(mira["id"])
    settle(rig)
    assert rig.ledger.customer_entry(CONNECTION, email_key(MIRA)) is not None  # the feed did not see it

    monkeypatch.setattr(customers, "INDEX_REUSE_SECONDS", -1)  # the window has passed
    order, calls = import_counting(rig, {variant["id"]: 1}, email=MIRA)
    assert calls[SEARCH] == 1
    assert rig.sale_of(order)["customer_id"] != mira["id"]


def test_a_sale_the_pos_refuses_drops_the_indexed_customer_it_named(rig: OrderRig) -> None:
    variant, doomed = rig.variants()[0], rig.variants()[1]
    import_counting(rig, {variant["id"]: 1}, email=MIRA)
    assert rig.ledger.customer_entry(CONNECTION, email_key(MIRA)) is not None

    # The POS refuses this order's sale (its product was deleted; the POS does not say why it refuses).
    order, _ = import_counting(
        rig, {doomed["id"]: 1}, email=MIRA, before_import=lambda: rig.pos.delete_product(doomed["id"])
    )

    assert rig.ledger.customer_entry(CONNECTION, email_key(MIRA)) is None  # the next order searches again
    assert rig.sales_of(order) == [] and [h["order_id"] for h in rig.cli(cmd_held)] == [order["id"]]
