"""Connection secrets in Secrets Manager: two secrets per connection, cached per warm sandbox.

`<SECRET_PREFIX><connection_id>/api` holds the vendor API credentials (workers, poller, reconciliation) and
`<SECRET_PREFIX><connection_id>/webhook` the webhook-verification values (the internet-facing webhook function),
so IAM can grant each function one part only: a secret's ARN is its name plus `-` and 6 random characters, so
`secret:<prefix>*/webhook-??????` matches the webhook parts and nothing else.

Values are `SecretStr`, so they never show up in logs or reprs; errors name secrets and fields, never values.
A cached value is used for `max_age_seconds`; a vendor refusing it (`forget`) or a webhook credential that does
not match (`reread`, at most once per `min_reread_s` per connection and vendor) reads Secrets Manager again
before then.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, ValidationError

from pos_ecom_sync.errors import ConfigurationError, UpstreamUnavailable
from pos_ecom_sync.models.connection import ApiSecrets, ConnectionSecrets, WebhookSecrets

Part = Literal["api", "webhook"]
PARTS: tuple[Part, ...] = ("api", "webhook")
# A flood of deliveries with a wrong credential costs at most one Secrets Manager read per connection and vendor
# this often.
WEBHOOK_REREAD_MIN_INTERVAL_S = 10.0

M = TypeVar("M", ApiSecrets, WebhookSecrets)


def secret_name(prefix: str, connection_id: str, part: Part) -> str:
    return f"{prefix}{connection_id}/{part}"


def legacy_secret_name(prefix: str, connection_id: str) -> str:
    """The single combined secret of a connection created before the split (see `split_legacy_secret`)."""
    return f"{prefix}{connection_id}"


def _field_problems(exc: ValidationError) -> str:
    # Field names only: never echo secret values.
    return ", ".join(".".join(str(p) for p in e["loc"]) or "value" for e in exc.errors())


def _fetch(client: Any, name: str) -> str | None:
    """The secret's current string, None when it does not exist."""
    try:
        value: str = client.get_secret_value(SecretId=name)["SecretString"]
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code == "ResourceNotFoundException":
            return None
        if code in ("AccessDeniedException", "DecryptionFailure"):
            raise ConfigurationError(f"secret {name} cannot be read by this function ({code})") from exc
        raise UpstreamUnavailable(f"secrets manager: cannot read {name} ({code or 'error'})") from exc
    except BotoCoreError as exc:
        raise UpstreamUnavailable(f"secrets manager: cannot read {name} ({type(exc).__name__})") from exc
    except KeyError as exc:
        raise ConfigurationError(f"secret {name} has no SecretString") from exc
    return value


def _parse(model: type[M], name: str, raw: str) -> M:
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise ConfigurationError(f"secret {name} is not valid JSON") from exc
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigurationError(f"secret {name} is missing or has invalid fields: {_field_problems(exc)}") from exc


def _json_or_none(raw: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return None


def read_secret_part(client: Any, prefix: str, connection_id: str, model: type[M]) -> M | None:
    """One part, read now (no cache): operator commands. None when the part does not exist."""
    name = secret_name(prefix, connection_id, _part_of(model))
    raw = _fetch(client, name)
    return None if raw is None else _parse(model, name, raw)


def _part_of(model: type[BaseModel]) -> Part:
    return "api" if model is ApiSecrets else "webhook"


def write_secret_part(client: Any, prefix: str, connection_id: str, value: ApiSecrets | WebhookSecrets) -> str:
    """Store one part (a new version of the secret, or the secret itself the first time); returns its name."""
    name = secret_name(prefix, connection_id, _part_of(type(value)))
    text = json.dumps(value.to_json_dict())
    try:
        client.put_secret_value(SecretId=name, SecretString=text)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
            raise
        client.create_secret(Name=name, SecretString=text)
    return name


def write_connection_secrets(client: Any, prefix: str, connection_id: str, secrets: ConnectionSecrets) -> None:
    """THE way to store a connection's credentials (CLI, local stack, tests): both parts, no overlap window."""
    write_secret_part(client, prefix, connection_id, secrets.api_part())
    write_secret_part(client, prefix, connection_id, secrets.webhook_part())


@dataclass(frozen=True)
class SplitOutcome:
    connection_id: str
    legacy: str  # "found" | "missing"
    parts: dict[Part, str]  # part -> "written" | "would write" | "unchanged" | "kept (differs from legacy)" | "missing"
    note: str


def split_legacy_secret(client: Any, prefix: str, connection_id: str, *, dry_run: bool = False) -> SplitOutcome:
    """Write the api and webhook parts from the legacy combined secret. Idempotent: a part that already exists is
    never overwritten (after the split it is the live one, and may have been rotated since). The legacy secret is
    left in place for the operator to delete once the connection is seen to work."""
    legacy = legacy_secret_name(prefix, connection_id)
    raw = _fetch(client, legacy)
    existing = {part: _fetch(client, secret_name(prefix, connection_id, part)) for part in PARTS}
    if raw is None:
        parts: dict[Part, str] = {part: "unchanged" if existing[part] is not None else "missing" for part in PARTS}
        if all(existing[part] is not None for part in PARTS):
            return SplitOutcome(connection_id, "missing", parts, "already split; no legacy secret left")
        missing = ", ".join(secret_name(prefix, connection_id, p) for p in PARTS if existing[p] is None)
        raise ConfigurationError(
            f"connection {connection_id!r}: no legacy secret {legacy} to split and {missing} does not exist: "
            "store the credentials with `connections set-secrets`"
        )
    try:
        combined = ConnectionSecrets.model_validate(json.loads(raw))
    except ValueError as exc:  # ValidationError is a ValueError; field names only
        problems = _field_problems(exc) if isinstance(exc, ValidationError) else "not valid JSON"
        raise ConfigurationError(f"legacy secret {legacy} cannot be split: {problems}") from exc
    derived: dict[Part, ApiSecrets | WebhookSecrets] = {"api": combined.api_part(), "webhook": combined.webhook_part()}
    parts = {}
    for part, value in derived.items():
        current = existing[part]
        if current is None:
            if not dry_run:
                write_secret_part(client, prefix, connection_id, value)
            parts[part] = "would write" if dry_run else "written"
        elif _json_or_none(current) == value.to_json_dict():
            parts[part] = "unchanged"
        else:
            parts[part] = "kept (differs from legacy)"
    note = (
        f"dry run: nothing written; legacy secret {legacy} untouched"
        if dry_run
        else f"legacy secret {legacy} left in place: once the connection syncs and takes webhooks, delete it "
        f"(aws secretsmanager delete-secret --secret-id {legacy})"
    )
    return SplitOutcome(connection_id, "found", parts, note)


@dataclass
class _Cached(Generic[M]):
    value: M
    fetched_at: float


class _PartReader(Generic[M]):
    """Reads one part of each connection's secret, kept `max_age_seconds` per warm sandbox."""

    model: type[M]

    def __init__(
        self,
        prefix: str,
        *,
        client: Any,
        max_age_seconds: float = 300,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._prefix = prefix
        self._client = client
        self._max_age = max_age_seconds
        self._clock = clock
        self._cache: dict[str, _Cached[M]] = {}
        self._stale: set[str] = set()
        self._lock = threading.Lock()
        self.reads = 0  # Secrets Manager reads (tests)

    def name(self, connection_id: str) -> str:
        return secret_name(self._prefix, connection_id, _part_of(self.model))

    def _read(self, connection_id: str) -> _Cached[M]:
        name = self.name(connection_id)
        self.reads += 1
        raw = _fetch(self._client, name)
        if raw is None:
            hint = f"made before the split? `pos-ecom-sync connections split-secret {connection_id}`"
            raise ConfigurationError(f"secret {name} does not exist ({hint})")
        entry = _Cached(_parse(self.model, name, raw), self._clock())
        with self._lock:
            self._cache[connection_id] = entry
            self._stale.discard(connection_id)
        return entry

    def get(self, connection_id: str) -> M:
        with self._lock:
            entry = self._cache.get(connection_id)
            fresh = (
                entry is not None
                and connection_id not in self._stale
                and self._clock() - entry.fetched_at < self._max_age
            )
        if fresh:
            assert entry is not None
            return entry.value
        return self._read(connection_id).value

    def forget(self, connection_id: str) -> None:
        """The next `get` of this connection reads Secrets Manager again (a vendor refused the cached value)."""
        with self._lock:
            self._stale.add(connection_id)


class ApiSecretsReader(_PartReader[ApiSecrets]):
    """The vendor API credentials (`/api`): workers, poller, reconciliation, operator commands."""

    model = ApiSecrets


class WebhookSecretsReader(_PartReader[WebhookSecrets]):
    """The webhook-verification values (`/webhook`): the webhook function, and nothing else."""

    model = WebhookSecrets

    def __init__(
        self,
        prefix: str,
        *,
        client: Any,
        max_age_seconds: float = 300,
        clock: Callable[[], float] = time.monotonic,
        min_reread_s: float = WEBHOOK_REREAD_MIN_INTERVAL_S,
    ) -> None:
        super().__init__(prefix, client=client, max_age_seconds=max_age_seconds, clock=clock)
        self._min_reread = min_reread_s
        self._reread_at: dict[tuple[str, str], float] = {}  # (connection, source) -> last forced read attempted

    def reread(self, connection_id: str, source: str) -> WebhookSecrets | None:
        """A delivery from `source` did not verify against the cached value: the secret may have been rotated since
        it was read. Reads it again, bypassing the cache, at most once per `min_reread_s` per connection and source
        (else None), so a flood of wrong credentials cannot hammer Secrets Manager, nor delay the other vendor's
        rotation."""
        now = self._clock()
        with self._lock:
            if now - self._reread_at.get((connection_id, source), -math.inf) < self._min_reread:
                return None
            self._reread_at[connection_id, source] = now
        return self._read(connection_id).value
