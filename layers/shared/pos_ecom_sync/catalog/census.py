"""Which SKUs eCom holds, as a warm sandbox knows them: so a product create looks an SKU up only when eCom may hold it.

A product create first looks its first SKU up in eCom (`CatalogSync._find_or_create_product`: a merchant's own
product, or one of ours whose record was lost, is linked rather than made twice). In an import into a shop that holds
none of the POS's SKUs every such lookup finds nothing: one read per family, a tenth of the import's calls above the
API minimum. The census walks eCom's variants by id instead (`GET variants.json?since_id=`, 250 a page) and answers
"eCom held no variant with this SKU" without a call; "it may" still costs the lookup, which decides.

What it sees, and when (the lookup it replaces saw eCom at the moment of the create):
- Variants by id: the walk is complete once a page comes back short (as `EcomClient._all_pages` ends a list), and
  from then on the variants created since are read from the highest id seen (`since_id`), at most `ttl_s` after the
  last read (the warm cache's `reference.ReferenceCache.ttl_s`, 5 minutes). A variant the merchant
  creates in eCom with a POS SKU is therefore seen within that time; one created after our product is not seen by
  the lookup either.
- SKUs we write (our own creates and updates, `note`) count at once.
- Not seen: an SKU typed into an *existing* eCom variant after the walk read it (an edit keeps its id). The walk is
  per warm sandbox, so that window is at most one sandbox's life.
- Deleted variants stay in the census: their SKU costs a lookup that finds nothing (never a wrong link).
- The walk is paid for as it goes (ski rental): while incomplete, each create still makes its lookup and reads one
  page more, so a shop of N variants costs at most N/250 extra reads before lookups stop, and a single sync (the
  CLI) one read more than before.
- `since_id` ignored by eCom (contracts/ecom.json `unverified`: a page with ids at or below the one asked for): the
  census is never trusted, and every create makes its lookup as before.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Protocol

JsonObject = dict[str, Any]
PAGE = 250  # eCom's page size cap (connectors.ecom.MAX_LIMIT): a shorter page is the end


class VariantPages(Protocol):
    def list_variants_since(self, since_id: int | None, limit: int = PAGE) -> list[JsonObject]: ...


def _id(row: JsonObject) -> int:
    value = row.get("id")
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


class SkuCensus:
    """The SKUs of one eCom shop's variants (see the module doc). Safe to share between threads."""

    def __init__(self, ttl_s: float, clock: Callable[[], float]) -> None:
        self._ttl_s = ttl_s
        self._clock = clock
        self._lock = threading.Lock()
        self._skus: set[str] = set()
        self._top: int | None = None  # the highest variant id read
        self._complete = False  # the walk reached a short page
        self._read_at = 0.0  # when the last page was read
        self._broken = False  # eCom ignored since_id: never trusted

    @property
    def trusted(self) -> bool:
        return self._complete and not self._broken

    def may_hold(self, sku: str, ecom: VariantPages) -> bool:
        """False only when eCom held no variant with `sku` when last read (at most `ttl_s` ago). While the walk is
        incomplete this reads one page of it (the caller then makes its own lookup)."""
        with self._lock:
            if self._broken:
                return True
            if not self._complete:
                self._read_page(ecom)
                return True
            if self._clock() - self._read_at >= self._ttl_s:
                while self._read_page(ecom):  # the variants created since the last read (one page, usually)
                    pass
                if self._broken:
                    return True
            return sku in self._skus

    def note(self, sku: Any) -> None:
        """An SKU we just wrote to an eCom variant."""
        if isinstance(sku, str) and sku:
            with self._lock:
                self._skus.add(sku)

    def _read_page(self, ecom: VariantPages) -> bool:
        """Read the next page; True when a full page says there is more."""
        since = self._top
        rows = ecom.list_variants_since(since, PAGE)
        self._read_at = self._clock()
        if since is not None and any(_id(row) <= since for row in rows):
            self._broken = True  # `since_id` ignored: the pages do not move on
            return False
        for row in rows:
            sku = row.get("sku")
            if isinstance(sku, str) and sku:
                self._skus.add(sku)
        self._top = max((_id(row) for row in rows), default=since)
        full = len(rows) >= PAGE
        self._complete = self._complete or not full
        return full
