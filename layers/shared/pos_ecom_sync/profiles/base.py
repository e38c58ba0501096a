"""The POS profile seam: what the sync needs from a POS, whichever vendor it is.

A profile is one object (`PROFILE` in its package) that `runtime` asks for the connection's POS services. The domain
never sees it: it receives what the profile built (a client behind the domain's own Protocols, the change feeds as
`models.feeds.PosFeed`). Adding a POS = adding a package with a `PROFILE` and one line in `profiles.PROFILES`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from pos_ecom_sync.models.connection import ApiSecrets, Connection
from pos_ecom_sync.ratelimit import RateBudget, RatePolicy

if TYPE_CHECKING:
    from pos_ecom_sync.catalog.sync import PosCatalog
    from pos_ecom_sync.intake.webhooks import PosWebhookParser
    from pos_ecom_sync.models.feeds import PosFeed
    from pos_ecom_sync.models.ledger import CustomerFeed
    from pos_ecom_sync.models.tokens import StoredTokens
    from pos_ecom_sync.orders.importer import PosOrders
    from pos_ecom_sync.reconcile.service import PosCatalogFeed
    from pos_ecom_sync.reference import ReferenceCache
    from pos_ecom_sync.status.sync import PosSales
    from pos_ecom_sync.stock.sync import PosInventory


class TokenPairStore(Protocol):
    """Where a profile whose POS rotates OAuth refresh tokens keeps the live pair, with the lease that makes a
    refresh single-flight across invocations (`state.token_store.TokenStore`)."""

    def load(self) -> StoredTokens | None: ...
    def acquire_lease(self, owner: str, lease_s: float) -> StoredTokens | None: ...
    def save_pair(
        self, owner: str, access_token: str, refresh_token: str, expires_at: float | None, seed: str | None
    ) -> bool: ...
    def release(self, owner: str) -> None: ...


class PosProfile(Protocol):
    # `Connection.pos_profile` value, and the key of the connection's POS rate budget and token pair.
    name: str
    api: str
    # Whether the merchant's eCom edits of synced product fields flow back into this POS (`catalog.ecom_edits`):
    # R-Series yes (seed 000, "bi-directional"), X-Series no (seed 003: content reconciliation repairs them).
    takes_ecom_edits: bool

    def client(
        self,
        connection: Connection,
        secrets: ApiSecrets,
        budget: RateBudget,
        tokens: Callable[[], TokenPairStore],
        *,
        max_wait_s: float,
    ) -> Any:
        """The POS API client for `connection`, behind `budget` (shared by every concurrent invocation), with its
        credentials from `secrets` and, for OAuth with rotating refresh tokens, the live pair from `tokens()`."""
        ...

    def rate_policy(self) -> RatePolicy:
        """The POS API's rate policy (windows and/or a bucket), as the client spends it; operators read its state."""
        ...

    def change_feeds(
        self, client: Any, connection: Connection, *, page_size: int, family_of: Callable[[str], str]
    ) -> list[PosFeed]:
        """The POS change feeds the poller walks (`intake.poller`), in order; `family_of(POS product id)` is the
        product family a price or stock row belongs to, as the catalog worker keys it."""
        ...

    def customer_feed(self, client: Any, connection: Connection, *, page_size: int) -> CustomerFeed:
        """The POS customer change feed (deleted or archived customers included) the poller walks to drop customer
        email index entries of customers changed in the POS (`orders.customers`)."""
        ...

    def catalog(self, client: Any, connection: Connection) -> PosCatalog:
        """The POS catalog as the catalog worker reads it: a family, in neutral terms, from any of its members."""
        ...

    def inventory(self, client: Any) -> PosInventory:
        """The POS inventory as the stock worker reads it: levels per location, in neutral terms."""
        ...

    def catalog_walk(self, client: Any) -> PosCatalogFeed:
        """Every POS product row in stamp order, for reconciliation's catalog compare."""
        ...

    def orders(self, client: Any, connection: Connection, reference: ReferenceCache) -> PosOrders:
        """The POS as the order importer needs it: find an imported sale again, match and route lines, customers,
        and the sale itself; reference lists cached in `reference` (one per warm sandbox)."""
        ...

    def sales(self, client: Any, connection: Connection, reference: ReferenceCache) -> PosSales:
        """The POS sales as the status worker reads and changes them, in neutral terms; reference lists (payment
        types) cached in `reference`."""
        ...

    def webhook_parser(self) -> PosWebhookParser | None:
        """How this POS's webhook deliveries become change messages; None when it sends none (changes are polled)."""
        ...
