"""Virtual time for benchmarks whose workers run concurrently: hours of rate-limited traffic in minutes of CPU.

The single-threaded clocks of bench_catalog_import and bench_rseries_import move time forward at every `sleep`,
which is right for one worker; with several worker threads, one worker's wait would make time pass for the others
while they work. `SharedClock` is a discrete-event clock for threads: time stands still while any participant
works, and jumps to the earliest wake-up once every participant sleeps.

`virtual_defaults` points the sync code at such a clock without a hook in it: every `time.time`, `time.monotonic`
or `time.sleep` default argument of a `pos_ecom_sync` function or method (clients, budgets, stores, workers,
caches) is rebound while the context lasts, so the services `runtime` builds wait and stamp on virtual time.
"""

from __future__ import annotations

import heapq
import importlib
import inspect
import itertools
import math
import pkgutil
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


class SharedClock:
    """Virtual epoch seconds shared by threads.

    Threads that do the work being timed enter `participant()`. Time never moves while a participant runs; when every
    participant sleeps, it jumps to the earliest wake-up and wakes whoever was due. Any other thread's `sleep` counts
    as a participant's for its duration (setup code, before the participants start, just moves time on).
    Deadlock-free as long as participants block only on this clock or on work that finishes without it.
    """

    def __init__(self, start: float) -> None:
        self.now = start
        self._cond = threading.Condition()
        self._running = 0
        self._sleepers: list[list[Any]] = []  # heap of [wake at, sequence, woken]
        self._sequence = itertools.count()
        self._local = threading.local()
        self.advances = 0  # how often time jumped (diagnostics)

    def __call__(self) -> float:
        return self.now

    def enlist(self, count: int) -> None:
        """Count `count` participants as running before their threads start (each then enters
        `participant(enlisted=True)`), so the first to sleep cannot move time before the others have begun."""
        with self._cond:
            self._running += count

    @contextmanager
    def participant(self, *, enlisted: bool = False) -> Iterator[None]:
        if not enlisted:
            with self._cond:
                self._running += 1
        self._local.participant = True
        try:
            yield
        finally:
            self._local.participant = False
            with self._cond:
                self._running -= 1
                self._advance()

    def sleep(self, seconds: float) -> None:
        participant = getattr(self._local, "participant", False)
        with self._cond:
            if not participant:
                self._running += 1
            sleeper = [self.now + max(float(seconds), 0.0), next(self._sequence), False]
            heapq.heappush(self._sleepers, sleeper)
            self._running -= 1
            self._advance()
            while not sleeper[2]:
                self._cond.wait()
            if not participant:
                self._running -= 1
                self._advance()

    def _advance(self) -> None:
        """With the lock held: when nobody runs, move to the earliest wake-up and count the woken as running (before
        they get the lock back, so nobody else can move time past them)."""
        if self._running > 0 or not self._sleepers:
            return
        self.now = max(self.now, self._sleepers[0][0])
        self.advances += 1
        while self._sleepers and self._sleepers[0][0] <= self.now:
            heapq.heappop(self._sleepers)[2] = True
            self._running += 1
        self._cond.notify_all()


_REAL = {"time": time.time, "monotonic": time.monotonic, "sleep": time.sleep}


def _sync_modules() -> list[Any]:
    import pos_ecom_sync

    for found in pkgutil.walk_packages(pos_ecom_sync.__path__, "pos_ecom_sync."):
        importlib.import_module(found.name)
    return [m for name, m in list(sys.modules.items()) if name.startswith("pos_ecom_sync") and m is not None]


def _functions_of(module: Any) -> Iterator[Any]:
    for value in vars(module).values():
        owner = getattr(value, "__module__", None)
        if owner != module.__name__:
            continue
        if inspect.isclass(value):
            for member in vars(value).values():
                member = getattr(member, "__func__", member)  # staticmethod, classmethod
                if inspect.isfunction(member):
                    yield member
        elif inspect.isfunction(value):
            yield inspect.unwrap(value)


@contextmanager
def virtual_defaults(clock: Callable[[], float], sleep: Callable[[float], None]) -> Iterator[int]:
    """Rebind the real-time defaults of the sync code to `clock` and `sleep` while the context lasts; yields how many
    functions were rebound. Build the services inside the context (`runtime.reset()` first): a default is read when
    the service is constructed."""

    def swap(value: Any) -> Any:
        if value is _REAL["time"] or value is _REAL["monotonic"]:
            return clock
        if value is _REAL["sleep"]:
            return sleep
        return value

    saved: list[tuple[Any, Any, Any]] = []
    for module in _sync_modules():
        for function in _functions_of(module):
            if function.__defaults__ and any(swap(v) is not v for v in function.__defaults__):
                saved.append((function, "__defaults__", function.__defaults__))
                function.__defaults__ = tuple(swap(v) for v in function.__defaults__)
            if function.__kwdefaults__ and any(swap(v) is not v for v in function.__kwdefaults__.values()):
                saved.append((function, "__kwdefaults__", function.__kwdefaults__))
                function.__kwdefaults__ = {k: swap(v) for k, v in function.__kwdefaults__.items()}
    try:
        yield len(saved)
    finally:
        for function, name, value in saved:
            setattr(function, name, value)


def windows_lower_bound_s(calls: int, windows: list[tuple[int, float]]) -> tuple[float, int]:
    """The shortest time `calls` requests can take under fixed windows of (limit, length_s), each opened by the first
    request after the previous one ended: the last request cannot be sent before floor((calls - 1) / limit) windows
    have passed. Returns (seconds, index of the binding window)."""
    bounds = [((calls - 1) // limit) * length if calls > 0 else 0.0 for limit, length in windows]
    binding = max(range(len(bounds)), key=lambda i: (bounds[i], -i)) if bounds else 0
    return (float(bounds[binding]) if bounds else 0.0), binding


def fmt_minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if math.isfinite(seconds) else "n/a"
