"""Lightspeed Retail X-Series (ex-Vend): API 2.0 + 2026-07 sales/fulfilments, OAuth or a personal token, webhooks
plus `version` change feeds. `PROFILE` is what `profiles.profile_for` returns for `pos_profile = "x-series"`."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pos_ecom_sync.models.connection import ApiSecrets, Connection
from pos_ecom_sync.profiles.base import PosProfile, TokenPairStore
from pos_ecom_sync.ratelimit import XSERIES_POLICY, RateBudget, RatePolicy

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


class XSeriesProfile:
    name = "x-series"
    api = "xseries"
    takes_ecom_edits = False  # seed 003: eCom product edits never flow back (reconciliation repairs them)

    def client(
        self,
        connection: Connection,
        secrets: ApiSecrets,
        budget: RateBudget,
        tokens: Callable[[], TokenPairStore],
        *,
        max_wait_s: float,
    ) -> Any:
        from pos_ecom_sync.profiles.xseries.client import client_for_secrets  # httpx: only functions calling the POS

        return client_for_secrets(connection.pos_base_url, secrets, budget, tokens, max_wait_s=max_wait_s)

    def rate_policy(self) -> RatePolicy:
        return XSERIES_POLICY

    def change_feeds(
        self, client: Any, connection: Connection, *, page_size: int, family_of: Callable[[str], str]
    ) -> list[PosFeed]:
        from pos_ecom_sync.profiles.xseries.feeds import change_feeds

        return change_feeds(client, connection, page_size=page_size, family_of=family_of)

    def customer_feed(self, client: Any, connection: Connection, *, page_size: int) -> CustomerFeed:
        from pos_ecom_sync.profiles.xseries.customers import customer_feed

        return customer_feed(client, page_size)

    def catalog(self, client: Any, connection: Connection) -> PosCatalog:
        from pos_ecom_sync.profiles.xseries.catalog import XSeriesCatalog

        return XSeriesCatalog(client, connection)

    def inventory(self, client: Any) -> PosInventory:
        from pos_ecom_sync.profiles.xseries.stock import XSeriesInventory

        return XSeriesInventory(client)

    def catalog_walk(self, client: Any) -> PosCatalogFeed:
        from pos_ecom_sync.profiles.xseries.catalog_walk import XSeriesCatalogWalk

        return XSeriesCatalogWalk(client)

    def sales(self, client: Any, connection: Connection, reference: ReferenceCache) -> PosSales:
        from pos_ecom_sync.profiles.xseries.status import XSeriesSales

        return XSeriesSales(client, connection, reference)

    def orders(self, client: Any, connection: Connection, reference: ReferenceCache) -> PosOrders:
        from pos_ecom_sync.profiles.xseries.orders import XSeriesOrders

        return XSeriesOrders(client, connection, reference)

    def webhook_parser(self) -> PosWebhookParser:
        from pos_ecom_sync.profiles.xseries import webhooks

        return webhooks.parse_pos_webhook  # looked up per call: tests may replace it


# Annotated so mypy proves the profile implements the whole seam.
PROFILE: PosProfile = XSeriesProfile()
