"""The outbox's state machine, as data: every outbound message on every channel moves by it.

Every side effect that leaves nudge — a campaign SMS or email, the opt-in notice, an email
fallback, a staff reply, nudge's own keyword or crisis-line answer, a reply notification to
staff, an alert email — is one row of the outbox (``models/outbox.py``) and moves through
these states::

    planned ──────────────┬──> sending ──> sent ──> delivered
      │  ▲   deferred ────┤      │  │  │            undelivered
      │  └──────┘         │      │  │  └──────────> failed
      │                   │      │  └─> unknown        (email only: SMTP cannot be asked)
      │                   │      └────> planned        (not sent: retry, or back to the queue)
      ├──> fallback_email (an SMS turned email, once sent)
      ├──> refused   (a send-time check failed: sender no longer permitted, ...)
      ├──> skipped   (not needed: cancelled, already introduced, no address)
      ├──> failed    (this message can never go: a poison address, retries spent)
      └──> held_out  (kept out of a campaign on purpose)

Rules that hold everywhere, because every UPDATE of a message's status is written as
"to T where status in :data:`SOURCES`\\[T]" (``models/outbox.py``):

* Transitions only move forward. ``sending → planned`` is the one step back, and it is taken
  only by the worker that marked the message (its claim token), or by reconciliation once no
  request for it can still be in flight: both know the provider never created it.
* A late or out-of-order provider status never moves a message back: ``delivered`` is
  final, and ``sent`` cannot follow ``delivered`` or ``failed``.
* ``unknown`` is where an email goes when a crash left it ``sending``: SMTP cannot be asked
  whether it got it, so it is never resent automatically; an admin may resend it
  (``unknown → planned``) after checking the mail server's log for its Message-ID.

The in-flight bound (:func:`in_flight_bound`) is the fencing rule that makes takeovers safe:
a worker hands a message to the provider within ``deadline`` of marking it ``sending`` or
not at all, so once ``deadline + call timeout + margin`` has passed, whoever reconciles it
knows no request for it can still be on its way.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import timedelta
from enum import StrEnum
from typing import Final


class Status(StrEnum):
    """Where one outbound message is."""

    PLANNED = "planned"
    DEFERRED = "deferred"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    FAILED = "failed"
    FALLBACK_EMAIL = "fallback_email"
    REFUSED = "refused"
    SKIPPED = "skipped"
    HELD_OUT = "held_out"
    UNKNOWN = "unknown"


class Kind(StrEnum):
    """What an outbound message is for."""

    CAMPAIGN = "campaign"
    OPT_IN_NOTICE = "opt_in_notice"
    REPLY = "reply"
    KEYWORD_REPLY = "keyword_reply"
    URGENT_REPLY = "urgent_reply"  # nudge's automatic crisis-line answer (domain/urgent.py)
    NOTIFICATION = "notification"
    ALERT = "alert"


class OutChannel(StrEnum):
    """How an outbound message goes (``none``: it cannot go at all)."""

    SMS = "sms"
    EMAIL = "email"
    NONE = "none"


S = Status

#: The allowed moves: from each state, the states it may go to next.
NEXT: Final[Mapping[Status, frozenset[Status]]] = {
    S.PLANNED: frozenset(
        {
            S.PLANNED,  # re-planned on another channel (an SMS that falls back to email)
            S.DEFERRED,
            S.SENDING,
            S.FALLBACK_EMAIL,
            S.REFUSED,
            S.SKIPPED,
            S.FAILED,
            S.HELD_OUT,
        }
    ),
    S.DEFERRED: frozenset({S.PLANNED, S.SENDING, S.REFUSED, S.SKIPPED, S.FAILED}),
    S.SENDING: frozenset(
        {S.PLANNED, S.SENT, S.FALLBACK_EMAIL, S.FAILED, S.UNDELIVERED, S.DELIVERED, S.UNKNOWN}
    ),
    S.SENT: frozenset({S.DELIVERED, S.UNDELIVERED, S.FAILED}),
    S.UNKNOWN: frozenset({S.PLANNED, S.SENT, S.FALLBACK_EMAIL, S.FAILED, S.SKIPPED}),
    S.DELIVERED: frozenset(),
    S.UNDELIVERED: frozenset(),
    S.FAILED: frozenset(),
    S.FALLBACK_EMAIL: frozenset(),
    S.REFUSED: frozenset(),
    S.SKIPPED: frozenset(),
    S.HELD_OUT: frozenset(),
}


def _sources(table: Mapping[Status, frozenset[Status]]) -> dict[Status, frozenset[Status]]:
    found: dict[Status, set[Status]] = {s: set() for s in Status}
    for origin, targets in table.items():
        for target in targets:
            found[target].add(origin)
    return {s: frozenset(v) for s, v in found.items()}


#: For each state, the states a message may come from (what every UPDATE filters on).
SOURCES: Final[Mapping[Status, frozenset[Status]]] = _sources(NEXT)

#: States with work still to do: the message has not gone and has not been given up on.
OPEN: Final[frozenset[Status]] = frozenset({S.PLANNED, S.DEFERRED, S.SENDING})
#: States in which an SMS reached (or may have reached) the provider.
REACHED_PROVIDER: Final[frozenset[Status]] = frozenset(
    {S.SENDING, S.SENT, S.DELIVERED, S.UNDELIVERED, S.FAILED}
)
#: States that count as "handed over" to the provider or mail server.
HANDED_OVER: Final[frozenset[Status]] = frozenset(
    {S.SENT, S.DELIVERED, S.UNDELIVERED, S.FALLBACK_EMAIL}
)
#: Final states: nothing will ever move the message again.
FINAL: Final[frozenset[Status]] = frozenset(s for s, nxt in NEXT.items() if not nxt)


def can_move(origin: Status | str, target: Status | str) -> bool:
    """Whether a message in ``origin`` may move to ``target``."""
    return Status(target) in NEXT[Status(origin)]


def sources_of(target: Status | str) -> list[str]:
    """The states a message may move to ``target`` from, as plain strings (for SQL)."""
    return sorted(s.value for s in SOURCES[Status(target)])


def values(states: Iterable[Status]) -> list[str]:
    """Plain strings of ``states`` (for SQL ``IN`` lists)."""
    return sorted(s.value for s in states)


#: How long past its deadline a call may still be answered or processed by the provider.
IN_FLIGHT_MARGIN: Final = timedelta(seconds=5)


def in_flight_bound(*, deadline_s: float, call_timeout_s: float) -> timedelta:
    """How long after a message was marked ``sending`` a request for it may still be in
    flight: the worker starts its last attempt before ``deadline_s`` and that attempt ends
    within ``call_timeout_s``; the margin covers the provider's own processing."""
    return timedelta(seconds=deadline_s + call_timeout_s) + IN_FLIGHT_MARGIN


class CampaignStatus(StrEnum):
    """Where a campaign is."""

    SCHEDULED = "scheduled"
    SENDING = "sending"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    STOPPED = "stopped"
    REFUSED = "refused"


#: Campaign states ``nudge campaigns resume`` can finish.
RESUMABLE: Final[frozenset[CampaignStatus]] = frozenset(
    {CampaignStatus.SENDING, CampaignStatus.STOPPED}
)


__all__ = [
    "FINAL",
    "HANDED_OVER",
    "IN_FLIGHT_MARGIN",
    "NEXT",
    "OPEN",
    "REACHED_PROVIDER",
    "RESUMABLE",
    "SOURCES",
    "CampaignStatus",
    "Kind",
    "OutChannel",
    "Status",
    "can_move",
    "in_flight_bound",
    "sources_of",
    "values",
]
