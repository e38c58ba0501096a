"""`pos-ecom-sync sync status`, `poll now` and `reconcile now [--dry-run]`: how the sync stands, and its scheduled
runs started by hand.

- `sync status [--connection ID]`: per connection, each change-feed cursor and how long ago it last moved, the last
  reconciliation (or the one running) with the drift it found, the use of each vendor rate window, and the held
  orders and parked rows waiting for an operator; for the stack, the backlog of every queue and dead-letter queue.
  Read only: the sync table (consistent reads) and the queues' approximate counts.
- `poll now [--connection ID]` invokes the change poller (the stack output `ChangePollerFunctionName`) as its
  schedule does, with the connection in the event, and prints what it queued and its run's correlation id.
- `reconcile now --connection ID` invokes the reconciler (`ReconcileFunctionName`) with `force`: a new full run
  starts now, whatever the interval says; one invocation may not finish a large catalog, and the schedule carries
  the run on from its checkpoint.
- `reconcile now --connection ID --dry-run` runs the same comparison here, in this process (the vendors' list
  pages through the connection's own rate budgets, at the catalog's low priority), and prints the drift a run would
  repair. It queues nothing, moves no checkpoint and parks no row; the only writes are the rate budgets' slot counts
  every caller of a vendor API takes.

Invocations go through the Lambda Invoke API: the deployed functions with --stack, the local stack's functions
(its `LambdaEndpoint` output) otherwise. The caller needs `lambda:InvokeFunction` on the two functions.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from datetime import timedelta
from typing import Any, TextIO

from botocore.config import Config
from pos_ecom_sync.models.connection import Connection
from pos_ecom_sync.orders.customers import CENSUS_FRESH_SECONDS, must_search
from pos_ecom_sync.profiles import profile_for
from pos_ecom_sync.ratelimit import ECOM_POLICY
from pos_ecom_sync.reconcile.rules import DRIFT_KINDS
from pos_ecom_sync.reconcile.service import preview_drift
from pos_ecom_sync.state.budget import DynamoRateBudget
from pos_ecom_sync.state.order_store import OrderStore
from pos_ecom_sync.state.parked_store import ParkedStore
from pos_ecom_sync.state.reconcile_store import ReconcileStore

from pos_ecom_sync_cli.common import (
    CliError,
    add_json_option,
    emit,
    existing_connection,
    iso_seconds,
    one_line,
    print_table,
    progress,
    stack_output,
)
from pos_ecom_sync_cli.dlq import CONCERNS, dead_letter_queue_url, source_queue_url
from pos_ecom_sync_cli.vendors import ecom_client, pos_client

# A Lambda function runs for 15 minutes at most: an invocation is awaited that long, and never retried (a retried
# poll or reconciliation is harmless, but it would double the wait and the vendor calls).
INVOKE_CONFIG = Config(read_timeout=905, connect_timeout=10, retries={"max_attempts": 1, "mode": "standard"})
# The reconciler's share of each rate window left to stock and orders (`CATALOG_RATE_RESERVE_SHARE`'s default).
DRY_RUN_RESERVE_SHARE = 0.3
FINDINGS_SHOWN = 40
QUEUE_COUNTS = {
    "ApproximateNumberOfMessages": "visible",
    "ApproximateNumberOfMessagesNotVisible": "in_flight",
    "ApproximateNumberOfMessagesDelayed": "delayed",
}


def _ago(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds} s ago"
    if seconds < 7200:
        return f"{seconds // 60} min ago"
    return f"{seconds / 3600:.1f} h ago"


def _connections(target: Any, connection_id: str | None) -> list[Connection]:
    if connection_id:
        return [existing_connection(target, connection_id)]
    return list(target.store.iter_connections())


# ------------------------------------------------------------------------------------------------ sync status


def _queue_backlog(target: Any) -> dict[str, dict[str, int]]:
    sqs = target.session.client("sqs")
    backlog: dict[str, dict[str, int]] = {}
    for concern in CONCERNS:
        counts = sqs.get_queue_attributes(QueueUrl=source_queue_url(target, concern), AttributeNames=list(QUEUE_COUNTS))
        row = {name: int(counts["Attributes"].get(attr, 0)) for attr, name in QUEUE_COUNTS.items()}
        dead = sqs.get_queue_attributes(
            QueueUrl=dead_letter_queue_url(target, concern), AttributeNames=["ApproximateNumberOfMessages"]
        )
        row["dead_letters"] = int(dead["Attributes"].get("ApproximateNumberOfMessages", 0))
        backlog[concern] = row
    return backlog


def _rate_budgets(target: Any, connection: Connection, now: float) -> dict[str, Any]:
    """Each vendor API's windows (and the POS's leaky bucket, when its profile has one) as the shared budget item
    holds them (a window past its end counts as unused; the bucket's level drained to now)."""
    dynamodb = target.session.client("dynamodb")
    budgets: dict[str, Any] = {}
    for policy in (profile_for(connection).rate_policy(), ECOM_POLICY):
        api = policy.api
        state = DynamoRateBudget(target.table_name, connection.connection_id, api, client=dynamodb).load(policy)
        windows = {}
        for spec, window in zip(policy.windows, state.windows, strict=True):
            active = window.active(now)
            windows[spec.name] = {
                "used": window.used if active else 0,
                "limit": window.limit,
                "resets_in_s": round(window.end - now) if active else None,
            }
        blocked = round(state.blocked_until - now) if state.blocked_until > now else 0
        budgets[api] = {"windows": windows, "blocked_for_s": blocked}
        if state.bucket is not None:
            bucket = state.bucket
            level = round(bucket.level_at(now), 1)
            budgets[api]["bucket"] = {"level": level, "size": bucket.size, "drip_per_s": bucket.drip_rate}
    return budgets


def _reconciliation(target: Any, connection_id: str) -> dict[str, Any]:
    store = ReconcileStore(target.table_name, resource=target.session.resource("dynamodb"))
    checkpoint = store.get_checkpoint(connection_id)
    drift = {kind: checkpoint.drift.get(kind, 0) for kind in DRIFT_KINDS}
    return {
        "state": "running" if checkpoint.in_progress else ("never run" if not checkpoint.run_id else "done"),
        "run_id": checkpoint.run_id,
        "phase": checkpoint.phase,
        "started_at": iso_seconds(checkpoint.started_at.timestamp()) if checkpoint.started_at else None,
        "completed_at": iso_seconds(checkpoint.completed_at.timestamp()) if checkpoint.completed_at else None,
        # The checkpoint keeps the run's findings until the next run starts: a completed run's are its drift.
        "drift": drift,
        "drift_total": sum(drift.values()),
        "pages": checkpoint.pages,
    }


def connection_status(target: Any, connection: Connection, now: float) -> dict[str, Any]:
    cid = connection.connection_id
    dynamodb = target.session.resource("dynamodb")
    cursors = [
        {
            "feed": cursor.feed,
            "cursor": cursor.value,
            "moved_at": iso_seconds(cursor.moved_at),
            "moved_s_ago": round(now - cursor.moved_at) if cursor.moved_at else None,
        }
        for cursor in target.store.list_cursors(cid)
    ]
    orders = OrderStore(target.table_name, client=target.session.client("dynamodb"))
    held = orders.held_orders(cid)
    census = orders.customer_census(cid)
    caught_up = census.caught_up_at if census is not None else None
    return {
        "connection_id": cid,
        "status": connection.status,
        "cursors": cursors,
        "customer_census": {
            "state": "not begun" if census is None else ("walking" if caught_up is None else "caught up"),
            "caught_up_s_ago": round(now - caught_up) if caught_up is not None else None,
            "fresh_for_s": CENSUS_FRESH_SECONDS,
            # order_import's own rule, for an email no POS customer showed (orders.customers.must_search)
            "new_emails_searched": must_search(False, census, now),
        },
        "reconciliation": _reconciliation(target, cid),
        "rate_budgets": _rate_budgets(target, connection, now),
        "held_orders": len(held),
        "parked_rows": len(ParkedStore(target.table_name, resource=dynamodb).list(cid)),
    }


def _print_status(data: dict[str, Any], out: TextIO) -> None:
    out.write(f"sync status at {data['at']}\n\n")
    rows = [["QUEUE", "WAITING", "IN FLIGHT", "DELAYED", "DEAD LETTERS"]]
    for concern, counts in data["queues"].items():
        cells = [counts["visible"], counts["in_flight"], counts["delayed"], counts["dead_letters"]]
        rows.append([concern, *map(str, cells)])
    print_table(rows, out)
    for status in data["connections"]:
        out.write(f"\nconnection {status['connection_id']} ({status['status']})\n")
        rows = [["FEED", "CURSOR", "LAST MOVED"]]
        rows += [[c["feed"], one_line(c["cursor"], 40), _ago(c["moved_s_ago"])] for c in status["cursors"]]
        if len(rows) == 1:
            rows.append(["-", "no feed read yet", "-"])
        print_table(rows, out, indent="  ")
        census = status["customer_census"]
        ago = census["caught_up_s_ago"]
        at_end = f", at the feed's end {_ago(ago)}" if ago is not None else ""
        searched = census["new_emails_searched"]
        effect = "new emails are searched in the POS" if searched else "new emails skip the POS search"
        out.write(f"  customer census: {census['state']}{at_end}; {effect}\n")
        run = status["reconciliation"]
        if run["state"] == "never run":
            out.write("  reconciliation: never run\n")
        else:
            found = ", ".join(f"{kind} {n}" for kind, n in run["drift"].items() if n) or "no drift"
            when = (
                f"running (phase {run['phase']}, started {run['started_at']})"
                if run["state"] == "running"
                else f"completed {run['completed_at']}"
            )
            out.write(f"  reconciliation {run['run_id']}: {when}; found {found}\n")
        for api, budget in status["rate_budgets"].items():
            windows = ", ".join(
                f"{name} {w['used']}/{w['limit']}" + (f" (resets in {w['resets_in_s']} s)" if w["resets_in_s"] else "")
                for name, w in budget["windows"].items()
            )
            blocked = f"; BLOCKED by a 429 for {budget['blocked_for_s']} s" if budget["blocked_for_s"] else ""
            bucket = budget.get("bucket")
            if bucket:
                windows += f"; bucket {bucket['level']}/{bucket['size']:g} drips (drains {bucket['drip_per_s']:g}/s)"
            out.write(f"  rate {api}: {windows}{blocked}\n")
        out.write(f"  held orders: {status['held_orders']}   parked rows: {status['parked_rows']}\n")
        if status["held_orders"]:
            out.write(f"    -> pos-ecom-sync orders held {status['connection_id']}\n")
        if status["parked_rows"]:
            out.write(f"    -> pos-ecom-sync parked list {status['connection_id']}\n")
    if any(q["dead_letters"] for q in data["queues"].values()):
        out.write("\ndead-lettered records wait: pos-ecom-sync dlq list\n")


def cmd_status(args: argparse.Namespace, target: Any) -> None:
    now = time.time()
    with progress("reading the sync state"):
        data = {
            "at": iso_seconds(now),
            "queues": _queue_backlog(target),
            "connections": [connection_status(target, c, now) for c in _connections(target, args.connection_id)],
        }
    emit(args, data, lambda out: _print_status(data, out))


# ------------------------------------------------------------------------------------------------ invocations


def _invoke(target: Any, output: str, event: dict[str, Any], label: str) -> tuple[dict[str, Any], str]:
    """Invoke the function the stack output names, as its schedule does; its result and the invocation's id."""
    client = target.session.client(
        "lambda", endpoint_url=target.outputs.get("LambdaEndpoint") or None, config=INVOKE_CONFIG
    )
    with progress(label):
        response = client.invoke(
            FunctionName=stack_output(target, output), InvocationType="RequestResponse", Payload=json.dumps(event)
        )
    payload = json.loads(response["Payload"].read() or b"null")
    if response.get("FunctionError"):
        detail = payload.get("errorMessage") if isinstance(payload, dict) else payload
        raise CliError(f"{label} failed in the function: {detail} (see its log group)")
    return payload if isinstance(payload, dict) else {"result": payload}, response["ResponseMetadata"]["RequestId"]


def cmd_poll_now(args: argparse.Namespace, target: Any) -> None:
    if args.connection_id:
        existing_connection(target, args.connection_id)
    event = {"connection_id": args.connection_id} if args.connection_id else {}
    summary, request_id = _invoke(target, "ChangePollerFunctionName", event, "polling the change feeds")
    data = {"correlation_id": f"poll-{request_id}", **summary}

    def human(out: TextIO) -> None:
        out.write(f"poll run {data['correlation_id']}: {summary.get('queued', 0)} change(s) queued\n")
        rows = [["CONNECTION", "FEED", "QUEUED", "CURSOR", "LAG", "STOPPED"]]
        for cid, feeds in (summary.get("connections") or {}).items():
            for feed, report in feeds.items():
                cells = [cid, feed, str(report["queued"]), one_line(report["cursor"], 30), f"{report['lag_s']} s"]
                rows.append([*cells, one_line(report["stopped"] or "", 60)])
        if len(rows) > 1:
            print_table(rows, out)
        elif args.connection_id:
            out.write(f"connection {args.connection_id} was not polled: it is paused\n")
        for cid, reason in (summary.get("failures") or {}).items():
            out.write(f"FAILED {cid}: {reason}\n")

    emit(args, data, human)


def _print_invoked_reconcile(data: dict[str, Any], connection_id: str, out: TextIO) -> None:
    report = (data.get("connections") or {}).get(connection_id)
    failure = (data.get("failures") or {}).get(connection_id)
    if failure:
        out.write(f"reconciliation of {connection_id} failed: {failure}\n")
        return
    if not report:
        out.write(f"connection {connection_id} was not reconciled: it is paused\n")
        return
    state = "completed" if report["completed"] else f"stopped in phase {report['phase']} ({report['stopped']})"
    out.write(f"reconcile run {report['run_id']} ({data['correlation_id']}): {state}\n")
    found = {kind: n for kind, n in report["run_drift"].items() if n}
    out.write(f"  drift found and queued for repair: {found or 'none'}; {report['queued']} message(s) queued\n")
    if not report["completed"]:
        out.write("  the schedule continues the run from its checkpoint (see `sync status`)\n")


def _print_preview(data: dict[str, Any], out: TextIO) -> None:
    out.write(f"dry run for {data['connection_id']}: nothing was queued or saved\n")
    counts = {kind: n for kind, n in data["found"].items() if n}
    out.write(f"a reconciliation now would repair: {counts or 'nothing (no drift)'}\n")
    if data["findings"]:
        rows = [["KIND", "QUEUE", "ENTITY", "ID", "DETAIL"]]
        for f in data["findings"][:FINDINGS_SHOWN]:
            rows.append([f["kind"], f["concern"], f["entity"], one_line(f["entity_id"], 40), one_line(f["detail"], 70)])
        print_table(rows, out, indent="  ")
        if len(data["findings"]) > FINDINGS_SHOWN:
            out.write(f"  ... and {len(data['findings']) - FINDINGS_SHOWN} more (--json lists every one)\n")
    if data["skipped"]:
        out.write(f"{data['skipped']} row(s) could not be compared (a real run parks them)\n")
    if data["stopped"]:
        out.write(f"stopped early: {data['stopped']}; the findings above cover the pages read\n")
    out.write(f"vendor calls: POS {data['pos_calls']}, eCom {data['ecom_calls']}\n")


def cmd_reconcile_now(args: argparse.Namespace, target: Any) -> None:
    connection = existing_connection(target, args.connection_id)
    if not args.dry_run:
        event = {"connection_id": connection.connection_id, "force": True}
        summary, request_id = _invoke(target, "ReconcileFunctionName", event, "reconciling")
        data = {"correlation_id": f"reconcile-{request_id}", **summary}
        emit(args, data, lambda out: _print_invoked_reconcile(data, connection.connection_id, out))
        return
    pos = pos_client(target, connection, reserve_share=DRY_RUN_RESERVE_SHARE)
    ecom = ecom_client(target, connection, reserve_share=DRY_RUN_RESERVE_SHARE)
    state = ReconcileStore(target.table_name, resource=target.session.resource("dynamodb"))
    try:
        with progress(f"comparing {connection.connection_id} with both vendors (dry run)"):
            walk = profile_for(connection).catalog_walk(pos)
            lookback = timedelta(hours=args.order_lookback_hours)
            preview = preview_drift(state, connection, walk, ecom, order_lookback=lookback)
    finally:
        pos.close()
        ecom.close()
    report = preview.report
    found = Counter(f.kind for f in preview.findings)
    preview_data = {
        "connection_id": connection.connection_id,
        "dry_run": True,
        "found": {kind: found.get(kind, 0) for kind in DRIFT_KINDS},
        "findings": [
            {"kind": f.kind, "concern": f.concern, "entity": f.entity, "entity_id": f.entity_id, "detail": f.detail}
            for f in preview.findings
        ],
        "pages": report.run_pages,
        "skipped": len(report.skipped),
        "stopped": report.stopped,
        "pos_calls": report.pos_calls,
        "ecom_calls": report.ecom_calls,
    }
    emit(args, preview_data, lambda out: _print_preview(preview_data, out))


def add_operations_commands(groups: Any) -> None:
    """Add the `sync`, `poll` and `reconcile` groups to the CLI's sub-command groups."""
    sync = groups.add_parser("sync", help="how the sync stands").add_subparsers(dest="command", required=True)
    status = sync.add_parser("status", help="cursors, reconciliation, rate budgets, queue backlog, what waits")
    status.add_argument("--connection", dest="connection_id", help="only this connection (default: every one)")
    add_json_option(status)
    status.set_defaults(run=cmd_status)

    poll = groups.add_parser("poll", help="run the change poller now").add_subparsers(dest="command", required=True)
    poll_now = poll.add_parser("now", help="invoke the change poller as its schedule does")
    poll_now.add_argument("--connection", dest="connection_id", help="only this connection (default: every one)")
    add_json_option(poll_now)
    poll_now.set_defaults(run=cmd_poll_now)

    reconcile = groups.add_parser("reconcile", help="run a full compare of both vendors now").add_subparsers(
        dest="command", required=True
    )
    reconcile_now = reconcile.add_parser(
        "now", help="start a full reconciliation now; --dry-run prints the drift it would repair, changing nothing"
    )
    reconcile_now.add_argument("--connection", dest="connection_id", required=True)
    reconcile_now.add_argument("--dry-run", action="store_true", help="compare here and print; queue nothing")
    reconcile_now.add_argument(
        "--order-lookback-hours",
        type=float,
        default=48.0,
        help="dry run: orders updated this far back are compared (the stack's RECONCILE_ORDER_LOOKBACK_HOURS)",
    )
    add_json_option(reconcile_now)
    reconcile_now.set_defaults(run=cmd_reconcile_now)
