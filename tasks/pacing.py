"""Pacing that holds across every worker process: per sender number and per account.

Slots come from the pace ledger in nudge's own database (``models/pacing.py``): one atomic
UPDATE per group of sends hands out start times ``1/rate`` apart, and every worker — on
this machine or another, on PostgreSQL — draws from the same row, so two workers sending
for one number share its rate instead of doubling it. A send waits for the later of its
account slot and its sender slot, and never starts before it.

Why a ledger row rather than a library: Prefect's global concurrency limits with slot decay
admit a burst of ``limit`` slots at once and cost an API round trip per acquisition;
pyrate-limiter's PostgreSQL bucket keeps a sliding-window log behind an exclusive table
lock taken with NOWAIT (contending workers are refused and must poll) and also admits a
window's worth at once; a Redis limiter would add a service the small deployment does not
have. Twilio queues each number at its MPS, so what matters is spacing, which a GCRA-style
"next free slot" row gives with one statement and no new dependency.

Sends are paced at :data:`PACE_SHARE` of the configured rate: a send starts at its slot
but reaches the provider a few milliseconds later, and a little headroom keeps that jitter
from ever pushing one second over the limit.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from sqlalchemy.engine import Engine

from models.pacing import reserve_slots

#: Share of the configured rate nudge paces at (headroom for network jitter).
PACE_SHARE = 0.95


def interval(rate: float) -> float:
    """Seconds between two sends at ``rate`` messages per second (with the headroom)."""
    if rate <= 0:
        raise ValueError("rate must be positive")
    return 1.0 / (rate * PACE_SHARE)


class SharedPacer:
    """Hands out send times for a group of sends, on every key at once (the account and a
    sender number): each send's time is the latest of its slots."""

    def __init__(self, engine: Engine, keys: Sequence[tuple[str, float]]) -> None:
        self.engine = engine
        self.keys = [(key, interval(rate)) for key, rate in keys]
        slowest = max((step for _key, step in self.keys), default=0.0)
        #: Whether a late send could push a second over the limit: the headroom of a
        #: second at the slowest rate holds less than one send.
        self.binding = slowest > 0 and (1.0 / slowest) * (1 - PACE_SHARE) / PACE_SHARE < 1.0

    def reserve(self, count: int, *, lead: float = 0.0) -> list[float]:
        """Reserve ``count`` sends, none sooner than ``lead`` seconds from now; returns their
        start times on ``time.monotonic()``."""
        if count <= 0:
            return []
        times = [0.0] * count
        reservations = reserve_slots(engine=self.engine, keys=self.keys, count=count, lead=lead)
        base = time.monotonic()
        for reservation in reservations:
            for index, offset in enumerate(reservation.offsets()):
                times[index] = max(times[index], base + offset)
        return times

    def span(self, count: int) -> float:
        """Seconds ``count`` sends take at the slowest of the keys' rates."""
        return max((step * count for _key, step in self.keys), default=0.0)


async def wait_until(moment: float) -> None:
    """Sleep until ``moment`` on ``time.monotonic()`` (at once if it has passed)."""
    delay = moment - time.monotonic()
    if delay > 0:
        await asyncio.sleep(delay)


__all__ = ["PACE_SHARE", "SharedPacer", "interval", "wait_until"]
