"""Repository functions of replies: inbound messages, conversations, cursors and consent review.

Everything the replies poller, ``nudge inbox``, ``nudge reply`` and ``nudge consent`` read or
write, as keyword-only functions over the caller's session (they never commit, except
:func:`acquire_lease`, whose whole point is to be visible to other pollers at once).

The invariants that make "nothing lost, nothing counted twice" hold:

* ``inbound_message.provider_sid`` is unique and rows are inserted with ``ON CONFLICT DO
  NOTHING ... RETURNING``: only the rows this transaction really inserted come back, so only
  they change consent, even when two polls race.
* The poll cursor is written in the same transaction as the batch it covers: it can never
  be ahead of what is stored.
* Each reply's notification email is an outbox row created in the same transaction as the
  reply (``models/outbox.enqueue``, unique per reply): it is sent exactly once however often
  polls run or crash; ``notified`` turns true when the mail server accepted it.

Bulk reads take IN lists in slices (``chunked``) so 10,000 messages cost a handful of queries.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, func, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased
from sqlmodel import Session

from domain.routing import ConsentSource, ConsentState
from models.campaigns import SENT_STATES
from models.consent import INSTITUTION, Consent, ConsentEvent, consent_history, set_consent
from models.messaging import InboundMessage, Message, PollCursor, SenderNumber
from models.people import Person, PhoneNumber
from models.people_sync import chunked

inbound_t = InboundMessage.__table__  # type: ignore[attr-defined]
message_t = Message.__table__  # type: ignore[attr-defined]
cursor_t = PollCursor.__table__  # type: ignore[attr-defined]
sender_t = SenderNumber.__table__  # type: ignore[attr-defined]
person_t = Person.__table__  # type: ignore[attr-defined]
phone_t = PhoneNumber.__table__  # type: ignore[attr-defined]
consent_t = Consent.__table__  # type: ignore[attr-defined]

#: Outbound kinds a reply can answer (an opt-in notice always precedes the real message).
THREADABLE_KINDS = ("campaign", "reply")
#: Twilio dates have whole seconds and our ``sent_at`` is taken after Twilio answered: a
#: reply may carry a timestamp a little earlier than the message it answers.
THREAD_SLACK = timedelta(seconds=5)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# --- cursors and the poll lease --------------------------------------------------------


def read_cursor(*, session: Session, name: str) -> datetime | None:
    """The instant stored under ``name`` (UTC), or None before the first poll."""
    value = session.execute(select(cursor_t.c.value).where(cursor_t.c.name == name)).scalar()
    if not value:
        return None
    moment = datetime.fromisoformat(str(value))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def write_cursor(*, session: Session, name: str, value: datetime, now: datetime) -> None:
    """Store ``value`` under ``name`` in the caller's transaction (insert or update)."""
    text = value.astimezone(UTC).isoformat()
    done = session.execute(
        update(cursor_t).where(cursor_t.c.name == name).values(value=text, updated_at=now)
    ).rowcount  # type: ignore[attr-defined]
    if not done:
        session.execute(insert(cursor_t).values(name=name, value=text, updated_at=now))


def acquire_lease(
    *, session: Session, name: str, holder: str, now: datetime, ttl: timedelta
) -> bool:
    """Take the lease ``name`` for ``holder`` unless someone else holds a fresh one; commits.

    The lease row lives in ``poll_cursor`` (value = holder, ``updated_at`` = taken at). One
    conditional UPDATE decides between racing pollers; a holder that died frees it after
    ``ttl``.
    """
    won = session.execute(
        update(cursor_t)
        .where(
            cursor_t.c.name == name,
            or_(cursor_t.c.value == holder, cursor_t.c.updated_at < now - ttl),
        )
        .values(value=holder, updated_at=now)
    ).rowcount  # type: ignore[attr-defined]
    if won:
        session.commit()
        return True
    exists = session.execute(select(cursor_t.c.name).where(cursor_t.c.name == name)).first()
    if exists is not None:
        session.commit()
        return False
    try:
        session.execute(insert(cursor_t).values(name=name, value=holder, updated_at=now))
        session.commit()
    except IntegrityError:  # another poller created it first
        session.rollback()
        return False
    return True


def mark_notified(*, session: Session, ids: Sequence[int]) -> None:
    """These replies' notification email was handed over."""
    for batch in chunked(sorted(set(ids))):
        session.execute(
            update(inbound_t).where(inbound_t.c.id.in_(list(batch))).values(notified=True)
        )


def lease_holder(*, session: Session, name: str) -> str | None:
    """Who holds the lease ``name`` (whatever its age), if anyone ever took it."""
    value = session.execute(select(cursor_t.c.value).where(cursor_t.c.name == name)).scalar()
    return None if value is None else str(value)


def release_lease(*, session: Session, name: str, holder: str) -> None:
    """Give the lease back (only if ``holder`` still holds it); commits."""
    session.execute(
        update(cursor_t)
        .where(cursor_t.c.name == name, cursor_t.c.value == holder)
        .values(updated_at=_EPOCH)
    )
    session.commit()


# --- matching inbound messages ---------------------------------------------------------


def known_sids(*, session: Session, sids: Sequence[str]) -> set[str]:
    """Which of ``sids`` are already stored."""
    found: set[str] = set()
    for batch in chunked(sorted(set(sids))):
        found.update(
            session.execute(
                select(inbound_t.c.provider_sid).where(inbound_t.c.provider_sid.in_(list(batch)))
            ).scalars()
        )
    return found


def sender_owners(*, session: Session, numbers: Iterable[str]) -> dict[str, int]:
    """Sender number (E.164) -> the staff member it belongs to, for the numbers given."""
    owners: dict[str, int] = {}
    for batch in chunked(sorted(set(numbers))):
        rows = session.execute(
            select(sender_t.c.e164, sender_t.c.staff_person_id).where(
                sender_t.c.e164.in_(list(batch))
            )
        )
        owners.update({str(e164): int(staff) for e164, staff in rows})
    return owners


def people_by_number(*, session: Session, numbers: Iterable[str]) -> dict[str, int]:
    """Number -> the person it belongs to: their chosen SMS number, or any stored phone.

    A number several people share (siblings, a parent) goes to the one texted at it, then
    to an active student, then to the oldest record: the same answer every time.
    """
    best: dict[str, tuple[tuple[int, int, int, int], int]] = {}

    def offer(number: str, person_id: int, chosen: bool, role: str, status: str) -> None:
        rank = (
            0 if chosen else 1,
            0 if role == "student" else 1,
            0 if status == "active" else 1,
            person_id,
        )
        if number not in best or rank < best[number][0]:
            best[number] = (rank, person_id)

    for batch in chunked(sorted(set(numbers))):
        wanted = list(batch)
        for number, pid, role, status in session.execute(
            select(person_t.c.sms_e164, person_t.c.id, person_t.c.role, person_t.c.status).where(
                person_t.c.sms_e164.in_(wanted)
            )
        ):
            offer(str(number), int(pid), True, role, status)
        for number, pid, role, status in session.execute(
            select(phone_t.c.e164, person_t.c.id, person_t.c.role, person_t.c.status)
            .select_from(phone_t.join(person_t, person_t.c.id == phone_t.c.person_id))
            .where(phone_t.c.e164.in_(wanted))
        ):
            offer(str(number), int(pid), False, role, status)
    return {number: pid for number, (_rank, pid) in best.items()}


@dataclass(frozen=True, slots=True)
class Outbound:
    """An SMS we sent that a reply may answer."""

    id: int
    person_id: int | None
    sent_at: datetime | None


def outbound_threads(
    *, session: Session, senders: Iterable[str], numbers: Iterable[str]
) -> dict[tuple[str, str], list[Outbound]]:
    """(sender number, recipient number) -> the SMS sent on that pair, oldest first."""
    sender_list = sorted(set(senders))
    threads: dict[tuple[str, str], list[Outbound]] = {}
    if not sender_list:
        return threads
    for batch in chunked(sorted(set(numbers))):
        rows = session.execute(
            select(
                message_t.c.from_addr,
                message_t.c.to_addr,
                message_t.c.id,
                message_t.c.person_id,
                message_t.c.sent_at,
            )
            .where(
                message_t.c.channel == "sms",
                message_t.c.kind.in_(THREADABLE_KINDS),
                message_t.c.status.in_(SENT_STATES),
                message_t.c.from_addr.in_(sender_list),
                message_t.c.to_addr.in_(list(batch)),
            )
            .order_by(message_t.c.sent_at, message_t.c.id)
        )
        for from_addr, to_addr, mid, pid, sent_at in rows:
            threads.setdefault((from_addr, to_addr), []).append(Outbound(mid, pid, sent_at))
    return threads


def answered_message(thread: Sequence[Outbound], received_at: datetime) -> Outbound | None:
    """The latest message of ``thread`` sent before the reply arrived (with slack)."""
    limit = received_at + THREAD_SLACK
    found: Outbound | None = None
    for message in thread:
        if message.sent_at is None or message.sent_at <= limit:
            found = message
        else:
            break
    return found


def insert_inbound(*, session: Session, rows: Sequence[dict[str, Any]]) -> dict[str, int]:
    """Insert inbound rows, skipping any sid already stored; returns the sids inserted,
    with their row ids.

    ``ON CONFLICT DO NOTHING ... RETURNING`` (SQLite and PostgreSQL): a sid another poll
    stored meanwhile is neither an error nor returned.
    """
    if not rows:
        return {}
    dialect = session.get_bind().dialect.name
    maker = pg_insert if dialect == "postgresql" else sqlite_insert
    inserted: dict[str, int] = {}
    for batch in chunked(list(rows), 1000):
        stmt = (
            maker(inbound_t)
            .on_conflict_do_nothing(index_elements=["provider_sid"])
            .returning(inbound_t.c.provider_sid, inbound_t.c.id)
        )
        inserted.update({str(sid): int(rid) for sid, rid in session.execute(stmt, list(batch))})
    return inserted


# --- notifications ---------------------------------------------------------------------


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


def _name(first: str | None, preferred: str | None, last: str | None, fallback: str) -> str:
    given = (preferred or "").strip() or (first or "").strip()
    return " ".join(p for p in (given, (last or "").strip()) if p) or fallback


def replies_to_notify(*, session: Session, inbound_ids: Sequence[int]) -> list[PendingReply]:
    """What the notification email of each of these replies shows (replies to a staff
    member's number, keywords aside), oldest first."""
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
                staff_name=_name(s_first, s_pref, s_last, staff_sis),
                staff_email=s_email,
                student_sis_id=st_sis,
                student_name=_name(st_first, st_pref, st_last, st_sis) if st_sis else None,
                original_body=o_body,
                original_sent_at=o_sent,
            )
        )
    return pending


# --- delivery status --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SentSms:
    """An outbound SMS still in ``sent``: Twilio has not told us how it ended."""

    id: int
    provider_sid: str
    to_addr: str | None
    from_addr: str | None


def sms_awaiting_status(*, session: Session, since: datetime, limit: int) -> list[SentSms]:
    """At most ``limit`` SMS sent since ``since`` still in ``sent``, least recently checked
    first (each check touches ``updated_at``, so a backlog is worked through in turn)."""
    rows = session.execute(
        select(message_t.c.id, message_t.c.provider_sid, message_t.c.to_addr, message_t.c.from_addr)
        .where(
            message_t.c.channel == "sms",
            message_t.c.status == "sent",
            message_t.c.provider_sid.is_not(None),
            message_t.c.sent_at >= since,
        )
        .order_by(message_t.c.updated_at, message_t.c.id)
        .limit(limit)
    ).all()
    return [SentSms(*r) for r in rows]


# --- conversations ---------------------------------------------------------------------


def student_numbers(*, session: Session, person_id: int) -> set[str]:
    """Every E.164 stored for a person: the chosen SMS number and all phone rows."""
    numbers = set(
        session.execute(
            select(phone_t.c.e164).where(
                phone_t.c.person_id == person_id, phone_t.c.e164.is_not(None)
            )
        ).scalars()
    )
    chosen = session.execute(select(person_t.c.sms_e164).where(person_t.c.id == person_id)).scalar()
    if chosen:
        numbers.add(str(chosen))
    return numbers


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


def mark_read(
    *, session: Session, staff_person_id: int, student_person_id: int, now: datetime
) -> int:
    """Mark the student's unread replies to this staff member as read; returns how many."""
    return int(
        session.execute(
            update(inbound_t)
            .where(
                inbound_t.c.staff_person_id == staff_person_id,
                inbound_t.c.person_id == student_person_id,
                inbound_t.c.keyword == "none",
                inbound_t.c.read_at.is_(None),
            )
            .values(read_at=now)
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
            "last_reply_at": self.last_reply_at.isoformat(),
            "last_reply": self.last_reply,
        }


def inbox(
    *,
    session: Session,
    staff_person_id: int | None = None,
    unread_only: bool = False,
    limit: int = 100,
) -> list[Conversation]:
    """Conversations with replies (keywords aside), the most recent reply first.

    A conversation is (staff member, student); replies from an unknown number form one
    conversation per number.
    """
    unknown_key = case((inbound_t.c.person_id.is_(None), inbound_t.c.from_e164), else_="")
    unread = func.sum(case((inbound_t.c.read_at.is_(None), 1), else_=0))
    flagged = func.sum(case((inbound_t.c.flagged_phrase.is_not(None), 1), else_=0))
    stmt = (
        select(
            inbound_t.c.staff_person_id,
            inbound_t.c.person_id,
            unknown_key.label("unknown"),
            func.count().label("replies"),
            unread.label("unread"),
            flagged.label("flagged"),
            func.max(inbound_t.c.id).label("last_id"),
        )
        .where(inbound_t.c.keyword == "none")
        .group_by(inbound_t.c.staff_person_id, inbound_t.c.person_id, unknown_key)
        .order_by(func.max(inbound_t.c.received_at).desc(), func.max(inbound_t.c.id).desc())
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
                inbound_t.c.id, inbound_t.c.body, inbound_t.c.received_at, inbound_t.c.from_e164
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
                staff_name=_name(
                    staff_row.first_name,
                    staff_row.preferred_name,
                    staff_row.last_name,
                    staff_row.sis_id,
                )
                if staff_row
                else None,
                student_sis_id=student_row.sis_id if student_row else None,
                student_name=_name(
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
                last_reply_at=latest.received_at,
                last_reply=latest.body,
            )
        )
    return conversations


# --- consent administration -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ConsentTarget:
    """What ``NUMBER_OR_ID`` named: a person's numbers, or one number."""

    numbers: list[str]
    person_sis_id: str | None = None
    person_name: str | None = None


def find_person(*, session: Session, sis_id: str) -> Person | None:
    """The person (student or staff) with this SIS id."""
    return session.execute(
        select(Person).where(Person.sis_id == sis_id)  # type: ignore[arg-type]
    ).scalar_one_or_none()


def consent_target(*, session: Session, number_or_id: str, e164: str | None) -> ConsentTarget:
    """Resolve ``NUMBER_OR_ID``: a person's SIS id (all their numbers) or a parsed number.

    ``e164`` is the caller's parse of the text as a phone number (None if it is not one);
    an SIS id wins when both could apply.
    """
    person = find_person(session=session, sis_id=number_or_id.strip())
    if person is not None and person.id is not None:
        return ConsentTarget(
            sorted(student_numbers(session=session, person_id=person.id)),
            person.sis_id,
            _name(person.first_name, person.preferred_name, person.last_name, person.sis_id),
        )
    if e164 is None:
        return ConsentTarget([])
    owner = people_by_number(session=session, numbers=[e164]).get(e164)
    row = session.get(Person, owner) if owner is not None else None
    if row is None:
        return ConsentTarget([e164])
    return ConsentTarget(
        [e164], row.sis_id, _name(row.first_name, row.preferred_name, row.last_name, row.sis_id)
    )


def current_consents(*, session: Session, numbers: Sequence[str]) -> list[Consent]:
    """The current consent rows (every scope) of ``numbers``."""
    if not numbers:
        return []
    return list(
        session.execute(
            select(Consent)
            .where(Consent.e164.in_(list(numbers)))  # type: ignore[attr-defined]
            .order_by(Consent.e164, Consent.sender_e164)
        ).scalars()
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
    return session.execute(
        select(Consent).where(
            and_(Consent.e164 == e164, Consent.sender_e164 == INSTITUTION)  # type: ignore[arg-type]
        )
    ).scalar_one_or_none()


__all__ = [
    "THREAD_SLACK",
    "ConsentTarget",
    "Conversation",
    "Outbound",
    "PendingReply",
    "SentSms",
    "acquire_lease",
    "answered_message",
    "consent_target",
    "consent_trail",
    "conversation_exists",
    "current_consents",
    "find_person",
    "inbox",
    "insert_inbound",
    "institution_consent",
    "known_sids",
    "lease_holder",
    "mark_notified",
    "mark_read",
    "outbound_threads",
    "people_by_number",
    "read_cursor",
    "release_lease",
    "replies_to_notify",
    "resolve_review",
    "sender_owners",
    "sms_awaiting_status",
    "student_numbers",
    "write_cursor",
]
