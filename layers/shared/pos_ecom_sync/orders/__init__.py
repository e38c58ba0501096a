"""Order import eCom -> POS as pure rules: match lines, route to outlets, match the customer, decide the payment,
build the sale. The order worker does the I/O around them, in this order:

1. `match_lines` -> a `Hold` (record the reason, import nothing) or the matched `LineDemand`s.
2. `route_order` with per-outlet stock -> a `FulfillmentPlan` (one fulfillment per outlet, status New).
3. `match_customer` on the POS customers found by email -> use, create (under the `email_key` lock) or none.
4. `payment_for` with the connection's payment method settings and the POS payment types.
5. `build_register_sale` -> the 0.9 body; look the sale up by its `source_id` before creating it.
6. `plan.notifications(...)` -> one event per outlet, when the connection has notifications on.
"""

from pos_ecom_sync.models.orders import (
    AssignedLine,
    FulfillmentPlan,
    NewFulfillmentEvent,
    OutletAssignment,
    PaymentMethodSetting,
    PosCustomer,
)
from pos_ecom_sync.orders.customers import (
    CreateCustomer,
    CustomerDecision,
    CustomerMatch,
    NoCustomer,
    customer_code,
    email_key,
    match_customer,
    normalise_email,
)
from pos_ecom_sync.orders.payments import (
    DEFAULT_PAYMENT_METHODS,
    LeaveUnpaid,
    PaymentDecision,
    RecordPayment,
    parse_payment_methods,
    payment_for,
)
from pos_ecom_sync.orders.routing import EXACT_SEARCH_MAX_OUTLETS, LineDemand, route_order
from pos_ecom_sync.orders.sale import (
    Hold,
    RegisterSale,
    Unmatched,
    build_register_sale,
    match_line,
    match_lines,
    sale_status,
    source_id,
    unit_amounts,
)

__all__ = [
    "DEFAULT_PAYMENT_METHODS",
    "EXACT_SEARCH_MAX_OUTLETS",
    "AssignedLine",
    "CreateCustomer",
    "CustomerDecision",
    "CustomerMatch",
    "FulfillmentPlan",
    "Hold",
    "LeaveUnpaid",
    "LineDemand",
    "NewFulfillmentEvent",
    "NoCustomer",
    "OutletAssignment",
    "PaymentDecision",
    "PaymentMethodSetting",
    "PosCustomer",
    "RecordPayment",
    "RegisterSale",
    "Unmatched",
    "build_register_sale",
    "customer_code",
    "email_key",
    "match_customer",
    "match_line",
    "match_lines",
    "normalise_email",
    "parse_payment_methods",
    "payment_for",
    "route_order",
    "sale_status",
    "source_id",
    "unit_amounts",
]
