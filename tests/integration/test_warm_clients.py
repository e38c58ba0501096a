"""A warm sandbox reuses its vendor clients (runtime.pos_client / ecom_client): one HTTP client and one rate budget per
connection, API and budget setting, replaced when the connection's credentials rotate or its address moves; every client
of the sandbox shares one TLS context. AWS is moto (the template's table and secrets); no vendor call is made."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from pos_ecom_sync import runtime
from pos_ecom_sync.connectors.http import tls_context
from pos_ecom_sync.errors import Paused
from pos_ecom_sync.models.connection import ConnectionSecrets
from pos_ecom_sync.secrets import write_connection_secrets

from tests.integration.conftest import Deployment
from tests.support import DEMO_SECRETS


def _closed(client: Any) -> bool:
    return bool(client.http._client.is_closed)


def _tls(client: Any) -> Any:
    return client.http._client._transport._pool._ssl_context  # httpx's own transport, as VendorHttp built it


def test_a_warm_sandbox_reuses_one_client_and_budget_per_connection_api_and_setting(deployment: Deployment) -> None:
    connection = runtime.active_connection("demo")

    ecom = runtime.ecom_client(connection)
    pos = runtime.pos_client(connection)

    assert runtime.ecom_client(connection) is ecom and runtime.pos_client(connection) is pos
    assert runtime.ecom_client(connection).http.budget is ecom.http.budget
    reserved = runtime.ecom_client(connection, reserve_share=0.2)
    assert reserved is not ecom and runtime.ecom_client(connection) is ecom  # both settings kept side by side


def test_a_rotated_credential_gets_a_new_client_and_the_old_one_is_closed(deployment: Deployment) -> None:
    connection = runtime.active_connection("demo")
    before = runtime.ecom_client(connection)

    rotated = ConnectionSecrets.model_validate({**DEMO_SECRETS, "ecom_api_secret": "rotated-ecom-api-secret"})
    write_connection_secrets(
        deployment.session.client("secretsmanager"), deployment.env["SECRET_PREFIX"], "demo", rotated
    )
    runtime.forget_secrets("demo")  # what a refused credential does (workers, scheduled runs)
    after = runtime.ecom_client(connection)

    assert after is not before and _closed(before) and not _closed(after)
    assert runtime.ecom_client(connection) is after
    # A new client, not a new TLS context: building one loads the CA bundle (about 20 ms of CPU).
    assert _tls(after) is _tls(before) is _tls(runtime.pos_client(connection)) is tls_context()


def test_a_moved_vendor_address_gets_a_new_client(deployment: Deployment) -> None:
    connection = runtime.active_connection("demo")
    before = runtime.pos_client(connection)

    moved = runtime.pos_client(connection.model_copy(update={"pos_base_url": "http://127.0.0.1:8"}))

    assert moved is not before and _closed(before) and moved.http.base_url.startswith("http://127.0.0.1:8")


def test_each_thread_keeps_its_own_clients_and_reset_closes_them_all(deployment: Deployment) -> None:
    connection = runtime.active_connection("demo")
    mine = runtime.ecom_client(connection)
    theirs: list[Any] = []
    worker = threading.Thread(target=lambda: theirs.append(runtime.ecom_client(connection)))
    worker.start(), worker.join()

    assert theirs[0] is not mine  # another local-stack function's thread: its call counts stay its own

    runtime.reset()
    assert _closed(mine) and _closed(theirs[0])


def test_an_sqs_batch_reads_each_connection_once_and_a_pause_reaches_the_next_batch(deployment: Deployment) -> None:
    with runtime.sqs_batch():
        connection = runtime.active_connection("demo")
        deployment.store.save_connection(connection.model_copy(update={"status": "paused"}))
        assert runtime.active_connection("demo").is_active  # this batch goes on with the settings it read
    with runtime.sqs_batch(), pytest.raises(Paused):
        runtime.active_connection("demo")
    with pytest.raises(Paused):  # outside a batch, every call reads
        runtime.active_connection("demo")


def test_the_stores_of_a_sandbox_share_one_dynamodb_resource_and_its_queues_one_sqs_client(
    deployment: Deployment,
) -> None:
    """A resource builds its classes and a client (about 5 ms of a cold start apiece): every store of a worker uses
    the one resource, the webhook function's tight-timeout stores their own; the publisher shares the SQS client."""
    shared = runtime.sync_store()._table.meta.client  # the client of the resource the store was built on
    stores = (runtime.stock_store(), runtime.parked_store(), runtime.reconcile_store())
    assert all(store._table.meta.client is shared for store in stores)
    assert runtime.webhook_intake()._store._table.meta.client is not shared
    assert runtime.change_publisher()._sqs is runtime.sqs_client()
