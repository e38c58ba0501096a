"""Online buyers as R-Series customers through the whole local stack: a shopper's order -> eCom orders/created webhook
-> API -> orders queue -> order_import -> the R-Series simulator.

Rules (issue 17 item 4, rseries.md §3 and §5): the buyer is looked up by email through the customer's contact
(`GET Customer.json?load_relations=["Contact"]&Contact.email=<address>`, KVH tutorials/searching.md); a customer found
is the sale's customer and nothing is created; a buyer the POS does not know is created once (`POST Customer.json`
with `Contact.Emails.ContactEmail`, KVH endpoints/customer.md), and every later order of theirs finds that customer.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.conftest import RSeriesLiveStack

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def live(rseries_stack: RSeriesLiveStack) -> Iterator[RSeriesLiveStack]:
    rseries_stack.import_catalog()
    rseries_stack.rseries.record_exchanges = True
    yield rseries_stack


def _emails(customer: dict[str, Any]) -> list[str]:
    """A customer's contact email addresses: none is "", one an object, several an array (rseries.md §2)."""
    rows = (customer["Contact"].get("Emails") or {}).get("ContactEmail") or []
    return [row["address"] for row in (rows if isinstance(rows, list) else [rows])]


def _customers_with(live: RSeriesLiveStack, email: str) -> list[dict[str, Any]]:
    return [c for c in live.rseries.customers() if email.lower() in (a.lower() for a in _emails(c))]


def _order(live: RSeriesLiveStack, email: str, first: str | None = None, last: str | None = None) -> dict[str, Any]:
    """A shopper's order of one item (names left out: eCom derives them from the email)."""
    variant = live.variants_in_stock()[0]
    lines = [{"variant_id": variant["id"], "quantity": 1}]
    return live.ecom.place_order(lines, email=email, firstname=first, lastname=last)


def _creates(live: RSeriesLiveStack) -> int:
    return sum(1 for x in list(live.rseries.exchanges) if x.method == "POST" and x.path.endswith("/Customer.json"))


def _searched_by_contact_email(live: RSeriesLiveStack, email: str) -> bool:
    return any(
        x.method == "GET"
        and x.path.endswith("/Customer.json")
        and x.query.get("Contact.email", "").lower() == email.lower()
        and "Contact" in json.loads(x.query.get("load_relations", "[]"))
        for x in list(live.rseries.exchanges)
    )


@pytest.mark.parametrize(
    "email",
    [
        pytest.param("grace.customer2@example.com", id="same-address"),
        pytest.param("Alan.Customer3@Example.COM", id="address-in-other-case"),
    ],
)
def test_a_buyer_with_the_contact_email_of_an_r_series_customer_is_that_customer_and_none_is_created(
    live: RSeriesLiveStack, email: str
) -> None:
    [known] = _customers_with(live, email)  # seeded in the POS before any order
    customers, creates = len(live.rseries.customers()), _creates(live)

    sale = live.imported_sale(_order(live, email))

    assert sale["customerID"] == known["customerID"]
    assert len(live.rseries.customers()) == customers
    assert _searched_by_contact_email(live, email)
    assert _creates(live) == creates


def test_a_new_buyer_becomes_one_r_series_customer_with_the_orders_name_and_email(live: RSeriesLiveStack) -> None:
    email = "noa.kealoha@example.com"
    assert _customers_with(live, email) == []

    sale = live.imported_sale(_order(live, email, "Noa", "Kealoha"))

    [created] = _customers_with(live, email)
    assert (created["firstName"], created["lastName"], _emails(created)) == ("Noa", "Kealoha", [email])
    assert sale["customerID"] == created["customerID"]


def test_a_repeat_buyer_is_created_once_whether_the_orders_arrive_together_or_later(live: RSeriesLiveStack) -> None:
    email = "ines.moreau@example.com"
    together = [_order(live, email), _order(live, email)]  # two orders at once: imported side by side
    sales = [live.imported_sale(order) for order in together]
    later = live.imported_sale(_order(live, email))

    [customer] = _customers_with(live, email)
    assert {sale["customerID"] for sale in [*sales, later]} == {customer["customerID"]}
