"""A campaign's status changes: scheduled campaigns start when due, a fatal provider error
stops one, a send-time check refuses one, an admin resumes a stopped one, and a campaign
whose chunks are all done completes with its figures.

Each change is a conditional UPDATE naming the status it comes from, so racing workers
change a campaign once. Cancelling is :mod:`models.cancel`. The caller owns the session and
commits; functions here never commit.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import exists, func, select, update
from sqlmodel import Session

from domain.outbox import CampaignStatus, Status
from models.campaign_views import campaign_counts
from models.messaging import Campaign, Message, SendChunk
from models.outbox import WAITING_STATES

message_t = Message.__table__  # type: ignore[attr-defined]
chunk_t = SendChunk.__table__  # type: ignore[attr-defined]
campaign_t = Campaign.__table__  # type: ignore[attr-defined]


def campaign_status(*, session: Session, campaign_id: int) -> str | None:
    """The campaign's status (None: no such campaign)."""
    status = session.execute(
        select(campaign_t.c.status).where(campaign_t.c.id == campaign_id)
    ).scalar()
    return None if status is None else str(status)


def start_due_campaigns(*, session: Session, now: datetime) -> list[int]:
    """Start scheduled campaigns whose ``send_at`` has come (atomically, once each)."""
    started: list[int] = []
    for (campaign_id,) in session.execute(
        select(campaign_t.c.id).where(
            campaign_t.c.status == CampaignStatus.SCHEDULED.value, campaign_t.c.send_at <= now
        )
    ).all():
        won = session.execute(
            update(campaign_t)
            .where(
                campaign_t.c.id == campaign_id,
                campaign_t.c.status == CampaignStatus.SCHEDULED.value,
            )
            .values(status=CampaignStatus.SENDING.value, started_at=now)
        ).rowcount  # type: ignore[attr-defined]
        if won:
            started.append(int(campaign_id))
    return started


def stop_campaign(*, session: Session, campaign_id: int, reason: str) -> bool:
    """A fatal provider error: the campaign stops sending (``nudge campaigns resume`` later)."""
    return bool(
        session.execute(
            update(campaign_t)
            .where(
                campaign_t.c.id == campaign_id,
                campaign_t.c.status == CampaignStatus.SENDING.value,
            )
            .values(status=CampaignStatus.STOPPED.value, stop_reason=reason[:1000])
        ).rowcount  # type: ignore[attr-defined]
    )


def refuse_campaign(
    *, session: Session, campaign_id: int, code: str, message: str, now: datetime
) -> int:
    """A send-time check refused the whole campaign (the sender lost their role, ...): every
    message not yet handed over ends ``refused`` with ``code``; the campaign ends
    ``refused`` with ``message``. Returns the messages refused."""
    session.execute(
        update(campaign_t)
        .where(
            campaign_t.c.id == campaign_id,
            campaign_t.c.status.in_([CampaignStatus.SENDING.value, CampaignStatus.SCHEDULED.value]),
        )
        .values(status=CampaignStatus.REFUSED.value, refused_reason=message, finished_at=now)
    )
    session.execute(
        update(chunk_t)
        .where(chunk_t.c.campaign_id == campaign_id, chunk_t.c.status == "pending")
        .values(status="done")
    )
    refused = session.execute(
        update(message_t)
        .where(message_t.c.campaign_id == campaign_id, message_t.c.status.in_(WAITING_STATES))
        .values(status=Status.REFUSED.value, reason=code[:60], updated_at=now)
    ).rowcount  # type: ignore[attr-defined]
    return int(refused)


def resume_campaign(*, session: Session, campaign_id: int) -> bool:
    """A stopped campaign may send again (after the fix)."""
    return bool(
        session.execute(
            update(campaign_t)
            .where(
                campaign_t.c.id == campaign_id,
                campaign_t.c.status == CampaignStatus.STOPPED.value,
            )
            .values(status=CampaignStatus.SENDING.value, stop_reason=None)
        ).rowcount  # type: ignore[attr-defined]
    )


def open_chunks(*, session: Session, campaign_id: int) -> int:
    """Chunks of the campaign not finished yet (pending or claimed)."""
    return int(
        session.execute(
            select(func.count()).where(
                chunk_t.c.campaign_id == campaign_id, chunk_t.c.status != "done"
            )
        ).scalar_one()
    )


def finish_campaign(*, session: Session, campaign_id: int, now: datetime) -> bool:
    """Mark a sending campaign whose chunks are all done ``completed``, with its figures."""
    if open_chunks(session=session, campaign_id=campaign_id):
        return False
    counts = campaign_counts(session=session, campaign_id=campaign_id)
    return bool(
        session.execute(
            update(campaign_t)
            .where(
                campaign_t.c.id == campaign_id,
                campaign_t.c.status == CampaignStatus.SENDING.value,
            )
            .values(status=CampaignStatus.COMPLETED.value, finished_at=now, counts=counts)
        ).rowcount  # type: ignore[attr-defined]
    )


def finish_idle_campaigns(*, session: Session, now: datetime) -> list[int]:
    """Complete every sending campaign with no open chunk (a crash between the last chunk
    and the campaign's completion leaves one behind)."""
    idle = select(campaign_t.c.id).where(
        campaign_t.c.status == CampaignStatus.SENDING.value,
        ~exists().where(chunk_t.c.campaign_id == campaign_t.c.id, chunk_t.c.status != "done"),
    )
    done = []
    for (campaign_id,) in session.execute(idle).all():
        if finish_campaign(session=session, campaign_id=int(campaign_id), now=now):
            done.append(int(campaign_id))
    return done


__all__ = [
    "campaign_status",
    "finish_campaign",
    "finish_idle_campaigns",
    "open_chunks",
    "refuse_campaign",
    "resume_campaign",
    "start_due_campaigns",
    "stop_campaign",
]
