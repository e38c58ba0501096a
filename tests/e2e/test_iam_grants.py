"""Least privilege, proven on the running stack: every function is granted exactly the AWS actions its code calls.

The local stack runs each function from template.yaml; a botocore hook records every AWS call made inside an
invocation (`local_stack.aws_calls`). Flows that touch every function run first; then each function's recorded
actions must all be granted in the template (no less) and each granted action must have been used, or be listed
below with the code path that needs it (no more).
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from pos_ecom_sync.connectors.ecom import EcomClient
from pos_ecom_sync.ratelimit import InMemoryRateBudget

from local_stack.aws_calls import AwsCallRecorder
from local_stack.cfn_yaml import load_template
from local_stack.demo import DEMO_SECRETS
from local_stack.functions import LocalFunction
from local_stack.provision import TEMPLATE_PATH
from tests.e2e.conftest import LiveStack

pytestmark = pytest.mark.e2e

# Lambda's SQS event source mapping polls, deletes and reads the queue with the function's role: never the code.
EVENT_SOURCE_MAPPING = {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"}
# Granted for code paths these flows do not take, each named (they are proven in the integration tier).
DELAY = {
    "sqs:ChangeMessageVisibility": "delaying a throttled, busy or transiently failed record (workers.consume_changes)",
    "sqs:GetQueueUrl": "the source queue's URL for that delay",
}
NOT_EXERCISED_HERE: dict[str, dict[str, str]] = {
    "ProductSyncFunction": {
        **DELAY,
        "sqs:SendMessage": "parking a record that cannot succeed in the products DLQ (workers.DeadLetters)",
        "dynamodb:DeleteItem": "dropping the links of a variant removed from its family (state.store)",
    },
    "OrderImportFunction": {
        **DELAY,
        "sqs:SendMessage": "parking a record that cannot succeed in the orders DLQ",
        "dynamodb:DeleteItem": "a held order imported after all: its held marker goes (state.order_store)",
    },
    "StockSyncFunction": {
        **DELAY,
        "sqs:SendMessage": "parking a record, or queueing the chunks of an outlet change (stock.sync)",
        "dynamodb:Query": "an outlet change walks the connection's stock items",
        "dynamodb:BatchGetItem": "an outlet change's chunk reads its variants' stock",
    },
    "ChangePollerFunction": {
        "dynamodb:DeleteItem": "the POS customer feed dropping the index entry of a deleted or re-addressed customer "
        "(state.order_store.forget_customer; tests/integration/test_order_import_without_pos_reads.py)",
    },
    "StatusSyncFunction": {
        **DELAY,
        "sqs:SendMessage": "parking a record that cannot succeed in the statuses DLQ",
    },
}
_emails = (f"iam-grants-{n}@example.com" for n in itertools.count())


def _granted() -> dict[str, set[str]]:
    """Every function's actions from its `Policies` statements in template.yaml."""
    resources = load_template(TEMPLATE_PATH)["Resources"]
    grants: dict[str, set[str]] = {}
    for name, resource in resources.items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        actions: set[str] = set()
        for policy in resource["Properties"].get("Policies", []):
            for statement in policy["Statement"]:
                action = statement["Action"]
                actions |= {action} if isinstance(action, str) else set(action)
        grants[name] = actions
    return grants


@pytest.fixture(scope="module")
def recorded(live_stack: LiveStack) -> Iterator[tuple[LiveStack, AwsCallRecorder]]:
    from pos_ecom_sync import runtime

    recorder = AwsCallRecorder()
    recorder.start()
    cold_invoke = LocalFunction.invoke

    one_at_a_time = threading.RLock()

    def invoke_cold(self: LocalFunction, event: dict[str, Any]) -> Any:
        # Every invocation as a new sandbox, one at a time: here all functions share one process, so one
        # function's cached secret, queue URL or client would hide the call another function's sandbox must make.
        with one_at_a_time:
            runtime.reset()
            return cold_invoke(self, event)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(LocalFunction, "invoke", invoke_cold)
        try:
            yield live_stack, recorder
        finally:
            recorder.stop()
            runtime.reset()


def _drive_every_function(live: LiveStack) -> None:
    """Poll (catalog import), product edits, stock, an order and its shipment, and a reconciliation tick."""
    live.import_catalog()
    variant = live.variants_in_stock()[0]
    order = live.ecom.place_order(
        [{"variant_id": variant["id"], "quantity": 1}], email=next(_emails), shipment_title="Courier"
    )

    def imported() -> str | None:
        record = live.order_store().get_order(live.connection_id, order["id"])
        return record.sale_id if record is not None and record.status == "imported" else None

    sale_id = live.wait_until(imported, timeout=60, what="the order imported")
    live.ecom.create_shipment(order["id"])
    live.wait_until(
        lambda: [f["state"] for f in live.pos.fulfillments(sale_id)] == ["FULFILLED"], what="the sale fulfilled"
    )
    pos_variant = next(p for p in live.pos.products() if p["sku"] == variant["sku"])
    outlet = live.pos.outlets()[0]["id"]
    live.pos.set_inventory(pos_variant["id"], outlet, 41)
    live.wait_until(
        lambda: any(v["id"] == variant["id"] and v["stockLevel"] >= 41 for v in live.ecom.variants()),
        what="the stock change in eCom",
    )
    live.pos.update_product(pos_variant["id"], name="Renamed for the IAM test")
    live.poll()
    # The merchant renames a product in eCom (no webhook for that): a forced compare finds it, product_sync repairs.
    merchant = EcomClient(
        live.ecom.url, DEMO_SECRETS["ecom_api_key"], DEMO_SECRETS["ecom_api_secret"], InMemoryRateBudget()
    )
    product_id = next(v for v in live.ecom.variants() if v["id"] == variant["id"])["product"]["resource"]["id"]
    merchant.update_product(product_id, {"title": "Renamed by hand", "fulltitle": "Renamed by hand"})
    summary = live.function("ReconcileFunction").invoke({"connection_id": live.connection_id, "force": True})
    assert summary["drift"]["catalog_content"] >= 1, summary
    live.wait_until(
        lambda: next(p for p in live.ecom.products() if p["id"] == product_id)["title"] != "Renamed by hand",
        what="the POS title back in eCom",
    )


def test_every_function_is_granted_exactly_the_aws_actions_its_code_calls(
    recorded: tuple[LiveStack, AwsCallRecorder],
) -> None:
    live, recorder = recorded
    _drive_every_function(live)
    live.wait_until(lambda: "ProductSyncFunction" in recorder.calls, what="product_sync to run")
    grants = _granted()
    assert set(recorder.calls) == set(grants), "every function ran"

    problems: list[str] = []
    for function, granted in sorted(grants.items()):
        used = recorder.calls[function]
        if missing := used - granted:
            problems.append(f"{function} calls {sorted(missing)} without a grant")
        explained = set(NOT_EXERCISED_HERE.get(function, {}))
        mapping = EVENT_SOURCE_MAPPING if _consumes_a_queue(function) else set()
        if unused := granted - used - explained - mapping:
            problems.append(f"{function} is granted {sorted(unused)} that no code path here used")
    assert not problems, "\n".join(problems)


def _consumes_a_queue(function: str) -> bool:
    events: dict[str, Any] = load_template(TEMPLATE_PATH)["Resources"][function]["Properties"].get("Events", {})
    return any(event["Type"] == "SQS" for event in events.values())
