"""moto, made as atomic as DynamoDB: a conditional write checks and writes as one step (local_stack/dynamodb_atomic.py).

Without it, two pollers that read one cursor could both advance it under load, a race real DynamoDB never has.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import boto3
import pytest
from moto.dynamodb.parsing.executors import UpdateExpressionExecutor
from pos_ecom_sync.state.store import SyncStore


def test_two_conditional_writes_from_one_value_never_both_succeed(
    sync_table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = SyncStore(sync_table, resource=boto3.resource("dynamodb", region_name="us-east-1"))
    assert store.advance_cursor("shop", store.get_cursor("shop", "pos:products"), "1")
    read_once = store.get_cursor("shop", "pos:products")
    execute = UpdateExpressionExecutor.execute

    def slow_write(self: UpdateExpressionExecutor, *args: Any, **kwargs: Any) -> Any:
        time.sleep(0.05)  # widen the window between moto's condition check and its write
        return execute(self, *args, **kwargs)

    monkeypatch.setattr(UpdateExpressionExecutor, "execute", slow_write)
    moved: list[bool] = []
    threads = [
        threading.Thread(target=lambda v=v: moved.append(store.advance_cursor("shop", read_once, v))) for v in "23"
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(moved) == [False, True]
    assert store.get_cursor("shop", "pos:products").value in {"2", "3"}
