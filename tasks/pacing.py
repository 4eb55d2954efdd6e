"""Strict message pacing within one process: never faster than N messages per second.

Why not aiolimiter: its limiters belong to one event loop (each chunk runs in its own loop)
and a leaky bucket lets a burst of ``max_rate`` through at the start, which would overshoot
a per-number limit at every chunk boundary. A pacer hands out start times ``1/rate`` apart
on the monotonic clock, shared by every loop of the process; it is a dozen lines.
Across processes, chunks are paced by Prefect's ``rate_limit`` (see ``tasks/send.py``).
"""

from __future__ import annotations

import asyncio
import threading
import time


class Pacer:
    """Hands out send slots no closer than ``1 / rate`` seconds apart."""

    def __init__(self, rate: float) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.interval = 1.0 / rate
        self._next = 0.0
        self._lock = threading.Lock()

    def reserve(self) -> float:
        """Book the next slot; returns how long to wait for it (seconds, >= 0)."""
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next)
            self._next = slot + self.interval
            return slot - now

    async def wait(self) -> None:
        """Wait for the next slot."""
        delay = self.reserve()
        if delay > 0:
            await asyncio.sleep(delay)


_PACERS: dict[tuple[str, float], Pacer] = {}
_PACERS_LOCK = threading.Lock()


def pacer(key: str, rate: float) -> Pacer:
    """The process-wide pacer for ``key`` (an account or a sender number) at ``rate``/s."""
    with _PACERS_LOCK:
        found = _PACERS.get((key, rate))
        if found is None:
            found = _PACERS[(key, rate)] = Pacer(rate)
        return found
