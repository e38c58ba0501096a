"""The X-Series customer feed, as the poller walks it to keep the customer email index honest (`intake.poller`).

Apart from `profiles.xseries.feeds` so that the catalog worker, which reads the feeds' shapes, does not build the
ledger's customer types at its cold start.
"""

from __future__ import annotations

from pos_ecom_sync.models.feeds import VendorRow
from pos_ecom_sync.models.ledger import CustomerChange, CustomerFeed, CustomerPage
from pos_ecom_sync.profiles.xseries.feeds import VersionFeeds, after_version

CUSTOMER_FEED = "pos:customers"


def customer_change(row: VendorRow) -> CustomerChange | None:
    """An X20 `Customer` row in neutral terms (one `email`; `deleted_at` set once deleted, which is also how a merged-
    away customer ends); None without a usable id (such a row cannot be in the index)."""
    customer_id = row.get("id")
    if not isinstance(customer_id, str) or not customer_id.strip():
        return None
    email = row.get("email")
    emails = (email.strip(),) if isinstance(email, str) and email.strip() else ()
    return CustomerChange(customer_id.strip(), emails, gone=bool(row.get("deleted_at")))


def customer_feed(client: VersionFeeds, page_size: int) -> CustomerFeed:
    """Customers changed after the cursor's version, deleted ones included (`GET /api/2.0/customers?after=<version>
    &deleted=true&page_size=`, X20 ListCustomers), as the poller's customer feed. One request when nothing changed."""

    def read(cursor: str | None) -> CustomerPage:
        page = client.list_changes("customers", after_version(cursor), page_size)
        if not page.items or page.max_version is None:
            return CustomerPage()
        changes = tuple(c for c in (customer_change(row) for row in page.items) if c is not None)
        return CustomerPage(changes, str(page.max_version), more=len(page.items) >= page_size)

    return CustomerFeed(CUSTOMER_FEED, read)
