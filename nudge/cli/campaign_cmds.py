"""Campaign commands: ``send``, ``preview``, ``usage``, ``dispatch``, ``campaigns``, ``roles``."""

from __future__ import annotations

import sys
from datetime import datetime
from typing import Annotated, Any

import typer

from nudge.cli.common import (
    JSON_HELP,
    emit,
    fail,
    group,
    prefect_server_configured,
    session,
    settings,
)

JsonOpt = Annotated[bool, typer.Option("--json", help=JSON_HELP)]

campaigns_app = group("Look at, cancel or resume campaigns.")
roles_app = group("Who may text: grant roles, define dynamic roles.")


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
    if moment.tzinfo is None:
        with session() as s:
            moment = moment.replace(tzinfo=ZoneInfo(load_config(session=s).timezone))
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
    lines.extend(_pending_lines(d))
    return "\n".join(lines)


#: ``nudge send`` (and ``campaigns resume``) exit with this when they return with messages
#: still to send (deferred by quiet hours, waiting out a provider outage, in flight).
EXIT_PENDING = 4


def _pending_lines(d: dict[str, Any]) -> list[str]:
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


def _exit_if_pending(d: dict[str, Any]) -> None:
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
    json_out: JsonOpt = False,
) -> None:
    """Text a group of students (filters combine with AND; repeated values with OR)."""
    from domain.campaign import CampaignRequest

    request = CampaignRequest(
        sender_id=sender,
        message=message,
        send_at=_when(at, json_out),
        dry_run=dry_run,
        audience=_audience(tag, program, degree, risk_level, course, caseload, student),
    )
    if prefect_server_configured() and not dry_run:
        from flows.send_campaign import send_campaign

        data = send_campaign(campaign=request)
    else:
        from flows.send_campaign import run_campaign

        data = run_campaign(request, settings=settings(), created_by="cli")
    emit(data, as_json=json_out, human=_human_send)
    if data.get("refused_reason"):
        raise typer.Exit(3)
    _exit_if_pending(data)


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


@campaigns_app.command("list")
def campaigns_list(
    limit: Annotated[int, typer.Option("--limit", help="How many.")] = 20,
    json_out: JsonOpt = False,
) -> None:
    """The latest campaigns, newest first."""
    from sqlmodel import col, select

    from models.messaging import Campaign

    with session() as s:
        rows = s.exec(select(Campaign).order_by(col(Campaign.id).desc()).limit(limit)).all()
        data = {
            "campaigns": [
                {
                    "id": c.id,
                    "kind": c.kind,
                    "status": c.status,
                    "created_at": c.created_at,
                    "send_at": c.send_at,
                    "recipients": (c.counts or {}).get("recipients"),
                    "template": c.template[:60],
                }
                for c in rows
            ]
        }
    emit(
        data,
        as_json=json_out,
        human=lambda d: (
            "\n".join(
                f"#{c['id']:<5} {c['status']:<10} {c['kind']:<8} {c['recipients'] or 0:>6} "
                f"recipients  {c['template']}"
                for c in d["campaigns"]
            )
            or "no campaigns yet"
        ),
    )


@campaigns_app.command("show")
def campaigns_show(
    campaign_id: Annotated[int, typer.Argument(help="Campaign id.")],
    json_out: JsonOpt = False,
) -> None:
    """A campaign's status and breakdown by channel, status and reason."""
    from flows.send_campaign import campaign_result

    try:
        data = campaign_result(settings(), campaign_id)
    except LookupError as exc:
        fail(str(exc), as_json=json_out)
    emit(data, as_json=json_out, human=_human_show)


def _human_show(d: dict[str, Any]) -> str:
    reason = d.get("stop_reason") or d.get("refused_reason")
    lines = [f"campaign {d['campaign_id']}: {d['status']}" + (f" — {reason}" if reason else "")]
    lines += [f"  {k:<24} {v}" for k, v in sorted(d["result"]["by_status"].items())]
    lines.append("  why: " + ", ".join(f"{k} {v}" for k, v in d["result"]["by_reason"].items()))
    lines += _pending_lines(d)
    return "\n".join(lines)


@campaigns_app.command("cancel")
def campaigns_cancel(
    campaign_id: Annotated[int, typer.Argument(help="Campaign id (must still be scheduled).")],
    json_out: JsonOpt = False,
) -> None:
    """Cancel a scheduled campaign before it starts."""
    from tasks.campaigns import cancel_campaign

    try:
        status = cancel_campaign(settings(), campaign_id)
    except (LookupError, ValueError) as exc:
        fail(str(exc), as_json=json_out)
    emit(
        {"campaign_id": campaign_id, "status": status},
        as_json=json_out,
        human=lambda d: f"campaign {d['campaign_id']} {d['status']}",
    )


@campaigns_app.command("resume")
def campaigns_resume(
    campaign_id: Annotated[int, typer.Argument(help="A campaign that did not complete.")],
    json_out: JsonOpt = False,
) -> None:
    """Finish a campaign that is not completed: stopped (after the fix), crashed or stuck.

    Claims of workers that are provably dead (processes of this machine that no longer
    exist) are taken over at once, others once their heartbeat is stale; only what was not
    sent goes out. Exits 4 when messages are left for later (quiet hours, an outage).
    """
    from flows.send_campaign import campaign_result, work

    try:
        with session() as s:
            prepare_resume(s, campaign_id)
    except (LookupError, ValueError) as exc:
        fail(str(exc), as_json=json_out)
    work(settings(), campaign_id=campaign_id)
    data = campaign_result(settings(), campaign_id)
    emit(data, as_json=json_out, human=_human_show)
    _exit_if_pending(data)


def prepare_resume(s: Any, campaign_id: int) -> None:
    """Make a campaign resumable: a stopped one sends again, dead claims are given back."""
    from domain.outbox import RESUMABLE, CampaignStatus
    from models.chunks import free_dead_claims
    from models.outbox import campaign_status, resume_campaign

    status = campaign_status(session=s, campaign_id=campaign_id)
    if status is None:
        raise LookupError(f"no campaign #{campaign_id}")
    if status == CampaignStatus.COMPLETED:
        return
    if status not in RESUMABLE:
        raise ValueError(
            f"campaign #{campaign_id} is {status}: only a sending, stopped or stuck campaign "
            "can be resumed"
            + (
                " (a scheduled one goes out when due: `nudge dispatch`)"
                if status == "scheduled"
                else ""
            )
        )
    resume_campaign(session=s, campaign_id=campaign_id)
    s.commit()
    free_dead_claims(session=s, campaign_id=campaign_id)


@roles_app.command("list")
def roles_list(json_out: JsonOpt = False) -> None:
    """Permitted roles, admin grants, dynamic roles, and staff holding a role from the SIS."""
    from sqlmodel import select

    from models.campaigns import dynamic_roles
    from models.config import load_config
    from models.people import Person
    from models.roles import RoleGrant

    with session() as s:
        config = load_config(session=s)
        grants = s.exec(select(RoleGrant)).all()
        staff = s.exec(select(Person).where(Person.role == "staff")).all()
        data = {
            "permitted_roles": config.permitted_roles,
            "grants": [{"staff": g.staff_sis_id, "role": g.role} for g in grants],
            "dynamic": {name: f.describe() for name, f in dynamic_roles(session=s).items()},
            "from_sis": {p.sis_id: p.roles for p in staff if p.roles},
        }
    emit(
        data,
        as_json=json_out,
        human=lambda d: "\n".join(
            [
                "permitted roles: " + (", ".join(d["permitted_roles"]) or "none"),
                *(f"grant: {g['staff']} -> {g['role']}" for g in d["grants"]),
                *(f"dynamic: {n} = {desc}" for n, desc in d["dynamic"].items()),
                *(f"sis: {sid} -> {', '.join(r)}" for sid, r in d["from_sis"].items()),
            ]
        ),
    )


@roles_app.command("grant")
def roles_grant(
    staff: Annotated[str, typer.Argument(help="Staff SIS id.")],
    role: Annotated[str, typer.Argument(help="Role name, e.g. Texting.")],
    json_out: JsonOpt = False,
) -> None:
    """Grant a static role to a staff member (survives every sync)."""
    from sqlmodel import select

    from models.campaigns import staff_by_sis_id
    from models.roles import RoleGrant

    with session() as s:
        if staff_by_sis_id(session=s, sis_id=staff) is None:
            fail(f"no staff member with SIS id {staff!r}", as_json=json_out)
        exists = s.exec(
            select(RoleGrant).where(RoleGrant.staff_sis_id == staff, RoleGrant.role == role)
        ).first()
        if exists is None:
            s.add(RoleGrant(staff_sis_id=staff, role=role, granted_by="cli"))
    emit(
        {"staff": staff, "role": role, "granted": True},
        as_json=json_out,
        human=lambda d: f"{staff} now holds {role}",
    )


@roles_app.command("revoke")
def roles_revoke(
    staff: Annotated[str, typer.Argument(help="Staff SIS id.")],
    role: Annotated[str, typer.Argument(help="Role name.")],
    json_out: JsonOpt = False,
) -> None:
    """Revoke a role an admin granted (roles from the SIS extract change in the SIS)."""
    from sqlalchemy import delete

    from models.roles import RoleGrant

    table = RoleGrant.__table__  # type: ignore[attr-defined]
    with session() as s:
        gone = s.execute(
            delete(table).where(table.c.staff_sis_id == staff, table.c.role == role)
        ).rowcount  # type: ignore[attr-defined]
    emit(
        {"staff": staff, "role": role, "revoked": bool(gone)},
        as_json=json_out,
        human=lambda d: f"revoked {role} from {staff}" if d["revoked"] else "no such grant",
    )


@roles_app.command("define")
def roles_define(
    name: Annotated[str, typer.Argument(help="Dynamic role name, e.g. Texting.")],
    department: Annotated[
        list[str] | None,
        typer.Option("--department", help="Staff in this department (repeatable, OR)."),
    ] = None,
    title_contains: Annotated[
        list[str] | None,
        typer.Option("--title-contains", help="Staff whose title contains this (repeatable, OR)."),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Define (or redefine) a dynamic role: every staff member matching the filter holds it."""
    from pydantic import ValidationError
    from sqlmodel import select

    from domain.roles import RoleFilter
    from models.roles import DynamicRole

    try:
        spec = RoleFilter(departments=department or [], title_contains=title_contains or [])
    except ValidationError as exc:
        fail(exc.errors()[0]["msg"], as_json=json_out, code=2)
    with session() as s:
        row = s.exec(select(DynamicRole).where(DynamicRole.name == name)).first()
        if row is None:
            row = DynamicRole(name=name)
        row.filter = spec.model_dump(mode="json")
        s.add(row)
    emit(
        {"role": name, "filter": spec.model_dump(mode="json")},
        as_json=json_out,
        human=lambda d: f"{name} = {spec.describe()}",
    )


@roles_app.command("undefine")
def roles_undefine(
    name: Annotated[str, typer.Argument(help="Dynamic role name.")],
    json_out: JsonOpt = False,
) -> None:
    """Remove a dynamic role."""
    from sqlalchemy import delete

    from models.roles import DynamicRole

    table = DynamicRole.__table__  # type: ignore[attr-defined]
    with session() as s:
        gone = s.execute(delete(table).where(table.c.name == name)).rowcount  # type: ignore[attr-defined]
    emit(
        {"role": name, "removed": bool(gone)},
        as_json=json_out,
        human=lambda d: f"removed {name}" if d["removed"] else f"no dynamic role {name}",
    )


def register(app: typer.Typer) -> None:
    """Add the campaign commands and groups to the main app."""
    app.command("send")(send)
    app.command("preview")(preview)
    app.command("usage")(usage)
    app.command("dispatch")(dispatch)
    app.add_typer(campaigns_app, name="campaigns")
    app.add_typer(roles_app, name="roles")
