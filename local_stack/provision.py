"""Reads template.yaml and creates what it declares in moto, so the local stack never repeats the wiring.

Supported: DynamoDB tables, SQS queues (with redrive), and the functions with their HttpApi, SQS and
schedule events. Everything else in the template (alarms, log groups, SNS, the layer) has no local
meaning and is skipped.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from local_stack.cfn_yaml import load_template

REPO_ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_PATH = REPO_ROOT / "template.yaml"
ACCOUNT_ID = "123456789012"


@dataclass
class HttpRoute:
    method: str
    path: str  # API Gateway template, e.g. /connections/{connection_id}/webhooks/pos
    function: str

    @property
    def route_key(self) -> str:
        return f"{self.method} {self.path}"

    def match(self, method: str, path: str) -> dict[str, str] | None:
        if method.upper() != self.method:
            return None
        pattern = "^" + re.sub(r"\\{(\w+)\\}", r"(?P<\1>[^/]+)", re.escape(self.path)) + "$"
        found = re.match(pattern, path)
        return found.groupdict() if found else None


@dataclass
class QueueSubscription:
    queue_url: str
    queue_arn: str
    function: str
    batch_size: int
    report_batch_item_failures: bool


@dataclass
class ScheduleSpec:
    function: str
    expression: str


@dataclass
class FunctionSpec:
    logical_id: str
    code_dir: Path
    handler: str
    timeout: int
    environment: dict[str, str]
    name: str = ""  # the function name the Lambda API knows it by (the template's Ref)


@dataclass
class LocalStackResources:
    stack_name: str
    region: str
    refs: dict[str, str] = field(default_factory=dict)
    attrs: dict[tuple[str, str], str] = field(default_factory=dict)
    functions: dict[str, FunctionSpec] = field(default_factory=dict)
    routes: list[HttpRoute] = field(default_factory=list)
    subscriptions: list[QueueSubscription] = field(default_factory=list)
    schedules: list[ScheduleSpec] = field(default_factory=list)
    queue_urls: dict[str, str] = field(default_factory=dict)  # logical id -> url

    def shared_environment(self) -> dict[str, str]:
        merged: dict[str, str] = {}
        for spec in self.functions.values():
            merged.update(spec.environment)
        return merged


class _Resolver:
    def __init__(self, template: dict[str, Any], resources: LocalStackResources) -> None:
        self.template = template
        self.res = resources
        self.params = {name: str(spec.get("Default", "")) for name, spec in template.get("Parameters", {}).items()}
        self.pseudo = {
            "AWS::StackName": resources.stack_name,
            "AWS::Region": resources.region,
            "AWS::AccountId": ACCOUNT_ID,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
        }

    def ref(self, name: str) -> str:
        for table in (self.pseudo, self.params, self.res.refs):
            if name in table:
                return table[name]
        raise KeyError(f"unresolved Ref {name}")

    def condition(self, name: str) -> bool:
        return bool(self.resolve(self.template.get("Conditions", {})[name]))

    def resolve(self, value: Any) -> Any:
        """`value` with each intrinsic function in it evaluated; a one-key mapping that names no intrinsic stays."""
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) != 1:
            return {k: self.resolve(v) for k, v in value.items()}
        ((key, arg),) = value.items()
        evaluate = self._INTRINSICS.get(key)
        return {key: self.resolve(arg)} if evaluate is None else evaluate(self, arg)

    def _get_att(self, arg: str | list[str]) -> str:
        logical, attr = arg if isinstance(arg, list) else arg.split(".", 1)
        return self.res.attrs[(logical, attr)]

    def _sub(self, arg: str | list[Any]) -> str:
        text, extra = (arg, {}) if isinstance(arg, str) else (arg[0], self.resolve(arg[1]))

        def substitute(found: re.Match[str]) -> str:
            name = found.group(1)
            if name in extra:
                return str(extra[name])
            if "." in name:
                logical, attr = name.split(".", 1)
                return self.res.attrs[(logical, attr)]
            return self.ref(name)

        return re.sub(r"\$\{([^}!]+)\}", substitute, text)

    def _join(self, arg: list[Any]) -> str:
        return str(arg[0]).join(str(self.resolve(v)) for v in arg[1])

    def _equals(self, arg: list[Any]) -> bool:
        left, right = self.resolve(arg)
        return bool(left == right)

    def _not(self, arg: list[Any]) -> bool:
        return not self.resolve(arg[0])

    def _if(self, arg: list[Any]) -> Any:
        return self.resolve(arg[1] if self.condition(arg[0]) else arg[2])

    def _select(self, arg: list[Any]) -> Any:
        return self.resolve(arg[1])[int(arg[0])]

    # The intrinsic functions the template uses, by key; `resolve` leaves any other one-key mapping as it is.
    _INTRINSICS: dict[str, Callable[[_Resolver, Any], Any]] = {
        "Ref": ref,
        "Condition": condition,
        "Fn::GetAtt": _get_att,
        "Fn::Sub": _sub,
        "Fn::Join": _join,
        "Fn::Equals": _equals,
        "Fn::Not": _not,
        "Fn::If": _if,
        "Fn::Select": _select,
    }


def _queue_attributes(props: dict[str, Any]) -> dict[str, str]:
    names = [
        "FifoQueue",
        "ContentBasedDeduplication",
        "DeduplicationScope",
        "FifoThroughputLimit",
        "VisibilityTimeout",
        "MessageRetentionPeriod",
        "MaximumMessageSize",
        "DelaySeconds",
        "ReceiveMessageWaitTimeSeconds",
    ]
    attrs = {n: str(props[n]).lower() if isinstance(props[n], bool) else str(props[n]) for n in names if n in props}
    if "RedrivePolicy" in props:
        attrs["RedrivePolicy"] = json.dumps(props["RedrivePolicy"])
    return attrs


def resolved_outputs(resources: LocalStackResources, template_path: Path = TEMPLATE_PATH) -> dict[str, str]:
    """The template's Outputs as CloudFormation would resolve them for this provisioned stack (those of resources
    the local stack does not make, such as the HTTP API or the alarm topic, are left out)."""
    template = load_template(template_path)
    resolver = _Resolver(template, resources)
    outputs = {}
    for name, spec in template.get("Outputs", {}).items():
        try:
            outputs[name] = str(resolver.resolve(spec["Value"]))
        except KeyError:
            continue
    return outputs


def local_outputs(resources: LocalStackResources, endpoint: str, region: str) -> dict[str, str]:
    """What `make run` writes to `.local-stack/outputs.json` for the CLI: the template's outputs, as a deployed
    stack has them, and where the local AWS is."""
    env = resources.shared_environment()
    return {
        **resolved_outputs(resources),
        "Endpoint": endpoint,
        "Region": region,
        "TableName": env["TABLE_NAME"],
        "SecretPrefix": env["SECRET_PREFIX"],
    }


def provision(
    session: Any, *, stack_name: str = "local", region: str = "us-east-1", template_path: Path = TEMPLATE_PATH
) -> LocalStackResources:
    """Create the template's tables and queues through `session` (a boto3 Session pointed at moto)."""
    template = load_template(template_path)
    resources = LocalStackResources(stack_name=stack_name, region=region)
    resolver = _Resolver(template, resources)
    declared = template["Resources"]
    client = _clients(session)
    _create_tables(client, declared, resolver, resources)

    queues = {k: v for k, v in declared.items() if v["Type"] == "AWS::SQS::Queue"}
    while queues:  # dead-letter queues first: a source queue's RedrivePolicy needs the DLQ's ARN
        progressed = False
        for logical, spec in list(queues.items()):
            try:
                props = resolver.resolve(spec.get("Properties", {}))
            except KeyError:
                continue
            _create_queue(client, logical, props, resources)
            del queues[logical]
            progressed = True
        if not progressed:
            raise RuntimeError(f"cannot resolve queues {sorted(queues)}")

    globals_fn = template.get("Globals", {}).get("Function", {})
    for logical, spec in declared.items():
        if spec["Type"] == "AWS::Serverless::Function":
            _register_function(logical, spec.get("Properties", {}), globals_fn, resolver, resources)
    return resources


def provision_tables(
    session: Any, *, stack_name: str = "local", region: str = "us-east-1", template_path: Path = TEMPLATE_PATH
) -> LocalStackResources:
    """Only the template's DynamoDB tables: for tests of the state stores, which need the table and nothing else."""
    template = load_template(template_path)
    resources = LocalStackResources(stack_name=stack_name, region=region)
    _create_tables(_clients(session), template["Resources"], _Resolver(template, resources), resources)
    return resources


def _clients(session: Any) -> Callable[[str], Any]:
    """One client per service for a whole provisioning: building a boto3 client costs more than the calls it makes
    here, and the tests provision for every test."""
    return functools.cache(session.client)


def _create_tables(
    client: Callable[[str], Any], declared: dict[str, Any], resolver: _Resolver, resources: LocalStackResources
) -> None:
    for logical, spec in declared.items():
        if spec["Type"] == "AWS::DynamoDB::Table":
            _create_table(client("dynamodb"), logical, resolver.resolve(spec["Properties"]), resources)


def _create_table(client: Any, logical: str, props: dict[str, Any], resources: LocalStackResources) -> None:
    name = props.get("TableName") or f"{resources.stack_name}-{logical}"
    args = {k: props[k] for k in ("AttributeDefinitions", "KeySchema", "GlobalSecondaryIndexes") if k in props}
    client.create_table(TableName=name, BillingMode=props.get("BillingMode", "PAY_PER_REQUEST"), **args)
    ttl = props.get("TimeToLiveSpecification")
    if ttl and ttl.get("Enabled"):
        client.update_time_to_live(
            TableName=name, TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True}
        )
    resources.refs[logical] = name
    resources.attrs[(logical, "Arn")] = f"arn:aws:dynamodb:{resources.region}:{ACCOUNT_ID}:table/{name}"


def _create_queue(
    client: Callable[[str], Any], logical: str, props: dict[str, Any], resources: LocalStackResources
) -> None:
    sqs = client("sqs")
    fifo = bool(props.get("FifoQueue"))
    name = props.get("QueueName") or f"{resources.stack_name}-{logical}" + (".fifo" if fifo else "")
    url = sqs.create_queue(QueueName=name, Attributes=_queue_attributes(props))["QueueUrl"]
    arn = f"arn:aws:sqs:{resources.region}:{ACCOUNT_ID}:{name}"  # as for tables: no GetQueueAttributes per queue
    resources.refs[logical] = url
    resources.queue_urls[logical] = url
    resources.attrs[(logical, "Arn")] = arn
    resources.attrs[(logical, "QueueName")] = name
    resources.attrs[(logical, "QueueUrl")] = url


def _register_function(
    logical: str, props: dict[str, Any], globals_fn: dict[str, Any], resolver: _Resolver, res: LocalStackResources
) -> None:
    environment = {
        **resolver.resolve(globals_fn.get("Environment", {}).get("Variables", {})),
        **resolver.resolve(props.get("Environment", {}).get("Variables", {})),
    }
    # CloudFormation names a function `<stack>-<LogicalId>-<suffix>`; its Ref is the name (the Outputs use it).
    name = str(props.get("FunctionName") or f"{res.stack_name}-{logical}")
    res.refs[logical] = name
    res.attrs[(logical, "Arn")] = f"arn:aws:lambda:{res.region}:{ACCOUNT_ID}:function:{name}"
    res.functions[logical] = FunctionSpec(
        logical_id=logical,
        code_dir=REPO_ROOT / str(props["CodeUri"]),
        handler=str(props.get("Handler", globals_fn.get("Handler", "app.lambda_handler"))),
        timeout=int(props.get("Timeout", globals_fn.get("Timeout", 3))),
        environment={k: str(v) for k, v in environment.items()},
        name=name,
    )
    for event in props.get("Events", {}).values():
        kind, event_props = event["Type"], event.get("Properties", {})
        if kind in ("HttpApi", "Api"):
            res.routes.append(HttpRoute(str(event_props["Method"]).upper(), str(event_props["Path"]), logical))
        elif kind == "SQS":
            arn = resolver.resolve(event_props["Queue"])
            queue_logical = next(k for (k, attr), v in res.attrs.items() if attr == "Arn" and v == arn)
            res.subscriptions.append(
                QueueSubscription(
                    queue_url=res.queue_urls[queue_logical],
                    queue_arn=arn,
                    function=logical,
                    batch_size=int(event_props.get("BatchSize", 10)),
                    report_batch_item_failures="ReportBatchItemFailures"
                    in event_props.get("FunctionResponseTypes", []),
                )
            )
        elif kind in ("Schedule", "ScheduleV2"):
            expression = resolver.resolve(event_props.get("Schedule") or event_props.get("ScheduleExpression"))
            res.schedules.append(ScheduleSpec(logical, str(expression)))
