"""Send slots shared by every worker process: the pace ledger (``pace_slot``).

One row per pace key (the account, or one sender number) holds the next free slot in epoch
seconds. Reserving ``n`` slots is one atomic UPDATE that moves the row ``n`` intervals past
``max(next free slot, now + lead)`` and returns where the reservation starts, so slots handed to
any number of workers never lie closer than one interval apart. PostgreSQL reads "now" from
its own clock (``clock_timestamp()``), so workers on machines whose clocks disagree still
space their sends correctly; SQLite lives on one machine, whose clock every process shares.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.engine import Engine

from models.db import is_postgres

_PG_RESERVE = text(
    """
    UPDATE pace_slot
       SET next_at = GREATEST(next_at, EXTRACT(EPOCH FROM clock_timestamp()) + :lead) + :span
     WHERE key = :key
    RETURNING next_at - :span, EXTRACT(EPOCH FROM clock_timestamp())
    """
)
_SQLITE_RESERVE = text(
    "UPDATE pace_slot SET next_at = MAX(next_at, :now + :lead) + :span WHERE key = :key "
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


def reserve_slots(
    *, engine: Engine, keys: Sequence[tuple[str, float]], count: int, lead: float = 0.0
) -> list[Reservation]:
    """Reserve ``count`` consecutive send slots on every ``(key, interval)`` of ``keys``,
    in one transaction committed at once (each row lock is held for one statement).

    No slot starts sooner than ``lead`` seconds from now: the caller marks its messages
    ``sending`` in that time, before the first slot comes.
    """
    if count <= 0:
        return [Reservation(0.0, interval, 0) for _key, interval in keys]
    postgres = is_postgres(engine)
    reserve, create = (_PG_RESERVE, _PG_CREATE) if postgres else (_SQLITE_RESERVE, _SQLITE_CREATE)
    found: list[Reservation] = []
    with engine.begin() as conn:
        for key, interval in keys:
            args = {"key": key, "span": count * interval, "lead": lead, "now": time.time()}
            row = conn.execute(reserve, args).first()
            if row is None:
                conn.execute(create, {"key": key})
                row = conn.execute(reserve, {**args, "now": time.time()}).first()
            assert row is not None  # noqa: S101 - the row exists now
            now = float(row[1]) if postgres else time.time()
            found.append(Reservation(max(0.0, float(row[0]) - now), interval, count))
    return found


__all__ = ["Reservation", "reserve_slots"]
