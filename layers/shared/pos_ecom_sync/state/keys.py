"""Key layout of the single sync table (pk/sk + gsi1). Every item of a connection shares its partition, except its
webhook delivery marks (see `delivery_pk`)."""

from __future__ import annotations


def connection_pk(connection_id: str) -> str:
    return f"CONN#{connection_id}"


CONFIG_SK = "CONFIG"
CONNECTIONS_GSI_PK = "CONNECTIONS"


def cursor_sk(feed: str) -> str:
    return f"CURSOR#{feed}"


# Webhook delivery marks live in their own partition per connection, the one thing the internet-facing webhook
# function may write: its IAM grant is conditioned on `dynamodb:LeadingKeys` starting with this prefix (template).
DELIVERY_PK_PREFIX = "DELIVERY#"


def delivery_pk(connection_id: str) -> str:
    return f"{DELIVERY_PK_PREFIX}{connection_id}"


def delivery_sk(delivery_key: str) -> str:
    return f"DELIVERY#{delivery_key}"


def rate_sk(api: str) -> str:
    return f"RATE#{api}"


def family_sk(pos_family_key: str) -> str:
    """Catalog state of one POS family, keyed by the parent row's id (the family's message group)."""
    return f"FAMILY#{pos_family_key}"


# How many eCom variants the connection manages (the plan cap counts variants).
CATALOG_COUNT_SK = "CATALOG#COUNT"


def pos_variant_link_sk(pos_product_id: str) -> str:
    """POS variant id -> the eCom variant we created for it (stock and orders look it up)."""
    return f"LINK#pos#{pos_product_id}"


def ecom_variant_link_sk(ecom_variant_id: int) -> str:
    """eCom variant id -> our POS variant id (eCom webhooks and order lines name eCom ids)."""
    return f"LINK#ecom#{ecom_variant_id}"


# -- stock (state/stock_store.py) -------------------------------------------------------------------------------


def stock_sk(pos_product_id: str) -> str:
    """Stock state of one POS variant: per-outlet levels, what eCom holds, claimed writes."""
    return f"STOCK#v#{pos_product_id}"


# The outlets (and primary) the stock worker last applied: the next outlet change is planned against them.
STOCK_OUTLETS_SK = "STOCK#OUTLETS"


# -- reconciliation (state/reconcile_store.py) ------------------------------------------------------------------

# The connection's reconciliation checkpoint: run id, phase and the cursor inside the phase.
RECONCILE_SK = "RECONCILE#RUN"


# -- orders (state/order_store.py) ------------------------------------------------------------------------------


def order_sk(ecom_order_id: int) -> str:
    """The order ledger: one item per eCom order (intent, lease, outcome: held or imported with its sale)."""
    return f"ORDER#{ecom_order_id}"


HELD_ORDER_PREFIX = "HELD#"


def held_order_sk(ecom_order_id: int) -> str:
    """Present while an order is held, so `orders held` is one query, not a scan of the whole ledger."""
    return f"{HELD_ORDER_PREFIX}{ecom_order_id:012d}"


def sale_order_sk(pos_sale_id: str) -> str:
    """POS sale id -> the eCom order it was made for: written when the order's sale id is chosen (before the sale
    exists), so a POS sale can always be traced back to its order (the status worker does)."""
    return f"SALE#{pos_sale_id}"


def customer_email_sk(email_key: str) -> str:
    """Customer email index (sha256 of the normalised email, never the address): the lock for creating a
    customer and the POS customer id it produced."""
    return f"EMAIL#{email_key}"


def email_in_pos_sk(email_key: str) -> str:
    """The customer census's mark: some POS customer held this email when the POS customer feed showed it. Never
    dropped (a stale mark only costs the email a search), so it is kept apart from the index's entry."""
    return f"EMAIL_IN_POS#{email_key}"


def customer_census_sk() -> str:
    """The customer census's progress (`models.ledger.CustomerCensus`)."""
    return "CUSTOMER_CENSUS"


def customer_index_sk(customer_id: str) -> str:
    """The reverse of the customer email index: POS customer id -> the email keys it is indexed under, so a change of
    that customer in the POS (its change feed) finds the entries to drop."""
    return f"CUSTOMER#{customer_id}"


# -- statuses (state/status_store.py) ---------------------------------------------------------------------------


def status_sk(ecom_order_id: int) -> str:
    """The status ledger of one order: the worker's lease, whether the order is frozen, what was applied or
    ignored (and why), and both sides as last seen."""
    return f"STATUS#{ecom_order_id}"


# -- parked feed rows (state/parked_store.py) --------------------------------------------------------------------

PARKED_PREFIX = "PARKED#"


def parked_sk(feed: str, row_key: str) -> str:
    """A feed row the poller or reconciliation could not handle and skipped (`row_key`: its id, or a hash of an id
    that is no safe key); one item per feed and row, so seeing it again updates the item."""
    return f"{PARKED_PREFIX}{feed}#{row_key}"


# -- vendor OAuth tokens (state/token_store.py) -----------------------------------------------------------------


def token_sk(api: str) -> str:
    """The live OAuth token pair of one vendor API and the refresh lease that makes a refresh single-flight."""
    return f"TOKEN#{api}"
