"""DynamoDB failures in domain terms, in one place for every store module.

A lost condition is an outcome the caller decides on (a race lost, a duplicate); anything else from
DynamoDB or botocore is `UpstreamUnavailable`, which workers retry and the webhook API answers with 503.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from pos_ecom_sync.errors import UpstreamUnavailable

T = TypeVar("T")

CONDITION_FAILED = "ConditionalCheckFailedException"


def unavailable(action: str, exc: Exception) -> UpstreamUnavailable:
    return UpstreamUnavailable(f"dynamodb {action} failed: {exc}")


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def is_condition_failure(exc: ClientError) -> bool:
    return error_code(exc) == CONDITION_FAILED


def conditional_write(action: str, write: Callable[[], T]) -> T | None:
    """One conditional DynamoDB write: its answer, None when its condition did not hold (a race lost: the caller
    decides), UpstreamUnavailable for any other failure."""
    try:
        return write()
    except ClientError as exc:
        if is_condition_failure(exc):
            return None
        raise unavailable(action, exc) from exc
    except BotoCoreError as exc:
        raise unavailable(action, exc) from exc
