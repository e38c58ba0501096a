"""Which outlet(s) fulfil an eCom order (seed 004), as a pure function of the order lines and per-outlet stock.

Rules, in order:
1. A shipping method tied to an outlet sends the whole order there, whatever its stock (a pickup must happen at
   the store the buyer chose). A tie to an outlet that is not connected does not route (seed 002: disconnecting a
   location disconnects its shipping methods): the order is routed by rules 2 and 3 as if the method had none.
2. Otherwise one outlet that holds every line in full.
3. Otherwise the order is split by available stock over as few outlets as possible, never giving an outlet more
   of a product than it holds. Units that no connected outlet holds go to the primary outlet (`beyond_stock`).

Choices the seeds leave open:
- Candidate order: the primary outlet first, then `connected_outlets` in the connection's order (the merchant
  controls it). Every tie is broken by this order, so equal inputs always give the same plan.
- Stock below zero counts as 0, and an outlet or product missing from `stock` holds 0.
- "As few outlets as possible" is exact for up to `EXACT_SEARCH_MAX_OUTLETS` candidates: outlet sets are tried by
  increasing size, each size in candidate order, and the first set whose summed stock covers every product wins.
  Above that it is a greedy set cover (repeatedly take the outlet that covers the most missing units), pruned of
  outlets the others make redundant; it still finds a single outlet whenever one holds the whole order.
- When the outlets together cannot cover the order, the primary outlet takes the remainder anyway, so it is part
  of the set from the start and the search minimises the other outlets around it.
- Within the chosen set a line goes whole to the first outlet that can hold it; otherwise it is filled from the
  outlets in candidate order. Lines of the same product share that outlet's stock.

Where the levels come from is the importer's choice (`orders.importer`): the POS, or the stock state the stock worker
keeps per variant and outlet (`cached_levels`), which routes the same as a POS read holding the same levels.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations

from pos_ecom_sync.models.orders import AssignedLine, FulfillmentPlan, OutletAssignment, RoutingStrategy
from pos_ecom_sync.models.stock import OutletLevel

# 2^8 - 1 = 255 subsets at most: trivial to enumerate, and few retailers connect more outlets to one shop.
EXACT_SEARCH_MAX_OUTLETS = 8

Stock = Mapping[str, Mapping[str, int]]


def candidate_outlets(connected_outlets: Sequence[str], primary_outlet: str) -> list[str]:
    """The outlets routing may send an order to, in tie-breaking order: the primary first, then the connected ones."""
    return _candidate_order(connected_outlets, primary_outlet)


def cached_levels(levels: Mapping[str, OutletLevel], candidates: Sequence[str]) -> dict[str, int] | None:
    """A product's level at each candidate outlet as its stock state holds it (`VariantStockState.levels`); None when
    the state lacks any candidate (never seen there: only the POS knows, and a missing level is not 0)."""
    if any(outlet not in levels for outlet in candidates):
        return None
    return {outlet: levels[outlet].level for outlet in candidates}


@dataclass(frozen=True)
class LineDemand:
    """An order line once matched to its POS product."""

    line_id: int
    product_id: str
    quantity: int


def route_order(
    lines: Sequence[LineDemand],
    *,
    stock: Stock,
    connected_outlets: Sequence[str],
    primary_outlet: str,
    shipping_method_outlet: str | None = None,
) -> FulfillmentPlan:
    """Plan the fulfillment of `lines`; `stock` is outlet id -> POS product id -> inventory level."""
    wanted = _validated(lines)
    candidates = _candidate_order(connected_outlets, primary_outlet)
    available = {
        outlet: {product: max(0, int(level)) for product, level in stock.get(outlet, {}).items()}
        for outlet in candidates
    }

    if shipping_method_outlet and shipping_method_outlet in available:
        return FulfillmentPlan(
            strategy="shipping_method",
            assignments=(_whole_order_to(shipping_method_outlet, wanted, available[shipping_method_outlet]),),
        )

    demand: dict[str, int] = {}
    for line in wanted:
        demand[line.product_id] = demand.get(line.product_id, 0) + line.quantity
    total = {product: sum(available[o].get(product, 0) for o in candidates) for product in demand}
    target = {product: min(needed, total[product]) for product, needed in demand.items()}
    short = any(target[product] < needed for product, needed in demand.items())

    chosen = _fewest_outlets(candidates, available, target, required=(primary_outlet,) if short else ())
    assignments = _allocate(wanted, chosen, available, primary_outlet)
    strategy: RoutingStrategy = "unstocked" if short else "single_outlet" if len(assignments) == 1 else "split"
    return FulfillmentPlan(strategy=strategy, assignments=assignments)


def _validated(lines: Sequence[LineDemand]) -> list[LineDemand]:
    seen: set[int] = set()
    for line in lines:
        if line.quantity < 0:
            raise ValueError(f"order line {line.line_id} has a negative quantity")
        if line.line_id in seen:
            raise ValueError(f"order line {line.line_id} appears twice")
        seen.add(line.line_id)
    wanted = [line for line in lines if line.quantity > 0]
    if not wanted:
        raise ValueError("the order has no line with a quantity to fulfil")
    return wanted


def _candidate_order(connected_outlets: Sequence[str], primary_outlet: str) -> list[str]:
    ordered = [primary_outlet]
    for outlet in connected_outlets:
        if outlet not in ordered:
            ordered.append(outlet)
    return ordered


def _whole_order_to(outlet: str, lines: Sequence[LineDemand], held: Mapping[str, int]) -> OutletAssignment:
    left = dict(held)
    assigned = []
    for line in lines:
        from_stock = min(line.quantity, left.get(line.product_id, 0))
        left[line.product_id] = left.get(line.product_id, 0) - from_stock
        assigned.append(
            AssignedLine(
                line_id=line.line_id,
                product_id=line.product_id,
                quantity=line.quantity,
                beyond_stock=line.quantity - from_stock,
            )
        )
    return OutletAssignment(outlet_id=outlet, lines=tuple(assigned))


def _covers(outlets: Sequence[str], available: Mapping[str, Mapping[str, int]], target: Mapping[str, int]) -> bool:
    return all(
        sum(available[o].get(product, 0) for o in outlets) >= needed for product, needed in target.items() if needed
    )


def _fewest_outlets(
    candidates: Sequence[str],
    available: Mapping[str, Mapping[str, int]],
    target: Mapping[str, int],
    required: tuple[str, ...],
) -> list[str]:
    """The smallest set of candidates (containing `required`) whose stock covers `target`, in candidate order."""
    optional = [o for o in candidates if o not in required]
    if len(candidates) <= EXACT_SEARCH_MAX_OUTLETS:
        for size in range(len(optional) + 1):
            for extra in combinations(optional, size):
                chosen = [*required, *extra]
                if _covers(chosen, available, target):
                    return _in_order(chosen, candidates)
        raise AssertionError("the candidates together always cover the target")  # target <= total stock

    chosen = list(required)
    missing = {p: max(0, n - sum(available[o].get(p, 0) for o in chosen)) for p, n in target.items()}
    while any(missing.values()):
        best = max(
            (o for o in optional if o not in chosen),
            key=lambda o: sum(min(n, available[o].get(p, 0)) for p, n in missing.items()),
        )  # max() keeps the first of equals: candidate order breaks ties
        chosen.append(best)
        missing = {p: max(0, n - available[best].get(p, 0)) for p, n in missing.items()}
    # Greedy can pick an outlet that later picks make redundant; drop those, latest pick first.
    for outlet in reversed(chosen[len(required) :]):
        rest = [o for o in chosen if o != outlet]
        if _covers(rest, available, target):
            chosen = rest
    return _in_order(chosen, candidates)


def _in_order(chosen: Sequence[str], candidates: Sequence[str]) -> list[str]:
    return [o for o in candidates if o in chosen]


def _allocate(
    lines: Sequence[LineDemand],
    outlets: Sequence[str],
    available: Mapping[str, Mapping[str, int]],
    primary_outlet: str,
) -> tuple[OutletAssignment, ...]:
    left = {o: dict(available[o]) for o in outlets}
    per_outlet: dict[str, list[AssignedLine]] = {o: [] for o in [*outlets, primary_outlet]}

    def give(outlet: str, line: LineDemand, quantity: int, beyond_stock: int = 0) -> None:
        if beyond_stock == 0:
            left[outlet][line.product_id] -= quantity
        per_outlet[outlet].append(
            AssignedLine(line_id=line.line_id, product_id=line.product_id, quantity=quantity, beyond_stock=beyond_stock)
        )

    for line in lines:
        whole = next((o for o in outlets if left[o].get(line.product_id, 0) >= line.quantity), None)
        if whole is not None:
            give(whole, line, line.quantity)
            continue
        need = line.quantity
        for outlet in outlets:
            take = min(need, left[outlet].get(line.product_id, 0))
            if take:
                give(outlet, line, take)
                need -= take
        if need:
            _add_beyond_stock(per_outlet[primary_outlet], line, need)

    return tuple(OutletAssignment(outlet_id=o, lines=tuple(assigned)) for o, assigned in per_outlet.items() if assigned)


def _add_beyond_stock(assigned: list[AssignedLine], line: LineDemand, need: int) -> None:
    """Fold the units nobody holds into the primary's part of the line, so a line appears once per outlet."""
    for n, existing in enumerate(assigned):
        if existing.line_id == line.line_id:
            assigned[n] = existing.model_copy(
                update={"quantity": existing.quantity + need, "beyond_stock": existing.beyond_stock + need}
            )
            return
    assigned.append(AssignedLine(line_id=line.line_id, product_id=line.product_id, quantity=need, beyond_stock=need))
