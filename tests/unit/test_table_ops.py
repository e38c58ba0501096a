"""The shared bulk operations (`state.table_ops`): what DynamoDB leaves unprocessed is sent again, with backoff, and
a batch it keeps refusing is an `UpstreamUnavailable` (retried by the message), never a silent loss."""

from __future__ import annotations

from typing import Any

import pytest
from pos_ecom_sync.errors import UpstreamUnavailable
from pos_ecom_sync.state.table_ops import BATCH_ATTEMPTS, batch_put, batch_read


class Throttling:
    """A client that leaves the last request of each call unprocessed for its first `refusals` calls."""

    def __init__(self, refusals: int) -> None:
        self.refusals = refusals
        self.sent: list[list[Any]] = []
        self.stored: list[Any] = []

    def _split(self, requests: list[Any]) -> tuple[list[Any], list[Any]]:
        self.sent.append(requests)
        if self.refusals:
            self.refusals -= 1
            return requests[:-1], requests[-1:]
        return requests, []

    def batch_write_item(self, RequestItems: dict[str, list[Any]]) -> dict[str, Any]:
        done, left = self._split(RequestItems["t"])
        self.stored += [r["PutRequest"]["Item"] for r in done]
        return {"UnprocessedItems": {"t": left} if left else {}}

    def batch_get_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
        done, left = self._split(RequestItems["t"]["Keys"])
        return {"Responses": {"t": done}, "UnprocessedKeys": {"t": {"Keys": left}} if left else {}}


def test_a_bulk_put_sends_25_a_call_and_again_what_dynamodb_left_unprocessed() -> None:
    client, pauses = Throttling(refusals=2), []
    items = [{"sk": n} for n in range(30)]

    batch_put(client, "t", items, "marks", sleep=pauses.append)

    assert sorted(i["sk"] for i in client.stored) == list(range(30))
    assert [len(call) for call in client.sent] == [25, 1, 1, 5]
    assert pauses == [0.05, 0.1]


def test_a_bulk_read_returns_every_item_once_dynamodb_processed_them_all() -> None:
    client = Throttling(refusals=1)
    found = batch_read(client, "t", [{"sk": n} for n in range(3)], "links", sleep=lambda s: None)
    assert sorted(i["sk"] for i in found) == [0, 1, 2] and len(client.sent) == 2


def test_a_batch_dynamodb_keeps_refusing_is_an_upstream_failure() -> None:
    client = Throttling(refusals=BATCH_ATTEMPTS)
    with pytest.raises(UpstreamUnavailable, match="kept 1 marks write"):
        batch_put(client, "t", [{"sk": 1}, {"sk": 2}], "marks", sleep=lambda s: None)
