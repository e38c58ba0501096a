"""Products queue -> eCom: each record names a POS product; its whole family is brought in line in eCom. For a POS
profile that takes eCom edits (R-Series, seed 000), a record may name an eCom product or variant instead: the
merchant's edits of synced fields are written to the POS (`CatalogSync.take_ecom_edits`)."""

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
from pos_ecom_sync.catalog.category_edits import LINKS_KEY, links_of, take_category_links
from pos_ecom_sync.catalog.sync import FamilySyncResult
from pos_ecom_sync.models.connection import Connection
from pos_ecom_sync.models.messages import ChangeMessage
from pos_ecom_sync.workers import consume_changes

# Reconciliation findings that say eCom differs from our state: the family is planned against eCom's actual product.
CHECK_ECOM_FINDINGS = frozenset({"catalog_content", "variant_gone"})

logger = Logger()
runtime.configure_logging(logger)
tracer = observability.tracer()
metrics = Metrics()


@tracer.capture_method(capture_response=False)
def sync_product(message: ChangeMessage) -> FamilySyncResult:
    connection = runtime.active_connection(message.connection_id)
    if message.source == "ecom":
        return take_ecom_edits(connection, message)
    check_ecom = message.via == "reconcile" and message.payload.get("reconcile") in CHECK_ECOM_FINDINGS
    # A profile that takes eCom edits (R-Series) writes the edits reconciliation found to the POS, not over them.
    take_edits = check_ecom and runtime.takes_ecom_edits(connection)
    result = runtime.catalog_sync(connection).sync(message.entity_id, check_ecom=check_ecom, take_ecom_edits=take_edits)
    metrics.add_metric(name="EcomCatalogCalls", unit=MetricUnit.Count, value=result.ecom_calls)
    if result.refused:
        # Past the plan's product cap: nothing was created; CatalogCapReached alarms so an operator acts.
        metrics.add_metric(name="CatalogCapReached", unit=MetricUnit.Count, value=1)
        logger.error("product creation refused", extra={"reasons": result.refused, "family": result.family_key})
    if result.lost_in_ecom:
        # Deleted by hand in eCom: re-created (policy "recreate") or left out with the reason ("unlink").
        metrics.add_metric(name="CatalogLostInEcom", unit=MetricUnit.Count, value=1)
        observability.add_connection_metric(
            message.connection_id, name="CatalogLostInEcom", unit=MetricUnit.Count, value=1
        )
        logger.warning("product deleted in eCom", extra={"family": result.family_key, "what": result.lost_in_ecom})
    if result.edited_in_ecom:
        # POS-owned fields edited by hand in eCom, found by reconciliation: rewritten from the POS.
        metrics.add_metric(name="CatalogEditedInEcom", unit=MetricUnit.Count, value=1)
        observability.add_connection_metric(
            message.connection_id, name="CatalogEditedInEcom", unit=MetricUnit.Count, value=1
        )
        logger.warning("product edited in eCom", extra={"family": result.family_key, "what": result.edited_in_ecom})
    logger.info("family synced", extra={"family": result.family_key, "outcome": result.outcome, "note": result.note})
    return result


def take_ecom_edits(connection: Connection, message: ChangeMessage) -> FamilySyncResult:
    if not runtime.takes_ecom_edits(connection):
        # Queued before the connection's POS changed, or by hand: X-Series never takes eCom edits (seed 003).
        return FamilySyncResult(message.entity_id, "unchanged", note=f"{connection.pos_profile} takes no eCom edits")
    if LINKS_KEY in message.payload:  # the poller's eCom category-link sweep (`catalog.category_edits`)
        sync = runtime.catalog_sync(connection)
        result = take_category_links(sync, int(message.entity_id), links_of(message.payload))
    else:
        result = runtime.catalog_sync(connection).take_ecom_edits(message.entity, int(message.entity_id))
    metrics.add_metric(name="EcomCatalogCalls", unit=MetricUnit.Count, value=result.ecom_calls)
    if result.taken_from_ecom and result.outcome == "applied":
        metrics.add_metric(name="CatalogEditsFromEcom", unit=MetricUnit.Count, value=1)
    logger.info(
        "eCom edits taken",
        extra={
            "family": result.family_key,
            "outcome": result.outcome,
            "edits": result.taken_from_ecom,
            "pos_calls": result.pos_calls,
            "note": result.note,
        },
    )
    return result


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return consume_changes(
        event,
        context,
        sync_product,
        sqs=runtime.sqs_client(),
        dead_letters=runtime.dead_letters(),
        logger=logger,
        metrics=metrics,
        refresh_credentials=runtime.forget_secrets,
    )


cold_start.finished()
