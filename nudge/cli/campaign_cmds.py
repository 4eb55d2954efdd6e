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
    institution_zone,
    local_iso,
    local_time,
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
        from flows.send_campaign import CampaignRefused, send_campaign

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
    """The latest campaigns, newest first: sender, when, status and why messages went the
    way they did (times in the institution's time zone)."""
    from models.campaign_views import recent_campaigns

    with session() as s:
        zone = institution_zone(s)
        data = {
            "campaigns": [
                {
                    **_view_fields(v, zone),
                    "recipients": v.counts["recipients"],
                    "sms": v.counts["sms"],
                    "email": v.counts["email"],
                    "undeliverable": v.counts["undeliverable"],
                    "by_reason": v.counts["by_reason"],
                    "template": v.template[:60],
                }
                for v in recent_campaigns(session=s, limit=limit)
            ]
        }
    emit(data, as_json=json_out, human=lambda d: _human_list(d, zone))


def _view_fields(view: Any, zone: str) -> dict[str, Any]:
    """Who sent a campaign and when, as ``campaigns list/show`` print them."""
    return {
        "id": view.id,
        "kind": view.kind,
        "status": view.status,
        "sender": {"id": view.sender_sis_id, "name": view.sender_name},
        "created_by": view.created_by,
        "created_at": local_iso(view.created_at, zone),
        "send_at": local_iso(view.send_at, zone),
        "started_at": local_iso(view.started_at, zone),
        "finished_at": local_iso(view.finished_at, zone),
    }


def _reasons(by_reason: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(by_reason.items())) or "-"


def _human_list(d: dict[str, Any], zone: str) -> str:
    lines = []
    for c in d["campaigns"]:
        when = (
            f"send at {local_time(c['send_at'], zone)}"
            if c["send_at"]
            else f"created {local_time(c['created_at'], zone)}"
        )
        lines.append(
            f"#{c['id']:<5} {c['status']:<10} {c['kind']:<8} from {c['sender']['name']} "
            f"({c['sender']['id']}), {when}: {c['recipients']} recipients "
            f"({c['sms']} SMS, {c['email']} email, {c['undeliverable']} undeliverable)\n"
            f"       why: {_reasons(c['by_reason'])}\n"
            f"       {c['template']}"
        )
    return "\n".join(lines) or "no campaigns yet"


@campaigns_app.command("show")
def campaigns_show(
    campaign_id: Annotated[int, typer.Argument(help="Campaign id.")],
    json_out: JsonOpt = False,
) -> None:
    """A campaign's sender, times, status and breakdown by channel, status and reason."""
    from flows.send_campaign import campaign_result

    try:
        data = campaign_result(settings(), campaign_id)
    except LookupError as exc:
        fail(str(exc), as_json=json_out)
    emit(_described(data), as_json=json_out, human=_human_show)


def _described(data: dict[str, Any]) -> dict[str, Any]:
    """``campaign_result``'s figures with who sent the campaign and when."""
    from models.campaign_views import campaign_view

    with session() as s:
        zone = institution_zone(s)
        view = campaign_view(session=s, campaign_id=int(data["campaign_id"]))
    if view is not None:
        fields = _view_fields(view, zone)
        del fields["id"]
        data.update(fields, template=view.template, zone=zone)
    return data


def _human_show(d: dict[str, Any]) -> str:
    reason = d.get("stop_reason") or d.get("refused_reason")
    lines = [f"campaign {d['campaign_id']}: {d['status']}" + (f" — {reason}" if reason else "")]
    if d.get("sender"):
        zone = d["zone"]
        lines.append(f"  from     {d['sender']['name']} ({d['sender']['id']})")
        lines.append(
            "  send at  "
            + (local_time(d["send_at"], zone) if d["send_at"] else "at once")
            + f" (created {local_time(d['created_at'], zone)}"
            + (f" by {d['created_by']}" if d.get("created_by") else "")
            + ")"
        )
        if d.get("started_at"):
            lines.append(f"  started  {local_time(d['started_at'], zone)}")
        if d.get("finished_at"):
            lines.append(f"  finished {local_time(d['finished_at'], zone)}")
        lines.append(f"  message  {d['template']}")
    result = d["result"]
    lines.append(
        f"  recipients {result['recipients']}: {result['sms']} SMS, {result['email']} email, "
        f"{result['undeliverable']} undeliverable; "
        f"{result.get('opt_in_notices_sent', 0)} opt-in notices sent"
    )
    lines += [f"  {k:<24} {v}" for k, v in sorted(result["by_status"].items())]
    lines.append("  why:")
    lines += [f"    {k:<22} {v}" for k, v in sorted(result["by_reason"].items())] or ["    -"]
    lines += _pending_lines(d)
    return "\n".join(lines)


@campaigns_app.command("cancel")
def campaigns_cancel(
    campaign_id: Annotated[
        int, typer.Argument(help="Campaign id (scheduled, sending or stopped).")
    ],
    json_out: JsonOpt = False,
) -> None:
    """Cancel a campaign that is scheduled, sending or stopped (a stuck one too).

    Nothing more is sent: every message still waiting ends ``skipped`` (``cancelled``).
    Texts already being handed to the provider cannot be recalled; they finish as usual.
    """
    from models.cancel import cancel_campaign
    from models.types import utcnow

    try:
        with session() as s:
            done = cancel_campaign(session=s, campaign_id=campaign_id, now=utcnow())
    except (LookupError, ValueError) as exc:
        fail(str(exc), as_json=json_out)
    emit(done.as_dict(), as_json=json_out, human=_human_cancel)


def _human_cancel(d: dict[str, Any]) -> str:
    lines = [
        f"campaign {d['campaign_id']} cancelled (was {d['was']}): "
        f"{d['skipped']} message(s) not sent"
    ]
    if d["in_flight"]:
        lines.append(
            f"  {d['in_flight']} message(s) were already being handed to the provider and "
            "cannot be recalled: they finish as usual (see `nudge campaigns show "
            f"{d['campaign_id']}`)"
        )
    if d["unknown_emails"]:
        lines.append(
            f"  {d['unknown_emails']} email(s) a crash left undecided stay so: "
            "see `nudge outbox unknown`"
        )
    return "\n".join(lines)


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
    data = _described(campaign_result(settings(), campaign_id))
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
    from models.campaigns import dynamic_roles
    from models.config import load_config
    from models.roles import grants, sis_roles

    with session() as s:
        config = load_config(session=s)
        data = {
            "permitted_roles": config.permitted_roles,
            "grants": [{"staff": g.staff_sis_id, "role": g.role} for g in grants(session=s)],
            "dynamic": {name: f.describe() for name, f in dynamic_roles(session=s).items()},
            "from_sis": sis_roles(session=s),
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
    create: Annotated[
        bool,
        typer.Option(
            "--create",
            help="The role is new: grant it although nobody holds it and it is not permitted.",
        ),
    ] = False,
    json_out: JsonOpt = False,
) -> None:
    """Grant a static role to a staff member (survives every sync).

    A role nobody holds and no configuration names is refused as a likely typo, with the
    closest known names; pass --create to start a new role.
    """
    from domain.roles import normalize_role
    from models.campaigns import staff_by_sis_id
    from models.config import load_config
    from models.roles import grant_role, role_census

    with session() as s:
        if staff_by_sis_id(session=s, sis_id=staff) is None:
            fail(f"no staff member with SIS id {staff!r}", as_json=json_out)
        permitted = load_config(session=s).permitted_roles
        census = role_census(session=s)
        for name in permitted:
            census.add(name)
        name = " ".join(role.split())
        if not name:
            fail("the role name is empty", as_json=json_out, code=2)
        if census.known(name):
            name = census.names[normalize_role(name)]  # the spelling already in use
        elif not create:
            near = census.closest(name)
            hint = f" (did you mean {' or '.join(repr(n) for n in near)}?)" if near else ""
            fail(
                f"unknown role {name!r}{hint}: nobody holds it and permitted_roles does not "
                f"name it; check the spelling, or pass --create to start a new role",
                as_json=json_out,
                code=2,
                known=sorted(census.names.values(), key=str.casefold),
            )
        new = grant_role(session=s, staff_sis_id=staff, role=name, granted_by="cli")
    may_text = normalize_role(name) in {normalize_role(r) for r in permitted}
    note = "" if may_text else " (not a permitted role: its holders may not text yet)"
    emit(
        {"staff": staff, "role": name, "granted": True, "new": new, "permitted": may_text},
        as_json=json_out,
        human=lambda d: f"{staff} {'now holds' if new else 'already held'} {name}{note}",
    )


@roles_app.command("revoke")
def roles_revoke(
    staff: Annotated[str, typer.Argument(help="Staff SIS id.")],
    role: Annotated[str, typer.Argument(help="Role name.")],
    json_out: JsonOpt = False,
) -> None:
    """Revoke a role an admin granted (roles from the SIS extract change in the SIS)."""
    from models.roles import revoke_role

    with session() as s:
        gone = revoke_role(session=s, staff_sis_id=staff, role=role)
    emit(
        {"staff": staff, "role": role, "revoked": gone},
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

    from domain.roles import RoleFilter
    from models.roles import define_dynamic_role

    try:
        spec = RoleFilter(departments=department or [], title_contains=title_contains or [])
    except ValidationError as exc:
        fail(exc.errors()[0]["msg"], as_json=json_out, code=2)
    with session() as s:
        define_dynamic_role(session=s, name=name, spec=spec)
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
    from models.roles import undefine_dynamic_role

    with session() as s:
        gone = undefine_dynamic_role(session=s, name=name)
    emit(
        {"role": name, "removed": gone},
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
