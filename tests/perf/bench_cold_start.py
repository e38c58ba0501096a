"""Benchmark: cold init of each function as the built artifact runs it, sources only vs the layer's bytecode.

Run: `.venv/bin/python -m tests.perf.bench_cold_start [--runs 5]`. Prints figures; asserts nothing.

`sam build` makes the layer with `pip --target --no-compile`, botocore's data trimmed to the AWS services the
functions call (layers/shared/slim_botocore.py), plus our package (layers/shared/Makefile), and Lambda's /opt is
read-only, so a layer without bytecode compiles every module it imports at each cold start. This builds the same layer
twice for this host's architecture (the real one is aarch64 and cannot load here): once as sources only,
once compiled the way the layer Makefile compiles it (`compileall --invalidation-mode unchecked-hash`). Each function
then starts in a fresh `python -S` (no venv site-packages: only the stdlib, the function's code and the layer, as in
Lambda) with `PYTHONDONTWRITEBYTECODE=1`, importing its handler and doing its first call's setup
(`bench_intake.FIRST_CALL`). The stdlib has its bytecode, as Lambda's runtime does.

Tracing is off there (outside Lambda, as with POWERTOOLS_TRACE_DISABLED): the functions then never import the X-Ray
SDK (`observability.tracer`). The last column starts the compiled layer as a Lambda sandbox of a function with the
template's `Tracing: Active` (LAMBDA_TASK_ROOT set): Powertools' Tracer imports the SDK and patches botocore and
httpx at init. Each figure is the median wall time of `--runs` starts; "cpu" is the least CPU time one start used
up to the end of its cold init (the interpreter's start included), which shared cores inflate less than wall time.

"floor" is the lower bound our code cannot go under: a start that only imports the third-party modules the function's
cold init imported (Powertools, pydantic, boto3, httpx... as recorded from a real start) and builds the same boto3
clients and resources, without any of our modules.

`--instructions` adds what wall time on shared cores cannot give: the instructions one cold init and its floor execute,
counted by valgrind (callgrind), the same to 0.1 % from run to run. It takes about 20 s per start, so it is off by
default; use it to judge a change to the cold path (1 M instructions took 0.17-0.18 ms here, on a quiet host).
"""

from __future__ import annotations

import argparse
import json
import os
import re
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
    subprocess.run([sys.executable, str(REPO / "layers" / "shared" / "slim_botocore.py"), str(sources)], check=True)
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


# What Lambda sets at the init of a function with `Tracing: Active` that decides Powertools' Tracer is on.
TRACED_ENV = {"LAMBDA_TASK_ROOT": "/var/task", "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR"}


def cold_init_ms(function: str, layer: Path, runs: int, *, traced: bool = False) -> tuple[float, float]:
    """(median wall ms of the cold init, least CPU ms of one whole start) over `runs` fresh interpreters."""
    env = _env()
    if traced:
        env.update(TRACED_ENV, AWS_LAMBDA_FUNCTION_NAME=function)
    code = COLD_INIT.format(code=str(REPO / "functions" / function), layer=str(layer), first_call=FIRST_CALL[function])
    return _starts(code, env, runs)


# A cold init that also reports what it loaded: the third-party modules (files in the layer) in import order, and the
# boto3 clients and resources its first call built.
RECORD = """
import json, sys
sys.path[:0] = [{code!r}, {layer!r}]
import boto3
made = []
for kind in ("client", "resource"):
    def made_by(service, *args, _make=getattr(boto3, kind), _kind=kind, **kwargs):
        made.append([_kind, service])
        return _make(service, *args, **kwargs)
    setattr(boto3, kind, made_by)
import app
{first_call}
ours = ("pos_ecom_sync", "app")
modules = [name for name, module in list(sys.modules.items()) if name.split(".")[0] not in ours
           and (getattr(module, "__file__", None) or "").startswith({layer!r})]
print(json.dumps({{"modules": modules, "made": made}}))
"""
# Its imports without garbage-collection passes, as a function's module (`pos_ecom_sync.cold_start`).
FLOOR = """
import gc, importlib, sys, time
t0 = time.perf_counter()
gc.disable()
sys.path[:0] = [{layer!r}]
for name in {modules!r}:
    try:
        importlib.import_module(name)
    except ImportError:
        pass
gc.freeze()
gc.enable()
import boto3
for kind, service in {made!r}:
    getattr(boto3, kind)(service)
print(time.perf_counter() - t0)
"""


def _env() -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", ""), "PYTHONDONTWRITEBYTECODE": "1", **FUNCTION_ENV}


def floor_ms(function: str, layer: Path, runs: int) -> tuple[float, float]:
    """(median wall ms, least CPU ms) of a start loading only what the function's cold init needs of third parties."""
    return _starts(_floor_code(function, layer), _env(), runs)


def _floor_code(function: str, layer: Path) -> str:
    code = RECORD.format(code=str(REPO / "functions" / function), layer=str(layer), first_call=FIRST_CALL[function])
    done = subprocess.run([sys.executable, "-S", "-c", code], env=_env(), capture_output=True, text=True, check=True)
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    return FLOOR.format(layer=str(layer), modules=loaded["modules"], made=loaded["made"])


def instructions(function: str, layer: Path) -> tuple[int, int]:
    """(instructions of the function's cold init, of its floor), each counted over one whole start by callgrind."""
    code = COLD_INIT.format(code=str(REPO / "functions" / function), layer=str(layer), first_call=FIRST_CALL[function])
    return _instructions(code), _instructions(_floor_code(function, layer))


def _instructions(code: str) -> int:
    # The interpreter itself, not a venv's launcher or a pyenv shim, so that only the start is counted.
    command = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", os.path.realpath(sys.executable)]
    done = subprocess.run([*command, "-S", "-c", code], env=_env(), capture_output=True, text=True)
    counted = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode or not counted:
        sys.exit(f"valgrind could not count the start:\n{done.stderr[-2000:]}")
    return int(counted.group(1))


def _starts(code: str, env: dict[str, str], runs: int) -> tuple[float, float]:
    """Run `code` (which prints its wall time last) `runs` times, each also printing the CPU time used so far."""
    code += "\nprint(time.process_time())"  # the interpreter's start included, its exit not
    walls, cpus = [], []
    for _ in range(runs):
        done = subprocess.run([sys.executable, "-S", "-c", code], env=env, capture_output=True, text=True, check=True)
        wall, cpu = done.stdout.strip().splitlines()[-2:]
        walls.append(float(wall) * 1000)
        cpus.append(float(cpu) * 1000)
    return statistics.median(walls), min(cpus)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--instructions", action="store_true", help="also count instructions (needs valgrind)")
    args = parser.parse_args()
    if args.instructions and not shutil.which("valgrind"):
        sys.exit("--instructions needs valgrind on PATH")
    with tempfile.TemporaryDirectory(prefix="cold-start-") as tmp:
        sources, compiled = build_layers(Path(tmp))
        print(f"cold init per function, median of {args.runs} (python {sys.version.split()[0]}, goal <= {GOAL_MS} ms)")
        header = ("sources only", "with .pyc", "cpu", ".pyc, traced", "cpu", "floor", "cpu")
        print(f"{'function':<16}" + "".join(f"{name:>{len(name) + 3 if len(name) > 6 else 9}}" for name in header))
        for function in FUNCTIONS:
            plain, _ = cold_init_ms(function, sources, args.runs)
            fast, fast_cpu = cold_init_ms(function, compiled, args.runs)
            traced, traced_cpu = cold_init_ms(function, compiled, args.runs, traced=True)
            floor, floor_cpu = floor_ms(function, compiled, args.runs)
            flag = "" if fast <= GOAL_MS else "  over the goal"
            print(
                f"{function:<16}{plain:>12.0f} ms{fast:>9.0f} ms{fast_cpu:>6.0f} ms"
                f"{traced:>12.0f} ms{traced_cpu:>6.0f} ms{floor:>6.0f} ms{floor_cpu:>6.0f} ms{flag}"
            )
        if args.instructions:
            print("instructions per cold init (M): the function's, its floor's, and ours (the difference)")
            for function in FUNCTIONS:
                start, floor_start = instructions(function, compiled)
                print(f"{function:<16}{start / 1e6:>9.0f}{floor_start / 1e6:>9.0f}{(start - floor_start) / 1e6:>9.0f}")


if __name__ == "__main__":
    main()
