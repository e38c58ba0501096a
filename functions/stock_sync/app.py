"""Stock queue -> eCom: POS inventory levels become eCom stock totals; eCom stock edits are reverted; outlet
changes disable shipping methods and recompute every total in queued, bounded chunks."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pos_ecom_sync import runtime
from pos_ecom_sync.models.messages import ChangeMessage
from pos_ecom_sync.stock.sync import StockBatch, StockResult
from pos_ecom_sync.workers import consume_changes

logger = Logger()
tracer = Tracer()
metrics = Metrics()


@tracer.capture_method(capture_response=False)
def sync_stock(message: ChangeMessage, batch: StockBatch) -> StockResult:
    later_in_batch = batch.later_in_batch(message)  # counted before anything can fail, once per record
    connection = runtime.active_connection(message.connection_id)
    result = runtime.stock_sync(connection).handle(message, later_in_batch=later_in_batch)
    metrics.add_metric(name="EcomStockWrites", unit=MetricUnit.Count, value=result.ecom_writes)
    metrics.add_metric(name="PosInventoryReads", unit=MetricUnit.Count, value=result.pos_reads)
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
    )
