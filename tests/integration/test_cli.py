"""The operator CLI end to end: `main(argv)` against a moto server, found through .local-stack/outputs.json.

The moto server runs in this process on a free port; the CLI reaches it over HTTP exactly as it reaches
the local stack of `make run` (it reads the endpoint from outputs.json and sets AWS_ENDPOINT_URL itself).
"""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer
from pos_ecom_sync.secrets import secret_name
from pos_ecom_sync.state.store import SyncStore

from local_stack.provision import provision
from local_stack.simulators.xseries import XSeriesSimulator
from pos_ecom_sync_cli import main as cli_main_module
from pos_ecom_sync_cli import stock as cli_stock_module
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

    def secret(self, connection_id: str) -> dict[str, str] | None:
        client = self.session.client("secretsmanager")
        try:
            value = client.get_secret_value(SecretId=secret_name(self.secret_prefix, connection_id))
        except client.exceptions.ResourceNotFoundException:
            return None
        secret: dict[str, str] = json.loads(value["SecretString"])
        return secret


@pytest.fixture
def stack(
    moto_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> LocalStack:
    # setenv first, so the AWS_ENDPOINT_URL the CLI writes into os.environ is undone after the test.
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    for variable in SECRET_ENV.values():
        monkeypatch.delenv(variable, raising=False)
    session = boto3.Session(region_name="us-east-1")
    # One stack per test on the shared server: its own table, queues and secret prefix.
    resources = provision(session, stack_name=f"cli{next(_stack_numbers)}")
    env = resources.shared_environment()
    outputs = {
        "Endpoint": moto_endpoint,
        "Region": "us-east-1",
        "TableName": env["TABLE_NAME"],
        "SecretPrefix": env["SECRET_PREFIX"],
    }
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
    assert shown["secret_name"] == f"{stack.secret_prefix}dockside"
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
    assert run.json["secret_name"] == f"{stack.secret_prefix}dockside"
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
    stack.session.client("secretsmanager").delete_secret(
        SecretId=f"{stack.secret_prefix}dockside", ForceDeleteWithoutRecovery=True
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
