"""The connection's shipping product on X-Series: the POS product imported orders carry their shipping charge on
(`orders.shipping`).

At connection setup (`ensure_shipping_product`, from `pos-ecom-sync orders shipping-product <id> --find-or-create`
or `connections create`) it is found by its SKU (`GET /api/2.0/products?sku=`, X20) or else created
(`POST /api/2.0/products`, X20 "Create product": name, sku, a zero price; the line carries the order's amount). The
SKU is fixed (`SHIPPING_SKU`), so a run that died after the create finds that product the next time instead of
making a second one.

Not documented by X-Series: whether a product created without `inventory` rows tracks stock (the create body has no
switch for it; the product read has `has_inventory`). Either way the sale line sells one unit per order at the first
outlet of the plan: if the POS tracks it, its level goes below zero, which nothing reads (the product is not sold
online). A POS that refuses the create (e.g. a token without `products:write`) gets a clear error naming the SKU to
create by hand.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from pos_ecom_sync.errors import InvalidInput, UpstreamError

# The SKU of the shipping product this sync finds or creates (an operator may set any other product by its id).
SHIPPING_SKU = "ECOM-SHIPPING"
SHIPPING_NAME = "Shipping (online orders)"

JsonObject = dict[str, Any]


class ShippingProducts(Protocol):
    def find_products_by_sku(self, sku: str) -> list[JsonObject]: ...
    def create_product(self, fields: JsonObject) -> str: ...


@dataclass(frozen=True)
class ShippingProduct:
    product_id: str
    sku: str
    created: bool


def _sellable(rows: Sequence[JsonObject]) -> list[str]:
    return sorted({str(r["id"]) for r in rows if r.get("id") and not r.get("has_variants") and not r.get("deleted_at")})


def ensure_shipping_product(
    pos: ShippingProducts, *, sku: str = SHIPPING_SKU, name: str = SHIPPING_NAME, create: bool = True
) -> ShippingProduct:
    """The POS product with `sku`, created (once) when there is none and `create` is set.

    Raises `InvalidInput` with what to do when several products carry the SKU, when there is none and `create` is
    off, or when the POS refuses the create (4xx). Other failures (throttling, outages) propagate: run it again.
    """
    found = _sellable(pos.find_products_by_sku(sku))
    if len(found) > 1:
        raise InvalidInput(
            f"{len(found)} POS products have the SKU {sku!r} ({', '.join(found)}): set one by its id "
            "(`pos-ecom-sync orders shipping-product <connection> <product id>`)"
        )
    if found:
        return ShippingProduct(found[0], sku, created=False)
    if not create:
        raise InvalidInput(f"no POS product has the SKU {sku!r} (run with --find-or-create to create it)")
    fields: JsonObject = {"name": name, "sku": sku, "price_excluding_tax": 0, "is_active": True}
    try:
        product_id = pos.create_product(fields)
    except UpstreamError as refused:
        if refused.status >= 500:
            raise
        raise InvalidInput(
            f"the POS refused to create the shipping product ({refused.status}): create a product with the SKU "
            f"{sku!r} in the POS (no inventory tracking) and run this again, or set any product by its id"
        ) from refused
    return ShippingProduct(product_id, sku, created=True)
