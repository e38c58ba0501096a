"""The burst benchmarks' virtual time (tests/perf/virtual_time.py, virtual_sqs.py): concurrent waits overlap instead
of adding up, and the virtual SQS FIFO queue keeps SQS's order and visibility rules, so the drain times they report
are what the rate limits allow."""

from __future__ import annotations

import threading
import time

from tests.perf.virtual_sqs import VirtualSqs
from tests.perf.virtual_time import SharedClock, virtual_defaults, windows_lower_bound_s

START = 1_000_000.0


def test_concurrent_sleeps_overlap_and_each_wakes_at_its_own_time() -> None:
    clock = SharedClock(START)
    woke: dict[str, float] = {}

    def sleeper(name: str, seconds: float) -> None:
        with clock.participant(enlisted=True):
            clock.sleep(seconds)
            woke[name] = clock()

    threads = [threading.Thread(target=sleeper, args=(n, s)) for n, s in (("long", 10.0), ("short", 5.0))]
    clock.enlist(len(threads))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=5)
    assert woke == {"short": START + 5, "long": START + 10}
    assert clock() == START + 10  # not 15: the waits ran side by side


def test_time_stands_still_while_a_participant_works() -> None:
    clock = SharedClock(START)
    seen: list[float] = []
    working = threading.Event()
    done = threading.Event()

    def worker() -> None:
        with clock.participant(enlisted=True):
            working.set()
            done.wait(timeout=5)  # real work that takes real time, no virtual sleep
            seen.append(clock())

    def sleeper() -> None:
        with clock.participant(enlisted=True):
            working.wait(timeout=5)
            clock.sleep(60)

    threads = [threading.Thread(target=worker), threading.Thread(target=sleeper)]
    clock.enlist(2)
    for thread in threads:
        thread.start()
    time.sleep(0.05)
    assert clock() == START  # the sleeper waits for the worker
    done.set()
    for thread in threads:
        thread.join(timeout=5)
    assert seen == [START] and clock() == START + 60


def test_virtual_defaults_rebind_the_sync_codes_real_time_defaults_and_put_them_back() -> None:
    from pos_ecom_sync.ratelimit import InMemoryRateBudget

    clock = SharedClock(START)
    with virtual_defaults(clock, clock.sleep) as rebound:
        budget = InMemoryRateBudget()
        assert rebound > 0 and budget._clock is clock and budget._sleep == clock.sleep
    assert InMemoryRateBudget()._clock is time.time


def _send(sqs: VirtualSqs, url: str, group: str, body: str) -> None:
    sqs.send_message_batch(
        QueueUrl=url,
        Entries=[{"Id": "0", "MessageBody": body, "MessageGroupId": group, "MessageDeduplicationId": body}],
    )


def _bodies(answer: dict[str, list[dict[str, str]]]) -> list[str]:
    return [m["Body"] for m in answer.get("Messages", [])]


def test_a_fifo_group_gives_nothing_while_one_of_its_messages_is_in_flight() -> None:
    clock = SharedClock(START)
    sqs = VirtualSqs(clock)
    url = "https://sqs/q.fifo"
    for body in ("a1", "a2", "b1"):
        _send(sqs, url, body[0], body)
    first = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1)
    assert _bodies(first) == ["a1"]
    other = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)
    assert _bodies(other) == ["b1"]  # not a2: a1 is in flight
    sqs.delete_message_batch(
        QueueUrl=url, Entries=[{"Id": "0", "ReceiptHandle": other["Messages"][0]["ReceiptHandle"]}]
    )
    receipt = first["Messages"][0]["ReceiptHandle"]
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=receipt, VisibilityTimeout=120)  # throttled: later
    clock.sleep(119)
    assert _bodies(sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)) == []
    clock.sleep(1)
    again = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)
    assert _bodies(again) == ["a1", "a2"]  # a batch is filled from one group first, in order
    assert again["Messages"][0]["Attributes"]["ApproximateReceiveCount"] == "2"


def test_a_long_poll_waits_virtually_for_the_next_visible_message() -> None:
    clock = SharedClock(START)
    sqs = VirtualSqs(clock)
    url = "https://sqs/q.fifo"
    _send(sqs, url, "g", "m")
    receipt = sqs.receive_message(QueueUrl=url)["Messages"][0]["ReceiptHandle"]
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=receipt, VisibilityTimeout=7)
    assert _bodies(sqs.receive_message(QueueUrl=url, WaitTimeSeconds=20)) == ["m"]
    assert clock() == START + 7


def test_a_resend_within_five_minutes_is_dropped_as_sqs_fifo_does() -> None:
    clock = SharedClock(START)
    sqs = VirtualSqs(clock)
    url = "https://sqs/q.fifo"
    _send(sqs, url, "g", "same")
    _send(sqs, url, "g", "same")
    assert sqs.depth(url) == 1
    clock.sleep(301)
    _send(sqs, url, "g", "same")
    assert sqs.depth(url) == 2


def test_the_lower_bound_is_the_last_window_a_call_must_wait_for() -> None:
    assert windows_lower_bound_s(350, [(350, 300.0)]) == (0.0, 0)  # one window holds them all
    assert windows_lower_bound_s(351, [(350, 300.0)]) == (300.0, 0)
    # eCom: 3,001 calls need the second hour, which binds over eleven 5-minute windows (3,300 s)
    assert windows_lower_bound_s(3001, [(300, 300.0), (3000, 3600.0), (20, 1.0)]) == (3600.0, 1)
