"""Cancelling a campaign at any point before it is over: scheduled, sending or stopped.

What has not been handed over yet never goes: every message still waiting (``planned`` or
``deferred``) ends ``skipped`` with reason ``cancelled``, through the outbox's conditional
:func:`models.outbox.move`, and every chunk is ``done`` (a worker still holding one loses its
fence, so it can mark nothing more ``sending``). A message already ``sending`` cannot be
recalled: its worker records how it ended, as for any message. Emails whose delivery a crash
left ``unknown`` stay so (they may have arrived: the admin decides).

The caller owns the session and commits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlmodel import Session

from domain.outbox import CampaignStatus, Status
from models.messaging import Campaign, Message, SendChunk
from models.outbox import move

campaign_t = Campaign.__table__  # type: ignore[attr-defined]
message_t = Message.__table__  # type: ignore[attr-defined]
chunk_t = SendChunk.__table__  # type: ignore[attr-defined]

#: Campaign states ``nudge campaigns cancel`` can end.
CANCELLABLE: frozenset[str] = frozenset(
    {CampaignStatus.SCHEDULED.value, CampaignStatus.SENDING.value, CampaignStatus.STOPPED.value}
)


@dataclass(frozen=True, slots=True)
class Cancelled:
    """What cancelling did: the state it ended, messages skipped, and those beyond recall."""

    campaign_id: int
    was: str
    skipped: int
    in_flight: int
    unknown_emails: int

    @property
    def status(self) -> str:
        """The campaign's new status."""
        return CampaignStatus.CANCELLED.value

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "campaign_id": self.campaign_id,
            "status": self.status,
            "was": self.was,
            "skipped": self.skipped,
            "in_flight": self.in_flight,
            "unknown_emails": self.unknown_emails,
        }


def cancel_campaign(*, session: Session, campaign_id: int, now: datetime) -> Cancelled:
    """Cancel a scheduled, sending or stopped campaign (raises LookupError when there is
    no such campaign, ValueError when it is already over)."""
    was = session.execute(
        select(campaign_t.c.status).where(campaign_t.c.id == campaign_id)
    ).scalar()
    if was is None:
        raise LookupError(f"no campaign #{campaign_id}")
    won = session.execute(
        update(campaign_t)
        .where(campaign_t.c.id == campaign_id, campaign_t.c.status == was)
        .where(campaign_t.c.status.in_(sorted(CANCELLABLE)))
        .values(status=CampaignStatus.CANCELLED.value, finished_at=now)
    ).rowcount  # type: ignore[attr-defined]
    if not won:
        now_is = session.execute(
            select(campaign_t.c.status).where(campaign_t.c.id == campaign_id)
        ).scalar()
        raise ValueError(
            f"campaign #{campaign_id} is {now_is}: only a scheduled, sending or stopped "
            "campaign can be cancelled"
        )
    waiting = list(
        session.execute(
            select(message_t.c.id).where(
                message_t.c.campaign_id == campaign_id,
                message_t.c.status.in_([Status.PLANNED.value, Status.DEFERRED.value]),
            )
        ).scalars()
    )
    skipped = move(session=session, ids=waiting, to=Status.SKIPPED, now=now, reason="cancelled")
    session.execute(
        update(chunk_t)
        .where(chunk_t.c.campaign_id == campaign_id, chunk_t.c.status != "done")
        .values(status="done")
    )
    left = dict(
        session.execute(
            select(message_t.c.status, func.count())
            .where(
                message_t.c.campaign_id == campaign_id,
                message_t.c.status.in_([Status.SENDING.value, Status.UNKNOWN.value]),
            )
            .group_by(message_t.c.status)
        ).all()
    )
    return Cancelled(
        campaign_id=campaign_id,
        was=str(was),
        skipped=skipped,
        in_flight=int(left.get(Status.SENDING.value, 0)),
        unknown_emails=int(left.get(Status.UNKNOWN.value, 0)),
    )


def cancel_scheduled(*, session: Session, campaign_id: int, now: datetime) -> str:
    """Cancel a scheduled campaign before it starts (its messages end ``skipped``,
    ``cancelled``); returns the new status, raises LookupError/ValueError otherwise."""
    done = session.execute(
        update(campaign_t)
        .where(
            campaign_t.c.id == campaign_id,
            campaign_t.c.status == CampaignStatus.SCHEDULED.value,
        )
        .values(status=CampaignStatus.CANCELLED.value, finished_at=now)
    ).rowcount  # type: ignore[attr-defined]
    if done:
        ids = session.execute(
            select(message_t.c.id).where(message_t.c.campaign_id == campaign_id)
        ).scalars()
        move(session=session, ids=list(ids), to=Status.SKIPPED, now=now, reason="cancelled")
        session.execute(
            update(chunk_t).where(chunk_t.c.campaign_id == campaign_id).values(status="done")
        )
        return CampaignStatus.CANCELLED.value
    row = session.get(Campaign, campaign_id)
    if row is None:
        raise LookupError(f"no campaign #{campaign_id}")
    raise ValueError(
        f"campaign #{campaign_id} is {row.status}: only a scheduled campaign can be "
        "cancelled before it starts"
    )


__all__ = ["CANCELLABLE", "Cancelled", "cancel_campaign", "cancel_scheduled"]
