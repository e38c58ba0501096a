"""Seed 003 through the whole local stack: "By default, the outlet linked to the register you have chosen for eCom
orders will be included. If you do not wish inventory to sync from this outlet, you will need to change the
register linked to eCom."

The demo connection is stored as `connections create --register <its register>` stores it (the register's outlet
in `register_outlet_id` and among the connected outlets). Outlet changes go through `request_outlet_change`, the
function behind `connections set-outlets`; POS stock changes travel webhook/poll -> stock queue -> stock_sync ->
eCom.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from pos_ecom_sync.errors import InvalidInput
from pos_ecom_sync.models.connection import Connection
from pos_ecom_sync.queues import ChangePublisher
from pos_ecom_sync.stock.sync import request_outlet_change

from tests.e2e.conftest import LiveStack

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def live(live_stack: LiveStack) -> Iterator[LiveStack]:
    live_stack.import_catalog()
    yield live_stack


def _set_outlets(live: LiveStack, outlets: list[str]) -> Connection:
    queues = live.session.client("sqs")
    publisher = ChangePublisher(lambda concern: os.environ[f"{concern.upper()}_QUEUE_URL"], client=queues)
    return request_outlet_change(live.store(), publisher, live.connection_id, outlets)


def _online(live: LiveStack, sku: str) -> int | None:
    return next((int(v["stockLevel"]) for v in live.ecom.variants() if v["sku"] == sku), None)


def _show_in_ecom(live: LiveStack, sku: str, total: int, what: str) -> None:
    live.poll()  # the poller's inventory feed, in case a webhook is late
    live.wait_until(lambda: _online(live, sku) == total, timeout=60, what=what)


def test_the_registers_outlet_counts_in_ecom_totals_with_and_without_other_outlets(live: LiveStack) -> None:
    register = live.pos.registers()[0]
    connection = live.connection()
    own = register["outlet_id"]
    other = next(o["id"] for o in live.pos.outlets() if o["id"] != own)
    assert (connection.online_register_id, connection.register_outlet_id) == (register["id"], own)
    variant = live.variants_in_stock()[0]
    product = next(p for p in live.pos.products() if p["sku"] == variant["sku"])

    # With --outlets naming another outlet: leaving the register's outlet out is refused, nothing changes...
    with pytest.raises(InvalidInput, match="change the register"):
        _set_outlets(live, [other])
    assert live.connection().connected_outlet_ids == connection.connected_outlet_ids
    # ...and listing it too (what `connections create --register R --outlets <other>` stores) counts both.
    assert _set_outlets(live, [other, own]).connected_outlet_ids == [other, own]
    live.pos.set_inventory(product["id"], other, 4)
    live.pos.set_inventory(product["id"], own, 7)
    _show_in_ecom(live, variant["sku"], 4 + 7, "eCom at the register's outlet 7 + the other outlet 4")

    # Without --outlets: the register's outlet alone (`connections create --register R` stores [its outlet]).
    assert _set_outlets(live, [own]).connected_outlet_ids == [own]
    _show_in_ecom(live, variant["sku"], 7, "eCom at the register's outlet alone, 7")
    live.pos.set_inventory(product["id"], own, 3)
    _show_in_ecom(live, variant["sku"], 3, "eCom following the register's outlet to 3")


def test_a_connection_saved_before_the_registers_outlet_was_stored_still_counts_it(live: LiveStack) -> None:
    own = live.pos.registers()[0]["outlet_id"]
    current = live.connection()
    # An older version stored `connections create --register R` without --outlets as no outlet at all.
    legacy = current.model_copy(
        update={"register_outlet_id": None, "connected_outlet_ids": [], "primary_outlet_id": None}
    )
    live.store().save_connection(legacy)
    variant = live.variants_in_stock(minimum=1)[0]
    product = next(p for p in live.pos.products() if p["sku"] == variant["sku"])

    live.pos.set_inventory(product["id"], own, 12)

    _show_in_ecom(live, variant["sku"], 12, "eCom at the register's outlet 12, looked up from the POS registers")
