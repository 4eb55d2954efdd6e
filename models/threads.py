"""A whole conversation with one student, as staff read it: every text and email both ways.

Outbound are the messages to the student that belong to a conversation: campaign texts and
emails (an SMS that fell back to email shows as the email it became), staff replies,
opt-in notices and nudge's own answers to the student's keywords. Staff notifications and
alerts are never part of a thread. Messages that could go nowhere (channel ``none``: no
number nudge may text and no email address) are shown, skipped with their reason: the staff
member should see their text never reached the student. Housekeeping skips (an opt-in
notice that was ``not_needed`` or ``already_introduced``) and ``held_out`` rows are not.

Inbound are the student's texts and emails (``person_id`` = the student), keywords
included: a STOP shows in the thread where it was sent.

Keyword-only functions over the caller's session; they only read. Three queries per call
(outbound, inbound, the staff members' names), whatever the length of the thread.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import aliased
from sqlmodel import Session

from domain.names import display_name
from domain.outbox import Kind, OutChannel, Status
from models.bulk import chunked
from models.messaging import Campaign, InboundMessage, Message
from models.people import Person

inbound_t = InboundMessage.__table__  # type: ignore[attr-defined]
message_t = Message.__table__  # type: ignore[attr-defined]
campaign_t = Campaign.__table__  # type: ignore[attr-defined]
person_t = Person.__table__  # type: ignore[attr-defined]

#: Outbound kinds that are part of a conversation with the student.
CONVERSATION_KINDS = (
    Kind.CAMPAIGN.value,
    Kind.REPLY.value,
    Kind.OPT_IN_NOTICE.value,
    Kind.KEYWORD_REPLY.value,
    Kind.URGENT_REPLY.value,
)
#: Skip reasons that are housekeeping, not news for the reader (an opt-in notice dropped).
QUIET_SKIPS = ("not_needed", "already_introduced")
#: Outbound states in which nothing went wrong: their ``reason`` (how the message was
#: routed) is not shown as an error.
_FINE = frozenset({Status.PLANNED, Status.DEFERRED, Status.SENDING, Status.SENT, Status.DELIVERED})


@dataclass(frozen=True, slots=True)
class ThreadItem:
    """One message of a conversation, either way.

    ``status``: the outbound message's status, ``received`` for the student's messages.
    ``at``: when it was sent (or, not sent yet, created) or received, in UTC.
    ``error``: the provider's error code and message, else (when the message did not go
    normally) the reason it was skipped, refused or sent by email instead; else None.
    ``staff_*``: the campaign's sender (outbound) or the staff member whose number (or
    conversation) received it (inbound); None when there is none.
    ``kind``: the outbound :class:`domain.outbox.Kind`; inbound, ``reply`` or the keyword
    (``stop``, ``start``, ``help``).
    ``fallback``: an SMS that became this email.
    """

    id: int
    direction: str  # out | in
    channel: str  # sms | email | none
    status: str
    at: datetime
    body: str
    error: str | None
    staff_person_id: int | None
    staff_sis_id: str | None
    staff_name: str | None
    kind: str
    subject: str | None = None
    fallback: bool = False

    def as_dict(self, tz: ZoneInfo | str) -> dict[str, Any]:
        """JSON-ready, ``at`` as ISO 8601 with the offset in ``tz`` (the institution's zone)."""
        zone = ZoneInfo(tz) if isinstance(tz, str) else tz
        return {
            "id": self.id,
            "direction": self.direction,
            "channel": self.channel,
            "status": self.status,
            "at": self.at.astimezone(zone).isoformat(),
            "body": self.body,
            "error": self.error,
            "staff_id": self.staff_sis_id,
            "staff_name": self.staff_name,
            "kind": self.kind,
            "subject": self.subject,
            "fallback": self.fallback,
        }


def thread(
    *,
    session: Session,
    student_person_id: int,
    staff_person_id: int | None = None,
    limit: int | None = None,
    before: datetime | None = None,
) -> list[ThreadItem]:
    """The conversation with one student, oldest first.

    ``staff_person_id``: only that staff member's side (the campaigns and replies they sent,
    nudge's answers from their number, what the student sent to their number).
    ``limit``: only the last ``limit`` messages. ``before``: only messages strictly earlier.
    """
    found = _items(
        session=session,
        students=[student_person_id],
        staff_person_id=staff_person_id,
        before=before,
        limit=limit,
    )
    items = [item for _student, item in found]
    return items[-limit:] if limit is not None else items


def threads_before(
    *,
    session: Session,
    conversations: Sequence[tuple[int, int, datetime]],
    limit: int,
) -> dict[tuple[int, int], list[ThreadItem]]:
    """For each (student, staff member, moment), the last ``limit`` messages of their
    conversation strictly before that moment, oldest first, keyed by (student, staff member).

    What :func:`thread` gives for one conversation, for many at once in three queries (the
    reply notifications of one poll quote each conversation's history)."""
    if not conversations or limit <= 0:
        return {}
    latest = max(moment for _student, _staff, moment in conversations)
    found = _items(
        session=session,
        students=sorted({student for student, _staff, _moment in conversations}),
        staff_person_id=None,
        before=latest,
        limit=None,
    )
    by_pair: dict[tuple[int, int], list[ThreadItem]] = {}
    wanted = {(student, staff): moment for student, staff, moment in conversations}
    for student, item in found:
        if item.staff_person_id is None:
            continue
        key = (student, item.staff_person_id)
        moment = wanted.get(key)
        if moment is not None and item.at < moment:
            by_pair.setdefault(key, []).append(item)
    return {key: by_pair.get(key, [])[-limit:] for key in wanted}


def _items(
    *,
    session: Session,
    students: Sequence[int],
    staff_person_id: int | None,
    before: datetime | None,
    limit: int | None,
) -> list[tuple[int, ThreadItem]]:
    """(student, item) of these students' threads, oldest first. ``limit`` is applied in SQL
    to each direction (so it is only meaningful for one student)."""
    out_rows: list[Any] = []
    in_rows: list[Any] = []
    for batch in chunked(list(students)):
        out_rows += _outbound(session, list(batch), staff_person_id, before, limit)
        in_rows += _inbound(session, list(batch), staff_person_id, before, limit)
    staff_ids = {r.staff_id for r in out_rows} | {r.staff_person_id for r in in_rows}
    names = _staff_names(session, {p for p in staff_ids if p is not None})
    found: list[tuple[int, int, ThreadItem]] = []  # (student, direction rank, item)
    for r in out_rows:
        staff = names.get(r.staff_id)
        extra = r.extra or {}
        found.append(
            (
                int(r.student_id),
                0,
                ThreadItem(
                    id=int(r.id),
                    direction="out",
                    channel=r.channel,
                    status=r.status,
                    at=r.sent_at or r.created_at,
                    body=r.body,
                    error=_error(r.status, r.reason, r.error_code, r.error_message),
                    staff_person_id=r.staff_id,
                    staff_sis_id=staff[0] if staff else None,
                    staff_name=staff[1] if staff else None,
                    kind=r.kind,
                    subject=r.subject if r.channel == OutChannel.EMAIL.value else None,
                    fallback=bool(extra.get("fallback")) if isinstance(extra, dict) else False,
                ),
            )
        )
    for r in in_rows:
        staff = names.get(r.staff_person_id)
        found.append(
            (
                int(r.person_id),
                1,
                ThreadItem(
                    id=int(r.id),
                    direction="in",
                    channel=r.channel or "sms",
                    status="received",
                    at=r.received_at,
                    body=r.body,
                    error=None,
                    staff_person_id=r.staff_person_id,
                    staff_sis_id=staff[0] if staff else None,
                    staff_name=staff[1] if staff else None,
                    kind="reply" if r.keyword in (None, "none") else r.keyword,
                ),
            )
        )
    found.sort(key=lambda f: (f[2].at, f[1], f[2].id))
    return [(student, item) for student, _rank, item in found]


def _outbound(
    session: Session,
    students: list[int],
    staff_person_id: int | None,
    before: datetime | None,
    limit: int | None,
) -> list[Any]:
    campaign = aliased(campaign_t, name="thread_campaign")
    origin = aliased(inbound_t, name="thread_origin")  # what a keyword answer answers
    staff_col = func.coalesce(campaign.c.sender_person_id, origin.c.staff_person_id)
    student_col = func.coalesce(message_t.c.person_id, origin.c.person_id)
    at_col = func.coalesce(message_t.c.sent_at, message_t.c.created_at)
    stmt = (
        select(
            message_t.c.id,
            message_t.c.kind,
            message_t.c.channel,
            message_t.c.status,
            message_t.c.reason,
            message_t.c.subject,
            message_t.c.body,
            message_t.c.error_code,
            message_t.c.error_message,
            message_t.c.sent_at,
            message_t.c.created_at,
            message_t.c.extra,
            staff_col.label("staff_id"),
            student_col.label("student_id"),
        )
        .select_from(
            message_t.outerjoin(campaign, campaign.c.id == message_t.c.campaign_id).outerjoin(
                origin,
                and_(
                    origin.c.id == message_t.c.inbound_id,
                    message_t.c.kind == Kind.KEYWORD_REPLY.value,
                ),
            )
        )
        .where(
            message_t.c.kind.in_(CONVERSATION_KINDS),
            or_(
                message_t.c.person_id.in_(students),
                and_(
                    message_t.c.person_id.is_(None),
                    message_t.c.kind == Kind.KEYWORD_REPLY.value,
                    origin.c.person_id.in_(students),
                ),
            ),
            message_t.c.status != Status.HELD_OUT.value,
            or_(
                message_t.c.status != Status.SKIPPED.value,
                message_t.c.reason.is_(None),
                message_t.c.reason.not_in(QUIET_SKIPS),
            ),
        )
    )
    if staff_person_id is not None:
        stmt = stmt.where(staff_col == staff_person_id)
    if before is not None:
        stmt = stmt.where(at_col < before)
    if limit is not None:
        stmt = stmt.order_by(at_col.desc(), message_t.c.id.desc()).limit(limit)
    return list(session.execute(stmt).all())


def _inbound(
    session: Session,
    students: list[int],
    staff_person_id: int | None,
    before: datetime | None,
    limit: int | None,
) -> list[Any]:
    stmt = select(
        inbound_t.c.id,
        inbound_t.c.channel,
        inbound_t.c.body,
        inbound_t.c.received_at,
        inbound_t.c.person_id,
        inbound_t.c.staff_person_id,
        inbound_t.c.keyword,
    ).where(inbound_t.c.person_id.in_(students))
    if staff_person_id is not None:
        stmt = stmt.where(inbound_t.c.staff_person_id == staff_person_id)
    if before is not None:
        stmt = stmt.where(inbound_t.c.received_at < before)
    if limit is not None:
        stmt = stmt.order_by(inbound_t.c.received_at.desc(), inbound_t.c.id.desc()).limit(limit)
    return list(session.execute(stmt).all())


def _staff_names(session: Session, ids: set[int]) -> dict[int, tuple[str, str]]:
    """(SIS id, display name) of these people."""
    names: dict[int, tuple[str, str]] = {}
    for batch in chunked(sorted(ids)):
        for r in session.execute(
            select(
                person_t.c.id,
                person_t.c.sis_id,
                person_t.c.first_name,
                person_t.c.preferred_name,
                person_t.c.last_name,
            ).where(person_t.c.id.in_(list(batch)))
        ):
            names[int(r.id)] = (
                r.sis_id,
                display_name(r.first_name, r.preferred_name, r.last_name, r.sis_id),
            )
    return names


def _error(status: str, reason: str | None, code: int | None, message: str | None) -> str | None:
    """The provider's error (code and message), else why the message did not go normally."""
    told = " ".join(str(p) for p in (code, message) if p not in (None, ""))
    if told:
        return told
    if reason and status not in _FINE:
        return reason
    return None


__all__ = ["CONVERSATION_KINDS", "QUIET_SKIPS", "ThreadItem", "thread", "threads_before"]
