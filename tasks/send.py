"""The campaign send path: one pass over a claimed chunk, exactly once per message.

How "every eligible student gets exactly one text" holds across crashes, pauses and workers
(the discipline itself is ``tasks/outbox.py``):

1. A worker claims a chunk with a fresh token and keeps it alive with heartbeats every few
   seconds; a chunk whose heartbeat stops is taken over, and marking a message ``sending``
   needs the token, so a paused worker that wakes up cannot start anything new.
2. Send-time checks, for every message however long ago it was planned
   (``tasks/send_checks.py``): the sender still holds a permitted role and is active (else
   every open message of the campaign ends ``refused``/``sender_not_permitted``), consent
   (a STOP since planning wins), the quota (reserved atomically with the mark), quiet hours
   in the recipient's local time (deferred to the window's start, never dropped).
3. SMS go in paced groups (``tasks/send_groups.py``): slots from the shared pace ledger,
   then the mark (committed), then the calls — each within ``send_deadline_s`` of the mark,
   with a ``ValidityPeriod`` that ends when the recipient's window closes — then the
   outcomes (committed).
4. Outcomes follow the gateway's taxonomy (``tasks/send_outcomes.py``): 21610 → opted out,
   then email; a number that cannot take SMS → disabled with the code, then email;
   retriable → later; a fatal configuration error → the campaign stops and admins get an
   alert email (through the outbox) and the event ``nudge.campaign.stopped``.
5. Emails go one at a time, each marked, sent and recorded on its own.

Messages left ``sending`` by someone else are settled first, once no request for them can
be in flight: SMS by asking the provider, emails as ``unknown``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence

from prefect import task
from prefect.cache_policies import NO_CACHE
from sqlmodel import Session

from adapters.twilio.types import SmsGateway
from domain.outbox import CampaignStatus, Kind, OutChannel, Status
from models.campaign_lifecycle import campaign_status, finish_campaign, refuse_campaign
from models.chunks import Claim, release_chunk
from models.config import load_config
from models.messaging import Campaign
from models.outbox import Fence, OutRow, load_chunk, move
from models.outbox_summary import chunk_left
from models.people import Person
from tasks.env import Env
from tasks.outbox import RETRY_LATER, settled_before, settles_at
from tasks.outbox_email import send_emails, settle_stale_emails
from tasks.outbox_sms import SmsJob, reconcile_sms
from tasks.runtime import in_prefect_run, run_logger
from tasks.send_checks import check_jobs, sender_refusal
from tasks.send_groups import PacedGroups
from tasks.send_outcomes import ChunkOutcomes, ChunkReport, masked
from tasks.sender_numbers import SenderNumberConflict, ensure_sender_number


def _jobs(rows: Sequence[OutRow]) -> tuple[list[SmsJob], list[OutRow]]:
    """SMS work per recipient (an optional opt-in notice, then the text), and the emails."""
    mains: dict[int, OutRow] = {}
    notices: dict[int, OutRow] = {}
    emails: list[OutRow] = []
    for row in rows:
        if row.channel == OutChannel.EMAIL:
            emails.append(row)
        elif row.channel == OutChannel.SMS:
            (notices if row.kind == Kind.OPT_IN_NOTICE else mains)[row.person_id or 0] = row
    jobs = []
    for person_id, main in mains.items():
        notice = notices.get(person_id)
        jobs.append(SmsJob([notice, main] if notice is not None else [main], 0))
    return jobs, emails


class ChunkSender:
    """Sends one claimed chunk; one instance per chunk pass (and per event loop)."""

    def __init__(
        self,
        env: Env,
        gateway: SmsGateway,
        claim: Claim,
        lost: Callable[[], bool] = lambda: False,
    ) -> None:
        self.env = env
        self.gateway = gateway
        self.claim = claim
        self.claim_lost = lost
        self.campaign_id = claim.campaign_id
        self.report = ChunkReport(claim.chunk_id)
        #: What the pass knows and writes (configuration, sender, outcomes, when next due).
        self.out = ChunkOutcomes(
            env, Fence(claim.chunk_id, claim.token), claim.campaign_id, self.report
        )

    async def run(self) -> ChunkReport:
        """One pass: check, settle what others left, send what is due, release the chunk."""
        started = time.perf_counter()
        try:
            return await self._run()
        finally:
            self.report.seconds_total = time.perf_counter() - started

    def _lost(self) -> bool:
        return self.claim_lost()

    async def _run(self) -> ChunkReport:
        env = self.env
        with Session(env.engine, expire_on_commit=False) as s:
            campaign = s.get(Campaign, self.campaign_id)
            assert campaign is not None  # noqa: S101 - FK of the chunk
            if campaign.status != "sending":
                self.report.stopped = f"campaign is {campaign.status}"
                self._release()
                return self.report
            self.out.config = load_config(session=s)
            staff = s.get(Person, campaign.sender_person_id)
            assert staff is not None  # noqa: S101 - FK
            self.out.sender_name = staff.display_name
            refusal = sender_refusal(s, campaign, staff, self.out.config)
            if refusal is not None:
                self.report.refused = refuse_campaign(
                    session=s,
                    campaign_id=self.campaign_id,
                    code=refusal.code.value,
                    message=refusal.message,
                    now=env.now(),
                )
                s.commit()
                self.report.stopped = refusal.message
                run_logger().error(
                    "campaign %s refused at send time: %s", self.campaign_id, refusal.message
                )
                self._release()
                return self.report
            rows = load_chunk(session=s, chunk_id=self.claim.chunk_id, now=env.now())
        jobs, emails = _jobs(rows)
        if jobs:
            try:
                self.out.sender_e164 = await ensure_sender_number(env, self.gateway, staff)
            except SenderNumberConflict as exc:
                self.out.stop(f"sender number conflict: {exc}")
                self._release()
                return self.report
            jobs = await self._settle_in_flight(jobs)
            jobs = self._check(jobs)
            groups = PacedGroups(self.out, self.gateway, self.claim, self._lost)
            await groups.send(jobs, env.pacer(self.out.sender_e164))
        if not self._lost() and not self.report.stopped:
            await asyncio.to_thread(self._mail, emails)
        if self._lost():
            self.report.lost_claim = True
            run_logger().warning("chunk %s was taken over by another worker", self.claim.chunk_id)
        self._release()
        return self.report

    # -- settling what a crash left ------------------------------------------------------

    async def _settle_in_flight(self, jobs: list[SmsJob]) -> list[SmsJob]:
        """SMS left ``sending`` (a crash, a pause, a lost answer): ask the provider, once
        no request for them can still be in flight. Until then their recipients wait."""
        now = self.env.now()
        bound = self.env.sms_bound()
        ready, settle, waiting = [], [], set()
        for job in jobs:
            busy = [r for r in job.rows if r.status == Status.SENDING]
            young = [r for r in busy if not settled_before(r, bound=bound, now=now)]
            if young:
                waiting.add(id(job))
                latest = max(settles_at(r, bound=bound, now=now) for r in young)
                self.out.retry_at = max(self.out.retry_at or latest, latest)
            else:
                settle.extend(busy)
        if settle:
            self.report.reconciled += await reconcile_sms(self.env, self.gateway, settle)
        orphans: list[int] = []
        for job in jobs:
            if id(job) in waiting:
                continue
            job.rows = [r for r in job.rows if r.status in (Status.PLANNED, Status.DEFERRED)]
            if job.rows and job.rows[-1].kind == Kind.OPT_IN_NOTICE:
                orphans.append(job.rows[-1].id)  # its text already went: no notice now
            elif job.rows:
                ready.append(job)
        if orphans:
            with Session(self.env.engine) as s:
                move(
                    session=s,
                    ids=orphans,
                    to=Status.SKIPPED,
                    now=now,
                    fence=self.out.fence,
                    reason="not_needed",
                )
                s.commit()
        return ready

    # -- send-time checks, then email --------------------------------------------------

    def _check(self, jobs: list[SmsJob]) -> list[SmsJob]:
        """Consent, the opt-in notice and quiet hours, now; returns the jobs to send now."""
        return check_jobs(self.out, jobs)

    def _mail(self, emails: list[OutRow]) -> None:
        """The chunk's emails (planned ones and SMS fallbacks), one at a time."""
        now = self.env.now()
        with Session(self.env.engine) as s:
            current = load_chunk(session=s, chunk_id=self.claim.chunk_id, now=now)
        emails = [r for r in current if r.channel == OutChannel.EMAIL]
        stale = [
            r
            for r in emails
            if r.status == Status.SENDING
            and settled_before(r, bound=self.env.email_bound(), now=now)
        ]
        self.report.unknown_emails += settle_stale_emails(self.env, stale)
        young = [r for r in emails if r.status == Status.SENDING and r not in stale]
        if young:
            bound = self.env.email_bound()
            latest = max(settles_at(r, bound=bound, now=now) for r in young)
            self.out.retry_at = max(self.out.retry_at or latest, latest)
        waiting = [r for r in emails if r.status in (Status.PLANNED, Status.DEFERRED)]
        report = send_emails(
            self.env,
            waiting,
            token=self.claim.token,
            fence=self.out.fence,
            should_stop=self._lost,
        )
        self.report.emails_sent += report.sent
        self.report.unknown_emails += report.unknown
        if report.lost_claim:
            self.report.lost_claim = True
        if report.retry:
            self.out.retry_at = max(self.out.retry_at or now, now + RETRY_LATER)

    # -- bookkeeping -----------------------------------------------------------------------

    def _release(self) -> None:
        if self.report.lost_claim or self._lost():
            return
        now = self.env.now()
        with Session(self.env.engine) as s:
            left = chunk_left(session=s, chunk_id=self.claim.chunk_id)
            over = campaign_status(session=s, campaign_id=self.campaign_id) in (
                CampaignStatus.REFUSED,
                CampaignStatus.CANCELLED,
            )
            done = left.open == 0 or (self.report.stopped is not None and over)
            not_before = None
            if not done:
                candidates = [t for t in (left.earliest, self.out.retry_at) if t is not None]
                not_before = max(candidates) if candidates else None
                if left.earliest is not None and left.earliest <= now and self.out.retry_at is None:
                    not_before = None
            release_chunk(session=s, claim=self.claim, done=done, not_before=not_before)
            self.report.done = done
            if done:
                finish_campaign(session=s, campaign_id=self.campaign_id, now=now)
                s.commit()


async def send_chunk_async(
    env: Env, claim: Claim, lost: Callable[[], bool] = lambda: False
) -> ChunkReport:
    """One pass over a claimed chunk with a fresh gateway (one per event loop); ``lost``
    says whether the claim's heartbeat found it taken over."""
    gateway = env.gateway_factory()
    try:
        return await ChunkSender(env, gateway, claim, lost).run()
    finally:
        await gateway.aclose()


@task(name="send-chunk", cache_policy=NO_CACHE)
def send_chunk(env: Env, claim: Claim, lost: Callable[[], bool] = lambda: False) -> ChunkReport:
    """Send one chunk (one Prefect task per chunk, never per message)."""
    if env.settings.chunk_rate_limit and in_prefect_run():
        # Across processes: one slot of the named Prefect rate limit per chunk (an API
        # round-trip, so per chunk, never per message; messages are paced by the ledger).
        from prefect.concurrency.sync import rate_limit

        rate_limit(env.settings.chunk_rate_limit, occupy=1, strict=True)
    report = asyncio.run(send_chunk_async(env, claim, lost))
    run_logger().info(
        "chunk %s: %d SMS sent, %d emails, %d fell back to email, %d deferred, %d to retry%s",
        claim.chunk_id,
        report.sms_sent,
        report.emails_sent,
        report.fell_back,
        report.deferred,
        report.retry_later,
        f", stopped: {masked(report.stopped)}" if report.stopped else "",
    )
    return report


__all__ = ["ChunkSender", "send_chunk", "send_chunk_async"]
