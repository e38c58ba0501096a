"""The CLI's modules import each other one way only: `main` wires the command groups, which share `common` and
`vendors`; none reaches back into `main` or imports inside a function to dodge a cycle."""

from __future__ import annotations

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

CLI = Path(__file__).resolve().parents[2] / "pos_ecom_sync_cli"
PACKAGE = CLI.name


def _imports(tree: ast.AST) -> list[tuple[ast.stmt, str]]:
    found: list[tuple[ast.stmt, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [f"{node.module}.{alias.name}" for alias in node.names] if node.module == PACKAGE else [node.module]
            found += [(node, name) for name in names]
        elif isinstance(node, ast.Import):
            found += [(node, alias.name) for alias in node.names]
    return [(node, name.split(".")[1]) for node, name in found if name.startswith(f"{PACKAGE}.")]


def _trees() -> dict[str, ast.Module]:
    return {path.stem: ast.parse(path.read_text()) for path in sorted(CLI.glob("*.py"))}


def test_no_cli_module_imports_another_inside_a_function() -> None:
    lazy = []
    for name, tree in _trees().items():
        top_level = set(map(id, tree.body))
        lazy += [
            f"{name}.py:{node.lineno} imports {target}" for node, target in _imports(tree) if id(node) not in top_level
        ]
    assert lazy == []


def test_the_cli_import_graph_has_no_cycle() -> None:
    graph = {name: {target for _, target in _imports(tree)} for name, tree in _trees().items()}
    assert "main" not in set().union(*graph.values())
    try:
        tuple(TopologicalSorter(graph).static_order())
    except CycleError as cycle:
        pytest.fail(f"import cycle: {cycle.args[1]}")
