"""A whole conversation (models/threads.py), linking and marking replies read
(models/conversations.py) and the history the reply notification quotes (models/notifications
.py, tasks/notify.py), on SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session, select

from models.conversations import inbox, link_sender, mark_all_read, mark_read, mark_read_from
from models.messaging import Campaign, InboundMessage, Message, SenderNumber
from models.notifications import replies_to_notify
from models.people import Person, PhoneNumber
from models.threads import thread, threads_before
from tasks.notify import notification_rows, notification_text

T0 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)  # 10:00 EST
NY = ZoneInfo("America/New_York")
ANA = "+12125550101"
ANN_NUMBER = "+12125559991"
BO_NUMBER = "+12125559992"
UNKNOWN = "+12125550199"


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


@dataclass
class World:
    """Who is who (person ids) and the ids of the messages of the thread."""

    ann: int
    bo: int
    ana: int
    other: int
    ids: dict[str, int]


def _person(s: Session, sis_id: str, role: str, first: str, last: str, **kw: Any) -> int:
    row = Person(sis_id=sis_id, role=role, first_name=first, last_name=last, **kw)
    s.add(row)
    s.flush()
    assert row.id is not None
    return row.id


def _campaign(s: Session, sender: int, kind: str = "campaign") -> int:
    row = Campaign(sender_person_id=sender, template="x", status="completed", kind=kind)
    s.add(row)
    s.flush()
    assert row.id is not None
    return row.id


def _out(s: Session, **kw: Any) -> int:
    kw.setdefault("created_at", kw.get("sent_at") or T0)
    row = Message(**kw)
    s.add(row)
    s.flush()
    assert row.id is not None
    return row.id


def _in(s: Session, sid: str, **kw: Any) -> int:
    kw.setdefault("to_e164", ANN_NUMBER)
    kw.setdefault("from_e164", ANA)
    kw.setdefault("handled", True)
    row = InboundMessage(provider_sid=sid, **kw)
    s.add(row)
    s.flush()
    assert row.id is not None
    return row.id


def arrange(s: Session) -> World:
    """Staff Ann Lee (A1) and Bo Ray (B2), student Ana Lopez (S1) and another student (S2).

    The thread with Ana, oldest first: Ann's opt-in notice and campaign text (delivered),
    Ana's text back, Ann's second text (undelivered, 30003), Bo's text that became an email,
    Ana's email answer to Bo, Ana's STOP and nudge's answer, Ann's third text (cancelled).
    Around it, what is not part of it: a notice skipped as not needed, a held-out text,
    Ann's notification email, S2's messages, and an unknown number's text and STOP.
    """
    ann = _person(s, "A1", "staff", "Ann", "Lee", email="ann@college.edu")
    bo = _person(s, "B2", "staff", "Bo", "Ray", email="bo@college.edu")
    ana = _person(s, "S1", "student", "Ana", "Lopez", email="ana@student.edu", sms_e164=ANA)
    other = _person(s, "S2", "student", "Sam", "Diaz", sms_e164="+12125550102")
    s.add(
        PhoneNumber(
            person_id=ana,
            raw=ANA,
            type_code="CELL",
            kind="mobile",
            match_key=ANA,
            e164=ANA,
            valid=True,
            sms_capable=True,
        )
    )
    s.add(SenderNumber(staff_person_id=ann, e164=ANN_NUMBER, status="active"))
    s.add(SenderNumber(staff_person_id=bo, e164=BO_NUMBER, status="active"))
    c1, c2, c3, c4 = _campaign(s, ann), _campaign(s, ann), _campaign(s, bo), _campaign(s, ann)
    sms = {"channel": "sms", "from_addr": ANN_NUMBER, "to_addr": ANA}
    ids: dict[str, int] = {}
    ids["notice"] = _out(
        s,
        campaign_id=c1,
        person_id=ana,
        kind="opt_in_notice",
        status="delivered",
        reason="sms_ok",
        body="Ann Lee of the college will text you here. Reply STOP to opt out.",
        sent_at=at(0),
        **sms,
    )
    ids["first"] = _out(
        s,
        campaign_id=c1,
        person_id=ana,
        kind="campaign",
        status="delivered",
        reason="sms_ok",
        body="Hi Ana, forms are due Friday.",
        sent_at=at(0.5),
        **sms,
    )
    ids["reply1"] = _in(
        s,
        "SM1",
        person_id=ana,
        staff_person_id=ann,
        in_reply_to_id=ids["first"],
        body="Is the form online?",
        received_at=at(10),
        read_at=at(11),
    )
    ids["undelivered"] = _out(
        s,
        campaign_id=c2,
        person_id=ana,
        kind="campaign",
        status="undelivered",
        reason="sms_ok",
        body="Yes: college.edu/forms",
        error_code=30003,
        error_message="Unreachable destination handset",
        sent_at=at(60),
        **sms,
    )
    ids["fallback"] = _out(
        s,
        campaign_id=c3,
        person_id=ana,
        kind="campaign",
        channel="email",
        status="fallback_email",
        reason="not_sms_capable_30006",
        error_code=30006,
        from_addr="texts@college.edu",
        to_addr="ana@student.edu",
        subject="Message from Bo Ray",
        body="Tutoring opens Monday.\n\n— Bo Ray",
        extra={"fallback": True, "sms_error": 30006},
        sent_at=at(120),
    )
    ids["email_in"] = _in(
        s,
        "EM1",
        person_id=ana,
        staff_person_id=bo,
        channel="email",
        from_email="ana@student.edu",
        from_e164="",
        to_e164="",
        body="Thanks, I'll come.",
        received_at=at(180),
    )
    ids["stop"] = _in(
        s,
        "SM2",
        person_id=ana,
        staff_person_id=ann,
        keyword="stop",
        body="STOP",
        received_at=at(240),
    )
    ids["stop_answer"] = _out(
        s,
        person_id=ana,
        kind="keyword_reply",
        status="sent",
        reason="keyword_stop",
        inbound_id=ids["stop"],
        outbox_key="keyword:SM2",
        body="You have successfully been unsubscribed.",
        sent_at=at(240.5),
        **sms,
    )
    ids["cancelled"] = _out(
        s,
        campaign_id=c4,
        person_id=ana,
        kind="campaign",
        status="skipped",
        reason="cancelled",
        body="Reminder: forms are due today.",
        created_at=at(300),
        **sms,
    )
    # Not part of Ana's thread:
    _out(
        s,
        campaign_id=c4,
        person_id=ana,
        kind="opt_in_notice",
        status="skipped",
        reason="not_needed",
        body="notice",
        created_at=at(300),
        **sms,
    )
    _out(
        s,
        campaign_id=c2,
        person_id=ana,
        kind="reply",
        status="held_out",
        body="held out",
        created_at=at(61),
        **sms,
    )
    _out(
        s,
        person_id=ann,
        kind="notification",
        channel="email",
        status="sent",
        to_addr="ann@college.edu",
        subject="New reply from Ana Lopez (S1)",
        body="Hello Ann",
        outbox_key="notify:SM1",
        sent_at=at(11),
    )
    _out(
        s,
        campaign_id=c1,
        person_id=other,
        kind="campaign",
        status="delivered",
        body="Hi Sam",
        sent_at=at(0.5),
        channel="sms",
        from_addr=ANN_NUMBER,
        to_addr="+12125550102",
    )
    _in(s, "SM3", person_id=other, staff_person_id=ann, from_e164="+12125550102", body="Sam here")
    ids["unknown1"] = _in(
        s,
        "SM4",
        from_e164=UNKNOWN,
        staff_person_id=ann,
        body="new phone, it's Ana",
        received_at=at(200),
    )
    ids["unknown_stop"] = _in(
        s,
        "SM5",
        from_e164=UNKNOWN,
        staff_person_id=ann,
        keyword="stop",
        body="STOP",
        received_at=at(201),
    )
    ids["unknown_answer"] = _out(
        s,
        person_id=None,
        kind="keyword_reply",
        status="sent",
        reason="keyword_stop",
        inbound_id=ids["unknown_stop"],
        outbox_key="keyword:SM5",
        body="You have successfully been unsubscribed.",
        sent_at=at(201.5),
        channel="sms",
        from_addr=ANN_NUMBER,
        to_addr=UNKNOWN,
    )
    s.commit()
    return World(ann=ann, bo=bo, ana=ana, other=other, ids=ids)


def shape(items: list[Any]) -> list[tuple[Any, ...]]:
    return [
        (i.direction, i.channel, i.status, i.at, i.kind, i.staff_sis_id, i.error, i.body)
        for i in items
    ]


def test_the_thread_has_both_ways_and_both_channels_in_order(session: Session) -> None:
    w = arrange(session)
    items = thread(session=session, student_person_id=w.ana)
    assert shape(items) == [
        (
            "out",
            "sms",
            "delivered",
            at(0),
            "opt_in_notice",
            "A1",
            None,
            "Ann Lee of the college will text you here. Reply STOP to opt out.",
        ),
        (
            "out",
            "sms",
            "delivered",
            at(0.5),
            "campaign",
            "A1",
            None,
            "Hi Ana, forms are due Friday.",
        ),
        ("in", "sms", "received", at(10), "reply", "A1", None, "Is the form online?"),
        (
            "out",
            "sms",
            "undelivered",
            at(60),
            "campaign",
            "A1",
            "30003 Unreachable destination handset",
            "Yes: college.edu/forms",
        ),
        (
            "out",
            "email",
            "fallback_email",
            at(120),
            "campaign",
            "B2",
            "30006",
            "Tutoring opens Monday.\n\n— Bo Ray",
        ),
        ("in", "email", "received", at(180), "reply", "B2", None, "Thanks, I'll come."),
        ("in", "sms", "received", at(240), "stop", "A1", None, "STOP"),
        (
            "out",
            "sms",
            "sent",
            at(240.5),
            "keyword_reply",
            "A1",
            None,
            "You have successfully been unsubscribed.",
        ),
        (
            "out",
            "sms",
            "skipped",
            at(300),
            "campaign",
            "A1",
            "cancelled",
            "Reminder: forms are due today.",
        ),
    ]
    assert [i.staff_name for i in items] == ["Ann Lee"] * 4 + ["Bo Ray"] * 2 + ["Ann Lee"] * 3
    email = items[4]
    assert (email.subject, email.fallback) == ("Message from Bo Ray", True)
    assert (items[1].subject, items[1].fallback) == (None, False)
    assert email.as_dict(NY) == {
        "id": w.ids["fallback"],
        "direction": "out",
        "channel": "email",
        "status": "fallback_email",
        "at": "2026-03-02T12:00:00-05:00",
        "body": "Tutoring opens Monday.\n\n— Bo Ray",
        "error": "30006",
        "staff_id": "B2",
        "staff_name": "Bo Ray",
        "kind": "campaign",
        "subject": "Message from Bo Ray",
        "fallback": True,
    }
    assert items[5].as_dict("America/Chicago")["at"] == "2026-03-02T12:00:00-06:00"


def test_one_staff_members_side_and_the_last_messages(session: Session) -> None:
    w = arrange(session)
    bo = thread(session=session, student_person_id=w.ana, staff_person_id=w.bo)
    assert [(i.direction, i.channel, i.id) for i in bo] == [
        ("out", "email", w.ids["fallback"]),
        ("in", "email", w.ids["email_in"]),
    ]
    ann = thread(session=session, student_person_id=w.ana, staff_person_id=w.ann)
    assert [i.id for i in ann] == [
        w.ids[k]
        for k in ("notice", "first", "reply1", "undelivered", "stop", "stop_answer", "cancelled")
    ]
    last = thread(session=session, student_person_id=w.ana, limit=3)
    assert [i.id for i in last] == [w.ids[k] for k in ("stop", "stop_answer", "cancelled")]
    ann_last = thread(session=session, student_person_id=w.ana, staff_person_id=w.ann, limit=2)
    assert [i.id for i in ann_last] == [w.ids["stop_answer"], w.ids["cancelled"]]
    before = thread(session=session, student_person_id=w.ana, limit=3, before=at(120))
    assert [i.id for i in before] == [w.ids[k] for k in ("first", "reply1", "undelivered")]
    assert thread(session=session, student_person_id=w.other, staff_person_id=w.bo) == []
    assert [i.body for i in thread(session=session, student_person_id=w.other)] == [
        "Hi Sam",
        "Sam here",
    ]


def test_threads_before_gives_each_conversation_its_own_history(session: Session) -> None:
    w = arrange(session)
    found = threads_before(
        session=session,
        conversations=[(w.ana, w.ann, at(240)), (w.ana, w.bo, at(180)), (w.other, w.bo, at(9))],
        limit=3,
    )
    assert {k: [i.id for i in v] for k, v in found.items()} == {
        (w.ana, w.ann): [w.ids["first"], w.ids["reply1"], w.ids["undelivered"]],
        (w.ana, w.bo): [w.ids["fallback"]],
        (w.other, w.bo): [],
    }


def test_linking_an_unknown_number_moves_exactly_its_unmatched_rows(session: Session) -> None:
    w = arrange(session)
    # The same number already matched to S2 (say, a shared phone) stays S2's.
    matched = _in(
        session, "SM6", from_e164=UNKNOWN, person_id=w.other, staff_person_id=w.ann, body="S2"
    )
    _in(session, "SM7", from_e164="+12125550177", staff_person_id=w.ann, body="someone else")
    session.commit()
    before = [(i.direction, i.id) for i in thread(session=session, student_person_id=w.ana)]
    assert link_sender(session=session, from_e164=UNKNOWN, student_person_id=w.ana) == 2
    session.commit()
    owners: dict[str, int | None] = {
        r.provider_sid: r.person_id for r in session.exec(select(InboundMessage)).all()
    }
    assert (owners["SM4"], owners["SM5"], owners["SM6"], owners["SM7"]) == (
        w.ana,
        w.ana,
        w.other,
        None,
    )
    after = [(i.direction, i.id) for i in thread(session=session, student_person_id=w.ana)]
    assert [k for k in after if k not in before] == [
        ("in", w.ids["unknown1"]),
        ("in", w.ids["unknown_stop"]),
        ("out", w.ids["unknown_answer"]),  # nudge's answer to that STOP joins too
    ]
    assert after.index(("in", w.ids["unknown1"])) == after.index(("in", w.ids["email_in"])) + 1
    assert ("in", matched) not in after
    assert link_sender(session=session, from_e164=UNKNOWN, student_person_id=w.ana) == 0


def test_mark_read_counts_exactly_what_it_marked(session: Session) -> None:
    w = arrange(session)
    _in(session, "SM8", person_id=w.ana, staff_person_id=w.ann, body="again", received_at=at(250))
    _in(session, "SM9", from_e164=UNKNOWN, staff_person_id=w.bo, body="to Bo", received_at=at(251))
    session.commit()
    # Unread replies to Ann: SM8 (Ana) and SM4 (the unknown number); SM1 was read, the
    # STOPs are keywords; Sam's SM3 too.
    assert (
        mark_read_from(session=session, staff_person_id=w.ann, from_e164=UNKNOWN, now=at(300)) == 1
    )
    assert (
        mark_read_from(session=session, staff_person_id=w.ann, from_e164=UNKNOWN, now=at(300)) == 0
    )
    assert (
        mark_read(session=session, staff_person_id=w.ann, student_person_id=w.ana, now=at(300)) == 1
    )
    assert mark_all_read(session=session, staff_person_id=w.ann, now=at(300)) == 1  # Sam's
    assert mark_all_read(session=session, staff_person_id=w.ann, now=at(300)) == 0
    session.commit()
    assert [(c.staff_sis_id, c.unread) for c in inbox(session=session, unread_only=True)] == [
        ("B2", 1),
        ("B2", 1),
    ]


def test_the_inbox_shows_email_replies_with_their_channel(session: Session) -> None:
    w = arrange(session)
    [bo] = inbox(session=session, staff_person_id=w.bo)
    assert (bo.student_sis_id, bo.last_reply, bo.last_channel, bo.unread) == (
        "S1",
        "Thanks, I'll come.",
        "email",
        1,
    )
    assert bo.as_dict()["last_channel"] == "email"


# --- the notification email ----------------------------------------------------------------


def test_the_notification_quotes_the_last_three_earlier_messages(session: Session) -> None:
    w = arrange(session)
    new1 = _in(
        session,
        "SM10",
        person_id=w.ana,
        staff_person_id=w.ann,
        body="Can I still send it?",
        received_at=at(400),
    )
    new2 = _in(
        session, "SM11", person_id=w.ana, staff_person_id=w.ann, body="Please?", received_at=at(401)
    )
    session.commit()
    pending = replies_to_notify(session=session, inbound_ids=[new2, new1])
    assert [(p.id, p.channel, p.student_person_id) for p in pending] == [
        (new1, "sms", w.ana),
        (new2, "sms", w.ana),
    ]
    [row] = notification_rows(pending, NY, at(402))
    assert row["extra"] == {"inbound_ids": [new1, new2], "student_person_id": w.ana}
    assert row["subject"] == "2 new replies from Ana Lopez (S1)"
    assert row["body"] == (
        "Hello Ann,\n"
        "\n"
        "Ana Lopez (student id S1) replied on Mon 02 Mar 2026, 16:40 EST:\n"
        "\n"
        "    Can I still send it?\n"
        "\n"
        "Ana Lopez (student id S1) replied on Mon 02 Mar 2026, 16:41 EST:\n"
        "\n"
        "    Please?\n"
        "\n"
        'Answer: nudge reply --sender A1 --student S1 --message "..."\n'
        "\n"
        "All your conversations: nudge inbox --staff A1 --unread\n"
        "\n"
        "Earlier in this conversation:\n"
        "    Mon 02 Mar 2026, 14:00 EST, from Ana, by text: STOP\n"
        "    Mon 02 Mar 2026, 14:00 EST, to Ana, by text: You have successfully been "
        "unsubscribed.\n"
        "    Mon 02 Mar 2026, 15:00 EST, to Ana, by text: Reminder: forms are due today. "
        "(skipped: cancelled)"
    )


def test_an_email_reply_says_so_and_can_be_answered_by_replying(session: Session) -> None:
    w = arrange(session)
    new = _in(
        session,
        "EM2",
        person_id=w.ana,
        staff_person_id=w.bo,
        channel="email",
        from_email="ana@student.edu",
        from_e164="",
        to_e164="",
        body="What time on Monday?",
        received_at=at(400),
    )
    session.commit()
    [pending] = replies_to_notify(session=session, inbound_ids=[new])
    assert pending.channel == "email"
    [row] = notification_rows([pending], NY, at(401), reply_by_email=True)
    assert row["extra"]["student_person_id"] == w.ana
    assert row["body"] == (
        "Hello Bo,\n"
        "\n"
        "Ana Lopez (student id S1) replied by email on Mon 02 Mar 2026, 16:40 EST:\n"
        "\n"
        "    What time on Monday?\n"
        "\n"
        "Reply to this email to answer Ana by text (only your new text is sent; the quoted "
        "history is left out).\n"
        "\n"
        "All your conversations: nudge inbox --staff B2 --unread\n"
        "\n"
        "Earlier in this conversation:\n"
        "    Mon 02 Mar 2026, 12:00 EST, to Ana, by email: Tutoring opens Monday. — Bo Ray\n"
        "    Mon 02 Mar 2026, 13:00 EST, from Ana, by email: Thanks, I'll come."
    )
    _subject, body = notification_text([pending], NY, reply_by_email=False)
    assert 'Answer: nudge reply --sender B2 --student S1 --message "..."' in body
    assert "Reply to this email" not in body


def test_an_unknown_number_has_no_history_and_no_student(session: Session) -> None:
    w = arrange(session)
    [pending] = replies_to_notify(session=session, inbound_ids=[w.ids["unknown1"]])
    assert (pending.student_person_id, pending.history) == (None, ())
    [row] = notification_rows([pending], NY, at(300), reply_by_email=True)
    assert row["extra"]["student_person_id"] is None
    assert "Earlier in this conversation" not in row["body"]
    assert "Reply to this email" not in row["body"]
    assert "An unknown number (+1******0199) texted your number" in row["body"]
