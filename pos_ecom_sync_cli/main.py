"""`pos-ecom-sync connections create|list|show|update|set-secrets|...` against the local stack or a deployed one.

Secrets are read from a JSON file or the environment, never from arguments (which shells keep in history).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, ProfileNotFound
from pos_ecom_sync.errors import SyncError
from pos_ecom_sync.models.connection import Connection, ConnectionSecrets
from pos_ecom_sync.profiles.xseries.stock import register_outlet_of
from pos_ecom_sync.queues import ChangePublisher
from pos_ecom_sync.secrets import PARTS, secret_name, write_connection_secrets
from pos_ecom_sync.state.store import SyncStore
from pos_ecom_sync.stock.outlets import with_register_outlet
from pos_ecom_sync.stock.sync import request_register_change
from pydantic import ValidationError

from pos_ecom_sync_cli.catalog import add_catalog_commands
from pos_ecom_sync_cli.common import CliError, existing_connection
from pos_ecom_sync_cli.credentials import add_secret_commands
from pos_ecom_sync_cli.dlq import add_dlq_commands
from pos_ecom_sync_cli.operations import add_operations_commands
from pos_ecom_sync_cli.orders import add_orders_commands
from pos_ecom_sync_cli.parked import add_parked_commands
from pos_ecom_sync_cli.stock import add_outlet_commands, pos_registers, register_outlet, stock_queue_url
from pos_ecom_sync_cli.vendors import pos_client

LOCAL_OUTPUTS = Path(".local-stack/outputs.json")
OUTPUTS_ENV = "POS_ECOM_SYNC_OUTPUTS"


def local_outputs_file(start: Path | None = None) -> Path | None:
    """`make run`'s outputs: the file $POS_ECOM_SYNC_OUTPUTS names, else .local-stack/outputs.json in the current
    directory or the nearest parent (so the CLI works from any folder of the checkout)."""
    if os.environ.get(OUTPUTS_ENV):
        named = Path(os.environ[OUTPUTS_ENV])
        return named if named.is_file() else None
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / LOCAL_OUTPUTS).is_file():
            return folder / LOCAL_OUTPUTS
    return None


SECRET_ENV = {
    "pos_access_token": "POS_ACCESS_TOKEN",
    "pos_webhook_token": "POS_WEBHOOK_TOKEN",
    "ecom_api_key": "ECOM_API_KEY",
    "ecom_api_secret": "ECOM_API_SECRET",
    "ecom_webhook_secret": "ECOM_WEBHOOK_SECRET",
}
# An OAuth app's credentials and the merchant's grant (R-Series always; X-Series optionally), instead of a token.
OAUTH_SECRET_ENV = {
    "pos_client_id": "POS_CLIENT_ID",
    "pos_client_secret": "POS_CLIENT_SECRET",
    "pos_refresh_token": "POS_REFRESH_TOKEN",
}
SETTING_OPTIONS = {
    "pos_url": "pos_base_url",
    "ecom_url": "ecom_base_url",
    "ecom_language": "ecom_language",
    "register": "online_register_id",
    "primary_outlet": "primary_outlet_id",
    "plan": "plan",
    "product_cap": "product_cap",
    "delete_policy": "delete_policy",
    "status": "status",
}


class Target:
    """Where the stack lives: table name, secret prefix and a boto3 session (local moto or AWS)."""

    def __init__(self, args: argparse.Namespace) -> None:
        if args.stack:
            self.session = boto3.Session(profile_name=args.profile, region_name=args.region)
            outputs = self._stack_outputs(args.stack)
        else:
            found = local_outputs_file()
            if found is None:
                raise CliError(
                    "no local stack found: start it with `make run` (its .local-stack/outputs.json is looked for here "
                    f"and in every parent directory, or set {OUTPUTS_ENV}), or pass --stack NAME for AWS"
                )
            outputs = json.loads(found.read_text())
            os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
            os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
            os.environ["AWS_ENDPOINT_URL"] = outputs["Endpoint"]
            self.session = boto3.Session(region_name=outputs.get("Region", "us-east-1"))
        self.outputs = outputs  # the stack's outputs: queue URLs are read from here, never rebuilt from names
        self.table_name = outputs["TableName"]
        self.secret_prefix = outputs["SecretPrefix"]
        self.store = SyncStore(self.table_name, resource=self.session.resource("dynamodb"))
        self.secrets = self.session.client("secretsmanager")

    def _stack_outputs(self, stack: str) -> dict[str, str]:
        try:
            described = self.session.client("cloudformation").describe_stacks(StackName=stack)["Stacks"][0]
        except ClientError as exc:
            raise CliError(f"cannot read stack {stack!r}: {exc.response['Error']['Message']}") from exc
        return {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}


def _read_secrets(path: str | None) -> ConnectionSecrets:
    if path:
        try:
            raw = json.loads(Path(path).read_text())
        except (OSError, ValueError) as exc:
            raise CliError(f"cannot read secrets file {path}: {exc}") from exc
    else:
        variables = {**SECRET_ENV, **OAUTH_SECRET_ENV}
        raw = {field: os.environ.get(env) for field, env in variables.items() if os.environ.get(env)}
    try:
        return ConnectionSecrets.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        hint = "" if path else f" (set {', '.join(SECRET_ENV.values())} or use --secrets-file)"
        raise CliError(f"invalid secrets: {problems}{hint}") from exc


def _settings_from(args: argparse.Namespace) -> dict[str, Any]:
    settings = {
        field: getattr(args, opt) for opt, field in SETTING_OPTIONS.items() if getattr(args, opt, None) is not None
    }
    if getattr(args, "outlets", None) is not None:
        settings["connected_outlet_ids"] = [o for o in args.outlets.split(",") if o]
    if getattr(args, "notifications", None) is not None:
        settings["notifications_enabled"] = args.notifications == "on"
    return settings


def _validated(data: dict[str, Any]) -> Connection:
    try:
        return Connection.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in exc.errors())
        raise CliError(f"invalid connection settings: {problems}") from exc


def _write_secrets(target: Target, connection_id: str, secrets: ConnectionSecrets) -> None:
    write_connection_secrets(target.secrets, target.secret_prefix, connection_id, secrets)


def _public_view(connection: Connection, target: Target) -> dict[str, Any]:
    view: dict[str, Any] = json.loads(connection.model_dump_json())
    view["effective_product_cap"] = connection.effective_product_cap
    view["secret_names"] = {part: secret_name(target.secret_prefix, connection.connection_id, part) for part in PARTS}
    if connection.online_register_id and connection.register_outlet_id is None:
        view["register_outlet_note"] = (
            "the register's outlet is not stored yet (connection saved by an older version): run `connections update "
            f"{connection.connection_id} --register {connection.online_register_id}` so its stock always counts"
        )
    return view


def _check_profile_secrets(connection: Connection, secrets: ConnectionSecrets) -> None:
    """R-Series authorizes only as an OAuth app: its access tokens expire within the hour and every refresh rotates
    the refresh token (KVH authentication/refresh-token.md), so a bare access token would stop working. A POS that
    sends webhooks (X-Series) needs the token they carry; one without webhooks (R-Series) none."""
    from pos_ecom_sync.profiles import profile_for

    try:
        secrets.require_pos_webhook_token(profile_for(connection).webhook_parser() is not None)
    except ValueError as exc:
        raise CliError(f"invalid secrets for a {connection.pos_profile} connection: {exc}; nothing was saved") from exc
    if connection.pos_profile == "r-series" and not secrets.api_part().pos_uses_oauth:
        raise CliError(
            "an R-Series connection needs its OAuth credentials: pos_client_id and pos_client_secret (the app) and "
            "pos_refresh_token (the merchant's grant) in --secrets-file, or POS_CLIENT_ID, POS_CLIENT_SECRET and "
            "POS_REFRESH_TOKEN; nothing was saved"
        )


def _register_location(target: Target, connection: Connection, register_id: str) -> str:
    """The location of the online register, read from the POS with the credentials just saved (X-Series: the
    register's outlet; R-Series: its shop, `GET Register.json`)."""
    if connection.pos_profile == "x-series":
        return register_outlet(pos_registers(target, connection), register_id)
    from pos_ecom_sync.profiles import profile_for

    client = pos_client(target, connection)
    try:
        location = profile_for(connection).inventory(client).register_location(register_id)
    finally:
        client.close()
    if location is None:
        raise CliError(f"register {register_id!r} is not a live register of this POS: check the id; nothing was saved")
    return location


def cmd_create(args: argparse.Namespace, target: Target) -> Any:
    secrets = _read_secrets(args.secrets_file)
    connection = _validated(
        {"connection_id": args.connection_id, "pos_profile": args.pos_profile, **_settings_from(args)}
    )
    _check_profile_secrets(connection, secrets)
    # Refuse before the secret is written: a repeated create must not overwrite a live connection's credentials.
    if target.store.get_connection(connection.connection_id) is not None:
        raise CliError(f"connection {connection.connection_id!r} already exists (use update or set-secrets)")
    _write_secrets(target, connection.connection_id, secrets)
    note = None
    if connection.online_register_id:
        # Seed 003: the register's outlet is included by default, whatever else --outlets lists (read with the
        # credentials just saved; a failed read saves no connection, and running create again is safe).
        outlet = _register_location(target, connection, connection.online_register_id)
        chosen = connection.connected_outlet_ids
        if chosen and outlet not in chosen:
            note = f"outlet {outlet} of register {connection.online_register_id} added: its stock always counts"
        data = {
            **connection.model_dump(),
            "register_outlet_id": outlet,
            "connected_outlet_ids": with_register_outlet(chosen, outlet),
        }
        connection = _validated(data)
    target.store.save_connection(connection, create=True)
    view = _public_view(connection, target)
    return {**view, "note": note} if note else view


def cmd_list(args: argparse.Namespace, target: Target) -> Any:
    return [
        {"connection_id": c.connection_id, "status": c.status, "pos": c.pos_base_url, "ecom": c.ecom_base_url}
        for c in target.store.iter_connections()
    ]


def cmd_show(args: argparse.Namespace, target: Target) -> Any:
    return _public_view(existing_connection(target, args.connection_id), target)


def cmd_update(args: argparse.Namespace, target: Target) -> Any:
    current = existing_connection(target, args.connection_id)
    changes = _settings_from(args)
    if not changes:
        raise CliError("nothing to update: pass at least one setting option")
    outlets_before = (current.connected_outlet_ids, current.primary_outlet_id)
    outlets_after = (
        changes.get("connected_outlet_ids", current.connected_outlet_ids),
        changes.get("primary_outlet_id", current.primary_outlet_id),
    )
    if outlets_after != outlets_before:
        # Saving outlets alone would leave every eCom total computed over the old ones.
        raise CliError(
            "outlets are changed with `connections set-outlets <id> --outlets a,b [--primary-outlet a]`, "
            "which also recomputes every eCom stock total; nothing was updated"
        )
    register = changes.pop("online_register_id", None)
    if register is None:
        return _public_view(_save_settings(target, current, changes), target)
    # The register decides an outlet that always counts (seed 003): read before anything is saved.
    proposed = _validated({**current.model_dump(exclude={"updated_at"}), **changes})  # e.g. a new --pos-url
    registers = pos_registers(target, proposed)
    outlet = register_outlet(registers, register)
    before = current.register_outlet_id
    if before is None and current.online_register_id and not current.connected_outlet_ids:
        before = register_outlet_of(registers, current.online_register_id)  # what counted: kept connected
    if changes:
        current = _save_settings(target, current, changes)
    url = stock_queue_url(args, target)
    publisher = ChangePublisher(lambda concern: url, client=target.session.client("sqs"))
    updated = request_register_change(
        target.store, publisher, current.connection_id, register, outlet, previous_register_outlet_id=before
    )
    view = _public_view(updated, target)
    view["stock"] = "queued: totals are recomputed in chunks"
    if before and before != outlet:
        view["note"] = (
            f"outlet {before} of the previous register stays connected; to stop its stock syncing: connections "
            f"set-outlets {updated.connection_id} --outlets <the outlets to keep, with {outlet}>"
        )
    return view


def _save_settings(target: Target, current: Connection, changes: dict[str, Any]) -> Connection:
    data = {**current.model_dump(), **changes}
    data.pop("updated_at")
    updated = _validated(data)
    target.store.save_connection(updated)
    return updated


def cmd_set_secrets(args: argparse.Namespace, target: Target) -> Any:
    connection = existing_connection(target, args.connection_id)
    secrets = _read_secrets(args.secrets_file)
    _check_profile_secrets(connection, secrets)
    _write_secrets(target, args.connection_id, secrets)
    return {"connection_id": args.connection_id, "secrets": "updated"}


def _add_setting_options(parser: argparse.ArgumentParser, required: bool) -> None:
    parser.add_argument("--pos-url", required=required, help="e.g. https://<prefix>.retail.lightspeed.app")
    parser.add_argument("--ecom-url", required=required, help="e.g. https://api.webshopapp.com")
    parser.add_argument("--ecom-language", help="eCom API language segment (default en)")
    parser.add_argument(
        "--register", help="X-Series register id used for online sales; its outlet's stock always counts online"
    )
    parser.add_argument(
        "--outlets", help="comma-separated X-Series outlet ids whose stock is sold online (plus the register's)"
    )
    parser.add_argument("--primary-outlet", help="outlet serving shipping methods tied to no outlet")
    parser.add_argument("--plan", choices=["business", "unlimited", "custom"])
    parser.add_argument("--product-cap", type=int, help="override the plan's product cap (variants count)")
    parser.add_argument("--delete-policy", choices=["delete", "hide"])
    parser.add_argument("--notifications", choices=["on", "off"])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pos-ecom-sync", description=__doc__)
    parser.add_argument("--stack", help="deployed CloudFormation stack name (default: the local stack of `make run`)")
    parser.add_argument("--profile", help="AWS profile for --stack")
    parser.add_argument("--region", help="AWS region for --stack")
    groups = parser.add_subparsers(dest="group", required=True)
    connections = groups.add_parser("connections", help="manage connections").add_subparsers(
        dest="command", required=True
    )

    create = connections.add_parser("create", help="create a connection and its secret")
    create.add_argument("connection_id")
    _add_setting_options(create, required=True)
    create.add_argument("--secrets-file", help="JSON file with the secret fields (default: environment variables)")
    create.add_argument(
        "--pos-profile",
        choices=["x-series", "r-series"],
        default="x-series",
        help="the POS: x-series (default) or r-series (OAuth: pos_client_id, pos_client_secret, pos_refresh_token; "
        "--register and --outlets take R-Series register and shop ids)",
    )
    create.set_defaults(run=cmd_create)

    connections.add_parser("list", help="list connections").set_defaults(run=cmd_list)

    show = connections.add_parser("show", help="show a connection's settings (never its secrets)")
    show.add_argument("connection_id")
    show.set_defaults(run=cmd_show)

    update = connections.add_parser("update", help="change settings of a connection")
    update.add_argument("connection_id")
    _add_setting_options(update, required=False)
    update.add_argument("--status", choices=["active", "paused"])
    update.set_defaults(run=cmd_update)

    set_secrets = connections.add_parser(
        "set-secrets",
        help="replace both parts of a connection's secret, ending any overlap window (live rotation: "
        "rotate-webhook-secret, rotate-api-secret)",
    )
    set_secrets.add_argument("connection_id")
    set_secrets.add_argument("--secrets-file")
    set_secrets.set_defaults(run=cmd_set_secrets)

    add_secret_commands(connections)
    add_outlet_commands(connections)
    add_orders_commands(groups)
    add_catalog_commands(groups)
    add_parked_commands(groups)
    add_dlq_commands(groups)
    add_operations_commands(groups)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        result = args.run(args, Target(args))
    except (CliError, SyncError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (ProfileNotFound, NoCredentialsError) as exc:
        print(f"error: AWS credentials: {exc}", file=sys.stderr)
        return 2
    except (ClientError, BotoCoreError) as exc:
        print(f"error: AWS call failed: {exc}", file=sys.stderr)
        return 1
    if result is not None:  # None: the command printed its own output (a table, or --json)
        print(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
