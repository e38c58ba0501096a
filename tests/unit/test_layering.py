"""The layer's rooms stay apart (issue 17's seam):
- `state/` (the only code that touches DynamoDB) stores the neutral types of `models/` and imports no domain package,
  so a sync rule can change without the store following;
- the sync domain reaches the store only through the ports it declares, imports no POS profile, and names no POS
  field (every field and query name of contracts/xseries.json and rseries.json that eCom's contract lacks): vendor
  knowledge lives in `profiles/<pos>/`, so a third POS is a new profile, not an edit of six domain packages."""

from __future__ import annotations

import ast
import json
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


PROFILES = "profiles"
CONTRACTS = PACKAGE.parents[2] / "contracts"
# Words of our own vocabulary (message, ledger and state fields) or eCom's (its webhook groups, e.g. "return") that a
# POS contract also uses.
OUR_WORDS = frozenset(
    {"version", "state", "source", "reason", "note", "after", "inventory", "enabled", "date", "completed", "return"}
)


def _property_names(node: object, found: set[str]) -> set[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "properties" and isinstance(value, dict):
                found.update(value)
            _property_names(value, found)
    elif isinstance(node, list):
        for value in node:
            _property_names(value, found)
    return found


def _fields(api: str) -> set[str]:
    contract = json.loads((CONTRACTS / f"{api}.json").read_text())
    names = _property_names(contract, set())
    for route in contract["routes"]:
        names.update(route.get("query") or {})
    return names


def _pos_only_fields() -> frozenset[str]:
    """Every field and query name the POS contracts declare that eCom's does not: naming one is vendor knowledge."""
    return frozenset((_fields("xseries") | _fields("rseries")) - _fields("ecom") - OUR_WORDS)


def _string_literals(path: Path) -> set[str]:
    return {
        node.value
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    }


def _named_vendor_fields() -> dict[str, set[str]]:
    vendor = _pos_only_fields()
    named: dict[str, set[str]] = {}
    for package in SYNC_DOMAIN:
        for path in sorted((PACKAGE / package).glob("*.py")):
            hits = _string_literals(path) & vendor
            if hits:
                named[f"{package}/{path.name}"] = hits
    return named


def test_no_domain_package_imports_a_pos_profile() -> None:
    offenders = {
        f"{package}/{path.name}"
        for package in (*SYNC_DOMAIN, "models", "state")
        for path in sorted((PACKAGE / package).glob("*.py"))
        if PROFILES in _imported_packages(path)
    }
    assert offenders == set(), f"only runtime wires a profile in; these import one: {sorted(offenders)}"


def test_the_sync_domain_names_no_pos_field() -> None:
    """Vendor field names live in the profiles (`profiles/<pos>/`): the domain speaks `models/` types."""
    assert _named_vendor_fields() == {}, "a POS field belongs in its profile"


def test_the_field_checker_knows_vendor_names_from_the_contracts(tmp_path: Path) -> None:
    vendor = _pos_only_fields()
    assert {"variant_parent_id", "inventory_level", "itemMatrixID", "qoh", "timeStamp"} <= vendor
    assert not {"priceIncl", "stockLevel", "variant", "version"} & vendor  # eCom's and our own words
    probe = tmp_path / "probe.py"
    probe.write_text('def level(row):\n    return row["inventory_level"]\n')
    assert _string_literals(probe) & vendor == {"inventory_level"}
