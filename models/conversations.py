"""The inbox: conversations between staff members and students, as staff read them.

A conversation is (staff member, student): the staff member's number texted the student,
or the student texted it (or answered by email). ``nudge inbox`` lists them with their
unread and flagged replies and marks them read; ``nudge reply`` checks one exists before a
staff member who is not the original sender may answer, and marks the student's replies
read. ``nudge inbox-link`` gives an unknown number's replies to the student it turns out to
be (:func:`link_sender`), so they join that student's conversation.

Keyword-only functions over the caller's session; they never commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, func, or_, select, update
from sqlmodel import Session

from domain.names import display_name
from models.messaging import InboundMessage, Message, SenderNumber
from models.outbox import SENT_STATES
from models.people import Person, student_numbers

inbound_t = InboundMessage.__table__  # type: ignore[attr-defined]
message_t = Message.__table__  # type: ignore[attr-defined]
sender_t = SenderNumber.__table__  # type: ignore[attr-defined]
person_t = Person.__table__  # type: ignore[attr-defined]


def conversation_exists(*, session: Session, staff_person_id: int, student_person_id: int) -> bool:
    """True when the staff member's number texted the student, or the student texted it."""
    sender = session.execute(
        select(sender_t.c.e164).where(sender_t.c.staff_person_id == staff_person_id)
    ).scalar()
    inbound = session.execute(
        select(inbound_t.c.id)
        .where(
            inbound_t.c.staff_person_id == staff_person_id,
            inbound_t.c.person_id == student_person_id,
        )
        .limit(1)
    ).first()
    if inbound is not None:
        return True
    if not sender:
        return False
    numbers = student_numbers(session=session, person_id=student_person_id)
    if not numbers:
        return False
    outbound = session.execute(
        select(message_t.c.id)
        .where(
            message_t.c.channel == "sms",
            message_t.c.from_addr == sender,
            message_t.c.status.in_(SENT_STATES),
            or_(
                message_t.c.person_id == student_person_id, message_t.c.to_addr.in_(sorted(numbers))
            ),
        )
        .limit(1)
    ).first()
    if outbound is not None:
        return True
    return (
        session.execute(
            select(inbound_t.c.id)
            .where(inbound_t.c.to_e164 == sender, inbound_t.c.from_e164.in_(sorted(numbers)))
            .limit(1)
        ).first()
        is not None
    )


def _mark_unread_read(session: Session, now: datetime, *where: Any) -> int:
    """Mark the unread replies (keywords aside) to a staff member matching ``where`` read;
    returns how many."""
    return int(
        session.execute(
            update(inbound_t)
            .where(*where, inbound_t.c.keyword == "none", inbound_t.c.read_at.is_(None))
            .values(read_at=now)
        ).rowcount  # type: ignore[attr-defined]
    )


def mark_read(
    *, session: Session, staff_person_id: int, student_person_id: int, now: datetime
) -> int:
    """Mark the student's unread replies to this staff member as read; returns how many."""
    return _mark_unread_read(
        session,
        now,
        inbound_t.c.staff_person_id == staff_person_id,
        inbound_t.c.person_id == student_person_id,
    )


def mark_read_from(*, session: Session, staff_person_id: int, from_e164: str, now: datetime) -> int:
    """Mark the unread replies from this number (an unknown sender, usually) to this staff
    member as read; returns how many."""
    return _mark_unread_read(
        session,
        now,
        inbound_t.c.staff_person_id == staff_person_id,
        inbound_t.c.from_e164 == from_e164,
    )


def mark_all_read(*, session: Session, staff_person_id: int, now: datetime) -> int:
    """Mark every unread reply to this staff member as read (students and unknown numbers,
    texts and emails); returns how many."""
    return _mark_unread_read(session, now, inbound_t.c.staff_person_id == staff_person_id)


def link_sender(*, session: Session, from_e164: str, student_person_id: int) -> int:
    """Give the stored messages of an unknown number (texts no person was matched to,
    keywords included) to this student, so they join the student's conversation; returns
    how many. Messages already matched to someone are left alone, and so are the number's
    future texts (add the number to the student for those: ``nudge phones override``)."""
    return int(
        session.execute(
            update(inbound_t)
            .where(
                inbound_t.c.from_e164 == from_e164,
                inbound_t.c.person_id.is_(None),
                inbound_t.c.channel == "sms",
            )
            .values(person_id=student_person_id)
        ).rowcount  # type: ignore[attr-defined]
    )


@dataclass(frozen=True, slots=True)
class Conversation:
    """One conversation of the inbox: a student (or unknown number) and a staff member."""

    staff_sis_id: str | None
    staff_name: str | None
    student_sis_id: str | None
    student_name: str | None
    from_e164: str | None  # only for unknown senders
    replies: int
    unread: int
    flagged: int
    last_reply_at: datetime
    last_reply: str
    last_channel: str = "sms"  # sms | email: how the last reply came
    #: Unread urgent replies (crisis or safety phrases, ``domain/urgent.py``): the
    #: conversation sorts first until they are read.
    urgent: int = 0

    def as_dict(self, masker: Any = None) -> dict[str, Any]:
        """JSON-ready, with the number passed through ``masker`` when given."""
        number = self.from_e164
        if number is not None and masker is not None:
            number = masker(number)
        return {
            "staff_id": self.staff_sis_id,
            "staff_name": self.staff_name,
            "student_id": self.student_sis_id,
            "student_name": self.student_name,
            "from": number,
            "replies": self.replies,
            "unread": self.unread,
            "flagged": self.flagged,
            "urgent": self.urgent,
            "last_reply_at": self.last_reply_at.isoformat(),
            "last_reply": self.last_reply,
            "last_channel": self.last_channel,
        }


def inbox(
    *,
    session: Session,
    staff_person_id: int | None = None,
    unread_only: bool = False,
    limit: int = 100,
) -> list[Conversation]:
    """Conversations with replies (keywords aside): those with an unread urgent reply
    first, then the most recent reply first.

    A conversation is (staff member, student), texts and emails alike; replies from an
    unknown number form one conversation per number.
    """
    unknown_key = case((inbound_t.c.person_id.is_(None), inbound_t.c.from_e164), else_="")
    unread = func.sum(case((inbound_t.c.read_at.is_(None), 1), else_=0))
    flagged = func.sum(case((inbound_t.c.flagged_phrase.is_not(None), 1), else_=0))
    urgent = func.sum(
        case(
            (
                and_(inbound_t.c.urgent_phrase.is_not(None), inbound_t.c.read_at.is_(None)),
                1,
            ),
            else_=0,
        )
    )
    stmt = (
        select(
            inbound_t.c.staff_person_id,
            inbound_t.c.person_id,
            unknown_key.label("unknown"),
            func.count().label("replies"),
            unread.label("unread"),
            flagged.label("flagged"),
            urgent.label("urgent"),
            func.max(inbound_t.c.id).label("last_id"),
        )
        .where(inbound_t.c.keyword == "none")
        .group_by(inbound_t.c.staff_person_id, inbound_t.c.person_id, unknown_key)
        .order_by(
            case((urgent > 0, 0), else_=1),
            func.max(inbound_t.c.received_at).desc(),
            func.max(inbound_t.c.id).desc(),
        )
        .limit(limit)
    )
    if staff_person_id is not None:
        stmt = stmt.where(inbound_t.c.staff_person_id == staff_person_id)
    if unread_only:
        stmt = stmt.having(unread > 0)
    groups = session.execute(stmt).all()
    if not groups:
        return []
    last_ids = [int(g.last_id) for g in groups]
    last = {
        r.id: r
        for r in session.execute(
            select(
                inbound_t.c.id,
                inbound_t.c.body,
                inbound_t.c.received_at,
                inbound_t.c.from_e164,
                inbound_t.c.channel,
            ).where(inbound_t.c.id.in_(last_ids))
        )
    }
    person_ids = {g.staff_person_id for g in groups} | {g.person_id for g in groups}
    people = {
        r.id: r
        for r in session.execute(
            select(
                person_t.c.id,
                person_t.c.sis_id,
                person_t.c.first_name,
                person_t.c.preferred_name,
                person_t.c.last_name,
            ).where(person_t.c.id.in_([p for p in person_ids if p is not None]))
        )
    }
    conversations: list[Conversation] = []
    for g in groups:
        staff_row = people.get(g.staff_person_id)
        student_row = people.get(g.person_id)
        latest = last[int(g.last_id)]
        conversations.append(
            Conversation(
                staff_sis_id=staff_row.sis_id if staff_row else None,
                staff_name=display_name(
                    staff_row.first_name,
                    staff_row.preferred_name,
                    staff_row.last_name,
                    staff_row.sis_id,
                )
                if staff_row
                else None,
                student_sis_id=student_row.sis_id if student_row else None,
                student_name=display_name(
                    student_row.first_name,
                    student_row.preferred_name,
                    student_row.last_name,
                    student_row.sis_id,
                )
                if student_row
                else None,
                from_e164=None if student_row else latest.from_e164,
                replies=int(g.replies),
                unread=int(g.unread or 0),
                flagged=int(g.flagged or 0),
                urgent=int(g.urgent or 0),
                last_reply_at=latest.received_at,
                last_reply=latest.body,
                last_channel=latest.channel or "sms",
            )
        )
    return conversations


__all__ = [
    "Conversation",
    "conversation_exists",
    "inbox",
    "link_sender",
    "mark_all_read",
    "mark_read",
    "mark_read_from",
]
