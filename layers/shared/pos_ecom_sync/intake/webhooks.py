"""Webhook intake: authenticate, validate, and turn one vendor delivery into at most one queued message.

No vendor API is called here: the vendors time out deliveries after about 5 seconds, and workers
re-read the entity anyway. Every refusal is an `InvalidInput`/`Unauthorized`/`NotFound` with a reason.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol
from urllib.parse import parse_qs

from pos_ecom_sync.errors import InvalidInput, NotFound, Unauthorized
from pos_ecom_sync.models.connection import Connection, ConnectionSecrets
from pos_ecom_sync.models.messages import CONCERN_OF, ChangeMessage, Concern, Entity, Source, order_status_hint
from pos_ecom_sync.queues import Outgoing

MAX_BODY_BYTES = 256 * 1024
# Keep the queued copy of the vendor payload well under SQS's 256 KiB message limit.
MAX_PAYLOAD_COPY_BYTES = 200 * 1024

# X-Series webhook types (API docs enum). Only the synced ones become messages; the rest are acknowledged.
POS_WEBHOOK_ENTITIES: dict[str, Entity | None] = {
    "product.update": "product",
    "inventory.update": "inventory",
    "sale.update": "sale",
    "customer.update": None,
    "register_closure.create": None,
    "consignment.send": None,
    "consignment.receive": None,
}

# eCom deliveries carry the resource in its singular envelope; the key names the item group.
ECOM_ENVELOPES: dict[str, Entity | None] = {
    "order": "order",
    "variant": "variant",
    "shipment": "shipment",
    "product": None,  # X-Series profile: eCom product edits never flow back (seed 003)
    "customer": None,
    "invoice": None,
    "review": None,
    "quote": None,
    "return": None,
    "subscription": None,
}


@dataclass(frozen=True)
class IncomingWebhook:
    source: Source
    connection_id: str
    body: bytes
    headers: dict[str, str]  # lower-cased names
    query: dict[str, str]

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass(frozen=True)
class IntakeResult:
    outcome: Literal["queued", "duplicate", "ignored"]
    reason: str
    concern: Concern | None = None
    message_group_id: str | None = None

    def as_body(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


class ConnectionLookup(Protocol):
    def get_connection(self, connection_id: str) -> Connection | None: ...
    def delivery_seen(self, connection_id: str, delivery_key: str) -> bool: ...
    def remember_delivery(self, connection_id: str, delivery_key: str, ttl_seconds: int) -> None: ...


class SecretsLookup(Protocol):
    def get(self, connection_id: str) -> ConnectionSecrets: ...


class Publisher(Protocol):
    def publish(self, outgoing: list[Outgoing]) -> int: ...


def _require_content_type(webhook: IncomingWebhook, expected: str) -> None:
    content_type = (webhook.header("content-type") or "").split(";")[0].strip().lower()
    if content_type != expected:
        raise InvalidInput(f"expected Content-Type {expected}, got {content_type or 'none'}")


def _decode_utf8(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"body is not valid UTF-8 (byte {exc.start})") from exc


def _json_object(text: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{what} is not valid JSON: {exc.msg} at position {exc.pos}") from exc
    if not isinstance(value, dict):
        raise InvalidInput(f"{what} must be a JSON object")
    return value


# What a large webhook payload is cut down to: ids and versions, and the fields that tell an online sale
# (`source_id`, `return_for`) so the status worker skips in-store sales without reading them.
POS_PAYLOAD_KEEP = ("id", "product_id", "outlet_id", "count", "version", "source_id", "return_for")
# eCom: the body envelope is undocumented, so workers re-read what they need.
ECOM_PAYLOAD_KEEP = ("id", "number", "updatedAt", "stockLevel", "order")


def _payload_copy(obj: dict[str, Any], raw_size: int, keep: tuple[str, ...]) -> dict[str, Any]:
    if raw_size <= MAX_PAYLOAD_COPY_BYTES:
        return obj
    return {k: obj[k] for k in keep if k in obj}


def verify_pos_token(webhook: IncomingWebhook, secrets: ConnectionSecrets) -> None:
    token = webhook.query.get("token")
    if not token:
        raise Unauthorized("missing token query parameter")
    if not hmac.compare_digest(token.encode(), secrets.pos_webhook_token.get_secret_value().encode()):
        raise Unauthorized("token does not match this connection")


SIGNATURE_ALGORITHM = "HMAC-SHA256"


def _signature_fields(header: str) -> dict[str, str]:
    """`signature=<digest>,algorithm=HMAC-SHA256` -> fields (split at the first `=`: base64 ends in `=`)."""
    fields: dict[str, str] = {}
    for part in header.split(","):
        name, sep, value = part.partition("=")
        if sep:
            fields[name.strip().lower()] = value.strip()
    return fields


def verify_pos_signature(webhook: IncomingWebhook, secrets: ConnectionSecrets) -> None:
    """X-Series signs deliveries to OAuth apps: `X-Signature: signature=...,algorithm=HMAC-SHA256` over the raw
    body. Required only when the connection has a signing secret. [unverified] the key (the app's client secret)
    and the digest encoding: hex (any case) and base64 are both accepted, each compared in constant time."""
    if secrets.pos_webhook_signing_secret is None:
        return
    header = webhook.header("x-signature")
    if not header:
        raise Unauthorized("missing X-Signature header: this connection accepts signed deliveries only")
    fields = _signature_fields(header)
    algorithm = fields.get("algorithm", SIGNATURE_ALGORITHM)
    if algorithm.upper() != SIGNATURE_ALGORITHM:
        raise Unauthorized(f"X-Signature algorithm {algorithm[:40]!r} is not {SIGNATURE_ALGORITHM}")
    given = fields.get("signature", "").encode("utf-8", "replace")
    key = secrets.pos_webhook_signing_secret.get_secret_value().encode()
    digest = hmac.new(key, webhook.body, hashlib.sha256).digest()
    as_hex = hmac.compare_digest(digest.hex().encode(), given.lower())
    as_base64 = hmac.compare_digest(base64.b64encode(digest), given)
    if not (as_hex | as_base64):  # both compared: no early exit on which encoding matched
        raise Unauthorized("X-Signature does not match the body")


def verify_ecom_signature(webhook: IncomingWebhook, secrets: ConnectionSecrets) -> None:
    signature = webhook.header("x-signature")
    if not signature:
        raise Unauthorized("missing x-signature header")
    expected = hashlib.md5(
        webhook.body + secrets.ecom_webhook_secret.get_secret_value().encode(), usedforsecurity=False
    )
    if not hmac.compare_digest(expected.hexdigest(), signature.strip().lower()):
        raise Unauthorized("x-signature does not match the body")


def parse_pos_webhook(webhook: IncomingWebhook, received_at: datetime) -> ChangeMessage | None:
    """X-Series: form-encoded, `payload` holds a JSON object in the API 1.0 shape. Only `payload` is guaranteed
    (docs/webhooks): `type` may be missing (the event is inferred from the payload's shape) and 1.0 payloads carry
    no `version` (the message then has none and the worker re-reads the entity)."""
    _require_content_type(webhook, "application/x-www-form-urlencoded")
    text = _decode_utf8(webhook.body)
    try:
        form = parse_qs(text, keep_blank_values=True, strict_parsing=True, errors="strict")
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"body is not a valid form encoding: {exc}") from exc
    if "payload" not in form:
        raise InvalidInput("form field 'payload' is missing")
    payload = _json_object(form["payload"][0], "payload")
    webhook_type = form.get("type", [None])[0] or _infer_pos_type(payload)
    if webhook_type not in POS_WEBHOOK_ENTITIES:
        raise InvalidInput(f"unknown webhook type {webhook_type!r}")
    entity = POS_WEBHOOK_ENTITIES[webhook_type]
    if entity is None:
        return None
    id_field = "product_id" if entity == "inventory" else "id"
    entity_id = payload.get(id_field)
    if not isinstance(entity_id, str) or not entity_id:
        raise InvalidInput(f"{webhook_type} payload has no {id_field}")
    if entity == "inventory" and not isinstance(payload.get("outlet_id"), str):
        raise InvalidInput("inventory.update payload has no outlet_id")
    version = payload.get("version")
    return ChangeMessage(
        connection_id=webhook.connection_id,
        source="pos",
        entity=entity,
        entity_id=entity_id,
        version=int(version) if isinstance(version, int | str) and str(version).isdigit() else None,
        updated_at=payload.get("updated_at") if isinstance(payload.get("updated_at"), str) else None,
        via="webhook",
        received_at=received_at,
        payload=_payload_copy(payload, len(webhook.body), POS_PAYLOAD_KEEP),
        concern=CONCERN_OF[("pos", entity)],
        group_key=_family_key(payload, entity_id) if entity == "product" else None,
    )


def _family_key(payload: dict[str, Any], entity_id: str) -> str:
    """1.0 payloads name a variant's parent in `variant_parent_id` ("" on a parent or a simple product)."""
    parent = payload.get("variant_parent_id")
    return parent if isinstance(parent, str) and parent else entity_id


def _infer_pos_type(payload: dict[str, Any]) -> str | None:
    """Only `payload` is guaranteed on X-Series deliveries; recognise the 1.0 shapes when `type` is absent."""
    if "product_id" in payload and "outlet_id" in payload and "count" in payload:
        return "inventory.update"
    if "register_sale_products" in payload or "invoice_number" in payload:
        return "sale.update"
    if "handle" in payload or "base_name" in payload:
        return "product.update"
    if "customer_code" in payload:
        return "customer.update"
    return None


def parse_ecom_webhook(webhook: IncomingWebhook, received_at: datetime) -> ChangeMessage | None:
    """eCom: JSON, the resource in its singular envelope (`{"order": {...}}`)."""
    _require_content_type(webhook, "application/json")
    body = _json_object(_decode_utf8(webhook.body), "body")
    if len(body) != 1:
        raise InvalidInput('body must hold exactly one resource envelope, e.g. {"order": {...}}')
    envelope, resource = next(iter(body.items()))
    if envelope not in ECOM_ENVELOPES:
        raise InvalidInput(f"unknown webhook type {envelope!r}")
    entity = ECOM_ENVELOPES[envelope]
    if entity is None:
        return None
    if not isinstance(resource, dict) or not isinstance(resource.get("id"), int) or isinstance(resource["id"], bool):
        raise InvalidInput(f"{envelope} has no integer id")
    updated_at = resource.get("updatedAt")
    return ChangeMessage(
        connection_id=webhook.connection_id,
        source="ecom",
        entity=entity,
        entity_id=str(resource["id"]),
        updated_at=updated_at if isinstance(updated_at, str) else None,
        via="webhook",
        received_at=received_at,
        payload=_payload_copy(resource, len(webhook.body), ECOM_PAYLOAD_KEEP),
        concern=CONCERN_OF[("ecom", entity)],
    )


class WebhookIntake:
    def __init__(
        self, store: ConnectionLookup, secrets: SecretsLookup, publisher: Publisher, *, dedup_ttl_seconds: int
    ) -> None:
        self._store = store
        self._secrets = secrets
        self._publisher = publisher
        self._dedup_ttl = dedup_ttl_seconds

    def accept(self, webhook: IncomingWebhook, *, now: datetime | None = None) -> IntakeResult:
        if len(webhook.body) > MAX_BODY_BYTES:
            raise InvalidInput(f"body is {len(webhook.body)} bytes; the limit is {MAX_BODY_BYTES}")
        connection = self._store.get_connection(webhook.connection_id)
        if connection is None:
            raise NotFound(f"unknown connection {webhook.connection_id!r}")
        secrets = self._secrets.get(connection.connection_id)
        if webhook.source == "pos":
            verify_pos_token(webhook, secrets)
            verify_pos_signature(webhook, secrets)
        else:
            verify_ecom_signature(webhook, secrets)

        received_at = now or datetime.now(UTC)
        parse = parse_pos_webhook if webhook.source == "pos" else parse_ecom_webhook
        message = parse(webhook, received_at)
        if message is None:
            return IntakeResult("ignored", "this change type is not synced")
        if not connection.is_active:
            return IntakeResult("ignored", "connection is paused; the poller picks changes up on resume")

        # One delivery, however often the vendor retries it, queues one message. The mark is written
        # after the send: a crash in between means a re-send with the same FIFO deduplication id.
        delivery_key = hashlib.sha256(webhook.source.encode() + b"|" + webhook.body).hexdigest()
        if self._store.delivery_seen(connection.connection_id, delivery_key):
            return IntakeResult("duplicate", "delivery already queued", message.concern, message.message_group_id)
        hint = order_status_hint(message)
        self._publisher.publish([Outgoing(message, delivery_key), *([Outgoing(hint, delivery_key)] if hint else [])])
        self._store.remember_delivery(connection.connection_id, delivery_key, self._dedup_ttl)
        return IntakeResult("queued", "queued for sync", message.concern, message.message_group_id)
