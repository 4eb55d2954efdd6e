"""Campaigns as ``nudge campaigns list`` and ``show`` describe them: who sent, when, and why
each message went the way it did (:func:`campaign_counts`), what is still pending
(:func:`campaign_summary`) and how far a send has got (:func:`settled_percent`).

Read-only; the caller owns the session.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlmodel import Session

from domain.names import display_name
from domain.outbox import OPEN, CampaignStatus, Kind, Status, values
from models.config import load_config
from models.messaging import Campaign, Message
from models.outbox import SENT_STATES
from models.outbox_recovery import unknown_emails
from models.outbox_summary import pending
from models.people import Person

campaign_t = Campaign.__table__  # type: ignore[attr-defined]
message_t = Message.__table__  # type: ignore[attr-defined]
person_t = Person.__table__  # type: ignore[attr-defined]


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
        sender_name=display_name(row.first_name, row.preferred_name, row.last_name, row.sis_id),
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


# --- figures -----------------------------------------------------------------------------


def campaign_counts(*, session: Session, campaign_id: int) -> dict[str, Any]:
    """The campaign's breakdown: by channel and status, by reason, and totals.

    Students a randomized holdout kept out (status ``held_out``) are counted apart, as
    ``held_out``: they are no recipients and in no other figure.
    """
    rows = session.execute(
        select(
            message_t.c.kind,
            message_t.c.channel,
            message_t.c.status,
            message_t.c.reason,
            func.count(),
        )
        .where(message_t.c.campaign_id == campaign_id)
        .group_by(message_t.c.kind, message_t.c.channel, message_t.c.status, message_t.c.reason)
    ).all()
    by_status: Counter[str] = Counter()
    by_reason: Counter[str] = Counter()
    recipients: Counter[str] = Counter()
    notices = held_out = 0
    for kind, channel, status, reason, count in rows:
        if kind == Kind.OPT_IN_NOTICE:
            notices += count if status in SENT_STATES else 0
            continue
        if status == Status.HELD_OUT:
            held_out += count
            continue
        by_status[f"{channel}:{status}"] += count
        by_reason[reason or "none"] += count
        recipients[channel] += count
    return {
        "recipients": sum(recipients.values()),
        "sms": recipients["sms"],
        "email": recipients["email"],
        "undeliverable": recipients["none"],
        "held_out": held_out,
        "opt_in_notices_sent": notices,
        "by_status": dict(by_status),
        "by_reason": dict(by_reason),
    }


def settled_percent(*, session: Session, campaign_id: int) -> float:
    """Share of the campaign's messages no longer open (the progress artifact); held-out
    students have nothing to send and do not count."""
    total, open_ = session.execute(
        select(func.count(), func.count().filter(message_t.c.status.in_(values(OPEN)))).where(
            message_t.c.campaign_id == campaign_id,
            message_t.c.status != Status.HELD_OUT.value,
        )
    ).one()
    return 100.0 if not total else round(100.0 * (total - open_) / total, 1)


def campaign_summary(*, session: Session, campaign_id: int) -> dict[str, Any]:
    """A stored campaign as ``campaigns show`` prints it: status, breakdown, what is still
    pending and why, and emails whose delivery a crash left unknown (raises LookupError)."""
    row = session.get(Campaign, campaign_id)
    if row is None:
        raise LookupError(f"no campaign #{campaign_id}")
    timezone = load_config(session=session).timezone
    left = pending(session=session, campaign_id=campaign_id, timezone=timezone)
    status, waiting = row.status, None
    if status == CampaignStatus.SENDING and left.total and left.total == left.deferred:
        # Everything left waits for quiet hours to end: the campaign is not stuck.
        status = "waiting"
        zone = ZoneInfo(timezone)
        until = left.deferred_until
        waiting = {
            "messages": left.deferred,
            "until": until.isoformat() if until else None,
            "until_local": until.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z") if until else None,
        }
    return {
        "campaign_id": campaign_id,
        "status": status,
        "waiting": waiting,
        "stop_reason": row.stop_reason,
        "refused_reason": row.refused_reason,
        "holdout_pct": row.holdout_pct,
        "holdout_seed": row.holdout_seed,
        "result": campaign_counts(session=session, campaign_id=campaign_id),
        "pending": left.as_dict(),
        "unknown_emails": [
            {"message_id": r.id, "to": r.to_addr, "key": r.key}
            for r in unknown_emails(session=session, campaign_id=campaign_id)
        ],
    }


__all__ = [
    "CampaignView",
    "campaign_counts",
    "campaign_summary",
    "campaign_view",
    "recent_campaigns",
    "settled_percent",
]
