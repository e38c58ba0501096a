"""`pos-ecom-sync connections set-outlets <id> --outlets a,b [--primary-outlet a]`: the operator's way to connect
and disconnect outlets (seeds 001-003).

The settings are saved, then one message on the stock queue makes the stock worker apply them: shipping methods
tied to a disconnected outlet are disabled (only a person re-enables them) and every eCom total is recomputed as
queued work, a bounded chunk of variants per message (`pos_ecom_sync.stock.sync`). Nothing here calls a vendor.
"""

from __future__ import annotations

import argparse
from typing import Any

from pos_ecom_sync.queues import ChangePublisher
from pos_ecom_sync.stock.sync import request_outlet_change


def _cli_error(message: str) -> Exception:
    from pos_ecom_sync_cli.main import CliError  # main imports this module: resolve at call time

    return CliError(message)


def stock_queue_url(args: argparse.Namespace, target: Any) -> str:
    """The template names the queue `<stack>-stock.fifo`; the local stack of `make run` is the stack `local`."""
    sqs = target.session.client("sqs")
    return str(sqs.get_queue_url(QueueName=f"{args.stack or 'local'}-stock.fifo")["QueueUrl"])


def cmd_set_outlets(args: argparse.Namespace, target: Any) -> Any:
    outlets = [o.strip() for o in args.outlets.split(",") if o.strip()]
    if not outlets:
        raise _cli_error("--outlets needs at least one outlet id (stock sync stops without one)")
    if target.store.get_connection(args.connection_id) is None:
        raise _cli_error(f"no connection {args.connection_id!r}")
    url = stock_queue_url(args, target)
    publisher = ChangePublisher(lambda concern: url, client=target.session.client("sqs"))
    updated = request_outlet_change(target.store, publisher, args.connection_id, outlets, args.primary_outlet)
    return {
        "connection_id": updated.connection_id,
        "connected_outlet_ids": updated.connected_outlet_ids,
        "primary_outlet_id": updated.primary_outlet_id,
        "stock": "queued: shipping methods of disconnected outlets are disabled and totals recomputed in chunks",
    }


def add_outlet_commands(connections: Any) -> None:
    """Add `set-outlets` to the `connections` command group."""
    parser = connections.add_parser(
        "set-outlets",
        help="connect/disconnect outlets: saves them and queues the stock recomputation",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("connection_id")
    parser.add_argument("--outlets", required=True, help="comma-separated X-Series outlet ids whose stock is online")
    parser.add_argument(
        "--primary-outlet", help="serves shipping methods tied to no outlet (default: keep the current one)"
    )
    parser.set_defaults(run=cmd_set_outlets)
