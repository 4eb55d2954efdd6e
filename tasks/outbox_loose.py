"""Messages outside campaigns: staff notifications, alert emails and nudge's own keyword
answers (STOP/START/HELP), and the campaign messages no chunk pass will look at again.

Each pass takes the same outbox steps as a campaign (``tasks/outbox.py``): emails through
``tasks/outbox_email.py``, keyword answers as paced SMS groups through
``tasks/outbox_sms.py`` (counted against the quota, never refused by it: carriers require
the answer). What a crash left ``sending`` is settled first, once no request for it can
still be in flight.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session

from adapters.twilio.errors import SendOutcome
from adapters.twilio.types import SmsGateway
from domain.outbox import Kind, OutChannel, Status
from domain.quota import message_cost, month_key
from models.chunks import new_token
from models.config import load_config
from models.notifications import address_notifications
from models.notifications import mark_notified as notified
from models.outbox import OutRow, move, settle
from models.outbox_loose import load_loose
from models.outbox_recovery import close_unsendable, orphaned_sending, stale_sending
from models.quota import release
from tasks.env import Env
from tasks.outbox import settled_before
from tasks.outbox_email import EmailReport, send_emails, settle_stale_emails
from tasks.outbox_sms import (
    MARK_LEAD_S,
    MAX_SMS_ATTEMPTS,
    MarkRule,
    SmsJob,
    calls_of,
    group_size,
    keep_for_reconciliation,
    mark_jobs,
    reconcile_sms,
    record_retry,
    record_sent,
    send_jobs,
)
from tasks.pacing import SharedPacer, wait_until


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


def deliver_emails(env: Env, *, kinds: Sequence[Kind], limit: int = 1000) -> LooseReport:
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


async def deliver_keyword_replies(env: Env, *, window: timedelta, limit: int = 500) -> LooseReport:
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
    env: Env,
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
    env: Env,
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


def settle_orphans(env: Env) -> int:
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
    "KEYWORD_REPLY_VALIDITY_S",
    "LooseReport",
    "alert_rows",
    "deliver_emails",
    "deliver_keyword_replies",
    "deliver_loose",
    "mark_notified",
    "settle_orphans",
]
