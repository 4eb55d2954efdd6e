"""Did the nudge work? A campaign's outcomes and each staff member's answering, from the
stored messages (issue 15).

**A campaign's figures** (:func:`campaign_stats`) are over its *recipients*: its messages of
the campaign's own kind (``campaign``; ``reply`` for a one-student reply campaign), held-out
students excluded (they are counted apart, ``held_out``). Opt-in notices are not messages of
the campaign's kind and count nowhere here.

**Which of a student's texts answer a campaign** (the attribution rule). An inbound message
from a recipient counts for the campaign when either

1. it is threaded to the recipient's message of this campaign (``in_reply_to_id``: the poll
   threads a reply to the last text the staff number sent the student), or
2. it came to the campaign's sender (``staff_person_id``: their number, or their mailbox for
   an answer by email), no earlier than the recipient's message was sent (``sent_at``), and
   before the next *campaign* message (kind ``campaign``, from any later campaign of the same
   sender) was sent to that student. Staff replies in between do not end the window: a
   student's second text after a conversation with their advisor still answers the campaign
   that started it.

A student's text may thus count for one campaign of each sender, never for two campaigns of
the same sender. **Replies** are the attributed texts that are not keywords (``keyword =
'none'``: STOP, START and HELP are not replies); **opt-outs** the attributed STOPs
(``keyword = 'stop'``, every spelling the poll recognises). Both are counted per student, so
a student who texted five times is one replier.

**A staff member's answering** (:func:`staff_stats`): a student's reply (a non-keyword text to
the staff member's number or mailbox, from a known student) is *answered* by the staff
member's next outbound reply (a message of kind ``reply`` in a reply campaign they sent) to
that student, sent at or after it. Advising offices aim to answer within one business day:
by the same local time on the next weekday (Mon–Fri, the institution's time zone; public
holidays are not known to nudge) — :func:`business_day_deadline`.

Every figure comes from a few aggregate queries (no query per student), the same on SQLite
and PostgreSQL; medians are computed here from the one column of durations the database
returns. Read-only; the caller owns the session.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, case, func, literal, not_, or_, select
from sqlalchemy.orm import aliased
from sqlmodel import Session

from domain.names import display_name
from domain.outbox import Kind, OutChannel, Status
from models.config import load_config
from models.messaging import Campaign, InboundMessage, Message
from models.outbox import SENT_STATES
from models.people import Person
from models.types import utcnow

campaign_t = Campaign.__table__  # type: ignore[attr-defined]
message_t = Message.__table__  # type: ignore[attr-defined]
inbound_t = InboundMessage.__table__  # type: ignore[attr-defined]
person_t = Person.__table__  # type: ignore[attr-defined]

#: SMS handed to Twilio: the denominator of the delivery rate.
HANDED_STATES = SENT_STATES
#: SMS that did not reach the phone, by error code (``failed_by_code``).
FAILED_STATES = (Status.FAILED.value, Status.UNDELIVERED.value)
#: The key of failures without an error code.
NO_CODE = "none"
#: Inbound ``keyword`` of an ordinary reply (not STOP, START or HELP).
NO_KEYWORD = "none"
STOP = "stop"


def pct(part: int, whole: int) -> float | None:
    """``part`` as a percentage of ``whole``, to one decimal; None when ``whole`` is 0."""
    return round(100.0 * part / whole, 1) if whole else None


def minutes_between(start: datetime, end: datetime) -> float:
    """Minutes from ``start`` to ``end``, never negative (a reply dated to the whole second
    may carry a time a moment earlier than the text it answers)."""
    return max(0.0, (end - start).total_seconds() / 60.0)


def median_minutes(values: Sequence[float]) -> float | None:
    """The median of ``values``, to 0.1 minute; None for none."""
    return round(statistics.median(values), 1) if values else None


# --- campaigns -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CampaignStats:
    """A campaign's outcomes. Percentages are to one decimal, None when their denominator is 0.

    * ``recipients``: students messaged (the campaign's messages, held-out students excluded,
      whatever became of them); ``held_out``: students kept out on purpose;
      ``sms`` / ``email`` / ``undeliverable``: recipients by the channel their message took
      (an SMS that fell back to email counts as email; ``undeliverable``: neither was
      possible).
    * ``sms_handed``: SMS handed to Twilio (sent, delivered, undelivered or failed);
      ``delivered_pct`` = delivered SMS / ``sms_handed`` (emails are not in it: SMTP cannot
      say whether an email was read or delivered).
    * ``failed_by_code``: failed and undelivered SMS by Twilio error code (``"30003"``), those
      without a code under ``"none"``.
    * ``replied`` / ``reply_pct``: recipients with at least one reply attributed to the
      campaign (module docstring), over ``recipients``; ``opted_out`` / ``opt_out_pct``: those
      with an attributed STOP, over ``recipients``.
    * ``median_reply_minutes``: over repliers, their first reply's time minus the time their
      message was sent; ``first_reply_within_1h_pct``: repliers whose first reply came within
      an hour, over repliers.
    """

    campaign_id: int
    kind: str
    status: str
    sender_person_id: int
    first_sent_at: datetime | None
    recipients: int
    held_out: int
    sms: int
    email: int
    undeliverable: int
    sms_handed: int
    delivered: int
    delivered_pct: float | None
    failed_by_code: dict[str, int]
    replied: int
    reply_pct: float | None
    opted_out: int
    opt_out_pct: float | None
    median_reply_minutes: float | None
    first_reply_within_1h_pct: float | None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (``first_sent_at`` as ISO 8601 UTC)."""
        data = asdict(self)
        data["first_sent_at"] = self.first_sent_at.isoformat() if self.first_sent_at else None
        return data


def campaign_stats(*, session: Session, campaign_id: int) -> CampaignStats:
    """The outcomes of one campaign (see :class:`CampaignStats` for each figure and the module
    docstring for which replies count); raises LookupError for an unknown campaign.

    Three queries: the campaign, its messages by channel, status and error code, and its
    repliers (one row per student who answered, with their first reply and whether they
    texted STOP).
    """
    head = session.execute(
        select(campaign_t.c.kind, campaign_t.c.status, campaign_t.c.sender_person_id).where(
            campaign_t.c.id == campaign_id
        )
    ).first()
    if head is None:
        raise LookupError(f"no campaign #{campaign_id}")
    kind = Kind.REPLY.value if head.kind == Kind.REPLY.value else Kind.CAMPAIGN.value
    breakdown = session.execute(
        select(
            message_t.c.channel,
            message_t.c.status,
            message_t.c.error_code,
            func.count(),
            func.min(message_t.c.sent_at),
        )
        .where(message_t.c.campaign_id == campaign_id, message_t.c.kind == kind)
        .group_by(message_t.c.channel, message_t.c.status, message_t.c.error_code)
    ).all()
    by_channel: Counter[str] = Counter()
    failed: Counter[str] = Counter()
    held_out = handed = delivered = 0
    first_sent: datetime | None = None
    for channel, status, code, count, sent in breakdown:
        if status == Status.HELD_OUT:
            held_out += count
            continue
        by_channel[channel] += count
        if sent is not None and (first_sent is None or sent < first_sent):
            first_sent = sent
        if channel != OutChannel.SMS:
            continue
        handed += count if status in HANDED_STATES else 0
        delivered += count if status == Status.DELIVERED else 0
        if status in FAILED_STATES:
            failed[NO_CODE if code is None else str(code)] += count
    recipients = sum(by_channel.values())
    repliers = _repliers(session, campaign_id, kind, int(head.sender_person_id))
    waits = [minutes_between(sent, first) for sent, first, _stop in repliers if first is not None]
    stopped = sum(1 for _sent, _first, stop in repliers if stop)
    return CampaignStats(
        campaign_id=campaign_id,
        kind=head.kind,
        status=head.status,
        sender_person_id=int(head.sender_person_id),
        first_sent_at=first_sent,
        recipients=recipients,
        held_out=held_out,
        sms=by_channel[OutChannel.SMS.value],
        email=by_channel[OutChannel.EMAIL.value],
        undeliverable=by_channel[OutChannel.NONE.value],
        sms_handed=handed,
        delivered=delivered,
        delivered_pct=pct(delivered, handed),
        failed_by_code=dict(sorted(failed.items())),
        replied=len(waits),
        reply_pct=pct(len(waits), recipients),
        opted_out=stopped,
        opt_out_pct=pct(stopped, recipients),
        median_reply_minutes=median_minutes(waits),
        first_reply_within_1h_pct=pct(sum(1 for w in waits if w <= 60), len(waits)),
    )


def _repliers(
    session: Session, campaign_id: int, kind: str, sender: int
) -> list[tuple[datetime, datetime | None, bool]]:
    """(message sent at, first attributed reply or None, texted STOP) of every recipient with
    at least one attributed inbound message: one query, grouped by student."""
    mine = (
        select(message_t.c.id, message_t.c.person_id, message_t.c.sent_at)
        .where(
            message_t.c.campaign_id == campaign_id,
            message_t.c.kind == kind,
            message_t.c.status != Status.HELD_OUT.value,
            message_t.c.sent_at.is_not(None),
            message_t.c.person_id.is_not(None),
        )
        .cte("mine")
    )
    later = aliased(message_t, name="later")
    later_campaign = aliased(campaign_t, name="later_campaign")
    # The same sender texted the student a newer campaign before this inbound arrived.
    superseded = (
        select(literal(1))
        .select_from(later.join(later_campaign, later_campaign.c.id == later.c.campaign_id))
        .where(
            later.c.person_id == mine.c.person_id,
            later.c.kind == Kind.CAMPAIGN.value,
            later.c.campaign_id != campaign_id,
            later_campaign.c.sender_person_id == sender,
            later.c.sent_at > mine.c.sent_at,
            later.c.sent_at <= inbound_t.c.received_at,
        )
        .exists()
    )
    attributed = or_(
        inbound_t.c.in_reply_to_id == mine.c.id,
        and_(
            inbound_t.c.staff_person_id == sender,
            inbound_t.c.received_at >= mine.c.sent_at,
            not_(superseded),
        ),
    )
    reply_at = case((inbound_t.c.keyword == NO_KEYWORD, inbound_t.c.received_at))
    stop = case((inbound_t.c.keyword == STOP, 1), else_=0)
    rows = session.execute(
        select(
            func.min(mine.c.sent_at),
            func.min(reply_at),
            func.max(stop),
        )
        .select_from(mine.join(inbound_t, inbound_t.c.person_id == mine.c.person_id))
        .where(attributed)
        .group_by(mine.c.person_id)
    ).all()
    return [(sent, first, bool(stopped)) for sent, first, stopped in rows]


def recent_campaign_ids(
    *, session: Session, since: datetime, until: datetime | None = None
) -> list[int]:
    """Campaigns of kind ``campaign`` whose first message was sent at or after ``since``
    (and before ``until``, when given), oldest first.

    Campaigns that finished before ``since`` are never read (their first send was earlier).
    """
    first = func.min(message_t.c.sent_at)
    stmt = (
        select(message_t.c.campaign_id)
        .select_from(message_t.join(campaign_t, campaign_t.c.id == message_t.c.campaign_id))
        .where(
            campaign_t.c.kind == Kind.CAMPAIGN.value,
            or_(campaign_t.c.finished_at.is_(None), campaign_t.c.finished_at >= since),
            message_t.c.sent_at.is_not(None),
        )
        .group_by(message_t.c.campaign_id)
        .having(first >= since)
        .order_by(first, message_t.c.campaign_id)
    )
    if until is not None:
        stmt = stmt.having(first < until)
    return [int(cid) for cid in session.execute(stmt).scalars()]


@dataclass(frozen=True, slots=True)
class CampaignLabel:
    """How a campaign is named in a digest: its sender and the start of its text."""

    campaign_id: int
    sender_sis_id: str
    sender_name: str
    template: str


def campaign_labels(*, session: Session, campaign_ids: Iterable[int]) -> dict[int, CampaignLabel]:
    """Sender and template of these campaigns, by id (one query)."""
    ids = sorted(set(campaign_ids))
    if not ids:
        return {}
    rows = session.execute(
        select(
            campaign_t.c.id,
            campaign_t.c.template,
            person_t.c.sis_id,
            person_t.c.first_name,
            person_t.c.preferred_name,
            person_t.c.last_name,
        )
        .join(person_t, person_t.c.id == campaign_t.c.sender_person_id)
        .where(campaign_t.c.id.in_(ids))
    ).all()
    return {
        int(r.id): CampaignLabel(
            campaign_id=int(r.id),
            sender_sis_id=r.sis_id,
            sender_name=display_name(r.first_name, r.preferred_name, r.last_name, r.sis_id),
            template=r.template,
        )
        for r in rows
    }


# --- staff ---------------------------------------------------------------------------------


def business_day_deadline(moment: datetime, zone: ZoneInfo | str) -> datetime:
    """When a reply received at ``moment`` should be answered by: the same local time on the
    next weekday (Monday to Friday) in ``zone``, in UTC. Friday's and the weekend's replies
    are due on Monday; public holidays are not known."""
    tz = ZoneInfo(zone) if isinstance(zone, str) else zone
    local = moment.astimezone(tz)
    day = local.date() + timedelta(days=1)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    due = datetime.combine(day, local.time().replace(tzinfo=None), tzinfo=tz)
    return due.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class StaffStats:
    """One staff member's texting and answering since a moment.

    * ``texts_sent``: SMS to students handed to Twilio (campaign texts and replies).
    * ``replies``: students' replies received (non-keyword texts and emails to the staff
      member's number or mailbox, from known students); ``students_replied``: how many
      students sent them.
    * ``answered`` / ``unanswered``: replies followed by the staff member's reply to that
      student, or not yet; ``median_answer_minutes``: over answered replies, from the reply
      to the answer.
    * ``answered_within_business_day_pct``: replies answered by
      :func:`business_day_deadline`, over the replies answered or already past it (a reply
      still within its business day and not answered yet is not counted either way);
      ``overdue``: replies not answered and past it.
    """

    person_id: int
    staff_id: str
    name: str
    texts_sent: int
    students_replied: int
    replies: int
    answered: int
    unanswered: int
    median_answer_minutes: float | None
    answered_within_business_day_pct: float | None
    overdue: int

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return asdict(self)


def staff_stats(
    *, session: Session, since: datetime, now: datetime | None = None
) -> list[StaffStats]:
    """Every staff member who texted students or received their replies since ``since``
    (up to ``now``, default the current time), by SIS id. See :class:`StaffStats`.

    Three queries: texts sent per sender (GROUP BY), the replies received with the time of
    each one's answer (one row per reply), the staff members' names.
    """
    now = now or utcnow()
    zone = ZoneInfo(load_config(session=session).timezone)
    sent_rows = session.execute(
        select(campaign_t.c.sender_person_id, func.count())
        .select_from(message_t.join(campaign_t, campaign_t.c.id == message_t.c.campaign_id))
        .where(
            message_t.c.kind.in_([Kind.CAMPAIGN.value, Kind.REPLY.value]),
            message_t.c.channel == OutChannel.SMS.value,
            message_t.c.status.in_(HANDED_STATES),
            message_t.c.sent_at >= since,
            message_t.c.sent_at < now,
        )
        .group_by(campaign_t.c.sender_person_id)
    ).all()
    texts = {int(staff): int(n) for staff, n in sent_rows}
    answer = aliased(message_t, name="answer")
    answer_campaign = aliased(campaign_t, name="answer_campaign")
    answered_at = (
        select(func.min(answer.c.sent_at))
        .select_from(answer.join(answer_campaign, answer_campaign.c.id == answer.c.campaign_id))
        .where(
            answer.c.person_id == inbound_t.c.person_id,
            answer.c.kind == Kind.REPLY.value,
            answer_campaign.c.sender_person_id == inbound_t.c.staff_person_id,
            answer.c.sent_at >= inbound_t.c.received_at,
            answer.c.sent_at < now,
        )
        .scalar_subquery()
    )
    replies = session.execute(
        select(
            inbound_t.c.staff_person_id,
            inbound_t.c.person_id,
            inbound_t.c.received_at,
            answered_at,
        ).where(
            inbound_t.c.keyword == NO_KEYWORD,
            inbound_t.c.staff_person_id.is_not(None),
            inbound_t.c.person_id.is_not(None),
            inbound_t.c.received_at >= since,
            inbound_t.c.received_at < now,
        )
    ).all()
    per_staff: dict[int, list[tuple[int, datetime, datetime | None]]] = {}
    for staff, student, received, answered in replies:
        per_staff.setdefault(int(staff), []).append((int(student), received, answered))
    people = _names(session, set(texts) | set(per_staff))
    found: list[StaffStats] = []
    for staff_id in set(texts) | set(per_staff):
        if staff_id not in people:
            continue
        sis_id, name = people[staff_id]
        rows = per_staff.get(staff_id, [])
        waits = sorted(minutes_between(r, a) for _s, r, a in rows if a is not None)
        on_time = judged = overdue = 0
        for _student, received, answered in rows:
            due = business_day_deadline(received, zone)
            if answered is not None:
                judged += 1
                on_time += answered <= due
            elif due < now:
                judged += 1
                overdue += 1
        found.append(
            StaffStats(
                person_id=staff_id,
                staff_id=sis_id,
                name=name,
                texts_sent=texts.get(staff_id, 0),
                students_replied=len({student for student, _r, _a in rows}),
                replies=len(rows),
                answered=len(waits),
                unanswered=len(rows) - len(waits),
                median_answer_minutes=median_minutes(waits),
                answered_within_business_day_pct=pct(on_time, judged),
                overdue=overdue,
            )
        )
    return sorted(found, key=lambda s: s.staff_id)


def _names(session: Session, ids: set[int]) -> dict[int, tuple[str, str]]:
    """(SIS id, display name) of these staff members."""
    if not ids:
        return {}
    rows = session.execute(
        select(
            person_t.c.id,
            person_t.c.sis_id,
            person_t.c.first_name,
            person_t.c.preferred_name,
            person_t.c.last_name,
        ).where(person_t.c.id.in_(sorted(ids)), person_t.c.role == "staff")
    )
    return {
        int(r.id): (r.sis_id, display_name(r.first_name, r.preferred_name, r.last_name, r.sis_id))
        for r in rows
    }


__all__ = [
    "CampaignLabel",
    "CampaignStats",
    "StaffStats",
    "business_day_deadline",
    "campaign_labels",
    "campaign_stats",
    "median_minutes",
    "pct",
    "recent_campaign_ids",
    "staff_stats",
]
