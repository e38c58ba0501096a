"""Every 15 minutes: start a due full compare of each active connection, or continue the unfinished one.

Drift report: per drift kind a `Drift<Kind>` metric (this invocation's findings: their sum over a run's ticks is the
run's), `ReconcileRunsCompleted`, and one log line per connection ("reconcile drift", with the run's totals per kind
once it completed). Repairs are the workers' metrics (product_sync `CatalogEditedInEcom`, `CatalogLostInEcom`).
Rows a page could not compare are skipped and parked: `ReconcileRowsSkipped`, one log line each."""

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
from pos_ecom_sync.reconcile.rules import DRIFT_KINDS, ReconcileTrigger
from pos_ecom_sync.reconcile.service import connections_to_reconcile, reconcile_connections
from pos_ecom_sync.settings import get_settings

logger = Logger()
runtime.configure_logging(logger)
tracer = observability.tracer()
metrics = Metrics()

# Metric name per drift kind (e.g. catalog_outdated -> DriftCatalogOutdated).
DRIFT_METRICS: dict[str, str] = {
    kind: "Drift" + "".join(part.capitalize() for part in kind.split("_")) for kind in DRIFT_KINDS
}


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@observability.flushes_connection_metrics
@tracer.capture_lambda_handler(capture_response=False)
@event_parser(model=ReconcileTrigger)
@runtime.correlated_run("reconcile")
def lambda_handler(event: ReconcileTrigger, context: LambdaContext) -> dict[str, Any]:
    margin_ms = get_settings().RECONCILE_SAFETY_MARGIN_MS
    summary = reconcile_connections(
        connections_to_reconcile(runtime.sync_store(), event.connection_id),
        runtime.reconciler(),
        runtime.reconcile_clients,
        lambda: context.get_remaining_time_in_millis() > margin_ms,
        force=event.force,
    )
    for kind, count in summary.drift.items():
        metrics.add_metric(name=DRIFT_METRICS[kind], unit=MetricUnit.Count, value=count)
    metrics.add_metric(name="ReconcilePagesRead", unit=MetricUnit.Count, value=summary.pages)
    metrics.add_metric(name="ReconcileFailures", unit=MetricUnit.Count, value=len(summary.failures))
    metrics.add_metric(
        name="ReconcileRunsCompleted", unit=MetricUnit.Count, value=sum(r.completed for r in summary.reports)
    )
    for report in summary.reports:
        if report.step == "idle":
            logger.info("reconcile", extra={"connection_id": report.connection_id, **report.as_dict()})
            continue
        for kind, count in report.drift.items():  # per connection, for the dashboard; each finding is one change
            observability.add_connection_metric(
                report.connection_id, name=DRIFT_METRICS[kind], unit=MetricUnit.Count, value=count
            )
            observability.count_changes_received(report.connection_id, observability.DRIFT_CONCERN[kind], count)
        # The drift report: one line per connection and invocation; the run's totals once it completed.
        logger.info(
            "reconcile drift" + (" (run complete)" if report.completed else ""),
            extra={"connection_id": report.connection_id, **report.as_dict(), "drift_report": report.drift_report()},
        )
    metrics.add_metric(name="ReconcileRowsSkipped", unit=MetricUnit.Count, value=len(summary.skipped))
    runtime.report_skipped_rows(logger, "reconcile row skipped", summary.skipped)
    runtime.report_connection_failures(logger, "reconcile failed", summary.failures, summary.errors)
    return summary.as_dict()


cold_start.finished()
