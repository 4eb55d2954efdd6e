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

The operations live in rooms of their own: the message list (order, date filters, paging,
listing lag) in ``listing.py``, inbound texts (the ``receiving`` phase, late replies) in
``inbound.py``, phone numbers and sender pools in ``provisioning.py``; :class:`Engine`
keeps one method per operation, which ``app.py`` calls.
"""

from __future__ import annotations

import math
import random
import re
import time
import zlib
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sandbox.twilio import carrier, inbound, listing, provisioning
from sandbox.twilio.config import ACCOUNT_SID_RE, EmulatorConfig
from sandbox.twilio.errors import delivery_status_for, is_delivery_code
from sandbox.twilio.numbers import E164_RE
from sandbox.twilio.provisioning import SERVICE_SID_RE
from sandbox.twilio.store import DEFAULT_VALIDITY_S, Store, StoredMessage
from sandbox.twilio.wire import (
    API_PREFIX,
    ApiResult,
    api_error,
    created_view,
    message_view,
    new_sid,
    render_message,
)

__all__ = ["ApiResult", "Counters", "Engine", "api_error"]

MAX_BODY = 1600
ALPHA_SENDER_RE = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}$")
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
        self._order = listing.MessageOrder(self.store)
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
            sid=new_sid("SM"),
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
        stops being ``queued`` (sent, or failed) -- for an inbound message, when Twilio calls
        the incoming webhook (``receiving`` -> ``received``) --, ``final_at`` when its status
        is final, ``expires_at`` is creation + ``validity_period_s`` and ``listable_at`` when
        the Messages list starts to return it. ``expired`` says it outstayed its validity
        period (it fails with 30036 at ``expires_at``).
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
            "listable_at": (
                message.created_at if message.listable_at is None else message.listable_at
            ),
        }

    def fetch_message(self, account_sid: str, sid: str) -> ApiResult:
        """GET Messages/{Sid}.json."""
        message = self.store.by_sid.get(sid)
        if message is None or message.account_sid != account_sid:
            return api_error(20404, path=f"{API_PREFIX}/{account_sid}/Messages/{sid}.json")
        view = message_view(message, self.now())
        return ApiResult(200, render_message(message, view))

    def list_messages(self, account_sid: str, query: Mapping[str, str]) -> ApiResult:
        """GET Messages.json: To/From/DateSent filters, ``date_sent`` newest first, token
        paging, inbound listing lag (see :mod:`.listing`)."""
        return listing.list_messages(self.store, self._order, account_sid, query, self.now())

    # --- inbound and carrier keywords (inbound.py) ------------------------------------

    def inject_inbound(
        self,
        from_: str,
        to: str,
        body: str,
        account_sid: str | None = None,
        *,
        sent_ago: float = 0.0,
    ) -> ApiResult:
        """A phone texts one of our numbers ``sent_ago`` seconds ago; STOP/START/HELP get
        Twilio's auto-replies (see :mod:`.inbound` for its receiving phase and list lag)."""
        return inbound.inject_inbound(self, from_, to, body, account_sid, sent_ago=sent_ago)

    # --- phone numbers (provisioning.py) ------------------------------------------------

    def available_local(
        self, account_sid: str, country: str, query: Mapping[str, str]
    ) -> ApiResult:
        """GET AvailablePhoneNumbers/{Country}/Local.json (see :mod:`.provisioning`)."""
        return provisioning.available_local(self, account_sid, country, query)

    def buy_number(self, account_sid: str, form: Mapping[str, str]) -> ApiResult:
        """POST IncomingPhoneNumbers.json with PhoneNumber or AreaCode."""
        return provisioning.buy_number(self, account_sid, form)

    def list_numbers(self, account_sid: str, query: Mapping[str, str]) -> ApiResult:
        """GET IncomingPhoneNumbers.json (PhoneNumber, FriendlyName filters), oldest first."""
        return provisioning.list_numbers(self, account_sid, query)

    def add_to_service(self, account_sid: str, service_sid: str, number_sid: str) -> ApiResult:
        """POST messaging v1 Services/{Sid}/PhoneNumbers: put a bought number in the pool."""
        return provisioning.add_to_service(self, account_sid, service_sid, number_sid)

    def list_service_numbers(self, account_sid: str, service_sid: str) -> ApiResult:
        """GET messaging v1 Services/{Sid}/PhoneNumbers (one page: pools are small)."""
        return provisioning.list_service_numbers(self, account_sid, service_sid)


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
