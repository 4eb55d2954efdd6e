"""The mailer against a real SMTP server (aiosmtpd) and the outbox folder."""

from __future__ import annotations

import email
import logging
from collections.abc import Iterator
from dataclasses import replace
from email.header import decode_header, make_header
from email.message import Message
from pathlib import Path
from typing import Any

import pytest

from adapters.mail.errors import (
    MailError,
    MailPermanent,
    MailTransient,
    MailUnknown,
    MailUnreachable,
)
from adapters.mail.folder import OutboxMailer
from adapters.mail.message import message_id_for
from adapters.mail.protocol import Email
from adapters.mail.smtp import SmtpMailer
from nudge import wiring
from nudge.settings import Settings
from tests.smtp import SmtpServer, free_port, run_smtp

TIMEOUT_S = 0.5


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with run_smtp() as server:
        yield server


def smtp_settings(server: SmtpServer) -> Settings:
    return Settings(
        _env_file=None,
        smtp_host=server.host,
        smtp_port=server.port,  # type: ignore[call-arg]
        smtp_timeout_s=TIMEOUT_S,
        mail_from="advising@college.edu",
    )


@pytest.fixture
def mailer(smtp: SmtpServer) -> SmtpMailer:
    return SmtpMailer(wiring.smtp_config(smtp_settings(smtp)))


def header(msg: Message, name: str) -> str:
    """A received header as text (encoded words decoded, folding undone)."""
    return str(make_header(decode_header(str(msg[name]))))


def body(msg: Message) -> str:
    """A received body as text, with the wire's CRLF line ends read as newlines."""
    payload = msg.get_payload(decode=True)
    assert isinstance(payload, bytes)
    text = payload.decode("utf-8").replace("\r\n", "\n")
    assert "\r" not in text  # no stray CR reached the wire
    return text


# --- delivery and connection reuse ----------------------------------------------------


def test_smtp_delivers_every_email(smtp: SmtpServer) -> None:
    mailer = wiring.mailer(smtp_settings(smtp))
    assert isinstance(mailer, SmtpMailer)
    results = mailer.send_many([Email("a@x.edu", "Hi", "Body A"), Email("b@x.edu", "Hi", "Body B")])
    assert [r.error for r in results] == [None, None]
    assert [m["To"] for m in smtp.messages] == ["a@x.edu", "b@x.edu"]
    assert smtp.messages[0]["From"] == "advising@college.edu"
    assert smtp.messages[0].get_payload().strip() == "Body A"
    assert smtp.connections == 1


def test_one_session_sends_many_emails_over_one_connection(
    smtp: SmtpServer, mailer: SmtpMailer
) -> None:
    with mailer.open() as session:
        assert smtp.connections == 0  # connects lazily, on the first email
        results = [session.send(Email(f"s{i}@x.edu", "Hi", f"Body {i}")) for i in range(5)]
    assert [r.ok for r in results] == [True] * 5
    assert [e.rcpt_tos for e in smtp.envelopes] == [(f"s{i}@x.edu",) for i in range(5)]
    assert smtp.connections == 1


def test_a_connection_the_server_closed_is_reopened_for_the_next_email(
    smtp: SmtpServer, mailer: SmtpMailer
) -> None:
    with mailer.open() as session:
        first = session.send(Email("a@x.edu", "Hi", "A"))
        smtp.drop_connections()  # as a server does with an idle connection
        second = session.send(Email("b@x.edu", "Hi", "B"))
    assert (first.error, second.error) == (None, None)
    assert [m["To"] for m in smtp.messages] == ["a@x.edu", "b@x.edu"]
    assert smtp.connections == 2


def test_non_ascii_address_goes_with_smtputf8(smtp: SmtpServer, mailer: SmtpMailer) -> None:
    [result] = mailer.send_many([Email("José Pérez <josé@x.edu>", "Hola", "¿Qué tal?")])
    assert result.ok
    [envelope] = smtp.envelopes
    assert envelope.rcpt_tos == ("josé@x.edu",)
    assert body(envelope.message).strip() == "¿Qué tal?"


# --- outcome taxonomy -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("knob", "reply", "error"),
    [
        pytest.param("fail_with", "451 try later", MailTransient, id="data-4xx-transient"),
        pytest.param("fail_with", "554 rejected", MailPermanent, id="data-5xx-permanent"),
        pytest.param("fail_rcpt_with", "450 mailbox busy", MailTransient, id="rcpt-4xx-transient"),
        pytest.param("fail_rcpt_with", "550 no such user", MailPermanent, id="rcpt-5xx-permanent"),
    ],
)
def test_smtp_refusals_are_classified_and_the_connection_is_kept(
    smtp: SmtpServer, mailer: SmtpMailer, knob: str, reply: str, error: type[MailError]
) -> None:
    with mailer.open() as session:
        setattr(smtp.handler, knob, reply)
        refused = session.send(Email("a@x.edu", "Hi", "Body"))
        setattr(smtp.handler, knob, None)
        after = session.send(Email("b@x.edu", "Hi", "Body"))
    assert type(refused.error) is error
    assert after.ok
    assert [e.rcpt_tos for e in smtp.envelopes] == [("b@x.edu",)]
    assert smtp.connections == 1  # RSET, not a new connection


def test_unreachable_server_is_transient_for_every_email() -> None:
    settings = Settings(
        _env_file=None,
        smtp_host="127.0.0.1",
        smtp_port=free_port(),  # type: ignore[call-arg]
        smtp_timeout_s=TIMEOUT_S,
    )
    results = wiring.mailer(settings).send_many(
        [Email("a@x.edu", "s", "b", key="m1"), Email("b@x.edu", "s", "b", key="m2")]
    )
    assert [type(r.error) for r in results] == [MailUnreachable, MailUnreachable]
    assert all(isinstance(r.error, MailTransient) for r in results)
    assert [r.message_id for r in results] == [
        message_id_for("m1", "nudge@localhost"),
        message_id_for("m2", "nudge@localhost"),
    ]


def test_a_session_tries_an_unreachable_server_again_on_the_next_email() -> None:
    settings = Settings(
        _env_file=None,
        smtp_host="127.0.0.1",
        smtp_port=free_port(),  # type: ignore[call-arg]
        smtp_timeout_s=TIMEOUT_S,
    )
    mailer = SmtpMailer(wiring.smtp_config(settings))
    with mailer.open() as session:
        down = session.send(Email("a@x.edu", "s", "b"))
        assert isinstance(down.error, MailUnreachable)
        with run_smtp() as server:
            # The server is back (on another port, same thing).
            mailer.config = replace(mailer.config, port=server.port)
            up = session.send(Email("b@x.edu", "s", "b"))
            assert up.ok
            assert [m["To"] for m in server.messages] == ["b@x.edu"]


@pytest.mark.parametrize(
    ("knobs", "server_has_it"),
    [
        pytest.param({"drop_after_data": True}, 1, id="dropped-after-data-server-kept-it"),
        pytest.param(
            {"drop_after_data": True, "record_before_reply": False},
            0,
            id="dropped-after-data-server-lost-it",
        ),
        pytest.param({"delay_s": 3 * TIMEOUT_S}, 1, id="reply-too-late-server-kept-it"),
        pytest.param(
            {"delay_s": 3 * TIMEOUT_S, "record_before_reply": False},
            0,
            id="reply-too-late-server-lost-it",
        ),
    ],
)
def test_no_reply_after_the_whole_message_is_unknown(
    smtp: SmtpServer, mailer: SmtpMailer, knobs: dict[str, Any], server_has_it: int
) -> None:
    with mailer.open() as session:
        for name, value in knobs.items():
            setattr(smtp.handler, name, value)
        unknown = session.send(Email("a@x.edu", "Hi", "Body", key="m7"))
        smtp.handler.drop_after_data, smtp.handler.delay_s = False, 0.0
        after = session.send(Email("b@x.edu", "Hi", "Body"))
    assert isinstance(unknown.error, MailUnknown)
    assert unknown.message_id == "<nudge.m7@college.edu>"
    assert after.ok  # the session reconnected
    assert smtp.connections == 2
    to_a = [m for m in smtp.messages if m["To"] == "a@x.edu"]
    assert len(to_a) == server_has_it
    # The admin finds the undecided email on the server by its Message-ID.
    assert [m["Message-ID"] for m in to_a] == [unknown.message_id] * server_has_it


# --- header safety and poison isolation ------------------------------------------------

EVIL = "x@evil.example"
SENT_HEADERS = {
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "Reply-To",
    "X-Note",
    "Content-Type",
    "Content-Transfer-Encoding",
    "MIME-Version",
}


@pytest.mark.parametrize(
    ("poison", "expected"),
    [
        pytest.param(
            {"subject": "Hi\nBcc: " + EVIL}, ("Subject", "Hi Bcc: " + EVIL), id="subject-lf"
        ),
        pytest.param(
            {"subject": "Hi\r\nBcc: " + EVIL}, ("Subject", "Hi Bcc: " + EVIL), id="subject-crlf"
        ),
        pytest.param({"subject": "Hi\x00there"}, ("Subject", "Hi there"), id="subject-nul"),
        pytest.param(
            {"subject": "Ann\nBcc: " + EVIL},
            ("Subject", "Ann Bcc: " + EVIL),
            id="subject-first-name",
        ),
        pytest.param(
            {"subject": "Hi \t\x85\u2028 you"},
            ("Subject", "Hi you"),
            id="subject-c1-and-separators",
        ),
        pytest.param({"subject": "é" * 500}, ("Subject", "é" * 199 + "…"), id="subject-too-long"),
        pytest.param({"to": "p@x.edu\nBcc: " + EVIL}, None, id="to-lf"),
        pytest.param({"to": "p@x.edu\r\nBcc: " + EVIL}, None, id="to-crlf"),
        pytest.param({"to": "p@x.edu\x00"}, None, id="to-nul"),
        pytest.param({"to": "Ann\nBcc: " + EVIL + " <p@x.edu>"}, None, id="to-first-name"),
        pytest.param({"to": "Ann Bcc: " + EVIL}, None, id="to-group-syntax"),
        pytest.param({"to": "p@x.edu Bcc: " + EVIL}, None, id="to-trailing-header"),
        pytest.param({"to": "p@x.edu, " + EVIL}, None, id="to-two-addresses"),
        pytest.param({"to": "p@x.edu;" + EVIL}, None, id="to-semicolon-list"),
        pytest.param({"to": ""}, None, id="to-empty"),
        pytest.param({"to": "   "}, None, id="to-blank"),
        pytest.param({"to": "not-an-address"}, None, id="to-no-domain"),
        pytest.param({"to": "p@"}, None, id="to-parser-crash"),
        pytest.param({"reply_to": "r@x.edu\nBcc: " + EVIL}, None, id="reply-to-lf"),
        pytest.param({"reply_to": "r@x.edu, " + EVIL}, None, id="reply-to-two-addresses"),
        pytest.param(
            {"headers": (("X-Note", "a\nBcc: " + EVIL),)},
            ("X-Note", "a Bcc: " + EVIL),
            id="header-value-lf",
        ),
        pytest.param({"headers": (("Bcc", EVIL),)}, None, id="header-name-reserved"),
        pytest.param({"headers": (("X-Note\nBcc", EVIL),)}, None, id="header-name-lf"),
        pytest.param({"headers": (("X Note", "x"),)}, None, id="header-name-space"),
        pytest.param({"body": "a\x00b\rc\r\nd"}, ("body", "a\ufffdb\nc\nd"), id="body-nul-and-cr"),
        pytest.param({"body": "lone surrogate \ud800"}, None, id="body-unbuildable"),
    ],
)
def test_poison_values_are_sanitised_or_refused_alone(
    smtp: SmtpServer,
    mailer: SmtpMailer,
    poison: dict[str, Any],
    expected: tuple[str, str] | None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fields: dict[str, Any] = {"to": "p@x.edu", "subject": "Hello", "body": "Body"} | poison
    caplog.set_level(logging.INFO, logger="adapters.mail")
    with mailer.open() as session:
        results = [
            session.send(Email("first@x.edu", "Hi", "Body")),
            session.send(Email(**fields)),
            session.send(Email("last@x.edu", "Hi", "Body")),
        ]
    first, poisoned, last = results
    assert first.ok and last.ok  # the other emails of the session still go
    if expected is None:
        assert isinstance(poisoned.error, MailPermanent)
        assert [e.rcpt_tos for e in smtp.envelopes] == [("first@x.edu",), ("last@x.edu",)]
    else:
        assert poisoned.ok
        assert [e.rcpt_tos for e in smtp.envelopes] == [
            ("first@x.edu",),
            ("p@x.edu",),
            ("last@x.edu",),
        ]
        name, value = expected
        got = (
            body(smtp.messages[1]).removesuffix("\n")
            if name == "body"
            else header(smtp.messages[1], name)
        )
        assert got == value
    for msg in smtp.messages:
        assert set(msg.keys()) <= SENT_HEADERS  # no Bcc, no injected header
        assert all("\n" not in header(msg, k) for k in msg)
    assert smtp.connections == 1
    # Above DEBUG only message ids and reasons: no address, no body.
    if expected is None:
        assert [r.levelname for r in caplog.records if poisoned.message_id in r.getMessage()] == [
            "INFO"
        ]
    for record in caplog.records:
        assert "x.edu" not in record.getMessage()
        assert "Body" not in record.getMessage()


def test_outbox_refuses_a_poisoned_address_and_writes_the_others(tmp_path: Path) -> None:
    mailer = OutboxMailer(tmp_path / "outbox", "nudge@college.edu")
    results = mailer.send_many(
        [
            Email("a@x.edu", "Hi\nBcc: " + EVIL, "A"),
            Email("b@x.edu\nBcc: " + EVIL, "Hi", "B"),
            Email("c@x.edu", "Hi", "C"),
        ]
    )
    assert [type(r.error) for r in results] == [type(None), MailPermanent, type(None)]
    files = sorted((tmp_path / "outbox").glob("*.eml"))
    assert len(files) == 2
    msgs = [email.message_from_bytes(f.read_bytes()) for f in files]
    assert sorted(m["To"] for m in msgs) == ["a@x.edu", "c@x.edu"]
    assert all(m["Bcc"] is None for m in msgs)


# --- stable Message-ID ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "sender", "expected"),
    [
        pytest.param("m12345", "advising@college.edu", "<nudge.m12345@college.edu>", id="plain"),
        pytest.param(
            "m12345",
            "Advising <advising@College.EDU>",
            "<nudge.m12345@college.edu>",
            id="display-name-sender",
        ),
        pytest.param("m12345", "nudge", "<nudge.m12345@nudge.local>", id="no-domain"),
        pytest.param("m12345", "a@bad_domain!", "<nudge.m12345@nudge.local>", id="bad-domain"),
        pytest.param("m/1 x", "a@c.edu", "<nudge.m=2F1=20x@c.edu>", id="unsafe-chars-escaped"),
        pytest.param("m=2F1", "a@c.edu", "<nudge.m=3D2F1@c.edu>", id="escape-char-escaped"),
        pytest.param("m>\n<@", "a@c.edu", "<nudge.m=3E=0A=3C=40@c.edu>", id="header-breakers"),
    ],
)
def test_message_id_for(key: str, sender: str, expected: str) -> None:
    assert message_id_for(key, sender) == expected


def test_message_id_for_long_keys_is_bounded_and_distinct() -> None:
    a, b = message_id_for("k" * 100, "a@c.edu"), message_id_for("k" * 101, "a@c.edu")
    assert a != b
    assert a == message_id_for("k" * 100, "a@c.edu")
    assert len(a) < 100
    with pytest.raises(ValueError, match="empty"):
        message_id_for("", "a@c.edu")


def test_same_key_carries_the_same_message_id_on_the_wire(
    smtp: SmtpServer, mailer: SmtpMailer
) -> None:
    first = mailer.send_many([Email("a@x.edu", "Hi", "Body", key="m12345")])
    again = mailer.send_many([Email("a@x.edu", "Hi", "Body", key="m12345")])
    other = mailer.send_many([Email("a@x.edu", "Hi", "Body", key="m12346")])
    assert [r.message_id for r in first + again + other] == [
        "<nudge.m12345@college.edu>",
        "<nudge.m12345@college.edu>",
        "<nudge.m12346@college.edu>",
    ]
    assert [m["Message-ID"] for m in smtp.messages] == [r.message_id for r in first + again + other]


def test_outbox_same_key_twice_is_one_file(tmp_path: Path) -> None:
    mailer = OutboxMailer(tmp_path / "outbox", "nudge@college.edu")
    with mailer.open() as session:
        first = session.send(Email("a@x.edu", "First try", "Body", key="m12345"))
        again = session.send(Email("a@x.edu", "Second try", "Body", key="m12345"))
    assert first.message_id == again.message_id == "<nudge.m12345@college.edu>"
    [path] = list((tmp_path / "outbox").iterdir())  # no .part file left behind either
    assert path.name == "nudge.m12345_college.edu.eml"
    msg = email.message_from_bytes(path.read_bytes())
    assert (msg["Message-ID"], msg["Subject"]) == ("<nudge.m12345@college.edu>", "Second try")


# --- send_many ------------------------------------------------------------------------


def test_send_many_returns_one_result_per_email_in_order(
    smtp: SmtpServer, mailer: SmtpMailer
) -> None:
    emails = [
        Email("a@x.edu", "Hi", "A", key="m1"),
        Email("b@x.edu\nBcc: " + EVIL, "Hi", "B", key="m2"),
        Email("c@x.edu", "Hi", "C", key="m3"),
        Email("", "Hi", "D", key="m4"),
        Email("e@x.edu", "Hi", "E", key="m5"),
    ]
    results = mailer.send_many(emails)
    assert [r.message_id for r in results] == [f"<nudge.m{i}@college.edu>" for i in range(1, 6)]
    assert [type(r.error) for r in results] == [
        type(None),
        MailPermanent,
        type(None),
        MailPermanent,
        type(None),
    ]
    assert [m["To"] for m in smtp.messages] == ["a@x.edu", "c@x.edu", "e@x.edu"]
    assert smtp.connections == 1
    assert mailer.send_many([]) == []


def test_outbox_writes_readable_eml_files(tmp_path: Path) -> None:
    mailer = OutboxMailer(tmp_path / "outbox", "nudge@college.edu")
    results = mailer.send_many(
        [
            Email("a@x.edu", "Reply from Ana", "Hello", reply_to="ana@x.edu"),
            Email("", "nobody", "x"),
        ]
    )
    assert results[0].ok and isinstance(results[1].error, MailPermanent)
    [path] = list((tmp_path / "outbox").glob("*.eml"))
    msg = email.message_from_bytes(path.read_bytes())
    assert (msg["To"], msg["Subject"], msg["Reply-To"]) == (
        "a@x.edu",
        "Reply from Ana",
        "ana@x.edu",
    )
    assert msg["Message-ID"] == results[0].message_id
