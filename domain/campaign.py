"""Campaign planning, pure: what each recipient gets, by which channel, and why.

Given the audience (plain values read from the database), the template, consent facts, who
this sender number has texted before, the quota left and ``now``, :func:`plan_recipients`
renders every body, counts its segments, asks the router, and returns one
:class:`PlannedRecipient` per student plus a :class:`PlanSummary` — the preview staff see
before sending and the plan the send path writes. Nothing here does I/O.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, field_validator

from domain.audience import AudienceFilter
from domain.config import SmsConfig
from domain.consent import StoredConsent, effective_consent
from domain.holdout import MAX_HOLDOUT_PCT, MAX_SEED, default_seed, pct_problem
from domain.quiet_hours import parse_window, recipient_timezone
from domain.quota import message_cost
from domain.routing import (
    Channel,
    ConsentState,
    Decision,
    RecipientFacts,
    RoutingPolicy,
    opt_in_notice,
    route,
)
from domain.segments import MAX_BODY_CHARS, SegmentInfo, body_length, segment_info
from domain.templates import Template


class CampaignRequest(BaseModel):
    """Who the texts go to, what they say and when."""

    # The form's keys are words ("'sender' is a required property" is what Prefect's form
    # says when it is left empty); code may use either the key or the attribute name.
    model_config = ConfigDict(title="Campaign", extra="forbid", populate_by_name=True)

    sender_id: str = Field(
        alias="sender",
        title="Sender (staff SIS id)",
        description="The staff member the texts come from; they need a permitted role.",
        min_length=1,
    )
    message: str = Field(
        title="Message",
        description="Text with optional variables: {first_name} {preferred_name} {last_name} "
        "{sender_name} {advisor_name} {program}.",
        min_length=1,
    )
    audience: AudienceFilter = Field(
        default=AudienceFilter(),
        title="Audience",
        description="Active students matching every filled-in filter.",
    )
    send_at: Annotated[
        datetime | None,
        # One date-time input in the form (not a "date-time | None" switch): empty means now.
        WithJsonSchema(
            {
                "type": "string",
                "format": "date-time",
                "title": "Send at",
                "description": "Leave empty to send now. A date and time (the college's time "
                "zone unless you give one) schedules the campaign; it goes out when due.",
            }
        ),
    ] = Field(default=None, title="Send at")
    holdout_pct: float = Field(
        default=0,
        title="Hold out (%)",
        description="A randomized control group: this share of the audience (0 to 50), drawn "
        "at random within each program, gets nothing, so you can later compare what happened "
        "to the students you texted with what happened to those you did not "
        "(`nudge campaigns outcome`). 0: everyone gets the message.",
        json_schema_extra={"minimum": 0, "maximum": MAX_HOLDOUT_PCT},
    )
    holdout_seed: Annotated[
        int | None,
        # One number input in the form (not an "integer | None" switch): empty means derived.
        WithJsonSchema(
            {
                "type": "integer",
                "title": "Holdout seed",
                "description": "Leave empty: the seed is derived from the sender, message and "
                "audience, so a dry run and the send hold out the same students. The same seed "
                "draws the same students.",
                "minimum": 0,
                "maximum": MAX_SEED,
            }
        ),
    ] = Field(default=None, title="Holdout seed", ge=0, le=MAX_SEED)
    dry_run: bool = Field(
        default=False,
        title="Dry run (preview only)",
        description="Show how many go by SMS and by email, and why, without sending.",
    )

    @field_validator("holdout_pct")
    @classmethod
    def _holdout_share(cls, value: float) -> float:
        problem = pct_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value

    def holdout_seed_used(self) -> int:
        """The seed of this request's holdout draw: the one given, else one derived from the
        sender, message and audience (never the send time), so a preview and its send agree."""
        if self.holdout_seed is not None:
            return self.holdout_seed
        return default_seed(
            sender_id=self.sender_id,
            message=self.message,
            audience=self.audience.model_dump(mode="json"),
        )


@dataclass(frozen=True, slots=True)
class Member:
    """One audience member, as planning needs them (read from the database)."""

    id: int
    sis_id: str
    display_name: str
    email: str | None
    sms_e164: str | None
    sms_reason: str | None
    values: Mapping[str, str | None]


@dataclass(frozen=True, slots=True)
class PlannedRecipient:
    """One recipient's plan: the rendered body, its segments, and the router's decision."""

    member: Member
    body: str
    segments: SegmentInfo
    decision: Decision
    notice: str | None = None
    notice_segments: SegmentInfo | None = None


@dataclass(slots=True)
class PlanSummary:
    """The preview: counts by channel and reason, and exact segment figures.

    ``held_out`` counts the students a randomized holdout kept out (:mod:`domain.holdout`):
    they are no recipients and appear in no other figure.
    """

    recipients: int = 0
    sms: int = 0
    email: int = 0
    deferred: int = 0
    undeliverable: int = 0
    held_out: int = 0
    opt_in_notices: int = 0
    quota_units: int = 0
    by_reason: Counter[str] = field(default_factory=Counter)
    segments_min: int = 0
    segments_max: int = 0
    segments_total: int = 0
    encodings: Counter[str] = field(default_factory=Counter)
    empty_variables: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready figures (the keys ``nudge send --json`` promises)."""
        return {
            "recipients": self.recipients,
            "sms": self.sms,
            "email": self.email,
            "deferred": self.deferred,
            "undeliverable": self.undeliverable,
            "held_out": self.held_out,
            "opt_in_notices": self.opt_in_notices,
            "quota_units": self.quota_units,
            "by_reason": dict(self.by_reason.most_common()),
            "segments": {
                "min": self.segments_min,
                "max": self.segments_max,
                "total": self.segments_total,
                "encodings": dict(self.encodings),
            },
            "empty_variables": dict(self.empty_variables),
        }


#: A "send at" this far in the past is a mistake, not "now" (a form filled in a few minutes
#: ago still sends).
PAST_GRACE = timedelta(minutes=5)


def localized_send_at(send_at: datetime | None, timezone: str) -> datetime | None:
    """``send_at`` as an aware time: without an offset it is read in the college's zone."""
    if send_at is None or send_at.tzinfo is not None:
        return send_at
    return send_at.replace(tzinfo=ZoneInfo(timezone))


def send_at_problem(send_at: datetime | None, *, now: datetime, timezone: str) -> str | None:
    """Why ``send_at`` cannot be used (it lies in the past), or None."""
    if send_at is None or send_at >= now - PAST_GRACE:
        return None
    shown = send_at.astimezone(ZoneInfo(timezone)).strftime("%Y-%m-%d %H:%M %Z")
    return (
        f"Send at {shown} is in the past: leave it empty to send now, or choose a later "
        "time; nothing was planned."
    )


class PlanRefused(ValueError):
    """The request cannot be planned; the message says what to change."""


def check_lengths(bodies: Sequence[tuple[str, str]]) -> None:
    """Refuse the plan if any rendered body exceeds Twilio's limit, naming the recipients."""
    too_long = [
        (sis_id, body_length(body)) for sis_id, body in bodies if body_length(body) > MAX_BODY_CHARS
    ]
    if too_long:
        shown = ", ".join(f"{sis_id} ({length} chars)" for sis_id, length in too_long[:10])
        more = f" and {len(too_long) - 10} more" if len(too_long) > 10 else ""
        raise PlanRefused(
            f"the message would exceed {MAX_BODY_CHARS} characters for {len(too_long)} "
            f"recipient(s): {shown}{more}. Shorten it; nothing was planned."
        )


def plan_recipients(
    members: Sequence[Member],
    *,
    template: Template,
    config: SmsConfig,
    sender_name: str,
    consents: Mapping[str, tuple[StoredConsent | None, StoredConsent | None]],
    texted_before: frozenset[str],
    quota_left: int | None,
    now: datetime,
) -> tuple[list[PlannedRecipient], PlanSummary]:
    """Render, count and route every member; the quota estimate shrinks as SMS are planned.

    ``consents`` maps an E.164 to its (institution, this-sender) rows. The real quota is
    reserved atomically at send time; this estimate makes the preview honest.
    """
    rendered = [(m, template.render(m.values)) for m in members]
    check_lengths([(m.sis_id, body) for m, body in rendered])
    policy = RoutingPolicy(
        auto_opt_in=config.auto_opt_in,
        window=parse_window(config.quiet_hours),
        institution_tz=config.timezone,
    )
    summary = PlanSummary()
    planned: list[PlannedRecipient] = []
    left = quota_left
    for member, body in rendered:
        info = segment_info(body)
        notice_text: str | None = None
        notice_info: SegmentInfo | None = None
        notice_cost = 1
        if member.sms_e164 and member.sms_e164 not in texted_before:
            notice_text = opt_in_notice(sender_name, member.display_name)
            notice_info = segment_info(notice_text)
            notice_cost = message_cost(notice_info.segments, config.quota_unit)
        state, source = ConsentState.UNKNOWN, None
        if member.sms_e164:
            inst, mine = consents.get(member.sms_e164, (None, None))
            state, source = effective_consent(inst, mine, config.opt_out_scope)
        facts = RecipientFacts(
            person_id=member.sis_id,
            sms_e164=member.sms_e164,
            email=member.email or None,
            no_sms_reason=member.sms_reason,
            consent=state,
            consent_source=source,
            timezone=recipient_timezone(member.sms_e164, config.timezone)
            if member.sms_e164
            else None,
            texted_before=member.sms_e164 in texted_before if member.sms_e164 else False,
        )
        decision = route(
            facts,
            policy=policy,
            quota_left=left,
            cost=message_cost(info.segments, config.quota_unit),
            now=now,
            notice_cost=notice_cost,
        )
        if decision.channel is Channel.SMS and left is not None:
            left -= decision.quota_cost
        if not decision.needs_opt_in_notice:
            notice_text, notice_info = None, None
        planned.append(PlannedRecipient(member, body, info, decision, notice_text, notice_info))
        _count(summary, member, info, decision, template)
    return planned, summary


def _count(
    summary: PlanSummary, member: Member, info: SegmentInfo, decision: Decision, template: Template
) -> None:
    summary.recipients += 1
    summary.by_reason[decision.reason.value] += 1
    if decision.channel is Channel.SMS:
        summary.sms += 1
        summary.quota_units += decision.quota_cost
        summary.opt_in_notices += int(decision.needs_opt_in_notice)
        summary.deferred += int(decision.send_at is not None)
        summary.segments_total += info.segments
        summary.segments_min = (
            info.segments if summary.sms == 1 else min(summary.segments_min, info.segments)
        )
        summary.segments_max = max(summary.segments_max, info.segments)
        summary.encodings[info.encoding] += 1
    elif decision.channel is Channel.EMAIL:
        summary.email += 1
    else:
        summary.undeliverable += 1
    for name in template.missing(member.values):
        summary.empty_variables[name] += 1
