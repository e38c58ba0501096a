"""Benchmark: R-Series stock latency, poll only. Run: `.venv/bin/python -m tests.perf.bench_rseries` (prints
figures; asserts nothing). Options: `--changes N` (default 20), `--interval S` (default: the local stack's poll
period, `LOCAL_SCHEDULE_SECONDS` or 20 s).

R-Series has no webhooks: a qoh change reaches eCom only when the change poller's schedule next runs. This starts the
local stack of `make run RUN_ARGS="--pos r-series"` in this process (moto server, R-Series and eCom simulators, the
template's queues and functions, the poller on its timer) and, once the catalog is in eCom, makes `--changes` qoh
changes at random moments (never two in flight on one item), each timed from `set_qoh` to the eCom variant showing
the new total. Figures: end to end (the wait for the next poll, uniform over the interval, dominates), and the part
after the poll that found the change started (poll run + stock queue + worker's item read + eCom write).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import random
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from pos_ecom_sync.state.store import SyncStore

from local_stack.demo import DEMO_CONNECTION_ID
from local_stack.rseries_stack import RSeriesLocalStack
from local_stack.stack import StackConfig
from tests.support import free_port

SHOPS = ("1", "2")


def pct(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def seconds(values: Sequence[float]) -> str:
    if not values:
        return "no samples"
    return f"p50 {pct(values, 0.5):.2f} s, p95 {pct(values, 0.95):.2f} s, max {max(values):.2f} s"


@dataclass
class Figures:
    interval: float
    end_to_end: list[float] = field(default_factory=list)
    after_poll: list[float] = field(default_factory=list)
    import_s: float = 0.0
    polls: int = 0


@contextlib.contextmanager
def quiet() -> Iterator[io.StringIO]:
    """The stack's narration and function logs, kept out of the figures (shown only when something fails)."""
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        yield sink


def _record_poll_starts(stack: RSeriesLocalStack) -> list[float]:
    """The start of every change-poller run (its schedule timer invokes the function)."""
    starts: list[float] = []
    function = stack.functions["ChangePollerFunction"]
    invoke = function.invoke

    def timed(event: dict[str, Any]) -> Any:
        starts.append(time.monotonic())
        return invoke(event)

    function.invoke = timed  # type: ignore[method-assign]
    return starts


def _ecom_levels(stack: RSeriesLocalStack, variant_of: dict[int, int]) -> dict[int, int | None]:
    assert stack.ecom is not None
    online = {int(v["id"]): v.get("stockLevel") for v in stack.ecom.variants()}
    return {item: online.get(variant) for item, variant in variant_of.items()}


def stack_link(stack: RSeriesLocalStack, item: int) -> int:
    """The eCom variant product sync linked to the item."""
    store = SyncStore(os.environ["TABLE_NAME"], resource=stack.session.resource("dynamodb"))
    link = store.variant_link(DEMO_CONNECTION_ID, pos_product_id=str(item))
    assert link is not None
    return link.ecom_variant_id


def run(changes: int, interval: float, seed: int = 7) -> Figures:
    config = StackConfig(
        api_port=free_port(),
        pos_port=free_port(),
        ecom_port=free_port(),
        moto_port=free_port(),
        lambda_port=free_port(),
        schedule_seconds=interval,
        families=4,
        variants_per_family=3,
        run_demo=False,
        stack_name="bench-rseries",
    )
    stack = RSeriesLocalStack(config)
    figures = Figures(interval)
    rng = random.Random(seed)
    try:
        stack.start()
        assert stack.rseries is not None
        sim = stack.rseries
        polls = _record_poll_starts(stack)
        started = time.monotonic()
        items = [int(i["itemID"]) for i in stack.stocked_items()]
        deadline = started + 10 * interval + 120
        while not all(stack.ecom_level(i) == stack.pos_total(i, list(SHOPS)) for i in items):
            if time.monotonic() > deadline:
                raise TimeoutError("the R-Series catalog never reached eCom")
            time.sleep(0.5)
        figures.import_s = time.monotonic() - started
        variant_of = {item: stack_link(stack, item) for item in items}
        in_flight: dict[int, tuple[int, float]] = {}  # item -> (eCom level wanted, monotonic time of the change)
        lock = threading.Lock()
        done = threading.Event()

        def watch() -> None:
            while not done.is_set():
                with lock:
                    pending = dict(in_flight)
                if pending:
                    levels = _ecom_levels(stack, {i: variant_of[i] for i in pending})
                    now = time.monotonic()
                    for item, (wanted, at) in pending.items():
                        if levels[item] == wanted:
                            figures.end_to_end.append(now - at)
                            found_by = [p for p in polls if p >= at]
                            if found_by and found_by[0] <= now:
                                figures.after_poll.append(now - found_by[0])
                            with lock:
                                del in_flight[item]
                time.sleep(0.05)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        for _ in range(changes):
            time.sleep(rng.uniform(0.1, 0.5) * interval)
            with lock:
                free = [i for i in items if i not in in_flight]
            item, shop = rng.choice(free), rng.choice(SHOPS)
            sim.set_qoh(item, int(shop), max(0, sim.qoh(item, int(shop))) + rng.randint(1, 9))
            with lock:
                in_flight[item] = (stack.pos_total(item, list(SHOPS)), time.monotonic())
        end = time.monotonic() + 2 * interval + 60
        while in_flight and time.monotonic() < end:
            time.sleep(0.2)
        done.set()
        watcher.join(timeout=5)
        figures.polls = len(polls)
        if in_flight:
            raise TimeoutError(f"{len(in_flight)} change(s) never reached eCom")
    finally:
        stack.stop()
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.perf.bench_rseries", description=__doc__)
    parser.add_argument("--changes", type=int, default=20)
    parser.add_argument("--interval", type=float, default=StackConfig().schedule_seconds)
    args = parser.parse_args(argv)
    with quiet() as log:
        try:
            figures = run(args.changes, args.interval)
        except Exception:
            print(log.getvalue()[-6000:], flush=True)
            raise
    print(f"R-Series stock, poll only (no webhooks), local stack polling every {figures.interval:g} s")
    print(f"  catalog import to eCom with stock: {figures.import_s:.1f} s ({figures.polls} polls in the whole run)")
    print(f"  qoh change -> eCom stockLevel, {len(figures.end_to_end)} changes: {seconds(figures.end_to_end)}")
    print(f"    after the poll that found it started (poll + queue + worker): {seconds(figures.after_poll)}")
    print(f"    the wait for the next poll is uniform over the interval: mean {figures.interval / 2:g} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
