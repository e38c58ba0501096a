"""`pos-ecom-sync parked list|show`: feed rows the change poller or reconciliation skipped because they could not
be handled (no or a garbled id, a version that is no integer, a value that cannot be serialised...).

- `list <connection> [--feed FEED]` prints each parked row: its key, feed (`pos:products`, `pos:inventory`,
  `pos:sales`, `pos:price_book_products`, `ecom:orders`, `reconcile:<phase>`), row id, version, reason, when it was
  first and last seen (epoch seconds) and how many times.
- `show <connection> <key>` prints one of them (the key as `list` prints it).

The feed's cursor moved on past a parked row, so it never stalls its feed. It is handled again once the vendor
changes it (its new version is on the feed) or a forced reconciliation re-reads it; the record expires 30 days after
it was last seen.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any

from pos_ecom_sync.models.feeds import ParkedRow
from pos_ecom_sync.state.parked_store import ParkedStore

from pos_ecom_sync_cli.common import CliError, existing_connection


def _parked_store(target: Any) -> ParkedStore:
    return ParkedStore(target.table_name, resource=target.session.resource("dynamodb"))


def _view(row: ParkedRow) -> dict[str, Any]:
    view = row.as_dict()
    for name in ("first_seen", "last_seen", "expires_at"):
        view[name] = datetime.fromtimestamp(view[name], UTC).isoformat()
    return view


def cmd_list(args: argparse.Namespace, target: Any) -> Any:
    existing_connection(target, args.connection_id)
    return [_view(row) for row in _parked_store(target).list(args.connection_id, feed=args.feed)]


def cmd_show(args: argparse.Namespace, target: Any) -> Any:
    existing_connection(target, args.connection_id)
    row = _parked_store(target).get(args.connection_id, args.key)
    if row is None:
        raise CliError(f"no parked row {args.key!r} for {args.connection_id!r} (see `parked list`)")
    return _view(row)


def add_parked_commands(groups: Any) -> None:
    """Add the `parked` group to the CLI's sub-command groups."""
    parked = groups.add_parser("parked", help="feed rows skipped because they could not be handled")
    commands = parked.add_subparsers(dest="command", required=True)

    listing = commands.add_parser("list", help="list a connection's parked rows, with their reason")
    listing.add_argument("connection_id")
    listing.add_argument("--feed", help="only this feed's rows, e.g. pos:products or ecom:orders")
    listing.set_defaults(run=cmd_list)

    show = commands.add_parser("show", help="one parked row, by the key `parked list` prints")
    show.add_argument("connection_id")
    show.add_argument("key")
    show.set_defaults(run=cmd_show)
