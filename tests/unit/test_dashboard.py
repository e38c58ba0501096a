"""The operations dashboard (template.yaml `OperationsDashboard`) shows only what really exists: every metric a widget
names is emitted by the code, in the widget's namespace and with exactly the dimensions the widget reads (a
CloudWatch metric is its name plus its whole dimension set); every queue and alarm it names is the template's. The
per-connection metrics behind it come out of `pos_ecom_sync.observability` as the dashboard reads them."""

from __future__ import annotations

import ast
import copy
import functools
import importlib.util
import json
import re
from dataclasses import dataclass
from typing import Any

import pytest
from aws_lambda_powertools.metrics import MetricUnit
from pos_ecom_sync import observability
from pos_ecom_sync.intake.poller import FeedReport, PollReport
from pos_ecom_sync.ratelimit import (
    ECOM_POLICY,
    XSERIES_POLICY,
    InMemoryRateBudget,
    ecom_observation,
    xseries_observation,
)
from pos_ecom_sync.reconcile.rules import DRIFT_KINDS

from local_stack.cfn_yaml import load_template
from local_stack.provision import TEMPLATE_PATH

TEMPLATE = load_template(TEMPLATE_PATH)
RESOURCES: dict[str, Any] = TEMPLATE["Resources"]
VARIABLES = TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]
NAMESPACE, SERVICE = VARIABLES["POWERTOOLS_METRICS_NAMESPACE"], VARIABLES["POWERTOOLS_SERVICE_NAME"]
REPO = TEMPLATE_PATH.parent
CODE_ROOTS = (REPO / "functions", REPO / "layers" / "shared" / "pos_ecom_sync")
# The one place that forwards tallied names to Powertools: the scanner reads them at their `add_connection_metric`.
FORWARDERS = {("observability.py", "flush_connection_metrics")}


# -- the dashboard as CloudFormation renders it ------------------------------------------------------------------


def _stand_in(found: re.Match[str]) -> str:
    """A `${...}` of the body's !Sub, resolved to a recognisable stand-in; anything the template lacks fails."""
    name = found.group(1)
    if name.startswith("!"):  # `${!Literal}` is the literal `${Literal}`
        return "${" + name[1:] + "}"
    if name in ("AWS::Region", "AWS::StackName", "AWS::AccountId", "AWS::Partition", "AWS::URLSuffix"):
        return {"AWS::Region": "us-east-1", "AWS::StackName": "stack"}.get(name, "x")
    logical, _, attribute = name.partition(".")
    assert logical in RESOURCES or logical in TEMPLATE["Parameters"], f"the dashboard names {name}: not in the template"
    return f"<{logical}.{attribute}>" if attribute else f"<{logical}>"


def dashboard_body(resource: dict[str, Any] | None = None) -> dict[str, Any]:
    resource = resource or RESOURCES["OperationsDashboard"]
    assert resource["Type"] == "AWS::CloudWatch::Dashboard"
    text = resource["Properties"]["DashboardBody"]["Fn::Sub"]
    body: dict[str, Any] = json.loads(re.sub(r"\$\{([^}]+)\}", _stand_in, text))
    return body


@dataclass(frozen=True)
class WidgetMetric:
    widget: str
    namespace: str
    name: str
    dimensions: tuple[tuple[str, str | None], ...]  # (name, value); a SEARCH matches any value (None)

    @property
    def dimension_names(self) -> frozenset[str]:
        return frozenset(name for name, _ in self.dimensions)


_SEARCH = re.compile(r"SEARCH\(\s*'\{([^}]*)\}([^']*)'\s*,\s*'[^']+'\s*(?:,\s*\d+\s*)?\)")


def _search_metrics(widget: str, expression: str) -> list[WidgetMetric]:
    """The metrics a SEARCH expression selects: its schema `{namespace,dimension...}` and its `MetricName="..."`
    terms. A SEARCH without a metric name could match anything, so it is refused."""
    searches = _SEARCH.findall(expression)
    assert len(searches) == expression.count("SEARCH("), f"{widget}: a SEARCH the checker cannot read: {expression}"
    found = []
    for schema, terms in searches:
        namespace, *dimensions = [part.strip().strip('"') for part in schema.split(",")]
        names = re.findall(r'MetricName\s*=\s*"([^"]+)"', terms)
        assert names, f'{widget}: a SEARCH must name its metrics (MetricName="..."): {expression}'
        found += [WidgetMetric(widget, namespace, name, tuple((d, None) for d in dimensions)) for name in names]
    return found


def widget_metrics(body: dict[str, Any]) -> list[WidgetMetric]:
    """Every metric a metric widget names: its `metrics` rows (with CloudWatch's "." shorthand for "as the row
    above") and the metrics its SEARCH expressions select."""
    found: list[WidgetMetric] = []
    for widget in body["widgets"]:
        if widget["type"] != "metric":
            continue
        title = widget["properties"].get("title", "?")
        previous: list[Any] = []
        for row in widget["properties"]["metrics"]:
            options = [item for item in row if isinstance(item, dict)]
            for option in options:
                if "expression" in option:
                    found += _search_metrics(title, option["expression"])
            items = [item for item in row if not isinstance(item, dict)]
            if not items:
                continue
            items = [previous[n] if item == "." and n < len(previous) else item for n, item in enumerate(items)]
            previous = items
            namespace, name, *pairs = items
            assert len(pairs) % 2 == 0, f"{title}: dimensions come in name/value pairs: {row}"
            found.append(WidgetMetric(title, namespace, name, tuple(zip(pairs[::2], pairs[1::2], strict=True))))
    return found


# -- what the code emits ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Emission:
    pattern: str  # a regular expression over metric names (an f-string's holes match anything)
    dimensions: frozenset[str]
    where: str


def _drift_metrics() -> dict[str, str]:
    """functions/reconcile/app.py's computed metric name per drift kind, as the handler module defines it."""
    spec = importlib.util.spec_from_file_location(
        "dashboard_reconcile_app", REPO / "functions" / "reconcile" / "app.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return dict(module.DRIFT_METRICS)


def _call_name(call: ast.Call) -> str | None:
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None


def _keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def _literal_keys(node: ast.expr | None) -> set[str] | None:
    """The keys of a dict literal with constant string keys (None when the scanner cannot read them)."""
    if node is None:
        return set()
    if isinstance(node, ast.Dict) and all(isinstance(k, ast.Constant) and isinstance(k.value, str) for k in node.keys):
        return {k.value for k in node.keys if isinstance(k, ast.Constant)}
    return None


def _name_patterns(node: ast.expr | None, drift_metrics: dict[str, str]) -> list[str] | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [re.escape(node.value)]
    if isinstance(node, ast.JoinedStr):
        return ["".join(re.escape(p.value) if isinstance(p, ast.Constant) else ".+" for p in node.values)]
    if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and node.value.id == "DRIFT_METRICS":
        return [re.escape(name) for name in drift_metrics.values()]
    return None


@functools.cache  # read when a test first asks: every test process imports this module, few run its tests
def scan_emissions() -> tuple[list[Emission], list[str]]:
    """Every metric the code emits, with the dimension names it carries, and the emission sites the scanner could not
    read (a name or dimension that is not a literal). Powertools `add_metric`/`single_metric` carry `service` plus the
    `add_dimension` names of their function; `observability.add_connection_metric` carries `service`, `connection`
    and the keys of its `dimensions`."""
    drift_metrics = _drift_metrics()
    emissions: list[Emission] = []
    unreadable: list[str] = []
    for root in CODE_ROOTS:
        for path in sorted(root.rglob("*.py")):
            tree = ast.parse(path.read_text(), filename=str(path))
            scopes: list[ast.AST] = [tree, *(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef))]
            owner: dict[ast.AST, ast.AST] = {}
            for scope in scopes:  # innermost function last wins
                for node in ast.walk(scope):
                    owner[node] = scope
            for call in (n for n in ast.walk(tree) if isinstance(n, ast.Call)):
                kind = _call_name(call)
                if kind not in ("add_metric", "single_metric", "add_connection_metric"):
                    continue
                scope = owner[call]
                where = f"{path.relative_to(REPO)}:{call.lineno}"
                if (path.name, getattr(scope, "name", "")) in FORWARDERS:
                    continue
                if _keyword(call, "namespace") is not None:
                    unreadable.append(f"{where}: sets its own namespace")
                if kind == "add_connection_metric":
                    keys = _literal_keys(_keyword(call, "dimensions"))
                    dimensions = None if keys is None else {"service", "connection", *keys}
                else:
                    added = {
                        k.value.value
                        for n in ast.walk(scope)
                        if isinstance(n, ast.Call) and _call_name(n) == "add_dimension"
                        for k in n.keywords
                        if k.arg == "name" and isinstance(k.value, ast.Constant)
                    }
                    defaults = _literal_keys(_keyword(call, "default_dimensions"))
                    dimensions = None if defaults is None else {"service", *added, *defaults}
                patterns = _name_patterns(_keyword(call, "name"), drift_metrics)
                if patterns is None or dimensions is None:
                    unreadable.append(f"{where}: {ast.unparse(call)[:120]}")
                    continue
                emissions += [Emission(p, frozenset(dimensions), where) for p in patterns]
    return emissions, unreadable


def problems_of(body: dict[str, Any], emissions: list[Emission] | None = None) -> list[str]:
    """What is wrong with a dashboard body: a custom metric no code emits (the code's, unless `emissions` are given)
    in that namespace with those dimensions, a queue the template does not declare."""
    if emissions is None:
        emissions, _ = scan_emissions()
    queue_names = {f"<{name}.QueueName>" for name, r in RESOURCES.items() if r["Type"] == "AWS::SQS::Queue"}
    problems = []
    for metric in widget_metrics(body):
        if metric.namespace.startswith("AWS/"):
            if metric.namespace == "AWS/SQS":
                queue = dict(metric.dimensions).get("QueueName")
                if metric.dimension_names != {"QueueName"} or queue not in queue_names:
                    problems.append(f"{metric.widget}: {metric.name} of {queue}, which is no queue of the template")
            else:
                problems.append(f"{metric.widget}: {metric.namespace} is not checked: add it to the checker")
            continue
        if metric.namespace != NAMESPACE:
            problems.append(f"{metric.widget}: {metric.name} in {metric.namespace}; the code emits in {NAMESPACE}")
            continue
        service = dict(metric.dimensions).get("service")
        if service not in (None, SERVICE):
            problems.append(f"{metric.widget}: {metric.name} of service {service}; the functions are {SERVICE}")
        emitted = [e for e in emissions if re.fullmatch(e.pattern, metric.name)]
        if not emitted:
            problems.append(f"{metric.widget}: {metric.name}, which no code emits")
        elif not any(e.dimensions == metric.dimension_names for e in emitted):
            seen = sorted({", ".join(sorted(e.dimensions)) for e in emitted})
            problems.append(
                f"{metric.widget}: {metric.name} by [{', '.join(sorted(metric.dimension_names))}]; emitted by {seen}"
            )
    return problems


# -- the template's dashboard ---------------------------------------------------------------------------------------


def test_the_scanner_reads_every_metric_the_code_emits() -> None:
    emissions, unreadable = scan_emissions()
    assert not unreadable, "emit metrics with literal names and dimensions (or teach the scanner): " + "; ".join(
        unreadable
    )
    names = {e.pattern for e in emissions}
    # one of each way of emitting: a literal, an f-string, the computed drift names, a connection metric
    assert {"OrdersHeld", "Http.+xx", "DriftCatalogOutdated", "ChangesSynced"} <= names


def test_every_dashboard_metric_is_emitted_by_the_code_in_its_namespace_with_its_dimensions() -> None:
    body = dashboard_body()
    custom = [m for m in widget_metrics(body) if not m.namespace.startswith("AWS/")]
    assert len(custom) >= 20  # the checker sees the per-connection SEARCH graphs, not only the plain rows
    assert problems_of(body) == []


def test_the_checker_fails_for_a_widget_naming_a_metric_no_code_emits() -> None:
    body = dashboard_body()
    doctored = copy.deepcopy(body)
    graphs = [w for w in doctored["widgets"] if w["type"] == "metric"]
    search = "SEARCH('{PosEcomSync,connection,service} MetricName=\"OrdersTeleported\"', 'Sum', 300)"
    graphs[0]["properties"]["metrics"].append([{"expression": search, "id": "ghost"}])
    graphs[1]["properties"]["metrics"].append(["PosEcomSync", "ChangesSynced", "service", SERVICE])  # no connection
    graphs[2]["properties"]["metrics"].append(["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", "other"])
    problems = problems_of(doctored)
    assert len(problems) == 3, problems
    assert "OrdersTeleported, which no code emits" in problems[0]
    assert "ChangesSynced by [service]" in problems[1]
    assert "other, which is no queue of the template" in problems[2]


def test_a_search_without_a_metric_name_is_refused() -> None:
    body = dashboard_body()
    body["widgets"][2]["properties"]["metrics"] = [[{"expression": "SEARCH('{PosEcomSync,connection} Drift', 'Sum')"}]]
    with pytest.raises(AssertionError, match="must name its metrics"):
        widget_metrics(body)


def _queues_graphed(metric: str) -> set[str]:
    return {
        dict(m.dimensions)["QueueName"]
        for m in widget_metrics(dashboard_body())
        if m.namespace == "AWS/SQS" and m.name == metric
    }


def test_queue_depth_and_age_cover_every_source_queue_and_dead_letters_every_dlq() -> None:
    queues = {n: r["Properties"] for n, r in RESOURCES.items() if r["Type"] == "AWS::SQS::Queue"}
    sources = {f"<{n}.QueueName>" for n, props in queues.items() if "RedrivePolicy" in props}
    dlqs = {f"<{props['RedrivePolicy']['deadLetterTargetArn']['Fn::GetAtt'][0]}.QueueName>" for n, props in
            queues.items() if "RedrivePolicy" in props}  # fmt: skip
    assert len(sources) == len(dlqs) == 4
    assert _queues_graphed("ApproximateAgeOfOldestMessage") == sources
    assert _queues_graphed("ApproximateNumberOfMessagesVisible") == sources | dlqs


def test_the_alarm_widget_shows_every_alarm_of_the_template() -> None:
    [widget] = [w for w in dashboard_body()["widgets"] if w["type"] == "alarm"]
    alarms = {name for name, r in RESOURCES.items() if r["Type"] == "AWS::CloudWatch::Alarm"}
    assert sorted(widget["properties"]["alarms"]) == sorted(f"<{name}.Arn>" for name in alarms)


def test_every_drift_kind_is_graphed_and_counted_as_a_change_of_a_concern() -> None:
    graphed = {m.name for m in widget_metrics(dashboard_body())}
    assert set(_drift_metrics().values()) <= graphed
    assert set(observability.DRIFT_CONCERN) == set(DRIFT_KINDS)


def test_the_text_widget_sends_the_operator_to_the_cli() -> None:
    [text] = [w["properties"]["markdown"] for w in dashboard_body()["widgets"] if w["type"] == "text"]
    for command in ("dlq list", "orders held", "sync status"):
        assert f"pos-ecom-sync {command}" in text


def test_the_dashboard_is_an_output_of_the_stack() -> None:
    outputs = TEMPLATE["Outputs"]
    assert outputs["DashboardName"]["Value"] == {"Ref": "OperationsDashboard"}
    assert "#dashboards/dashboard/${OperationsDashboard}" in outputs["DashboardUrl"]["Value"]["Fn::Sub"]


# -- the per-connection metrics as they are emitted -----------------------------------------------------------------


def emf_blobs(out: str) -> list[dict[str, Any]]:
    """The EMF blobs printed (Powertools' documented way of testing metrics: capture stdout)."""
    return [json.loads(line) for line in out.splitlines() if line.startswith("{") and '"_aws"' in line]


def by_dimensions(blobs: list[dict[str, Any]]) -> dict[tuple[tuple[str, str], ...], dict[str, Any]]:
    """{((dimension, value), ...): {metric: value(s)}} for each blob, checked to be in the dashboard's namespace."""
    found = {}
    for blob in blobs:
        [directive] = blob["_aws"]["CloudWatchMetrics"]
        assert directive["Namespace"] == NAMESPACE
        [dimensions] = directive["Dimensions"]
        key = tuple(sorted((name, blob[name]) for name in dimensions))
        found[key] = {m["Name"]: blob[m["Name"]] for m in directive["Metrics"]}
    return found


@pytest.fixture(autouse=True)
def _fresh_tally() -> None:
    observability.flush_connection_metrics()


def test_a_poll_counts_its_changes_per_concern_and_its_lag_per_connection(capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    report = PollReport(
        "shop", [FeedReport("pos:inventory", "stock", queued=3), FeedReport("ecom:orders", "orders", queued=2)]
    )
    report.feeds[1].lag_s = 42.0
    observability.record_poll(report)
    observability.flush_connection_metrics()
    emitted = by_dimensions(emf_blobs(capsys.readouterr().out))
    assert emitted[(("concern", "stock"), ("connection", "shop"), ("service", SERVICE))] == {"ChangesReceived": [3.0]}
    assert emitted[(("concern", "orders"), ("connection", "shop"), ("service", SERVICE))] == {"ChangesReceived": [2.0]}
    assert emitted[(("connection", "shop"), ("service", SERVICE))] == {"PollLagSeconds": [42.0]}


def test_the_budget_graphs_count_each_connections_calls_429s_and_fullest_window(
    capsys: pytest.CaptureFixture[str],
) -> None:
    capsys.readouterr()
    shared = InMemoryRateBudget()
    shop, other = observability.MeteredBudget(shared, "shop"), observability.MeteredBudget(shared, "other")
    headers = {"x-ratelimit-limit": "300/3000/12000", "x-ratelimit-remaining": "150/2970/11000"}
    shop.acquire(ECOM_POLICY, max_wait_s=0)
    shop.observe(ECOM_POLICY, ecom_observation(headers, 200, 0.0))
    shop.observe(ECOM_POLICY, ecom_observation({**headers, "retry-after": "2"}, 429, 0.0))
    other.observe(XSERIES_POLICY, xseries_observation({}, 200, 0.0))
    assert shared.granted == 1 and shared.state(ECOM_POLICY).blocked_until > 0  # the budget itself is unchanged
    observability.flush_connection_metrics()
    emitted = by_dimensions(emf_blobs(capsys.readouterr().out))
    assert emitted[(("api", "ecom"), ("connection", "shop"), ("service", SERVICE))] == {
        "VendorCalls": [2.0], "VendorThrottled": [1.0], "RateBudgetUsedPercent": [50.0],
    }  # fmt: skip
    assert emitted[(("api", "xseries"), ("connection", "other"), ("service", SERVICE))] == {"VendorCalls": [1.0]}


def test_the_local_stack_stays_quiet(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    capsys.readouterr()
    observability.add_connection_metric("shop", name="OrdersHeld", unit=MetricUnit.Count, value=1)
    observability.flush_connection_metrics()
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED")
    observability.flush_connection_metrics()  # forgotten, not kept for later
    assert capsys.readouterr().out == ""


def test_rate_use_is_the_leaky_buckets_level_when_the_vendor_reports_one() -> None:
    from pos_ecom_sync.observability import budget_used_percent
    from pos_ecom_sync.ratelimit import rseries_observation, xseries_observation

    bucket = {"X-LS-Api-Bucket-Level": "67.5/90", "X-LS-API-Burst-Level": "19/20", "X-LS-Api-Drip-Rate": "1"}
    assert budget_used_percent(rseries_observation(bucket, 200, 0.0)) == 75.0  # the burst window is not the budget
    windows = {"x-ratelimit-limit": "350", "x-ratelimit-remaining": "70"}  # as httpx gives them
    assert budget_used_percent(xseries_observation(windows, 200, 0.0)) == 80.0
    assert budget_used_percent(rseries_observation({}, 200, 0.0)) is None
