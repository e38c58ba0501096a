"""A function's cold start imports only what it runs: each module below costs every cold start that loads it
(`python -m tests.perf.bench_cold_start` measures them), so one that creeps back into a function that never uses it
fails here. Each function starts in a fresh interpreter and does its first call's setup, as the benchmark does."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.perf.bench_cold_start import TRACED_ENV
from tests.perf.bench_intake import FIRST_CALL, FUNCTION_ENV, FUNCTIONS

REPO = Path(__file__).resolve().parents[2]
START = """
import gc, json, sys
sys.path[:0] = [{code!r}, {layer!r}]
gc.collect()  # what the interpreter's own start left to collect
passes = []  # collection passes over the module's objects: before they are frozen
gc.callbacks.append(lambda phase, info: phase == "start" and not gc.get_freeze_count() and passes.append(info))
import app
collector = {{
    "passes": len(passes),
    "enabled": gc.isenabled(),
    "frozen": gc.get_freeze_count(),
}}
{first_call}
print(json.dumps({{"modules": sorted(sys.modules), "collector": collector}}))
"""
BATCH = "aws_lambda_powertools.utilities.batch"  # Powertools' SQS batch processing, with its parser models
POLLER = "pos_ecom_sync.intake.poller"  # the change feeds and the catalog rules they use
XRAY = "aws_xray_sdk.core"  # the X-Ray recorder, only where tracing is on (`observability.tracer`)
CONNECTORS = "httpx"  # vendor HTTP: only in functions that call a vendor
# eCom orders and what they become in the POS: the order worker's; status sync's only to record a payment
ORDERS = "pos_ecom_sync.models.orders"
LEDGER = "pos_ecom_sync.models.ledger"  # the order and status ledgers' records
SALES = "pos_ecom_sync.models.sales"  # POS sales as status sync reads them (the order worker writes only a reference)
CATALOG = "pos_ecom_sync.models.catalog"  # catalog states: read by the store methods that need them (not links)
MAPPING = "pos_ecom_sync.catalog.mapping"  # the eCom payloads of the catalog worker
FEEDS = "pos_ecom_sync.models.feeds"  # change-feed pages and cursors: the poller's and reconciliation's walks
CATALOG_ACTIONS = "pos_ecom_sync.catalog.actions"  # the catalog worker's planned eCom calls
STATUS_RULES = "pos_ecom_sync.status.rules"  # the status worker's rules and plans (intake needs only `status.digest`)
# Powertools' batch utility builds the models of every batch source it knows when pydantic is imported before it
# (the worker handlers import it first); the workers only read SQS.
OTHER_BATCH_SOURCES = "aws_lambda_powertools.utilities.parser.models.kafka"


def fresh_interpreter(code: str, **env: str) -> Any:
    """What `code` printed last (as JSON), run in a fresh interpreter with the functions' settings and `env`."""
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={"PATH": os.environ.get("PATH", ""), **FUNCTION_ENV, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@functools.cache  # one start per function serves both tests below
def cold_start(function: str) -> dict[str, Any]:
    """What a fresh interpreter loaded for the function's module and first call, and its collector after the module."""
    code = START.format(
        code=str(REPO / "functions" / function), layer=str(REPO / "layers" / "shared"), first_call=FIRST_CALL[function]
    )
    started: dict[str, Any] = fresh_interpreter(code)
    return started


def loaded(function: str) -> set[str]:
    return set(cold_start(function)["modules"])


@pytest.mark.parametrize(
    ("function", "never"),
    [
        (
            "webhook_ingest",
            {BATCH, POLLER, XRAY, CONNECTORS, ORDERS, LEDGER, CATALOG, FEEDS, STATUS_RULES, CATALOG_ACTIONS},
        ),
        ("change_poller", {BATCH, XRAY, ORDERS, MAPPING, STATUS_RULES, CATALOG_ACTIONS}),
        ("reconcile", {BATCH, XRAY, ORDERS, LEDGER, MAPPING, STATUS_RULES, CATALOG_ACTIONS}),
        (
            "stock_sync",
            {
                POLLER,
                XRAY,
                ORDERS,
                LEDGER,
                SALES,
                CATALOG,
                MAPPING,
                FEEDS,
                OTHER_BATCH_SOURCES,
                STATUS_RULES,
                CATALOG_ACTIONS,
            },
        ),
        ("product_sync", {POLLER, XRAY, ORDERS, LEDGER, SALES, FEEDS, OTHER_BATCH_SOURCES, STATUS_RULES}),
        ("order_import", {POLLER, XRAY, SALES, FEEDS, OTHER_BATCH_SOURCES, STATUS_RULES, CATALOG_ACTIONS}),
        ("status_sync", {POLLER, XRAY, ORDERS, CATALOG, FEEDS, OTHER_BATCH_SOURCES, CATALOG_ACTIONS}),
    ],
)
def test_a_cold_start_imports_nothing_its_function_does_not_run(function: str, never: set[str]) -> None:
    assert loaded(function) & never == set()


@pytest.mark.parametrize("function", FUNCTIONS)
def test_a_function_module_loads_without_collection_passes_and_leaves_what_it_made_frozen(function: str) -> None:
    collector = cold_start(function)["collector"]
    assert collector["passes"] == 0
    # Collection is on again for the invocations, and will not walk the start's objects (`pos_ecom_sync.cold_start`).
    assert collector["enabled"] is True
    assert collector["frozen"] > 10_000


TRACED_START = """
import json, sys
sys.path[:0] = [{code!r}, {layer!r}]
import app
from aws_xray_sdk.core import patcher
print(json.dumps({{"patched": sorted(patcher._PATCHED_MODULES), "sqlite3": "sqlite3" in sys.modules}}))
"""


def test_a_traced_function_patches_only_the_libraries_its_calls_go_through() -> None:
    code = TRACED_START.format(code=str(REPO / "functions" / "order_import"), layer=str(REPO / "layers" / "shared"))
    traced = fresh_interpreter(code, **TRACED_ENV, AWS_LAMBDA_FUNCTION_NAME="order_import")
    assert traced == {"patched": ["botocore", "httpx"], "sqlite3": False}


def test_r_series_status_imports_the_order_profile_only_to_record_a_payment() -> None:
    code = f"import json, sys\nsys.path.insert(0, {str(REPO / 'layers' / 'shared')!r})\n" + (
        "import pos_ecom_sync.profiles.rseries.status\n"
        "print(json.dumps('pos_ecom_sync.profiles.rseries.orders' in sys.modules))"
    )
    assert fresh_interpreter(code) is False
