"""Poll cursors and the poll lease: two kinds of row in ``poll_cursor``, one table.

A cursor stores the instant a poll has covered up to; it is written in the same transaction
as the batch it covers, so it is never ahead of what is stored. A lease (value = holder,
``updated_at`` = taken at) lets one replies poller run at a time; a holder that died frees
it after its time to live.

Keyword-only functions over the caller's session. They never commit, except
:func:`acquire_lease` and :func:`release_lease`, whose whole point is to be visible to other
pollers at once.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from models.messaging import PollCursor

cursor_t = PollCursor.__table__  # type: ignore[attr-defined]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def read_cursor(*, session: Session, name: str) -> datetime | None:
    """The instant stored under ``name`` (UTC), or None before the first poll."""
    value = session.execute(select(cursor_t.c.value).where(cursor_t.c.name == name)).scalar()
    if not value:
        return None
    moment = datetime.fromisoformat(str(value))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def write_cursor(*, session: Session, name: str, value: datetime, now: datetime) -> None:
    """Store ``value`` under ``name`` in the caller's transaction (insert or update)."""
    text = value.astimezone(UTC).isoformat()
    done = session.execute(
        update(cursor_t).where(cursor_t.c.name == name).values(value=text, updated_at=now)
    ).rowcount  # type: ignore[attr-defined]
    if not done:
        session.execute(insert(cursor_t).values(name=name, value=text, updated_at=now))


def acquire_lease(
    *, session: Session, name: str, holder: str, now: datetime, ttl: timedelta
) -> bool:
    """Take the lease ``name`` for ``holder`` unless someone else holds a fresh one; commits.

    The lease row lives in ``poll_cursor`` (value = holder, ``updated_at`` = taken at). One
    conditional UPDATE decides between racing pollers; a holder that died frees it after
    ``ttl``.
    """
    won = session.execute(
        update(cursor_t)
        .where(
            cursor_t.c.name == name,
            or_(cursor_t.c.value == holder, cursor_t.c.updated_at < now - ttl),
        )
        .values(value=holder, updated_at=now)
    ).rowcount  # type: ignore[attr-defined]
    if won:
        session.commit()
        return True
    exists = session.execute(select(cursor_t.c.name).where(cursor_t.c.name == name)).first()
    if exists is not None:
        session.commit()
        return False
    try:
        session.execute(insert(cursor_t).values(name=name, value=holder, updated_at=now))
        session.commit()
    except IntegrityError:  # another poller created it first
        session.rollback()
        return False
    return True


def lease_holder(*, session: Session, name: str) -> str | None:
    """Who holds the lease ``name`` (whatever its age), if anyone ever took it."""
    value = session.execute(select(cursor_t.c.value).where(cursor_t.c.name == name)).scalar()
    return None if value is None else str(value)


def release_lease(*, session: Session, name: str, holder: str) -> None:
    """Give the lease back (only if ``holder`` still holds it); commits."""
    session.execute(
        update(cursor_t)
        .where(cursor_t.c.name == name, cursor_t.c.value == holder)
        .values(updated_at=_EPOCH)
    )
    session.commit()


__all__ = ["acquire_lease", "lease_holder", "read_cursor", "release_lease", "write_cursor"]
