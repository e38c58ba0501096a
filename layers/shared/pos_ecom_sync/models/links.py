"""The link the catalog worker records between a POS variant and its eCom variant: what the stock, order and status
workers look a variant up by. Apart from the catalog models (`models.catalog`), which those workers never build."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class VariantLink:
    """A POS variant and the eCom variant the catalog worker created for it."""

    pos_product_id: str
    family_key: str
    ecom_product_id: int
    ecom_variant_id: int
