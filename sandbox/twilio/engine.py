"""The emulator's behaviour, free of HTTP: what Twilio does with each call.

:class:`Engine` owns the store, the knobs, the seeded fault generator and the counters. Each
API operation takes already-parsed parameters and returns an :class:`ApiResult` (status and
JSON body) that ``app.py`` sends as is. Everything runs on the server's event loop, one call
at a time, so no locking is needed.

Pacing (``mps``) is a queue, as at Twilio: a create above the pace is accepted and stays
``queued`` until its turn; only a backlog longer than ``max_queue_s`` is refused (21611, or
30001 after acceptance through a Messaging Service). 429s come only from ``share_429``.

Every outbound message has a ``ValidityPeriod`` (the create's, else Twilio's 36,000 s). When
its wait in the queue (its pacing turn, plus the ``queue_delay_s`` backlog) is longer than
that, it is never sent, as at Twilio: it stays ``queued`` until creation + ValidityPeriod,
then is ``failed`` with 30036, and it takes no pacing slot. ``advance()`` moves the
emulator's clock forward, so tests can watch that happen without waiting.
"""

from __future__ import annotations

import math
import os
import random
import re
import time
import zlib
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from sandbox.twilio import carrier
from sandbox.twilio.config import ACCOUNT_SID_RE, EmulatorConfig
from sandbox.twilio.errors import (
    delivery_status_for,
    error_body,
    http_status_for,
    is_delivery_code,
)
from sandbox.twilio.numbers import AREA_CODES, is_valid_area_code, offer_numbers
from sandbox.twilio.store import (
    DEFAULT_VALIDITY_S,
    ServiceNumber,
    Store,
    StoredMessage,
    StoredNumber,
    position_before,
)
from sandbox.twilio.wire import (
    API_PREFIX,
    DateFilter,
    created_view,
    envelope,
    friendly_name,
    iso8601,
    message_view,
    parse_date_filter,
    render_incoming_number,
    render_message,
)

#: Used for inbound messages when nothing else says which account a number belongs to.
DEFAULT_ACCOUNT_SID = "AC" + "0" * 32
MAX_BODY = 1600
MAX_PAGE_SIZE = 1000
E164_RE = re.compile(r"^\+[1-9]\d{6,14}$")
ALPHA_SENDER_RE = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}$")
SERVICE_SID_RE = re.compile(r"^MG[0-9a-fA-F]{32}$")
MAX_VALIDITY_S = DEFAULT_VALIDITY_S
#: Twilio's delivery error for a message that outstayed its ValidityPeriod in the queue.
EXPIRED_CODE = 30036
#: Twilio's answer to a ValidityPeriod that is not a whole number in 1..36000.
INVALID_VALIDITY_CODE = 21624
_SECONDS_RE = re.compile(r"[0-9]{1,9}")

#: Twilio's documented test numbers (https://www.twilio.com/docs/iam/test-credentials).
MAGIC_TO = {
    "+15005550001": 21211,
    "+15005550002": 21612,
    "+15005550003": 21408,
    "+15005550004": 21610,
    "+15005550009": 21614,
}
MAGIC_FROM = {"+15005550001": 21212, "+15005550007": 21606, "+15005550008": 21611}


@dataclass(slots=True)
class ApiResult:
    """What to answer: HTTP status and JSON body; ``drop`` closes the connection instead."""

    status: int
    body: dict[str, Any]
    drop: bool = False


def api_error(code: int, **fmt: Any) -> ApiResult:
    """An error answer in Twilio's shape."""
    return ApiResult(http_status_for(code), error_body(code, **fmt))


@dataclass(slots=True)
class Counters:
    """What happened since start-up (or the last reset): tests prove exactly-once with it."""

    create_requests: int = 0
    messages_created: int = 0
    per_to: Counter[str] = field(default_factory=Counter)
    rejected: Counter[int] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    inbound: int = 0
    auto_replies: int = 0
    #: Accepted messages that outstay their ValidityPeriod: they will fail with 30036.
    expired: int = 0

    def as_json(self) -> dict[str, Any]:
        """The counters as ``GET /sandbox/counters`` returns them."""
        return {
            "create_requests": self.create_requests,
            "messages_created": self.messages_created,
            "per_to": dict(self.per_to),
            "max_per_to": max(self.per_to.values(), default=0),
            "rejected": {str(code): n for code, n in self.rejected.items()},
            "faults": dict(self.faults),
            "inbound": self.inbound,
            "auto_replies": self.auto_replies,
            "expired": self.expired,
        }


def _new_sid(prefix: str) -> str:
    return prefix + os.urandom(16).hex()


class Engine:
    """Twilio's behaviour for the operations nudge uses, over one :class:`Store`."""

    def __init__(
        self,
        config: EmulatorConfig,
        state_path: Path | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.initial_config = config.model_copy(deep=True)
        self.config = config.model_copy(deep=True)
        self.store = Store(state_path)
        self.clock = clock
        self.counters = Counters()
        self.rng = random.Random(config.seed)
        self.last_account_sid: str | None = None
        self._next_slot: dict[str, float] = {}
        self._skew = 0.0  # seconds added to the clock by advance()

    def now(self) -> float:
        """The emulator's time: the clock, moved forward by :meth:`advance`."""
        return self.clock() + self._skew

    def advance(self, seconds: float) -> float:
        """Move the emulator's time forward (never back: statuses only move forward)."""
        if not (math.isfinite(seconds) and seconds >= 0):
            raise ValueError("seconds must be a finite number >= 0")
        self._skew += seconds
        return self.now()

    # --- control --------------------------------------------------------------------

    def update_config(self, changes: Mapping[str, Any]) -> EmulatorConfig:
        """Apply a partial update of the knobs (validated as a whole; raises ValueError)."""
        merged = {**self.config.model_dump(), **changes}
        new = EmulatorConfig.model_validate(merged)
        if "seed" in changes:
            self.rng = random.Random(new.seed)
        self.config = new
        return new

    def reset(self, *, knobs: bool = True) -> None:
        """Forget all state, counters and clock advances; with ``knobs``, also restore the
        start-up knobs."""
        self.store.reset()
        self.counters = Counters()
        self._next_slot.clear()
        self._skew = 0.0
        self.last_account_sid = None
        if knobs:
            self.config = self.initial_config.model_copy(deep=True)
        self.rng = random.Random(self.config.seed)

    def close(self) -> None:
        """Release the state file."""
        self.store.close()

    def roll(self, share: float) -> bool:
        """Draw from the seeded generator: True with probability ``share``."""
        return share > 0 and self.rng.random() < share

    def fault(self, *, is_create: bool) -> ApiResult | None:
        """A 429 or 5xx answer to inject for this call, if the knobs say so."""
        cfg = self.config
        if not is_create and cfg.fault_scope != "all":
            return None
        if self.roll(cfg.share_429):
            self.counters.faults["429"] += 1
            return api_error(20429)
        if self.roll(cfg.share_5xx):
            self.counters.faults["5xx"] += 1
            return api_error(20503 if self.rng.random() < 0.5 else 20500)
        return None

    # --- auth -----------------------------------------------------------------------

    def check_credentials(self, username: str, password: str) -> bool:
        """Any well-formed SID and non-empty token, unless the emulator pins them."""
        cfg = self.config
        if cfg.account_sid is not None and username != cfg.account_sid:
            return False
        if cfg.auth_token is not None and password != cfg.auth_token:
            return False
        return bool(ACCOUNT_SID_RE.match(username)) and bool(password)

    # --- messages -------------------------------------------------------------------

    def create_message(self, account_sid: str, form: Mapping[str, str]) -> ApiResult:
        """POST Messages.json: validate as Twilio does, then accept and queue the message."""
        self.counters.create_requests += 1
        fault = self.fault(is_create=True)
        if fault is not None:
            return fault
        result = self._accept(account_sid, form)
        if result.status >= 400:
            self.counters.rejected[int(result.body["code"])] += 1
        elif self.roll(self.config.share_drop_after_accept):
            self.counters.faults["drop"] += 1
            result.drop = True
        return result

    def _accept(self, account_sid: str, form: Mapping[str, str]) -> ApiResult:
        cfg = self.config
        to = form.get("To", "").strip()
        from_ = form.get("From", "").strip() or None
        service_sid = form.get("MessagingServiceSid", "").strip() or None
        body = form.get("Body", "")
        if not to:
            return api_error(21604)
        if from_ is None and service_sid is None:
            return api_error(21603)
        if not body:
            return api_error(21602)
        if len(body) > MAX_BODY:
            return api_error(21617)
        validity = _validity(form.get("ValidityPeriod", ""))
        if validity is None:
            return api_error(INVALID_VALIDITY_CODE, detail=form["ValidityPeriod"][:20])
        if not E164_RE.match(to):
            return api_error(21211, to=to)
        if service_sid is not None and not SERVICE_SID_RE.match(service_sid):
            return api_error(20404, path=f"/v1/Services/{service_sid}")
        if from_ is not None:
            if from_ in MAGIC_FROM:
                return api_error(MAGIC_FROM[from_], from_=from_, to=to)
            if not (E164_RE.match(from_) or ALPHA_SENDER_RE.match(from_)):
                return api_error(21212, from_=from_)
            if cfg.strict_numbers and not self._owns(account_sid, from_):
                return api_error(21606, from_=from_)
        pool = self.store.pool(service_sid) if service_sid else []
        if from_ is None:
            if not pool:
                return api_error(21704)
            # Sticky sender: the same recipient always hears from the same pool number.
            from_ = pool[zlib.crc32(to.encode()) % len(pool)].phone_number
        if from_ == to:
            return api_error(21266, to=to)
        code = MAGIC_TO.get(to) or cfg.recipient_errors.get(to)
        if code is not None and not is_delivery_code(code):
            return api_error(code, to=to, from_=from_)
        senders = [from_, *(n.phone_number for n in pool)]
        if self.store.is_opted_out(account_sid, to, senders):
            return api_error(21610, to=to)
        return self._queue(account_sid, to, from_, body, service_sid, code, validity)

    def _queue(
        self,
        account_sid: str,
        to: str,
        from_: str,
        body: str,
        service_sid: str | None,
        code: int | None,
        validity: int,
    ) -> ApiResult:
        cfg = self.config
        now = self.now()
        segments = carrier.count_segments(body)
        delay = cfg.status_delay_ms / 1000
        # Its pacing slot: when the account's pace lets it go (now, without mps).
        slot = now if cfg.mps is None else max(now, self._next_slot.get(account_sid, now))
        if slot - now > cfg.max_queue_s:
            if service_sid is None:
                return api_error(21611, from_=from_)
            code, turn = 30001, now
        elif slot + cfg.queue_delay_s - now > validity:
            # Dropped when its validity runs out, before its turn: it takes no pacing slot.
            code, turn, delay = EXPIRED_CODE, now + validity, 0.0
            self.counters.expired += 1
        else:
            turn = slot + cfg.queue_delay_s
            if cfg.mps is not None:
                self._next_slot[account_sid] = slot + segments / cfg.mps
            if code is None and self.roll(cfg.share_undelivered):
                code = cfg.undelivered_code
        outcome = "delivered" if code is None else delivery_status_for(code)
        message = StoredMessage(
            seq=self.store.next_seq(),
            sid=_new_sid("SM"),
            account_sid=account_sid,
            direction="outbound-api",
            to=to,
            from_=from_,
            body=body,
            messaging_service_sid=service_sid,
            num_segments=segments,
            created_at=now,
            sent_at=turn + delay,
            done_at=turn + 2 * delay,
            outcome=outcome,
            error_code=code,
            validity_s=validity,
        )
        self.store.add_message(message)
        self.counters.messages_created += 1
        self.counters.per_to[to] += 1
        return ApiResult(201, render_message(message, created_view(message)))

    def _owns(self, account_sid: str, phone_number: str) -> bool:
        number = self.store.number_by_phone.get(phone_number)
        return number is not None and number.account_sid == account_sid

    def message_record(self, sid: str) -> dict[str, Any] | None:
        """What the emulator knows of a message beyond Twilio's resource (sandbox route).

        Times are epoch seconds on the emulator's clock: ``leaves_queue_at`` is when it
        stops being ``queued`` (sent, or failed), ``final_at`` when its status is final, and
        ``expires_at`` is creation + ``validity_period_s``. ``expired`` says it outstayed
        its validity period (it fails with 30036 at ``expires_at``).
        """
        message = self.store.by_sid.get(sid)
        if message is None:
            return None
        view = message_view(message, self.now())
        return {
            "sid": message.sid,
            "direction": message.direction,
            "status": view.status,
            "validity_period_s": message.validity_s,
            "created_at": message.created_at,
            "expires_at": message.created_at + message.validity_s,
            "leaves_queue_at": message.sent_at,
            "final_at": message.done_at,
            "outcome": message.outcome,
            "error_code": message.error_code,
            "expired": message.error_code == EXPIRED_CODE,
        }

    def fetch_message(self, account_sid: str, sid: str) -> ApiResult:
        """GET Messages/{Sid}.json."""
        message = self.store.by_sid.get(sid)
        if message is None or message.account_sid != account_sid:
            return api_error(20404, path=f"{API_PREFIX}/{account_sid}/Messages/{sid}.json")
        view = message_view(message, self.now())
        return ApiResult(200, render_message(message, view))

    def list_messages(self, account_sid: str, query: Mapping[str, str]) -> ApiResult:
        """GET Messages.json: To/From/DateSent filters, newest first, token paging."""
        try:
            page_size, page = _paging(query)
            exact = _date(query, "DateSent")
            after = _date(query, "DateSent>")
            before = _date(query, "DateSent<")
        except ValueError as exc:
            return api_error(20001, detail=str(exc))
        to, from_ = query.get("To"), query.get("From")
        filters = [
            (k, query[k])
            for k in ("To", "From", "DateSent", "DateSent<", "DateSent>")
            if k in query
        ]
        candidates = (
            self.store.by_to.get(to, [])
            if to
            else self.store.by_from.get(from_, [])
            if from_
            else self.store.messages
        )
        now = self.now()
        horizon = self.store.max_lag + 1

        def matches(m: StoredMessage) -> bool:
            if m.account_sid != account_sid:
                return False
            if (to and m.to != to) or (from_ and m.from_ != from_):
                return False
            if exact is None and after is None and before is None:
                return True
            sent = message_view(m, now).date_sent
            if sent is None:
                return False
            second = int(sent)
            if exact is not None and not (exact.start <= second < exact.start + 86400):
                return False
            if after is not None and second < after.start:
                return False
            return before is None or second < before.day_end

        def too_old(m: StoredMessage) -> bool:
            # Older messages (by creation) cannot have been sent after the lower bound.
            lower = after or exact
            return lower is not None and m.created_at + horizon < lower.start

        token = query.get("PageToken")
        try:
            items, next_sid, prev_sid = _walk(
                candidates, matches, too_old, page_size, page, token, self.store
            )
        except ValueError as exc:
            return api_error(20001, detail=str(exc))
        records = [render_message(m, message_view(m, now)) for m in items]
        body = envelope(
            "messages",
            records,
            path=f"{API_PREFIX}/{account_sid}/Messages.json",
            filters=filters,
            page_size=page_size,
            page=page,
            token=token,
            next_token=f"PA{next_sid}" if next_sid else None,
            previous_token=f"PB{prev_sid}" if prev_sid else None,
        )
        return ApiResult(200, body)

    # --- inbound and carrier keywords -----------------------------------------------

    def inject_inbound(
        self, from_: str, to: str, body: str, account_sid: str | None = None
    ) -> ApiResult:
        """A phone texts one of our numbers; STOP/START/HELP get Twilio's auto-replies."""
        if not E164_RE.match(from_):
            return api_error(21212, from_=from_)
        if not E164_RE.match(to):
            return api_error(21211, to=to)
        owner = self.store.number_by_phone.get(to)
        if owner is None and self.config.strict_numbers:
            return api_error(21606, from_=to)
        sent_from_here = self.store.by_from.get(to)
        account = (
            (owner.account_sid if owner else None)
            or account_sid
            # An account that sends from a number it never bought (lenient mode) owns it.
            or (sent_from_here[-1].account_sid if sent_from_here else None)
            or self.config.account_sid
            or self.last_account_sid
            or DEFAULT_ACCOUNT_SID
        )
        service_sid = self.store.service_of_number.get(owner.sid) if owner else None
        now = self.now()
        inbound = self._store_message(
            account, "inbound", to=to, from_=from_, body=body, service_sid=service_sid, now=now
        )
        self.counters.inbound += 1
        keyword = carrier.match_keyword(body)
        reply_text: str | None = None
        if keyword == "stop":
            self.store.set_opt_out(account, from_, to, out=True)
            reply_text = carrier.STOP_REPLY
        elif keyword == "start":
            self.store.set_opt_out(account, from_, to, out=False)
            reply_text = carrier.START_REPLY
        elif keyword == "help":
            reply_text = self.config.help_text
        reply: dict[str, Any] | None = None
        if reply_text is not None:
            auto = self._store_message(
                account,
                "outbound-reply",
                to=from_,
                from_=to,
                body=reply_text,
                service_sid=service_sid,
                now=now,
            )
            self.counters.auto_replies += 1
            reply = render_message(auto, message_view(auto, now))
        message = render_message(inbound, message_view(inbound, now))
        return ApiResult(201, {"message": message, "auto_reply": reply, "keyword": keyword})

    def _store_message(
        self,
        account_sid: str,
        direction: str,
        *,
        to: str,
        from_: str,
        body: str,
        service_sid: str | None,
        now: float,
    ) -> StoredMessage:
        message = StoredMessage(
            seq=self.store.next_seq(),
            sid=_new_sid("SM"),
            account_sid=account_sid,
            direction=direction,
            to=to,
            from_=from_,
            body=body,
            messaging_service_sid=service_sid,
            num_segments=carrier.count_segments(body),
            created_at=now,
            sent_at=now,
            done_at=now,
            outcome="received" if direction == "inbound" else "delivered",
            error_code=None,
        )
        self.store.add_message(message)
        return message

    # --- phone numbers --------------------------------------------------------------

    def available_local(
        self, account_sid: str, country: str, query: Mapping[str, str]
    ) -> ApiResult:
        """GET AvailablePhoneNumbers/{Country}/Local.json (AreaCode, SmsEnabled, PageSize)."""
        path = f"{API_PREFIX}/{account_sid}/AvailablePhoneNumbers/{country}/Local.json"
        if country not in AREA_CODES:
            return api_error(20404, path=path)
        area_code = query.get("AreaCode") or None
        try:
            page_size, _ = _paging(query)
        except ValueError as exc:
            return api_error(20001, detail=str(exc))
        if area_code is not None and not is_valid_area_code(area_code):
            return api_error(20001, detail=f"AreaCode {area_code!r}")
        offered: list[dict[str, Any]] = []
        sms_wanted = query.get("SmsEnabled", "true").lower() != "false"
        if sms_wanted and area_code not in self.config.exhausted_area_codes:
            offered = offer_numbers(
                country=country,
                area_code=area_code,
                count=page_size,
                taken=set(self.store.number_by_phone),
                seed=self.config.seed,
            )
        uri = f"{path}?{urlencode(list(query.items()))}" if query else path
        return ApiResult(200, {"available_phone_numbers": offered, "uri": uri})

    def buy_number(self, account_sid: str, form: Mapping[str, str]) -> ApiResult:
        """POST IncomingPhoneNumbers.json with PhoneNumber or AreaCode."""
        phone_number = form.get("PhoneNumber", "").strip()
        area_code = form.get("AreaCode", "").strip()
        if not phone_number and not area_code:
            return api_error(20001, detail="PhoneNumber or AreaCode is required")
        if not phone_number:
            if not is_valid_area_code(area_code):
                return api_error(20001, detail=f"AreaCode {area_code!r}")
            offered = (
                []
                if area_code in self.config.exhausted_area_codes
                else offer_numbers(
                    country="US",
                    area_code=area_code,
                    count=1,
                    taken=set(self.store.number_by_phone),
                    seed=self.config.seed,
                )
            )
            if not offered:
                return api_error(21452, detail=area_code)
            phone_number = str(offered[0]["phone_number"])
        if not E164_RE.match(phone_number) or phone_number in self.store.number_by_phone:
            return api_error(21422)
        if phone_number.startswith("+1") and phone_number[2:5] in self.config.exhausted_area_codes:
            return api_error(21422)
        number = StoredNumber(
            seq=self.store.next_seq(),
            sid=_new_sid("PN"),
            account_sid=account_sid,
            phone_number=phone_number,
            friendly_name=form.get("FriendlyName") or friendly_name(phone_number),
            created_at=self.now(),
        )
        self.store.add_number(number)
        return ApiResult(201, render_incoming_number(number))

    def list_numbers(self, account_sid: str, query: Mapping[str, str]) -> ApiResult:
        """GET IncomingPhoneNumbers.json (PhoneNumber, FriendlyName filters), oldest first."""
        try:
            page_size, page = _paging(query)
        except ValueError as exc:
            return api_error(20001, detail=str(exc))
        wanted_number = "".join(ch for ch in query.get("PhoneNumber", "") if ch.isdigit())
        wanted_name = query.get("FriendlyName")
        matching = [
            n
            for n in self.store.numbers
            if n.account_sid == account_sid
            and (not wanted_number or wanted_number in n.phone_number)
            and (wanted_name is None or n.friendly_name == wanted_name)
        ]
        token = query.get("PageToken")
        start = page * page_size
        if token:
            sids = [n.sid for n in matching]
            if not token.startswith("PA") or token[2:] not in sids:
                return api_error(20001, detail="PageToken")
            start = sids.index(token[2:]) + 1
        chunk = matching[start : start + page_size]
        has_more = start + page_size < len(matching)
        filters = [(k, query[k]) for k in ("PhoneNumber", "FriendlyName") if k in query]
        body = envelope(
            "incoming_phone_numbers",
            [render_incoming_number(n) for n in chunk],
            path=f"{API_PREFIX}/{account_sid}/IncomingPhoneNumbers.json",
            filters=filters,
            page_size=page_size,
            page=page,
            token=token,
            next_token=f"PA{chunk[-1].sid}" if has_more and chunk else None,
            previous_token=None,
        )
        return ApiResult(200, body)

    def add_to_service(self, account_sid: str, service_sid: str, number_sid: str) -> ApiResult:
        """POST messaging v1 Services/{Sid}/PhoneNumbers: put a bought number in the pool."""
        if not SERVICE_SID_RE.match(service_sid):
            return api_error(20404, path=f"/v1/Services/{service_sid}")
        number = self.store.number_by_sid.get(number_sid)
        if number is None or number.account_sid != account_sid:
            return api_error(20404, path=f"/v1/PhoneNumbers/{number_sid}")
        if number_sid in self.store.service_of_number:
            return api_error(21710)
        entry = ServiceNumber(service_sid, number_sid, account_sid, self.now())
        self.store.add_service_number(entry)
        return ApiResult(201, _render_service_number(entry, number))

    def list_service_numbers(self, account_sid: str, service_sid: str) -> ApiResult:
        """GET messaging v1 Services/{Sid}/PhoneNumbers (one page: pools are small)."""
        url = f"https://messaging.twilio.com/v1/Services/{service_sid}/PhoneNumbers"
        records = [
            _render_service_number(entry, self.store.number_by_sid[entry.number_sid])
            for entry in self.store.pools.get(service_sid, [])
            if entry.account_sid == account_sid
        ]
        size = max(50, len(records))
        meta = {
            "first_page_url": f"{url}?PageSize={size}&Page=0",
            "key": "phone_numbers",
            "next_page_url": None,
            "page": 0,
            "page_size": size,
            "previous_page_url": None,
            "url": f"{url}?PageSize={size}&Page=0",
        }
        return ApiResult(200, {"meta": meta, "phone_numbers": records})


def _render_service_number(entry: ServiceNumber, number: StoredNumber) -> dict[str, Any]:
    return {
        "account_sid": entry.account_sid,
        "capabilities": ["SMS", "MMS", "Voice"],
        "country_code": "US",
        "date_created": iso8601(entry.created_at),
        "date_updated": iso8601(entry.created_at),
        "phone_number": number.phone_number,
        "service_sid": entry.service_sid,
        "sid": number.sid,
        "url": f"https://messaging.twilio.com/v1/Services/{entry.service_sid}/PhoneNumbers/"
        f"{number.sid}",
    }


def _validity(raw: str) -> int | None:
    """A create's ValidityPeriod: whole seconds in 1..36000, Twilio's default when absent;
    None when Twilio would refuse it."""
    text = raw.strip()
    if not text:
        return DEFAULT_VALIDITY_S
    if not _SECONDS_RE.fullmatch(text):  # an integer: no sign, point or exponent
        return None
    value = int(text)
    return value if 1 <= value <= MAX_VALIDITY_S else None


def _paging(query: Mapping[str, str]) -> tuple[int, int]:
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


def _date(query: Mapping[str, str], key: str) -> DateFilter | None:
    raw = query.get(key)
    return None if raw is None else parse_date_filter(raw)


def _walk(
    candidates: list[StoredMessage],
    matches: Callable[[StoredMessage], bool],
    too_old: Callable[[StoredMessage], bool],
    page_size: int,
    page: int,
    token: str | None,
    store: Store,
) -> tuple[list[StoredMessage], str | None, str | None]:
    """One page, newest first: (messages, sid to continue after, sid to go back from).

    ``PA<sid>`` continues with messages older than ``sid``; ``PB<sid>`` goes back to the
    page of messages just newer than it. Without a token, ``Page`` is an offset.
    """
    if token:
        anchor = store.by_sid.get(token[2:])
        if anchor is None or token[:2] not in ("PA", "PB"):
            raise ValueError("PageToken")
        pos = position_before(candidates, anchor.seq)
        if token[:2] == "PB":
            newer: list[StoredMessage] = []
            start = pos + 1 if pos < len(candidates) and candidates[pos] is anchor else pos
            for m in candidates[start:]:
                if matches(m):
                    newer.append(m)
                    if len(newer) > page_size:
                        break
            items = list(reversed(newer[:page_size]))
            prev_sid = items[0].sid if len(newer) > page_size and items else None
            return items, (items[-1].sid if items else None), prev_sid
        index = pos - 1
        skip = 0
    else:
        index = len(candidates) - 1
        skip = page * page_size
    found: list[StoredMessage] = []
    while index >= 0:
        m = candidates[index]
        index -= 1
        if too_old(m):
            break
        if not matches(m):
            continue
        if skip:
            skip -= 1
            continue
        found.append(m)
        if len(found) > page_size:
            break
    items = found[:page_size]
    next_sid = items[-1].sid if len(found) > page_size else None
    prev_sid = items[0].sid if (token or page > 0) and items else None
    return items, next_sid, prev_sid
