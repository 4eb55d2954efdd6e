"""Urgent replies: the on-call alert, the crisis-line answer and the Prefect event.

A reply that reads like a crisis or a safety concern (:func:`domain.urgent.detect_urgent`,
phrases in ``SmsConfig.urgent_phrases``) is marked ``urgent_phrase`` when it is stored
(``tasks/replies.py`` for texts, ``tasks/mailbox.py`` for a student's email). In that same
transaction :func:`queue_urgent` puts in the outbox

* one alert email per on-call address (``NUDGE_URGENT_EMAILS``, else ``NUDGE_ALERT_EMAILS``),
  written by :func:`alert_text`: who, to whom, when, the category, the reply itself (the
  on-call person must read it) and the crisis line;
* with ``SmsConfig.urgent_auto_reply`` on, the crisis-line answer (``urgent_reply_text``) by
  text from the number the student texted (:func:`answer_row`), unless consent forbids
  texting them (the router's one gate, :func:`tasks.outbox_loose.consent_blocks`: opted out
  or paused for review). A student's email gets no answer by text.

Both are outbox rows unique by their key, so each goes exactly once. The poll sends them
first, before the staff notifications (:func:`send_urgent`, the first of
``flows/poll_replies.send_follow_ups``); the answer is paced and counted against the quota
like a keyword answer, and checked against consent again when it is sent.

After the commit, :func:`emit_urgent_events` emits ``nudge.reply.urgent`` once per urgent
reply (category, student and staff ids, when; never the text or a number), when a Prefect
API can receive it. Logs carry ids and counts only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from prefect import task
from prefect.cache_policies import NO_CACHE
from sqlmodel import Session

from domain.config import SmsConfig
from domain.masking import mask_phone
from domain.outbox import Kind, OutChannel
from domain.segments import segment_info
from domain.urgent import CRISIS_LINE, urgent_category
from models.notifications import UrgentReply, urgent_replies
from models.outbox_loose import enqueue
from tasks.env import Env, TaskSettings
from tasks.outbox_loose import alert_rows, consent_blocks, deliver_loose
from tasks.poll_options import PollOptions
from tasks.runtime import Stopwatch, run_logger

#: The Prefect event emitted once per urgent reply.
URGENT_EVENT = "nudge.reply.urgent"
#: The subject of the on-call alert.
ALERT_SUBJECT = "URGENT: a student's reply needs attention now"


def on_call(settings: TaskSettings) -> list[str]:
    """Who is alerted: ``NUDGE_URGENT_EMAILS``, or ``NUDGE_ALERT_EMAILS`` when it is empty."""
    urgent = [a.strip() for a in settings.urgent_emails if a.strip()]
    return urgent or [a.strip() for a in settings.alert_emails if a.strip()]


def _when(moment: datetime, tz: ZoneInfo) -> str:
    return moment.astimezone(tz).strftime("%a %d %b %Y, %H:%M %Z")


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in (text.splitlines() or [""]))


def alert_text(reply: UrgentReply, tz: ZoneInfo, *, answered: bool) -> str:
    """The body of the on-call alert for one urgent reply. ``answered``: the crisis-line
    answer was queued for the student (it is checked against consent again when sent).
    An unknown number is masked, as in every email."""
    category = urgent_category(reply.urgent_phrase)
    if reply.student_sis_id:
        student = f"{reply.student_name} (student id {reply.student_sis_id})"
    else:
        student = f"an unknown number ({mask_phone(reply.from_e164)})"
    if reply.staff_sis_id:
        staff = f"{reply.staff_name} (staff id {reply.staff_sis_id})"
    else:
        staff = f"a number no staff member holds ({mask_phone(reply.to_e164)})"
    how = "emailed" if reply.channel == "email" else "texted"
    lines = [
        f"URGENT: a reply reads like a crisis or a safety concern ({category}).",
        "Please read it now and follow your college's crisis protocol.",
        "",
        f"From: {student}",
        f"To: {staff}",
        f"When: {how} on {_when(reply.received_at, tz)}",
        f'Why urgent: it contains "{reply.urgent_phrase}" ({category})',
        "",
        "The reply:",
        _indent(reply.body),
        "",
        f"Crisis line: {CRISIS_LINE}",
    ]
    if answered:
        lines.append("nudge is sending the student the crisis line automatically, by text.")
    if reply.student_sis_id:
        lines += ["", f"The conversation: nudge conversation {reply.student_sis_id}"]
        if reply.staff_sis_id:
            lines.append(
                f"Answer: nudge reply --sender {reply.staff_sis_id} "
                f'--student {reply.student_sis_id} --message "..."'
            )
    else:
        lines += ["", "The number: nudge inbox --reveal"]
    return "\n".join(lines)


def answer_row(reply: UrgentReply, config: SmsConfig, now: datetime) -> dict[str, Any]:
    """The outbox row of the crisis-line answer to one urgent text, from the number the
    student texted (unique per reply, like a keyword answer)."""
    body = config.urgent_reply_text
    info = segment_info(body)
    return {
        "outbox_key": f"urgent-reply:{reply.provider_sid}",
        "kind": Kind.URGENT_REPLY.value,
        "channel": OutChannel.SMS.value,
        "reason": "urgent_reply",
        "person_id": reply.student_person_id,
        "inbound_id": reply.id,
        "to_addr": reply.from_e164,
        "from_addr": reply.to_e164,
        "body": body,
        "segments": info.segments,
        "encoding": info.encoding,
        "extra": {"inbound_sid": reply.provider_sid},
        "created_at": now,
        "updated_at": now,
    }


@dataclass(slots=True)
class Queued:
    """What :func:`queue_urgent` put in the outbox (rows new this time)."""

    replies: list[UrgentReply] = field(default_factory=list)
    alerts: int = 0
    answers: int = 0


def queue_urgent(
    s: Session,
    env: Env,
    config: SmsConfig,
    inbound_ids: Sequence[int],
    now: datetime,
) -> Queued:
    """In the caller's transaction: for each urgent reply among ``inbound_ids``, one alert
    email per on-call address and, when ``urgent_auto_reply`` is on, the crisis-line answer
    to a text (from a staff member's number, to a number consent lets us text). Returns the
    urgent replies and how many rows were new; never commits."""
    queued = Queued(replies=urgent_replies(session=s, inbound_ids=inbound_ids))
    if not queued.replies:
        return queued
    answerable = [
        r
        for r in queued.replies
        if config.urgent_auto_reply
        and r.channel == "sms"
        and r.staff_person_id is not None
        and r.from_e164
        and r.to_e164
    ]
    verdicts = consent_blocks(
        session=s, config=config, pairs=[(r.from_e164, r.to_e164) for r in answerable]
    )
    answered = {r.id for r in answerable if verdicts.get((r.from_e164, r.to_e164)) is None}
    recipients = on_call(env.settings)
    tz = ZoneInfo(config.timezone)
    log = run_logger()
    for reply in queued.replies:
        rows = alert_rows(
            key=f"urgent:{reply.id}",
            recipients=recipients,
            subject=ALERT_SUBJECT,
            body=alert_text(reply, tz, answered=reply.id in answered),
            now=now,
        )
        queued.alerts += enqueue(session=s, rows=rows)
        log.warning(
            "urgent reply #%d (%s): %d on-call alerts queued%s",
            reply.id,
            urgent_category(reply.urgent_phrase),
            len(rows),
            ", crisis-line answer queued" if reply.id in answered else "",
        )
    if not recipients:
        log.error(
            "%d urgent replies and no on-call address: set NUDGE_URGENT_EMAILS "
            "(or NUDGE_ALERT_EMAILS); their staff notification says URGENT",
            len(queued.replies),
        )
    queued.answers = enqueue(
        session=s,
        rows=[answer_row(r, config, now) for r in queued.replies if r.id in answered],
    )
    return queued


def event_payload(reply: UrgentReply) -> dict[str, Any]:
    """What the ``nudge.reply.urgent`` event carries: the category, who and when — never
    the reply's text, the matched phrase or a phone number."""
    return {
        "inbound_id": reply.id,
        "category": urgent_category(reply.urgent_phrase),
        "channel": reply.channel,
        "student_id": reply.student_sis_id,
        "staff_id": reply.staff_sis_id,
        "received_at": reply.received_at.isoformat(),
    }


def emit_urgent_events(replies: Sequence[UrgentReply]) -> int:
    """Emit ``nudge.reply.urgent`` once per reply, when a Prefect API can receive it (the
    data-quality alert's guard, :func:`tasks.quality_publish.should_emit_events`); returns
    how many were handed over.

    Called after the commit that stored the replies and queued their alert emails: a crash
    between that commit and this call loses only the events, never an alert email (the
    emails are outbox rows, sent by the next pass). A failure to emit is logged, never
    raised: the replies are stored and the alerts queued either way."""
    if not replies:
        return 0
    from tasks.quality_publish import should_emit_events

    if not should_emit_events():
        run_logger().info(
            "no Prefect API configured: %d %s events skipped", len(replies), URGENT_EVENT
        )
        return 0
    from prefect.events import emit_event

    emitted = 0
    for reply in replies:
        try:
            event = emit_event(
                event=URGENT_EVENT,
                resource={
                    "prefect.resource.id": f"nudge.reply.{reply.id}",
                    "prefect.resource.name": "urgent reply",
                },
                payload=event_payload(reply),
            )
        except Exception as exc:  # the alert email is queued: the event is the extra
            run_logger().warning("urgent reply #%d: event not emitted: %s", reply.id, exc)
            continue
        emitted += event is not None
    return emitted


@dataclass(slots=True)
class UrgentSendReport:
    """What the first follow-up step sent: alert emails (the urgent ones, and any other
    alert waiting) and crisis-line answers."""

    urgent_alerts_sent: int = 0
    urgent_alerts_failed: int = 0
    urgent_replies_sent: int = 0
    seconds: float = 0.0


@task(name="send-urgent", cache_policy=NO_CACHE)
def send_urgent(env: Env, options: PollOptions) -> UrgentSendReport:
    """Send the alert emails and crisis-line answers waiting in the outbox, each exactly
    once: the poll's first follow-up, before the staff notifications. Alerts that are not
    about replies (a campaign stopped, a refused mail) go too: they are as urgent."""
    clock = Stopwatch()
    sent = deliver_loose(
        env, kinds=[Kind.ALERT, Kind.URGENT_REPLY], window=options.keyword_reply_window
    )
    report = UrgentSendReport(
        urgent_alerts_sent=sent.emails.sent,
        urgent_alerts_failed=sent.emails.failed + sent.emails.retry,
        urgent_replies_sent=sent.sms_sent,
    )
    if report.urgent_alerts_failed:
        run_logger().warning(
            "%d alert emails not sent (%d will be retried)",
            report.urgent_alerts_failed,
            sent.emails.retry,
        )
    report.seconds = clock.lap()
    return report


__all__ = [
    "ALERT_SUBJECT",
    "URGENT_EVENT",
    "Queued",
    "UrgentSendReport",
    "alert_text",
    "answer_row",
    "emit_urgent_events",
    "event_payload",
    "on_call",
    "queue_urgent",
    "send_urgent",
]
