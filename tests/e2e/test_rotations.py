"""Both credential rotations on the live stack, following the README's rotation runbook step by step with the CLI,
while changes keep flowing: no valid delivery refused, no record dead-lettered.

API rotation: the operator puts a new POS personal token and eCom key in the API part; the vendors refuse the old
ones at once (the worst case), while every worker still holds the old values in its cache. Webhook rotation: new
POS token (the X-Series webhooks re-pointed at the new URL) and eCom signing secret, while the webhook function
holds the old webhook part in its cache.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pos_ecom_sync.models.ledger import OrderRecord

from local_stack.demo import DEMO_SECRETS
from pos_ecom_sync_cli.main import Target, build_parser
from tests.e2e.conftest import LiveStack

pytestmark = pytest.mark.e2e

_emails = (f"rotation-{n}@example.com" for n in itertools.count())
NEW_POS_TOKEN = "rotated-pos-access-token-0002"
NEW_ECOM_KEY, NEW_ECOM_SECRET = "rotated-ecom-api-key-0002", "rotated-ecom-api-secret-0002"
NEW_ECOM_WEBHOOK_SECRET = "rotated-ecom-app-secret-0002"


@pytest.fixture(scope="module")
def live(live_stack: LiveStack) -> Iterator[LiveStack]:
    """The catalog imported: every worker has read the connection's API secret within its cache's age."""
    live_stack.import_catalog()
    assert _parked(live_stack) == 0
    yield live_stack


@pytest.fixture
def operator(live: LiveStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """`pos-ecom-sync ...` against this live stack (found through its outputs file, as after `make run`)."""
    (tmp_path / ".local-stack").mkdir()
    outputs = {
        "Endpoint": os.environ["AWS_ENDPOINT_URL"],
        "Region": os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
        "TableName": os.environ["TABLE_NAME"],
        "SecretPrefix": os.environ["SECRET_PREFIX"],
    }
    (tmp_path / ".local-stack" / "outputs.json").write_text(json.dumps(outputs))
    monkeypatch.chdir(tmp_path)

    def run(*argv: str, **env: str) -> Any:
        """The command's result as `main` would print it (stdout here also carries the stack's narration)."""
        with monkeypatch.context() as scoped:
            for name, value in env.items():
                scoped.setenv(name, value)
            args = build_parser().parse_args(list(argv))
            return json.loads(json.dumps(args.run(args, Target(args)), default=str))

    run.workdir = tmp_path  # type: ignore[attr-defined]
    return run


def _parked(live: LiveStack) -> int:
    """Records in every dead-letter queue (in-process the workers share one environment, so look in all four)."""
    assert live.stack.resources is not None
    sqs = live.session.client("sqs")
    total = 0
    for logical_id, url in live.stack.resources.queue_urls.items():
        if "DeadLetter" in logical_id:
            attributes = sqs.get_queue_attributes(
                QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
            )["Attributes"]
            total += sum(int(v) for v in attributes.values())
    return total


def _refused_deliveries(live: LiveStack, since: dict[str, int]) -> list[str]:
    """Every attempt of every delivery to our API since `since` that was not answered 2xx."""
    assert live.pos.wait_for_webhooks(30) and live.ecom.wait_for_webhooks(30)
    refused = []
    for name, simulator in (("pos", live.pos), ("ecom", live.ecom)):
        for record in simulator.deliveries.log[since[name] :]:
            if record.url.startswith(live.api_url):
                refused += [f"{name} {record.event}: {s}" for _, s in record.history if s is None or not 200 <= s < 300]
    return refused


def _log_marks(live: LiveStack) -> dict[str, int]:
    assert live.pos.wait_for_webhooks(30) and live.ecom.wait_for_webhooks(30)
    return {"pos": len(live.pos.deliveries.log), "ecom": len(live.ecom.deliveries.log)}


def _pos_total(live: LiveStack, product_id: str) -> int:
    return sum(max(0, live.pos.level(product_id, o["id"])) for o in live.pos.outlets())


def _stock_change_syncs(live: LiveStack, level: int) -> None:
    """A POS user changes stock: webhook -> stock worker (reads the POS, writes eCom)."""
    variant = next(p for p in live.pos.products() if p["variant_parent_id"])
    live.pos.set_inventory(variant["id"], live.pos.outlets()[0]["id"], level)
    live.wait_until(
        lambda: any(
            v.get("sku") == variant["sku"] and v.get("stockLevel") == _pos_total(live, variant["id"])
            for v in live.ecom.variants()
        ),
        timeout=60,
        what=f"stock {level} of {variant['sku']} in eCom",
    )


def _order_imports(live: LiveStack) -> None:
    """A shopper orders: eCom webhook -> order worker (reads eCom, creates the POS sale)."""
    variant = live.variants_in_stock()[0]
    order = live.ecom.place_order([{"variant_id": variant["id"], "quantity": 1}], email=next(_emails))

    def imported() -> OrderRecord | None:
        record = live.order_store().get_order(live.connection_id, order["id"])
        return record if record is not None and record.status == "imported" else None

    live.wait_until(imported, timeout=60, what=f"order {order['number']} imported into the POS")


def test_api_credentials_replaced_under_warm_workers_lose_no_record(live: LiveStack, operator: Any) -> None:
    marks = _log_marks(live)

    # POS personal token. Runbook step 1-2: the new token in the API part (the old one may be revoked right after).
    pos_refused = live.pos.unauthorized
    result = operator("connections", "rotate-api-secret", live.connection_id, POS_ACCESS_TOKEN=NEW_POS_TOKEN)
    assert result["changed"] == ["pos_access_token"]
    live.pos.replace_personal_token(NEW_POS_TOKEN)  # step 3, at once (the worst case): the old one is refused
    _stock_change_syncs(live, 31)
    assert live.pos.unauthorized > pos_refused  # a worker really sent the cached old token, and recovered

    # eCom API key, the same way.
    ecom_refused = live.ecom.unauthorized
    result = operator(
        "connections",
        "rotate-api-secret",
        live.connection_id,
        ECOM_API_KEY=NEW_ECOM_KEY,
        ECOM_API_SECRET=NEW_ECOM_SECRET,
    )
    assert result["changed"] == ["ecom_api_key", "ecom_api_secret"]
    live.ecom.replace_api_key(NEW_ECOM_KEY, NEW_ECOM_SECRET, live.ecom.webhook_secret)
    _order_imports(live)
    assert live.ecom.unauthorized > ecom_refused

    assert _parked(live) == 0
    assert _refused_deliveries(live, marks) == []


def test_webhook_credentials_rotated_while_deliveries_arrive_refuse_none(live: LiveStack, operator: Any) -> None:
    marks = _log_marks(live)
    base = f"{live.api_url}/connections/{live.connection_id}/webhooks/pos?token="

    # POS token. Step 1: a new token in the webhook part; the current one stays accepted for 48 h.
    result = operator(
        "connections", "rotate-webhook-secret", live.connection_id, "--credential", "pos-token", "--generate-to", "tok"
    )
    assert result["previous_accepted_until"] is not None
    new_token = (operator.workdir / "tok").read_text().strip()
    _stock_change_syncs(live, 41)  # X-Series still sends the old token: accepted

    # Step 2: point the X-Series webhooks at the new URL (PUT /api/2.0/webhooks/{id}, all fields required).
    auth = {"Authorization": f"Bearer {live.pos.token}"}
    hooks = httpx.get(f"{live.pos.url}/api/2.0/webhooks", headers=auth).json()["data"]
    for hook in hooks:
        assert hook["url"] == base + DEMO_SECRETS["pos_webhook_token"]
        body = {"url": base + new_token, "active": hook["active"], "type": hook["type"]}
        assert httpx.put(f"{live.pos.url}/api/2.0/webhooks/{hook['id']}", json=body, headers=auth).status_code == 200
    _stock_change_syncs(live, 43)  # the new token, while the webhook function's cache still holds the old secret

    # eCom signing secret: step 1 in the webhook part, step 2 the vendor signs with it (here: at once).
    operator(
        "connections",
        "rotate-webhook-secret",
        live.connection_id,
        "--credential",
        "ecom-secret",
        "--value-env",
        "NEW_ECOM_WEBHOOK_SECRET",
        NEW_ECOM_WEBHOOK_SECRET=NEW_ECOM_WEBHOOK_SECRET,
    )
    live.ecom.webhook_secret = NEW_ECOM_WEBHOOK_SECRET
    _order_imports(live)

    pos_urls = {r.url for r in live.pos.deliveries.log[marks["pos"] :] if r.url.startswith(live.api_url)}
    assert any(url.endswith(new_token) for url in pos_urls) and any(
        url.endswith(DEMO_SECRETS["pos_webhook_token"]) for url in pos_urls
    )  # both tokens were really sent
    assert _refused_deliveries(live, marks) == []
    assert _parked(live) == 0
