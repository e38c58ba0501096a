"""Lightspeed Retail R-Series (ex-MerchantOS): API V3 under `/API/V3/Account/{accountID}/`, OAuth with expiring access
tokens and rotating refresh tokens, every scalar a string, `next`-URL paging, a leaky-bucket rate limit, no webhooks
(every change is polled by time stamp). `PROFILE` is what `profiles.profile_for` returns for
`pos_profile = "r-series"`."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pos_ecom_sync.models.connection import ApiSecrets, Connection
from pos_ecom_sync.profiles.base import PosProfile, TokenPairStore
from pos_ecom_sync.ratelimit import RSERIES_API, RateBudget, RatePolicy, rseries_policy

if TYPE_CHECKING:
    from pos_ecom_sync.catalog.sync import PosCatalog
    from pos_ecom_sync.intake.webhooks import PosWebhookParser
    from pos_ecom_sync.models.feeds import PosFeed
    from pos_ecom_sync.models.ledger import CustomerFeed
    from pos_ecom_sync.orders.importer import PosOrders
    from pos_ecom_sync.reconcile.service import PosCatalogFeed
    from pos_ecom_sync.reference import ReferenceCache
    from pos_ecom_sync.status.sync import PosSales
    from pos_ecom_sync.stock.sync import PosInventory


class RSeriesProfile:
    name = "r-series"
    api = RSERIES_API
    takes_ecom_edits = True  # seed 000: product edits in eCom sync back (price -> the Online level)

    def client(
        self,
        connection: Connection,
        secrets: ApiSecrets,
        budget: RateBudget,
        tokens: Callable[[], TokenPairStore],
        *,
        max_wait_s: float,
    ) -> Any:
        from pos_ecom_sync.profiles.rseries.client import client_for_secrets  # httpx: only functions calling the POS

        return client_for_secrets(
            connection.pos_base_url, connection.pos_account_id, secrets, budget, tokens, max_wait_s=max_wait_s
        )

    def rate_policy(self) -> RatePolicy:
        # One register's bucket: the vendor's headers correct size and drip rate to the subscription's (ratelimit).
        return rseries_policy()

    def change_feeds(
        self, client: Any, connection: Connection, *, page_size: int, family_of: Callable[[str], str]
    ) -> list[PosFeed]:
        from pos_ecom_sync.profiles.rseries.feeds import change_feeds

        return change_feeds(client, connection, page_size=page_size, family_of=family_of)

    def customer_feed(self, client: Any, connection: Connection, *, page_size: int) -> CustomerFeed:
        from pos_ecom_sync.profiles.rseries.feeds import customer_feed

        return customer_feed(client, page_size)

    def webhook_parser(self) -> PosWebhookParser | None:
        return None  # R-Series sends no webhooks (KVH endpoints index): every change is polled

    def orders(self, client: Any, connection: Connection, reference: ReferenceCache) -> PosOrders:
        from pos_ecom_sync.profiles.rseries.orders import RSeriesOrders

        return RSeriesOrders(client, connection, reference)

    def sales(self, client: Any, connection: Connection, reference: ReferenceCache) -> PosSales:
        from pos_ecom_sync.profiles.rseries.status import RSeriesSales

        return RSeriesSales(client, connection, reference)

    def catalog(self, client: Any, connection: Connection) -> PosCatalog:
        from pos_ecom_sync.profiles.rseries.catalog import RSeriesCatalog

        return RSeriesCatalog(client, connection)

    def catalog_walk(self, client: Any) -> PosCatalogFeed:
        from pos_ecom_sync.profiles.rseries.catalog import RSeriesCatalogWalk

        return RSeriesCatalogWalk(client)

    def inventory(self, client: Any) -> PosInventory:
        from pos_ecom_sync.profiles.rseries.stock import RSeriesInventory

        return RSeriesInventory(client)


# Annotated so mypy proves the profile implements the whole seam.
PROFILE: PosProfile = RSeriesProfile()
