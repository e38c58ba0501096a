"""One lock for every install: uv.lock holds what pyproject.toml asks for, the Lambda layer's requirements.txt is
exactly its export, the dev venv runs the versions it pins, and `make` bootstraps the uv that wrote it. Any of them
drifting (a pin changed without `make lock`, a hand edit of the layer's file) fails here."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[2]
UV = Path(sys.executable).with_name("uv")
LAYER_REQUIREMENTS = REPO / "layers" / "shared" / "requirements.txt"


def _lock() -> dict[str, Any]:
    return tomllib.loads((REPO / "uv.lock").read_text())


def _project_entry() -> dict[str, Any]:
    return next(p for p in _lock()["package"] if p.get("source", {}).get("editable") == ".")


def _export(*extra: str) -> str:
    done = subprocess.run(
        [str(UV), "export", "--frozen", "--quiet", "--no-emit-project", *extra],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return done.stdout


def _body(requirements: str) -> list[str]:
    """The requirement lines (the header comment names the command that wrote it, which may differ)."""
    return [line for line in requirements.splitlines() if line and not line.startswith("#")]


def _pins(requirements: str) -> dict[str, str]:
    """name -> version of every requirement whose marker holds here (e.g. not `sys_platform == 'win32'`)."""
    pins = {}
    for line in requirements.splitlines():
        if not line or line[0].isspace() or line.startswith("#"):
            continue  # hashes and "via" annotations are indented
        requirement = Requirement(line.rstrip(" \\"))
        if requirement.marker is None or requirement.marker.evaluate({"extra": "dev"}):
            pins[requirement.name.lower()] = str(requirement.specifier).removeprefix("==")
    return pins


def _normalised(requirement: str) -> str:
    parsed = Requirement(requirement)
    parsed.name = canonicalize_name(parsed.name)  # the lock writes `types-pyyaml` for `types-PyYAML`
    return str(parsed)


def test_the_lock_records_exactly_what_pyproject_asks_for() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    asked = {_normalised(r) for r in project["dependencies"]}
    asked |= {_normalised(f"{r}; extra == 'dev'") for r in project["optional-dependencies"]["dev"]}
    recorded = set()
    for entry in _project_entry()["metadata"]["requires-dist"]:
        extras = f"[{','.join(sorted(entry['extras']))}]" if entry.get("extras") else ""
        marker = f"; {entry['marker']}" if entry.get("marker") else ""
        recorded.add(_normalised(f"{entry['name']}{extras}{entry['specifier']}{marker}"))
    assert recorded == asked, "pyproject.toml changed since uv.lock was resolved: run `make lock`"


def test_the_layer_installs_exactly_the_locked_runtime_packages_with_their_hashes() -> None:
    exported = _export()
    assert _body(LAYER_REQUIREMENTS.read_text()) == _body(exported), (
        "layers/shared/requirements.txt is not the export of uv.lock: run `make lock`"
    )
    pins = _pins(exported)
    assert {"aws-lambda-powertools", "boto3", "pydantic", "pydantic-core", "httpx", "botocore"} <= set(pins)
    assert not {"moto", "pytest", "mypy", "uv"} & set(pins)  # no dev tool ships in the layer
    assert all("--hash=sha256:" in block for block in re.split(r"\n(?=\S)", exported) if "==" in block)


def test_the_dev_venv_runs_every_version_the_lock_pins() -> None:
    wrong = {}
    for name, version in _pins(_export("--extra", "dev")).items():
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            installed = None
        if installed != version:
            wrong[name] = (installed, version)
    assert not wrong, f"the venv differs from uv.lock (installed, locked): {wrong}; rebuild: rm -r .venv; make venv"


def test_make_bootstraps_the_uv_version_the_lock_pins() -> None:
    makefile = (REPO / "Makefile").read_text()
    bootstrapped = re.search(r"^UV_VERSION := (\S+)$", makefile, re.MULTILINE)
    locked = next(p["version"] for p in _lock()["package"] if p["name"] == "uv")
    assert bootstrapped is not None and bootstrapped[1] == locked
