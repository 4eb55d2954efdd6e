"""Replies end to end: the emulator's inbound messages, the real SDK, real SMTP, both databases.

A student "texts" with ``emulator.inject(from, to, body)``; ``run_poll`` is the poll the
``poll-replies`` deployment runs every minute. What staff receive is read from the SMTP
server, what phones receive from the emulator's counters.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlmodel import Session

from domain.audience import AudienceFilter
from domain.campaign import CampaignRequest
from flows.poll_replies import POLL_KEYS, run_poll, run_reply
from flows.send_campaign import run_campaign
from models.config import load_config, save_config
from models.consent import Consent, ConsentEvent, consent_history, resolve_review
from models.conversations import inbox
from models.messaging import InboundMessage, Message, PollCursor, SenderNumber
from models.people import Person, PhoneNumber
from models.types import utcnow
from nudge.settings import Settings
from tasks.env import Env
from tasks.poll_options import PollOptions
from tasks.replies import CURSOR

UNKNOWN = "+13125550199"
T1_NUMBER = "+12125550101"
T2_NUMBER = "+12125550102"


def text_of(mail: Any) -> str:
    """An email's body as the staff member reads it (decoded: long lines are encoded)."""
    return str(mail.get_payload(decode=True).decode(mail.get_content_charset() or "utf-8"))


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


@dataclass
class College:
    """A synced college whose staff T1 and T2 have texted every student once."""

    settings: Settings
    env: Env
    emulator: Any
    smtp: Any
    students: list[str]  # S0..Sn-1's numbers
    t1: str  # T1's sender number
    t2: str | None

    def poll(self, **options: Any) -> dict[str, Any]:
        return run_poll(self.settings, env=self.env, options=PollOptions(**options))

    def text(self, student: int | str, body: str, to: str | None = None) -> str:
        number = self.students[student] if isinstance(student, int) else student
        return str(self.emulator.inject(number, to or self.t1, body)["message"]["sid"])

    def campaign(
        self,
        sender: str = "T1",
        message: str = "Hi {first_name}, forms are due.",
        students: list[str] | None = None,
    ) -> dict[str, Any]:
        audience = (
            AudienceFilter(student_ids=students) if students else AudienceFilter(caseload=["T1"])
        )
        return run_campaign(
            CampaignRequest(sender_id=sender, message=message, audience=audience),
            settings=self.settings,
            env=self.env,
        )

    def inbound(self) -> list[InboundMessage]:
        with Session(self.env.engine) as s:
            return list(s.exec(select(InboundMessage).order_by(InboundMessage.id)).scalars())  # type: ignore[call-overload]

    def consent(self, number: str, sender: str = "") -> tuple[str, str] | None:
        with Session(self.env.engine) as s:
            row = s.execute(
                select(Consent).where(Consent.e164 == number, Consent.sender_e164 == sender)
            ).scalar_one_or_none()
            return (row.status, row.source) if row else None

    def sms_to(self, number: str) -> int:
        return int(self.emulator.counters()["per_to"].get(number, 0))


@pytest.fixture
def make_college(
    live_settings: Settings,
    emulator: Any,
    smtp: Any,
    college: Callable[..., list[str]],
    make_env: Callable[..., Env],
) -> Callable[..., College]:
    def build(n: int = 3, *, t2: bool = False, texted: bool = False, **config: Any) -> College:
        """``texted``: T1 (and T2) send a campaign first, so replies have a text to answer;
        otherwise their sender numbers are simply on record (faster)."""
        numbers = college(n)
        configure(live_settings, quiet_hours="off", **config)
        env = make_env()
        world = College(live_settings, env, emulator, smtp, numbers, "", None)
        if texted:
            world.campaign()
            if t2:
                world.campaign(sender="T2")
        else:
            with Session(env.engine) as s:
                for sis_id, e164 in (("T1", T1_NUMBER), ("T2", T2_NUMBER))[: 1 + t2]:
                    staff = s.execute(select(Person).where(Person.sis_id == sis_id)).scalar_one()
                    s.add(SenderNumber(staff_person_id=staff.id, e164=e164, status="active"))
                s.commit()
        with Session(env.engine) as s:
            senders = {
                p.sis_id: n.e164
                for n, p in s.execute(
                    select(SenderNumber, Person).join(
                        Person, Person.id == SenderNumber.staff_person_id
                    )  # type: ignore[arg-type]
                ).all()
            }
        world.t1, world.t2 = senders["T1"], senders.get("T2")
        smtp.handler.messages.clear()
        return world

    return build


# --- keywords ----------------------------------------------------------------------------


#: One row per keyword and near-miss: (row id, reply, keyword stored, consent afterwards).
#: Every student starts opted in by auto opt-in (the sync), so "auto" means "unchanged".
KEYWORD_TABLE = [
    ("STOP", "STOP", "stop", ("opted_out", "stop")),
    ("stop-with-period", "stop.", "stop", ("opted_out", "stop")),
    ("Stop-padded", "  Stop!  ", "stop", ("opted_out", "stop")),
    ("STOPALL", "STOPALL", "stop", ("opted_out", "stop")),
    ("UNSUBSCRIBE", "unsubscribe", "stop", ("opted_out", "stop")),
    ("CANCEL", "Cancel", "stop", ("opted_out", "stop")),
    ("END", "END", "stop", ("opted_out", "stop")),
    ("QUIT", "quit", "stop", ("opted_out", "stop")),
    ("REVOKE", "REVOKE", "stop", ("opted_out", "stop")),
    ("OPTOUT", "OptOut", "stop", ("opted_out", "stop")),
    ("spelled-out", "S T O P", "stop", ("opted_out", "stop")),
    ("spelled-dots", "s.t.o.p.", "stop", ("opted_out", "stop")),
    ("repeated", "STOP STOP", "stop", ("opted_out", "stop")),
    ("repeated-bangs", "Stop!!!", "stop", ("opted_out", "stop")),
    ("fr-ARRET", "Arrêt", "stop", ("opted_out", "stop")),
    ("fr-ARRET-no-accent", "ARRET", "stop", ("opted_out", "stop")),
    ("es-PARAR", "Parar", "stop", ("opted_out", "stop")),
    ("es-ALTO", "alto", "stop", ("opted_out", "stop")),
    ("START", "START", "start", ("opted_in", "start")),
    ("YES", "yes", "start", ("opted_in", "start")),
    ("UNSTOP", "Unstop", "start", ("opted_in", "start")),
    ("es-COMENZAR", "Comenzar", "start", ("opted_in", "start")),
    ("fr-COMMENCER", "commencer", "start", ("opted_in", "start")),
    ("HELP", "HELP", "help", ("opted_in", "auto")),
    ("INFO", "info?", "help", ("opted_in", "auto")),
    ("es-AYUDA", "AYUDA", "help", ("opted_in", "auto")),
    ("fr-AIDE", "Aide", "help", ("opted_in", "auto")),
    ("near-miss-yes-sentence", "Yes, I'll be there", "none", ("opted_in", "auto")),
    ("near-miss-help-sentence", "I need help with FAFSA", "none", ("opted_in", "auto")),
    ("near-miss-the-end", "the end", "none", ("opted_in", "auto")),
    ("near-miss-starting", "Starting Monday!", "none", ("opted_in", "auto")),
    ("near-miss-typo", "stopp", "none", ("paused_for_review", "reply_review")),
    ("near-miss-stahp", "stahp", "none", ("paused_for_review", "reply_review")),
    ("near-miss-stop-by", "Stop by my office tomorrow", "none", ("opted_in", "auto")),
    ("near-miss-weekend", "weekend", "none", ("opted_in", "auto")),
    ("near-miss-parar-sentence", "parar en la esquina", "none", ("opted_in", "auto")),
    (
        "near-miss-sentence-is-flagged",
        "stop texting me",
        "none",
        ("paused_for_review", "reply_review"),
    ),
]


def test_keyword_table(make_college: Callable[..., College]) -> None:
    """Every row at once (one student per row, one poll): the end-to-end cost of a row is
    mostly the fixtures, and a dict comparison still names each failing row."""
    world = make_college(len(KEYWORD_TABLE))
    sids = {row_id: world.text(i, body) for i, (row_id, body, _, _) in enumerate(KEYWORD_TABLE)}
    result = world.poll()
    stored = {r.provider_sid: r.keyword for r in world.inbound()}
    actual = {
        row_id: (stored.get(sids[row_id]), world.consent(world.students[i]))
        for i, (row_id, *_rest) in enumerate(KEYWORD_TABLE)
    }
    assert actual == {row_id: (keyword, consent) for row_id, _, keyword, consent in KEYWORD_TABLE}
    counted = {
        kw: sum(1 for row in KEYWORD_TABLE if row[2] == kw)
        for kw in ("stop", "start", "help", "none")
    }
    assert (result["opt_outs"], result["opt_ins"], result["help"], result["replies"]) == (
        counted["stop"],
        counted["start"],
        counted["help"],
        counted["none"],
    )
    # Keywords never reach the staff member's inbox; every other reply does, once each.
    emailed = [
        i
        for mail in world.smtp.messages
        for i in range(len(KEYWORD_TABLE))
        if f"(student id S{i})" in text_of(mail)
    ]
    assert sorted(emailed) == [i for i, row in enumerate(KEYWORD_TABLE) if row[2] == "none"]


def test_keyword_languages_are_configuration(make_college: Callable[..., College]) -> None:
    """With Spanish left out, PARAR is an ordinary reply and ARRÊT still opts out."""
    world = make_college(3, keyword_languages=["en", "fr"])
    for i, body in enumerate(("Parar", "Arrêt", "S T O P")):
        world.text(i, body)
    result = world.poll()
    assert [world.consent(n) for n in world.students] == [
        ("opted_in", "auto"),
        ("opted_out", "stop"),
        ("opted_out", "stop"),
    ]
    assert (result["opt_outs"], result["replies"], result["flagged"]) == (2, 1, 0)


@pytest.mark.parametrize("scope", ["institution", "sender"])
def test_stop_scope_institution_silences_every_sender_sender_only_that_one(
    make_college: Callable[..., College], scope: str
) -> None:
    world = make_college(2, t2=True, opt_out_scope=scope)
    stopped = world.students[0]
    world.text(0, "STOP")
    world.poll()
    expected_scope = "" if scope == "institution" else world.t1
    assert world.consent(stopped, expected_scope) == ("opted_out", "stop")
    before = world.sms_to(stopped)
    from_t1 = world.campaign("T1", "Hi again {first_name}")
    from_t2 = world.campaign("T2", "Hello {first_name}")
    assert (from_t1["sms"], from_t1["email"]) == (1, 1)
    assert (from_t2["sms"], from_t2["email"]) == ((1, 1) if scope == "institution" else (2, 0))
    if scope == "institution":
        assert world.sms_to(stopped) == before
    else:
        assert world.sms_to(stopped) > before
    # START re-subscribes in the same scope.
    world.text(0, "start")
    world.poll()
    assert world.consent(stopped, expected_scope) == ("opted_in", "start")
    again = world.campaign("T1", "Back {first_name}")
    assert (again["sms"], again["email"]) == (2, 0)


def test_stop_then_campaign_goes_by_email_only(make_college: Callable[..., College]) -> None:
    world = make_college(3)
    stopped = world.students[1]
    world.text(1, "Stop")
    world.poll()
    texts_before = world.sms_to(stopped)
    result = world.campaign(message="Hi {first_name}, registration closes Friday.")
    assert (result["sms"], result["email"], result["by_reason"].get("opted_out")) == (2, 1, 1)
    assert world.sms_to(stopped) == texts_before  # no SMS even attempted
    assert "21610" not in world.emulator.counters()["rejected"]
    [mail] = world.smtp.messages
    assert mail["To"] == "s1@college.edu" and "registration closes Friday" in text_of(mail)


def test_every_consent_change_is_in_the_audit_trail_with_its_inbound_sid(
    make_college: Callable[..., College],
) -> None:
    world = make_college(1)
    number = world.students[0]
    stop_sid = world.text(0, "STOP")
    world.poll()
    start_sid = world.text(0, "START")
    world.poll()
    with Session(world.env.engine) as s:
        trail = [
            (e.status, e.source, e.inbound_sid, e.actor)
            for e in consent_history(session=s, e164=number)
        ]
    assert trail == [
        ("opted_in", "auto", None, trail[0][3]),
        ("opted_out", "stop", stop_sid, "poll-replies"),
        ("opted_in", "start", start_sid, "poll-replies"),
    ]


def test_stop_and_start_in_one_poll_apply_in_the_order_they_were_sent(
    make_college: Callable[..., College],
) -> None:
    world = make_college(1)
    world.text(0, "STOP")
    world.emulator.advance(1)  # a second later: within one second their order is unknowable
    world.text(0, "START")
    result = world.poll()
    assert (result["opt_outs"], result["opt_ins"]) == (1, 1)
    assert world.consent(world.students[0]) == ("opted_in", "start")


# --- revocation phrases ----------------------------------------------------------------------


#: (row id, reply, phrase flagged): revocations in other words, and ordinary replies that
#: must not be flagged.
PHRASE_TABLE = [
    ("stop-texting-me", "please stop texting me", "stop texting"),
    ("remove-me", "Remove me from this list.", "remove me from this list"),
    ("wrong-number", "wrong number", "wrong number"),
    ("cant-stop-by", "I can't stop by today", None),
    ("end-of-week", "Is the deadline at the end of the week?", None),
    ("negated", "Don't stop texting me, this helps!", None),
    ("waitlist", "Can you remove me from the waitlist?", None),
    ("keyword-with-politeness", "Alto por favor", "alto por favor"),
    ("near-miss", "sotp", "sotp"),
    ("near-miss-variant", "¡Basta!", "basta"),
    ("everyday-word", "Also", None),
    ("cant-stop-laughing", "I can't stop laughing", None),
]


def test_revocation_phrases_pause_sms_and_ordinary_replies_do_not(
    make_college: Callable[..., College],
) -> None:
    world = make_college(len(PHRASE_TABLE))
    for i, (_, body, _) in enumerate(PHRASE_TABLE):
        world.text(i, body)
    result = world.poll()
    flagged = {r.body: r.flagged_phrase for r in world.inbound()}
    actual = {
        row_id: (flagged[body], world.consent(world.students[i]))
        for i, (row_id, body, _) in enumerate(PHRASE_TABLE)
    }
    assert actual == {
        row_id: (phrase, ("paused_for_review", "reply_review") if phrase else ("opted_in", "auto"))
        for row_id, _, phrase in PHRASE_TABLE
    }
    assert result["flagged"] == sum(1 for row in PHRASE_TABLE if row[2])
    # The staff member hears about every one of them, one email each.
    assert len(world.smtp.messages) == len(PHRASE_TABLE)
    text = "".join(text_of(mail) for mail in world.smtp.messages)
    assert all(body in text for _, body, _ in PHRASE_TABLE)
    assert text.count("reads like a request to stop") == result["flagged"]


def test_flagged_reply_pauses_sms_until_an_admin_resolves_it(
    make_college: Callable[..., College],
) -> None:
    world = make_college(2)
    number = world.students[0]
    world.text(0, "wrong number, who is this?")
    world.poll()
    paused = world.campaign(message="Hi {first_name}, see you soon")
    assert (paused["sms"], paused["email"], paused["by_reason"]) == (
        1,
        1,
        {"sms_ok": 1, "review_pending": 1},
    )
    with Session(world.env.engine) as s:
        resolve_review(
            session=s,
            e164=number,
            reason="student confirmed the number",
            actor="admin@college.edu",
            now=utcnow(),
        )
        s.commit()
    assert world.consent(number) == ("opted_in", "admin")
    resumed = world.campaign(message="Hi {first_name}, one more thing")
    assert (resumed["sms"], resumed["email"]) == (2, 0)


# --- polling: paging, duplicates, cursor ----------------------------------------------------


def test_paging_follows_every_page_and_a_second_poll_stores_nothing_twice(
    make_college: Callable[..., College],
) -> None:
    world = make_college(7)
    sids = {world.text(i, f"reply number {i}") for i in range(7)}
    first = world.poll(page_size=3)
    assert (first["fetched"], first["new"], first["duplicates"], first["replies"]) == (7, 7, 0, 7)
    assert {r.provider_sid for r in world.inbound()} == sids
    second = world.poll(page_size=3)  # the same day, inside the skew window
    assert (second["fetched"], second["new"], second["duplicates"]) == (7, 0, 7)
    assert len(world.inbound()) == 7
    assert len(world.smtp.messages) == 7  # T1 got one email per reply, each once
    assert sorted(m["Subject"] for m in world.smtp.messages) == sorted(
        f"New reply from FirstS{i} LastS{i} (S{i})" for i in range(7)
    )


class Crash(BaseException):
    """The poller's process dying (not an error the poll may catch)."""


@pytest.mark.parametrize("stage", ["fetched", "stored"])
def test_crash_after_fetch_before_commit_loses_nothing_and_doubles_nothing(
    make_college: Callable[..., College], stage: str
) -> None:
    world = make_college(2)
    world.text(0, "STOP")
    world.text(1, "Can we meet Tuesday?")

    def crash(at: str) -> None:
        if at == stage:
            raise Crash(at)

    with pytest.raises(Crash):
        run_poll(world.settings, env=world.env, checkpoint=crash)
    assert world.inbound() == []
    assert world.consent(world.students[0]) == ("opted_in", "auto")
    with Session(world.env.engine) as s:
        assert s.get(PollCursor, CURSOR) is None
    result = world.poll()
    assert (result["new"], result["opt_outs"], result["replies"]) == (2, 1, 1)
    assert world.consent(world.students[0]) == ("opted_out", "stop")
    with Session(world.env.engine) as s:
        stops = s.execute(
            select(func.count()).select_from(ConsentEvent).where(ConsentEvent.source == "stop")
        ).scalar_one()
        assert stops == 1
    assert len(world.smtp.messages) == 1


def test_cursor_moves_with_each_committed_poll(make_college: Callable[..., College]) -> None:
    world = make_college(1)
    world.text(0, "first")
    first = world.poll()
    assert first["cursor_before"] is None and first["cursor"] is not None
    world.text(0, "second")
    second = world.poll()
    assert second["cursor_before"] == first["cursor"] and second["cursor"] >= first["cursor"]
    assert second["new"] == 1


# --- matching -------------------------------------------------------------------------------


def test_reply_is_matched_to_student_staff_and_the_text_it_answers(
    make_college: Callable[..., College],
) -> None:
    world = make_college(2, t2=True, texted=True)
    world.text(1, "Sure, see you then")
    world.poll()
    [row] = world.inbound()
    with Session(world.env.engine) as s:
        student = s.get(Person, row.person_id)
        staff = s.get(Person, row.staff_person_id)
        original = s.get(Message, row.in_reply_to_id)
    assert (student.sis_id, staff.sis_id) == ("S1", "T1")
    assert original.kind == "campaign" and original.from_addr == world.t1
    assert original.body == "Hi FirstS1, forms are due."


def test_unknown_sender_and_unknown_number_are_stored_and_reported(
    make_college: Callable[..., College],
) -> None:
    world = make_college(1)
    world.text(UNKNOWN, "hi, is this the advising office?")
    world.text(0, "hello?", to="+12125550999")  # a number that is not a sender number
    result = world.poll()
    assert (result["new"], result["unknown_senders"], result["not_our_number"]) == (2, 1, 1)
    rows = {r.from_e164: r for r in world.inbound()}
    assert rows[UNKNOWN].person_id is None and rows[UNKNOWN].staff_person_id is not None
    assert rows[world.students[0]].staff_person_id is None
    [mail] = world.smtp.messages  # only the message to T1's number has someone to tell
    assert "An unknown number (+1******0199)" in text_of(mail)
    assert UNKNOWN not in text_of(mail)


# --- notifications ----------------------------------------------------------------------------


def test_staff_get_one_email_per_conversation_with_the_replies_and_the_original(
    make_college: Callable[..., College],
) -> None:
    world = make_college(3, t2=True, texted=True)
    world.text(0, "Is the form online?")
    world.text(1, "Done!")
    world.emulator.advance(1)  # a second later: within one second their order is unknowable
    world.text(0, "And is it due Friday?")
    world.text(2, "Thanks", to=world.t2)
    result = world.poll()
    assert (result["notifications_sent"], result["replies_notified"]) == (3, 4)
    mails = {m["Subject"]: m for m in world.smtp.messages}
    assert {s: m["To"] for s, m in mails.items()} == {
        "2 new replies from FirstS0 LastS0 (S0)": "t1@college.edu",
        "New reply from FirstS1 LastS1 (S1)": "t1@college.edu",
        "New reply from FirstS2 LastS2 (S2)": "t2@college.edu",
    }
    s0 = text_of(mails["2 new replies from FirstS0 LastS0 (S0)"])
    for needle in (
        "FirstS0 LastS0 (student id S0)",
        "Is the form online?",
        "And is it due Friday?",
        "In answer to your text of",
        "Hi FirstS0, forms are due.",
    ):
        assert needle in s0
    assert s0.index("Is the form online?") < s0.index("And is it due Friday?")
    assert "Done!" in text_of(mails["New reply from FirstS1 LastS1 (S1)"])
    assert world.students[0] not in s0  # numbers are not needed to answer: never shown
    assert world.poll()["notifications_sent"] == 0  # each reply is notified once


def test_failed_email_is_retried_next_poll_never_lost(make_college: Callable[..., College]) -> None:
    world = make_college(2)
    world.text(0, "first reply")
    world.smtp.handler.fail_with = "451 try later"
    down = world.poll()
    assert (down["notifications_sent"], down["notifications_failed"], down["pending"]) == (0, 1, 1)
    assert not any(r.notified for r in world.inbound())
    world.text(1, "second reply")
    world.smtp.handler.fail_with = None
    up = world.poll()
    assert (up["notifications_sent"], up["replies_notified"], up["pending"]) == (2, 2, 0)
    first, second = sorted(world.smtp.messages, key=lambda m: "second reply" in text_of(m))
    assert "first reply" in text_of(first) and "second reply" in text_of(second)
    assert all(r.notified for r in world.inbound())
    assert world.poll()["notifications_sent"] == 0


def test_nudge_answers_keywords_itself_only_when_configured(
    make_college: Callable[..., College],
) -> None:
    world = make_college(1, keyword_replies=True, help_text="Call advising at 555-0100.")
    world.text(0, "HELP")
    result = world.poll()
    assert result["keyword_replies_sent"] == 1
    assert world.poll()["keyword_replies_sent"] == 0  # answered once
    with Session(world.env.engine) as s:
        [answer] = s.execute(select(Message).where(Message.kind == "keyword_reply")).scalars()
    assert (answer.to_addr, answer.from_addr, answer.body) == (
        world.students[0],
        world.t1,
        "Call advising at 555-0100.",
    )
    assert all(r.handled for r in world.inbound())


def test_keyword_replies_are_off_by_default(make_college: Callable[..., College]) -> None:
    world = make_college(1)
    world.text(0, "HELP")
    before = world.emulator.counters()["create_requests"]
    assert world.poll()["keyword_replies_sent"] == 0
    assert world.emulator.counters()["create_requests"] == before


# --- delivery statuses -------------------------------------------------------------------------


def test_delivery_statuses_are_refreshed_and_not_sms_capable_numbers_disabled(
    live_settings: Settings,
    emulator: Any,
    college: Callable[..., list[str]],
    make_env: Callable[..., Env],
    smtp: Any,
) -> None:
    numbers = college(3)
    configure(live_settings, quiet_hours="off")
    emulator.control(recipient_errors={numbers[0]: 30005, numbers[1]: 30003})
    env = make_env()
    world = College(live_settings, env, emulator, smtp, numbers, "", None)
    sent = world.campaign()
    assert sent["sms"] == 3
    result = world.poll()
    assert result["statuses_updated"] == 6  # three notices, three messages
    assert (result["delivered"], result["undelivered"], result["numbers_disabled"]) == (2, 4, 1)
    with Session(env.engine) as s:
        by_number = {(m.to_addr, m.kind): m for m in s.execute(select(Message)).scalars()}
        phone = s.execute(select(PhoneNumber).where(PhoneNumber.e164 == numbers[0])).scalar_one()
        s0 = s.execute(select(Person).where(Person.sis_id == "S0")).scalar_one()
        s1 = s.execute(select(Person).where(Person.sis_id == "S1")).scalar_one()
    assert (
        by_number[numbers[0], "campaign"].status,
        by_number[numbers[0], "campaign"].error_code,
    ) == ("undelivered", 30005)
    assert by_number[numbers[2], "campaign"].status == "delivered"
    assert by_number[numbers[2], "campaign"].delivered_at is not None
    assert (phone.disabled_by_carrier, phone.carrier_error_code, s0.sms_e164) == (True, 30005, None)
    assert s1.sms_e164 == numbers[1]  # 30003 is transient: the number stays
    assert world.poll()["statuses_updated"] == 0  # final statuses are not fetched again
    later = world.campaign(message="Hi {first_name}, reminder")
    assert (later["sms"], later["email"]) == (2, 1)


# --- replying and the inbox ------------------------------------------------------------------


def test_staff_without_role_may_reply_inside_a_conversation_but_not_start_one(
    make_college: Callable[..., College],
) -> None:
    world = make_college(2)
    refused = run_reply(
        world.settings, sender_id="N1", student_id="S0", message="Hi, it's Nia", env=world.env
    )
    assert refused["status"] == "refused" and "may not send texts" in refused["refused_reason"]
    nia_number = "+12125550188"
    with Session(world.env.engine) as s:  # Nia texted once, when she still held the role
        nia = s.execute(select(Person).where(Person.sis_id == "N1")).scalar_one()
        s.add(SenderNumber(staff_person_id=nia.id, e164=nia_number, status="active"))
        s.commit()
    world.text(0, "Hi Ms Moss, question about my schedule {yes}", to=nia_number)
    world.poll()
    answer = run_reply(
        world.settings,
        sender_id="N1",
        student_id="S0",
        message="Sure {first_name}? Come by at 3",
        env=world.env,
    )
    assert (answer["status"], answer["sms"], answer["conversation"], answer["marked_read"]) == (
        "completed",
        1,
        True,
        1,
    )
    with Session(world.env.engine) as s:
        sms = s.execute(select(Message).where(Message.kind == "reply")).scalar_one()
    assert (sms.from_addr, sms.to_addr, sms.body) == (
        nia_number,
        world.students[0],
        "Sure {first_name}? Come by at 3",
    )
    still = run_reply(world.settings, sender_id="N1", student_id="S1", message="Hi", env=world.env)
    assert still["status"] == "refused" and still["conversation"] is False


def test_reply_still_honours_opt_out(make_college: Callable[..., College]) -> None:
    world = make_college(1)
    world.text(0, "Thanks!")
    world.text(0, "STOP")
    world.poll()
    answer = run_reply(
        world.settings, sender_id="T1", student_id="S0", message="You're welcome", env=world.env
    )
    assert (answer["sms"], answer["email"], answer["by_reason"]) == (0, 1, {"opted_out": 1})
    assert answer["marked_read"] == 1


def test_inbox_lists_conversations_with_unread_counts(make_college: Callable[..., College]) -> None:
    world = make_college(3, t2=True)
    for student, body, to in ((0, "one", None), (0, "two", None), (1, "hello T2", world.t2)):
        world.text(student, body, to=to)
        world.emulator.advance(1)  # within one second Twilio lists by SID, not by arrival
    world.text(2, "STOP")
    world.poll()
    with Session(world.env.engine) as s:
        rows = [c.as_dict() for c in inbox(session=s)]
    assert [(r["student_id"], r["staff_id"], r["unread"], r["last_reply"]) for r in rows] == [
        ("S1", "T2", 1, "hello T2"),
        ("S0", "T1", 2, "two"),
    ]
    run_reply(world.settings, sender_id="T1", student_id="S0", message="Got it", env=world.env)
    with Session(world.env.engine) as s:
        t1 = s.execute(select(Person).where(Person.sis_id == "T1")).scalar_one()
        assert inbox(session=s, staff_person_id=t1.id, unread_only=True) == []
        assert [c.unread for c in inbox(session=s, staff_person_id=t1.id)] == [0]


def test_poll_reports_every_promised_key_and_survives_a_twilio_outage(
    make_college: Callable[..., College],
) -> None:
    world = make_college(1)
    world.text(0, "Are you there?")
    world.smtp.handler.fail_with = "451 try later"
    assert world.poll()["notifications_failed"] == 1
    world.smtp.handler.fail_with = None
    world.emulator.control(share_5xx=1.0, fault_scope="all")
    outage = run_poll(world.settings, env=world.env)
    assert set(POLL_KEYS) <= set(outage)
    assert outage["errors"] and outage["errors"][0].startswith("fetch:")
    assert outage["notifications_sent"] == 1  # the pending email still went out


# --- the command line ----------------------------------------------------------------------


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch) -> Callable[..., Callable[..., tuple[int, str]]]:
    """Run ``nudge <args>`` (the reply commands) against a world's database and services."""
    import typer
    from typer.testing import CliRunner

    from nudge.cli import reply_cmds
    from nudge.settings import get_settings

    app = typer.Typer()
    reply_cmds.register(app)
    app.command("noop", hidden=True)(lambda: None)  # keep the group a multi-command app

    def bind(world: College) -> Callable[..., tuple[int, str]]:
        conf = world.settings
        for key, value in {
            "DATABASE_URL": conf.database_url,
            "TWILIO_BASE_URL": conf.twilio_base_url,
            "SMTP_HOST": conf.smtp_host,
            "SMTP_PORT": str(conf.smtp_port),
            "OUTBOX_DIR": str(conf.outbox_dir),
        }.items():
            monkeypatch.setenv(f"NUDGE_{key}", str(value))
        monkeypatch.delenv("PREFECT_API_URL", raising=False)
        get_settings.cache_clear()

        def run(*args: str) -> tuple[int, str]:
            result = CliRunner().invoke(app, list(args))
            return result.exit_code, result.stdout

        return run

    yield bind  # type: ignore[misc]
    get_settings.cache_clear()


def test_cli_poll_inbox_reply_round_trip(
    make_college: Callable[..., College], cli: Callable[..., Callable[..., tuple[int, str]]]
) -> None:
    import json

    world = make_college(2, texted=True)
    run = cli(world)
    world.text(0, "Can I switch sections?")
    code, out = run("poll", "--json")
    polled = json.loads(out)
    assert code == 0 and set(POLL_KEYS) <= set(polled) and polled["new"] == 1
    code, out = run("inbox", "--unread", "--json")
    [conversation] = json.loads(out)["conversations"]
    assert (conversation["student_id"], conversation["unread"]) == ("S0", 1)
    code, out = run(
        "reply", "--sender", "T1", "--student", "S0", "--message", "Yes, see me", "--json"
    )
    replied = json.loads(out)
    assert code == 0 and (replied["sms"], replied["marked_read"]) == (1, 1)
    code, out = run("inbox", "--unread")
    assert (code, out.strip()) == (0, "no conversations")
    code, out = run("reply", "--sender", "N1", "--student", "S1", "--message", "Hi", "--json")
    assert code == 3 and json.loads(out)["status"] == "refused"


def test_cli_consent_show_set_resolve_keep_an_audit_trail(
    make_college: Callable[..., College], cli: Callable[..., Callable[..., tuple[int, str]]]
) -> None:
    import json

    world = make_college(1)
    run = cli(world)
    number = world.students[0]
    world.text(0, "wrong number")
    world.poll()
    code, out = run("consent", "resolve", "S0", "--reason", "called the student", "--json")
    assert code == 0 and json.loads(out)["resolved"][0]["status"] == "opted_in"
    code, _ = run("consent", "resolve", "S0", "--reason", "again")
    assert code == 1  # nothing paused any more
    code, out = run(
        "consent",
        "set",
        "(212) 555-1000",
        "--status",
        "opted_out",
        "--reason",
        "asked by phone",
        "--sender",
        world.t1,
        "--json",
    )
    assert code == 0 and json.loads(out)["changed"][0]["scope"] == "sender +1******0101"
    code, out = run("consent", "show", "S0", "--json")
    shown = json.loads(out)
    assert shown["numbers"] == ["+1******1000"] and number not in out
    assert [(e["status"], e["source"], e["scope"]) for e in shown["events"]] == [
        ("opted_in", "auto", "institution"),
        ("paused_for_review", "reply_review", "institution"),
        ("opted_in", "admin", "institution"),
        ("opted_out", "admin", "sender +1******0101"),
    ]
    assert shown["events"][1]["inbound_sid"] == world.inbound()[0].provider_sid
    assert shown["events"][3]["reason"] == "asked by phone"
    code, out = run("consent", "show", number, "--reveal")
    assert code == 0 and number in out
    code, out = run("consent", "set", "S0", "--status", "paused_for_review", "--reason", "x")
    assert code == 2  # only opted_in / opted_out may be set by hand
