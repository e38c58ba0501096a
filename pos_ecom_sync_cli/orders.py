"""`pos-ecom-sync orders held|retry|show|payment-method|shipping-product`: the operator's side of order import.

- `held <connection>` lists the orders waiting with their reason (unknown product, deleted variant...).
- `retry <connection> <order id>` re-queues one on the orders queue once the cause is fixed (e.g. the product is
  now in the POS): the worker tries it again, and it leaves the held list when imported.
- `show <order id> [--connection C]` tells its whole story (`pos_ecom_sync_cli.order_story`).
- `payment-method <connection> <eCom title> --integrated [--payment-type NAME] | --unpaid | --remove` sets how an
  eCom payment method arrives in the POS (overrides the defaults of `pos_ecom_sync.orders.payments`).
- `shipping-product <connection> <POS product id> | --find-or-create | --none`: the product shipping charges become a
  sale line on, so the POS sale totals the eCom order. `--find-or-create` finds the product with the SKU
  `ECOM-SHIPPING` in the POS or creates it (`profiles.xseries.shipping.ensure_shipping_product`); `--none` clears it,
  and orders that charge shipping are then held with the reason until one is set.
"""

from __future__ import annotations

import argparse
import uuid
from datetime import UTC, datetime
from typing import Any

from pos_ecom_sync.errors import InvalidInput
from pos_ecom_sync.models.connection import Connection, PaymentMethodSetting
from pos_ecom_sync.models.messages import ChangeMessage
from pos_ecom_sync.profiles.xseries.shipping import SHIPPING_SKU, ensure_shipping_product
from pos_ecom_sync.queues import ChangePublisher, Outgoing
from pos_ecom_sync.state.order_store import OrderStore

from pos_ecom_sync_cli.common import CliError, add_json_option, existing_connection
from pos_ecom_sync_cli.order_story import cmd_show
from pos_ecom_sync_cli.vendors import xseries_client


def _order_store(target: Any) -> OrderStore:
    return OrderStore(target.table_name, client=target.session.client("dynamodb"))


def orders_queue_url(args: argparse.Namespace, target: Any) -> str:
    """The template names the queue `<stack>-orders.fifo`; the local stack of `make run` is the stack `local`."""
    sqs = target.session.client("sqs")
    return str(sqs.get_queue_url(QueueName=f"{args.stack or 'local'}-orders.fifo")["QueueUrl"])


def cmd_held(args: argparse.Namespace, target: Any) -> Any:
    existing_connection(target, args.connection_id)
    return [
        {
            "order_id": held.order_id,
            "number": held.number,
            "reason": held.reason,
            "held_since": datetime.fromtimestamp(held.held_at, UTC).isoformat(),
            "attempts": held.attempts,
        }
        for held in _order_store(target).held_orders(args.connection_id)
    ]


def cmd_retry(args: argparse.Namespace, target: Any) -> Any:
    """Queue the order again (any order not yet imported: held, or one whose attempts keep failing)."""
    connection = existing_connection(target, args.connection_id)
    record = _order_store(target).get_order(args.connection_id, args.order_id)
    if record is not None and record.status == "imported":
        raise CliError(f"order {args.order_id} is already imported as POS sale {record.sale_id}")
    message = ChangeMessage(
        connection_id=connection.connection_id,
        source="ecom",
        entity="order",
        entity_id=str(args.order_id),
        via="operator",
        received_at=datetime.now(UTC),
        payload={"id": args.order_id, "number": record.number if record else None},
        concern="orders",
    )
    url = orders_queue_url(args, target)
    # A fresh deduplication id each time: a second retry within SQS's 5-minute window must not be dropped.
    ChangePublisher(lambda concern: url, client=target.session.client("sqs")).publish(
        [Outgoing(message, f"operator-retry:{uuid.uuid4()}")]
    )
    return {
        "order_id": args.order_id,
        "number": record.number if record else None,
        "was": record.status if record else "never seen",
        "held_reason": record.held_reason if record else None,
        "queued": True,
    }


def cmd_payment_method(args: argparse.Namespace, target: Any) -> Any:
    connection = existing_connection(target, args.connection_id)
    methods = dict(connection.payment_methods)
    if args.remove:
        if args.title not in methods:
            raise CliError(f"{args.title!r} has no setting on {args.connection_id!r} (the default applies)")
        del methods[args.title]
    elif args.integrated:
        methods[args.title] = PaymentMethodSetting(
            mode="integrated", payment_type_id=args.payment_type_id, payment_type_name=args.payment_type
        )
    else:
        # The POS type a later change to Paid in eCom is recorded on (seed 004); default: the type named like it.
        methods[args.title] = PaymentMethodSetting(
            mode="unpaid", payment_type_id=args.payment_type_id, payment_type_name=args.payment_type
        )
    data = {**connection.model_dump(), "payment_methods": methods}
    data.pop("updated_at")
    updated = Connection.model_validate(data)
    target.store.save_connection(updated)
    return {title: setting.model_dump(exclude_none=True) for title, setting in updated.payment_methods.items()}


def cmd_shipping_product(args: argparse.Namespace, target: Any) -> Any:
    connection = existing_connection(target, args.connection_id)
    find_or_create = bool(getattr(args, "find_or_create", False))
    if sum((bool(args.product_id), bool(args.none), find_or_create)) != 1:
        raise CliError("give one of: the POS product id of the shipping line, --find-or-create, or --none")
    product_id: str | None = None if args.none else args.product_id
    created = False
    if find_or_create:
        pos = xseries_client(target, connection)
        try:
            found = ensure_shipping_product(pos)
        except InvalidInput as exc:
            raise CliError(str(exc)) from exc
        finally:
            pos.close()
        product_id, created = found.product_id, found.created
    data = {**connection.model_dump(), "shipping_product_id": product_id}
    data.pop("updated_at")
    updated = Connection.model_validate(data)
    target.store.save_connection(updated)
    result: dict[str, Any] = {
        "connection_id": updated.connection_id,
        "shipping_product_id": updated.shipping_product_id,
    }
    if find_or_create:
        result["sku"] = SHIPPING_SKU
        result["created"] = created
    if product_id is None:
        result["note"] = "orders that charge shipping are held until a shipping product is set"
    return result


def add_orders_commands(groups: Any) -> None:
    """Add the `orders` group to the CLI's sub-command groups."""
    orders = groups.add_parser("orders", help="order import: held orders, retries, payment methods")
    commands = orders.add_subparsers(dest="command", required=True)

    held = commands.add_parser("held", help="list the held orders of a connection, with their reason")
    held.add_argument("connection_id")
    held.set_defaults(run=cmd_held)

    retry = commands.add_parser("retry", help="queue a held (or failing) order again once its cause is fixed")
    retry.add_argument("connection_id")
    retry.add_argument("order_id", type=int, help="the eCom order id (not its number)")
    retry.set_defaults(run=cmd_retry)

    show = commands.add_parser(
        "show", help="an order's whole story: eCom, ledger, POS sale, payments, fulfilments, statuses, what next"
    )
    show.add_argument("order_id", type=int, help="the eCom order id (not its number)")
    show.add_argument("--connection", dest="connection_id", help="its connection (needed when there are several)")
    show.add_argument("--offline", action="store_true", help="the sync table only: no eCom or POS read")
    add_json_option(show)
    show.set_defaults(run=cmd_show)

    payment = commands.add_parser("payment-method", help="how an eCom payment method arrives in the POS")
    payment.add_argument("connection_id")
    payment.add_argument("title", help="the eCom payment method title, e.g. 'PayPal'")
    mode = payment.add_mutually_exclusive_group(required=True)
    mode.add_argument("--integrated", action="store_true", help="record a payment on a POS payment type")
    mode.add_argument("--unpaid", action="store_true", help="arrive unpaid (taken on the sell screen)")
    mode.add_argument("--remove", action="store_true", help="drop the setting (the default applies again)")
    payment.add_argument(
        "--payment-type",
        help="POS payment type name (default: the eCom title); with --unpaid: the type a later Paid uses",
    )
    payment.add_argument("--payment-type-id", help="POS payment type id (wins over the name)")
    payment.set_defaults(run=cmd_payment_method)

    shipping = commands.add_parser("shipping-product", help="the POS product imported orders carry shipping on")
    shipping.add_argument("connection_id")
    shipping.add_argument("product_id", nargs="?", help="POS product id (a non-inventory 'Shipping' product)")
    shipping.add_argument(
        "--find-or-create",
        action="store_true",
        help=f"use the POS product with the SKU {SHIPPING_SKU}, creating it if there is none",
    )
    shipping.add_argument(
        "--none", action="store_true", help="no shipping product: orders that charge shipping are held until one is set"
    )
    shipping.set_defaults(run=cmd_shipping_product)
