"""Checks a `sam build` output is what Lambda (python3.13, arm64) can run: `python -m local_stack.check_build DIR`.

`sam build` succeeding is not enough: a layer built with the host's wheels would import fine here and fail
in Lambda with "No module named pydantic_core._pydantic_core".
"""

from __future__ import annotations

import sys
from pathlib import Path

from local_stack.cfn_yaml import load_template


def problems_in(build_dir: Path) -> list[str]:
    template = load_template(build_dir / "template.yaml")
    found: list[str] = []
    for logical, resource in template["Resources"].items():
        kind = resource["Type"]
        if kind == "AWS::Serverless::LayerVersion":
            found += _layer_problems(build_dir / logical / "python")
        elif kind == "AWS::Serverless::Function":
            handler_file = build_dir / logical / "app.py"
            if not handler_file.is_file():
                found.append(f"{logical}: no app.py in the build")
    return found


def _layer_problems(site: Path) -> list[str]:
    if not (site / "pos_ecom_sync" / "runtime.py").is_file():
        return [f"{site}: the pos_ecom_sync package is missing"]
    found = []
    cores = list(site.glob("pydantic_core/_pydantic_core.*.so"))
    if not cores or not all("cpython-313-aarch64-linux-gnu" in core.name for core in cores):
        found.append(f"{site}: pydantic_core is not built for cp313/aarch64: {[c.name for c in cores]}")
    stray = [p for p in site.rglob("*.pyc") if ".cpython-313." not in p.name]
    if stray:
        found.append(f"{site}: {len(stray)} .pyc files for another Python, e.g. {stray[0]}")
    sources, missing = bytecode_coverage(site / "pos_ecom_sync")
    if missing and len(missing) < sources:  # compiled, but not all of it: a partial build
        found.append(f"{site}: {len(missing)} of {sources} pos_ecom_sync modules lack cpython-313 bytecode")
    return found


def bytecode_coverage(package: Path) -> tuple[int, list[Path]]:
    """(modules in the package, those without a cpython-313 .pyc beside them in __pycache__)."""
    sources = list(package.rglob("*.py"))
    missing = [p for p in sources if not (p.parent / "__pycache__" / f"{p.stem}.cpython-313.pyc").is_file()]
    return len(sources), missing


def bytecode_note(build_dir: Path) -> str:
    """What the build says about the layer's bytecode (the `make sam-build` line that proves it)."""
    template = load_template(build_dir / "template.yaml")
    notes = []
    for logical, resource in template["Resources"].items():
        if resource["Type"] == "AWS::Serverless::LayerVersion":
            site = build_dir / logical / "python"
            sources, missing = bytecode_coverage(site / "pos_ecom_sync")
            compiled = len(list(site.rglob("*.cpython-313.pyc")))
            if missing:
                notes.append(f"{logical} ships sources only (no python3.13 at build: slower cold starts)")
            else:
                notes.append(f"{logical} carries cpython-313 bytecode: {compiled} .pyc, all {sources} of our modules")
    return "; ".join(notes)


def main(argv: list[str]) -> int:
    build_dir = Path(argv[1] if len(argv) > 1 else ".aws-sam/build")
    found = problems_in(build_dir)
    for problem in found:
        print(f"build check: {problem}", file=sys.stderr)
    if not found:
        print(f"build check: {build_dir} holds a python3.13/arm64 layer and every function")
        print(f"build check: {bytecode_note(build_dir)}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
