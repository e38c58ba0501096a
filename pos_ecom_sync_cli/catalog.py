"""`pos-ecom-sync catalog show|relink|deleted-policy|online-price-book`: the operator's side of product sync.

- `show <connection> <POS family id>` prints what the sync holds for one family (the parent's id, or a simple
  product's own): its eCom product and variants, the version applied, and, when it was deleted in eCom under the
  `unlink` policy, why it is out of eCom and since when.
- `relink <connection> <POS family id>` lets an unlinked family (or its unlinked variants) back into eCom and queues
  it on the products queue: the worker creates it again from the POS.
- `deleted-policy <connection> recreate|unlink`: what a product (or variant) deleted by hand in eCom becomes on its
  next POS change: created again (default; the POS is the system of record) or left out until re-linked.
- `online-price-book <connection> <X-Series price book id> | --none`: the price book whose entries are the online
  prices (seed 000's "online price"); products without an entry in it get their retail price.

Nothing here calls a vendor.
"""

from __future__ import annotations

import argparse
import uuid
from datetime import UTC, datetime
from typing import Any

from pos_ecom_sync.catalog.planning import relinked
from pos_ecom_sync.models.connection import Connection
from pos_ecom_sync.models.messages import ChangeMessage
from pos_ecom_sync.queues import ChangePublisher, Outgoing

from pos_ecom_sync_cli.common import CliError, existing_connection


def products_queue_url(args: argparse.Namespace, target: Any) -> str:
    """The template names the queue `<stack>-products.fifo`; the local stack of `make run` is the stack `local`."""
    sqs = target.session.client("sqs")
    return str(sqs.get_queue_url(QueueName=f"{args.stack or 'local'}-products.fifo")["QueueUrl"])


def cmd_show(args: argparse.Namespace, target: Any) -> Any:
    existing_connection(target, args.connection_id)
    stored = target.store.get_catalog_state(args.connection_id, args.family_id)
    if not stored.revision:
        raise CliError(f"family {args.family_id} has no catalog state on {args.connection_id!r} (never synced)")
    state = stored.state
    return {
        "family_id": args.family_id,
        "ecom_product_id": state.ecom_product_id,
        "ecom_variants": {pos_id: ref.ecom_variant_id for pos_id, ref in sorted(state.variants.items())},
        "applied_version": state.applied_version,
        "deleted_in_pos": state.deleted_in_pos,
        "unlinked_reason": state.unlinked_reason,
        "unlinked_since": datetime.fromtimestamp(state.unlinked_at, UTC).isoformat() if state.unlinked_at else None,
        "unlinked_variants": dict(state.unlinked_variants),
    }


def cmd_relink(args: argparse.Namespace, target: Any) -> Any:
    connection = existing_connection(target, args.connection_id)
    stored = target.store.get_catalog_state(args.connection_id, args.family_id)
    state = stored.state
    if state.unlinked_reason is None and not state.unlinked_variants:
        raise CliError(f"family {args.family_id} is not unlinked on {args.connection_id!r}: nothing to re-link")
    target.store.save_catalog_state(args.connection_id, args.family_id, stored, relinked(state))
    message = ChangeMessage(
        connection_id=connection.connection_id,
        source="pos",
        entity="product",
        entity_id=args.family_id,
        via="operator",
        received_at=datetime.now(UTC),
        payload={"id": args.family_id},
        concern="products",
        group_key=args.family_id,  # the family's group: never synced by two workers at once
    )
    url = products_queue_url(args, target)
    # A fresh deduplication id: a second re-link within SQS's 5-minute window must not be dropped.
    ChangePublisher(lambda concern: url, client=target.session.client("sqs")).publish(
        [Outgoing(message, f"operator-relink:{uuid.uuid4()}")]
    )
    return {
        "family_id": args.family_id,
        "was": state.unlinked_reason or f"variants unlinked: {sorted(state.unlinked_variants)}",
        "queued": True,
    }


def _save(target: Any, connection: Connection, **changes: Any) -> Connection:
    data = {**connection.model_dump(), **changes}
    data.pop("updated_at")
    updated = Connection.model_validate(data)
    target.store.save_connection(updated)
    return updated


def cmd_deleted_policy(args: argparse.Namespace, target: Any) -> Any:
    updated = _save(target, existing_connection(target, args.connection_id), ecom_deleted_product_policy=args.policy)
    return {"connection_id": updated.connection_id, "ecom_deleted_product_policy": updated.ecom_deleted_product_policy}


def cmd_online_price_book(args: argparse.Namespace, target: Any) -> Any:
    if bool(args.price_book_id) == bool(args.none):
        raise CliError("give the X-Series price book id of the online prices, or --none (retail prices online)")
    book = None if args.none else args.price_book_id.strip()
    updated = _save(target, existing_connection(target, args.connection_id), online_price_book_id=book)
    return {
        "connection_id": updated.connection_id,
        "online_price_book_id": updated.online_price_book_id,
        "note": "families are re-priced on their next POS change or price-book entry change (see the README)",
    }


def add_catalog_commands(groups: Any) -> None:
    """Add the `catalog` command group."""
    catalog = groups.add_parser(
        "catalog",
        help="product sync: families, hand-deleted products, online prices",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    ).add_subparsers(dest="command", required=True)

    show = catalog.add_parser("show", help="what the sync holds for one POS family (ids, unlinked reason)")
    show.add_argument("connection_id")
    show.add_argument("family_id", help="the POS family's parent id (a simple product: its own id)")
    show.set_defaults(run=cmd_show)

    relink = catalog.add_parser("relink", help="let an unlinked family back into eCom and queue it")
    relink.add_argument("connection_id")
    relink.add_argument("family_id")
    relink.set_defaults(run=cmd_relink)

    policy = catalog.add_parser("deleted-policy", help="what a product deleted by hand in eCom becomes")
    policy.add_argument("connection_id")
    policy.add_argument("policy", choices=["recreate", "unlink"])
    policy.set_defaults(run=cmd_deleted_policy)

    book = catalog.add_parser("online-price-book", help="the X-Series price book holding the online prices")
    book.add_argument("connection_id")
    book.add_argument("price_book_id", nargs="?")
    book.add_argument("--none", action="store_true", help="no online price book: eCom gets the retail prices")
    book.set_defaults(run=cmd_online_price_book)
