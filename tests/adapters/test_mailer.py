"""The mailer against a real SMTP server (aiosmtpd) and the outbox folder."""

from __future__ import annotations

import email
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.mailer import (
    Email,
    MailPermanent,
    MailTransient,
    OutboxMailer,
    SmtpMailer,
    make_mailer,
)
from nudge.settings import Settings
from tests.smtp import SmtpServer, run_smtp


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with run_smtp() as server:
        yield server


def smtp_settings(server: SmtpServer) -> Settings:
    return Settings(
        _env_file=None,
        smtp_host=server.host,
        smtp_port=server.port,  # type: ignore[call-arg]
        mail_from="advising@college.edu",
    )


def test_smtp_delivers_every_email(smtp: SmtpServer) -> None:
    mailer = make_mailer(smtp_settings(smtp))
    assert isinstance(mailer, SmtpMailer)
    results = mailer.send_many([Email("a@x.edu", "Hi", "Body A"), Email("b@x.edu", "Hi", "Body B")])
    assert all(r.ok for r in results)
    assert [m["To"] for m in smtp.messages] == ["a@x.edu", "b@x.edu"]
    assert smtp.messages[0]["From"] == "advising@college.edu"
    assert smtp.messages[0].get_payload().strip() == "Body A"


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        pytest.param("451 try later", MailTransient, id="4xx-transient"),
        pytest.param("554 rejected", MailPermanent, id="5xx-permanent"),
    ],
)
def test_smtp_refusals_are_classified(smtp: SmtpServer, reply: str, error: type[Exception]) -> None:
    smtp.handler.fail_with = reply
    [result] = make_mailer(smtp_settings(smtp)).send_many([Email("a@x.edu", "Hi", "Body")])
    assert isinstance(result.error, error)


def test_unreachable_server_is_transient_for_every_email() -> None:
    settings = Settings(_env_file=None, smtp_host="127.0.0.1", smtp_port=1, smtp_timeout_s=1)  # type: ignore[call-arg]
    results = make_mailer(settings).send_many(
        [Email("a@x.edu", "s", "b"), Email("b@x.edu", "s", "b")]
    )
    assert [type(r.error) for r in results] == [MailTransient, MailTransient]


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
