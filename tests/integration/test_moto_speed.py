"""moto with its hot paths made cheap (local_stack/moto_speed.py, applied by tests/conftest.py) answers as before:
queue counts split visible, in-flight and delayed messages, and DynamoDB orders numbers as numbers, strings as
strings."""

from __future__ import annotations

import re
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.dynamodb.models.dynamo_type import DynamoType

from local_stack.moto_speed import speed_up_moto


def _table_t() -> Any:
    """A DynamoDB client, and a table "t" keyed by `pk` alone."""
    dynamodb = boto3.client("dynamodb", region_name="us-east-1")
    dynamodb.create_table(
        TableName="t",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return dynamodb


def _counts(sqs: object, url: str) -> tuple[int, int, int]:
    names = [
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed",
    ]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]  # type: ignore[attr-defined]
    visible, in_flight, delayed = (int(attributes[n]) for n in names)
    return visible, in_flight, delayed


def test_queue_counts_tell_visible_in_flight_and_delayed_messages_apart(aws: None) -> None:
    speed_up_moto()  # idempotent: already applied for the whole session
    sqs = boto3.client("sqs", region_name="us-east-1")
    url = sqs.create_queue(QueueName="speed")["QueueUrl"]
    for n in range(4):
        sqs.send_message(QueueUrl=url, MessageBody=f"m{n}")
    sqs.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=60)
    assert _counts(sqs, url) == (4, 0, 1)

    taken = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=3, VisibilityTimeout=60)["Messages"]
    assert len(taken) == 3
    assert _counts(sqs, url) == (1, 3, 1)

    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=taken[0]["ReceiptHandle"], VisibilityTimeout=0)
    assert _counts(sqs, url) == (2, 2, 1)
    again = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert sorted(m["Body"] for m in again) == sorted(["m3", taken[0]["Body"]])


def test_a_query_orders_number_sort_keys_numerically_and_string_ones_by_code_point(aws: None) -> None:
    dynamodb = boto3.client("dynamodb", region_name="us-east-1")
    for name, kind in (("numbers", "N"), ("strings", "S")):
        dynamodb.create_table(
            TableName=name,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": kind},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        for key in ("10", "2", "1.5", "-3"):
            dynamodb.put_item(TableName=name, Item={"pk": {"S": "p"}, "sk": {kind: key}})

    def order(name: str) -> list[str]:
        items = dynamodb.query(
            TableName=name, KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "p"}}
        )["Items"]
        return [next(iter(item["sk"].values())) for item in items]

    assert order("numbers") == ["-3", "1.5", "2", "10"]
    assert order("strings") == ["-3", "1.5", "10", "2"]
    # Types the fast path leaves to moto still cast as moto does.
    assert DynamoType({"SS": ["a", "b"]}).cast_value == {"a", "b"}
    assert DynamoType({"L": [{"N": "1"}]}).cast_value == [1]


def test_one_update_expression_used_again_applies_to_each_item_with_its_own_values(aws: None) -> None:
    """The parsed expression is shared between calls and each validation copies it: nothing of one call's values
    or item may leak into the next, and each call's condition is judged on its own values."""
    dynamodb = _table_t()

    def bump(key: str, step: int, item: str, limit: int = 100) -> dict[str, object]:
        return dynamodb.update_item(  # type: ignore[no-any-return]
            TableName="t",
            Key={"pk": {"S": key}},
            UpdateExpression="SET #n = if_not_exists(#n, :zero) + :step, #l = list_append(if_not_exists(#l, :no), :i)",
            ExpressionAttributeNames={"#n": "count", "#l": "seen"},
            ExpressionAttributeValues={
                ":zero": {"N": "0"},
                ":step": {"N": str(step)},
                ":no": {"L": []},
                ":i": {"L": [{"S": item}]},
                ":limit": {"N": str(limit)},
            },
            ConditionExpression="attribute_not_exists(#n) OR #n < :limit",
            ReturnValues="ALL_NEW",
        )["Attributes"]

    assert bump("a", 2, "x") == {"pk": {"S": "a"}, "count": {"N": "2"}, "seen": {"L": [{"S": "x"}]}}
    assert bump("b", 5, "y") == {"pk": {"S": "b"}, "count": {"N": "5"}, "seen": {"L": [{"S": "y"}]}}
    assert bump("a", 3, "z") == {"pk": {"S": "a"}, "count": {"N": "5"}, "seen": {"L": [{"S": "x"}, {"S": "z"}]}}
    with pytest.raises(ClientError, match="ConditionalCheckFailed"):
        bump("a", 1, "refused", limit=5)
    dynamodb.update_item(
        TableName="t", Key={"pk": {"S": "b"}}, UpdateExpression="REMOVE #l", ExpressionAttributeNames={"#l": "seen"}
    )
    assert dynamodb.get_item(TableName="t", Key={"pk": {"S": "b"}})["Item"] == {"pk": {"S": "b"}, "count": {"N": "5"}}
    assert bump("b", 1, "w") == {"pk": {"S": "b"}, "count": {"N": "6"}, "seen": {"L": [{"S": "w"}]}}


def test_one_condition_used_again_is_judged_on_each_call_s_own_names_values_and_item(aws: None) -> None:
    """Parsed conditions are kept per text and names, each call judged on a copy holding its own values: a call with
    other values, other names or another item gets its own answer."""
    dynamodb = _table_t()
    for key, level in (("a", "1"), ("b", "2")):
        dynamodb.put_item(TableName="t", Item={"pk": {"S": key}, "v": {"N": level}, "w": {"N": "2"}})

    def passes(key: str, values: dict[str, dict[str, str]], name: str = "v") -> bool:
        try:
            dynamodb.put_item(
                TableName="t",
                Item={"pk": {"S": key}, "v": {"N": "1" if key == "a" else "2"}, "w": {"N": "2"}},
                ConditionExpression="#x = :v",
                ExpressionAttributeNames={"#x": name},
                ExpressionAttributeValues=values,
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            return False
        return True

    one, two = {":v": {"N": "1"}}, {":v": {"N": "2"}}
    assert [passes("a", one), passes("a", two), passes("b", one), passes("b", two)] == [True, False, False, True]
    assert [passes("a", two, name="w"), passes("a", one, name="w"), passes("a", one)] == [True, False, True]


def test_every_placeholder_of_a_kept_condition_takes_each_call_s_value_wherever_it_stands(aws: None) -> None:
    """A placeholder used several times, inside functions, IN lists and BETWEEN bounds, is bound anew at each call;
    a call that leaves one undeclared is refused as moto refuses it the first time (its parser's KeyError)."""
    dynamodb = _table_t()
    dynamodb.put_item(TableName="t", Item={"pk": {"S": "a"}, "n": {"N": "5"}, "s": {"S": "abc"}})
    condition = "(n BETWEEN :lo AND :hi OR n IN (:lo, :hi)) AND begins_with(s, :p) AND size(s) < :hi AND n <> :hi"

    def passes(lo: int, hi: int, prefix: str) -> bool:
        values = {":lo": {"N": str(lo)}, ":hi": {"N": str(hi)}, ":p": {"S": prefix}}
        try:
            dynamodb.update_item(
                TableName="t",
                Key={"pk": {"S": "a"}},
                UpdateExpression="SET m = :lo",
                ConditionExpression=condition,
                ExpressionAttributeValues=values,
            )
        except ClientError as error:
            assert error.response["Error"]["Code"] == "ConditionalCheckFailedException"
            return False
        return True

    cases = [((1, 9, "ab"), True), ((6, 9, "ab"), False), ((1, 4, "ab"), False), ((5, 6, "ab"), True)]
    cases += [((1, 9, "b"), False), ((3, 9, "a"), True), ((1, 5, "a"), False), ((2, 7, "abc"), True)]
    assert [passes(*values) for values, _ in cases] == [expected for _, expected in cases]
    for text in ("n = :lo AND n = :hi", condition):  # not seen before / kept
        with pytest.raises(KeyError, match=":hi"):
            dynamodb.put_item(
                TableName="t",
                Item={"pk": {"S": "b"}, "n": {"N": "1"}, "s": {"S": "x"}},
                ConditionExpression=f"attribute_not_exists(pk) OR ({text})",
                ExpressionAttributeValues={":lo": {"N": "1"}, ":p": {"S": "x"}},
            )


def test_an_update_whose_structure_passed_once_is_refused_when_its_names_or_table_make_it_set_a_key(
    aws: None,
) -> None:
    """The structural checks of an update (one clause of each kind, no overlapping paths, no key attribute set) are
    skipped only for the same expression with the same names on a table with the same key."""
    dynamodb = _table_t()
    dynamodb.create_table(
        TableName="u",
        KeySchema=[{"AttributeName": "count", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "count", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )

    def refusal(table: str, key: dict[str, Any], expression: str, names: dict[str, str]) -> str | None:
        try:
            dynamodb.update_item(
                TableName=table,
                Key=key,
                UpdateExpression=expression,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues={":v": {"S": "1"}},
            )
        except ClientError as error:
            return str(error.response["Error"]["Message"])
        return None

    for _ in range(2):
        assert refusal("t", {"pk": {"S": "a"}}, "SET #a = :v", {"#a": "count"}) is None
    assert "part of the key" in str(refusal("t", {"pk": {"S": "a"}}, "SET #a = :v", {"#a": "pk"}))
    assert "part of the key" in str(refusal("u", {"count": {"S": "a"}}, "SET #a = :v", {"#a": "count"}))
    assert refusal("t", {"pk": {"S": "a"}}, "SET #a = :v, #b = :v", {"#a": "x", "#b": "y"}) is None
    assert "overlap" in str(refusal("t", {"pk": {"S": "a"}}, "SET #a = :v, #b = :v", {"#a": "x", "#b": "x"}))
    for _ in range(2):
        assert "SET" in str(refusal("t", {"pk": {"S": "a"}}, "SET #a = :v SET #b = :v", {"#a": "x", "#b": "y"}))


def test_sessions_of_successive_mocks_share_one_botocore_loader_and_still_reach_their_own_moto() -> None:
    loaders = []
    for name in ("first", "second"):
        with mock_aws():
            session = boto3.Session(region_name="us-east-1")
            loaders.append(session._session.get_component("data_loader"))
            sqs = session.client("sqs")
            sqs.create_queue(QueueName=name)
            assert [u.rsplit("/", 1)[1] for u in sqs.list_queues()["QueueUrls"]] == [name]  # a fresh moto each time
    assert loaders[0] is loaders[1]


def test_a_cancelled_transaction_leaves_every_item_it_named_as_it_was(aws: None) -> None:
    """Rollback keeps only the items a transaction names: writes made before the failing entry are undone, an item
    it overwrote gets its attributes back, and items it did not name are untouched."""
    dynamodb = _table_t()
    dynamodb.put_item(TableName="t", Item={"pk": {"S": "kept"}, "v": {"N": "1"}})
    dynamodb.put_item(TableName="t", Item={"pk": {"S": "other"}, "v": {"N": "7"}})

    with pytest.raises(ClientError, match="TransactionCanceled"):
        dynamodb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": "t", "Item": {"pk": {"S": "new"}, "v": {"N": "2"}}}},
                {
                    "Update": {
                        "TableName": "t",
                        "Key": {"pk": {"S": "kept"}},
                        "UpdateExpression": "SET v = :v",
                        "ExpressionAttributeValues": {":v": {"N": "3"}},
                    }
                },
                {
                    "ConditionCheck": {
                        "TableName": "t",
                        "Key": {"pk": {"S": "other"}},
                        "ConditionExpression": "v = :no",
                        "ExpressionAttributeValues": {":no": {"N": "0"}},
                    }
                },
            ]
        )

    items = dynamodb.scan(TableName="t")["Items"]
    assert sorted((i["pk"]["S"], i["v"]["N"]) for i in items) == [("kept", "1"), ("other", "7")]


def test_a_long_poll_on_a_busy_fifo_group_waits_without_spinning_and_the_next_receive_gets_the_group_again(
    aws: None,
) -> None:
    """The group's first message is in flight, so the second is visible but undeliverable: a one-second long poll
    looks again every SQS_RECHECK_S (a few dozen scans of the queue, not a tight loop) and ends empty, as moto's
    poll keeps the groups in flight when it began; once the first is deleted, the next receive gets the second."""
    from moto.sqs.models import Queue

    sqs = boto3.client("sqs", region_name="us-east-1")
    url = sqs.create_queue(QueueName="g.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    for n in range(2):
        sqs.send_message(QueueUrl=url, MessageBody=f"m{n}", MessageGroupId="g", MessageDeduplicationId=f"d{n}")
    [first] = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, VisibilityTimeout=60)["Messages"]

    scans = 0
    messages = Queue.messages

    def counted(self: Queue) -> object:
        nonlocal scans
        scans += 1
        return messages.fget(self)  # type: ignore[attr-defined]

    Queue.messages = property(counted)  # type: ignore[assignment,method-assign]
    try:
        assert "Messages" not in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, WaitTimeSeconds=1)
    finally:
        Queue.messages = messages  # type: ignore[method-assign]
    assert 0 < scans < 200  # about 1 s / SQS_RECHECK_S looks, each a scan or two; the spin made tens of thousands

    sqs.delete_message(QueueUrl=url, ReceiptHandle=first["ReceiptHandle"])
    [second] = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1)["Messages"]
    assert second["Body"] == "m1"


def _timeless(response: dict[str, Any]) -> bytes:
    """A raw answer with its clock readings (creation times) blanked: two runs differ only there."""
    return re.sub(rb'("\w*(?:Date|Time|Timestamp)\w*": ?"?)[\d.]+', rb"\1T", response["body"])


def _answers(monkeypatch: pytest.MonkeyPatch, *, slow: bool) -> list[bytes]:
    """The raw bodies of a run of DynamoDB, SQS and EventBridge calls whose answers hold every attribute value type
    (nested maps and lists, sets, binary, null), a failed condition's item and model objects, in a fresh moto."""
    from moto.core.serialize import ResponseSerializer

    if slow:
        monkeypatch.setattr(ResponseSerializer, "get_value", ResponseSerializer.get_value.__wrapped__)
    bodies: list[bytes] = []
    with mock_aws():
        clients = [boto3.client(name, region_name="us-east-1") for name in ("dynamodb", "sqs", "events")]
        for client in clients:
            client.meta.events.register(
                "before-parse", lambda response_dict, **_: bodies.append(_timeless(response_dict))
            )
        dynamodb, sqs, events = clients
        dynamodb.create_table(
            TableName="t",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        item = {
            "pk": {"S": "a"},
            "n": {"N": "1.5"},
            "b": {"B": b"\x00\x01"},
            "flags": {"SS": ["x", "y"]},
            "counts": {"NS": ["1", "2"]},
            "blobs": {"BS": [b"z"]},
            "nothing": {"NULL": True},
            "yes": {"BOOL": False},
            "nested": {"M": {"list": {"L": [{"S": "s"}, {"M": {"deep": {"N": "3"}}}]}, "empty": {"M": {}}}},
        }
        dynamodb.put_item(TableName="t", Item=item)
        dynamodb.get_item(TableName="t", Key={"pk": {"S": "a"}}, ConsistentRead=True)
        dynamodb.query(TableName="t", KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "a"}})
        dynamodb.batch_get_item(RequestItems={"t": {"Keys": [{"pk": {"S": "a"}}, {"pk": {"S": "none"}}]}})
        dynamodb.update_item(
            TableName="t",
            Key={"pk": {"S": "a"}},
            UpdateExpression="SET n = n + :one, nested.#l[0] = :s",
            ExpressionAttributeNames={"#l": "list"},
            ExpressionAttributeValues={":one": {"N": "1"}, ":s": {"S": "t"}},
            ReturnValues="ALL_NEW",
        )
        with pytest.raises(ClientError):
            dynamodb.put_item(
                TableName="t",
                Item={"pk": {"S": "a"}},
                ConditionExpression="attribute_not_exists(pk)",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        dynamodb.describe_table(TableName="t")
        url = sqs.create_queue(QueueName="q.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
        sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])
        sqs.list_queues()
        events.put_rule(Name="r", ScheduleExpression="rate(1 minute)")
        events.list_rules()
    return bodies


def test_answers_are_serialised_byte_for_byte_as_moto_serialises_them(monkeypatch: pytest.MonkeyPatch) -> None:
    fast = _answers(monkeypatch, slow=False)
    slow = _answers(monkeypatch, slow=True)
    assert len(fast) == 13  # every call's answer, the refused put's included
    assert fast == slow


def test_provisioned_queue_arns_are_the_ones_sqs_gives_without_asking_for_them(aws: None) -> None:
    """`provision` writes each queue's ARN (event sources, redrive policies and rules name it) from its name, as it
    does for tables, instead of a GetQueueAttributes per queue: the same ARN SQS answers."""
    from local_stack.provision import provision

    session = boto3.Session(region_name="us-east-1")
    resources = provision(session, stack_name="arns")
    sqs = session.client("sqs")
    assert resources.queue_urls
    for logical, url in resources.queue_urls.items():
        answered = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        assert resources.attrs[(logical, "Arn")] == answered


def test_clients_share_botocore_s_event_name_rewrites_and_rewrite_each_name_as_botocore_does() -> None:
    """Aliasers with botocore's own alias table share one cache of rewritten event names; one with another table
    keeps its own. Each name comes out as a fresh, unpatched aliaser rewrites it."""
    from botocore import hooks

    names = ["before-call.autoscaling.CreateLaunchConfiguration", "before-call.dynamodb.GetItem"]
    names += ["creating-client-class.s3", "before-parameter-build.sagemaker-runtime.InvokeEndpoint"]
    names += ["before-call.runtime.sagemaker.InvokeEndpoint", "request-created.elasticloadbalancing.x"]
    first = boto3.client("sqs", region_name="us-east-1").meta.events
    second = boto3.client("dynamodb", region_name="us-east-1").meta.events
    assert first._alias_name_cache is second._alias_name_cache
    own = hooks.EventAliaser(hooks.HierarchicalEmitter(), {"dynamodb": "ddb"})
    assert own._alias_name_cache is not first._alias_name_cache
    assert own._alias_event_name("before-call.dynamodb.GetItem") == "before-call.ddb.GetItem"

    fresh = object.__new__(hooks.EventAliaser)
    fresh._event_aliases, fresh._alias_name_cache = hooks.EVENT_ALIASES, {}
    assert [first._alias_event_name(n) for n in names] == [fresh._alias_event_name(n) for n in names]
    assert [second._alias_event_name(n) for n in names] == [fresh._alias_event_name(n) for n in names]
