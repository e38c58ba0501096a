"""The X-Series catalog as the catalog worker reads it (`catalog.sync.PosCatalog`): a family from any of its rows.

A family is read from its parent (the parent row and its variants, deleted ones included), never through a
`family_id` filter: no X-Series list declares one. A product without variants is a family of one. With an online
price book the family's entries are read too (`mapping.online_price_entries`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from pos_ecom_sync.catalog.ecom_edits import PosEdit
from pos_ecom_sync.errors import ConfigurationError, NotFound
from pos_ecom_sync.models.catalog import PosFamily
from pos_ecom_sync.models.connection import Connection
from pos_ecom_sync.profiles.xseries.mapping import PosProduct, family_of_rows, online_price_entries

JsonObject = dict[str, Any]


class ProductReads(Protocol):
    @property
    def calls(self) -> int: ...
    def get_product(self, product_id: str) -> JsonObject | None: ...
    def list_family(self, parent_id: str, parent: JsonObject | None = None) -> list[JsonObject]: ...
    def list_price_book_entries(self, price_book_id: str, product_ids: Sequence[str]) -> list[JsonObject]: ...


class XSeriesCatalog:
    def __init__(self, client: ProductReads, connection: Connection) -> None:
        self.client = client
        self.connection = connection

    @property
    def calls(self) -> int:
        return self.client.calls

    def read_family(self, product_id: str) -> PosFamily | None:
        row = self.client.get_product(product_id)
        if row is None:
            return None
        parent_id = str(row.get("variant_parent_id") or (row["id"] if row.get("has_variants") else ""))
        rows = self.client.list_family(parent_id, parent=row) if parent_id else [row]
        family = [PosProduct.model_validate(r) for r in rows] or [PosProduct.model_validate(row)]
        parent = next((p for p in family if p.variant_parent_id is None and p.has_variants), None)
        parent = parent or next((p for p in family if p.variant_parent_id is None), family[0])
        variants = [p for p in family if p.id != parent.id]
        return family_of_rows(parent, variants, online_prices_excl=self._online_prices(family))

    def apply_edits(self, family_key: str, edits: Sequence[PosEdit]) -> None:
        """Never called: eCom product edits do not flow back to X-Series (seed 003; `takes_ecom_edits` is False)."""
        raise ConfigurationError(
            f"X-Series takes no eCom product edits (seed 003): {len(edits)} edit(s) of family {family_key} not written"
        )

    def set_category(self, family_key: str, category: str) -> bool:
        """Never called: eCom category links do not flow back to X-Series (seed 003; `takes_ecom_edits` is False)."""
        raise ConfigurationError(f"X-Series takes no eCom category links (seed 003): family {family_key} unchanged")

    def _online_prices(self, family: list[PosProduct]) -> dict[str, float] | None:
        """The family's online prices (tax exclusive) from the connection's online price book; None: no book."""
        book = self.connection.online_price_book_id
        if not book:
            return None
        try:
            entries = self.client.list_price_book_entries(book, [row.id for row in family if not row.is_deleted])
        except NotFound as exc:
            raise ConfigurationError(
                f"the online price book {book} does not exist in the POS: set another with "
                f"`pos-ecom-sync catalog online-price-book {self.connection.connection_id} <id>` (or --none)"
            ) from exc
        return online_price_entries(entries, book)
