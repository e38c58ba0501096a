"""Publishing change messages to the concern queues (SQS FIFO), ten per call."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from pos_ecom_sync.errors import UpstreamUnavailable
from pos_ecom_sync.models.messages import ChangeMessage, Concern

SQS_BATCH_LIMIT = 10


@dataclass(frozen=True)
class Outgoing:
    message: ChangeMessage
    delivery_key: str | None = None


class ChangePublisher:
    """`send_attempts` re-sends the entries SQS reported failed in a batch; a call that raises was already retried
    by the client (its botocore config) and fails the publish at once: intake answers 503 inside its timeout."""

    def __init__(self, queue_url_of: Callable[[str], str], *, client: Any = None, send_attempts: int = 3) -> None:
        self._queue_url_of = queue_url_of
        self._sqs = client or boto3.client("sqs")
        self._attempts = send_attempts

    def publish(self, outgoing: Sequence[Outgoing]) -> int:
        """Send every message or raise: the caller (e.g. the poller) must not move on after a partial send."""
        by_concern: dict[Concern, list[Outgoing]] = defaultdict(list)
        for item in outgoing:
            by_concern[item.message.concern].append(item)
        for concern, items in by_concern.items():
            url = self._queue_url_of(concern)
            for start in range(0, len(items), SQS_BATCH_LIMIT):
                self._send_batch(url, items[start : start + SQS_BATCH_LIMIT])
        return len(outgoing)

    def backlog(self, concern: Concern) -> int:
        """Messages waiting or in flight on a concern's queue (approximate, as SQS reports it)."""
        return sum(self._counts(concern, "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"))

    def idle(self, concern: Concern) -> bool:
        """Whether a concern's queue holds nothing at all: no message waiting, in flight or delayed, by SQS's
        approximate counts (one GetQueueAttributes call). Order routing reads levels from the stock state only when
        the stock queue is idle (`orders.importer`)."""
        counts = self._counts(
            concern,
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        )
        return not any(counts)

    def _counts(self, concern: Concern, *names: str) -> list[int]:
        try:
            found = self._sqs.get_queue_attributes(QueueUrl=self._queue_url_of(concern), AttributeNames=list(names))
        except (ClientError, BotoCoreError) as exc:
            raise UpstreamUnavailable(f"sqs: cannot read the {concern} queue depth: {exc}") from exc
        return [int(found["Attributes"].get(name, 0)) for name in names]

    def _send_batch(self, queue_url: str, items: Sequence[Outgoing]) -> None:
        pending = {
            str(i): {
                "Id": str(i),
                "MessageBody": item.message.model_dump_json(),
                "MessageGroupId": item.message.message_group_id,
                "MessageDeduplicationId": item.message.deduplication_id(item.delivery_key),
            }
            for i, item in enumerate(items)
        }
        last_error = ""
        for _ in range(self._attempts):
            try:
                response = self._sqs.send_message_batch(QueueUrl=queue_url, Entries=list(pending.values()))
            except (ClientError, BotoCoreError) as exc:
                raise UpstreamUnavailable(f"sqs send to {queue_url} failed: {type(exc).__name__}: {exc}") from exc
            failed = response.get("Failed", [])
            pending = {f["Id"]: pending[f["Id"]] for f in failed}
            if not pending:
                return
            last_error = "; ".join(f"{f.get('Code')}: {f.get('Message')}" for f in failed)
        raise UpstreamUnavailable(f"sqs send to {queue_url} failed for {len(pending)} message(s): {last_error}")
