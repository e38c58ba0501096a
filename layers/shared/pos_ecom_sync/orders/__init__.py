"""Order import eCom -> POS as pure rules: match lines, route to outlets, match the customer, decide the payment,
build the sale. The order worker does the I/O around them, in this order:

1. `match_lines` -> a `Hold` (record the reason, import nothing) or the matched `LineDemand`s.
2. `route_order` with per-outlet stock (the stock state's `cached_levels`, else a POS read) -> a `FulfillmentPlan`
   (one fulfillment per outlet, status New).
3. The customer email index (`reusable`), else `match_customer` on the POS customers found by email -> use, create
   (under the `email_key` lock) or none.
4. `payment_for` with the connection's payment method settings and the POS payment types.
5. `build_register_sale` -> the 0.9 body; look the sale up by its `source_id` before creating it.
6. `plan.notifications(...)` -> one event per outlet, when the connection has notifications on.
"""
