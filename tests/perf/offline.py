"""The environment every benchmark runs in: AWS is moto in-process (fake credentials, no endpoint override), and
Powertools neither emits metrics nor traces, so what is measured is the sync code, not log output."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


def use_offline_aws(log_level: str = "ERROR") -> None:
    """Set before boto3 or a function module is imported (they read the environment when they load)."""
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "POWERTOOLS_METRICS_DISABLED": "true",
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_LOG_LEVEL": log_level,
            "POWERTOOLS_METRICS_NAMESPACE": "Bench",
            "POWERTOOLS_SERVICE_NAME": "pos-ecom-sync",
        }
    )
    os.environ.pop("AWS_ENDPOINT_URL", None)  # a `make run` shell points boto3 at its moto server
    _drop_disabled_metrics()


def _drop_disabled_metrics() -> None:
    """Powertools (3.x) with metrics disabled never clears its metric set at the end of an invocation, so the 100th
    value of a metric prints an EMF blob on stdout all the same (`add_metric` flushes without checking). Clearing
    the set where a disabled flush would have printed it keeps benchmarks quiet, as a Lambda flush would leave it."""
    from aws_lambda_powertools.metrics.functions import is_metrics_disabled
    from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import AmazonCloudWatchEMFProvider

    flush = AmazonCloudWatchEMFProvider.flush_metrics
    if getattr(flush, "_drops_disabled", False):
        return

    def flush_or_drop(self: AmazonCloudWatchEMFProvider, raise_on_empty_metrics: bool = False) -> None:
        if is_metrics_disabled():
            self.metric_set.clear()
            return
        flush(self, raise_on_empty_metrics)

    flush_or_drop._drops_disabled = True  # type: ignore[attr-defined]
    AmazonCloudWatchEMFProvider.flush_metrics = flush_or_drop  # type: ignore[method-assign]


def provision_bench_stack(**extra_env: str) -> tuple[Any, Any, dict[str, str]]:
    """The template's tables and queues in moto (stack `bench`), their names exported to the environment as the
    functions read them, Powertools quiet, and every cached client reset: (boto3 session, the provisioned
    resources, the functions' env)."""
    import boto3
    from pos_ecom_sync import runtime

    from local_stack.provision import provision

    session = boto3.Session(region_name="us-east-1")
    resources = provision(session, stack_name="bench")
    env = resources.shared_environment()
    os.environ.update(env)
    # The template asks for INFO logs and metrics (right for CloudWatch); here they would only add I/O.
    os.environ.update({"POWERTOOLS_LOG_LEVEL": "ERROR", "POWERTOOLS_METRICS_DISABLED": "true", **extra_env})
    runtime.reset()
    return session, resources, env


@contextmanager
def cheap_moto_transactions() -> Iterator[None]:
    """moto's TransactWriteItems deep-copies every table it names before it starts, to roll back a cancelled
    transaction: each one costs the whole table, so a benchmark that fills the table goes quadratic (the order
    ledger's completion is one). Same outcome, cheaper: only the items the transaction names are kept, and put back
    when it is cancelled. Call while moto's DynamoDB runs one request at a time (it swaps a module reference)."""
    import copy

    import moto.dynamodb.models as models
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.table import Table

    backend = models.DynamoDBBackend
    original = backend.transact_write_items

    class TablesAsThemselves:
        """The module's `copy`, except that a Table is not copied (its touched items are, below)."""

        @staticmethod
        def deepcopy(value: Any, memo: Any = None) -> Any:
            return value if isinstance(value, Table) else copy.deepcopy(value, memo)

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        try:
            touched = [_touched_item(self, next(iter(entry.values())), DynamoType) for entry in transact_items]
        except Exception:  # a malformed request: moto's own path reports it
            return original(self, transact_items)
        models.copy = TablesAsThemselves  # type: ignore[attr-defined,assignment]
        try:
            original(self, transact_items)
        except Exception:
            for table, hash_key, range_key, attributes in reversed([t for t in touched if t is not None]):
                if table.get_item(hash_key, range_key) is not None:
                    table.delete_item(hash_key, range_key)
                if attributes is not None:
                    table.put_item(attributes)
            raise
        finally:
            models.copy = copy  # type: ignore[attr-defined]

    backend.transact_write_items = transact_write_items  # type: ignore[method-assign]
    try:
        yield
    finally:
        backend.transact_write_items = original  # type: ignore[method-assign]


def _touched_item(backend: Any, op: dict[str, Any], dynamo_type: Any) -> tuple[Any, Any, Any, Any] | None:
    """(table, hash key, range key, a copy of the item's attributes or None) for one transaction entry."""
    import copy

    table = backend.tables.get(op.get("TableName"))
    if table is None:
        return None
    key = op.get("Key") or {a: op["Item"][a] for a in (table.hash_key_attr, table.range_key_attr) if a}
    hash_key = dynamo_type(key[table.hash_key_attr])
    range_key = dynamo_type(key[table.range_key_attr]) if table.range_key_attr else None
    item = table.get_item(hash_key, range_key)
    return table, hash_key, range_key, copy.deepcopy(item.to_json()["Attributes"]) if item is not None else None
