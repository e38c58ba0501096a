"""No personal data or secret reaches any log line, at DEBUG, third-party loggers included.

The whole stack runs with every log level at DEBUG (ours and httpx/botocore/urllib3). A shopper with a distinctive
name and e-mail places an order that is imported (the POS customer search carries the e-mail in its URL) and
shipped; every log record emitted inside a function invocation is captured as a handler would write it, message and
extra fields, and searched for the shopper's e-mail, names and street, and for every credential of the connection.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from typing import Any

import pytest

from local_stack.demo import DEMO_SECRETS
from tests.e2e.conftest import FunctionLogCapture, LiveStack, capture_function_logs

pytestmark = pytest.mark.e2e

EMAIL = "wilhelmina.quackenbush@privacy-test.example"
FIRST, LAST = "Wilhelmina", "Quackenbush"
STREET = "Quay St"


@pytest.fixture(scope="module")
def debug_everywhere() -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in ("LOG_LEVEL", "THIRD_PARTY_LOG_LEVEL")}
    os.environ["LOG_LEVEL"] = "DEBUG"  # the local stack's POWERTOOLS_LOG_LEVEL
    os.environ["THIRD_PARTY_LOG_LEVEL"] = "DEBUG"
    yield
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(scope="module")
def captured(debug_everywhere: None, live_stack: LiveStack) -> Iterator[tuple[LiveStack, FunctionLogCapture]]:
    with capture_function_logs(logging.DEBUG) as capture:
        yield live_stack, capture


def _secret_values(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [s for v in value.values() for s in _secret_values(v)]
    return [value] if isinstance(value, str) and len(value) >= 8 else []


def test_an_order_flow_at_debug_logs_no_email_name_address_or_credential(
    captured: tuple[LiveStack, FunctionLogCapture],
) -> None:
    live, capture = captured
    live.import_catalog()
    variant = live.variants_in_stock()[0]
    order = live.ecom.place_order(
        [{"variant_id": variant["id"], "quantity": 1}], email=EMAIL, firstname=FIRST, lastname=LAST
    )

    def imported() -> str | None:
        record = live.order_store().get_order(live.connection_id, order["id"])
        return record.sale_id if record is not None and record.status == "imported" else None

    sale_id = live.wait_until(imported, timeout=60, what="the order imported")
    assert any(c.get("email") == EMAIL for c in live.pos.customers()), "the POS customer was searched and created"
    live.ecom.create_shipment(order["id"])
    live.wait_until(lambda: [f["state"] for f in live.pos.fulfillments(sale_id)] == ["FULFILLED"], what="fulfilled")

    logged = "\n".join(capture.lines)
    assert len(capture.lines) > 100, "DEBUG logging was on for our functions and the third-party libraries"
    assert any(" httpx " in line for line in capture.lines), "httpx request lines were captured"
    assert any(" botocore" in line for line in capture.lines), "botocore DEBUG lines were captured"
    forbidden = {"e-mail": EMAIL, "e-mail (URL-encoded)": EMAIL.replace("@", "%40"), "first name": FIRST,
                 "last name": LAST, "street": STREET}  # fmt: skip
    forbidden |= {f"credential {i}": value for i, value in enumerate(_secret_values(DEMO_SECRETS))}
    leaks = {what: next(line for line in capture.lines if value in line)[:300] for what, value in forbidden.items()
             if value in logged}  # fmt: skip
    assert not leaks, leaks
