"""Consent to receive SMS, keyed by the recipient's number, with a full audit trail.

``sender_e164`` is ``""`` for an institution-wide state and a sender number when the opt-out
scope is per sender. Every change appends a ``ConsentEvent`` (who, why, when, from what),
so an admin can always answer "why did (or didn't) this student get a text?".

``nudge consent`` reads and changes it through the lookups at the end: what a
``NUMBER_OR_ID`` names, the current rows and the trail of some numbers, and the resolution
of a review pause.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Column, Index, UniqueConstraint, func
from sqlmodel import Field, Session, SQLModel, col, select

from domain.consent import DECISION_SOURCES, INSTITUTION, ConsentChange
from domain.names import display_name
from domain.routing import ConsentSource, ConsentState
from models.bulk import bulk_insert
from models.messaging import InboundMessage
from models.people import Person, people_by_number, person_by_sis_id, student_numbers
from models.types import UTCDateTime, utcnow


class Consent(SQLModel, table=True):
    """The current consent state of one number (in one scope)."""

    __tablename__ = "consent"
    __table_args__ = (UniqueConstraint("e164", "sender_e164", name="uq_consent_scope"),)

    id: int | None = Field(default=None, primary_key=True)
    e164: str = Field(max_length=20)
    sender_e164: str = Field(default=INSTITUTION, max_length=20)
    status: str = Field(
        max_length=20, description="ConsentState: opted_in|opted_out|paused_for_review"
    )
    source: str = Field(
        max_length=20,
        description="ConsentSource: auto|start|stop|admin|carrier_21610|reply_review",
    )
    updated_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )


class ConsentEvent(SQLModel, table=True):
    """One change of consent, kept forever (the audit trail)."""

    __tablename__ = "consent_event"
    __table_args__ = (Index("ix_consent_event_e164", "e164"),)

    id: int | None = Field(default=None, primary_key=True)
    e164: str = Field(max_length=20)
    sender_e164: str = Field(default=INSTITUTION, max_length=20)
    status: str = Field(max_length=20)
    source: str = Field(max_length=20)
    reason: str | None = Field(default=None, max_length=500)
    actor: str | None = Field(default=None, max_length=200)
    inbound_sid: str | None = Field(default=None, max_length=40)
    at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))


def set_consent(
    *,
    session: Session,
    e164: str,
    status: str,
    source: str,
    sender_e164: str = INSTITUTION,
    reason: str | None = None,
    actor: str | None = None,
    inbound_sid: str | None = None,
    at: datetime | None = None,
) -> Consent:
    """Set the consent of ``e164`` in a scope and append the audit event."""
    when = at or utcnow()
    row = session.exec(
        select(Consent).where(Consent.e164 == e164, Consent.sender_e164 == sender_e164)
    ).first()
    if row is None:
        row = Consent(e164=e164, sender_e164=sender_e164, status=status, source=source)
    row.status = status
    row.source = source
    row.updated_at = when
    session.add(row)
    session.add(
        ConsentEvent(
            e164=e164,
            sender_e164=sender_e164,
            status=status,
            source=source,
            reason=reason,
            actor=actor,
            inbound_sid=inbound_sid,
            at=when,
        )
    )
    return row


def apply_changes(
    *,
    session: Session,
    e164: str,
    changes: Iterable[ConsentChange],
    actor: str,
    inbound_sid: str | None,
    at: datetime,
    reason_prefix: str = "",
) -> None:
    """Write what a student's reply does to the consent of ``e164``
    (:func:`domain.consent.keyword_consent_changes`), each change with its audit event."""
    for change in changes:
        set_consent(
            session=session,
            e164=e164,
            status=change.status.value,
            source=change.source.value,
            sender_e164=change.scope,
            reason=f"{reason_prefix}{change.reason}",
            actor=actor,
            inbound_sid=inbound_sid,
            at=at,
        )


def consent_history(*, session: Session, e164: str) -> list[ConsentEvent]:
    """Every consent change of ``e164``, oldest first."""
    return list(
        session.exec(
            select(ConsentEvent)
            .where(ConsentEvent.e164 == e164)
            .order_by(col(ConsentEvent.at), col(ConsentEvent.id))
        )
    )


def record_auto_opt_in(
    *, session: Session, numbers: Iterable[str], now: datetime, reason: str, actor: str
) -> int:
    """Record ``opted_in``/``auto`` (with its audit event) for every number that has no
    institution-wide consent row yet; returns how many were recorded.

    The one auto opt-in: the sync calls it for new students' numbers, the send path for
    numbers texted under auto opt-in (the audit trail then says why they could be texted).
    Whether auto opt-in is on is the caller's :class:`~domain.config.SmsConfig` question.
    """
    unique = sorted(set(numbers))
    known: set[str] = set()
    for start in range(0, len(unique), _BATCH):
        batch = unique[start : start + _BATCH]
        known.update(
            session.execute(
                select(col(Consent.e164)).where(
                    col(Consent.e164).in_(batch), col(Consent.sender_e164) == INSTITUTION
                )
            ).scalars()
        )
    fresh = [n for n in unique if n not in known]
    base = {
        "sender_e164": INSTITUTION,
        "status": ConsentState.OPTED_IN.value,
        "source": ConsentSource.AUTO.value,
    }
    bulk_insert(session, _CONSENT, [{"e164": n, **base, "updated_at": now} for n in fresh])
    why = {"reason": reason, "actor": actor, "inbound_sid": None}
    bulk_insert(session, _EVENT, [{"e164": n, **base, **why, "at": now} for n in fresh])
    return len(fresh)


# --- what ``nudge consent`` reads and changes -----------------------------------------------


@dataclass(frozen=True, slots=True)
class ConsentTarget:
    """What ``NUMBER_OR_ID`` named: a person's numbers, or one number."""

    numbers: list[str]
    person_sis_id: str | None = None
    person_name: str | None = None


def consent_target(*, session: Session, number_or_id: str, e164: str | None) -> ConsentTarget:
    """Resolve ``NUMBER_OR_ID``: a person's SIS id (all their numbers) or a parsed number.

    ``e164`` is the caller's parse of the text as a phone number (None if it is not one);
    an SIS id wins when both could apply.
    """
    person = person_by_sis_id(session=session, sis_id=number_or_id.strip())
    if person is not None and person.id is not None:
        return ConsentTarget(
            sorted(student_numbers(session=session, person_id=person.id)),
            person.sis_id,
            person.display_name,
        )
    if e164 is None:
        return ConsentTarget([])
    owner = people_by_number(session=session, numbers=[e164]).get(e164)
    row = session.get(Person, owner) if owner is not None else None
    if row is None:
        return ConsentTarget([e164])
    return ConsentTarget(
        [e164],
        row.sis_id,
        display_name(row.first_name, row.preferred_name, row.last_name, row.sis_id),
    )


def current_consents(*, session: Session, numbers: Sequence[str]) -> list[Consent]:
    """The current consent rows (every scope) of ``numbers``."""
    if not numbers:
        return []
    return list(
        session.exec(
            select(Consent)
            .where(col(Consent.e164).in_(list(numbers)))
            .order_by(col(Consent.e164), col(Consent.sender_e164))
        )
    )


def consent_trail(*, session: Session, numbers: Sequence[str]) -> list[ConsentEvent]:
    """Every consent change of ``numbers``, oldest first."""
    events: list[ConsentEvent] = []
    for number in numbers:
        events.extend(consent_history(session=session, e164=number))
    return sorted(events, key=lambda e: (e.at, e.id or 0))


def resolve_review(
    *,
    session: Session,
    e164: str,
    reason: str,
    actor: str,
    now: datetime,
    opt_out: bool = False,
) -> list[Consent]:
    """Clear every review pause of ``e164``: restore the state the pause replaced, or
    record an opt-out when the admin read the reply as a revocation (``opt_out``).

    Returns the rows changed (empty when nothing was paused).
    """
    paused = [
        row
        for row in current_consents(session=session, numbers=[e164])
        if row.status == ConsentState.PAUSED_FOR_REVIEW
    ]
    history = consent_history(session=session, e164=e164)
    changed: list[Consent] = []
    for row in paused:
        if opt_out:
            status = ConsentState.OPTED_OUT.value
        else:
            before = [
                e.status
                for e in history
                if e.sender_e164 == row.sender_e164 and e.status != ConsentState.PAUSED_FOR_REVIEW
            ]
            # With nothing to restore, the student was being texted (that is why they
            # could reply): opted in.
            status = before[-1] if before else ConsentState.OPTED_IN.value
        changed.append(
            set_consent(
                session=session,
                e164=e164,
                status=status,
                source=ConsentSource.ADMIN.value,
                sender_e164=row.sender_e164,
                reason=f"review resolved: {reason}",
                actor=actor,
                at=now,
            )
        )
    return changed


def institution_consent(*, session: Session, e164: str) -> Consent | None:
    """The institution-wide consent row of ``e164``, if any."""
    return session.exec(
        select(Consent).where(Consent.e164 == e164, Consent.sender_e164 == INSTITUTION)
    ).one_or_none()


def last_decision_at(*, session: Session, e164: str) -> datetime | None:
    """When the last decision about ``e164``'s consent was made, in the student's order:
    for a change a reply made (STOP, START, a flagged reply), when the student sent that
    reply; for an admin's or the carrier's change, when it was made. Auto opt-in records
    are not decisions (:data:`domain.consent.DECISION_SOURCES`)."""
    session.flush()  # changes made earlier in this transaction count
    said = func.coalesce(_INBOUND.c.received_at, _EVENT.c.at)
    stmt = (
        select(func.max(said))
        .select_from(_EVENT.outerjoin(_INBOUND, _INBOUND.c.provider_sid == _EVENT.c.inbound_sid))
        .where(
            _EVENT.c.e164 == e164,
            _EVENT.c.source.in_([s.value for s in DECISION_SOURCES]),
        )
    )
    found: datetime | None = session.execute(stmt).scalar_one_or_none()
    if found is not None and found.tzinfo is None:  # SQLite's max() returns the raw value
        found = found.replace(tzinfo=UTC)
    return found


def note_consent(
    *,
    session: Session,
    e164: str,
    source: str,
    reason: str,
    sender_e164: str = INSTITUTION,
    actor: str | None = None,
    inbound_sid: str | None = None,
    at: datetime | None = None,
) -> None:
    """Append an audit event that changes nothing (the current status of that scope is
    repeated; ``unknown`` when there is no row): why something a student sent did not
    change their consent."""
    row = session.exec(
        select(Consent).where(Consent.e164 == e164, Consent.sender_e164 == sender_e164)
    ).first()
    session.add(
        ConsentEvent(
            e164=e164,
            sender_e164=sender_e164,
            status=row.status if row is not None else ConsentState.UNKNOWN.value,
            source=source,
            reason=reason[:500],
            actor=actor,
            inbound_sid=inbound_sid,
            at=at or utcnow(),
        )
    )


_BATCH = 500
_CONSENT = Consent.__table__  # type: ignore[attr-defined]
_EVENT = ConsentEvent.__table__  # type: ignore[attr-defined]
_INBOUND = InboundMessage.__table__  # type: ignore[attr-defined]
