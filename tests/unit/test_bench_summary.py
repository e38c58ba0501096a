"""`make bench`'s summary table says a goal is met only when the measured figure meets it, and says why not with the
measured lower bound otherwise (tests/perf/summary_table.py)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from tests.perf.summary_table import at_most, burst_verdict, read_make_test, render, rows


def test_a_figure_at_or_under_its_goal_is_met() -> None:
    assert at_most(1.4, 1.4) == "met"
    assert at_most(1.2, 1.4, floor=1.2) == "met"


def test_a_figure_over_its_goal_is_not_met_and_names_the_lower_bound_and_the_excess() -> None:
    verdict = at_most(3.84, 1.4, floor=1.2, floor_text="1.20 (minimum)", gap="2.64 reads per order")
    assert verdict.startswith("not met")
    assert "1.20 (minimum)" in verdict and "2.64 reads per order" in verdict


def test_a_goal_below_the_measured_lower_bound_cannot_be_met() -> None:
    verdict = at_most(2.24, 2.05, floor=2.08, floor_text="2.08 per variant")
    assert verdict.startswith("cannot be met") and "2.08 per variant" in verdict


def test_an_unmeasured_figure_is_not_called_met() -> None:
    assert at_most(None, 300) == "not measured"


def test_a_burst_is_met_only_without_loss_duplicates_or_429s_and_says_how_far_from_its_bound() -> None:
    assert burst_verdict(0, 0, 0, drain_s=330, bound_s=300).startswith("met; drain +10% over")
    for lost, duplicated, throttled in ((1, 0, 0), (0, 2, 0), (0, 0, 3)):
        assert burst_verdict(lost, duplicated, throttled, drain_s=300, bound_s=300).startswith("not met")


def _figures(pos_routes: dict[str, int], created: int, clients: int, loads: int) -> dict[str, Any]:
    return {
        "throughput": {
            "orders": 100,
            "pos_calls": Counter(pos_routes),
            "customers_created": created,
            "aws_calls": Counter({"dynamodb UpdateItem": 500, "dynamodb GetItem": 200}),
            "http_clients_built": clients,
            "budget_loads": Counter({"xseries": loads}),
        },
        "make_test": None,
    }


def test_the_table_marks_each_row_from_the_figures_the_benchmarks_returned() -> None:
    reads = {"POST /api/2026-07/sales": 100, "GET /api/2.0/products/{id}/inventory": 164}
    table = {row.figure: row for row in rows(_figures(reads, created=20, clients=2, loads=2))}
    pos = table["POS calls per imported order"]
    assert pos.after.startswith("2.64") and pos.verdict.startswith("not met") and "1.20" in pos.verdict
    assert table["AWS calls per imported order"].verdict == "met"  # 7.0 <= 8
    assert table["per record, through a warm handler"].verdict == "met"
    assert table["`make test` on a fresh clone"].verdict.startswith("not measured")
    assert table["vendor calls per status change"].verdict == "not measured"


def _status_figures(shipped: dict[str, int]) -> dict[str, Any]:
    """Two kinds of status change, 5 of each, as bench_statuses.run returns them."""
    paid = {"POS GET /api/2.0/sales/{id}": 5, "eCom GET /{lang}/orders/{id}.json": 5, "POS POST /api/register_sales": 5}
    routes = {"ecom_paid": Counter(paid), "ecom_shipped": Counter(shipped)}
    split: dict[str, Counter[str]] = {"POS": Counter(), "eCom": Counter()}
    for per in routes.values():
        for route, count in per.items():
            vendor, name = route.split(" ", 1)
            split[vendor][name] += count
    return {
        "statuses": {"seconds": {"ecom_paid": [0.1] * 5, "ecom_shipped": [0.1] * 5}, "routes": routes,
                     "pos_calls": split["POS"], "ecom_calls": split["eCom"]},
        "make_test": None,
    }  # fmt: skip


def test_the_status_row_gives_each_kind_of_changes_lower_bound_from_what_it_measured() -> None:
    shipped = {
        "POS GET /api/2.0/sales/{id}": 15,
        "eCom GET /{lang}/orders/{id}.json": 15,
        "POS GET /api/2026-07/fulfillments": 10,
        "POS POST /api/2026-07/fulfillments/fulfill": 5,
    }
    row = next(r for r in rows(_status_figures(shipped)) if r.figure == "vendor calls per status change")
    # ecom_paid 3 (order, sale, write); ecom_shipped 4 (and its fulfilments): 3.5 on average, above the goal of 3.
    assert row.verdict.startswith("cannot be met: the lower bound 3.50 (ecom_paid 3.00, ecom_shipped 4.00")
    assert row.after.startswith("6.00 (1.00 writes; above its bound: ecom_shipped 9.00 vs 4.00)")


def test_the_status_row_is_met_when_every_kind_of_change_costs_no_more_than_the_goal() -> None:
    shipped = {"POS GET /api/2.0/sales/{id}": 5, "eCom GET /{lang}/orders/{id}.json": 5, "eCom PUT /x": 5}
    row = next(r for r in rows(_status_figures(shipped)) if r.figure == "vendor calls per status change")
    assert row.verdict == "met" and "above its bound: none" in row.after


def test_the_catalog_row_says_how_much_of_its_excess_over_the_minimum_is_reads() -> None:
    def run(variants: int, calls: int, reads: int) -> dict[str, Any]:
        routes = {"GET variants": reads - 2, "GET brands": 1, "GET categories": 1, "POST variants": calls - reads}
        return {"variants": variants, "ecom_calls_per_variant": calls / variants, "minimum_per_variant": 2.001,
                "routes": routes, "ecom_429": 0}  # fmt: skip

    figures = {"catalog": [run(2500, 5100, 30), run(5000, 10300, 80)], "make_test": None}
    row = next(r for r in rows(figures) if r.figure.startswith("eCom calls per variant"))
    assert row.verdict.startswith("not met: lower bound 2.001")
    assert "0.059 per variant above the minimum (0.016 reads per variant at 5,000)" in row.verdict


def test_one_function_over_the_cold_init_goal_fails_the_row_and_is_named() -> None:
    figures = {"cold_start": {"wall_ms": {"order_import": 300.0, "stock_sync": 420.0}, "cpu_ms": {}}, "make_test": None}
    row = next(r for r in rows(figures) if r.figure.startswith("cold init"))
    assert row.after.startswith("300-420 ms, 1 of 2 over 350 ms")
    assert row.verdict.startswith("not met") and "stock_sync 420 ms" in row.verdict
    assert "order_import" not in row.verdict


def test_cold_init_cannot_be_met_only_when_every_function_over_the_goal_has_its_floor_above_it() -> None:
    def verdict(floors: dict[str, float]) -> str:
        wall = {"order_import": 300.0, "stock_sync": 420.0, "status_sync": 380.0}
        figures = {"cold_start": {"wall_ms": wall, "cpu_ms": {}, "floor_ms": floors}, "make_test": None}
        return next(r for r in rows(figures) if r.figure.startswith("cold init")).verdict

    above = verdict({"order_import": 280.0, "stock_sync": 360.0, "status_sync": 355.0})
    assert above.startswith("cannot be met")
    assert above.endswith("stock_sync 420 ms (floor 360), status_sync 380 ms (floor 355)")
    below = verdict({"order_import": 280.0, "stock_sync": 360.0, "status_sync": 300.0})
    assert below == "not met: over: stock_sync 420 ms (floor 360), status_sync 380 ms (floor 300)"


def test_a_failing_make_unit_is_not_met_however_fast() -> None:
    figures = {"make_unit": {"seconds": 12.0, "returncode": 2, "outcome": "4 failed, 791 passed"}, "make_test": None}
    row = next(r for r in rows(figures) if r.figure == "`make unit` wall time")
    assert row.verdict.startswith("not met: make unit failed")


def test_a_make_test_duration_file_is_judged_against_five_minutes() -> None:
    quick, slow = ({"make_test": {"seconds": s, "text": str(s)}} for s in (290.0, 555.0))
    assert next(r for r in rows(quick) if r.figure.startswith("`make test`")).verdict == "met"
    assert next(r for r in rows(slow) if r.figure.startswith("`make test`")).verdict.startswith("not met")


def test_the_make_test_duration_is_read_as_seconds_or_shown_as_written(tmp_path: Path) -> None:
    duration = tmp_path / "last-test-duration.txt"
    assert read_make_test(duration) is None
    duration.write_text("287.5\n")
    assert read_make_test(duration) == {"seconds": 287.5, "text": "287.5", "cpu_s": None}
    duration.write_text("about five minutes")
    assert read_make_test(duration) == {"seconds": None, "text": "about five minutes", "cpu_s": None}
    duration.write_text("702 s pytest, 4 workers, exit 0, 2026-12-06T05:14:47Z, cpu 1330 s\n")
    assert read_make_test(duration)["cpu_s"] == 1330.0  # type: ignore[index]


def test_a_make_test_whose_cpu_over_the_cores_is_above_five_minutes_says_it_cannot_be_met_so() -> None:
    def verdict(cpu: float) -> str:
        figures = {"make_test": {"seconds": 700.0, "text": "700 s", "cpu_s": cpu}}
        return next(r for r in rows(figures) if r.figure.startswith("`make test`")).verdict

    assert verdict(1330.0) == "cannot be met: the lower bound 11 min 5 s (pytest's CPU over 2 cores) is above the goal"
    assert verdict(500.0) == "not met: lower bound 4 min 10 s (pytest's CPU over 2 cores)"


def test_a_client_built_per_record_fails_the_reuse_row() -> None:
    table = {row.figure: row for row in rows(_figures({"POST /api/2026-07/sales": 100}, 0, clients=200, loads=2))}
    assert table["POS calls per imported order"].verdict == "met"  # 1.00
    assert table["per record, through a warm handler"].verdict.startswith("not met")


def test_the_table_renders_every_row_with_its_verdict() -> None:
    table = rows(_figures({"POST /api/2026-07/sales": 100}, 0, clients=2, loads=2))
    text = render(table, widths=(60, 100, 100, 60, 100))  # wide enough that no cell wraps
    for row in table:
        line = next(line for line in text.splitlines() if f"| {row.figure} " in line)
        assert row.verdict in line and row.goal in line
    assert "before (issue 18 baseline)" in text and "after (measured now)" in text
