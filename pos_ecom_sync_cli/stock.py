"""`pos-ecom-sync connections set-outlets <id> --outlets a,b [--primary-outlet a]`: the operator's way to connect
and disconnect outlets (seeds 001-003), and `connections set-shipping-outlets <id> 12=a,13=b`: which POS outlet
each eCom shipping method ships or is picked up from.

Outlets: the settings are saved, then one message on the stock queue makes the stock worker apply them: every eCom
total is recomputed as queued work, a bounded chunk of variants per message (`pos_ecom_sync.stock.sync`). Shipping
methods linked to a disconnected outlet lose their link in the same save (orders with them are no longer routed
to it) and are listed to be disabled in the eCom back office: eCom has no API to disable a shipping method.

The register's outlet (seed 003: "By default, the outlet linked to the register you have chosen for eCom orders will
be included. If you do not wish inventory to sync from this outlet, you will need to change the register") is
stored with the register and always connected: `set-outlets` without it is refused with that advice, and
`connections update <id> --register <id>` connects the new register's outlet and recomputes stock. The outlet is
read from the POS registers list (X-Series GET /api/2.0/registers, `outlet_id`).

Shipping outlets: no eCom source documents an outlet on a shipping method (seed 002 sets it in the Lightspeed
back office), so the link is this connection setting, read by order routing.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any

from pos_ecom_sync.models.connection import Connection
from pos_ecom_sync.profiles.xseries.stock import register_outlet_of
from pos_ecom_sync.queues import ChangePublisher
from pos_ecom_sync.stock.sync import request_outlet_change
from pydantic import ValidationError

from pos_ecom_sync_cli.common import CliError
from pos_ecom_sync_cli.vendors import xseries_client


def stock_queue_url(args: argparse.Namespace, target: Any) -> str:
    """The template names the queue `<stack>-stock.fifo`; the local stack of `make run` is the stack `local`."""
    sqs = target.session.client("sqs")
    return str(sqs.get_queue_url(QueueName=f"{args.stack or 'local'}-stock.fifo")["QueueUrl"])


def pos_registers(target: Any, connection: Connection) -> list[dict[str, Any]]:
    """The POS registers list (X-Series GET /api/2.0/registers), read with the connection's credentials."""
    pos = xseries_client(target, connection)
    try:
        return pos.list_registers()
    finally:
        pos.close()


def register_outlet(registers: list[dict[str, Any]], register_id: str) -> str:
    outlet = register_outlet_of(registers, register_id)
    if outlet is None:
        raise CliError(
            f"register {register_id!r} is not a live register of this POS (GET /api/2.0/registers) or has no outlet: "
            "check the id; nothing was saved"
        )
    return outlet


def cmd_set_outlets(args: argparse.Namespace, target: Any) -> Any:
    outlets = [o.strip() for o in args.outlets.split(",") if o.strip()]
    if not outlets:
        raise CliError("--outlets needs at least one outlet id (stock sync stops without one)")
    before = target.store.get_connection(args.connection_id)
    if before is None:
        raise CliError(f"no connection {args.connection_id!r}")
    known = before.register_outlet_id
    if before.online_register_id and known is None:
        # Saved before the register's outlet was stored: read it now, so it is kept (and stored).
        known = register_outlet(pos_registers(target, before), before.online_register_id)
    url = stock_queue_url(args, target)
    publisher = ChangePublisher(lambda concern: url, client=target.session.client("sqs"))
    updated = request_outlet_change(
        target.store, publisher, args.connection_id, outlets, args.primary_outlet, register_outlet_id=known
    )
    retired = sorted(set(before.shipping_method_outlets) - set(updated.shipping_method_outlets), key=int)
    return {
        "connection_id": updated.connection_id,
        "register_outlet_id": updated.register_outlet_id,
        "connected_outlet_ids": updated.connected_outlet_ids,
        "primary_outlet_id": updated.primary_outlet_id,
        "shipping_method_outlets": updated.shipping_method_outlets,
        "stock": "queued: totals are recomputed in chunks",
        **(
            {"disable_in_ecom": f"shipping methods {retired} no longer route orders: disable them in eCom"}
            if retired
            else {}
        ),
    }


def parse_shipping_outlets(text: str) -> dict[str, str]:
    """`12=outlet-a,13=outlet-b` -> {"12": "outlet-a", "13": "outlet-b"}."""
    links: dict[str, str] = {}
    for pair in (p.strip() for p in text.split(",") if p.strip()):
        method, sep, outlet = pair.partition("=")
        if not sep or not method.strip().isdigit() or not outlet.strip():
            raise CliError(f"{pair!r}: expected <eCom shipping method id>=<POS outlet id>")
        links[method.strip()] = outlet.strip()
    return links


def cmd_set_shipping_outlets(args: argparse.Namespace, target: Any) -> Any:
    current = target.store.get_connection(args.connection_id)
    if current is None:
        raise CliError(f"no connection {args.connection_id!r}")
    links = {} if args.none else {**current.shipping_method_outlets, **parse_shipping_outlets(args.links or "")}
    for method in args.remove or []:
        links.pop(method, None)
    connected = current.connected_outlet_ids
    strays = sorted({outlet for outlet in links.values() if connected and outlet not in connected})
    if strays:
        raise CliError(
            f"outlets {strays} are not connected: connect them first (connections set-outlets); nothing was saved"
        )
    try:
        updated = Connection.model_validate(
            {**current.model_dump(), "shipping_method_outlets": links, "updated_at": datetime.now(UTC)}
        )
    except ValidationError as exc:
        raise CliError(f"invalid shipping outlets: {exc.errors()[0]['msg']}") from exc
    target.store.save_connection(updated)
    return {"connection_id": updated.connection_id, "shipping_method_outlets": updated.shipping_method_outlets}


def add_outlet_commands(connections: Any) -> None:
    """Add `set-outlets` to the `connections` command group."""
    parser = connections.add_parser(
        "set-outlets",
        help="connect/disconnect outlets: saves them and queues the stock recomputation",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("connection_id")
    parser.add_argument(
        "--outlets",
        required=True,
        help="comma-separated X-Series outlet ids whose stock is online; must include the register's outlet",
    )
    parser.add_argument(
        "--primary-outlet", help="serves shipping methods tied to no outlet (default: keep the current one)"
    )
    parser.set_defaults(run=cmd_set_outlets)

    shipping = connections.add_parser(
        "set-shipping-outlets",
        help="link eCom shipping methods to the POS outlets that serve them (order routing)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    shipping.add_argument("connection_id")
    shipping.add_argument(
        "links", nargs="?", help="comma-separated <eCom shipping method id>=<POS outlet id>, added to the current ones"
    )
    shipping.add_argument("--remove", action="append", metavar="METHOD_ID", help="drop one method's link")
    shipping.add_argument("--none", action="store_true", help="drop every link (orders are routed by stock)")
    shipping.set_defaults(run=cmd_set_shipping_outlets)
