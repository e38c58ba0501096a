"""The unit tier proves pure rules: no network (pytest-socket's `socket_disabled` on every test, so a rule that
reaches for a socket fails here instead of passing slowly), no AWS emulator (tests/unit/test_tier_rules.py)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _no_network(socket_disabled: None) -> None:
    """Every unit test runs with sockets disabled (subprocesses, such as `uv export`, are not affected)."""
