"""One id follows a change end to end: the webhook's answer names it, and the worker that handles the change logs
it on its lines; a poll run's id reaches the workers of the changes it queued."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from local_stack.demo import DEMO_SECRETS
from local_stack.simulators.common import Faults
from tests.e2e.conftest import FunctionLogCapture, LiveStack, capture_function_logs
from tests.support import pos_form

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def captured(live_stack: LiveStack) -> Iterator[tuple[LiveStack, FunctionLogCapture]]:
    live_stack.import_catalog()
    with capture_function_logs() as capture:
        yield live_stack, capture


def test_a_webhooks_correlation_id_is_on_the_log_lines_of_the_worker_that_syncs_its_change(
    captured: tuple[LiveStack, FunctionLogCapture],
) -> None:
    live, capture = captured
    product = next(p for p in live.pos.products() if p["variant_parent_id"])
    outlet = live.pos.outlets()[0]["id"]
    payload = {"id": "inv-corr", "product_id": product["id"], "outlet_id": outlet, "count": 3}
    url = f"{live.api_url}/connections/{live.connection_id}/webhooks/pos?token={DEMO_SECRETS['pos_webhook_token']}"
    answer = httpx.post(
        url,
        content=pos_form("inventory.update", payload),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert answer.status_code == 202, answer.text
    correlation_id = answer.json()["correlation_id"]

    assert correlation_id in capture.correlation_ids("WebhookIngestFunction")
    live.wait_until(
        lambda: correlation_id in capture.correlation_ids("StockSyncFunction"),
        what="stock_sync logging the webhook's correlation id",
    )


def test_a_poll_runs_id_reaches_the_worker_of_an_order_only_the_poll_found(
    captured: tuple[LiveStack, FunctionLogCapture],
) -> None:
    live, capture = captured
    variant = live.variants_in_stock()[0]
    live.ecom.set_faults(Faults(webhook_loss_rate=1.0))  # the shopper's orders/created webhook is lost
    try:
        order = live.ecom.place_order([{"variant_id": variant["id"], "quantity": 1}], email="corr@example.com")
    finally:
        live.ecom.set_faults(Faults())
    live.poll()
    runs = {c for c in capture.correlation_ids("ChangePollerFunction") if c.startswith("poll-")}
    assert len(runs) == 1, runs
    live.wait_until(
        lambda: live.order_store().get_order(live.connection_id, order["id"]), what="the order imported by the sweep"
    )
    live.wait_until(lambda: runs <= capture.correlation_ids("OrderImportFunction"), what="order_import logging the id")
