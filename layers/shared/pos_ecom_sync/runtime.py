"""Wiring: builds the long-lived services of a cold start (clients, store, secrets) from settings.

Handlers ask for a service here; tests call `reset()` to drop cached clients between moto sessions.
"""

from __future__ import annotations

from datetime import timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import boto3

from pos_ecom_sync.intake.poller import ChangePoller
from pos_ecom_sync.intake.webhooks import WebhookIntake
from pos_ecom_sync.models.connection import Connection
from pos_ecom_sync.queues import ChangePublisher
from pos_ecom_sync.secrets import ConnectionSecretsReader
from pos_ecom_sync.settings import get_settings
from pos_ecom_sync.state.store import SyncStore

if TYPE_CHECKING:  # connectors pull in httpx: only the functions that call vendors pay for the import
    from pos_ecom_sync.connectors.ecom import EcomClient
    from pos_ecom_sync.connectors.xseries import XSeriesClient


@lru_cache(maxsize=1)
def _dynamodb_client() -> Any:
    return boto3.client("dynamodb")


@lru_cache(maxsize=1)
def sync_store() -> SyncStore:
    return SyncStore(get_settings().TABLE_NAME, resource=boto3.resource("dynamodb"))


@lru_cache(maxsize=1)
def secrets_reader() -> ConnectionSecretsReader:
    settings = get_settings()
    return ConnectionSecretsReader(
        settings.SECRET_PREFIX, client=boto3.client("secretsmanager"), max_age_seconds=settings.SECRETS_MAX_AGE_SECONDS
    )


@lru_cache(maxsize=1)
def change_publisher() -> ChangePublisher:
    return ChangePublisher(get_settings().queue_url, client=boto3.client("sqs"))


@lru_cache(maxsize=1)
def webhook_intake() -> WebhookIntake:
    return WebhookIntake(
        sync_store(), secrets_reader(), change_publisher(), dedup_ttl_seconds=get_settings().WEBHOOK_DEDUP_TTL_SECONDS
    )


@lru_cache(maxsize=1)
def change_poller() -> ChangePoller:
    settings = get_settings()
    return ChangePoller(
        sync_store(),
        change_publisher(),
        page_size=settings.POLL_PAGE_SIZE,
        ecom_overlap=timedelta(seconds=settings.POLL_ECOM_OVERLAP_SECONDS),
    )


def pos_client(connection: Connection, *, max_wait_s: float = 2.0) -> XSeriesClient:
    from pos_ecom_sync.connectors.xseries import XSeriesClient
    from pos_ecom_sync.state.budget import DynamoRateBudget

    secrets = secrets_reader().get(connection.connection_id)
    budget = DynamoRateBudget(get_settings().TABLE_NAME, connection.connection_id, "xseries", client=_dynamodb_client())
    return XSeriesClient(
        connection.pos_base_url, secrets.pos_access_token.get_secret_value(), budget, max_wait_s=max_wait_s
    )


def ecom_client(connection: Connection, *, max_wait_s: float = 2.0) -> EcomClient:
    from pos_ecom_sync.connectors.ecom import EcomClient
    from pos_ecom_sync.state.budget import DynamoRateBudget

    secrets = secrets_reader().get(connection.connection_id)
    budget = DynamoRateBudget(get_settings().TABLE_NAME, connection.connection_id, "ecom", client=_dynamodb_client())
    return EcomClient(
        connection.ecom_base_url,
        secrets.ecom_api_key.get_secret_value(),
        secrets.ecom_api_secret.get_secret_value(),
        budget,
        language=connection.ecom_language,
        max_wait_s=max_wait_s,
    )


def reset() -> None:
    """Forget every cached client and setting (tests; a new moto session needs new clients)."""
    for cached in (_dynamodb_client, sync_store, secrets_reader, change_publisher, webhook_intake, change_poller):
        cached.cache_clear()
    get_settings.cache_clear()
