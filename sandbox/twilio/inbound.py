"""Inbound texts: a phone texts one of our numbers, and Twilio takes it in.

An inbound message's timeline, on the emulator's clock:

* **created** (``date_created``): when Twilio got it from the carrier. That is the moment of
  injection, or ``SentAgo`` seconds earlier for a late reply (``POST /sandbox/inbound``
  with ``SentAgo``, ``nudge sandbox reply --sent-ago``).
* **receiving**, ``date_sent`` null, until Twilio calls the incoming-message webhook,
  ``inbound_webhook_delay_s`` after creation; then **received**, with ``date_sent`` = that
  moment (the OpenAPI description: "when Twilio sent the HTTP request to your incoming
  message webhook URL"). The emulator calls no URL: the moment is what it models.
* **listable**: the Messages list leaves it out until ``inbound_lag_s`` after creation, and
  a back-dated message no earlier than its injection: it was "missing from the list" until
  now. Fetching it by SID works at once.

Carrier keywords act when the message is injected: STOP/START change the emulator's
opt-outs and get Twilio's auto-reply (an ``outbound-reply`` message created with the
inbound one), HELP gets the ``help_text`` knob.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from sandbox.twilio import carrier
from sandbox.twilio.numbers import E164_RE
from sandbox.twilio.store import StoredMessage
from sandbox.twilio.wire import ApiResult, api_error, message_view, new_sid, render_message

if TYPE_CHECKING:
    from sandbox.twilio.engine import Engine

#: Used for inbound messages when nothing else says which account a number belongs to.
DEFAULT_ACCOUNT_SID = "AC" + "0" * 32


def parse_sent_ago(raw: object) -> float:
    """``SentAgo`` from JSON (a number) or a form (a string): seconds, finite, >= 0.

    Absent (None or empty) means 0. Raises ValueError otherwise.
    """
    if raw is None or raw == "":
        return 0.0
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise ValueError("SentAgo must be a number of seconds")
    try:
        value = float(raw)
    except ValueError as exc:
        raise ValueError("SentAgo must be a number of seconds") from exc
    if not (math.isfinite(value) and value >= 0):
        raise ValueError("SentAgo must be a finite number of seconds >= 0")
    return value


def inject_inbound(
    engine: Engine,
    from_: str,
    to: str,
    body: str,
    account_sid: str | None = None,
    *,
    sent_ago: float = 0.0,
) -> ApiResult:
    """A phone texts one of our numbers, ``sent_ago`` seconds ago; keywords act now."""
    if not E164_RE.match(from_):
        return api_error(21212, from_=from_)
    if not E164_RE.match(to):
        return api_error(21211, to=to)
    if not (math.isfinite(sent_ago) and sent_ago >= 0):
        return api_error(20001, detail="SentAgo must be a finite number of seconds >= 0")
    store, config = engine.store, engine.config
    owner = store.number_by_phone.get(to)
    if owner is None and config.strict_numbers:
        return api_error(21606, from_=to)
    sent_from_here = store.by_from.get(to)
    account = (
        (owner.account_sid if owner else None)
        or account_sid
        # An account that sends from a number it never bought (lenient mode) owns it.
        or (sent_from_here[-1].account_sid if sent_from_here else None)
        or config.account_sid
        or engine.last_account_sid
        or DEFAULT_ACCOUNT_SID
    )
    service_sid = store.service_of_number.get(owner.sid) if owner else None
    now = engine.now()
    created = now - sent_ago
    webhook_at = created + config.inbound_webhook_delay_s
    inbound = StoredMessage(
        seq=store.next_seq(),
        sid=new_sid("SM"),
        account_sid=account,
        direction="inbound",
        to=to,
        from_=from_,
        body=body,
        messaging_service_sid=service_sid,
        num_segments=carrier.count_segments(body),
        created_at=created,
        sent_at=webhook_at,
        done_at=webhook_at,
        outcome="received",
        error_code=None,
        listable_at=max(now, created + config.inbound_lag_s),
    )
    store.add_message(inbound)
    engine.counters.inbound += 1
    keyword = carrier.match_keyword(body)
    reply_text: str | None = None
    if keyword == "stop":
        store.set_opt_out(account, from_, to, out=True)
        reply_text = carrier.STOP_REPLY
    elif keyword == "start":
        store.set_opt_out(account, from_, to, out=False)
        reply_text = carrier.START_REPLY
    elif keyword == "help":
        reply_text = config.help_text
    reply: dict[str, Any] | None = None
    if reply_text is not None:
        auto = StoredMessage(
            seq=store.next_seq(),
            sid=new_sid("SM"),
            account_sid=account,
            direction="outbound-reply",
            to=from_,
            from_=to,
            body=reply_text,
            messaging_service_sid=service_sid,
            num_segments=carrier.count_segments(reply_text),
            created_at=created,
            sent_at=created,
            done_at=created,
            outcome="delivered",
            error_code=None,
        )
        store.add_message(auto)
        engine.counters.auto_replies += 1
        reply = render_message(auto, message_view(auto, now))
    message = render_message(inbound, message_view(inbound, now))
    return ApiResult(201, {"message": message, "auto_reply": reply, "keyword": keyword})
