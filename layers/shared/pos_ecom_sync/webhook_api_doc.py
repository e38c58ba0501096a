"""The webhook API described for OpenAPI: `webhook_ingest` passes these to `configure_openapi` and its route decorators.

Plain data only (no Powertools model class is built at import: the webhook function's cold start stays as it was).
`make openapi` turns them into contracts/webhook-api.openapi.json; tests/unit/test_webhook_openapi.py checks that file
is current, matches the template's routes and documents every answer the function gives with the body it sends.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

from pos_ecom_sync.api import UNMAPPED_STATUS, error_body_schema
from pos_ecom_sync.intake.webhooks import ECOM_ENVELOPES, MAX_BODY_BYTES
from pos_ecom_sync.models.messages import Concern
from pos_ecom_sync.profiles.xseries.webhooks import POS_WEBHOOK_ENTITIES

API: dict[str, Any] = {
    "title": "pos-ecom-sync webhook API",
    "description": (
        "Receives the vendors' webhook deliveries for each connection: Lightspeed Retail X-Series (POS) and "
        "Lightspeed eCom. A delivery is authenticated, checked and turned into at most one queued change message; "
        "no vendor API is called while the sender waits. Webhooks are hints: the poller finds every change anyway, "
        "so a refused or lost delivery only delays a change. The base URL is the stack output `WebhookBaseUrl`."
    ),
    "tags": [{"name": "webhooks", "description": "Vendor deliveries, one route per vendor per connection"}],
    "security_schemes": {
        "posToken": {
            "type": "apiKey",
            "in": "query",
            "name": "token",
            "description": "The connection's `pos_webhook_token`, put in the webhook URL when it is registered.",
        },
        "posSignature": {
            "type": "apiKey",
            "in": "header",
            "name": "X-Signature",
            "description": "`signature=<HMAC-SHA256 of the raw body, hex or base64>,algorithm=HMAC-SHA256`, keyed "
            "with the connection's `pos_webhook_signing_secret` (X-Series signs deliveries to OAuth apps).",
        },
        "ecomSignature": {
            "type": "apiKey",
            "in": "header",
            "name": "x-signature",
            "description": "md5 hex of the raw body followed by the connection's `ecom_webhook_secret`.",
        },
    },
}

_ROTATION = "During a rotation's overlap window the previous credential is accepted too."
_INTAKE_RESULT: dict[str, Any] = {  # `IntakeResult.as_body()`
    "type": "object",
    "required": ["outcome", "reason"],
    "properties": {
        "outcome": {"type": "string", "enum": ["queued", "duplicate", "ignored"]},
        "reason": {"type": "string"},
        "concern": {"type": "string", "enum": list(get_args(Concern)), "description": "the queue"},
        "message_group_id": {"type": "string", "description": "the FIFO group: changes to one entity, in order"},
        "correlation_id": {
            "type": "string",
            "description": "API Gateway's request id: follow the change in every worker's log lines and in "
            "`pos-ecom-sync orders show`",
        },
    },
    "additionalProperties": False,
}
_GATEWAY_BODY: dict[str, Any] = {  # what API Gateway itself answers, before or instead of the function
    "type": "object",
    "required": ["message"],
    "properties": {"message": {"type": "string"}},
}


def _json(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _responses(source: Literal["pos", "ecom"]) -> dict[int, dict[str, Any]]:
    """Every answer a delivery can get (tests/unit/test_webhook_openapi.py checks the error mapping's are here)."""
    credential = "the `token` query parameter or `X-Signature`" if source == "pos" else "the `x-signature` header"
    return {
        200: _json(
            "Acknowledged, nothing queued: `duplicate` (this exact delivery was already queued) or `ignored` (a "
            "change type that is not synced, or the connection is paused and the poller will pick it up).",
            {
                **_INTAKE_RESULT,
                "properties": {**_INTAKE_RESULT["properties"], "outcome": {"enum": ["duplicate", "ignored"]}},
            },
        ),
        202: _json(
            "Queued: one change message for the workers"
            + (" (an order change also queues a status hint)." if source == "ecom" else "."),
            {
                **_INTAKE_RESULT,
                "required": ["outcome", "reason", "concern", "message_group_id", "correlation_id"],
                "properties": {**_INTAKE_RESULT["properties"], "outcome": {"const": "queued"}},
            },
        ),
        400: _json(
            "Refused, with the reason: a wrong Content-Type, a body that is not UTF-8, not the vendor's format or "
            f"over {MAX_BODY_BYTES // 1024} KiB, an unknown webhook type, a missing or implausible id, a header or "
            "query value that is not UTF-8. Sending it again cannot succeed.",
            error_body_schema(400),
        ),
        401: _json(
            f"Refused: {credential} is missing or matches neither the connection's credential nor, during a "
            "rotation, the previous one (after one fresh read of the secret). The reason never echoes a credential.",
            error_body_schema(401),
        ),
        404: _json(
            "No connection has this id (or the path segment cannot be a connection id).",
            error_body_schema(404),
        ),
        409: _json(
            "A conditional write lost a race (mapped for every route; intake makes no conditional write, so it is "
            "not expected here). Retrying is safe.",
            error_body_schema(409),
        ),
        413: _json(
            "Answered by API Gateway before the function runs: the body is over its payload limit (10 MB).",
            _GATEWAY_BODY,
        ),
        429: _json(
            "Answered by API Gateway: the API's throttle (requests per second and burst) was exceeded. Retry later.",
            _GATEWAY_BODY,
        ),
        UNMAPPED_STATUS: _json(
            'Our fault, retry later: a domain error no status is mapped to (`{"error": ...}`), or the function '
            'failed (API Gateway\'s `{"message": "Internal Server Error"}`).',
            {"oneOf": [error_body_schema(UNMAPPED_STATUS), _GATEWAY_BODY]},
        ),
        503: _json(
            "A dependency is unavailable (DynamoDB, Secrets Manager, SQS) or the connection's webhook secret is "
            "missing or invalid. Nothing was queued; the vendor's retry will be accepted once it is back.",
            error_body_schema(503),
        ),
    }


def _synced(kinds: dict[str, Any]) -> str:
    return ", ".join(f"`{kind}`" for kind, entity in kinds.items() if entity is not None)


def _acknowledged(kinds: dict[str, Any]) -> str:
    return ", ".join(f"`{kind}`" for kind, entity in kinds.items() if entity is None)


_CONNECTION = "`connection_id` is the connection's id (`pos-ecom-sync connections list`)."
POS_ROUTE: dict[str, Any] = {
    "summary": "Receive an X-Series (POS) webhook delivery",
    "description": (
        "X-Series POSTs `application/x-www-form-urlencoded` (UTF-8) with the field `payload`, a JSON object in "
        "the API 1.0 shape, and usually `type`; without `type` the type is inferred from the payload's shape. "
        f"Queued: {_synced(POS_WEBHOOK_ENTITIES)}; acknowledged without queueing: "
        f"{_acknowledged(POS_WEBHOOK_ENTITIES)}. Authenticated by the `token` query parameter (always) and, when "
        f"the connection has a `pos_webhook_signing_secret`, by `X-Signature` as well. {_ROTATION} {_CONNECTION}"
    ),
    "tags": ["webhooks"],
    "operation_id": "receivePosWebhook",
    "security": [{"posToken": [], "posSignature": []}, {"posToken": []}],
    "responses": _responses("pos"),
    "openapi_extensions": {
        # Powertools puts route extensions into the operation as they are: this is a plain OpenAPI `requestBody`
        # (a typed body parameter would need enable_validation, which webhook_ingest/app.py says why it keeps off).
        "requestBody": {
            "required": True,
            "content": {
                "application/x-www-form-urlencoded": {
                    "schema": {
                        "type": "object",
                        "required": ["payload"],
                        "properties": {
                            "payload": {"type": "string", "description": "a JSON object (API 1.0 shape) as text"},
                            "type": {"type": "string", "enum": list(POS_WEBHOOK_ENTITIES)},
                        },
                        "description": "Other fields (e.g. `environment`, `domain_prefix`) may be present.",
                    }
                }
            },
        }
    },
}
ECOM_ROUTE: dict[str, Any] = {
    "summary": "Receive a Lightspeed eCom webhook delivery",
    "description": (
        "eCom POSTs `application/json`: exactly one resource in its singular envelope, e.g. "
        '`{"order": {"id": 123, ...}}`, whose `id` is a positive integer. '
        f"Queued: {_synced(ECOM_ENVELOPES)}; acknowledged without queueing: {_acknowledged(ECOM_ENVELOPES)}, "
        "except `product` for a connection whose POS takes eCom edits (R-Series, seed 000: queued for the catalog "
        "worker, as is a copy of each `variant`). "
        f"Authenticated by the `x-signature` header. {_ROTATION} {_CONNECTION}"
    ),
    "tags": ["webhooks"],
    "operation_id": "receiveEcomWebhook",
    "security": [{"ecomSignature": []}],
    "responses": _responses("ecom"),
    "openapi_extensions": {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "minProperties": 1,
                        "maxProperties": 1,
                        "propertyNames": {"enum": list(ECOM_ENVELOPES)},
                        "additionalProperties": {
                            "type": "object",
                            "properties": {"id": {"type": "integer", "minimum": 1}},
                            "description": "the resource; `id` is required on the queued ones",
                        },
                    }
                }
            },
        }
    },
}
