"""The environment every benchmark runs in: AWS is moto in-process (fake credentials, no endpoint override), and
Powertools neither emits metrics nor traces, so what is measured is the sync code, not log output."""

from __future__ import annotations

import os


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
