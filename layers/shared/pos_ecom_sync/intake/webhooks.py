"""Webhook intake: authenticate, validate, and turn one vendor delivery into at most one queued message.

No vendor API is called here: the vendors time out deliveries after about 5 seconds, and workers
re-read the entity anyway. Every refusal is an `InvalidInput`/`Unauthorized`/`NotFound` with a reason.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any, Literal, Protocol

from pydantic import TypeAdapter, ValidationError

from pos_ecom_sync.errors import InvalidInput, NotFound, safe_text
from pos_ecom_sync.intake.rows import message_problem, positive_id, stamp
from pos_ecom_sync.intake.verify import WebhookSecretsSource as SecretsLookup
from pos_ecom_sync.intake.verify import authenticate
from pos_ecom_sync.models.connection import Connection, ConnectionId
from pos_ecom_sync.models.messages import (
    CONCERN_OF,
    ChangeMessage,
    Concern,
    Entity,
    Source,
    order_status_hint,
    vendor_payload,
)
from pos_ecom_sync.queues import Outgoing
from pos_ecom_sync.status.digest import ecom_order_digest

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 256 * 1024

# eCom deliveries carry the resource in its singular envelope; the key names the item group.
ECOM_ENVELOPES: dict[str, Entity | None] = {
    "order": "order",
    "variant": "variant",
    "shipment": "shipment",
    "product": None,  # eCom product edits never flow back (X-Series, seed 003); see ECOM_EDIT_ENVELOPES
    "customer": None,
    "invoice": None,
    "review": None,
    "quote": None,
    "return": None,
    "subscription": None,
}
# For a connection whose POS profile takes eCom edits (R-Series, seed 000: product edits are two-way): product
# changes are queued for the catalog worker too.
ECOM_EDIT_ENVELOPES: dict[str, Entity | None] = {**ECOM_ENVELOPES, "product": "product"}


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
    correlation_id: str | None = None  # follow the change in every worker's logs (`correlation`)

    def as_body(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


class ConnectionLookup(Protocol):
    def get_connection(self, connection_id: str) -> Connection | None: ...
    def delivery_seen(self, connection_id: str, delivery_key: str) -> bool: ...
    def remember_delivery(self, connection_id: str, delivery_key: str, ttl_seconds: int) -> None: ...


class Publisher(Protocol):
    def publish(self, outgoing: list[Outgoing]) -> int: ...


# A POS profile's webhook parser: one delivery -> its change message, None for a change type that is not synced,
# InvalidInput (with the reason) for a body it refuses. Pure: no dependency is called.
PosWebhookParser = Callable[[IncomingWebhook, datetime], ChangeMessage | None]


def require_content_type(webhook: IncomingWebhook, expected: str) -> None:
    content_type = (webhook.header("content-type") or "").split(";")[0].strip().lower()
    if content_type != expected:
        raise InvalidInput(
            f"expected Content-Type {expected}, got {safe_text(content_type, 40) if content_type else 'none'}"
        )


def decode_utf8(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"body is not valid UTF-8 (byte {exc.start})") from exc


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def json_object(text: str, what: str) -> dict[str, Any]:
    """Strict JSON: NaN/Infinity refused; a nesting too deep for the parser, or an integer longer than Python reads
    (4300 digits), is bad input like any other syntax error."""
    try:
        value = json.loads(text, parse_constant=_no_constants)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{what} is not valid JSON: {exc.msg} at position {exc.pos}") from exc
    except RecursionError as exc:
        raise InvalidInput(f"{what} is nested too deeply") from exc
    except ValueError as exc:  # int max-str-digits, NaN/Infinity
        raise InvalidInput(f"{what} is not valid JSON: {safe_text(str(exc), 80)}") from exc
    if not isinstance(value, dict):
        raise InvalidInput(f"{what} must be a JSON object")
    return value


def parse_ecom_webhook(
    webhook: IncomingWebhook, received_at: datetime, envelopes: dict[str, Entity | None] = ECOM_ENVELOPES
) -> ChangeMessage | None:
    """eCom: JSON, the resource in its singular envelope (`{"order": {...}}`); `envelopes`: which are synced."""
    require_content_type(webhook, "application/json")
    body = json_object(decode_utf8(webhook.body), "body")
    if len(body) != 1:
        raise InvalidInput('body must hold exactly one resource envelope, e.g. {"order": {...}}')
    envelope, resource = next(iter(body.items()))
    if envelope not in envelopes:
        raise InvalidInput(f"unknown webhook type {safe_text(envelope, 40)}")
    entity = envelopes[envelope]
    if entity is None:
        return None
    if not isinstance(resource, dict):
        raise InvalidInput(f"{envelope} must be a JSON object")
    try:
        ecom_id = positive_id(resource)  # eCom ids are positive JSON integers within 64 bits
    except InvalidInput as exc:
        raise InvalidInput(f"{envelope} has no integer id in range: {exc.message}") from None
    return ChangeMessage(
        connection_id=webhook.connection_id,
        source="ecom",
        entity=entity,
        entity_id=str(ecom_id),
        updated_at=stamp(resource.get("updatedAt")),
        via="webhook",
        received_at=received_at,
        payload=vendor_payload("ecom", entity, resource),
        concern=CONCERN_OF[("ecom", entity)],
        content_digest=ecom_order_digest(resource) if entity == "order" else None,
    )


# What a parser may raise on input nobody foresaw (its own checks raise InvalidInput). Parsing is pure: no
# dependency is called, so none of these is an outage, and a 5xx would only make the vendor retry it for days.
PARSE_FAILURES = (ValueError, TypeError, LookupError, RecursionError, ArithmeticError)


class WebhookIntake:
    def __init__(
        self,
        store: ConnectionLookup,
        secrets: SecretsLookup,
        publisher: Publisher,
        *,
        dedup_ttl_seconds: int,
        pos_webhooks: Callable[[Connection], PosWebhookParser | None],
        takes_ecom_edits: Callable[[Connection], bool] = lambda connection: False,
    ) -> None:
        """`pos_webhooks(connection)`: its POS profile's webhook parser, None for a POS that sends none;
        `takes_ecom_edits(connection)`: whether its POS profile takes the merchant's eCom product edits."""
        self._pos_webhooks = pos_webhooks
        self._takes_ecom_edits = takes_ecom_edits
        self._store = store
        self._secrets = secrets
        self._publisher = publisher
        self._dedup_ttl = dedup_ttl_seconds

    def accept(self, webhook: IncomingWebhook, *, now: datetime | None = None) -> IntakeResult:
        if len(webhook.body) > MAX_BODY_BYTES:
            raise InvalidInput(f"body is {len(webhook.body)} bytes; the limit is {MAX_BODY_BYTES}")
        _require_connection_id(webhook.connection_id)
        _require_text(webhook)
        connection = self._store.get_connection(webhook.connection_id)
        if connection is None:
            raise NotFound(f"unknown connection {webhook.connection_id!r}")
        authenticate(webhook, self._secrets, now)  # a rotated credential: one fresh read before a 401

        received_at = now or datetime.now(UTC)
        message = _parse(webhook, received_at, self._parser(webhook, connection))
        if message is None:
            return IntakeResult("ignored", "this change type is not synced")
        if not connection.is_active:
            return IntakeResult("ignored", "connection is paused; the poller picks changes up on resume")

        # One delivery, however often the vendor retries it, queues one message. The mark is written
        # after the send: a crash in between means a re-send with the same FIFO deduplication id.
        delivery_key = hashlib.sha256(webhook.source.encode() + b"|" + webhook.body).hexdigest()
        if self._store.delivery_seen(connection.connection_id, delivery_key):
            return IntakeResult("duplicate", "delivery already queued", message.concern, message.message_group_id)
        hint = order_status_hint(message) or self._ecom_edit_copy(message, connection)
        self._publisher.publish([Outgoing(message, delivery_key), *([Outgoing(hint, delivery_key)] if hint else [])])
        self._store.remember_delivery(connection.connection_id, delivery_key, self._dedup_ttl)
        return IntakeResult(
            "queued", "queued for sync", message.concern, message.message_group_id, message.correlation_id
        )

    def _ecom_edit_copy(self, message: ChangeMessage, connection: Connection) -> ChangeMessage | None:
        """The catalog worker's copy of an eCom variant change (the stock worker has the original), for a POS that
        takes eCom edits: a price, SKU or EAN edit flows back to the POS (`catalog.ecom_edits`)."""
        if message.source != "ecom" or message.entity != "variant" or not self._takes_ecom_edits(connection):
            return None
        return message.model_copy(update={"concern": CONCERN_OF[("ecom", "product")]})

    def _parser(self, webhook: IncomingWebhook, connection: Connection) -> PosWebhookParser:
        if webhook.source == "ecom":
            if self._takes_ecom_edits(connection):
                return partial(parse_ecom_webhook, envelopes=ECOM_EDIT_ENVELOPES)
            return parse_ecom_webhook
        parser = self._pos_webhooks(connection)
        if parser is None:
            raise InvalidInput(f"a {connection.pos_profile} POS sends no webhooks: its changes are polled")
        return parser


_CONNECTION_ID = TypeAdapter(ConnectionId)


def _require_connection_id(connection_id: str) -> None:
    """A path that cannot name a connection is answered like an unknown one, without a table read (a 2 KB or
    surrogate-bearing key would make DynamoDB refuse the read: a 503 for what is bad input)."""
    try:
        _CONNECTION_ID.validate_python(connection_id)
    except ValidationError:
        raise NotFound(f"unknown connection {safe_text(connection_id, 40)}") from None


def _require_text(webhook: IncomingWebhook) -> None:
    """Header and query values are text API Gateway decoded; one that is not UTF-8 (a lone surrogate in the event)
    cannot be a credential or a content type, and would break every comparison made with it."""
    for kind, values in (("header", webhook.headers), ("query parameter", webhook.query)):
        for name, value in values.items():
            try:
                name.encode("utf-8")
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise InvalidInput(f"{kind} {safe_text(name, 40)} is not valid UTF-8") from None


def _parse(webhook: IncomingWebhook, received_at: datetime, parse: PosWebhookParser) -> ChangeMessage | None:
    """The delivery's change message, proven queueable (SQS-safe text, far below 256 KiB), or a refusal with the
    reason. A parser failure nobody foresaw is still the body's fault (logged as a bug to fix), never a 5xx."""
    try:
        message = parse(webhook, received_at)
        if message is None:
            return None
    except PARSE_FAILURES as exc:  # the parsers' own refusals are InvalidInput, which passes through
        logger.error("webhook parser failed on unforeseen input", extra={"error_type": type(exc).__name__})
        raise InvalidInput(f"body could not be read as a {webhook.source} webhook ({type(exc).__name__})") from None
    problem = message_problem(message)  # what SQS would refuse: a 503 for every retry of the vendor's
    if problem:
        raise InvalidInput(f"the change cannot be queued: {problem}")
    return message
