"""HTTP mapping of domain errors, in one place, for every API Gateway route."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.metrics import MetricUnit

from pos_ecom_sync.errors import (
    ConfigurationError,
    Conflict,
    InvalidInput,
    NotFound,
    SyncError,
    Unauthorized,
    UpstreamUnavailable,
)

# Bad input is the sender's to fix (4xx, never retried by us); the rest is ours (5xx: vendors retry).
STATUS_OF: list[tuple[type[SyncError], int]] = [
    (InvalidInput, 400),
    (Unauthorized, 401),
    (NotFound, 404),
    (Conflict, 409),
    (UpstreamUnavailable, 503),
    (ConfigurationError, 503),
]
# A domain error no entry maps (e.g. `Paused` or `RetryLater` reaching a route): ours to fix, the sender may retry.
UNMAPPED_STATUS = 500
# What a sender is told on any of our 5xx: the detail goes to the log only.
RETRY_LATER = "temporarily unavailable, retry later"


def json_response(status: int, body: dict[str, Any]) -> Response[str]:
    return Response(status_code=status, content_type="application/json", body=json.dumps(body))


def status_for(error: SyncError) -> int:
    return next((status for kind, status in STATUS_OF if isinstance(error, kind)), UNMAPPED_STATUS)


def answerable_statuses() -> set[int]:
    """Every status `register_error_handlers` can answer: the OpenAPI document describes each on every route."""
    return {status for _, status in STATUS_OF} | {UNMAPPED_STATUS}


def error_body_schema(status: int) -> dict[str, Any]:
    """The JSON Schema of the body `register_error_handlers` writes with `status` (for the OpenAPI document)."""
    error: dict[str, Any] = (
        {"type": "string", "description": "why the request was refused"}
        if status < 500
        else {"type": "string", "const": RETRY_LATER}
    )
    return {"type": "object", "required": ["error"], "properties": {"error": error}, "additionalProperties": False}


def register_error_handlers(app: APIGatewayHttpResolver, logger: Logger, metrics: Metrics) -> None:
    @app.exception_handler(SyncError)  # type: ignore[untyped-decorator]  # Powertools leaves it untyped
    def _domain_error(error: SyncError) -> Response[str]:
        status = status_for(error)
        metrics.add_metric(name=f"Http{status // 100}xx", unit=MetricUnit.Count, value=1)
        if status == 401:
            # Its own metric: a burst of refused credentials is a rotation gone wrong (WebhookUnauthorizedAlarm).
            metrics.add_metric(name="WebhookUnauthorized", unit=MetricUnit.Count, value=1)
        if status >= 500:
            # Our side failed: log the detail, tell the sender only that it may retry.
            logger.error("request failed", extra={"error": error.message, "status": status})
            return json_response(status, {"error": RETRY_LATER})
        logger.info("request refused", extra={"reason": error.message, "status": status})
        return json_response(status, {"error": error.message})


def raw_body(event: Any) -> bytes:
    """The exact bytes the vendor sent (signatures are computed over them): undo API Gateway's base64."""
    body: str = event.body or ""
    if event.is_base64_encoded:
        try:
            return base64.b64decode(body, validate=True)
        except binascii.Error as exc:
            raise InvalidInput("body is not valid base64") from exc
    try:
        return body.encode("utf-8")
    except UnicodeEncodeError as exc:  # a JSON event can carry lone surrogates (e.g. "\udcff")
        raise InvalidInput(f"body is not valid UTF-8 (character {exc.start})") from exc
