"""Orders queue -> POS: each record names an eCom order; it becomes exactly one POS sale (or is held, with why)."""

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
from pos_ecom_sync.errors import InvalidInput
from pos_ecom_sync.models.messages import ChangeMessage
from pos_ecom_sync.orders.importer import OrderImportResult
from pos_ecom_sync.workers import consume_changes

logger = Logger()
runtime.configure_logging(logger)
tracer = observability.tracer()
metrics = Metrics()


@tracer.capture_method(capture_response=False)
def import_order(message: ChangeMessage) -> OrderImportResult | None:
    if message.source != "ecom" or message.entity != "order":
        logger.warning("not an eCom order: acknowledged, not imported", extra={"entity": message.entity})
        return None
    if not message.entity_id.isdigit():
        raise InvalidInput(f"eCom order id {message.entity_id!r} is not a number")
    connection = runtime.active_connection(message.connection_id)
    result = runtime.order_importer(connection).import_order(int(message.entity_id))
    metrics.add_metric(name="PosOrderCalls", unit=MetricUnit.Count, value=result.pos_calls)
    details = {
        "order": result.order_id,
        "number": result.number,
        "outcome": result.outcome,
        "sale_id": result.sale_id,
        "via": message.via,
    }
    if result.outcome == "held":
        # OrdersHeld alarms; `pos-ecom-sync orders held <connection>` lists them, `orders retry` re-queues one.
        metrics.add_metric(name="OrdersHeld", unit=MetricUnit.Count, value=1)
        observability.add_connection_metric(message.connection_id, name="OrdersHeld", unit=MetricUnit.Count, value=1)
        logger.error("order held: nothing written to the POS", extra={**details, "reason": result.held_reason})
        return result
    if result.outcome == "in progress elsewhere":
        logger.info("order claimed by another invocation: left to it", extra=details)
        return result
    if result.outcome == "already imported":
        metrics.add_metric(name="OrdersAlreadyImported", unit=MetricUnit.Count, value=1)
    else:
        metrics.add_metric(name="OrdersImported", unit=MetricUnit.Count, value=1)
    if result.customers_created:
        metrics.add_metric(name="CustomersCreated", unit=MetricUnit.Count, value=result.customers_created)
    if result.events_sent:
        metrics.add_metric(name="FulfillmentEventsSent", unit=MetricUnit.Count, value=result.events_sent)
    if result.payment_needs_attention:
        metrics.add_metric(name="PaymentTypeMissing", unit=MetricUnit.Count, value=1)
    for warning in result.warnings:
        logger.warning(warning, extra=details)
    logger.info(
        "order imported",
        extra={
            **details,
            "customer": result.customer,  # how it was matched; never the email or the name
            "strategy": result.strategy,
            "outlets": list(result.outlet_ids),
            "payment": result.payment,
            "events": result.events_sent,
            "pos_calls": result.pos_calls,
            "ecom_calls": result.ecom_calls,
        },
    )
    return result


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # The batch's records share their connection, their ledger read, the queues' counts and their events' sending.
    with runtime.sqs_batch():
        runtime.read_order_ledgers(event)
        response = consume_changes(
            event,
            context,
            import_order,
            sqs=runtime.sqs_client(),
            dead_letters=runtime.dead_letters(),
            logger=logger,
            metrics=metrics,
            refresh_credentials=runtime.forget_secrets,
        )
        return runtime.send_order_notifications(event, response, logger)


cold_start.finished()
