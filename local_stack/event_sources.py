"""Event source mappings (SQS -> function) and schedules (timer -> function), as Lambda runs them.

SQS: receive up to BatchSize, invoke, delete what succeeded; with ReportBatchItemFailures only the
listed records stay on the queue (they come back after the visibility timeout, and moto moves them
to the DLQ once maxReceiveCount is exceeded). A handler that raises fails the whole batch.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from local_stack.functions import LocalFunction
from local_stack.lambda_events import scheduled_event, sqs_event
from local_stack.provision import QueueSubscription, ScheduleSpec

Narrate = Callable[[str], None]


class SqsPoller:
    def __init__(self, sqs: Any, subscription: QueueSubscription, function: LocalFunction, narrate: Narrate) -> None:
        self.sqs = sqs
        self.subscription = subscription
        self.function = function
        self.narrate = narrate
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"sqs-{function.spec.logical_id}", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()

    def _run(self) -> None:
        while not self.stopping.is_set():
            try:
                self.poll_once(wait_seconds=1)
            except Exception as exc:  # keep the mapping alive, as Lambda's poller does
                self.narrate(f"! {self.function.spec.logical_id}: event source error {exc!r}")
                self.stopping.wait(1)

    def poll_once(self, wait_seconds: int = 0) -> int:
        sub = self.subscription
        messages = self.sqs.receive_message(
            QueueUrl=sub.queue_url,
            MaxNumberOfMessages=min(sub.batch_size, 10),
            WaitTimeSeconds=wait_seconds,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            return 0
        try:
            result = self.function.invoke(sqs_event(messages, sub.queue_arn))
            failed = {f["itemIdentifier"] for f in (result or {}).get("batchItemFailures", [])}
        except Exception as exc:
            self.narrate(_batch_failure(self.function.spec.logical_id, len(messages), exc))
            return 0
        if not sub.report_batch_item_failures and failed:
            return 0
        done = [m for m in messages if m["MessageId"] not in failed]
        if done:
            self.sqs.delete_message_batch(
                QueueUrl=sub.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
            )
        if failed:
            self.narrate(
                f"! {self.function.spec.logical_id}: {len(failed)} of {len(messages)} records failed, retried later"
            )
        return len(done)


class ScheduleTimer:
    def __init__(self, schedule: ScheduleSpec, function: LocalFunction, every_s: float, narrate: Narrate) -> None:
        self.schedule = schedule
        self.function = function
        self.every_s = every_s
        self.narrate = narrate
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"schedule-{function.spec.logical_id}", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()

    def fire(self) -> Any:
        return self.function.invoke(scheduled_event(f"{self.function.spec.logical_id}-schedule"))

    def _run(self) -> None:
        while not self.stopping.wait(self.every_s):
            started = time.monotonic()
            try:
                result = self.fire()
            except Exception as exc:
                self.narrate(f"! {self.function.spec.logical_id} schedule run failed: {exc!r}")
                continue
            queued = (result or {}).get("queued")
            if queued:
                took = time.monotonic() - started
                self.narrate(f"poll: {self.function.spec.logical_id} queued {queued} change(s) in {took:.1f}s")


def _batch_failure(function: str, size: int, exc: Exception) -> str:
    """One line for a failed invocation (Lambda then retries the whole batch), naming the error that failed it:
    workers fail an invocation only when some record failed for a reason other than waiting on a budget or lease,
    so a throttled neighbour is passed over (and the tracebacks Powertools attaches are left out)."""
    from pos_ecom_sync.errors import RetryLater

    children = getattr(exc, "child_exceptions", None) or []
    errors = [child[1] for child in children if isinstance(child, tuple) and len(child) > 1]
    first = next((e for e in errors if not isinstance(e, RetryLater)), errors[0] if errors else exc)
    return f"! {function} failed a batch of {size}: {type(first).__name__}: {first}"
