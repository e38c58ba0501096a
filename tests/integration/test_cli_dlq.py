"""`pos-ecom-sync dlq list|show|redrive` against a moto server, on the queue URLs of the stack outputs.

Records are parked the way workers park them (`workers.DeadLetters.park` on a record received from the source
queue), or sent straight to a dead-letter queue without attributes, as SQS moves one after maxReceiveCount.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from pos_ecom_sync.errors import InvalidInput, UpstreamError
from pos_ecom_sync.models.messages import ChangeMessage
from pos_ecom_sync.workers import ChangeRecord, DeadLetters

from local_stack.lambda_events import sqs_event
from local_stack.provision import local_outputs, provision
from pos_ecom_sync_cli.main import main
from tests.integration import test_cli
from tests.integration.test_cli import Run
from tests.support import drain_queue

_stack_numbers = itertools.count(1)
moto_endpoint = test_cli.moto_endpoint  # the CLI tests' moto server fixture
_versions = itertools.count(1)
REFUSED = UpstreamError("x-series", 400, '{"error":"register_id \'r-gone\' does not exist"}', "POST", "/sales")


@dataclass
class _SendRecorder:
    """The SQS client a worker parks with, keeping the id SQS gives each parked record."""

    sqs: Any
    sent: list[str]

    def send_message(self, **kwargs: Any) -> dict[str, Any]:
        answer: dict[str, Any] = self.sqs.send_message(**kwargs)
        self.sent.append(answer["MessageId"])
        return answer


@dataclass
class Stack:
    sqs: Any
    outputs: dict[str, str]
    capsys: pytest.CaptureFixture[str]

    def cli(self, *argv: str) -> Run:
        code = main(list(argv))
        out, err = self.capsys.readouterr()
        return Run(code, out, err)

    def url(self, output: str) -> str:
        return self.outputs[output]

    def park(self, concern: str, entity_id: str, error: Exception, entity: str = "order") -> str:
        """A change sent to its source queue, received there and parked as a worker parks it: its DLQ message id."""
        message = ChangeMessage.model_validate(
            {
                "connection_id": "dockside",
                "source": "ecom" if entity == "order" else "pos",
                "entity": entity,
                "entity_id": entity_id,
                "version": next(_versions),  # each park is a distinct change (SQS would drop a duplicate send)
                "via": "webhook",
                "received_at": datetime.now(UTC),
                "payload": {"id": entity_id},
                "concern": concern,
                "correlation_id": f"corr-{entity_id}",
            }
        )
        source = self.url(f"{concern.capitalize()}QueueUrl")
        self.sqs.send_message(
            QueueUrl=source,
            MessageBody=message.model_dump_json(),
            MessageGroupId=message.message_group_id,
            MessageDeduplicationId=message.deduplication_id(),
        )
        [received] = self.sqs.receive_message(QueueUrl=source, AttributeNames=["All"], MaxNumberOfMessages=1)[
            "Messages"
        ]
        record = ChangeRecord.model_validate(sqs_event([received], f"arn:{concern}")["Records"][0])
        sent: list[str] = []
        DeadLetters(_SendRecorder(self.sqs, sent), self.url(f"{concern.capitalize()}DeadLetterQueueUrl")).park(
            record, error
        )
        self.sqs.delete_message(QueueUrl=source, ReceiptHandle=received["ReceiptHandle"])
        return sent[0]

    def dead_letter_ids(self, concern: str) -> list[str]:
        """Message ids on a dead-letter queue (read last in a test: they stay hidden for a minute)."""
        url = self.url(f"{concern.capitalize()}DeadLetterQueueUrl")
        messages = self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=60).get(
            "Messages", []
        )
        return [m["MessageId"] for m in messages]

    def source_messages(self, concern: str) -> list[dict[str, Any]]:
        return drain_queue(self.sqs, self.url(f"{concern.capitalize()}QueueUrl"))


@pytest.fixture
def stack(
    moto_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Stack:
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    session = boto3.Session(region_name="us-east-1")
    resources = provision(session, stack_name=f"dlq{next(_stack_numbers)}")
    outputs = local_outputs(resources, moto_endpoint, "us-east-1")
    (tmp_path / ".local-stack").mkdir()
    (tmp_path / ".local-stack" / "outputs.json").write_text(json.dumps(outputs))
    monkeypatch.chdir(tmp_path)
    return Stack(session.client("sqs"), outputs, capsys)


def test_list_shows_each_dead_lettered_record_with_the_error_it_carries(stack: Stack) -> None:
    order = stack.park("orders", "9001", REFUSED)
    stock = stack.park("stock", "prod-7", InvalidInput("inventory count 'many' is not an integer"), "inventory")
    stack.sqs.send_message(  # moved by SQS after maxReceiveCount: no attributes of ours
        QueueUrl=stack.url("ProductsDeadLetterQueueUrl"),
        MessageBody=json.dumps({"connection_id": "dockside", "entity": "product", "entity_id": "prod-9"}),
        MessageGroupId="dockside:pos:product:prod-9",
        MessageDeduplicationId="moved-1",
    )

    run = stack.cli("dlq", "list", "--json")

    assert run.code == 0, run.err
    records = {r["dead_letter_queue"]: r for r in run.json["records"]}
    assert set(records) == {"orders", "stock", "products"}
    assert records["orders"]["message_id"] == order
    assert records["orders"]["connection_id"] == "dockside"
    assert (records["orders"]["entity"], records["orders"]["entity_id"]) == ("order", "9001")
    assert records["orders"]["error_type"] == "UpstreamError"
    assert "answered 400" in records["orders"]["error"] and "r-gone" in records["orders"]["error"]
    assert records["orders"]["receive_count"] == 1 and records["orders"]["sent_at"]
    assert records["orders"]["correlation_id"] == "corr-9001"
    assert records["stock"]["message_id"] == stock and records["stock"]["error_type"] == "InvalidInput"
    assert records["products"]["error"].startswith("exceeded maxReceiveCount")
    assert records["products"]["receive_count"] is None
    # Listing received the records and gave them back at once: the next reader sees every one.
    assert stack.cli("dlq", "list", "--json").json["records"] == run.json["records"]
    assert stack.dead_letter_ids("orders") == [order]


def test_list_by_default_prints_a_table_per_queue_and_can_keep_to_one_concern(stack: Stack) -> None:
    order = stack.park("orders", "9002", REFUSED)
    stack.park("stock", "prod-8", InvalidInput("bad count"), "inventory")

    run = stack.cli("dlq", "list", "--concern", "orders")

    assert run.code == 0, run.err
    assert run.out.startswith("orders dead-letter queue: 1 record\n")
    header, row = run.out.splitlines()[1:3]
    titles = "MESSAGE ID  CONNECTION  ENTITY  ENTITY ID  ERROR TYPE  RECEIVES  SENT  ERROR"
    assert header.split() == titles.split()
    assert row.startswith(order) and "UpstreamError" in row and "answered 400" in row
    assert "stock" not in run.out and "prod-8" not in run.out


def test_show_prints_the_whole_record_by_its_id_or_its_source_message_id(stack: Stack) -> None:
    order = stack.park("orders", "9003", REFUSED)

    shown = stack.cli("dlq", "show", order, "--json")

    assert shown.code == 0, shown.err
    view = shown.json
    assert view["body"]["entity_id"] == "9003" and view["body"]["concern"] == "orders"
    assert view["message_group_id"] == "dockside:ecom:order:9003"
    assert view["message_attributes"]["error_type"] == "UpstreamError"
    assert view["message_attributes"]["error"] == str(REFUSED)
    by_source = stack.cli("dlq", "show", view["source_message_id"], "--json")
    assert by_source.json["message_id"] == order
    table = stack.cli("dlq", "show", order)
    assert f"message_id: {order}" in table.out and '"entity_id": "9003"' in table.out


def test_show_of_an_unknown_id_is_refused_with_advice(stack: Stack) -> None:
    run = stack.cli("dlq", "show", "no-such-id")

    assert run.code == 2 and "no dead-lettered record 'no-such-id'" in run.err and "dlq list" in run.err


def test_redrive_of_one_record_sends_exactly_that_record_back_and_deletes_it(stack: Stack) -> None:
    first = stack.park("orders", "9004", REFUSED)
    second = stack.park("orders", "9005", REFUSED)

    run = stack.cli("dlq", "redrive", first, "--json")

    assert run.code == 0, run.err
    [outcome] = run.json["records"]
    assert outcome["message_id"] == first and outcome["action"] == "redriven" and outcome["queue"] == "orders"
    [sent] = stack.source_messages("orders")
    body = json.loads(sent["Body"])
    assert body["entity_id"] == "9004" and body["correlation_id"] == "corr-9004"  # the same body
    assert sent["Attributes"]["MessageGroupId"] == "dockside:ecom:order:9004"
    assert sent["Attributes"]["MessageDeduplicationId"] == f"redrive-{first}"  # a new id: not the original's
    assert "error" not in sent.get("MessageAttributes", {})  # the parking attributes stay behind
    assert stack.dead_letter_ids("orders") == [second]


def test_redrive_arrives_even_within_the_original_deduplication_window(stack: Stack) -> None:
    # The original send happened a moment ago: resending with its deduplication id would be dropped by SQS.
    parked = stack.park("orders", "9006", REFUSED)

    assert stack.cli("dlq", "redrive", parked).code == 0

    assert [json.loads(m["Body"])["entity_id"] for m in stack.source_messages("orders")] == ["9006"]


def test_a_dry_run_moves_nothing_and_says_what_it_would_do(stack: Stack) -> None:
    parked = stack.park("orders", "9007", REFUSED)

    run = stack.cli("dlq", "redrive", "--all", "--dry-run", "--json")

    assert run.code == 0, run.err
    assert [(r["message_id"], r["action"]) for r in run.json["records"]] == [(parked, "would redrive")]
    assert stack.source_messages("orders") == []
    assert stack.dead_letter_ids("orders") == [parked]  # and not hidden either


def test_redrive_all_empties_every_dead_letter_queue_including_records_of_one_group(stack: Stack) -> None:
    # Three parked changes of one order share a message group: FIFO hands them out in order, never around a held one.
    for _ in range(3):
        stack.park("orders", "9008", REFUSED)
    stack.park("statuses", "sale-1", REFUSED, "sale")

    run = stack.cli("dlq", "redrive", "--all")

    assert run.code == 0, run.err
    assert run.out.splitlines()[0].split()[:3] == ["ACTION", "MESSAGE", "ID"]
    assert run.err.count("redriven: ") == 4  # progress, one line per record
    assert all(stack.dead_letter_ids(concern) == [] for concern in ("orders", "statuses"))
    assert [json.loads(m["Body"])["entity_id"] for m in stack.source_messages("orders")] == ["9008"] * 3
    assert [json.loads(m["Body"])["entity_id"] for m in stack.source_messages("statuses")] == ["sale-1"]


def test_records_behind_a_full_batch_of_their_group_are_counted_then_redriven_in_a_later_round(stack: Stack) -> None:
    # SQS hands out at most 10 records at once, and none of a group while others of it are held.
    for _ in range(11):
        stack.park("orders", "9010", REFUSED)

    listed = stack.cli("dlq", "list", "--concern", "orders").out
    assert listed.startswith("orders dead-letter queue: 10 records\n")
    assert "1 more not shown: behind a listed record of the same message group" in listed

    run = stack.cli("dlq", "redrive", "--all", "--concern", "orders", "--json")

    assert run.code == 0, run.err
    assert len(run.json["records"]) == 11 and stack.dead_letter_ids("orders") == []
    assert len(stack.source_messages("orders")) == 11


def test_a_record_that_is_no_change_message_is_kept_and_the_rest_redriven(stack: Stack) -> None:
    parked = stack.park("orders", "9009", REFUSED)
    stack.sqs.send_message(
        QueueUrl=stack.url("OrdersDeadLetterQueueUrl"),
        MessageBody="not json",
        MessageGroupId="garbled",
        MessageDeduplicationId="garbled-1",
    )

    run = stack.cli("dlq", "redrive", "--all", "--concern", "orders", "--json")

    assert run.code == 2 and "1 record(s) kept" in run.err
    actions = {r["message_id"]: r["action"] for r in run.json["records"]}
    assert actions[parked] == "redriven"
    [kept] = [r for r in run.json["records"] if r["action"] == "kept"]
    assert "not a change message" in kept["reason"]
    assert stack.dead_letter_ids("orders") == [kept["message_id"]]


def test_redrive_needs_ids_or_all_and_reports_ids_it_did_not_find(stack: Stack) -> None:
    assert stack.cli("dlq", "redrive").code == 2

    run = stack.cli("dlq", "redrive", "gone-already")

    assert run.code == 2 and "not found: gone-already" in run.out and "1 not found" in run.err


def test_a_stack_whose_outputs_list_no_queue_urls_is_refused_with_the_fix(stack: Stack, tmp_path: Path) -> None:
    outputs = {k: v for k, v in stack.outputs.items() if not k.endswith("QueueUrl")}
    (tmp_path / ".local-stack" / "outputs.json").write_text(json.dumps(outputs))

    run = stack.cli("dlq", "list")

    assert run.code == 2 and "stack outputs have no ProductsDeadLetterQueueUrl" in run.err
