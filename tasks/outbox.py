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

The rooms (all handed their edges as a :class:`tasks.env.Env`):

* this module: when a message left ``sending`` is settled (:func:`settles_at`), shared by
  every channel;
* ``tasks/outbox_sms.py``: SMS groups (paced across processes, see ``tasks/pacing.py``):
  mark, call, record, and reconciliation against the provider's list;
* ``tasks/outbox_email.py``: emails one at a time, and stale ones settled as ``unknown``;
* ``tasks/outbox_loose.py``: messages outside campaigns (notifications, alerts, keyword
  answers) and campaign messages no chunk pass will look at again;
* ``tasks/send.py``: campaign chunks, with their send-time checks (``tasks/send_checks.py``).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from domain.outbox import IN_FLIGHT_MARGIN
from models.chunks import holder_is_dead
from models.outbox import OutRow

#: How long a message Twilio kept refusing as retriable waits before the next pass.
RETRY_LATER = timedelta(minutes=1)


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


__all__ = ["RETRY_LATER", "settled_before", "settles_at"]
