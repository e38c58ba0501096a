"""`orders show`: which correlation ids an order's story lists, and the next step it tells the operator."""

from __future__ import annotations

from pos_ecom_sync.models.ledger import OrderRecord, StatusRecord

from pos_ecom_sync_cli.order_story import correlation_ids, next_step


def _record(**fields: object) -> OrderRecord:
    return OrderRecord(**{"order_id": 5, "status": "imported", "source_id": "ecom-5", **fields})  # type: ignore[arg-type]


def test_correlation_ids_list_every_import_attempt_then_every_status_sync_each_once() -> None:
    record = _record(correlation_ids=("hook-1", "hook-1", "poll-2"))
    status = StatusRecord(
        order_id=5,
        history=({"kind": "applied", "correlation_id": "hook-3"}, {"kind": "ignored"}, {"correlation_id": "poll-2"}),
    )
    assert correlation_ids(record, status) == ["hook-1", "poll-2", "hook-3"]
    assert correlation_ids(None, None) == []


def test_a_held_order_is_told_its_reason_and_the_retry_command() -> None:
    step = next_step("shop", 5, _record(status="held", held_reason="no POS product has SKU 'X'"), {})
    assert "no POS product has SKU 'X'" in step and "orders retry shop 5" in step


def test_an_order_still_importing_is_pointed_at_its_last_error_and_the_dead_letter_queue() -> None:
    step = next_step("shop", 5, _record(status="importing", last_error="UpstreamError: 400"), {})
    assert "UpstreamError: 400" in step and "dlq list --concern orders" in step and "dlq redrive" in step


def test_an_order_the_sync_never_saw_is_pointed_at_the_webhook_subscription_and_a_poll() -> None:
    step = next_step("shop", 5, None, {})
    assert "never seen" in step and "poll now --connection shop" in step


def test_an_imported_order_needs_nothing_unless_its_sale_cannot_be_read_or_notifications_wait() -> None:
    assert next_step("shop", 5, _record(sale_id="s1"), {"pos_sale": {"id": "s1"}}).startswith("nothing")
    unreadable = next_step("shop", 5, _record(sale_id="s1"), {"pos_sale": {"id": "s1", "error": "cannot read"}})
    assert "cannot show it now" in unreadable
    assert "notifications" in next_step("shop", 5, _record(sale_id="s1", notifications_pending=True), {})
