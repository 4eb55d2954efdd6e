"""Consent rules: which stored consent applies to one sender texting one number, and which
consent row an opt-out lands on.

The stored rows are keyed by the recipient's number and a *scope*: ``INSTITUTION`` (``""``)
for an institution-wide state, or a sender number when the SMS admin chose per-sender
opt-outs. Everything that reads or writes consent asks this module which scope applies, so
the router, the send path, the reply poller and the delivery-status refresh cannot drift.
"""

from __future__ import annotations

from dataclasses import dataclass

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
