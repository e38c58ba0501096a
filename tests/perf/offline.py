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
