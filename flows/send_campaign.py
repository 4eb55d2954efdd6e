"""Deployment entrypoint ``send-campaign``: text a group of students, now or at ``send_at``.

Thin orchestration: plan (``tasks/campaigns.py``), then claim and send chunks until none is
due (``tasks/worker.py``, one chunk at a time by ``tasks/send.py``). Any worker may run
:func:`work` for the same campaign at the same time: chunks are claimed, never shared.
The same steps run without Prefect's engine when ``nudge send`` is used without a Prefect
server.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID

from prefect import flow
from sqlmodel import Session

from domain.campaign import CampaignRequest
from models.campaigns import campaign_summary, settled_percent, start_due_campaigns
from models.db import make_engine
from nudge.settings import Settings, get_settings
from tasks import worker
from tasks.campaigns import plan_campaign
from tasks.outbox import SendEnv
from tasks.runtime import in_prefect_run, run_logger, stepper
from tasks.worker import WorkReport


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
        with Session(self.env.engine) as s:
            return settled_percent(session=s, campaign_id=self.campaign_id or 0)

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
    only_unattended: bool = False,
) -> WorkReport:
    """Claim and send due chunks until none is left (``tasks/worker.py``), with a progress
    artifact when a campaign runs as a Prefect flow."""
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
                only_unattended=only_unattended,
            )
        finally:
            own.engine.dispose()
    progress = _Progress(env, campaign_id)
    return worker.work(
        settings,
        campaign_id=campaign_id,
        engine=engine,
        env=env,
        max_chunks=max_chunks,
        should_stop=should_stop,
        poll_s=poll_s,
        only_unattended=only_unattended,
        on_chunk=progress.update,
    )


def campaign_result(
    settings: Settings, campaign_id: int, env: SendEnv | None = None
) -> dict[str, Any]:
    """The stored campaign's status, breakdown, what is still pending and why, and the
    emails a crash left undecided (with their Message-IDs, to look up on the mail server)."""
    from adapters.mailer import message_id_for

    engine = env.engine if env else make_engine(settings.database_url)
    try:
        with Session(engine) as s:
            data = campaign_summary(session=s, campaign_id=campaign_id)
    finally:
        if env is None:
            engine.dispose()
    for item in data["unknown_emails"]:
        item["message_id_header"] = message_id_for(item["key"], settings.mail_from)
    return data


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
    """Plan ``request`` and, unless it is a dry run, scheduled or refused, send it now.

    The result's ``pending`` says how many messages are left and why (quiet hours, a
    provider outage, in flight); ``nudge send`` exits non-zero when it is not empty.
    """
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
    data["errors"] = report.errors
    if engine and in_prefect_run():
        from prefect.artifacts import create_table_artifact

        table = [
            {"channel/status": k, "messages": v}
            for k, v in sorted(data["result"]["by_status"].items())
        ]
        waiting = data.get("waiting")
        state = (
            f"waiting for quiet hours: {waiting['messages']} texts go at {waiting['until_local']}"
            if waiting
            else data["status"]
        )
        create_table_artifact(
            key=f"campaign-{outcome.campaign_id}-result",
            table=table,
            description=f"Campaign {outcome.campaign_id}: {state}. Messages by channel and "
            "what happened to them.",
        )
    run_logger().info("campaign %s: %s", outcome.campaign_id, data["status"])
    return data


class CampaignRefused(RuntimeError):
    """The campaign was not sent, and why (the flow run ends Failed with this message)."""

    def __init__(self, message: str, result: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.result = result or {}


def checked_request(campaign: Any) -> CampaignRequest:
    """The form's values as a request, or a refusal naming each field by its form label
    (a run created without the UI's validation fails here, at once)."""
    from pydantic import ValidationError

    if isinstance(campaign, CampaignRequest):
        return campaign
    try:
        return CampaignRequest.model_validate(campaign)
    except ValidationError as exc:
        raise CampaignRefused(
            "the campaign's fields are not valid: " + describe_errors(exc, CampaignRequest)
        ) from None


def describe_errors(exc: Any, model: Any) -> str:
    """Pydantic errors as "Label: problem" using the form's titles, never raw field names."""
    from pydantic import BaseModel

    parts = []
    for error in exc.errors():
        labels = []
        current: Any = model
        for step in error["loc"]:
            fields = (
                {key: f for name, f in current.model_fields.items() for key in (name, f.alias)}
                if isinstance(current, type) and issubclass(current, BaseModel)
                else {}
            )
            field = fields.get(str(step))
            labels.append(field.title if field is not None and field.title else str(step))
            annotation = field.annotation if field is not None else None
            current = annotation if isinstance(annotation, type) else None
        parts.append(f"{' › '.join(labels) or 'the form'}: {error['msg']}")
    return "; ".join(parts)


@flow(name="send-campaign", validate_parameters=False)
def send_campaign(Campaign: CampaignRequest) -> dict[str, Any]:
    """Text a group of students now, or at "Send at"; "Dry run" only previews.

    A refused campaign (sender without a permitted role, unknown variable or id, nobody in
    the audience, a text too long) ends the run Failed with the reason. The parameter is
    capitalised because Prefect's form shows its name as the group's title.

    Args:
        Campaign: Who the texts go to, what they say and when. Tick "Dry run" first to see
            how many students get a text and how many an email, and why, before anything
            is sent.
    """
    request = checked_request(Campaign)
    result = run_campaign(request, settings=get_settings(), engine=True, created_by="prefect")
    if result.get("refused_reason"):
        raise CampaignRefused(f"campaign refused: {result['refused_reason']}", result)
    return result


def fan_out(campaign_id: int, runs: int) -> list[str]:
    """Ask the work pool for ``runs`` more ``campaign-worker`` runs on this campaign.

    Only meaningful when deployed: each run claims chunks, and any worker of the pool may
    pick it up (the README's worker settings spread them over the workers). Outside a
    deployment (or when the deployment is missing) nothing happens and this run sends
    everything itself.
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


def run_dispatch(
    settings: Settings, *, engine: bool = False, env: SendEnv | None = None
) -> dict[str, Any]:
    """Start due scheduled campaigns (fanning out like ``send-campaign`` when deployed),
    then send what no live worker is on: abandoned chunks, deferred messages now due, and
    the campaigns just started. ``dispatch-due`` never joins a campaign whose own workers
    are sending it: the number of workers on a campaign does not depend on timing."""
    owned = env is None
    env = env or SendEnv.from_settings(settings, make_engine(settings.database_url))
    try:
        with Session(env.engine) as s:
            started = start_due_campaigns(session=s, now=env.now())
            s.commit()
        if engine and settings.campaign_fanout > 1:
            # As many runners as send-campaign gives a campaign: dispatch itself stops
            # working a campaign once its own runners hold claims on it.
            for campaign_id in started:
                fan_out(campaign_id, settings.campaign_fanout)
        report = work(settings, engine=engine, env=env, only_unattended=True)
    finally:
        if owned:
            env.engine.dispose()
    return {
        "started": started,
        "chunks": report.chunks,
        "sms_sent": report.sms_sent,
        "emails_sent": report.emails_sent,
        "stopped": report.stopped,
        "errors": report.errors,
    }
