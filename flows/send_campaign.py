"""Deployment entrypoint ``send-campaign``: text a group of students, now or at ``send_at``.

Thin orchestration: plan (``tasks/campaigns.py``), then claim and send chunks until none is
due (``tasks/send.py``). Any worker may run :func:`work` for the same campaign at the same
time: chunks are claimed, never shared. The same steps run without Prefect's engine when
``nudge send`` is used without a Prefect server.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from prefect import flow
from sqlalchemy import func, select
from sqlmodel import Session

from domain.campaign import CampaignRequest
from models.campaigns import campaign_counts, claim_chunk
from models.db import make_engine
from models.messaging import Campaign, Message
from models.types import utcnow
from nudge.settings import Settings, get_settings
from tasks.campaigns import plan_campaign
from tasks.runtime import in_prefect_run, run_logger, stepper
from tasks.send import STALE_CLAIM, ChunkReport, SendEnv, send_chunk


@dataclass(slots=True)
class WorkReport:
    """What one worker did: chunks passed over and messages sent."""

    chunks: int = 0
    sms_sent: int = 0
    emails_sent: int = 0
    fell_back: int = 0
    stopped: list[str] = field(default_factory=list)

    def add(self, chunk: ChunkReport) -> None:
        """Count one chunk pass."""
        self.chunks += 1
        self.sms_sent += chunk.sms_sent
        self.emails_sent += chunk.emails_sent
        self.fell_back += chunk.fell_back
        if chunk.stopped:
            self.stopped.append(chunk.stopped)


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
) -> WorkReport:
    """Claim due chunks (of one campaign, or of any) and send them until none is left.

    ``should_stop`` is checked between chunks: a worker asked to stop finishes the chunk it
    holds and claims no more (graceful shutdown).
    """
    env = env or SendEnv.from_settings(settings, make_engine(settings.database_url))
    step = stepper(engine)
    report = WorkReport()
    progress = _Progress(env, campaign_id)
    while not should_stop() and (max_chunks is None or report.chunks < max_chunks):
        now = env.now()
        with Session(env.engine) as s:
            chunk_id = claim_chunk(
                session=s,
                worker=env.worker,
                now=now,
                stale_before=now - STALE_CLAIM,
                campaign_id=campaign_id,
            )
        if chunk_id is None:
            break
        report.add(step(send_chunk)(env, chunk_id))
        progress.update()
    return report


def campaign_result(
    settings: Settings, campaign_id: int, env: SendEnv | None = None
) -> dict[str, Any]:
    """The stored campaign's status and breakdown."""
    engine = env.engine if env else make_engine(settings.database_url)
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


def due_scheduled(settings: Settings, env: SendEnv | None = None) -> list[int]:
    """Start scheduled campaigns whose ``send_at`` has come (atomically, once each)."""
    from sqlalchemy import update

    engine = env.engine if env else make_engine(settings.database_url)
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
