"""The outbox discipline, channel by channel: mark ``sending``, call the provider, record.

Every outbound message takes the same three steps, each committed before the next:

1. **mark**: the message becomes ``sending`` under a claim token (fenced by the chunk claim
   for campaign messages), with its quota reserved;
2. **call**: the provider is called within ``send_deadline_s`` of the mark or not at all —
   the gateway refuses to start an attempt after the deadline, and the mailer is called
   right after the mark;
3. **record**: the outcome is written only while the message is still ``sending`` under
   the same token.

A crash therefore leaves at most the messages in flight undecided, and they are settled by
whoever finds them once no request for them can still be in flight
(``domain.outbox.in_flight_bound``): an SMS is looked up in the provider's message list
(found: ``sent``; not found: back to ``planned``); an email becomes ``unknown`` and is never
resent automatically, because SMTP cannot be asked (``nudge outbox resend`` after checking
the mail server's log for its Message-ID).

This module holds what every channel shares: the injected edges (:class:`SendEnv`), the
SMS group sender (paced across processes, see ``tasks/pacing.py``), reconciliation, the
email sender, and the pass over messages outside campaigns (notifications, alerts,
keyword answers). Campaign-specific checks live in ``tasks/send.py``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session

from adapters.mailer import Email, Mailer, MailPermanent, MailResult, MailUnknown, make_mailer
from adapters.twilio_gateway import SendOutcome, SendResult, SmsGateway, TwilioSmsGateway
from domain.outbox import IN_FLIGHT_MARGIN, Kind, OutChannel, Status, in_flight_bound
from domain.quota import message_cost, month_key
from models.chunks import holder_is_dead, new_token, worker_name
from models.config import load_config
from models.inbound import mark_notified as notified
from models.outbox import (
    Fence,
    OutRow,
    address_notifications,
    close_unsendable,
    load_loose,
    mark_sending,
    mark_unknown,
    move,
    note_in_flight,
    orphaned_sending,
    settle,
    stale_sending,
    unmark,
)
from models.quota import release, reserve
from models.types import utcnow
from nudge.settings import Settings
from tasks.pacing import SharedPacer, wait_until

log = logging.getLogger("nudge.outbox")

#: After this many passes an SMS that never went out falls back to email (or fails).
MAX_SMS_ATTEMPTS = 5
#: After this many passes an email that never went out is marked failed.
MAX_EMAIL_ATTEMPTS = 5
#: How long a message Twilio kept refusing as retriable waits before the next pass.
RETRY_LATER = timedelta(minutes=1)
#: Consecutive transient mail failures after which a pass stops (the server is down).
MAIL_OUTAGE_AFTER = 3
#: Marks are written this long before the first paced slot of a group (a slow commit must
#: not make the group's first sends late).
MARK_LEAD_S = 0.25
#: A send that could not start within this long after its slot takes a fresh slot instead:
#: going late would bunch it with the next slot (and the next second over the limit).
LATE_TOLERANCE_S = 0.02
#: Seconds of sends one SMS group may span (keeps every call well inside the deadline).
GROUP_SPAN_S = 2.0


@dataclass
class SendEnv:
    """The edges the send path talks to (injected, so tests use the real emulator and a
    real SMTP server), and this worker's name."""

    settings: Settings
    engine: Engine
    mailer: Mailer
    gateway_factory: Callable[[], SmsGateway]
    worker: str = field(default_factory=worker_name)
    now: Callable[[], datetime] = utcnow

    @classmethod
    def from_settings(cls, settings: Settings, engine: Engine) -> SendEnv:
        """Real Twilio (or the emulator at ``NUDGE_TWILIO_BASE_URL``) and the configured mail."""
        return cls(settings, engine, make_mailer(settings), lambda: TwilioSmsGateway(settings))

    def sms_bound(self) -> timedelta:
        """How long an SMS marked ``sending`` may still have a request in flight."""
        s = self.settings
        return in_flight_bound(deadline_s=s.send_deadline_s, call_timeout_s=s.twilio_timeout_s)

    def email_bound(self) -> timedelta:
        """How long an email marked ``sending`` may still be on its way to the server."""
        s = self.settings
        return in_flight_bound(deadline_s=s.send_deadline_s, call_timeout_s=s.smtp_timeout_s)

    def pacer(self, sender_e164: str) -> SharedPacer:
        """Send slots for ``sender_e164``, shared with every worker process."""
        s = self.settings
        return SharedPacer(
            self.engine, [("account", s.account_mps), (f"sender:{sender_e164}", s.sender_mps)]
        )


def settles_at(row: OutRow, *, bound: timedelta, now: datetime) -> datetime:
    """When no request for ``row`` (left ``sending``) can still be in flight: ``bound`` after
    it was marked, or only the margin after when its marker is a process of this host that
    has died (it can start nothing more)."""
    if row.marked_at is None:
        return now
    if holder_is_dead(row.claim_token):
        return row.marked_at + IN_FLIGHT_MARGIN
    return row.marked_at + bound


def settled_before(row: OutRow, *, bound: timedelta, now: datetime) -> bool:
    """Whether no request for ``row`` (left ``sending``) can still be in flight."""
    return settles_at(row, bound=bound, now=now) <= now


# --- SMS ---------------------------------------------------------------------------------


@dataclass(slots=True)
class SmsJob:
    """Messages to one number that go in order (an opt-in notice, then the text): each goes
    only if the one before it was sent."""

    rows: list[OutRow]
    validity_s: int
    units: dict[int, int] = field(default_factory=dict)
    results: dict[int, SendResult] = field(default_factory=dict)

    @property
    def main(self) -> OutRow:
        """The message the job is for (the last one)."""
        return self.rows[-1]


@dataclass(frozen=True, slots=True)
class MarkRule:
    """How a group of SMS is marked: the token and fence, the sender number, and the quota
    (``limit=None``: counted, never refused)."""

    token: str
    fence: Fence | None
    from_addr: str
    month: str
    limit: int | None


def group_size(env: SendEnv, pacer: SharedPacer) -> int:
    """Sends per group: at most two waves of concurrent calls, and no more than the pace
    allows in :data:`GROUP_SPAN_S` (so every call starts long before the deadline)."""
    per_send = pacer.span(1)
    by_pace = int(GROUP_SPAN_S / per_send) if per_send > 0 else 10**6
    return max(1, min(2 * env.settings.send_concurrency, by_pace))


def mark_jobs(
    s: Session, jobs: Sequence[SmsJob], rule: MarkRule, now: datetime
) -> tuple[list[SmsJob], list[SmsJob]]:
    """Reserve each job's quota (all its messages at once) and mark them ``sending``.

    Returns the jobs marked and the jobs whose quota did not fit (left as they were, for
    the caller to fall back); a job that could not be marked (the claim is lost, another
    worker has it) is in neither.
    """
    marked: list[SmsJob] = []
    over_quota: list[SmsJob] = []
    for job in jobs:
        units = sum(job.units.values())
        if not reserve(session=s, month=rule.month, units=units, limit=rule.limit):
            over_quota.append(job)
            continue
        ok = True
        for row in job.rows:
            ok = ok and mark_sending(
                session=s,
                row=row,
                token=rule.token,
                now=now,
                fence=rule.fence,
                from_addr=rule.from_addr,
                quota_units=job.units.get(row.id, 0),
                quota_month=rule.month,
            )
        if ok:
            marked.append(job)
            continue
        # The claim is gone, or another worker has one of them: undo this job's marks and
        # give its quota back (marked rows release their own units).
        marked_units = 0
        for row in job.rows:
            if row.status == Status.SENDING and row.claim_token == rule.token:
                marked_units += row.quota_units
                unmark(session=s, row=row, now=now)
        release(session=s, month=rule.month, units=units - marked_units)
    return marked, over_quota


async def send_jobs(
    env: SendEnv,
    gateway: SmsGateway,
    jobs: Sequence[SmsJob],
    *,
    times: Sequence[float],
    deadline: float,
    pacer: SharedPacer | None = None,
    gate: asyncio.Semaphore | None = None,
) -> float:
    """Call the provider for every marked job, each message at its paced slot and never
    after ``deadline``; a send late for its slot takes a fresh one from ``pacer``; ambiguous
    answers are looked up before they are recorded. Returns the seconds spent waiting on
    the provider."""
    gate = gate or asyncio.Semaphore(env.settings.send_concurrency)
    # First messages take the first slots, in job order; second ones (the texts that follow
    # an opt-in notice) the slots after all of them, so no send waits on a slot taken.
    slots: dict[int, list[float]] = {}
    second = len(jobs)
    for index, job in enumerate(jobs):
        slots[id(job)] = [times[index]]
        for _row in job.rows[1:]:
            slots[id(job)].append(times[second])
            second += 1

    async def one(row: OutRow, at: float, validity: int) -> SendResult:
        await wait_until(at)
        for _ in range(3):
            # Late for its slot (a slow notice before it, a busy loop): going now would bunch
            # it with the next slot, so it takes a fresh one — where the pace binds.
            if pacer is None or not pacer.binding or time.monotonic() - at <= LATE_TOLERANCE_S:
                break
            [at] = await asyncio.to_thread(pacer.reserve, 1)
            await wait_until(at)
        async with gate:
            assert row.to_addr is not None  # noqa: S101 - SMS rows carry the number
            return await gateway.send(
                to=row.to_addr,
                from_=row.from_addr,
                body=row.body,
                validity_period_s=validity,
                not_after=deadline,
            )

    async def run(job: SmsJob) -> None:
        for row, at in zip(job.rows, slots[id(job)], strict=True):
            result = await one(row, at, job.validity_s)
            job.results[row.id] = result
            if result.outcome is not SendOutcome.SENT:
                return

    started = time.perf_counter()
    await asyncio.gather(*(run(job) for job in jobs))
    spent = time.perf_counter() - started
    for job in jobs:
        for row in job.rows:
            result = job.results.get(row.id)
            if result is not None and result.outcome is SendOutcome.AMBIGUOUS:
                job.results[row.id] = await _look_up(gateway, row, result)
    return spent


async def _look_up(gateway: SmsGateway, row: OutRow, result: SendResult) -> SendResult:
    assert row.to_addr is not None  # noqa: S101
    found = await gateway.find_message(
        to=row.to_addr, from_=row.from_addr, body=row.body, sent_after=result.requested_at
    )
    if found is None:
        return result
    return SendResult(
        outcome=SendOutcome.SENT,
        requested_at=result.requested_at,
        attempts=result.attempts,
        sid=found.sid,
        status=found.status,
        num_segments=found.num_segments,
        from_=found.from_,
    )


def calls_of(jobs: Sequence[SmsJob]) -> int:
    """How many provider calls the jobs may make."""
    return sum(len(job.rows) for job in jobs)


def record_sent(s: Session, row: OutRow, result: SendResult, now: datetime) -> bool:
    """``sending → sent`` with the provider's SID and segment count."""
    return settle(
        session=s,
        row=row,
        to=Status.SENT,
        now=now,
        provider_sid=result.sid,
        sent_at=now,
        segments=result.num_segments or row.segments,
        error_code=None,
        error_message=None,
    )


def record_retry(s: Session, row: OutRow, result: SendResult, now: datetime) -> bool:
    """The provider did not take it (no attempt started, or retriable failures ran out):
    back to ``planned`` with the error, for a later pass."""
    return unmark(
        session=s,
        row=row,
        now=now,
        error_code=result.error_code,
        error_message=(result.message or result.outcome.value)[:500],
    )


def keep_for_reconciliation(s: Session, row: OutRow, now: datetime) -> None:
    """The answer was lost and the provider's list does not show it yet: leave it
    ``sending``; whoever finds it after the in-flight bound looks it up again."""
    note_in_flight(session=s, row=row, now=now, note="ambiguous: reconcile before resend")


async def reconcile_sms(env: SendEnv, gateway: SmsGateway, rows: Sequence[OutRow]) -> int:
    """Settle SMS left ``sending`` (no request can be in flight any more): found in the
    provider's list → ``sent``; not found → ``planned`` again. Returns how many were found."""
    found_count = 0
    for row in rows:
        assert row.to_addr is not None  # noqa: S101
        found = await gateway.find_message(
            to=row.to_addr,
            from_=row.from_addr,
            body=row.body,
            sent_after=(row.marked_at or env.now()) - timedelta(seconds=30),
        )
        now = env.now()
        with Session(env.engine) as s:
            if found is not None:
                found_count += settle(
                    session=s,
                    row=row,
                    to=Status.SENT,
                    now=now,
                    provider_sid=found.sid,
                    sent_at=found.date_created or now,
                    segments=found.num_segments or row.segments,
                    error_message=None,
                )
            else:
                unmark(session=s, row=row, now=now)
            s.commit()
    return found_count


# --- email -------------------------------------------------------------------------------


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


def email_of(row: OutRow) -> Email:
    """The email an outbox row describes (its Message-ID comes from the row's key)."""
    extra = row.extra or {}
    return Email(
        to=row.to_addr or "",
        subject=row.subject or "",
        body=row.body,
        reply_to=extra.get("reply_to"),
        key=row.key,
    )


def settle_stale_emails(env: SendEnv, rows: Sequence[OutRow]) -> int:
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
    env: SendEnv,
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
    with env.mailer.open() as mail, Session(env.engine) as s:
        current = _mark_next(s, queue, token=token, fence=fence, env=env, report=report)
        s.commit()
        while current is not None:
            result = mail.send(email_of(current))
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
    env: SendEnv,
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


# --- messages outside campaigns ------------------------------------------------------------


@dataclass(slots=True)
class LooseReport:
    """What one pass over notifications, alerts or keyword answers did."""

    emails: EmailReport = field(default_factory=EmailReport)
    sms_sent: int = 0
    sms_failed: int = 0
    sms_retry: int = 0
    expired: int = 0
    waiting: int = 0


def mark_notified(s: Session, row: OutRow) -> None:
    """Record on the replies a notification email told about that it was handed over."""
    if row.kind != Kind.NOTIFICATION:
        return
    ids = list(row.extra.get("inbound_ids") or ([row.inbound_id] if row.inbound_id else []))
    if ids:
        notified(session=s, ids=ids)


def deliver_emails(env: SendEnv, *, kinds: Sequence[Kind], limit: int = 1000) -> LooseReport:
    """Send the emails of ``kinds`` waiting outside campaigns (notifications, alerts)."""
    report = LooseReport()
    now = env.now()
    with Session(env.engine) as s:
        address_notifications(session=s)
        s.commit()
        stale = [
            r
            for r in stale_sending(
                session=s, chunk_id=None, marked_before=now, channel=OutChannel.EMAIL.value
            )
            if r.kind in kinds and settled_before(r, bound=env.email_bound(), now=now)
        ]
        rows = [
            r
            for r in load_loose(
                session=s,
                kinds=[k.value for k in kinds],
                channel=OutChannel.EMAIL.value,
                now=now,
                limit=limit,
            )
            if r.status != Status.SENDING
        ]
    settle_stale_emails(env, stale)
    report.emails = send_emails(env, rows, token=new_token(env.worker), on_sent=mark_notified)
    return report


#: nudge's own keyword answers may wait in the provider's queue at most this long.
KEYWORD_REPLY_VALIDITY_S = 4 * 3600


async def deliver_keyword_replies(
    env: SendEnv, *, window: timedelta, limit: int = 500
) -> LooseReport:
    """Send nudge's own STOP/START/HELP answers waiting in the outbox (not later than
    ``window`` after the keyword arrived). Counted against the quota, never refused by it:
    carriers require the answer."""
    report = LooseReport()
    now = env.now()
    with Session(env.engine) as s:
        config = load_config(session=s)
        stale = [
            r
            for r in stale_sending(
                session=s, chunk_id=None, marked_before=now, channel=OutChannel.SMS.value
            )
            if r.kind == Kind.KEYWORD_REPLY and settled_before(r, bound=env.sms_bound(), now=now)
        ]
        rows = load_loose(
            session=s,
            kinds=[Kind.KEYWORD_REPLY.value],
            channel=OutChannel.SMS.value,
            now=now,
            limit=limit,
        )
        late = [r.id for r in rows if r.status != Status.SENDING and r.created_at < now - window]
        report.expired = move(
            session=s, ids=late, to=Status.SKIPPED, now=now, reason="keyword_reply_too_late"
        )
        s.commit()
    ready = [r for r in rows if r.status != Status.SENDING and r.id not in set(late)]
    if not stale and not ready:
        return report
    gateway = env.gateway_factory()
    try:
        await reconcile_sms(env, gateway, stale)
        by_sender: dict[str, list[OutRow]] = {}
        for row in ready:
            by_sender.setdefault(row.from_addr or "", []).append(row)
        month = month_key(now, config.timezone)
        for sender, group in by_sender.items():
            pacer = env.pacer(sender)
            size = group_size(env, pacer)
            for start in range(0, len(group), size):
                jobs = [
                    SmsJob(
                        [row],
                        KEYWORD_REPLY_VALIDITY_S,
                        units={row.id: message_cost(max(row.segments, 1), config.quota_unit)},
                    )
                    for row in group[start : start + size]
                ]
                await _send_loose_group(env, gateway, pacer, jobs, sender, month, report)
    finally:
        await gateway.aclose()
    return report


async def _send_loose_group(
    env: SendEnv,
    gateway: SmsGateway,
    pacer: SharedPacer,
    jobs: list[SmsJob],
    sender: str,
    month: str,
    report: LooseReport,
) -> None:
    times = pacer.reserve(calls_of(jobs))
    await wait_until(times[0] - MARK_LEAD_S)
    rule = MarkRule(new_token(env.worker), None, sender, month, None)
    with Session(env.engine) as s:
        marked, _over = mark_jobs(s, jobs, rule, env.now())  # limit=None: always fits
        s.commit()
    deadline = time.monotonic() + env.settings.send_deadline_s
    await send_jobs(env, gateway, marked, times=times, deadline=deadline, pacer=pacer)
    now = env.now()
    with Session(env.engine) as s:
        for job in marked:
            row = job.main
            result = job.results.get(row.id)
            if result is None:
                continue
            outcome = result.outcome
            if outcome is SendOutcome.SENT:
                report.sms_sent += record_sent(s, row, result, now)
            elif outcome is SendOutcome.AMBIGUOUS:
                keep_for_reconciliation(s, row, now)
            elif outcome in (SendOutcome.NOT_ATTEMPTED, SendOutcome.RETRIABLE_EXHAUSTED) and (
                row.attempts < MAX_SMS_ATTEMPTS
            ):
                report.sms_retry += record_retry(s, row, result, now)
            else:
                released = settle(
                    session=s,
                    row=row,
                    to=Status.FAILED,
                    now=now,
                    error_code=result.error_code,
                    error_message=(result.message or outcome.value)[:500],
                    quota_units=0,
                )
                if released:
                    release(session=s, month=row.quota_month or "", units=row.quota_units)
                report.sms_failed += released
        s.commit()


def deliver_loose(
    env: SendEnv,
    *,
    kinds: Sequence[Kind],
    window: timedelta | None = None,
    limit: int = 1000,
) -> LooseReport:
    """One pass over messages outside campaigns: emails of ``kinds``, and keyword answers
    when ``Kind.KEYWORD_REPLY`` is among them (not later than ``window`` after the keyword)."""
    email_kinds = [k for k in kinds if k is not Kind.KEYWORD_REPLY]
    report = deliver_emails(env, kinds=email_kinds, limit=limit) if email_kinds else LooseReport()
    if Kind.KEYWORD_REPLY in kinds:
        sms = asyncio.run(deliver_keyword_replies(env, window=window or timedelta(days=1)))
        report.sms_sent, report.sms_failed = sms.sms_sent, sms.sms_failed
        report.sms_retry, report.expired = sms.sms_retry, sms.expired
    return report


def settle_orphans(env: SendEnv) -> int:
    """Settle campaign messages left ``sending`` that no chunk pass will look at again (a
    worker died in a campaign since cancelled or refused): SMS are looked up at the
    provider, emails become ``unknown``; what was never sent ends like its campaign.
    Returns how many were settled."""
    now = env.now()
    with Session(env.engine) as s:
        rows = orphaned_sending(session=s)
    sms = [
        r
        for r in rows
        if r.channel == OutChannel.SMS and settled_before(r, bound=env.sms_bound(), now=now)
    ]
    emails = [
        r
        for r in rows
        if r.channel == OutChannel.EMAIL and settled_before(r, bound=env.email_bound(), now=now)
    ]
    if sms:

        async def run() -> None:
            gateway = env.gateway_factory()
            try:
                await reconcile_sms(env, gateway, sms)
            finally:
                await gateway.aclose()

        asyncio.run(run())
    settle_stale_emails(env, emails)
    with Session(env.engine) as s:
        close_unsendable(session=s, now=env.now())
        s.commit()
    return len(sms) + len(emails)


def alert_rows(
    *, key: str, recipients: Sequence[str], subject: str, body: str, now: datetime
) -> list[dict[str, Any]]:
    """Outbox rows for one alert email to each of ``recipients`` (unique per key and
    address: an alert is sent once however often its step runs)."""
    return [
        {
            "outbox_key": f"alert:{key}:{to.strip().lower()}"[:200],
            "kind": Kind.ALERT.value,
            "channel": OutChannel.EMAIL.value,
            "to_addr": to.strip(),
            "subject": subject,
            "body": body,
            "created_at": now,
            "updated_at": now,
        }
        for to in recipients
        if to.strip()
    ]


__all__ = [
    "MAX_EMAIL_ATTEMPTS",
    "MAX_SMS_ATTEMPTS",
    "RETRY_LATER",
    "EmailReport",
    "LooseReport",
    "MarkRule",
    "SendEnv",
    "SmsJob",
    "alert_rows",
    "calls_of",
    "deliver_emails",
    "deliver_keyword_replies",
    "deliver_loose",
    "email_of",
    "group_size",
    "keep_for_reconciliation",
    "mark_jobs",
    "reconcile_sms",
    "record_retry",
    "record_sent",
    "send_emails",
    "send_jobs",
    "settle_stale_emails",
    "settled_before",
]
