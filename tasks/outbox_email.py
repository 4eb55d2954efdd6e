"""Email through the outbox: one message at a time, marked ``sending``, handed to the mail
server, recorded — and the emails a crash left ``sending`` settled as ``unknown``.

Recording one email and marking the next share a transaction, so a crash leaves at most the
one email in flight undecided. SMTP cannot be asked whether it has a message, so an
undecided email is never resent automatically (``nudge outbox resend``, after checking the
mail server's log for its Message-ID).

Callers: the campaign chunk sender (``tasks/send.py``), notifications and alerts outside
campaigns (``tasks/outbox_loose.py``) and ``nudge outbox resend``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlmodel import Session

from adapters.mail.errors import MailPermanent, MailUnknown
from adapters.mail.protocol import Email, MailResult
from domain.outbox import Status
from models.outbox import Fence, OutRow, mark_sending, mark_unknown, settle, unmark
from tasks.env import Env
from tasks.reply_to import reply_addresses

log = logging.getLogger("nudge.outbox")

#: After this many passes an email that never went out is marked failed.
MAX_EMAIL_ATTEMPTS = 5
#: Consecutive transient mail failures after which a pass stops (the server is down).
MAIL_OUTAGE_AFTER = 3


@dataclass(slots=True)
class EmailReport:
    """What one pass over emails did."""

    sent: int = 0
    failed: int = 0
    retry: int = 0
    unknown: int = 0
    lost_claim: bool = False
    sent_ids: list[int] = field(default_factory=list)
    replies: int = 0
    last_error: str | None = None


def email_of(row: OutRow, reply_to: str | None = None) -> Email:
    """The email an outbox row describes (its Message-ID comes from the row's key), with
    ``reply_to`` (the conversation's reply address, ``tasks/reply_to.py``) when given."""
    extra = row.extra or {}
    return Email(
        to=row.to_addr or "",
        subject=row.subject or "",
        body=row.body,
        reply_to=reply_to or extra.get("reply_to"),
        key=row.key,
    )


def settle_stale_emails(env: Env, rows: Sequence[OutRow]) -> int:
    """Emails left ``sending`` past the in-flight bound become ``unknown``."""
    now = env.now()
    done = 0
    with Session(env.engine) as s:
        for row in rows:
            done += mark_unknown(
                session=s,
                row=row,
                now=now,
                note="left sending by a worker that stopped: the mail server may or may not "
                "have it (check its log for the Message-ID, then `nudge outbox resend`)",
            )
        s.commit()
    return done


def send_emails(
    env: Env,
    rows: Sequence[OutRow],
    *,
    token: str,
    fence: Fence | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    on_sent: Callable[[Session, OutRow], None] | None = None,
) -> EmailReport:
    """Send emails one at a time: mark (committed), hand to the server, record (committed).

    Recording one email and marking the next share a transaction, so a crash leaves at
    most the one email in flight undecided. ``on_sent`` runs in the recording transaction of
    each email the server accepted.
    """
    report = EmailReport()
    if not rows:
        return report
    outage = 0
    queue = iter(rows)
    reply_to = reply_addresses(env, rows)
    with env.mailer.open() as mail, Session(env.engine) as s:
        current = _mark_next(s, queue, token=token, fence=fence, env=env, report=report)
        s.commit()
        while current is not None:
            result = mail.send(email_of(current, reply_to.get(current.id)))
            now = env.now()
            if result.error is not None:
                report.last_error = str(result.error)
            outage = 0 if result.ok else outage
            outage += _record_email(s, current, result, now, report, on_sent)
            current = None
            if outage < MAIL_OUTAGE_AFTER and not should_stop():
                current = _mark_next(s, queue, token=token, fence=fence, env=env, report=report)
            s.commit()
        if outage >= MAIL_OUTAGE_AFTER:
            log.warning(
                "mail server failing (%s); emails wait for the next pass", report.last_error
            )
    return report


def _mark_next(
    s: Session,
    queue: Iterator[OutRow],
    *,
    token: str,
    fence: Fence | None,
    env: Env,
    report: EmailReport,
) -> OutRow | None:
    """Mark the next email of ``queue`` that is still ours to send (None: none left, or the
    chunk's claim is lost)."""
    for row in queue:
        if mark_sending(session=s, row=row, token=token, now=env.now(), fence=fence):
            return row
        if fence is not None:
            report.lost_claim = True
            return None
    return None


def _record_email(
    s: Session,
    row: OutRow,
    result: MailResult,
    now: datetime,
    report: EmailReport,
    on_sent: Callable[[Session, OutRow], None] | None,
) -> int:
    """Record one email's outcome; returns 1 when it failed for a reason worth retrying."""
    if result.ok:
        final = Status.FALLBACK_EMAIL if row.extra.get("fallback") else Status.SENT
        if settle(session=s, row=row, to=final, now=now, sent_at=now):
            report.sent += 1
            report.sent_ids.append(row.id)
            report.replies += len(row.extra.get("inbound_ids") or ()) or 1
            if on_sent is not None:
                on_sent(s, row)
        return 0
    if isinstance(result.error, MailUnknown):
        report.unknown += mark_unknown(session=s, row=row, now=now, note=str(result.error))
        return 0
    if isinstance(result.error, MailPermanent) or row.attempts >= MAX_EMAIL_ATTEMPTS:
        report.failed += settle(
            session=s, row=row, to=Status.FAILED, now=now, error_message=str(result.error)[:500]
        )
        return 0
    report.retry += unmark(session=s, row=row, now=now, error_message=str(result.error)[:500])
    return 1


__all__ = [
    "MAX_EMAIL_ATTEMPTS",
    "EmailReport",
    "email_of",
    "send_emails",
    "settle_stale_emails",
]
