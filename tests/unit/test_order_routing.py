"""Routing an eCom order to outlets (seed 004): shipping-method outlet, one outlet in full, split, primary fallback."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from random import Random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pos_ecom_sync.models.orders import FulfillmentPlan
from pos_ecom_sync.orders.routing import EXACT_SEARCH_MAX_OUTLETS, LineDemand, route_order

MAIN, HARBOUR, AIRPORT, WAREHOUSE = "out-main", "out-harbour", "out-airport", "out-warehouse"
CONNECTED = [MAIN, HARBOUR, AIRPORT, WAREHOUSE]


def line(line_id: int, product: str, quantity: int) -> LineDemand:
    return LineDemand(line_id=line_id, product_id=product, quantity=quantity)


def allocation(plan: FulfillmentPlan) -> dict[str, dict[int, int]]:
    return {a.outlet_id: {part.line_id: part.quantity for part in a.lines} for a in plan.assignments}


def test_shipping_method_tied_to_an_outlet_sends_the_whole_order_there_whatever_its_stock() -> None:
    stock = {MAIN: {"tee": 10, "cap": 10}, AIRPORT: {"tee": 1}}
    plan = route_order(
        [line(1, "tee", 2), line(2, "cap", 1)],
        stock=stock,
        connected_outlets=CONNECTED,
        primary_outlet=MAIN,
        shipping_method_outlet=AIRPORT,
    )
    assert plan.strategy == "shipping_method"
    assert allocation(plan) == {AIRPORT: {1: 2, 2: 1}}
    assert plan.beyond_stock == 2  # one tee and the cap are not at the airport: staff must transfer them


def test_a_shipping_method_tied_to_an_outlet_that_is_not_connected_does_not_route_the_order() -> None:
    stock = {MAIN: {"tee": 10}, AIRPORT: {"tee": 10}}
    plan = route_order(
        [line(1, "tee", 2)],
        stock=stock,
        connected_outlets=[MAIN, HARBOUR],
        primary_outlet=MAIN,
        shipping_method_outlet=AIRPORT,  # disconnected since: seed 002 disconnects its shipping methods too
    )
    assert plan.strategy == "single_outlet"
    assert allocation(plan) == {MAIN: {1: 2}}


def test_one_outlet_holding_every_line_in_full_gets_the_whole_order() -> None:
    stock = {MAIN: {"tee": 1}, HARBOUR: {"tee": 5, "cap": 1}, AIRPORT: {"tee": 5, "cap": 5}}
    plan = route_order(
        [line(1, "tee", 2), line(2, "cap", 1)], stock=stock, connected_outlets=CONNECTED, primary_outlet=MAIN
    )
    assert plan.strategy == "single_outlet"
    assert allocation(plan) == {HARBOUR: {1: 2, 2: 1}}  # first capable outlet in the connection's order


def test_the_primary_outlet_wins_a_tie_between_outlets_that_can_each_fulfil_the_order() -> None:
    stock = {MAIN: {"tee": 2}, HARBOUR: {"tee": 9}}
    plan = route_order([line(1, "tee", 2)], stock=stock, connected_outlets=[HARBOUR, MAIN], primary_outlet=MAIN)
    assert allocation(plan) == {MAIN: {1: 2}}


def test_order_no_outlet_holds_in_full_is_split_over_the_fewest_outlets() -> None:
    # Main+Harbour+Airport would also cover it, but Warehouse+Airport does it with two.
    stock = {
        MAIN: {"tee": 1},
        HARBOUR: {"cap": 1},
        AIRPORT: {"tee": 3},
        WAREHOUSE: {"cap": 2, "tee": 1},
    }
    plan = route_order(
        [line(1, "tee", 4), line(2, "cap", 2)], stock=stock, connected_outlets=CONNECTED, primary_outlet=MAIN
    )
    assert plan.strategy == "split"
    assert plan.outlet_ids == [AIRPORT, WAREHOUSE]
    assert allocation(plan) == {AIRPORT: {1: 3}, WAREHOUSE: {1: 1, 2: 2}}
    assert plan.beyond_stock == 0


def test_split_never_gives_an_outlet_more_of_a_line_than_it_holds() -> None:
    stock = {MAIN: {"tee": 2}, HARBOUR: {"tee": 3}}
    plan = route_order([line(1, "tee", 5)], stock=stock, connected_outlets=CONNECTED, primary_outlet=MAIN)
    assert allocation(plan) == {MAIN: {1: 2}, HARBOUR: {1: 3}}


def test_nothing_in_stock_sends_the_whole_order_to_the_primary_outlet() -> None:
    plan = route_order(
        [line(1, "tee", 2), line(2, "cap", 1)], stock={}, connected_outlets=CONNECTED, primary_outlet=HARBOUR
    )
    assert plan.strategy == "unstocked"
    assert allocation(plan) == {HARBOUR: {1: 2, 2: 1}}
    assert plan.beyond_stock == 3


def test_what_no_outlet_holds_goes_to_the_primary_and_the_rest_is_taken_from_stock() -> None:
    stock = {MAIN: {"cap": 1}, AIRPORT: {"tee": 2}}
    plan = route_order(
        [line(1, "tee", 3), line(2, "cap", 1)], stock=stock, connected_outlets=CONNECTED, primary_outlet=MAIN
    )
    assert plan.strategy == "unstocked"
    assert allocation(plan) == {MAIN: {2: 1, 1: 1}, AIRPORT: {1: 2}}
    [main] = [a for a in plan.assignments if a.outlet_id == MAIN]
    assert {p.line_id: p.beyond_stock for p in main.lines} == {2: 0, 1: 1}


def test_negative_stock_counts_as_zero() -> None:
    stock = {MAIN: {"tee": -3}, HARBOUR: {"tee": 2}}
    plan = route_order([line(1, "tee", 2)], stock=stock, connected_outlets=CONNECTED, primary_outlet=MAIN)
    assert allocation(plan) == {HARBOUR: {1: 2}}


def test_two_lines_of_one_product_share_an_outlets_stock() -> None:
    stock = {MAIN: {"tee": 3}, HARBOUR: {"tee": 4}}
    plan = route_order(
        [line(1, "tee", 2), line(2, "tee", 2)], stock=stock, connected_outlets=CONNECTED, primary_outlet=MAIN
    )
    assert allocation(plan) == {HARBOUR: {1: 2, 2: 2}}


def test_stock_at_an_outlet_that_is_not_connected_is_ignored() -> None:
    stock = {"out-closed": {"tee": 50}, HARBOUR: {"tee": 1}}
    plan = route_order([line(1, "tee", 1)], stock=stock, connected_outlets=CONNECTED, primary_outlet=MAIN)
    assert allocation(plan) == {HARBOUR: {1: 1}}


def test_zero_quantity_lines_are_not_routed_and_an_order_without_quantity_is_refused() -> None:
    plan = route_order(
        [line(1, "tee", 0), line(2, "cap", 1)], stock={}, connected_outlets=CONNECTED, primary_outlet=MAIN
    )
    assert allocation(plan) == {MAIN: {2: 1}}
    with pytest.raises(ValueError, match="no line"):
        route_order([line(1, "tee", 0)], stock={}, connected_outlets=CONNECTED, primary_outlet=MAIN)
    with pytest.raises(ValueError, match="negative"):
        route_order([line(1, "tee", -1)], stock={}, connected_outlets=CONNECTED, primary_outlet=MAIN)


def test_plan_becomes_one_new_fulfillment_and_one_outlet_scoped_notification_per_outlet() -> None:
    stock = {MAIN: {"tee": 1}, HARBOUR: {"tee": 1}}
    plan = route_order([line(7, "tee", 2)], stock=stock, connected_outlets=CONNECTED, primary_outlet=MAIN)
    fulfillments = plan.fulfillments("sale-1")
    assert [(f.outlet_id, f.status, f.sale_id) for f in fulfillments] == [
        (MAIN, "NEW", "sale-1"),
        (HARBOUR, "NEW", "sale-1"),
    ]
    events = plan.notifications("dockside", "sale-1", "ORD10042")
    assert [e.model_dump() for e in events] == [
        {
            "connection_id": "dockside",
            "outlet_id": outlet,
            "sale_id": "sale-1",
            "order_number": "ORD10042",
            "lines": [{"product_id": "tee", "quantity": 1}],
        }
        for outlet in (MAIN, HARBOUR)
    ]


def test_many_outlets_use_greedy_cover_and_still_find_a_single_outlet() -> None:
    outlets = [f"out-{n:02d}" for n in range(12)]
    stock = {o: {"tee": 1, "cap": 1} for o in outlets} | {"out-09": {"tee": 5, "cap": 5}}
    plan = route_order(
        [line(1, "tee", 3), line(2, "cap", 2)], stock=stock, connected_outlets=outlets, primary_outlet="out-00"
    )
    assert plan.strategy == "single_outlet"
    assert plan.outlet_ids == ["out-09"]


def test_greedy_cover_drops_outlets_later_picks_make_redundant() -> None:
    # Greedy takes out-00 first (covers most), then needs out-01 and out-02; out-00 is then redundant.
    outlets = [f"out-{n:02d}" for n in range(10)]
    stock: dict[str, dict[str, int]] = {
        "out-00": {"a": 2, "b": 2},
        "out-01": {"a": 3, "c": 0},
        "out-02": {"b": 3},
    }
    plan = route_order([line(1, "a", 3), line(2, "b", 3)], stock=stock, connected_outlets=outlets, primary_outlet="x")
    assert plan.outlet_ids == ["out-01", "out-02"]


# -- properties ------------------------------------------------------------------------------------------------

PRODUCTS = ["p1", "p2", "p3", "p4"]


@dataclass(frozen=True)
class Case:
    lines: list[LineDemand]
    stock: dict[str, dict[str, int]]
    connected_outlets: list[str]
    primary_outlet: str

    def route(self, stock: dict[str, dict[str, int]] | None = None) -> FulfillmentPlan:
        return route_order(
            self.lines,
            stock=self.stock if stock is None else stock,
            connected_outlets=self.connected_outlets,
            primary_outlet=self.primary_outlet,
        )

    def held(self, outlet: str, product: str) -> int:
        return max(0, self.stock.get(outlet, {}).get(product, 0))

    def covered_by(self, outlets: tuple[str, ...]) -> bool:
        demand: dict[str, int] = {}
        for d in self.lines:
            demand[d.product_id] = demand.get(d.product_id, 0) + d.quantity
        return all(sum(self.held(o, p) for o in outlets) >= n for p, n in demand.items())


@st.composite
def routing_cases(draw: st.DrawFn, max_outlets: int = EXACT_SEARCH_MAX_OUTLETS) -> Case:
    outlets = [f"o{n}" for n in range(draw(st.integers(1, max_outlets)))]
    lines = [
        line(n, draw(st.sampled_from(PRODUCTS)), draw(st.integers(0, 6))) for n in range(1, draw(st.integers(1, 5)) + 1)
    ]
    if all(d.quantity == 0 for d in lines):
        lines[0] = line(lines[0].line_id, lines[0].product_id, 1)
    stock = {
        o: {p: draw(st.integers(-3, 8)) for p in draw(st.lists(st.sampled_from(PRODUCTS), unique=True))}
        for o in outlets
    }
    return Case(lines, stock, outlets, draw(st.sampled_from(outlets)))


@settings(max_examples=300, deadline=None)
@given(routing_cases())
def test_every_line_is_assigned_in_full(case: Case) -> None:
    plan = case.route()
    for d in case.lines:
        assert plan.assigned_quantity(d.line_id) == d.quantity


@settings(max_examples=300, deadline=None)
@given(routing_cases())
def test_no_outlet_gets_more_than_it_holds_except_the_primarys_remainder(case: Case) -> None:
    plan = case.route()
    for assignment in plan.assignments:
        from_stock: dict[str, int] = {}
        for part in assignment.lines:
            from_stock[part.product_id] = from_stock.get(part.product_id, 0) + part.quantity - part.beyond_stock
            if part.beyond_stock:
                assert assignment.outlet_id == case.primary_outlet
                assert plan.strategy == "unstocked"
        for product, quantity in from_stock.items():
            assert quantity <= case.held(assignment.outlet_id, product)
    if plan.strategy != "unstocked":
        assert plan.beyond_stock == 0


@settings(max_examples=300, deadline=None)
@given(routing_cases())
def test_a_single_outlet_is_chosen_whenever_one_holds_the_whole_order(case: Case) -> None:
    plan = case.route()
    order = [case.primary_outlet] + [o for o in case.connected_outlets if o != case.primary_outlet]
    capable = [o for o in order if case.covered_by((o,))]
    if capable:
        assert plan.strategy == "single_outlet"
        assert plan.outlet_ids == [capable[0]]
    else:
        assert plan.strategy != "single_outlet"


@settings(max_examples=300, deadline=None)
@given(routing_cases())
def test_split_uses_the_fewest_outlets_possible(case: Case) -> None:
    plan = case.route()
    if plan.strategy != "split":
        return
    outlets = case.connected_outlets
    fewest = next(k for k in range(1, len(outlets) + 1) if any(case.covered_by(c) for c in combinations(outlets, k)))
    assert len(plan.assignments) == fewest


@settings(max_examples=200, deadline=None)
@given(routing_cases(), st.randoms(use_true_random=False))
def test_routing_is_deterministic_whatever_the_order_of_the_stock_mapping(case: Case, rnd: Random) -> None:
    outlets = list(case.stock)
    rnd.shuffle(outlets)
    shuffled = {o: dict(reversed(list(case.stock[o].items()))) for o in outlets}
    assert case.route(shuffled) == case.route()


@settings(max_examples=100, deadline=None)
@given(routing_cases(max_outlets=14))
def test_greedy_cover_for_many_outlets_keeps_every_invariant(case: Case) -> None:
    plan = case.route()
    for d in case.lines:
        assert plan.assigned_quantity(d.line_id) == d.quantity
    for assignment in plan.assignments:
        for part in assignment.lines:
            assert part.quantity - part.beyond_stock <= case.held(assignment.outlet_id, part.product_id)
    if plan.strategy == "split":
        assert case.covered_by(tuple(plan.outlet_ids))


@settings(max_examples=300, deadline=None)
@given(routing_cases())
def test_unstocked_orders_add_the_fewest_outlets_to_the_primary(case: Case) -> None:
    plan = case.route()
    if plan.strategy != "unstocked":
        return
    demand: dict[str, int] = {}
    for d in case.lines:
        demand[d.product_id] = demand.get(d.product_id, 0) + d.quantity
    outlets = case.connected_outlets
    target = {p: min(n, sum(case.held(o, p) for o in outlets)) for p, n in demand.items()}
    others = [o for o in outlets if o != case.primary_outlet]

    def covers(chosen: tuple[str, ...]) -> bool:
        return all(sum(case.held(o, p) for o in chosen) >= n for p, n in target.items())

    fewest = next(
        k for k in range(len(others) + 1) if any(covers((case.primary_outlet, *c)) for c in combinations(others, k))
    )
    assert plan.outlet_ids[0] == case.primary_outlet
    assert len(plan.assignments) == 1 + fewest
