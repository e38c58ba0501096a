"""`pos_ecom_sync.cold_start`: collection is off while a handler module loads, once per process, and never turned on
where a caller had turned it off. Each case runs in a fresh interpreter: the module acts when it is first imported."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

LAYER = Path(__file__).resolve().parents[2] / "layers" / "shared"
REPORT = "print(json.dumps([gc.isenabled(), gc.get_freeze_count() > 0]))"


def run(code: str) -> list[list[bool]]:
    """The collector's state (on, anything frozen) at each report the code prints."""
    script = f"import gc, json, sys\nsys.path.insert(0, {str(LAYER)!r})\n{code}"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    return [json.loads(line) for line in done.stdout.splitlines()]


def test_collection_is_off_from_the_import_until_finished_then_on_with_what_was_made_frozen() -> None:
    code = f"from pos_ecom_sync import cold_start\n{REPORT}\ncold_start.finished()\n{REPORT}"
    assert run(code) == [[False, False], [True, True]]


def test_only_the_first_handler_loaded_in_a_process_turns_collection_off() -> None:
    # A second handler's module (tests, the local stack) imports the module again: cached, it changes nothing.
    code = (
        "from pos_ecom_sync import cold_start\ncold_start.finished()\ngc.unfreeze()\n"
        f"from pos_ecom_sync import cold_start\n{REPORT}\ncold_start.finished()\n{REPORT}"
    )
    assert run(code) == [[True, False], [True, False]]


def test_collection_a_caller_turned_off_stays_off() -> None:
    code = f"gc.disable()\nfrom pos_ecom_sync import cold_start\ncold_start.finished()\n{REPORT}"
    assert run(code) == [[False, False]]
