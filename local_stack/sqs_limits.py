"""SQS's real send limits, which moto does not check, so a local or test send fails where AWS would refuse it.

moto 5 lets through a MessageGroupId or MessageDeduplicationId of any length and alphabet, any character in a
body, batch entry ids with non-ASCII letters, and bodies up to 1 MiB counted in characters. Patching its SQS
backend covers both `mock_aws` (tests) and the in-process moto server (local stack, e2e): both call it.

Sources (each limit below cites its own):
- API_SendMessage / API_SendMessageBatch / API_SendMessageBatchRequestEntry, Amazon SQS API Reference:
  https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessage.html
- Amazon SQS message quotas:
  https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/quotas-messages.html

Message size: the API reference gives 256 KiB (262,144 bytes) per message and per batch (the sum of the bodies).
Since January 2026 AWS accepts up to 1 MiB (https://aws.amazon.com/blogs/compute/more-room-to-build-serverless-
services-now-support-payloads-up-to-1-mb); this emulator keeps 256 KiB, the size the sync is built for, so it is
never looser than AWS, only stricter for 256 KiB-1 MiB bodies no sync message comes near.

The error codes and texts are SQS's own (as AWS SDKs report them: InvalidParameterValue "Value ... for parameter
MessageGroupId is invalid. Reason: ...", InvalidMessageContents "Invalid binary character ...", BatchRequestTooLong).
[unverified] whether SQS refuses a whole SendMessageBatch for one invalid entry or reports that entry in `Failed`:
moto refuses the whole request, and so does this; the publisher treats both as a failed send.
"""

from __future__ import annotations

import re
from typing import Any

from moto.sqs.exceptions import InvalidBatchEntryId, InvalidParameterValue, SQSException
from moto.sqs.models import SQSBackend

# API_SendMessageBatch: the largest message, and the largest total of a batch's bodies, are both 256 KiB (262,144
# bytes).
MAX_MESSAGE_BYTES = 262_144
MAX_BATCH_BYTES = 262_144
# API_SendMessage (MessageGroupId, MessageDeduplicationId) and the message quotas: at most 128 characters, letters
# and digits (a-z, A-Z, 0-9) and punctuation (!"#$%&'()*+,-./:;<=>?@[\]^_`{|}~): printable ASCII without space.
FIFO_ID = re.compile(r"[!-~]{1,128}")
# Message quotas, "Batched message ID": up to 80 characters, alphanumeric, hyphens and underscores (ASCII: moto's
# `\w` also lets through other scripts' letters).
BATCH_ENTRY_ID = re.compile(r"[A-Za-z0-9_-]{1,80}")
# API_SendMessage (MessageBody) and the message quotas: only these characters are allowed, any other is refused:
# #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF (the XML 1.0 character set).
BODY_REFUSED = re.compile("[^\\t\\n\\r\\x20-\\ud7ff\\ue000-\\ufffd\\U00010000-\\U0010ffff]")
ALLOWED_SET = "#x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] | [#x10000-#x10FFFF]"


class InvalidMessageContents(SQSException):
    def __init__(self, character: str) -> None:
        super().__init__(
            "InvalidMessageContents",
            f"Invalid binary character '#x{ord(character):X}' was found in the message body, "
            f"the set of allowed characters is {ALLOWED_SET}.",
        )


class BatchRequestTooLong(SQSException):
    def __init__(self, length: int) -> None:
        super().__init__(
            "BatchRequestTooLong",
            f"Batch requests cannot be longer than {MAX_BATCH_BYTES} bytes. You have sent {length} bytes.",
        )


def body_bytes(body: str) -> int:
    return len(body.encode("utf-8", "surrogatepass"))


def check_message(body: str, group_id: str | None, deduplication_id: str | None) -> None:
    """Raise the error SQS answers a SendMessage (or one batch entry) with, if it would refuse it."""
    for parameter, value in (("MessageGroupId", group_id), ("MessageDeduplicationId", deduplication_id)):
        if value is not None and not FIFO_ID.fullmatch(value):
            raise InvalidParameterValue(
                f"Value {value} for parameter {parameter} is invalid. Reason: {parameter} can only include "
                "alphanumeric and punctuation characters. 1 to 128 in length."
            )
    refused = BODY_REFUSED.search(body)
    if refused:
        raise InvalidMessageContents(refused.group())
    if body_bytes(body) > MAX_MESSAGE_BYTES:
        raise InvalidParameterValue(
            f"One or more parameters are invalid. Reason: Message must be shorter than {MAX_MESSAGE_BYTES} bytes."
        )


def check_batch(entries: list[dict[str, Any]]) -> None:
    """Raise the error SQS answers a SendMessageBatch with, if it would refuse it."""
    if any(not BATCH_ENTRY_ID.fullmatch(str(entry.get("Id", ""))) for entry in entries):
        raise InvalidBatchEntryId()
    total = sum(body_bytes(entry.get("MessageBody", "")) for entry in entries)
    if total > MAX_BATCH_BYTES:
        raise BatchRequestTooLong(total)
    for entry in entries:
        check_message(entry.get("MessageBody", ""), entry.get("MessageGroupId"), entry.get("MessageDeduplicationId"))


_PATCHED = "_sqs_limits_enforced"


def enforce_sqs_limits() -> None:
    """Make every moto SQS backend in this process check the limits above before it accepts a send (idempotent)."""
    if getattr(SQSBackend, _PATCHED, False):
        return
    send_message = SQSBackend.send_message
    send_message_batch = SQSBackend.send_message_batch

    def checked_send_message(self: SQSBackend, queue_name: str, message_body: str, *args: Any, **kwargs: Any) -> Any:
        check_message(message_body, kwargs.get("group_id"), kwargs.get("deduplication_id"))
        return send_message(self, queue_name, message_body, *args, **kwargs)

    def checked_send_message_batch(self: SQSBackend, queue_name: str, entries: dict[str, dict[str, Any]]) -> Any:
        check_batch(list(entries.values()))
        return send_message_batch(self, queue_name, entries)

    SQSBackend.send_message = checked_send_message  # type: ignore[method-assign]
    SQSBackend.send_message_batch = checked_send_message_batch  # type: ignore[method-assign]
    setattr(SQSBackend, _PATCHED, True)
