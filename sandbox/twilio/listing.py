"""GET Messages.json as Twilio answers it: which messages, in which order, page by page.

**Order.** Twilio documents the list as sorted by ``DateSent``, most recent first, and says
nothing more. The emulator makes that a total order on what a client can see:

1. Messages with no ``date_sent`` come first: outbound ones still ``queued``/``accepted``,
   inbound ones still ``receiving``, and ``failed`` ones (Twilio never sent them). Sorted by
   ``DateSent`` newest first, a message not sent yet is newer than every message that was;
   a database sorting ``date_sent DESC`` puts NULLs first too. Among themselves: newest
   ``date_created`` first, at whole seconds, then by SID as in 3.
2. Then the others by ``date_sent``, newest first, at the precision Twilio shows (whole
   seconds, GMT).
3. Within one second, by SID, descending. Twilio documents no tie order; SIDs are random,
   so within a second the order says nothing about which message came first, and a client
   that assumes it does is caught here as it would be at Twilio.

The order depends on time: a message moves up when it gets its ``date_sent`` (sent, or
``received`` once the incoming webhook is called). :class:`MessageOrder` caches it until the
next such instant or the next write.

**Paging.** ``PageToken`` carries the sort key of the last message of a page (``PA…``,
next page) or of the first (``PB…``, previous page); a page lists what comes strictly after
(or before) that key in the order at the time of the request, so paging stays consistent
with the order, and a message whose key did not change between two pages is neither skipped
nor repeated. Without a token, ``Page`` is an offset of ``Page * PageSize`` messages.

**Filters.** ``To`` and ``From`` match exactly. ``DateSent`` filters are by GMT date, as the
OpenAPI description says: ``DateSent=D`` the whole day D, ``DateSent<=D`` (parameter
``DateSent<``) on or before D, ``DateSent>=D`` (``DateSent>``) on or after D. A value with a
time of day names the GMT date of that instant; the time is otherwise ignored, as Twilio
does (twilio-java #432/#501: "it only cares about the Date part", asking for the last 30 s
returns the whole day). A message with no ``date_sent`` matches no date filter. Accepted
values are those the description shows: ``YYYY-MM-DD``, ISO 8601 date-times (``T`` or
space, optional fraction and zone), RFC 2822 (``Wed, 19 Jun 2019 22:04:00 -0000``) and
``MM/DD/YYYY HH:MM:SS ZONE`` with a US zone name (``06/11/2019 22:05:25 MST``); a naive time
is GMT. Anything else, including ``DateSent=>=D``, is refused with 20001, as Twilio does.

**Lag.** An inbound message is left out of every listing until its ``listable_at``
(``inbound_lag_s`` after creation; for a back-dated one, at least the moment it was
injected): users report recent messages missing from the list for 10-15 minutes, and Twilio
promises no bound. Fetching it by SID works from its creation.
"""

from __future__ import annotations

import calendar
import re
from bisect import bisect_left, bisect_right
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from operator import itemgetter

from sandbox.twilio.store import Store, StoredMessage
from sandbox.twilio.wire import (
    API_PREFIX,
    ApiResult,
    api_error,
    envelope,
    message_view,
    parse_paging,
    render_message,
)

#: A message's place in the list, ascending: (0 sent | 1 not sent, whole seconds, SID).
SortKey = tuple[int, int, str]
SENT, UNSENT = 0, 1
DAY_S = 86400
#: The list's query parameters (names as in the OpenAPI description).
FILTERS = ("To", "From", "DateSent", "DateSent<", "DateSent>")
_LOWEST = -(2**62)
_US_ZONES = {"UT": 0, "UTC": 0, "GMT": 0, "Z": 0, "EST": -5, "EDT": -4, "CST": -6, "CDT": -5}
_US_ZONES |= {"MST": -7, "MDT": -6, "PST": -8, "PDT": -7}
_US_DATE = re.compile(
    r"(\d{1,2})/(\d{1,2})/(\d{4})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?)?"
    r"\s*(?:([A-Za-z]{1,4})|([+-])(\d{2}):?(\d{2}))?"
)
_TOKEN = re.compile(r"(P[AB])([01])\.(-?\d{1,12})\.(\w{1,64})")


def sort_key(message: StoredMessage, now: float) -> SortKey:
    """Where ``message`` sorts at ``now`` (ascending; the list reads it backwards)."""
    sent = message_view(message, now).date_sent
    if sent is None:
        return (UNSENT, int(message.created_at), message.sid)
    return (SENT, int(sent), message.sid)


def is_listable(message: StoredMessage, now: float) -> bool:
    """False while the list has not caught up with ``message`` yet."""
    return message.listable_at is None or message.listable_at <= now


def gmt_day(raw: str) -> date:
    """The GMT date a ``DateSent`` value names (see the module docstring for the formats)."""
    text = raw.strip()
    try:
        return date.fromisoformat(text)
    except ValueError:
        pass
    instant: datetime | None = None
    try:
        instant = datetime.fromisoformat(text)
    except ValueError:
        instant = _us_datetime(text)
        if instant is None:
            try:
                instant = parsedate_to_datetime(text)
            except (TypeError, ValueError, IndexError):
                instant = None
    if instant is None:
        raise ValueError(f"Invalid date value: {raw!r}")
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=UTC)
    return instant.astimezone(UTC).date()


def _us_datetime(text: str) -> datetime | None:
    match = _US_DATE.fullmatch(text)
    if match is None:
        return None
    month, day, year, hour, minute, second, name, sign, zh, zm = match.groups()
    if name is not None:
        if name.upper() not in _US_ZONES:
            return None
        offset = timedelta(hours=_US_ZONES[name.upper()])
    elif sign is not None:
        offset = timedelta(hours=int(zh), minutes=int(zm)) * (-1 if sign == "-" else 1)
    else:
        offset = timedelta(0)
    try:
        return datetime(
            int(year),
            int(month),
            int(day),
            int(hour or 0),
            int(minute or 0),
            int(second or 0),
            tzinfo=timezone(offset),
        )
    except ValueError:
        return None


def day_start(day: date) -> int:
    """Epoch seconds of the GMT midnight that starts ``day``."""
    return calendar.timegm(day.timetuple())


def sent_window(query: Mapping[str, str]) -> tuple[int | None, int | None]:
    """The ``DateSent`` filters as [first second, end second) on the send date; None: open.

    Raises ValueError (Twilio's 20001) for a value that names no date.
    """
    lower: int | None = None
    upper: int | None = None
    for name in ("DateSent", "DateSent>", "DateSent<"):
        raw = query.get(name)
        if raw is None:
            continue
        start = day_start(gmt_day(raw))
        if name in ("DateSent", "DateSent>"):
            lower = start if lower is None else max(lower, start)
        if name in ("DateSent", "DateSent<"):
            upper = start + DAY_S if upper is None else min(upper, start + DAY_S)
    return lower, upper


def encode_token(prefix: str, key: SortKey) -> str:
    """A ``PageToken``: ``PA`` (after) or ``PB`` (before) and the sort key of a message."""
    return f"{prefix}{key[0]}.{key[1]}.{key[2]}"


def decode_token(token: str) -> tuple[str, SortKey]:
    """The direction and sort key of a ``PageToken``; ValueError if it is not ours."""
    match = _TOKEN.fullmatch(token)
    if match is None:
        raise ValueError("PageToken")
    prefix, group, second, sid = match.groups()
    return prefix, (int(group), int(second), sid)


class MessageOrder:
    """The store's message lists in list order, cached until the order can have changed.

    It changes with every write (``Store.version``) and whenever a message gets its send
    date (``Store.next_send_after``): until then, one sort serves every page.
    """

    def __init__(self, store: Store) -> None:
        self._store = store
        self._orders: dict[tuple[str, str], tuple[list[SortKey], list[StoredMessage]]] = {}
        self._version = -1
        self._built_at = 0.0
        self._valid_until = 0.0

    def ordered(
        self, source: tuple[str, str], messages: list[StoredMessage], now: float
    ) -> tuple[list[SortKey], list[StoredMessage]]:
        """``messages`` (the list named ``source``) ascending by :func:`sort_key` at ``now``."""
        fresh = self._version == self._store.version and self._built_at <= now
        if not (fresh and now < self._valid_until):
            self._orders.clear()
            self._version = self._store.version
            self._built_at = now
            self._valid_until = self._store.next_send_after(now)
        found = self._orders.get(source)
        if found is None:
            pairs = sorted(((sort_key(m, now), m) for m in messages), key=itemgetter(0))
            found = ([key for key, _ in pairs], [m for _, m in pairs])
            self._orders[source] = found
        return found


def list_messages(
    store: Store, order: MessageOrder, account_sid: str, query: Mapping[str, str], now: float
) -> ApiResult:
    """GET Messages.json at ``now``: filters, order and paging as the module docstring says."""
    try:
        page_size, page = parse_paging(query)
        lower, upper = sent_window(query)
        raw_token = query.get("PageToken")
        token = decode_token(raw_token) if raw_token else None
    except ValueError as exc:
        return api_error(20001, detail=str(exc))
    to, from_ = query.get("To") or None, query.get("From") or None
    if to:
        source, candidates = ("to", to), store.by_to.get(to, [])
    elif from_:
        source, candidates = ("from", from_), store.by_from.get(from_, [])
    else:
        source, candidates = ("all", ""), store.messages
    keys, messages = order.ordered(source, candidates, now)

    lo, hi = 0, len(keys)
    if lower is not None or upper is not None:  # no date_sent: no match
        hi = bisect_left(keys, (UNSENT, _LOWEST, ""))
    if lower is not None:
        lo = bisect_left(keys, (SENT, lower, ""))
    if upper is not None:
        hi = min(hi, bisect_left(keys, (SENT, upper, "")))

    def visible(m: StoredMessage) -> bool:
        return (
            m.account_sid == account_sid
            and (from_ is None or m.from_ == from_)
            and (to is None or m.to == to)
            and is_listable(m, now)
        )

    found: list[int] = []
    if token is not None and token[0] == "PB":  # the page just newer than the key, upwards
        for index in range(max(lo, bisect_right(keys, token[1])), hi):
            if visible(messages[index]):
                found.append(index)
                if len(found) > page_size:
                    break
        chosen = list(reversed(found[:page_size]))
        has_newer, has_older = len(found) > page_size, bool(chosen)
    else:
        if token is not None:
            hi = min(hi, bisect_left(keys, token[1]))
        skip = 0 if token is not None else page * page_size
        for index in range(hi - 1, lo - 1, -1):
            if not visible(messages[index]):
                continue
            if skip:
                skip -= 1
                continue
            found.append(index)
            if len(found) > page_size:
                break
        chosen = found[:page_size]
        has_newer = bool(chosen) and (token is not None or page > 0)
        has_older = len(found) > page_size
    body = envelope(
        "messages",
        [render_message(messages[i], message_view(messages[i], now)) for i in chosen],
        path=f"{API_PREFIX}/{account_sid}/Messages.json",
        filters=[(k, query[k]) for k in FILTERS if k in query],
        page_size=page_size,
        page=page,
        token=raw_token,
        next_token=encode_token("PA", keys[chosen[-1]]) if has_older else None,
        previous_token=encode_token("PB", keys[chosen[0]]) if has_newer else None,
    )
    return ApiResult(200, body)
