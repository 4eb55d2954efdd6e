"""What a crash or a takeover left behind in the outbox, and how it is settled.

A message left ``sending`` past the in-flight bound belongs to a worker that is gone or
late: whoever finds it settles it (:func:`stale_sending`, :func:`orphaned_sending`). A
message back in ``planned`` in a campaign that will never send it ends like the campaign
(:func:`close_unsendable`). An email whose outcome nobody can learn stays ``unknown`` until
an admin checked the mail server (:func:`unknown_emails`, :func:`resend_unknown`).

The caller owns the session and commits; functions here never commit.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import or_, select, update
from sqlmodel import Session

from domain.outbox import CampaignStatus, Status
from models.messaging import Campaign, Message, SendChunk
from models.outbox import OUTROW_COLUMNS, WAITING_STATES, OutRow, as_rows, move

message_t = Message.__table__  # type: ignore[attr-defined]
chunk_t = SendChunk.__table__  # type: ignore[attr-defined]
campaign_t = Campaign.__table__  # type: ignore[attr-defined]


def stale_sending(
    *, session: Session, chunk_id: int | None, marked_before: datetime, channel: str
) -> list[OutRow]:
    """Messages ``sending`` since before ``marked_before`` (their worker is gone or late)."""
    where = [
        message_t.c.status == Status.SENDING.value,
        message_t.c.channel == channel,
        message_t.c.marked_at < marked_before,
    ]
    where.append(
        message_t.c.chunk_id.is_(None) if chunk_id is None else message_t.c.chunk_id == chunk_id
    )
    return as_rows(session.execute(select(*OUTROW_COLUMNS).where(*where).order_by(message_t.c.id)))


def note_in_flight(*, session: Session, row: OutRow, now: datetime, note: str) -> None:
    """Leave ``row`` ``sending`` (its answer was lost) with a note for whoever settles it."""
    session.execute(
        update(message_t)
        .where(message_t.c.id == row.id, message_t.c.claim_token == row.claim_token)
        .values(error_message=note[:500], updated_at=now)
    )


def orphaned_sending(*, session: Session) -> list[OutRow]:
    """Campaign messages left ``sending`` where no chunk pass will look again: their
    campaign was cancelled or refused, or their chunk is done."""
    return as_rows(
        session.execute(
            select(*OUTROW_COLUMNS)
            .select_from(
                message_t.join(chunk_t, chunk_t.c.id == message_t.c.chunk_id).join(
                    campaign_t, campaign_t.c.id == message_t.c.campaign_id
                )
            )
            .where(
                message_t.c.status == Status.SENDING.value,
                or_(
                    campaign_t.c.status.in_(
                        [CampaignStatus.CANCELLED.value, CampaignStatus.REFUSED.value]
                    ),
                    chunk_t.c.status == "done",
                ),
            )
            .order_by(message_t.c.id)
        )
    )


def close_unsendable(*, session: Session, now: datetime) -> int:
    """Messages back in ``planned`` in a campaign that will never send them end like the
    campaign: ``skipped``/``cancelled`` or ``refused``."""
    done = 0
    for status, to, reason in (
        (CampaignStatus.CANCELLED, Status.SKIPPED, "cancelled"),
        (CampaignStatus.REFUSED, Status.REFUSED, "campaign_refused"),
    ):
        ids = session.execute(
            select(message_t.c.id)
            .select_from(message_t.join(campaign_t, campaign_t.c.id == message_t.c.campaign_id))
            .where(campaign_t.c.status == status.value, message_t.c.status.in_(WAITING_STATES))
        ).scalars()
        done += move(session=session, ids=list(ids), to=to, now=now, reason=reason)
    return done


def unknown_emails(*, session: Session, campaign_id: int | None = None) -> list[OutRow]:
    """Emails a crash left undecided (``unknown``), oldest first."""
    where = [message_t.c.status == Status.UNKNOWN.value]
    if campaign_id is not None:
        where.append(message_t.c.campaign_id == campaign_id)
    return as_rows(session.execute(select(*OUTROW_COLUMNS).where(*where).order_by(message_t.c.id)))


def resend_unknown(*, session: Session, ids: Sequence[int], now: datetime) -> list[int]:
    """An admin checked the mail server: send these ``unknown`` emails again (same
    Message-ID). Returns the ids moved back to ``planned``."""
    moved: list[int] = []
    for message_id in sorted(set(ids)):
        won = session.execute(
            update(message_t)
            .where(message_t.c.id == message_id, message_t.c.status == Status.UNKNOWN.value)
            .values(status=Status.PLANNED.value, claim_token=None, updated_at=now)
        ).rowcount  # type: ignore[attr-defined]
        if won:
            moved.append(message_id)
    return moved


__all__ = [
    "close_unsendable",
    "note_in_flight",
    "orphaned_sending",
    "resend_unknown",
    "stale_sending",
    "unknown_emails",
]
