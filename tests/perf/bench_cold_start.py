"""Benchmark: cold init of each function as the built artifact runs it, sources only vs the layer's bytecode.

Run: `.venv/bin/python -m tests.perf.bench_cold_start [--runs 5]`. Prints figures; asserts nothing.

`sam build` makes the layer with `pip --target --no-compile` plus our package (layers/shared/Makefile), and Lambda's
/opt is read-only, so a layer without bytecode compiles every module it imports at each cold start. This builds the
same layer twice for this host's architecture (the real one is aarch64 and cannot load here): once as sources only,
once compiled the way the layer Makefile compiles it (`compileall --invalidation-mode unchecked-hash`). Each function
then starts in a fresh `python -S` (no venv site-packages: only the stdlib, the function's code and the layer, as in
Lambda) with `PYTHONDONTWRITEBYTECODE=1`, importing its handler and doing its first call's setup
(`bench_intake.FIRST_CALL`). The stdlib has its bytecode, as Lambda's runtime does.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.perf.bench_intake import COLD_INIT, FIRST_CALL, FUNCTION_ENV, FUNCTIONS

REPO = Path(__file__).resolve().parents[2]
GOAL_MS = 350


def build_layers(work: Path) -> tuple[Path, Path]:
    """(sources-only layer, compiled layer) under `work`, both for this host."""
    sources = work / "sources"
    pip = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile",
         "--target", str(sources), "-r", str(REPO / "layers" / "shared" / "requirements.txt")],
        capture_output=True, text=True,
    )  # fmt: skip
    if pip.returncode:  # its warnings are noise; its errors are the reason
        sys.exit(f"pip could not build the layer:\n{pip.stderr}")
    shutil.rmtree(sources / "bin", ignore_errors=True)
    package = REPO / "layers" / "shared" / "pos_ecom_sync"
    for source in package.rglob("*.py"):
        target = sources / "pos_ecom_sync" / source.relative_to(package)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
    compiled = work / "compiled"
    shutil.copytree(sources, compiled)
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash", str(compiled)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return sources, compiled


def cold_init_ms(function: str, layer: Path, runs: int) -> list[float]:
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONDONTWRITEBYTECODE": "1", **FUNCTION_ENV}
    code = COLD_INIT.format(code=str(REPO / "functions" / function), layer=str(layer), first_call=FIRST_CALL[function])
    times = []
    for _ in range(runs):
        done = subprocess.run([sys.executable, "-S", "-c", code], env=env, capture_output=True, text=True, check=True)
        times.append(float(done.stdout.strip().splitlines()[-1]) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cold-start-") as tmp:
        sources, compiled = build_layers(Path(tmp))
        print(f"cold init per function, median of {args.runs} (python {sys.version.split()[0]}, goal <= {GOAL_MS} ms)")
        print(f"{'function':<16}{'sources only':>14}{'with .pyc':>12}")
        for function in FUNCTIONS:
            plain = statistics.median(cold_init_ms(function, sources, args.runs))
            fast = statistics.median(cold_init_ms(function, compiled, args.runs))
            flag = "" if fast <= GOAL_MS else "  over the goal"
            print(f"{function:<16}{plain:>11.0f} ms{fast:>9.0f} ms{flag}")


if __name__ == "__main__":
    main()
