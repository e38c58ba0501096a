"""R-Series initial import against the real leaky bucket, on a virtual clock.

What the POS side of a first sync costs: the poller walks the Item and ItemMatrix feeds from the beginning (pages of
100, `timeStamp >=`), and product_sync reads every family it queued (`profiles.rseries.catalog.RSeriesCatalog`: a
matrix with its variants and their relations, a simple item). The simulator's bucket (90 drips, 1 drip/s, every
request priced as the vendor prices it, relations included) and our client's budget share one virtual clock, so
hours of import run in about a minute; nothing sleeps for real.

Prints: requests, drips the simulator charged, the simulated duration against its lower bound (drips / drip rate:
the bucket cannot be emptied faster), the bucket's ceiling over that time (size + drip rate x duration), and 429s
(bucket and burst). `python -m tests.perf.bench_rseries_import [variants]` (default 70,000: 7,000 matrices x 10).
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from pos_ecom_sync.models.connection import Connection
from pos_ecom_sync.profiles.rseries.catalog import RSeriesCatalog
from pos_ecom_sync.profiles.rseries.client import RSeriesClient
from pos_ecom_sync.profiles.rseries.feeds import change_feeds
from pos_ecom_sync.ratelimit import InMemoryRateBudget

from local_stack.simulators.rseries import RSeriesSimulator

VARIANTS_PER_MATRIX = 10
CATALOG_FEEDS = ("pos:Item", "pos:ItemMatrix")
_EPOCH = datetime(2026, 12, 5, tzinfo=UTC)


class VirtualClock:
    """Seconds that pass only when someone waits: the simulator drips and our budget waits on the same time."""

    def __init__(self, start: float = 1_796_000_000.0) -> None:
        self.now = start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.now += max(seconds, 0.0)


@dataclass
class ImportRun:
    variants: int
    families: int
    requests: int
    drips: float
    simulated_s: float
    drip_rate: float
    bucket_size: float
    throttled_bucket: int
    throttled_burst: int
    feed_pages: int
    wall_s: float

    @property
    def lower_bound_s(self) -> float:
        return max(self.drips - self.bucket_size, 0.0) / self.drip_rate

    @property
    def ceiling(self) -> float:
        return self.bucket_size + self.drip_rate * self.simulated_s


def _family_keys(client: RSeriesClient, connection: Connection, pages: list[int]) -> Iterator[str]:
    """Every family key the poller's catalog feeds queue (the initial import's feed walk); counts pages in `pages`."""
    seen: set[str] = set()
    for feed in change_feeds(client, connection, page_size=100, family_of=lambda product_id: product_id):
        if feed.name not in CATALOG_FEEDS:
            continue
        cursor: str | None = None
        while True:
            page = feed.read(cursor)
            pages[0] += 1
            for message in feed.to_messages(page.rows, _EPOCH):
                key = message.group_key or message.entity_id
                if key not in seen:
                    seen.add(key)
                    yield key
            if page.cursor is not None:
                cursor = page.cursor
            if not page.more:
                break


def run(variants: int = 70_000) -> ImportRun:
    matrices = max(variants // VARIANTS_PER_MATRIX, 1)
    clock = VirtualClock()
    sim = RSeriesSimulator(clock=clock, expires_in=10**9, seed=7)
    sim.seed_catalog(matrices, VARIANTS_PER_MATRIX, 0, images=False, customers=0)
    url = sim.start()
    try:
        token = sim.issue_tokens()["access_token"]
        budget = InMemoryRateBudget(clock=clock, sleep=clock.sleep)
        client = RSeriesClient(
            url, budget, account_id=str(sim.account_id), token=token, clock=clock, sleep=clock.sleep, max_wait_s=3600
        )
        connection = Connection.model_validate(
            {"connection_id": "bench", "pos_profile": "r-series", "pos_base_url": url, "ecom_base_url": "http://ecom"}
        )
        catalog = RSeriesCatalog(client, connection)
        started_wall, started = time.perf_counter(), clock()
        families, pages = 0, [0]
        for key in _family_keys(client, connection, pages):
            families += catalog.read_family(key) is not None
        stats = sim.stats()
        return ImportRun(
            variants=matrices * VARIANTS_PER_MATRIX,
            families=families,
            requests=client.calls,
            drips=float(stats["drips_used"]),
            simulated_s=clock() - started,
            drip_rate=1.0,
            bucket_size=float(stats["bucket_size"]),
            throttled_bucket=int(stats["throttled_bucket"]),
            throttled_burst=int(stats["throttled_burst"]),
            feed_pages=pages[0],
            wall_s=time.perf_counter() - started_wall,
        )
    finally:
        sim.stop()


def main() -> None:
    variants = int(sys.argv[1]) if len(sys.argv) > 1 else 70_000
    result = run(variants)
    hours = result.simulated_s / 3600
    print(f"R-Series initial import of {result.variants:,} variants ({result.families:,} families), virtual clock:")
    print(f"  POS requests          {result.requests:,} ({result.feed_pages:,} feed pages)")
    print(f"  drips charged         {result.drips:,.1f} ({result.drips / max(result.families, 1):.2f} per family)")
    print(f"  simulated duration    {result.simulated_s:,.0f} s ({hours:.2f} h)")
    print(f"  lower bound           {result.lower_bound_s:,.0f} s (drips beyond one bucket / drip rate)")
    print(
        f"  bucket ceiling        {result.ceiling:,.0f} drips over that time (used {result.drips / result.ceiling:.1%})"
    )
    print(f"  429s                  {result.throttled_bucket} bucket, {result.throttled_burst} burst")
    print(f"  wall time             {result.wall_s:.1f} s")


if __name__ == "__main__":
    main()
