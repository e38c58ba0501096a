"""Every minute: sweep each active connection's change feeds onto the concern queues."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext
from pos_ecom_sync import runtime
from pos_ecom_sync.intake.poller import poll_connections
from pos_ecom_sync.models.connection import Connection
from pos_ecom_sync.models.events import PollTrigger
from pos_ecom_sync.settings import get_settings

logger = Logger()
tracer = Tracer()
metrics = Metrics()


def _clients(connection: Connection) -> tuple[Any, Any]:
    return runtime.pos_client(connection), runtime.ecom_client(connection)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
@event_parser(model=PollTrigger)
def lambda_handler(event: PollTrigger, context: LambdaContext) -> dict[str, Any]:
    margin_ms = get_settings().POLL_SAFETY_MARGIN_MS
    store = runtime.sync_store()
    if event.connection_id:
        found = store.get_connection(event.connection_id)
        connections = [found] if found and found.is_active else []
    else:
        connections = list(store.iter_connections(active_only=True))
    summary = poll_connections(
        connections, runtime.change_poller(), _clients, lambda: context.get_remaining_time_in_millis() > margin_ms
    )
    metrics.add_metric(name="ChangesQueued", unit=MetricUnit.Count, value=summary.queued)
    metrics.add_metric(name="PollFailures", unit=MetricUnit.Count, value=len(summary.failures))
    for connection_id, reason in summary.failures.items():
        logger.error("poll failed", extra={"connection_id": connection_id, "error": reason})
    logger.info("poll finished", extra=summary.as_dict())
    return summary.as_dict()
