"""`dynamodb_call`: every store's DynamoDB failures in domain terms, without DynamoDB (errors made by hand)."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from pos_ecom_sync.errors import Conflict, UpstreamUnavailable
from pos_ecom_sync.state.dynamodb_errors import TRANSACTION_CANCELED, conditional_write, dynamodb_call


def refused(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "refused"}}, "PutItem")


CONDITION = refused("ConditionalCheckFailedException")


def dynamodb_refuses() -> None:
    raise CONDITION


@pytest.mark.parametrize(
    "failure", [refused("ProvisionedThroughputExceededException"), EndpointConnectionError(endpoint_url="x")]
)
def test_any_dynamodb_or_botocore_failure_is_upstream_unavailable_naming_the_action(failure: Exception) -> None:
    with pytest.raises(UpstreamUnavailable) as raised, dynamodb_call("get order"):
        raise failure
    assert raised.value.message.startswith("dynamodb get order failed: ")
    assert raised.value.__cause__ is failure


def test_a_refused_condition_is_unavailable_unless_the_caller_says_what_it_means() -> None:
    with pytest.raises(UpstreamUnavailable), dynamodb_call("save"):
        raise CONDITION
    with (
        pytest.raises(Conflict, match="already exists") as raised,
        dynamodb_call("save", on_condition_failure=lambda: Conflict("already exists")),
    ):
        raise CONDITION
    assert raised.value.__cause__ is CONDITION


def test_an_allowed_refusal_ends_the_block_and_is_left_to_the_caller() -> None:
    reached = []
    with dynamodb_call("advance cursor", allow_condition_failure=True) as call:
        dynamodb_refuses()
        reached.append("after the refused call")
    assert call.condition_failed and call.condition_failure is CONDITION and reached == []
    with dynamodb_call("advance cursor", allow_condition_failure=True) as call:
        pass
    assert not call.condition_failed
    assert conditional_write("take lease", lambda: 1) == 1
    assert conditional_write("take lease", dynamodb_refuses) is None


def test_a_cancelled_transaction_is_the_refusal_only_where_the_caller_says_so() -> None:
    cancelled = refused(TRANSACTION_CANCELED)
    with (
        pytest.raises(Conflict),
        dynamodb_call("save state", on_condition_failure=lambda: Conflict("lost"), condition_code=TRANSACTION_CANCELED),
    ):
        raise cancelled
    with pytest.raises(UpstreamUnavailable), dynamodb_call("save", on_condition_failure=lambda: Conflict("lost")):
        raise cancelled


def test_errors_that_are_not_dynamodb_pass_through_untouched() -> None:
    with pytest.raises(KeyError), dynamodb_call("get order"):
        raise KeyError("settings")
