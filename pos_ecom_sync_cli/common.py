"""What every command group of the CLI shares: its error and the lookup of a connection it acts on."""

from __future__ import annotations

from typing import Any

from pos_ecom_sync.models.connection import Connection


class CliError(Exception):
    """A refusal the operator can act on: printed as `error: ...` with exit status 2."""


def existing_connection(target: Any, connection_id: str) -> Connection:
    connection: Connection | None = target.store.get_connection(connection_id)
    if connection is None:
        raise CliError(f"no connection {connection_id!r}")
    return connection
