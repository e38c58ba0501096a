"""DynamoDB failures in domain terms, in one place for every store module.

A lost condition is an outcome the caller decides on (a race lost, a duplicate); anything else from
DynamoDB or botocore is `UpstreamUnavailable`, which workers retry and the webhook API answers with 503.
Store methods wrap their calls in `with dynamodb_call(action, ...)` rather than writing the translation out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from pos_ecom_sync.errors import UpstreamUnavailable

T = TypeVar("T")

CONDITION_FAILED = "ConditionalCheckFailedException"
# A transaction whose condition failed (or that collided with another write) is cancelled as a whole.
TRANSACTION_CANCELED = "TransactionCanceledException"


def unavailable(action: str, exc: Exception) -> UpstreamUnavailable:
    return UpstreamUnavailable(f"dynamodb {action} failed: {exc}")


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


@dataclass
class DynamoCall:
    """What a `dynamodb_call` block let through to its caller: the refused condition, when it allowed one."""

    condition_failure: ClientError | None = None

    @property
    def condition_failed(self) -> bool:
        return self.condition_failure is not None


@contextmanager
def dynamodb_call(
    action: str,
    *,
    on_condition_failure: Callable[[], Exception] | None = None,
    allow_condition_failure: bool = False,
    condition_code: str = CONDITION_FAILED,
) -> Iterator[DynamoCall]:
    """The block's DynamoDB calls with their failures in domain terms: `unavailable(action, exc)` for any
    ClientError or BotoCoreError, except a refused condition (`condition_code`; a transaction reports
    `TransactionCanceledException`), which raises `on_condition_failure()` when given, or, with
    `allow_condition_failure`, ends the block quietly and is left on the yielded `DynamoCall` for the caller."""
    if on_condition_failure is not None and allow_condition_failure:
        raise ValueError("a refused condition is either raised as the given error or left to the caller, not both")
    call = DynamoCall()
    try:
        yield call
    except ClientError as exc:
        if error_code(exc) == condition_code:
            if on_condition_failure is not None:
                raise on_condition_failure() from exc
            if allow_condition_failure:
                call.condition_failure = exc
                return
        raise unavailable(action, exc) from exc
    except BotoCoreError as exc:
        raise unavailable(action, exc) from exc


def conditional_write(action: str, write: Callable[[], T]) -> T | None:
    """One conditional DynamoDB write: its answer, None when its condition did not hold (a race lost: the caller
    decides), UpstreamUnavailable for any other failure."""
    with dynamodb_call(action, allow_condition_failure=True):
        return write()
    return None
