"""Which POS customer an eCom order belongs to (seeds 001/004), decided without I/O.

- Match by email, case-insensitive and trimmed. Same email, different name: assign that customer and overwrite
  nothing (a `CustomerMatch` never carries an update).
- No match: create one with the order's email and name. No name: the email is the name. X-Series requires both
  `first_name` and `last_name` on create (vendor-apis §1.7) but does not say they must be non-empty, so the email
  goes in `first_name` and `last_name` is "": the POS shows the name as "first last" trimmed, i.e. the email.
  With only one of the two names, that one is kept in its own field and the other is "".
- Several live POS customers with the email (X-Series does not enforce unique emails): the one whose name matches
  the order, else the oldest (`created_at`, then id), so a re-run always picks the same customer.
- Concurrent creates for one email: the worker takes a lock keyed by `email_key(email)` (a conditional put on the
  customer email index) before creating, and sends the deterministic `customer_code(email)`, so a create that
  slipped through twice is recognisable by its code.

The customer email index (the order ledger's `EMAIL#<email_key>` items, each with a reverse item per customer):
- A customer found by the email search or created by us is recorded under the email's key, so the next order from
  that email uses it with no search (`reusable`). A repeat buyer costs no POS call before the sale.
- A customer changed in the POS is not reused blindly: the poller reads the POS's customer change feed every poll
  and drops an entry whose customer is gone (deleted, archived, or merged away: X-Series deletes the merged-away
  customer, so the survivor is found by the next search) or no longer holds an address with the indexed key
  (`stale_index_keys`).
- Belt and braces: an entry is used only for `INDEX_REUSE_SECONDS` after it was recorded or last confirmed by a
  search (a change the feed could not show costs at most that long); an order's retry (an earlier attempt failed)
  searches again instead of trusting the entry; and a sale the POS refuses while it carries an indexed customer
  drops that entry, so no other order reuses it before a search.

The customer census (`EMAIL_IN_POS#<email_key>` marks): a new email costs no search when the POS has no customer
with it. The poller's walk of the same customer feed, from its beginning, marks every email a live customer holds,
and records when the walk last reached the feed's end. An email with no mark, while that was at most
`CENSUS_FRESH_SECONDS` ago, is no POS customer's: the order creates its customer with no search (`must_search`).
- Marks are never dropped (a customer deleted or changed in the POS leaves its old email marked): a stale mark only
  costs that email a search, as before the census.
- The trade-off: a customer made in the POS after the census's last walk to the end (about a poll ago), who orders
  online within `CENSUS_FRESH_SECONDS`, gets a second POS customer with the same email instead of a match.
- A census not walked to the end recently (a new connection's first walk, a poller throttled or stopped), an order's
  retry, and an email with a mark are searched, as before.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeAlias

if TYPE_CHECKING:  # annotations only: the poller imports this module, and needs neither
    from pos_ecom_sync.models.ledger import CustomerCensus, CustomerChange, IndexedCustomer
    from pos_ecom_sync.models.orders import PosCustomer

CUSTOMER_CODE_PREFIX = "ECOM-"
# How long an index entry is used with no POS search after it was recorded or last confirmed by one (see above).
INDEX_REUSE_SECONDS = 24 * 3600
# How long after the customer census last reached the POS customer feed's end its missing marks are trusted: five
# polls at the template's default schedule (a minute), so a poll or two lost to throttling keeps it.
CENSUS_FRESH_SECONDS = 300


def normalise_email(email: str) -> str:
    """An email as customers are matched and indexed by: trimmed, case-insensitive."""
    return email.strip().lower()


def email_key(email: str) -> str:
    """Stable key for the customer email index: sha256 of the normalised email, so no address sits in a table key
    (keys end up in logs and metrics; emails must not)."""
    normalised = normalise_email(email)
    if not normalised:
        raise ValueError("an empty email has no key")
    return hashlib.sha256(normalised.encode()).hexdigest()


def customer_code(email: str) -> str:
    """Deterministic POS `customer_code` for a customer we create: equal for equal emails, short, no PII."""
    digest = hashlib.sha256(normalise_email(email).encode()).digest()
    return CUSTOMER_CODE_PREFIX + base64.b32encode(digest).decode()[:12]


def _name_key(first: str | None, last: str | None) -> str:
    return " ".join(f"{first or ''} {last or ''}".split()).casefold()


def _clean(value: str | None) -> str:
    return " ".join((value or "").split())


@dataclass(frozen=True)
class CustomerMatch:
    """Assign the sale to this existing POS customer; never update it."""

    customer_id: str
    name_differs: bool


@dataclass(frozen=True)
class CreateCustomer:
    """Create a POS customer, then assign the sale to it."""

    first_name: str
    last_name: str
    email: str
    customer_code: str
    email_key: str


@dataclass(frozen=True)
class NoCustomer:
    """The order has no usable email: the sale is created without a customer rather than held."""

    reason: str


CustomerDecision: TypeAlias = CustomerMatch | CreateCustomer | NoCustomer


def match_customer(
    order_email: str | None,
    order_first: str | None,
    order_last: str | None,
    candidates: Sequence[PosCustomer],
) -> CustomerDecision:
    """Decide the customer of an order from the POS customers found by searching its email."""
    email = (order_email or "").strip()
    if not email or "@" not in email:
        return NoCustomer(reason="the order has no email address")
    wanted = normalise_email(email)
    order_name = _name_key(order_first, order_last)

    same_email = [
        c for c in candidates if not c.deleted_at and c.email is not None and normalise_email(c.email) == wanted
    ]
    if same_email:
        best = min(
            same_email,
            key=lambda c: (_name_key(c.first_name, c.last_name) != order_name, c.created_at or "~", c.id),
        )
        return CustomerMatch(customer_id=best.id, name_differs=_name_key(best.first_name, best.last_name) != order_name)

    first, last = _clean(order_first), _clean(order_last)
    if not first and not last:
        first = email
    return CreateCustomer(
        first_name=first,
        last_name=last,
        email=email,
        customer_code=customer_code(email),
        email_key=email_key(email),
    )


def reusable(entry: IndexedCustomer | None, now: float) -> str | None:
    """The customer an index entry lets an order use with no search; None when there is none or it is too old."""
    if entry is None or not entry.customer_id:
        return None
    if now - entry.recorded_at > INDEX_REUSE_SECONDS:
        return None
    return entry.customer_id


def must_search(email_in_pos: bool, census: CustomerCensus | None, now: float) -> bool:
    """Whether a new email (none of the index's) must be searched in the POS before its customer is created: unless
    the census is fresh and no POS customer showed the email (see above)."""
    if email_in_pos or census is None or census.caught_up_at is None:
        return True
    return now - census.caught_up_at > CENSUS_FRESH_SECONDS


def present_email_keys(changes: Iterable[CustomerChange]) -> frozenset[str]:
    """The email keys the census marks for a page of the POS customer feed: every address of a live customer."""
    return frozenset(email_key(e) for c in changes if not c.gone for e in c.emails if normalise_email(e))


def stale_index_keys(change: CustomerChange, indexed: Iterable[str]) -> frozenset[str]:
    """The email keys the index holds `change`'s customer under and must drop: all of them once the customer is gone,
    else those none of its addresses hashes to any more (its email was changed in the POS)."""
    held = frozenset(indexed)
    if change.gone:
        return held
    current = {email_key(email) for email in change.emails if normalise_email(email)}
    return held - current
