"""Domain models: connection settings validation, message identity, stock totals, settings."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pos_ecom_sync.correlation import correlated
from pos_ecom_sync.errors import ConfigurationError
from pos_ecom_sync.models.connection import Connection, ConnectionSecrets
from pos_ecom_sync.models.messages import SQS_REFUSED_TEXT, ChangeMessage, order_status_hint, vendor_payload
from pos_ecom_sync.models.stock import online_total
from pos_ecom_sync.settings import load_settings
from pydantic import ValidationError

BASE = {
    "connection_id": "shop-1",
    "pos_base_url": "https://x.retail.lightspeed.app",
    "ecom_base_url": "https://api.webshopapp.com/",
}


def test_connection_defaults_follow_the_business_plan() -> None:
    connection = Connection(**BASE)
    assert connection.effective_product_cap == 5_000
    assert connection.ecom_base_url == "https://api.webshopapp.com"


def test_unlimited_plan_holds_at_70000_until_the_operator_lifts_it() -> None:
    assert Connection(**BASE, plan="unlimited").effective_product_cap == 70_000
    assert Connection(**BASE, plan="unlimited", product_cap=90_000).effective_product_cap == 90_000


@pytest.mark.parametrize(
    "override",
    [
        {"connection_id": "Bad Id"},
        {"pos_base_url": "ftp://x"},
        {"ecom_language": "english"},
        {"delete_policy": "archive"},
        {"connected_outlet_ids": ["a"], "primary_outlet_id": "b"},
        {"unknown_setting": 1},
    ],
)
def test_invalid_connection_settings_are_refused(override: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        Connection(**{**BASE, **override})


def test_the_registers_outlet_is_always_one_of_the_connected_outlets() -> None:
    register = {"online_register_id": "reg-1", "register_outlet_id": "a"}
    assert Connection(**BASE, **register, connected_outlet_ids=["b", "a"]).register_outlet_id == "a"
    for connected in ([], ["b"]):
        with pytest.raises(ValidationError, match="change the register"):
            Connection(**BASE, **register, connected_outlet_ids=connected)
    with pytest.raises(ValidationError, match="set the register too"):
        Connection(**BASE, register_outlet_id="a", connected_outlet_ids=["a"])
    # Saved before the outlet was stored: still valid, whatever was chosen.
    assert Connection(**BASE, online_register_id="reg-1", connected_outlet_ids=["b"]).register_outlet_id is None


def test_webhook_credentials_must_be_long_enough_and_never_print() -> None:
    fields = dict.fromkeys(ConnectionSecrets.model_fields, "x" * 20)
    secrets = ConnectionSecrets(**fields)
    assert "x" * 20 not in repr(secrets)
    with pytest.raises(ValidationError):
        ConnectionSecrets(**{**fields, "pos_webhook_token": "short"})


def _message(**overrides: object) -> ChangeMessage:
    values: dict[str, object] = {
        "connection_id": "demo",
        "source": "pos",
        "entity": "product",
        "entity_id": "p-1",
        "version": 10,
        "via": "poll",
        "received_at": datetime(2026, 1, 1, tzinfo=UTC),
        "payload": {},
        "concern": "products",
    }
    return ChangeMessage(**{**values, **overrides})


@given(st.integers(min_value=0, max_value=2**62), st.integers(min_value=0, max_value=2**62))
def test_deduplication_id_is_stable_per_version_and_distinct_across_versions(a: int, b: int) -> None:
    assert _message(version=a).deduplication_id() == _message(version=a, via="webhook").deduplication_id()
    assert (_message(version=a).deduplication_id() == _message(version=b).deduplication_id()) == (a == b)
    assert len(_message(version=a).deduplication_id()) <= 128


def test_message_group_keeps_one_entity_in_order_and_fits_sqs_limit() -> None:
    assert _message().message_group_id == "demo:pos:product:p-1"
    long_id = _message(entity_id="x" * 300).message_group_id
    assert len(long_id) <= 128 and long_id != _message(entity_id="x" * 299).message_group_id


SQS_GROUP_ID_ALPHABET = set(map(chr, range(0x21, 0x7F)))


@given(st.text(min_size=1, max_size=400))
def test_any_entity_id_gives_a_group_id_sqs_accepts_and_the_same_one_every_time(entity_id: str) -> None:
    group = _message(entity_id=entity_id).message_group_id
    assert 1 <= len(group) <= 128 and set(group) <= SQS_GROUP_ID_ALPHABET
    assert group == _message(entity_id=entity_id).message_group_id


def test_vendor_payload_keeps_ids_and_versions_and_drops_personal_data_and_oversized_values() -> None:
    order = {"id": 7, "number": 1007, "updatedAt": "2026-01-01T00:00:00+00:00", "email": "a@b.c", "firstname": "Ann"}
    assert vendor_payload("ecom", "order", order) == {"id": 7, "number": 1007, "updatedAt": order["updatedAt"]}
    row = {"id": "p", "version": 10**4300, "description": "x" * 300_000, "variant_parent_id": "\udcff"}
    assert vendor_payload("pos", "product", row) == {"id": "p"}
    shipment = {"id": 3, "order": {"resource": {"id": 9, "url": "orders/9", "link": "https://x/orders/9"}}}
    assert vendor_payload("ecom", "shipment", shipment) == {"id": 3, "order": {"resource": {"id": 9}}}


# What SQS accepts in a message body, as its quotas page lists it.
SQS_ALLOWED_RANGES = ((0x9, 0x9), (0xA, 0xA), (0xD, 0xD), (0x20, 0xD7FF), (0xE000, 0xFFFD), (0x10000, 0x10FFFF))


def test_the_text_a_payload_drops_is_exactly_what_sqs_refuses_in_a_body() -> None:
    every_character = "".join(map(chr, range(0x110000)))
    refused = {ord(found) for found in SQS_REFUSED_TEXT.findall(every_character)}
    allowed = {code for low, high in SQS_ALLOWED_RANGES for code in range(low, high + 1)}
    assert refused == set(range(0x110000)) - allowed


@given(
    st.dictionaries(st.sampled_from(["o1", "o2", "o3", "o4"]), st.integers(-50, 50)),
    st.sets(st.sampled_from(["o1", "o2", "o3"])),
)
def test_online_total_is_the_clamped_sum_over_connected_outlets(levels: dict[str, int], connected: set[str]) -> None:
    total = online_total(levels, sorted(connected))
    assert total == sum(max(0, levels.get(o, 0)) for o in connected)
    assert total >= 0


def test_settings_report_every_missing_variable_at_once() -> None:
    with pytest.raises(ConfigurationError) as error:
        load_settings({"TABLE_NAME": "t"})
    for name in ("SECRET_PREFIX", "PRODUCTS_QUEUE_URL", "STATUSES_QUEUE_URL"):
        assert name in error.value.message


def test_a_message_made_while_a_change_is_handled_carries_its_correlation_id_and_its_status_hint_too() -> None:
    with correlated("webhook-req-1"):
        made = ChangeMessage(
            connection_id="demo", source="ecom", entity="order", entity_id="7", via="webhook",
            received_at=datetime(2026, 12, 5, tzinfo=UTC), payload={"id": 7}, concern="orders",
        )  # fmt: skip
    hint = order_status_hint(made)
    assert made.correlation_id == "webhook-req-1" and hint is not None and hint.correlation_id == "webhook-req-1"
    assert _message().correlation_id is None  # made outside any handled change (or queued before the field)
    assert made.deduplication_id("k") == made.model_copy(update={"correlation_id": "other"}).deduplication_id("k")
