"""The reply-notification queue: emails telling staff members a student answered them.

Each reply's notification email is an outbox row created in the same transaction as the
reply (:func:`models.outbox_loose.enqueue`, unique per reply), so it is sent exactly once
however often polls run or crash. This module reads what each email shows (and what the
on-call alert of an urgent reply shows, :func:`urgent_replies`), gives waiting
notifications the staff member's address once a sync knows it, and turns the reply's
``notified`` true when the mail server accepted its email.

Keyword-only functions over the caller's session; they never commit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import aliased
from sqlmodel import Session

from domain.names import display_name
from domain.outbox import Kind, Status
from models.bulk import chunked
from models.messaging import InboundMessage, Message
from models.people import Person
from models.threads import ThreadItem, threads_before

inbound_t = InboundMessage.__table__  # type: ignore[attr-defined]
message_t = Message.__table__  # type: ignore[attr-defined]
person_t = Person.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class PendingReply:
    """A reply waiting for its email to the staff member, with what the email shows."""

    id: int
    provider_sid: str
    from_e164: str
    body: str
    received_at: datetime
    flagged_phrase: str | None
    staff_person_id: int
    staff_sis_id: str
    staff_name: str
    staff_email: str | None
    student_sis_id: str | None
    student_name: str | None
    original_body: str | None
    original_sent_at: datetime | None
    channel: str = "sms"  # sms | email (the student answered a fallback email by mail)
    student_person_id: int | None = None
    #: The last messages of the conversation (this staff member and student) before the
    #: conversation's first new reply in the batch, oldest first; empty for unknown numbers.
    history: tuple[ThreadItem, ...] = ()
    #: The crisis or safety phrase that made this reply urgent (``domain/urgent.py``).
    urgent_phrase: str | None = None


#: How many earlier messages a notification email quotes.
HISTORY_SIZE = 3


def replies_to_notify(
    *, session: Session, inbound_ids: Sequence[int], history: int = HISTORY_SIZE
) -> list[PendingReply]:
    """What the notification email of each of these replies shows (replies to a staff
    member's number or by email, keywords aside), oldest first.

    Each reply from a known student carries the last ``history`` messages of its
    conversation before the first of these replies in it (:func:`models.threads.thread`)."""
    if not inbound_ids:
        return []
    staff = aliased(person_t, name="staff")
    student = aliased(person_t, name="student")
    original = aliased(message_t, name="original")
    rows = session.execute(
        select(
            inbound_t.c.id,
            inbound_t.c.provider_sid,
            inbound_t.c.from_e164,
            inbound_t.c.body,
            inbound_t.c.received_at,
            inbound_t.c.flagged_phrase,
            inbound_t.c.staff_person_id,
            staff.c.sis_id,
            staff.c.first_name,
            staff.c.preferred_name,
            staff.c.last_name,
            staff.c.email,
            student.c.sis_id,
            student.c.first_name,
            student.c.preferred_name,
            student.c.last_name,
            original.c.body,
            original.c.sent_at,
            inbound_t.c.channel,
            inbound_t.c.person_id,
            inbound_t.c.urgent_phrase,
        )
        .select_from(
            inbound_t.join(staff, staff.c.id == inbound_t.c.staff_person_id)
            .outerjoin(student, student.c.id == inbound_t.c.person_id)
            .outerjoin(original, original.c.id == inbound_t.c.in_reply_to_id)
        )
        .where(
            inbound_t.c.id.in_(sorted(set(inbound_ids))),
            inbound_t.c.keyword == "none",
            inbound_t.c.staff_person_id.is_not(None),
        )
        .order_by(inbound_t.c.received_at, inbound_t.c.id)
    ).all()
    firsts: dict[tuple[int, int], datetime] = {}
    for r in rows:  # oldest first: the first seen is the conversation's first new reply
        if r.person_id is not None:
            firsts.setdefault((int(r.person_id), int(r.staff_person_id)), r.received_at)
    earlier = threads_before(
        session=session,
        conversations=[(st, sf, at) for (st, sf), at in firsts.items()],
        limit=history,
    )
    pending: list[PendingReply] = []
    for r in rows:
        (
            rid,
            sid,
            from_e164,
            body,
            received_at,
            phrase,
            staff_id,
            staff_sis,
            s_first,
            s_pref,
            s_last,
            s_email,
            st_sis,
            st_first,
            st_pref,
            st_last,
            o_body,
            o_sent,
            channel,
            student_id,
            urgent,
        ) = r
        pending.append(
            PendingReply(
                id=rid,
                provider_sid=sid,
                from_e164=from_e164,
                body=body,
                received_at=received_at,
                flagged_phrase=phrase,
                staff_person_id=staff_id,
                staff_sis_id=staff_sis,
                staff_name=display_name(s_first, s_pref, s_last, staff_sis),
                staff_email=s_email,
                student_sis_id=st_sis,
                student_name=display_name(st_first, st_pref, st_last, st_sis) if st_sis else None,
                original_body=o_body,
                original_sent_at=o_sent,
                channel=channel or "sms",
                student_person_id=student_id,
                history=tuple(earlier.get((student_id, staff_id), ()))
                if student_id is not None
                else (),
                urgent_phrase=urgent,
            )
        )
    return pending


@dataclass(frozen=True, slots=True)
class UrgentReply:
    """An urgent reply (``urgent_phrase`` set), with what its on-call alert shows.

    ``staff_*`` are None when the number texted belongs to no staff member; ``student_*``
    when the sender is an unknown number."""

    id: int
    provider_sid: str
    channel: str  # sms | email
    from_e164: str
    to_e164: str
    body: str
    received_at: datetime
    urgent_phrase: str
    student_person_id: int | None
    student_sis_id: str | None
    student_name: str | None
    staff_person_id: int | None
    staff_sis_id: str | None
    staff_name: str | None


def urgent_replies(*, session: Session, inbound_ids: Sequence[int]) -> list[UrgentReply]:
    """The urgent replies among ``inbound_ids`` (keywords are never urgent), oldest first,
    with the student and the staff member whose number (or conversation) they reached."""
    if not inbound_ids:
        return []
    staff = aliased(person_t, name="staff")
    student = aliased(person_t, name="student")
    rows = session.execute(
        select(
            inbound_t.c.id,
            inbound_t.c.provider_sid,
            inbound_t.c.channel,
            inbound_t.c.from_e164,
            inbound_t.c.to_e164,
            inbound_t.c.body,
            inbound_t.c.received_at,
            inbound_t.c.urgent_phrase,
            inbound_t.c.person_id,
            student.c.sis_id,
            student.c.first_name,
            student.c.preferred_name,
            student.c.last_name,
            inbound_t.c.staff_person_id,
            staff.c.sis_id,
            staff.c.first_name,
            staff.c.preferred_name,
            staff.c.last_name,
        )
        .select_from(
            inbound_t.outerjoin(staff, staff.c.id == inbound_t.c.staff_person_id).outerjoin(
                student, student.c.id == inbound_t.c.person_id
            )
        )
        .where(
            inbound_t.c.id.in_(sorted(set(inbound_ids))),
            inbound_t.c.urgent_phrase.is_not(None),
            inbound_t.c.keyword == "none",
        )
        .order_by(inbound_t.c.received_at, inbound_t.c.id)
    ).all()
    found: list[UrgentReply] = []
    for r in rows:
        (
            rid,
            sid,
            channel,
            from_e164,
            to_e164,
            body,
            received_at,
            phrase,
            student_id,
            st_sis,
            st_first,
            st_pref,
            st_last,
            staff_id,
            sf_sis,
            sf_first,
            sf_pref,
            sf_last,
        ) = r
        found.append(
            UrgentReply(
                id=rid,
                provider_sid=sid,
                channel=channel or "sms",
                from_e164=from_e164 or "",
                to_e164=to_e164 or "",
                body=body,
                received_at=received_at,
                urgent_phrase=phrase,
                student_person_id=student_id,
                student_sis_id=st_sis,
                student_name=display_name(st_first, st_pref, st_last, st_sis) if st_sis else None,
                staff_person_id=staff_id,
                staff_sis_id=sf_sis,
                staff_name=display_name(sf_first, sf_pref, sf_last, sf_sis) if sf_sis else None,
            )
        )
    return found


def mark_notified(*, session: Session, ids: Sequence[int]) -> None:
    """These replies' notification email was handed over."""
    for batch in chunked(sorted(set(ids))):
        session.execute(
            update(inbound_t).where(inbound_t.c.id.in_(list(batch))).values(notified=True)
        )


def address_notifications(*, session: Session) -> int:
    """Reply notifications waiting for their staff member's email address get it where it is
    known now (a later sync may have added it). Returns how many are still unaddressed."""
    email = select(person_t.c.email).where(person_t.c.id == message_t.c.person_id)
    session.execute(
        update(message_t)
        .where(
            message_t.c.kind == Kind.NOTIFICATION.value,
            message_t.c.to_addr.is_(None),
            message_t.c.status == Status.PLANNED.value,
        )
        .values(to_addr=email.scalar_subquery())
    )
    return int(
        session.execute(
            select(func.count()).where(
                message_t.c.kind == Kind.NOTIFICATION.value,
                message_t.c.status == Status.PLANNED.value,
                message_t.c.to_addr.is_(None),
            )
        ).scalar_one()
    )


__all__ = [
    "HISTORY_SIZE",
    "PendingReply",
    "UrgentReply",
    "address_notifications",
    "mark_notified",
    "replies_to_notify",
    "urgent_replies",
]
