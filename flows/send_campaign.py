"""Deployment entrypoints ``send-campaign`` and ``campaign-worker``: text a group of
students, now or at ``send_at``.

Thin orchestration: check the form (``tasks/campaign_form.py``), plan
(``tasks/campaigns.py``), ask the pool for more workers (``tasks/worker.fan_out``), then
claim and send chunks until none is due (``tasks/worker.py``, one chunk at a time by
``tasks/send.py``) while a progress artifact follows along, and report the result
(``tasks/campaign_progress.py``). Any worker may run :func:`work` for the same campaign at
the same time: chunks are claimed, never shared. The same steps run without Prefect's
engine when ``nudge send`` is used without a Prefect server.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prefect import flow

from domain.campaign import CampaignRequest
from nudge import wiring
from nudge.settings import Settings
from tasks import worker
from tasks.campaign_form import CampaignRefused, checked_request
from tasks.campaign_progress import CampaignProgress, publish_result, run_result
from tasks.campaigns import plan_campaign, start_due
from tasks.env import Env
from tasks.runtime import run_logger, stepper
from tasks.worker import WorkReport, fan_out


def work(
    settings: Settings,
    *,
    campaign_id: int | None = None,
    engine: bool = False,
    env: Env | None = None,
    max_chunks: int | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    poll_s: float = 1.0,
    only_unattended: bool = False,
) -> WorkReport:
    """Claim and send due chunks until none is left (``tasks/worker.py``), with a progress
    artifact when a campaign runs as a Prefect flow."""
    env = env or wiring.env(settings)
    progress = CampaignProgress(env.engine, campaign_id)
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


def run_campaign(
    request: CampaignRequest,
    *,
    settings: Settings,
    engine: bool = False,
    env: Env | None = None,
    kind: str = "campaign",
    is_reply: bool = False,
    request_key: str | None = None,
    created_by: str | None = None,
) -> dict[str, Any]:
    """Plan ``request`` and, unless it is a dry run, scheduled or refused, send it now.

    The result's ``pending`` says how many messages are left and why (quiet hours, a
    provider outage, in flight); ``nudge send`` exits non-zero when it is not empty.
    """
    env = env or wiring.env(settings)
    step = stepper(engine)
    outcome = step(plan_campaign)(
        request,
        settings,
        env.engine,
        kind=kind,
        is_reply=is_reply,
        request_key=request_key,
        created_by=created_by,
    )
    if outcome.campaign_id is None or outcome.status != "sending":
        return outcome.as_dict()
    if engine and settings.campaign_fanout > 1:
        fan_out([outcome.campaign_id], settings.campaign_fanout - 1)
    report = work(settings, campaign_id=outcome.campaign_id, engine=engine, env=env)
    data = run_result(outcome, report, env.engine, mail_from=settings.mail_from)
    if engine:
        publish_result(outcome.campaign_id, data)
    run_logger().info("campaign %s: %s", outcome.campaign_id, data["status"])
    return data


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
    result = run_campaign(request, settings=wiring.settings(), engine=True, created_by="prefect")
    if result.get("refused_reason"):
        raise CampaignRefused(f"campaign refused: {result['refused_reason']}", result)
    return result


@flow(name="campaign-worker")
def campaign_worker(campaign_id: int | None = None) -> dict[str, Any]:
    """Claim and send chunks of one campaign (or of any, when empty) until none is left.

    Started by ``send-campaign`` to spread a large campaign over the pool's workers; safe to
    start by hand too: chunks are claimed, never shared.
    """
    return work(wiring.settings(), campaign_id=campaign_id, engine=True).as_dict()


def run_dispatch(
    settings: Settings, *, engine: bool = False, env: Env | None = None
) -> dict[str, Any]:
    """Start due scheduled campaigns (fanning out like ``send-campaign`` when deployed),
    then send what no live worker is on: abandoned chunks, deferred messages now due, and
    the campaigns just started. ``dispatch-due`` never joins a campaign whose own workers
    are sending it: the number of workers on a campaign does not depend on timing."""
    env = env or wiring.env(settings)
    started = start_due(env.engine, env.now())
    if engine and settings.campaign_fanout > 1:
        # As many runners as send-campaign gives a campaign: dispatch itself stops
        # working a campaign once its own runners hold claims on it.
        fan_out(started, settings.campaign_fanout)
    report = work(settings, engine=engine, env=env, only_unattended=True)
    return {
        "started": started,
        "chunks": report.chunks,
        "sms_sent": report.sms_sent,
        "emails_sent": report.emails_sent,
        "stopped": report.stopped,
        "errors": report.errors,
    }
