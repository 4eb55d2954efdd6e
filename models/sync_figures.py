"""Figures over the people and phones stored now: what a sync reports and checks against.

Active people by role, the students who can be texted, phone rows still in the extract, and
the totals a finished sync shows (``nudge sync-runs show``). Read-only; the caller owns the
session.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import func, select
from sqlmodel import Session

from models.people import Person, PhoneNumber

person_t = Person.__table__  # type: ignore[attr-defined]
phone_t = PhoneNumber.__table__  # type: ignore[attr-defined]


def count_active(*, session: Session, roles: Iterable[str]) -> int:
    """Active people of the given roles."""
    stmt = select(func.count()).where(
        person_t.c.status == "active", person_t.c.role.in_(list(roles))
    )
    return int(session.execute(stmt).scalar_one())


def reachable_students(*, session: Session) -> set[int]:
    """Ids of the active students who can be texted today (they have an SMS number)."""
    return set(
        session.execute(
            select(person_t.c.id).where(
                person_t.c.status == "active",
                person_t.c.role == "student",
                person_t.c.sms_e164.is_not(None),
            )
        ).scalars()
    )


def present_phone_count(*, session: Session) -> int:
    """Phone rows still in the SIS extract (what a sync may remove)."""
    return int(
        session.execute(select(func.count()).where(phone_t.c.present.is_(True))).scalar_one()
    )


def sync_totals(*, session: Session) -> dict[str, int]:
    """Figures over what is stored now: valid/invalid phones and SMS-eligible students."""
    active_phone = (
        select(phone_t.c.valid, func.count())
        .select_from(phone_t.join(person_t, person_t.c.id == phone_t.c.person_id))
        .where(person_t.c.status == "active", phone_t.c.present.is_(True))
        .group_by(phone_t.c.valid)
    )
    valid = invalid = 0
    for is_valid, count in session.execute(active_phone):
        if is_valid:
            valid = int(count)
        else:
            invalid = int(count)
    eligible = session.execute(
        select(func.count()).where(
            person_t.c.status == "active",
            person_t.c.role == "student",
            person_t.c.sms_e164.is_not(None),
        )
    ).scalar_one()
    mismatches = session.execute(
        select(func.count())
        .select_from(phone_t.join(person_t, person_t.c.id == phone_t.c.person_id))
        .where(
            person_t.c.status == "active",
            phone_t.c.present.is_(True),
            phone_t.c.type_mismatch.is_(True),
        )
    ).scalar_one()
    shared = session.execute(
        select(func.count()).select_from(
            select(person_t.c.sms_e164)
            .where(
                person_t.c.status == "active",
                person_t.c.role == "student",
                person_t.c.sms_e164.is_not(None),
            )
            .group_by(person_t.c.sms_e164)
            .having(func.count() > 1)
            .subquery()
        )
    ).scalar_one()
    return {
        "phones_valid": valid,
        "phones_invalid": invalid,
        "sms_eligible": int(eligible),
        "type_mismatches": int(mismatches),
        "shared_numbers": int(shared),
    }
