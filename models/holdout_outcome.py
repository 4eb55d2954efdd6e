"""What ``nudge campaigns outcome`` reads: a campaign's holdout, its students in their two
groups with their *current* records (status, tags, program, as the latest SIS sync left
them), and when that sync ran.

The groups (:func:`outcome_people`), from the campaign's own messages (not its opt-in
notices):

* **messaged**: every student the draw assigned to be messaged, whether or not the message
  reached them (intention to treat: the draw, not the delivery, decides the group, so the
  two groups stay comparable; students who cannot be reached are usually different);
* **held out**: the row is ``held_out`` (the randomized holdout: they got nothing);
* **not reached**: of the messaged, those whose message did not go (no address, opted out
  with no email, failed, undelivered, cancelled, still pending; the went states are
  :data:`domain.holdout.MESSAGED_STATES`): counted apart, for the reader.

Read-only; the caller owns the session.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlmodel import Session

from domain.holdout import MESSAGED_STATES
from domain.outbox import Kind, Status
from models.messaging import Campaign, Message
from models.people import Person
from models.sync import SyncRun

campaign_t = Campaign.__table__  # type: ignore[attr-defined]
message_t = Message.__table__  # type: ignore[attr-defined]
person_t = Person.__table__  # type: ignore[attr-defined]
sync_t = SyncRun.__table__  # type: ignore[attr-defined]

#: One student's current record: (status, tags, program).
Record = tuple[str | None, Iterable[str] | None, str | None]


@dataclass(frozen=True, slots=True)
class HoldoutCampaign:
    """What the outcome needs about a campaign: its status, holdout and when it was sent."""

    id: int
    status: str
    holdout_pct: float | None
    holdout_seed: int | None
    started_at: datetime | None
    finished_at: datetime | None


@dataclass(slots=True)
class OutcomePeople:
    """The campaign's students by group, each with their current record."""

    messaged: list[Record] = field(default_factory=list)
    held_out: list[Record] = field(default_factory=list)
    not_reached: int = 0


def holdout_campaign(*, session: Session, campaign_id: int) -> HoldoutCampaign | None:
    """The campaign's status, holdout and send times, or None when there is no such campaign."""
    row = session.execute(
        select(
            campaign_t.c.id,
            campaign_t.c.status,
            campaign_t.c.holdout_pct,
            campaign_t.c.holdout_seed,
            campaign_t.c.started_at,
            campaign_t.c.finished_at,
        ).where(campaign_t.c.id == campaign_id)
    ).first()
    if row is None:
        return None
    return HoldoutCampaign(
        id=int(row.id),
        status=row.status,
        holdout_pct=row.holdout_pct,
        holdout_seed=row.holdout_seed,
        started_at=row.started_at,
        finished_at=row.finished_at,
    )


def outcome_people(*, session: Session, campaign_id: int) -> OutcomePeople:
    """The campaign's students in the messaged and held-out groups (see the module's
    docstring), with their current status, tags and program."""
    rows = session.execute(
        select(message_t.c.status, person_t.c.status, person_t.c.tags, person_t.c.program)
        .join(person_t, person_t.c.id == message_t.c.person_id)
        .where(
            message_t.c.campaign_id == campaign_id,
            message_t.c.kind != Kind.OPT_IN_NOTICE.value,
        )
        .order_by(message_t.c.id)
    ).all()
    people = OutcomePeople()
    for message_status, status, tags, program in rows:
        record: Record = (status, tags, program)
        if message_status == Status.HELD_OUT.value:
            people.held_out.append(record)
            continue
        people.messaged.append(record)
        if message_status not in MESSAGED_STATES:
            people.not_reached += 1
    return people


def last_sync_at(*, session: Session) -> datetime | None:
    """When the latest succeeded SIS sync finished (the values people have come from it),
    or None when no sync ever succeeded."""
    return session.execute(
        select(sync_t.c.finished_at)
        .where(sync_t.c.status == "succeeded", sync_t.c.finished_at.is_not(None))
        .order_by(sync_t.c.finished_at.desc())
        .limit(1)
    ).scalar_one_or_none()


__all__ = [
    "HoldoutCampaign",
    "OutcomePeople",
    "Record",
    "holdout_campaign",
    "last_sync_at",
    "outcome_people",
]
