"""Matching the buyer of an eCom order to a POS customer by email (seeds 001/004)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pos_ecom_sync.models.orders import PosCustomer
from pos_ecom_sync.orders.customers import (
    CUSTOMER_CODE_PREFIX,
    CreateCustomer,
    CustomerMatch,
    NoCustomer,
    customer_code,
    email_key,
    match_customer,
)

MIRA = PosCustomer(id="cust-mira", email="mira.okafor@example.com", first_name="Mira", last_name="Okafor")


def test_customer_with_the_same_email_is_matched() -> None:
    assert match_customer("mira.okafor@example.com", "Mira", "Okafor", [MIRA]) == CustomerMatch(
        customer_id="cust-mira", name_differs=False
    )


def test_email_match_ignores_case_and_surrounding_whitespace() -> None:
    decision = match_customer("  Mira.Okafor@EXAMPLE.com\t", "mira", " okafor ", [MIRA])
    assert decision == CustomerMatch(customer_id="cust-mira", name_differs=False)


def test_same_email_with_a_different_name_keeps_the_pos_customer_untouched() -> None:
    decision = match_customer("mira.okafor@example.com", "M.", "Okafor-Smith", [MIRA])
    assert decision == CustomerMatch(customer_id="cust-mira", name_differs=True)
    # A match carries the customer id and nothing to write: no field of the POS customer can be overwritten.
    assert set(vars(decision)) == {"customer_id", "name_differs"}


def test_unknown_email_creates_a_customer_with_the_orders_email_and_name() -> None:
    decision = match_customer(" Tama.Ngata@Example.com ", "Tama", "Ngata", [MIRA])
    assert isinstance(decision, CreateCustomer)
    assert (decision.first_name, decision.last_name, decision.email, decision.customer_code) == (
        "Tama",
        "Ngata",
        "Tama.Ngata@Example.com",
        customer_code("tama.ngata@example.com"),
    )
    assert decision.email_key == email_key("tama.ngata@example.com")


@pytest.mark.parametrize(("first", "last"), [(None, None), ("", ""), ("  ", "\t")])
def test_order_without_a_name_creates_a_customer_named_by_the_email(first: str | None, last: str | None) -> None:
    decision = match_customer("lena@example.com", first, last, [])
    assert isinstance(decision, CreateCustomer)
    assert (decision.first_name, decision.last_name) == ("lena@example.com", "")


def test_order_with_only_a_last_name_keeps_it_as_the_last_name() -> None:
    decision = match_customer("berg@example.com", None, "Berg", [])
    assert isinstance(decision, CreateCustomer)
    assert (decision.first_name, decision.last_name) == ("", "Berg")


def test_search_hits_with_another_email_or_deleted_are_not_matches() -> None:
    near = PosCustomer(id="c-near", email="mira.okafor@example.co", first_name="Mira", last_name="Okafor")
    gone = MIRA.model_copy(update={"id": "c-gone", "deleted_at": "2024-01-01T00:00:00+00:00"})
    assert isinstance(match_customer("mira.okafor@example.com", "Mira", "Okafor", [near, gone]), CreateCustomer)


def test_several_pos_customers_with_the_email_prefer_the_same_name_then_the_oldest() -> None:
    older = PosCustomer(id="c-2", email="x@example.com", first_name="Old", last_name="One", created_at="2020-01-01")
    newer = PosCustomer(id="c-1", email="X@example.com", first_name="New", last_name="One", created_at="2023-01-01")
    named = PosCustomer(id="c-3", email="x@example.com", first_name="Ana", last_name="Lee", created_at="2024-01-01")
    assert match_customer("x@example.com", "Ana", "Lee", [older, newer, named]) == CustomerMatch("c-3", False)
    assert match_customer("x@example.com", "Zed", "Ko", [newer, named, older]) == CustomerMatch("c-2", True)


def test_order_without_an_email_gets_no_customer() -> None:
    assert isinstance(match_customer(None, "Mira", "Okafor", [MIRA]), NoCustomer)
    assert isinstance(match_customer("   ", "Mira", "Okafor", [MIRA]), NoCustomer)


@given(st.emails(), st.sampled_from(["", " ", "\t "]), st.booleans())
def test_email_key_and_customer_code_depend_only_on_the_normalised_email(email: str, pad: str, upper: bool) -> None:
    variant = pad + (email.upper() if upper else email) + pad
    assert email_key(variant) == email_key(email)
    assert customer_code(variant) == customer_code(email)
    assert len(email_key(email)) == 64 and "@" not in email_key(email)  # a digest: no address in the key
    assert customer_code(email).startswith(CUSTOMER_CODE_PREFIX) and len(customer_code(email)) == 17


def test_email_key_refuses_an_empty_email() -> None:
    with pytest.raises(ValueError):
        email_key("  ")
