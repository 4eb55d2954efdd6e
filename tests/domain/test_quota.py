"""The monthly quota: which month a send counts in, and what it costs."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from domain.quota import QuotaUnit, message_cost, month_key, remaining

MONTH_CASES = [
    ("mid-month", datetime(2026, 11, 15, 12, tzinfo=UTC), "America/New_York", "2026-11"),
    # 00:30 UTC on 1 Nov is still 31 Oct in New York: counts in October
    ("utc-ahead-of-local", datetime(2026, 11, 1, 0, 30, tzinfo=UTC), "America/New_York", "2026-10"),
    # 23:30 UTC on 31 Oct is already 1 Nov in Berlin
    ("local-ahead-of-utc", datetime(2026, 10, 31, 23, 30, tzinfo=UTC), "Europe/Berlin", "2026-11"),
    ("new-year", datetime(2027, 1, 1, 4, 59, tzinfo=UTC), "America/New_York", "2026-12"),
    ("utc-zone", datetime(2027, 1, 1, 0, 0, tzinfo=UTC), "UTC", "2027-01"),
]


@pytest.mark.parametrize(
    ("now", "tz", "expected"), [c[1:] for c in MONTH_CASES], ids=[c[0] for c in MONTH_CASES]
)
def test_month_key(now: datetime, tz: str, expected: str) -> None:
    assert month_key(now, tz) == expected


def test_month_key_refuses_naive_datetime() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        month_key(datetime(2026, 11, 1), "UTC")  # noqa: DTZ001


COST_CASES = [
    ("messages-one-segment", 1, QuotaUnit.MESSAGES, 1),
    ("messages-long-body-still-one", 4, QuotaUnit.MESSAGES, 1),
    ("segments-one", 1, QuotaUnit.SEGMENTS, 1),
    ("segments-four", 4, QuotaUnit.SEGMENTS, 4),
    ("plain-string-unit", 3, "segments", 3),
]


@pytest.mark.parametrize(
    ("segments", "unit", "expected"), [c[1:] for c in COST_CASES], ids=[c[0] for c in COST_CASES]
)
def test_message_cost(segments: int, unit: QuotaUnit, expected: int) -> None:
    assert message_cost(segments, unit) == expected


def test_message_cost_refuses_zero_segments() -> None:
    with pytest.raises(ValueError, match="at least one segment"):
        message_cost(0, QuotaUnit.MESSAGES)


REMAINING_CASES = [
    ("unlimited", None, 10_000, None),
    ("some-left", 1000, 250, 750),
    ("exactly-used-up", 1000, 1000, 0),
    ("overdrawn-shows-zero", 1000, 1003, 0),
]


@pytest.mark.parametrize(
    ("limit", "used", "expected"),
    [c[1:] for c in REMAINING_CASES],
    ids=[c[0] for c in REMAINING_CASES],
)
def test_remaining(limit: int | None, used: int, expected: int | None) -> None:
    assert remaining(limit, used) == expected


def test_quota_unit_values() -> None:
    assert [u.value for u in QuotaUnit] == ["messages", "segments"]
