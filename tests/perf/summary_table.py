"""The summary table of issue 18's figures: the baseline, the goals, and the verdict on each measured figure.

Pure (no benchmark runs here, nothing imported that changes the environment), so a unit test checks the verdicts:
tests/unit/test_bench_summary.py. `tests.perf.summary` measures and prints.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
# Written by the lead's `make test` run when it has one: its wall time (seconds, or any text shown as is).
MAKE_TEST_DURATION = REPO / ".local-stack" / "last-test-duration.txt"

# The table ("Measured today", `make bench` on 2 cores, python 3.13): the before column.
BASELINE = {
    "pos_per_order": "3.84 (1.64 inventory reads for routing, 1.00 customer search, 1.00 sale, 0.20 customer create)",
    "aws_per_order": "16.1 (7.84 UpdateItem, 5.64 GetItem)",
    "status_calls": "7.5 (1.00 write; the echo of our own write settled by reads)",
    "catalog_per_variant": "2.25 (70,000 variants)",
    "cold_init": "488-632 ms, 6 of 7 over 500 ms",
    "per_record": "a new httpx.Client and a new rate budget (an extra consistent GetItem) for every record",
    "order_burst": "not measured",
    "stock_burst": "not measured",
    "make_unit": "not measured",
    "make_test": "9 min 15 s (pytest 8 min 13 s for 621 tests)",
}
GOALS = {
    "pos_per_order": 1.4,
    "aws_per_order": 8.0,
    "status_calls": 3.0,
    "catalog_per_variant": 2.05,
    "cold_init_ms": 350.0,
    "make_unit_s": 30.0,
    "make_test_s": 300.0,
}
CORES = 2  # the machine the goals are set for
VENDOR_APIS = 2  # an order worker calls the POS and eCom: one client and one budget each


def read_make_test(path: Path = MAKE_TEST_DURATION) -> dict[str, Any] | None:
    """The lead's last `make test` wall time, if its run left one: seconds when the file holds a number."""
    if not path.exists():
        return None
    text = path.read_text().strip()
    cpu = re.search(r"cpu (\d+(?:\.\d+)?) s", text)
    try:
        return {"seconds": float(text.split()[0]), "text": text, "cpu_s": float(cpu.group(1)) if cpu else None}
    except (ValueError, IndexError):
        return {"seconds": None, "text": text, "cpu_s": None}


@dataclass(frozen=True)
class Row:
    figure: str
    before: str
    after: str
    goal: str
    verdict: str


# -- goal evaluation (pure: tests/unit/test_bench_summary.py) ------------------------------------------------------


def at_most(
    value: float | None, goal: float, *, floor: float | None = None, floor_text: str = "", gap: str = ""
) -> str:
    """The verdict on a figure whose goal is `value <= goal`: "met"; "cannot be met" when the measured lower bound
    `floor` is itself above the goal; else "not met", with the lower bound and `gap` (what the excess is)."""
    if value is None:
        return "not measured"
    if value <= goal + 1e-9:
        return "met"
    if floor is not None and floor > goal + 1e-9:
        return f"cannot be met: the lower bound {floor_text or f'{floor:g}'} is above the goal"
    parts = [f"lower bound {floor_text or f'{floor:g}'}" if floor is not None else "", gap]
    return "not met: " + "; ".join(p for p in parts if p) if any(parts) else "not met"


def over_goal(cold: Mapping[str, float], goal: float) -> list[str]:
    """The functions whose cold init is over the goal, slowest first."""
    return sorted((name for name, ms in cold.items() if ms > goal + 1e-9), key=lambda name: -cold[name])


def cold_verdict(cold: dict[str, float], floors: dict[str, float], goal: float) -> str:
    """Met when every function starts within the goal. A function over it whose floor (its third-party imports and
    boto3 clients alone, measured in the same run) is also over cannot meet it; the row cannot be met only when that
    holds for every function over the goal, else it is not met, each one named with its floor."""
    over = over_goal(cold, goal)
    if not over:
        return "met"

    def named(name: str) -> str:
        return f"{name} {cold[name]:.0f} ms" + (f" (floor {floors[name]:.0f})" if name in floors else "")

    if all(floors.get(name, 0.0) > goal + 1e-9 for name in over):
        return "cannot be met: the floor of each function over the goal is above it: " + ", ".join(map(named, over))
    return "not met: over: " + ", ".join(map(named, over))


def burst_verdict(lost: int, duplicated: int, throttled: int, drain_s: float, bound_s: float) -> str:
    """A burst's goal: nothing lost or doubled and no 429; how far the drain is from its lower bound is said too."""
    problems = [f"{n} {what}" for n, what in ((lost, "lost"), (duplicated, "duplicated"), (throttled, "429s")) if n]
    over = f"drain {drain_s / bound_s - 1:+.0%} over its lower bound" if bound_s > 0 else "no lower bound"
    return f"not met: {', '.join(problems)}; {over}" if problems else f"met; {over}"


# What one status change needs at least, as the design settles it (a notice is a hint: both sides are read).
STATUS_BOUND = "per change: the changed side read + the other side read + the write, + a fulfilments read to pack/ship"


@dataclass(frozen=True)
class StatusBound:
    scenario: str
    changes: int
    measured: float  # vendor calls per change
    bound: float


def _write(route: str) -> bool:
    """A "<vendor> <METHOD> <path>" route that changes something."""
    return route.split(" ", 2)[1] != "GET"


def status_bounds(routes: Mapping[str, Mapping[str, int]], changes: Mapping[str, int]) -> list[StatusBound]:
    """Each kind of status change's lower bound, from the calls the benchmark measured for it ("<vendor> <route>" ->
    calls): its writes per change, plus the two reads that settle any notice (the order and the sale), plus the
    fulfilments read when the change read them every time (a pack or a shipment: what changed, or what decides the
    write, is a fulfilment)."""
    bounds = []
    for scenario, per in routes.items():
        n = changes.get(scenario, 0)
        if not n:
            continue
        writes = sum(c for route, c in per.items() if _write(route)) / n
        fulfillments = sum(c for route, c in per.items() if not _write(route) and "/fulfillments" in route) / n
        measured = sum(per.values()) / n
        bounds.append(StatusBound(scenario, n, measured, writes + 2 + (1 if fulfillments >= 1 else 0)))
    return bounds


def _top(calls: Mapping[str, int], per: int, count: int = 4) -> str:
    ordered = sorted(calls.items(), key=lambda kv: -kv[1])[:count]
    return ", ".join(f"{n / per:.2f} {name}" for name, n in ordered)


def rows(f: Mapping[str, Any]) -> list[Row]:
    """The table, from the figures the benchmark functions returned (a missing figure shows as not measured)."""
    table: list[Row] = []

    t = f.get("throughput")
    if t:
        n = t["orders"]
        pos = sum(t["pos_calls"].values()) / n
        minimum = (t["pos_calls"].get("POST /api/2026-07/sales", 0) + t["customers_created"]) / n
        extra = {r: c for r, c in t["pos_calls"].items() if r not in ("POST /api/2026-07/sales",)}
        table.append(Row(
            "POS calls per imported order", BASELINE["pos_per_order"], f"{pos:.2f} ({_top(t['pos_calls'], n)})",
            f"<= {GOALS['pos_per_order']} (minimum {minimum:.2f})",
            at_most(pos, GOALS["pos_per_order"], floor=minimum,
                    floor_text=f"{minimum:.2f} (1 sale per order + 1 create per new customer)",
                    gap=f"{pos - minimum:.2f} per order above it: {_top(extra, n, 3)}"),
        ))  # fmt: skip
        aws = sum(t["aws_calls"].values()) / n
        table.append(Row(
            "AWS calls per imported order", BASELINE["aws_per_order"], f"{aws:.1f} ({_top(t['aws_calls'], n, 3)})",
            f"<= {GOALS['aws_per_order']:g}",
            at_most(aws, GOALS["aws_per_order"], gap=f"most: {_top(t['aws_calls'], n, 2)}"),
        ))  # fmt: skip
    else:
        table += [_missing("POS calls per imported order", "pos_per_order", "<= 1.4"),
                  _missing("AWS calls per imported order", "aws_per_order", "<= 8")]  # fmt: skip

    s = f.get("statuses")
    if s:
        n = sum(len(v) for v in s["seconds"].values())
        calls = {f"{vendor} {route}": count for vendor, routes in (("POS", s["pos_calls"]), ("eCom", s["ecom_calls"]))
                 for route, count in routes.items()}  # fmt: skip
        total = sum(calls.values()) / n
        writes = sum(count for route, count in calls.items() if _write(route)) / n
        if "routes" in s:  # per scenario: the bound each kind of change has, and where the calls go above it
            bounds = status_bounds(s["routes"], {k: len(v) for k, v in s["seconds"].items()})
            floor = sum(b.bound * b.changes for b in bounds) / n
            floor_text = f"{floor:.2f} ({', '.join(f'{b.scenario} {b.bound:.2f}' for b in bounds)}: {STATUS_BOUND})"
            above = [f"{b.scenario} {b.measured:.2f} vs {b.bound:.2f}" for b in bounds if b.measured > b.bound + 1e-9]
            after = f"{total:.2f} ({writes:.2f} writes; above its bound: {', '.join(above) or 'none'})"
        else:
            floor, floor_text = writes, f"{writes:.2f} (the writes)"
            after = f"{total:.2f} ({writes:.2f} writes; {_top(calls, n, 3)})"
        table.append(Row(
            "vendor calls per status change", BASELINE["status_calls"], after,
            f"<= {GOALS['status_calls']:g} (minimum 1 write)",
            at_most(total, GOALS["status_calls"], floor=floor, floor_text=floor_text,
                    gap=f"{total - floor:.2f} per change above it"),
        ))  # fmt: skip
    else:
        table.append(_missing("vendor calls per status change", "status_calls", "<= 3"))

    c = f.get("catalog")
    if c:
        ratios = [run["ecom_calls_per_variant"] for run in c]
        sizes = " and ".join(f"{run['ecom_calls_per_variant']:.3f} at {run['variants']:,}" for run in c)
        spread = (max(ratios) - min(ratios)) / min(ratios)
        # Brands and categories are created once whatever the size: the largest run's minimum is nearest 70,000's.
        largest = max(c, key=lambda run: run["variants"])
        floor = largest["minimum_per_variant"]
        reads = sum(n for route, n in largest["routes"].items() if route.startswith("GET ")) / largest["variants"]
        table.append(Row(
            "eCom calls per variant, 70,000-variant import", BASELINE["catalog_per_variant"],
            f"{sizes} variants (differ by {spread:.1%}); 429s {sum(run['ecom_429'] for run in c)}",
            f"<= {GOALS['catalog_per_variant']} (API minimum {floor:.2f})",
            at_most(max(ratios), GOALS["catalog_per_variant"], floor=floor,
                    floor_text=f"{floor:.3f} (no bulk writes: a POST per product, variant, image, category link)",
                    gap=f"{max(ratios) - floor:.3f} per variant above the minimum ({reads:.3f} reads per variant at "
                        f"{largest['variants']:,})"),
        ))  # fmt: skip
    else:
        table.append(_missing("eCom calls per variant, 70,000-variant import", "catalog_per_variant", "<= 2.05"))

    measured_cold = f.get("cold_start")
    if measured_cold:
        goal = GOALS["cold_init_ms"]
        cold, cpu = measured_cold["wall_ms"], measured_cold.get("cpu_ms") or {}
        over = over_goal(cold, goal)
        cpu_text = f" (least CPU of a whole start {min(cpu.values()):.0f}-{max(cpu.values()):.0f} ms)" if cpu else ""
        table.append(Row(
            "cold init per function (built layer with .pyc)", BASELINE["cold_init"],
            f"{min(cold.values()):.0f}-{max(cold.values()):.0f} ms, {len(over)} of {len(cold)} over {goal:g} ms"
            + cpu_text,
            f"<= {goal:g} ms each",
            cold_verdict(cold, measured_cold.get("floor_ms") or {}, goal),
        ))  # fmt: skip
    else:
        table.append(_missing("cold init per function (built layer with .pyc)", "cold_init", "<= 350 ms each"))

    if t:
        loads = sum(t["budget_loads"].values())
        worst = max(t["http_clients_built"], loads)
        table.append(Row(
            "per record, through a warm handler", BASELINE["per_record"],
            f"{t['http_clients_built']} httpx.Client built, {loads} budget reads for {t['orders']} records",
            f"<= {VENDOR_APIS} each (one per vendor API per sandbox)",
            at_most(worst, VENDOR_APIS, gap=f"{worst} for {t['orders']} records"),
        ))  # fmt: skip
    else:
        table.append(_missing("per record, through a warm handler", "per_record", "one client and budget per API"))

    b = f.get("order_burst")
    if b:
        table.append(Row(
            f"{b['orders']:,}-order burst, X-Series 350 / 5 min", BASELINE["order_burst"],
            f"drain {b['drain_s'] / 60:.1f} min vs lower bound {b['bound_s'] / 60:.1f} min ({b['binding']}); "
            f"{b['pos_calls'] / b['orders']:.2f} POS calls per order (at the minimum the bound is "
            f"{b['ideal_bound_s'] / 60:.1f} min); lost {b['lost']}, duplicated {b['duplicated']}, "
            f"429s {b['pos_429'] + b['ecom_429']}",
            "0 lost, 0 duplicated, 0 429s",
            burst_verdict(b["lost"], b["duplicated"], b["pos_429"] + b["ecom_429"], b["drain_s"], b["bound_s"]),
        ))  # fmt: skip
    else:
        table.append(_missing("order burst, X-Series 350 / 5 min", "order_burst", "0 lost, 0 duplicated, 0 429s"))

    k = f.get("stock_burst")
    if k:
        table.append(Row(
            f"{k['changes']:,}-stock-change burst, eCom limits", BASELINE["stock_burst"],
            f"drain {k['drain_s'] / 60:.1f} min vs lower bound {k['bound_s'] / 60:.1f} min ({k['binding']}); "
            f"{k['ecom_writes']:,} writes ({k['settled_levels']:,} settled levels, fewest {k['minimum_writes']:,}); "
            f"lost {k['lost']}, 429s {k['ecom_429'] + k['pos_429']}",
            "0 lost, 0 429s; 1 write per settled level",
            burst_verdict(k["lost"], 0, k["ecom_429"] + k["pos_429"], k["drain_s"], k["bound_s"]),
        ))  # fmt: skip
    else:
        table.append(_missing("stock-change burst, eCom limits", "stock_burst", "0 lost, 0 429s"))

    u = f.get("make_unit")
    goal = GOALS["make_unit_s"]
    if u:
        table.append(Row(
            "`make unit` wall time", BASELINE["make_unit"], f"{u['seconds']:.0f} s ({u['outcome']})", f"<= {goal:g} s",
            at_most(u["seconds"], goal) if u["returncode"] == 0 else "not met: make unit failed (see the log)",
        ))  # fmt: skip
    else:
        table.append(_missing("`make unit` wall time", "make_unit", f"<= {goal:g} s"))

    m = f.get("make_test")
    goal = GOALS["make_test_s"]
    seconds = m.get("seconds") if m else None
    cpu = m.get("cpu_s") if m else None
    floor = cpu / CORES if cpu else None  # no split of the work across the cores beats its CPU time over them
    table.append(Row(
        "`make test` on a fresh clone", BASELINE["make_test"],
        ((_duration(seconds) if seconds is not None else m["text"])
         + (f" (pytest alone; its CPU {_duration(cpu)})" if cpu else "")) if m
        else f"not measured here (no {MAKE_TEST_DURATION.relative_to(REPO)})",
        f"<= {goal / 60:g} min",
        (at_most(seconds, goal, floor=floor, floor_text=f"{_duration(floor)} (pytest's CPU over {CORES} cores)")
         if floor else at_most(seconds, goal)) if m else "not measured (make test cannot run inside bench)",
    ))  # fmt: skip
    return table


def _missing(figure: str, key: str, goal: str) -> Row:
    return Row(figure, BASELINE[key], "not measured (skipped or failed: see the log)", goal, "not measured")


def _duration(seconds: float) -> str:
    return f"{int(seconds // 60)} min {seconds % 60:.0f} s" if seconds >= 60 else f"{seconds:.0f} s"


def render(table: list[Row], widths: tuple[int, ...] = (26, 30, 46, 22, 40)) -> str:
    """A plain-text table; long cells wrap within their column."""
    header = Row("figure", "before (issue 18 baseline)", "after (measured now)", "goal", "goal met? (why not)")
    rule = "+" + "+".join("-" * (w + 2) for w in widths) + "+"

    def lines_of(row: Row) -> list[str]:
        cells = [textwrap.wrap(str(v), w) or [""] for v, w in zip(vars(row).values(), widths, strict=True)]
        height = max(len(c) for c in cells)
        return [
            "| " + " | ".join((c[n] if n < len(c) else "").ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"
            for n in range(height)
        ]

    lines = [rule, *lines_of(header), rule.replace("-", "=")]
    for row in table:
        lines += [*lines_of(row), rule]
    return "\n".join(lines)
