"""Staff away messages: while a staff member is away, a student who texts them gets the
away message once per conversation per absence (``nudge away``).

The absence runs from ``starts_at`` to ``ends_at`` (the end of the ``--until`` day in the
institution's zone). Each answer is a one-student reply campaign whose request key is
:func:`away_request_key`, so it is planned once per (absence, student) whatever the number
of texts, polls or crashes.

Keyword-only functions over the caller's session; they never commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Column, Index, and_, func, select, update
from sqlalchemy.orm import aliased
from sqlmodel import Field, Session, SQLModel, col

from domain.segments import segment_info
from models.bulk import chunked
from models.messaging import Campaign, InboundMessage
from models.people import Person
from models.types import UTCDateTime, utcnow

#: The longest away message: three SMS segments (459 GSM-7 characters, 201 in UCS-2).
MAX_AWAY_SEGMENTS = 3


class StaffAway(SQLModel, table=True):
    """One absence of a staff member, with the message students get meanwhile."""

    __tablename__ = "staff_away"
    __table_args__ = (Index("ix_staff_away_staff", "staff_person_id", "ends_at"),)

    id: int | None = Field(default=None, primary_key=True)
    staff_person_id: int = Field(foreign_key="person.id")
    starts_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    ends_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    message: str
    created_by: str | None = Field(default=None, max_length=200)
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )
    cleared_at: datetime | None = Field(
        default=None, sa_column=Column(UTCDateTime(), nullable=True)
    )


def away_request_key(away_id: int, student_person_id: int) -> str:
    """The request key of the away answer of absence ``away_id`` to one student."""
    return f"away:{away_id}:{student_person_id}"


def absences(*, session: Session, staff_person_id: int | None = None) -> list[StaffAway]:
    """Absences not cleared, soonest end first (of one staff member when given)."""
    stmt = select(StaffAway).where(StaffAway.cleared_at.is_(None))  # type: ignore[union-attr]
    if staff_person_id is not None:
        stmt = stmt.where(StaffAway.staff_person_id == staff_person_id)  # type: ignore[arg-type]
    return list(session.execute(stmt.order_by(StaffAway.ends_at)).scalars())  # type: ignore[arg-type]


def clear_absences(*, session: Session, staff_person_id: int, now: datetime) -> int:
    """End every absence of this staff member now; returns how many."""
    t = StaffAway.__table__  # type: ignore[attr-defined]
    return int(
        session.execute(
            update(t)
            .where(t.c.staff_person_id == staff_person_id, t.c.cleared_at.is_(None))
            .values(cleared_at=now)
        ).rowcount  # type: ignore[attr-defined]
    )


def away_message_problem(message: str) -> str | None:
    """Why ``message`` cannot be an away message (empty, or more than
    :data:`MAX_AWAY_SEGMENTS` SMS segments), or None. It is sent as written."""
    if not message.strip():
        return "the away message is empty: write what students should know while you are away"
    info = segment_info(message)
    if info.segments > MAX_AWAY_SEGMENTS:
        return (
            f"the away message is {info.segments} SMS segments ({info.characters} characters, "
            f"{info.encoding}); at most {MAX_AWAY_SEGMENTS} are allowed (459 characters, or "
            "201 with a character outside the GSM alphabet such as an emoji or a curly quote)"
        )
    return None


def set_absence(
    *,
    session: Session,
    staff_person_id: int,
    starts_at: datetime,
    ends_at: datetime,
    message: str,
    created_by: str | None,
    now: datetime,
) -> tuple[StaffAway, list[StaffAway]]:
    """Store a new absence of this staff member, replacing (clearing now) the ones not over
    yet: a staff member has one absence at a time. Returns the new one and those replaced
    (ended ones that were never cleared are cleared too, silently).

    ``created_at`` is ``now`` to the whole second: providers date texts to the second, and
    a text sent in the second the message was set is answered."""
    replaced = absences(session=session, staff_person_id=staff_person_id)
    clear_absences(session=session, staff_person_id=staff_person_id, now=now)
    away = StaffAway(
        staff_person_id=staff_person_id,
        starts_at=starts_at,
        ends_at=ends_at,
        message=message,
        created_by=created_by,
        created_at=now.replace(microsecond=0),
    )
    session.add(away)
    session.flush()
    return away, [a for a in replaced if a.ends_at > now]


@dataclass(frozen=True, slots=True)
class AwayListed:
    """An absence not over yet, with who is away (``nudge away list``)."""

    away: StaffAway
    staff_sis_id: str
    staff_name: str


def current_absences(
    *, session: Session, now: datetime, staff_person_id: int | None = None
) -> list[AwayListed]:
    """Absences neither cleared nor over at ``now`` (under way or to come), soonest end
    first, with the staff member's SIS id and name."""
    listed = []
    for away in absences(session=session, staff_person_id=staff_person_id):
        if away.ends_at <= now:
            continue
        staff = session.get(Person, away.staff_person_id)
        assert staff is not None  # noqa: S101 - a foreign key
        listed.append(AwayListed(away, staff.sis_id, staff.display_name))
    return listed


@dataclass(frozen=True, slots=True)
class AwayDue:
    """An away answer owed: absence ``away_id`` of a staff member, to one student who texted
    them during it (once per absence and student, whatever the number of texts)."""

    away_id: int
    staff_person_id: int
    staff_sis_id: str
    student_person_id: int
    student_sis_id: str
    message: str
    first_text_at: datetime

    @property
    def request_key(self) -> str:
        """The idempotency key of this answer's reply campaign."""
        return away_request_key(self.away_id, self.student_person_id)


def away_answers_due(*, session: Session, now: datetime, since: datetime) -> list[AwayDue]:
    """The away answers owed at ``now``, oldest first text first.

    One per (absence, student): an ordinary text (keyword ``none``, by SMS) received since
    ``since`` from an active student to a staff member's number while that staff member was
    away (the absence not cleared, not over yet at ``now``, and its window
    [``starts_at``, ``ends_at``] holding the text, sent after the absence was set: an away
    message never answers what came before it), with no campaign yet under
    :func:`away_request_key`. ``since`` bounds the inbound rows read.
    """
    inbound = InboundMessage.__table__  # type: ignore[attr-defined]
    away = StaffAway.__table__  # type: ignore[attr-defined]
    staff = aliased(Person, name="staff")
    student = aliased(Person, name="student")
    first = func.min(inbound.c.received_at).label("first_at")
    stmt = (
        select(
            away.c.id,
            away.c.staff_person_id,
            col(staff.sis_id),
            inbound.c.person_id,
            col(student.sis_id),
            away.c.message,
            first,
        )
        .select_from(inbound)
        .join(
            away,
            and_(
                away.c.staff_person_id == inbound.c.staff_person_id,
                away.c.cleared_at.is_(None),
                away.c.ends_at > now,
                inbound.c.received_at >= away.c.starts_at,
                inbound.c.received_at >= away.c.created_at,
                inbound.c.received_at <= away.c.ends_at,
            ),
        )
        .join(staff, col(staff.id) == away.c.staff_person_id)
        .join(student, col(student.id) == inbound.c.person_id)
        .where(
            inbound.c.received_at >= since,
            inbound.c.keyword == "none",
            inbound.c.channel == "sms",
            col(student.role) == "student",
            col(student.status) == "active",
        )
        .group_by(
            away.c.id,
            away.c.staff_person_id,
            col(staff.sis_id),
            inbound.c.person_id,
            col(student.sis_id),
            away.c.message,
        )
        .order_by(first, away.c.id, inbound.c.person_id)
    )
    due = [
        AwayDue(
            away_id=int(away_id),
            staff_person_id=int(staff_pk),
            staff_sis_id=str(staff_sis),
            student_person_id=int(student_pk),
            student_sis_id=str(student_sis),
            message=str(message),
            first_text_at=first_at,
        )
        for away_id, staff_pk, staff_sis, student_pk, student_sis, message, first_at in (
            session.execute(stmt).all()
        )
    ]
    answered: set[str] = set()
    for batch in chunked([d.request_key for d in due]):
        answered.update(
            session.execute(
                select(col(Campaign.request_key)).where(col(Campaign.request_key).in_(batch))
            ).scalars()
        )
    return [d for d in due if d.request_key not in answered]


__all__ = [
    "MAX_AWAY_SEGMENTS",
    "AwayDue",
    "AwayListed",
    "StaffAway",
    "absences",
    "away_answers_due",
    "away_message_problem",
    "away_request_key",
    "clear_absences",
    "current_absences",
    "set_absence",
]
