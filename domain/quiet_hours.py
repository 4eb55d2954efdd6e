"""Quiet hours: when a text may reach a recipient, in the recipient's own local time.

The SMS admin configures the *permitted sending window* (``quiet_hours`` in ``SmsConfig``)
as ``"HH:MM-HH:MM"`` in the recipient's local wall-clock time, e.g. ``"08:00-21:00"``, or
``"off"`` for no restriction. The start is inclusive and the end exclusive; a window whose
end is earlier than its start crosses midnight (``"20:00-02:00"``), and ``"08:00-00:00"``
(or ``"08:00-24:00"``) runs to midnight. A message outside the window is deferred to the
window's next start, never dropped.

Times are wall-clock times, so windows follow daylight-saving changes: ``08:00`` is 08:00
local on both sides of a transition. When a window start falls in a spring-forward gap (it
does not exist that day), the window opens at the transition; when it falls in a fall-back
overlap (it exists twice), it opens at its first occurrence.

A recipient's time zone comes from their number (:func:`recipient_timezone`) when the
number maps to exactly one zone, else from the institution's default.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache, lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_WINDOW = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")
_FORMAT_HELP = (
    "quiet_hours is the permitted sending window in the recipient's local time, "
    "as HH:MM-HH:MM (e.g. 08:00-21:00), or 'off' for no restriction"
)


@dataclass(frozen=True, slots=True)
class SendingWindow:
    """The permitted sending window, in local wall-clock time: ``start <= t < end``."""

    start: time
    end: time

    def __post_init__(self) -> None:
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise ValueError("a sending window is in local wall-clock time: use naive times")
        if self.start == self.end:
            raise ValueError(
                "an empty sending window would never send; use 'off' for no restriction"
            )

    @property
    def crosses_midnight(self) -> bool:
        """Whether the window runs past midnight (end earlier than start)."""
        return self.end < self.start

    def allows(self, local: time) -> bool:
        """Whether the local wall-clock time ``local`` is inside the window."""
        if self.end < self.start:
            return local >= self.start or local < self.end
        return self.start <= local < self.end

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"


def parse_window(text: str) -> SendingWindow | None:
    """Parse a ``quiet_hours`` value: ``"HH:MM-HH:MM"``, or ``"off"`` (returns ``None``).

    Raises :class:`ValueError` with the expected format for anything else.
    """
    if text.strip().lower() == "off":
        return None
    match = _WINDOW.match(text)
    if match is None:
        raise ValueError(f"{_FORMAT_HELP}; got {text!r}")
    sh, sm, eh, em = (int(g) for g in match.groups())
    if eh == 24 and em == 0:
        eh = 0  # "…-24:00" means "until midnight"
    for hour, minute in ((sh, sm), (eh, em)):
        if hour > 23 or minute > 59:
            raise ValueError(f"{_FORMAT_HELP}; {hour:02d}:{minute:02d} is not a time of day")
    try:
        return SendingWindow(time(sh, sm), time(eh, em))
    except ValueError as exc:
        raise ValueError(f"{exc}; got {text!r}") from None


def next_allowed(now_utc: datetime, window: SendingWindow | None, tz: ZoneInfo) -> datetime | None:
    """Return ``None`` if a text may be sent at ``now_utc``, else when the window next opens.

    ``now_utc`` must be timezone-aware; the result is in UTC and always after ``now_utc``.
    ``tz`` is the recipient's time zone.
    """
    if now_utc.tzinfo is None:
        raise ValueError("now_utc must be a timezone-aware datetime")
    if window is None:
        return None
    local = now_utc.astimezone(tz)
    wall = local.time()
    if window.allows(wall):
        return None
    day = local.date()
    if not window.crosses_midnight and wall >= window.end:
        day += timedelta(days=1)
    for _ in range(3):
        opens = _opening(day, window.start, tz)
        if opens > now_utc:
            return opens
        # Only in a fall-back overlap: the first occurrence of the start already passed
        # while the wall clock is back before it; it opens at the second occurrence.
        second = datetime.combine(day, window.start, tzinfo=tz).replace(fold=1).astimezone(UTC)
        if second > now_utc:
            return second
        day += timedelta(days=1)
    raise AssertionError("unreachable: a window opens at least once every day")  # pragma: no cover


#: Twilio keeps a queued message at most this long (its ``ValidityPeriod`` maximum).
MAX_VALIDITY_S = 36_000


def window_closes(now_utc: datetime, window: SendingWindow | None, tz: ZoneInfo) -> datetime | None:
    """When the window open at ``now_utc`` closes (UTC), or ``None`` with no window.

    ``now_utc`` must lie inside the window (:func:`next_allowed` returned ``None``).
    """
    if now_utc.tzinfo is None:
        raise ValueError("now_utc must be a timezone-aware datetime")
    if window is None:
        return None
    local = now_utc.astimezone(tz)
    day = local.date()
    if window.crosses_midnight and local.time() >= window.start:
        day += timedelta(days=1)
    closes = _opening(day, window.end, tz)
    if closes <= now_utc:  # only in a fall-back overlap: the second occurrence closes it
        closes = datetime.combine(day, window.end, tzinfo=tz).replace(fold=1).astimezone(UTC)
    return closes


def validity_seconds(now_utc: datetime, window: SendingWindow | None, tz: ZoneInfo) -> int:
    """How long a text sent at ``now_utc`` may wait in the provider's queue: until the
    recipient's window closes, at most :data:`MAX_VALIDITY_S`; 0 when it is closed now.

    The send path passes this as Twilio's ``ValidityPeriod``: a backlog in the provider's
    queue is then dropped (error 30036) instead of reaching a phone at 2 a.m.
    """
    if next_allowed(now_utc, window, tz) is not None:
        return 0
    closes = window_closes(now_utc, window, tz)
    if closes is None:
        return MAX_VALIDITY_S
    return max(0, min(MAX_VALIDITY_S, int((closes - now_utc).total_seconds())))


def _opening(day: date, start: time, tz: ZoneInfo) -> datetime:
    """The first UTC instant on ``day`` whose local wall-clock time is ``start`` or later."""
    first = datetime.combine(day, start, tzinfo=tz)
    later = first.replace(fold=1)
    # zoneinfo reads fold=0 with the offset before a transition and fold=1 with the one
    # after: equal offsets mean no transition; a smaller offset after it, a fall-back
    # overlap (fold=0 is the first occurrence, as wanted).
    if later.utcoffset() <= first.utcoffset():  # type: ignore[operator]
        return first.astimezone(UTC)
    # ``start`` falls in a spring-forward gap: it does not exist that day. The window
    # opens at the transition, which lies between the two readings.
    low, high = later.astimezone(UTC), first.astimezone(UTC)
    while high - low > timedelta(seconds=1):
        mid = low + (high - low) / 2
        if mid.astimezone(tz).time() >= start:
            high = mid
        else:
            low = mid
    return high.replace(microsecond=0)


@lru_cache(maxsize=256)
def zone(key: str) -> ZoneInfo:
    """Return the :class:`ZoneInfo` for an IANA key (cached; raises if unknown)."""
    return ZoneInfo(key)


@cache
def _nanp_prefixes() -> tuple[dict[str, tuple[str, ...]], int]:
    # Imported on first use: the prefix table costs ~60 ms to import, which CLI
    # commands that never look up a time zone should not pay.
    from phonenumbers.tzdata import TIMEZONE_DATA, TIMEZONE_LONGEST_PREFIX

    return TIMEZONE_DATA, TIMEZONE_LONGEST_PREFIX


_E164 = re.compile(r"^\+[1-9]\d{4,14}$")


def recipient_timezone(e164: str, default_tz: str) -> str:
    """Return the IANA time zone of an E.164 number, or ``default_tz``.

    Uses libphonenumber's number-to-time-zone data. A number that maps to exactly one known
    zone gets it; one that maps to several (toll-free numbers, mobile ranges of countries
    that span zones), none, or an unknown zone gets the institution's default.

    North American (+1) numbers are looked up by prefix directly in the same table
    (what ``time_zones_for_geographical_number`` does), without parsing: +1 numbers are
    geographic by area code, and planning a large campaign looks up every recipient.
    """
    if not _E164.match(e164):
        return default_tz
    zones = _nanp_zones(e164[1:]) if e164.startswith("+1") else _zones(e164)
    if len(zones) != 1:
        return default_tz
    try:
        zone(zones[0])
    except ZoneInfoNotFoundError:  # "Etc/Unknown", or a zone this system's tzdata lacks
        return default_tz
    return zones[0]


def _nanp_zones(digits: str) -> tuple[str, ...]:
    data, longest = _nanp_prefixes()
    for size in range(min(longest, len(digits)), 0, -1):
        zones = data.get(digits[:size])
        if zones is not None:
            return zones
    return ()


@lru_cache(maxsize=65536)
def _zones(e164: str) -> tuple[str, ...]:
    import phonenumbers
    from phonenumbers.timezone import time_zones_for_number

    try:
        return time_zones_for_number(phonenumbers.parse(e164))
    except phonenumbers.NumberParseException:
        return ()
