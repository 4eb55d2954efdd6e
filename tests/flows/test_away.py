"""Away messages end to end: the emulator, the real SDK, real SMTP, both databases.

A staff member is away (``models.away.set_absence``, what ``nudge away set`` stores); a
student texts them (``emulator.inject``); ``run_poll`` is the every-minute poll. What the
student's phone gets is read from the emulator's own message list, what staff get from the
SMTP server.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import func, select
from sqlmodel import Session, col

from flows import poll_replies
from flows.poll_replies import run_poll
from flows.reconcile_replies import run_sweep
from flows.send_campaign import run_dispatch
from models.away import (
    AwayDue,
    away_answers_due,
    away_request_key,
    clear_absences,
    set_absence,
)
from models.conversations import inbox
from models.messaging import Campaign, InboundMessage, Message, QuotaLedger
from models.people import Person
from models.types import utcnow
from tests.e2e.conftest import college, live_settings, make_env
from tests.e2e.test_replies import College, configure, make_college, text_of

__all__ = ["college", "live_settings", "make_college", "make_env"]  # fixtures, shared

AWAY = "I'm away until Monday; for urgent help call 555-0100."
ACCOUNT = "AC" + "0" * 32


@dataclass(frozen=True)
class Sms:
    from_: str
    to: str
    body: str


def outbound(world: College) -> list[Sms]:
    """Every text the emulator accepted from our numbers, oldest first (its own list)."""
    found: list[Sms] = []
    url: str | None = f"/2010-04-01/Accounts/{ACCOUNT}/Messages.json?PageSize=1000"
    with httpx.Client(base_url=world.emulator.base_url, auth=(ACCOUNT, "x")) as client:
        while url:
            page = client.get(url).json()
            found += [
                Sms(m["from"], m["to"], m["body"])
                for m in page["messages"]
                if m["direction"] == "outbound-api"
            ]
            url = page["next_page_uri"]
    return found[::-1]


def away_texts(world: College, body: str = AWAY) -> list[tuple[str, str]]:
    """(from, to) of every away message the emulator accepted."""
    return [(m.from_, m.to) for m in outbound(world) if m.body == body]


def go_away(
    world: College,
    staff: str = "T1",
    message: str = AWAY,
    *,
    starts: timedelta = timedelta(0),
    ends: timedelta = timedelta(days=2),
    set_ago: timedelta = timedelta(0),
) -> int:
    """``staff`` is away from now + ``starts`` to now + ``ends``, set ``set_ago``; now to
    the second, as ``nudge away set`` has it (texts are dated to the second)."""
    now = utcnow().replace(microsecond=0)
    with Session(world.env.engine) as s:
        person = s.execute(select(Person).where(col(Person.sis_id) == staff)).scalar_one()
        away, _ = set_absence(
            session=s,
            staff_person_id=person.id,
            starts_at=now + starts,
            ends_at=now + ends,
            message=message,
            created_by="test",
            now=now - set_ago,
        )
        s.commit()
        assert away.id is not None
        return away.id


def back(world: College, staff: str = "T1") -> None:
    with Session(world.env.engine) as s:
        person = s.execute(select(Person).where(col(Person.sis_id) == staff)).scalar_one()
        clear_absences(session=s, staff_person_id=person.id, now=utcnow())
        s.commit()


def person_id(world: College, sis_id: str) -> int:
    with Session(world.env.engine) as s:
        return int(
            s.execute(select(col(Person.id)).where(col(Person.sis_id) == sis_id)).scalar_one()
        )


def away_campaigns(world: College) -> list[tuple[str | None, str, str | None, str]]:
    with Session(world.env.engine) as s:
        rows = s.execute(select(Campaign).order_by(col(Campaign.id))).scalars()
        return [(c.request_key, c.kind, c.created_by, c.template) for c in rows]


def subjects(world: College) -> list[str]:
    return sorted(str(m["Subject"]) for m in world.smtp.messages)


def test_each_student_gets_the_away_message_once_and_staff_still_hear_of_every_reply(
    make_college: Callable[..., College],
) -> None:
    world = make_college(3)
    away_id = go_away(world)
    world.text(0, "Are you in today?")
    world.emulator.advance(1)  # a second later: within one second their order is unknowable
    world.text(0, "I need to talk about my schedule")
    world.text(1, "Question about FAFSA")
    first = world.poll()
    assert first["errors"] == []
    assert (first["away_answers"], first["away_sent"], first["away_deferred"]) == (2, 2, 0)
    assert (first["replies"], first["replies_notified"], first["notifications_sent"]) == (3, 3, 2)
    assert sorted(away_texts(world)) == [
        (world.t1, world.students[0]),
        (world.t1, world.students[1]),
    ]
    # The staff member's emails went out as usual, one per conversation.
    assert subjects(world) == [
        "2 new replies from FirstS0 LastS0 (S0)",
        "New reply from FirstS1 LastS1 (S1)",
    ]
    assert {m["To"] for m in world.smtp.messages} == {"t1@college.edu"}

    # More texts during the same absence: no second answer; the emails still come.
    world.text(0, "Hello?")
    world.emulator.advance(1)
    world.text(1, "Never mind, found it")
    second = world.poll()
    assert (second["away_answers"], second["away_sent"], second["replies_notified"]) == (0, 0, 2)
    assert len(away_texts(world)) == 2
    assert len(world.smtp.messages) == 4
    assert "Hello?" in "".join(text_of(m) for m in world.smtp.messages)
    # Each answer is a reply campaign from T1, keyed by absence and student.
    assert away_campaigns(world) == [
        (away_request_key(away_id, person_id(world, sis)), "reply", "away", AWAY)
        for sis in ("S0", "S1")
    ]
    # The away answer does not read the replies for the staff member.
    with Session(world.env.engine) as s:
        assert sorted(c.unread for c in inbox(session=s)) == [2, 3]
    # The third student never texted: nothing for them.
    assert world.sms_to(world.students[2]) == 0


def test_only_texts_to_the_staff_member_who_is_away_are_answered(
    make_college: Callable[..., College],
) -> None:
    world = make_college(2, t2=True)
    go_away(world, "T2", "Omar is out this week.")
    world.text(0, "Hi Tess", to=world.t1)
    world.text(1, "Hi Omar", to=world.t2)
    result = world.poll()
    assert (result["away_sent"], result["replies_notified"]) == (1, 2)
    assert [(m.from_, m.to, m.body) for m in outbound(world)] == [
        (world.t2, world.students[1], "Omar is out this week.")
    ]


def test_no_answer_after_the_absence_ended_or_was_cleared_and_again_for_a_new_one(
    make_college: Callable[..., College],
) -> None:
    world = make_college(1)
    # An absence that ended an hour ago.
    go_away(world, starts=-timedelta(hours=3), ends=-timedelta(hours=1), set_ago=timedelta(hours=4))
    world.text(0, "Back yet?")
    ended = world.poll()
    assert (ended["away_sent"], ended["replies_notified"]) == (0, 1)

    second = go_away(world, "T1", "Away today.")
    world.text(0, "Hello?")
    assert world.poll()["away_sent"] == 1
    back(world)  # nudge away clear
    world.text(0, "Are you back?")
    cleared = world.poll()
    assert (cleared["away_sent"], cleared["replies_notified"]) == (0, 1)

    third = go_away(world, "T1", "Away today.")
    world.text(0, "One more thing")
    world.emulator.advance(1)
    world.text(0, "and another")
    assert world.poll()["away_sent"] == 1
    assert away_texts(world, "Away today.") == [(world.t1, world.students[0])] * 2
    assert away_texts(world) == []  # the ended absence's message never went
    s0 = person_id(world, "S0")
    assert [c[0] for c in away_campaigns(world)] == [
        away_request_key(second, s0),
        away_request_key(third, s0),
    ]
    assert len(world.smtp.messages) == 4  # every poll's replies were emailed


def test_a_text_sent_before_the_away_message_was_set_is_not_answered(
    make_college: Callable[..., College],
) -> None:
    world = make_college(1)
    # Sent a minute ago (listed only now), before the message was set; the absence itself
    # began the day before: an away message answers only what comes after it.
    world.emulator.inject(world.students[0], world.t1, "Are you around?", sent_ago=60)
    go_away(world, starts=-timedelta(days=1))
    before = world.poll()
    assert (before["new"], before["away_answers"], before["replies_notified"]) == (1, 0, 1)
    world.text(0, "Hello?")
    assert world.poll()["away_sent"] == 1
    assert away_texts(world) == [(world.t1, world.students[0])]


class Crash(BaseException):
    """The poller's process dying (not an error the poll may catch)."""


@pytest.mark.parametrize("how", ["error", "crash"])
def test_a_poll_that_fails_between_storing_and_answering_answers_next_time_exactly_once(
    make_college: Callable[..., College], monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    world = make_college(2)
    go_away(world)
    world.text(0, "Are you in today?")
    world.text(1, "Quick question")
    real = away_answers_due
    calls: list[int] = []

    def dies_once(**kwargs: Any) -> list[AwayDue]:
        calls.append(1)
        if len(calls) == 1:
            raise (Crash("killed") if how == "crash" else RuntimeError("database went away"))
        return real(**kwargs)

    monkeypatch.setattr(poll_replies, "away_answers_due", dies_once)
    if how == "crash":
        with pytest.raises(Crash):
            world.poll()
    else:
        failed = world.poll()
        assert failed["errors"] == ["away answers: RuntimeError: database went away"]
        assert (failed["away_sent"], failed["notifications_sent"]) == (0, 2)
    assert away_texts(world) == []
    assert len(world.inbound()) == 2  # stored before the step died
    again = world.poll()
    assert (again["errors"], again["new"], again["away_sent"]) == ([], 0, 2)
    assert world.poll()["away_sent"] == 0
    assert sorted(away_texts(world)) == [
        (world.t1, world.students[0]),
        (world.t1, world.students[1]),
    ]
    assert len(world.smtp.messages) == 2  # each reply notified once, whatever the order


def test_an_answer_planned_but_not_sent_is_sent_by_dispatch_never_planned_twice(
    make_college: Callable[..., College], monkeypatch: pytest.MonkeyPatch
) -> None:
    import flows.send_campaign as send_campaign

    world = make_college(2)
    away_id = go_away(world)
    world.text(0, "Are you in today?")
    world.emulator.advance(1)  # S0's text first: its answer is the first one
    world.text(1, "Quick question")
    real = send_campaign.work
    calls: list[int] = []

    def worker_dies_once(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("worker died")
        return real(*args, **kwargs)

    monkeypatch.setattr(send_campaign, "work", worker_dies_once)
    first = world.poll()
    # The first answer was planned, then its sending failed; the second one still went.
    key = away_request_key(away_id, person_id(world, "S0"))
    assert first["errors"] == [f"away answer to S0 ({key}): RuntimeError: worker died"]
    assert (first["away_answers"], first["away_sent"]) == (1, 1)
    assert away_texts(world) == [(world.t1, world.students[1])]
    assert world.poll()["away_answers"] == 0  # planned already: never planned twice
    dispatched = run_dispatch(world.settings, env=world.env)
    assert dispatched["sms_sent"] == 1
    assert sorted(away_texts(world)) == [
        (world.t1, world.students[0]),
        (world.t1, world.students[1]),
    ]
    assert world.poll()["away_answers"] == 0


def test_a_student_who_opted_out_gets_no_away_text_but_an_email(
    make_college: Callable[..., College],
) -> None:
    world = make_college(2)
    go_away(world)
    world.text(0, "Hi, are you there?")
    world.emulator.advance(1)
    world.text(0, "STOP")
    world.text(1, "Hello")
    result = world.poll()
    assert (result["opt_outs"], result["away_answers"]) == (1, 2)
    assert (result["away_sent"], result["away_emailed"]) == (1, 1)
    assert away_texts(world) == [(world.t1, world.students[1])]
    assert world.consent(world.students[0]) == ("opted_out", "stop")
    with Session(world.env.engine) as s:
        [fallback] = s.execute(
            select(Message).where(col(Message.kind) == "reply", col(Message.channel) == "email")
        ).scalars()
    assert (fallback.to_addr, fallback.reason, fallback.status) == (
        "s0@college.edu",
        "opted_out",
        "sent",
    )
    mails = {m["To"]: m for m in world.smtp.messages}
    assert AWAY in text_of(mails["s0@college.edu"])
    # A later text from the opted-out student: still nothing by SMS, nothing more at all.
    world.text(0, "ok")
    assert world.poll()["away_answers"] == 0
    assert away_texts(world) == [(world.t1, world.students[1])]
    assert [m["To"] for m in world.smtp.messages].count("s0@college.edu") == 1


def test_quiet_hours_defer_the_answer_and_dispatch_sends_it_later(
    make_college: Callable[..., College], make_env: Callable[..., Any]
) -> None:
    world = make_college(1)
    now_ny = datetime.now(UTC).astimezone(ZoneInfo("America/New_York"))
    start = (now_ny + timedelta(hours=2)).strftime("%H:00")
    end = (now_ny + timedelta(hours=3)).strftime("%H:00")
    configure(world.settings, quiet_hours=f"{start}-{end}")
    go_away(world)
    world.text(0, "Are you in today?")
    result = world.poll()
    assert (result["away_answers"], result["away_sent"], result["away_deferred"]) == (1, 0, 1)
    assert result["notifications_sent"] == 1  # emails are not held by quiet hours
    assert away_texts(world) == []
    with Session(world.env.engine) as s:
        [answer] = s.execute(select(Message).where(col(Message.kind) == "reply")).scalars()
    assert (answer.channel, answer.status, answer.body) == ("sms", "deferred", AWAY)
    assert answer.send_after is not None and answer.send_after > utcnow()
    assert world.poll()["away_answers"] == 0  # waiting, not planned again
    later = make_env(now=lambda: datetime.now(UTC) + timedelta(hours=2, minutes=1))
    assert run_dispatch(world.settings, env=later)["sms_sent"] == 1
    assert away_texts(world) == [(world.t1, world.students[0])]


@pytest.mark.parametrize(
    ("unit", "message", "units"),
    [
        pytest.param("messages", AWAY, 1, id="messages"),
        pytest.param("segments", "Away this week. " * 12, 2, id="segments"),
    ],
)
def test_the_answer_counts_against_the_monthly_quota(
    make_college: Callable[..., College], unit: str, message: str, units: int
) -> None:
    world = make_college(1, quota_unit=unit)

    def used() -> int:
        with Session(world.env.engine) as s:
            return int(s.execute(select(func.coalesce(func.sum(QuotaLedger.used), 0))).scalar_one())

    go_away(world, message=message)
    before = used()
    world.text(0, "Are you in today?")
    assert world.poll()["away_sent"] == 1
    assert used() == before + units
    with Session(world.env.engine) as s:
        [answer] = s.execute(select(Message).where(col(Message.kind) == "reply")).scalars()
    assert (answer.quota_units, answer.segments) == (units, units)


def test_the_reconciliation_sweep_answers_the_late_replies_it_stores(
    make_college: Callable[..., College],
) -> None:
    world = make_college(1)
    go_away(world, starts=-timedelta(hours=1), set_ago=timedelta(minutes=30))
    response = httpx.post(
        f"{world.emulator.base_url}/sandbox/inbound",
        json={"From": world.students[0], "To": world.t1, "Body": "late", "SentAgo": 600},
    )
    assert response.status_code == 201
    swept = run_sweep(world.settings, env=world.env, hours=2, lease_wait_s=0)
    assert (swept["errors"], swept["new"], swept["away_sent"]) == ([], 1, 1)
    assert away_texts(world) == [(world.t1, world.students[0])]
    assert world.poll()["away_sent"] == 0


# --- the query itself --------------------------------------------------------------------


@pytest.fixture
def stored(engine: Any) -> Iterator[dict[str, int]]:
    """Staff T1, T2; students S1, S2, an inactive S3; and a staff member X texting."""
    with Session(engine) as s:
        people = {
            "T1": Person(sis_id="T1", role="staff"),
            "T2": Person(sis_id="T2", role="staff"),
            "S1": Person(sis_id="S1", role="student"),
            "S2": Person(sis_id="S2", role="student"),
            "S3": Person(sis_id="S3", role="student", status="inactive"),
            "X": Person(sis_id="X", role="staff"),
        }
        s.add_all(people.values())
        s.commit()
        yield {k: int(p.id) for k, p in people.items()}  # type: ignore[arg-type]


NOW = datetime(2026, 12, 7, 15, 0, tzinfo=UTC)


def test_away_answers_due_one_per_absence_and_student_within_the_rules(
    engine: Any, stored: dict[str, int]
) -> None:
    n = iter(range(1000))

    def inbound(
        student: str | None,
        staff: str,
        minutes_ago: float,
        keyword: str = "none",
        channel: str = "sms",
    ) -> None:
        s.add(
            InboundMessage(
                provider_sid=f"SM{next(n):032d}",
                from_e164="+12125550000",
                to_e164="+12125550101",
                body="hi",
                received_at=NOW - timedelta(minutes=minutes_ago),
                person_id=stored[student] if student else None,
                staff_person_id=stored[staff],
                keyword=keyword,
                channel=channel,
            )
        )

    with Session(engine) as s:
        t1, _ = set_absence(
            session=s,
            staff_person_id=stored["T1"],
            starts_at=NOW - timedelta(hours=2),
            ends_at=NOW + timedelta(days=1),
            message="T1 away",
            created_by="t",
            now=NOW - timedelta(hours=1),
        )
        # T2's absence ended a minute ago; its texts are owed nothing any more.
        set_absence(
            session=s,
            staff_person_id=stored["T2"],
            starts_at=NOW - timedelta(hours=2),
            ends_at=NOW - timedelta(minutes=1),
            message="T2 away",
            created_by="t",
            now=NOW - timedelta(hours=2),
        )
        inbound("S1", "T1", 50)  # answered: the first of S1's
        inbound("S1", "T1", 40)
        inbound("S2", "T1", 30)  # answered
        inbound("S2", "T1", 90)  # before the absence was set: not counted as first
        inbound("S3", "T1", 20)  # inactive student
        inbound(None, "T1", 20)  # unknown number
        inbound("X", "T1", 20)  # a staff member, not a student
        inbound("S1", "T1", 10, keyword="stop")
        inbound("S1", "T1", 10, keyword="help")
        inbound("S1", "T1", 10, channel="email")
        inbound("S1", "T2", 30)  # T2 is back now
        s.commit()
        assert t1.id is not None
        due = away_answers_due(session=s, now=NOW, since=NOW - timedelta(days=7))
        assert [
            (d.away_id, d.staff_sis_id, d.student_sis_id, d.message, d.first_text_at) for d in due
        ] == [
            (t1.id, "T1", "S1", "T1 away", NOW - timedelta(minutes=50)),
            (t1.id, "T1", "S2", "T1 away", NOW - timedelta(minutes=30)),
        ]
        assert due[0].request_key == away_request_key(t1.id, stored["S1"])
        # Only what came since ``since``.
        recent = away_answers_due(session=s, now=NOW, since=NOW - timedelta(minutes=45))
        assert [(d.student_sis_id, d.first_text_at) for d in recent] == [
            ("S1", NOW - timedelta(minutes=40)),
            ("S2", NOW - timedelta(minutes=30)),
        ]
        # Answered (a campaign under its key) is no longer due.
        s.add(
            Campaign(
                kind="reply",
                sender_person_id=stored["T1"],
                template="T1 away",
                request_key=due[0].request_key,
            )
        )
        s.commit()
        assert [
            d.student_sis_id
            for d in away_answers_due(session=s, now=NOW, since=NOW - timedelta(days=7))
        ] == ["S2"]
        # Cleared: nothing due.
        clear_absences(session=s, staff_person_id=stored["T1"], now=NOW)
        s.commit()
        assert away_answers_due(session=s, now=NOW, since=NOW - timedelta(days=7)) == []


def test_the_poll_answers_inside_a_prefect_flow_run(
    make_college: Callable[..., College], prefect_harness: None
) -> None:
    from prefect import flow

    world = make_college(1)
    go_away(world)
    world.text(0, "Are you in today?")

    @flow(name="poll-replies-under-test")
    def polled() -> dict[str, Any]:
        return run_poll(world.settings, env=world.env, engine=True)

    result = polled()
    assert (result["errors"], result["away_sent"]) == ([], 1)
    assert away_texts(world) == [(world.t1, world.students[0])]
