"""What the catalog worker must do in eCom, as small immutable values (planning decides, the worker executes).

Execute a plan's actions in order and record each one as soon as it succeeded (`state_after`), then the plan
itself (`state_after_plan`). Every action is safe to execute twice: creates are find-or-create, updates send the
full POS-owned payload, and a delete that finds nothing (404) has succeeded.
An update that finds nothing (the merchant deleted it in eCom) is drift, not an error: forget the id (record it as
a DeleteVariant, or start from an empty CatalogState for the product) and plan again, which recreates it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias

from pos_ecom_sync.stock import NEW_VARIANT_STOCK_TRACKING

if TYPE_CHECKING:
    from pos_ecom_sync.catalog.mapping import ProductPayload, VariantPayload


@dataclass(frozen=True)
class CreateProduct:
    """Find-or-create, so a worker that dies between the create and saving the id never makes a second product.

    Worker steps:
    1. Save `state_before(state, action)`: the intent (this title) is on record before eCom is called.
    2. Look for an eCom variant whose `sku` or `articleCode` is one of `lookup_skus`: its product is ours.
    3. Else, only when `resume_titles` is not empty (an earlier attempt recorded its intent and may have died
       after the POST), look for a product titled one of them whose only variant is eCom's untouched default
       (no sku, no articleCode): that is our half-made product.
    4. Else create it from `payload.ecom_body()`. Found or created: send the payload, link brand/category, set
       the images to `image_urls`, then save `state_after(state, action, created_id=<product id>)`.
    """

    payload: ProductPayload
    image_urls: tuple[str, ...]
    lookup_skus: tuple[str, ...]
    content_hash: str
    images_hash: str
    resume_titles: tuple[str, ...] = ()


@dataclass(frozen=True)
class UpdateProduct:
    ecom_id: int
    payload: ProductPayload
    content_hash: str


@dataclass(frozen=True)
class ReplaceProductImages:
    """Make the product's images exactly `image_urls`, in order: POS images win over images edited in eCom."""

    ecom_id: int
    image_urls: tuple[str, ...]
    images_hash: str


@dataclass(frozen=True)
class DeleteProduct:
    """The POS deleted or archived the family (default delete policy); eCom-only data goes with it (seed 000)."""

    ecom_id: int


@dataclass(frozen=True)
class HideProduct:
    """The `hide` delete policy: unpublish, keep the product and its eCom-only data."""

    ecom_id: int

    def ecom_body(self) -> dict[str, Any]:
        return {"visibility": "hidden", "isVisible": False}


@dataclass(frozen=True)
class CreateVariant:
    """Find-or-create within the product, so a retry never doubles a variant.

    The worker adopts, in this order: a variant of the product with this SKU (a create that died before its
    record); the product's untouched default variant (eCom makes one with every new product: no sku, no
    articleCode); else it creates one with `ecom_body()`. `ecom_product_id` is None when the product comes from
    the same plan's CreateProduct (use the id it recorded).
    """

    pos_id: str
    ecom_product_id: int | None
    payload: VariantPayload
    content_hash: str
    version: int

    def ecom_body(self) -> dict[str, Any]:
        return {**self.payload.ecom_body(), "stockTracking": NEW_VARIANT_STOCK_TRACKING}


@dataclass(frozen=True)
class UpdateVariant:
    ecom_variant_id: int
    pos_id: str
    payload: VariantPayload
    content_hash: str
    version: int


@dataclass(frozen=True)
class DeleteVariant:
    """Only ever planned for a variant we created: variants the merchant added in eCom are not ours to delete."""

    ecom_variant_id: int
    pos_id: str


@dataclass(frozen=True)
class RefuseCreate:
    """Creation refused by the plan's product cap: no eCom call; log it, alert, and retry once the cap is raised."""

    reason: str
    pos_ids: tuple[str, ...]


Action: TypeAlias = (
    CreateProduct
    | UpdateProduct
    | ReplaceProductImages
    | DeleteProduct
    | HideProduct
    | CreateVariant
    | UpdateVariant
    | DeleteVariant
    | RefuseCreate
)
