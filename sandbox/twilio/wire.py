"""Twilio's wire shapes: resource JSON, RFC 2822 dates, list envelopes and paging URIs.

Every dict built here has exactly the keys Twilio sends (the contract tests check them
against the OpenAPI description), with Twilio's types: ``num_segments`` and ``num_media``
are strings, dates are RFC 2822 in GMT (``Thu, 24 Aug 2023 05:01:45 +0000``), ``uri``s are
relative to ``https://api.twilio.com`` and list envelopes carry the filters in every page URI.

A message's status is derived from time, which keeps the emulator deterministic and cheap:
``queued`` until ``sent_at`` (its turn in the queue plus one status delay), then ``sent``
until ``done_at`` (one more delay), then its final status (``delivered``, ``undelivered``
or ``failed``). Both instants are fixed when the message is created. A message that never
leaves Twilio is ``queued`` until ``sent_at``, then ``failed`` with no send date: one that
would wait longer than its ``ValidityPeriod`` fails with 30036 at creation + ValidityPeriod.
An inbound message is ``receiving``, with no send date, until ``sent_at`` (when Twilio calls
the incoming-message webhook), then ``received`` with ``date_sent`` = that moment.

:class:`ApiResult` is what every operation answers; ``app.py`` sends it as is.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import urlencode

from sandbox.twilio.errors import delivery_message_for, error_body, http_status_for
from sandbox.twilio.store import StoredMessage, StoredNumber

API_VERSION = "2010-04-01"
API_PREFIX = f"/{API_VERSION}/Accounts"
PRICE_PER_SEGMENT = 0.0079
MAX_PAGE_SIZE = 1000
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@dataclass(slots=True)
class ApiResult:
    """What to answer: HTTP status and JSON body; ``drop`` closes the connection instead."""

    status: int
    body: dict[str, Any]
    drop: bool = False


def api_error(code: int, **fmt: Any) -> ApiResult:
    """An error answer in Twilio's shape."""
    return ApiResult(http_status_for(code), error_body(code, **fmt))


def new_sid(prefix: str) -> str:
    """A fresh random SID: ``prefix`` and 32 hex digits."""
    return prefix + os.urandom(16).hex()


def parse_paging(query: Mapping[str, str]) -> tuple[int, int]:
    """``PageSize`` (1..1000, default 50) and ``Page`` (>= 0); ValueError otherwise."""
    try:
        page_size = int(query.get("PageSize", "50"))
        page = int(query.get("Page", "0"))
    except ValueError as exc:
        raise ValueError("PageSize and Page must be integers") from exc
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise ValueError(f"PageSize must be between 1 and {MAX_PAGE_SIZE}")
    if page < 0:
        raise ValueError("Page must not be negative")
    return page_size, page


@lru_cache(maxsize=4096)
def _rfc2822_second(second: int) -> str:
    t = time.gmtime(second)
    return (
        f"{_DAYS[t.tm_wday]}, {t.tm_mday:02d} {_MONTHS[t.tm_mon - 1]} {t.tm_year} "
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} +0000"
    )


def rfc2822(ts: float | None) -> str | None:
    """Format an epoch time the way Twilio does (whole seconds, GMT)."""
    return None if ts is None else _rfc2822_second(int(ts))


def iso8601(ts: float) -> str:
    """Format an epoch time as the v1 APIs (Messaging) do: ``2015-07-30T20:12:31Z``."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(ts)))


@dataclass(frozen=True, slots=True)
class MessageView:
    """What a message looks like at a given moment."""

    status: str
    date_sent: float | None
    date_updated: float
    error_code: int | None


def message_view(message: StoredMessage, now: float) -> MessageView:
    """Derive a message's status, dates and error code at time ``now``."""
    if message.direction == "inbound":
        if now < message.sent_at:  # Twilio has not called the incoming webhook yet
            return MessageView("receiving", None, message.created_at, None)
        return MessageView("received", message.sent_at, message.sent_at, None)
    if now < message.sent_at:
        return MessageView("queued", None, message.created_at, None)
    if message.outcome == "failed":
        return MessageView("failed", None, message.sent_at, message.error_code)
    if now < message.done_at:
        return MessageView("sent", message.sent_at, message.sent_at, None)
    code = message.error_code if message.outcome == "undelivered" else None
    return MessageView(message.outcome, message.sent_at, message.done_at, code)


def created_view(message: StoredMessage) -> MessageView:
    """How a message looks in its create response: always just accepted or queued."""
    status = "accepted" if message.messaging_service_sid else "queued"
    return MessageView(status, None, message.created_at, None)


def message_uri(account_sid: str, sid: str) -> str:
    """The ``uri`` of a message resource."""
    return f"{API_PREFIX}/{account_sid}/Messages/{sid}.json"


def render_message(message: StoredMessage, view: MessageView) -> dict[str, Any]:
    """A message resource as Twilio sends it."""
    uri = message_uri(message.account_sid, message.sid)
    accepted = view.status == "accepted"
    priced = view.status in ("sent", "delivered", "undelivered", "received")
    return {
        "account_sid": message.account_sid,
        "api_version": API_VERSION,
        "body": message.body,
        "date_created": rfc2822(message.created_at),
        "date_sent": rfc2822(view.date_sent),
        "date_updated": rfc2822(view.date_updated),
        "direction": message.direction,
        "error_code": view.error_code,
        "error_message": None if view.error_code is None else delivery_message_for(view.error_code),
        # A Messaging Service picks the sender after the create answers (Twilio sends
        # from=null and num_segments="0" until then).
        "from": None if accepted else message.from_,
        "messaging_service_sid": message.messaging_service_sid,
        "num_media": "0",
        "num_segments": "0" if accepted else str(message.num_segments),
        "price": f"-{PRICE_PER_SEGMENT * message.num_segments:.5f}" if priced else None,
        "price_unit": "USD",
        "sid": message.sid,
        "status": view.status,
        "subresource_uris": {"media": uri[: -len(".json")] + "/Media.json"},
        "to": message.to,
        "uri": uri,
    }


def friendly_name(phone_number: str) -> str:
    """Twilio's default friendly name: ``(415) 555-0123`` for NANP numbers."""
    digits = phone_number[2:] if phone_number.startswith("+1") else ""
    if len(digits) == 10:
        return f"({digits[:3]}) {digits[3:6]}-{digits[6:]}"
    return phone_number


def render_incoming_number(number: StoredNumber) -> dict[str, Any]:
    """An IncomingPhoneNumber resource as Twilio sends it."""
    return {
        "account_sid": number.account_sid,
        "address_requirements": "none",
        "address_sid": None,
        "api_version": API_VERSION,
        "beta": False,
        "bundle_sid": None,
        "capabilities": {"fax": False, "mms": True, "sms": True, "voice": True},
        "date_created": rfc2822(number.created_at),
        "date_updated": rfc2822(number.created_at),
        "emergency_address_sid": None,
        "emergency_address_status": "unregistered",
        "emergency_status": "Inactive",
        "friendly_name": number.friendly_name,
        "identity_sid": None,
        "origin": "twilio",
        "phone_number": number.phone_number,
        "sid": number.sid,
        "sms_application_sid": None,
        "sms_fallback_method": "POST",
        "sms_fallback_url": None,
        "sms_method": "POST",
        "sms_url": None,
        "status": "in-use",
        "status_callback": None,
        "status_callback_method": "POST",
        "trunk_sid": None,
        "type": "local",
        "uri": f"{API_PREFIX}/{number.account_sid}/IncomingPhoneNumbers/{number.sid}.json",
        "voice_application_sid": None,
        "voice_caller_id_lookup": False,
        "voice_fallback_method": "POST",
        "voice_fallback_url": None,
        "voice_method": "POST",
        "voice_receive_mode": "voice",
        "voice_url": None,
    }


def page_uri(
    path: str, filters: list[tuple[str, str]], page_size: int, page: int, token: str | None
) -> str:
    """A list URI that keeps the filters, as Twilio's ``*_page_uri`` fields do."""
    params = [*filters, ("PageSize", str(page_size)), ("Page", str(page))]
    if token is not None:
        params.append(("PageToken", token))
    return f"{path}?{urlencode(params)}"


def envelope(
    key: str,
    items: list[dict[str, Any]],
    *,
    path: str,
    filters: list[tuple[str, str]],
    page_size: int,
    page: int,
    token: str | None,
    next_token: str | None,
    previous_token: str | None,
) -> dict[str, Any]:
    """A 2010-04-01 list page: the records under ``key`` plus the paging fields."""
    start = page * page_size
    return {
        "end": start + max(len(items) - 1, 0),
        "first_page_uri": page_uri(path, filters, page_size, 0, None),
        key: items,
        "next_page_uri": (
            page_uri(path, filters, page_size, page + 1, next_token) if next_token else None
        ),
        "page": page,
        "page_size": page_size,
        "previous_page_uri": (
            page_uri(path, filters, page_size, page - 1, previous_token)
            if previous_token and page > 0
            else None
        ),
        "start": start,
        "uri": page_uri(path, filters, page_size, page, token),
    }
