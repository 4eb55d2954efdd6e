"""Sender numbers: which Twilio number each staff member texts from (SQL only).

A row is ``provisioning`` while one worker buys the number, ``active`` once bought, and
``conflict`` when the number Twilio sold is already on record for another staff member (an
admin resolves it with ``nudge senders reset``; the campaign then resumes). The caller owns
the session; functions here never commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from models.messaging import SenderNumber
from models.people import Person

sender_t = SenderNumber.__table__  # type: ignore[attr-defined]
person_t = Person.__table__  # type: ignore[attr-defined]

PROVISIONING, ACTIVE, CONFLICT = "provisioning", "active", "conflict"


@dataclass(frozen=True, slots=True)
class SenderRow:
    """One staff member's sender number row."""

    id: int
    staff_person_id: int
    e164: str | None
    provider_sid: str | None
    status: str
    updated_at: datetime


def sender_row(*, session: Session, staff_person_id: int) -> SenderRow | None:
    """The staff member's row, if any."""
    row = session.execute(
        select(
            sender_t.c.id,
            sender_t.c.staff_person_id,
            sender_t.c.e164,
            sender_t.c.provider_sid,
            sender_t.c.status,
            sender_t.c.updated_at,
        ).where(sender_t.c.staff_person_id == staff_person_id)
    ).first()
    return None if row is None else SenderRow(*row)


def start_provisioning(*, session: Session, staff_person_id: int, now: datetime) -> bool:
    """Insert the ``provisioning`` row; False when another worker inserted one first."""
    try:
        with session.begin_nested():
            session.execute(
                sender_t.insert().values(
                    staff_person_id=staff_person_id,
                    status=PROVISIONING,
                    created_at=now,
                    updated_at=now,
                )
            )
    except IntegrityError:
        return False
    return True


def take_over_stale(*, session: Session, row: SenderRow, now: datetime, stale: timedelta) -> bool:
    """Take over a ``provisioning`` attempt that went quiet for ``stale``."""
    if row.status != PROVISIONING or row.updated_at >= now - stale:
        return False
    return bool(
        session.execute(
            update(sender_t)
            .where(
                sender_t.c.id == row.id,
                sender_t.c.status == PROVISIONING,
                sender_t.c.updated_at == row.updated_at,
            )
            .values(updated_at=now)
        ).rowcount  # type: ignore[attr-defined]
    )


def abandon_provisioning(*, session: Session, staff_person_id: int) -> None:
    """The purchase failed: remove the attempt so the next send tries again."""
    session.execute(
        delete(sender_t).where(
            sender_t.c.staff_person_id == staff_person_id, sender_t.c.status == PROVISIONING
        )
    )


def activate(
    *, session: Session, staff_person_id: int, e164: str, provider_sid: str, now: datetime
) -> bool:
    """Record the bought number; False when it is already another staff member's (the row
    is then ``conflict``, keeping the provider's SID for the admin)."""
    try:
        with session.begin_nested():
            session.execute(
                update(sender_t)
                .where(sender_t.c.staff_person_id == staff_person_id)
                .values(e164=e164, provider_sid=provider_sid, status=ACTIVE, updated_at=now)
            )
    except IntegrityError:
        session.execute(
            update(sender_t)
            .where(sender_t.c.staff_person_id == staff_person_id)
            .values(provider_sid=provider_sid, status=CONFLICT, updated_at=now)
        )
        return False
    return True


def holder_of(*, session: Session, e164: str) -> str | None:
    """The SIS id of the staff member a number is recorded for, if any."""
    return session.execute(
        select(person_t.c.sis_id)
        .select_from(sender_t.join(person_t, person_t.c.id == sender_t.c.staff_person_id))
        .where(sender_t.c.e164 == e164)
    ).scalar()


def all_senders(*, session: Session) -> list[tuple[str, SenderRow]]:
    """Every sender row with its staff member's SIS id, by SIS id."""
    rows = session.execute(
        select(
            person_t.c.sis_id,
            sender_t.c.id,
            sender_t.c.staff_person_id,
            sender_t.c.e164,
            sender_t.c.provider_sid,
            sender_t.c.status,
            sender_t.c.updated_at,
        )
        .select_from(sender_t.join(person_t, person_t.c.id == sender_t.c.staff_person_id))
        .order_by(person_t.c.sis_id)
    ).all()
    return [(str(r[0]), SenderRow(*r[1:])) for r in rows]


def reset_sender(*, session: Session, staff_person_id: int) -> str | None:
    """Forget a staff member's ``conflict`` or ``provisioning`` row (an admin resolved it):
    the next send buys a number again. Returns the status removed, or None."""
    row = sender_row(session=session, staff_person_id=staff_person_id)
    if row is None or row.status == ACTIVE:
        return None
    session.execute(delete(sender_t).where(sender_t.c.id == row.id))
    return row.status


__all__ = [
    "ACTIVE",
    "CONFLICT",
    "PROVISIONING",
    "SenderRow",
    "abandon_provisioning",
    "activate",
    "all_senders",
    "holder_of",
    "reset_sender",
    "sender_row",
    "start_provisioning",
    "take_over_stale",
]
