"""eCom edits that flow back to the POS, for a POS profile that takes them (pure, no I/O).

Seed 000 (R-Series): "The product sync between Retail POS and eCom is bi-directional. Product information edited
on either platform will sync through to the other", and "Change the price in eCom and the updated price will sync
back to the Online price in your Retail POS". Under X-Series (seed 003) eCom product edits never flow back: this
module is only used for a profile whose `takes_ecom_edits` is true.

Fields that flow back (`PosEdit.field`): the product title -> the family's name ("name", on the family's parent: a
simple item or a matrix master); the product's brand -> the family's brand ("brand", on the parent, by title: the
POS finds or makes its brand of that name; "" clears it); a variant's SKU ("sku"), EAN ("ean") and price
("online_price", tax exclusive: the POS's online price, never its default/retail one); a variant's option values
("options", seed 000 table "Attribute Values <-> Option Values"). Images flow one way (POS -> eCom, seed 000);
description and visibility are eCom's own for such a POS (`PosFamily.ecom_owned`); the other synced fields (weight,
sizes) are not taken back [not named by seed 000 as eCom-editable in this sync]. The category is a link of its own
(`categories/products`), for which eCom sends no webhook: not taken back.

Option values: eCom documents no writable option on a variant (NT variant.ts: `options` is a read-only array, not in
`variantInputSchema`), so the sync writes them as the variant's `title`, the values joined by ", " in the POS's
order (`mapping.map_variant`), and takes an edited title back the same way: split on commas, one value per option
of the POS item. Refused with the reason: a title whose value count differs from the item's (a value holding a
comma, an added or dropped value; an item without options, whose title is eCom's default one), an empty value, or
values another variant of the family holds (or takes in the same plan): a variant is its combination of values, and
two variants with one combination cannot be told apart in the POS matrix or in eCom.

The brand is a relation on eCom's product row (an eCom brand id), linked apart from the product body and carried
by name in the POS family: the caller resolves the ids a plan needs to titles first (`brand_ids`, then eCom's
`brands/{id}` read), and a plan without a title for the new brand refuses the edit. "The POS changed it too" is told
without a stored name: the POS's product fields still hash as our last write did (nothing changed there), or the POS
brand is the title of the brand our last write left in eCom.

What counts as a merchant's edit: eCom's row differs from eCom's own answer to our last write (`CatalogState.
product_shown` / `variants_shown`, the baseline content reconciliation also compares with). Our own writes therefore
never look like edits (their webhook echo shows exactly the recorded answer), and a family without a recorded
baseline takes nothing back until its next write records one.

Both sides changed: the POS is the system of record. When the POS's current value of an edited field also differs
from what we last wrote (the POS changed it since), the eCom edit is dropped (`EditPlan.pos_wins`); the POS change
has its own message, whose sync writes the POS value over the eCom edit.

After the POS took the edits (`settled`), the family's state records the new agreement: the hashes of the POS
family as read again after the write and eCom's current rows as the baseline, so the POS feed's echo of our write
plans no eCom call. Only where the POS family then shows in eCom exactly what eCom holds (apart from the eCom
fields an edit covered, e.g. the tax-inclusive price eCom derived from the edited one) and nothing else of it was
pending before: otherwise the hash is left alone and the normal plan writes what differs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pos_ecom_sync.catalog.mapping import DesiredProduct, DesiredVariant
from pos_ecom_sync.catalog.shown import product_shown, variant_shown
from pos_ecom_sync.models.catalog import CatalogState, EcomVariantRef

EditField = Literal["name", "sku", "ean", "online_price", "brand", "options"]
# Float noise of a JSON round trip, not a price change (prices are kept to 5 decimals).
PRICE_TOLERANCE = 1e-6
# `mapping.map_variant` joins a variant's option values into its eCom title with ", ".
OPTION_SEPARATOR = ","


@dataclass(frozen=True)
class PosEdit:
    """One POS field to set from eCom. `item_id`: the family key for "name" and "brand" (its parent), else a
    sellable item's POS id. `value`: text (a brand's title, "" for none), for "online_price" a tax-exclusive
    amount, for "options" the item's new option values in the order of its options (`VariantPayload.options`)."""

    item_id: str
    field: EditField
    value: str | float | tuple[str, ...]


@dataclass(frozen=True)
class EditSpec:
    field: EditField
    detect: tuple[str, ...]  # eCom row keys whose change is this edit
    covered: tuple[str, ...]  # eCom body keys the POS value of this field maps to (they follow the edit)


BRAND = EditSpec("brand", ("brand",), ("brand",))  # a relation, linked apart from the product body
PRODUCT_SPECS = (EditSpec("name", ("title",), ("title", "fulltitle")), BRAND)
VARIANT_SPECS = (
    EditSpec("sku", ("sku",), ("sku", "articleCode")),
    EditSpec("ean", ("ean",), ("ean",)),
    # The POS online price is tax exclusive: priceExcl is taken whichever side the merchant typed (eCom derives
    # the other one with its tax rate).
    EditSpec("online_price", ("priceExcl", "priceIncl"), ("priceExcl", "priceIncl")),
    EditSpec("options", ("title",), ("title",)),  # the option values travel in the variant title
)
_SPEC_OF = {spec.field: spec for spec in (*PRODUCT_SPECS, *VARIANT_SPECS)}
_PRODUCT_FIELDS = frozenset(spec.field for spec in PRODUCT_SPECS)


@dataclass(frozen=True)
class EditPlan:
    edits: tuple[PosEdit, ...] = ()
    # "<where> <field>": edited in eCom while the POS changed it too since our last write (the POS wins).
    pos_wins: tuple[str, ...] = ()
    # "<where> <field>[: reason]": an eCom value the POS cannot take (an empty title; a price of 0 or less, which
    # the POS would read as "no online price"; option values that do not fit the item or repeat another
    # variant's): not sent.
    refused: tuple[str, ...] = ()

    def describe(self) -> str:
        parts = [f"{e.item_id} {e.field}={e.value!r}" for e in self.edits]
        parts += [f"{what} (POS changed it too: POS wins)" for what in self.pos_wins]
        parts += [f"{what} (not taken: invalid for the POS)" for what in self.refused]
        return "; ".join(parts) or "no eCom edit"


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return math.isclose(float(a), float(b), rel_tol=0.0, abs_tol=PRICE_TOLERANCE)
    return bool(a == b)


def _edited(spec: EditSpec, shown: Mapping[str, Any], now: Mapping[str, Any]) -> bool:
    return any(key in shown and key in now and not _same(now[key], shown[key]) for key in spec.detect)


def _pos_changed(spec: EditSpec, shown: Mapping[str, Any], body: Mapping[str, Any]) -> bool:
    return any(key in shown and key in body and not _same(body[key], shown[key]) for key in spec.covered)


def _value(spec: EditSpec, now: Mapping[str, Any]) -> str | float | None:
    """The POS value of an edited eCom row (None: not one the POS can take)."""
    if spec.field == "online_price":
        price = now.get("priceExcl")
        if not isinstance(price, int | float) or isinstance(price, bool) or not math.isfinite(price) or price <= 0:
            return None
        return float(price)
    value = now.get(spec.detect[0])
    if not isinstance(value, str):
        return None
    value = value.strip()
    return value if value or spec.field != "name" else None


def _option_values(now: Mapping[str, Any], variant: DesiredVariant) -> tuple[tuple[str, ...] | None, str]:
    """The option values an edited variant title carries, or None and why the POS cannot take them."""
    title, names = now.get("title"), [option.name for option in variant.payload.options]
    if not isinstance(title, str):
        return None, "no title"
    if not names:
        return None, f"{title[:60]!r}: the POS item has no option values to take it"
    values = tuple(value.strip() for value in title.split(OPTION_SEPARATOR))
    if len(values) != len(names):
        return None, f"{title[:60]!r}: {len(values)} values for the {len(names)} options {', '.join(names)}"
    if not all(values):
        return None, f"{title[:60]!r}: an empty option value"
    return values, ""


def _combination(values: Sequence[str]) -> tuple[str, ...]:
    return tuple(value.strip().casefold() for value in values)


def _without_clashes(edits: list[PosEdit], desired: DesiredProduct) -> tuple[tuple[PosEdit, ...], list[str]]:
    """The edits less the option edits whose values another variant of the family holds once the plan is applied,
    and why those are refused."""
    final = {v.pos_id: _combination([o.value for o in v.payload.options]) for v in desired.variants}
    for edit in edits:
        if edit.field == "options" and isinstance(edit.value, tuple):
            final[edit.item_id] = _combination(edit.value)
    clashes: dict[str, str] = {}
    for edit in edits:
        if edit.field == "options":
            other = next((p for p, c in final.items() if p != edit.item_id and c == final[edit.item_id]), None)
            if other is not None:
                clashes[edit.item_id] = other
    refused = [
        f"variant {e.item_id} options {', '.join(e.value)[:60]!r}: variant {clashes[e.item_id]} has those values"
        for e in edits
        if e.field == "options" and e.item_id in clashes and isinstance(e.value, tuple)
    ]
    return tuple(e for e in edits if not (e.field == "options" and e.item_id in clashes)), refused


def _norm(title: str | None) -> str:
    """A brand title as the sync matches them (eCom brand titles are matched case-insensitively, `catalog.sync`)."""
    return (title or "").strip().casefold()


def _ours(state: CatalogState, product: Mapping[str, Any] | None) -> bool:
    return product is not None and product.get("id") == state.ecom_product_id and bool(state.product_shown)


def brand_ids(state: CatalogState, desired: DesiredProduct, product: Mapping[str, Any] | None) -> frozenset[int]:
    """The eCom brands whose titles `plan_ecom_edits` needs (none unless the product's brand was edited in eCom):
    the brand eCom's row names now and, when the POS's product fields changed since our last write, the brand that
    write left."""
    if not _ours(state, product) or product is None:
        return frozenset()
    shown, now = state.product_shown, product_shown(product)
    if not _edited(BRAND, shown, now):
        return frozenset()
    wanted = [now.get("brand")] + ([shown.get("brand")] if state.product_hash != desired.content_hash else [])
    return frozenset(brand for brand in wanted if isinstance(brand, int) and not isinstance(brand, bool))


def _brand_pos_changed(state: CatalogState, desired: DesiredProduct, titles: Mapping[int, str]) -> bool:
    if state.product_hash == desired.content_hash:
        return False  # the POS's product fields are as we last wrote them
    left = state.product_shown.get("brand")
    if left is None:
        return _norm(desired.payload.brand) != ""
    title = titles.get(left) if isinstance(left, int) else None
    return title is None or _norm(title) != _norm(desired.payload.brand)  # unknown: the POS wins


def _brand_value(now: Mapping[str, Any], titles: Mapping[int, str]) -> str | None:
    """The POS brand of eCom's row: its brand's title, "" for none, None when the title is unknown (refused)."""
    brand = now.get("brand")
    if brand is None:
        return ""
    title = titles.get(brand) if isinstance(brand, int) else None
    return title.strip() if title and title.strip() else None


def plan_ecom_edits(
    state: CatalogState,
    desired: DesiredProduct,
    product: Mapping[str, Any] | None,
    variants: Sequence[Mapping[str, Any]],
    brand_titles: Mapping[int, str] | None = None,
) -> EditPlan:
    """The POS edits that bring the POS family in line with the merchant's eCom edits. `desired`: the family as the
    POS holds it now (mapped); `product`: eCom's product row (None: not read); `variants`: eCom rows of its variants
    (any subset; only ours count); `brand_titles`: eCom brand id -> title of the brands `brand_ids` names."""
    titles = brand_titles or {}
    if state.ecom_product_id is None or state.deleted_in_pos or state.unlinked_reason is not None or desired.deleted:
        return EditPlan()
    edits: list[PosEdit] = []
    pos_wins: list[str] = []
    refused: list[str] = []

    def consider(
        where: str,
        item_id: str,
        spec: EditSpec,
        shown: Mapping[str, Any],
        now: Mapping[str, Any],
        body: Mapping[str, Any],
        variant: DesiredVariant | None = None,
    ) -> None:
        if not _edited(spec, shown, now):
            return
        brand = spec is BRAND
        if _brand_pos_changed(state, desired, titles) if brand else _pos_changed(spec, shown, body):
            pos_wins.append(f"{where} {spec.field}")
            return
        if spec.field == "options" and variant is not None:
            values, why = _option_values(now, variant)
            if values is None:
                refused.append(f"{where} {spec.field} {why}")
            elif values != tuple(option.value for option in variant.payload.options):
                edits.append(PosEdit(item_id, spec.field, values))
            return  # the same values spelled differently: nothing for the POS
        value = _brand_value(now, titles) if brand else _value(spec, now)
        if value is None:
            refused.append(f"{where} {spec.field}")
            return
        edits.append(PosEdit(item_id, spec.field, value))

    if product is not None and _ours(state, product):
        now, body = product_shown(product), desired.payload.ecom_body()
        for spec in PRODUCT_SPECS:
            consider(f"product {desired.pos_id}", desired.pos_id, spec, state.product_shown, now, body)
    rows = {row.get("id"): row for row in variants}
    wanted = {variant.pos_id: variant for variant in desired.variants}
    for pos_id, ref in sorted(state.variants.items()):
        row, variant, shown = rows.get(ref.ecom_variant_id), wanted.get(pos_id), state.variants_shown.get(pos_id)
        if row is None or variant is None or not shown:
            continue  # not listed, no longer sold in the POS, or no baseline recorded yet
        now, body = variant_shown(row), variant.payload.ecom_body()
        for spec in VARIANT_SPECS:
            consider(f"variant {pos_id}", pos_id, spec, shown, now, body, variant)
    kept, clashing = _without_clashes(edits, desired)
    return EditPlan(kept, tuple(pos_wins), (*refused, *clashing))


def edited_in_ecom(
    state: CatalogState, product: Mapping[str, Any] | None, variants: Sequence[Mapping[str, Any]]
) -> bool:
    """Whether eCom's rows differ from our last write in a field that flows back (no POS read needed to tell): the
    echo of our own write does not."""
    if product is not None and _ours(state, product):
        now = product_shown(product)
        if any(_edited(spec, state.product_shown, now) for spec in PRODUCT_SPECS):
            return True
    rows = {row.get("id"): row for row in variants}
    for pos_id, ref in state.variants.items():
        row, shown = rows.get(ref.ecom_variant_id), state.variants_shown.get(pos_id)
        if row is not None and shown and any(_edited(spec, shown, variant_shown(row)) for spec in VARIANT_SPECS):
            return True
    return False


def _agrees(body: Mapping[str, Any], now: Mapping[str, Any], covered: set[str]) -> bool:
    """The POS payload's eCom body shows in eCom as `now` does, apart from the `covered` keys."""
    return all(_same(value, now[key]) for key, value in body.items() if key in now and key not in covered)


def settled(
    state: CatalogState,
    before: DesiredProduct,
    after: DesiredProduct,
    product: Mapping[str, Any] | None,
    variants: Sequence[Mapping[str, Any]],
    edits: Sequence[PosEdit],
) -> CatalogState:
    """The family's state once the POS took `edits`: `before`/`after` the family as mapped before and after the POS
    write, `product`/`variants` eCom's rows the edits came from. See the module doc."""
    # A simple item's family key is its own item id: product and variant edits are told apart by field.
    product_keys = {key for e in edits if e.field in _PRODUCT_FIELDS for key in _SPEC_OF[e.field].covered}
    covered: dict[str, set[str]] = {}
    for edit in edits:
        if edit.field not in _PRODUCT_FIELDS:
            covered.setdefault(edit.item_id, set()).update(_SPEC_OF[edit.field].covered)
    update: dict[str, Any] = {}
    # A brand edit is taken when the POS family now carries that brand (the body has no brand to compare).
    brand_taken = all(_norm(after.payload.brand) == _norm(str(e.value)) for e in edits if e.field == "brand")
    if (
        product_keys
        and product is not None
        and state.product_hash == before.content_hash
        and brand_taken
        and _agrees(after.payload.ecom_body(), product_shown(product), product_keys)
    ):
        update["product_hash"] = after.content_hash
        owned = after.payload.ecom_owned
        update["product_shown"] = {k: v for k, v in product_shown(product).items() if k not in owned}
    rows = {row.get("id"): row for row in variants}
    was = {variant.pos_id: variant for variant in before.variants}
    now_wanted: dict[str, DesiredVariant] = {variant.pos_id: variant for variant in after.variants}
    refs: dict[str, EcomVariantRef] = dict(state.variants)
    shown = dict(state.variants_shown)
    for pos_id, keys in covered.items():
        ref, old, new = state.variants.get(pos_id), was.get(pos_id), now_wanted.get(pos_id)
        row = rows.get(ref.ecom_variant_id) if ref is not None else None
        if ref is None or old is None or new is None or row is None or old.content_hash != ref.content_hash:
            continue
        now = variant_shown(row)
        if _agrees(new.payload.ecom_body(), now, keys):
            refs[pos_id] = ref.model_copy(update={"content_hash": new.content_hash})
            shown[pos_id] = now
    if refs != state.variants:
        update["variants"] = refs
        update["variants_shown"] = shown
    return state.model_copy(update=update) if update else state
