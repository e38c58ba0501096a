"""Domain errors: every failure the sync can name, in one place.

Handlers map these to HTTP answers (webhook API) or to SQS record failures (workers); nothing else
decides what a failure means. Upstream errors keep the vendor's status and text so a dead-letter
message tells the operator what the other side said.
"""

from __future__ import annotations

from typing import Any


class SyncError(Exception):
    """Base of every error the sync raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigurationError(SyncError):
    """Settings or secrets are missing or invalid; retrying will not help until an operator acts."""


class AuthorizationRefused(ConfigurationError):
    """The vendor refused our stored OAuth grant (e.g. `invalid_grant`: the refresh token was revoked or the app
    disconnected). Parked with the vendor's reason: only re-authorizing the app (a new refresh token in the
    connection's secret) can fix it."""


class InvalidInput(SyncError):
    """A request or message we cannot accept as sent (answered 400, never retried)."""


class Unauthorized(SyncError):
    """A missing or wrong credential on an incoming request."""


class NotFound(SyncError):
    """The thing asked for does not exist (unknown connection, missing vendor entity)."""


class Conflict(SyncError):
    """A conditional write lost a race; the caller decides whether to re-read and retry."""


class Paused(SyncError):
    """The connection is paused: its queued work waits (is retried later) instead of being applied or dropped."""


class UpstreamError(SyncError):
    """A vendor API answered with an error that retrying the same call will not fix (4xx)."""

    def __init__(self, api: str, status: int, body: str, method: str = "", url: str = "") -> None:
        super().__init__(f"{api} {method} {url} answered {status}: {body[:500]}".replace("  ", " "))
        self.api = api
        self.status = status
        self.body = body
        self.method = method
        self.url = url


class CredentialsRejected(UpstreamError):
    """The vendor answered 401/403 to the credential we sent. A cached credential may simply be stale (rotated in
    Secrets Manager since this sandbox read it): workers re-read the secret once and retry; only a rejection of
    the freshly read credential is final."""


class UpstreamUnavailable(SyncError):
    """A vendor API failed in a way that may pass (5xx, timeout, connection error): retry later."""


class RetryLater(SyncError):
    """The work cannot be done yet but will be by `retry_at` (epoch seconds): another worker holds the entity,
    or a step it depends on is still in flight.

    Workers turn this into a message visibility delay: the work is postponed, never dropped.
    """

    def __init__(self, message: str, retry_at: float) -> None:
        super().__init__(message)
        self.retry_at = retry_at


class RateLimited(RetryLater):
    """The shared rate budget (or the vendor) says wait until `retry_at` (epoch seconds)."""

    def __init__(self, api: str, retry_at: float, reason: str = "rate budget exhausted") -> None:
        super().__init__(f"{api}: {reason}; retry at {retry_at:.0f}", retry_at)
        self.api = api


def safe_text(value: Any, limit: int = 120) -> str:
    """`value` as printable ASCII of at most about `limit` characters, with the full length when cut: safe in a log
    line, a DynamoDB attribute or a terminal whatever a vendor sent (a lone surrogate, control characters, a 300 KB
    string, an integer of 5,000 digits, an object). Every error message that echoes input quotes it through this."""
    if isinstance(value, str):
        text = value
    elif isinstance(value, bool) or value is None or isinstance(value, float):
        text = repr(value)
    elif isinstance(value, int):
        # str() of an integer past 4,300 digits raises (Python's limit); its size says enough.
        text = str(value) if value.bit_length() < 100 else f"<integer of {value.bit_length()} bits>"
    else:
        text = f"<{type(value).__name__}>"
    shown = text[:limit].encode("unicode_escape").decode("ascii")
    if len(text) > limit or len(shown) > limit:
        return f"{shown[:limit]}... ({len(text)} chars)"
    return shown


class OrderBusy(Conflict):
    """Another worker holds a live claim on the order; it finishes the import (or its lease expires)."""

    def __init__(self, order_id: int, lease_until: float) -> None:
        super().__init__(f"order {order_id} is being imported by another worker (lease until {lease_until:.0f})")
        self.order_id = order_id
        self.lease_until = lease_until


class StatusBusy(Conflict):
    """Another worker holds the order's status lease until `lease_until`."""

    def __init__(self, order_id: int, lease_until: float) -> None:
        super().__init__(f"order {order_id}: another worker is syncing its statuses")
        self.lease_until = lease_until
