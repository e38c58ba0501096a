"""`pos-ecom-sync dlq list|show|redrive`: the records each concern's dead-letter queue holds, and their replay.

A record lands in a concern's FIFO dead-letter queue in one of two ways:
- a worker parks it at once when it cannot succeed as sent (a vendor 4xx, invalid input, a paused connection...):
  the body is the change message, with message attributes `error`, `error_type`, `source_message_id` and
  `receive_count` (workers.DeadLetters.park);
- SQS moves it there after `maxReceiveCount` receives of transient failures: it has no `error` attribute, and the
  reason shown is "exceeded maxReceiveCount" (the worker's log lines, found by the record's correlation id, say why).

Queue URLs come from the stack outputs (`<Concern>DeadLetterQueueUrl`, `<Concern>QueueUrl`), never from names.

Reading a queue means receiving its messages: SQS has no peek. Each read takes a batch with a visibility timeout of
READ_VISIBILITY_S, long enough that a scan of a deep queue never receives the same record twice, and when the
scan is done sets every record it holds back to visible (timeout 0): a listing hides nothing from the next reader,
and a CLI killed mid-scan hides records for half a minute at most. Receiving does not change a record: dead-letter
queues have no redrive policy of their own, and the count that matters is the `receive_count` the worker wrote.
A FIFO queue hands out no record of a message group while another of that group is held, so a group's records
behind the first batch of it are not listed: the listing says how many records it could not show; they appear once
the ones in front are redriven (`redrive --all` reads again until the queue is empty).

Redrive sends each record back to its source queue (the body's concern) with the same body, its message group,
the message attributes it came with (not the parking ones), and a NEW deduplication id: the original id may still be
inside SQS's 5-minute deduplication window, where the send would be silently dropped. The id is derived from the
dead-letter record's own message id, so repeating a redrive that died between the send and the delete is dropped by
SQS as a duplicate instead of queued twice. A record is deleted from the dead-letter queue only after its send
succeeded. SQS's own StartMessageMoveTask is not used: it moves a whole queue (not one record), sends to the queue
a message was *moved* from (records parked by a worker were never moved, so they have none), keeps the parking
attributes, and the local emulator (moto) does not implement it; one send-then-delete path serves both cases.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TextIO

from botocore.exceptions import BotoCoreError, ClientError
from pos_ecom_sync.models.messages import ChangeMessage
from pydantic import ValidationError

from pos_ecom_sync_cli.common import CliError, add_json_option, emit, one_line, print_table, stack_output

CONCERNS = ("products", "stock", "orders", "statuses")
# The message attributes a worker adds when it parks a record (workers.DeadLetters.park): not sent back on redrive.
PARKING_ATTRIBUTES = frozenset({"error", "error_type", "source_message_id", "receive_count"})
READ_VISIBILITY_S = 30
REDRIVE_DEDUP_PREFIX = "redrive-"
MAX_RECEIVE_REASON = "exceeded maxReceiveCount (moved by SQS after repeated transient failures)"
ERROR_COLUMN = 80


def _concern_key(concern: str) -> str:
    return concern.capitalize()


def dead_letter_queue_url(target: Any, concern: str) -> str:
    return stack_output(target, f"{_concern_key(concern)}DeadLetterQueueUrl")


def source_queue_url(target: Any, concern: str) -> str:
    return stack_output(target, f"{_concern_key(concern)}QueueUrl")


@dataclass
class DeadLetter:
    """One record of a dead-letter queue, as received (its receipt handle is valid while the CLI holds it)."""

    concern: str  # the dead-letter queue it sits in
    message: dict[str, Any]

    @property
    def message_id(self) -> str:
        return str(self.message["MessageId"])

    @property
    def receipt_handle(self) -> str:
        return str(self.message["ReceiptHandle"])

    @property
    def body(self) -> str:
        return str(self.message.get("Body", ""))

    @property
    def system(self) -> dict[str, str]:
        return dict(self.message.get("Attributes", {}))

    @property
    def attributes(self) -> dict[str, dict[str, Any]]:
        return dict(self.message.get("MessageAttributes", {}))

    def attribute(self, name: str) -> str | None:
        value = self.attributes.get(name, {}).get("StringValue")
        return None if value is None else str(value)

    @property
    def source_message_id(self) -> str:
        """The id the source queue gave the record (a record SQS moved keeps its id)."""
        return self.attribute("source_message_id") or self.message_id

    def change(self) -> ChangeMessage:
        """The change message the body holds; a body that is none cannot be redriven (it would fail again)."""
        try:
            return ChangeMessage.model_validate_json(self.body)
        except ValidationError as exc:
            problem = f"{exc.error_count()} errors"
            raise CliError(f"record {self.message_id}: the body is not a change message ({problem})") from exc

    def _fields(self) -> dict[str, Any]:
        try:
            raw = json.loads(self.body)
        except ValueError:
            raw = None
        return raw if isinstance(raw, dict) else {}

    def matches(self, wanted: str) -> bool:
        return wanted in (self.message_id, self.source_message_id)

    def summary(self) -> dict[str, Any]:
        body = self._fields()
        error = self.attribute("error")
        receive_count = self.attribute("receive_count")
        return {
            "message_id": self.message_id,
            "dead_letter_queue": self.concern,
            "source_message_id": self.source_message_id,
            "concern": body.get("concern"),
            "connection_id": body.get("connection_id"),
            "entity": body.get("entity"),
            "entity_id": body.get("entity_id"),
            "correlation_id": body.get("correlation_id"),
            "error_type": self.attribute("error_type") or ("maxReceiveCount" if error is None else None),
            "error": error if error is not None else MAX_RECEIVE_REASON,
            "receive_count": int(receive_count) if receive_count and receive_count.isdigit() else None,
            "sent_at": _iso(self.system.get("SentTimestamp")),
        }

    def full(self) -> dict[str, Any]:
        body: Any = self._fields() or self.body
        return {
            **self.summary(),
            "message_group_id": self.system.get("MessageGroupId"),
            "body": body,
            "message_attributes": {name: _attribute_value(value) for name, value in sorted(self.attributes.items())},
            "sqs_attributes": self.system,
        }


def _attribute_value(value: dict[str, Any]) -> Any:
    return value.get("StringValue", value.get("BinaryValue"))


def _iso(epoch_ms: str | None) -> str | None:
    if not epoch_ms or not epoch_ms.isdigit():
        return None
    return datetime.fromtimestamp(int(epoch_ms) / 1000, UTC).isoformat(timespec="seconds")


@dataclass
class QueueRead:
    """What one scan of a dead-letter queue received, and how many records it could not see."""

    concern: str
    url: str
    records: list[DeadLetter] = field(default_factory=list)
    visible: int = 0  # ApproximateNumberOfMessages before the scan
    in_flight: int = 0  # ApproximateNumberOfMessagesNotVisible before the scan: held by another reader

    @property
    def not_shown(self) -> int:
        return max(0, self.visible - len(self.records))

    def describe(self) -> dict[str, Any]:
        return {"url": self.url, "listed": len(self.records), "not_shown": self.not_shown, "in_flight": self.in_flight}


class DeadLetterQueues:
    """Reads, releases and redrives the records of the stack's dead-letter queues."""

    def __init__(self, target: Any, concerns: Iterable[str]) -> None:
        self.target = target
        self.sqs = target.session.client("sqs")
        self.urls = {concern: dead_letter_queue_url(target, concern) for concern in concerns}

    def read(self, concern: str) -> QueueRead:
        url = self.urls[concern]
        counts = self.sqs.get_queue_attributes(
            QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        )["Attributes"]
        scan = QueueRead(
            concern,
            url,
            visible=int(counts.get("ApproximateNumberOfMessages", 0)),
            in_flight=int(counts.get("ApproximateNumberOfMessagesNotVisible", 0)),
        )
        seen: dict[str, DeadLetter] = {}
        while True:
            # A long poll (it asks every SQS host, a short poll only some; it returns as soon as a record is there)
            # while the count says more is there, then a short one for records sent since the count was read.
            batch = self.sqs.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=10,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
                VisibilityTimeout=READ_VISIBILITY_S,
                WaitTimeSeconds=1 if len(seen) < scan.visible else 0,
            ).get("Messages", [])
            fresh = [m for m in batch if m["MessageId"] not in seen]
            for message in batch:
                if message["MessageId"] in seen:  # visible again (a scan past the timeout): keep the newest handle
                    seen[message["MessageId"]].message = message
                else:
                    seen[message["MessageId"]] = DeadLetter(concern, message)
                    scan.records.append(seen[message["MessageId"]])
            if not fresh:
                return scan

    def release(self, concern: str, records: list[DeadLetter]) -> None:
        """Make records visible again at once, so reading them hid nothing."""
        for start in range(0, len(records), 10):
            entries = [
                {"Id": str(n), "ReceiptHandle": r.receipt_handle, "VisibilityTimeout": 0}
                for n, r in enumerate(records[start : start + 10])
            ]
            self.sqs.change_message_visibility_batch(QueueUrl=self.urls[concern], Entries=entries)

    def redrive(self, record: DeadLetter) -> dict[str, Any]:
        """Send the record back to its source queue, then delete it here (never the other way round)."""
        change = record.change()
        destination = source_queue_url(self.target, change.concern)
        attributes = {k: v for k, v in record.attributes.items() if k not in PARKING_ATTRIBUTES}
        sent = self.sqs.send_message(
            QueueUrl=destination,
            MessageBody=record.body,
            MessageGroupId=change.message_group_id,
            MessageDeduplicationId=f"{REDRIVE_DEDUP_PREFIX}{record.message_id}",
            **({"MessageAttributes": attributes} if attributes else {}),
        )
        self.sqs.delete_message(QueueUrl=self.urls[record.concern], ReceiptHandle=record.receipt_handle)
        return {"new_message_id": sent.get("MessageId"), "queue": change.concern}


def _concerns(args: argparse.Namespace) -> list[str]:
    return [args.concern] if args.concern else list(CONCERNS)


# ------------------------------------------------------------------------------------------------ output


LIST_COLUMNS = [
    ("MESSAGE ID", "message_id"),
    ("CONNECTION", "connection_id"),
    ("ENTITY", "entity"),
    ("ENTITY ID", "entity_id"),
    ("ERROR TYPE", "error_type"),
    ("RECEIVES", "receive_count"),
    ("SENT", "sent_at"),
    ("ERROR", "error"),
]


def _print_listing(scans: list[QueueRead], out: TextIO) -> None:
    for scan in scans:
        count = len(scan.records)
        out.write(f"{scan.concern} dead-letter queue: {count} record{'' if count == 1 else 's'}\n")
        if scan.records:
            rows = [[title for title, _ in LIST_COLUMNS]]
            for record in scan.records:
                summary = record.summary()
                rows.append([one_line(summary[key], ERROR_COLUMN) for _, key in LIST_COLUMNS])
            print_table(rows, out)
        if scan.not_shown:
            out.write(
                f"  {scan.not_shown} more not shown: behind a listed record of the same message group (FIFO); "
                "they show once the ones in front are redriven\n"
            )
        if scan.in_flight:
            out.write(f"  {scan.in_flight} held by another reader (a listing or redrive running now)\n")
        out.write("\n")


# ------------------------------------------------------------------------------------------------ commands


def cmd_list(args: argparse.Namespace, target: Any) -> None:
    queues = DeadLetterQueues(target, _concerns(args))
    scans = []
    for concern in queues.urls:
        scan = queues.read(concern)
        queues.release(concern, scan.records)
        scans.append(scan)
    data = {
        "records": [record.summary() for scan in scans for record in scan.records],
        "queues": {scan.concern: scan.describe() for scan in scans},
    }
    emit(args, data, lambda out: _print_listing(scans, out))


def cmd_show(args: argparse.Namespace, target: Any) -> None:
    queues = DeadLetterQueues(target, _concerns(args))
    found: DeadLetter | None = None
    for concern in queues.urls:
        scan = queues.read(concern)
        queues.release(concern, scan.records)
        found = found or next((r for r in scan.records if r.matches(args.message_id)), None)
    if found is None:
        raise CliError(f"no dead-lettered record {args.message_id!r} (see `dlq list`)")
    view = found.full()

    def human(out: TextIO) -> None:
        for key, value in view.items():
            if key not in ("body", "message_attributes", "sqs_attributes"):
                out.write(f"{key}: {value if value is not None else '-'}\n")
        for key in ("message_attributes", "sqs_attributes", "body"):
            out.write(f"{key}:\n{json.dumps(view[key], indent=2, default=str)}\n")

    emit(args, view, human)


def cmd_redrive(args: argparse.Namespace, target: Any) -> None:
    if bool(args.all) == bool(args.message_ids):
        raise CliError("name the records to redrive (message ids from `dlq list`), or pass --all")
    queues = DeadLetterQueues(target, _concerns(args))
    wanted = set(args.message_ids)
    handled: set[str] = set()  # a record kept after a failed send is not tried again in a later round
    outcomes: list[dict[str, Any]] = []
    failures = 0
    for concern in queues.urls:
        # Several rounds: FIFO hides a group's later records while earlier ones are held; once those are redriven
        # (deleted here), the next read shows the ones behind them.
        while True:
            scan = queues.read(concern)
            chosen = [
                r
                for r in scan.records
                if r.message_id not in handled and (args.all or any(r.matches(w) for w in wanted))
            ]
            queues.release(concern, [r for r in scan.records if r not in chosen])
            if args.dry_run:
                queues.release(concern, chosen)
            moved = 0
            for record in chosen:
                outcome = {**record.summary(), "action": "would redrive" if args.dry_run else "redriven"}
                handled.add(record.message_id)
                wanted.difference_update({record.message_id, record.source_message_id})
                if not args.dry_run:
                    try:
                        outcome.update(queues.redrive(record))
                        moved += 1
                    except (CliError, ClientError, BotoCoreError) as exc:
                        queues.release(concern, [record])
                        outcome.update(action="kept", reason=str(exc))
                        failures += 1
                if not args.json:  # progress, one line per record
                    what = f"{outcome['entity']} {outcome['entity_id']}"
                    print(f"{outcome['action']}: {record.message_id} ({what})", file=sys.stderr)
                outcomes.append(outcome)
            if args.dry_run or not moved or (not args.all and not wanted):
                break
    missing = sorted(wanted)
    data = {"dry_run": bool(args.dry_run), "records": outcomes, "not_found": missing}

    def human(out: TextIO) -> None:
        if outcomes:
            rows = [["ACTION", "MESSAGE ID", "QUEUE", "CONNECTION", "ENTITY", "ENTITY ID", "NOTE"]]
            for o in outcomes:
                note = o.get("reason") or (f"new message {o['new_message_id']}" if o.get("new_message_id") else "")
                cells = [o["action"], o["message_id"], o["concern"], o["connection_id"], o["entity"], o["entity_id"]]
                rows.append([one_line(c, ERROR_COLUMN) for c in [*cells, note]])
            print_table(rows, out)
        else:
            out.write("nothing to redrive\n")
        for message_id in missing:
            out.write(f"not found: {message_id}\n")

    emit(args, data, human)
    if failures or missing:
        raise CliError(f"{failures} record(s) kept in the dead-letter queue, {len(missing)} not found: see above")


def add_dlq_commands(groups: Any) -> None:
    """Add the `dlq` group to the CLI's sub-command groups."""
    dlq = groups.add_parser("dlq", help="records the workers could not sync: list, show, redrive")
    commands = dlq.add_subparsers(dest="command", required=True)

    def common(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--concern", choices=CONCERNS, help="only this concern's dead-letter queue")
        add_json_option(parser)

    listing = commands.add_parser("list", help="each dead-lettered record with the error it carries")
    common(listing)
    listing.set_defaults(run=cmd_list)

    show = commands.add_parser("show", help="one record in full: body and attributes")
    show.add_argument("message_id", help="its message id (or source message id) as `dlq list` prints it")
    common(show)
    show.set_defaults(run=cmd_show)

    redrive = commands.add_parser(
        "redrive", help="send records back to their source queue (after fixing the cause), then delete them here"
    )
    redrive.add_argument("message_ids", nargs="*", metavar="message_id", help="records to redrive")
    redrive.add_argument("--all", action="store_true", help="every record (of --concern, else of every queue)")
    redrive.add_argument("--dry-run", action="store_true", help="print what would be redriven; change nothing")
    common(redrive)
    redrive.set_defaults(run=cmd_redrive)
