"""Loose outbox rows: messages outside campaigns (reply notifications, alert emails, keyword
answers). Each is unique by ``outbox_key``, so :func:`enqueue` inserts it at most once
however often its producer runs; it is then sent through the same discipline as a campaign
message (:mod:`models.outbox`).

The caller owns the session and commits; functions here never commit.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session

from domain.outbox import Kind, Status
from models.bulk import chunked
from models.messaging import Message
from models.outbox import OPEN_STATES, OUTROW_COLUMNS, OutRow, as_rows, due_now

message_t = Message.__table__  # type: ignore[attr-defined]


def load_loose(
    *, session: Session, kinds: Sequence[str], channel: str, now: datetime, limit: int
) -> list[OutRow]:
    """Open messages outside campaigns (notifications, alerts, keyword answers), due now,
    oldest first."""
    return as_rows(
        session.execute(
            select(*OUTROW_COLUMNS)
            .where(
                message_t.c.chunk_id.is_(None),
                message_t.c.kind.in_(list(kinds)),
                message_t.c.channel == channel,
                message_t.c.status.in_(OPEN_STATES),
                message_t.c.to_addr.is_not(None),
                due_now(now),
            )
            .order_by(message_t.c.id)
            .limit(limit)
        )
    )


def enqueue(*, session: Session, rows: Sequence[dict[str, Any]]) -> int:
    """Insert loose outbox rows, each at most once (by ``outbox_key``); returns how many
    were new. Rows need ``outbox_key, kind, channel, body`` and may set any column."""
    if not rows:
        return 0
    dialect = session.get_bind().dialect.name
    maker = pg_insert if dialect == "postgresql" else sqlite_insert
    keys = ("outbox_key", "kind", "channel", "status", "reason", "person_id", "inbound_id",
            "to_addr", "from_addr", "subject", "body", "segments", "encoding", "send_after",
            "extra", "created_at", "updated_at")  # fmt: skip
    defaults: dict[str, Any] = {"status": Status.PLANNED.value, "segments": 0, "extra": {}}
    inserted = 0
    for batch in chunked(list(rows), 500):
        payload = [{k: row.get(k, defaults.get(k)) for k in keys} for row in batch]
        stmt = (
            maker(message_t)
            .on_conflict_do_nothing(index_elements=["outbox_key"])
            .returning(message_t.c.id)
        )
        inserted += len(session.execute(stmt, payload).scalars().all())
    return inserted


def loose_counts(*, session: Session, kind: Kind) -> dict[str, int]:
    """Loose messages of ``kind`` by status (for reports)."""
    rows = session.execute(
        select(message_t.c.status, func.count())
        .where(message_t.c.kind == kind.value, message_t.c.chunk_id.is_(None))
        .group_by(message_t.c.status)
    ).all()
    return {str(s): int(n) for s, n in rows}


__all__ = ["enqueue", "load_loose", "loose_counts"]
