"""Vendor reference data that rarely changes (POS registers and payment types, eCom shipping methods, brands and
categories), kept by a warm sandbox for `ttl_s` so a steady stream of records pays nothing for it.

Keys name the connection and the vendor account (e.g. "<connection>|<base url>|registers"); past the TTL a list is
read again and picks up what the merchant changed meanwhile.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

JsonObject = dict[str, Any]
T = TypeVar("T")


class ReferenceCache:
    def __init__(self, ttl_s: float = 300.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl_s = ttl_s
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[float, list[JsonObject]]] = {}
        self._kept: dict[str, Any] = {}

    @property
    def ttl_s(self) -> float:
        return self._ttl_s

    def now(self) -> float:
        return self._clock()

    def get(self, key: str, load: Callable[[], list[JsonObject]]) -> list[JsonObject]:
        now = self._clock()
        with self._lock:
            entry = self._entries.get(key)
        if entry is not None and entry[0] > now:
            return entry[1]
        rows = load()
        with self._lock:
            self._entries[key] = (now + self._ttl_s, rows)
        return rows

    def add(self, key: str, row: JsonObject) -> None:
        """A row we just created on the vendor: the cached list shows it until it is next read."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries[key] = (entry[0], [*entry[1], row])

    def keep(self, key: str, make: Callable[[], T]) -> T:
        """An object kept for the sandbox's life under `key` (made on first use), that sees to its own freshness
        (e.g. `catalog.census.SkuCensus`, read as it goes). `make` must always make the same type for a key."""
        with self._lock:
            if key not in self._kept:
                self._kept[key] = make()
            kept: T = self._kept[key]
            return kept

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._kept.clear()
