"""Delivery statuses of SMS: which are still ``sent`` (Twilio has not said how they ended),
and the status it reports later, recorded forward only.

The caller owns the session and commits; functions here never commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlmodel import Session

from domain.outbox import Status, sources_of
from models.messaging import Message

message_t = Message.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class SentSms:
    """An outbound SMS still in ``sent``: Twilio has not told us how it ended."""

    id: int
    provider_sid: str
    to_addr: str | None
    from_addr: str | None


def sms_awaiting_status(*, session: Session, since: datetime, limit: int) -> list[SentSms]:
    """At most ``limit`` SMS sent since ``since`` still in ``sent``, least recently checked
    first (each check touches ``updated_at``, so a backlog is worked through in turn)."""
    rows = session.execute(
        select(message_t.c.id, message_t.c.provider_sid, message_t.c.to_addr, message_t.c.from_addr)
        .where(
            message_t.c.channel == "sms",
            message_t.c.status == "sent",
            message_t.c.provider_sid.is_not(None),
            message_t.c.sent_at >= since,
        )
        .order_by(message_t.c.updated_at, message_t.c.id)
        .limit(limit)
    ).all()
    return [SentSms(*r) for r in rows]


def sms_by_sid(*, session: Session, sid: str) -> SentSms | None:
    """The outbound SMS Twilio knows as ``sid``, whatever its status (None: not ours, or
    its send not recorded yet)."""
    row = session.execute(
        select(
            message_t.c.id, message_t.c.provider_sid, message_t.c.to_addr, message_t.c.from_addr
        ).where(message_t.c.provider_sid == sid, message_t.c.channel == "sms")
    ).first()
    return SentSms(*row) if row is not None else None


def record_delivery(*, session: Session, message_id: int, now: datetime, **changes: Any) -> bool:
    """A delivery status for an SMS still ``sent`` (forward only: a late status never moves
    a message back); with no ``status`` in ``changes`` it only marks the message checked."""
    status = changes.get("status")
    if status is not None and Status.SENT.value not in sources_of(Status(status)):
        raise ValueError(f"a sent message cannot become {status}")
    return bool(
        session.execute(
            update(message_t)
            .where(message_t.c.id == message_id, message_t.c.status == Status.SENT.value)
            .values(updated_at=now, **changes)
        ).rowcount  # type: ignore[attr-defined]
    )


__all__ = ["SentSms", "record_delivery", "sms_awaiting_status", "sms_by_sid"]
