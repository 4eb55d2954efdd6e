"""Step 4 of the replies poll: nudge's own answers to STOP, START and HELP.

Twilio answers carrier keywords itself unless that is configured off; with
``SmsConfig.keyword_replies`` on, nudge answers instead. :func:`keyword_reply_row` is the
answer's outbox row, written in the poll's store transaction (unique per inbound message);
:func:`send_keyword_replies` sends the waiting ones through the outbox, each exactly once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from domain.config import SmsConfig
from domain.keywords import Keyword
from domain.outbox import Kind, OutChannel
from domain.segments import segment_info
from tasks.env import Env
from tasks.outbox_loose import deliver_loose
from tasks.poll_options import PollOptions

#: nudge's own keyword answers (sent only when ``SmsConfig.keyword_replies`` is on), worded
#: as Twilio's are.
STOP_CONFIRMATION = (
    "You have successfully been unsubscribed. You will not receive any more messages from "
    "this number. Reply START to re-subscribe."
)
START_CONFIRMATION = (
    "You have successfully been re-subscribed to messages from this number. Reply HELP for "
    "help. Reply STOP to unsubscribe."
)


def keyword_reply_row(
    row: dict[str, Any], inbound_id: int, keyword: Keyword, config: SmsConfig, now: datetime
) -> dict[str, Any]:
    """The outbox row of nudge's own answer to a keyword (unique per inbound message)."""
    body = {
        Keyword.STOP: STOP_CONFIRMATION,
        Keyword.START: START_CONFIRMATION,
        Keyword.HELP: config.help_text,
    }[keyword]
    info = segment_info(body)
    return {
        "outbox_key": f"keyword:{row['provider_sid']}",
        "kind": Kind.KEYWORD_REPLY.value,
        "channel": OutChannel.SMS.value,
        "reason": f"keyword_{keyword.value}",
        "person_id": row["person_id"],
        "inbound_id": inbound_id,
        "to_addr": row["from_e164"],
        "from_addr": row["to_e164"],
        "body": body,
        "segments": info.segments,
        "encoding": info.encoding,
        "extra": {"inbound_sid": row["provider_sid"]},
        "created_at": now,
        "updated_at": now,
    }


@task(name="send-keyword-replies", cache_policy=NO_CACHE)
def send_keyword_replies(env: Env, options: PollOptions) -> int:
    """Send nudge's own STOP/START/HELP answers waiting in the outbox (each exactly once,
    never later than ``keyword_reply_window`` after the keyword)."""
    report = deliver_loose(env, kinds=[Kind.KEYWORD_REPLY], window=options.keyword_reply_window)
    return report.sms_sent


__all__ = [
    "START_CONFIRMATION",
    "STOP_CONFIRMATION",
    "keyword_reply_row",
    "send_keyword_replies",
]
