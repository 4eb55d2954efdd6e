"""The real-time path's steps: what Twilio pushes to the webhook receiver, applied by the
very code the poll runs.

The receiver (``nudge/webhooks.py``) checks a request's signature, asks
:func:`within_replay_window` whether it is a retry or a replay, and hands over a
:class:`~adapters.twilio.types.ProviderMessage`, as the poll's listing would have:

* :func:`receive_inbound` stores an incoming message through
  :func:`tasks.replies.store_inbound` (stored once by SID, keywords applied, notification
  and keyword answer queued in the outbox, in one transaction), leaving the poll cursor
  where it is: the poll still lists everything, and finds it stored.
* :func:`deliver_follow_ups` sends what storing queued (staff notifications, nudge's own
  keyword answers) through the outbox, each exactly once whoever sends it first.
* :func:`receive_status` applies a status callback with :func:`tasks.statuses.apply_status`,
  forward only, with the same carrier consequences as the poll's status refresh.

Plain functions: the receiver runs outside Prefect runs, so the poll's tasks are called as
``task.fn``. Nothing here logs numbers or bodies.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlmodel import Session

from adapters.twilio.types import ProviderMessage
from models.config import load_config
from models.delivery import sms_by_sid
from models.webhooks import first_seen, prune_deliveries
from tasks.env import Env
from tasks.keyword_replies import send_keyword_replies
from tasks.notify import NotifyReport, notify_staff
from tasks.poll_options import PollOptions
from tasks.replies import Fetched, StoreReport, store_inbound
from tasks.statuses import StatusReport, apply_status
from tasks.urgent import send_urgent


def within_replay_window(
    env: Env, *, key: str, kind: str, window: timedelta, memory: timedelta | None = None
) -> bool:
    """Record the first sight of the signed request ``key`` (if this is it) and say whether
    it is still within ``window`` of that first sight: a retry (True) or a replay (False).
    With ``memory``, first sights older than that are pruned in the same commit."""
    now = env.now()
    with Session(env.engine) as s:
        first = first_seen(session=s, key=key, kind=kind, now=now)
        if memory is not None:
            prune_deliveries(session=s, before=now - memory)
        s.commit()
    return now - first <= window


def receive_inbound(env: Env, message: ProviderMessage) -> StoreReport:
    """Store one incoming message pushed by Twilio and act on it, as the poll does; the
    poll cursor does not move (``cursor_after=None``)."""
    now = env.now()
    fetched = Fetched(
        inbound=[message],
        scanned=1,
        since_day=now.date(),
        cutoff=now,
        cursor_before=None,
        cursor_after=None,
    )
    report: StoreReport = store_inbound.fn(env, fetched, actor="webhook")
    return report


@dataclass(slots=True)
class FollowUps:
    """What one pass over the queued follow-ups sent."""

    notify: NotifyReport
    keyword_replies_sent: int


def deliver_follow_ups(env: Env, options: PollOptions | None = None) -> FollowUps:
    """Send the staff notifications and keyword answers waiting in the outbox (the ones a
    webhook just queued, and any other: each is sent exactly once, by whichever pass —
    this one or a poll's — claims it first)."""
    options = options or PollOptions()
    send_urgent.fn(env, options)  # crisis alerts first, as the poll sends them
    notified: NotifyReport = notify_staff.fn(env, options)
    answered: int = send_keyword_replies.fn(env, options)
    return FollowUps(notified, answered)


def receive_status(env: Env, update: ProviderMessage) -> StatusReport:
    """Apply one status callback: a final status moves the text forward only and teaches
    what the poll's refresh would (21610, numbers that cannot take SMS); a text we do not
    know (or whose send is not recorded yet) is left to the poll."""
    report = StatusReport()
    now = env.now()
    with Session(env.engine) as s:
        sms = sms_by_sid(session=s, sid=update.sid)
        if sms is None:
            return report
        report.statuses_checked = 1
        disabled: set[str] = set()
        apply_status(
            s,
            config=load_config(session=s),
            sms=sms,
            provider=update,
            now=now,
            report=report,
            disabled=disabled,
        )
        report.numbers_disabled = len(disabled)
        s.commit()
    return report


__all__ = [
    "FollowUps",
    "deliver_follow_ups",
    "receive_inbound",
    "receive_status",
    "within_replay_window",
]
