"""Messages outside campaigns: staff notifications, alert emails, nudge's own keyword
answers (STOP/START/HELP) and crisis-line answers to urgent replies, and the campaign
messages no chunk pass will look at again.

Each pass takes the same outbox steps as a campaign (``tasks/outbox.py``): emails through
``tasks/outbox_email.py``, keyword and crisis-line answers as paced SMS groups through
``tasks/outbox_sms.py`` (counted against the quota, never refused by it: carriers require
the keyword answer, and a student in crisis gets the crisis line whatever the month's
count). A crisis-line answer is checked against the student's consent again when it is
sent (:func:`consent_blocks`). What a crash left ``sending`` is settled first, once no
request for it can still be in flight.
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
from domain.config import SmsConfig
from domain.consent import INSTITUTION, StoredConsent, effective_consent
from domain.outbox import Kind, OutChannel, Status
from domain.quota import message_cost, month_key
from domain.routing import consent_block
from models.chunks import new_token
from models.config import load_config
from models.consent import current_consents
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

#: Loose SMS: nudge's own answers to a student's text (keyword answers, the crisis line).
SMS_KINDS: frozenset[Kind] = frozenset({Kind.KEYWORD_REPLY, Kind.URGENT_REPLY})


def consent_blocks(
    *, session: Session, config: SmsConfig, pairs: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], str | None]:
    """For each (student number, sender number): why consent forbids texting it (the
    :class:`domain.routing.Reason` value), or None when it may be texted. The router's one
    consent gate (:func:`domain.routing.consent_block`) over the consent that applies
    (:func:`domain.consent.effective_consent`), as the campaign send path checks it."""
    stored: dict[tuple[str, str], StoredConsent] = {
        (row.e164, row.sender_e164): StoredConsent(row.status, row.source)
        for row in current_consents(session=session, numbers=sorted({n for n, _ in pairs}))
    }
    verdicts: dict[tuple[str, str], str | None] = {}
    for number, sender in pairs:
        state, _source = effective_consent(
            stored.get((number, INSTITUTION)), stored.get((number, sender)), config.opt_out_scope
        )
        blocked = consent_block(state, auto_opt_in=config.auto_opt_in)
        verdicts[(number, sender)] = blocked.value if blocked is not None else None
    return verdicts


async def deliver_keyword_replies(
    env: Env,
    *,
    window: timedelta,
    limit: int = 500,
    kinds: Sequence[Kind] = (Kind.KEYWORD_REPLY,),
) -> LooseReport:
    """Send nudge's own answers of ``kinds`` waiting in the outbox: STOP/START/HELP answers
    and crisis-line answers (:data:`SMS_KINDS`), not later than ``window`` after the text
    they answer arrived. Counted against the quota, never refused by it. A crisis-line
    answer to a number that may no longer be texted (a STOP since it was queued) is
    ``skipped`` with the reason."""
    report = LooseReport()
    now = env.now()
    wanted = {Kind(k) for k in kinds}
    with Session(env.engine) as s:
        config = load_config(session=s)
        stale = [
            r
            for r in stale_sending(
                session=s, chunk_id=None, marked_before=now, channel=OutChannel.SMS.value
            )
            if r.kind in wanted and settled_before(r, bound=env.sms_bound(), now=now)
        ]
        rows = load_loose(
            session=s,
            kinds=sorted(k.value for k in wanted),
            channel=OutChannel.SMS.value,
            now=now,
            limit=limit,
        )
        waiting = [r for r in rows if r.status != Status.SENDING]
        late = {r.id for r in waiting if r.created_at < now - window}
        for kind in sorted(wanted):
            report.expired += move(
                session=s,
                ids=[r.id for r in waiting if r.id in late and r.kind == kind],
                to=Status.SKIPPED,
                now=now,
                reason=f"{kind.value}_too_late",
            )
        answers = {
            r.id: (r.to_addr or "", r.from_addr or "")
            for r in waiting
            if r.kind == Kind.URGENT_REPLY and r.id not in late
        }
        verdicts = consent_blocks(session=s, config=config, pairs=list(answers.values()))
        blocked = {i for i, pair in answers.items() if verdicts.get(pair) is not None}
        for row_id in sorted(blocked):
            move(
                session=s,
                ids=[row_id],
                to=Status.SKIPPED,
                now=now,
                reason=verdicts[answers[row_id]],
            )
        s.commit()
    ready = [r for r in waiting if r.id not in late and r.id not in blocked]
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
    """One pass over messages outside campaigns: emails of ``kinds`` first, then nudge's own
    answers by text among them (:data:`SMS_KINDS`: keyword and crisis-line answers, not
    later than ``window`` after the text they answer)."""
    email_kinds = [k for k in kinds if k not in SMS_KINDS]
    sms_kinds = [k for k in kinds if k in SMS_KINDS]
    report = deliver_emails(env, kinds=email_kinds, limit=limit) if email_kinds else LooseReport()
    if sms_kinds:
        sms = asyncio.run(
            deliver_keyword_replies(env, window=window or timedelta(days=1), kinds=sms_kinds)
        )
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
    "SMS_KINDS",
    "LooseReport",
    "alert_rows",
    "consent_blocks",
    "deliver_emails",
    "deliver_keyword_replies",
    "deliver_loose",
    "mark_notified",
    "settle_orphans",
]
