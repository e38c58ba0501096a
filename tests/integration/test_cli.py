"""The operator CLI end to end: `main(argv)` against a moto server, found through .local-stack/outputs.json.

The moto server runs in this process on a free port; the CLI reaches it over HTTP exactly as it reaches
the local stack of `make run` (it reads the endpoint from outputs.json and sets AWS_ENDPOINT_URL itself).
"""

from __future__ import annotations

import itertools
import json
import logging
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer
from pos_ecom_sync.models.connection import Connection
from pos_ecom_sync.secrets import PARTS, Part, legacy_secret_name, secret_name
from pos_ecom_sync.state.store import SyncStore

from local_stack.provision import local_outputs, provision
from local_stack.simulators.xseries import XSeriesSimulator
from pos_ecom_sync_cli import main as cli_main_module
from pos_ecom_sync_cli import stock as cli_stock_module
from pos_ecom_sync_cli.credentials import API_SECRET_ENV
from pos_ecom_sync_cli.main import SECRET_ENV, main
from tests.support import DEMO_SECRETS, drain_queue

SHOP_SECRETS = {
    "pos_access_token": "shop-pos-access-token-0001",
    "pos_webhook_token": "shop-pos-webhook-token-0001",
    "ecom_api_key": "shop-ecom-api-key-0001",
    "ecom_api_secret": "shop-ecom-api-secret-0001",
    "ecom_webhook_secret": "shop-ecom-webhook-secret-0001",
}
URLS = ["--pos-url", "https://dockside.retail.lightspeed.app", "--ecom-url", "https://api.webshopapp.com"]
OUTLET_A = "0a1b0000-cccc-11ee-8c90-000000000001"
OUTLET_B = "0a1b0000-cccc-11ee-8c90-000000000002"
_stack_numbers = itertools.count(1)


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    # werkzeug logs every request to stderr, which is where the CLI's errors go; keep stderr the CLI's.
    werkzeug = logging.getLogger("werkzeug")
    level = werkzeug.level
    werkzeug.setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()
    werkzeug.setLevel(level)


@dataclass
class Run:
    code: int
    out: str
    err: str

    @property
    def json(self) -> Any:
        return json.loads(self.out)


@dataclass
class LocalStack:
    """A provisioned stack on the moto server, and the CLI pointed at it through outputs.json."""

    session: Any
    table_name: str
    secret_prefix: str
    workdir: Path
    capsys: pytest.CaptureFixture[str]
    stock_queue_url: str = ""

    def cli(self, *argv: str) -> Run:
        code = main(list(argv))
        out, err = self.capsys.readouterr()
        return Run(code, out, err)

    def create(self, connection_id: str, *extra: str, secrets: dict[str, str] = SHOP_SECRETS) -> Run:
        path = self.workdir / f"{connection_id}-secrets.json"
        path.write_text(json.dumps(secrets))
        return self.cli("connections", "create", connection_id, *URLS, "--secrets-file", path.name, *extra)

    @property
    def store(self) -> SyncStore:
        return SyncStore(self.table_name, resource=self.session.resource("dynamodb"))

    def secret_part(self, connection_id: str, part: Part) -> dict[str, str] | None:
        client = self.session.client("secretsmanager")
        try:
            value = client.get_secret_value(SecretId=secret_name(self.secret_prefix, connection_id, part))
        except client.exceptions.ResourceNotFoundException:
            return None
        secret: dict[str, str] = json.loads(value["SecretString"])
        return secret

    def secret(self, connection_id: str) -> dict[str, str] | None:
        """Both parts merged (None when either is missing)."""
        parts = [self.secret_part(connection_id, part) for part in PARTS]
        return None if None in parts else {k: v for part in parts for k, v in (part or {}).items()}


@pytest.fixture
def stack(
    moto_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> LocalStack:
    # setenv first, so the AWS_ENDPOINT_URL the CLI writes into os.environ is undone after the test.
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    for variable in {*SECRET_ENV.values(), *API_SECRET_ENV.values()}:
        monkeypatch.delenv(variable, raising=False)
    session = boto3.Session(region_name="us-east-1")
    # One stack per test on the shared server: its own table, queues and secret prefix.
    resources = provision(session, stack_name=f"cli{next(_stack_numbers)}")
    env = resources.shared_environment()
    outputs = local_outputs(resources, moto_endpoint, "us-east-1")
    (tmp_path / ".local-stack").mkdir()
    (tmp_path / ".local-stack" / "outputs.json").write_text(json.dumps(outputs))
    monkeypatch.chdir(tmp_path)
    return LocalStack(session, env["TABLE_NAME"], env["SECRET_PREFIX"], tmp_path, capsys, env["STOCK_QUEUE_URL"])


@pytest.fixture
def pos() -> Iterator[XSeriesSimulator]:
    """A POS of three outlets and two registers (register n at outlet n), for the commands that read registers."""
    simulator = XSeriesSimulator(token=SHOP_SECRETS["pos_access_token"], seed=5, outlets=3, registers=2, rate_limit=0)
    simulator.start()
    yield simulator
    simulator.stop()


def pos_urls(pos: XSeriesSimulator) -> list[str]:
    return ["--pos-url", pos.url, "--ecom-url", "https://api.webshopapp.com"]


def assert_no_secret_in(run: Run, *secrets: dict[str, str]) -> None:
    for values in secrets:
        for value in values.values():
            assert value not in run.out and value not in run.err


# -------------------------------------------------------------------------------------------- create


def test_create_from_a_secrets_file_stores_settings_and_secret(stack: LocalStack) -> None:
    run = stack.create("dockside", "--outlets", f"{OUTLET_A},{OUTLET_B}", "--primary-outlet", OUTLET_B)

    assert run.code == 0, run.err
    shown = run.json
    assert shown["connection_id"] == "dockside" and shown["status"] == "active"
    assert shown["connected_outlet_ids"] == [OUTLET_A, OUTLET_B] and shown["primary_outlet_id"] == OUTLET_B
    assert shown["secret_names"] == {part: f"{stack.secret_prefix}dockside/{part}" for part in PARTS}
    assert shown["effective_product_cap"] == 5000
    assert_no_secret_in(run, SHOP_SECRETS)
    stored = stack.store.get_connection("dockside")
    assert stored is not None and stored.pos_base_url == "https://dockside.retail.lightspeed.app"
    assert stack.secret("dockside") == SHOP_SECRETS


def test_create_reads_secrets_from_environment_variables(stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> None:
    for field, variable in SECRET_ENV.items():
        monkeypatch.setenv(variable, SHOP_SECRETS[field])

    run = stack.cli("connections", "create", "from-env", *URLS, "--plan", "unlimited", "--notifications", "off")

    assert run.code == 0, run.err
    assert run.json["plan"] == "unlimited" and run.json["notifications_enabled"] is False
    assert run.json["effective_product_cap"] == 70000
    assert stack.secret("from-env") == SHOP_SECRETS
    assert_no_secret_in(run, SHOP_SECRETS)


# -------------------------------------------------------------------------------------------- read


def test_list_shows_every_connection_with_its_status_and_urls(stack: LocalStack) -> None:
    assert stack.cli("connections", "list").json == []
    stack.create("alpha")
    stack.create("beta")
    stack.cli("connections", "update", "beta", "--status", "paused")

    run = stack.cli("connections", "list")

    assert run.code == 0
    assert sorted(run.json, key=lambda c: c["connection_id"]) == [
        {
            "connection_id": "alpha",
            "status": "active",
            "pos": "https://dockside.retail.lightspeed.app",
            "ecom": "https://api.webshopapp.com",
        },
        {
            "connection_id": "beta",
            "status": "paused",
            "pos": "https://dockside.retail.lightspeed.app",
            "ecom": "https://api.webshopapp.com",
        },
    ]


def test_show_prints_the_settings_and_never_a_secret_value(stack: LocalStack, pos: XSeriesSimulator) -> None:
    register = pos.registers()[0]
    assert stack.create("dockside", "--register", register["id"], *pos_urls(pos)).code == 0

    run = stack.cli("connections", "show", "dockside")

    assert run.code == 0, run.err
    assert run.json["online_register_id"] == register["id"]
    assert run.json["register_outlet_id"] == register["outlet_id"]
    assert run.json["connected_outlet_ids"] == [register["outlet_id"]]
    assert run.json["secret_names"] == {part: f"{stack.secret_prefix}dockside/{part}" for part in PARTS}
    assert_no_secret_in(run, SHOP_SECRETS)
    assert not any(field in run.json for field in SECRET_ENV)


# -------------------------------------------------------------------------------------------- the register's outlet


def test_create_with_a_register_stores_its_outlet_which_counts_with_or_without_outlets(
    stack: LocalStack, pos: XSeriesSimulator
) -> None:
    register = pos.registers()[0]
    own, other, third = (o["id"] for o in pos.outlets())
    assert register["outlet_id"] == own

    alone = stack.create("alone", "--register", register["id"], *pos_urls(pos))
    listed = stack.create("listed", "--register", register["id"], "--outlets", f"{other},{third}", *pos_urls(pos))

    assert alone.code == 0, alone.err
    assert (alone.json["register_outlet_id"], alone.json["connected_outlet_ids"]) == (own, [own])
    assert "note" not in alone.json
    # Seed 003: included by default whatever else is listed; the operator is told it was added.
    assert listed.code == 0, listed.err
    assert listed.json["connected_outlet_ids"] == [other, third, own]
    assert f"outlet {own} of register {register['id']} added" in listed.json["note"]
    stored = stack.store.get_connection("listed")
    assert stored is not None and (stored.register_outlet_id, stored.connected_outlet_ids) == (own, [other, third, own])


def test_create_with_a_register_the_pos_does_not_have_saves_no_connection(
    stack: LocalStack, pos: XSeriesSimulator
) -> None:
    run = stack.create("dockside", "--register", "0a1b0000-eeee-11ee-8c90-000000000009", *pos_urls(pos))

    assert run.code == 2 and "is not a live register of this POS" in run.err
    assert stack.store.get_connection("dockside") is None


@pytest.fixture
def queued(stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> LocalStack:
    """The stack with the CLI's stock queue lookup pointed at its queue: the CLI finds `<stack>-stock.fifo` by the
    name `make run` gives (`local`), which moto, one backend per process, can hold once."""
    for module in (cli_main_module, cli_stock_module):
        monkeypatch.setattr(module, "stock_queue_url", lambda args, target: stack.stock_queue_url)
    return stack


def stock_messages(stack: LocalStack) -> list[dict[str, Any]]:
    return [json.loads(m["Body"]) for m in drain_queue(stack.session.client("sqs"), stack.stock_queue_url)]


def test_leaving_out_the_registers_outlet_is_refused_and_changing_the_register_recomputes_stock(
    queued: LocalStack, pos: XSeriesSimulator
) -> None:
    stack = queued
    first, second = pos.registers()
    own, other, third = (o["id"] for o in pos.outlets())
    assert (first["outlet_id"], second["outlet_id"]) == (own, other)
    assert stack.create("dockside", "--register", first["id"], "--outlets", other, *pos_urls(pos)).code == 0

    refused = stack.cli("connections", "set-outlets", "dockside", "--outlets", f"{other},{third}")

    assert refused.code == 2
    assert f"outlet {own} is the outlet of the register linked to eCom" in refused.err
    assert "--register" in refused.err and "nothing was saved" in refused.err
    current = stack.store.get_connection("dockside")
    assert current is not None and current.connected_outlet_ids == [other, own]
    assert stock_messages(stack) == []

    changed = stack.cli("connections", "update", "dockside", "--register", second["id"])

    assert changed.code == 0, changed.err
    assert (changed.json["online_register_id"], changed.json["register_outlet_id"]) == (second["id"], other)
    assert changed.json["connected_outlet_ids"] == [other, own]  # the previous register's outlet stays...
    assert f"outlet {own} of the previous register stays connected" in changed.json["note"]
    bodies = stock_messages(stack)
    assert [(b["entity"], b["via"], b["payload"]["previous_outlets"]) for b in bodies] == [
        ("outlets", "operator", [other, own])
    ]
    # ...until the operator drops it: the new register no longer holds it in.
    dropped = stack.cli("connections", "set-outlets", "dockside", "--outlets", f"{other},{third}")
    assert dropped.code == 0, dropped.err
    assert dropped.json["connected_outlet_ids"] == [other, third]
    assert dropped.json["register_outlet_id"] == other


def test_a_connection_saved_before_the_registers_outlet_was_stored_gets_it_on_its_next_outlet_or_register_change(
    queued: LocalStack, pos: XSeriesSimulator
) -> None:
    stack = queued
    first = pos.registers()[0]
    own, other, _ = (o["id"] for o in pos.outlets())
    assert stack.create("dockside", *pos_urls(pos)).code == 0
    # As an older version stored `create --register R --outlets <another outlet>`: the register's outlet left out.
    legacy = stack.store.get_connection("dockside")
    assert legacy is not None
    stack.store.save_connection(
        legacy.model_copy(update={"online_register_id": first["id"], "connected_outlet_ids": [other]})
    )

    shown = stack.cli("connections", "show", "dockside").json
    assert shown["register_outlet_id"] is None
    assert f"connections update dockside --register {first['id']}" in shown["register_outlet_note"]
    refused = stack.cli("connections", "set-outlets", "dockside", "--outlets", other)
    assert refused.code == 2 and f"outlet {own} is the outlet of the register" in refused.err

    run = stack.cli("connections", "update", "dockside", "--register", first["id"])

    assert run.code == 0, run.err
    assert (run.json["register_outlet_id"], run.json["connected_outlet_ids"]) == (own, [other, own])
    assert "register_outlet_note" not in run.json and "note" not in run.json


# -------------------------------------------------------------------------------------------- change


def test_update_pauses_and_changes_the_delete_policy_keeping_the_rest(stack: LocalStack) -> None:
    stack.create(
        "dockside", "--outlets", f"{OUTLET_A},{OUTLET_B}", "--primary-outlet", OUTLET_A, "--ecom-language", "nl"
    )
    before = stack.store.get_connection("dockside")
    assert before is not None

    # Restating the current outlets is allowed; changing them is set-outlets' job (see below).
    run = stack.cli(
        "connections",
        "update",
        "dockside",
        "--status",
        "paused",
        "--outlets",
        f"{OUTLET_A},{OUTLET_B}",
        "--delete-policy",
        "hide",
    )

    assert run.code == 0, run.err
    after = stack.store.get_connection("dockside")
    assert after is not None
    assert (after.status, after.connected_outlet_ids, after.primary_outlet_id, after.delete_policy) == (
        "paused",
        [OUTLET_A, OUTLET_B],
        OUTLET_A,
        "hide",
    )
    assert after.ecom_language == "nl" and after.created_at == before.created_at
    assert after.updated_at >= before.updated_at
    assert run.json["status"] == "paused"
    assert stack.secret("dockside") == SHOP_SECRETS


def test_set_secrets_replaces_the_secret_and_prints_no_value(stack: LocalStack) -> None:
    stack.create("dockside")
    (stack.workdir / "rotated.json").write_text(json.dumps(DEMO_SECRETS))

    run = stack.cli("connections", "set-secrets", "dockside", "--secrets-file", "rotated.json")

    assert run.code == 0, run.err
    assert run.json == {"connection_id": "dockside", "secrets": "updated"}
    assert stack.secret("dockside") == DEMO_SECRETS
    assert_no_secret_in(run, SHOP_SECRETS, DEMO_SECRETS)


def test_set_secrets_recreates_a_secret_that_was_deleted(stack: LocalStack) -> None:
    stack.create("dockside")
    for part in PARTS:
        stack.session.client("secretsmanager").delete_secret(
            SecretId=secret_name(stack.secret_prefix, "dockside", part), ForceDeleteWithoutRecovery=True
        )
    (stack.workdir / "rotated.json").write_text(json.dumps(DEMO_SECRETS))

    run = stack.cli("connections", "set-secrets", "dockside", "--secrets-file", "rotated.json")

    assert run.code == 0, run.err
    assert stack.secret("dockside") == DEMO_SECRETS


# -------------------------------------------------------------------------------------------- refusals (exit 2)

BAD_SETTINGS = [
    pytest.param(["connections", "create", "Bad_ID", *URLS], "connection_id", id="connection-id-not-lowercase-slug"),
    pytest.param(
        ["connections", "create", "shop", *URLS, "--outlets", OUTLET_A, "--primary-outlet", OUTLET_B],
        "primary_outlet_id must be one of connected_outlet_ids",
        id="primary-outlet-not-connected",
    ),
    pytest.param(
        ["connections", "create", "shop", "--pos-url", "dockside.retail.lightspeed.app", "--ecom-url", "https://x.io"],
        "pos_base_url",
        id="pos-url-without-scheme",
    ),
    pytest.param(
        ["connections", "create", "shop", "--pos-url", "https://a.b", "--ecom-url", "ftp://api.webshopapp.com"],
        "ecom_base_url",
        id="ecom-url-not-http",
    ),
    pytest.param(["connections", "create", "shop", *URLS, "--ecom-language", "eng"], "ecom_language", id="language"),
    pytest.param(["connections", "create", "shop", *URLS, "--product-cap", "-1"], "product_cap", id="negative-cap"),
]


@pytest.mark.parametrize(("argv", "problem"), BAD_SETTINGS)
def test_invalid_settings_are_refused_and_nothing_is_written(stack: LocalStack, argv: list[str], problem: str) -> None:
    (stack.workdir / "secrets.json").write_text(json.dumps(SHOP_SECRETS))

    run = stack.cli(*argv, "--secrets-file", "secrets.json")

    assert run.code == 2
    assert run.out == ""
    assert run.err.startswith("error: invalid connection settings") and problem in run.err
    assert list(stack.store.iter_connections()) == []
    assert stack.secret(argv[2]) is None


def test_update_refuses_an_outlet_change_and_points_to_set_outlets_which_recomputes_stock(stack: LocalStack) -> None:
    stack.create("dockside", "--outlets", OUTLET_A, "--primary-outlet", OUTLET_A)

    run = stack.cli("connections", "update", "dockside", "--outlets", f"{OUTLET_A},{OUTLET_B}", "--status", "paused")

    assert run.code == 2 and "connections set-outlets" in run.err
    current = stack.store.get_connection("dockside")
    assert current is not None and current.connected_outlet_ids == [OUTLET_A] and current.status == "active"


def test_update_to_invalid_settings_is_refused_and_leaves_the_connection_unchanged(stack: LocalStack) -> None:
    stack.create("dockside", "--plan", "custom")

    run = stack.cli("connections", "update", "dockside", "--product-cap", "-5", "--status", "paused")

    assert run.code == 2 and "invalid connection settings" in run.err
    current = stack.store.get_connection("dockside")
    assert current is not None and current.status == "active"


def test_update_without_any_setting_is_refused(stack: LocalStack) -> None:
    stack.create("dockside")

    run = stack.cli("connections", "update", "dockside")

    assert run.code == 2 and "nothing to update" in run.err


def test_creating_an_existing_connection_is_refused_and_keeps_its_settings_and_secret(stack: LocalStack) -> None:
    stack.create("dockside", "--delete-policy", "hide")

    run = stack.create("dockside", secrets=DEMO_SECRETS)

    assert run.code == 2 and "already exists" in run.err and run.out == ""
    current = stack.store.get_connection("dockside")
    assert current is not None and current.delete_policy == "hide"
    assert stack.secret("dockside") == SHOP_SECRETS


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(["connections", "show", "ghost"], id="show"),
        pytest.param(["connections", "update", "ghost", "--status", "paused"], id="update"),
        pytest.param(["connections", "set-secrets", "ghost", "--secrets-file", "secrets.json"], id="set-secrets"),
    ],
)
def test_unknown_connection_is_refused(stack: LocalStack, argv: list[str]) -> None:
    (stack.workdir / "secrets.json").write_text(json.dumps(SHOP_SECRETS))

    run = stack.cli(*argv)

    assert run.code == 2 and run.err == "error: no connection 'ghost'\n" and run.out == ""
    assert stack.secret("ghost") is None


def test_create_without_secrets_names_the_environment_variables_and_writes_nothing(stack: LocalStack) -> None:
    run = stack.cli("connections", "create", "dockside", *URLS)

    assert run.code == 2 and run.err.startswith("error: invalid secrets")
    for variable in SECRET_ENV.values():
        assert variable in run.err
    assert stack.store.get_connection("dockside") is None and stack.secret("dockside") is None


def test_a_secret_missing_from_the_environment_is_named(stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> None:
    for field, variable in SECRET_ENV.items():
        if field != "ecom_webhook_secret":
            monkeypatch.setenv(variable, SHOP_SECRETS[field])

    run = stack.cli("connections", "create", "dockside", *URLS)

    assert run.code == 2 and "ecom_webhook_secret: Field required" in run.err
    assert_no_secret_in(run, SHOP_SECRETS)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        pytest.param(None, "cannot read secrets file", id="file-missing"),
        pytest.param("{not json", "cannot read secrets file", id="not-json"),
        pytest.param(json.dumps({**SHOP_SECRETS, "pos_webhook_token": "tok-15-chars-xx"}), "at least 16", id="short"),
        pytest.param(json.dumps({**SHOP_SECRETS, "extra": "x"}), "extra", id="unknown-field"),
        pytest.param(  # X-Series webhooks carry the token: its connections need one (R-Series ones do not)
            json.dumps({k: v for k, v in SHOP_SECRETS.items() if k != "pos_webhook_token"}),
            "pos_webhook_token is required",
            id="x-series-without-webhook-token",
        ),
    ],
)
def test_bad_secrets_file_is_refused_without_echoing_values(
    stack: LocalStack, content: str | None, problem: str
) -> None:
    if content is not None:
        (stack.workdir / "secrets.json").write_text(content)

    run = stack.cli("connections", "create", "dockside", *URLS, "--secrets-file", "secrets.json")

    assert run.code == 2 and problem in run.err
    assert "tok-15-chars-xx" not in run.err
    assert_no_secret_in(run, SHOP_SECRETS)
    assert stack.store.get_connection("dockside") is None


def test_without_a_local_stack_the_cli_says_how_to_start_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)

    code = main(["connections", "list"])

    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert "no local stack found" in err and "make run" in err and "--stack" in err


# -------------------------------------------------------------------------------------------- secrets: split, rotate

WEBHOOK_FIELDS = {"pos_webhook_token", "ecom_webhook_secret"}


def _legacy_connection(stack: LocalStack, connection_id: str, secrets: dict[str, str] = SHOP_SECRETS) -> str:
    """A connection as an older version stored it: one combined secret `<prefix><id>`."""
    stack.store.save_connection(
        Connection(connection_id=connection_id, pos_base_url=URLS[1], ecom_base_url=URLS[3]), create=True
    )
    name = legacy_secret_name(stack.secret_prefix, connection_id)
    stack.session.client("secretsmanager").create_secret(Name=name, SecretString=json.dumps(secrets))
    return name


def _legacy_value(stack: LocalStack, name: str) -> dict[str, str]:
    value: dict[str, str] = json.loads(
        stack.session.client("secretsmanager").get_secret_value(SecretId=name)["SecretString"]
    )
    return value


def test_split_secret_writes_both_parts_from_the_legacy_secret_and_leaves_it_in_place(stack: LocalStack) -> None:
    legacy = _legacy_connection(stack, "dockside")

    dry = stack.cli("connections", "split-secret", "dockside", "--dry-run")
    assert dry.code == 0, dry.err
    assert dry.json["parts"] == {"api": "would write", "webhook": "would write"}
    assert stack.secret_part("dockside", "api") is None and stack.secret_part("dockside", "webhook") is None

    run = stack.cli("connections", "split-secret", "dockside")

    assert run.code == 0, run.err
    assert run.json["parts"] == {"api": "written", "webhook": "written"}
    assert legacy in run.json["note"] and "delete" in run.json["note"]
    assert stack.secret("dockside") == SHOP_SECRETS
    assert set(stack.secret_part("dockside", "webhook") or {}) == WEBHOOK_FIELDS  # no API credential there
    assert _legacy_value(stack, legacy) == SHOP_SECRETS  # left for the operator to delete after checking
    assert_no_secret_in(dry, SHOP_SECRETS)
    assert_no_secret_in(run, SHOP_SECRETS)

    again = stack.cli("connections", "split-secret", "dockside")
    assert again.json["parts"] == {"api": "unchanged", "webhook": "unchanged"}


def test_split_secret_never_overwrites_a_part_rotated_since(stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> None:
    _legacy_connection(stack, "dockside")
    stack.cli("connections", "split-secret", "dockside")
    monkeypatch.setenv("NEW_ECOM_SECRET", "shop-ecom-webhook-secret-0002")
    stack.cli(
        "connections",
        "rotate-webhook-secret",
        "dockside",
        "--credential",
        "ecom-secret",
        "--value-env",
        "NEW_ECOM_SECRET",
    )

    run = stack.cli("connections", "split-secret", "dockside")

    assert run.json["parts"] == {"api": "unchanged", "webhook": "kept (differs from legacy)"}
    assert (stack.secret_part("dockside", "webhook") or {})["ecom_webhook_secret"] == "shop-ecom-webhook-secret-0002"


def test_split_secret_all_migrates_every_connection_and_reports_each(stack: LocalStack) -> None:
    assert stack.create("already-split").code == 0
    _legacy_connection(stack, "legacy-one", DEMO_SECRETS)
    stack.store.save_connection(
        Connection(connection_id="no-secret", pos_base_url=URLS[1], ecom_base_url=URLS[3]), create=True
    )

    run = stack.cli("connections", "split-secret", "--all")

    assert run.code == 0, run.err
    by_id = {r["connection_id"]: r for r in run.json}
    assert by_id["already-split"]["parts"] == {"api": "unchanged", "webhook": "unchanged"}
    assert by_id["legacy-one"]["parts"] == {"api": "written", "webhook": "written"}
    assert "set-secrets" in by_id["no-secret"]["error"]
    assert stack.secret("legacy-one") == DEMO_SECRETS
    assert_no_secret_in(run, SHOP_SECRETS, DEMO_SECRETS)


def test_rotate_webhook_secret_generates_a_token_into_a_private_file_and_keeps_the_old_one_48_hours(
    stack: LocalStack,
) -> None:
    stack.create("dockside")

    run = stack.cli(
        "connections", "rotate-webhook-secret", "dockside", "--credential", "pos-token", "--generate-to", "new-token"
    )

    assert run.code == 0, run.err
    token_file = stack.workdir / "new-token"
    new_token = token_file.read_text().strip()
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600 and len(new_token) >= 32
    webhook = stack.secret_part("dockside", "webhook") or {}
    assert webhook["pos_webhook_token"] == new_token
    assert webhook["previous_pos_webhook_token"] == SHOP_SECRETS["pos_webhook_token"]
    until = datetime.fromisoformat(run.json["previous_accepted_until"])
    assert abs(until - (datetime.now(UTC) + timedelta(hours=48))) < timedelta(minutes=1)
    assert "PUT /api/2.0/webhooks" in run.json["next"]
    assert new_token not in run.out and new_token not in run.err
    assert_no_secret_in(run, SHOP_SECRETS)
    assert stack.secret_part("dockside", "api") == {k: v for k, v in SHOP_SECRETS.items() if k not in WEBHOOK_FIELDS}

    existing = stack.cli(
        "connections", "rotate-webhook-secret", "dockside", "--credential", "pos-token", "--generate-to", "new-token"
    )
    assert existing.code == 2 and "cannot create" in existing.err  # never overwrites a file


def test_rotate_webhook_secret_takes_a_vendor_issued_value_from_the_environment_only(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack.create("dockside")
    monkeypatch.setenv("NEW_ECOM_SECRET", "shop-ecom-webhook-secret-0002")

    generated = stack.cli(
        "connections", "rotate-webhook-secret", "dockside", "--credential", "ecom-secret", "--generate-to", "x"
    )
    run = stack.cli(
        "connections",
        "rotate-webhook-secret",
        "dockside",
        "--credential",
        "ecom-secret",
        "--value-env",
        "NEW_ECOM_SECRET",
        "--overlap-hours",
        "2",
    )

    assert generated.code == 2 and "--value-env" in generated.err
    assert run.code == 0, run.err
    webhook = stack.secret_part("dockside", "webhook") or {}
    assert webhook["ecom_webhook_secret"] == "shop-ecom-webhook-secret-0002"
    assert webhook["previous_ecom_webhook_secret"] == SHOP_SECRETS["ecom_webhook_secret"]
    assert "rotate-api-secret" in run.json["next"]
    assert_no_secret_in(run, SHOP_SECRETS, {"new": "shop-ecom-webhook-secret-0002"})


def test_rotate_api_secret_changes_only_the_given_fields(stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> None:
    stack.create("dockside")
    nothing = stack.cli("connections", "rotate-api-secret", "dockside")
    monkeypatch.setenv("POS_ACCESS_TOKEN", "shop-pos-access-token-0002")

    run = stack.cli("connections", "rotate-api-secret", "dockside")

    assert nothing.code == 2 and "POS_ACCESS_TOKEN" in nothing.err
    assert run.code == 0, run.err
    assert run.json["changed"] == ["pos_access_token"]
    assert stack.secret("dockside") == {**SHOP_SECRETS, "pos_access_token": "shop-pos-access-token-0002"}
    assert_no_secret_in(run, SHOP_SECRETS, {"new": "shop-pos-access-token-0002"})
    same = stack.cli("connections", "rotate-api-secret", "dockside")
    assert same.code == 2 and "nothing rotated" in same.err


def test_rotate_api_secret_refuses_webhook_fields_and_an_incomplete_oauth_set(stack: LocalStack) -> None:
    stack.create("dockside")
    (stack.workdir / "webhook.json").write_text(json.dumps({"pos_webhook_token": "x" * 20}))
    (stack.workdir / "oauth.json").write_text(json.dumps({"pos_refresh_token": "r" * 20}))

    webhook = stack.cli("connections", "rotate-api-secret", "dockside", "--secrets-file", "webhook.json")
    oauth = stack.cli("connections", "rotate-api-secret", "dockside", "--secrets-file", "oauth.json")

    assert webhook.code == 2 and "rotate-webhook-secret" in webhook.err
    assert oauth.code == 2 and "pos_client_id" in oauth.err and "r" * 20 not in oauth.err
    assert stack.secret("dockside") == SHOP_SECRETS
