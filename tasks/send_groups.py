"""A chunk's SMS in paced groups, two in flight.

While one group is on the wire the next is prepared — its slots reserved from the shared
pace ledger (``tasks/pacing.py``), then, just before the first slot, its quota reserved
and its messages marked ``sending`` under the chunk's claim (over-quota texts go by
email) — and it starts at its own slots, so the pace holds without a pause between groups.
Every call starts within ``send_deadline_s`` of its mark; outcomes are recorded group by
group (``tasks/send_outcomes.py``). The pass stops before the next group when the claim is
lost or the campaign no longer sends; what was marked but never called goes back to
``planned``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlmodel import Session

from adapters.twilio.types import SmsGateway
from domain.outbox import CampaignStatus, Status
from domain.quota import month_key
from models.campaign_lifecycle import campaign_status
from models.chunks import Claim, still_held
from models.outbox import unmark
from tasks.outbox_sms import (
    MARK_LEAD_S,
    MarkRule,
    SmsJob,
    calls_of,
    group_size,
    mark_jobs,
    send_jobs,
)
from tasks.pacing import SharedPacer
from tasks.send_outcomes import ChunkOutcomes


@dataclass(slots=True)
class _Prepared:
    """A group marked ``sending``: its jobs, their slots and the deadline of its calls."""

    marked: list[SmsJob]
    times: list[float]
    deadline: float


class PacedGroups:
    """Sends a chunk's checked SMS jobs in paced groups; one instance per chunk pass."""

    def __init__(
        self,
        out: ChunkOutcomes,
        gateway: SmsGateway,
        claim: Claim,
        lost: Callable[[], bool],
    ) -> None:
        self.out = out
        self.env = out.env
        self.report = out.report
        self.gateway = gateway
        self.claim = claim
        self._lost = lost

    async def send(self, jobs: list[SmsJob], pacer: SharedPacer) -> None:
        """Send the jobs in paced groups. While one group is on the wire the next is
        prepared (slots reserved, messages marked) and starts at its own slots, so the pace
        holds without a pause between groups; outcomes are recorded group by group."""
        size = group_size(self.env, pacer)
        groups: list[list[SmsJob]] = [[]]
        for job in jobs:
            if groups[-1] and calls_of(groups[-1]) + len(job.rows) > size:
                groups.append([])
            groups[-1].append(job)
        gate = asyncio.Semaphore(self.env.settings.send_concurrency)
        before: asyncio.Task[None] | None = None
        for group in groups:
            if not group:
                continue
            prepared = await asyncio.to_thread(self._prepare_group, group, pacer)
            if prepared is None:
                break
            current = asyncio.create_task(self._send_and_record(prepared, pacer, gate))
            if before is not None:
                # At most two groups at once: the next is prepared only once the one before
                # this is recorded (a fatal answer there stops the campaign).
                await before
            before = current
            if self.report.stopped or self._lost():
                break
        if before is not None:
            await before

    def _prepare_group(self, jobs: list[SmsJob], pacer: SharedPacer) -> _Prepared | None:
        """Reserve the group's slots, then mark it just before the first (fenced; over-quota
        jobs fall back to email). None when the pass must stop."""
        if self._lost() or self._stopped():
            return None
        env = self.env
        times = pacer.reserve(calls_of(jobs), lead=MARK_LEAD_S)
        time.sleep(max(0.0, times[0] - MARK_LEAD_S - time.monotonic()))
        now = env.now()
        rule = MarkRule(
            self.claim.token,
            self.out.fence,
            self.out.sender_e164,
            month_key(now, self.out.config.timezone),
            self.out.config.monthly_limit,
        )
        with self.out.lock, Session(env.engine) as s:
            marked, over_quota = mark_jobs(s, jobs, rule, now)
            for job in over_quota:
                self.out.fallback(s, job, "quota_exhausted")
            s.commit()
        if len(marked) + len(over_quota) < len(jobs) and (self._lost() or not self._still_ours()):
            self.report.lost_claim = True
            with self.out.lock:
                self._abandon(marked)
            return None
        return _Prepared(marked, times, time.monotonic() + env.settings.send_deadline_s)

    async def _send_and_record(
        self, prepared: _Prepared, pacer: SharedPacer, gate: asyncio.Semaphore
    ) -> None:
        self.report.seconds_twilio += await send_jobs(
            self.env,
            self.gateway,
            prepared.marked,
            times=prepared.times,
            deadline=prepared.deadline,
            pacer=pacer,
            gate=gate,
        )
        await asyncio.to_thread(self.out.record, prepared.marked)

    def _abandon(self, jobs: list[SmsJob]) -> None:
        """Marked but never called (the campaign stopped, the claim was lost): back to
        ``planned``, quota given back."""
        now = self.env.now()
        with Session(self.env.engine) as s:
            for job in jobs:
                for row in job.rows:
                    if row.status == Status.SENDING:
                        unmark(session=s, row=row, now=now)
            s.commit()

    def _still_ours(self) -> bool:
        with Session(self.env.engine) as s:
            return still_held(session=s, claim=self.claim)

    def _stopped(self) -> bool:
        with Session(self.env.engine) as s:
            status = campaign_status(session=s, campaign_id=self.out.campaign_id)
        if status != CampaignStatus.SENDING:
            self.report.stopped = self.report.stopped or f"campaign is {status}"
            return True
        return False


__all__ = ["PacedGroups"]
