"""Stock queue -> eCom: POS inventory levels become eCom stock totals; eCom stock edits are reverted; outlet
changes recompute every total in queued, bounded chunks and name the shipping methods to disable by hand."""

from __future__ import annotations

# First, so that the whole cold start runs without garbage-collection passes (until `finished()` below).
from pos_ecom_sync import cold_start

# isort: split

from typing import Any

# Before anything imports pydantic: Powertools' batch utility, imported after it, builds the pydantic models of
# every batch source it knows (Kinesis, DynamoDB streams, Kafka) for its type hints (~12 ms of each cold start).
import aws_lambda_powertools.utilities.batch  # noqa: F401
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pos_ecom_sync import observability, runtime
from pos_ecom_sync.models.messages import ChangeMessage
from pos_ecom_sync.stock.sync import StockBatch, StockResult
from pos_ecom_sync.workers import consume_changes

logger = Logger()
runtime.configure_logging(logger)
tracer = observability.tracer()
metrics = Metrics()


@tracer.capture_method(capture_response=False)
def sync_stock(message: ChangeMessage, batch: StockBatch) -> StockResult:
    later_in_batch = batch.later_in_batch(message)  # counted before anything can fail, once per record
    connection = runtime.active_connection(message.connection_id)
    result = runtime.stock_sync(connection).handle(message, later_in_batch=later_in_batch)
    metrics.add_metric(name="EcomStockWrites", unit=MetricUnit.Count, value=result.ecom_writes)
    metrics.add_metric(name="PosInventoryReads", unit=MetricUnit.Count, value=result.pos_reads)
    if result.shipping_methods_to_disable:
        # eCom has no API to disable a shipping method: ShippingMethodsToDisableAlarm asks a person to.
        metrics.add_metric(
            name="ShippingMethodsToDisable", unit=MetricUnit.Count, value=len(result.shipping_methods_to_disable)
        )
        logger.warning(
            "shipping methods of a disconnected outlet no longer route orders: disable them in the eCom back office",
            extra={"shipping_methods": list(result.shipping_methods_to_disable)},
        )
    logger.info(
        "stock settled",
        extra={
            "subject": result.subject,
            "outcome": result.outcome,
            "reason": result.reason,
            "level": result.level,
            "variants": result.variants,
            "note": result.note,
        },
    )
    return result


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    batch = StockBatch.of(event)
    return consume_changes(
        event,
        context,
        lambda message: sync_stock(message, batch),
        sqs=runtime.sqs_client(),
        dead_letters=runtime.dead_letters(),
        logger=logger,
        metrics=metrics,
        refresh_credentials=runtime.forget_secrets,
    )


cold_start.finished()
