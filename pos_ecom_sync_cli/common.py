"""What every command group of the CLI shares: its error, the lookup of a connection it acts on, and output (a
table or key/value lines for a person, `--json` for scripts, progress on stderr for anything slower than a second)."""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TextIO

from pos_ecom_sync.models.connection import Connection

PROGRESS_AFTER_S = 1.0
SPINNER = "|/-\\"


class CliError(Exception):
    """A refusal the operator can act on: printed as `error: ...` with exit status 2."""


def existing_connection(target: Any, connection_id: str) -> Connection:
    connection: Connection | None = target.store.get_connection(connection_id)
    if connection is None:
        raise CliError(f"no connection {connection_id!r}")
    return connection


def stack_output(target: Any, output: str) -> str:
    """One of the stack's outputs (queue URLs, function names...), never rebuilt from names."""
    value = getattr(target, "outputs", {}).get(output)
    if not value:
        raise CliError(
            f"the stack outputs have no {output}: deploy the current template (or restart `make run`), "
            "which lists it in its outputs"
        )
    return str(value)


def iso_seconds(epoch: float | None) -> str | None:
    """Epoch seconds as ISO 8601 UTC to the second (None for none)."""
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds") if epoch else None


def add_json_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="JSON for scripts instead of a table")


def one_line(text: Any, width: int) -> str:
    """`text` on one line of at most `width` characters ("-" for nothing)."""
    line = " ".join(str(text if text is not None else "-").split())
    return line if len(line) <= width else line[: width - 3] + "..."


def print_table(rows: list[list[str]], out: TextIO, indent: str = "") -> None:
    """Rows (the first is the header) in aligned columns."""
    widths = [max(len(row[n]) for row in rows) for n in range(len(rows[0]))]
    for row in rows:
        cells = "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        out.write(indent + cells.rstrip() + "\n")


def emit(args: argparse.Namespace, data: Any, human: Callable[[TextIO], None]) -> None:
    """`data` as JSON with --json, else what `human` writes."""
    if getattr(args, "json", False):
        print(json.dumps(data, indent=2, default=str))
    else:
        human(sys.stdout)


@contextmanager
def progress(label: str, out: TextIO | None = None, after_s: float = PROGRESS_AFTER_S) -> Iterator[None]:
    """Show that `label` is still running once it has taken `after_s`: a spinner with the elapsed seconds on a
    terminal, one line otherwise; on stderr, so `--json` output stays clean."""
    stream = out or sys.stderr
    done = threading.Event()
    started = time.monotonic()
    shown = threading.Event()

    def watch() -> None:
        if done.wait(after_s):
            return
        shown.set()
        if not stream.isatty():
            stream.write(f"{label}...\n")
            stream.flush()
            return
        frame = 0
        while not done.wait(0.25):
            stream.write(f"\r{SPINNER[frame % len(SPINNER)]} {label} ({time.monotonic() - started:.0f} s)")
            stream.flush()
            frame += 1

    watcher = threading.Thread(target=watch, name="cli-progress", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        done.set()
        watcher.join()
        if shown.is_set():
            prefix = "\r\033[K" if stream.isatty() else ""
            stream.write(f"{prefix}{label}: done in {time.monotonic() - started:.1f} s\n")
            stream.flush()
