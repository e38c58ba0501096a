"""template.yaml is the single source of truth for the wiring: these tests hold it to the rules we deploy by."""

from __future__ import annotations

from typing import Any

import pytest

from local_stack.cfn_yaml import load_template
from local_stack.provision import TEMPLATE_PATH
from tests.conftest import create_sync_table

TEMPLATE = load_template(TEMPLATE_PATH)
RESOURCES: dict[str, Any] = TEMPLATE["Resources"]
GLOBALS = TEMPLATE["Globals"]["Function"]


def _of_type(kind: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in RESOURCES.items() if r["Type"] == kind}


def _function_timeout(props: dict[str, Any]) -> int:
    return int(props.get("Timeout", GLOBALS["Timeout"]))


def test_functions_run_python313_on_arm64_with_tracing_and_json_logs() -> None:
    assert GLOBALS["Runtime"] == "python3.13"
    assert GLOBALS["Architectures"] == ["arm64"]
    assert GLOBALS["Tracing"] == "Active"
    assert GLOBALS["LoggingConfig"]["LogFormat"] == "JSON"
    for props in (f["Properties"] for f in _of_type("AWS::Serverless::Function").values()):
        assert "Runtime" not in props, "runtime is set once, in Globals"


def test_every_concern_queue_is_fifo_with_a_fifo_dlq_and_an_alarm_on_it() -> None:
    queues = _of_type("AWS::SQS::Queue")
    sources = {name: q for name, q in queues.items() if "RedrivePolicy" in q["Properties"]}
    assert {n.removesuffix("Queue") for n in sources} == {"Products", "Stock", "Orders", "Statuses"}
    alarmed = {
        a["Properties"]["Dimensions"][0]["Value"]["Fn::GetAtt"][0]
        for a in _of_type("AWS::CloudWatch::Alarm").values()
        if a["Properties"]["Namespace"] == "AWS/SQS"
    }
    for name, queue in sources.items():
        props = queue["Properties"]
        dlq = props["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
        assert props["FifoQueue"] is True and queues[dlq]["Properties"]["FifoQueue"] is True
        assert props["QueueName"]["Fn::Sub"].endswith(".fifo")
        assert dlq in alarmed, f"{name}'s dead-letter queue has no alarm"


def test_queue_visibility_is_at_least_six_times_the_consumer_timeout() -> None:
    queues = _of_type("AWS::SQS::Queue")
    consumers = 0
    for function in _of_type("AWS::Serverless::Function").values():
        for event in function["Properties"].get("Events", {}).values():
            if event["Type"] == "SQS":
                consumers += 1
                queue = queues[event["Properties"]["Queue"]["Fn::GetAtt"][0]]["Properties"]
                assert queue["VisibilityTimeout"] >= 6 * _function_timeout(function["Properties"])
                assert event["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert consumers, "no SQS consumer found"


def test_table_is_on_demand_recoverable_encrypted_with_ttl_and_matches_the_test_copy() -> None:
    props = RESOURCES["SyncTable"]["Properties"]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert props["SSESpecification"]["SSEEnabled"] is True
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}

    class Recorder:
        def create_table(self, **kwargs: Any) -> None:
            self.kwargs = kwargs

    copy = Recorder()
    create_sync_table(copy)
    for key in ("AttributeDefinitions", "KeySchema", "GlobalSecondaryIndexes"):
        assert copy.kwargs[key] == props[key]


def test_every_function_has_a_log_group_with_retention() -> None:
    groups = [g["Properties"] for g in _of_type("AWS::Logs::LogGroup").values()]
    named = {g["LogGroupName"]["Fn::Sub"] for g in groups if "LogGroupName" in g}
    for name in _of_type("AWS::Serverless::Function"):
        assert f"/aws/lambda/${{{name}}}" in named
    assert all(g["RetentionInDays"] == {"Ref": "LogRetentionDays"} for g in groups)


def _statements() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for name, function in _of_type("AWS::Serverless::Function").items():
        for policy in function["Properties"].get("Policies", []):
            found += [(name, s) for s in policy.get("Statement", [])]
    return found


@pytest.mark.parametrize("field", ["Action", "Resource"])
def test_policies_grant_no_wildcard_actions_or_resources(field: str) -> None:
    assert _statements()
    for name, statement in _statements():
        values = statement[field] if isinstance(statement[field], list) else [statement[field]]
        for value in values:
            assert value != "*" and not (isinstance(value, str) and value.endswith(":*")), f"{name}: {value}"


def test_poller_runs_on_a_schedule_and_webhooks_on_the_http_api() -> None:
    poller = RESOURCES["ChangePollerFunction"]["Properties"]
    assert [e["Type"] for e in poller["Events"].values()] == ["Schedule"]
    ingest = RESOURCES["WebhookIngestFunction"]["Properties"]
    paths = {e["Properties"]["Path"] for e in ingest["Events"].values() if e["Type"] == "HttpApi"}
    assert paths == {"/connections/{connection_id}/webhooks/pos", "/connections/{connection_id}/webhooks/ecom"}
