"""Which eCom calls bring one product in line with its POS family, given what we applied before (pure).

The worker re-reads the family from the POS (deleted variant rows included, `deleted=true`), maps it with
`map_family`, loads the `CatalogState`, calls `plan_catalog_sync`, then executes the actions in order: save
`state_before` (an intent, for creates), call eCom, save `state_after`; and once all succeeded, `state_after_plan`.

Rules (seeds 000/003, DESIGN §3 Catalog):
- Stale: a family snapshot older than the one applied (family version lower) plans nothing; so does a variant row
  older than the version applied to that variant.
- Unchanged: a payload whose hash equals the applied hash costs no eCom call.
- Variants: added in the POS -> created; removed (gone, or `deleted_at`) -> the eCom variant WE created is deleted.
  Variants the merchant added in eCom are not in the state, so they are never touched.
- Deleted in the POS -> DeleteProduct, or HideProduct under the `hide` delete policy (keeps eCom-only data).
- Plan cap: variants count as products. A new product is created whole or not at all; an existing product gets
  the new variants that fit (in family order) and a RefuseCreate for the rest. Variant deletes in the same plan run
  first and free room. Updates always flow.
- Fields eCom owns for the POS (`PosFamily.ecom_owned`, e.g. R-Series availability: a new product is created
  hidden and the merchant enables it in eCom, seed 000) are left out of every update and of the shown baseline.
- Nothing flows back: eCom edits of POS-owned fields (visibility included) are overwritten by the next POS change,
  and found sooner by content reconciliation: the state keeps eCom's answer to our last write (`state_shown`);
  a family checked against eCom (`check_against_ecom`, on a reconciliation finding) forgets the hash of what was
  edited there (`state_to_rewrite`), so planning rewrites exactly that, and a family eCom still shows as we left
  it costs no write.
- Deleted by hand in eCom (a mapped product or variant answers 404): a final answer, never a retry. The connection's
  `ecom_deleted_product_policy` decides (`state_after_lost`): `recreate` forgets the eCom ids, so planning again
  creates them (the POS is the system of record); `unlink` forgets them and records why, and planning leaves the
  family (or that variant) out of eCom until the operator re-links it (`relinked`).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

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
from pos_ecom_sync.catalog.mapping import DesiredProduct, DesiredVariant
from pos_ecom_sync.catalog.shown import differing, product_shown, variant_shown
from pos_ecom_sync.catalog.shown import main_image as main_image_src
from pos_ecom_sync.models.catalog import CatalogState, EcomVariantRef
from pos_ecom_sync.models.connection import PLAN_PRODUCT_CAPS, Connection

DeletePolicy = Literal["delete", "hide"]
LostPolicy = Literal["recreate", "unlink"]


@dataclass(frozen=True)
class CatalogSettings:
    """The connection settings planning needs."""

    delete_policy: DeletePolicy = "delete"
    product_cap: int = PLAN_PRODUCT_CAPS["business"]
    lost_policy: LostPolicy = "recreate"

    @classmethod
    def of(cls, connection: Connection) -> CatalogSettings:
        return cls(
            delete_policy=connection.delete_policy,
            product_cap=connection.effective_product_cap,
            lost_policy=connection.ecom_deleted_product_policy,
        )


@dataclass(frozen=True)
class CatalogPlan:
    actions: tuple[Action, ...] = ()
    # Version `state_after_plan` records; None when the version is unknown (family gone from the POS).
    family_version: int | None = None
    deleted_in_pos: bool = False
    stale: bool = False
    # Why, for the log line.
    note: str = ""

    @property
    def refused(self) -> tuple[RefuseCreate, ...]:
        return tuple(a for a in self.actions if isinstance(a, RefuseCreate))

    @property
    def ecom_calls(self) -> tuple[Action, ...]:
        """The actions that call eCom (a refusal is only reported)."""
        return tuple(a for a in self.actions if not isinstance(a, RefuseCreate))


def plan_catalog_sync(
    desired: DesiredProduct | None,
    deleted: bool,
    state: CatalogState,
    settings: Connection | CatalogSettings,
    *,
    catalog_count: int,
) -> CatalogPlan:
    """Plan the eCom calls for one family.

    `desired` is None when the family is gone from the POS (then `deleted` is implied and the version unknown).
    `catalog_count` is how many eCom variants we already manage for the connection (all products).
    """
    rules = settings if isinstance(settings, CatalogSettings) else CatalogSettings.of(settings)
    version = desired.family_version if desired is not None else None
    if version is not None and state.applied_version is not None and version < state.applied_version:
        return CatalogPlan(stale=True, deleted_in_pos=state.deleted_in_pos, note=_stale_note(version, state))
    if deleted or desired is None or desired.deleted:
        return _plan_delete(state, rules, version)
    if state.unlinked_reason is not None:
        return CatalogPlan(family_version=version, note=f"unlinked: {state.unlinked_reason}")
    if state.ecom_product_id is None:
        return _plan_new_product(desired, state, rules, catalog_count)
    return _plan_existing_product(desired, state, state.ecom_product_id, rules, catalog_count)


def state_before(state: CatalogState, action: Action) -> CatalogState:
    """The intent to save before executing `action`; only a product create needs one (see CreateProduct)."""
    if isinstance(action, CreateProduct) and action.payload.title not in state.create_intents:
        return state.model_copy(update={"create_intents": (*state.create_intents, action.payload.title)})
    return state


def state_after(state: CatalogState, action: Action, *, created_id: int | None = None) -> CatalogState:
    """The state once `action` succeeded in eCom. `created_id`: the eCom id a create made or found."""
    match action:
        case CreateProduct():
            return state.model_copy(
                update={
                    "ecom_product_id": _required(created_id, action),
                    "product_hash": action.content_hash,
                    "images_hash": action.images_hash,
                    "deleted_in_pos": False,
                    "create_intents": (),
                }
            )
        case UpdateProduct():
            return state.model_copy(update={"product_hash": action.content_hash})
        case ReplaceProductImages():
            return state.model_copy(update={"images_hash": action.images_hash})
        case HideProduct():
            # eCom now differs from the last payload (hidden): a revived family must send it again.
            return state.model_copy(update={"deleted_in_pos": True, "product_hash": None})
        case DeleteProduct():
            return CatalogState(applied_version=state.applied_version, deleted_in_pos=True)
        case CreateVariant():
            product_id = action.ecom_product_id or state.ecom_product_id
            ref = EcomVariantRef(
                ecom_product_id=_required(product_id, action),
                ecom_variant_id=_required(created_id, action),
                content_hash=action.content_hash,
                applied_version=action.version,
            )
            return state.model_copy(update={"variants": {**state.variants, action.pos_id: ref}})
        case UpdateVariant():
            stored = state.variants[action.pos_id]
            updated = stored.model_copy(update={"content_hash": action.content_hash, "applied_version": action.version})
            return state.model_copy(update={"variants": {**state.variants, action.pos_id: updated}})
        case DeleteVariant():
            remaining = {pos_id: ref for pos_id, ref in state.variants.items() if pos_id != action.pos_id}
            shown = {pos_id: row for pos_id, row in state.variants_shown.items() if pos_id != action.pos_id}
            return state.model_copy(update={"variants": remaining, "variants_shown": shown})
        case RefuseCreate():
            return state


def state_after_plan(state: CatalogState, plan: CatalogPlan) -> CatalogState:
    """The state once every action of `plan` succeeded (record the version even when nothing was called)."""
    if plan.stale:
        return state
    versions = [v for v in (state.applied_version, plan.family_version) if v is not None]
    return state.model_copy(
        update={"applied_version": max(versions, default=None), "deleted_in_pos": plan.deleted_in_pos}
    )


def state_after_lost(
    state: CatalogState,
    *,
    product_gone: bool,
    lost_variants: frozenset[str],
    policy: LostPolicy,
    reason: str,
    now: int,
) -> CatalogState:
    """The state once eCom answered 404 for our product (`product_gone`) or for the variants of `lost_variants`
    (POS ids): deleted by hand in eCom. Their ids are forgotten (their links go with them); under `unlink` the reason
    is kept so planning leaves them out, under `recreate` the next plan creates them again. Applied version and the
    POS-delete flag are kept: this is not a POS change."""
    if product_gone:
        fresh = CatalogState(applied_version=state.applied_version, deleted_in_pos=state.deleted_in_pos)
        if policy == "unlink":
            return fresh.model_copy(update={"unlinked_reason": reason, "unlinked_at": now})
        return fresh
    remaining = {pos_id: ref for pos_id, ref in state.variants.items() if pos_id not in lost_variants}
    shown = {pos_id: row for pos_id, row in state.variants_shown.items() if pos_id not in lost_variants}
    update: dict[str, object] = {"variants": remaining, "variants_shown": shown}
    if policy == "unlink":
        update["unlinked_variants"] = {**state.unlinked_variants, **dict.fromkeys(sorted(lost_variants), reason)}
    return state.model_copy(update=update)


def state_shown(
    state: CatalogState,
    *,
    product: Mapping[str, Any] | None = None,
    variant: tuple[str, Mapping[str, Any]] | None = None,
    images: Sequence[Mapping[str, Any]] | None = None,
    ecom_owned: Collection[str] = (),
) -> CatalogState:
    """Record eCom's answer to a write as the baseline content reconciliation compares with: a product row, a
    (POS variant id, variant row), or the images a replacement uploaded (the first is the main image). Fields eCom
    owns (`ecom_owned`, see `PosFamily.ecom_owned`) are not recorded, so never compared: a merchant's edit of them
    is theirs to make, not drift."""
    update: dict[str, object] = {}
    if product is not None:
        update["product_shown"] = {k: v for k, v in product_shown(product).items() if k not in ecom_owned}
    if variant is not None:
        pos_id, row = variant
        update["variants_shown"] = {**state.variants_shown, pos_id: variant_shown(row)}
    if images is not None:
        update["main_image"] = main_image_src({"image": images[0]}) if images else None
    return state.model_copy(update=update) if update else state


@dataclass(frozen=True)
class EcomCheck:
    """How eCom's actual product and variants differ from the state of one family (`check_against_ecom`)."""

    product_gone: bool = False
    lost_variants: frozenset[str] = frozenset()  # POS ids whose eCom variant eCom no longer lists
    product_fields: tuple[str, ...] = ()  # POS-owned product fields edited in eCom since our last write
    main_image: bool = False  # the main image is no longer ours
    variant_fields: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # POS id -> fields edited

    @property
    def lost(self) -> bool:
        return self.product_gone or bool(self.lost_variants)

    @property
    def edited(self) -> bool:
        return bool(self.product_fields or self.main_image or self.variant_fields)

    def describe(self) -> str:
        parts = [f"product {', '.join(self.product_fields)}"] if self.product_fields else []
        parts += ["main image"] if self.main_image else []
        parts += [f"variant {pos_id} {', '.join(names)}" for pos_id, names in sorted(self.variant_fields.items())]
        return "edited in eCom: " + "; ".join(parts) if parts else "eCom matches our last write"


def check_against_ecom(
    state: CatalogState, product: Mapping[str, Any] | None, variants: Sequence[Mapping[str, Any]]
) -> EcomCheck:
    """Compare one family's state with what eCom actually holds (its product row, None when eCom answered 404, and
    the product's variants as listed). Only our variants count; eCom-added ones are not ours."""
    if state.ecom_product_id is None:
        return EcomCheck()
    if product is None:
        return EcomCheck(product_gone=True)
    listed = {int(row["id"]): row for row in variants if isinstance(row.get("id"), int)}
    lost = frozenset(pos_id for pos_id, ref in state.variants.items() if ref.ecom_variant_id not in listed)
    edited: dict[str, tuple[str, ...]] = {}
    for pos_id, ref in state.variants.items():
        row = listed.get(ref.ecom_variant_id)
        names = differing(state.variants_shown.get(pos_id, {}), variant_shown(row)) if row is not None else ()
        if names:
            edited[pos_id] = names
    image = main_image_src(product)
    return EcomCheck(
        lost_variants=lost,
        product_fields=differing(state.product_shown, product_shown(product)),
        main_image=state.main_image is not None and "image" in product and image != state.main_image,
        variant_fields=edited,
    )


def state_to_rewrite(state: CatalogState, check: EcomCheck) -> CatalogState:
    """The state that makes planning rewrite what `check` found edited in eCom (forget the hash of what we applied
    there: an unchanged POS payload then differs from it). Losses are recorded by `state_after_lost` first."""
    if not check.edited:
        return state
    variants = {
        pos_id: ref.model_copy(update={"content_hash": None}) if pos_id in check.variant_fields else ref
        for pos_id, ref in state.variants.items()
    }
    update: dict[str, object] = {"variants": variants}
    if check.product_fields:
        update["product_hash"] = None
    if check.main_image:
        update["images_hash"] = None
    return state.model_copy(update=update)


def relinked(state: CatalogState) -> CatalogState:
    """The operator lets an unlinked family (and its unlinked variants) back into eCom: the next sync creates them."""
    return state.model_copy(update={"unlinked_reason": None, "unlinked_at": None, "unlinked_variants": {}})


def _plan_delete(state: CatalogState, rules: CatalogSettings, version: int | None) -> CatalogPlan:
    product_id = state.ecom_product_id
    if product_id is None:
        return CatalogPlan(family_version=version, deleted_in_pos=True, note="deleted in POS, nothing in eCom")
    if rules.delete_policy == "hide":
        if state.deleted_in_pos:
            return CatalogPlan(family_version=version, deleted_in_pos=True, note="deleted in POS, already hidden")
        return CatalogPlan((HideProduct(product_id),), version, deleted_in_pos=True, note="deleted in POS: hide")
    return CatalogPlan((DeleteProduct(product_id),), version, deleted_in_pos=True, note="deleted in POS: delete")


def _plan_new_product(
    desired: DesiredProduct, state: CatalogState, rules: CatalogSettings, catalog_count: int
) -> CatalogPlan:
    needed = len(desired.variants)
    room = rules.product_cap - catalog_count
    if needed > room:
        # All or nothing: half a product online (some sizes missing) would mislead buyers.
        reason = (
            f"product cap reached: {catalog_count:,} of {rules.product_cap:,} variants in use, product "
            f"{desired.pos_id} needs {needed:,} ({needed - max(room, 0):,} over); nothing created. "
            "Raise the connection's product cap to sync it."
        )
        refusal = RefuseCreate(reason, tuple(v.pos_id for v in desired.variants))
        return CatalogPlan((refusal,), desired.family_version, note="refused by product cap")
    create = CreateProduct(
        payload=desired.payload,
        image_urls=desired.image_urls,
        lookup_skus=desired.lookup_skus,
        content_hash=desired.content_hash,
        images_hash=desired.images_hash,
        resume_titles=state.create_intents,
    )
    variants = tuple(_create_variant(variant, None) for variant in desired.variants)
    return CatalogPlan((create, *variants), desired.family_version, note="new product")


def _plan_existing_product(
    desired: DesiredProduct, state: CatalogState, product_id: int, rules: CatalogSettings, catalog_count: int
) -> CatalogPlan:
    product_actions: list[Action] = []
    if desired.content_hash != state.product_hash:
        product_actions.append(UpdateProduct(product_id, desired.payload, desired.content_hash))
    images_replaced = desired.images_hash != state.images_hash
    if images_replaced:
        product_actions.append(ReplaceProductImages(product_id, desired.image_urls, desired.images_hash))

    live_ids = {variant.pos_id for variant in desired.variants}
    deletes = [
        DeleteVariant(ref.ecom_variant_id, pos_id)
        for pos_id, ref in sorted(state.variants.items())
        if pos_id not in live_ids and not _is_older(desired.family_version, ref.applied_version)
    ]
    updates: list[Action] = []
    new_variants: list[DesiredVariant] = []
    for variant in desired.variants:
        ref = state.variants.get(variant.pos_id)
        if ref is None:
            if variant.pos_id not in state.unlinked_variants:
                new_variants.append(variant)
        elif _needs_update(variant, ref, images_replaced=images_replaced):
            updates.append(
                UpdateVariant(
                    ref.ecom_variant_id, variant.pos_id, variant.payload, variant.content_hash, variant.version
                )
            )

    room = max(rules.product_cap - catalog_count + len(deletes), 0)
    creates = [_create_variant(variant, product_id) for variant in new_variants[:room]]
    refused = [variant.pos_id for variant in new_variants[room:]]
    refusals: list[Action] = []
    if refused:
        reason = (
            f"product cap reached: {catalog_count:,} of {rules.product_cap:,} variants in use; "
            f"{len(refused):,} new variant(s) of product {desired.pos_id} not created ({', '.join(refused)}). "
            "Raise the connection's product cap to sync them."
        )
        refusals.append(RefuseCreate(reason, tuple(refused)))
    actions = (*product_actions, *deletes, *updates, *creates, *refusals)
    return CatalogPlan(actions, desired.family_version, note="changes" if actions else "unchanged")


def _needs_update(variant: DesiredVariant, ref: EcomVariantRef, *, images_replaced: bool) -> bool:
    if _is_older(variant.version, ref.applied_version):
        return False
    # Replaced images get new eCom ids, so a variant pointing at one must be linked again.
    return variant.content_hash != ref.content_hash or (images_replaced and variant.payload.image_url is not None)


def _create_variant(variant: DesiredVariant, product_id: int | None) -> CreateVariant:
    return CreateVariant(variant.pos_id, product_id, variant.payload, variant.content_hash, variant.version)


def _is_older(version: int, applied: int | None) -> bool:
    return applied is not None and version < applied


def _stale_note(version: int, state: CatalogState) -> str:
    return f"stale: family version {version} < applied {state.applied_version}"


def _required(value: int | None, action: Action) -> int:
    if value is None:
        raise ValueError(f"{type(action).__name__} needs the eCom id it created or found")
    return value
