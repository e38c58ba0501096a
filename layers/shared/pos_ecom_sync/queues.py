"""Publishing change messages to the concern queues (SQS FIFO), ten per call."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from pos_ecom_sync.errors import UpstreamUnavailable
from pos_ecom_sync.models.messages import ChangeMessage, Concern

SQS_BATCH_LIMIT = 10
# How long one SQS batch's records reuse a queue's "idle" answer (`RecentIdle`).
IDLE_REUSE_SECONDS = 10.0


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


class QueueCounts(Protocol):
    def idle(self, concern: Concern) -> bool: ...


class RecentIdle:
    """A queue's "idle" answer (`ChangePublisher.idle`) reused for `max_age_s`, by the records of one SQS batch
    (`runtime.sqs_batch`): one GetQueueAttributes per concern and batch instead of one per order.

    Trade-off: order routing reads stock levels from the table only while the stock and products queues are idle,
    so that no level is older than what the change feed's cursor has passed. A reused answer stretches that by at most
    `max_age_s`: a change the feed queues after the check may not be applied yet when a later order of the batch is
    routed. The feed itself polls once a minute, a stale level cannot oversell (routing only picks the fulfilling
    outlet; the stock worker writes eCom from the POS), and a product deleted meanwhile is still caught when the POS
    refuses the sale (`orders.importer`). A "not idle" answer is not reused: the next order asks again, as one that
    may then route without POS reads."""

    def __init__(
        self, counts: QueueCounts, *, max_age_s: float = IDLE_REUSE_SECONDS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._counts = counts
        self._max_age_s = max_age_s
        self._clock = clock
        self._idle_since: dict[Concern, float] = {}  # concern -> when it was last seen idle (before asking)

    def idle(self, concern: Concern) -> bool:
        now = self._clock()
        seen = self._idle_since.get(concern)
        if seen is not None and now - seen <= self._max_age_s:
            return True
        self._idle_since.pop(concern, None)
        if not self._counts.idle(concern):
            return False
        self._idle_since[concern] = now
        return True
