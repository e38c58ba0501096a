"""Catalog sync POS -> eCom as pure rules: `map_family` (what eCom should hold) and `plan_catalog_sync` (the calls).

The product worker does the I/O around them: read the POS family, map, load state, plan, execute, record.
"""

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
from pos_ecom_sync.catalog.mapping import (
    DesiredProduct,
    DesiredVariant,
    OptionValue,
    ProductPayload,
    VariantPayload,
    content_hash,
    map_family,
)
from pos_ecom_sync.catalog.planning import (
    CatalogPlan,
    CatalogSettings,
    CatalogState,
    plan_catalog_sync,
    state_after,
    state_after_plan,
    state_before,
)

__all__ = [
    "Action",
    "CatalogPlan",
    "CatalogSettings",
    "CatalogState",
    "CreateProduct",
    "CreateVariant",
    "DeleteProduct",
    "DeleteVariant",
    "DesiredProduct",
    "DesiredVariant",
    "HideProduct",
    "OptionValue",
    "ProductPayload",
    "RefuseCreate",
    "ReplaceProductImages",
    "UpdateProduct",
    "UpdateVariant",
    "VariantPayload",
    "content_hash",
    "map_family",
    "plan_catalog_sync",
    "state_after",
    "state_after_plan",
    "state_before",
]
