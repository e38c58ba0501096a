"""Every minute: sweep each active connection's change feeds onto the concern queues."""

from __future__ import annotations

# First, so that the whole cold start runs without garbage-collection passes (until `finished()` below).
from pos_ecom_sync import cold_start

# isort: split

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext
from pos_ecom_sync import observability, runtime
from pos_ecom_sync.intake.poller import poll_connections
from pos_ecom_sync.models.connection import Connection
from pos_ecom_sync.models.events import PollTrigger
from pos_ecom_sync.settings import get_settings

logger = Logger()
runtime.configure_logging(logger)
tracer = observability.tracer()
metrics = Metrics()


def _clients(connection: Connection) -> tuple[Any, Any]:
    return runtime.pos_change_feeds(connection), runtime.ecom_client(connection)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@observability.flushes_connection_metrics
@tracer.capture_lambda_handler(capture_response=False)
@event_parser(model=PollTrigger)
@runtime.correlated_run("poll")
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
    metrics.add_metric(name="PollRowsSkipped", unit=MetricUnit.Count, value=len(summary.skipped))
    if summary.lag_s is not None:  # ChangePollerLagAlarm; see FeedReport.lag_s for what it measures
        metrics.add_metric(name="PollLagSeconds", unit=MetricUnit.Seconds, value=summary.lag_s)
    for report in summary.reports:  # per connection, for the dashboard: changes queued per concern, poll lag
        observability.record_poll(report)
    runtime.report_skipped_rows(logger, "poll row skipped", summary.skipped)
    runtime.report_connection_failures(logger, "poll failed", summary.failures, summary.errors)
    logger.info("poll finished", extra=summary.as_dict())
    return summary.as_dict()


cold_start.finished()
