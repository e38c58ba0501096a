"""The order and status ledgers' records, as the sync reads them (stored by `state.order_store` and
`state.status_store`, which alone know their DynamoDB shape)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pos_ecom_sync.models.links import VariantLink

# The status record keeps the sales it wrote; the order worker, which reads this module's order records, never builds
# the sale models.
if TYPE_CHECKING:
    from pos_ecom_sync.models.sales import WrittenSale

OrderStatus = Literal["importing", "held", "imported"]


@dataclass(frozen=True)
class OrderRecord:
    """One ledger item."""

    order_id: int
    status: OrderStatus
    source_id: str
    # While importing: the id the sale is (being) created with; once imported: the POS sale.
    sale_id: str | None = None
    attempts: int = 0
    attempt: str | None = None
    lease_until: float = 0.0
    number: str | None = None
    held_reason: str | None = None
    held_at: int | None = None
    customer_id: str | None = None
    outlet_ids: tuple[str, ...] = ()
    adopted: bool = False
    # New-fulfillment events still to send (set at import when the connection has notifications on).
    notifications_pending: bool = False
    # eCom `paymentStatus` when the sale was built (None: imported before this was recorded).
    ecom_payment_status: str | None = None
    created_at: int | None = None
    updated_at: int | None = None
    imported_at: int | None = None
    # The correlation id of every attempt (its webhook delivery, poll run or operator retry), oldest first.
    correlation_ids: tuple[str, ...] = ()
    # Why the last failed attempt failed (kept after a later success: the operator's "what happened").
    last_error: str | None = None
    last_error_at: int | None = None
    # The POS products whose units stock sync holds back for the order's open sale (`stock.reservations`); empty
    # once released, and for a sale that took its stock when created.
    stock_held: tuple[str, ...] = ()
    # The last attempt ended before it asked the POS for the sale (throttled or failed early): none can exist.
    sale_ruled_out: bool = False


@dataclass(frozen=True)
class Claim:
    """This worker's right to act on an order until `lease_until`; `previous` is the ledger before the claim."""

    order_id: int
    source_id: str
    attempt: str
    lease_until: float
    previous: OrderRecord | None
    sale_id: str | None = None  # the id the sale is created with (chosen before the claim)
    # The eCom payment status the claim recorded with the intent (None: none yet, see `note_payment_status`).
    payment_status: str | None = None

    @property
    def may_have_created_a_sale(self) -> bool:
        """An earlier claim that ended neither held nor imported may have reached the POS: look before creating."""
        previous = self.previous
        return previous is not None and previous.status == "importing" and not previous.sale_ruled_out


@dataclass(frozen=True)
class HeldOrder:
    order_id: int
    number: str | None
    reason: str
    held_at: int
    attempts: int


@dataclass(frozen=True)
class CustomerClaimed:
    """This order may create the customer now."""


@dataclass(frozen=True)
class CustomerKnown:
    customer_id: str


@dataclass(frozen=True)
class CustomerBusy:
    """Another order is creating this customer right now."""

    lease_until: float


CustomerClaim = CustomerClaimed | CustomerKnown | CustomerBusy


@dataclass(frozen=True)
class IndexedCustomer:
    """The customer email index's answer for one email key: the POS customer an earlier order matched or created
    (`origin` "matched" or "created"), recorded (or last confirmed by a search) at `recorded_at` (epoch seconds)."""

    customer_id: str
    origin: str
    recorded_at: int


@dataclass(frozen=True)
class CustomerCensus:
    """Which emails the POS's customers hold, as the poller's walk of the POS customer feed from its beginning has
    marked them (`orders.customers` says how it is used): `caught_up_at` is when the walk last reached the feed's end
    (epoch seconds; None: not yet)."""

    caught_up_at: int | None = None


@dataclass(frozen=True)
class OrderLookups:
    """What an order's import reads from the table before matching its lines, in one batched read: our variant links
    of its lines (eCom variant id -> link; absent: not ours), the customer email index's entry for its email, whether
    the customer census marked that email, and the census itself (None: never begun)."""

    links: dict[int, VariantLink] = field(default_factory=dict)
    customer: IndexedCustomer | None = None
    email_in_pos: bool = False
    census: CustomerCensus | None = None


@dataclass(frozen=True)
class CustomerChange:
    """A POS customer as the POS's customer change feed shows it now, in neutral terms: every email address it holds,
    and whether it is gone (deleted, archived, or merged into another customer)."""

    customer_id: str
    emails: tuple[str, ...] = ()
    gone: bool = False


@dataclass(frozen=True)
class CustomerPage:
    """One page of the customer change feed; `cursor` resumes after it (None: the page was empty, the cursor stays),
    `more`: the feed may hold more right now."""

    changes: tuple[CustomerChange, ...] = ()
    cursor: str | None = None
    more: bool = False


@dataclass(frozen=True)
class CustomerFeed:
    """A POS profile's customer change feed, as the poller walks it to keep the customer email index honest
    (`intake.poller`): `read` gives the page after an opaque cursor (None: from the beginning)."""

    name: str
    read: Callable[[str | None], CustomerPage]


@dataclass(frozen=True)
class StatusRecord:
    order_id: int
    frozen: bool = False
    ecom_seen: str | None = None
    pos_seen: str | None = None
    history: tuple[dict[str, Any], ...] = ()
    updated_at: int | None = None
    returns: dict[str, dict[str, int]] = field(default_factory=dict)
    ecom_unpaid_seen: bool = False
    # eCom's `updatedAt` of the order as our last few writes left it: the webhook (or sweep) each one echoes back
    # needs no read to know it brings nothing new.
    ecom_written: tuple[str, ...] = ()
    # The eCom order as the last reads saw it and our last writes left it (`status.digest.ecom_order_digest`, newest
    # last): an eCom order notice carrying one of them tells of nothing new, and needs no read.
    ecom_digests: tuple[str, ...] = ()
    # The POS sale as the last sync's voids and payments left it, each not yet echoed back: a POS sale change carrying
    # one's digest is that write's echo (taken once), and needs no read.
    pos_written: tuple[WrittenSale, ...] = ()


@dataclass(frozen=True)
class StatusLease:
    order_id: int
    token: str
    previous: StatusRecord | None

    @property
    def frozen(self) -> bool:
        return self.previous is not None and self.previous.frozen
