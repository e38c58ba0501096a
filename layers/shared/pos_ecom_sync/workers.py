"""SQS FIFO consumer plumbing shared by every worker: parse, isolate failures per record, route each failure.

- A record that fails for a reason that may pass (a dependency down, race lost) is reported as a batch item
  failure with its visibility set by `retry_delay_s` (growing with its receive count): SQS redelivers it, and after
  `maxReceiveCount` receives moves it to the dead-letter queue. The back-off and the template's receive counts
  keep a live message alive through a dependency outage of more than a day (see `OUTAGE_SURVIVED_S`).
- A vendor 401/403 may only mean this sandbox's cached credential was rotated: the secret is read again (bypassing
  the cache) and the record retried once; a rejection of the fresh credential is final (parked).
- A throttled record (`RateLimited`), or one whose entity is busy elsewhere (`RetryLater`), is failed too, with its
  visibility extended to the moment the budget frees up or the other worker's lease ends: delayed, never dropped,
  and it does not spin.
- A record that can never succeed as sent (the vendor refused it with a 4xx, bad settings) goes straight to the
  dead-letter queue with the upstream error in its message attributes, so the operator sees why.
- Later records of a failed record's message group are failed unprocessed, keeping each entity in order.
- The invocation itself fails (Lambda `Errors`, which the worker alarms read) only when every record failed and
  some for a reason other than waiting: a batch held back only by rate budgets or leases is a normal answer.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import ExceptionInfo, SqsFifoPartialProcessor, process_partial_response
from aws_lambda_powertools.utilities.batch.exceptions import (
    BatchProcessingError,
    SQSFifoMessageGroupCircuitBreakerError,
)
from aws_lambda_powertools.utilities.parser.models import SqsRecordModel
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import Json

from pos_ecom_sync import observability
from pos_ecom_sync.correlation import correlated
from pos_ecom_sync.errors import (
    AuthorizationRefused,
    ConfigurationError,
    CredentialsRejected,
    InvalidInput,
    Paused,
    RateLimited,
    RetryLater,
    UpstreamError,
)
from pos_ecom_sync.models.messages import ChangeMessage

# SQS caps a visibility timeout at 12 hours.
MAX_VISIBILITY_S = 12 * 3600
# Paused is parked too: the operator redrives the DLQ after resuming (the poller does not re-read old changes).
PERMANENT_ERRORS = (UpstreamError, InvalidInput, ConfigurationError, Paused)
# Transient failures: 30 s after the first receive, doubling up to 2 h.
BACKOFF_BASE_S = 30
BACKOFF_CAP_S = 2 * 3600
# The least maxReceiveCount of a worker queue (template.yaml; test_template checks it): with the back-off, a
# message survives this long without a success before SQS moves it to the DLQ.
MIN_MAX_RECEIVE_COUNT = 24


def retry_delay_s(receive_count: int) -> int:
    """How long a record that failed for a transient reason waits before its next receive."""
    return int(min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2 ** min(max(receive_count, 1) - 1, 20)))


# About 32 hours: the sum of the delays before the last receive.
OUTAGE_SURVIVED_S = sum(retry_delay_s(n) for n in range(1, MIN_MAX_RECEIVE_COUNT))


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


# (SQS endpoint, queue ARN) -> URL, per warm sandbox: a queue's URL never changes, so one GetQueueUrl per queue and
# cold start (the endpoint is part of the key: a local stack restarted on another port has other URLs).
_QUEUE_URLS: dict[tuple[str | None, str], str] = {}


def _queue_url(sqs: Any, arn: str) -> str:
    key = (getattr(getattr(sqs, "meta", None), "endpoint_url", None), arn)
    if key not in _QUEUE_URLS:
        _, _, _, _, account, name = arn.split(":", 5)
        _QUEUE_URLS[key] = str(sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"])
    return _QUEUE_URLS[key]


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
    refresh_credentials: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run `handle` on each change of an SQS FIFO batch; returns the partial batch response Lambda expects."""

    def delay(record: ChangeRecord, seconds: int) -> None:
        try:
            sqs.change_message_visibility(
                QueueUrl=_queue_url(sqs, record.eventSourceARN),
                ReceiptHandle=record.receiptHandle,
                VisibilityTimeout=seconds,
            )
        except (ClientError, BotoCoreError) as sqs_error:  # the queue's default visibility still delays it
            logger.warning("could not delay the record", extra={"error": str(sqs_error)})

    def handle_with_fresh_credentials(message: ChangeMessage) -> Any:
        try:
            return handle(message)
        except (CredentialsRejected, AuthorizationRefused) as exc:
            if refresh_credentials is None:
                raise
            # A rotated secret (or a re-authorized OAuth grant): this sandbox may hold the old value for up to the
            # cache's age.
            logger.warning(
                "vendor refused the cached credential: re-reading the secret and retrying once",
                extra={"error_type": type(exc).__name__},
            )
            metrics.add_metric(name="CredentialsReread", unit=MetricUnit.Count, value=1)
            refresh_credentials(message.connection_id)
            return handle(message)

    def record_handler(record: ChangeRecord) -> Any:
        # The change's correlation id on every log line, and on every message or event this record leads to.
        with correlated(record.body.correlation_id or record.messageId, logger):
            return settle(record)

    def settle(record: ChangeRecord) -> Any:
        message = record.body
        # Thread-local like the correlation id: the local stack runs every function in one process (see correlation).
        record_keys = {"connection_id": message.connection_id, "entity": message.entity, "entity_id": message.entity_id}
        logger.thread_safe_append_keys(**record_keys)
        try:
            result = handle_with_fresh_credentials(message)
        except RetryLater as exc:
            wait = int(min(MAX_VISIBILITY_S, max(1, exc.retry_at - clock() + 1)))
            if isinstance(exc, RateLimited):
                metrics.add_metric(name="Throttled", unit=MetricUnit.Count, value=1)
            logger.info("not yet: delayed", extra={"reason": exc.message, "delay_s": wait})
            delay(record, wait)
            raise
        except PERMANENT_ERRORS as exc:
            metrics.add_metric(name="DeadLettered", unit=MetricUnit.Count, value=1)
            logger.error("cannot succeed as sent: dead-lettered", extra={"error": str(exc)})
            dead_letters.park(record, exc)
            return None  # parked: this record is done with
        except Exception as exc:
            wait = retry_delay_s(int(record.attributes.ApproximateReceiveCount))
            logger.warning(
                "failed, retried later", extra={"error": f"{type(exc).__name__}: {exc}"[:500], "delay_s": wait}
            )
            delay(record, wait)
            raise
        else:
            # Per connection and concern (one batch may hold several connections): changes out and their latency.
            observability.record_change_synced(message, clock())
            return result
        finally:
            logger.thread_safe_remove_keys(list(record_keys))

    processor = SqsFifoPartialProcessor(model=ChangeRecord, skip_group_on_error=True)
    # Powertools fails the invocation whenever every record failed; we decide (`_fails_invocation`). Its FIFO
    # processor takes no such argument (3.37), the attribute is its base class's documented switch.
    processor.raise_on_entire_batch_failure = False
    try:
        response: dict[str, Any] = dict(process_partial_response(event, record_handler, processor, context))
    finally:
        observability.flush_connection_metrics()
    failures = len(response.get("batchItemFailures", []))
    if failures:
        metrics.add_metric(name="RecordsRetried", unit=MetricUnit.Count, value=failures)
    if _fails_invocation(failures, len(event.get("Records", [])), processor.exceptions):
        raise BatchProcessingError(
            msg=f"All {failures} records failed, not only by waiting on a budget or a lease.",
            child_exceptions=processor.exceptions,
        )
    return response


# Failures that only mean "not yet": a throttled or busy record (already delayed to when it can run), and a record
# held back because an earlier one of its message group failed.
_WAITS = (RetryLater, SQSFifoMessageGroupCircuitBreakerError)


def _fails_invocation(failures: int, records: int, exceptions: list[ExceptionInfo]) -> bool:
    """Whether the invocation fails (Lambda's Errors metric and its alarm): only when every record failed and at least
    one for a reason other than waiting. A batch held back only by rate budgets or leases, as during an import, is
    answered with its partial batch response: each record is redelivered when its delay ends, and no alarm fires."""
    if not records or failures < records:
        return False
    return any(kind is None or not issubclass(kind, _WAITS) for kind, _, _ in exceptions)
