"""SQS FIFO consumer plumbing shared by every worker: parse, isolate failures per record, route each failure.

- A record that fails for a reason that may pass (vendor down, race lost) is reported as a batch item failure:
  SQS redelivers it, and after `maxReceiveCount` receives moves it to the dead-letter queue.
- A throttled record (`RateLimited`), or one whose entity is busy elsewhere (`RetryLater`), is failed too, with its
  visibility extended to the moment the budget frees up or the other worker's lease ends: delayed, never dropped,
  and it does not spin.
- A record that can never succeed as sent (the vendor refused it with a 4xx, bad settings) goes straight to the
  dead-letter queue with the upstream error in its message attributes, so the operator sees why.
- Later records of a failed record's message group are failed unprocessed, keeping each entity in order.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import SqsFifoPartialProcessor, process_partial_response
from aws_lambda_powertools.utilities.parser.models import SqsRecordModel
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import Json

from pos_ecom_sync.errors import ConfigurationError, InvalidInput, Paused, RateLimited, RetryLater, UpstreamError
from pos_ecom_sync.models.messages import ChangeMessage

# SQS caps a visibility timeout at 12 hours.
MAX_VISIBILITY_S = 12 * 3600
# Paused is parked too: the operator redrives the DLQ after resuming (the poller does not re-read old changes).
PERMANENT_ERRORS = (UpstreamError, InvalidInput, ConfigurationError, Paused)


class ChangeRecord(SqsRecordModel):
    body: Json[ChangeMessage]  # narrows the raw str body to the parsed message


@dataclass
class DeadLetters:
    """Where a worker parks records that cannot succeed as sent."""

    sqs: Any
    queue_url: str

    def park(self, record: ChangeRecord, error: Exception) -> None:
        attributes = record.attributes
        self.sqs.send_message(
            QueueUrl=self.queue_url,
            MessageBody=record.body.model_dump_json(),
            MessageGroupId=record.body.message_group_id,
            MessageDeduplicationId=record.messageId,
            MessageAttributes={
                "error": {"DataType": "String", "StringValue": str(error)[:1000] or type(error).__name__},
                "error_type": {"DataType": "String", "StringValue": type(error).__name__},
                "source_message_id": {"DataType": "String", "StringValue": record.messageId},
                "receive_count": {"DataType": "Number", "StringValue": str(attributes.ApproximateReceiveCount)},
            },
        )


def _queue_url(sqs: Any, arn: str) -> str:
    _, _, _, _, account, name = arn.split(":", 5)
    return str(sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"])


def consume_changes(
    event: dict[str, Any],
    context: LambdaContext,
    handle: Callable[[ChangeMessage], Any],
    *,
    sqs: Any,
    dead_letters: DeadLetters,
    logger: Logger,
    metrics: Metrics,
    clock: Callable[[], float] = time.time,
) -> dict[str, Any]:
    """Run `handle` on each change of an SQS FIFO batch; returns the partial batch response Lambda expects."""

    def record_handler(record: ChangeRecord) -> Any:
        message = record.body
        logger.append_keys(connection_id=message.connection_id, entity=message.entity, entity_id=message.entity_id)
        try:
            return handle(message)
        except RetryLater as exc:
            delay = int(min(MAX_VISIBILITY_S, max(1, exc.retry_at - clock() + 1)))
            if isinstance(exc, RateLimited):
                metrics.add_metric(name="Throttled", unit=MetricUnit.Count, value=1)
            logger.info("not yet: delayed", extra={"reason": exc.message, "delay_s": delay})
            try:
                sqs.change_message_visibility(
                    QueueUrl=_queue_url(sqs, record.eventSourceARN),
                    ReceiptHandle=record.receiptHandle,
                    VisibilityTimeout=delay,
                )
            except (ClientError, BotoCoreError) as sqs_error:  # the default visibility still delays it
                logger.warning("could not delay the throttled record", extra={"error": str(sqs_error)})
            raise
        except PERMANENT_ERRORS as exc:
            metrics.add_metric(name="DeadLettered", unit=MetricUnit.Count, value=1)
            logger.error("cannot succeed as sent: dead-lettered", extra={"error": str(exc)})
            dead_letters.park(record, exc)
            return None  # parked: this record is done with
        finally:
            logger.remove_keys(["connection_id", "entity", "entity_id"])

    processor = SqsFifoPartialProcessor(model=ChangeRecord, skip_group_on_error=True)
    response: dict[str, Any] = dict(process_partial_response(event, record_handler, processor, context))
    failures = len(response.get("batchItemFailures", []))
    if failures:
        metrics.add_metric(name="RecordsRetried", unit=MetricUnit.Count, value=failures)
    return response
