"""The local stack's SQS event source behaves like Lambda's: partial batch failures and redrive to the DLQ."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import boto3

from local_stack.event_sources import SqsPoller
from local_stack.provision import QueueSubscription
from tests.support import drain_queue


@dataclass
class FailsOneRecord:
    """Stands in for a function: reports the record whose body says `poison` as failed."""

    spec: Any = field(default_factory=lambda: type("Spec", (), {"logical_id": "Fake"})())
    batches: list[int] = field(default_factory=list)

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        records = event["Records"]
        self.batches.append(len(records))
        failed = [r["messageId"] for r in records if json.loads(r["body"]).get("poison")]
        return {"batchItemFailures": [{"itemIdentifier": m} for m in failed]}


def test_failed_records_are_retried_then_dead_lettered_and_good_ones_deleted(aws: None) -> None:
    sqs = boto3.client("sqs", region_name="us-east-1")
    dlq = sqs.create_queue(QueueName="t-dlq.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    source = sqs.create_queue(
        QueueName="t.fifo",
        Attributes={
            "FifoQueue": "true",
            "VisibilityTimeout": "1",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 2}),
        },
    )["QueueUrl"]
    for i, poison in enumerate([False, True, False]):
        sqs.send_message(
            QueueUrl=source,
            MessageBody=json.dumps({"n": i, "poison": poison}),
            MessageGroupId=f"g{i}",
            MessageDeduplicationId=str(i),
        )
    function = FailsOneRecord()
    subscription = QueueSubscription(source, "arn:aws:sqs:us-east-1:123456789012:t.fifo", "Fake", 10, True)
    poller = SqsPoller(sqs, subscription, function, narrate=lambda line: None)  # type: ignore[arg-type]

    assert poller.poll_once() == 2  # the two good records are deleted at once
    for _ in range(3):  # the poison one comes back after its visibility timeout, until maxReceiveCount
        time.sleep(1.1)
        poller.poll_once()

    assert [json.loads(m["Body"])["n"] for m in drain_queue(sqs, dlq)] == [1]
    assert drain_queue(sqs, source) == []
    assert function.batches[:2] == [3, 1]


def test_a_failed_batch_is_told_by_the_error_that_failed_it_not_by_a_throttled_neighbour() -> None:
    from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
    from pos_ecom_sync.errors import RateLimited, UpstreamUnavailable

    from local_stack.event_sources import _batch_failure

    throttled = RateLimited("ecom", 1_800_000_000.0)
    down = UpstreamUnavailable("xseries GET /api/2.0/products answered 503")
    children = [(RateLimited, throttled, None), (type(down), down, None)]
    line = _batch_failure("ProductSyncFunction", 2, BatchProcessingError("all failed", children))
    assert line.startswith("! ProductSyncFunction failed a batch of 2: UpstreamUnavailable: xseries")
    assert "Traceback" not in line
