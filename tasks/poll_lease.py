"""The replies poll's lease: one poll at a time, and a dead poll noticed in seconds.

Two polls storing the same listing would still store each reply once, but both could email
staff about it; so a poll first takes the lease (:func:`hold_lease`), keeps renewing it
while it runs (:class:`LeaseKeeper`) and lets go when done (:func:`drop_lease`). A poll
whose lease was not renewed for :func:`lease_ttl` is presumed dead and the next one takes
over; one whose holder is a dead process of this host is taken over at once.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from sqlmodel import Session

from models.chunks import holder_is_dead
from models.leases import acquire_lease, lease_holder, release_lease
from tasks.env import Env

#: The lease that keeps two polls from emailing the same reply twice.
LEASE = "poll-replies.lease"

log = logging.getLogger("nudge.poll")


def lease_ttl(env: Env) -> timedelta:
    """A poll whose lease was not renewed for this long is presumed dead and the next poll
    takes over: a killed poller delays replies by at most this much (seconds, not minutes)."""
    return timedelta(seconds=env.settings.claim_stale_s)


def hold_lease(env: Env) -> bool:
    """Take or renew this poll's lease; a lease whose holder is a dead process of this host
    is taken over at once. False while another live poll holds it."""
    with Session(env.engine) as s:
        if acquire_lease(
            session=s, name=LEASE, holder=env.worker, now=env.now(), ttl=lease_ttl(env)
        ):
            return True
        if not holder_is_dead(lease_holder(session=s, name=LEASE)):
            return False
        return acquire_lease(
            session=s, name=LEASE, holder=env.worker, now=env.now(), ttl=timedelta(0)
        )


def drop_lease(env: Env) -> None:
    """Let go of this poll's lease (a lease another poll took over is left alone)."""
    with Session(env.engine) as s:
        release_lease(session=s, name=LEASE, holder=env.worker)


class LeaseKeeper:
    """Renews the poll's lease from a thread every ``heartbeat_s`` while the poll runs, so a
    slow step never looks dead and a dead poll is noticed within ``claim_stale_s``.

    ``lost`` turns true when another poll took the lease over; :meth:`stop` ends the thread.
    """

    def __init__(self, env: Env) -> None:
        self.env = env
        self.lost = False
        self._stop = threading.Event()
        interval = min(env.settings.heartbeat_s, env.settings.claim_stale_s / 3)
        self._thread = threading.Thread(
            target=self._run, args=(max(interval, 0.05),), name="poll-lease", daemon=True
        )
        self._thread.start()

    def _run(self, interval: float) -> None:
        while not self._stop.wait(interval):
            try:
                if not hold_lease(self.env):
                    self.lost = True
                    return
            except Exception:  # a missed renewal is retried next interval
                log.warning("renewing the poll lease failed; retrying", exc_info=True)

    def stop(self) -> None:
        """Stop renewing (and wait for the renewing thread to end)."""
        self._stop.set()
        self._thread.join()


__all__ = ["LEASE", "LeaseKeeper", "drop_lease", "hold_lease", "lease_ttl"]
