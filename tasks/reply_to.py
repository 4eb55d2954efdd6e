"""Reply-To addresses of outgoing emails: where an answer by email comes back to.

A staff notification (about a student's reply) and a fallback email (a text that went by
email) both belong to a conversation between one staff member and one student. When the
college set ``NUDGE_REPLY_ADDRESS``, each carries ``Reply-To: texts+<token>@college.edu``,
the token naming that conversation (``domain/reply_tokens.py``), so the mailbox poller
(``tasks/mailbox.py``) knows which student an answer is for and who may send it. Alerts and
reports carry none; neither does a notification about an unknown number (there is no
student to text).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import Session

from domain.outbox import Kind, OutChannel
from domain.reply_tokens import ReplyPair, make_token, reply_address
from models.mailbox import campaign_senders, installation_reply_key
from models.outbox import OutRow
from tasks.env import Env

#: Kinds of email that answer a conversation: a reply to them reaches the student.
CONVERSATION_KINDS = frozenset({Kind.CAMPAIGN.value, Kind.REPLY.value})


def reply_key(env: Env, session: Session) -> bytes:
    """The reply tokens' key: ``NUDGE_REPLY_SECRET`` when set, else the installation's
    random key kept in the database."""
    secret = env.settings.reply_secret
    if secret is not None and secret.get_secret_value():
        return secret.get_secret_value().encode()
    return installation_reply_key(session=session)


def pair_of(row: OutRow, senders: dict[int, int]) -> ReplyPair | None:
    """The conversation an outgoing email belongs to, or None (alerts, unknown numbers)."""
    if row.channel != OutChannel.EMAIL.value or row.person_id is None:
        return None
    if row.kind == Kind.NOTIFICATION.value:
        student = (row.extra or {}).get("student_person_id")
        return ReplyPair(row.person_id, int(student)) if student else None
    if row.kind in CONVERSATION_KINDS and row.campaign_id in senders:
        return ReplyPair(senders[row.campaign_id], row.person_id)
    return None


def reply_addresses(env: Env, rows: Sequence[OutRow]) -> dict[int, str]:
    """The Reply-To of each of ``rows`` that belongs to a conversation (by row id); empty
    when no reply mailbox is configured."""
    base = env.settings.reply_address
    if not base or not rows:
        return {}
    with Session(env.engine) as s:
        key = reply_key(env, s)
        senders = campaign_senders(
            session=s, campaign_ids=[r.campaign_id for r in rows if r.campaign_id is not None]
        )
        s.commit()
    addresses: dict[int, str] = {}
    for row in rows:
        pair = pair_of(row, senders)
        if pair is not None:
            addresses[row.id] = reply_address(base, make_token(key, pair))
    return addresses


__all__ = ["CONVERSATION_KINDS", "pair_of", "reply_addresses", "reply_key"]
