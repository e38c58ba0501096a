"""`pos-ecom-sync orders show <eCom order id>`: one order's whole story for the operator who is asked "where is my
order?": what eCom says, what the sync's ledger holds (status, attempts, the last error, the correlation id of
every attempt), the POS sale it became (status, payments, fulfilments and their outlets), every status change synced
since, and what to do next.

The ledger and status history are read from the sync table; the eCom order and the POS sale are read live from
the vendors (3 or 4 calls through the connection's shared rate budgets) unless `--offline`. A vendor that cannot be
read is reported in the story, never a failure of the command: the ledger alone still tells most of it.
"""

from __future__ import annotations

import argparse
from typing import Any, TextIO

from pos_ecom_sync.errors import SyncError
from pos_ecom_sync.models.connection import Connection
from pos_ecom_sync.models.ledger import OrderRecord, StatusRecord
from pos_ecom_sync.state.order_store import OrderStore
from pos_ecom_sync.state.status_store import StatusStore

from pos_ecom_sync_cli.common import (
    CliError,
    emit,
    existing_connection,
    iso_seconds,
    one_line,
    print_table,
    progress,
)
from pos_ecom_sync_cli.vendors import ecom_client, xseries_client

HISTORY_SHOWN = 10


def _ledger_view(record: OrderRecord) -> dict[str, Any]:
    return {
        "status": record.status,
        "attempts": record.attempts,
        "first_seen": iso_seconds(record.created_at),
        "imported_at": iso_seconds(record.imported_at),
        "updated_at": iso_seconds(record.updated_at),
        "held_reason": record.held_reason,
        "held_since": iso_seconds(record.held_at),
        "customer_id": record.customer_id,
        "outlet_ids": list(record.outlet_ids),
        "adopted": record.adopted,
        "ecom_payment_status": record.ecom_payment_status,
        "notifications_pending": record.notifications_pending,
        "correlation_ids": list(dict.fromkeys(record.correlation_ids)),  # its import attempts'
    }


def _status_view(status: StatusRecord) -> dict[str, Any]:
    return {
        "ecom_seen": status.ecom_seen,
        "pos_seen": status.pos_seen,
        "frozen": status.frozen,
        "history": [
            {**entry, "at": iso_seconds(int(entry["at"])) if entry.get("at") is not None else None}
            for entry in status.history
        ],
        "returns": status.returns,
    }


def _pos_sale(target: Any, connection: Connection, sale_id: str) -> dict[str, Any]:
    try:
        pos = xseries_client(target, connection)
    except CliError as exc:  # the ledger and eCom parts of the story still stand
        return {"id": sale_id, "error": str(exc)}
    try:
        sale = pos.get_sale(sale_id)
        if sale is None:
            return {"id": sale_id, "error": "the POS has no sale with this id (deleted there?)"}
        fulfilments = pos.list_fulfillments(sale_id)
    except SyncError as exc:
        return {"id": sale_id, "error": f"cannot read the POS: {exc}"}
    finally:
        pos.close()
    return {
        "id": sale_id,
        "status": sale.get("status"),
        "register_id": sale.get("register_id"),
        "total_price": sale.get("total_price"),  # X-Series: before tax
        "total_tax": sale.get("total_tax"),
        "payments": [
            {"name": p.get("name"), "amount": p.get("amount"), "payment_type_id": p.get("payment_type_id")}
            for p in sale.get("payments") or []
        ],
        "fulfilments": [
            {"type": f.get("type"), "state": f.get("state"), "outlet_id": f.get("outlet_id"), "id": f.get("id")}
            for f in fulfilments
        ],
    }


def _ecom_order(target: Any, connection: Connection, order_id: int) -> dict[str, Any]:
    ecom = ecom_client(target, connection)
    try:
        order = ecom.get_order(order_id)
    except SyncError as exc:
        return {"error": f"cannot read eCom: {exc}"}
    finally:
        ecom.close()
    if order is None:
        return {"error": "eCom has no order with this id"}
    fields = ("number", "status", "paymentStatus", "shipmentStatus", "createdAt", "updatedAt")
    return {name: order.get(name) for name in fields}


def correlation_ids(record: OrderRecord | None, status: StatusRecord | None) -> list[str]:
    """Every change that touched the order, oldest first, each once: its import attempts, then its status syncs."""
    found = list(record.correlation_ids if record else ())
    found += [str(e["correlation_id"]) for e in (status.history if status else ()) if e.get("correlation_id")]
    return list(dict.fromkeys(found))


def next_step(connection_id: str, order_id: int, record: OrderRecord | None, story: dict[str, Any]) -> str:
    """What the operator does now, from what the story shows."""
    if record is None:
        return (
            "the sync has never seen this order: if eCom has it, check the eCom webhook subscription (orders/*) and "
            f"run `pos-ecom-sync poll now --connection {connection_id}` (the poller sweeps eCom orders too)"
        )
    if record.status == "held":
        return (
            f"held: {record.held_reason}. Fix that cause (in the POS or the connection's settings), then "
            f"`pos-ecom-sync orders retry {connection_id} {order_id}`"
        )
    if record.status == "importing":
        return (
            "not imported yet: the orders worker retries it with back-off"
            + (f" (last error: {record.last_error})" if record.last_error else "")
            + ". If the cause is permanent it is dead-lettered: `pos-ecom-sync dlq list --concern orders`; "
            "fix the cause, then `pos-ecom-sync dlq redrive <message id>`; the worker's log lines carry the "
            "correlation ids above"
        )
    sale = story.get("pos_sale") or {}
    if sale.get("error"):
        return f"imported as POS sale {record.sale_id}, but the POS cannot show it now ({sale['error']})"
    if record.notifications_pending:
        return "imported; its new-fulfilment notifications are still to be sent (the next message for it sends them)"
    return "nothing: imported; status changes on either side sync by themselves"


def order_story(target: Any, connection: Connection, order_id: int, *, live: bool = True) -> dict[str, Any]:
    cid = connection.connection_id
    dynamodb = target.session.client("dynamodb")
    record = OrderStore(target.table_name, client=dynamodb).get_order(cid, order_id)
    status = StatusStore(target.table_name, client=dynamodb).get(cid, order_id)
    story: dict[str, Any] = {
        "connection_id": cid,
        "order_id": order_id,
        "number": record.number if record else None,
        "ecom": None,
        "ledger": _ledger_view(record) if record else None,
        "pos_sale": None,
        "statuses": _status_view(status) if status else None,
        "last_error": (
            {"error": record.last_error, "at": iso_seconds(record.last_error_at)}
            if record and record.last_error
            else None
        ),
        "correlation_ids": correlation_ids(record, status),
    }
    if live:
        story["ecom"] = _ecom_order(target, connection, order_id)
        story["number"] = story["number"] or story["ecom"].get("number")
        if record is not None and record.status == "imported" and record.sale_id:
            story["pos_sale"] = _pos_sale(target, connection, record.sale_id)
    elif record is not None and record.sale_id and record.status == "imported":
        story["pos_sale"] = {"id": record.sale_id}
    if record is None and not (story["ecom"] and "error" not in story["ecom"]):
        raise CliError(f"order {order_id} is in neither the ledger of {cid!r} nor eCom (is it another connection's?)")
    story["next_step"] = next_step(cid, order_id, record, story)
    return story


def _print_story(story: dict[str, Any], out: TextIO) -> None:
    out.write(f"order {story['order_id']} (#{story['number'] or '?'}) of connection {story['connection_id']}\n")
    ecom = story["ecom"]
    if ecom:
        out.write(
            f"  eCom:    {ecom['error']}\n"
            if "error" in ecom
            else f"  eCom:    status {ecom['status']}, payment {ecom['paymentStatus']}, shipment "
            f"{ecom['shipmentStatus']}, updated {ecom['updatedAt']}\n"
        )
    ledger = story["ledger"]
    if ledger is None:
        out.write("  ledger:  never seen by the sync\n")
    else:
        out.write(
            f"  ledger:  {ledger['status']} after {ledger['attempts']} attempt(s); first seen {ledger['first_seen']}"
            + (f", imported {ledger['imported_at']}" if ledger["imported_at"] else "")
            + "\n"
        )
        if ledger["held_reason"]:
            out.write(f"  held:    since {ledger['held_since']}: {ledger['held_reason']}\n")
        out.write(f"  outlets: {', '.join(ledger['outlet_ids']) or '-'}   customer: {ledger['customer_id'] or '-'}\n")
    if story["last_error"]:
        out.write(f"  last error ({story['last_error']['at']}): {one_line(story['last_error']['error'], 160)}\n")
    sale = story["pos_sale"]
    if sale:
        if "error" in sale:
            out.write(f"  POS sale {sale['id']}: {sale['error']}\n")
        elif "status" not in sale:
            out.write(f"  POS sale {sale['id']} (not read: --offline)\n")
        else:
            out.write(
                f"  POS sale {sale['id']}: {sale['status']}, total {sale['total_price']} + tax {sale['total_tax']}\n"
            )
            for payment in sale["payments"]:
                out.write(f"    payment  {payment['name'] or payment['payment_type_id']}: {payment['amount']}\n")
            if not sale["payments"]:
                out.write("    payment  none (arrived unpaid: taken on the sell screen)\n")
            for f in sale["fulfilments"]:
                out.write(f"    fulfilment {f['type']} {f['state']} at outlet {f['outlet_id']}\n")
    statuses = story["statuses"]
    if statuses:
        out.write(f"  statuses: eCom {statuses['ecom_seen']}, POS {statuses['pos_seen']}")
        out.write(" (frozen: voided or cancelled)\n" if statuses["frozen"] else "\n")
        rows = [["AT", "KIND", "DETAIL", "CORRELATION ID"]]
        for entry in statuses["history"][-HISTORY_SHOWN:]:
            detail = one_line(entry.get("detail"), 80)
            rows.append(
                [str(entry.get("at") or "-"), str(entry.get("kind")), detail, entry.get("correlation_id") or "-"]
            )
        if len(rows) > 1:
            print_table(rows, out, indent="    ")
    out.write("  correlation ids (search the log groups for them):\n")
    for cid in story["correlation_ids"] or ["- (none recorded)"]:
        out.write(f"    {cid}\n")
    out.write(f"  next:    {story['next_step']}\n")


def cmd_show(args: argparse.Namespace, target: Any) -> None:
    if args.connection_id:
        connection = existing_connection(target, args.connection_id)
    else:
        connections = list(target.store.iter_connections())
        if len(connections) != 1:
            names = ", ".join(c.connection_id for c in connections) or "none"
            raise CliError(f"name the connection with --connection (connections: {names})")
        connection = connections[0]
    with progress(f"reading order {args.order_id}"):
        story = order_story(target, connection, args.order_id, live=not args.offline)
    emit(args, story, lambda out: _print_story(story, out))
