"""A moto-backed deployment built from template.yaml (the same provisioning the local stack uses)."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from pos_ecom_sync import runtime
from pos_ecom_sync.models.connection import Connection, ConnectionSecrets
from pos_ecom_sync.secrets import write_connection_secrets
from pos_ecom_sync.state.store import SyncStore

from local_stack.provision import LocalStackResources, provision
from tests.contract_recording import ContractRecorder
from tests.support import DEMO_SECRETS


@dataclass
class Deployment:
    resources: LocalStackResources
    session: Any
    store: SyncStore
    env: dict[str, str]

    def queue_url(self, concern: str) -> str:
        return self.env[f"{concern.upper()}_QUEUE_URL"]

    @property
    def sqs(self) -> Any:
        return self.session.client("sqs")

    def add_connection(self, connection: Connection, secrets: dict[str, str] | None = None) -> None:
        self.store.save_connection(connection, create=True)
        write_connection_secrets(
            self.session.client("secretsmanager"),
            self.env["SECRET_PREFIX"],
            connection.connection_id,
            ConnectionSecrets.model_validate(secrets or DEMO_SECRETS),
        )


def demo_connection(connection_id: str = "demo", **overrides: Any) -> Connection:
    settings: dict[str, Any] = {
        "connection_id": connection_id,
        "pos_base_url": "http://127.0.0.1:9",
        "ecom_base_url": "http://127.0.0.1:9",
        **overrides,
    }
    return Connection(**settings)


@pytest.fixture(autouse=True)
def _conforms_to_vendor_contracts(vendor_contracts: ContractRecorder) -> ContractRecorder:
    """Every vendor request a test makes, and every simulator answer, must be what the vendors document."""
    return vendor_contracts


def caching_session() -> Any:
    """A boto3 Session that builds each client once: tests ask for the same few hundreds of times, and building one
    costs more CPU than most of the calls it then makes to moto."""
    session = boto3.Session(region_name="us-east-1")
    session.client = functools.cache(session.client)  # type: ignore[method-assign]
    return session


@pytest.fixture
def deployment(aws: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Deployment]:
    session = caching_session()
    resources = provision(session, stack_name="test")
    env = resources.shared_environment()
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "WARNING")  # the template's INFO is for CloudWatch
    runtime.reset()
    store = SyncStore(env["TABLE_NAME"], resource=session.resource("dynamodb"))
    deployment = Deployment(resources, session, store, env)
    deployment.add_connection(demo_connection())
    yield deployment
    runtime.reset()
