"""The POS product an imported order's shipping charge is a sale line on, so the POS sale totals the eCom order.

A POS sale has no shipping charge field (X-Series: `ecom_custom_charges` is read-only, X26 sales), so the charge is a
line on a product: the connection's `shipping_product_id`, set up by the profile (X-Series:
`profiles.xseries.shipping`). An order that charges shipping while none is set is held with the reason
(`shipping_hold_reason`), never imported with a total short of the order's; `orders retry` imports it once the
product is set.
"""

from __future__ import annotations

from decimal import Decimal

from pos_ecom_sync.models.orders import EcomOrder


def shipping_hold_reason(order: EcomOrder, shipping_product_id: str | None) -> str | None:
    """Why `order` cannot be imported yet (it charges shipping and the connection has no shipping product), or None."""
    charged = Decimal(str(order.shipment_price_incl))
    if charged <= 0 or shipping_product_id:
        return None
    return (
        f"the order charges shipping {charged:.2f} and the connection has no POS shipping product, so the POS sale "
        "would not total the eCom order: set one with `pos-ecom-sync orders shipping-product <connection> "
        "--find-or-create` (or a product id), then `pos-ecom-sync orders retry <connection> <order id>`"
    )
