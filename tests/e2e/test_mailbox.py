"""Answering by email, end to end: a real IMAP server (pymap), real SMTP (aiosmtpd), the
Twilio emulator, both databases.

A staff member answers the notification email of a student's text; the poll of the reply
mailbox (``run_mail_poll``, what ``poll-mailbox`` runs every minute) texts the new part to
the student. What the student receives is read from the emulator, what staff receive from
the SMTP server, what is left in the mailbox from the IMAP server.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import select
from sqlmodel import Session

from domain.reply_tokens import ReplyPair, make_token, reply_address, token_in
from flows.poll_mailbox import MAIL_POLL_KEYS, run_mail_poll
from flows.poll_replies import run_poll
from models.config import load_config, save_config
from models.consent import set_consent
from models.mailbox import MailReceipt
from models.messaging import InboundMessage, Message, SenderNumber
from models.people import Person
from nudge.settings import Settings
from tasks.env import Env
from tasks.reply_to import reply_key

REPO = Path(__file__).resolve().parents[2]
SID = "AC00000000000000000000000000000000"
REPLY = "texts@college.edu"
T1_NUMBER = "+12125550101"


def text_of(mail: Any) -> str:
    """An email's text as its reader sees it."""
    part = mail.get_body(preferencelist=("plain",)) if mail.is_multipart() else mail
    return str(part.get_payload(decode=True).decode(part.get_content_charset() or "utf-8"))


#: The opt-in notice that precedes a staff number's first text to a student.
NOTICE = "You have been opted-in to receive messages from"


def texts_to(emulator: Any, number: str) -> list[dict[str, Any]]:
    """The outbound texts the emulator holds for ``number``, oldest first (the opt-in notice
    before a staff number's first text to the student aside)."""
    found: list[dict[str, Any]] = []
    url: str | None = f"/2010-04-01/Accounts/{SID}/Messages.json"
    params: dict[str, Any] | None = {"PageSize": 1000, "To": number}
    with httpx.Client(base_url=emulator.base_url, auth=(SID, "x"), timeout=30) as client:
        while url:
            page = client.get(url, params=params).json()
            params = None  # the next page's URI carries them
            found += [
                m
                for m in page["messages"]
                if m["direction"] == "outbound-api" and not m["body"].startswith(NOTICE)
            ]
            url = page["next_page_uri"]
    return sorted(found, key=lambda m: m["sid"])


def mail(
    to: str,
    body: str,
    *,
    sender: str = "t1@college.edu",
    subject: str = "Re: New reply from FirstS0 LastS0 (S0)",
    headers: dict[str, str] | None = None,
) -> bytes:
    """A mail as a mail client would send it to the reply mailbox."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = make_msgid(domain="college.edu")
    for name, value in (headers or {}).items():
        msg[name] = value
    msg.set_content(body)
    return bytes(msg)


QUOTED = (
    "Yes, come by at 3pm tomorrow.\n"
    "\n"
    "On Mon, Dec 7, 2026 at 10:00 AM nudge <nudge@college.edu> wrote:\n"
    "> Hello Tess,\n"
    "> FirstS0 LastS0 (student id S0) replied:\n"
    ">     Can I see you this week?\n"
)


@dataclass
class Mailroom:
    """A synced college (T1 texts S0..Sn-1), its reply mailbox and the pieces to poll."""

    settings: Settings
    env: Env
    emulator: Any
    smtp: Any
    imap: Any
    numbers: list[str]
    ids: dict[str, int]

    def address(self, staff: str = "T1", student: str = "S0") -> str:
        """The reply address of the conversation (staff, student), as nudge writes it."""
        with Session(self.env.engine) as s:
            key = reply_key(self.env, s)
            s.commit()
        token = make_token(key, ReplyPair(self.ids[staff], self.ids[student]))
        return reply_address(REPLY, token)

    def poll(self, **kwargs: Any) -> dict[str, Any]:
        return run_mail_poll(self.settings, env=self.env, **kwargs)

    def receipts(self) -> list[MailReceipt]:
        with Session(self.env.engine) as s:
            return list(s.execute(select(MailReceipt).order_by(MailReceipt.id)).scalars())  # type: ignore[arg-type]


def configure(settings: Settings, **values: Any) -> None:
    from models.db import make_engine

    engine = make_engine(settings.database_url)
    with Session(engine) as s:
        config = load_config(session=s)
        for key, value in values.items():
            setattr(config, key, value)
        save_config(config, session=s)
        s.commit()
    engine.dispose()


@pytest.fixture
def mailroom(
    live_settings: Settings,
    emulator: Any,
    smtp: Any,
    imap: Any,
    college: Callable[..., list[str]],
    make_env: Callable[..., Env],
) -> Mailroom:
    numbers = college(3)
    settings = live_settings.model_copy(
        update={
            "reply_address": REPLY,
            "imap_host": imap.host,
            "imap_port": imap.port,
            "imap_ssl": False,
            "imap_username": imap.username,
            "imap_password": SecretStr(imap.password),
        }
    )
    env = make_env(settings=settings)
    with Session(env.engine) as s:
        people = {p.sis_id: p for p in s.execute(select(Person)).scalars()}
        s.add(SenderNumber(staff_person_id=people["T1"].id, e164=T1_NUMBER, status="active"))
        s.commit()
        ids = {sis: int(p.id or 0) for sis, p in people.items()}
    return Mailroom(settings, env, emulator, smtp, imap, numbers, ids)


def test_a_staff_answer_to_the_notification_reaches_the_student_once_by_text(
    mailroom: Mailroom,
) -> None:
    room = mailroom
    room.emulator.inject(room.numbers[0], T1_NUMBER, "Can I see you this week?")
    polled = run_poll(room.settings, env=room.env)
    assert polled["notifications_sent"] == 1
    (notification,) = room.smtp.messages
    reply_to = notification["Reply-To"]
    assert reply_to is not None and token_in(REPLY, [reply_to]) is not None
    assert "Reply to this email" in text_of(notification)
    # Tess answers from her mail client: her text above the quoted notification.
    room.imap.append(mail(reply_to, QUOTED))
    result = room.poll()
    assert {k: result[k] for k in MAIL_POLL_KEYS} == {
        "fetched": 1,
        "ignored": 0,
        "sent": 1,
        "sent_by_email": 0,
        "deferred": 0,
        "bounced": 0,
        "recorded": 0,
        "refused": 0,
        "auto_replies": 0,
        "already_handled": 0,
        "emails_sent": 0,
    }
    (text,) = texts_to(room.emulator, room.numbers[0])
    assert (text["from"], text["body"]) == (T1_NUMBER, "Yes, come by at 3pm tomorrow.")
    assert room.imap.messages("INBOX") == []
    assert len(room.imap.messages("nudge-handled")) == 1
    # The next minute's poll finds nothing to do; the student still has one text.
    assert room.poll()["fetched"] == 0
    assert len(texts_to(room.emulator, room.numbers[0])) == 1
    (receipt,) = room.receipts()
    assert (receipt.kind, receipt.status, receipt.campaign_id is not None) == (
        "staff_reply",
        "done",
        True,
    )


class Died(BaseException):
    """The poller stops dead (as under kill -9: nothing after this point runs)."""


def test_a_poller_that_dies_after_fetching_acts_on_each_mail_once(mailroom: Mailroom) -> None:
    room = mailroom
    for i in range(3):
        room.imap.append(mail(room.address("T1", f"S{i}"), f"See you Monday, S{i}."))

    def die(_where: str) -> None:
        raise Died

    with pytest.raises(Died):
        room.poll(checkpoint=die)
    assert room.receipts() == []  # nothing recorded, nothing sent, every mail still waiting
    assert len(room.imap.messages("INBOX")) == 3
    assert sum(len(texts_to(room.emulator, n)) for n in room.numbers) == 0
    assert room.poll()["sent"] == 3
    for i, number in enumerate(room.numbers):
        assert [t["body"] for t in texts_to(room.emulator, number)] == [f"See you Monday, S{i}."]


def test_a_poller_that_dies_between_texting_and_moving_the_mail_texts_once(
    mailroom: Mailroom, monkeypatch: pytest.MonkeyPatch
) -> None:
    room = mailroom
    room.imap.append(mail(room.address(), "Your form is approved."))
    import tasks.mailbox as mailbox_tasks

    real = mailbox_tasks.finish_answer
    calls = Counter[str]()

    def dies_once(*args: Any, **kwargs: Any) -> None:
        calls["finish"] += 1
        if calls["finish"] == 1:
            raise Died  # the SMS went out; the receipt is still 'received', the mail in INBOX
        real(*args, **kwargs)

    monkeypatch.setattr(mailbox_tasks, "finish_answer", dies_once)
    with pytest.raises(Died):
        room.poll()
    assert len(texts_to(room.emulator, room.numbers[0])) == 1
    assert len(room.imap.messages("INBOX")) == 1
    again = room.poll()
    assert (again["fetched"], again["sent"]) == (1, 1)  # the same campaign, found again
    assert [t["body"] for t in texts_to(room.emulator, room.numbers[0])] == [
        "Your form is approved."
    ]
    assert room.imap.messages("INBOX") == []


def test_a_poller_killed_while_texting_sends_each_answer_once(mailroom: Mailroom) -> None:
    room = mailroom
    for i in range(3):
        room.imap.append(mail(room.address("T1", f"S{i}"), f"Answer {i}"))
    room.emulator.control(latency_ms=400)
    env = {
        **os.environ,
        "NUDGE_DATABASE_URL": room.settings.database_url,
        "NUDGE_TWILIO_BASE_URL": room.emulator.base_url,
        "NUDGE_SMTP_HOST": room.smtp.host,
        "NUDGE_SMTP_PORT": str(room.smtp.port),
        "NUDGE_REPLY_ADDRESS": REPLY,
        "NUDGE_IMAP_HOST": room.imap.host,
        "NUDGE_IMAP_PORT": str(room.imap.port),
        "NUDGE_IMAP_SSL": "false",
        "NUDGE_IMAP_USERNAME": room.imap.username,
        "NUDGE_IMAP_PASSWORD": room.imap.password,
        "NUDGE_SENDER_MPS": "1000",
        "NUDGE_ACCOUNT_MPS": "1000",
        "PREFECT_API_URL": "",
    }
    poller = subprocess.Popen(
        [sys.executable, "-m", "nudge", "poll-mail", "--no-engine", "--json"],
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while room.emulator.counters()["create_requests"] < 1:
            assert poller.poll() is None, poller.stderr.read() if poller.stderr else ""
            assert time.monotonic() < deadline, "the poller sent nothing"
            time.sleep(0.02)
        os.kill(poller.pid, signal.SIGKILL)
        poller.wait(timeout=10)
    finally:
        if poller.poll() is None:
            poller.kill()
        poller.communicate(timeout=10)
    room.emulator.control(latency_ms=0)
    # The next poll (later than the in-flight bound: the text the dead one had in flight is
    # looked up at Twilio, not resent) finishes the rest.
    later = room.env.sms_bound() + timedelta(seconds=1)
    room.env.now = lambda: datetime.now(UTC) + later
    result = room.poll()
    assert not result["errors"]
    for i, number in enumerate(room.numbers):
        assert [t["body"] for t in texts_to(room.emulator, number)] == [f"Answer {i}"]
    assert room.imap.messages("INBOX") == []
    assert [r.status for r in room.receipts()] == ["done", "done", "done"]


def test_a_forged_sender_or_a_tampered_token_sends_nothing_and_is_kept_for_review(
    mailroom: Mailroom,
) -> None:
    room = mailroom
    good = room.address()
    local, _, domain = good.partition("@")
    tampered = local[:-1] + ("0" if local[-1] != "0" else "1") + "@" + domain
    other_pair = room.address("T1", "S1").replace(f"s{room.ids['S1']}x", f"s{room.ids['S2']}x")
    room.imap.append(mail(good, "Send me your password", sender="mallory@evil.example"))
    room.imap.append(mail(tampered, "Tampered token"))
    room.imap.append(mail(other_pair, "Token moved to another student"))
    result = room.poll()
    assert (result["fetched"], result["refused"], result["sent"]) == (3, 3, 0)
    assert sum(len(texts_to(room.emulator, n)) for n in room.numbers) == 0
    assert room.imap.messages("INBOX") == []
    assert len(room.imap.messages("nudge-review")) == 3
    reasons = [r.reason for r in room.receipts()]
    assert reasons == [
        "sent from an address that is neither the staff member's nor the student's",
        "the reply address carries an unknown or altered token",
        "the reply address carries an unknown or altered token",
    ]
    alerts = [m for m in room.smtp.messages if m["To"] == "sms-admin@college.edu"]
    assert len(alerts) == 3
    assert all("Send me your password" not in text_of(a) for a in alerts)


def test_a_students_email_answer_is_recorded_and_the_staff_member_notified(
    mailroom: Mailroom,
) -> None:
    room = mailroom
    room.imap.append(
        mail(room.address(), "I will be there.\n\n-- \nFirstS0", sender="S0@College.edu")
    )
    result = room.poll()
    assert (result["recorded"], result["emails_sent"], result["sent"]) == (1, 1, 0)
    with Session(room.env.engine) as s:
        (inbound,) = s.execute(select(InboundMessage)).scalars()
    assert (inbound.channel, inbound.body, inbound.from_email) == (
        "email",
        "I will be there.",
        "s0@college.edu",
    )
    assert (inbound.person_id, inbound.staff_person_id) == (room.ids["S0"], room.ids["T1"])
    (notification,) = room.smtp.messages
    assert notification["To"] == "t1@college.edu"
    assert "I will be there." in text_of(notification)
    assert token_in(REPLY, [notification["Reply-To"]]) is not None
    assert room.poll()["fetched"] == 0
    assert len(room.smtp.messages) == 1


def test_an_answer_in_quiet_hours_waits_and_is_not_dropped(mailroom: Mailroom) -> None:
    room = mailroom
    # The sending window (``quiet_hours`` names the hours texts may go) opens in two hours.
    now_ny = datetime.now(UTC).astimezone(ZoneInfo("America/New_York"))
    start = (now_ny + timedelta(hours=2)).strftime("%H:00")
    end = (now_ny + timedelta(hours=3)).strftime("%H:00")
    configure(room.settings, quiet_hours=f"{start}-{end}")
    room.imap.append(mail(room.address(), "Tomorrow works."))
    result = room.poll()
    assert (result["deferred"], result["sent"], result["bounced"]) == (1, 0, 0)
    assert texts_to(room.emulator, room.numbers[0]) == []
    with Session(room.env.engine) as s:
        statuses = list(s.execute(select(Message.status).where(Message.kind == "reply")).scalars())
    assert statuses == ["deferred"]
    assert room.smtp.messages == []  # no bounce: it goes when the window opens


def test_an_opted_out_student_gets_the_answer_by_email_not_by_text(mailroom: Mailroom) -> None:
    room = mailroom
    with Session(room.env.engine) as s:
        set_consent(
            session=s, e164=room.numbers[0], status="opted_out", source="stop", actor="test"
        )
        s.commit()
    room.imap.append(mail(room.address(), "Here is the link you asked for."))
    result = room.poll()
    assert (result["sent"], result["sent_by_email"]) == (1, 1)
    assert texts_to(room.emulator, room.numbers[0]) == []
    (email,) = room.smtp.messages
    assert email["To"] == "s0@college.edu"
    assert "Here is the link you asked for." in text_of(email)
    # ... and the student can answer it by email too.
    assert token_in(REPLY, [email["Reply-To"]]) is not None


def test_an_answer_that_cannot_go_is_bounced_to_the_staff_member_saying_why(
    mailroom: Mailroom,
) -> None:
    room = mailroom
    with Session(room.env.engine) as s:
        person = s.get(Person, room.ids["S1"])
        assert person is not None
        person.status = "inactive"
        s.add(person)
        s.commit()
    room.imap.append(mail(room.address("T1", "S1"), "Are you still enrolled?"))
    room.imap.append(mail(room.address("T1", "S2"), "> only a quote\n"))
    result = room.poll()
    assert (result["bounced"], result["sent"], result["emails_sent"]) == (2, 0, 2)
    assert sum(len(texts_to(room.emulator, n)) for n in room.numbers) == 0
    bounces = sorted(text_of(m) for m in room.smtp.messages)
    assert all(m["To"] == "t1@college.edu" for m in room.smtp.messages)
    assert (
        "Why: student S1 is inactive." in bounces[0]
        or "Why: student S1 is inactive." in (bounces[1])
    )
    assert any("no new text" in b for b in bounces)


def test_mail_without_our_token_and_automatic_replies_are_left_alone(mailroom: Mailroom) -> None:
    room = mailroom
    room.imap.append(mail("texts@college.edu", "A newsletter", sender="news@vendor.example"))
    room.imap.append(b"\x00\xff garbage that is not a mail at all\r\n")
    room.imap.append(
        mail(room.address(), "I am out of the office.", headers={"Auto-Submitted": "auto-replied"})
    )
    result = room.poll()
    assert (result["ignored"], result["fetched"], result["auto_replies"]) == (2, 1, 1)
    assert sum(len(texts_to(room.emulator, n)) for n in room.numbers) == 0
    assert len(room.imap.messages("INBOX")) == 2  # the two without a token stay where they are


def test_tricks_found_by_an_outsider_send_nothing(mailroom: Mailroom) -> None:
    """A From that an unpatched parseaddr reads as the staff member's but a mail server reads
    as the attacker's, a forgery the receiving server flagged (DMARC fail), and one mail
    addressed to two conversations: no text, each kept for review with its reason."""
    room = mailroom
    room.imap.append(mail(room.address(), "Paren trick", sender="t1@college.edu)<evil@x.com>"))
    room.imap.append(
        mail(
            room.address(),
            "Spoofed",
            headers={
                "Authentication-Results": "mx.college.edu; dmarc=fail header.from=college.edu"
            },
        )
    )
    two = f"{room.address('T1', 'S0')}, {room.address('T1', 'S1')}"
    room.imap.append(mail(two, "Office hours moved to 4pm."))
    result = room.poll()
    assert (result["fetched"], result["refused"], result["sent"]) == (3, 3, 0)
    assert sum(len(texts_to(room.emulator, n)) for n in room.numbers) == 0
    assert [r.reason for r in room.receipts()] == [
        "sent from an address that is neither the staff member's nor the student's",
        "the receiving mail server found its sender forged (DMARC fail)",
        "it is addressed to 2 conversations at once; answer each student in an email of its own",
    ]
    assert len(room.imap.messages("nudge-review")) == 3


def test_a_mail_without_message_id_relayed_twice_texts_once(mailroom: Mailroom) -> None:
    room = mailroom
    raw = mail(room.address(), "Answer without id")
    raw = b"\r\n".join(line for line in raw.split(b"\n") if not line.startswith(b"Message-ID"))
    room.imap.append(raw)
    room.imap.append(b"Received: from relay.college.edu by mx.college.edu\r\n" + raw)
    result = room.poll()
    assert (result["sent"], result["already_handled"]) == (1, 1)
    assert [t["body"] for t in texts_to(room.emulator, room.numbers[0])] == ["Answer without id"]


def test_a_student_who_asks_by_email_to_stop_is_paused_for_review(mailroom: Mailroom) -> None:
    """By email, STOP is no carrier keyword; it still must not be ignored: the student's
    numbers are paused for review (as for "please stop texting me" by text), the reply is
    flagged, and the next campaign texts them nothing."""
    from models.consent import Consent

    room = mailroom
    room.imap.append(mail(room.address("T1", "S0"), "STOP", sender="s0@college.edu"))
    room.imap.append(
        mail(room.address("T1", "S1"), "please stop texting me", sender="s1@college.edu")
    )
    result = room.poll()
    assert result["recorded"] == 2
    with Session(room.env.engine) as s:
        flagged = dict(
            s.execute(select(InboundMessage.person_id, InboundMessage.flagged_phrase)).all()  # type: ignore[call-overload]
        )
        states = {
            c.e164: c.status
            for c in s.execute(select(Consent).where(Consent.sender_e164 == "")).scalars()
        }
    assert flagged[room.ids["S0"]] == "STOP"
    assert flagged[room.ids["S1"]] is not None
    assert states[room.numbers[0]] == "paused_for_review"
    assert states[room.numbers[1]] == "paused_for_review"
    assert states[room.numbers[2]] != "paused_for_review"
