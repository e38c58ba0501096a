"""Vendor reference data that rarely changes (POS registers and payment types, eCom shipping methods, brands and
categories), kept by a warm sandbox so a steady stream of records pays nothing for it.

Keys name the connection and the vendor account (e.g. "<connection>|<base url>|registers"). Each list remembers
when it was read: `get` reads it again past an age (`ttl_s` unless the caller names another), so it picks up what
the merchant changed meanwhile. `find` is for lists the sync creates rows in (brands, categories): a row found is
trusted for long, while a row missing from a list that is not brand new reads the list again first (the merchant
may have made it since, and creating it twice is the costly mistake).
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
        self._entries: dict[str, tuple[float, list[JsonObject]]] = {}  # key -> (read at, rows)
        self._kept: dict[str, Any] = {}

    @property
    def ttl_s(self) -> float:
        return self._ttl_s

    def now(self) -> float:
        return self._clock()

    def get(self, key: str, load: Callable[[], list[JsonObject]], max_age_s: float | None = None) -> list[JsonObject]:
        """The list under `key`, read (`load`) when it is not held or was read `max_age_s` ago or more (default
        `ttl_s`)."""
        now = self._clock()
        with self._lock:
            entry = self._entries.get(key)
        if entry is not None and now - entry[0] < (self._ttl_s if max_age_s is None else max_age_s):
            return entry[1]
        rows = load()
        with self._lock:
            self._entries[key] = (now, rows)
        return rows

    def find(
        self,
        key: str,
        load: Callable[[], list[JsonObject]],
        match: Callable[[JsonObject], bool],
        *,
        keep_s: float,
        recheck_s: float,
    ) -> JsonObject | None:
        """The first row of the list under `key` that `match` accepts (None: no such row). A list read less than
        `keep_s` ago answers for the rows it holds; when it lacks the row it is read again, unless it was read less
        than `recheck_s` ago."""
        for max_age_s in (keep_s, recheck_s):
            row = next((row for row in self.get(key, load, max_age_s) if match(row)), None)
            if row is not None:
                return row
        return None

    def add(self, key: str, row: JsonObject) -> None:
        """A row we just created on the vendor: the cached list shows it until it is next read."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries[key] = (entry[0], [*entry[1], row])

    def drop(self, key: str) -> None:
        """Forget the list under `key` (e.g. the vendor refused an id taken from it): the next use reads it."""
        with self._lock:
            self._entries.pop(key, None)

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
