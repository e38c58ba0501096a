"""Which IAM actions each function's code needs, recorded from the AWS calls it makes while the local stack runs.

A botocore `before-parameter-build` hook on the default boto3 session (the one `pos_ecom_sync.runtime` builds its
clients from) notes every operation made inside a function invocation (`local_stack.functions.current_function`)
as the IAM action(s) AWS authorises it by: tests compare them with each function's grants in template.yaml.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from typing import Any

import boto3

from local_stack.functions import current_function

# Operations authorised by another action name, or by one action per item (DynamoDB transactions).
BATCH_ACTIONS = {
    "sqs:SendMessageBatch": "sqs:SendMessage",
    "sqs:DeleteMessageBatch": "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibilityBatch": "sqs:ChangeMessageVisibility",
}
TRANSACT_ITEM_ACTIONS = {
    "Put": "dynamodb:PutItem",
    "Update": "dynamodb:UpdateItem",
    "Delete": "dynamodb:DeleteItem",
    "ConditionCheck": "dynamodb:ConditionCheckItem",
}


def iam_actions(service: str, operation: str, params: dict[str, Any]) -> set[str]:
    if (service, operation) == ("dynamodb", "TransactWriteItems"):
        return {TRANSACT_ITEM_ACTIONS[kind] for item in params.get("TransactItems", []) for kind in item}
    if (service, operation) == ("dynamodb", "TransactGetItems"):
        return {"dynamodb:GetItem"}
    action = f"{service}:{operation}"
    return {BATCH_ACTIONS.get(action, action)}


class AwsCallRecorder:
    """`calls[function]` = the IAM actions of every AWS call the function made since `start()`."""

    def __init__(self) -> None:
        self.calls: dict[str, set[str]] = defaultdict(set)
        self._lock = threading.Lock()
        self._events: Any = None

    def _before_call(self, model: Any, params: dict[str, Any], **_: Any) -> None:  # the API's own parameters
        function = current_function()
        if function is None:
            return
        actions = iam_actions(model.service_model.signing_name, model.name, params)
        with self._lock:
            self.calls[function] |= actions

    def start(self) -> None:
        """Record calls of clients created from now on (botocore copies a session's hooks into each new client)."""
        self._events = boto3._get_default_session().events
        self._events.register("before-parameter-build", self._before_call, unique_id="local-stack-aws-calls")

    def stop(self) -> None:
        if self._events is not None:
            self._events.unregister("before-parameter-build", unique_id="local-stack-aws-calls")
