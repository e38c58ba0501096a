"""Benchmark: what a merchant's eCom price edit costs an R-Series connection (seed 000: it becomes the item's Online
price). Run: `.venv/bin/python -m tests.perf.bench_rseries_edits [edits]` (default 20; prints figures, asserts
nothing).

In process: the R-Series and eCom simulators (no rate limit), moto's DynamoDB with the template's SyncTable, the real
`CatalogSync` with the R-Series catalog. A small catalog is synced first; then each of `edits` price edits in eCom's
back office is taken by `CatalogSync.take_ecom_edits` (what product_sync does with the eCom variant webhook's
products copy), followed by the two echoes: the R-Series Item feed's (a family sync of the edited family) and eCom's
webhook of the same variant again. Figures per edit: POS requests (reads and writes), eCom requests, DynamoDB
requests, for the edit and for each echo (an echo should cost reads only and write nothing).
"""

from __future__ import annotations

import contextlib
import io
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
from moto import mock_aws
from pos_ecom_sync.catalog.sync import CatalogSync
from pos_ecom_sync.connectors.ecom import EcomClient
from pos_ecom_sync.models.connection import Connection
from pos_ecom_sync.profiles.rseries.catalog import RSeriesCatalog
from pos_ecom_sync.profiles.rseries.client import RSeriesClient
from pos_ecom_sync.ratelimit import InMemoryRateBudget
from pos_ecom_sync.state.store import SyncStore

from local_stack.provision import provision_tables
from local_stack.simulators.ecom import EcomSimulator
from local_stack.simulators.rseries import RSeriesSimulator
from tests.perf.bench_rseries_import import VirtualClock

KEY, SECRET = "bench-key", "bench-secret"


@dataclass
class Costs:
    pos: list[int] = field(default_factory=list)
    pos_writes: list[int] = field(default_factory=list)
    ecom: list[int] = field(default_factory=list)
    ecom_writes: list[int] = field(default_factory=list)
    dynamodb: list[int] = field(default_factory=list)

    def line(self, what: str) -> str:
        n = max(len(self.pos), 1)

        def avg(values: list[int]) -> str:
            return f"{sum(values) / n:.2f}"

        return (
            f"  {what:<28} POS {avg(self.pos)} ({avg(self.pos_writes)} writes), eCom {avg(self.ecom)} "
            f"({avg(self.ecom_writes)} writes), DynamoDB {avg(self.dynamodb)}"
        )


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        yield


class Meter:
    """Counts requests: the clients' own counters, the simulators' writes, DynamoDB calls through boto3's events."""

    def __init__(self, pos: RSeriesClient, ecom: EcomClient, pos_sim: Any, ecom_sim: Any, store: SyncStore) -> None:
        self.pos, self.ecom, self.pos_sim, self.ecom_sim = pos, ecom, pos_sim, ecom_sim
        self.dynamodb = 0

        def count(**_: Any) -> None:
            self.dynamodb += 1

        store._table.meta.client.meta.events.register("before-call.dynamodb", count)

    def snapshot(self) -> tuple[int, int, int, int, int]:
        return (
            self.pos.calls,
            self.pos_sim.stats()["writes"],
            self.ecom.calls,
            self.ecom_sim.stats()["writes"],
            self.dynamodb,
        )

    def add(self, costs: Costs, before: tuple[int, ...]) -> None:
        after = self.snapshot()
        for values, a, b in zip(
            (costs.pos, costs.pos_writes, costs.ecom, costs.ecom_writes, costs.dynamodb), after, before, strict=True
        ):
            values.append(a - b)


def run(edits: int = 20) -> dict[str, Costs]:
    costs = {"edit": Costs(), "R-Series feed echo": Costs(), "eCom webhook echo": Costs()}
    with mock_aws():
        table = provision_tables(boto3.Session(region_name="us-east-1"), stack_name="bench").refs["SyncTable"]
        store = SyncStore(table, resource=boto3.resource("dynamodb", region_name="us-east-1"))
        pos_sim = RSeriesSimulator(seed=3, rate_limit=False, online_price_level_id=5)
        ecom_sim = EcomSimulator(api_key=KEY, api_secret=SECRET, webhook_secret="w", seed=3)
        pos_sim.seed_catalog(matrices=4, variants_per_matrix=5, simple_items=0, images=False, seed=3)
        pos_url, ecom_url = pos_sim.start(), ecom_sim.start()
        try:
            clock = VirtualClock()  # our client's bucket drips on virtual time: nothing sleeps for real
            pos = RSeriesClient(
                pos_url,
                InMemoryRateBudget(clock=clock, sleep=clock.sleep),
                account_id=str(pos_sim.account_id),
                token=pos_sim.issue_tokens()["access_token"],
                clock=clock,
                sleep=clock.sleep,
                max_wait_s=3600,
            )
            ecom = EcomClient(ecom_url, KEY, SECRET, InMemoryRateBudget())
            connection = Connection.model_validate(
                {
                    "connection_id": "bench",
                    "pos_profile": "r-series",
                    "pos_base_url": pos_url,
                    "ecom_base_url": ecom_url,
                }
            )
            sync = CatalogSync(connection, RSeriesCatalog(pos, connection), ecom, store)
            items = [item for item in pos_sim.items() if item["itemMatrixID"] != "0"]
            with quiet():
                for key in sorted({f"m{item['itemMatrixID']}" for item in items}):
                    sync.sync(key)
            meter = Meter(pos, ecom, pos_sim, ecom_sim, store)
            for n in range(edits):
                item = items[n % len(items)]
                key = f"m{item['itemMatrixID']}"
                link = store.variant_link("bench", pos_product_id=item["itemID"])
                assert link is not None
                ecom_sim.edit_variant(link.ecom_variant_id, priceExcl=round(10 + n * 1.25, 2))
                with quiet():
                    before = meter.snapshot()
                    sync.take_ecom_edits("variant", link.ecom_variant_id)
                    meter.add(costs["edit"], before)
                    before = meter.snapshot()
                    sync.sync(key)  # the Item feed's echo of our PUT
                    meter.add(costs["R-Series feed echo"], before)
                    before = meter.snapshot()
                    sync.take_ecom_edits("variant", link.ecom_variant_id)  # eCom's webhook again
                    meter.add(costs["eCom webhook echo"], before)
        finally:
            pos_sim.stop()
            ecom_sim.stop()
    return costs


def main() -> None:
    edits = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    costs = run(edits)
    print(f"R-Series: {edits} eCom price edits -> Online price, requests per edit (average):")
    for what, figures in costs.items():
        print(figures.line(what))


if __name__ == "__main__":
    main()
