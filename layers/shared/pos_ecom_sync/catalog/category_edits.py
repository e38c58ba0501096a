"""A merchant's eCom category link flows back to the POS family's category, for a profile that takes eCom edits.

Seed 000 (R-Series) makes the category two-way ("Product information edited on either platform will sync through to
the other"). In eCom a product joins a category through a `categories/products` link, for which eCom sends no webhook
(rseries.md section 10), so the poller sweeps new links by id (`intake.category_links`) and queues, per eCom product,
the links it saw; this module decides what they mean and writes the POS category (`PosCatalog.set_category`).

Which links count (`choose_link`, pure):
- Only links to a *mapped* eCom category: the one the forward sync files a POS category under. The forward sync
  resolves a POS category name to the eCom category with that title (case-insensitive; the first by id,
  `CatalogSync._named_id`), so the reverse is the same rule: an eCom category is mapped when it is the first one
  with its title. A link to any other category (eCom-only, or a second category of the same title) stays eCom's.
  The map is derived, not recorded, so it can never disagree with what the forward sync does (a category renamed
  in eCom is no longer the one a POS name resolves to, and is no longer mapped).
- Only for products we sync (an eCom product whose variants we manage), and the family must be as we left it:
  when the POS changed the product since our last write (its content hash differs), the POS wins and the link is
  not taken (the POS change has its own message).
- Not our own links: the link our last write made is recorded in the family's state (`CatalogState.category_link`),
  and a link no newer than it is not taken either (link ids grow, NT src/core/paginate.ts walks by the highest id
  seen: such a link was made before our last write, which re-asserted the POS category; this also covers our
  earlier links, whose message may be worked after the newer write).
- Several new links to mapped categories: the newest (highest link id) wins, being the merchant's last choice.
- The POS category is only set to one that exists (the POS side finds it by name and never creates one).

Links removed in eCom are not seen by this sweep (it reads new links only): a product unlinked from its category in
eCom is put back by the next POS update or reconciliation's check (`CatalogSync._category_unlinked`). Links the
forward sync made stay when the POS category changes (it never removes links), so a product may end up in its old
and its new category in eCom; both are left to a later nightly walk.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pos_ecom_sync.catalog.sync import CatalogSync, FamilySyncResult

# The message payload key: [[link id, eCom category id], ...] of one eCom product, oldest first.
LINKS_KEY = "category_links"
# At most this many links of one product per message (the newest): only the newest mapped one can win.
MAX_LINKS_PER_MESSAGE = 20


@dataclass(frozen=True)
class LinkSeen:
    """A new `categories/products` link of one product: its id and its eCom category id."""

    link_id: int
    category_id: int


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def links_of(payload: Mapping[str, Any]) -> list[LinkSeen]:
    """The links a queued message carries (pairs that are not two positive integers are left out)."""
    pairs = payload.get(LINKS_KEY)
    links: list[LinkSeen] = []
    for pair in pairs if isinstance(pairs, list) else []:
        if isinstance(pair, list | tuple) and len(pair) == 2:
            link_id, category_id = _int(pair[0]), _int(pair[1])
            if link_id is not None and category_id is not None:
                links.append(LinkSeen(link_id, category_id))
    return links


def _norm(title: Any) -> str:
    return str(title or "").strip().casefold()


def mapped_categories(categories: Sequence[Mapping[str, Any]]) -> dict[int, str]:
    """eCom category id -> title, of the categories a POS category name resolves to: per title (case-insensitive)
    the first by id, as the forward sync picks it. Untitled categories map nothing."""
    mapped: dict[int, str] = {}
    seen: set[str] = set()
    for row in sorted(categories, key=lambda r: _int(r.get("id")) or 0):
        category_id, title = _int(row.get("id")), row.get("title")
        if category_id is None or not isinstance(title, str) or not title.strip() or _norm(title) in seen:
            continue
        seen.add(_norm(title))
        mapped[category_id] = title.strip()
    return mapped


@dataclass(frozen=True)
class LinkChoice:
    """What a product's new links mean: the link taken (None: none) and why."""

    link: LinkSeen | None
    note: str


def choose_link(links: Sequence[LinkSeen], mapped: Mapping[int, str], ours: int | None) -> LinkChoice:
    """The link whose category the POS family should take: the newest link to a mapped category, unless that one is
    our own (see the module doc)."""
    relevant = sorted((link for link in links if link.category_id in mapped), key=lambda link: link.link_id)
    if not relevant:
        return LinkChoice(None, "no link to a category synced with the POS (eCom-only categories stay eCom's)")
    newest = relevant[-1]
    if ours is not None and newest.link_id <= ours:
        what = "our own write" if newest.link_id == ours else f"older than our last link {ours}: the POS chose later"
        return LinkChoice(None, f"link {newest.link_id} is {what}")
    return LinkChoice(newest, f"link {newest.link_id} to category {mapped[newest.category_id]!r}")


def take_category_links(sync: CatalogSync, product_id: int, links: Sequence[LinkSeen]) -> FamilySyncResult:
    """The I/O around `choose_link` for one eCom product: which family it is (one eCom read of its variants), its
    state, the mapped categories (the worker's cached eCom category list, read afresh when a linked category is not
    in it), the POS family (read only when a link is taken), and the POS write. After the write the family is read
    again and, when only its category changed, its state takes the new content hash, so the POS feed's echo of the
    write plans no eCom call (the link the merchant made is already there)."""
    # Here, not at the top: the poller imports this module's constants only, and the mapping's models are not free.
    from pos_ecom_sync.catalog.mapping import map_family

    cid = sync.connection.connection_id
    result = sync.edit_results()

    fallback_key = f"ecom:product:{product_id}"
    if not links:
        return result(fallback_key, "unchanged", "no category link")
    found = None
    for row in sync.ecom.list_variants(product_id=product_id):
        variant_id = _int(row.get("id"))
        if variant_id is not None and (found := sync.store.variant_link(cid, ecom_variant_id=variant_id)):
            break
    if found is None:
        return result(fallback_key, "unchanged", f"eCom product {product_id} is not one we manage")
    key = found.family_key
    stored = sync.store.get_catalog_state(cid, key)
    state = stored.state
    if state.ecom_product_id != product_id or state.deleted_in_pos or state.unlinked_reason is not None:
        return result(key, "unchanged", f"eCom product {product_id} is not the family's live product")
    cache_key = f"{cid}|{sync.connection.ecom_base_url}|categories"  # the forward sync's list (`_named_id`)
    categories = sync.reference.get(cache_key, sync.ecom.list_categories)
    known = {_int(row.get("id")) for row in categories}
    if any(link.category_id not in known for link in links):
        categories = sync.ecom.list_categories()  # made since the list was cached: it may sort before a known one
    choice = choose_link(links, mapped_categories(categories), state.category_link)
    if choice.link is None:
        return result(key, "unchanged", choice.note)
    title = mapped_categories(categories)[choice.link.category_id]
    family = sync.pos.read_family(key)
    if family is None:
        return result(key, "not found", "the POS has no such product")
    before = map_family(family)
    if _norm(before.payload.category) == _norm(title):
        return result(key, "unchanged", f"{choice.note}: the POS family is already in it")
    if state.product_hash != before.content_hash:
        return result(key, "unchanged", f"{choice.note}: the POS changed the product since our last write (POS wins)")
    if not sync.pos.set_category(key, title):
        return result(key, "unchanged", f"{choice.note}: the POS has no single category of that name (none created)")
    taken = f"{key} category={title!r} ({choice.note})"
    family = sync.pos.read_family(key)
    if family is not None:
        after = map_family(family)
        if after.payload.ecom_body() == before.payload.ecom_body() and _norm(after.payload.category) == _norm(title):
            settled = state.model_copy(update={"product_hash": after.content_hash})
            sync.store.save_catalog_state(cid, key, stored, settled)
    return result(key, "applied", "the POS family took the category", taken)
