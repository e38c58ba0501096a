"""Lightspeed Retail R-Series (ex-MerchantOS): API V3 under `/API/V3/Account/{accountID}/`, OAuth with expiring access
tokens and rotating refresh tokens, every scalar a string, `next`-URL paging, a leaky-bucket rate limit, no webhooks
(every change is polled by time stamp). `PROFILE` is what `profiles.profile_for` returns for
`pos_profile = "r-series"`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pos_ecom_sync.models.connection import ApiSecrets, Connection
from pos_ecom_sync.models.feeds import PosFeed
from pos_ecom_sync.profiles.base import TokenPairStore
from pos_ecom_sync.ratelimit import RSERIES_API, RateBudget, RatePolicy, rseries_policy


class RSeriesProfile:
    name = "r-series"
    api = RSERIES_API

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


PROFILE = RSeriesProfile()
