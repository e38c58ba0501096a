"""Vendor clients for operator commands: the connection's API secret, and the same shared rate budgets in the sync
table as the workers (an operator's reads are counted against the windows the workers see)."""

from __future__ import annotations

from typing import Any

from pos_ecom_sync.connectors.ecom import EcomClient
from pos_ecom_sync.models.connection import Connection
from pos_ecom_sync.profiles import profile_for
from pos_ecom_sync.profiles.xseries.client import XSeriesClient
from pos_ecom_sync.secrets import ApiSecretsReader
from pos_ecom_sync.state.budget import DynamoRateBudget
from pos_ecom_sync.state.token_store import TokenStore

from pos_ecom_sync_cli.common import CliError

# How long an operator command waits for a rate slot before giving up with the vendor's throttling reason.
MAX_RATE_WAIT_S = 30.0


def _budget(target: Any, connection: Connection, api: str, reserve_share: float) -> DynamoRateBudget:
    dynamodb = target.session.client("dynamodb")
    return DynamoRateBudget(
        target.table_name, connection.connection_id, api, client=dynamodb, reserve_share=reserve_share
    )


def pos_client(target: Any, connection: Connection, *, reserve_share: float = 0.0) -> Any:
    """The connection's POS client, built by its POS profile: its secret, its shared rate budget (and OAuth token
    store), exactly as the workers build it."""
    profile = profile_for(connection)
    secrets = ApiSecretsReader(target.secret_prefix, client=target.secrets).get(connection.connection_id)
    dynamodb = target.session.client("dynamodb")

    def tokens() -> TokenStore:
        return TokenStore(target.table_name, connection.connection_id, profile.api, client=dynamodb)

    budget = _budget(target, connection, profile.api, reserve_share)
    return profile.client(connection, secrets, budget, tokens, max_wait_s=MAX_RATE_WAIT_S)


def xseries_client(target: Any, connection: Connection) -> XSeriesClient:
    """For the commands that speak X-Series (its registers list, its sales and fulfilments, its shipping product):
    a clear refusal for a connection of another POS instead of a call that POS does not have."""
    if connection.pos_profile != "x-series":
        raise CliError(
            f"this command reads X-Series data; connection {connection.connection_id!r} is {connection.pos_profile}"
        )
    client: XSeriesClient = pos_client(target, connection)
    return client


def ecom_client(target: Any, connection: Connection, *, reserve_share: float = 0.0) -> EcomClient:
    secrets = ApiSecretsReader(target.secret_prefix, client=target.secrets).get(connection.connection_id)
    return EcomClient(
        connection.ecom_base_url,
        secrets.ecom_api_key.get_secret_value(),
        secrets.ecom_api_secret.get_secret_value(),
        _budget(target, connection, "ecom", reserve_share),
        language=connection.ecom_language,
        max_wait_s=MAX_RATE_WAIT_S,
    )
