"""X-Series webhook deliveries as change messages (the profile's webhook parser, see `intake.webhooks`).

Form-encoded; `payload` holds a JSON object in the API 1.0 shape. Only `payload` is guaranteed (docs/webhooks):
`type` may be missing (the event is inferred from the payload's shape) and 1.0 payloads carry no `version` (the
message then has none and the worker re-reads the entity).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import parse_qs

from pos_ecom_sync.errors import InvalidInput, safe_text
from pos_ecom_sync.intake.rows import row_id, row_version, stamp
from pos_ecom_sync.intake.webhooks import IncomingWebhook, decode_utf8, json_object, require_content_type
from pos_ecom_sync.models.messages import CONCERN_OF, ChangeMessage, Entity, vendor_payload
from pos_ecom_sync.profiles.xseries.sales import content_digest_of

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


def _entity_id(payload: dict[str, Any], field: str, webhook_type: str) -> str:
    """X-Series webhook ids are strings (UUIDs), checked like a feed row's."""
    value = payload.get(field)
    if value not in (None, "") and not isinstance(value, str):
        raise InvalidInput(f"{webhook_type} payload: {field} must be a string")
    try:
        return row_id(payload, field)
    except InvalidInput as exc:
        raise InvalidInput(f"{webhook_type} payload: {exc.message}") from None


def parse_pos_webhook(webhook: IncomingWebhook, received_at: datetime) -> ChangeMessage | None:
    """X-Series: form-encoded, `payload` holds a JSON object in the API 1.0 shape. Only `payload` is guaranteed
    (docs/webhooks): `type` may be missing (the event is inferred from the payload's shape) and 1.0 payloads carry
    no `version` (the message then has none and the worker re-reads the entity)."""
    require_content_type(webhook, "application/x-www-form-urlencoded")
    text = decode_utf8(webhook.body)
    try:
        form = parse_qs(text, keep_blank_values=True, strict_parsing=True, errors="strict")
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"body is not a valid form encoding: {safe_text(str(exc), 80)}") from exc
    if "payload" not in form:
        raise InvalidInput("form field 'payload' is missing")
    payload = json_object(form["payload"][0], "payload")
    webhook_type = form.get("type", [None])[0] or _infer_pos_type(payload)
    if webhook_type not in POS_WEBHOOK_ENTITIES:
        raise InvalidInput(f"unknown webhook type {safe_text(webhook_type, 40)}")
    entity = POS_WEBHOOK_ENTITIES[webhook_type]
    if entity is None:
        return None
    id_field = "product_id" if entity == "inventory" else "id"
    entity_id = _entity_id(payload, id_field, webhook_type)
    if entity == "inventory":
        _entity_id(payload, "outlet_id", webhook_type)
    return ChangeMessage(
        connection_id=webhook.connection_id,
        source="pos",
        entity=entity,
        entity_id=entity_id,
        version=row_version(payload, required=False),
        updated_at=stamp(payload.get("updated_at")),
        via="webhook",
        received_at=received_at,
        payload=vendor_payload("pos", entity, payload),
        concern=CONCERN_OF[("pos", entity)],
        group_key=_family_key(payload, entity_id) if entity == "product" else None,
        # From the whole payload, before it is trimmed: status sync knows the echo of its own void or payment by it.
        content_digest=content_digest_of(payload) if entity == "sale" else None,
    )


def _family_key(payload: dict[str, Any], entity_id: str) -> str:
    """1.0 payloads name a variant's parent in `variant_parent_id` ("" on a parent or a simple product)."""
    parent = payload.get("variant_parent_id")
    if parent is None or parent == "":
        return entity_id
    return _entity_id(payload, "variant_parent_id", "product.update")


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
