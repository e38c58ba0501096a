"""R-Series stock through the whole local stack: a qoh change in the R-Series simulator -> change poller (ItemShop
feed) -> stock queue -> stock worker (reads the item's shops) -> eCom stockLevel.

Seed 002 and rseries.md §5: eCom shows the sum of qoh over the connected shops; the shopID "0" all-shops summary row
never counts and a shop below zero counts as 0. R-Series has no webhooks, so one poll is what moves a change; the
operator's connect/disconnect of a shop recomputes every total. The connection is created as an operator does it
(`pos-ecom-sync connections create --pos-profile r-series`, OAuth credentials), which these tests also prove.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pos_ecom_sync.state.stock_store import StockStore

from tests.e2e.conftest import COMMAND, RSeriesLiveStack

pytestmark = pytest.mark.e2e

REGISTER_SHOP, OTHER_SHOP = "1", "2"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def live(rseries_stack: RSeriesLiveStack) -> Iterator[RSeriesLiveStack]:
    rseries_stack.import_catalog()
    yield rseries_stack


def _set_outlets(live: RSeriesLiveStack, shops: list[str]) -> None:
    live.set_outlets(shops, REGISTER_SHOP)


def _every_item_at_its_total(live: RSeriesLiveStack) -> Callable[[], bool]:
    return lambda: all(live.ecom_level(i) == live.pos_total(i) for i in live.stocked_item_ids())


def _item(live: RSeriesLiveStack, index: int) -> int:
    return live.stocked_item_ids()[index]


def test_the_demo_connection_is_an_r_series_oauth_connection_with_every_shop_connected(live: RSeriesLiveStack) -> None:
    connection = live.connection()
    assert connection.pos_profile == "r-series"
    assert connection.connected_outlet_ids == sorted(s["shopID"] for s in live.rseries.shops())
    assert (connection.online_register_id, connection.register_outlet_id) == ("1", REGISTER_SHOP)
    assert live.rseries.refused_grants == 0


def test_ecom_stock_is_the_sum_of_the_connected_shops_without_the_all_shops_row_and_a_negative_shop_as_zero(
    live: RSeriesLiveStack,
) -> None:
    item = _item(live, 0)
    live.rseries.set_qoh(item, int(REGISTER_SHOP), 4)
    live.rseries.set_qoh(item, int(OTHER_SHOP), -3)
    summary = next(int(r["qoh"]) for r in live.rseries.item_shops(item) if r["shopID"] == "0")
    assert summary == 1  # the all-shops row sums the shops, negatives included

    live.poll()

    live.wait_until(lambda: live.ecom_level(item) == 4, what="eCom at 4 + max(0, -3), the summary row not counted")


def test_a_qoh_change_in_one_shop_reaches_ecom_within_one_poll(live: RSeriesLiveStack) -> None:
    item = _item(live, 1)
    before = live.pos_total(item)
    level = live.rseries.qoh(item, int(OTHER_SHOP))
    live.rseries.set_qoh(item, int(OTHER_SHOP), max(level, 0) + 7)
    assert live.ecom_level(item) == before  # nothing moves without a poll: R-Series sends no webhook

    live.poll()

    live.wait_until(lambda: live.ecom_level(item) == before + 7, what="the new total in eCom after one poll")


def test_disconnecting_a_shop_subtracts_its_stock_and_connecting_it_adds_it_back(live: RSeriesLiveStack) -> None:
    item = _item(live, 2)
    live.rseries.set_qoh(item, int(REGISTER_SHOP), 3)
    live.rseries.set_qoh(item, int(OTHER_SHOP), 5)
    live.poll()
    live.wait_until(lambda: live.ecom_level(item) == 8, what="eCom at 3 + 5")
    try:
        _set_outlets(live, [REGISTER_SHOP])
        live.wait_until(lambda: live.ecom_level(item) == 3, what="shop 2's stock subtracted")
        live.wait_until(_every_item_at_its_total(live), what="every variant recomputed over shop 1 alone")

        live.rseries.set_qoh(item, int(OTHER_SHOP), 9)  # a disconnected shop's change moves nothing online
        live.poll()
        live.wait_until(lambda: live.rseries_stack.pos_total(item, [REGISTER_SHOP]) == 3, what="the POS total")
    finally:
        _set_outlets(live, [REGISTER_SHOP, OTHER_SHOP])
    live.wait_until(lambda: live.ecom_level(item) == 12, what="shop 2's stock (now 9) added back")
    live.wait_until(_every_item_at_its_total(live), what="every variant recomputed over both shops")


def test_at_zero_the_variant_is_out_of_stock_and_cannot_be_ordered(live: RSeriesLiveStack) -> None:
    item = _item(live, 3)
    live.rseries.set_qoh(item, int(REGISTER_SHOP), 0)
    live.rseries.set_qoh(item, int(OTHER_SHOP), -1)
    live.poll()
    live.wait_until(lambda: live.ecom_level(item) == 0, what="eCom at 0 + max(0, -1)")

    link = live.store().variant_link(live.connection_id, pos_product_id=str(item))
    assert link is not None
    variant = next(v for v in live.ecom.variants() if v["id"] == link.ecom_variant_id)
    assert variant["stockTracking"] == "enabled"
    with pytest.raises(ValueError):
        live.ecom.place_order([{"variant_id": link.ecom_variant_id, "quantity": 1}], email="sold.out@example.com")


# -- open online sales: R-Series takes stock only when a sale completes -------------------------------------------


def _held(live: RSeriesLiveStack, item: int) -> int:
    store = StockStore(os.environ["TABLE_NAME"], resource=live.session.resource("dynamodb"))
    return store.get_stock(live.connection_id, str(item)).held


def _unpaid_order(live: RSeriesLiveStack, item: int, quantity: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """A shopper's unpaid order (eCom lowers its own stock at checkout) and the open R-Series sale it became. It is
    paid by a method named like an R-Series payment type, so a payment marked later in eCom is recorded in the POS."""
    variant_id = live.variant_link(item).ecom_variant_id
    order = live.ecom.place_order(
        [{"variant_id": variant_id, "quantity": quantity}],
        "open.sale@example.com",
        payment_title="Credit Card",
        payment_status="not_paid",
    )
    sale = live.imported_sale(order)
    assert (sale["completed"], sale["voided"]) == ("false", "false")  # open: the POS has not taken its units
    return order, sale


def _in_ecom_at_its_total(live: RSeriesLiveStack, index: int, register_shop_qoh: int) -> int:
    """Stocked item `index` with both shops connected and this qoh at the register's shop, once eCom shows its total."""
    _set_outlets(live, [REGISTER_SHOP, OTHER_SHOP])
    item = _item(live, index)
    live.rseries.set_qoh(item, int(REGISTER_SHOP), register_shop_qoh)
    live.poll()
    live.wait_until(lambda: live.ecom_level(item) == live.pos_total(item), what="eCom at the POS total")
    return item


def _sale_state(live: RSeriesLiveStack, sale_id: str) -> tuple[str, str]:
    sale = next(s for s in live.rseries.sales() if s["saleID"] == sale_id)
    return sale["completed"], sale["voided"]


def test_an_unpaid_order_holds_its_units_back_from_ecom_until_its_r_series_sale_completes(
    live: RSeriesLiveStack,
) -> None:
    item = _in_ecom_at_its_total(live, 4, register_shop_qoh=6)
    order, sale = _unpaid_order(live, item, 2)
    live.wait_until(lambda: _held(live, item) == 2, what="the open sale's 2 units held")
    assert live.rseries.qoh(item, int(REGISTER_SHOP)) == 6  # the open sale took nothing

    # A restock in the POS: eCom gets the new total less the held units, never the units the open sale sold.
    live.rseries.set_qoh(item, int(OTHER_SHOP), max(live.rseries.qoh(item, int(OTHER_SHOP)), 0) + 3)
    live.poll()
    live.wait_until(lambda: live.ecom_level(item) == live.pos_total(item) - 2, what="the restock, less the hold")

    # Paid in eCom: status sync pays and completes the sale, R-Series takes the units, the next poll releases.
    live.ecom.update_order_status(order["id"], payment_status="paid")
    live.wait_until(lambda: _sale_state(live, sale["saleID"]) == ("true", "false"), what="the sale completed")
    assert live.rseries.qoh(item, int(REGISTER_SHOP)) == 4
    live.poll()
    live.wait_until(lambda: _held(live, item) == 0, what="the hold released")
    live.wait_until(lambda: live.ecom_level(item) == live.pos_total(item), what="eCom at the POS total again")
    record = live.order_store().get_order(live.connection_id, int(order["id"]))
    assert record is not None and record.stock_held == ()


def test_an_unpaid_order_cancelled_in_ecom_voids_its_sale_and_gives_its_units_back_to_ecom(
    live: RSeriesLiveStack,
) -> None:
    item = _in_ecom_at_its_total(live, 5, register_shop_qoh=5)
    total = live.pos_total(item)
    order, sale = _unpaid_order(live, item, 1)
    live.wait_until(lambda: _held(live, item) == 1, what="the open sale's unit held")
    live.wait_until(lambda: live.ecom_level(item) == total - 1, what="eCom one unit down")

    live.ecom.update_order_status(order["id"], payment_status="cancelled")
    live.wait_until(lambda: _sale_state(live, sale["saleID"])[1] == "true", what="the sale voided")
    live.poll()

    live.wait_until(lambda: _held(live, item) == 0, what="the hold released")
    live.wait_until(lambda: live.ecom_level(item) == total, what="the unit back in eCom")
    assert live.pos_total(item) == total  # a voided sale never took stock


# -- the operator creates R-Series connections -------------------------------------------------------------------


@pytest.fixture
def cli(live: RSeriesLiveStack, tmp_path: Path) -> Any:
    """`pos-ecom-sync ...` against this stack, as the operator runs it (see conftest `cli`)."""
    (tmp_path / ".local-stack").mkdir()
    (tmp_path / ".local-stack" / "outputs.json").write_text(json.dumps(live.stack.outputs()))

    def run(*argv: str, secrets: dict[str, str]) -> tuple[int, str]:
        (tmp_path / "secrets.json").write_text(json.dumps(secrets))
        command = [str(COMMAND), *argv, "--secrets-file", str(tmp_path / "secrets.json")]
        done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
        return done.returncode, done.stdout + done.stderr

    return run


def _common_secrets() -> dict[str, str]:
    """No pos_webhook_token: R-Series sends no webhooks, so its connections need none."""
    return {
        "ecom_api_key": "demo-ecom-api-key",
        "ecom_api_secret": "demo-ecom-api-secret",
        "ecom_webhook_secret": "demo-ecom-app-secret",
    }


def test_an_r_series_connection_without_its_oauth_credentials_is_refused_with_what_is_missing(
    live: RSeriesLiveStack, cli: Any
) -> None:
    url = live.rseries.url
    code, output = cli(
        "connections", "create", "rs-token-only", "--pos-profile", "r-series", "--pos-url", url,
        "--ecom-url", live.ecom.url, secrets={**_common_secrets(), "pos_access_token": "an-access-token"},
    )  # fmt: skip

    assert code == 2
    assert "pos_client_id" in output and "pos_refresh_token" in output and "nothing was saved" in output
    assert live.store().get_connection("rs-token-only") is None


def test_an_r_series_connection_is_created_with_its_oauth_credentials_and_its_registers_shop(
    live: RSeriesLiveStack, cli: Any
) -> None:
    grant = live.rseries.issue_tokens()
    oauth = {
        "pos_client_id": live.rseries.client_id,
        "pos_client_secret": live.rseries.client_secret,
        "pos_refresh_token": grant["refresh_token"],
    }
    code, output = cli(
        "connections", "create", "rs-oauth", "--pos-profile", "r-series", "--pos-url", live.rseries.url,
        "--ecom-url", live.ecom.url, "--register", "1", "--outlets", OTHER_SHOP,
        secrets={**_common_secrets(), **oauth},
    )  # fmt: skip

    assert code == 0, output
    created = live.store().get_connection("rs-oauth")
    assert created is not None
    assert (created.pos_profile, created.register_outlet_id) == ("r-series", REGISTER_SHOP)
    assert sorted(created.connected_outlet_ids) == [REGISTER_SHOP, OTHER_SHOP]  # the register's shop always counts
    live.store().save_connection(created.model_copy(update={"status": "paused"}))  # the other tests' polls skip it
