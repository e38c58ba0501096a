"""`make bench`: issue 18's figures in one table, before (the issue's measured baseline) -> after (measured now).

Run: `.venv/bin/python -m tests.perf.summary [--burst-orders 300] [--stock-changes 1500] ...` (`--help` for sizes).

Every "after" figure comes from a benchmark function's returned dict (`bench_orders.throughput` and `.burst`,
`bench_statuses.run`, `bench_catalog_import.run`, `bench_stock.stock_burst`, `bench_cold_start`'s layer build and
cold init), never from printed text; each module's CLI still prints the full detail. Stdout gets the sizes and
the table, progress goes to stderr, and whatever the benchmarks print while they run goes to
.local-stack/bench-summary.log. Each row says whether its goal is met, or why not with the measured lower bound.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TextIO

from tests.perf.offline import use_offline_aws

# `make unit` runs in the environment `make bench` was started with, not in the benchmarks' (moto credentials,
# Powertools metrics off, the bench stack's table and queues).
STARTED_ENV = dict(os.environ)
use_offline_aws("CRITICAL")

from tests.perf.summary_table import REPO, read_make_test, render, rows

LOG = REPO / ".local-stack" / "bench-summary.log"

# -- measuring (each returns what a benchmark function returned) -------------------------------------------------


def measure_throughput(orders: int) -> dict[str, Any]:
    from moto import mock_aws

    from tests.perf import bench_orders

    with mock_aws(), bench_orders.dynamodb_one_call_at_a_time(), bench_orders.limits_off():
        return bench_orders.throughput(orders)


def measure_statuses(orders: int) -> dict[str, Any]:
    from moto import mock_aws

    from tests.perf import bench_orders, bench_statuses

    with mock_aws(), bench_orders.dynamodb_one_call_at_a_time(), bench_orders.limits_off():
        return bench_statuses.run(orders)


def measure_order_burst(orders: int) -> dict[str, Any]:
    from moto import mock_aws

    from tests.perf import bench_orders

    with mock_aws(), bench_orders.dynamodb_one_call_at_a_time():
        return bench_orders.burst(orders)


def measure_stock_burst(changes: int, families: int, spread_s: float) -> dict[str, Any]:
    from moto import mock_aws

    from tests.perf import bench_orders, bench_stock

    with mock_aws(), bench_orders.dynamodb_one_call_at_a_time():
        return bench_stock.stock_burst(changes, families, spread_s)


def measure_catalog(sizes: list[int]) -> list[dict[str, Any]]:
    from tests.perf import bench_catalog_import

    return [bench_catalog_import.run(families, second_pass=False) for families in sizes]


def measure_cold_start(runs: int) -> dict[str, Any]:
    """Median cold init (wall ms) per function on the layer built with its bytecode, as bench_cold_start measures
    it (its `cold_init_ms` answers the median and the least CPU of one whole start, or every start's time), and the
    CPU figure when it gives one (shared cores inflate it less), and each function's floor in the same run: the
    median start that only imports the third-party modules its cold init loads and builds the same boto3 clients
    (`floor_ms`), which no change to our code goes under on this machine as it is now."""
    from tests.perf.bench_cold_start import build_layers, cold_init_ms, floor_ms
    from tests.perf.bench_intake import FUNCTIONS

    with tempfile.TemporaryDirectory(prefix="cold-start-") as tmp:
        _, compiled = build_layers(Path(tmp))
        walls, cpus, floors = {}, {}, {}
        for function in FUNCTIONS:
            measured = cold_init_ms(function, compiled, runs)
            if isinstance(measured, tuple):
                walls[function], cpus[function] = float(measured[0]), float(measured[1])
            else:
                walls[function] = float(statistics.median(measured))
            floors[function] = float(floor_ms(function, compiled, runs)[0])
        return {"wall_ms": walls, "cpu_ms": cpus, "floor_ms": floors}


def measure_make_unit() -> dict[str, Any]:
    """`make unit`, timed in a subprocess (its venv stamp taken as up to date: a bench never reinstalls the venv)."""
    started = time.perf_counter()
    done = subprocess.run(
        ["make", "--no-print-directory", "-s", "-o", ".venv/.installed", "unit"],
        cwd=REPO,
        env=STARTED_ENV,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - started
    print(done.stdout[-20_000:], done.stderr[-5_000:], sep="\n")  # into the log (see `_into`)
    tail = [line for line in done.stdout.strip().splitlines() if line.strip()]
    return {"seconds": seconds, "returncode": done.returncode, "outcome": tail[-1].strip("= ") if tail else "no output"}


@contextlib.contextmanager
def _into(log: TextIO) -> Iterator[None]:
    """What runs meanwhile prints (and warns) into the log, not on the summary's stdout or stderr."""
    with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        yield


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.perf.summary", description=__doc__.split("\n")[0])
    parser.add_argument("--orders", type=int, default=200, help="orders through the warm order_import handler")
    parser.add_argument("--status-changes", type=int, default=30, help="status changes (6 kinds, cycled)")
    parser.add_argument("--catalog-families", default="500,1000", help="two import sizes (x 5 variants)")
    parser.add_argument("--cold-runs", type=int, default=3, help="cold starts per function (median)")
    # The bursts are 1,000 orders and 5,000 stock changes (`--burst-orders 1000 --stock-changes 5000
    # --stock-families 700 --stock-spread-s 600`): each takes minutes of CPU on moto, so `make bench` runs smaller ones.
    parser.add_argument("--burst-orders", type=int, default=300)
    parser.add_argument("--stock-changes", type=int, default=1500)
    parser.add_argument("--stock-families", type=int, default=210, help="x 3 variants, at 3 outlets")
    parser.add_argument("--stock-spread-s", type=float, default=300.0, help="simulated seconds the changes span")
    parser.add_argument("--skip", default="", help="comma-separated: throughput,statuses,catalog,cold,bursts,unit")
    args = parser.parse_args(argv)
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    families = [int(n) for n in args.catalog_families.split(",")]

    steps: list[tuple[str, str, str, Callable[[], Any]]] = [
        ("throughput", "throughput", f"{args.orders} orders through one warm order_import handler, limits off",
         lambda: measure_throughput(args.orders)),
        ("statuses", "statuses", f"{args.status_changes} status changes through webhooks, limits off",
         lambda: measure_statuses(args.status_changes)),
        ("catalog", "catalog", "catalog import of " + " and ".join(f"{n * 5:,}" for n in families) + " variants",
         lambda: measure_catalog(families)),
        ("cold", "cold_start", f"cold init, median of {args.cold_runs} per function",
         lambda: measure_cold_start(args.cold_runs)),
        ("bursts", "order_burst", f"{args.burst_orders:,}-order burst on a virtual clock",
         lambda: measure_order_burst(args.burst_orders)),
        ("bursts", "stock_burst", f"{args.stock_changes:,} stock changes ({args.stock_families * 3:,} variants, "
         f"{args.stock_spread_s / 60:g} min) on a virtual clock",
         lambda: measure_stock_burst(args.stock_changes, args.stock_families, args.stock_spread_s)),
        ("unit", "make_unit", "make unit", measure_make_unit),
    ]  # fmt: skip
    figures: dict[str, Any] = {"make_test": read_make_test()}
    LOG.parent.mkdir(exist_ok=True)
    started = time.perf_counter()
    progress = sys.stderr
    with LOG.open("w") as log:
        for group, key, what, measure in steps:
            if group in skip:
                continue
            print(f"measuring {what} ...", file=progress, flush=True)
            began = time.perf_counter()
            try:
                with _into(log):
                    figures[key] = measure()
            except (Exception, SystemExit) as exc:  # a failing benchmark leaves its rows "not measured", not the table
                print(f"  failed: {type(exc).__name__}: {exc} (see {LOG})", file=progress)
                import traceback

                traceback.print_exc(file=log)
            print(f"  {time.perf_counter() - began:.0f} s", file=progress, flush=True)
    catalog = " and ".join(f"{n * 5:,}" for n in families)
    load = ", ".join(f"{n:.1f}" for n in os.getloadavg())
    header = (
        f"issue 18 figures: python {sys.version.split()[0]} on {os.cpu_count()} cores (load average at the end "
        f"{load}: wall times grow with it), {time.perf_counter() - started:.0f} s in all. Sizes: order throughput "
        f"{args.orders} orders; status changes {args.status_changes}; catalog import {catalog} variants "
        "(70,000: `-m tests.perf.bench_catalog_import`); "
        f"cold init median of {args.cold_runs}; bursts of {args.burst_orders:,} orders and {args.stock_changes:,} "
        f"stock changes on {args.stock_families * 3:,} variants, virtual clock (the issue's 1,000 and 5,000: "
        "`--burst-orders 1000 --stock-changes 5000 --stock-families 700 --stock-spread-s 600`). "
        f"Benchmark output: {LOG.relative_to(REPO)}."
    )
    print(textwrap.fill(header, 150))
    print(render(rows(figures)))


if __name__ == "__main__":
    main()
