"""Send slots shared by every worker process: the pace ledger (``pace_slot``).

One row per pace key (the account, or one sender number) holds the next free slot in epoch
seconds. Reserving ``n`` slots is one atomic UPDATE that moves the row ``n`` intervals past
``max(next free slot, now)`` and returns where the reservation starts, so slots handed to
any number of workers never lie closer than one interval apart. PostgreSQL reads "now" from
its own clock (``clock_timestamp()``), so workers on machines whose clocks disagree still
space their sends correctly; SQLite lives on one machine, whose clock every process shares.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.engine import Engine

from models.db import is_postgres

_PG_RESERVE = text(
    """
    UPDATE pace_slot
       SET next_at = GREATEST(next_at, EXTRACT(EPOCH FROM clock_timestamp())) + :span
     WHERE key = :key
    RETURNING next_at - :span, EXTRACT(EPOCH FROM clock_timestamp())
    """
)
_SQLITE_RESERVE = text(
    "UPDATE pace_slot SET next_at = MAX(next_at, :now) + :span WHERE key = :key "
    "RETURNING next_at - :span"
)
_PG_CREATE = text("INSERT INTO pace_slot (key, next_at) VALUES (:key, 0) ON CONFLICT DO NOTHING")
_SQLITE_CREATE = text("INSERT OR IGNORE INTO pace_slot (key, next_at) VALUES (:key, 0)")


@dataclass(frozen=True, slots=True)
class Reservation:
    """``count`` slots ``interval`` apart; the first is ``delay`` seconds from the moment the
    database answered (measured on the database's clock)."""

    delay: float
    interval: float
    count: int

    def offsets(self) -> list[float]:
        """Seconds from the answer to each slot."""
        return [self.delay + i * self.interval for i in range(self.count)]


def reserve_slots(*, engine: Engine, key: str, count: int, interval: float) -> Reservation:
    """Reserve ``count`` consecutive send slots of ``key``; commits at once (the row lock is
    held for one statement)."""
    if count <= 0:
        return Reservation(0.0, interval, 0)
    span = count * interval
    postgres = is_postgres(engine)
    with engine.begin() as conn:
        row = conn.execute(
            _PG_RESERVE if postgres else _SQLITE_RESERVE,
            {"key": key, "span": span, "now": time.time()},
        ).first()
        if row is None:
            conn.execute(_PG_CREATE if postgres else _SQLITE_CREATE, {"key": key})
            row = conn.execute(
                _PG_RESERVE if postgres else _SQLITE_RESERVE,
                {"key": key, "span": span, "now": time.time()},
            ).first()
        assert row is not None  # noqa: S101 - the row exists now
        first = float(row[0])
        now = float(row[1]) if postgres else time.time()
    return Reservation(max(0.0, first - now), interval, count)


__all__ = ["Reservation", "reserve_slots"]
