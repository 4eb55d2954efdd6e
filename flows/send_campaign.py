"""Deployment entrypoint ``send-campaign``: text a group of students, now or at ``send_at``.

Thin orchestration: plan (``tasks/campaigns.py``), then claim and send chunks until none is
due (``tasks/send.py``). Any worker may run :func:`work` for the same campaign at the same
time: chunks are claimed, never shared. The same steps run without Prefect's engine when
``nudge send`` is used without a Prefect server.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from uuid import UUID

from prefect import flow
from sqlalchemy import func, select
from sqlmodel import Session

from domain.campaign import CampaignRequest
from models.campaigns import campaign_counts, claim_chunk, claimed_by_others, release_chunk
from models.db import make_engine
from models.messaging import Campaign, Message
from models.types import utcnow
from nudge.settings import Settings, get_settings
from tasks.campaigns import plan_campaign
from tasks.runtime import in_prefect_run, run_logger, stepper
from tasks.send import ChunkReport, Heartbeat, SendEnv, send_chunk


@dataclass(slots=True)
class WorkReport:
    """What one worker did: chunks passed over, messages sent, where the time went."""

    chunks: int = 0
    sms_sent: int = 0
    emails_sent: int = 0
    fell_back: int = 0
    stopped: list[str] = field(default_factory=list)
    seconds_total: float = 0.0
    seconds_twilio: float = 0.0

    def add(self, chunk: ChunkReport) -> None:
        """Count one chunk pass."""
        self.chunks += 1
        self.sms_sent += chunk.sms_sent
        self.emails_sent += chunk.emails_sent
        self.fell_back += chunk.fell_back
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
            "stopped": self.stopped,
            "seconds_total": round(self.seconds_total, 3),
            "seconds_twilio": round(self.seconds_twilio, 3),
        }


class _Progress:
    """A Prefect progress artifact for a campaign, updated after every chunk."""

    def __init__(self, env: SendEnv, campaign_id: int | None) -> None:
        self.env = env
        self.campaign_id = campaign_id
        self.artifact: UUID | None = None
        if campaign_id is not None and in_prefect_run():
            from prefect.artifacts import create_progress_artifact

            self.artifact = create_progress_artifact(  # type: ignore[assignment]
                progress=self.percent(),
                key=f"campaign-{campaign_id}-progress",
                description=f"Campaign {campaign_id}: share of messages settled",
            )

    def percent(self) -> float:
        mt = Message.__table__  # type: ignore[attr-defined]
        with Session(self.env.engine) as s:
            total, open_ = s.execute(
                select(
                    func.count(), func.count().filter(mt.c.status.in_(["planned", "sending"]))
                ).where(mt.c.campaign_id == self.campaign_id)
            ).one()
        return 100.0 if not total else round(100.0 * (total - open_) / total, 1)

    def update(self) -> None:
        if self.artifact is not None:
            from prefect.artifacts import update_progress_artifact

            update_progress_artifact(self.artifact, progress=self.percent())


def work(
    settings: Settings,
    *,
    campaign_id: int | None = None,
    engine: bool = False,
    env: SendEnv | None = None,
    max_chunks: int | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    poll_s: float = 1.0,
) -> WorkReport:
    """Claim due chunks (of one campaign, or of any) and send them until none is left.

    For one campaign, a worker that finds nothing to claim waits while other workers still
    hold live claims on it: if one of them dies, its chunk becomes claimable once its
    heartbeat is ``claim_stale_s`` old, and a waiting worker finishes it. ``should_stop`` is
    checked between chunks (graceful shutdown: finish the chunk in hand, claim no more); a
    worker interrupted mid-chunk gives the chunk back before it goes.
    """
    if env is None:
        own = SendEnv.from_settings(settings, make_engine(settings.database_url))
        try:
            return work(
                settings,
                campaign_id=campaign_id,
                engine=engine,
                env=own,
                max_chunks=max_chunks,
                should_stop=should_stop,
                poll_s=poll_s,
            )
        finally:
            own.engine.dispose()
    step = stepper(engine)
    report = WorkReport()
    progress = _Progress(env, campaign_id)
    stale = timedelta(seconds=settings.claim_stale_s)
    while not should_stop() and (max_chunks is None or report.chunks < max_chunks):
        now = env.now()
        with Session(env.engine) as s:
            chunk_id = claim_chunk(
                session=s,
                worker=env.worker,
                now=now,
                stale_before=now - stale,
                campaign_id=campaign_id,
            )
            held = (
                0
                if chunk_id or campaign_id is None
                else claimed_by_others(
                    session=s, campaign_id=campaign_id, worker=env.worker, now=now
                )
            )
        if chunk_id is None:
            if not held:
                break
            time.sleep(poll_s)  # another worker is on it; be ready to take over if it dies
            continue
        try:
            # Beat from the moment of the claim: building the gateway or buying the sender's
            # number must not make this live worker look dead.
            with Heartbeat(env, chunk_id):
                report.add(step(send_chunk)(env, chunk_id))
        except BaseException:
            # Killed (SIGTERM/Prefect cancellation) or failed mid-chunk: give it back at once;
            # whatever is left 'sending' is reconciled by the next worker before any resend.
            with Session(env.engine) as s:
                release_chunk(
                    session=s, chunk_id=chunk_id, worker=env.worker, done=False, not_before=None
                )
            raise
        progress.update()
    return report


def campaign_result(
    settings: Settings, campaign_id: int, env: SendEnv | None = None
) -> dict[str, Any]:
    """The stored campaign's status and breakdown."""
    engine = env.engine if env else make_engine(settings.database_url)
    try:
        with Session(engine) as s:
            row = s.get(Campaign, campaign_id)
            if row is None:
                raise LookupError(f"no campaign #{campaign_id}")
            counts = campaign_counts(session=s, campaign_id=campaign_id)
            return {
                "campaign_id": campaign_id,
                "status": row.status,
                "stop_reason": row.stop_reason,
                "result": counts,
            }
    finally:
        if env is None:
            engine.dispose()


def run_campaign(
    request: CampaignRequest,
    *,
    settings: Settings,
    engine: bool = False,
    env: SendEnv | None = None,
    kind: str = "campaign",
    is_reply: bool = False,
    request_key: str | None = None,
    created_by: str | None = None,
) -> dict[str, Any]:
    """Plan ``request`` and, unless it is a dry run, scheduled or refused, send it now."""
    step = stepper(engine)
    outcome = step(plan_campaign)(
        request,
        settings,
        kind=kind,
        is_reply=is_reply,
        request_key=request_key,
        created_by=created_by,
    )
    data = outcome.as_dict()
    if outcome.campaign_id is None or outcome.status != "sending":
        return data
    if engine and settings.campaign_fanout > 1:
        fan_out(outcome.campaign_id, settings.campaign_fanout - 1)
    report = work(settings, campaign_id=outcome.campaign_id, engine=engine, env=env)
    data.update(campaign_result(settings, outcome.campaign_id, env))
    data["sent_now"] = {
        "sms": report.sms_sent,
        "email": report.emails_sent,
        "chunks": report.chunks,
    }
    if engine and in_prefect_run():
        from prefect.artifacts import create_table_artifact

        table = [
            {"channel/status": k, "messages": v}
            for k, v in sorted(data["result"]["by_status"].items())
        ]
        create_table_artifact(
            key=f"campaign-{outcome.campaign_id}-result",
            table=table,
            description=f"Campaign {outcome.campaign_id}: final breakdown",
        )
    run_logger().info("campaign %s: %s", outcome.campaign_id, data["status"])
    return data


@flow(name="send-campaign")
def send_campaign(campaign: CampaignRequest) -> dict[str, Any]:
    """Text a group of students now, or at "Send at"; "Dry run" only previews.

    Every message goes through the router: permission, SMS number, consent, quota and quiet
    hours. The form's fields are described in the UI.
    """
    return run_campaign(campaign, settings=get_settings(), engine=True, created_by="prefect")


def fan_out(campaign_id: int, runs: int) -> list[str]:
    """Ask the work pool for ``runs`` more ``campaign-worker`` runs on this campaign.

    Only meaningful when deployed: each run claims chunks, and any worker of the pool may
    pick it up. Outside a deployment (or when the deployment is missing) nothing happens and
    this run sends everything itself.
    """
    from prefect.deployments import run_deployment

    started: list[str] = []
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


@flow(name="campaign-worker")
def campaign_worker(campaign_id: int | None = None) -> dict[str, Any]:
    """Claim and send chunks of one campaign (or of any, when empty) until none is left.

    Started by ``send-campaign`` to spread a large campaign over the pool's workers; safe to
    start by hand too: chunks are claimed, never shared.
    """
    return work(get_settings(), campaign_id=campaign_id, engine=True).as_dict()


def due_scheduled(settings: Settings, env: SendEnv | None = None) -> list[int]:
    """Start scheduled campaigns whose ``send_at`` has come (atomically, once each)."""
    engine = env.engine if env else make_engine(settings.database_url)
    try:
        return _start_due(engine)
    finally:
        if env is None:
            engine.dispose()


def _start_due(engine: Any) -> list[int]:
    from sqlalchemy import update

    ct = Campaign.__table__  # type: ignore[attr-defined]
    now = utcnow()
    started: list[int] = []
    with Session(engine) as s:
        for (campaign_id,) in s.execute(
            select(ct.c.id).where(ct.c.status == "scheduled", ct.c.send_at <= now)
        ).all():
            won = s.execute(
                update(ct)
                .where(ct.c.id == campaign_id, ct.c.status == "scheduled")
                .values(status="sending", started_at=now)
            ).rowcount  # type: ignore[attr-defined]
            if won:
                started.append(int(campaign_id))
        s.commit()
    return started


def run_dispatch(
    settings: Settings, *, engine: bool = False, env: SendEnv | None = None
) -> dict[str, Any]:
    """Start due scheduled campaigns, then send every due chunk (deferred ones included)."""
    started = due_scheduled(settings, env)
    report = work(settings, engine=engine, env=env)
    return {
        "started": started,
        "chunks": report.chunks,
        "sms_sent": report.sms_sent,
        "emails_sent": report.emails_sent,
        "stopped": report.stopped,
    }
