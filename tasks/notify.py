"""Step 3 of the replies poll: tell staff about their students' replies by email.

:func:`notification_rows` turns the replies one poll stored into outbox rows (one email per
conversation, written in :func:`notification_text`), in the poll's store transaction;
:func:`notify_staff` sends the waiting ones through the outbox, each exactly once.
Bodies and numbers never reach logs: counts only (an unknown number is masked in the email).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from prefect import task
from prefect.cache_policies import NO_CACHE
from sqlmodel import Session

from domain.masking import mask_phone
from domain.outbox import Kind, OutChannel, Status
from domain.urgent import urgent_category
from models.notifications import PendingReply, address_notifications
from models.outbox_loose import loose_counts
from models.threads import ThreadItem
from tasks.env import Env
from tasks.outbox_loose import deliver_loose
from tasks.poll_options import PollOptions
from tasks.runtime import Stopwatch, run_logger

log = logging.getLogger("nudge.replies")


@dataclass(slots=True)
class NotifyReport:
    """What emailing staff did."""

    notifications_sent: int = 0
    replies_notified: int = 0
    notifications_failed: int = 0
    notifications_unknown: int = 0
    pending: int = 0
    no_staff_email: int = 0
    seconds: float = 0.0


def _when(moment: datetime | None, tz: ZoneInfo) -> str:
    if moment is None:
        return "an unknown time"
    return moment.astimezone(tz).strftime("%a %d %b %Y, %H:%M %Z")


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in (text.splitlines() or [""]))


#: How much of one earlier message the quoted history shows.
QUOTE_CHARS = 200

#: Outbound states a quoted message is marked with: it did not reach the student.
_NOT_DELIVERED = frozenset(
    {Status.UNDELIVERED, Status.FAILED, Status.SKIPPED, Status.REFUSED, Status.UNKNOWN}
)


def _quote(item: ThreadItem, student: str, tz: ZoneInfo) -> str:
    """One earlier message as ``date, direction, channel: body`` (on one line)."""
    direction = f"to {student}" if item.direction == "out" else f"from {student}"
    channel = {"sms": "by text", "email": "by email"}.get(item.channel, "not sent")
    body = " ".join(item.body.split())
    if len(body) > QUOTE_CHARS:
        body = body[: QUOTE_CHARS - 1].rstrip() + "…"
    note = ""
    if item.direction == "out" and item.status in _NOT_DELIVERED:
        note = f" ({item.status}{': ' + item.error if item.error else ''})"
    return f"{_when(item.at, tz)}, {direction}, {channel}: {body}{note}"


def notification_text(
    replies: Sequence[PendingReply], tz: ZoneInfo, reply_by_email: bool = False
) -> tuple[str, str]:
    """The subject and body of the email telling a staff member about the new replies of
    one conversation (one student, or one unknown number), oldest first.

    With ``reply_by_email`` the email says to answer by replying to it (its Reply-To is the
    conversation's); else it gives the ``nudge reply`` command. A known student's email ends
    with the last messages of the conversation before these replies. When one of them is
    urgent (:mod:`domain.urgent`), the subject begins ``URGENT:`` and the body with a line
    saying why."""
    first = replies[0]
    who = first.student_name and f"{first.student_name} ({first.student_sis_id})"
    sender = who or "an unknown number"
    count = len(replies)
    subject = f"New reply from {sender}" if count == 1 else f"{count} new replies from {sender}"
    given = first.staff_name.split(" ")[0]
    parts = [f"Hello {given},", ""]
    urgent = next((r.urgent_phrase for r in replies if r.urgent_phrase), None)
    if urgent is not None:
        subject = f"URGENT: {subject}"
        parts = [
            f"URGENT: this reads like a crisis or a safety concern ({urgent_category(urgent)}: "
            f'"{urgent}"). Please read it now.',
            "",
            *parts,
        ]
    for reply in replies:
        if reply.student_sis_id:
            how = "replied by email" if reply.channel == "email" else "replied"
            parts.append(
                f"{reply.student_name} (student id {reply.student_sis_id}) {how} "
                f"on {_when(reply.received_at, tz)}:"
            )
        else:
            parts.append(
                f"An unknown number ({mask_phone(reply.from_e164)}) texted your "
                f"number on {_when(reply.received_at, tz)}:"
            )
        parts += ["", _indent(reply.body), ""]
        if reply.original_body is not None:
            parts += [
                f"In answer to your text of {_when(reply.original_sent_at, tz)}:",
                _indent(reply.original_body),
                "",
            ]
        if reply.flagged_phrase:
            parts += [
                f"This reply reads like a request to stop texts "
                f'("{reply.flagged_phrase}"). Texts to this number are paused until '
                "an admin reviews it (nudge consent resolve).",
                "",
            ]
    student_given = (first.student_name or first.student_sis_id or "").split(" ")[0]
    if first.student_sis_id and reply_by_email:
        parts += [
            f"Reply to this email to answer {student_given} by text (only your new text is "
            "sent; the quoted history is left out).",
            "",
        ]
    elif first.student_sis_id:
        parts += [
            f"Answer: nudge reply --sender {first.staff_sis_id} "
            f'--student {first.student_sis_id} --message "..."',
            "",
        ]
    parts.append(f"All your conversations: nudge inbox --staff {first.staff_sis_id} --unread")
    if first.student_sis_id and first.history:
        parts += ["", "Earlier in this conversation:"]
        parts += [_indent(_quote(item, student_given, tz)) for item in first.history]
    return subject, "\n".join(parts)


def notification_rows(
    replies: Sequence[PendingReply],
    tz: ZoneInfo,
    now: datetime,
    *,
    reply_by_email: bool = False,
) -> list[dict[str, Any]]:
    """The outbox rows of the notification emails for ``replies`` (stored in one poll): one
    email per conversation (staff member and student, or unknown number), unique by the
    conversation's first reply, so it is created and sent exactly once.

    ``reply_by_email``: the emails say to answer by replying (:func:`notification_text`).
    Each row's ``extra`` names the replies and the student (``student_person_id``, None for
    an unknown number)."""
    groups: dict[tuple[int, object], list[PendingReply]] = {}
    for reply in replies:
        who: object = reply.student_sis_id or reply.from_e164
        groups.setdefault((reply.staff_person_id, who), []).append(reply)
    rows = []
    for group in groups.values():
        subject, body = notification_text(group, tz, reply_by_email)
        rows.append(
            {
                "outbox_key": f"notify:{group[0].provider_sid}",
                "kind": Kind.NOTIFICATION.value,
                "channel": OutChannel.EMAIL.value,
                "person_id": group[0].staff_person_id,
                "inbound_id": group[0].id,
                "to_addr": group[0].staff_email or None,
                "subject": subject,
                "body": body,
                "extra": {
                    "inbound_ids": [r.id for r in group],
                    "student_person_id": group[0].student_person_id,
                },
                "created_at": now,
                "updated_at": now,
            }
        )
    return rows


@task(name="notify-staff", cache_policy=NO_CACHE)
def notify_staff(env: Env, options: PollOptions) -> NotifyReport:
    """Send the reply notifications waiting in the outbox, each exactly once."""
    clock = Stopwatch()
    report = NotifyReport()
    sent = deliver_loose(env, kinds=[Kind.NOTIFICATION], limit=options.notify_limit).emails
    report.notifications_sent = sent.sent
    report.replies_notified = sent.replies
    report.notifications_failed = sent.failed + sent.retry
    report.notifications_unknown = sent.unknown
    with Session(env.engine) as s:
        counts = loose_counts(session=s, kind=Kind.NOTIFICATION)
        report.pending = counts.get(Status.PLANNED.value, 0) + counts.get(Status.SENDING.value, 0)
        report.no_staff_email = count_unaddressed(s)
    report.seconds = clock.lap()
    if report.no_staff_email:
        run_logger().warning(
            "%d replies wait: their staff member has no email address", report.no_staff_email
        )
    if sent.failed or sent.retry:
        log.warning(
            "%d notification emails failed, %d will be retried next poll", sent.failed, sent.retry
        )
    return report


def count_unaddressed(s: Session) -> int:
    """Notifications waiting because their staff member has no email address."""
    return address_notifications(session=s)


__all__ = [
    "NotifyReport",
    "count_unaddressed",
    "notification_rows",
    "notification_text",
    "notify_staff",
]
