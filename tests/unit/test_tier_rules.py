"""What the unit tier may use: a test module importing moto belongs in tests/integration, and a unit test opening a
socket fails (tests/unit/conftest.py)."""

from __future__ import annotations

import ast
import socket
from pathlib import Path

import pytest
from pytest_socket import SocketBlockedError

UNIT = Path(__file__).resolve().parent


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_no_unit_test_module_uses_the_aws_emulator() -> None:
    offenders = sorted(p.name for p in UNIT.glob("*.py") if "moto" in _imports(p))
    assert offenders == [], f"moto-backed tests belong in tests/integration: {offenders}"


@pytest.mark.filterwarnings("ignore:A test tried to use socket")
def test_a_unit_test_that_opens_a_socket_fails() -> None:
    with pytest.raises(SocketBlockedError):
        socket.create_connection(("127.0.0.1", 9), timeout=0.1)
