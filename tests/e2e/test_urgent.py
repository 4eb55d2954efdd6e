"""Urgent replies end to end: the emulator, the real SDK, real SMTP (and IMAP), both databases.

A student texts something that reads like a crisis (``emulator.inject``); ``run_poll`` is
the every-minute poll. When it returns, the SMTP server already holds one alert per on-call
address (``NUDGE_URGENT_EMAILS``), received before the staff notification; the staff
notification says URGENT; the conversation sorts first in the inbox. With
``urgent_auto_reply`` on the student gets the crisis line by text once, unless consent
forbids texting them. The Prefect event is asserted with Prefect's own in-memory events
client, as the data-quality alert's is (tests/flows/test_data_quality.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlmodel import Session, col

from domain.config import DEFAULT_URGENT_REPLY_TEXT
from flows.poll_mailbox import run_mail_poll
from flows.poll_replies import run_poll
from models.conversations import inbox, mark_read
from models.messaging import InboundMessage, Message
from models.people import Person
from models.types import utcnow
from nudge.settings import Settings, get_settings
from tasks.urgent import ALERT_SUBJECT, URGENT_EVENT
from tests.cli.test_conversation import nudge
from tests.e2e.test_mailbox import Mailroom, mail, mailroom
from tests.e2e.test_replies import College, make_college, text_of
from tests.flows.test_data_quality import captured_events, no_events

__all__ = ["captured_events", "mailroom", "make_college", "no_events"]  # fixtures, shared

ON_CALL = ["oncall-a@college.edu", "oncall-b@college.edu"]
CRISIS = "I don't want to live anymore"
ACCOUNT = "AC" + "0" * 32


@pytest.fixture
def live_settings(live_settings: Settings) -> Settings:
    """The e2e settings with two on-call addresses."""
    return live_settings.model_copy(update={"urgent_emails": ON_CALL})


def alerts(world: Any) -> list[Any]:
    """The on-call alerts the SMTP server holds."""
    return [m for m in world.smtp.messages if m["Subject"] == ALERT_SUBJECT]


def texts_from(world: College, sender: str) -> list[tuple[str, str]]:
    """(to, body) of every text the emulator accepted from ``sender``, oldest first."""
    found: list[tuple[str, str]] = []
    url: str | None = f"/2010-04-01/Accounts/{ACCOUNT}/Messages.json?PageSize=1000"
    with httpx.Client(base_url=world.emulator.base_url, auth=(ACCOUNT, "x")) as client:
        while url:
            page = client.get(url).json()
            found += [
                (m["to"], m["body"])
                for m in page["messages"]
                if m["direction"] == "outbound-api" and m["from"] == sender
            ]
            url = page["next_page_uri"]
    return found[::-1]


def stored(world: College) -> dict[str, str | None]:
    """Each stored reply's body -> its urgent phrase."""
    return {r.body: r.urgent_phrase for r in world.inbound()}


def test_an_urgent_text_alerts_on_call_before_the_poll_ends_and_sorts_first(
    make_college: Callable[..., College],
    monkeypatch: pytest.MonkeyPatch,
    no_events: list[Any],
) -> None:
    world = make_college(2)
    world.text(0, CRISIS)
    world.emulator.advance(60)  # S1's ordinary reply comes a minute later
    world.text(1, "Can we meet Tuesday?")
    result = world.poll()
    assert (result["new"], result["urgent"], result["urgent_alerts_sent"]) == (2, 1, 2)
    assert result["errors"] == []
    # run_poll has returned: the SMTP server already has one alert per on-call address ...
    sent = alerts(world)
    assert sorted(m["To"] for m in sent) == ON_CALL
    for alert in sent:
        body = text_of(alert)
        assert "FirstS0 LastS0 (student id S0)" in body
        assert "Tess Adams (staff id T1)" in body
        assert "self-harm or suicide" in body and '"don\'t want to live"' in body
        assert CRISIS in body  # the on-call person must read the reply itself
        assert "988" in body and "911" in body
        assert world.students[0] not in body  # no phone number in an email
        assert "the crisis line automatically" not in body  # urgent_auto_reply is off
    # ... received before the staff notifications, which say URGENT for S0 only.
    subjects = [m["Subject"] for m in world.smtp.messages]
    assert subjects == [
        ALERT_SUBJECT,
        ALERT_SUBJECT,
        "URGENT: New reply from FirstS0 LastS0 (S0)",
        "New reply from FirstS1 LastS1 (S1)",
    ]
    urgent_notice = world.smtp.messages[2]
    assert urgent_notice["To"] == "t1@college.edu"
    assert text_of(urgent_notice).startswith("URGENT: this reads like a crisis")
    assert not text_of(world.smtp.messages[3]).startswith("URGENT")
    assert stored(world) == {CRISIS: "don't want to live", "Can we meet Tuesday?": None}
    # The inbox lists S0 first although S1's reply is newer.
    with Session(world.env.engine) as s:
        listed = inbox(session=s)
    assert [(c.student_sis_id, c.urgent) for c in listed] == [("S0", 1), ("S1", 0)]
    assert listed[0].last_reply_at < listed[1].last_reply_at
    assert listed[0].as_dict()["urgent"] == 1
    monkeypatch.setenv("NUDGE_DATABASE_URL", world.settings.database_url)
    get_settings.cache_clear()
    try:
        code, out, _err = nudge("inbox", "--staff", "T1")
    finally:
        get_settings.cache_clear()
    assert code == 0
    heads = [line for line in out.splitlines() if not line.startswith("    ")]
    assert heads[0].startswith("!! URGENT (1 unread) FirstS0 LastS0 (S0) -> T1: 1 unread of 1")
    assert heads[1].startswith("FirstS1 LastS1 (S1) -> T1: 1 unread of 1")
    # Polling again sends nothing more.
    again = world.poll()
    assert (again["new"], again["urgent"], again["urgent_alerts_sent"]) == (0, 0, 0)
    assert again["notifications_sent"] == 0 and len(world.smtp.messages) == 4
    # Read, the conversation takes its usual place again.
    with Session(world.env.engine) as s:
        ids = {p.sis_id: p.id for p in s.execute(select(Person)).scalars()}
        mark_read(session=s, staff_person_id=ids["T1"], student_person_id=ids["S0"], now=utcnow())
        s.commit()
        assert [c.student_sis_id for c in inbox(session=s)] == ["S1", "S0"]
    # No text to anyone (the automatic answer is off) and no Prefect API: no event tried.
    assert texts_from(world, world.t1) == []
    assert no_events == []


def test_the_crisis_line_goes_once_by_text_but_never_to_an_opted_out_or_paused_number(
    make_college: Callable[..., College],
) -> None:
    world = make_college(3, urgent_auto_reply=True)
    world.text(1, "STOP")
    world.poll()
    world.text(0, CRISIS)
    world.text(1, "I want to kill myself")  # opted out: alert, no text
    world.text(2, "stop texting me, I want to die")  # paused for review: alert, no text
    result = world.poll()
    assert (result["urgent"], result["urgent_alerts_sent"], result["urgent_replies_sent"]) == (
        3,
        6,
        1,
    )
    assert world.consent(world.students[2]) == ("paused_for_review", "reply_review")
    answers = [(to, body) for to, body in texts_from(world, world.t1) if "988" in body]
    assert answers == [(world.students[0], DEFAULT_URGENT_REPLY_TEXT)]
    answered = [m for m in alerts(world) if "the crisis line automatically" in text_of(m)]
    assert len(answered) == 2 and all("student id S0" in text_of(m) for m in answered)
    with Session(world.env.engine) as s:
        rows = list(s.execute(select(Message).where(col(Message.kind) == "urgent_reply")).scalars())
    # Sent (the poll's status refresh may already know it was delivered), and counted
    # against the quota like a keyword answer.
    assert [
        (r.to_addr, r.from_addr, r.status in {"sent", "delivered"}, r.quota_units) for r in rows
    ] == [(world.students[0], world.t1, True, 1)]
    # Polling again texts nobody again.
    again = world.poll()
    assert (again["urgent"], again["urgent_alerts_sent"], again["urgent_replies_sent"]) == (0, 0, 0)
    assert [b for _, b in texts_from(world, world.t1) if "988" in b] == [DEFAULT_URGENT_REPLY_TEXT]


def test_harmless_replies_and_keywords_raise_no_alert(
    make_college: Callable[..., College],
) -> None:
    # "help" made an urgent phrase: the HELP keyword is still a keyword, never urgent.
    world = make_college(4, urgent_phrases=["help", "kill myself"])
    world.text(0, "this homework is killing me")
    world.text(1, "I died laughing")
    world.text(2, "HELP")
    world.text(3, "please help")
    result = world.poll()
    assert (result["urgent"], result["urgent_alerts_sent"], result["help"]) == (1, 2, 1)
    assert stored(world) == {
        "this homework is killing me": None,
        "I died laughing": None,
        "HELP": None,
        "please help": "help",
    }
    assert [text_of(m).count("please help") for m in alerts(world)] == [1, 1]
    notices = sorted(m["Subject"] for m in world.smtp.messages if m["To"] == "t1@college.edu")
    assert notices == [
        "New reply from FirstS0 LastS0 (S0)",
        "New reply from FirstS1 LastS1 (S1)",
        "URGENT: New reply from FirstS3 LastS3 (S3)",
    ]


def test_the_event_is_emitted_once_without_the_text_or_a_number(
    make_college: Callable[..., College], captured_events: Any
) -> None:
    world = make_college(2)
    world.text(0, CRISIS)
    world.text(1, "Thanks!")
    result = world.poll()
    assert (result["urgent"], result["urgent_events"]) == (1, 1)
    world.poll()  # nothing new: no second event
    events = [e for e in captured_events() if e.event == URGENT_EVENT]
    assert len(events) == 1
    [reply] = [r for r in world.inbound() if r.urgent_phrase]
    event = events[0]
    assert event.resource.id == f"nudge.reply.{reply.id}"
    payload = dict(event.payload)
    assert payload == {
        "inbound_id": reply.id,
        "category": "self-harm or suicide",
        "channel": "sms",
        "student_id": "S0",
        "staff_id": "T1",
        "received_at": payload["received_at"],
    }
    dumped = json.dumps(payload) + json.dumps(dict(event.resource))
    for secret in (CRISIS, "want to live", world.students[0], world.t1, world.students[0][2:]):
        assert secret not in dumped


def test_an_urgent_email_answer_alerts_on_call_and_says_urgent(mailroom: Mailroom) -> None:
    room = mailroom
    room.imap.append(mail(room.address(), "I want to kill myself.", sender="s0@college.edu"))
    result = run_mail_poll(room.settings, env=room.env)
    assert (result["recorded"], result["emails_sent"]) == (1, 3)
    subjects = [m["Subject"] for m in room.smtp.messages]
    assert subjects == [
        ALERT_SUBJECT,
        ALERT_SUBJECT,
        "URGENT: New reply from FirstS0 LastS0 (S0)",
    ]
    assert sorted(m["To"] for m in room.smtp.messages[:2]) == ON_CALL
    assert "emailed on" in text_of(room.smtp.messages[0])
    with Session(room.env.engine) as s:
        (reply,) = s.execute(select(InboundMessage)).scalars()
    assert (reply.channel, reply.urgent_phrase) == ("email", "kill myself")
    assert run_mail_poll(room.settings, env=room.env)["emails_sent"] == 0
    assert len(room.smtp.messages) == 3


@pytest.mark.slow
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_inside_a_prefect_flow_run_the_event_is_tied_to_the_run(
    make_college: Callable[..., College],
    prefect_harness: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from prefect import flow
    from prefect.events.clients import AssertingEventsClient
    from prefect.events.worker import EventsWorker

    world = make_college(1)
    world.text(0, "someone is following me and I'm in danger")

    @flow(name="poll-replies-under-test")
    def polled() -> dict[str, Any]:
        return run_poll(world.settings, env=world.env, engine=True)

    worker = EventsWorker.instance(AssertingEventsClient)
    monkeypatch.setattr(EventsWorker, "instance", lambda *_a, **_k: worker)
    try:
        result = polled()
        worker.wait_until_empty()
        events = list(AssertingEventsClient.last.events) if AssertingEventsClient.last else []
    finally:
        worker.drain()
        AssertingEventsClient.reset()
    assert (result["errors"], result["urgent"], result["urgent_alerts_sent"]) == ([], 1, 2)
    urgent = [e for e in events if e.event == URGENT_EVENT]
    assert len(urgent) == 1 and urgent[0].payload["category"] == "immediate danger"
    assert "following" not in json.dumps(dict(urgent[0].payload))
    assert "flow-run" in {r.role for r in urgent[0].related}
