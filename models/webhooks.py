"""First sightings of signed Twilio webhook requests: what the replay rule remembers.

One row per signed request the receiver accepted (keyed by
:func:`adapters.twilio.webhooks.delivery_key`), with when it was first seen. Every receiver
process reads and writes the same rows, so they agree on which request is a retry (inside
the window) and which a replay (after it). Rows older than the memory are pruned.

Keyword-only functions over the caller's session; they never commit.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index, delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Field, Session, SQLModel

from models.types import UTCDateTime


class WebhookDelivery(SQLModel, table=True):
    """The first time one signed webhook request (a hash of signature, URL and
    parameters) reached a receiver; ``kind`` is ``incoming`` or ``status``."""

    __tablename__ = "webhook_delivery"
    __table_args__ = (Index("ix_webhook_delivery_first_seen", "first_seen_at"),)

    key: str = Field(primary_key=True, max_length=64)
    kind: str = Field(max_length=16)
    first_seen_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


delivery_t = WebhookDelivery.__table__  # type: ignore[attr-defined]


def first_seen(*, session: Session, key: str, kind: str, now: datetime) -> datetime:
    """When the request ``key`` was first seen: ``now`` if this is its first sight (then
    recorded), else the earlier moment. Receivers racing on one key agree (``ON CONFLICT
    DO NOTHING``, then the winner's row is read)."""
    maker = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    session.execute(
        maker(delivery_t)
        .values(key=key, kind=kind[:16], first_seen_at=now)
        .on_conflict_do_nothing(index_elements=["key"])
    )
    seen: datetime = session.execute(
        select(delivery_t.c.first_seen_at).where(delivery_t.c.key == key)
    ).scalar_one()
    return seen


def prune_deliveries(*, session: Session, before: datetime) -> int:
    """Forget requests first seen before ``before``; returns how many."""
    return int(
        session.execute(delete(delivery_t).where(delivery_t.c.first_seen_at < before)).rowcount  # type: ignore[attr-defined]
    )


__all__ = ["WebhookDelivery", "first_seen", "prune_deliveries"]
