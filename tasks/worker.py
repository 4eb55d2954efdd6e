"""The worker loop: claim due chunks and send them until none is left, whatever goes wrong.

Any number of processes may run :func:`work` at once — ``nudge work``, Prefect flow runs of
``send-campaign``, ``campaign-worker`` and ``dispatch-due``, on any machines: chunks are
claimed, never shared, and every message is marked under the claim's token.

* For one campaign, a worker that finds nothing to claim waits while other workers hold
  live claims on it: if one of them dies, its chunk becomes claimable once its heartbeat
  is ``claim_stale_s`` old (at once when the holder is a dead process of this host), and a
  waiting worker finishes it.
* ``only_unattended`` (``dispatch-due``) claims only chunks of campaigns no live worker is
  on: abandoned chunks, deferred messages that came due, newly started scheduled campaigns.
* One bad chunk never stops the loop: an unexpected error is recorded on the chunk, which is
  given back to be retried later (backing off), and the loop goes on with the next one.
* ``should_stop`` is checked between chunks (graceful shutdown: finish the chunk in hand,
  claim no more); a worker interrupted mid-chunk gives the chunk back before it goes.
* Alert emails created by a stop are sent at the end of every loop.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlmodel import Session

from domain.outbox import Kind
from models.campaign_lifecycle import finish_idle_campaigns
from models.chunks import (
    Claim,
    claim_chunk,
    free_dead_claims,
    heartbeat,
    live_claims,
    next_due,
    release_chunk,
)
from tasks.env import Env, TaskSettings
from tasks.outbox_loose import deliver_loose, settle_orphans
from tasks.runtime import run_logger, stepper
from tasks.send import send_chunk
from tasks.send_outcomes import ChunkReport

log = logging.getLogger("nudge.worker")

#: A chunk whose pass failed unexpectedly waits this long times 2^(failures-1), at most
#: :data:`MAX_BACKOFF`, before it is tried again.
FIRST_BACKOFF = timedelta(seconds=30)
MAX_BACKOFF = timedelta(hours=1)
#: A worker on one campaign waits for work due this soon (messages in flight being settled,
#: a dead worker's chunk) instead of returning with it pending; later work (quiet hours, a
#: provider outage) is left to ``dispatch-due``.
WAIT_FOR_DUE = timedelta(seconds=30)


@dataclass(slots=True)
class WorkReport:
    """What one worker did: chunks passed over, messages sent, where the time went."""

    chunks: int = 0
    sms_sent: int = 0
    emails_sent: int = 0
    fell_back: int = 0
    deferred: int = 0
    refused: int = 0
    unknown_emails: int = 0
    alerts_sent: int = 0
    stopped: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    seconds_total: float = 0.0
    seconds_twilio: float = 0.0

    def add(self, chunk: ChunkReport) -> None:
        """Count one chunk pass."""
        self.chunks += 1
        self.sms_sent += chunk.sms_sent
        self.emails_sent += chunk.emails_sent
        self.fell_back += chunk.fell_back
        self.deferred += chunk.deferred
        self.refused += chunk.refused
        self.unknown_emails += chunk.unknown_emails
        self.seconds_total += chunk.seconds_total
        self.seconds_twilio += chunk.seconds_twilio
        if chunk.stopped:
            self.stopped.append(chunk.stopped)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready figures."""
        return {
            "chunks": self.chunks,
            "sms_sent": self.sms_sent,
            "emails_sent": self.emails_sent,
            "fell_back": self.fell_back,
            "deferred": self.deferred,
            "refused": self.refused,
            "unknown_emails": self.unknown_emails,
            "alerts_sent": self.alerts_sent,
            "stopped": self.stopped,
            "errors": self.errors,
            "seconds_total": round(self.seconds_total, 3),
            "seconds_twilio": round(self.seconds_twilio, 3),
        }


class Heartbeat:
    """Keeps a chunk claim alive from a thread of its own, every ``heartbeat_s`` seconds.

    A slow batch (Twilio retries, a loaded database) must never make a live worker look
    dead: only a worker that stopped beating is taken over. ``lost`` turns true when another
    worker holds the chunk; the sender then stops before its next group (and could not mark
    anything anyway: the mark is fenced by the claim token).
    """

    def __init__(self, env: Env, claim: Claim) -> None:
        self.env = env
        self.claim = claim
        self.lost = False
        self._stop = threading.Event()
        self._interval = max(min(env.settings.heartbeat_s, env.settings.claim_stale_s / 3), 0.05)
        self._thread = threading.Thread(
            target=self._run, name=f"heartbeat-{claim.chunk_id}", daemon=True
        )

    def beat(self) -> None:
        """Refresh the claim once."""
        with Session(self.env.engine) as s:
            if not heartbeat(session=s, claim=self.claim, now=self.env.now()):
                self.lost = True

    def _run(self) -> None:
        while not self._stop.wait(self._interval) and not self.lost:
            try:
                self.beat()
            except Exception:  # a missed beat is retried next interval
                log.warning(
                    "heartbeat of chunk %s failed; retrying", self.claim.chunk_id, exc_info=True
                )

    def __enter__(self) -> Heartbeat:
        self.beat()
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()


def backoff(failures: int) -> timedelta:
    """How long a chunk that failed ``failures`` times waits before the next try."""
    wait: timedelta = FIRST_BACKOFF * (2 ** max(failures - 1, 0))
    return min(wait, MAX_BACKOFF)


def work(
    settings: TaskSettings,
    *,
    env: Env,
    campaign_id: int | None = None,
    engine: bool = False,
    max_chunks: int | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    poll_s: float = 1.0,
    only_unattended: bool = False,
    on_chunk: Callable[[], None] | None = None,
) -> WorkReport:
    """Claim due chunks (of one campaign, or of any) and send them until none is left;
    ``on_chunk`` runs after each chunk (``flows/send_campaign.work`` updates its progress
    artifact there)."""
    step = stepper(engine)
    report = WorkReport()
    stale = timedelta(seconds=settings.claim_stale_s)
    while not should_stop() and (max_chunks is None or report.chunks < max_chunks):
        now = env.now()
        with Session(env.engine) as s:
            claim = claim_chunk(
                session=s,
                worker=env.worker,
                now=now,
                stale_before=now - stale,
                campaign_id=campaign_id,
                only_unattended=only_unattended,
            )
            if claim is None and free_dead_claims(session=s, campaign_id=campaign_id):
                continue  # a dead worker's chunk is free now: claim it at once
            held = (
                0
                if claim is not None or campaign_id is None
                else live_claims(
                    session=s,
                    campaign_id=campaign_id,
                    stale_before=now - stale,
                    exclude=env.worker,
                )
            )
            due = (
                None
                if claim is not None or held or campaign_id is None
                else next_due(session=s, campaign_id=campaign_id)
            )
        if claim is None:
            if held:
                time.sleep(poll_s)  # another worker is on it; take over if it dies
                continue
            if due is not None and due - now <= WAIT_FOR_DUE:
                time.sleep(min(poll_s, max((due - now).total_seconds(), 0.05)))
                continue
            break
        try:
            # Beat from the moment of the claim: building the gateway or buying the sender's
            # number must not make this live worker look dead.
            with Heartbeat(env, claim) as beat:
                report.add(step(send_chunk)(env, claim, lambda: beat.lost))
        except Exception as exc:  # one bad chunk never stops the others
            detail = f"{type(exc).__name__}: {exc}"
            report.errors.append(f"chunk {claim.chunk_id}: {detail}"[:500])
            run_logger().error(
                "chunk %s failed and will be retried later: %s\n%s",
                claim.chunk_id,
                detail,
                traceback.format_exc(limit=8),
            )
            _give_back(env, claim, error=detail)
        except BaseException:
            # Killed (SIGTERM/Prefect cancellation) mid-chunk: give it back at once; whatever
            # is left 'sending' is settled by the next worker before any resend.
            with Session(env.engine) as s:
                release_chunk(session=s, claim=claim, done=False, not_before=None)
            raise
        if on_chunk is not None:
            on_chunk()
    with Session(env.engine) as s:
        finish_idle_campaigns(session=s, now=env.now())
        s.commit()
    try:
        settle_orphans(env)
    except Exception as exc:  # settled on the next loop
        report.errors.append(f"orphans: {type(exc).__name__}: {exc}"[:500])
        log.warning("settling orphaned messages failed: %s", exc)
    try:
        report.alerts_sent = deliver_loose(env, kinds=[Kind.ALERT]).emails.sent
    except Exception as exc:  # alerts wait for the next loop; the campaign work is done
        report.errors.append(f"alerts: {type(exc).__name__}: {exc}"[:500])
        log.warning("alert emails not sent: %s", exc)
    return report


def _give_back(env: Env, claim: Any, *, error: str) -> None:
    from models.messaging import SendChunk

    with Session(env.engine) as s:
        row = s.get(SendChunk, claim.chunk_id)
        failures = (row.failures if row is not None else 0) + 1
        release_chunk(
            session=s,
            claim=claim,
            done=False,
            not_before=env.now() + backoff(failures),
            error=error,
        )


def fan_out(campaign_ids: Sequence[int], runs: int) -> list[str]:
    """Ask the work pool for ``runs`` more ``campaign-worker`` runs on each campaign.

    Only meaningful when deployed: each run claims chunks, and any worker of the pool may
    pick it up (the README's worker settings spread them over the workers). Outside a
    deployment (or when the deployment is missing) nothing happens and the caller's run
    sends everything itself. Returns the ids of the runs started.
    """
    from prefect.deployments import run_deployment

    started: list[str] = []
    for campaign_id in campaign_ids:
        for index in range(runs):
            try:
                run = run_deployment(
                    "campaign-worker/campaign-worker",
                    parameters={"campaign_id": campaign_id},
                    timeout=0,
                    idempotency_key=f"campaign-{campaign_id}-worker-{index}",
                )
            except Exception as exc:  # fan-out is an optimisation, never a reason to fail
                run_logger().warning("fan-out for campaign %s unavailable: %s", campaign_id, exc)
                break
            started.append(str(getattr(run, "id", "")))
    return started


__all__ = ["Heartbeat", "WorkReport", "backoff", "fan_out", "work"]
