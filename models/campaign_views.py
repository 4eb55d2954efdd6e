"""Campaigns as ``nudge campaigns list`` and ``show`` describe them: who sent, when, and why
each message went the way it did (the figures come from :func:`campaign_counts`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlmodel import Session

from models.campaigns import campaign_counts
from models.messaging import Campaign
from models.people import Person

campaign_t = Campaign.__table__  # type: ignore[attr-defined]
person_t = Person.__table__  # type: ignore[attr-defined]


def _name(first: str | None, preferred: str | None, last: str | None, fallback: str) -> str:
    # The staff display name used on the opt-in notice and in staff emails (preferred, else
    # first, name and last name).
    given = (preferred or "").strip() or (first or "").strip()
    return " ".join(p for p in (given, (last or "").strip()) if p) or fallback


@dataclass(frozen=True, slots=True)
class CampaignView:
    """One campaign's identity: kind, status, sender, times and template."""

    id: int
    kind: str
    status: str
    sender_sis_id: str
    sender_name: str
    template: str
    created_by: str | None
    created_at: datetime
    send_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    counts: dict[str, Any]


def _select() -> Any:
    return select(
        campaign_t.c.id,
        campaign_t.c.kind,
        campaign_t.c.status,
        campaign_t.c.template,
        campaign_t.c.created_by,
        campaign_t.c.created_at,
        campaign_t.c.send_at,
        campaign_t.c.started_at,
        campaign_t.c.finished_at,
        person_t.c.sis_id,
        person_t.c.first_name,
        person_t.c.preferred_name,
        person_t.c.last_name,
    ).join(person_t, person_t.c.id == campaign_t.c.sender_person_id)


def _view(session: Session, row: Any) -> CampaignView:
    return CampaignView(
        id=int(row.id),
        kind=row.kind,
        status=row.status,
        sender_sis_id=row.sis_id,
        sender_name=_name(row.first_name, row.preferred_name, row.last_name, row.sis_id),
        template=row.template,
        created_by=row.created_by,
        created_at=row.created_at,
        send_at=row.send_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        counts=campaign_counts(session=session, campaign_id=int(row.id)),
    )


def recent_campaigns(*, session: Session, limit: int) -> list[CampaignView]:
    """The latest ``limit`` campaigns, newest first, with their figures."""
    rows = session.execute(_select().order_by(campaign_t.c.id.desc()).limit(limit)).all()
    return [_view(session, r) for r in rows]


def campaign_view(*, session: Session, campaign_id: int) -> CampaignView | None:
    """One campaign with its figures, or None."""
    row = session.execute(_select().where(campaign_t.c.id == campaign_id)).first()
    return None if row is None else _view(session, row)


__all__ = ["CampaignView", "campaign_view", "recent_campaigns"]
