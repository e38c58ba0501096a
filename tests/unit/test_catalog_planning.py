"""Catalog planning: the rules one by one, then properties against an in-memory eCom driven like the worker will."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pos_ecom_sync.catalog.actions import (
    Action,
    CreateProduct,
    CreateVariant,
    DeleteProduct,
    DeleteVariant,
    HideProduct,
    RefuseCreate,
    ReplaceProductImages,
    UpdateProduct,
    UpdateVariant,
)
from pos_ecom_sync.catalog.mapping import DesiredProduct
from pos_ecom_sync.catalog.planning import (
    CatalogPlan,
    CatalogSettings,
    check_against_ecom,
    plan_catalog_sync,
    relinked,
    state_after,
    state_after_lost,
    state_after_plan,
    state_before,
    state_shown,
    state_to_rewrite,
)
from pos_ecom_sync.models.catalog import CatalogState
from pos_ecom_sync.models.connection import Connection
from pos_ecom_sync.profiles.xseries.mapping import PosProduct

from tests.support import map_xseries_family

BIG = CatalogSettings(product_cap=1_000_000)
HIDE = CatalogSettings(delete_policy="hide", product_cap=1_000_000)
MERCHANT_SKU = "ECOM-ONLY"

# --- a tiny eCom and the worker's loop, as the real worker will run them --------------------------------------------


@dataclass
class FakeEcom:
    products: dict[int, dict[str, Any]] = field(default_factory=dict)
    variants: dict[int, dict[str, Any]] = field(default_factory=dict)
    last_id: int = 100
    calls: int = 0
    refusals: list[str] = field(default_factory=list)

    def new_id(self) -> int:
        self.last_id += 1
        return self.last_id

    def variants_of(self, product_id: int) -> dict[int, dict[str, Any]]:
        return {vid: v for vid, v in self.variants.items() if v["product"] == product_id}

    def create_product(self, body: dict[str, Any]) -> int:
        # Like eCom, a new product comes with an untouched default variant.
        product_id = self.new_id()
        self.products[product_id] = dict(body)
        self.variants[self.new_id()] = {"product": product_id, "isDefault": True, "sku": "", "articleCode": ""}
        return product_id

    def find_product_by_sku(self, skus: tuple[str, ...]) -> int | None:
        wanted = set(skus)
        return next((v["product"] for v in self.variants.values() if {v["sku"], v["articleCode"]} & wanted), None)

    def find_half_made_product(self, titles: tuple[str, ...]) -> int | None:
        for product_id, product in self.products.items():
            siblings = list(self.variants_of(product_id).values())
            untouched = len(siblings) == 1 and not siblings[0]["sku"] and not siblings[0]["articleCode"]
            if product["title"] in titles and untouched:
                return product_id
        return None


def write_product(fake: FakeEcom, product_id: int, action: CreateProduct | UpdateProduct) -> None:
    fake.products[product_id].update(
        action.payload.ecom_body(), brand=action.payload.brand, category=action.payload.category
    )


def write_variant(fake: FakeEcom, variant_id: int, action: CreateVariant | UpdateVariant, body: dict[str, Any]) -> None:
    fake.variants[variant_id].update(body, image=action.payload.image_url)


def execute(action: Action, fake: FakeEcom, state: CatalogState) -> int | None:
    """One action against eCom; returns the id a create made or found."""
    if not isinstance(action, RefuseCreate):
        fake.calls += 1
    match action:
        case CreateProduct():
            product_id = (
                fake.find_product_by_sku(action.lookup_skus)
                or (fake.find_half_made_product(action.resume_titles) if action.resume_titles else None)
                or fake.create_product(action.payload.ecom_body())
            )
            write_product(fake, product_id, action)
            fake.products[product_id]["images"] = list(action.image_urls)
            return product_id
        case UpdateProduct():
            write_product(fake, action.ecom_id, action)
        case ReplaceProductImages():
            fake.products[action.ecom_id]["images"] = list(action.image_urls)
        case HideProduct():
            fake.products[action.ecom_id].update(action.ecom_body())
        case DeleteProduct():
            fake.products.pop(action.ecom_id, None)
            for variant_id in fake.variants_of(action.ecom_id):
                del fake.variants[variant_id]
        case CreateVariant():
            parent_id = action.ecom_product_id or state.ecom_product_id
            assert parent_id is not None
            siblings = fake.variants_of(parent_id)
            same_sku = (vid for vid, v in siblings.items() if action.payload.sku and v["sku"] == action.payload.sku)
            untouched = (
                vid for vid, v in siblings.items() if v.get("isDefault") and not v["sku"] and not v["articleCode"]
            )
            variant_id = next(same_sku, None) or next(untouched, None) or fake.new_id()
            fake.variants.setdefault(variant_id, {"product": parent_id})
            write_variant(fake, variant_id, action, action.ecom_body())
            return variant_id
        case UpdateVariant():
            write_variant(fake, action.ecom_variant_id, action, action.payload.ecom_body())
        case DeleteVariant():
            fake.variants.pop(action.ecom_variant_id, None)  # a 404 on delete is success
        case RefuseCreate():
            fake.refusals.append(action.reason)
    return None


def apply(plan: CatalogPlan, fake: FakeEcom, state: CatalogState, *, crash_at: int | None = None) -> CatalogState:
    """The worker's loop. `crash_at`: die right after that action's eCom call, before recording it."""
    for index, action in enumerate(plan.actions):
        state = state_before(state, action)
        created_id = execute(action, fake, state)
        if index == crash_at:
            return state
        state = state_after(state, action, created_id=created_id)
    return state_after_plan(state, plan)


Snapshot = tuple[PosProduct, list[PosProduct]]


def plan_for(snapshot: Snapshot, state: CatalogState, rules: CatalogSettings = BIG) -> CatalogPlan:
    parent, variants = snapshot
    return plan_catalog_sync(
        map_xseries_family(parent, variants), False, state, rules, catalog_count=len(state.variants)
    )


def sync(
    snapshot: Snapshot, fake: FakeEcom, state: CatalogState, rules: CatalogSettings = BIG, crash_at: int | None = None
) -> CatalogState:
    return apply(plan_for(snapshot, state, rules), fake, state, crash_at=crash_at)


# --- a POS family that changes over time ----------------------------------------------------------------------------


PARENT_FIELDS = {"rename": "name", "active": "active", "describe": "description"}


class PosFamily:
    """X-Series rows of one family; every change stamps the row with the next global version."""

    def __init__(self, variant_count: int) -> None:
        self.version = 5_000
        self.added = 0
        self.parent: dict[str, Any] = {
            "id": "p",
            "name": "Tee",
            "sku": "SKU-P",
            "active": True,
            "price_including_tax": 11.5,
            "price_excluding_tax": 10.0,
            "brand": {"name": "Dockside"},
            "version": self.bump(),
        }
        self.variants: dict[str, dict[str, Any]] = {}
        for _ in range(variant_count):
            self.add_variant()

    def bump(self) -> int:
        self.version += 7  # global to the retailer: gaps between one family's versions
        return self.version

    def live_ids(self) -> list[str]:
        return sorted(vid for vid, v in self.variants.items() if v.get("deleted_at") is None)

    def add_variant(self) -> None:
        variant_id = f"v{self.added:02d}"
        self.added += 1
        self.variants[variant_id] = {
            "id": variant_id,
            "name": self.parent["name"],
            "variant_parent_id": "p",
            "sku": f"SKU-{variant_id}",
            "variant_options": [{"name": "Size", "value": "M"}, {"name": "Cut", "value": variant_id}],
            "product_codes": [{"type": "EAN", "code": f"94000{variant_id}"}],
            "price_including_tax": 11.5,
            "price_excluding_tax": 10.0,
            "version": self.bump(),
        }

    def edit(self, operation: tuple[Any, ...]) -> bool:
        """Apply one POS change; False when it cannot apply (removing from a family with no variant left)."""
        kind, *args = operation
        if kind == "add_variant":
            self.add_variant()
            return True
        if kind in PARENT_FIELDS:
            return self._stamp(self.parent, **{PARENT_FIELDS[kind]: args[0]})
        if kind == "parent_images":
            return self._stamp(self.parent, images=[{"url": f"https://img/p{args[0]}-{i}.jpg"} for i in range(args[0])])
        live = self.live_ids()
        if kind == "remove_variant":
            return bool(live) and self._stamp(self.variants[live[args[0] % len(live)]], deleted_at="2026-01-01T00:00Z")
        # Variant edits hit the parent row when it is the family's only sellable row (a simple product).
        target = self.variants[live[args[0] % len(live)]] if live else self.parent
        match kind:
            case "price":
                changes = {"price_including_tax": args[1] * 1.15, "price_excluding_tax": args[1]}
            case "option":
                changes = {
                    "variant_options": [{"name": "Size", "value": args[1]}, {"name": "Cut", "value": target["id"]}]
                }
            case "variant_images":
                changes = {"images": [{"url": f"https://img/{target['id']}-{i}.jpg"} for i in range(args[1])]}
            case _:
                changes = {"supply_price": args[1]}
        return self._stamp(target, **changes)

    def delete(self) -> None:
        self._stamp(self.parent, deleted_at="2026-02-01T00:00:00+00:00")

    def _stamp(self, row: dict[str, Any], **changes: Any) -> bool:
        row.update(changes, version=self.bump())
        return True

    def snapshot(self) -> Snapshot:
        # Deleted variant rows are included (X-Series `deleted=true`): a removal carries its version.
        return (
            PosProduct.model_validate(copy.deepcopy(self.parent)),
            [PosProduct.model_validate(copy.deepcopy(v)) for v in self.variants.values()],
        )


VARIANT_INDEX = st.integers(0, 9)
OPERATIONS = st.one_of(
    st.tuples(st.just("rename"), st.sampled_from(["Tee", "Harbor Tee", "Tee II"])),
    st.tuples(st.just("active"), st.booleans()),
    st.tuples(st.just("describe"), st.sampled_from(["", "<p>Soft.</p>"])),
    st.tuples(st.just("parent_images"), st.integers(0, 3)),
    st.tuples(st.just("price"), VARIANT_INDEX, st.sampled_from([8.0, 10.0, 12.5]), st.sampled_from([None, 9.99])),
    st.tuples(st.just("option"), VARIANT_INDEX, st.sampled_from(["S", "M", "L"])),
    st.tuples(st.just("variant_images"), VARIANT_INDEX, st.integers(0, 2)),
    st.tuples(st.just("supply_price"), VARIANT_INDEX, st.sampled_from([1.0, 2.0])),
    st.tuples(st.just("add_variant")),
    st.tuples(st.just("remove_variant"), VARIANT_INDEX),
)


# --- properties ----------------------------------------------------------------------------------------------------


def assert_ecom_holds(
    fake: FakeEcom, state: CatalogState, desired: DesiredProduct, merchant_variant: int | None
) -> None:
    assert list(fake.products) == [state.ecom_product_id]
    product_id = state.ecom_product_id
    assert product_id is not None
    product = fake.products[product_id]
    assert {key: product[key] for key in desired.payload.ecom_body()} == desired.payload.ecom_body()
    assert (product["brand"], product["category"]) == (desired.payload.brand, desired.payload.category)
    assert product["images"] == list(desired.image_urls)

    ours = {vid: v for vid, v in fake.variants_of(product_id).items() if vid != merchant_variant}
    assert set(ours) == state.ecom_variant_ids
    expected = sorted(({**v.payload.ecom_body(), "image": v.payload.image_url} for v in desired.variants), key=str)
    actual = sorted(({key: v[key] for key in expected[0]} for v in ours.values()), key=str)
    assert actual == expected


@settings(max_examples=300, deadline=None)
@given(
    initial_variants=st.integers(0, 3),
    operations=st.lists(OPERATIONS, max_size=12),
    ends_deleted=st.booleans(),
    policy=st.sampled_from(["delete", "hide"]),
    data=st.data(),
)
def test_any_delivery_order_with_duplicates_and_crashes_converges_on_the_final_pos_state(
    initial_variants: int,
    operations: list[tuple[Any, ...]],
    ends_deleted: bool,
    policy: str,
    data: st.DataObject,
) -> None:
    # Given: the family's snapshot after every POS change (each a full family read at its version)
    family = PosFamily(initial_variants)
    events = [family.snapshot()]
    for operation in operations:
        if family.edit(operation):
            events.append(family.snapshot())
    if ends_deleted:
        family.delete()
        events.append(family.snapshot())
    extra = data.draw(st.lists(st.integers(0, len(events) - 1), max_size=len(events)), label="duplicates")
    delivered = data.draw(st.permutations([*events, *(events[i] for i in extra)]), label="order")
    crash_points = data.draw(
        st.lists(st.none() | st.integers(0, 6), min_size=len(delivered), max_size=len(delivered)), label="crashes"
    )
    rules = CatalogSettings(delete_policy="hide" if policy == "hide" else "delete", product_cap=1_000_000)
    fake, state = FakeEcom(), CatalogState()
    merchant_variant: int | None = None
    old_priced: list[int] = []

    # When: delivered in any order, duplicated, the worker sometimes dying mid-plan (the message is redelivered)
    for snapshot, crash_at in zip(delivered, crash_points, strict=True):
        state = sync(snapshot, fake, state, rules, crash_at=crash_at)
        if crash_at is not None:
            state = sync(snapshot, fake, state, rules)
        if merchant_variant is None and state.ecom_product_id in fake.products:
            # The merchant edits eCom: a variant of their own, a compare-at price, a subtitle.
            product_id = state.ecom_product_id
            assert product_id is not None
            merchant_variant = fake.new_id()
            fake.variants[merchant_variant] = {"product": product_id, "sku": MERCHANT_SKU, "articleCode": MERCHANT_SKU}
            fake.products[product_id]["subtitle"] = "merchant's"
            old_priced = sorted(state.ecom_variant_ids)
            for variant_id in old_priced:
                fake.variants[variant_id]["oldPriceIncl"] = 99.0

    # Then: eCom holds the mapping of the final POS state, eCom-only data intact, and a replay costs nothing
    final = map_xseries_family(*events[-1])
    if final.deleted and policy == "delete":
        assert fake.products == {} and fake.variants == {}
    elif final.deleted:
        assert len(fake.products) <= 1
        for product in fake.products.values():
            assert (product["visibility"], product["isVisible"], product["subtitle"]) == ("hidden", False, "merchant's")
            assert merchant_variant in fake.variants
    else:
        assert_ecom_holds(fake, state, final, merchant_variant)
        assert merchant_variant in fake.variants
        assert fake.products[state.ecom_product_id or 0]["subtitle"] == "merchant's"
        for variant_id in old_priced:
            if variant_id in fake.variants:
                assert fake.variants[variant_id]["oldPriceIncl"] == 99.0
    replay = plan_catalog_sync(final, False, state, rules, catalog_count=len(state.variants))
    assert replay.actions == ()


@settings(max_examples=100, deadline=None)
@given(
    managed_elsewhere=st.integers(0, 12),
    cap=st.integers(0, 12),
    initial_variants=st.integers(0, 4),
    added=st.integers(0, 4),
)
def test_the_cap_is_never_exceeded_and_every_refusal_says_why(
    managed_elsewhere: int, cap: int, initial_variants: int, added: int
) -> None:
    family = PosFamily(initial_variants)
    rules = CatalogSettings(product_cap=cap)
    fake, state = FakeEcom(), CatalogState()

    def step() -> CatalogState:
        count = managed_elsewhere + len(state.variants)
        plan = plan_catalog_sync(map_xseries_family(*family.snapshot()), False, state, rules, catalog_count=count)
        for refusal in plan.refused:
            assert f"{cap:,}" in refusal.reason and refusal.pos_ids
        return apply(plan, fake, state)

    state = step()
    for _ in range(added):
        family.add_variant()
        state = step()
    managed = len(state.variants)
    assert managed == 0 or managed_elsewhere + managed <= cap
    if state.ecom_product_id is None:
        assert fake.products == {} and fake.calls == 0


# --- the rules one by one ------------------------------------------------------------------------------------------


def created(family: PosFamily, rules: CatalogSettings = BIG) -> tuple[FakeEcom, CatalogState]:
    fake = FakeEcom()
    return fake, sync(family.snapshot(), fake, CatalogState(), rules)


def test_new_product_is_find_or_create_with_its_variants() -> None:
    family = PosFamily(2)
    plan = plan_for(family.snapshot(), CatalogState())
    create, *variants = plan.actions
    assert isinstance(create, CreateProduct)
    assert create.lookup_skus == ("SKU-v00", "SKU-v01")
    assert [type(a) for a in variants] == [CreateVariant, CreateVariant]
    assert all(isinstance(a, CreateVariant) and a.ecom_product_id is None for a in variants)


def test_unchanged_family_costs_no_ecom_call() -> None:
    family = PosFamily(2)
    fake, state = created(family)
    calls = fake.calls
    family.edit(("supply_price", 0, 3.0))  # a newer version, nothing eCom sees
    state = sync(family.snapshot(), fake, state)
    assert fake.calls == calls
    assert state.applied_version == family.version


def test_stale_snapshot_is_dropped() -> None:
    family = PosFamily(1)
    old = family.snapshot()
    family.edit(("rename", "Harbor Tee"))
    _, state = created(family)
    plan = plan_for(old, state)
    assert plan.stale and plan.actions == ()
    assert "stale" in plan.note
    assert state_after_plan(state, plan) == state


def test_stale_variant_row_is_not_pushed() -> None:
    family = PosFamily(1)
    old = family.snapshot()
    family.edit(("price", 0, 12.5, None))
    _, state = created(family)
    # Only the variant's own applied version can tell (no family version on record).
    plan = plan_for(old, state.model_copy(update={"applied_version": None}))
    assert plan.actions == ()


def test_only_what_changed_is_sent() -> None:
    family = PosFamily(2)
    fake, state = created(family)
    family.edit(("price", 1, 12.5, None))
    plan = plan_for(family.snapshot(), state)
    assert [(type(a), getattr(a, "pos_id", None)) for a in plan.actions] == [(UpdateVariant, "v01")]
    state = apply(plan, fake, state)
    family.edit(("rename", "Harbor Tee"))
    assert [type(a) for a in plan_for(family.snapshot(), state).actions] == [UpdateProduct]


def test_variant_added_in_pos_is_created_and_removed_one_deleted() -> None:
    family = PosFamily(2)
    fake, state = created(family)
    removed_ecom_id = state.variants["v00"].ecom_variant_id
    family.add_variant()
    family.edit(("remove_variant", 0))
    plan = plan_for(family.snapshot(), state)
    assert DeleteVariant(removed_ecom_id, "v00") in plan.actions
    assert [a.pos_id for a in plan.actions if isinstance(a, CreateVariant)] == ["v02"]
    state = apply(plan, fake, state)
    assert set(state.variants) == {"v01", "v02"}
    assert removed_ecom_id not in fake.variants


def test_variant_added_in_ecom_is_never_touched() -> None:
    family = PosFamily(1)
    fake, state = created(family)
    assert state.ecom_product_id is not None
    fake.variants[999] = {"product": state.ecom_product_id, "sku": MERCHANT_SKU, "articleCode": MERCHANT_SKU}
    for operation in [("add_variant",), ("remove_variant", 0), ("rename", "Tee II"), ("option", 0, "L")]:
        family.edit(operation)
        plan = plan_for(family.snapshot(), state)
        assert all(getattr(a, "ecom_variant_id", None) != 999 for a in plan.actions)
        state = apply(plan, fake, state)
    assert fake.variants[999]["sku"] == MERCHANT_SKU


def test_activation_flows_one_way_pos_to_ecom() -> None:
    family = PosFamily(1)
    fake, state = created(family)
    product_id = state.ecom_product_id or 0
    family.edit(("active", False))
    state = sync(family.snapshot(), fake, state)
    assert fake.products[product_id]["visibility"] == "hidden"
    fake.products[product_id].update(visibility="visible", isVisible=True)  # merchant enables it in eCom
    assert plan_for(family.snapshot(), state).actions == ()  # nothing flows back, nothing re-pushed until a POS change
    family.edit(("active", True))
    state = sync(family.snapshot(), fake, state)
    assert fake.products[product_id]["isVisible"] is True


def test_delete_in_pos_deletes_in_ecom_by_default() -> None:
    family = PosFamily(2)
    fake, state = created(family)
    product_id = state.ecom_product_id or 0
    family.delete()
    plan = plan_for(family.snapshot(), state)
    assert plan.actions == (DeleteProduct(product_id),)
    state = apply(plan, fake, state)
    assert fake.products == {} and state.variants == {} and state.deleted_in_pos


def test_hide_policy_unpublishes_and_keeps_ecom_only_data() -> None:
    family = PosFamily(1)
    fake, state = created(family, HIDE)
    product_id = state.ecom_product_id or 0
    fake.products[product_id]["subtitle"] = "merchant's"
    family.delete()
    plan = plan_for(family.snapshot(), state, HIDE)
    assert plan.actions == (HideProduct(product_id),)
    state = apply(plan, fake, state)
    assert fake.products[product_id]["subtitle"] == "merchant's"
    assert fake.products[product_id]["visibility"] == "hidden"
    assert len(fake.variants_of(product_id)) == 1
    assert plan_for(family.snapshot(), state, HIDE).actions == ()


def test_delete_with_no_snapshot_uses_the_connection_policy() -> None:
    connection = Connection(
        connection_id="shop-1",
        pos_base_url="https://x.retail.lightspeed.app",
        ecom_base_url="https://api.webshopapp.com",
        delete_policy="hide",
    )
    state = CatalogState(ecom_product_id=7, applied_version=10)
    plan = plan_catalog_sync(None, True, state, connection, catalog_count=1)
    assert plan.actions == (HideProduct(7),)
    assert state_after_plan(state, plan).applied_version == 10


def test_delete_of_a_product_never_synced_records_a_tombstone_only() -> None:
    family = PosFamily(1)
    family.delete()
    plan = plan_for(family.snapshot(), CatalogState())
    assert plan.actions == ()
    assert state_after_plan(CatalogState(), plan).deleted_in_pos


def test_new_product_over_the_cap_creates_nothing_and_says_why() -> None:
    family = PosFamily(3)
    rules = CatalogSettings(product_cap=5_000)
    plan = plan_catalog_sync(map_xseries_family(*family.snapshot()), False, CatalogState(), rules, catalog_count=4_998)
    (refusal,) = plan.actions
    assert isinstance(refusal, RefuseCreate)
    assert refusal.pos_ids == ("v00", "v01", "v02")
    assert "4,998 of 5,000" in refusal.reason and "needs 3" in refusal.reason
    fake = FakeEcom()
    apply(plan, fake, CatalogState())
    assert fake.products == {} and fake.calls == 0 and fake.refusals == [refusal.reason]


def test_existing_product_gets_the_variants_that_fit_and_updates_still_flow() -> None:
    family = PosFamily(1)
    _, state = created(family)
    family.add_variant()
    family.add_variant()
    family.edit(("rename", "Harbor Tee"))
    family.edit(("price", 0, 12.5, None))
    rules = CatalogSettings(product_cap=2)
    plan = plan_catalog_sync(map_xseries_family(*family.snapshot()), False, state, rules, catalog_count=1)
    assert [type(a) for a in plan.actions] == [UpdateProduct, UpdateVariant, CreateVariant, RefuseCreate]
    assert plan.refused[0].pos_ids == ("v02",)
    assert plan.ecom_calls == plan.actions[:3]


def test_variant_deletes_free_room_for_creates_in_the_same_plan() -> None:
    family = PosFamily(1)
    _, state = created(family)
    family.edit(("remove_variant", 0))
    family.add_variant()
    rules = CatalogSettings(product_cap=1)
    plan = plan_catalog_sync(map_xseries_family(*family.snapshot()), False, state, rules, catalog_count=1)
    assert [type(a) for a in plan.actions] == [DeleteVariant, CreateVariant]


def test_connection_cap_comes_from_the_plan() -> None:
    connection = Connection(
        connection_id="shop-1", pos_base_url="https://x.retail.lightspeed.app", ecom_base_url="https://e.example"
    )
    plan = plan_catalog_sync(
        map_xseries_family(*PosFamily(1).snapshot()), False, CatalogState(), connection, catalog_count=5_000
    )
    assert isinstance(plan.actions[0], RefuseCreate)
    assert CatalogSettings.of(connection) == CatalogSettings(delete_policy="delete", product_cap=5_000)


@pytest.mark.parametrize("crash_at", [0, 1, 2])
def test_create_is_exactly_once_when_the_worker_dies_before_recording(crash_at: int) -> None:
    family = PosFamily(2)
    fake = FakeEcom()
    state = sync(family.snapshot(), fake, CatalogState(), crash_at=crash_at)
    state = sync(family.snapshot(), fake, state)
    assert len(fake.products) == 1
    assert len(fake.variants) == 2
    assert state_after_plan(state, plan_for(family.snapshot(), state)) == state


def test_half_made_product_is_found_even_after_a_rename() -> None:
    # Given: the worker died right after POST /products (no variant has a SKU yet), then the POS renamed it
    family = PosFamily(1)
    fake = FakeEcom()
    state = sync(family.snapshot(), fake, CatalogState(), crash_at=0)
    assert state.create_intents == ("Tee",) and state.ecom_product_id is None
    family.edit(("rename", "Harbor Tee"))
    # When
    plan = plan_for(family.snapshot(), state)
    state = apply(plan, fake, state)
    # Then
    assert isinstance(plan.actions[0], CreateProduct) and plan.actions[0].resume_titles == ("Tee",)
    assert len(fake.products) == 1
    assert fake.products[state.ecom_product_id or 0]["title"] == "Harbor Tee"
    assert state.create_intents == ()


def test_new_image_set_relinks_the_variants_pointing_at_one() -> None:
    # Given: each variant shows its own photo
    family = PosFamily(2)
    family.edit(("variant_images", 0, 1))
    family.edit(("variant_images", 1, 1))
    _, state = created(family)
    # When: the parent gets photos; the variants' own choice is unchanged, but images are uploaded anew (new ids)
    family.edit(("parent_images", 2))
    plan = plan_for(family.snapshot(), state)
    # Then
    assert [(type(a), getattr(a, "pos_id", None)) for a in plan.actions] == [
        (ReplaceProductImages, None),
        (UpdateVariant, "v00"),
        (UpdateVariant, "v01"),
    ]


def test_removal_is_not_inferred_from_a_snapshot_older_than_the_variant() -> None:
    # Given: a variant created, its plan's family version never recorded (the worker died before the end)
    family = PosFamily(1)
    before_second_variant = family.snapshot()
    family.add_variant()
    _, state = created(family)
    state = state.model_copy(update={"applied_version": None})
    # When: a snapshot from before that variant existed comes late
    plan = plan_for(before_second_variant, state)
    # Then
    assert not any(isinstance(a, DeleteVariant) for a in plan.actions)


def test_state_after_needs_the_created_id() -> None:
    family = PosFamily(1)
    create = plan_for(family.snapshot(), CatalogState()).actions[0]
    with pytest.raises(ValueError, match="eCom id"):
        state_after(CatalogState(), create)


# --- deleted by hand in eCom (a 404 on a mapped product or variant) -------------------------------------------------


def _lost(state: CatalogState, policy: str, *, product_gone: bool, lost: frozenset[str] = frozenset()) -> CatalogState:
    assert policy in ("recreate", "unlink")
    return state_after_lost(
        state,
        product_gone=product_gone,
        lost_variants=lost if not product_gone else frozenset(state.variants),
        policy="unlink" if policy == "unlink" else "recreate",
        reason="gone in eCom",
        now=1_700_000_000,
    )


def test_a_product_deleted_in_ecom_is_created_again_under_recreate() -> None:
    family = PosFamily(2)
    fake, state = created(family)
    assert state.ecom_product_id is not None
    execute(DeleteProduct(state.ecom_product_id), fake, state)  # the merchant deletes it in eCom
    state = _lost(state, "recreate", product_gone=True)
    assert (state.ecom_product_id, state.variants, state.ecom_images) == (None, {}, {})
    assert state.applied_version == family.version and state.unlinked_reason is None
    family.edit(("rename", "Harbor Tee"))
    plan = plan_for(family.snapshot(), state)
    assert [type(a) for a in plan.actions] == [CreateProduct, CreateVariant, CreateVariant]
    state = apply(plan, fake, state)
    assert_ecom_holds(fake, state, map_xseries_family(*family.snapshot()), None)


def test_a_product_deleted_in_ecom_stays_out_under_unlink_until_relinked() -> None:
    family = PosFamily(2)
    _fake, state = created(family)
    state = _lost(state, "unlink", product_gone=True)
    assert (state.ecom_product_id, state.variants) == (None, {})
    assert (state.unlinked_reason, state.unlinked_at) == ("gone in eCom", 1_700_000_000)
    family.edit(("rename", "Harbor Tee"))
    plan = plan_for(family.snapshot(), state)
    assert plan.actions == () and plan.note == "unlinked: gone in eCom"
    assert state_after_plan(state, plan).unlinked_reason == "gone in eCom"  # a POS edit does not re-link it
    assert next(type(a) for a in plan_for(family.snapshot(), relinked(state)).actions) is CreateProduct


def test_an_unlinked_family_deleted_in_the_pos_plans_no_call() -> None:
    family = PosFamily(1)
    _, state = created(family)
    state = _lost(state, "unlink", product_gone=True)
    family.delete()
    assert plan_for(family.snapshot(), state).actions == ()


@pytest.mark.parametrize("policy", ["recreate", "unlink"])
def test_a_variant_deleted_in_ecom_follows_the_policy_and_its_siblings_keep_syncing(policy: str) -> None:
    family = PosFamily(2)
    fake, state = created(family)
    lost_id = state.variants["v00"].ecom_variant_id
    fake.variants.pop(lost_id)
    state = _lost(state, policy, product_gone=False, lost=frozenset({"v00"}))
    assert set(state.variants) == {"v01"} and state.ecom_product_id is not None
    family.edit(("price", 0, 12.5, None))
    family.edit(("price", 1, 12.5, None))
    plan = plan_for(family.snapshot(), state)
    kinds = [(type(a), getattr(a, "pos_id", None)) for a in plan.actions]
    if policy == "recreate":
        assert kinds == [(UpdateVariant, "v01"), (CreateVariant, "v00")]
        assert not state.unlinked_variants
    else:
        assert kinds == [(UpdateVariant, "v01")]
        assert state.unlinked_variants == {"v00": "gone in eCom"}
        assert (CreateVariant, "v00") in [
            (type(a), getattr(a, "pos_id", None)) for a in plan_for(family.snapshot(), relinked(state)).actions
        ]


# --- checked against eCom (a reconciliation finding): plan against what eCom actually holds ---------------------------


def _answered(fake: FakeEcom, state: CatalogState) -> CatalogState:
    """Record eCom's rows as the answers to our last writes, as the worker does after each write."""
    assert state.ecom_product_id is not None
    state = state_shown(state, product=_product_row(fake, state.ecom_product_id))
    for pos_id, ref in state.variants.items():
        state = state_shown(state, variant=(pos_id, _variant_row(fake, ref.ecom_variant_id)))
    return state


def _product_row(fake: FakeEcom, product_id: int) -> dict[str, Any]:
    return {"id": product_id, **fake.products[product_id], "brand": False}


def _variant_row(fake: FakeEcom, variant_id: int) -> dict[str, Any]:
    row = {"id": variant_id, **fake.variants[variant_id]}
    return row | {"image": {"src": f"https://cdn.ecom/{row['image']}"} if row.get("image") else False}


def _check(fake: FakeEcom, state: CatalogState) -> Any:
    product_id = state.ecom_product_id or 0
    product = _product_row(fake, product_id) if product_id in fake.products else None
    variants = [_variant_row(fake, vid) for vid in fake.variants_of(product_id)] if product else []
    return check_against_ecom(state, product, variants)


def test_a_family_ecom_still_shows_as_we_left_it_costs_no_write_after_the_check() -> None:
    family = PosFamily(2)
    fake, state = created(family)
    state = _answered(fake, state)

    check = _check(fake, state)

    assert not check.edited and not check.lost
    assert plan_for(family.snapshot(), state_to_rewrite(state, check)).actions == ()


def test_pos_owned_fields_edited_in_ecom_are_rewritten_and_ecom_owned_ones_are_left() -> None:
    # Given: a synced family; the merchant edits the title and one variant's price by hand, and sets eCom-only
    # fields (compare-at price, low-stock threshold, subtitle) and adds a variant of their own
    family = PosFamily(2)
    fake, state = created(family)
    state = _answered(fake, state)
    product_id = state.ecom_product_id or 0
    edited_id, other_id = state.variants["v00"].ecom_variant_id, state.variants["v01"].ecom_variant_id
    fake.products[product_id].update(title="Tee SALE", subtitle="Now cheaper")
    fake.variants[edited_id].update(priceIncl=1.0)
    fake.variants[other_id].update(oldPriceIncl=99.0, stockAlert=2)
    fake.variants[999] = {"product": product_id, "sku": "MERCHANT", "articleCode": "", "title": "Gift wrap"}

    # When: the family is checked against eCom and planned
    check = _check(fake, state)
    plan = plan_for(family.snapshot(), state_to_rewrite(state, check))
    apply(plan, fake, state_to_rewrite(state, check))

    # Then: exactly the edited product and variant are written back; eCom's own fields and variant survive
    assert check.product_fields == ("title",) and dict(check.variant_fields) == {"v00": ("priceIncl",)}
    assert [(type(a), getattr(a, "pos_id", None)) for a in plan.actions] == [
        (UpdateProduct, None),
        (UpdateVariant, "v00"),
    ]
    desired = map_xseries_family(*family.snapshot())
    assert fake.products[product_id]["title"] == desired.payload.title
    assert fake.variants[edited_id]["priceIncl"] == desired.variants[0].payload.price_incl
    assert fake.variants[other_id]["oldPriceIncl"] == 99.0 and fake.products[product_id]["subtitle"] == "Now cheaper"
    assert fake.variants[999]["title"] == "Gift wrap"


def test_a_variant_or_product_deleted_in_ecom_is_found_by_the_check() -> None:
    family = PosFamily(2)
    fake, state = created(family)
    state = _answered(fake, state)
    fake.variants.pop(state.variants["v01"].ecom_variant_id)

    assert _check(fake, state).lost_variants == frozenset({"v01"})

    fake.products.pop(state.ecom_product_id or 0)
    assert _check(fake, state).product_gone
