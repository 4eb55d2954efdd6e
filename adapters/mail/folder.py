"""The outbox folder: each email written as an ``.eml`` file (the embedded default, used
when no SMTP server is configured; no mail server needed).

A file is named after the email's Message-ID, so writing the same outbox row again replaces
its file, and written atomically and fsynced, since "sent" is recorded right after.
"""

from __future__ import annotations

import contextlib
import os
import re
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

from adapters.mail.errors import MailTransient
from adapters.mail.message import prepare
from adapters.mail.protocol import Email, MailResult, MailSession
from adapters.mail.sending import reported, send_many

_FILE_UNSAFE = re.compile(r"[^A-Za-z0-9._=-]")


def _eml_name(message_id: str) -> str:
    return _FILE_UNSAFE.sub("_", message_id.strip("<>")) + ".eml"


class _OutboxSession:
    def __init__(self, folder: Path, sender: str) -> None:
        self.folder = folder
        self.sender = sender

    def send(self, email: Email) -> MailResult:
        prepared = prepare(email, self.sender, "\n")
        if isinstance(prepared, MailResult):
            return reported(prepared)
        # Named after the Message-ID: writing the same outbox key again replaces the file.
        target = self.folder / _eml_name(prepared.message_id)
        tmp = self.folder / f".{target.name}.{uuid.uuid4().hex}.part"
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            try:
                with tmp.open("wb") as f:
                    f.write(prepared.data)
                    f.flush()
                    os.fsync(f.fileno())  # "sent" is recorded next: the file must survive
                tmp.replace(target)  # atomic: a reader never sees half an email
            finally:
                tmp.unlink(missing_ok=True)
        except OSError as exc:
            return reported(MailResult(prepared.message_id, MailTransient(f"outbox write: {exc}")))
        return MailResult(prepared.message_id)


class OutboxMailer:
    """Writes each email as an ``.eml`` file (the embedded default: no mail server needed)."""

    def __init__(self, folder: Path, sender: str) -> None:
        self.folder = folder
        self.sender = sender

    def describe(self) -> str:
        """The outbox folder."""
        return f"outbox folder {self.folder}"

    @contextlib.contextmanager
    def open(self) -> Iterator[MailSession]:
        """A session writing into the folder (created on the first email)."""
        yield _OutboxSession(self.folder, self.sender)

    def send_many(self, emails: Sequence[Email]) -> list[MailResult]:
        """Write every email to the outbox folder."""
        return send_many(self, self.sender, emails)


__all__ = ["OutboxMailer"]
