"""Chunk claims: which worker sends which slice of a campaign, fenced by a token per claim.

A worker claims a due chunk of a sending campaign (``FOR UPDATE SKIP LOCKED`` on PostgreSQL;
on SQLite the conditional UPDATE is the arbiter), keeps it alive with heartbeats every few
seconds, and gives it back done or pending. Each claim carries a fresh token: marking a
message ``sending`` needs it (``models/outbox.mark_sending``), so a worker whose claim was
taken over — paused past the stale time, say — cannot start anything new on that chunk.

A claim is taken over when its heartbeat is older than the stale time, or at once when its
holder is provably dead (a process of this host that no longer exists).
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, exists, func, or_, select, update
from sqlmodel import Session

from domain.outbox import CampaignStatus
from models.messaging import Campaign, SendChunk

chunk_t = SendChunk.__table__  # type: ignore[attr-defined]
campaign_t = Campaign.__table__  # type: ignore[attr-defined]

PENDING, CLAIMED, DONE = "pending", "claimed", "done"


def worker_name() -> str:
    """A name for this worker process: host, pid and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def new_token(worker: str) -> str:
    """A fresh fencing token for one claim (or one pass over loose messages) of ``worker``."""
    return f"{worker}#{uuid.uuid4().hex[:10]}"


def holder_is_dead(holder: str | None) -> bool:
    """True when ``holder`` (a worker name or a token) names a process of this host that no
    longer exists: its claims can be taken over at once. Unknown means alive."""
    if not holder:
        return False
    host, _, rest = holder.partition(":")
    pid_text = rest.split(":", 1)[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False


@dataclass(frozen=True, slots=True)
class Claim:
    """A chunk this worker holds, and the token that proves it."""

    chunk_id: int
    campaign_id: int
    worker: str
    token: str


def _has_live_claim(stale_before: datetime) -> object:
    other = chunk_t.alias("other")
    return exists().where(
        other.c.campaign_id == chunk_t.c.campaign_id,
        other.c.status == CLAIMED,
        other.c.heartbeat_at >= stale_before,
    )


def claim_chunk(
    *,
    session: Session,
    worker: str,
    now: datetime,
    stale_before: datetime,
    campaign_id: int | None = None,
    only_unattended: bool = False,
) -> Claim | None:
    """Claim one due chunk of a sending campaign, or a stale claim of a dead worker; commits.

    ``only_unattended``: skip campaigns another worker is working on right now (a live
    claim), which is how ``dispatch-due`` picks up abandoned and deferred work without
    joining a campaign its own workers are sending.
    """
    due = or_(chunk_t.c.not_before.is_(None), chunk_t.c.not_before <= now)
    claimable = or_(
        chunk_t.c.status == PENDING,
        and_(chunk_t.c.status == CLAIMED, chunk_t.c.heartbeat_at < stale_before),
    )
    stmt = (
        select(chunk_t.c.id, chunk_t.c.campaign_id)
        .select_from(chunk_t.join(campaign_t, campaign_t.c.id == chunk_t.c.campaign_id))
        .where(campaign_t.c.status == CampaignStatus.SENDING.value, claimable, due)
        .order_by(chunk_t.c.campaign_id, chunk_t.c.seq)
        .limit(1)
    )
    if campaign_id is not None:
        stmt = stmt.where(chunk_t.c.campaign_id == campaign_id)
    if only_unattended:
        stmt = stmt.where(~_has_live_claim(stale_before))  # type: ignore[operator]
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True, of=chunk_t)
    for _ in range(5):
        row = session.execute(stmt).first()
        if row is None:
            session.commit()
            return None
        token = new_token(worker)
        won = session.execute(
            update(chunk_t)
            .where(chunk_t.c.id == row.id, claimable)
            .values(
                status=CLAIMED,
                claimed_by=worker,
                claim_token=token,
                claimed_at=now,
                heartbeat_at=now,
            )
        ).rowcount  # type: ignore[attr-defined]
        session.commit()
        if won:
            return Claim(int(row.id), int(row.campaign_id), worker, token)
    return None


def heartbeat(*, session: Session, claim: Claim, now: datetime) -> bool:
    """Refresh a claim; False if another worker took the chunk over (stop working on it)."""
    kept = session.execute(
        update(chunk_t)
        .where(
            chunk_t.c.id == claim.chunk_id,
            chunk_t.c.claim_token == claim.token,
            chunk_t.c.status == CLAIMED,
        )
        .values(heartbeat_at=now)
    ).rowcount  # type: ignore[attr-defined]
    session.commit()
    return bool(kept)


def release_chunk(
    *,
    session: Session,
    claim: Claim,
    done: bool,
    not_before: datetime | None,
    error: str | None = None,
) -> bool:
    """Give a claimed chunk back: done, or pending again (optionally not before a time);
    ``error`` records an unexpected failure of the pass. Commits; False if it was not ours."""
    values: dict[str, object] = {
        "status": DONE if done else PENDING,
        "not_before": not_before,
        "claim_token": None,
    }
    if not done:
        values["claimed_by"] = None
    if error is not None:
        values["failures"] = chunk_t.c.failures + 1
        values["last_error"] = error[:500]
    kept = session.execute(
        update(chunk_t)
        .where(chunk_t.c.id == claim.chunk_id, chunk_t.c.claim_token == claim.token)
        .values(**values)
    ).rowcount  # type: ignore[attr-defined]
    session.commit()
    return bool(kept)


def still_held(*, session: Session, claim: Claim) -> bool:
    """Whether ``claim`` still holds its chunk."""
    token = session.execute(
        select(chunk_t.c.claim_token).where(chunk_t.c.id == claim.chunk_id)
    ).scalar()
    return bool(token == claim.token)


def live_claims(
    *, session: Session, campaign_id: int, stale_before: datetime, exclude: str | None = None
) -> int:
    """Chunks of the campaign another worker holds with a fresh heartbeat."""
    stmt = select(func.count()).where(
        chunk_t.c.campaign_id == campaign_id,
        chunk_t.c.status == CLAIMED,
        chunk_t.c.heartbeat_at >= stale_before,
    )
    if exclude is not None:
        stmt = stmt.where(chunk_t.c.claimed_by != exclude)
    return int(session.execute(stmt).scalar_one())


def next_due(*, session: Session, campaign_id: int) -> datetime | None:
    """When the campaign's next pending chunk becomes due (None: nothing pending). Chunks
    backing off after an unexpected error are left out: the dispatcher retries those."""
    value = session.execute(
        select(func.min(func.coalesce(chunk_t.c.not_before, campaign_t.c.created_at)))
        .select_from(chunk_t.join(campaign_t, campaign_t.c.id == chunk_t.c.campaign_id))
        .where(
            chunk_t.c.campaign_id == campaign_id,
            chunk_t.c.status == PENDING,
            chunk_t.c.failures == 0,
            campaign_t.c.status == CampaignStatus.SENDING.value,
        )
    ).scalar()
    if value is None:
        return None
    from models.types import UTCDateTime

    return UTCDateTime().process_result_value(value, session.get_bind().dialect)


def free_dead_claims(
    *,
    session: Session,
    campaign_id: int | None = None,
    is_dead: Callable[[str | None], bool] = holder_is_dead,
) -> int:
    """Give back at once the claims whose holder is provably dead; commits. Returns how many."""
    stmt = select(chunk_t.c.id, chunk_t.c.claimed_by, chunk_t.c.claim_token).where(
        chunk_t.c.status == CLAIMED
    )
    if campaign_id is not None:
        stmt = stmt.where(chunk_t.c.campaign_id == campaign_id)
    freed = 0
    for chunk_id, holder, token in session.execute(stmt).all():
        if not is_dead(holder):
            continue
        freed += session.execute(
            update(chunk_t)
            .where(chunk_t.c.id == chunk_id, chunk_t.c.claim_token == token)
            .values(status=PENDING, claimed_by=None, claim_token=None, not_before=None)
        ).rowcount  # type: ignore[attr-defined]
    session.commit()
    return freed


__all__ = [
    "CLAIMED",
    "DONE",
    "PENDING",
    "Claim",
    "claim_chunk",
    "free_dead_claims",
    "heartbeat",
    "holder_is_dead",
    "live_claims",
    "new_token",
    "next_due",
    "release_chunk",
    "still_held",
    "worker_name",
]
