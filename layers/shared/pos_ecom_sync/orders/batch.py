"""One SQS batch of order messages, as the order worker shares work across it (`runtime.sqs_batch`): which eCom
orders its records name, and which records to hand back to SQS when their orders' events could not be sent."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from pos_ecom_sync.models.messages import ChangeMessage


@dataclass(frozen=True)
class NamedOrder:
    message_id: str  # the SQS record's
    connection_id: str
    order_id: int


def orders_named(event: Mapping[str, Any]) -> list[NamedOrder]:
    """The eCom order each record of `event` names; a record whose body does not parse is left out (the consumer
    reports it)."""
    named: list[NamedOrder] = []
    for record in event.get("Records", []):
        try:
            message = ChangeMessage.model_validate_json(record.get("body") or "")
        except ValidationError:
            continue
        if message.source == "ecom" and message.entity == "order" and message.entity_id.isdigit():
            named.append(NamedOrder(str(record.get("messageId", "")), message.connection_id, int(message.entity_id)))
    return named


def with_unsent_as_failures(
    named: Sequence[NamedOrder], response: Mapping[str, Any], unsent: Collection[tuple[str, int]]
) -> dict[str, Any]:
    """The batch response with every record of an order in `unsent` ((connection, order id) whose events were not
    sent) among the batch item failures, once each: SQS hands them out again, and the order's next attempt sends its
    pending events."""
    failures = list(response.get("batchItemFailures", []))
    known = {failure.get("itemIdentifier") for failure in failures}
    for order in named:
        if (order.connection_id, order.order_id) in unsent and order.message_id not in known:
            failures.append({"itemIdentifier": order.message_id})
            known.add(order.message_id)
    return {**response, "batchItemFailures": failures}
