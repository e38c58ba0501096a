"""Test-wide setup: fake AWS credentials and Powertools env *before* any handler or boto3 client exists.

moto must be imported before clients are created or calls would bypass it (toolchain.md §8b).
"""

from __future__ import annotations

import os

os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SECURITY_TOKEN": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_SERVICE_NAME": "pos-ecom-sync",
        "POWERTOOLS_METRICS_NAMESPACE": "PosEcomSync",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_DEV": "false",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
    }
)
os.environ.pop("AWS_ENDPOINT_URL", None)
os.environ.pop("AWS_PROFILE", None)

import boto3
import moto  # noqa: F401
import pytest
from moto import mock_aws

from local_stack.dynamodb_atomic import serialize_dynamodb
from local_stack.moto_speed import speed_up_moto
from local_stack.provision import provision_tables
from local_stack.sqs_limits import enforce_sqs_limits

# Every moto SQS in the tests refuses what real SQS refuses (group-id alphabet, body characters, 256 KiB).
enforce_sqs_limits()
# moto's DynamoDB evaluates a condition and writes in separate steps; DynamoDB does both atomically.
serialize_dynamodb()
# moto's SQS clock reads and DynamoDB value casts, at a fraction of their CPU (same answers).
speed_up_moto()

# Vendor requests and simulator answers are recorded for the contract checks (tests/contract_recording.py).
pytest_plugins = ["tests.contract_recording"]


@pytest.fixture
def aws():
    """In-process moto for one test."""
    with mock_aws():
        yield


@pytest.fixture
def dynamodb_client(aws):
    return boto3.client("dynamodb", region_name="us-east-1")


@pytest.fixture
def sync_table(aws) -> str:
    """The template's SyncTable, created in moto from template.yaml (the wiring is never repeated here)."""
    return provision_tables(boto3.Session(region_name="us-east-1"), stack_name="test").refs["SyncTable"]
