"""moto's DynamoDB, made to handle one request at a time, as DynamoDB's own item-level atomicity requires.

moto's DynamoDB backend is not thread-safe. A conditional UpdateItem reads the item, checks the condition and
writes in separate steps, so two threads can both pass `#v = :old` (two pollers would both advance one cursor), and
TransactWriteItems deep-copies a table while another thread writes to it ("dictionary changed size during
iteration"). Real DynamoDB evaluates a condition and applies the write atomically and serialises conflicting writes,
so serialising moto's DynamoDB changes no behaviour the code relies on. Patching the request handler covers both
`mock_aws` (tests, whose worker threads share one backend) and the in-process moto server (local stack, e2e). Other
services stay concurrent: an SQS long poll must not block every other call.
"""

from __future__ import annotations

import threading
from typing import Any

from moto.dynamodb.responses import DynamoHandler

_PATCHED = "_one_request_at_a_time"
_LOCK = threading.RLock()


def serialize_dynamodb() -> None:
    """Make every moto DynamoDB request in this process run alone (idempotent)."""
    if getattr(DynamoHandler, _PATCHED, False):
        return
    call_action = DynamoHandler.call_action

    def one_at_a_time(self: DynamoHandler) -> Any:
        with _LOCK:
            return call_action(self)

    DynamoHandler.call_action = one_at_a_time  # type: ignore[method-assign]
    setattr(DynamoHandler, _PATCHED, True)
