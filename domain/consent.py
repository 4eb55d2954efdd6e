"""Consent rules: which stored consent applies to one sender texting one number, and which
consent row an opt-out lands on.

The stored rows are keyed by the recipient's number and a *scope*: ``INSTITUTION`` (``""``)
for an institution-wide state, or a sender number when the SMS admin chose per-sender
opt-outs. Everything that reads or writes consent asks this module which scope applies, so
the router, the send path, the reply poller and the delivery-status refresh cannot drift.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from domain.config import OptOutScope
from domain.keywords import Keyword
from domain.routing import ConsentSource, ConsentState

#: The scope of an institution-wide consent row.
INSTITUTION = ""


@dataclass(frozen=True, slots=True)
class StoredConsent:
    """A stored consent row: status and source strings as the database keeps them."""

    status: str
    source: str


def opt_out_scope(scope: OptOutScope | str, sender_e164: str | None) -> str:
    """The consent scope a STOP (or a carrier opt-out) for ``sender_e164`` is recorded in:
    that sender number when opt-outs are per sender, else the institution."""
    if scope == OptOutScope.sender and sender_e164:
        return sender_e164
    return INSTITUTION


_CONSENT_STATES = {s.value: s for s in ConsentState}
_CONSENT_SOURCES = {s.value: s for s in ConsentSource}


def effective_consent(
    institution: StoredConsent | None,
    sender: StoredConsent | None,
    scope: OptOutScope,
) -> tuple[ConsentState, ConsentSource | None]:
    """Resolve the consent that applies to one sender texting one number.

    An institution-wide opt-out or review pause always wins. With per-sender scope, a row
    for this sender comes next; otherwise the institution row decides.
    """
    chosen = institution
    blocked = institution is not None and institution.status in {
        ConsentState.OPTED_OUT,
        ConsentState.PAUSED_FOR_REVIEW,
    }
    if not blocked and sender is not None and scope == OptOutScope.sender:
        chosen = sender
    if chosen is None:
        return ConsentState.UNKNOWN, None
    return (
        _CONSENT_STATES.get(chosen.status, ConsentState.UNKNOWN),
        _CONSENT_SOURCES.get(chosen.source),
    )


@dataclass(frozen=True, slots=True)
class ConsentChange:
    """One consent row to write (with its audit event) because of what a student texted."""

    status: ConsentState
    source: ConsentSource
    scope: str
    reason: str


def keyword_consent_changes(
    keyword: Keyword,
    phrase: str | None,
    *,
    said: str,
    scope: str,
    institution_status: str | None,
) -> list[ConsentChange]:
    """What a reply does to consent, in order: the keyword rules in one place.

    * STOP opts the number out in ``scope`` (see :func:`opt_out_scope`);
    * START opts it back in there, and also lifts an institution-wide review pause (the
      student's own START supersedes it);
    * any other reply flagged as revocation-like (``phrase``) pauses the number
      institution-wide for review, unless it is already opted out there: "wrong number" is
      about the number, not one sender;
    * everything else changes nothing.

    ``said`` is the start of what the student texted (for the audit trail);
    ``institution_status`` the stored institution-wide state (``None``: no row).
    """
    quoted = f"replied {said!r}"
    if keyword is Keyword.STOP:
        return [ConsentChange(ConsentState.OPTED_OUT, ConsentSource.STOP, scope, quoted)]
    if keyword is Keyword.START:
        changes = [ConsentChange(ConsentState.OPTED_IN, ConsentSource.START, scope, quoted)]
        if scope != INSTITUTION and institution_status == ConsentState.PAUSED_FOR_REVIEW:
            changes.append(
                ConsentChange(
                    ConsentState.OPTED_IN,
                    ConsentSource.START,
                    INSTITUTION,
                    f"{quoted} after a review pause",
                )
            )
        return changes
    if phrase is not None and institution_status != ConsentState.OPTED_OUT:
        return [
            ConsentChange(
                ConsentState.PAUSED_FOR_REVIEW,
                ConsentSource.REPLY_REVIEW,
                INSTITUTION,
                f"reply flagged for review: {phrase!r}",
            )
        ]
    return []


#: Consent sources that are a decision about the number (by the student, the carrier, an
#: admin or a review). ``auto`` is not: it only records that a text went out under auto
#: opt-in, so a STOP the student sent before it still applies when it is listed late.
DECISION_SOURCES = frozenset(
    {
        ConsentSource.STOP,
        ConsentSource.START,
        ConsentSource.ADMIN,
        ConsentSource.CARRIER_21610,
        ConsentSource.REPLY_REVIEW,
    }
)


def out_of_order(said_at: datetime, last_decision_at: datetime | None) -> bool:
    """Whether a keyword the student sent at ``said_at`` is older than the last decision
    about their number (``last_decision_at``: when the student sent the keyword behind it,
    or when an admin, the carrier or a review decided): then it is recorded in the audit
    trail but changes nothing, so consent follows the order in which things were said, not
    the order in which Twilio happened to list them. Twilio's ``DateSent`` has whole
    seconds, so the comparison is by whole seconds, and a tie applies."""
    if last_decision_at is None:
        return False
    return said_at.replace(microsecond=0) < last_decision_at.replace(microsecond=0)


def late_keyword_reason(keyword: Keyword, said_at: datetime, last_decision_at: datetime) -> str:
    """The audit trail's words for a keyword that arrived after a later decision."""
    return (
        f"{keyword.value.upper()} sent {said_at:%Y-%m-%d %H:%M:%S} UTC was listed late; not "
        f"applied: consent was decided after it ({last_decision_at:%Y-%m-%d %H:%M:%S} UTC)"
    )
