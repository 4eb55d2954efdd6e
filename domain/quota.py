"""The institution's monthly SMS quota: which month a send counts in, and what it costs.

The quota is a monthly limit (``SmsConfig.monthly_limit``; ``None`` means unlimited)
counted either in messages or in segments (``quota_unit``). A month is a calendar month in
the *institution's* time zone, so a text sent at 23:30 on 31 October in New York counts in
October even though it is November in UTC. Reservation itself is atomic and lives with the
ledger in models/; this module only says what to reserve and under which key.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from domain.quiet_hours import zone


class QuotaUnit(StrEnum):
    """What the monthly limit counts."""

    MESSAGES = "messages"
    SEGMENTS = "segments"


def month_key(now_utc: datetime, tz: str) -> str:
    """Return the quota month of ``now_utc`` in time zone ``tz``, as ``"YYYY-MM"``."""
    if now_utc.tzinfo is None:
        raise ValueError("now_utc must be a timezone-aware datetime")
    local = now_utc.astimezone(zone(tz))
    return f"{local.year:04d}-{local.month:02d}"


def message_cost(segments: int, unit: QuotaUnit) -> int:
    """Return what one SMS of ``segments`` segments costs against the quota."""
    if segments < 1:
        raise ValueError(f"an SMS has at least one segment, got {segments}")
    return 1 if unit == QuotaUnit.MESSAGES else segments


def remaining(limit: int | None, used: int) -> int | None:
    """Return what is left this month (never negative), or ``None`` when unlimited."""
    if limit is None:
        return None
    return max(limit - used, 0)
