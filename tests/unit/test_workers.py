"""The SQS consumer plumbing every worker shares: back-off of transient failures, one retry with a freshly read
secret after a vendor refused a cached credential, parking of what can never succeed."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from pos_ecom_sync import workers
from pos_ecom_sync.errors import CredentialsRejected, InvalidInput, RateLimited, RetryLater, UpstreamUnavailable
from pos_ecom_sync.models.messages import ChangeMessage
from pos_ecom_sync.workers import BACKOFF_CAP_S, consume_changes, retry_delay_s

from local_stack.lambda_events import LambdaContext, sqs_event

QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:shop-stock.fifo"
MESSAGE = ChangeMessage(
    connection_id="shop", source="pos", entity="inventory", entity_id="p-1", via="webhook",
    received_at="2026-12-05T00:00:00Z", payload={"product_id": "p-1"}, concern="stock",
)  # fmt: skip


class FakeSqs:
    def __init__(self) -> None:
        self.delays: list[int] = []
        self.lookups = 0

    def get_queue_url(self, QueueName: str, QueueOwnerAWSAccountId: str) -> dict[str, str]:
        self.lookups += 1
        return {"QueueUrl": f"https://sqs.us-east-1.amazonaws.com/{QueueOwnerAWSAccountId}/{QueueName}"}

    def change_message_visibility(self, QueueUrl: str, ReceiptHandle: str, VisibilityTimeout: int) -> None:
        self.delays.append(VisibilityTimeout)


class FakeDeadLetters:
    def __init__(self) -> None:
        self.parked: list[Exception] = []

    def park(self, record: Any, error: Exception) -> None:
        self.parked.append(error)


def _event(receive_count: int) -> dict[str, Any]:
    now_ms = str(int(time.time() * 1000))
    attributes = {
        "ApproximateReceiveCount": str(receive_count), "SentTimestamp": now_ms, "SenderId": "AIDAEXAMPLE",
        "ApproximateFirstReceiveTimestamp": now_ms, "MessageGroupId": MESSAGE.message_group_id,
        "MessageDeduplicationId": uuid.uuid4().hex, "SequenceNumber": "18849496460467696128",
    }  # fmt: skip
    message = {"MessageId": str(uuid.uuid4()), "ReceiptHandle": "rh", "Body": MESSAGE.model_dump_json()}
    return sqs_event([{**message, "Attributes": attributes}], QUEUE_ARN)


def _consume(
    handle: Any, receive_count: int = 1, refresh: Any = None, sqs: FakeSqs | None = None
) -> tuple[int, FakeSqs, FakeDeadLetters]:
    """Runs one single-record batch; returns how many records SQS keeps (failed), and the fakes."""
    sqs, dead = sqs or FakeSqs(), FakeDeadLetters()
    try:
        response = consume_changes(
            _event(receive_count), LambdaContext(function_name="test", timeout_s=60), handle,
            sqs=sqs, dead_letters=dead, logger=Logger(service="test"), metrics=Metrics(namespace="test"),
            refresh_credentials=refresh,
        )  # fmt: skip
    except BatchProcessingError:  # every record failed: Lambda retries the whole batch
        return 1, sqs, dead
    return len(response["batchItemFailures"]), sqs, dead


def test_a_queue_url_is_looked_up_once_per_warm_sandbox(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(workers, "_QUEUE_URLS", {})

    def down(message: ChangeMessage) -> None:
        raise UpstreamUnavailable("dynamodb: cannot read stock state")

    sqs = FakeSqs()
    for _ in range(3):
        _consume(down, sqs=sqs)
    assert (sqs.lookups, len(sqs.delays)) == (1, 3)


@pytest.mark.parametrize("receive_count", [1, 2, 5, 9, 24])
def test_a_transient_failure_is_retried_later_with_a_delay_growing_with_its_receive_count(receive_count: int) -> None:
    def down(message: ChangeMessage) -> None:
        raise UpstreamUnavailable("dynamodb: cannot read stock state")

    failed, sqs, dead = _consume(down, receive_count)
    assert failed == 1 and not dead.parked
    assert sqs.delays == [retry_delay_s(receive_count)]
    assert sqs.delays[0] == min(BACKOFF_CAP_S, 30 * 2 ** (receive_count - 1))


def test_a_refused_cached_credential_is_read_again_and_the_record_retried_once() -> None:
    forgotten: list[str] = []
    attempts: list[int] = []

    def handle(message: ChangeMessage) -> str:
        attempts.append(1)
        if not forgotten:
            raise CredentialsRejected("xseries", 401, "token expired", "GET", "/api/2.0/products/p-1")
        return "done"

    failed, sqs, dead = _consume(handle, refresh=forgotten.append)
    assert forgotten == ["shop"] and len(attempts) == 2
    assert failed == 0 and not dead.parked and not sqs.delays


def test_a_credential_refused_again_after_a_fresh_read_is_parked_with_the_vendor_answer() -> None:
    def handle(message: ChangeMessage) -> None:
        raise CredentialsRejected("ecom", 401, "Invalid API key", "GET", "/variants/5.json")

    failed, _, dead = _consume(handle, refresh=lambda connection_id: None)
    assert failed == 0
    assert len(dead.parked) == 1 and "Invalid API key" in str(dead.parked[0])


def test_a_record_that_can_never_succeed_is_parked_at_once_without_a_retry() -> None:
    def handle(message: ChangeMessage) -> None:
        raise InvalidInput("not a POS inventory message")

    failed, sqs, dead = _consume(handle, receive_count=1)
    assert failed == 0 and not sqs.delays and len(dead.parked) == 1


def _batch(*receive_counts: int) -> dict[str, Any]:
    """One batch of records, each in its own message group (as different variants' stock changes are)."""
    events = [_event(count) for count in receive_counts]
    for n, one in enumerate(events):
        one["Records"][0]["attributes"]["MessageGroupId"] = f"group-{n}"
    return {"Records": [one["Records"][0] for one in events]}


def _consume_batch(event: dict[str, Any], handle: Any) -> dict[str, Any]:
    return consume_changes(
        event, LambdaContext(function_name="test", timeout_s=60), handle,
        sqs=FakeSqs(), dead_letters=FakeDeadLetters(), logger=Logger(service="test"), metrics=Metrics(namespace="test"),
    )  # fmt: skip


def test_a_batch_held_back_only_by_rate_budgets_and_leases_is_answered_without_failing_the_invocation() -> None:
    calls: list[int] = []

    def waits(message: ChangeMessage) -> None:
        calls.append(1)
        if len(calls) % 2:
            raise RateLimited("ecom", time.time() + 60)
        raise RetryLater("another worker holds p-1", time.time() + 30)

    event = _batch(1, 3, 7)
    response = _consume_batch(event, waits)  # no BatchProcessingError: Lambda's Errors alarm stays quiet
    assert [f["itemIdentifier"] for f in response["batchItemFailures"]] == [r["messageId"] for r in event["Records"]]


def test_a_batch_whose_every_record_failed_and_one_not_by_waiting_fails_the_invocation() -> None:
    calls: list[int] = []

    def mostly_throttled(message: ChangeMessage) -> None:
        calls.append(1)
        if len(calls) == 2:
            raise UpstreamUnavailable("dynamodb: cannot read stock state")
        raise RateLimited("ecom", time.time() + 60)

    with pytest.raises(BatchProcessingError) as failed:
        _consume_batch(_batch(1, 1, 1), mostly_throttled)
    assert {type(value).__name__ for _, value, _ in failed.value.child_exceptions} == {
        "RateLimited",
        "UpstreamUnavailable",
    }


def test_a_batch_with_one_record_done_is_answered_with_its_failures_even_when_the_others_broke() -> None:
    calls: list[int] = []

    def one_done(message: ChangeMessage) -> None:
        calls.append(1)
        if len(calls) > 1:
            raise UpstreamUnavailable("dynamodb: cannot read stock state")

    event = _batch(1, 1, 1)
    response = _consume_batch(event, one_done)
    assert [f["itemIdentifier"] for f in response["batchItemFailures"]] == [
        r["messageId"] for r in event["Records"][1:]
    ]


# -- per-connection metrics (the operations dashboard) ---------------------------------------------------------------


def _event_of(*messages: ChangeMessage) -> dict[str, Any]:
    """One batch holding these messages, each record in its message's group (as SQS delivers them)."""
    records = []
    for message in messages:
        one = _event(1)
        record = one["Records"][0]
        record["body"] = message.model_dump_json()
        record["attributes"]["MessageGroupId"] = message.message_group_id
        records.append(record)
    return {"Records": records}


def _emitted(out: str) -> dict[tuple[tuple[str, str], ...], dict[str, Any]]:
    """The EMF blobs printed (Powertools' documented way of testing metrics: capture stdout), by dimension set."""
    found = {}
    for blob in (json.loads(line) for line in out.splitlines() if line.startswith('{"_aws"')):
        [directive] = blob["_aws"]["CloudWatchMetrics"]
        [dimensions] = directive["Dimensions"]
        key = tuple(sorted((d, blob[d]) for d in dimensions))
        found[key] = {m["Name"]: blob[m["Name"]] for m in directive["Metrics"]}
    return found


def test_a_batch_of_two_connections_counts_each_record_under_its_own_connection_with_its_latency(
    capsys: pytest.CaptureFixture[str],
) -> None:
    at = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)
    shop = MESSAGE.model_copy(  # a POS webhook with the vendor's stamp: latency from the stamp, not from receipt
        update={"updated_at": "2026-12-05T10:00:00Z", "received_at": at + timedelta(seconds=5)}
    )
    order = ChangeMessage(  # a polled eCom order: its stamp is in the payload only
        connection_id="north", source="ecom", entity="order", entity_id="7", via="poll",
        received_at=at + timedelta(seconds=50), payload={"id": 7, "updatedAt": "2026-12-05T11:59:00+02:00"},
        concern="orders",
    )  # fmt: skip
    finding = ChangeMessage(  # a reconciliation finding names a change of days ago: latency from when it was queued
        connection_id="north", source="pos", entity="inventory", entity_id="p-9", via="reconcile",
        updated_at="2026-12-01T08:00:00Z", received_at=at + timedelta(seconds=30), payload={}, concern="stock",
    )  # fmt: skip
    failing = order.model_copy(update={"entity_id": "8"})

    def handle(message: ChangeMessage) -> str:
        if message.entity_id == "8":
            raise UpstreamUnavailable("eCom answered 503")
        return "done"

    capsys.readouterr()
    response = consume_changes(
        _event_of(shop, order, finding, failing), LambdaContext(function_name="test", timeout_s=60), handle,
        sqs=FakeSqs(), dead_letters=FakeDeadLetters(), logger=Logger(service="test"), metrics=Metrics(namespace="test"),
        clock=lambda: (at + timedelta(seconds=60)).timestamp(),
    )  # fmt: skip
    assert len(response["batchItemFailures"]) == 1
    emitted = _emitted(capsys.readouterr().out)
    service = ("service", "pos-ecom-sync")
    assert emitted == {
        (("concern", "stock"), ("connection", "shop"), service): {"ChangesSynced": [1.0], "SyncLatencySeconds": [60.0]},
        (("concern", "orders"), ("connection", "north"), service): {
            "ChangesSynced": [1.0], "SyncLatencySeconds": [120.0],  # the failed order is not counted
        },
        (("concern", "stock"), ("connection", "north"), service): {
            "ChangesSynced": [1.0], "SyncLatencySeconds": [30.0], "DriftRepaired": [1.0],
        },
    }  # fmt: skip


def test_a_record_whose_change_carries_no_stamp_counts_its_latency_from_when_it_was_received(
    capsys: pytest.CaptureFixture[str],
) -> None:
    received = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)
    inventory = MESSAGE.model_copy(update={"received_at": received})  # POS inventory rows carry no updated_at
    capsys.readouterr()
    consume_changes(
        _event_of(inventory), LambdaContext(function_name="test", timeout_s=60), lambda message: None,
        sqs=FakeSqs(), dead_letters=FakeDeadLetters(), logger=Logger(service="test"), metrics=Metrics(namespace="test"),
        clock=lambda: received.timestamp() + 7.5,
    )  # fmt: skip
    [metrics] = _emitted(capsys.readouterr().out).values()
    assert metrics == {"ChangesSynced": [1.0], "SyncLatencySeconds": [7.5]}
