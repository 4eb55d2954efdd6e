"""Deployment entrypoint ``poll-mailbox`` (every minute, beside ``poll-replies``): staff and
students answer by email.

:func:`run_mail_poll` is the order of one pass, written once: read the reply mailbox's
headers, leave alone every mail without a token of ours, fetch the rest in batches, record
each mail once and act on it (``tasks/mailbox.py``) — a staff member's answer is texted to
the student as a reply campaign keyed by the mail (:func:`flows.poll_replies.run_reply`:
consent, quota, quiet hours and email fallback apply), a student's answer is recorded in
their thread — then move what was handled out of the folder, and send the notifications,
bounce-backs and review reports the pass put in the outbox.

A pass that dies anywhere acts on nothing twice: the receipt of each mail (unique by
Message-ID) is written before it is acted on, the reply campaign is planned once per mail,
and a mail is moved only after its receipt is final.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

from prefect import flow

from domain.mail_text import parse_mail
from domain.outbox import Kind
from domain.reply_tokens import tokens_in
from nudge import wiring
from nudge.settings import Settings
from tasks import mailbox as mail_tasks
from tasks.env import Env
from tasks.outbox_loose import deliver_loose
from tasks.runtime import run_logger

#: Keys ``nudge poll-mail --json`` always prints.
MAIL_POLL_KEYS = (
    "fetched",
    "ignored",
    "sent",
    "sent_by_email",
    "deferred",
    "bounced",
    "recorded",
    "refused",
    "auto_replies",
    "already_handled",
    "emails_sent",
)
#: Mails fetched (whole) per round trip: bounds memory on a full mailbox.
FETCH_BATCH = 50


class MailHeadersLike(Protocol):
    """What the poll reads of a mail before fetching it (``adapters.mail.imap``)."""

    @property
    def uid(self) -> int: ...
    @property
    def to(self) -> list[str]: ...


class OpenMailbox(Protocol):
    """An open reply mailbox (``adapters.mail.imap.Mailbox`` inside its ``with``)."""

    def headers(self, limit: int | None = None) -> Sequence[MailHeadersLike]: ...
    def fetch(self, uids: Sequence[int]) -> dict[int, bytes]: ...
    def move(self, uids: Sequence[int], folder: str) -> None: ...


class MailPollFailed(RuntimeError):
    """The pass could not read the mailbox, or a step failed (the message says which)."""


def _batches(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def run_mail_poll(
    settings: Settings,
    *,
    env: Env | None = None,
    mailbox: Callable[[], AbstractContextManager[OpenMailbox]] | None = None,
    engine: bool = False,
    checkpoint: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """One pass over the reply mailbox (``nudge poll-mail``); returns the figures
    (``MAIL_POLL_KEYS``, ``errors``, ``seconds``).

    Raises ``ValueError`` when the mailbox is not configured and
    ``adapters.mail.imap.MailboxError`` when it cannot be read. ``checkpoint`` is called
    with ``"fetched"`` after each batch is read (the fault tests stop the process there).
    """
    started = time.perf_counter()
    env = env or wiring.env(settings)
    base = settings.reply_address
    if not base:
        raise ValueError("NUDGE_REPLY_ADDRESS is not set: there is no reply mailbox to read")
    open_box = mailbox or (lambda: wiring.mailbox(settings))
    report = mail_tasks.MailPollReport()
    folders = {
        mail_tasks.HANDLED: settings.imap_handled_folder,
        mail_tasks.REVIEW: settings.imap_review_folder,
    }
    with open_box() as box:
        ours: list[tuple[int, list[str]]] = []
        for headers in box.headers():
            tokens = tokens_in(base, list(headers.to))
            if not tokens:
                report.ignored += 1
            else:
                ours.append((headers.uid, tokens))
        for batch in _batches(ours, FETCH_BATCH):
            raws = box.fetch([uid for uid, _ in batch])
            if checkpoint is not None:
                checkpoint("fetched")
            moves: dict[str, list[int]] = {mail_tasks.HANDLED: [], mail_tasks.REVIEW: []}
            for uid, tokens in batch:
                raw = raws.get(uid)
                if raw is None:
                    continue  # gone meanwhile (another poller moved it)
                report.fetched += 1
                try:
                    folder = _handle(settings, env, parse_mail(raw), tokens, report, engine)
                except Exception as exc:  # one mail never stops the others; it stays put
                    report.errors.append(f"mail uid {uid}: {type(exc).__name__}: {exc}")
                    run_logger().error("reply mailbox: mail uid %s failed", uid, exc_info=exc)
                    continue
                moves[folder].append(uid)
            for role, uids in moves.items():
                if uids:
                    box.move(uids, folders[role])
    try:
        sent = deliver_loose(env, kinds=[Kind.NOTIFICATION, Kind.ALERT]).emails
        report.emails_sent = sent.sent
    except Exception as exc:
        report.errors.append(f"emails: {type(exc).__name__}: {exc}")
    report.seconds = time.perf_counter() - started
    run_logger().info(
        "mail poll: %d read, %d answers sent, %d deferred, %d bounced, %d student emails "
        "recorded, %d refused, %d left alone",
        report.fetched,
        report.sent,
        report.deferred,
        report.bounced,
        report.recorded,
        report.refused,
        report.ignored,
    )
    return report.as_dict()


def _handle(
    settings: Settings,
    env: Env,
    mail: Any,
    tokens: list[str],
    report: mail_tasks.MailPollReport,
    engine: bool,
) -> str:
    """Record one mail and act on it; returns its folder role (handled or review)."""
    from flows.poll_replies import run_reply

    step = mail_tasks.record_mail(env, mail, tokens, report)
    if isinstance(step, mail_tasks.Handled):
        return step.folder
    result = run_reply(
        settings,
        sender_id=step.staff_sis_id,
        student_id=step.student_sis_id,
        message=step.text,
        engine=engine,
        env=env,
        created_by=f"email:{step.staff_sis_id}",
        request_key=step.request_key,
    )
    campaign_id = result.get("campaign_id")
    mail_tasks.finish_answer(env, step, campaign_id, report, result.get("refused_reason"))
    return mail_tasks.HANDLED


@flow(name="poll-mailbox", log_prints=False)
def poll_mailbox() -> dict[str, Any]:
    """Read the reply mailbox: text staff members' email answers to their students, record
    students' email answers in their thread, keep forged or tampered mails for review.
    Scheduled every minute. Fails (red in the UI) when the mailbox cannot be read or a mail
    failed; the figures say how many of each."""
    result = run_mail_poll(wiring.settings(), engine=True)
    if result["errors"]:
        raise MailPollFailed("; ".join(result["errors"]))
    return result


__all__ = ["FETCH_BATCH", "MAIL_POLL_KEYS", "MailPollFailed", "poll_mailbox", "run_mail_poll"]
