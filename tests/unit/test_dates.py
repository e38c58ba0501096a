"""One reading of vendor time stamps for every caller: aware, "Z" and naive stamps being UTC."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from pos_ecom_sync.dates import instant_or_none, parse_instant


@pytest.mark.parametrize(
    ("stamp", "expected"),
    [
        ("2026-03-01T10:00:00Z", datetime(2026, 3, 1, 10, tzinfo=UTC)),
        ("2026-03-01T10:00:00", datetime(2026, 3, 1, 10, tzinfo=UTC)),  # no offset: UTC
        ("2026-03-01T10:00:00.250+02:00", datetime(2026, 3, 1, 10, 0, 0, 250000, timezone(timedelta(hours=2)))),
    ],
)
def test_a_stamp_is_read_as_an_aware_instant_in_the_offset_it_was_written_in(stamp: str, expected: datetime) -> None:
    moment = parse_instant(stamp)
    assert moment == expected and moment.utcoffset() == expected.utcoffset()


def test_an_unreadable_stamp_is_a_value_error_or_none() -> None:
    with pytest.raises(ValueError):
        parse_instant("yesterday")
    assert instant_or_none("yesterday") is None
    assert instant_or_none("") is None
    assert instant_or_none(1_767_225_600) is None
    assert instant_or_none(None) is None
    assert instant_or_none("2026-03-01T10:00:00Z") == datetime(2026, 3, 1, 10, tzinfo=UTC)
