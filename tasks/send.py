"""The campaign send path: one pass over a claimed chunk, exactly once per message.

How "every eligible student gets exactly one text" holds across crashes, pauses and workers
(the discipline itself is ``tasks/outbox.py``):

1. A worker claims a chunk with a fresh token and keeps it alive with heartbeats every few
   seconds; a chunk whose heartbeat stops is taken over, and marking a message ``sending``
   needs the token, so a paused worker that wakes up cannot start anything new.
2. Send-time checks, for every message however long ago it was planned: the sender still
   holds a permitted role and is active (else every open message of the campaign ends
   ``refused``/``sender_not_permitted``), consent (a STOP since planning wins), the quota
   (reserved atomically with the mark), quiet hours in the recipient's local time (deferred
   to the window's start, never dropped).
3. SMS go in paced groups: slots from the shared pace ledger, then the mark (committed),
   then the calls — each within ``send_deadline_s`` of the mark, with a ``ValidityPeriod``
   that ends when the recipient's window closes — then the outcomes (committed).
4. Outcomes follow the gateway's taxonomy: 21610 → opted out, then email; a number that
   cannot take SMS → disabled with the code, then email; retriable → later; a fatal
   configuration error → the campaign stops and admins get an alert email (through the
   outbox) and the event ``nudge.campaign.stopped``.
5. Emails go one at a time, each marked, sent and recorded on its own.

Messages left ``sending`` by someone else are settled first, once no request for them can
be in flight: SMS by asking the provider, emails as ``unknown``.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from prefect import task
from prefect.cache_policies import NO_CACHE
from sqlmodel import Session

from adapters.twilio_gateway import SendOutcome, SendResult, SmsGateway
from domain.campaign import effective_consent
from domain.config import OptOutScope, SmsConfig
from domain.outbox import CampaignStatus, Kind, OutChannel, Status
from domain.quiet_hours import (
    next_allowed,
    parse_window,
    recipient_timezone,
    validity_seconds,
    zone,
)
from domain.quota import message_cost, month_key
from domain.routing import ConsentState, Refusal, check_sender
from models.campaigns import (
    consents_for,
    disable_number,
    ensure_auto_consent,
    texted_numbers,
)
from models.chunks import Claim, release_chunk, still_held
from models.config import load_config
from models.consent import INSTITUTION, set_consent
from models.messaging import Campaign
from models.outbox import (
    Fence,
    OutRow,
    campaign_status,
    chunk_left,
    defer,
    enqueue,
    finish_campaign,
    load_chunk,
    move,
    refuse_campaign,
    stop_campaign,
    to_email,
    unmark,
)
from models.people import Person
from models.people_sync import refresh_sms_number
from tasks.outbox import (
    MARK_LEAD_S,
    MAX_SMS_ATTEMPTS,
    RETRY_LATER,
    MarkRule,
    SendEnv,
    SmsJob,
    alert_rows,
    calls_of,
    group_size,
    keep_for_reconciliation,
    mark_jobs,
    reconcile_sms,
    record_retry,
    record_sent,
    send_emails,
    send_jobs,
    settle_stale_emails,
    settled_before,
    settles_at,
)
from tasks.pacing import SharedPacer
from tasks.runtime import in_prefect_run, run_logger
from tasks.sender_numbers import SenderNumberConflict, ensure_sender_number

log = logging.getLogger("nudge.send")


@dataclass(slots=True)
class ChunkReport:
    """What one pass over a chunk did."""

    chunk_id: int
    sms_sent: int = 0
    emails_sent: int = 0
    fell_back: int = 0
    deferred: int = 0
    refused: int = 0
    retry_later: int = 0
    reconciled: int = 0
    unknown_emails: int = 0
    stopped: str | None = None
    lost_claim: bool = False
    done: bool = False
    seconds_total: float = 0.0
    seconds_twilio: float = 0.0


# --- the send-time rules --------------------------------------------------------------------


def sender_refusal(
    s: Session, campaign: Campaign, staff: Person, config: SmsConfig
) -> Refusal | None:
    """Router step 1 again, at send time: may this sender still send this campaign?"""
    from tasks.campaigns import sender_policy

    facts, policy = sender_policy(s, config, staff)
    return check_sender(facts, policy, is_reply=campaign.conversation)


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


@dataclass(slots=True)
class _Prepared:
    """A group marked ``sending``: its jobs, their slots and the deadline of its calls."""

    marked: list[SmsJob]
    times: list[float]
    deadline: float


class ChunkSender:
    """Sends one claimed chunk; one instance per chunk pass (and per event loop)."""

    def __init__(
        self,
        env: SendEnv,
        gateway: SmsGateway,
        claim: Claim,
        lost: Callable[[], bool] = lambda: False,
    ) -> None:
        self.env = env
        self.gateway = gateway
        self.claim = claim
        self.claim_lost = lost
        self.fence = Fence(claim.chunk_id, claim.token)
        self.report = ChunkReport(claim.chunk_id)
        self.config: SmsConfig = SmsConfig()
        self.campaign_id = claim.campaign_id
        self.sender_e164 = ""
        self.sender_name = ""
        self.retry_at: datetime | None = None
        self.stopped_now = False
        # Preparing one group and recording another may overlap (two threads).
        self._lock = threading.Lock()

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
        from tasks.campaigns import display_name

        with Session(env.engine, expire_on_commit=False) as s:
            campaign = s.get(Campaign, self.campaign_id)
            assert campaign is not None  # noqa: S101 - FK of the chunk
            if campaign.status != "sending":
                self.report.stopped = f"campaign is {campaign.status}"
                self._release()
                return self.report
            self.config = load_config(session=s)
            staff = s.get(Person, campaign.sender_person_id)
            assert staff is not None  # noqa: S101 - FK
            self.sender_name = display_name(staff)
            refusal = sender_refusal(s, campaign, staff, self.config)
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
                self.sender_e164 = await ensure_sender_number(env, self.gateway, staff)
            except SenderNumberConflict as exc:
                self._stop(f"sender number conflict: {exc}")
                self._release()
                return self.report
            jobs = await self._settle_in_flight(jobs)
            jobs = self._check(jobs)
            await self._send_groups(jobs, env.pacer(self.sender_e164))
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
                self.retry_at = max(self.retry_at or latest, latest)
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
                    fence=self.fence,
                    reason="not_needed",
                )
                s.commit()
        return ready

    # -- send-time checks ----------------------------------------------------------------

    def _check(self, jobs: list[SmsJob]) -> list[SmsJob]:
        """Consent, the opt-in notice and quiet hours, now; returns the jobs to send now."""
        env, config = self.env, self.config
        now = env.now()
        window = parse_window(config.quiet_hours)
        ready: list[SmsJob] = []
        with Session(env.engine) as s:
            numbers = [j.main.to_addr for j in jobs if j.main.to_addr]
            consents = consents_for(session=s, numbers=numbers, sender_e164=self.sender_e164)
            introduced = texted_numbers(session=s, sender_e164=self.sender_e164, numbers=numbers)
            for job in jobs:
                number = job.main.to_addr or ""
                inst, mine = consents.get(number, (None, None))
                state, _source = effective_consent(inst, mine, config.opt_out_scope)
                blocked = {
                    ConsentState.OPTED_OUT: "opted_out",
                    ConsentState.PAUSED_FOR_REVIEW: "review_pending",
                }.get(state)
                if blocked is None and state is ConsentState.UNKNOWN and not config.auto_opt_in:
                    blocked = "not_opted_in"
                if blocked:
                    self._fallback(s, job, blocked)
                    continue
                if len(job.rows) == 2 and number in introduced:
                    move(
                        session=s,
                        ids=[job.rows[0].id],
                        to=Status.SKIPPED,
                        now=now,
                        fence=self.fence,
                        reason="already_introduced",
                    )
                    job.rows = job.rows[1:]
                tz = zone(recipient_timezone(number, config.timezone))
                opens = next_allowed(now, window, tz)
                if opens is not None:
                    for row in job.rows:
                        defer(
                            session=s,
                            row=row,
                            until=opens,
                            now=now,
                            reason="quiet hours",
                            fence=self.fence,
                        )
                    self.report.deferred += 1
                    continue
                job.validity_s = validity_seconds(now, window, tz)
                job.units = {
                    r.id: message_cost(max(r.segments, 1), config.quota_unit) for r in job.rows
                }
                ready.append(job)
            s.commit()
        return ready

    def _fallback(self, s: Session, job: SmsJob, reason: str, code: int | None = None) -> None:
        now = self.env.now()
        for row in job.rows[:-1]:  # the notice is not needed when the text goes by email
            if row.status == Status.SENDING:
                unmark(session=s, row=row, now=now)
            move(
                session=s,
                ids=[row.id],
                to=Status.SKIPPED,
                now=now,
                fence=self.fence,
                reason="not_needed",
            )
        if to_email(
            session=s,
            row=job.main,
            reason=reason,
            sender_name=self.sender_name,
            now=now,
            code=code,
            fence=self.fence,
        ):
            self.report.fell_back += 1

    # -- paced groups, two in flight ---------------------------------------------------------

    async def _send_groups(self, jobs: list[SmsJob], pacer: SharedPacer) -> None:
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
            self.fence,
            self.sender_e164,
            month_key(now, self.config.timezone),
            self.config.monthly_limit,
        )
        with self._lock, Session(env.engine) as s:
            marked, over_quota = mark_jobs(s, jobs, rule, now)
            for job in over_quota:
                self._fallback(s, job, "quota_exhausted")
            s.commit()
        if len(marked) + len(over_quota) < len(jobs) and (self._lost() or not self._still_ours()):
            self.report.lost_claim = True
            with self._lock:
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
        await asyncio.to_thread(self._record, prepared.marked)

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
            status = campaign_status(session=s, campaign_id=self.campaign_id)
        if status != CampaignStatus.SENDING:
            self.report.stopped = self.report.stopped or f"campaign is {status}"
            return True
        return False

    # -- recording -----------------------------------------------------------------------

    def _record(self, jobs: list[SmsJob]) -> None:
        env, config = self.env, self.config
        now = env.now()
        auto: list[str] = []
        with self._lock, Session(env.engine) as s:
            for job in jobs:
                self._record_job(s, job, now)
                main = job.main
                if main.status == Status.SENT and main.extra.get("auto_opt_in"):
                    auto.append(main.to_addr or "")
            if config.auto_opt_in and auto:
                ensure_auto_consent(session=s, numbers=auto, now=now)
            s.commit()
        if self.report.stopped and self.stopped_now:
            self._alert(self.report.stopped)

    def _record_job(self, s: Session, job: SmsJob, now: datetime) -> None:
        failure: tuple[OutRow, SendResult] | None = None
        for row in job.rows:
            result = job.results.get(row.id)
            if result is None:  # an earlier message of the job failed: this one never went
                unmark(session=s, row=row, now=now)
                continue
            if result.outcome is SendOutcome.SENT:
                if record_sent(s, row, result, now) and row is job.main:
                    self.report.sms_sent += 1
                continue
            failure = (row, result)
        if failure is None:
            return
        row, result = failure
        outcome = result.outcome
        number = row.to_addr or ""
        if outcome is SendOutcome.AMBIGUOUS:
            # The provider may have it: keep it ``sending``; it is looked up again once no
            # request can be in flight.
            keep_for_reconciliation(s, row, now)
            self.retry_at = now + self.env.sms_bound()
            self.report.retry_later += 1
            return
        if outcome is SendOutcome.OPTED_OUT:
            scope = (
                self.sender_e164 if self.config.opt_out_scope == OptOutScope.sender else INSTITUTION
            )
            set_consent(
                session=s,
                e164=number,
                status="opted_out",
                source="carrier_21610",
                sender_e164=scope,
                reason="Twilio refused the send with 21610",
                actor="send",
                at=now,
            )
            self._fallback(s, job, "opted_out", result.error_code)
        elif outcome is SendOutcome.NOT_SMS_CAPABLE:
            for person_id in disable_number(session=s, e164=number, code=result.error_code):
                refresh_sms_number(session=s, person_id=person_id, config=self.config)
            self._fallback(s, job, f"not_sms_capable_{result.error_code}", result.error_code)
        elif outcome is SendOutcome.REJECTED:
            self._fallback(s, job, f"rejected_{result.error_code}", result.error_code)
        elif outcome is SendOutcome.FATAL:
            record_retry(s, row, result, now)
            for other in job.rows:
                if other.status == Status.SENDING:
                    unmark(session=s, row=other, now=now)
            reason = (
                f"Twilio error {result.error_code or result.http_status}: "
                f"{result.message or 'configuration problem'}"
            )
            if stop_campaign(session=s, campaign_id=self.campaign_id, reason=reason):
                self.stopped_now = True
                self._enqueue_alert(s, reason, now)
            self.report.stopped = reason
        else:  # not attempted (deadline), or retriable failures ran out
            record_retry(s, row, result, now)
            for other in job.rows:
                if other.status == Status.SENDING:
                    unmark(session=s, row=other, now=now)
            if (
                outcome is SendOutcome.RETRIABLE_EXHAUSTED
                and row is job.main
                and row.attempts >= MAX_SMS_ATTEMPTS
            ):
                self._fallback(s, job, "sms_failed", result.error_code)
            else:
                self.retry_at = now + (
                    RETRY_LATER if outcome is SendOutcome.RETRIABLE_EXHAUSTED else timedelta(0)
                )
                self.report.retry_later += 1

    def _stop(self, reason: str) -> None:
        """Stop the campaign (admins alerted): nothing more is sent until it is resumed."""
        now = self.env.now()
        with Session(self.env.engine) as s:
            if stop_campaign(session=s, campaign_id=self.campaign_id, reason=reason):
                self.stopped_now = True
                self._enqueue_alert(s, reason, now)
            s.commit()
        self.report.stopped = reason
        if self.stopped_now:
            self._alert(reason)

    def _enqueue_alert(self, s: Session, reason: str, now: datetime) -> None:
        """The campaign-stopped alert is an outbox row, created with the stop itself."""
        body = (
            f"Campaign {self.campaign_id} stopped sending.\n\nReason: {reason}\n\n"
            "Nothing further was sent. Fix the account or sender configuration, then run "
            f"`nudge campaigns resume {self.campaign_id}`."
        )
        enqueue(
            session=s,
            rows=alert_rows(
                key=f"campaign-stopped:{self.campaign_id}:{now.isoformat()}",
                recipients=self.env.settings.alert_emails,
                subject=f"nudge: campaign {self.campaign_id} stopped",
                body=body,
                now=now,
            ),
        )

    def _alert(self, reason: str) -> None:
        """Tell admins a campaign stopped: the run log and a Prefect event (the email is an
        outbox row sent by the worker loop)."""
        run_logger().error("campaign %s stopped: %s", self.campaign_id, reason)
        if in_prefect_run():
            from prefect.events import emit_event

            emit_event(
                event="nudge.campaign.stopped",
                resource={"prefect.resource.id": f"nudge.campaign.{self.campaign_id}"},
                payload={"campaign_id": self.campaign_id, "reason": reason},
            )

    # -- email -------------------------------------------------------------------------

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
            self.retry_at = max(self.retry_at or latest, latest)
        waiting = [r for r in emails if r.status in (Status.PLANNED, Status.DEFERRED)]
        report = send_emails(
            self.env,
            waiting,
            token=self.claim.token,
            fence=self.fence,
            should_stop=self._lost,
        )
        self.report.emails_sent += report.sent
        self.report.unknown_emails += report.unknown
        if report.lost_claim:
            self.report.lost_claim = True
        if report.retry:
            self.retry_at = max(self.retry_at or now, now + RETRY_LATER)

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
                candidates = [t for t in (left.earliest, self.retry_at) if t is not None]
                not_before = max(candidates) if candidates else None
                if left.earliest is not None and left.earliest <= now and self.retry_at is None:
                    not_before = None
            release_chunk(session=s, claim=self.claim, done=done, not_before=not_before)
            self.report.done = done
            if done:
                finish_campaign(session=s, campaign_id=self.campaign_id, now=now)
                s.commit()


async def send_chunk_async(
    env: SendEnv, claim: Claim, lost: Callable[[], bool] = lambda: False
) -> ChunkReport:
    """One pass over a claimed chunk with a fresh gateway (one per event loop); ``lost``
    says whether the claim's heartbeat found it taken over."""
    gateway = env.gateway_factory()
    try:
        return await ChunkSender(env, gateway, claim, lost).run()
    finally:
        await gateway.aclose()


@task(name="send-chunk", cache_policy=NO_CACHE)
def send_chunk(env: SendEnv, claim: Claim, lost: Callable[[], bool] = lambda: False) -> ChunkReport:
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
        f", stopped: {report.stopped}" if report.stopped else "",
    )
    return report


__all__ = [
    "ChunkReport",
    "ChunkSender",
    "SendEnv",
    "ensure_sender_number",
    "send_chunk",
    "send_chunk_async",
    "sender_refusal",
]
