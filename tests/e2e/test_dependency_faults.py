"""A dependency that stops answering: the webhook function answers 503 well inside the vendor's ~5 s delivery timeout
(so the vendor retries later) instead of hanging until its own 10 s timeout, and the retried delivery is queued once
the dependency is back: nothing lost."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator

import httpx
import pytest
from pos_ecom_sync import runtime

from local_stack.demo import DEMO_SECRETS
from tests.e2e.conftest import LiveStack
from tests.support import pos_form

pytestmark = pytest.mark.e2e


@pytest.fixture
def black_holed_sqs() -> Iterator[None]:
    """SQS behind an address that accepts connections and never answers (the listening socket never accepts)."""
    hole = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    hole.bind(("127.0.0.1", 0))
    hole.listen(64)
    os.environ["AWS_ENDPOINT_URL_SQS"] = f"http://127.0.0.1:{hole.getsockname()[1]}"
    runtime.reset()  # a warm sandbox would hold its client; a new one reads the endpoint
    try:
        yield
    finally:
        os.environ.pop("AWS_ENDPOINT_URL_SQS", None)
        runtime.reset()
        hole.close()


def test_a_black_holed_queue_gives_a_503_in_under_5_seconds_and_the_retry_is_queued(
    live_stack: LiveStack, black_holed_sqs: None
) -> None:
    live = live_stack
    product = next(p for p in live.pos.products() if p["variant_parent_id"])
    outlet = live.pos.outlets()[0]["id"]
    payload = {"id": "inv-fault", "product_id": product["id"], "outlet_id": outlet, "count": 3, "version": 10**9}
    url = f"{live.api_url}/connections/{live.connection_id}/webhooks/pos?token={DEMO_SECRETS['pos_webhook_token']}"
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    body = pos_form("inventory.update", payload)

    started = time.monotonic()
    answer = httpx.post(url, content=body, headers=headers, timeout=15)
    elapsed = time.monotonic() - started
    assert answer.status_code == 503, answer.text
    assert elapsed < 5, f"503 after {elapsed:.1f} s"
    assert "retry" in answer.json()["error"]

    os.environ.pop("AWS_ENDPOINT_URL_SQS")
    runtime.reset()
    retried = httpx.post(url, content=body, headers=headers, timeout=15)
    assert retried.status_code == 202 and retried.json()["outcome"] == "queued", retried.text
