"""Vendor clients for operator commands: the connection's API secret, and the same shared rate budgets in the sync
table as the workers (an operator's reads are counted against the windows the workers see)."""

from __future__ import annotations

from typing import Any

from pos_ecom_sync.connectors.ecom import EcomClient
from pos_ecom_sync.models.connection import Connection
from pos_ecom_sync.profiles.xseries.client import XSeriesClient, client_for_secrets
from pos_ecom_sync.secrets import ApiSecretsReader
from pos_ecom_sync.state.budget import DynamoRateBudget
from pos_ecom_sync.state.token_store import TokenStore

# How long an operator command waits for a rate slot before giving up with the vendor's throttling reason.
MAX_RATE_WAIT_S = 30.0


def _budget(target: Any, connection: Connection, api: str, reserve_share: float) -> DynamoRateBudget:
    dynamodb = target.session.client("dynamodb")
    return DynamoRateBudget(
        target.table_name, connection.connection_id, api, client=dynamodb, reserve_share=reserve_share
    )


def pos_client(target: Any, connection: Connection, *, reserve_share: float = 0.0) -> XSeriesClient:
    """A POS client: the connection's secret, its shared X-Series rate budget (and OAuth token store)."""
    secrets = ApiSecretsReader(target.secret_prefix, client=target.secrets).get(connection.connection_id)
    dynamodb = target.session.client("dynamodb")

    def tokens() -> TokenStore:
        return TokenStore(target.table_name, connection.connection_id, "xseries", client=dynamodb)

    budget = _budget(target, connection, "xseries", reserve_share)
    return client_for_secrets(connection.pos_base_url, secrets, budget, tokens, max_wait_s=MAX_RATE_WAIT_S)


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
