"""Builders shared by tests: API Gateway v2 events, Lambda contexts, vendor-shaped webhook bodies, test clocks."""

from __future__ import annotations

import functools
import hashlib
import json
import random
import socket
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from pos_ecom_sync.catalog.mapping import DesiredProduct, map_family
from pos_ecom_sync.profiles.xseries.mapping import PosProduct, family_of_rows

from local_stack.demo import DEMO_SECRETS as DEMO_SECRETS
from local_stack.lambda_events import LambdaContext as LambdaContext
from local_stack.lambda_events import api_gateway_v2_event


def api_event(
    method: str,
    path: str,
    route: str,
    path_parameters: dict[str, str],
    body: bytes,
    headers: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    base64_body: bool = False,
) -> dict[str, Any]:
    return api_gateway_v2_event(method, path, route, path_parameters, body, headers, query, base64_body)


def pos_webhook_event(
    connection_id: str, body: bytes, token: str | None = DEMO_SECRETS["pos_webhook_token"], **kwargs: Any
) -> dict[str, Any]:
    headers = {"Content-Type": "application/x-www-form-urlencoded; charset=UTF-8", **kwargs.pop("headers", {})}
    return api_event(
        "POST",
        f"/connections/{connection_id}/webhooks/pos",
        "POST /connections/{connection_id}/webhooks/pos",
        {"connection_id": connection_id},
        body,
        headers=headers,
        query={"token": token} if token is not None else None,
        **kwargs,
    )


def ecom_webhook_event(
    connection_id: str, body: bytes, secret: str | None = DEMO_SECRETS["ecom_webhook_secret"], **kwargs: Any
) -> dict[str, Any]:
    headers = {"Content-Type": "application/json", **kwargs.pop("headers", {})}
    if secret is not None:
        headers.setdefault("x-signature", ecom_signature(body, secret))
    return api_event(
        "POST",
        f"/connections/{connection_id}/webhooks/ecom",
        "POST /connections/{connection_id}/webhooks/ecom",
        {"connection_id": connection_id},
        body,
        headers=headers,
        **kwargs,
    )


def ecom_signature(body: bytes, secret: str) -> str:
    return hashlib.md5(body + secret.encode(), usedforsecurity=False).hexdigest()


def pos_form(webhook_type: str | None, payload: dict[str, Any] | str) -> bytes:
    fields = {"domain_prefix": "demo", "environment": "prod", "retailer_id": "0a1b0000-0000-11ee-8c90-00000000000a"}
    if webhook_type:
        fields["type"] = webhook_type
    fields["payload"] = payload if isinstance(payload, str) else json.dumps(payload)
    return urlencode(fields).encode()


INVENTORY_PAYLOAD = {
    "id": "inv-0001",
    "product_id": "0a1b0000-aaaa-11ee-8c90-000000000002",
    "outlet_id": "0a1b0000-cccc-11ee-8c90-000000000001",
    "count": 5,
    "reorder_point": "2",
    "restock_level": "10",
    "attributed_cost": "12.00",
}

ORDER_BODY = {
    "order": {
        "id": 5501042,
        "number": "ORD10042",
        "status": "processing_awaiting_shipment",
        "paymentStatus": "paid",
        "shipmentStatus": "not_shipped",
        "updatedAt": "2026-11-22T09:00:00+00:00",
    }
}


class RunningClock:
    """A simulated vendor's clock that runs with real time and that a test can also move ahead (`sleep`).

    A vendor's clock never stands still: a simulator on a frozen clock counts every request into one burst second
    and never drains its bucket, so its rate headers tell our client to wait about a second for each request (ours
    runs on real time). Use this where the test needs later stamps, not exact ones; `ManualClock` where it does."""

    def __init__(self, start: float) -> None:
        self._offset = start - time.monotonic()

    def __call__(self) -> float:
        return time.monotonic() + self._offset

    def sleep(self, seconds: float) -> None:
        self._offset += seconds


class ManualClock:
    """A clock the test moves by setting `now` or by `sleep` (seconds), for code that takes `clock: Callable[[],
    float]`."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now
        self.slept: list[float] = []  # every sleep, for tests of how long code waited

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def drain_queue(sqs: Any, queue_url: str) -> list[dict[str, Any]]:
    """Every message currently visible on a queue (received and deleted)."""
    messages: list[dict[str, Any]] = []
    while True:
        batch = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, AttributeNames=["All"], WaitTimeSeconds=0
        ).get("Messages", [])
        if not batch:
            return messages
        messages.extend(batch)
        sqs.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)],
        )


def free_port() -> int:
    """A port on 127.0.0.1 nothing listens on now, below the ephemeral range. A port the OS picks comes from that
    range, from which every outgoing connection also takes its source port: with the suite's loopback traffic, one
    could take it before the server bound it (EADDRINUSE). Random (not the seeded `random`), so workers differ."""
    low = _ephemeral_low()
    for _ in range(200):
        port = _PORTS.randrange(max(1024, low - 12000), low)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port below the ephemeral range")


_PORTS = random.SystemRandom()


@functools.cache  # the machine's range, read once per process
def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


def map_xseries_family(
    parent: PosProduct, variants: list[PosProduct], *, online_prices_excl: Mapping[str, float] | None = None
) -> DesiredProduct:
    """What eCom should hold for an X-Series family of rows: the X-Series profile's mapping to the neutral family,
    then the catalog's mapping to eCom (the path the product worker takes)."""
    return map_family(family_of_rows(parent, variants, online_prices_excl=online_prices_excl))
