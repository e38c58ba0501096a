"""Routing on the stock state picks the same fulfilment plan as routing on a fresh POS read, whenever the state holds
what the POS holds; and a state that lacks a candidate outlet's level is never routed on (the POS is read instead).

The state is built as the stock worker builds it: one POS inventory read (`apply_inventory_read`, outlets without a
row recorded as 0 at the read's version), then every change the inventory feed and webhooks deliver, in any order,
repeated, older than the read or not (`apply_changes` keeps the newest version per outlet)."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from pos_ecom_sync.models.stock import InventoryChange, VariantStockState
from pos_ecom_sync.orders.routing import LineDemand, cached_levels, candidate_outlets, route_order
from pos_ecom_sync.stock.rules import apply_changes, apply_inventory_read

OUTLETS = ["o1", "o2", "o3", "o4", "o5"]
PRODUCTS = ["p1", "p2", "p3"]


@st.composite
def shops(draw: Any) -> dict[str, Any]:
    """Connected outlets and primary, each product's level history per outlet (versions rising), the version the
    stock worker's POS read was made at, the order's lines, and maybe a shipping method's outlet."""
    connected = draw(st.lists(st.sampled_from(OUTLETS), min_size=1, max_size=5, unique=True))
    primary = draw(st.sampled_from(connected))
    products = draw(st.lists(st.sampled_from(PRODUCTS), min_size=1, max_size=3, unique=True))
    history: dict[str, dict[str, list[tuple[int, int]]]] = {}
    for product in products:
        per_outlet: dict[str, list[tuple[int, int]]] = {}
        for outlet in OUTLETS:  # unconnected outlets have stock too; routing must ignore them either way
            levels = draw(st.lists(st.integers(-3, 12), max_size=4))
            versions = sorted(
                draw(st.lists(st.integers(1, 60), min_size=len(levels), max_size=len(levels), unique=True))
            )
            if levels:
                per_outlet[outlet] = list(zip(versions, levels, strict=True))
        history[product] = per_outlet
    read_at = draw(st.integers(0, 60))
    lines = [
        LineDemand(line_id=n, product_id=draw(st.sampled_from(products)), quantity=draw(st.integers(0, 9)))
        for n in range(draw(st.integers(1, 4)))
    ]
    if not any(line.quantity for line in lines):
        lines[0] = LineDemand(line_id=lines[0].line_id, product_id=lines[0].product_id, quantity=1)
    ship_to = draw(st.one_of(st.none(), st.sampled_from(OUTLETS)))
    seed = draw(st.randoms(use_true_random=False))
    return {
        "connected": connected,
        "primary": primary,
        "history": history,
        "read_at": read_at,
        "lines": lines,
        "ship_to": ship_to,
        "random": seed,
    }


def pos_now(history: dict[str, list[tuple[int, int]]]) -> dict[str, int]:
    """What a POS read returns now: the newest level of every outlet that has an inventory row."""
    return {outlet: events[-1][1] for outlet, events in history.items()}


def state_as_the_stock_worker_keeps_it(
    product: str, history: dict[str, list[tuple[int, int]]], connected: list[str], read_at: int, rng: Any
) -> VariantStockState:
    read = []  # the POS read the stock worker made at `read_at`: each outlet's newest row by then
    for outlet, events in history.items():
        seen = [(version, level) for version, level in events if version <= read_at]
        if seen:
            read.append(InventoryChange(product_id=product, outlet_id=outlet, level=seen[-1][1], version=seen[-1][0]))
    state, _ = apply_inventory_read(VariantStockState(product_id=product), read, connected, as_of_version=read_at)
    delivered = [
        InventoryChange(product_id=product, outlet_id=outlet, level=level, version=version)
        for outlet, events in history.items()
        for version, level in events
        if version > read_at or rng.random() < 0.3  # older deliveries arrive late, or twice
    ]
    delivered += rng.sample(delivered, k=min(len(delivered), 2))
    rng.shuffle(delivered)
    for change in delivered:
        state, _ = apply_changes(state, [change])
    return state


@settings(max_examples=300, deadline=None)
@given(shops())
def test_routing_on_the_stock_state_picks_the_plan_routing_on_a_fresh_pos_read_picks(shop: dict[str, Any]) -> None:
    connected, primary = shop["connected"], shop["primary"]
    candidates = candidate_outlets(connected, primary)
    fresh: dict[str, dict[str, int]] = {}
    cached: dict[str, dict[str, int]] = {}
    for product, history in shop["history"].items():
        for outlet, level in pos_now(history).items():
            fresh.setdefault(outlet, {})[product] = level
        state = state_as_the_stock_worker_keeps_it(product, history, connected, shop["read_at"], shop["random"])
        levels = cached_levels(state.levels, candidates)
        assert levels is not None, "a read of every connected outlet leaves a level for each candidate"
        for outlet, level in levels.items():
            cached.setdefault(outlet, {})[product] = level

    def plan(stock: dict[str, dict[str, int]]) -> Any:
        return route_order(
            shop["lines"],
            stock=stock,
            connected_outlets=connected,
            primary_outlet=primary,
            shipping_method_outlet=shop["ship_to"] if shop["ship_to"] in connected else None,
        )

    assert plan(cached) == plan(fresh)


@settings(max_examples=100, deadline=None)
@given(shops(), st.data())
def test_a_state_without_a_candidate_outlets_level_is_never_routed_on(shop: dict[str, Any], data: Any) -> None:
    """An outlet the stock worker never heard of is unknown, not 0: routing asks the POS for that product."""
    connected, primary = shop["connected"], shop["primary"]
    candidates = candidate_outlets(connected, primary)
    product = next(iter(shop["history"]))
    state = state_as_the_stock_worker_keeps_it(
        product, shop["history"][product], connected, shop["read_at"], shop["random"]
    )
    unknown = data.draw(st.sampled_from(candidates))
    without = state.model_copy(update={"levels": {o: lv for o, lv in state.levels.items() if o != unknown}})
    assert cached_levels(without.levels, candidates) is None
    assert cached_levels(state.levels, candidates) == {o: state.levels[o].level for o in candidates}


def test_the_primary_outlet_is_a_candidate_first_whatever_the_connected_order() -> None:
    assert candidate_outlets(["b", "a", "c"], "c") == ["c", "b", "a"]
