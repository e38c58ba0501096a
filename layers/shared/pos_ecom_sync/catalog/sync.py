"""Catalog worker: brings one eCom product in line with its POS family (the I/O around the pure planner).

Steps: re-read the family from the POS (the message is only a hint), map it, load our state, plan, then execute
each action and record it at once. Every step is safe to repeat after a crash: creates are find-or-create, the
state write is conditional on the revision read, and a replay of unchanged content makes no eCom call.

A 404 from eCom on our product or one of our variants means it was deleted in eCom (by hand: its webhook, if any, is
not relied on). That is a final answer, never a retry: the ids are forgotten per the connection's
`ecom_deleted_product_policy` (`planning.state_after_lost`) and the family is planned again in the same run, so under
`recreate` it is created again now, under `unlink` it stays out of eCom with the reason in its catalog state.

Repair against reality: a sync asked to check eCom (`check_ecom`: a reconciliation finding says eCom differs)
first reads the family's eCom product and its variants once (plus its category links), and plans against what eCom
actually holds: our product or variants gone are recorded as lost (so re-created under `recreate`), fields edited
in eCom since our last write (`planning.check_against_ecom`) are rewritten, and a family eCom still shows as we
left it costs those reads and no write. Every write records eCom's answer (`planning.state_shown`): the baseline
of the next compare.

Brands and categories are named by id. Their eCom lists are kept by the warm sandbox (`NAMES_KEPT_S`); a title
missing from a list read `NAMES_RECHECK_S` ago or more reads it again before creating one (the merchant may have just
made it), and a write naming a kept id that eCom no longer has is built again from fresh lists (`_send_naming`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeVar

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
from pos_ecom_sync.catalog.census import SkuCensus
from pos_ecom_sync.catalog.ecom_edits import PosEdit, brand_ids, edited_in_ecom, plan_ecom_edits, settled
from pos_ecom_sync.catalog.mapping import DesiredProduct, ProductPayload, map_family
from pos_ecom_sync.catalog.planning import (
    CatalogPlan,
    check_against_ecom,
    plan_catalog_sync,
    state_after,
    state_after_lost,
    state_after_plan,
    state_before,
    state_shown,
    state_to_rewrite,
)
from pos_ecom_sync.errors import NotFound, UpstreamError, UpstreamUnavailable
from pos_ecom_sync.models.catalog import CatalogState, PosFamily, StoredCatalogState
from pos_ecom_sync.models.connection import Connection
from pos_ecom_sync.models.links import VariantLink
from pos_ecom_sync.models.messages import ChangeMessage
from pos_ecom_sync.queues import Outgoing
from pos_ecom_sync.reference import ReferenceCache

JsonObject = dict[str, Any]
T = TypeVar("T")
# Brand and category lists (`CatalogSync._named_id`): a title found in a list read less than NAMES_KEPT_S ago is
# trusted (an hour bounds how long a brand renamed in eCom goes unnoticed by a sandbox kept warm all day, for at most
# two list reads an hour; a brand deleted there is survived by `_send_naming` whatever the age). A title missing from
# a list read NAMES_RECHECK_S ago or more reads the list again before creating it: the merchant may have made it since.
NAMES_KEPT_S = 3600.0
NAMES_RECHECK_S = 60.0
REFUSED = frozenset({400, 422})  # eCom's validation answers (connectors.ecom.REFUSED)
# A product create that died may have reached eCom up to this long before its intent was recorded (clock skew).
INTENT_LOOKBACK = timedelta(minutes=5)
# Plans run again after finding our eCom product or variants deleted: each run forgets at least one id, so more
# runs than this mean eCom keeps deleting under us; the record is then retried like any transient failure.
MAX_LOST_REPLANS = 3


class PosCatalog(Protocol):
    """The connection's POS catalog, as its profile reads it (e.g. `profiles.xseries.catalog.XSeriesCatalog`)."""

    @property
    def calls(self) -> int: ...  # POS requests sent so far (the worker reports its own share)
    def read_family(self, product_id: str) -> PosFamily | None:
        """The family `product_id` belongs to (any member: parent or variant), deleted members included; None when
        the POS has no such product."""
        ...

    def apply_edits(self, family_key: str, edits: Sequence[PosEdit]) -> None:
        """Write the merchant's eCom edits (`catalog.ecom_edits`) into the family's POS items. Only called for a
        profile that takes eCom edits; one that does not raises ConfigurationError."""
        ...

    def set_category(self, family_key: str, category: str) -> bool:
        """File the family (its parent) under the POS category named `category` (a merchant's eCom category link,
        `catalog.category_edits`); False when the POS has no single category of that name (none is ever created).
        Only called for a profile that takes eCom edits; one that does not raises ConfigurationError."""
        ...


class EcomCatalog(Protocol):
    @property
    def calls(self) -> int: ...  # HTTP requests sent so far (the worker reports its own share)
    def create_product(self, fields: JsonObject) -> JsonObject: ...
    def update_product(self, product_id: int, fields: JsonObject) -> JsonObject: ...
    def delete_product(self, product_id: int) -> bool: ...
    def get_product(self, product_id: int) -> JsonObject | None: ...
    def list_products_created_since(self, created_at_min: datetime) -> list[JsonObject]: ...
    def list_variants(self, product_id: int | None = None, sku: str | None = None) -> list[JsonObject]: ...
    def list_variants_since(self, since_id: int | None, limit: int = ...) -> list[JsonObject]: ...
    def create_variant(self, fields: JsonObject) -> JsonObject: ...
    def update_variant(self, variant_id: int, fields: JsonObject) -> JsonObject: ...
    def delete_variant(self, variant_id: int) -> bool: ...
    def list_product_images(self, product_id: int) -> list[JsonObject]: ...
    def create_product_image(self, product_id: int, src: str) -> JsonObject: ...
    def delete_product_image(self, product_id: int, image_id: int) -> bool: ...
    def list_brands(self) -> list[JsonObject]: ...
    def get_brand(self, brand_id: int) -> JsonObject | None: ...
    def create_brand(self, title: str) -> JsonObject: ...
    def list_categories(self) -> list[JsonObject]: ...
    def create_category(self, title: str) -> JsonObject: ...
    def list_category_links(self, product_id: int) -> list[JsonObject]: ...
    def link_category(self, product_id: int, category_id: int) -> JsonObject: ...


class CatalogStateStore(Protocol):
    def get_catalog_state(self, connection_id: str, family_key: str) -> StoredCatalogState: ...
    def save_catalog_state(
        self, connection_id: str, family_key: str, stored: StoredCatalogState, new_state: CatalogState
    ) -> StoredCatalogState: ...
    def catalog_variant_count(self, connection_id: str) -> int: ...
    def variant_link(
        self, connection_id: str, *, pos_product_id: str | None = None, ecom_variant_id: int | None = None
    ) -> VariantLink | None: ...


@dataclass
class FamilySyncResult:
    family_key: str
    outcome: str  # "applied", "unchanged", "stale", "not found", "unlinked"
    ecom_calls: int = 0  # HTTP requests to eCom (reads included), not planned actions
    refused: list[str] = field(default_factory=list)
    note: str = ""
    # What this run found deleted in eCom (our product or variants) and did about it, for the log and a metric.
    lost_in_ecom: list[str] = field(default_factory=list)
    # POS-owned fields found edited in eCom when the family was checked against eCom (rewritten by this run).
    edited_in_ecom: str = ""
    # The merchant's eCom edits written to the POS (`take_ecom_edits`), and those dropped (the POS changed them too).
    taken_from_ecom: str = ""
    pos_calls: int = 0  # POS requests of an eCom-edit run (reads included)


@dataclass(frozen=True)
class Done:
    """What executing one action gave: the id a create made or found, the images uploaded (POS URL -> eCom image),
    and eCom's answer to a product or variant write."""

    created_id: int | None = None
    images: dict[str, JsonObject] | None = None
    product: JsonObject | None = None
    variant: JsonObject | None = None


class LostInEcom(Exception):
    """Our eCom product or variants answered 404; the state already forgot (or unlinked) them: plan again."""

    def __init__(self, note: str, *, unlinked: bool) -> None:
        super().__init__(note)
        self.note = note
        self.unlinked = unlinked


def _ref_id(ref: Any) -> int | None:
    """eCom relations are `{"resource": {"id": ...}}`, a bare id, or false."""
    if isinstance(ref, dict):
        ref = ref.get("resource", ref).get("id")
    return ref if isinstance(ref, int) and not isinstance(ref, bool) else None


def _is_blank_default(variant: JsonObject) -> bool:
    return not variant.get("sku") and not variant.get("articleCode")


class StockQueue(Protocol):
    """Where catalog sync asks for a new variant's first stock write (the stock queue's publisher)."""

    def publish(self, outgoing: Sequence[Outgoing]) -> int: ...


class CatalogSync:
    """Syncs families of one connection (one instance per connection and invocation)."""

    def __init__(
        self,
        connection: Connection,
        pos: PosCatalog,
        ecom: EcomCatalog,
        store: CatalogStateStore,
        *,
        clock: Callable[[], float] = time.time,
        reference: ReferenceCache | None = None,
        stock: StockQueue | None = None,
    ) -> None:
        self.connection = connection
        self.pos = pos
        self.ecom = ecom
        self.store = store
        self.clock = clock
        self.stock = stock
        # Brand and category lists: a warm worker's cache (runtime.reference_cache), else this worker's own.
        self.reference = reference or ReferenceCache()
        # eCom product id -> its variants as listed (and since changed) during this worker's life.
        self._siblings: dict[int, list[JsonObject]] = {}
        # eCom product id -> the category link this worker just made for it (recorded in the family's state).
        self._category_links: dict[int, int] = {}
        # The brand/category lists whose kept ids the write being built names (`_send_naming`).
        self._named: set[str] = set()
        # The SKUs eCom holds, as this warm sandbox knows them: a product create looks up only those it may hold.
        reference = self.reference
        self.census = reference.keep(
            f"{connection.connection_id}|{connection.ecom_base_url}|sku-census",
            lambda: SkuCensus(reference.ttl_s, reference.now),
        )

    def _named_id(
        self,
        kind: str,
        title: str,
        list_all: Callable[[], list[JsonObject]],
        create: Callable[[str], JsonObject],
    ) -> int:
        """The eCom id of a brand or category title (case-insensitive), created when eCom has none (see NAMES_KEPT_S:
        a missing title is looked for in a list read under NAMES_RECHECK_S ago before it is created)."""
        key = f"{self.connection.connection_id}|{self.connection.ecom_base_url}|{kind}"
        wanted = title.strip().lower()
        row = self.reference.find(
            key,
            list_all,
            lambda row: str(row.get("title", "")).strip().lower() == wanted,
            keep_s=NAMES_KEPT_S,
            recheck_s=NAMES_RECHECK_S,
        )
        if row is not None:
            self._named.add(key)  # a kept id: eCom may have deleted it since the list was read
            return int(row["id"])
        created = create(title.strip())
        self.reference.add(key, created)
        return int(created["id"])

    def _send_naming(self, write: Callable[[], T]) -> T:
        """Build and send a write that names brand or category ids (`_named_id`). An id found in a kept list may
        have been deleted in eCom since the list was read, and what eCom does with a write naming it is undocumented
        (contracts/ecom.json `unverified`). A refusal (400/422) drops the lists the write took ids from, then builds
        and sends it once more from fresh lists (the title is found again or created); a second refusal is eCom's
        answer to something else, as before. A 404 is left to `_lost`, which drops them when nothing of ours is
        gone, so the retried message reads them afresh."""
        self._named.clear()
        try:
            answer = write()
        except UpstreamError as error:
            if error.status not in REFUSED or not self._forget_named():
                raise
            return write()
        self._named.clear()
        return answer

    def _forget_named(self) -> bool:
        """Drop the lists the failed write took kept ids from; False when it took none."""
        named, self._named = self._named, set()
        for key in named:
            self.reference.drop(key)
        return bool(named)

    # -- entry point ----------------------------------------------------------------------------------

    def sync(self, product_id: str, *, check_ecom: bool = False, take_ecom_edits: bool = False) -> FamilySyncResult:
        """Sync the family `product_id` belongs to (any row of it: parent or variant). `check_ecom`: plan against
        what eCom actually holds for it (one read of the product and one of its variants), not only our state;
        with `take_ecom_edits` (a profile that takes them) the fields that flow back and were edited in eCom are
        written to the POS first (`catalog.ecom_edits`), not rewritten from it."""
        if product_id == self.connection.shipping_product_id:
            # The POS line imported orders carry their shipping charge on: never a product sold online.
            return FamilySyncResult(product_id, "unchanged", note="the connection's shipping product is not synced")
        family = self.pos.read_family(product_id)
        if family is None:
            return FamilySyncResult(product_id, "not found", note="the POS has no such product")
        desired, taken = map_family(family), ""
        if check_ecom and take_ecom_edits:
            taken, desired = self._take_found_edits(family.key, desired)
        result = self._apply(family.key, desired, check_ecom=check_ecom)
        result.taken_from_ecom = taken
        return result

    def edit_results(self) -> Callable[..., FamilySyncResult]:
        """A maker of eCom-edit results `(family key, outcome, note, taken="")` that count the POS and eCom requests
        made from now on."""
        ecom_before, pos_before = self.ecom.calls, self.pos.calls

        def result(key: str, outcome: str, note: str, taken: str = "") -> FamilySyncResult:
            return FamilySyncResult(
                key,
                outcome,
                ecom_calls=self.ecom.calls - ecom_before,
                note=note,
                taken_from_ecom=taken,
                pos_calls=self.pos.calls - pos_before,
            )

        return result

    def take_ecom_edits(self, entity: str, ecom_id: int) -> FamilySyncResult:
        """An eCom product or variant of ours changed (its webhook): write the merchant's edits of the fields that
        flow back into the POS (`catalog.ecom_edits`), for a profile that takes eCom edits. The echo of our own eCom
        write costs the eCom read(s) and nothing else; an edit costs one read of the family before and after the
        POS write, the POS writes, and no eCom write when eCom then shows what the POS holds (the state records the
        new agreement, so the POS feed's echo of our write is planned as unchanged too). The result counts the POS
        and eCom requests this took."""
        cid = self.connection.connection_id
        result = self.edit_results()
        product: JsonObject | None = None
        if entity == "variant":
            link = self.store.variant_link(cid, ecom_variant_id=ecom_id)
            variants = self.ecom.list_variants(product_id=link.ecom_product_id) if link is not None else []
        elif entity == "product":
            variants = self.ecom.list_variants(product_id=ecom_id)
            link = next(
                (
                    found
                    for row in variants
                    if isinstance(row.get("id"), int)
                    and (found := self.store.variant_link(cid, ecom_variant_id=int(row["id"]))) is not None
                ),
                None,
            )
            product = self.ecom.get_product(ecom_id) if link is not None else None
        else:
            raise ValueError(f"no eCom edits of a {entity}")

        if link is None:
            return result(f"ecom:{entity}:{ecom_id}", "unchanged", f"eCom {entity} {ecom_id} is not one we manage")
        family_key = link.family_key
        stored = self.store.get_catalog_state(cid, family_key)
        if not edited_in_ecom(stored.state, product, variants):
            return result(family_key, "unchanged", "eCom shows our last write")
        family = self.pos.read_family(family_key)
        if family is None:
            return result(family_key, "not found", "the POS has no such product")
        before = map_family(family)
        taken, after = self._take_edits(family_key, stored, before, product, variants)
        if after is None:
            return result(family_key, "not found", "the POS family went away after the edit", taken)
        if after is before:  # nothing written to the POS (the POS changed those fields too, or values it refuses)
            return result(family_key, "unchanged", taken or "no eCom edit", taken)
        synced = self._apply(family_key, after)  # no eCom call when eCom already shows the POS (the usual case)
        done = result(family_key, "applied", synced.note, taken)
        done.refused, done.lost_in_ecom = synced.refused, synced.lost_in_ecom
        return done

    def _take_edits(
        self,
        family_key: str,
        stored: StoredCatalogState,
        before: DesiredProduct,
        product: JsonObject | None,
        variants: list[JsonObject],
    ) -> tuple[str, DesiredProduct | None]:
        """Write the eCom edits found in `product`/`variants` to the POS and record the agreement
        (`ecom_edits.settled`). Returns what was taken or dropped, and the family as the POS holds it afterwards
        (`before` itself when nothing was written; None when the POS family is gone)."""
        titles = self._brand_titles(brand_ids(stored.state, before, product))
        plan = plan_ecom_edits(stored.state, before, product, variants, titles)
        if not plan.edits:
            return (plan.describe() if plan.pos_wins or plan.refused else ""), before
        self.pos.apply_edits(family_key, plan.edits)
        family = self.pos.read_family(family_key)
        if family is None:
            return "", None
        after = map_family(family)
        new_state = settled(stored.state, before, after, product, variants, plan.edits)
        if new_state != stored.state:
            self.store.save_catalog_state(self.connection.connection_id, family_key, stored, new_state)
        return plan.describe(), after

    def _brand_titles(self, ids: frozenset[int]) -> dict[int, str]:
        """eCom brand id -> title, one `brands/{id}` read each (a brand edit only): the merchant may have made the
        brand a moment ago, so a kept list would not know it."""
        titles: dict[int, str] = {}
        for brand_id in sorted(ids):
            brand = self.ecom.get_brand(brand_id)
            title = brand.get("title") if brand is not None else None
            if isinstance(title, str):
                titles[brand_id] = title
        return titles

    def _take_found_edits(self, family_key: str, desired: DesiredProduct) -> tuple[str, DesiredProduct]:
        """Before a check against eCom (reconciliation found eCom differing), for a profile that takes eCom edits:
        the fields that flow back and were edited in eCom go to the POS instead of being rewritten from it (two eCom
        reads; the check reads again and rewrites only what still differs)."""
        stored = self.store.get_catalog_state(self.connection.connection_id, family_key)
        product_id = stored.state.ecom_product_id
        if product_id is None:
            return "", desired
        product = self.ecom.get_product(product_id)
        variants = self.ecom.list_variants(product_id=product_id) if product is not None else []
        if product is None or not edited_in_ecom(stored.state, product, variants):
            return "", desired
        taken, after = self._take_edits(family_key, stored, desired, product, variants)
        return taken, after if after is not None else desired

    def _apply(self, family_key: str, desired: DesiredProduct, *, check_ecom: bool = False) -> FamilySyncResult:
        calls_before, lost, edited = self.ecom.calls, [], ""
        if check_ecom:
            edited, gone = self._check_ecom(family_key, desired)
            if gone is not None:
                lost.append(gone.note)
                if gone.unlinked:
                    result = FamilySyncResult(family_key, "unlinked", note=gone.note, lost_in_ecom=lost)
                    result.ecom_calls = self.ecom.calls - calls_before
                    return result
        for _ in range(MAX_LOST_REPLANS):
            try:
                result = self._apply_plan(family_key, desired)
            except LostInEcom as gone:
                lost.append(gone.note)
                if gone.unlinked:
                    result = FamilySyncResult(family_key, "unlinked", note=gone.note)
                else:
                    continue  # the state forgot the ids: this plan creates them again
            result.ecom_calls = self.ecom.calls - calls_before
            result.lost_in_ecom = lost
            result.edited_in_ecom = edited
            if (lost or edited) and result.outcome != "unlinked":
                result.note = "; ".join([*lost, *([edited] if edited else []), result.note])
            return result
        raise UpstreamUnavailable(f"eCom product of family {family_key} kept disappearing: {'; '.join(lost)}")

    def _apply_plan(self, family_key: str, desired: DesiredProduct) -> FamilySyncResult:
        cid = self.connection.connection_id
        stored = self.store.get_catalog_state(cid, family_key)
        plan = plan_catalog_sync(
            desired,
            desired.deleted,
            stored.state,
            self.connection,
            catalog_count=self.store.catalog_variant_count(cid),
        )
        if plan.stale:
            return FamilySyncResult(family_key, "stale", note=plan.note)
        executed, calls_before = 0, self.ecom.calls
        try:
            if plan.actions and self._images_edited_in_ecom(stored.state, plan):
                stored = self._restore_images(cid, family_key, stored, desired)
                executed += 1
            for action in plan.actions:
                before = state_before(stored.state, action)
                if before != stored.state:
                    stored = self.store.save_catalog_state(cid, family_key, stored, before)
                done = self._execute(action, stored)
                executed += not isinstance(action, RefuseCreate)
                after = state_after(stored.state, action, created_id=done.created_id)
                if done.images is not None:
                    ids = {url: int(image["id"]) for url, image in done.images.items()}
                    after = after.model_copy(update={"ecom_images": ids})
                after = state_shown(
                    after,
                    product=done.product,
                    variant=(action.pos_id, done.variant)
                    if isinstance(action, (CreateVariant, UpdateVariant)) and done.variant is not None
                    else None,
                    images=list(done.images.values()) if done.images is not None else None,
                    ecom_owned=desired.payload.ecom_owned,
                )
                if (link := self._category_links.pop(after.ecom_product_id or 0, None)) is not None:
                    after = after.model_copy(update={"category_link": link})
                stored = self.store.save_catalog_state(cid, family_key, stored, after)
                if isinstance(action, CreateVariant) and done.created_id is not None:
                    self._stock_for_new_variant(done.created_id)
        except NotFound as error:
            raise self._lost(family_key, stored, error) from error
        final = state_after_plan(stored.state, plan)
        if final != stored.state:
            self.store.save_catalog_state(cid, family_key, stored, final)
        return FamilySyncResult(
            family_key,
            "applied" if executed else "unchanged",
            ecom_calls=self.ecom.calls - calls_before,
            refused=[r.reason for r in plan.refused],
            note=plan.note,
        )

    def _stock_for_new_variant(self, ecom_variant_id: int) -> None:
        """Ask the stock worker to write a variant's first stock level now that its link is recorded. eCom's
        variants/created webhook would too, but a connection may have no eCom webhooks, or lose that one, and the
        POS inventory rows polled before the link existed were settled as "not linked" (levels kept, nothing
        written): without this the variant would show 0 until its stock next changed in the POS."""
        if self.stock is None:
            return
        message = ChangeMessage(
            connection_id=self.connection.connection_id,
            source="ecom",
            entity="variant",
            entity_id=str(ecom_variant_id),
            via="import",
            received_at=datetime.fromtimestamp(self.clock(), UTC),
            payload={"id": ecom_variant_id},
            concern="stock",
        )
        # Its webhook (if any) and this one settle to one write: the second finds eCom at the total already.
        self.stock.publish([Outgoing(message, delivery_key=f"variant-linked|{ecom_variant_id}")])

    def _lost(self, family_key: str, stored: StoredCatalogState, error: NotFound) -> Exception:
        """What a 404 during a plan means: our product gone, some of our variants gone, or neither (then `error`
        itself, retried as usual: e.g. an image deleted meanwhile, or a kept brand or category id, whose list is
        dropped for the retry to read). Records the loss per policy (one read each)."""
        state = stored.state
        product_id = state.ecom_product_id
        product_gone, lost = False, frozenset[str]()
        if product_id is not None:
            product_gone = self.ecom.get_product(product_id) is None
            lost = frozenset(state.variants)
            if not product_gone:
                live = {int(v["id"]) for v in self.ecom.list_variants(product_id=product_id)}
                lost = frozenset(pos_id for pos_id, ref in state.variants.items() if ref.ecom_variant_id not in live)
        if not product_gone and not lost:
            self._forget_named()
            return error
        new_state, gone = self._lost_state(family_key, state, product_gone=product_gone, lost=lost)
        self.store.save_catalog_state(self.connection.connection_id, family_key, stored, new_state)
        return gone

    def _lost_state(
        self, family_key: str, state: CatalogState, *, product_gone: bool, lost: frozenset[str]
    ) -> tuple[CatalogState, LostInEcom]:
        """The state that records our product (or the variants of `lost`) deleted in eCom, per policy, and why."""
        product_id = state.ecom_product_id
        self._siblings.pop(product_id or 0, None)
        policy = self.connection.ecom_deleted_product_policy
        if product_gone:
            what = f"eCom product {product_id} was deleted in eCom"
        else:
            ids = ", ".join(str(state.variants[pos_id].ecom_variant_id) for pos_id in sorted(lost))
            what = f"eCom variant(s) {ids} of product {product_id} were deleted in eCom"
        if policy == "unlink":
            relink = f"pos-ecom-sync catalog relink {self.connection.connection_id} {family_key}"
            reason = f"{what}; left out of eCom (policy unlink) until re-linked: `{relink}`"
        else:
            reason = f"{what}; created again from the POS (policy recreate)"
        new_state = state_after_lost(
            state, product_gone=product_gone, lost_variants=lost, policy=policy, reason=reason, now=int(self.clock())
        )
        return new_state, LostInEcom(reason, unlinked=product_gone and policy == "unlink")

    def _check_ecom(self, family_key: str, desired: DesiredProduct) -> tuple[str, LostInEcom | None]:
        """Bring the family's state in line with what eCom actually holds before planning (see the module doc):
        returns what was found edited in eCom ("" for nothing) and what was found deleted there (None: nothing)."""
        cid = self.connection.connection_id
        stored = self.store.get_catalog_state(cid, family_key)
        state = stored.state
        product_id = state.ecom_product_id
        if product_id is None or state.deleted_in_pos or state.unlinked_reason is not None or desired.deleted:
            return "", None  # nothing of ours in eCom to compare (or the plan deletes or hides it anyway)
        product = self.ecom.get_product(product_id)
        variants = self.ecom.list_variants(product_id=product_id) if product is not None else []
        check = check_against_ecom(state, product, variants)
        new_state = state_to_rewrite(state, check)
        edited = check.describe() if check.edited else ""
        if product is not None and self._category_unlinked(product_id, desired):
            new_state = new_state.model_copy(update={"product_hash": None})
            unlinked = f"category {desired.payload.category!r} unlinked in eCom"
            edited = f"{edited}; {unlinked}" if edited else f"edited in eCom: {unlinked}"
        gone = None
        if check.lost:
            new_state, gone = self._lost_state(
                family_key, new_state, product_gone=check.product_gone, lost=check.lost_variants
            )
        if product is not None:
            self._siblings[product_id] = list(variants)  # creates below adopt from this listing: no second read
        if new_state != state:
            self.store.save_catalog_state(cid, family_key, stored, new_state)
        return edited, gone

    def _category_unlinked(self, product_id: int, desired: DesiredProduct) -> bool:
        """The POS category is no longer among the product's category links in eCom (one read)."""
        if not desired.payload.category:
            return False
        category_id = self._named_id(
            "categories", desired.payload.category, self.ecom.list_categories, self.ecom.create_category
        )
        return category_id not in {_ref_id(link.get("category")) for link in self.ecom.list_category_links(product_id)}

    # -- actions ----------------------------------------------------------------------------------------

    def _execute(self, action: Action, stored: StoredCatalogState) -> Done:
        """Run one action; returns the id a create made or found, the product's images when they were set, and
        eCom's answers to the product or variant write (the baseline content reconciliation compares with)."""
        state = stored.state
        match action:
            case CreateProduct():
                product_id, answer = self._find_or_create_product(action, stored)
                written = self._write_product(product_id, action.payload, created=answer is not None)
                if answer is not None:
                    self._siblings[product_id] = []  # a product this call created has no variants or images yet
                images = self._replace_images(product_id, action.image_urls, known_empty=answer is not None)
                return Done(product_id, images, product=written or answer)
            case UpdateProduct():
                return Done(product=self._write_product(action.ecom_id, action.payload, created=False))
            case ReplaceProductImages():
                return Done(images=self._replace_images(action.ecom_id, action.image_urls))
            case HideProduct():
                self.ecom.update_product(action.ecom_id, action.ecom_body())
            case DeleteProduct():
                self.ecom.delete_product(action.ecom_id)
            case CreateVariant():
                owner = action.ecom_product_id or state.ecom_product_id
                assert owner is not None, "planned CreateVariant without a product"
                variant = self._find_or_create_variant(owner, action, state.ecom_images, state.ecom_variant_ids)
                self.census.note(action.payload.sku)
                return Done(int(variant["id"]), variant=variant)
            case UpdateVariant():
                body = self._variant_body(action, state.ecom_images)
                answer = self.ecom.update_variant(action.ecom_variant_id, body)
                self.census.note(action.payload.sku)
                return Done(variant=answer)
            case RefuseCreate():
                pass  # no eCom call: the handler reports it (metric + alarm); the family retries once the cap is raised
            case DeleteVariant():
                self.ecom.delete_variant(action.ecom_variant_id)
        return Done()

    # -- images -------------------------------------------------------------------------------------------

    def _images_edited_in_ecom(self, state: CatalogState, plan: CatalogPlan) -> bool:
        """POS images win on every POS update of the product: were ours replaced, removed or joined in eCom?"""
        if state.ecom_product_id is None or state.deleted_in_pos:
            return False
        if any(isinstance(a, (CreateProduct, ReplaceProductImages, DeleteProduct, HideProduct)) for a in plan.actions):
            return False  # the plan rewrites or removes the images anyway
        current = [int(image["id"]) for image in self.ecom.list_product_images(state.ecom_product_id)]
        return current != list(state.ecom_images.values())

    def _restore_images(
        self, cid: str, family_key: str, stored: StoredCatalogState, desired: DesiredProduct
    ) -> StoredCatalogState:
        """Put our images back and point every variant we manage at its image again (their ids are new)."""
        product_id = stored.state.ecom_product_id
        assert product_id is not None
        uploaded = self._replace_images(product_id, tuple(stored.state.ecom_images))
        images = {url: int(image["id"]) for url, image in uploaded.items()}
        state = state_shown(stored.state.model_copy(update={"ecom_images": images}), images=list(uploaded.values()))
        for variant in desired.variants:
            ref = stored.state.variants.get(variant.pos_id)
            if ref is not None and variant.payload.image_url in images:
                answer = self.ecom.update_variant(ref.ecom_variant_id, {"image": images[variant.payload.image_url]})
                state = state_shown(state, variant=(variant.pos_id, answer))
        return self.store.save_catalog_state(cid, family_key, stored, state)

    def _replace_images(
        self, product_id: int, urls: tuple[str, ...], *, known_empty: bool = False
    ) -> dict[str, JsonObject]:
        """Make the product's images exactly `urls`, in order; returns POS URL -> the new eCom image (as answered)."""
        for image in [] if known_empty else self.ecom.list_product_images(product_id):
            self.ecom.delete_product_image(product_id, int(image["id"]))
        return {url: self.ecom.create_product_image(product_id, url) for url in urls}

    def _find_or_create_product(
        self, action: CreateProduct, stored: StoredCatalogState
    ) -> tuple[int, JsonObject | None]:
        """The product's eCom id, and eCom's answer when this call created it (None: found; it may hold older
        content, so the worker writes it)."""
        # Variants are created in family order and each is recorded before the next, so if an earlier attempt
        # created any variant, it created the first: one lookup finds a half-made product (or a merchant's own).
        # The census answers "eCom held no such SKU" without a call (catalog.census); "it may" costs the lookup.
        for sku in action.lookup_skus[:1]:
            if not self.census.may_hold(sku, self.ecom):
                continue
            for variant in self.ecom.list_variants(sku=sku):
                product_id = _ref_id(variant.get("product"))
                if product_id is not None:
                    return product_id, None
        if action.resume_titles and stored.intent_at is not None:
            # An earlier attempt recorded its intent and may have died after the POST: adopt its product.
            since = datetime.fromtimestamp(stored.intent_at, UTC) - INTENT_LOOKBACK
            for product in self.ecom.list_products_created_since(since):
                if product.get("title") in action.resume_titles:
                    variants = self.ecom.list_variants(product_id=int(product["id"]))
                    if all(_is_blank_default(v) for v in variants):
                        self._siblings[int(product["id"])] = variants  # its variant creates adopt from this listing
                        return int(product["id"]), None
        created = self._send_naming(lambda: self.ecom.create_product(self._product_body(action.payload, create=True)))
        return int(created["id"]), created

    def _product_body(self, payload: ProductPayload, *, create: bool = False) -> JsonObject:
        body = payload.ecom_body(create=create)
        ecom = self.ecom
        # No POS brand: None asks the connector to clear it (it knows whether eCom takes that; never parks for it).
        body["brand"] = (
            self._named_id("brands", payload.brand, ecom.list_brands, ecom.create_brand) if payload.brand else None
        )
        return body

    def _write_product(self, product_id: int, payload: ProductPayload, *, created: bool) -> JsonObject | None:
        """Send the POS-owned fields (a product this call created already has them) and file it in its category.
        Returns eCom's answer to the update (None: nothing sent)."""
        answer = None
        if not created:
            answer = self._send_naming(lambda: self.ecom.update_product(product_id, self._product_body(payload)))
        if payload.category:
            category = payload.category

            def link_category() -> JsonObject | None:
                category_id = self._named_id(
                    "categories", category, self.ecom.list_categories, self.ecom.create_category
                )
                links = [] if created else self.ecom.list_category_links(product_id)
                if category_id in {_ref_id(link.get("category")) for link in links}:
                    return None
                # Other links stay: the merchant may file the product under eCom-only categories too.
                return self.ecom.link_category(product_id, category_id)

            made = self._send_naming(link_category)
            link = _ref_id(made.get("id")) if made is not None else None
            if link is not None:  # ours: the category-link sweep must not take it back as an edit
                self._category_links[product_id] = link
        return answer

    @staticmethod
    def _variant_body(action: CreateVariant | UpdateVariant, images: dict[str, int]) -> JsonObject:
        body = action.ecom_body() if isinstance(action, CreateVariant) else action.payload.ecom_body()
        if action.payload.image_url:
            body["image"] = images.get(action.payload.image_url, False)
        return body

    def _find_or_create_variant(
        self, product_id: int, action: CreateVariant, images: dict[str, int], ours: frozenset[int]
    ) -> JsonObject:
        """The variant made or adopted, as eCom answered the write. `ours`: the eCom variants we already manage."""
        # One listing per product per sync: the family's other new variants reuse it (and extend it below).
        if product_id not in self._siblings:
            self._siblings[product_id] = self.ecom.list_variants(product_id=product_id)
        siblings = self._siblings[product_id]
        body = self._variant_body(action, images)
        mine = next((v for v in siblings if action.payload.sku and v.get("sku") == action.payload.sku), None)
        # eCom's untouched default exists only beside none of ours: in a product that already holds our variants, a
        # variant without SKU is one the merchant added (re-creating a variant deleted there must not take it).
        blank = (
            None
            if any(_ref_id(v.get("id")) in ours for v in siblings)
            else next((v for v in siblings if _is_blank_default(v)), None)
        )
        adopt = mine or blank
        if adopt is not None:
            try:
                answer = self.ecom.update_variant(int(adopt["id"]), body)
                siblings[siblings.index(adopt)] = {**adopt, **body}  # no longer a blank default
                return {**adopt, **answer}
            except NotFound:
                siblings.remove(adopt)  # deleted in eCom meanwhile: create it below
        created = self.ecom.create_variant({**body, "product": product_id})
        siblings.append(created)
        return created
