"""Wiring: builds the long-lived services of a cold start (clients, store, secrets) from settings.

Handlers ask for a service here; tests call `reset()` to drop cached clients between moto sessions.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import hashlib
import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any, TypeVar, cast

import boto3
from aws_lambda_powertools import Logger
from botocore.config import Config
from pydantic import SecretStr

from pos_ecom_sync.correlation import correlated
from pos_ecom_sync.errors import AuthorizationRefused, ConfigurationError, CredentialsRejected, Paused, SyncError
from pos_ecom_sync.models.connection import ApiSecrets, Connection
from pos_ecom_sync.queues import ChangePublisher, QueueCounts, RecentIdle
from pos_ecom_sync.secrets import ApiSecretsReader, WebhookSecretsReader
from pos_ecom_sync.settings import get_settings
from pos_ecom_sync.state.store import SyncStore

# Imported where used: a function pays at its cold start only for what it runs (connectors pull in httpx, the
# poller the catalog rules, workers Powertools' batch utility).
if TYPE_CHECKING:
    from pos_ecom_sync.catalog.sync import CatalogSync
    from pos_ecom_sync.connectors.ecom import EcomClient
    from pos_ecom_sync.intake.poller import ChangePoller, PosChangeFeeds
    from pos_ecom_sync.intake.webhooks import PosWebhookParser, WebhookIntake
    from pos_ecom_sync.models.feeds import PosFeed, SkippedRow
    from pos_ecom_sync.observability import MeteredBudget
    from pos_ecom_sync.orders.importer import BatchedNotifications, EventBridgeNotifier, OrderImporter
    from pos_ecom_sync.profiles.xseries.client import XSeriesClient
    from pos_ecom_sync.reference import ReferenceCache
    from pos_ecom_sync.state.order_store import OrderStore
    from pos_ecom_sync.state.parked_store import ParkedStore
    from pos_ecom_sync.workers import DeadLetters


E = TypeVar("E")
R = TypeVar("R")
C = TypeVar("C")

# Explicit AWS timeouts and retries (botocore's defaults: 60 s to connect, 60 s to read, legacy retries): a
# black-holed dependency fails well inside the function's timeout instead of hanging it, and the failure is handled
# (a worker's record is retried with back-off, the poller resumes from its cursors).
# Workers and schedules (timeouts 30-300 s): at most 3 attempts of 2 s to connect + 5 s to answer.
WORKER_AWS = Config(connect_timeout=2, read_timeout=5, retries={"mode": "standard", "total_max_attempts": 3})
# The webhook function (10 s timeout; vendors give up after ~5 s): 2 attempts of 1 s + 1.5 s, so a dependency that
# does not answer gives a 503 in about 4 s at worst (standard retry mode waits under 1 s before the second).
INTAKE_AWS = Config(connect_timeout=1, read_timeout=1.5, retries={"mode": "standard", "total_max_attempts": 2})


def configure_logging(logger: Logger) -> None:
    """Once per cold start (each handler module calls it): no personal data or secrets in any log line."""
    from pos_ecom_sync.logs import configure_logging as configure

    try:
        level = get_settings().THIRD_PARTY_LOG_LEVEL
    except ConfigurationError:  # reported by the first invocation; logs stay quiet meanwhile
        level = "WARNING"
    configure(logging.getLogger(logger.service), level)


def aws_client(service: str, config: Config = WORKER_AWS) -> Any:
    return boto3.client(service, config=config)


@lru_cache(maxsize=1)
def _dynamodb_client() -> Any:
    # Not the resource's `meta.client`: boto3 makes that one convert Python values to DynamoDB's typed form.
    return aws_client("dynamodb")


@lru_cache(maxsize=2)
def _dynamodb_resource(config: Config = WORKER_AWS) -> Any:
    """One resource per timeout profile, shared by every store of the sandbox (each made its own: a resource builds
    its classes and a client, several ms of a cold start apiece)."""
    return boto3.resource("dynamodb", config=config)


@lru_cache(maxsize=1)
def sync_store() -> SyncStore:
    return SyncStore(get_settings().TABLE_NAME, resource=_dynamodb_resource())


def parked_store() -> ParkedStore:
    """Feed rows the poller and reconciliation skipped; cached alongside `sync_store()`, so `reset()` replaces it."""
    return _parked_store_beside(sync_store())


@lru_cache(maxsize=1)
def _parked_store_beside(store: SyncStore) -> ParkedStore:
    from pos_ecom_sync.state.parked_store import ParkedStore

    return ParkedStore(get_settings().TABLE_NAME, resource=_dynamodb_resource())


@lru_cache(maxsize=1)
def secrets_reader() -> ApiSecretsReader:
    """The API part of each connection's secret (workers, poller, reconciliation: IAM grants `*/api-??????`)."""
    settings = get_settings()
    return ApiSecretsReader(
        settings.SECRET_PREFIX, client=aws_client("secretsmanager"), max_age_seconds=settings.SECRETS_MAX_AGE_SECONDS
    )


@lru_cache(maxsize=1)
def webhook_secrets_reader() -> WebhookSecretsReader:
    """The webhook part only (the webhook function: IAM grants `*/webhook-??????`), with intake's tight timeouts."""
    settings = get_settings()
    return WebhookSecretsReader(
        settings.SECRET_PREFIX,
        client=aws_client("secretsmanager", INTAKE_AWS),
        max_age_seconds=settings.SECRETS_MAX_AGE_SECONDS,
    )


def correlated_run(kind: str) -> Callable[[Callable[[E, Any], R]], Callable[[E, Any], R]]:
    """A scheduled handler's decorator: the run's id (`<kind>-<Lambda request id>`) is the correlation id of its log
    lines and of every message it queues (see `correlation`)."""

    def decorate(handler: Callable[[E, Any], R]) -> Callable[[E, Any], R]:
        @functools.wraps(handler)
        def run(event: E, context: Any) -> R:
            with correlated(f"{kind}-{context.aws_request_id}", Logger()):
                return handler(event, context)

        return run

    return decorate


def report_skipped_rows(logger: Logger, event: str, skipped: Sequence[tuple[str, SkippedRow]]) -> None:
    """One warning per vendor row a scheduled run skipped; each is parked for the operator (`pos-ecom-sync parked
    list <connection>`)."""
    for connection_id, row in skipped:
        logger.warning(event, extra={"connection_id": connection_id, **row.log_fields()})


def report_connection_failures(
    logger: Logger, event: str, failures: dict[str, str], errors: Mapping[str, Exception]
) -> None:
    """Log each connection a scheduled run could not handle (the others were handled). A vendor that refused a
    credential makes the next run read the connection's secret afresh (it may have been rotated)."""
    for connection_id, reason in failures.items():
        error = errors.get(connection_id)
        if isinstance(error, CredentialsRejected | AuthorizationRefused):
            forget_secrets(connection_id)
        extra = {"connection_id": connection_id, "error": reason, "error_type": type(error).__name__ if error else None}
        # A failure nobody foresaw (not a SyncError) gets its traceback: it is a bug to fix.
        unforeseen = error is not None and not isinstance(error, SyncError)
        logger.error(event, extra=extra, exc_info=error if unforeseen else None)


def forget_secrets(connection_id: str) -> None:
    """A vendor refused a credential of this connection: the next client built for it (`pos_client`,
    `ecom_client`) reads the API secret afresh, bypassing the cache."""
    secrets_reader().forget(connection_id)


@lru_cache(maxsize=1)
def change_publisher() -> ChangePublisher:
    return ChangePublisher(get_settings().queue_url, client=sqs_client())


@lru_cache(maxsize=1)
def webhook_intake() -> WebhookIntake:
    """Intake's own clients, with the webhook function's tight timeouts (see INTAKE_AWS)."""
    from pos_ecom_sync.intake.webhooks import WebhookIntake

    settings = get_settings()
    return WebhookIntake(
        SyncStore(settings.TABLE_NAME, resource=_dynamodb_resource(INTAKE_AWS)),
        webhook_secrets_reader(),
        ChangePublisher(settings.queue_url, client=aws_client("sqs", INTAKE_AWS)),
        dedup_ttl_seconds=settings.WEBHOOK_DEDUP_TTL_SECONDS,
        pos_webhooks=pos_webhook_parser,
        takes_ecom_edits=takes_ecom_edits,
    )


def pos_webhook_parser(connection: Connection) -> PosWebhookParser | None:
    """The webhook parser of the connection's POS profile; None for a POS that sends no webhooks."""
    from pos_ecom_sync.profiles import profile_for

    return profile_for(connection).webhook_parser()


def takes_ecom_edits(connection: Connection) -> bool:
    """Whether the merchant's eCom product edits flow back to the connection's POS (its profile says: seed 000)."""
    from pos_ecom_sync.profiles import profile_for

    return profile_for(connection).takes_ecom_edits


@lru_cache(maxsize=1)
def change_poller() -> ChangePoller:
    from pos_ecom_sync.intake.category_links import link_feed_for
    from pos_ecom_sync.intake.poller import ChangePoller

    settings = get_settings()
    reserve = settings.CATALOG_RATE_RESERVE_SHARE

    def link_reader(connection: Connection) -> EcomClient:
        # The merchant's eCom category links (R-Series, seed 000) are catalog work: they leave orders and stock a share.
        return ecom_client(connection, reserve_share=reserve)

    return ChangePoller(
        sync_store(),
        change_publisher(),
        page_size=settings.POLL_PAGE_SIZE,
        ecom_overlap=timedelta(seconds=settings.POLL_ECOM_OVERLAP_SECONDS),
        max_products_backlog=settings.POLL_MAX_PRODUCTS_BACKLOG,
        parked=parked_store(),
        category_links=link_feed_for(takes_ecom_edits, link_reader),
        customers=order_store(),  # the POS customer feed keeps the customer email index honest and its census
    )


def _shared_budget(connection: Connection, api: str, reserve_share: float) -> MeteredBudget:
    """The connection's budget for `api`, shared through DynamoDB with every concurrent invocation; its calls, 429s
    and use are counted per connection and API for the dashboard."""
    from pos_ecom_sync.observability import MeteredBudget
    from pos_ecom_sync.state.budget import DynamoRateBudget

    budget = DynamoRateBudget(
        get_settings().TABLE_NAME,
        connection.connection_id,
        api,
        client=_dynamodb_client(),
        reserve_share=reserve_share,
    )
    return MeteredBudget(budget, connection.connection_id)


# Vendor clients a warm sandbox keeps: one per connection, API and budget setting (`identity`), so a warm invocation
# reuses its TCP/TLS connections and its budget's cached state instead of building both per record. A rotated
# credential or a changed address (`version`) replaces that client, and the old one is closed. Kept per thread: a
# Lambda sandbox runs one invocation at a time on one thread, while the local stack runs several functions in one
# process, one thread each, whose call counts must not mix.
MAX_WARM_CLIENTS = 8
WarmClients = OrderedDict[tuple[Any, ...], tuple[tuple[Any, ...], Any]]
_warm = threading.local()
_warm_all: list[WarmClients] = []  # every thread's clients, for `reset` and shutdown
_warm_lock = threading.Lock()


def _warm_clients() -> WarmClients:
    clients: WarmClients | None = getattr(_warm, "clients", None)
    if clients is None:
        clients = _warm.clients = OrderedDict()
        with _warm_lock:
            _warm_all.append(clients)
    return clients


def _warm_client(identity: tuple[Any, ...], version: tuple[Any, ...], build: Callable[[], C]) -> C:
    """This thread's client for `identity` if it was built for `version`, else a new one (an outdated one is
    closed, and so is the least recently used beyond the cap)."""
    clients = _warm_clients()
    found = clients.pop(identity, None)
    if found is not None and found[0] == version:
        clients[identity] = found
        return cast(C, found[1])
    if found is not None:
        _close(found[1])
    client = build()
    clients[identity] = (version, client)
    while len(clients) > MAX_WARM_CLIENTS:
        _close(clients.popitem(last=False)[1][1])
    return client


def _close(client: Any) -> None:
    with contextlib.suppress(Exception):
        client.close()


def close_warm_clients() -> None:
    """Close every kept vendor client (shutdown, `reset`)."""
    with _warm_lock:
        for clients in _warm_all:
            while clients:
                _close(clients.popitem()[1][1])


atexit.register(close_warm_clients)


def _secrets_key(secrets: ApiSecrets) -> str:
    """A digest of the connection's credentials (never the values): a rotated one makes a new client."""
    values = {name: value.get_secret_value() for name, value in secrets if isinstance(value, SecretStr)}
    return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()


def pos_client(connection: Connection, *, max_wait_s: float = 2.0, reserve_share: float = 0.0) -> XSeriesClient:
    """The connection's POS client, built by its POS profile (`profiles`): behind the connection's shared budget, with
    its credentials; an OAuth pair is refreshed through the sync table (one refresher per connection across every
    concurrent invocation). Kept by the warm sandbox (`_warm_client`)."""
    from pos_ecom_sync.profiles import profile_for
    from pos_ecom_sync.state.token_store import TokenStore

    profile = profile_for(connection)

    def tokens() -> TokenStore:
        return TokenStore(get_settings().TABLE_NAME, connection.connection_id, profile.api, client=_dynamodb_client())

    secrets = secrets_reader().get(connection.connection_id)

    def build() -> XSeriesClient:
        budget = _shared_budget(connection, profile.api, reserve_share)
        client: XSeriesClient = profile.client(connection, secrets, budget, tokens, max_wait_s=max_wait_s)
        return client

    address = (connection.pos_profile, connection.pos_base_url, connection.pos_account_id, _dynamodb_client())
    identity = (connection.connection_id, profile.api, max_wait_s, reserve_share)
    return _warm_client(identity, (*address, _secrets_key(secrets)), build)


if TYPE_CHECKING:
    from pos_ecom_sync.models.ledger import CustomerFeed


class _ProfileFeeds:
    """A connection's POS change feeds as the poller asks for them (`intake.poller.PosChangeFeeds`)."""

    def __init__(self, connection: Connection) -> None:
        from pos_ecom_sync.profiles import profile_for

        self._profile = profile_for(connection)
        self._client = pos_client(connection)

    def change_feeds(self, connection: Connection, *, page_size: int, family_of: Callable[[str], str]) -> list[PosFeed]:
        return self._profile.change_feeds(self._client, connection, page_size=page_size, family_of=family_of)

    def customer_feed(self, connection: Connection, *, page_size: int) -> CustomerFeed:
        return self._profile.customer_feed(self._client, connection, page_size=page_size)


def pos_change_feeds(connection: Connection) -> PosChangeFeeds:
    return _ProfileFeeds(connection)


def ecom_client(connection: Connection, *, max_wait_s: float = 2.0, reserve_share: float = 0.0) -> EcomClient:
    from pos_ecom_sync.connectors.ecom import EcomClient

    secrets = secrets_reader().get(connection.connection_id)

    def build() -> EcomClient:
        return EcomClient(
            connection.ecom_base_url,
            secrets.ecom_api_key.get_secret_value(),
            secrets.ecom_api_secret.get_secret_value(),
            _shared_budget(connection, "ecom", reserve_share),
            language=connection.ecom_language,
            max_wait_s=max_wait_s,
        )

    address = (connection.ecom_base_url, connection.ecom_language, _dynamodb_client())
    identity = (connection.connection_id, "ecom", max_wait_s, reserve_share)
    return _warm_client(identity, (*address, _secrets_key(secrets)), build)


@lru_cache(maxsize=1)
def sqs_client() -> Any:
    return aws_client("sqs")


def dead_letters() -> DeadLetters:
    from pos_ecom_sync.workers import DeadLetters

    url = get_settings().DEAD_LETTER_QUEUE_URL
    if not url:
        raise ConfigurationError("DEAD_LETTER_QUEUE_URL is not set for this worker")
    return DeadLetters(sqs_client(), url)


class _Batch:
    """What the records of one SQS batch share (`sqs_batch`)."""

    def __init__(self) -> None:
        self.connections: dict[str, Connection] = {}
        self.queues: RecentIdle | None = None
        self.orders: OrderStore | None = None
        self.notifications: BatchedNotifications | None = None


_batch = threading.local()  # per thread, like the warm clients: the local stack runs functions on several threads


@contextlib.contextmanager
def sqs_batch() -> Iterator[None]:
    """One invocation's batch of records (at most the event source's BatchSize, within the function's timeout): its
    records share each connection as read once (`active_connection`: a pause or a settings change saved meanwhile
    reaches the next batch), the queues' idle answers (`queue_states`), and for orders one ledger read
    (`read_order_ledgers`) and the sending of their events (`send_order_notifications`)."""
    outer = getattr(_batch, "current", None)
    _batch.current = _Batch()
    try:
        yield
    finally:
        _batch.current = outer


def _current_batch() -> _Batch | None:
    return cast("_Batch | None", getattr(_batch, "current", None))


def queue_states() -> QueueCounts:
    """Whether a concern's queue is idle: within `sqs_batch`, an idle answer is reused for a few seconds by the
    batch's records (`queues.RecentIdle`, whose docstring says the trade-off); else asked each time."""
    batch = _current_batch()
    if batch is None:
        return change_publisher()
    if batch.queues is None:
        batch.queues = RecentIdle(change_publisher())
    return batch.queues


def active_connection(connection_id: str) -> Connection:
    """The connection a queued change belongs to; a paused or deleted one fails the record (kept for later). Read
    once per `sqs_batch`."""
    batch = _current_batch()
    connection = batch.connections.get(connection_id) if batch is not None else None
    if connection is None:
        connection = sync_store().get_connection(connection_id)
    if connection is None:
        raise ConfigurationError(f"connection {connection_id!r} does not exist")
    if batch is not None:
        batch.connections[connection_id] = connection
    if not connection.is_active:
        raise Paused(f"connection {connection_id!r} is paused")
    return connection


def catalog_sync(connection: Connection) -> CatalogSync:
    """A catalog worker for `connection`: its eCom calls leave a share of the budget to stock and orders."""
    from pos_ecom_sync.catalog.sync import CatalogSync

    settings = get_settings()
    wait = settings.WORKER_MAX_RATE_WAIT_SECONDS
    from pos_ecom_sync.profiles import profile_for

    pos = pos_client(connection, max_wait_s=wait, reserve_share=settings.CATALOG_RATE_RESERVE_SHARE)
    return CatalogSync(
        connection,
        profile_for(connection).catalog(pos, connection),
        ecom_client(connection, max_wait_s=wait, reserve_share=settings.CATALOG_RATE_RESERVE_SHARE),
        sync_store(),
        reference=reference_cache(),
        stock=change_publisher(),
    )


@lru_cache(maxsize=1)
def _events_client() -> Any:
    return aws_client("events")


@lru_cache(maxsize=1)
def reference_cache() -> ReferenceCache:
    """Vendor reference lists kept by this warm sandbox, keyed by connection: registers, payment types and shipping
    methods for 5 minutes; eCom brands and categories by `catalog.sync`'s rule (a title found: an hour; a title
    missing: the list is read again unless it was read in the last minute)."""
    from pos_ecom_sync.reference import ReferenceCache

    return ReferenceCache()


def order_store() -> OrderStore:
    """The order ledger; within `sqs_batch`, one store for the batch (it keeps what `read_order_ledgers` read)."""
    from pos_ecom_sync.state.order_store import OrderStore

    batch = _current_batch()
    if batch is not None and batch.orders is not None:
        return batch.orders
    store = OrderStore(get_settings().TABLE_NAME, client=_dynamodb_client())
    if batch is not None:
        batch.orders = store
    return store


def read_order_ledgers(event: Mapping[str, Any]) -> None:
    """Within `sqs_batch`: the ledgers of the eCom orders the event's records name, in one batched read per
    connection, so that each record's first ledger read costs no call of its own. Best effort: a failed read leaves
    each record to its own read."""
    from pos_ecom_sync.errors import UpstreamUnavailable
    from pos_ecom_sync.orders.batch import orders_named

    if _current_batch() is None:
        return
    wanted: dict[str, list[int]] = {}
    for named in orders_named(event):
        wanted.setdefault(named.connection_id, []).append(named.order_id)
    store = order_store()
    for connection_id, order_ids in wanted.items():
        with contextlib.suppress(UpstreamUnavailable):
            store.prefetch_orders(connection_id, order_ids)


def send_order_notifications(event: Mapping[str, Any], response: dict[str, Any], logger: Logger) -> dict[str, Any]:
    """Within `sqs_batch`, once its records are handled: send the new-fulfillment events they queued
    (`BatchedNotifications.flush`); the records of an order whose events could not be sent become batch item
    failures (`orders.batch.with_unsent_as_failures`)."""
    from pos_ecom_sync.orders.batch import orders_named, with_unsent_as_failures

    batch = _current_batch()
    if batch is None or batch.notifications is None:
        return response
    unsent = set(batch.notifications.flush())
    if not unsent:
        return response
    logger.warning("new-fulfillment events not sent: their orders' records are retried", extra={"orders": len(unsent)})
    return with_unsent_as_failures(orders_named(event), response, unsent)


def _order_notifier() -> EventBridgeNotifier | None:
    from pos_ecom_sync.orders.importer import EventBridgeNotifier

    bus = get_settings().ORDER_EVENTS_BUS_NAME
    return EventBridgeNotifier(_events_client(), bus) if bus else None


def _batch_notifications(notifier: EventBridgeNotifier | None) -> BatchedNotifications | None:
    """Within `sqs_batch`, the batch's outbox of new-fulfillment events (sent by `send_order_notifications`)."""
    from pos_ecom_sync.orders.importer import BatchedNotifications

    batch = _current_batch()
    if batch is None or notifier is None:
        return None
    if batch.notifications is None:
        batch.notifications = BatchedNotifications(notifier, order_store())
    return batch.notifications


def order_importer(connection: Connection) -> OrderImporter:
    """An order worker for `connection`: orders go first, so its calls leave nothing in reserve."""
    from pos_ecom_sync.orders.importer import OrderImporter

    settings = get_settings()
    wait = settings.WORKER_MAX_RATE_WAIT_SECONDS
    from pos_ecom_sync.profiles import profile_for

    notifier = _order_notifier()
    return OrderImporter(
        connection,
        profile_for(connection).orders(pos_client(connection, max_wait_s=wait), connection, reference_cache()),
        ecom_client(connection, max_wait_s=wait),
        order_store(),  # also reads the lines' variant links, with the customer index entry, in one batch
        notifier=notifier,
        outbox=_batch_notifications(notifier),
        stock=change_publisher(),
        stock_states=stock_store(),  # routing reads levels from the stock state while the stock queue is idle
        queues=queue_states(),
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

    return StockStore(get_settings().TABLE_NAME, resource=_dynamodb_resource())


def stock_sync(connection: Connection) -> StockSync:
    """A stock worker for `connection`: stock writes go first, so its calls hold nothing in reserve."""
    from pos_ecom_sync.stock.sync import StockSync

    wait = get_settings().WORKER_MAX_RATE_WAIT_SECONDS
    from pos_ecom_sync.profiles import profile_for

    return StockSync(
        connection,
        profile_for(connection).inventory(pos_client(connection, max_wait_s=wait)),
        ecom_client(connection, max_wait_s=wait, reserve_share=0.0),
        stock_store(),
        sync_store(),
        change_publisher(),
    )


if TYPE_CHECKING:
    from pos_ecom_sync.status.sync import BatchReads, StatusSync


def status_sync(connection: Connection, batch: BatchReads | None = None) -> StatusSync:
    """A status worker for `connection`: status writes are live traffic, so they hold nothing in reserve. `batch`:
    the orders already read while handling this SQS batch (shared by its records)."""
    from pos_ecom_sync.profiles import profile_for
    from pos_ecom_sync.state.status_store import StatusStore
    from pos_ecom_sync.status.sync import StatusSync

    wait = get_settings().WORKER_MAX_RATE_WAIT_SECONDS
    return StatusSync(
        connection,
        profile_for(connection).sales(pos_client(connection, max_wait_s=wait), connection, reference_cache()),
        ecom_client(connection, max_wait_s=wait),
        order_store(),
        StatusStore(get_settings().TABLE_NAME, client=_dynamodb_client()),
        sync_store(),
        stock=change_publisher(),
        batch=batch,
    )


if TYPE_CHECKING:
    from pos_ecom_sync.reconcile.service import PosCatalogFeed, Reconciler
    from pos_ecom_sync.state.reconcile_store import ReconcileStore


def reconcile_store() -> ReconcileStore:
    """The reconciliation store; cached alongside `sync_store()`, so `reset()` replaces both."""
    return _reconcile_store_beside(sync_store())


@lru_cache(maxsize=1)
def _reconcile_store_beside(store: SyncStore) -> ReconcileStore:
    from pos_ecom_sync.state.reconcile_store import ReconcileStore

    return ReconcileStore(get_settings().TABLE_NAME, resource=_dynamodb_resource())


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
        parked=parked_store(),
    )


def reconcile_clients(connection: Connection) -> tuple[PosCatalogFeed, EcomClient]:
    """Vendor clients for a full compare: low priority like the catalog import, so stock and orders keep their share
    of every rate window; a slot that is not free soon ends the invocation's reading (the next tick resumes)."""
    settings = get_settings()
    wait, reserve = settings.WORKER_MAX_RATE_WAIT_SECONDS, settings.CATALOG_RATE_RESERVE_SHARE
    from pos_ecom_sync.profiles import profile_for

    return (
        profile_for(connection).catalog_walk(pos_client(connection, max_wait_s=wait, reserve_share=reserve)),
        ecom_client(connection, max_wait_s=wait, reserve_share=reserve),
    )


def reset() -> None:
    """Forget every cached client and setting (tests; a new moto session needs new clients)."""
    cached_services = (_dynamodb_resource, _dynamodb_client, sqs_client, sync_store, secrets_reader, change_publisher)
    reference_cache.cache_clear()
    close_warm_clients()
    for cached in (*cached_services, _events_client, webhook_secrets_reader, webhook_intake, change_poller):
        cached.cache_clear()
    get_settings.cache_clear()
