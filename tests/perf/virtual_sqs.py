"""SQS FIFO queues on a virtual clock, and Lambda's SQS event source running a worker function on them.

moto's queues hide a delayed record for real seconds, which a virtual clock never waits for. `VirtualSqs` answers
the SQS calls the sync code and the event source make (`send_message_batch`, `send_message`, `receive_message`,
`delete_message_batch`, `change_message_visibility`, `get_queue_url`, `get_queue_attributes`) with the FIFO rules
the workers rely on: a message group's messages come in order and none while one of them is in flight, a receive
fills its batch from one group before the next (as SQS FIFO does), a received message is hidden for the queue's
visibility timeout or what the worker set, a re-send with the same deduplication id within 5 minutes is dropped,
and after maxReceiveCount receives a message moves to the dead-letter queue. Queues mirror the provisioned ones
(visibility timeout, redrive policy) from moto.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from tests.perf.virtual_time import SharedClock

DEDUP_WINDOW_S = 300.0


@dataclass
class _Message:
    message_id: str
    body: str
    group: str
    dedup_id: str
    sent_at: float
    attributes: dict[str, Any]
    visible_at: float = 0.0
    receives: int = 0
    first_received_at: float = 0.0
    receipt: str = ""


@dataclass
class VirtualQueue:
    url: str
    arn: str
    visibility_s: int = 30
    dead_letter_url: str | None = None
    max_receives: int | None = None
    messages: list[_Message] = field(default_factory=list)  # queue order
    dedup: dict[str, float] = field(default_factory=dict)
    sent: int = 0
    redriven: int = 0  # moved to the dead-letter queue after maxReceiveCount receives


class VirtualSqs:
    meta = SimpleNamespace(endpoint_url="virtual-sqs://bench", region_name="us-east-1")

    def __init__(self, clock: SharedClock) -> None:
        self.clock = clock
        self.queues: dict[str, VirtualQueue] = {}
        self._lock = threading.RLock()
        self._ids = itertools.count(1)
        self.visibility_changes: list[int] = []  # every VisibilityTimeout a worker set (throttled or failed records)

    # -- set-up ------------------------------------------------------------------------------------------

    def mirror(self, moto_sqs: Any, urls: list[str]) -> None:
        """Queues like the provisioned ones at `urls` (and their dead-letter queues)."""
        for url in urls:
            names = ["QueueArn", "VisibilityTimeout", "RedrivePolicy"]
            attributes = moto_sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
            queue = self._queue(url, attributes["QueueArn"])
            queue.visibility_s = int(attributes.get("VisibilityTimeout", 30))
            if "RedrivePolicy" in attributes:
                policy = json.loads(attributes["RedrivePolicy"])
                dead_arn = policy["deadLetterTargetArn"]
                dead_url = moto_sqs.get_queue_url(QueueName=dead_arn.rsplit(":", 1)[1])["QueueUrl"]
                self._queue(dead_url, dead_arn)
                queue.dead_letter_url, queue.max_receives = dead_url, int(policy["maxReceiveCount"])

    def _queue(self, url: str, arn: str | None = None) -> VirtualQueue:
        with self._lock:
            if url not in self.queues:
                name = url.rstrip("/").rsplit("/", 1)[-1]
                self.queues[url] = VirtualQueue(url, arn or f"arn:aws:sqs:us-east-1:123456789012:{name}")
            return self.queues[url]

    def depth(self, url: str) -> int:
        with self._lock:
            return len(self._queue(url).messages)

    # -- the SQS API ------------------------------------------------------------------------------------

    def get_queue_url(self, QueueName: str, QueueOwnerAWSAccountId: str | None = None) -> dict[str, Any]:
        with self._lock:
            for queue in self.queues.values():
                if queue.arn.rsplit(":", 1)[1] == QueueName:
                    return {"QueueUrl": queue.url}
        raise KeyError(f"no virtual queue {QueueName}")

    def get_queue_attributes(self, QueueUrl: str, AttributeNames: list[str]) -> dict[str, Any]:
        with self._lock:
            queue = self._queue(QueueUrl)
            now = self.clock()
            visible = sum(1 for m in queue.messages if m.visible_at <= now)
            return {
                "Attributes": {
                    "QueueArn": queue.arn,
                    "ApproximateNumberOfMessages": str(visible),
                    "ApproximateNumberOfMessagesNotVisible": str(len(queue.messages) - visible),
                    "VisibilityTimeout": str(queue.visibility_s),
                }
            }

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        successful = []
        for entry in Entries:
            message_id = self._send(QueueUrl, entry)
            successful.append({"Id": entry["Id"], "MessageId": message_id})
        return {"Successful": successful, "Failed": []}

    def send_message(self, QueueUrl: str, **entry: Any) -> dict[str, Any]:
        return {"MessageId": self._send(QueueUrl, entry)}

    def _send(self, url: str, entry: dict[str, Any]) -> str:
        with self._lock:
            queue = self._queue(url)
            now = self.clock()
            body = entry["MessageBody"]
            dedup = entry.get("MessageDeduplicationId") or hashlib.sha256(body.encode()).hexdigest()
            message_id = f"m-{next(self._ids)}"
            if now - queue.dedup.get(dedup, -DEDUP_WINDOW_S - 1) <= DEDUP_WINDOW_S:
                return message_id  # accepted and dropped, as SQS FIFO does within its deduplication interval
            queue.dedup[dedup] = now
            queue.messages.append(
                _Message(
                    message_id, body, entry.get("MessageGroupId", ""), dedup, now, entry.get("MessageAttributes", {})
                )
            )
            queue.sent += 1
            return message_id

    def receive_message(
        self,
        QueueUrl: str,
        MaxNumberOfMessages: int = 1,
        WaitTimeSeconds: int = 0,
        **_: Any,
    ) -> dict[str, Any]:
        batch = self._receive(QueueUrl, MaxNumberOfMessages)
        if not batch and WaitTimeSeconds > 0:
            # A long poll: wait (virtually) until a message can be received or the poll ends.
            next_at = self._next_visible_at(QueueUrl)
            self.clock.sleep(min(float(WaitTimeSeconds), max(next_at - self.clock(), 0.0)))
            batch = self._receive(QueueUrl, MaxNumberOfMessages)
        return {"Messages": batch} if batch else {}

    def _next_visible_at(self, url: str) -> float:
        """When some group can next give a message: its first message is visible and none of it is in flight."""
        with self._lock:
            now = self.clock()
            ready: dict[str, float] = {}
            for message in self._queue(url).messages:
                in_flight = message.visible_at if message.receives and message.visible_at > now else 0.0
                ready[message.group] = max(ready.get(message.group, message.visible_at), in_flight)
            return min(ready.values(), default=float("inf"))

    def _receive(self, url: str, limit: int) -> list[dict[str, Any]]:
        with self._lock:
            queue = self._queue(url)
            now = self.clock()
            groups: dict[str, list[_Message]] = {}
            for message in queue.messages:
                groups.setdefault(message.group, []).append(message)
            batch: list[_Message] = []
            for messages in groups.values():
                if messages[0].visible_at > now or any(m.visible_at > now and m.receives for m in messages):
                    continue  # a group with a message in flight gives nothing
                for message in messages:
                    if len(batch) == limit:
                        break
                    if queue.max_receives is not None and message.receives >= queue.max_receives:
                        self._redrive(queue, message)
                        break  # the next message of the group waits for the next receive
                    batch.append(message)
                if len(batch) == limit:
                    break
            for message in batch:
                message.receives += 1
                message.first_received_at = message.first_received_at or now
                message.visible_at = now + queue.visibility_s
                message.receipt = f"{message.message_id}#{message.receives}"
            return [self._shape(m) for m in batch]

    def _redrive(self, queue: VirtualQueue, message: _Message) -> None:
        queue.messages.remove(message)
        queue.redriven += 1
        if queue.dead_letter_url:
            dead = self._queue(queue.dead_letter_url)
            dead.messages.append(message)
            dead.sent += 1

    @staticmethod
    def _shape(message: _Message) -> dict[str, Any]:
        return {
            "MessageId": message.message_id,
            "ReceiptHandle": message.receipt,
            "MD5OfBody": hashlib.md5(message.body.encode(), usedforsecurity=False).hexdigest(),
            "Body": message.body,
            "Attributes": {
                "ApproximateReceiveCount": str(message.receives),
                "ApproximateFirstReceiveTimestamp": str(int(message.first_received_at * 1000)),
                "SentTimestamp": str(int(message.sent_at * 1000)),
                "SenderId": "AIDABENCH",
                "MessageGroupId": message.group,
                "MessageDeduplicationId": message.dedup_id,
                "SequenceNumber": message.message_id.removeprefix("m-").zfill(20),
            },
            "MessageAttributes": message.attributes,
        }

    def _by_receipt(self, queue: VirtualQueue, receipt: str) -> _Message | None:
        return next((m for m in queue.messages if m.receipt == receipt), None)

    def delete_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        with self._lock:
            queue = self._queue(QueueUrl)
            for entry in Entries:
                message = self._by_receipt(queue, entry["ReceiptHandle"])
                if message is not None:
                    queue.messages.remove(message)
            return {"Successful": [{"Id": e["Id"]} for e in Entries], "Failed": []}

    def change_message_visibility(self, QueueUrl: str, ReceiptHandle: str, VisibilityTimeout: int) -> dict[str, Any]:
        with self._lock:
            self.visibility_changes.append(int(VisibilityTimeout))
            message = self._by_receipt(self._queue(QueueUrl), ReceiptHandle)
            if message is not None:
                message.visible_at = self.clock() + int(VisibilityTimeout)
            return {}


@contextmanager
def runtime_sqs(sqs: VirtualSqs) -> Iterator[None]:
    """Every SQS client `runtime` builds (workers' delays and dead letters, publishers) is `sqs` while this lasts."""
    from pos_ecom_sync import runtime

    original = runtime.aws_client

    def aws_client(service: str, config: Any = runtime.WORKER_AWS) -> Any:
        return sqs if service == "sqs" else original(service, config)

    runtime.aws_client = aws_client
    runtime.reset()
    try:
        yield
    finally:
        runtime.aws_client = original
        runtime.reset()


@dataclass
class WorkerRun:
    """What the event source saw while draining a queue."""

    invocations: int = 0
    records: int = 0
    failed_invocations: list[str] = field(default_factory=list)
    last_done_at: float = 0.0  # virtual time the last record was done with (the drain's end)


def drain_with_workers(
    clock: SharedClock,
    sqs: VirtualSqs,
    subscription: Any,
    spec: Any,
    workers: int,
    *,
    producers_done: Callable[[], bool] = lambda: True,
    others: tuple[Callable[[], None], ...] = (),
) -> WorkerRun:
    """Lambda's SQS event source with `workers` concurrent sandboxes (each its own loaded function, as Lambda keeps
    one module per sandbox), long-polling `subscription`'s queue until it is empty and `producers_done()`. `others`
    run alongside as participants of the clock too (producers: a shop changing stock, the poller's schedule)."""
    from local_stack.event_sources import SqsPoller
    from local_stack.functions import LocalFunction

    run = WorkerRun()
    lock = threading.Lock()
    errors: list[BaseException] = []

    def sandbox(n: int) -> None:
        def narrate(line: str) -> None:
            with lock:
                run.failed_invocations.append(line)

        function = LocalFunction(spec)
        original = function.invoke

        def counted(event: dict[str, Any], request_id: str | None = None) -> Any:
            with lock:
                run.invocations += 1
                run.records += len(event.get("Records", []))
            return original(event, request_id)

        function.invoke = counted  # type: ignore[method-assign]
        poller = SqsPoller(sqs, subscription, function, narrate)
        while True:
            if poller.poll_once(wait_seconds=20):
                with lock:
                    run.last_done_at = max(run.last_done_at, clock())
            elif producers_done() and not sqs.depth(subscription.queue_url):
                return

    def participate(target: Callable[[], None]) -> Callable[[], None]:
        def body() -> None:
            try:
                with clock.participant(enlisted=True):
                    target()
            except BaseException as exc:  # surfaced by the caller after join
                errors.append(exc)

        return body

    threads = [
        threading.Thread(target=participate(functools.partial(sandbox, n)), name=f"sandbox-{n}") for n in range(workers)
    ]
    threads += [threading.Thread(target=participate(other), name=f"producer-{i}") for i, other in enumerate(others)]
    clock.enlist(len(threads))  # all counted before any starts, so none can let time run ahead of the others
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return run
