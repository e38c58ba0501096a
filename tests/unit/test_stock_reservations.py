"""Units held by open online sales (stock/rules.py hold_stock/release_stock, stock/reservations.py, the stock worker's
reservation messages): a POS that takes stock only when a sale completes (R-Series) never has an unpaid online
order's units sold online a second time, and a released hold never comes back. The real path (order import and
status sync on the R-Series local stack) is in tests/e2e/test_rseries_stock.py."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pos_ecom_sync.errors import InvalidInput
from pos_ecom_sync.models.messages import ChangeMessage
from pos_ecom_sync.models.sales import PosSale, SaleLine, SaleState
from pos_ecom_sync.models.stock import OutletLevel, VariantStockState
from pos_ecom_sync.stock.reservations import (
    hold_messages,
    release_messages,
    reservation_change,
    reservation_of,
    sale_units,
)
from pos_ecom_sync.stock.rules import (
    RELEASED_KEPT_SECONDS,
    desired_total,
    hold_stock,
    release_stock,
)

from tests.unit.test_stock_worker import A, B, Rig

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
T = NOW.timestamp()


def state(a: int, b: int) -> VariantStockState:
    levels = {A: OutletLevel(level=a, version=1), B: OutletLevel(level=b, version=1)}
    return VariantStockState(product_id="p1", ecom_variant_id=11, levels=levels)


def hold(order_id: int, quantity: int, product: str = "p1") -> ChangeMessage:
    [outgoing] = hold_messages("shop", order_id, {product: quantity}, via="import", now=NOW)
    return outgoing.message


def release(order_id: int, product: str = "p1") -> ChangeMessage:
    [outgoing] = release_messages("shop", order_id, [product], via="poll", now=NOW)
    return outgoing.message


# -- the rules ----------------------------------------------------------------------------------------------------


def test_held_units_come_off_the_online_total_which_never_goes_below_zero() -> None:
    held, _ = hold_stock(state(3, 4), "501", 2, T)
    assert desired_total(held, [A, B]) == 5
    more, _ = hold_stock(held, "502", 9, T)
    assert desired_total(more, [A, B]) == 0


def test_a_hold_applies_once_per_order_and_a_hold_after_its_release_is_ignored() -> None:
    held, changed = hold_stock(state(3, 4), "501", 2, T)
    again, changed_again = hold_stock(held, "501", 2, T)
    assert (changed, changed_again, again) == (True, False, held)

    released, _ = release_stock(state(3, 4), "502", T)  # the release overtook its hold
    late, applied = hold_stock(released, "502", 2, T + 5)
    assert not applied and desired_total(late, [A, B]) == 7


def test_a_released_mark_is_forgotten_only_after_no_late_hold_can_arrive() -> None:
    released, _ = release_stock(state(3, 4), "501", T)
    kept, _ = hold_stock(released, "502", 1, T + RELEASED_KEPT_SECONDS - 1)
    assert set(kept.reservations) == {"501", "502"}
    pruned, _ = hold_stock(kept, "503", 1, T + RELEASED_KEPT_SECONDS + 1)
    assert set(pruned.reservations) == {"502", "503"}


def test_a_negative_hold_is_refused() -> None:
    with pytest.raises(InvalidInput):
        hold_stock(state(3, 4), "501", -1, T)


def test_an_open_sale_is_held_once_and_released_once_it_completes_or_is_voided() -> None:
    lines = (SaleLine("1", "p1", Decimal(2)), SaleLine("2", "ship", Decimal(1)), SaleLine("3", "p1", Decimal(1)))
    open_sale = PosSale("9", SaleState.OPEN, "open", Decimal(10), Decimal(0), lines, stock_pending=True)
    closed = PosSale("9", SaleState.CLOSED, "completed", Decimal(10), Decimal(10), lines)

    assert sale_units(open_sale, skip_product="ship") == {"p1": 3}
    assert reservation_change(open_sale, ()) == "hold"
    assert reservation_change(open_sale, ("p1",)) is None
    assert reservation_change(closed, ("p1",)) == "release"
    assert reservation_change(closed, ()) is None  # a POS that takes stock at once never holds


def test_a_reservation_message_without_an_order_is_refused() -> None:
    message = hold(501, 2).model_copy(update={"payload": {"quantity": 2}})
    with pytest.raises(ValueError, match="order id"):
        reservation_of(message)
    assert reservation_of(hold(501, 2)) == ("501", 2) and reservation_of(release(501)) == ("501", None)


# -- the stock worker ----------------------------------------------------------------------------------------------


def test_a_hold_writes_the_total_less_the_held_units_and_its_repeat_makes_no_call() -> None:
    rig = Rig()
    rig.synced("p1", 11, {A: (3, 10), B: (4, 10)})

    result = rig.worker().handle(hold(501, 2))
    assert (result.outcome, result.level) == ("written", 5)
    assert rig.worker().handle(hold(501, 2)).outcome == "unchanged"
    assert len(rig.ecom.calls) == 1 and rig.pos.reads == 0


def test_a_release_reads_the_pos_after_the_sale_took_its_units_and_saves_both_at_once() -> None:
    rig = Rig()
    rig.synced("p1", 11, {A: (3, 10), B: (4, 10)})
    rig.worker().handle(hold(501, 2))
    # The sale completed: the POS took the 2 units at A. The release comes before the inventory change does.
    rig.pos.rows["p1"] = [
        {"outlet_id": A, "inventory_level": 1, "version": 12},
        {"outlet_id": B, "inventory_level": 4, "version": 10},
    ]

    result = rig.worker().handle(release(501))

    assert (result.outcome, result.level, rig.pos.reads) == ("written", 5, 1)
    assert rig.memory.states["p1"].held == 0 and rig.ecom.levels[11] == 5
    assert rig.worker().handle(release(501)).outcome == "unchanged" and rig.pos.reads == 1  # nothing read again


def test_a_bad_reservation_message_is_refused_with_its_reason() -> None:
    rig = Rig()
    message = hold(501, 2).model_copy(update={"payload": {"order_id": "501", "quantity": 2}})
    with pytest.raises(InvalidInput, match="order id"):
        rig.worker().handle(message)


# -- property: holds and releases in any order, repeated -------------------------------------------------------------

orders_strategy = st.dictionaries(st.integers(500, 505), st.tuples(st.integers(1, 4), st.booleans()), min_size=1)


@settings(max_examples=100, deadline=None)
@given(orders=orders_strategy, data=st.data())
def test_any_order_or_repeat_of_holds_and_releases_ends_with_only_unreleased_orders_held(
    orders: dict[int, tuple[int, bool]], data: st.DataObject
) -> None:
    rig = Rig()
    rig.synced("p1", 11, {A: (5, 10), B: (4, 10)})
    rig.pos.rows["p1"] = [
        {"outlet_id": A, "inventory_level": 5, "version": 10},
        {"outlet_id": B, "inventory_level": 4, "version": 10},
    ]
    messages = [hold(order, quantity) for order, (quantity, _) in orders.items()]
    messages += [release(order) for order, (_, released) in orders.items() if released]
    deliveries = messages + data.draw(st.lists(st.sampled_from(messages), max_size=8), label="repeats")
    for message in data.draw(st.permutations(deliveries), label="order"):
        rig.worker().handle(message)

    still_held = sum(quantity for quantity, released in orders.values() if not released)
    assert rig.memory.states["p1"].held == still_held
    assert rig.ecom.levels[11] == max(0, 9 - still_held)
