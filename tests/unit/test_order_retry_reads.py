"""Which attempts of an order import may route and find the buyer from the table rather than the POS."""

from __future__ import annotations

from pos_ecom_sync.errors import RateLimited, UpstreamUnavailable
from pos_ecom_sync.models.ledger import OrderRecord
from pos_ecom_sync.orders.importer import failure_text, may_use_the_table


def _after(exc: BaseException) -> OrderRecord:
    return OrderRecord(order_id=1, status="importing", source_id="ecom-1", last_error=failure_text(exc))


def test_a_first_attempt_uses_the_table() -> None:
    assert may_use_the_table(None)


def test_the_retry_of_a_throttled_attempt_still_uses_the_table_and_spends_no_budget_on_reads() -> None:
    assert may_use_the_table(_after(RateLimited("pos", 1_700_000_000.0)))


def test_the_retry_of_an_attempt_that_failed_otherwise_reads_the_pos() -> None:
    assert not may_use_the_table(_after(UpstreamUnavailable("pos: 503")))
    assert not may_use_the_table(OrderRecord(order_id=1, status="importing", source_id="ecom-1"))
