"""The eCom order digest intake puts on an order notice, so status sync settles a notice of a state it has already read
or written without a read (`status.digest.ecom_order_digest`): what it takes in, what it refuses, where it is kept."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from pos_ecom_sync.intake.poller import _order_messages
from pos_ecom_sync.intake.webhooks import IncomingWebhook, parse_ecom_webhook
from pos_ecom_sync.models.ledger import StatusLease, StatusRecord
from pos_ecom_sync.state.status_store import ECOM_DIGESTS_KEPT, StatusStore, status_record
from pos_ecom_sync.status.digest import ecom_order_digest
from pos_ecom_sync.status.rules import EcomOrderState

NOW = datetime(2026, 7, 1, 10, 0, tzinfo=UTC)
ORDER = {  # GET /{lang}/orders/{id}.json's `order` (the sweep's rows and the PUT's answer alike), trimmed
    "id": 4101,
    "number": "ORD00012",
    "createdAt": "2026-07-01T09:58:12+00:00",
    "updatedAt": "2026-07-01T10:00:03+00:00",
    "status": "completed_shipped",
    "paymentStatus": "paid",
    "shipmentStatus": "shipped",
    "shipmentIsPickup": False,
    "paymentTitle": "Lightspeed Payments",
    "email": "shopper@example.com",
    "priceIncl": 50.0,
}


def _webhook(resource: dict[str, Any]) -> IncomingWebhook:
    body = json.dumps({"order": resource}).encode()
    return IncomingWebhook("ecom", "shop", body, {"content-type": "application/json"}, {})


def test_a_webhook_a_sweep_row_and_a_read_of_one_order_state_carry_one_digest() -> None:
    digest = ecom_order_digest(ORDER)
    notice = parse_ecom_webhook(_webhook(ORDER), NOW)
    swept = _order_messages("shop", ORDER, NOW)
    assert digest is not None and len(digest) == 16
    assert notice is not None and notice.content_digest == digest
    assert [m.concern for m in swept] == ["orders", "statuses"]
    assert [m.content_digest for m in swept] == [digest, digest]
    # What the message keeps of the row is unchanged: ids and the stamp, no customer data.
    assert notice.payload == {"id": 4101, "number": "ORD00012", "updatedAt": ORDER["updatedAt"]}
    # Fields status sync does not read (an address, the email, a total) are not in it.
    assert ecom_order_digest({**ORDER, "email": "other@example.com", "priceIncl": 60.0}) == digest


def test_another_status_payment_or_shipment_status_stamp_order_or_pickup_or_method_has_another_digest() -> None:
    others = [
        {**ORDER, "status": "completed"},
        {**ORDER, "paymentStatus": "cancelled"},  # a merchant's edit within the same second: same stamp
        {**ORDER, "shipmentStatus": "partially_shipped"},
        {**ORDER, "updatedAt": "2026-07-01T10:00:04+00:00"},  # the same state reached again later
        {**ORDER, "id": 4102},
        {**ORDER, "shipmentIsPickup": True},
        {**ORDER, "paymentTitle": "Bank deposit"},
    ]
    digests = {ecom_order_digest(row) for row in others}
    assert None not in digests and ecom_order_digest(ORDER) not in digests and len(digests) == len(others)


def test_a_row_missing_a_status_or_its_stamp_has_no_digest_and_its_notice_is_read() -> None:
    for missing in ("status", "paymentStatus", "shipmentStatus", "updatedAt", "id"):
        row = {k: v for k, v in ORDER.items() if k != missing}
        assert ecom_order_digest(row) is None, missing
    assert ecom_order_digest({**ORDER, "paymentStatus": ""}) is None
    assert ecom_order_digest({**ORDER, "status": 3}) is None
    assert ecom_order_digest({**ORDER, "id": True}) is None
    notice = parse_ecom_webhook(_webhook({"id": 4101, "updatedAt": ORDER["updatedAt"]}), NOW)  # an id-only payload
    assert notice is not None and notice.content_digest is None


def test_a_row_without_the_pickup_flag_or_method_digests_as_a_read_of_it_would_see_it() -> None:
    # `EcomOrderState.of` reads an absent flag as False and an absent method as "": the digest does too.
    bare = {k: v for k, v in ORDER.items() if k not in ("shipmentIsPickup", "paymentTitle")}
    assert EcomOrderState.of(bare) == EcomOrderState.of({**ORDER, "paymentTitle": ""})
    assert ecom_order_digest(bare) == ecom_order_digest({**ORDER, "paymentTitle": ""}) != ecom_order_digest(ORDER)


def test_a_sweep_copy_of_a_status_changed_within_the_same_second_is_not_deduplicated_as_a_repeat() -> None:
    first = _order_messages("shop", ORDER, NOW)
    repeat = _order_messages("shop", dict(ORDER), NOW)
    paid_within_the_second = _order_messages("shop", {**ORDER, "paymentStatus": "cancelled"}, NOW)
    assert [m.deduplication_id() for m in first] == [m.deduplication_id() for m in repeat]
    assert not {m.deduplication_id() for m in first} & {m.deduplication_id() for m in paid_within_the_second}
    bare = {k: v for k, v in ORDER.items() if k != "status"}  # no digest: deduplicated by id and stamp, as before
    assert _order_messages("shop", bare, NOW)[0].change_key is None


def test_only_order_notices_carry_a_digest() -> None:
    body = json.dumps({"shipment": {"id": 9, "updatedAt": ORDER["updatedAt"], "order": {"resource": {"id": 1}}}})
    webhook = IncomingWebhook("ecom", "shop", body.encode(), {"content-type": "application/json"}, {})
    shipment = parse_ecom_webhook(webhook, NOW)
    assert shipment is not None and shipment.content_digest is None


scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8)
json_values = scalars | st.lists(scalars, max_size=2) | st.dictionaries(st.text(max_size=4), scalars, max_size=2)


@given(
    st.dictionaries(
        st.sampled_from(["id", "status", "paymentStatus", "shipmentStatus", "updatedAt", "shipmentIsPickup"]),
        json_values,
    )
)
def test_any_row_gives_a_digest_or_none_never_an_error(row: dict[str, Any]) -> None:
    digest = ecom_order_digest(row)
    assert digest is None or len(digest) == 16


# -- the status ledger keeps the last few, newest last -------------------------------------------------------------


class _Client:
    """A DynamoDB client that records the status ledger's update (its values as the store serialised them)."""

    def __init__(self) -> None:
        self.updates: list[dict[str, Any]] = []

    def update_item(self, **request: Any) -> dict[str, Any]:
        self.updates.append(request)
        return {}


def _lease(digests: tuple[str, ...]) -> StatusLease:
    return StatusLease(7, "token", StatusRecord(order_id=7, ecom_digests=digests))


def _settled(client: _Client) -> list[str]:
    values = client.updates[-1]["ExpressionAttributeValues"]
    return [v["S"] for v in values[":seen"]["L"]]


def test_the_ledger_adds_what_a_sync_saw_moves_a_repeat_to_the_newest_end_and_keeps_the_last_few() -> None:
    client = _Client()
    store = StatusStore("table", client=client, clock=lambda: NOW.timestamp())
    older = tuple(f"{n:016x}" for n in range(ECOM_DIGESTS_KEPT))
    settle = dict(frozen=False, ecom_seen="s", pos_seen="p", entries=())

    store.settle("shop", _lease(older), **settle, ecom_digests=[older[1], "f" * 16, "f" * 16])  # type: ignore[arg-type]

    assert _settled(client) == [*older[2:], older[1], "f" * 16]
    store.settle("shop", _lease(("a" * 16,)), **settle)  # type: ignore[arg-type]  # a sync that saw nothing new
    assert _settled(client) == ["a" * 16]
    item = {"order_id": {"N": "7"}, "ecom_digests": {"L": [{"S": "a" * 16}]}}
    assert status_record(item).ecom_digests == ("a" * 16,)
    assert status_record({"order_id": {"N": "7"}}).ecom_digests == ()  # an item from before digests


def test_settling_unread_adds_its_note_and_changes_nothing_else_while_the_lease_is_held() -> None:
    client = _Client()
    store = StatusStore("table", client=client, clock=lambda: NOW.timestamp())
    store.settle_unread("shop", _lease(("a" * 16,)), entries=[{"kind": "ignored", "detail": "seen"}])
    [update] = client.updates
    assert update["UpdateExpression"] == "SET history = :history, lease_until = :zero"
    assert update["ConditionExpression"] == "lease_token = :token"
    [entry] = update["ExpressionAttributeValues"][":history"]["L"]
    assert entry["M"]["detail"] == {"S": "seen"} and entry["M"]["at"] == {"N": str(int(NOW.timestamp()))}
