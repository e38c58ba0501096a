"""The layer's rooms stay apart: `state/` (the only code that touches DynamoDB) stores the neutral types of
`models/` and imports no domain package, so a sync rule can change without the store following, and a second POS
profile can reuse the store as it is (issue 17's seam)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "layers" / "shared" / "pos_ecom_sync"
DOMAIN = {"catalog", "reconcile", "orders", "stock", "status", "intake", "connectors", "workers", "runtime"}


def _imported_packages(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = [node.module] if isinstance(node, ast.ImportFrom) and node.module else []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "pos_ecom_sync" and len(parts) > 1:
                found.add(parts[1])
    return found


def test_the_state_store_imports_no_domain_package() -> None:
    offenders = {
        path.name: sorted(_imported_packages(path) & DOMAIN)
        for path in sorted((PACKAGE / "state").glob("*.py"))
        if _imported_packages(path) & DOMAIN
    }
    assert offenders == {}, f"state/ must store models/ types only: {offenders}"


SYNC_DOMAIN = ("catalog", "reconcile", "orders", "stock", "status", "intake")


def test_the_sync_domain_reaches_the_store_only_through_its_ports() -> None:
    """Records (ledger, cursors, parked rows, tokens) live in `models/`; a domain package names a store only as a
    Protocol it declares, and `runtime` wires the DynamoDB one in."""
    offenders = {
        f"{package}/{path.name}": "state"
        for package in SYNC_DOMAIN
        for path in sorted((PACKAGE / package).glob("*.py"))
        if "state" in _imported_packages(path)
    }
    assert offenders == {}, f"a domain package imports state/: {offenders}"


def test_the_checker_sees_a_domain_import(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text("from pos_ecom_sync.catalog.planning import plan_family\nimport pos_ecom_sync.models.catalog\n")
    assert _imported_packages(probe) == {"catalog", "models"}
