"""The send path: claim a chunk, send its messages, record every outcome. Exactly once.

How "every eligible student gets exactly one text" holds, even across crashes and workers:

1. A worker claims a chunk (``FOR UPDATE SKIP LOCKED`` on PostgreSQL) and keeps the claim
   alive with heartbeats; a chunk whose heartbeat stops is reclaimed by another worker.
2. Before calling Twilio, a batch of messages is marked ``sending`` and its quota reserved,
   in one committed transaction. Consent is re-read at that moment, so a STOP that arrived
   after planning still wins.
3. Twilio's answer is recorded in one transaction per batch. A message left ``sending`` (a
   crash, a timeout after the request went out) is reconciled against Twilio's message list
   before it may be sent again.
4. Outcomes follow the gateway's taxonomy: 21610 → opted out, then email; a number that
   cannot take SMS → disabled with the code, then email; retriable → retried by the
   gateway, then later; fatal configuration → the campaign stops and admins are alerted.

Concurrency inside a chunk is bounded (``send_concurrency``) and paced per sender number and
per account (``tasks/pacing.py``); across processes, chunks are paced by Prefect's
``rate_limit`` on the global limit named by ``NUDGE_CHUNK_RATE_LIMIT``, when set.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from sqlalchemy import func, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from adapters.mailer import Email, Mailer, MailPermanent, make_mailer
from adapters.twilio_gateway import SendOutcome, SendResult, SmsGateway, TwilioSmsGateway
from domain.campaign import effective_consent
from domain.config import OptOutScope, SmsConfig
from domain.masking import mask_phone
from domain.quota import message_cost, month_key
from domain.routing import ConsentState
from models.campaigns import (
    campaign_counts,
    consents_for,
    disable_number,
    email_body,
    ensure_auto_consent,
    heartbeat,
    open_chunks,
    release_chunk,
    texted_numbers,
)
from models.config import load_config
from models.consent import INSTITUTION, set_consent
from models.messaging import Campaign, Message, SendChunk, SenderNumber
from models.people import Person
from models.people_sync import refresh_sms_number
from models.quota import release, reserve
from models.types import utcnow
from nudge.settings import Settings
from tasks.pacing import pacer
from tasks.runtime import in_prefect_run, run_logger

log = logging.getLogger("nudge.send")

message_t = Message.__table__  # type: ignore[attr-defined]
campaign_t = Campaign.__table__  # type: ignore[attr-defined]
chunk_t = SendChunk.__table__  # type: ignore[attr-defined]
sender_t = SenderNumber.__table__  # type: ignore[attr-defined]

#: How long a chunk waits before retrying messages Twilio kept refusing as retriable.
RETRY_LATER = timedelta(minutes=1)
#: After this many passes an SMS that never went out falls back to email.
MAX_SMS_ATTEMPTS = 5
#: After this many passes an email that never went out is marked failed.
MAX_EMAIL_ATTEMPTS = 5


def worker_name() -> str:
    """A name for this worker process: host, pid and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass(slots=True)
class Msg:
    """A message row as the send path handles it."""

    id: int
    person_id: int
    kind: str
    channel: str
    status: str
    to_addr: str | None
    body: str
    segments: int
    attempts: int
    extra: dict[str, Any]
    updated_at: datetime
    quota_units: int
    quota_month: str | None


@dataclass(slots=True)
class Job:
    """One recipient's SMS work in a chunk: an optional opt-in notice, then the message."""

    main: Msg
    notice: Msg | None = None
    results: list[tuple[Msg, SendResult]] = field(default_factory=list)


@dataclass(slots=True)
class ChunkReport:
    """What one pass over a chunk did."""

    chunk_id: int
    sms_sent: int = 0
    emails_sent: int = 0
    fell_back: int = 0
    retry_later: int = 0
    reconciled: int = 0
    stopped: str | None = None
    lost_claim: bool = False
    done: bool = False
    seconds_total: float = 0.0
    seconds_twilio: float = 0.0


class CampaignStopped(Exception):
    """A fatal provider error stopped the campaign; admins were alerted."""


@dataclass
class SendEnv:
    """The edges the send path talks to (injected, so tests use the real emulator)."""

    settings: Settings
    engine: Engine
    mailer: Mailer
    gateway_factory: Callable[[], SmsGateway]
    worker: str = field(default_factory=worker_name)
    now: Callable[[], datetime] = utcnow

    @classmethod
    def from_settings(cls, settings: Settings, engine: Engine) -> SendEnv:
        """Real Twilio (or the emulator at ``NUDGE_TWILIO_BASE_URL``) and the configured mail."""
        return cls(settings, engine, make_mailer(settings), lambda: TwilioSmsGateway(settings))


# --- sender numbers -------------------------------------------------------------------


async def ensure_sender_number(env: SendEnv, gateway: SmsGateway, staff: Person) -> str:
    """The staff member's sender number, provisioned through Twilio on their first SMS.

    Two concurrent first sends provision one number: the first to insert the
    ``provisioning`` row buys it, the others wait for it (or take over a stale attempt).
    """
    assert staff.id is not None  # noqa: S101 - a stored person
    deadline = env.now() + timedelta(seconds=90)
    while True:
        with Session(env.engine) as s:
            row = s.execute(select(sender_t).where(sender_t.c.staff_person_id == staff.id)).first()
            if row is not None and row.status == "active" and row.e164:
                return str(row.e164)
            mine = False
            if row is None:
                try:
                    s.execute(
                        sender_t.insert().values(
                            staff_person_id=staff.id,
                            status="provisioning",
                            created_at=env.now(),
                            updated_at=env.now(),
                        )
                    )
                    s.commit()
                    mine = True
                except IntegrityError:
                    s.rollback()
            elif row.updated_at < env.now() - timedelta(minutes=2):
                mine = bool(
                    s.execute(
                        update(sender_t)
                        .where(
                            sender_t.c.id == row.id,
                            sender_t.c.status == "provisioning",
                            sender_t.c.updated_at == row.updated_at,
                        )
                        .values(updated_at=env.now())
                    ).rowcount  # type: ignore[attr-defined]
                )
                s.commit()
        if mine:
            return await _provision(env, gateway, staff)
        if env.now() > deadline:
            raise TimeoutError(f"sender number of {staff.sis_id} is still being provisioned")
        await asyncio.sleep(0.2)


async def _provision(env: SendEnv, gateway: SmsGateway, staff: Person) -> str:
    try:
        bought = await gateway.provision_number(
            area_code=env.settings.twilio_area_code,
            country=env.settings.twilio_country,
            friendly_name=f"nudge {staff.sis_id}",
        )
    except BaseException:
        with Session(env.engine) as s:  # let the next attempt try again
            s.execute(
                sender_t.delete().where(
                    sender_t.c.staff_person_id == staff.id, sender_t.c.status == "provisioning"
                )
            )
            s.commit()
        raise
    with Session(env.engine) as s:
        s.execute(
            update(sender_t)
            .where(sender_t.c.staff_person_id == staff.id)
            .values(
                e164=bought.phone_number,
                provider_sid=bought.sid,
                status="active",
                updated_at=env.now(),
            )
        )
        s.commit()
    run_logger().info(
        "sender number %s provisioned for %s", mask_phone(bought.phone_number), staff.sis_id
    )
    return bought.phone_number


# --- one chunk ------------------------------------------------------------------------


def _load(s: Session, chunk_id: int, now: datetime) -> list[Msg]:
    cols = (
        message_t.c.id,
        message_t.c.person_id,
        message_t.c.kind,
        message_t.c.channel,
        message_t.c.status,
        message_t.c.to_addr,
        message_t.c.body,
        message_t.c.segments,
        message_t.c.attempts,
        message_t.c.extra,
        message_t.c.updated_at,
        message_t.c.quota_units,
        message_t.c.quota_month,
    )
    rows = s.execute(
        select(*cols)
        .where(
            message_t.c.chunk_id == chunk_id,
            message_t.c.status.in_(["planned", "sending"]),
            (message_t.c.send_after.is_(None)) | (message_t.c.send_after <= now),
        )
        .order_by(message_t.c.person_id, message_t.c.id)
    ).all()
    return [Msg(*r) for r in rows]


def _jobs(messages: Sequence[Msg]) -> list[Job]:
    jobs: dict[int, Job] = {}
    notices: dict[int, Msg] = {}
    for m in messages:
        if m.channel != "sms":
            continue
        if m.kind == "opt_in_notice":
            notices[m.person_id] = m
        else:
            jobs[m.person_id] = Job(m)
    for person_id, notice in notices.items():
        if person_id in jobs:
            jobs[person_id].notice = notice
    return list(jobs.values())


def _set(s: Session, msg: Msg, **values: Any) -> None:
    values.setdefault("updated_at", utcnow())
    s.execute(update(message_t).where(message_t.c.id == msg.id).values(**values))
    for key, value in values.items():
        if hasattr(msg, key):
            setattr(msg, key, value)


def _to_email(
    s: Session, msg: Msg, reason: str, sender_name: str, *, code: int | None = None
) -> None:
    """Turn a planned SMS into its email fallback (or undeliverable without an address)."""
    email = s.execute(select(col(Person.email)).where(col(Person.id) == msg.person_id)).scalar()
    extra = {**msg.extra, "fallback": True, "sms_error": code}
    if not email:
        _set(
            s,
            msg,
            status="skipped",
            channel="none",
            reason="no_email_no_sms",
            extra=extra,
            error_code=code,
        )
        return
    _set(
        s,
        msg,
        channel="email",
        status="planned",
        reason=reason,
        to_addr=email,
        subject=f"Message from {sender_name}",
        body=email_body(msg.body, sender_name),
        extra=extra,
        error_code=code,
    )


def in_flight_bound(settings: Settings) -> timedelta:
    """How long after a message was marked ``sending`` a request for it may still be in
    flight: every attempt's timeout plus the longest backoff between retries, and a margin."""
    retries = settings.twilio_max_retries
    return timedelta(seconds=settings.twilio_timeout_s * (retries + 1) + 8.0 * retries + 5.0)


class Heartbeat:
    """Keeps a chunk claim alive from a thread of its own, every quarter of the stale time.

    A slow batch (Twilio retries, a loaded database) must never make a live worker look
    dead: only a worker that stopped beating is taken over. ``lost`` turns true when another
    worker holds the chunk; the sender then stops before its next batch.
    """

    def __init__(self, env: SendEnv, chunk_id: int) -> None:
        self.env = env
        self.chunk_id = chunk_id
        self.lost = False
        self._stop = threading.Event()
        self._interval = max(env.settings.claim_stale_s / 4, 0.2)
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{chunk_id}", daemon=True)

    def beat(self) -> None:
        """Refresh the claim once."""
        with Session(self.env.engine) as s:
            if not heartbeat(
                session=s, chunk_id=self.chunk_id, worker=self.env.worker, now=self.env.now()
            ):
                self.lost = True

    def _run(self) -> None:
        while not self._stop.wait(self._interval) and not self.lost:
            try:
                self.beat()
            except Exception:  # a missed beat is retried next interval
                log.warning("heartbeat of chunk %s failed; retrying", self.chunk_id, exc_info=True)

    def __enter__(self) -> Heartbeat:
        self.beat()
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()


class ChunkSender:
    """Sends one claimed chunk; one instance per chunk pass (and per event loop)."""

    def __init__(self, env: SendEnv, gateway: SmsGateway, chunk_id: int) -> None:
        self.env = env
        self.gateway = gateway
        self.chunk_id = chunk_id
        self.report = ChunkReport(chunk_id)
        self.config: SmsConfig = SmsConfig()
        self.campaign_id = 0
        self.sender_e164 = ""
        self.sender_name = ""
        self.retry_at: datetime | None = None

    async def run(self) -> ChunkReport:
        """One pass: reconcile, send what is due, mail the fallbacks, release the chunk."""
        started = time.perf_counter()
        try:
            return await self._run()
        finally:
            self.report.seconds_total = time.perf_counter() - started

    async def _run(self) -> ChunkReport:
        env = self.env
        with Session(env.engine, expire_on_commit=False) as s:
            chunk = s.get(SendChunk, self.chunk_id)
            campaign = s.get(Campaign, chunk.campaign_id) if chunk else None
            if chunk is None or campaign is None or chunk.claimed_by != env.worker:
                self.report.lost_claim = True
                return self.report
            self.campaign_id = int(campaign.id or 0)
            self.config = load_config(session=s)
            staff = s.get(Person, campaign.sender_person_id)
            assert staff is not None  # noqa: S101 - FK
            from tasks.campaigns import display_name

            self.sender_name = display_name(staff)
            messages = _load(s, self.chunk_id, env.now())
        jobs = _jobs(messages)
        with Heartbeat(env, self.chunk_id) as beat:
            if jobs:
                self.sender_e164 = await ensure_sender_number(env, self.gateway, staff)
                jobs = await self._reconcile(jobs)
                batch = max(1, env.settings.send_concurrency * 2)
                for start in range(0, len(jobs), batch):
                    if self._stopped() or beat.lost:
                        break
                    await self._send_batch(jobs[start : start + batch])
            if beat.lost:
                self.report.lost_claim = True
                run_logger().warning("chunk %s was taken over by another worker", self.chunk_id)
            elif not self.report.stopped:
                await asyncio.to_thread(self._mail)
        self._release()
        return self.report

    # -- bookkeeping -------------------------------------------------------------------

    def _stopped(self) -> bool:
        with Session(self.env.engine) as s:
            status = s.execute(
                select(campaign_t.c.status).where(campaign_t.c.id == self.campaign_id)
            ).scalar()
        if status != "sending":
            self.report.stopped = self.report.stopped or f"campaign is {status}"
            return True
        return False

    def _release(self) -> None:
        if self.report.lost_claim:
            return
        now = self.env.now()
        with Session(self.env.engine) as s:
            left = s.execute(
                select(func.count(), func.min(message_t.c.send_after)).where(
                    message_t.c.chunk_id == self.chunk_id,
                    message_t.c.status.in_(["planned", "sending"]),
                )
            ).one()
            remaining, earliest = int(left[0]), left[1]
            done = remaining == 0
            not_before = None
            if not done:
                candidates = [t for t in (earliest, self.retry_at) if t is not None]
                not_before = max(candidates) if candidates else None
                if earliest is not None and earliest <= now and self.retry_at is None:
                    not_before = None
            release_chunk(
                session=s,
                chunk_id=self.chunk_id,
                worker=self.env.worker,
                done=done,
                not_before=not_before,
            )
            self.report.done = done
            if done and open_chunks(session=s, campaign_id=self.campaign_id) == 0:
                finish_campaign(s, self.campaign_id, now)

    # -- reconciliation ----------------------------------------------------------------

    async def _reconcile(self, jobs: list[Job]) -> list[Job]:
        """Messages left ``sending`` by a crash or a timeout: ask Twilio before resending.

        Only once no request for them can still be in flight (the last worker's calls have
        timed out, retries included): before that, a message not found yet may still be
        created, so those recipients wait for a later pass. Returns the jobs ready to send.
        """
        now = self.env.now()
        settle = in_flight_bound(self.env.settings)
        waiting: set[int] = set()
        pending = []
        for job in jobs:
            for m in (job.notice, job.main):
                if m is None or m.status != "sending":
                    continue
                if m.updated_at > now - settle:
                    waiting.add(job.main.id)
                    self.retry_at = max(self.retry_at or now, m.updated_at + settle)
                else:
                    pending.append(m)
        for msg in pending:
            assert msg.to_addr is not None  # noqa: S101 - SMS rows carry the number
            found = await self.gateway.find_message(
                to=msg.to_addr,
                from_=self.sender_e164,
                body=msg.body,
                sent_after=msg.updated_at - timedelta(seconds=30),
            )
            with Session(self.env.engine) as s:
                if found is not None:
                    _set(
                        s,
                        msg,
                        status="sent",
                        provider_sid=found.sid,
                        sent_at=found.date_created or self.env.now(),
                        error_message=None,
                        segments=found.num_segments or msg.segments,
                    )
                    self.report.reconciled += 1
                else:
                    release(session=s, month=msg.quota_month or "", units=msg.quota_units)
                    _set(s, msg, status="planned", quota_units=0, quota_month=None)
                s.commit()
        return [j for j in jobs if j.main.id not in waiting]

    # -- sending -----------------------------------------------------------------------

    def _prepare(self, jobs: list[Job]) -> list[Job]:
        """Re-check consent, reserve quota and mark ``sending``: committed before any call."""
        env, config = self.env, self.config
        now = env.now()
        month = month_key(now, config.timezone)
        ready: list[Job] = []
        with Session(env.engine) as s:
            numbers = [j.main.to_addr for j in jobs if j.main.to_addr]
            consents = consents_for(session=s, numbers=numbers, sender_e164=self.sender_e164)
            introduced = texted_numbers(session=s, sender_e164=self.sender_e164, numbers=numbers)
            for job in jobs:
                main, notice = job.main, job.notice
                if main.status == "sent":  # reconciled: only the notice could be left
                    continue
                number = main.to_addr or ""
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
                if notice is not None and notice.status == "planned" and number in introduced:
                    _set(s, notice, status="skipped", reason="already_introduced")
                    job.notice = notice = None
                if notice is not None and notice.status != "planned":
                    job.notice = notice = None
                units = {
                    m.id: message_cost(max(m.segments, 1), config.quota_unit)
                    for m in (notice, main)
                    if m is not None
                }
                if not reserve(
                    session=s, month=month, units=sum(units.values()), limit=config.monthly_limit
                ):
                    self._fallback(s, job, "quota_exhausted")
                    continue
                for m in (notice, main):
                    if m is not None:
                        _set(
                            s,
                            m,
                            status="sending",
                            attempts=m.attempts + 1,
                            from_addr=self.sender_e164,
                            quota_units=units[m.id],
                            quota_month=month,
                        )
                ready.append(job)
            s.commit()
        return ready

    def _fallback(self, s: Session, job: Job, reason: str, code: int | None = None) -> None:
        if job.notice is not None and job.notice.status in {"planned", "sending"}:
            _set(s, job.notice, status="skipped", reason="not_needed")
        _to_email(s, job.main, reason, self.sender_name, code=code)
        self.report.fell_back += 1

    async def _send_batch(self, jobs: list[Job]) -> None:
        ready = self._prepare(jobs)
        if not ready:
            return
        settings = self.env.settings
        gate = asyncio.Semaphore(settings.send_concurrency)
        account = pacer("account", settings.account_mps)
        sender = pacer(f"sender:{self.sender_e164}", settings.sender_mps)

        async def one(msg: Msg) -> SendResult:
            async with gate:
                await sender.wait()
                await account.wait()
                assert msg.to_addr is not None  # noqa: S101
                return await self.gateway.send(
                    to=msg.to_addr, from_=self.sender_e164, body=msg.body
                )

        async def job_run(job: Job) -> None:
            if job.notice is not None:
                result = await one(job.notice)
                job.results.append((job.notice, result))
                if result.outcome is not SendOutcome.SENT:
                    return
            job.results.append((job.main, await one(job.main)))

        started = time.perf_counter()
        await asyncio.gather(*(job_run(j) for j in ready))
        self.report.seconds_twilio += time.perf_counter() - started
        await self._settle_ambiguous(ready)
        self._record(ready)

    async def _settle_ambiguous(self, jobs: list[Job]) -> None:
        """An answer lost after the request went out: look the message up before deciding."""
        for job in jobs:
            for index, (msg, result) in enumerate(job.results):
                if result.outcome is not SendOutcome.AMBIGUOUS:
                    continue
                assert msg.to_addr is not None  # noqa: S101
                found = await self.gateway.find_message(
                    to=msg.to_addr,
                    from_=self.sender_e164,
                    body=msg.body,
                    sent_after=result.requested_at,
                )
                if found is not None:
                    job.results[index] = (
                        msg,
                        SendResult(
                            outcome=SendOutcome.SENT,
                            requested_at=result.requested_at,
                            attempts=result.attempts,
                            sid=found.sid,
                            status=found.status,
                            num_segments=found.num_segments,
                            from_=found.from_,
                        ),
                    )
                    self.report.reconciled += 1

    def _record(self, jobs: list[Job]) -> None:
        env, config = self.env, self.config
        now = env.now()
        auto: list[str] = []
        with Session(env.engine) as s:
            for job in jobs:
                outcomes = dict((m.id, r) for m, r in job.results)
                for msg in (job.notice, job.main):
                    if msg is None:
                        continue
                    result = outcomes.get(msg.id)
                    if result is None:  # the notice failed, so the message was not sent
                        self._undo(s, msg)
                        continue
                    self._apply(s, job, msg, result, now)
                    if (
                        msg is job.main
                        and result.outcome is SendOutcome.SENT
                        and msg.extra.get("auto_opt_in")
                    ):
                        auto.append(msg.to_addr or "")
            if config.auto_opt_in and auto:
                ensure_auto_consent(session=s, numbers=auto, now=now)
            s.commit()
        if self.report.stopped:
            self._alert(self.report.stopped)

    def _undo(self, s: Session, msg: Msg) -> None:
        if msg.status != "sending":
            return
        release(session=s, month=msg.quota_month or "", units=msg.quota_units)
        _set(s, msg, status="planned", quota_units=0, quota_month=None)

    def _apply(self, s: Session, job: Job, msg: Msg, result: SendResult, now: datetime) -> None:
        outcome = result.outcome
        if outcome is SendOutcome.SENT:
            _set(
                s,
                msg,
                status="sent",
                provider_sid=result.sid,
                sent_at=now,
                segments=result.num_segments or msg.segments,
                error_code=None,
                error_message=None,
            )
            if msg is job.main:
                self.report.sms_sent += 1
            return
        number = msg.to_addr or ""
        self._undo(s, msg)
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
            _set(s, msg, error_code=result.error_code, error_message=(result.message or "")[:500])
            reason = (
                f"Twilio error {result.error_code or result.http_status}: "
                f"{result.message or 'configuration problem'}"
            )
            s.execute(
                update(campaign_t)
                .where(campaign_t.c.id == self.campaign_id, campaign_t.c.status == "sending")
                .values(status="stopped", stop_reason=reason[:1000])
            )
            self.report.stopped = reason
        elif outcome is SendOutcome.AMBIGUOUS:
            # Twilio may have it: keep ``sending`` so the next pass reconciles first.
            release(session=s, month=msg.quota_month or "", units=0)
            _set(s, msg, status="sending", error_message="ambiguous: reconcile before resend")
            self.retry_at = now + timedelta(seconds=30)
            self.report.retry_later += 1
        else:  # retriable, retries exhausted
            _set(s, msg, error_code=result.error_code, error_message=(result.message or "")[:500])
            if msg.attempts >= MAX_SMS_ATTEMPTS and msg is job.main:
                self._fallback(s, job, "sms_failed", result.error_code)
            else:
                self.retry_at = now + RETRY_LATER
                self.report.retry_later += 1

    def _alert(self, reason: str) -> None:
        """Tell admins a campaign stopped (email to NUDGE_ALERT_EMAILS, and the run log)."""
        run_logger().error("campaign %s stopped: %s", self.campaign_id, reason)
        recipients = self.env.settings.alert_emails
        if recipients:
            self.env.mailer.send_many(
                [
                    Email(
                        to,
                        f"nudge: campaign {self.campaign_id} stopped",
                        f"Campaign {self.campaign_id} stopped sending.\n\nReason: {reason}\n\n"
                        "Nothing further was sent. Fix the account or sender configuration, then "
                        f"run `nudge campaigns resume {self.campaign_id}`.",
                    )
                    for to in recipients
                ]
            )
        if in_prefect_run():
            from prefect.events import emit_event

            emit_event(
                event="nudge.campaign.stopped",
                resource={"prefect.resource.id": f"nudge.campaign.{self.campaign_id}"},
                payload={"campaign_id": self.campaign_id, "reason": reason},
            )

    # -- email -------------------------------------------------------------------------

    def _mail(self) -> None:
        """Send the chunk's emails (planned ones and SMS fallbacks) in one batch."""
        now = self.env.now()
        with Session(self.env.engine) as s:
            rows = s.execute(
                select(
                    message_t.c.id,
                    message_t.c.to_addr,
                    message_t.c.subject,
                    message_t.c.body,
                    message_t.c.attempts,
                    message_t.c.extra,
                ).where(
                    message_t.c.chunk_id == self.chunk_id,
                    message_t.c.channel == "email",
                    message_t.c.status == "planned",
                )
            ).all()
        if not rows:
            return
        results = self.env.mailer.send_many(
            [
                Email(r.to_addr or "", r.subject or f"Message from {self.sender_name}", r.body)
                for r in rows
            ]
        )
        with Session(self.env.engine) as s:
            for row, result in zip(rows, results, strict=True):
                attempts = row.attempts + 1
                if result.ok:
                    status = "fallback_email" if (row.extra or {}).get("fallback") else "sent"
                    values: dict[str, Any] = {"status": status, "sent_at": now}
                    self.report.emails_sent += 1
                elif isinstance(result.error, MailPermanent) or attempts >= MAX_EMAIL_ATTEMPTS:
                    values = {"status": "failed", "error_message": str(result.error)[:500]}
                else:
                    values = {"error_message": str(result.error)[:500]}
                    self.retry_at = now + RETRY_LATER
                s.execute(
                    update(message_t)
                    .where(message_t.c.id == row.id)
                    .values(attempts=attempts, updated_at=now, **values)
                )
            s.commit()


def finish_campaign(s: Session, campaign_id: int, now: datetime) -> None:
    """Mark a campaign whose chunks are all done as completed, with its final figures."""
    counts = campaign_counts(session=s, campaign_id=campaign_id)
    s.execute(
        update(campaign_t)
        .where(campaign_t.c.id == campaign_id, campaign_t.c.status == "sending")
        .values(status="completed", finished_at=now, counts=counts)
    )
    s.commit()


async def send_chunk_async(env: SendEnv, chunk_id: int) -> ChunkReport:
    """One pass over a claimed chunk with a fresh gateway (one per event loop)."""
    gateway = env.gateway_factory()
    try:
        return await ChunkSender(env, gateway, chunk_id).run()
    finally:
        await gateway.aclose()


@task(name="send-chunk", cache_policy=NO_CACHE)
def send_chunk(env: SendEnv, chunk_id: int) -> ChunkReport:
    """Send one chunk (one Prefect task per chunk, never per message)."""
    if env.settings.chunk_rate_limit and in_prefect_run():
        # Across processes: one slot of the named Prefect rate limit per chunk (an API
        # round-trip, so per chunk, never per message; messages are paced in-process).
        from prefect.concurrency.sync import rate_limit

        rate_limit(env.settings.chunk_rate_limit, occupy=1, strict=True)
    report = asyncio.run(send_chunk_async(env, chunk_id))
    run_logger().info(
        "chunk %s: %d SMS sent, %d emails, %d fell back to email, %d to retry%s",
        chunk_id,
        report.sms_sent,
        report.emails_sent,
        report.fell_back,
        report.retry_later,
        f", stopped: {report.stopped}" if report.stopped else "",
    )
    return report
