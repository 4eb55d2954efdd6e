"""Tasks that turn a campaign request into a plan: refuse, preview, or write the outbox.

Planning happens in one transaction: the campaign row, every message (unique per
campaign, recipient and kind) and the chunks the send path claims. A refusal (sender not
permitted, unknown variable, body too long) plans nothing.

A randomized holdout (``holdout_pct``, :mod:`domain.holdout`) is drawn from the resolved
audience before anything is routed: the held-out students get one ``message`` row each in
status ``held_out`` (channel ``none``, reason ``holdout``, in no chunk), so nothing ever
sends it, and they are in no other figure (no recipients, no quota, no opt-in notice).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from sqlalchemy.engine import Engine

from domain.campaign import (
    CampaignRequest,
    Member,
    PlannedRecipient,
    PlanRefused,
    PlanSummary,
    localized_send_at,
    plan_recipients,
    send_at_problem,
)
from domain.config import SmsConfig
from domain.holdout import draw_holdout
from domain.quota import month_key, remaining
from domain.routing import PermissionPolicy, SenderFacts, check_sender
from domain.templates import TemplateError, parse_template
from models.audience import AudienceMember, resolve_audience, unknown_ids
from models.campaign_lifecycle import start_due_campaigns
from models.campaigns import (
    by_request_key,
    consents_for,
    dynamic_roles,
    granted_roles,
    insert_plan,
    sender_number,
    texted_numbers,
)
from models.cancel import cancel_scheduled
from models.config import load_config
from models.db import session_scope
from models.messaging import Campaign
from models.people import NoSuchStaff, Person, staff_by_sis_id
from models.quota import used
from models.types import utcnow
from tasks.env import TaskSettings
from tasks.runtime import in_prefect_run, run_logger


@dataclass(slots=True)
class PlanOutcome:
    """What planning produced: a refusal, a preview, or a stored campaign."""

    summary: PlanSummary = field(default_factory=PlanSummary)
    campaign_id: int | None = None
    refused_reason: str | None = None
    status: str = "preview"
    send_at: datetime | None = None
    chunks: int = 0
    holdout_pct: float | None = None
    holdout_seed: int | None = None
    #: Person ids of the held-out students (written as ``held_out`` rows; not in the JSON).
    held_out_ids: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """The JSON ``nudge send`` prints (keys promised by the issue, and more):
        ``held_out`` counts the students the holdout kept out, drawn with
        ``holdout_seed`` (both None/0 without a holdout)."""
        return {
            "campaign_id": self.campaign_id,
            "status": self.status,
            "refused_reason": self.refused_reason,
            "send_at": self.send_at.isoformat() if self.send_at else None,
            "chunks": self.chunks,
            "holdout_pct": self.holdout_pct,
            "holdout_seed": self.holdout_seed,
            **self.summary.as_dict(),
        }


_ID_KINDS = {"student_ids": "unknown student ids", "caseload": "unknown advisor ids"}


def _member(m: AudienceMember, sender_name: str) -> Member:
    return Member(
        id=m.id,
        sis_id=m.sis_id,
        display_name=m.display_name,
        email=m.email,
        sms_e164=m.sms_e164,
        sms_reason=m.sms_reason,
        values={
            "first_name": m.first_name,
            "preferred_name": m.preferred_name,
            "last_name": m.last_name,
            "sender_name": sender_name,
            "advisor_name": m.advisor_name,
            "program": m.program,
        },
    )


def sender_policy(
    session: Any, config: SmsConfig, person: Person
) -> tuple[SenderFacts, PermissionPolicy]:
    """The sender's facts (static roles from the SIS and admin grants) and who may send."""
    static = frozenset([*person.roles, *granted_roles(session=session, staff_sis_id=person.sis_id)])
    facts = SenderFacts(
        staff_id=person.sis_id,
        name=person.display_name,
        static_roles=static,
        department=person.department,
        title=person.title,
        active=person.status == "active",
    )
    policy = PermissionPolicy(
        permitted_roles=frozenset(config.permitted_roles),
        dynamic_roles=dynamic_roles(session=session),
    )
    return facts, policy


def build_plan(
    session: Any,
    request: CampaignRequest,
    *,
    now: datetime,
    is_reply: bool = False,
) -> tuple[PlanOutcome, list[PlannedRecipient], Person | None, SmsConfig]:
    """Check the request and plan every recipient (nothing is written)."""
    config = load_config(session=session)
    outcome = PlanOutcome(send_at=request.send_at)
    late = send_at_problem(request.send_at, now=now, timezone=config.timezone)
    if late is not None:
        outcome.refused_reason, outcome.status = late, "refused"
        return outcome, [], None, config
    sender = staff_by_sis_id(session=session, sis_id=request.sender_id)
    if sender is None:
        outcome.refused_reason = str(NoSuchStaff(request.sender_id))
        outcome.status = "refused"
        return outcome, [], None, config
    facts, policy = sender_policy(session, config, sender)
    refusal = check_sender(facts, policy, is_reply=is_reply)
    if refusal is not None:
        outcome.refused_reason, outcome.status = refusal.message, "refused"
        return outcome, [], sender, config
    try:
        template = parse_template(request.message)
    except TemplateError as exc:
        outcome.refused_reason, outcome.status = str(exc), "refused"
        return outcome, [], sender, config
    if request.audience.is_empty():
        outcome.refused_reason = (
            "the audience has no filter: choose at least one (caseload, tags, programs, "
            "degrees, risk levels, courses or student ids) rather than texting every student"
        )
        outcome.status = "refused"
        return outcome, [], sender, config
    unknown = unknown_ids(session=session, audience=request.audience)
    if unknown:
        named = "; ".join(
            f"{_ID_KINDS[kind]}: {', '.join(ids[:20])}" + (" ..." if len(ids) > 20 else "")
            for kind, ids in unknown.items()
        )
        outcome.refused_reason = (
            f"the audience names ids nobody has ({named}). Check them for typos; "
            "nothing was planned."
        )
        outcome.status = "refused"
        return outcome, [], sender, config
    audience = resolve_audience(session=session, audience=request.audience)
    if not audience:
        outcome.refused_reason = (
            f"no active student matches this audience ({request.audience.describe()}): "
            "nothing was planned."
        )
        outcome.status = "refused"
        return outcome, [], sender, config
    assert sender.id is not None  # noqa: S101 - a stored person
    held_out: list[AudienceMember] = []
    if request.holdout_pct > 0:
        seed = request.holdout_seed_used()
        chosen = draw_holdout(
            [(m.sis_id, m.program or "") for m in audience], request.holdout_pct, seed
        )
        held_out = [m for m in audience if m.sis_id in chosen]
        audience = [m for m in audience if m.sis_id not in chosen]
        outcome.holdout_pct, outcome.holdout_seed = request.holdout_pct, seed
        outcome.held_out_ids = [m.id for m in held_out]
    existing = sender_number(session=session, staff_person_id=sender.id)
    sender_e164 = existing.e164 if existing and existing.status == "active" else None
    numbers = [m.sms_e164 for m in audience if m.sms_e164]
    when = request.send_at if request.send_at and request.send_at > now else now
    quota_left = remaining(
        config.monthly_limit, used(session=session, month=month_key(when, config.timezone))
    )
    try:
        planned, summary = plan_recipients(
            [_member(m, facts.name) for m in audience],
            template=template,
            config=config,
            sender_name=facts.name,
            consents=consents_for(session=session, numbers=numbers, sender_e164=sender_e164),
            texted_before=frozenset(
                texted_numbers(session=session, sender_e164=sender_e164, numbers=numbers)
            ),
            quota_left=quota_left,
            now=when,
        )
    except PlanRefused as exc:
        outcome.refused_reason, outcome.status = str(exc), "refused"
        return outcome, [], sender, config
    summary.held_out = len(held_out)
    outcome.summary = summary
    return outcome, planned, sender, config


@task(name="plan-campaign", cache_policy=NO_CACHE)
def plan_campaign(
    request: CampaignRequest,
    settings: TaskSettings,
    engine: Engine,
    *,
    kind: str = "campaign",
    is_reply: bool = False,
    request_key: str | None = None,
    created_by: str | None = None,
) -> PlanOutcome:
    """Preview (``dry_run``) or store a campaign with all its messages, atomically, on
    ``engine`` (the caller's: the process's engine of nudge's database)."""
    now = utcnow()
    with session_scope(engine) as session:
        if request_key:
            prior = by_request_key(session=session, request_key=request_key)
            if prior is not None:  # the same request again: the same campaign
                return PlanOutcome(campaign_id=prior.id, status=prior.status, send_at=prior.send_at)
        zone = load_config(session=session).timezone
        request = request.model_copy(update={"send_at": localized_send_at(request.send_at, zone)})
        outcome, planned, sender, _config = build_plan(session, request, now=now, is_reply=is_reply)
        if request.dry_run or sender is None:
            _report_plan(outcome, request)
            return outcome
        scheduled = request.send_at is not None and request.send_at > now
        campaign = Campaign(
            kind=kind,
            sender_person_id=sender.id,  # type: ignore[arg-type]
            audience=request.audience.model_dump(mode="json"),
            template=request.message,
            send_at=request.send_at,
            status="refused"
            if outcome.refused_reason
            else ("scheduled" if scheduled else "sending"),
            refused_reason=outcome.refused_reason,
            request_key=request_key,
            created_by=created_by,
            holdout_pct=outcome.holdout_pct,
            holdout_seed=outcome.holdout_seed,
            conversation=is_reply,
            counts=outcome.summary.as_dict(),
            started_at=None if scheduled or outcome.refused_reason else now,
        )
        session.add(campaign)
        session.flush()
        outcome.campaign_id = campaign.id
        outcome.status = campaign.status
        if not outcome.refused_reason:
            outcome.chunks = insert_plan(
                session=session,
                campaign=campaign,
                planned=planned,
                held_out=outcome.held_out_ids,
                sender_name=sender.display_name,
                chunk_size=settings.chunk_size,
                kind=kind,
                now=now,
            )
    _report_plan(outcome, request)
    return outcome


def _report_plan(outcome: PlanOutcome, request: CampaignRequest) -> None:
    """The run log and, inside a Prefect run, the preview and plan artifacts (keyed per
    campaign; a dry run's belong to its flow run only), written for the advisor."""
    log = run_logger()
    if outcome.refused_reason:
        log.error("campaign refused: %s", outcome.refused_reason)
    else:
        s = outcome.summary
        log.info(
            "campaign %s %s: %d recipients, %d SMS (%d deferred), %d email, %d undeliverable, "
            "%d held out",
            outcome.campaign_id if outcome.campaign_id is not None else "(dry run)",
            "planned" if outcome.campaign_id is not None else "previewed",
            s.recipients,
            s.sms,
            s.deferred,
            s.email,
            s.undeliverable,
            s.held_out,
        )
    if not in_prefect_run():
        return
    campaign = outcome.campaign_id
    who = f"campaign {campaign}" if campaign is not None else "this dry run"
    create_markdown_artifact(
        key=f"campaign-{campaign}-preview" if campaign is not None else None,
        markdown=preview_markdown(outcome, request),
        description=(
            f"What {who} does: who gets a text, who an email and why, before anything is sent"
            if not outcome.refused_reason
            else f"Why {who} was refused: nothing was sent"
        ),
    )
    if outcome.refused_reason:
        return
    create_table_artifact(
        key=f"campaign-{campaign}-plan" if campaign is not None else None,
        table=[
            {"reason": REASON_LABELS.get(reason, reason), "recipients": count}
            for reason, count in outcome.summary.by_reason.most_common()
        ],
        description=f"Recipients of {who} by why they get a text or an email: "
        f"{request.audience.describe()}",
    )


#: How the plan's reason codes read for an advisor.
REASON_LABELS = {
    "sms_ok": "text now",
    "deferred_quiet_hours": "text when their quiet hours end",
    "no_sms_number": "email: no number we can text",
    "opted_out": "email: opted out of texts",
    "review_pending": "email: texts paused while a reply is reviewed",
    "not_opted_in": "email: not opted in",
    "quota_exhausted": "email: monthly text limit reached",
    "no_email_no_sms": "unreachable: no number and no email",
}


def preview_markdown(outcome: PlanOutcome, request: CampaignRequest | None = None) -> str:
    """The preview as markdown: channels, reasons and the exact segment figures, or why the
    campaign was refused."""
    s = outcome.summary
    title = (
        "## Campaign preview (dry run: nothing sent)"
        if outcome.campaign_id is None
        else f"## Campaign {outcome.campaign_id}"
    )
    if outcome.refused_reason:
        return "\n".join([title, "", f"**Refused — nothing was sent.** {outcome.refused_reason}"])
    encodings = ", ".join(f"{e} ×{n}" for e, n in s.encodings.items())
    lines = [
        title,
        "",
        f"Audience: {request.audience.describe()}." if request is not None else "",
        "",
        f"**{s.recipients}** recipients: **{s.sms}** by SMS ({s.deferred} deferred by quiet "
        f"hours, {s.opt_in_notices} opt-in notices first), **{s.email}** by email, "
        f"**{s.undeliverable}** undeliverable.",
        "",
        *(
            [
                f"Held out at random: **{s.held_out}** students ({outcome.holdout_pct:g}% of "
                f"the audience, seed {outcome.holdout_seed}) get nothing: the control group.",
                "",
            ]
            if outcome.holdout_pct
            else []
        ),
        f"Segments per SMS after variables: min {s.segments_min}, max {s.segments_max}, "
        f"total {s.segments_total} ({encodings or '-'}). Quota needed: {s.quota_units}.",
    ]
    if s.empty_variables:
        lines += [
            "",
            "Variables that render empty: "
            + ", ".join(f"`{{{v}}}` for {n}" for v, n in s.empty_variables.items()),
        ]
    return "\n".join(lines)


def cancel_campaign(engine: Engine, campaign_id: int) -> str:
    """Cancel a scheduled campaign before it starts; returns the new status or raises."""
    with session_scope(engine) as session:
        return cancel_scheduled(session=session, campaign_id=campaign_id, now=utcnow())


def start_due(engine: Engine, now: datetime) -> list[int]:
    """Start the scheduled campaigns whose ``send_at`` has come by ``now`` (each once, however
    many dispatchers run); returns their ids."""
    with session_scope(engine) as session:
        return start_due_campaigns(session=session, now=now)


__all__ = [
    "PlanOutcome",
    "build_plan",
    "cancel_campaign",
    "plan_campaign",
    "start_due",
]
