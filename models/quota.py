"""The monthly SMS quota ledger: atomic reservations that concurrent senders cannot overrun.

A reservation is one conditional UPDATE (``used = used + n WHERE used + n <= limit``): the
database serialises it, so two campaigns (or two workers of one campaign) can never push
the month past its limit. A message that was reserved but never sent gives its units back.
"""

from __future__ import annotations

from contextlib import suppress

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from models.messaging import QuotaLedger

_t = QuotaLedger.__table__  # type: ignore[attr-defined]


def _ensure_row(session: Session, month: str) -> None:
    if session.execute(select(_t.c.month).where(_t.c.month == month)).first() is None:
        # Another process may create the row first: that is fine.
        with suppress(IntegrityError), session.begin_nested():
            session.execute(insert(_t).values(month=month, used=0))


def reserve(*, session: Session, month: str, units: int, limit: int | None) -> bool:
    """Reserve ``units`` of ``month``'s quota; False (and nothing reserved) if they don't fit.

    ``limit=None`` means unlimited: the units are still counted, for ``nudge usage``.
    """
    if units <= 0:
        return True
    _ensure_row(session, month)
    stmt = update(_t).where(_t.c.month == month).values(used=_t.c.used + units)
    if limit is not None:
        stmt = stmt.where(_t.c.used + units <= limit)
    return bool(session.execute(stmt).rowcount)  # type: ignore[attr-defined]


def release(*, session: Session, month: str, units: int) -> None:
    """Give back units reserved for a message that was not sent."""
    if units > 0:
        session.execute(update(_t).where(_t.c.month == month).values(used=_t.c.used - units))


def used(*, session: Session, month: str) -> int:
    """Units used (reserved) in ``month`` so far."""
    value = session.execute(select(_t.c.used).where(_t.c.month == month)).scalar()
    return int(value or 0)
