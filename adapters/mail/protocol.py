"""What callers of the mail room see: an ``Email``, its ``MailResult``, and the ``Mailer``
and ``MailSession`` protocols both mailers (SMTP and the outbox folder) implement."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from adapters.mail.errors import MailError


@dataclass(frozen=True, slots=True)
class Email:
    """One plain-text email. ``key`` is the stable outbox key (e.g. ``"m12345"``): when
    set, the Message-ID is ``message_id_for(key, sender)`` on every attempt."""

    to: str
    subject: str
    body: str
    reply_to: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    key: str | None = None


@dataclass(frozen=True, slots=True)
class MailResult:
    """What happened to one email: ``error`` is None when it was handed over."""

    message_id: str
    error: MailError | None = None

    @property
    def ok(self) -> bool:
        """True when the email was handed over (SMTP accepted it, or it is in the outbox)."""
        return self.error is None


class MailSession(Protocol):
    """An open channel to the mail server (or folder); not shared between threads."""

    def send(self, email: Email) -> MailResult:
        """Hand over ONE email; never raises for a problem with it or with the server."""
        ...


class Mailer(Protocol):
    """Sends emails; never raises for one bad message, reports it in its result."""

    def open(self) -> contextlib.AbstractContextManager[MailSession]:
        """A session for sending emails one at a time; closed at the end of the block."""
        ...

    def send_many(self, emails: Sequence[Email]) -> list[MailResult]:
        """Send every email, in order; one result per email."""
        ...

    def describe(self) -> str:
        """Where mail goes, without secrets (for the demo and logs)."""
        ...


__all__ = ["Email", "MailResult", "MailSession", "Mailer"]
