"""The environment every benchmark runs in: AWS is moto in-process (fake credentials, no endpoint override), and
Powertools neither emits metrics nor traces, so what is measured is the sync code, not log output."""

from __future__ import annotations

import os
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
