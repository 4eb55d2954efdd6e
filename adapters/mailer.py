"""Email out: SMTP when ``NUDGE_SMTP_HOST`` is set, else ``.eml`` files in an outbox folder.

Used for the email fallback of campaigns, reply notifications to staff and data-quality
alerts. One error taxonomy::

    MailError                 a message was not handed over
     ├── MailTransient        try again later (connection refused/reset, timeout, 4xx)
     └── MailPermanent        this message will never go (5xx for the recipient, no address)

Message bodies are never logged; addresses are logged only at DEBUG.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Protocol

from nudge.settings import Settings

log = logging.getLogger(__name__)


class MailError(Exception):
    """A message was not handed over."""


class MailTransient(MailError):
    """Worth retrying later: the server was unreachable or said 'try again'."""


class MailPermanent(MailError):
    """Retrying will not help: the server refused this recipient or message."""


@dataclass(frozen=True, slots=True)
class Email:
    """One plain-text email."""

    to: str
    subject: str
    body: str
    reply_to: str | None = None
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class MailResult:
    """What happened to one email: ``error`` is None when it was handed over."""

    message_id: str
    error: MailError | None = None

    @property
    def ok(self) -> bool:
        """True when the email was handed over (SMTP accepted it, or it is in the outbox)."""
        return self.error is None


class Mailer(Protocol):
    """Sends emails; never raises for one bad message, reports it in its result."""

    def send_many(self, emails: Sequence[Email]) -> list[MailResult]:
        """Send every email, in order; one result per email."""
        ...

    def describe(self) -> str:
        """Where mail goes, without secrets (for the demo and logs)."""
        ...


def _build(email: Email, sender: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = email.to
    msg["Subject"] = email.subject
    msg["Date"] = formatdate(localtime=False, usegmt=True)
    msg["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or "nudge.local")
    if email.reply_to:
        msg["Reply-To"] = email.reply_to
    for name, value in email.headers:
        msg[name] = value
    msg.set_content(email.body)
    return msg


class OutboxMailer:
    """Writes each email as an ``.eml`` file (the embedded default: no mail server needed)."""

    def __init__(self, folder: Path, sender: str) -> None:
        self.folder = folder
        self.sender = sender

    def describe(self) -> str:
        """The outbox folder."""
        return f"outbox folder {self.folder}"

    def send_many(self, emails: Sequence[Email]) -> list[MailResult]:
        """Write every email to the outbox folder."""
        self.folder.mkdir(parents=True, exist_ok=True)
        results = []
        for email in emails:
            if not email.to:
                results.append(MailResult("", MailPermanent("no recipient address")))
                continue
            msg = _build(email, self.sender)
            message_id = str(msg["Message-ID"])
            name = message_id.strip("<>").replace("@", "_").replace("/", "_") + ".eml"
            tmp = self.folder / (name + ".part")
            try:
                tmp.write_bytes(msg.as_bytes())
                tmp.replace(self.folder / name)  # atomic: a reader never sees half an email
            except OSError as exc:
                results.append(MailResult(message_id, MailTransient(f"outbox write: {exc}")))
                continue
            results.append(MailResult(message_id))
        return results


class SmtpMailer:
    """Sends through an SMTP server, one connection per batch."""

    def __init__(self, settings: Settings) -> None:
        self.host = settings.smtp_host or "localhost"
        self.port = settings.smtp_port
        self.username = settings.smtp_username
        self.password = settings.smtp_password
        self.starttls = settings.smtp_starttls
        self.timeout = settings.smtp_timeout_s
        self.sender = settings.mail_from

    def describe(self) -> str:
        """Host and port of the SMTP server."""
        return f"SMTP {self.host}:{self.port}"

    def send_many(self, emails: Sequence[Email]) -> list[MailResult]:
        """Send every email over one connection; a dropped connection fails the rest as
        transient (they are retried on the next run)."""
        if not emails:
            return []
        built = [_build(e, self.sender) for e in emails]
        try:
            smtp = self._connect()
        except (OSError, smtplib.SMTPException) as exc:
            err = MailTransient(f"cannot reach SMTP {self.host}:{self.port}: {exc}")
            return [MailResult(str(m["Message-ID"]), err) for m in built]
        results: list[MailResult] = []
        try:
            for email, msg in zip(emails, built, strict=True):
                message_id = str(msg["Message-ID"])
                if not email.to:
                    results.append(MailResult(message_id, MailPermanent("no recipient address")))
                    continue
                try:
                    smtp.send_message(msg)
                    results.append(MailResult(message_id))
                except smtplib.SMTPRecipientsRefused as exc:
                    codes = [code for code, _ in exc.recipients.values()]
                    kind = MailTransient if all(400 <= c < 500 for c in codes) else MailPermanent
                    results.append(MailResult(message_id, kind(f"recipient refused: {codes}")))
                except smtplib.SMTPResponseException as exc:
                    kind = MailTransient if 400 <= exc.smtp_code < 500 else MailPermanent
                    results.append(MailResult(message_id, kind(f"SMTP {exc.smtp_code}")))
                except (OSError, smtplib.SMTPServerDisconnected) as exc:
                    err = MailTransient(f"connection lost: {exc}")
                    results.append(MailResult(message_id, err))
                    results.extend(
                        MailResult(str(m["Message-ID"]), err) for m in built[len(results) :]
                    )
                    return results
        finally:
            try:
                smtp.quit()
            except (OSError, smtplib.SMTPException):
                smtp.close()
        return results

    def _connect(self) -> smtplib.SMTP:
        smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        if self.starttls:
            smtp.starttls(context=ssl.create_default_context())
        if self.username and self.password:
            smtp.login(self.username, self.password.get_secret_value())
        return smtp


def make_mailer(settings: Settings) -> Mailer:
    """SMTP when ``NUDGE_SMTP_HOST`` is set, else the outbox folder."""
    if settings.smtp_host:
        return SmtpMailer(settings)
    return OutboxMailer(settings.outbox_dir, settings.mail_from)


__all__ = [
    "Email",
    "MailError",
    "MailPermanent",
    "MailResult",
    "MailTransient",
    "Mailer",
    "OutboxMailer",
    "SmtpMailer",
    "make_mailer",
]
