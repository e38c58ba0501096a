"""DynamoDB failures in domain terms, in one place for every store module.

A lost condition is an outcome the caller decides on (a race lost, a duplicate); anything else from
DynamoDB or botocore is `UpstreamUnavailable`, which workers retry and the webhook API answers with 503.
"""

from __future__ import annotations

from botocore.exceptions import ClientError

from pos_ecom_sync.errors import UpstreamUnavailable

CONDITION_FAILED = "ConditionalCheckFailedException"


def unavailable(action: str, exc: Exception) -> UpstreamUnavailable:
    return UpstreamUnavailable(f"dynamodb {action} failed: {exc}")


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def is_condition_failure(exc: ClientError) -> bool:
    return error_code(exc) == CONDITION_FAILED
