"""The X-Series catalog as reconciliation walks it (`reconcile.service.PosCatalogFeed`): every product row by version.

Apart from `profiles.xseries.catalog` so that the catalog worker, which reads one family at a time, does not import
the change feeds' types at its cold start.
"""

from __future__ import annotations

from typing import Any, Protocol

from pos_ecom_sync.intake.rows import row_id, row_version
from pos_ecom_sync.models.catalog import FamilyRow
from pos_ecom_sync.models.feeds import ChangePage
from pos_ecom_sync.profiles.xseries.feeds import VersionPage, after_version, family_key

JsonObject = dict[str, Any]


def family_row(row: JsonObject) -> FamilyRow:
    """What the catalog compare reads of a product row; InvalidInput when its id, parent id or version cannot be
    read."""
    return FamilyRow(family_key(row), row_id(row), row_version(row), bool(row.get("deleted_at")))


class ProductFeed(Protocol):
    @property
    def calls(self) -> int: ...
    def list_changes(
        self, resource: str, after: int | None, page_size: int = 200, include_deleted: bool = True
    ) -> VersionPage: ...


class XSeriesCatalogWalk:
    """Every product row by version, deleted ones included (`reconcile.service.PosCatalogFeed`): X20
    `GET /api/2.0/products?after=&deleted=true`. A short page does not end the walk (it may be a server-side page cap
    below `page_size`); only an empty one does."""

    def __init__(self, client: ProductFeed) -> None:
        self.client = client

    @property
    def calls(self) -> int:
        return self.client.calls

    def catalog_page(self, cursor: str | None, page_size: int) -> ChangePage:
        page = self.client.list_changes("products", after_version(cursor), page_size, include_deleted=True)
        if not page.items or page.max_version is None:
            return ChangePage()
        return ChangePage(page.items, str(page.max_version), more=True)

    def family_row(self, row: JsonObject) -> FamilyRow:
        return family_row(row)

    def row_name(self, row: JsonObject) -> tuple[Any, Any]:
        return row.get("id"), row.get("version")
