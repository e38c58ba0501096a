"""Wiring: builds the long-lived services of a cold start (clients, store, secrets) from settings.

Handlers ask for a service here; tests call `reset()` to drop cached clients between moto sessions.
"""

from __future__ import annotations

from datetime import timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import boto3

from pos_ecom_sync.errors import ConfigurationError, Paused
from pos_ecom_sync.intake.poller import ChangePoller
from pos_ecom_sync.intake.webhooks import WebhookIntake
from pos_ecom_sync.models.connection import Connection
from pos_ecom_sync.queues import ChangePublisher
from pos_ecom_sync.secrets import ConnectionSecretsReader
from pos_ecom_sync.settings import get_settings
from pos_ecom_sync.state.store import SyncStore
from pos_ecom_sync.workers import DeadLetters

if TYPE_CHECKING:  # connectors pull in httpx: only the functions that call vendors pay for the import
    from pos_ecom_sync.catalog.sync import CatalogSync
    from pos_ecom_sync.connectors.ecom import EcomClient
    from pos_ecom_sync.connectors.xseries import XSeriesClient
    from pos_ecom_sync.orders.importer import OrderImporter
    from pos_ecom_sync.reference import ReferenceCache
    from pos_ecom_sync.state.budget import DynamoRateBudget
    from pos_ecom_sync.state.order_store import OrderStore


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
        max_products_backlog=settings.POLL_MAX_PRODUCTS_BACKLOG,
    )


def _shared_budget(connection: Connection, api: str, reserve_share: float) -> DynamoRateBudget:
    """The connection's budget for `api`, shared through DynamoDB with every concurrent invocation."""
    from pos_ecom_sync.state.budget import DynamoRateBudget

    return DynamoRateBudget(
        get_settings().TABLE_NAME,
        connection.connection_id,
        api,
        client=_dynamodb_client(),
        reserve_share=reserve_share,
    )


def pos_client(connection: Connection, *, max_wait_s: float = 2.0, reserve_share: float = 0.0) -> XSeriesClient:
    """A POS client: a personal token as is, or an OAuth pair refreshed through the sync table (one refresher per
    connection across every concurrent invocation; see `connectors.xseries_auth`)."""
    from pos_ecom_sync.connectors.xseries import client_for_secrets
    from pos_ecom_sync.state.token_store import TokenStore

    def tokens() -> TokenStore:
        return TokenStore(get_settings().TABLE_NAME, connection.connection_id, "xseries", client=_dynamodb_client())

    secrets = secrets_reader().get(connection.connection_id)
    budget = _shared_budget(connection, "xseries", reserve_share)
    return client_for_secrets(connection.pos_base_url, secrets, budget, tokens, max_wait_s=max_wait_s)


def ecom_client(connection: Connection, *, max_wait_s: float = 2.0, reserve_share: float = 0.0) -> EcomClient:
    from pos_ecom_sync.connectors.ecom import EcomClient

    secrets = secrets_reader().get(connection.connection_id)
    return EcomClient(
        connection.ecom_base_url,
        secrets.ecom_api_key.get_secret_value(),
        secrets.ecom_api_secret.get_secret_value(),
        _shared_budget(connection, "ecom", reserve_share),
        language=connection.ecom_language,
        max_wait_s=max_wait_s,
    )


@lru_cache(maxsize=1)
def sqs_client() -> Any:
    return boto3.client("sqs")


def dead_letters() -> DeadLetters:
    url = get_settings().DEAD_LETTER_QUEUE_URL
    if not url:
        raise ConfigurationError("DEAD_LETTER_QUEUE_URL is not set for this worker")
    return DeadLetters(sqs_client(), url)


def active_connection(connection_id: str) -> Connection:
    """The connection a queued change belongs to; a paused or deleted one fails the record (kept for later)."""
    connection = sync_store().get_connection(connection_id)
    if connection is None:
        raise ConfigurationError(f"connection {connection_id!r} does not exist")
    if not connection.is_active:
        raise Paused(f"connection {connection_id!r} is paused")
    return connection


def catalog_sync(connection: Connection) -> CatalogSync:
    """A catalog worker for `connection`: its eCom calls leave a share of the budget to stock and orders."""
    from pos_ecom_sync.catalog.sync import CatalogSync

    settings = get_settings()
    wait = settings.WORKER_MAX_RATE_WAIT_SECONDS
    return CatalogSync(
        connection,
        pos_client(connection, max_wait_s=wait, reserve_share=settings.CATALOG_RATE_RESERVE_SHARE),
        ecom_client(connection, max_wait_s=wait, reserve_share=settings.CATALOG_RATE_RESERVE_SHARE),
        sync_store(),
        reference=reference_cache(),
    )


@lru_cache(maxsize=1)
def _events_client() -> Any:
    return boto3.client("events")


@lru_cache(maxsize=1)
def reference_cache() -> ReferenceCache:
    """Vendor reference lists (registers, payment types, shipping methods, brands, categories) kept by this warm
    sandbox for 5 minutes, keyed by connection."""
    from pos_ecom_sync.reference import ReferenceCache

    return ReferenceCache()


def order_store() -> OrderStore:
    from pos_ecom_sync.state.order_store import OrderStore

    return OrderStore(get_settings().TABLE_NAME, client=_dynamodb_client())


def order_importer(connection: Connection) -> OrderImporter:
    """An order worker for `connection`: orders go first, so its calls leave nothing in reserve."""
    from pos_ecom_sync.orders.importer import EventBridgeNotifier, OrderImporter

    settings = get_settings()
    wait = settings.WORKER_MAX_RATE_WAIT_SECONDS
    bus = settings.ORDER_EVENTS_BUS_NAME
    return OrderImporter(
        connection,
        pos_client(connection, max_wait_s=wait),
        ecom_client(connection, max_wait_s=wait),
        order_store(),
        sync_store(),
        notifier=EventBridgeNotifier(_events_client(), bus) if bus else None,
        reference=reference_cache(),
    )


if TYPE_CHECKING:
    from pos_ecom_sync.state.stock_store import StockStore
    from pos_ecom_sync.stock.sync import StockSync


def stock_store() -> StockStore:
    """The stock state store; cached alongside `sync_store()`, so `reset()` replaces both."""
    return _stock_store_beside(sync_store())


@lru_cache(maxsize=1)
def _stock_store_beside(store: SyncStore) -> StockStore:
    from pos_ecom_sync.state.stock_store import StockStore

    return StockStore(get_settings().TABLE_NAME, resource=boto3.resource("dynamodb"))


def stock_sync(connection: Connection) -> StockSync:
    """A stock worker for `connection`: stock writes go first, so its calls hold nothing in reserve."""
    from pos_ecom_sync.stock.sync import StockSync

    wait = get_settings().WORKER_MAX_RATE_WAIT_SECONDS
    return StockSync(
        connection,
        pos_client(connection, max_wait_s=wait),
        ecom_client(connection, max_wait_s=wait, reserve_share=0.0),
        stock_store(),
        sync_store(),
        change_publisher(),
    )


if TYPE_CHECKING:
    from pos_ecom_sync.status.sync import StatusSync


def status_sync(connection: Connection) -> StatusSync:
    """A status worker for `connection`: status writes are live traffic, so they hold nothing in reserve."""
    from pos_ecom_sync.state.status_store import StatusStore
    from pos_ecom_sync.status.sync import StatusSync

    wait = get_settings().WORKER_MAX_RATE_WAIT_SECONDS
    return StatusSync(
        connection,
        pos_client(connection, max_wait_s=wait),
        ecom_client(connection, max_wait_s=wait),
        order_store(),
        StatusStore(get_settings().TABLE_NAME, client=_dynamodb_client()),
        sync_store(),
        reference=reference_cache(),
    )


if TYPE_CHECKING:
    from pos_ecom_sync.reconcile.service import Reconciler
    from pos_ecom_sync.state.reconcile_store import ReconcileStore


def reconcile_store() -> ReconcileStore:
    """The reconciliation store; cached alongside `sync_store()`, so `reset()` replaces both."""
    return _reconcile_store_beside(sync_store())


@lru_cache(maxsize=1)
def _reconcile_store_beside(store: SyncStore) -> ReconcileStore:
    from pos_ecom_sync.state.reconcile_store import ReconcileStore

    return ReconcileStore(get_settings().TABLE_NAME, resource=boto3.resource("dynamodb"))


def reconciler() -> Reconciler:
    from pos_ecom_sync.reconcile.service import Reconciler

    settings = get_settings()
    return Reconciler(
        reconcile_store(),
        change_publisher(),
        interval=timedelta(hours=settings.RECONCILE_INTERVAL_HOURS),
        order_lookback=timedelta(hours=settings.RECONCILE_ORDER_LOOKBACK_HOURS),
        max_backlog=settings.POLL_MAX_PRODUCTS_BACKLOG,
        pos_page_size=settings.RECONCILE_POS_PAGE_SIZE,
        ecom_page_size=settings.RECONCILE_ECOM_PAGE_SIZE,
    )


def reconcile_clients(connection: Connection) -> tuple[XSeriesClient, EcomClient]:
    """Vendor clients for a full compare: low priority like the catalog import, so stock and orders keep their share
    of every rate window; a slot that is not free soon ends the invocation's reading (the next tick resumes)."""
    settings = get_settings()
    wait, reserve = settings.WORKER_MAX_RATE_WAIT_SECONDS, settings.CATALOG_RATE_RESERVE_SHARE
    return (
        pos_client(connection, max_wait_s=wait, reserve_share=reserve),
        ecom_client(connection, max_wait_s=wait, reserve_share=reserve),
    )


def reset() -> None:
    """Forget every cached client and setting (tests; a new moto session needs new clients)."""
    cached_services = (_dynamodb_client, sqs_client, sync_store, secrets_reader, change_publisher, _events_client)
    reference_cache.cache_clear()
    for cached in (*cached_services, webhook_intake, change_poller):
        cached.cache_clear()
    get_settings.cache_clear()
