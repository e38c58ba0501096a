"""A connection's live OAuth token pair and its refresh lease (stored by `state.token_store`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StoredTokens:
    access_token: str | None
    refresh_token: str | None
    expires_at: float | None
    seed: str | None
    revision: int = 0
    lease_owner: str | None = None
    lease_until: float | None = None
