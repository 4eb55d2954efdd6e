"""Quiet hours: when a deferred text goes out, in the recipient's wall-clock time."""

from __future__ import annotations

from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import phonenumbers
import pytest
from phonenumbers.timezone import time_zones_for_number

from domain.quiet_hours import SendingWindow, next_allowed, parse_window, recipient_timezone

NY = ZoneInfo("America/New_York")
LA = ZoneInfo("America/Los_Angeles")
DAY = SendingWindow(time(8), time(21))
NIGHT = SendingWindow(time(20), time(2))  # crosses midnight


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


PARSE_CASES = [
    ("day", "08:00-21:00", SendingWindow(time(8), time(21))),
    ("single-digit-hour", "8:30-21:15", SendingWindow(time(8, 30), time(21, 15))),
    ("spaces", " 08:00 - 21:00 ", SendingWindow(time(8), time(21))),
    ("crosses-midnight", "20:00-02:00", SendingWindow(time(20), time(2))),
    ("until-midnight-24", "08:00-24:00", SendingWindow(time(8), time(0))),
    ("off", "off", None),
    ("off-any-case", " OFF ", None),
]


@pytest.mark.parametrize(
    ("text", "expected"), [c[1:] for c in PARSE_CASES], ids=[c[0] for c in PARSE_CASES]
)
def test_parse_window(text: str, expected: SendingWindow | None) -> None:
    assert parse_window(text) == expected


PARSE_ERRORS = [
    ("hours-only", "8-21", r"HH:MM-HH:MM \(e\.g\. 08:00-21:00\), or 'off'.*; got '8-21'"),
    ("am-pm", "8am-9pm", r"got '8am-9pm'"),
    ("empty", "", r"got ''"),
    ("no-end", "08:00", r"got '08:00'"),
    ("hour-25", "08:00-25:00", r"25:00 is not a time of day"),
    ("minute-60", "08:60-21:00", r"08:60 is not a time of day"),
    ("empty-window", "09:00-09:00", r"empty sending window.*use 'off'"),
    ("none-is-not-off", "none", r"got 'none'"),
]


@pytest.mark.parametrize(
    ("text", "message"), [c[1:] for c in PARSE_ERRORS], ids=[c[0] for c in PARSE_ERRORS]
)
def test_parse_window_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_window(text)


def test_window_prints_as_configured() -> None:
    assert str(parse_window("8:05-21:00")) == "08:05-21:00"


NEXT_CASES = [
    # (id, now UTC, window, zone, expected UTC or None)
    ("inside-window", utc(2026, 11, 10, 15), DAY, NY, None),  # 10:00 EST
    ("at-start-inclusive", utc(2026, 11, 10, 13), DAY, NY, None),  # 08:00 EST
    ("at-end-exclusive", utc(2026, 11, 11, 2), DAY, NY, utc(2026, 11, 11, 13)),  # 21:00 EST
    ("early-morning-same-day", utc(2026, 11, 10, 11), DAY, NY, utc(2026, 11, 10, 13)),
    ("late-evening-next-day", utc(2026, 11, 11, 3, 30), DAY, NY, utc(2026, 11, 11, 13)),
    ("no-window-always-allowed", utc(2026, 11, 10, 8), None, NY, None),
    ("recipient-zone-not-utc", utc(2026, 11, 10, 15), DAY, LA, utc(2026, 11, 10, 16)),
    ("summer-offset", utc(2026, 7, 1, 11), DAY, NY, utc(2026, 7, 1, 12)),  # 07:00 EDT
    # crossing midnight: 20:00-02:00 local
    ("night-before-midnight", utc(2026, 11, 11, 4), NIGHT, NY, None),  # 23:00 EST
    ("night-after-midnight", utc(2026, 11, 11, 6), NIGHT, NY, None),  # 01:00 EST
    ("night-at-end", utc(2026, 11, 11, 7), NIGHT, NY, utc(2026, 11, 12, 1)),  # 02:00 EST
    ("night-afternoon", utc(2026, 11, 10, 20), NIGHT, NY, utc(2026, 11, 11, 1)),  # 15:00 EST
    # DST: spring forward 2026-03-08 02:00 EST -> 03:00 EDT; fall back 2026-11-01
    ("before-spring-forward", utc(2026, 3, 8, 6), DAY, NY, utc(2026, 3, 8, 12)),  # 08:00 EDT
    ("before-fall-back", utc(2026, 11, 1, 5), DAY, NY, utc(2026, 11, 1, 13)),  # 08:00 EST
    ("evening-before-spring-forward", utc(2026, 3, 8, 2, 30), DAY, NY, utc(2026, 3, 8, 12)),
    # a start inside the spring-forward gap opens at the transition (07:00 UTC = 03:00 EDT)
    (
        "start-in-gap-opens-at-transition",
        utc(2026, 3, 8, 5),
        SendingWindow(time(2, 30), time(21)),
        NY,
        utc(2026, 3, 8, 7),
    ),
    # a start inside the fall-back overlap opens at its first occurrence (01:30 EDT)...
    (
        "start-in-overlap-first-occurrence",
        utc(2026, 11, 1, 5),
        SendingWindow(time(1, 30), time(1, 45)),
        NY,
        utc(2026, 11, 1, 5, 30),
    ),
    # ...and, once the clock is set back before it, at its second one (01:30 EST)
    (
        "start-in-overlap-second-occurrence",
        utc(2026, 11, 1, 6, 10),
        SendingWindow(time(1, 30), time(1, 45)),
        NY,
        utc(2026, 11, 1, 6, 30),
    ),
]


@pytest.mark.parametrize(
    ("now", "window", "tz", "expected"), [c[1:] for c in NEXT_CASES], ids=[c[0] for c in NEXT_CASES]
)
def test_next_allowed(
    now: datetime, window: SendingWindow | None, tz: ZoneInfo, expected: datetime | None
) -> None:
    result = next_allowed(now, window, tz)
    assert result == expected
    if result is not None:
        assert result > now
        assert result.utcoffset() is not None
        assert result.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
        assert window is not None
        assert window.allows(result.astimezone(tz).time())


def test_next_allowed_refuses_naive_now() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        next_allowed(datetime(2026, 1, 1, 12), DAY, NY)  # noqa: DTZ001


ZONE_CASES = [
    ("new-york-area-code", "+12125550123", "America/New_York"),
    ("los-angeles-area-code", "+14155550123", "America/Los_Angeles"),
    ("france-single-zone", "+33612345678", "Europe/Paris"),
    ("toll-free-spans-zones", "+18005550123", "America/Chicago"),
    ("australia-mobile-spans-zones", "+61412345678", "America/Chicago"),
    ("not-e164", "2125550123", "America/Chicago"),
    ("garbage", "+1abc", "America/Chicago"),
    ("unknown-zone", "+447700900123", "America/Chicago"),
    ("empty", "", "America/Chicago"),
]


@pytest.mark.parametrize(
    ("e164", "expected"), [c[1:] for c in ZONE_CASES], ids=[c[0] for c in ZONE_CASES]
)
def test_recipient_timezone(e164: str, expected: str) -> None:
    assert recipient_timezone(e164, "America/Chicago") == expected


@pytest.mark.parametrize(
    "e164",
    [
        "+12125550123",
        "+13125550123",
        "+16175550123",
        "+33612345678",
        "+4930123456",
        "+61412345678",
        "+447911123456",
        "+525512345678",
    ],
)
def test_recipient_timezone_agrees_with_libphonenumber(e164: str) -> None:
    zones = time_zones_for_number(phonenumbers.parse(e164))
    expected = zones[0] if len(zones) == 1 and zones[0] != "Etc/Unknown" else "Etc/Default"
    assert recipient_timezone(e164, "Etc/Default") == expected
