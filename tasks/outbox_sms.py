"""SMS through the outbox: groups marked ``sending``, paced calls, recorded outcomes, and the
reconciliation of SMS a crash left ``sending``.

A group of :class:`SmsJob` goes in three committed steps (``tasks/outbox.py``): its quota is
reserved and its messages marked (:func:`mark_jobs`), the provider is called for each at its
paced slot and never after the deadline (:func:`send_jobs`), and the outcomes are written
while the messages are still ours (:func:`record_sent`, :func:`record_retry`,
:func:`keep_for_reconciliation`). An SMS left ``sending`` is looked up in the provider's
message list before it could be sent again (:func:`reconcile_sms`).

Callers: the campaign chunk sender (``tasks/send.py``) and the keyword answers outside
campaigns (``tasks/outbox_loose.py``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlmodel import Session

from adapters.twilio.errors import SendOutcome
from adapters.twilio.types import SendResult, SmsGateway
from domain.outbox import Status
from models.outbox import Fence, OutRow, mark_sending, settle, unmark
from models.outbox_recovery import note_in_flight
from models.quota import release, reserve
from tasks.env import Env
from tasks.pacing import SharedPacer, wait_until

#: After this many passes an SMS that never went out falls back to email (or fails).
MAX_SMS_ATTEMPTS = 5
#: Marks are written this long before the first paced slot of a group (a slow commit must
#: not make the group's first sends late).
MARK_LEAD_S = 0.25
#: A send that could not start within this long after its slot takes a fresh slot instead:
#: going late would bunch it with the next slot (and the next second over the limit).
LATE_TOLERANCE_S = 0.02
#: Seconds of sends one SMS group may span (keeps every call well inside the deadline).
GROUP_SPAN_S = 2.0


@dataclass(slots=True)
class SmsJob:
    """Messages to one number that go in order (an opt-in notice, then the text): each goes
    only if the one before it was sent."""

    rows: list[OutRow]
    validity_s: int
    units: dict[int, int] = field(default_factory=dict)
    results: dict[int, SendResult] = field(default_factory=dict)

    @property
    def main(self) -> OutRow:
        """The message the job is for (the last one)."""
        return self.rows[-1]


@dataclass(frozen=True, slots=True)
class MarkRule:
    """How a group of SMS is marked: the token and fence, the sender number, and the quota
    (``limit=None``: counted, never refused)."""

    token: str
    fence: Fence | None
    from_addr: str
    month: str
    limit: int | None


def group_size(env: Env, pacer: SharedPacer) -> int:
    """Sends per group: at most two waves of concurrent calls, and no more than the pace
    allows in :data:`GROUP_SPAN_S` (so every call starts long before the deadline)."""
    per_send = pacer.span(1)
    by_pace = int(GROUP_SPAN_S / per_send) if per_send > 0 else 10**6
    return max(1, min(2 * env.settings.send_concurrency, by_pace))


def mark_jobs(
    s: Session, jobs: Sequence[SmsJob], rule: MarkRule, now: datetime
) -> tuple[list[SmsJob], list[SmsJob]]:
    """Reserve each job's quota (all its messages at once) and mark them ``sending``.

    Returns the jobs marked and the jobs whose quota did not fit (left as they were, for
    the caller to fall back); a job that could not be marked (the claim is lost, another
    worker has it) is in neither.
    """
    marked: list[SmsJob] = []
    over_quota: list[SmsJob] = []
    for job in jobs:
        units = sum(job.units.values())
        if not reserve(session=s, month=rule.month, units=units, limit=rule.limit):
            over_quota.append(job)
            continue
        ok = True
        for row in job.rows:
            ok = ok and mark_sending(
                session=s,
                row=row,
                token=rule.token,
                now=now,
                fence=rule.fence,
                from_addr=rule.from_addr,
                quota_units=job.units.get(row.id, 0),
                quota_month=rule.month,
            )
        if ok:
            marked.append(job)
            continue
        # The claim is gone, or another worker has one of them: undo this job's marks and
        # give its quota back (marked rows release their own units).
        marked_units = 0
        for row in job.rows:
            if row.status == Status.SENDING and row.claim_token == rule.token:
                marked_units += row.quota_units
                unmark(session=s, row=row, now=now)
        release(session=s, month=rule.month, units=units - marked_units)
    return marked, over_quota


async def send_jobs(
    env: Env,
    gateway: SmsGateway,
    jobs: Sequence[SmsJob],
    *,
    times: Sequence[float],
    deadline: float,
    pacer: SharedPacer | None = None,
    gate: asyncio.Semaphore | None = None,
) -> float:
    """Call the provider for every marked job, each message at its paced slot and never
    after ``deadline``; a send late for its slot takes a fresh one from ``pacer``; ambiguous
    answers are looked up before they are recorded. Returns the seconds spent waiting on
    the provider."""
    gate = gate or asyncio.Semaphore(env.settings.send_concurrency)
    # First messages take the first slots, in job order; second ones (the texts that follow
    # an opt-in notice) the slots after all of them, so no send waits on a slot taken.
    slots: dict[int, list[float]] = {}
    second = len(jobs)
    for index, job in enumerate(jobs):
        slots[id(job)] = [times[index]]
        for _row in job.rows[1:]:
            slots[id(job)].append(times[second])
            second += 1

    async def one(row: OutRow, at: float, validity: int) -> SendResult:
        await wait_until(at)
        for _ in range(3):
            # Late for its slot (a slow notice before it, a busy loop): going now would bunch
            # it with the next slot, so it takes a fresh one — where the pace binds.
            if pacer is None or not pacer.binding or time.monotonic() - at <= LATE_TOLERANCE_S:
                break
            [at] = await asyncio.to_thread(pacer.reserve, 1)
            await wait_until(at)
        async with gate:
            assert row.to_addr is not None  # noqa: S101 - SMS rows carry the number
            return await gateway.send(
                to=row.to_addr,
                from_=row.from_addr,
                body=row.body,
                validity_period_s=validity,
                not_after=deadline,
            )

    async def run(job: SmsJob) -> None:
        for row, at in zip(job.rows, slots[id(job)], strict=True):
            result = await one(row, at, job.validity_s)
            job.results[row.id] = result
            if result.outcome is not SendOutcome.SENT:
                return

    started = time.perf_counter()
    await asyncio.gather(*(run(job) for job in jobs))
    spent = time.perf_counter() - started
    for job in jobs:
        for row in job.rows:
            result = job.results.get(row.id)
            if result is not None and result.outcome is SendOutcome.AMBIGUOUS:
                job.results[row.id] = await _look_up(gateway, row, result)
    return spent


async def _look_up(gateway: SmsGateway, row: OutRow, result: SendResult) -> SendResult:
    assert row.to_addr is not None  # noqa: S101
    found = await gateway.find_message(
        to=row.to_addr, from_=row.from_addr, body=row.body, sent_after=result.requested_at
    )
    if found is None:
        return result
    return SendResult(
        outcome=SendOutcome.SENT,
        requested_at=result.requested_at,
        attempts=result.attempts,
        sid=found.sid,
        status=found.status,
        num_segments=found.num_segments,
        from_=found.from_,
    )


def calls_of(jobs: Sequence[SmsJob]) -> int:
    """How many provider calls the jobs may make."""
    return sum(len(job.rows) for job in jobs)


def record_sent(s: Session, row: OutRow, result: SendResult, now: datetime) -> bool:
    """``sending → sent`` with the provider's SID and segment count."""
    return settle(
        session=s,
        row=row,
        to=Status.SENT,
        now=now,
        provider_sid=result.sid,
        sent_at=now,
        segments=result.num_segments or row.segments,
        error_code=None,
        error_message=None,
    )


def record_retry(s: Session, row: OutRow, result: SendResult, now: datetime) -> bool:
    """The provider did not take it (no attempt started, or retriable failures ran out):
    back to ``planned`` with the error, for a later pass."""
    return unmark(
        session=s,
        row=row,
        now=now,
        error_code=result.error_code,
        error_message=(result.message or result.outcome.value)[:500],
    )


def keep_for_reconciliation(s: Session, row: OutRow, now: datetime) -> None:
    """The answer was lost and the provider's list does not show it yet: leave it
    ``sending``; whoever finds it after the in-flight bound looks it up again."""
    note_in_flight(session=s, row=row, now=now, note="ambiguous: reconcile before resend")


async def reconcile_sms(env: Env, gateway: SmsGateway, rows: Sequence[OutRow]) -> int:
    """Settle SMS left ``sending`` (no request can be in flight any more): found in the
    provider's list → ``sent``; not found → ``planned`` again. Returns how many were found."""
    found_count = 0
    for row in rows:
        assert row.to_addr is not None  # noqa: S101
        found = await gateway.find_message(
            to=row.to_addr,
            from_=row.from_addr,
            body=row.body,
            sent_after=(row.marked_at or env.now()) - timedelta(seconds=30),
        )
        now = env.now()
        with Session(env.engine) as s:
            if found is not None:
                found_count += settle(
                    session=s,
                    row=row,
                    to=Status.SENT,
                    now=now,
                    provider_sid=found.sid,
                    sent_at=found.date_created or now,
                    segments=found.num_segments or row.segments,
                    error_message=None,
                )
            else:
                unmark(session=s, row=row, now=now)
            s.commit()
    return found_count


__all__ = [
    "MARK_LEAD_S",
    "MAX_SMS_ATTEMPTS",
    "MarkRule",
    "SmsJob",
    "calls_of",
    "group_size",
    "keep_for_reconciliation",
    "mark_jobs",
    "reconcile_sms",
    "record_retry",
    "record_sent",
    "send_jobs",
]
