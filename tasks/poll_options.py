"""What every step of the replies poll shares: how much one poll does (:class:`PollOptions`)
and the name its consent changes carry in the audit trail (:data:`ACTOR`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

#: The actor of the consent changes a poll makes (keywords, carrier opt-outs).
ACTOR = "poll-replies"


@dataclass(frozen=True, slots=True)
class PollOptions:
    """How much one poll looks at and does (defaults suit a poll every minute).

    * ``page_size``: messages per Twilio page (at most 1,000);
    * ``lookback``: how far back the very first poll looks;
    * ``skew``: overlap with the previous poll, for clock skew and late-indexed messages
      (messages in it are listed again and counted as duplicates);
    * ``status_window`` / ``status_limit``: delivery statuses are refreshed for SMS sent in
      this window, at most this many per poll;
    * ``notify_limit``: notification emails sent per poll (one per reply);
    * ``keyword_reply_window``: nudge's own keyword answers are not sent later than this.
    """

    page_size: int = 1000
    lookback: timedelta = timedelta(days=1)
    skew: timedelta = timedelta(minutes=5)
    status_window: timedelta = timedelta(days=3)
    status_limit: int = 500
    notify_limit: int = 10_000
    keyword_reply_window: timedelta = timedelta(days=1)


__all__ = ["ACTOR", "PollOptions"]
