"""The SQS consumer plumbing every worker shares: back-off of transient failures, one retry with a freshly read
secret after a vendor refused a cached credential, parking of what can never succeed."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
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

    def get_queue_url(self, QueueName: str, QueueOwnerAWSAccountId: str) -> dict[str, str]:
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


def _consume(handle: Any, receive_count: int = 1, refresh: Any = None) -> tuple[int, FakeSqs, FakeDeadLetters]:
    """Runs one single-record batch; returns how many records SQS keeps (failed), and the fakes."""
    sqs, dead = FakeSqs(), FakeDeadLetters()
    try:
        response = consume_changes(
            _event(receive_count), LambdaContext(function_name="test", timeout_s=60), handle,
            sqs=sqs, dead_letters=dead, logger=Logger(service="test"), metrics=Metrics(namespace="test"),
            refresh_credentials=refresh,
        )  # fmt: skip
    except BatchProcessingError:  # every record failed: Lambda retries the whole batch
        return 1, sqs, dead
    return len(response["batchItemFailures"]), sqs, dead


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
