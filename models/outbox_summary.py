"""What is still to send, and why: a campaign's pending messages (``nudge send`` and
``campaigns show`` report them) and what a chunk still holds (the worker's next pass).

Read-only; the caller owns the session.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlmodel import Session

from domain.outbox import Status
from models.messaging import Message
from models.outbox import OPEN_STATES

message_t = Message.__table__  # type: ignore[attr-defined]


@dataclass(slots=True)
class Pending:
    """What is left of a campaign, and why (``nudge send`` reports it when it returns)."""

    total: int = 0
    queued: int = 0
    deferred: int = 0
    deferred_until: datetime | None = None
    retrying: int = 0
    retry_codes: Counter[str] = field(default_factory=Counter)
    in_flight: int = 0
    unknown_emails: int = 0
    timezone: str = "UTC"

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "total": self.total,
            "queued": self.queued,
            "deferred": self.deferred,
            "deferred_until": self.deferred_until.isoformat() if self.deferred_until else None,
            "retrying": self.retrying,
            "retry_codes": dict(self.retry_codes),
            "in_flight": self.in_flight,
            "unknown_emails": self.unknown_emails,
            "explain": self.explain(),
        }

    def explain(self) -> str:
        """One sentence a person can act on (times in the institution's zone)."""
        parts = []
        if self.queued:
            parts.append(f"{self.queued} not sent yet (scheduled, or waiting for a worker)")
        if self.deferred:
            until = ""
            if self.deferred_until is not None:
                local = self.deferred_until.astimezone(ZoneInfo(self.timezone))
                until = f" until {local:%Y-%m-%d %H:%M %Z}"
            parts.append(f"{self.deferred} deferred by quiet hours{until}")
        if self.retrying:
            codes = ", ".join(f"{c} ×{n}" for c, n in self.retry_codes.most_common())
            parts.append(f"{self.retrying} to retry after a temporary failure ({codes})")
        if self.in_flight:
            parts.append(f"{self.in_flight} in flight, to be reconciled with the provider")
        if self.unknown_emails:
            parts.append(
                f"{self.unknown_emails} emails whose delivery is unknown after a crash "
                "(see `nudge outbox unknown`)"
            )
        return "; ".join(parts) or "nothing pending"


def pending(*, session: Session, campaign_id: int, timezone: str = "UTC") -> Pending:
    """The campaign's messages still open (or unknown), grouped by why they wait."""
    found = Pending(timezone=timezone)
    rows = session.execute(
        select(
            message_t.c.status,
            message_t.c.attempts,
            message_t.c.error_code,
            message_t.c.send_after,
        ).where(
            message_t.c.campaign_id == campaign_id,
            message_t.c.status.in_([*OPEN_STATES, Status.UNKNOWN.value]),
        )
    ).all()
    for status, attempts, code, send_after in rows:
        if status == Status.UNKNOWN.value:
            found.unknown_emails += 1
            continue
        found.total += 1
        if status == Status.SENDING.value:
            found.in_flight += 1
        elif status == Status.DEFERRED.value:
            found.deferred += 1
            if send_after is not None and (
                found.deferred_until is None or send_after < found.deferred_until
            ):
                found.deferred_until = send_after
        elif attempts == 0 and code is None:
            found.queued += 1
        else:
            found.retrying += 1
            found.retry_codes[str(code or "unknown")] += 1
    return found


@dataclass(frozen=True, slots=True)
class ChunkLeft:
    """What a chunk still holds: open messages, and when the earliest deferred one is due."""

    open: int
    earliest: datetime | None


def chunk_left(*, session: Session, chunk_id: int) -> ChunkLeft:
    """Open messages of a chunk and its earliest ``send_after``."""
    count, earliest = session.execute(
        select(func.count(), func.min(message_t.c.send_after)).where(
            message_t.c.chunk_id == chunk_id, message_t.c.status.in_(OPEN_STATES)
        )
    ).one()
    if earliest is not None and earliest.tzinfo is None:  # SQLite's aggregate skips the type
        earliest = earliest.replace(tzinfo=UTC)
    return ChunkLeft(int(count), earliest)


__all__ = ["ChunkLeft", "Pending", "chunk_left", "pending"]
