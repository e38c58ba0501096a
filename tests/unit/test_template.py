"""template.yaml is the single source of truth for the wiring: these tests hold it to the rules we deploy by."""

from __future__ import annotations

import fnmatch
import re
import tomllib
from typing import Any

import pytest
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
from pos_ecom_sync import runtime
from pos_ecom_sync.api import register_error_handlers
from pos_ecom_sync.connectors import http
from pos_ecom_sync.errors import NotFound, Unauthorized, UpstreamUnavailable
from pos_ecom_sync.secrets import legacy_secret_name, secret_name
from pos_ecom_sync.state import keys
from pos_ecom_sync.state.store import SyncStore
from pos_ecom_sync.workers import MIN_MAX_RECEIVE_COUNT, OUTAGE_SURVIVED_S, retry_delay_s

from local_stack.cfn_yaml import load_template
from local_stack.lambda_events import LambdaContext, api_gateway_v2_event
from local_stack.provision import TEMPLATE_PATH

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


def test_table_is_on_demand_recoverable_encrypted_with_ttl() -> None:
    props = RESOURCES["SyncTable"]["Properties"]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert props["SSESpecification"]["SSEEnabled"] is True
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}


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


def test_live_queues_keep_a_message_through_a_day_long_dependency_outage() -> None:
    for name in ("StockQueue", "OrdersQueue", "StatusesQueue"):
        props = RESOURCES[name]["Properties"]
        assert props["RedrivePolicy"]["maxReceiveCount"] >= MIN_MAX_RECEIVE_COUNT
        assert props["MessageRetentionPeriod"] > OUTAGE_SURVIVED_S
    assert OUTAGE_SURVIVED_S >= 24 * 3600
    assert retry_delay_s(1) <= 60, "the first retry of a transient failure comes soon"


def test_every_function_reserves_concurrency_covering_its_event_source_unless_switched_off() -> None:
    assert TEMPLATE["Parameters"]["ReserveConcurrency"]["Default"] == "true"
    for name, function in _of_type("AWS::Serverless::Function").items():
        reserved = function["Properties"]["ReservedConcurrentExecutions"]["Fn::If"]
        assert reserved[0] == "ReservesConcurrency" and reserved[2] == {"Ref": "AWS::NoValue"}, name
        for event in function["Properties"].get("Events", {}).values():
            if event["Type"] == "SQS":
                assert reserved[1] >= event["Properties"]["ScalingConfig"]["MaximumConcurrency"], name


def test_the_internet_facing_function_may_write_only_delivery_marks() -> None:
    policies = RESOURCES["WebhookIngestFunction"]["Properties"]["Policies"]
    statements = [s for p in policies for s in p["Statement"]]
    dynamodb = [s for s in statements if any(str(a).startswith("dynamodb:") for a in _actions(s))]
    writes = [s for s in dynamodb if set(_actions(s)) - {"dynamodb:GetItem"}]
    assert [_actions(s) for s in writes] == [["dynamodb:PutItem"]]
    condition = writes[0]["Condition"]
    assert condition["ForAllValues:StringLike"]["dynamodb:LeadingKeys"] == [f"{keys.DELIVERY_PK_PREFIX}*"]

    class Table:  # what SyncStore.remember_delivery writes, against what the grant allows
        def put_item(self, Item: dict[str, Any]) -> None:  # boto3's parameter name
            self.item = Item

    table = Table()
    store = SyncStore.__new__(SyncStore)
    store._table, store._clock = table, lambda: 1_000.0
    store.remember_delivery("shop", "abc", 60)
    assert sorted(table.item) == sorted(condition["ForAllValues:StringEquals"]["dynamodb:Attributes"])
    assert str(table.item["pk"]).startswith(keys.DELIVERY_PK_PREFIX)


def _actions(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return [action] if isinstance(action, str) else list(action)


def _worst_case_s(config: Any) -> float:
    """A black hole either never accepts (connect timeout) or never answers (read timeout), on every attempt; plus
    standard mode's back-off between attempts (under 1 s, then 2 s...)."""
    attempts = config.retries["total_max_attempts"]
    return attempts * max(config.connect_timeout, config.read_timeout) + sum(2**n for n in range(attempts - 1))


def test_a_black_holed_aws_dependency_fails_well_inside_each_function_timeout() -> None:
    assert _worst_case_s(runtime.INTAKE_AWS) <= 5, "a webhook gets its 503 before the vendor gives up (~5 s)"
    for name, function in _of_type("AWS::Serverless::Function").items():
        if name != "WebhookIngestFunction":
            # three calls in a row to a black-holed dependency still end before the function's timeout
            assert 3 * _worst_case_s(runtime.WORKER_AWS) <= _function_timeout(function["Properties"]), name
            assert _vendor_worst_case_s() < _function_timeout(function["Properties"]), name


def _vendor_worst_case_s() -> float:
    """An idempotent vendor call to a vendor that never answers: every attempt times out, with back-off between."""
    attempts = http.DEFAULT_MAX_RETRIES + 1
    timeout = http.DEFAULT_TIMEOUT
    longest = max(t for t in (timeout.connect, timeout.read) if t is not None)
    return attempts * longest + sum(min(0.5 * 2**n, 8.0) for n in range(attempts - 1))


def test_the_webhook_function_reads_only_webhook_secrets_and_the_others_only_api_secrets() -> None:
    prefix = GLOBALS["Environment"]["Variables"]["SECRET_PREFIX"]["Fn::Sub"]
    arn_of = {  # a secret's ARN is its name, "-" and six random characters
        part: f"arn:aws:secretsmanager:eu-west-1:123456789012:secret:{secret_name(prefix, 'dockside', part)}-AbC123"
        for part in ("api", "webhook")
    }
    legacy = f"arn:aws:secretsmanager:eu-west-1:123456789012:secret:{legacy_secret_name(prefix, 'dockside')}-AbC123"
    for name, statement in _statements():
        if "secretsmanager:GetSecretValue" not in _actions(statement):
            continue
        pattern = statement["Resource"]["Fn::Sub"].replace("${AWS::Partition}", "aws")
        pattern = pattern.replace("${AWS::Region}", "eu-west-1").replace("${AWS::AccountId}", "123456789012")
        readable = {part for part, arn in arn_of.items() if fnmatch.fnmatchcase(arn, pattern)}
        assert readable == ({"webhook"} if name == "WebhookIngestFunction" else {"api"}), name
        assert not fnmatch.fnmatchcase(legacy, pattern), f"{name} can read the legacy combined secret"


# ---------------------------------------------------------------- alarms reach a person

ALARMS = _of_type("AWS::CloudWatch::Alarm")
CODE_ROOTS = (TEMPLATE_PATH.parent / "functions", TEMPLATE_PATH.parent / "layers" / "shared" / "pos_ecom_sync")


def _covers(patterns: list[str], action: str) -> bool:
    return any(fnmatch.fnmatchcase(action, pattern) for pattern in patterns)


def _cloudwatch_may_use(key: dict[str, Any]) -> bool:
    """Whether the key policy lets CloudWatch (for this account's alarms) encrypt messages for an SNS topic."""
    for statement in key["Properties"]["KeyPolicy"]["Statement"]:
        principal = statement.get("Principal", {})
        services = principal.get("Service", []) if isinstance(principal, dict) else []
        services = [services] if isinstance(services, str) else services
        if statement["Effect"] != "Allow" or "cloudwatch.amazonaws.com" not in services:
            continue
        actions = _actions(statement)
        condition = statement.get("Condition", {}).get("StringEquals", {})
        if (
            _covers(actions, "kms:Decrypt")
            and "kms:GenerateDataKey*" in actions
            and condition.get("aws:SourceAccount") == {"Ref": "AWS::AccountId"}
        ):
            return True
    return False


def test_every_alarm_notifies_a_topic_whose_own_key_lets_cloudwatch_publish() -> None:
    topics = _of_type("AWS::SNS::Topic")
    keys_ = _of_type("AWS::KMS::Key")
    assert ALARMS
    for name, alarm in ALARMS.items():
        actions = [a for field in ("AlarmActions", "OKActions", "InsufficientDataActions")
                   for a in alarm["Properties"].get(field, [])]  # fmt: skip
        assert actions, f"{name} notifies nobody"
        for action in actions:
            topic = topics[action["Ref"]]["Properties"]
            key = keys_[topic["KmsMasterKeyId"]["Ref"]]
            assert _cloudwatch_may_use(key), f"{name}: CloudWatch cannot use the key of {action['Ref']}"
            assert key["Properties"]["EnableKeyRotation"] is True
    for name, topic in topics.items():
        # The AWS-managed key's policy cannot grant CloudWatch: an alarm action on such a topic fails silently.
        assert "alias/aws/sns" not in str(topic["Properties"].get("KmsMasterKeyId")), name
    aliases = [a["Properties"]["TargetKeyId"] for a in _of_type("AWS::KMS::Alias").values()]
    assert {"Ref": "AlarmTopicKey"} in aliases


def test_a_key_policy_without_the_cloudwatch_grant_is_told_apart() -> None:
    key = RESOURCES["AlarmTopicKey"]
    statements = key["Properties"]["KeyPolicy"]["Statement"]
    without = {"Properties": {"KeyPolicy": {"Statement": [s for s in statements if "Service" not in s["Principal"]]}}}
    narrower = {"Properties": {"KeyPolicy": {"Statement": [
        {**s, "Action": ["kms:Decrypt"]} if "Service" in s["Principal"] else s for s in statements
    ]}}}  # fmt: skip
    assert _cloudwatch_may_use(key)
    assert not _cloudwatch_may_use(without) and not _cloudwatch_may_use(narrower)


def test_the_optional_alarm_email_subscribes_to_the_alarm_topic() -> None:
    assert TEMPLATE["Parameters"]["AlarmEmail"]["Default"] == ""
    subscription = RESOURCES["AlarmEmailSubscription"]
    assert subscription["Condition"] == "HasAlarmEmail"
    props = subscription["Properties"]
    assert (props["Protocol"], props["Endpoint"]) == ("email", {"Ref": "AlarmEmail"})
    assert props["TopicArn"] == {"Ref": "AlarmTopic"}


def _code_text() -> str:
    return "\n".join(p.read_text() for root in CODE_ROOTS for p in sorted(root.rglob("*.py")))


def test_every_custom_metric_alarm_reads_a_metric_the_code_emits_in_the_namespace_and_dimensions_it_uses() -> None:
    variables = GLOBALS["Environment"]["Variables"]
    code = _code_text()
    custom = {n: a["Properties"] for n, a in ALARMS.items() if a["Properties"]["Namespace"] != "AWS/Lambda"}
    custom = {n: p for n, p in custom.items() if p["Namespace"] != "AWS/SQS"}
    assert {"WebhookServerErrorsAlarm", "WebhookUnauthorizedAlarm", "ChangePollerLagAlarm"} <= set(custom)
    for name, props in custom.items():
        assert props["Namespace"] == variables["POWERTOOLS_METRICS_NAMESPACE"], name
        # Powertools adds the service as the only dimension (webhook_ingest adds `source` on accepted deliveries only)
        assert props["Dimensions"] == [{"Name": "service", "Value": variables["POWERTOOLS_SERVICE_NAME"]}], name
        metric = props["MetricName"]
        emitted = f'name="{metric}"' in code or (metric.startswith("Http") and 'name=f"Http{status // 100}xx"' in code)
        assert emitted, f"{name} reads {metric}, which no code emits"


@pytest.mark.parametrize(("error", "metrics_seen"), [
    (Unauthorized("token does not match"), {"Http4xx", "WebhookUnauthorized"}),
    (NotFound("no such connection"), {"Http4xx"}),
    (UpstreamUnavailable("dynamodb: cannot read the connection"), {"Http5xx"}),
])  # fmt: skip
def test_the_webhook_alarms_read_what_the_error_handler_emits(error: Exception, metrics_seen: set[str]) -> None:
    variables = GLOBALS["Environment"]["Variables"]
    metrics = Metrics(namespace=variables["POWERTOOLS_METRICS_NAMESPACE"], service=variables["POWERTOOLS_SERVICE_NAME"])
    metrics.clear_metrics()
    app = APIGatewayHttpResolver()
    register_error_handlers(app, Logger(service="test"), metrics)

    @app.post("/connections/<connection_id>/webhooks/pos")
    def refuse(connection_id: str) -> None:
        raise error

    event = api_gateway_v2_event(
        "POST", "/connections/shop/webhooks/pos", "POST /connections/{connection_id}/webhooks/pos",
        {"connection_id": "shop"}, b"{}", {"content-type": "application/json"},
    )  # fmt: skip
    app.resolve(event, LambdaContext())
    blob: dict[str, Any] = dict(metrics.serialize_metric_set())
    metrics.clear_metrics()
    [directive] = blob["_aws"]["CloudWatchMetrics"]
    assert {m["Name"] for m in directive["Metrics"]} == metrics_seen
    alarmed = {a["Properties"]["MetricName"]: a["Properties"] for a in ALARMS.values()}
    for metric in metrics_seen & {"Http5xx", "WebhookUnauthorized"}:
        props = alarmed[metric]
        assert directive["Namespace"] == props["Namespace"]
        assert [[d["Name"] for d in props["Dimensions"]]] == directive["Dimensions"]
        assert all(blob[d["Name"]] == d["Value"] for d in props["Dimensions"])


def test_every_source_queue_alarms_on_its_oldest_message_stock_and_orders_tightest() -> None:
    sources = [n for n, q in _of_type("AWS::SQS::Queue").items() if "RedrivePolicy" in q["Properties"]]
    age: dict[str, int] = {}
    for alarm in ALARMS.values():
        props = alarm["Properties"]
        if props["Namespace"] == "AWS/SQS" and props["MetricName"] == "ApproximateAgeOfOldestMessage":
            [dimension] = props["Dimensions"]
            queue, attribute = dimension["Value"]["Fn::GetAtt"]
            assert (dimension["Name"], attribute, props["Statistic"]) == ("QueueName", "QueueName", "Maximum")
            age[queue] = props["Threshold"]
    assert sorted(age) == sorted(sources)
    assert age["StockQueue"] == age["OrdersQueue"] == 600
    assert age["OrdersQueue"] < age["StatusesQueue"] < age["ProductsQueue"]


def test_alarm_descriptions_state_their_thresholds() -> None:
    for name in ("WebhookServerErrorsAlarm", "WebhookUnauthorizedAlarm", "ChangePollerLagAlarm", "StockQueueAgeAlarm",
                 "OrdersQueueAgeAlarm", "StatusesQueueAgeAlarm", "ProductsQueueAgeAlarm"):  # fmt: skip
        props = RESOURCES[name]["Properties"]
        assert f" {props['Threshold']} " in props["AlarmDescription"].replace("(", " "), name


def test_the_poll_lag_alarm_needs_every_run_lagging_for_three_periods() -> None:
    props = RESOURCES["ChangePollerLagAlarm"]["Properties"]
    assert (props["MetricName"], props["Statistic"], props["Threshold"]) == ("PollLagSeconds", "Minimum", 900)
    assert props["Period"] * props["EvaluationPeriods"] >= 900
    schedule = TEMPLATE["Parameters"]["PollSchedule"]["Default"]
    assert schedule == "rate(1 minute)" and props["Period"] >= 60, "a period holds at least one run"


def test_dead_letter_alarm_texts_say_the_queues_real_receive_counts() -> None:
    queues = _of_type("AWS::SQS::Queue")
    for name, queue in queues.items():
        policy = queue["Properties"].get("RedrivePolicy")
        if policy:
            dlq = policy["deadLetterTargetArn"]["Fn::GetAtt"][0]
            [alarm] = [a["Properties"] for a in ALARMS.values()
                       if a["Properties"]["MetricName"] == "ApproximateNumberOfMessagesVisible"
                       and a["Properties"]["Dimensions"][0]["Value"]["Fn::GetAtt"][0] == dlq]  # fmt: skip
            assert f"failed {policy['maxReceiveCount']} receives" in alarm["AlarmDescription"], name


def test_the_readme_parameter_table_lists_every_template_parameter_with_its_default() -> None:
    readme = (TEMPLATE_PATH.parent / "README.md").read_text()
    rows = dict(re.findall(r"^\| `(\w+)` \| `?([^`|]*?)`? \|", readme, flags=re.MULTILINE))
    declared = {name: str(spec.get("Default", "")) for name, spec in TEMPLATE["Parameters"].items()}
    documented = {name: rows[name] for name in declared if name in rows}
    assert documented == {name: default or "empty" for name, default in declared.items()}


TAGGABLE = {
    "AWS::DynamoDB::Table", "AWS::SQS::Queue", "AWS::Logs::LogGroup", "AWS::CloudWatch::Alarm", "AWS::SNS::Topic",
    "AWS::KMS::Key",
}  # fmt: skip


def test_every_taggable_resource_carries_the_app_and_stack_tags() -> None:
    expected = [{"Key": "app", "Value": "pos-ecom-sync"}, {"Key": "stack", "Value": {"Ref": "AWS::StackName"}}]
    for name, resource in RESOURCES.items():
        if resource["Type"] in TAGGABLE:
            assert resource["Properties"].get("Tags") == expected, name
    assert GLOBALS["Tags"] == {"app": "pos-ecom-sync", "stack": {"Ref": "AWS::StackName"}}  # functions and roles
    assert RESOURCES["WebhookApi"]["Properties"]["Tags"] == GLOBALS["Tags"]
    types = {r["Type"] for r in RESOURCES.values()}
    assert types - TAGGABLE <= {
        "AWS::Serverless::Function", "AWS::Serverless::HttpApi", "AWS::Serverless::LayerVersion",
        "AWS::SNS::Subscription", "AWS::KMS::Alias",
        "AWS::CloudWatch::Dashboard",  # CloudFormation's dashboard has no Tags property
    }, "a new resource type: tag it (or say here why it cannot be)"  # fmt: skip


def test_sam_deploy_defaults_make_a_first_deploy_safe_without_hand_made_buckets() -> None:
    config = tomllib.loads((TEMPLATE_PATH.parent / "samconfig.toml").read_text())
    deploy = config["default"]["deploy"]["parameters"]
    assert deploy["resolve_s3"] is True and deploy["confirm_changeset"] is True
    assert deploy["capabilities"] == "CAPABILITY_IAM"
    assert set(config["default"]) == {"deploy"}, "build settings stay in the Makefile (make sam-build)"
