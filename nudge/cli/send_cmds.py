"""Sending commands: ``send``, ``preview``, ``usage`` and ``dispatch``.

Only typer (and the standard library) is imported at module level; Prefect, the database
and the flows load inside the commands.
"""

from __future__ import annotations

import sys
from datetime import datetime
from typing import Annotated, Any

import typer

from nudge.cli.common import (
    JSON_HELP,
    emit,
    fail,
    local_time,
    prefect_server_configured,
    session,
    settings,
)

JsonOpt = Annotated[bool, typer.Option("--json", help=JSON_HELP)]


def _audience(
    tags: list[str] | None,
    programs: list[str] | None,
    degrees: list[str] | None,
    risk_levels: list[str] | None,
    courses: list[str] | None,
    caseload: list[str] | None,
    students: list[str] | None,
) -> Any:
    from pydantic import ValidationError

    from domain.audience import AudienceFilter

    try:
        return AudienceFilter(
            tags=tags or [],
            programs=programs or [],
            degrees=degrees or [],
            risk_levels=[r.lower() for r in risk_levels or []],
            courses=courses or [],
            caseload=caseload or [],
            student_ids=students or [],
        )
    except ValidationError as exc:
        allowed = "low, medium, high, critical"
        raise typer.BadParameter(f"{exc.errors()[0]['msg']} (risk levels: {allowed})") from exc


def _when(text: str | None, as_json: bool) -> datetime | None:
    """``--at``: ISO 8601; without an offset it is read in the institution's time zone."""
    if not text:
        return None
    from zoneinfo import ZoneInfo

    from models.config import load_config

    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        fail(
            f"--at {text!r} is not an ISO date-time (e.g. 2026-12-01T09:30)",
            as_json=as_json,
            code=2,
        )
    with session() as s:
        zone = load_config(session=s).timezone
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(zone))
    from models.types import utcnow

    now = utcnow()
    if moment < now:
        fail(
            f"--at {text!r} is in the past ({local_time(moment, zone)}; it is now "
            f"{local_time(now, zone)}): leave --at out to send now",
            as_json=as_json,
            code=2,
        )
    return moment


def _human_send(d: dict[str, Any]) -> str:
    if d.get("refused_reason"):
        return f"refused: {d['refused_reason']}"
    seg = d["segments"]
    head = (
        f"campaign {d['campaign_id']} {d['status']}"
        if d["campaign_id"] is not None
        else "preview (nothing sent)"
    )
    lines = [
        head,
        f"  recipients {d['recipients']}: {d['sms']} SMS ({d['deferred']} deferred by quiet "
        f"hours, {d['opt_in_notices']} opt-in notices first), {d['email']} email, "
        f"{d['undeliverable']} undeliverable",
        f"  segments per SMS: min {seg['min']}, max {seg['max']}, total {seg['total']} "
        f"({', '.join(f'{k} ×{v}' for k, v in seg['encodings'].items()) or '-'}); "
        f"quota needed {d['quota_units']}",
        "  why: " + ", ".join(f"{k} {v}" for k, v in d["by_reason"].items()),
    ]
    if d.get("holdout_pct"):
        lines.append(
            f"  held out {d.get('held_out', 0)} ({d['holdout_pct']:g}% at random, seed "
            f"{d['holdout_seed']}): they get nothing"
        )
    if d.get("empty_variables"):
        lines.append(
            "  empty variables: "
            + ", ".join(f"{{{k}}} for {v}" for k, v in d["empty_variables"].items())
        )
    if d.get("result"):
        r = d["result"]
        lines.append(
            f"  result: {r['sms']} SMS, {r['email']} email, "
            f"{r['undeliverable']} undeliverable — "
            + ", ".join(f"{k} {v}" for k, v in sorted(r["by_status"].items()))
        )
    if d.get("stop_reason"):
        lines.append(f"  STOPPED: {d['stop_reason']}")
    lines.extend(pending_lines(d))
    return "\n".join(lines)


#: ``nudge send`` (and ``campaigns resume``) exit with this when they return with messages
#: still to send (deferred by quiet hours, waiting out a provider outage, in flight).
EXIT_PENDING = 4


def pending_lines(d: dict[str, Any]) -> list[str]:
    """The PENDING and UNKNOWN lines of a campaign's human summary (``send``, ``campaigns
    show`` and ``campaigns resume``)."""
    pending = d.get("pending") or {}
    lines = []
    if pending.get("total"):
        lines.append(f"  PENDING: {pending['total']} message(s): {pending['explain']}")
    for item in d.get("unknown_emails") or []:
        lines.append(
            f"  UNKNOWN: email #{item['message_id']} to {item['to']} (Message-ID "
            f"{item['message_id_header']}): a crash left its delivery undecided; check the "
            f"mail server, then `nudge outbox resend {item['message_id']}` if it never arrived"
        )
    return lines


def exit_if_pending(d: dict[str, Any]) -> None:
    """Exit with :data:`EXIT_PENDING`, saying why on stderr, when messages are left to send."""
    pending = d.get("pending") or {}
    if pending.get("total"):
        sys.stderr.write(
            f"nudge: {pending['total']} message(s) not sent yet: {pending['explain']}. "
            "`nudge dispatch` (or the dispatch-due deployment) sends them when due.\n"
        )
        raise typer.Exit(EXIT_PENDING)


SenderOpt = Annotated[str, typer.Option("--sender", help="Staff SIS id the texts come from.")]
MessageOpt = Annotated[
    str,
    typer.Option(
        "--message",
        help="Text; variables: {first_name} {preferred_name} {last_name} {sender_name} "
        "{advisor_name} {program}.",
    ),
]
TagOpt = Annotated[list[str] | None, typer.Option("--tag", help="Tag (repeatable).")]
ProgramOpt = Annotated[list[str] | None, typer.Option("--program", help="Program (repeatable).")]
DegreeOpt = Annotated[list[str] | None, typer.Option("--degree", help="Degree (repeatable).")]
RiskOpt = Annotated[
    list[str] | None,
    typer.Option("--risk-level", help="low, medium, high or critical (repeatable)."),
]
CourseOpt = Annotated[list[str] | None, typer.Option("--course", help="Course (repeatable).")]
CaseloadOpt = Annotated[
    list[str] | None,
    typer.Option("--caseload", help="Advisor SIS id: their advisees (repeatable)."),
]
StudentOpt = Annotated[
    list[str] | None, typer.Option("--student", help="Student SIS id (repeatable).")
]
HoldoutOpt = Annotated[
    float,
    typer.Option(
        "--holdout",
        metavar="PCT",
        help="Hold out this share (0-50 %) of the audience at random, within each program: "
        "they get nothing (a control group for `nudge campaigns outcome`).",
    ),
]
HoldoutSeedOpt = Annotated[
    int | None,
    typer.Option(
        "--holdout-seed",
        metavar="N",
        help="Seed of the holdout draw (same seed, same students); default: derived from "
        "the sender, message and audience, so preview and send agree.",
    ),
]


def _request(as_json: bool, **fields: Any) -> Any:
    """The campaign request, or exit 2 naming the option that is wrong."""
    from pydantic import ValidationError

    from domain.campaign import CampaignRequest

    options = {"holdout_pct": "--holdout", "holdout_seed": "--holdout-seed"}
    try:
        return CampaignRequest(**fields)
    except ValidationError as exc:
        problems = "; ".join(
            f"{options.get(str(e['loc'][0]), str(e['loc'][0])) if e['loc'] else 'request'}: "
            + str(e["msg"]).removeprefix("Value error, ")
            for e in exc.errors()
        )
        fail(problems, as_json=as_json, code=2)


def send(
    sender: SenderOpt,
    message: MessageOpt,
    tag: TagOpt = None,
    program: ProgramOpt = None,
    degree: DegreeOpt = None,
    risk_level: RiskOpt = None,
    course: CourseOpt = None,
    caseload: CaseloadOpt = None,
    student: StudentOpt = None,
    at: Annotated[
        str | None,
        typer.Option(
            "--at", help="Send later: ISO date-time (institution time zone if no offset)."
        ),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run", help="Preview only: counts by channel and reason, exact segments."
        ),
    ] = False,
    holdout: HoldoutOpt = 0.0,
    holdout_seed: HoldoutSeedOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Text a group of students (filters combine with AND; repeated values with OR)."""
    request = _request(
        json_out,
        sender_id=sender,
        message=message,
        send_at=_when(at, json_out),
        dry_run=dry_run,
        audience=_audience(tag, program, degree, risk_level, course, caseload, student),
        holdout_pct=holdout,
        holdout_seed=holdout_seed,
    )
    if prefect_server_configured() and not dry_run:
        from flows.send_campaign import send_campaign
        from tasks.campaign_form import CampaignRefused

        try:
            data = send_campaign(Campaign=request)
        except CampaignRefused as exc:
            data = exc.result or {"refused_reason": str(exc)}
    else:
        from flows.send_campaign import run_campaign

        data = run_campaign(request, settings=settings(), created_by="cli")
    emit(data, as_json=json_out, human=_human_send)
    if data.get("refused_reason"):
        raise typer.Exit(3)
    exit_if_pending(data)


def preview(
    sender: SenderOpt,
    message: MessageOpt,
    tag: TagOpt = None,
    program: ProgramOpt = None,
    degree: DegreeOpt = None,
    risk_level: RiskOpt = None,
    course: CourseOpt = None,
    caseload: CaseloadOpt = None,
    student: StudentOpt = None,
    holdout: HoldoutOpt = 0.0,
    holdout_seed: HoldoutSeedOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Preview a campaign for the real audience: SMS vs email and why, exact segments."""
    send(
        sender=sender,
        message=message,
        tag=tag,
        program=program,
        degree=degree,
        risk_level=risk_level,
        course=course,
        caseload=caseload,
        student=student,
        at=None,
        dry_run=True,
        holdout=holdout,
        holdout_seed=holdout_seed,
        json_out=json_out,
    )


def usage(json_out: JsonOpt = False) -> None:
    """SMS used this month against the monthly limit."""
    from domain.quota import month_key, remaining
    from models.config import load_config
    from models.quota import used
    from models.types import utcnow

    with session() as s:
        config = load_config(session=s)
        month = month_key(utcnow(), config.timezone)
        spent = used(session=s, month=month)
    data = {
        "month": month,
        "used": spent,
        "limit": config.monthly_limit,
        "remaining": remaining(config.monthly_limit, spent),
        "unit": str(config.quota_unit),
    }
    emit(
        data,
        as_json=json_out,
        human=lambda d: (
            f"{d['month']}: {d['used']} {d['unit']} used of "
            f"{d['limit'] if d['limit'] is not None else 'unlimited'}"
            + (f", {d['remaining']} left" if d["remaining"] is not None else "")
        ),
    )


def dispatch(json_out: JsonOpt = False) -> None:
    """Send what is due now: scheduled campaigns, deferred messages, abandoned chunks."""
    from flows.send_campaign import run_dispatch

    data = run_dispatch(settings())
    emit(
        data,
        as_json=json_out,
        human=lambda d: (
            f"started {len(d['started'])} scheduled campaign(s); {d['chunks']} chunk(s), "
            f"{d['sms_sent']} SMS, {d['emails_sent']} email"
        ),
    )


def register(app: typer.Typer) -> None:
    """Add ``send``, ``preview``, ``usage`` and ``dispatch`` to the main app."""
    app.command("send")(send)
    app.command("preview")(preview)
    app.command("usage")(usage)
    app.command("dispatch")(dispatch)
