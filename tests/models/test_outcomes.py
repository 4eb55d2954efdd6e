"""Outcomes per campaign and per staff member (models/outcomes.py), from rows stored with
exact timestamps, on SQLite and PostgreSQL: which replies count for which campaign (threaded,
to the sender within the window, cut by the sender's next campaign, never another sender's),
delivery by error code, medians, and answering within one business day."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlmodel import Session

from models.messaging import Campaign, InboundMessage, Message
from models.outcomes import (
    business_day_deadline,
    campaign_labels,
    campaign_stats,
    recent_campaign_ids,
    staff_stats,
)
from models.people import Person

T0 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)  # Monday 10:00 EST
_sids = itertools.count(1)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def person(s: Session, sis_id: str, role: str = "student", first: str | None = None) -> int:
    row = Person(sis_id=sis_id, role=role, first_name=first or sis_id, last_name="Test")
    s.add(row)
    s.flush()
    assert row.id is not None
    return row.id


def campaign(s: Session, sender: int, kind: str = "campaign", template: str = "Hi") -> int:
    row = Campaign(sender_person_id=sender, template=template, status="completed", kind=kind)
    s.add(row)
    s.flush()
    assert row.id is not None
    return row.id


def out(
    s: Session,
    campaign_id: int,
    student: int,
    *,
    status: str = "delivered",
    channel: str = "sms",
    kind: str = "campaign",
    sent_at: datetime | None = T0,
    error_code: int | None = None,
) -> int:
    row = Message(
        campaign_id=campaign_id,
        person_id=student,
        kind=kind,
        channel=channel,
        status=status,
        body="Hi",
        sent_at=sent_at,
        error_code=error_code,
        created_at=sent_at or T0,
    )
    s.add(row)
    s.flush()
    assert row.id is not None
    return row.id


def reply(s: Session, staff: int, student: int, minutes: float, **kw: Any) -> int:
    """The staff member's reply to the student (a reply campaign), sent at T0 + minutes."""
    return out(s, campaign(s, staff, "reply"), student, kind="reply", sent_at=at(minutes), **kw)


def inbound(
    s: Session,
    student: int | None,
    staff: int | None,
    minutes: float,
    *,
    keyword: str = "none",
    to: int | None = None,
    channel: str = "sms",
) -> int:
    row = InboundMessage(
        provider_sid=f"SM{next(_sids):032d}",
        from_e164="+12125550100",
        to_e164="+12125559999",
        body="STOP" if keyword == "stop" else "ok",
        person_id=student,
        staff_person_id=staff,
        in_reply_to_id=to,
        keyword=keyword,
        channel=channel,
        received_at=at(minutes),
    )
    s.add(row)
    s.flush()
    assert row.id is not None
    return row.id


# --- campaigns -----------------------------------------------------------------------------


@dataclass
class Outreach:
    first: int  # Ann's campaign to S1..S7
    second: int  # Ann's later campaign to S4 only
    other: int  # Bo's campaign to S4
    reply: int  # Ann's reply campaign to S2


def outreach(s: Session) -> Outreach:
    """Ann (A1) texts S1..S6 at T0 (S7 held out); what became of each, and what they sent.

    S1  SMS delivered; replies threaded at +10 and +20 min        -> replier, 10 min
    S2  SMS delivered (sent +1); texts Ann unthreaded at +31; Ann replies at +40; S2's STOP
        at +50 is threaded to that reply                           -> replier 30 min, opt-out
    S3  SMS undelivered 30003; STOP threaded at +5                 -> opt-out only
    S4  SMS failed without a code; texts Bo (another sender) at +3; gets Ann's *second*
        campaign at +120 and texts Ann at +180                     -> not a replier of the first
    S5  SMS fell back to email; answers Ann by email at +90         -> replier, 90 min
    S6  nothing could go (no SMS, no email); texts Ann at +5        -> not a recipient reached
    S7  held out; texts Ann at +5                                   -> not a recipient
    """
    ann, bo = person(s, "A1", "staff", "Ann"), person(s, "B2", "staff", "Bo")
    s1, s2, s3, s4, s5, s6, s7 = (person(s, f"S{i}") for i in range(1, 8))
    first = campaign(s, ann, template="Forms are due Friday")
    out(s, first, s1, kind="opt_in_notice")  # never counted
    m1 = out(s, first, s1)
    out(s, first, s2, sent_at=at(1))
    m3 = out(s, first, s3, status="undelivered", error_code=30003)
    out(s, first, s4, status="failed")
    out(s, first, s5, status="sent", channel="email")
    out(s, first, s6, status="skipped", channel="none", sent_at=None)
    out(s, first, s7, status="held_out", sent_at=None)
    inbound(s, s1, ann, 10, to=m1)
    inbound(s, s1, ann, 20, to=m1)
    inbound(s, s2, ann, 31)
    answer = reply(s, ann, s2, 40)
    inbound(s, s2, ann, 50, keyword="stop", to=answer)
    inbound(s, s3, ann, 5, keyword="stop", to=m3)
    other = campaign(s, bo)
    inbound(s, s4, bo, 3, to=out(s, other, s4, sent_at=at(-60)))
    second = campaign(s, ann, template="Reminder")
    inbound(s, s4, ann, 180, to=out(s, second, s4, sent_at=at(120)))
    inbound(s, s5, ann, 90, channel="email")
    inbound(s, s6, ann, 5)
    inbound(s, s7, ann, 5)
    inbound(s, None, ann, 6)  # an unknown number
    s.commit()
    reply_campaign = s.get(Message, answer)
    assert reply_campaign is not None and reply_campaign.campaign_id is not None
    return Outreach(first, second, other, reply_campaign.campaign_id)


def test_campaign_stats_count_each_outcome_once_by_the_attribution_rule(session: Session) -> None:
    world = outreach(session)
    stats = campaign_stats(session=session, campaign_id=world.first)
    assert stats.as_dict() == {
        "campaign_id": world.first,
        "kind": "campaign",
        "status": "completed",
        "sender_person_id": stats.sender_person_id,
        "first_sent_at": T0.isoformat(),
        "recipients": 6,
        "held_out": 1,
        "sms": 4,
        "email": 1,
        "undeliverable": 1,
        "sms_handed": 4,
        "delivered": 2,
        "delivered_pct": 50.0,
        "failed_by_code": {"30003": 1, "none": 1},
        "replied": 3,  # S1, S2, S5
        "reply_pct": 50.0,
        "opted_out": 2,  # S2 (after Ann's reply, still this campaign's window), S3
        "opt_out_pct": 33.3,
        "median_reply_minutes": 30.0,  # 10, 30, 90
        "first_reply_within_1h_pct": 66.7,
    }


def test_the_next_campaign_of_the_same_sender_takes_the_later_replies(session: Session) -> None:
    world = outreach(session)
    second = campaign_stats(session=session, campaign_id=world.second)
    assert (second.recipients, second.replied, second.median_reply_minutes) == (1, 1, 60.0)
    assert (second.reply_pct, second.opt_out_pct, second.first_reply_within_1h_pct) == (
        100.0,
        0.0,
        100.0,
    )
    other = campaign_stats(session=session, campaign_id=world.other)
    assert (other.recipients, other.replied, other.median_reply_minutes) == (1, 1, 63.0)
    # A reply campaign's figures are about its reply messages.
    answered = campaign_stats(session=session, campaign_id=world.reply)
    assert (answered.kind, answered.recipients, answered.replied, answered.opted_out) == (
        "reply",
        1,
        0,
        1,
    )


def test_a_campaign_nobody_answered_has_no_median_and_an_unknown_one_is_refused(
    session: Session,
) -> None:
    ann, s1 = person(session, "A1", "staff"), person(session, "S1")
    quiet = campaign(session, ann)
    out(session, quiet, s1, status="sent")
    empty = campaign(session, ann)
    session.commit()
    stats = campaign_stats(session=session, campaign_id=quiet)
    assert (stats.replied, stats.reply_pct, stats.median_reply_minutes) == (0, 0.0, None)
    assert (stats.delivered_pct, stats.first_reply_within_1h_pct) == (0.0, None)
    nothing = campaign_stats(session=session, campaign_id=empty)
    assert (nothing.recipients, nothing.reply_pct, nothing.delivered_pct) == (0, None, None)
    assert nothing.first_sent_at is None
    with pytest.raises(LookupError, match="no campaign #999"):
        campaign_stats(session=session, campaign_id=999)


def test_recent_campaigns_are_those_first_sent_in_the_window(session: Session) -> None:
    world = outreach(session)
    # Bo's campaign went first (T0 - 60); reply campaigns are never listed.
    assert recent_campaign_ids(session=session, since=at(-120)) == [
        world.other,
        world.first,
        world.second,
    ]
    assert recent_campaign_ids(session=session, since=at(-1)) == [world.first, world.second]
    assert recent_campaign_ids(session=session, since=at(-1), until=at(60)) == [world.first]
    assert recent_campaign_ids(session=session, since=at(121)) == []
    labels = campaign_labels(session=session, campaign_ids=[world.first, world.other])
    assert (labels[world.first].sender_sis_id, labels[world.first].template) == (
        "A1",
        "Forms are due Friday",
    )
    assert labels[world.other].sender_name == "Bo Test"


# --- staff ---------------------------------------------------------------------------------


def test_business_day_deadline_is_the_same_local_time_next_weekday() -> None:
    ny = "America/New_York"
    monday = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)  # 10:00 EST
    assert business_day_deadline(monday, ny) == monday + timedelta(days=1)
    friday = datetime(2026, 2, 27, 21, 0, tzinfo=UTC)  # Fri 16:00 EST -> Mon 16:00 EST
    assert business_day_deadline(friday, ny) == friday + timedelta(days=3)
    # Saturday 10:00 EST -> Monday 10:00 EDT (clocks went forward on Sunday 8 March).
    saturday = datetime(2026, 3, 7, 15, 0, tzinfo=UTC)
    assert business_day_deadline(saturday, ny) == datetime(2026, 3, 9, 14, 0, tzinfo=UTC)
    # Thursday 23:30 EST is already Friday in UTC: the local day decides (due Fri 23:30).
    thursday_night = datetime(2026, 3, 6, 4, 30, tzinfo=UTC)
    assert business_day_deadline(thursday_night, ny) == datetime(2026, 3, 7, 4, 30, tzinfo=UTC)


def test_staff_stats_measure_answers_within_a_business_day(session: Session) -> None:
    """Ann texts S1-S3 at T0 (S4 by email); Bo answers S1 within 15 minutes.

    S1 -> Ann at +10 and +20, Ann answers at +40           two answered: 30 and 20 min
    S2 -> Ann at +60, Ann answers two days later (Wed)      answered, after its deadline
    S3 -> Ann at +120, no answer; a STOP (not a reply)       overdue by "now" (Thursday)
    S4 -> Ann by email an hour before "now", no answer      unanswered, still within its day
    S1 -> Bo at +5, Bo answers at +20                       answered in 15 min
    """
    ann, bo = person(session, "A1", "staff", "Ann"), person(session, "B2", "staff", "Bo")
    person(session, "C3", "staff", "Cy")  # texted nobody, heard from nobody: not listed
    s1, s2, s3, s4 = (person(session, f"S{i}") for i in range(1, 5))
    texts = campaign(session, ann)
    for student in (s1, s2, s3):
        out(session, texts, student)
    out(session, texts, s4, channel="email", status="sent")
    out(session, texts, s4, kind="opt_in_notice")  # not a text to count
    now = at(3 * 24 * 60)
    inbound(session, s1, ann, -10 * 24 * 60)  # before the window
    inbound(session, s1, ann, 10)
    inbound(session, s1, ann, 20)
    reply(session, ann, s1, 40)
    inbound(session, s2, ann, 60)
    reply(session, ann, s2, 60 + 2 * 24 * 60)
    inbound(session, s3, ann, 120)
    inbound(session, s3, ann, 121, keyword="stop")
    inbound(session, s4, ann, 3 * 24 * 60 - 60, channel="email")
    inbound(session, None, ann, 30)  # an unknown number: nobody to answer
    inbound(session, s1, bo, 5)
    reply(session, bo, s1, 20)
    reply(session, bo, s2, 4 * 24 * 60)  # after "now": not counted
    session.commit()
    stats = staff_stats(session=session, since=at(-24 * 60), now=now)
    assert [s.as_dict() for s in stats] == [
        {
            "person_id": ann,
            "staff_id": "A1",
            "name": "Ann Test",
            "texts_sent": 5,  # three campaign texts, two replies
            "students_replied": 4,
            "replies": 5,
            "answered": 3,
            "unanswered": 2,
            "median_answer_minutes": 30.0,  # 20, 30, 2880
            "answered_within_business_day_pct": 50.0,  # S1 twice on time; S2 late, S3 overdue
            "overdue": 1,
        },
        {
            "person_id": bo,
            "staff_id": "B2",
            "name": "Bo Test",
            "texts_sent": 1,
            "students_replied": 1,
            "replies": 1,
            "answered": 1,
            "unanswered": 0,
            "median_answer_minutes": 15.0,
            "answered_within_business_day_pct": 100.0,
            "overdue": 0,
        },
    ]
    assert staff_stats(session=session, since=now, now=now + timedelta(hours=1)) == []
