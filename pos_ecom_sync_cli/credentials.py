"""`pos-ecom-sync connections split-secret|rotate-webhook-secret|rotate-api-secret`: a connection's credentials
without downtime.

Each connection has two secrets, `<prefix><id>/api` (workers) and `<prefix><id>/webhook` (the webhook function).
New values are read from a file or an environment variable, never from arguments (shells keep those in history),
and no command prints a credential.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets as random_tokens
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pos_ecom_sync.errors import ConfigurationError
from pos_ecom_sync.models.connection import ApiSecrets, WebhookCredential, WebhookSecrets
from pos_ecom_sync.secrets import (
    read_secret_part,
    secret_name,
    split_legacy_secret,
    write_secret_part,
)
from pydantic import SecretStr, ValidationError

from pos_ecom_sync_cli.common import CliError, existing_connection

# X-Series retries a failed delivery "up to 20 times over 48h" (docs/webhooks): a delivery queued with the old
# token just before the switch can arrive up to 48 h later. eCom publishes no retry schedule.
DEFAULT_OVERLAP_HOURS = 48.0
CREDENTIALS: dict[str, WebhookCredential] = {
    "pos-token": "pos_webhook_token",
    "pos-signing-secret": "pos_webhook_signing_secret",
    "ecom-secret": "ecom_webhook_secret",
}
API_SECRET_ENV = {
    "pos_access_token": "POS_ACCESS_TOKEN",
    "pos_client_id": "POS_CLIENT_ID",
    "pos_client_secret": "POS_CLIENT_SECRET",
    "pos_refresh_token": "POS_REFRESH_TOKEN",
    "ecom_api_key": "ECOM_API_KEY",
    "ecom_api_secret": "ECOM_API_SECRET",
}
NEXT_STEP = {
    "pos_webhook_token": (
        "point each X-Series webhook at .../connections/{id}/webhooks/pos?token=<the new token> (PUT "
        "/api/2.0/webhooks/<webhook id> with the new `url`, or Setup > API in the back office)"
    ),
    "pos_webhook_signing_secret": (
        "the OAuth app's new client secret signs deliveries from now on; put it in the API part too: "
        "POS_CLIENT_SECRET=... pos-ecom-sync connections rotate-api-secret {id}"
    ),
    "ecom_webhook_secret": (
        "eCom signs deliveries with the API key's secret: put the new key and secret in the API part too: "
        "ECOM_API_KEY=... ECOM_API_SECRET=... pos-ecom-sync connections rotate-api-secret {id}"
    ),
}


def _problems(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'value'}: {e['msg']}" for e in exc.errors())


def cmd_split_secret(args: argparse.Namespace, target: Any) -> Any:
    if bool(args.connection_id) == bool(args.all):
        raise CliError("name one connection, or pass --all")
    ids = (
        [c.connection_id for c in target.store.iter_connections()]
        if args.all
        else [existing_connection(target, args.connection_id).connection_id]
    )
    results = []
    for connection_id in ids:
        try:
            outcome = split_legacy_secret(target.secrets, target.secret_prefix, connection_id, dry_run=args.dry_run)
        except ConfigurationError as exc:
            if not args.all:
                raise
            results.append({"connection_id": connection_id, "error": str(exc)})
            continue
        results.append(
            {"connection_id": connection_id, "legacy": outcome.legacy, "parts": outcome.parts, "note": outcome.note}
        )
    return results if args.all else results[0]


def _new_value(args: argparse.Namespace) -> SecretStr:
    if args.value_env:
        value = os.environ.get(args.value_env)
        if not value:
            raise CliError(f"environment variable {args.value_env} is not set")
        return SecretStr(value)
    generated = random_tokens.token_urlsafe(32)
    path = Path(args.generate_to)
    try:  # created for this value only, readable by its owner only; never an existing file
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise CliError(f"cannot create {path} for the new value: {exc.strerror}") from exc
    with os.fdopen(fd, "w") as out:
        out.write(generated + "\n")
    return SecretStr(generated)


def cmd_rotate_webhook_secret(args: argparse.Namespace, target: Any) -> Any:
    connection = existing_connection(target, args.connection_id)
    credential = CREDENTIALS[args.credential]
    if args.overlap_hours < 0:
        raise CliError("--overlap-hours cannot be negative")
    current = read_secret_part(target.secrets, target.secret_prefix, connection.connection_id, WebhookSecrets)
    if current is None:
        raise CliError(
            f"secret {secret_name(target.secret_prefix, connection.connection_id, 'webhook')} does not exist: run "
            f"`connections split-secret {connection.connection_id}` (or `set-secrets`) first"
        )
    if args.generate_to and credential != "pos_webhook_token":
        raise CliError(f"{args.credential} is issued by the vendor: pass it with --value-env")
    new_value = _new_value(args)
    if getattr(current, credential) == new_value:
        raise CliError(f"the new {args.credential} is the current one: nothing rotated")
    now = datetime.now(UTC)
    try:
        rotated = current.rotated(credential, new_value, now=now, overlap=timedelta(hours=args.overlap_hours))
    except ValidationError as exc:
        raise CliError(f"invalid new value: {_problems(exc)}") from exc
    name = write_secret_part(target.secrets, target.secret_prefix, connection.connection_id, rotated)
    accepted_until = rotated.previous_valid_until if rotated.previous(credential) else None
    return {
        "connection_id": connection.connection_id,
        "credential": args.credential,
        "secret": name,
        "previous_accepted_until": accepted_until.isoformat() if accepted_until else None,
        **({"new_value_written_to": str(args.generate_to)} if args.generate_to else {}),
        "next": NEXT_STEP[credential].format(id=connection.connection_id),
    }


def _api_fields(args: argparse.Namespace) -> dict[str, str]:
    if args.secrets_file:
        try:
            raw = json.loads(Path(args.secrets_file).read_text())
        except (OSError, ValueError) as exc:
            raise CliError(f"cannot read secrets file {args.secrets_file}: {exc}") from exc
        if not isinstance(raw, dict):
            raise CliError(f"secrets file {args.secrets_file} must hold a JSON object")
        unknown = sorted(set(raw) - set(ApiSecrets.model_fields))
        if unknown:
            raise CliError(
                f"not API credentials: {', '.join(map(str, unknown))} (webhook values: rotate-webhook-secret)"
            )
        return {str(k): v for k, v in raw.items()}
    return {field: os.environ[env] for field, env in API_SECRET_ENV.items() if os.environ.get(env)}


def cmd_rotate_api_secret(args: argparse.Namespace, target: Any) -> Any:
    """New vendor API credentials in the API part; the other fields stay. Workers holding the old value in cache
    re-read the secret on the vendor's first 401 and retry, so the old credential may be revoked right after."""
    connection = existing_connection(target, args.connection_id)
    given = _api_fields(args)
    if not given:
        raise CliError(f"no API credential given: set {', '.join(API_SECRET_ENV.values())} or use --secrets-file")
    current = read_secret_part(target.secrets, target.secret_prefix, connection.connection_id, ApiSecrets)
    if current is None:
        raise CliError(
            f"secret {secret_name(target.secret_prefix, connection.connection_id, 'api')} does not exist: run "
            f"`connections split-secret {connection.connection_id}` (or `set-secrets`) first"
        )
    try:
        updated = ApiSecrets.model_validate({**current.to_json_dict(), **given})
    except ValidationError as exc:
        raise CliError(f"invalid API credentials: {_problems(exc)}") from exc
    changed = sorted(name for name in ApiSecrets.model_fields if getattr(updated, name) != getattr(current, name))
    if not changed:
        raise CliError("the given values are the current ones: nothing rotated")
    name = write_secret_part(target.secrets, target.secret_prefix, connection.connection_id, updated)
    return {
        "connection_id": connection.connection_id,
        "secret": name,
        "changed": changed,
        "next": "revoke the old credential at the vendor once the connection is seen to sync (workers holding it "
        "re-read the secret on the first refusal)",
    }


def add_secret_commands(connections: Any) -> None:
    split = connections.add_parser(
        "split-secret", help="migrate the legacy combined secret into the api and webhook parts (idempotent)"
    )
    split.add_argument("connection_id", nargs="?")
    split.add_argument("--all", action="store_true", help="every connection")
    split.add_argument("--dry-run", action="store_true", help="show what would be written, write nothing")
    split.set_defaults(run=cmd_split_secret)

    rotate = connections.add_parser(
        "rotate-webhook-secret",
        help="set a new webhook credential; the current one stays accepted during an overlap window",
    )
    rotate.add_argument("connection_id")
    rotate.add_argument("--credential", required=True, choices=sorted(CREDENTIALS))
    source = rotate.add_mutually_exclusive_group(required=True)
    source.add_argument("--value-env", metavar="VAR", help="read the new value from this environment variable")
    source.add_argument(
        "--generate-to", metavar="FILE", help="pos-token only: generate a new token and write it to this new file"
    )
    rotate.add_argument(
        "--overlap-hours",
        type=float,
        default=DEFAULT_OVERLAP_HOURS,
        help=f"how long the current value stays accepted (default {DEFAULT_OVERLAP_HOURS:g}: X-Series retries "
        "deliveries for 48 h; 0 after a leak)",
    )
    rotate.set_defaults(run=cmd_rotate_webhook_secret)

    api = connections.add_parser(
        "rotate-api-secret", help="put new vendor API credentials in the API part (other fields unchanged)"
    )
    api.add_argument("connection_id")
    api.add_argument(
        "--secrets-file", help=f"JSON file with the fields to change (default: {', '.join(API_SECRET_ENV.values())})"
    )
    api.set_defaults(run=cmd_rotate_api_secret)
