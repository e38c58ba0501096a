"""Statuses queue -> POS / eCom: an order's payment, cancel/void and fulfillment statuses kept in step both ways
(seed 004's fixed mapping); changes that can no longer apply are recorded in the status ledger and ignored."""

from __future__ import annotations

# First, so that the whole cold start runs without garbage-collection passes (until `finished()` below).
from pos_ecom_sync import cold_start

# isort: split

import functools
from typing import Any

# Before anything imports pydantic: Powertools' batch utility, imported after it, builds the pydantic models of
# every batch source it knows (Kinesis, DynamoDB streams, Kafka) for its type hints (~12 ms of each cold start).
import aws_lambda_powertools.utilities.batch  # noqa: F401
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pos_ecom_sync import observability, runtime
from pos_ecom_sync.models.messages import ChangeMessage
from pos_ecom_sync.status.sync import BatchReads, StatusResult
from pos_ecom_sync.workers import consume_changes

logger = Logger()
runtime.configure_logging(logger)
tracer = observability.tracer()
metrics = Metrics()


@tracer.capture_method(capture_response=False)
def sync_status(message: ChangeMessage, batch: BatchReads | None = None) -> StatusResult:
    connection = runtime.active_connection(message.connection_id)
    result = runtime.status_sync(connection, batch).handle(message)
    metrics.add_metric(name="StatusChangesApplied", unit=MetricUnit.Count, value=len(result.applied))
    if result.ignored:
        # Not an error: seed 004 says such changes are recorded and ignored; the ledger keeps why.
        metrics.add_metric(name="StatusChangesIgnored", unit=MetricUnit.Count, value=len(result.ignored))
    logger.info(
        "status settled",
        extra={
            "subject": result.subject,
            "outcome": result.outcome,
            "applied": result.applied,
            "ignored": result.ignored,
            "via": message.via,
            "pos_calls": result.pos_calls,
            "ecom_calls": result.ecom_calls,
        },
    )
    return result


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    batch = BatchReads()  # the records of one batch about one order share one read of both sides
    return consume_changes(
        event,
        context,
        functools.partial(sync_status, batch=batch),
        sqs=runtime.sqs_client(),
        dead_letters=runtime.dead_letters(),
        logger=logger,
        metrics=metrics,
        refresh_credentials=runtime.forget_secrets,
    )


cold_start.finished()
