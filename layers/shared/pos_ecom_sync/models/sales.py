"""A POS sale as status sync sees it, whichever POS: its state, what it costs and what is paid, its lines, the sale it
returns, the reference it carries back to the eCom order (read by `models.references`), and its fulfilments per
location. Each profile reads its
vendor's rows into these (X-Series: `profiles/xseries/sales.py`, behind `profiles/xseries/status.py`); the rules over
them live in `pos_ecom_sync.status`.

A POS without fulfilments (R-Series) simply has none: the fulfilment rows of the mapping then plan nothing, and the
payment and cancel rows work on the sale's state, total and payments alone.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum


class SaleState(StrEnum):
    """Where a sale (or a return) is in its life."""

    # Live: it may still be paid, fulfilled, voided (X-Series SAVED, ONACCOUNT, LAYBY, AWAITING_*; a parked return;
    # R-Series `completed` and `voided` both false).
    OPEN = "OPEN"
    # Finalized: it takes no status change any more (X-Series `*_CLOSED`; R-Series `completed`); a closed return
    # took its items back.
    CLOSED = "CLOSED"
    # Voided: nothing of it stands (a voided return took nothing back). R-Series `voided`.
    VOIDED = "VOIDED"


class FulfillmentKind(StrEnum):
    PICKUP = "PICKUP"
    DISPATCH = "DISPATCH"
    SERVICE = "SERVICE"
    # A kind the sync does not know: never packed or completed by it; while open, it keeps a shipment from being
    # completed (completing a sale hands over every fulfilment of it).
    OTHER = "OTHER"


class FulfillmentState(StrEnum):
    """In the order a fulfilment moves through them. STARTED and PICKED are "In progress" (never synced)."""

    OPEN = "OPEN"
    STARTED = "STARTED"
    PICKED = "PICKED"
    PACKED = "PACKED"
    FULFILLED = "FULFILLED"
    # A state the sync does not know: still open (not fulfilled), and never packed by it.
    OTHER = "OTHER"


# Not yet packed: eCom "ready for pickup" packs these.
PACKABLE_STATES = frozenset({FulfillmentState.OPEN, FulfillmentState.STARTED, FulfillmentState.PICKED})


@dataclass(frozen=True)
class PosFulfillment:
    """What one outlet hands over of a sale; `to_pack` is what each of its sale lines still needs packed."""

    fulfillment_id: str
    location_id: str  # the outlet (X-Series) that hands it over
    kind: FulfillmentKind
    state: FulfillmentState
    # The POS's stamp for optimistic locking (a write names the one it read); None: the POS gave none.
    version: int | None = None
    to_pack: tuple[tuple[str, Decimal], ...] = ()  # (sale line id, quantity not yet packed or fulfilled)

    @property
    def done(self) -> bool:
        return self.state == FulfillmentState.FULFILLED

    @property
    def open(self) -> bool:
        return not self.done

    @property
    def packable(self) -> bool:
        return self.state in PACKABLE_STATES


@dataclass(frozen=True)
class SaleLine:
    line_id: str
    product_id: str  # the POS product sold (or taken back)
    quantity: Decimal  # negative on a return


@dataclass(frozen=True)
class PosSale:
    sale_id: str
    state: SaleState
    # The POS's own word for the sale's status (X-Series `status`), for the ledger and the reasons people read.
    label: str
    total: Decimal  # tax included
    paid: Decimal  # the payments recorded on it
    lines: tuple[SaleLine, ...] = ()
    # The external reference the sale carries ("ecom-<order id>" for an imported one, see `order_in_reference`).
    reference: str | None = None
    # A return: the id of the sale it returns.
    return_for: str | None = None
    # Its units are still on hand in the POS: an open sale of a POS that takes stock only when a sale completes
    # (R-Series). While true, stock sync holds them back from the online total (`stock.reservations`).
    stock_pending: bool = False
    # Its `sale_digest` as read (None when the row does not give one): a read that sees the sale as one of our
    # writes left it keeps that write for its echo (`status.sync`).
    digest: str | None = None


@dataclass(frozen=True)
class SaleHint:
    """What a queued POS sale change says of the sale without reading it: its reference and whether it is a return
    (either may be unknown: None)."""

    reference: str | None = None
    return_for: str | None = None


# -- the echo of our own writes ------------------------------------------------------------------------------------

_CENT = Decimal("0.01")
SALE_DIGEST_CHARS = 16  # 64 bits: two states of one sale never meet by chance


def sale_digest(sale_id: str, status: str, total: Decimal, payments: Iterable[tuple[str, Decimal]]) -> str:
    """A fingerprint of what status sync reads of a sale, apart from its fulfilments: the sale, its status in the
    POS's own words, its total and the multiset of its payments (payment type, amount), amounts to the cent.

    Each POS profile computes it from a sale row as its webhook or feed delivers it, and from the body of its own
    void or payment (the status and payments it wrote), so status sync knows the echo of its write by comparing two
    opaque strings (`status.sync`). Equal digests say nothing of the sale's fulfilments."""
    paid = sorted((str(kind), str(amount.quantize(_CENT, ROUND_HALF_UP))) for kind, amount in payments)
    content = [str(sale_id), str(status), str(total.quantize(_CENT, ROUND_HALF_UP)), paid]
    text = json.dumps(content, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()[:SALE_DIGEST_CHARS]


@dataclass(frozen=True)
class WrittenSale:
    """What one of our POS writes (a void, a payment, a fulfil) left the sale as: its digest, which the change message
    of the write's echo carries (`ChangeMessage.content_digest`), and whether the sale still leaves its units on hand
    (`PosSale.stock_pending`): when it no longer does, its echo releases the units held for it.

    `also`: other digests the write may have left, when the POS decides part of the result (after a fulfil it may or
    may not close the sale). The first change carrying any of them is the write's echo and takes them all: one
    write, one echo."""

    digest: str
    stock_pending: bool = False
    also: tuple[str, ...] = ()

    def left(self, digest: str) -> bool:
        """Whether a sale change carrying `digest` may be this write's echo."""
        return digest == self.digest or digest in self.also
