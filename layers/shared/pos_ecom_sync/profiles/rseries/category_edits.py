"""A merchant's eCom category link into R-Series (`catalog.category_edits`; seed 000, category two-way).

The family's category is its parent's `categoryID` (the Matrix Master's, or the simple item's: `mapping` reads the
family's category there, KVH itemmatrix.md / item.md). The eCom category carries only a title, the name a Category
was synced under (`Category.name`, `catalog.RSeriesCatalog`), so the Category is found by name (case-insensitive,
as the forward sync matches eCom titles) among every live Category (`GET Category.json`, KVH category.md; a
Category DELETE deletes, so every listed one is live). Never created from eCom: no Category of that name, or more
than one (names are unique only per parent: the title cannot tell which), writes nothing. The write is one
`PUT ItemMatrix/{id}.json` or `PUT Item/{id}.json` with `categoryID` (1 drip: only Category writes cost 10, KVH
rate-limiting.md); the list is read afresh each time (a category made minutes ago must be found; edits are rare).
"""

from __future__ import annotations

from typing import Any, Protocol

from pos_ecom_sync.errors import InvalidInput
from pos_ecom_sync.profiles.rseries import envelope
from pos_ecom_sync.profiles.rseries.feeds import MATRIX_PREFIX

JsonObject = dict[str, Any]


class CategoryWrites(Protocol):
    """What this needs from `client.RSeriesClient`."""

    def list_categories(self) -> list[JsonObject]: ...
    def update_item(self, item_id: str | int, fields: JsonObject) -> JsonObject: ...
    def update_matrix(self, matrix_id: str | int, fields: JsonObject) -> JsonObject: ...


def category_id_named(categories: list[JsonObject], name: str) -> str | None:
    """The id of the one Category called `name` (case-insensitive, trimmed); None for none or several."""
    wanted = name.strip().casefold()
    ids = {
        found
        for row in categories
        if str(row.get("name", "")).strip().casefold() == wanted
        and (found := envelope.reference(row.get("categoryID"))) is not None
        and found.isdigit()
    }
    return next(iter(ids)) if wanted and len(ids) == 1 else None


def set_family_category(client: CategoryWrites, family_key: str, name: str) -> bool:
    """Put the family's parent in the Category called `name`; False (nothing written) when there is no single one."""
    category_id = category_id_named(client.list_categories(), name)
    if category_id is None:
        return False
    key = family_key.strip()
    if key.startswith(MATRIX_PREFIX) and key[len(MATRIX_PREFIX) :].isdigit():
        client.update_matrix(key[len(MATRIX_PREFIX) :], {"categoryID": category_id})
    elif key.isdigit():
        client.update_item(key, {"categoryID": category_id})
    else:
        raise InvalidInput(f"not an R-Series family key: {key[:40]!r}")
    return True
