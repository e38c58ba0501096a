"""Vendor webhooks in, one queued change message out (no vendor API call inline).

The routes also describe the API: `make openapi` (`python -m local_stack.openapi`) writes them to
contracts/webhook-api.openapi.json, and tests/unit/test_webhook_openapi.py fails when that file is stale.
"""

# No `from __future__ import annotations` here: Powertools reads the route functions' annotations to build the
# OpenAPI document, resolving string annotations in the globals of the function it holds (Tracer's wrapper).

# First, so that the whole cold start runs without garbage-collection passes (until `finished()` below).
from pos_ecom_sync import cold_start

# isort: split

from typing import Any, Literal

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pos_ecom_sync import observability, runtime, webhook_api_doc
from pos_ecom_sync.api import json_response, raw_body, register_error_handlers
from pos_ecom_sync.correlation import correlated
from pos_ecom_sync.intake.webhooks import IncomingWebhook

logger = Logger()
runtime.configure_logging(logger)
tracer = observability.tracer()
metrics = Metrics()
# No `enable_validation`: it would parse and check requests before intake does, answering 422 with Powertools' own
# body, while intake must see the raw bytes (signatures are computed over them, X-Series posts a form, not JSON),
# parses vendor JSON strictly itself and refuses bad input with its own 400 and reason. So the bodies are
# documented (`webhook_api_doc`), not typed into the handlers.
app = APIGatewayHttpResolver()
register_error_handlers(app, logger, metrics)
app.configure_openapi(**webhook_api_doc.API)


def _accept(source: Literal["pos", "ecom"], connection_id: str) -> Response[str]:
    event = app.current_event
    logger.append_keys(connection_id=connection_id, webhook_source=source)
    webhook = IncomingWebhook(
        source=source,
        connection_id=connection_id,
        body=raw_body(event),
        headers={k.lower(): v for k, v in (event.headers or {}).items()},
        query=dict(event.query_string_parameters or {}),
    )
    result = runtime.webhook_intake().accept(webhook)
    metrics.add_dimension(name="source", value=source)
    metrics.add_metric(name=f"Webhook{result.outcome.capitalize()}", unit=MetricUnit.Count, value=1)
    if result.outcome == "queued" and result.concern:
        observability.count_changes_received(connection_id, result.concern, 1)
    logger.info("webhook accepted", extra=result.as_body())
    return json_response(202 if result.outcome == "queued" else 200, result.as_body())


@app.post("/connections/<connection_id>/webhooks/pos", **webhook_api_doc.POS_ROUTE)
@tracer.capture_method(capture_response=False)
def pos_webhook(connection_id: str) -> Response[str]:
    return _accept("pos", connection_id)


@app.post("/connections/<connection_id>/webhooks/ecom", **webhook_api_doc.ECOM_ROUTE)
@tracer.capture_method(capture_response=False)
def ecom_webhook(connection_id: str) -> Response[str]:
    return _accept("ecom", connection_id)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
@metrics.log_metrics
@observability.flushes_connection_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # API Gateway's request id (also the Logger's correlation id): the change's id from here on.
    with correlated(event.get("requestContext", {}).get("requestId"), logger):
        return app.resolve(event, context)


cold_start.finished()
