"""``nudge poll``, ``nudge reply``, ``nudge inbox`` and ``nudge consent``: the replies side.

Only typer (and the standard library) is imported at module level; the database, Prefect and
Twilio load inside the commands. ``inbox`` and ``consent`` never import Prefect.
Numbers are masked in every output (``+1******0123``) unless ``--reveal`` is given.
"""

from __future__ import annotations

import getpass
import sys
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

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

if TYPE_CHECKING:
    from sqlmodel import Session

consent_app = group("Who may be texted: the audit trail, admin changes, and review pauses.")

JsonOpt = Annotated[bool, typer.Option("--json", help=JSON_HELP)]
RevealOpt = Annotated[bool, typer.Option("--reveal", help="Show full phone numbers (PII).")]
TargetArg = Annotated[
    str, typer.Argument(metavar="NUMBER_OR_ID", help="A phone number, or a person's SIS id.")
]
ReasonOpt = Annotated[str, typer.Option("--reason", help="Why (kept in the audit trail).")]


class AdminStatus(StrEnum):
    """The consent states an admin may set."""

    opted_in = "opted_in"
    opted_out = "opted_out"


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no user name in some containers
        return "cli"


def _masker(reveal: bool) -> Any:
    from domain.masking import mask_phone

    return (lambda n: n) if reveal else mask_phone


# --- poll ------------------------------------------------------------------------------


def poll(
    engine: Annotated[
        bool | None,
        typer.Option(
            "--engine/--no-engine",
            help="Run through Prefect (tracked in the UI). Default: only when PREFECT_API_URL "
            "is set, so the command never waits for a temporary Prefect server.",
        ),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Poll Twilio once for replies (what the every-minute deployment does).

    Stores new replies, honours STOP/START/HELP, emails staff and refreshes delivery
    statuses.
    """
    use_engine = prefect_server_configured() if engine is None else engine
    if use_engine:
        from flows.poll_replies import PollFailed, poll_replies

        try:
            result = poll_replies()
        except PollFailed as exc:
            fail(str(exc), as_json=json_out, code=2)
    else:
        from flows.poll_replies import run_poll

        result = run_poll(settings())
    emit(result, as_json=json_out, human=_human_poll)
    if result.get("errors"):
        raise typer.Exit(2)


def _human_poll(d: dict[str, Any]) -> str:
    if d.get("skipped"):
        return f"poll skipped: {d['skipped']}"
    lines = [
        f"fetched {d['fetched']} inbound ({d['new']} new, {d['duplicates']} already stored)",
        f"  replies: {d['replies']} ({d['flagged']} flagged for review), "
        f"unknown senders: {d['unknown_senders']}",
        f"  keywords: {d['opt_outs']} STOP, {d['opt_ins']} START, {d['help']} HELP",
        f"  staff emails sent: {d['notifications_sent']} "
        f"({d.get('replies_notified', 0)} replies; {d.get('pending', 0)} still waiting)",
        f"  delivery statuses updated: {d['statuses_updated']} "
        f"({d.get('numbers_disabled', 0)} numbers disabled)",
    ]
    for error in d.get("errors", []):
        lines.append(f"  error: {error}")
    return "\n".join(lines)


# --- reply -----------------------------------------------------------------------------


def reply(
    sender: Annotated[str, typer.Option("--sender", help="Your staff SIS id.")],
    student: Annotated[str, typer.Option("--student", help="The student's SIS id.")],
    message: Annotated[str, typer.Option("--message", help="The text, sent as written.")],
    json_out: JsonOpt = False,
) -> None:
    """Text one student from your number.

    Inside an existing conversation any staff member may reply; opt-out, the monthly quota
    and quiet hours apply as to every text.
    """
    from flows.poll_replies import run_reply

    result = run_reply(
        settings(), sender_id=sender, student_id=student, message=message, created_by=_actor()
    )
    if result.get("status") == "refused":
        if json_out:
            emit(result, as_json=True, human=str)
        else:
            sys.stderr.write(f"error: {result.get('refused_reason')}\n")
        raise typer.Exit(3)
    emit(result, as_json=json_out, human=_human_reply)


def _human_reply(d: dict[str, Any]) -> str:
    if d.get("sms"):
        how = "by SMS" if not d.get("deferred") else "by SMS, deferred by quiet hours"
    elif d.get("email"):
        reasons = ", ".join(k for k in d.get("by_reason", {}) if k != "sms_ok")
        how = f"by email ({reasons})"
    else:
        how = "nowhere: the student has no SMS number and no email address"
    read = f"; {d['marked_read']} replies marked read" if d.get("marked_read") else ""
    return f"reply #{d['campaign_id']} sent {how}{read}"


# --- inbox -----------------------------------------------------------------------------


def inbox_cmd(
    staff: Annotated[
        str | None, typer.Option("--staff", help="Only this staff member's (SIS id).")
    ] = None,
    unread: Annotated[
        bool, typer.Option("--unread", help="Only conversations with unread replies.")
    ] = False,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many.")] = 50,
    json_out: JsonOpt = False,
) -> None:
    """Conversations with replies, the most recent first.

    Shows the student, the staff member, the last reply and how many are unread.
    """
    from models.campaigns import staff_by_sis_id
    from models.inbound import inbox

    mask = _masker(False)
    with session() as s:
        staff_pk = None
        if staff is not None:
            found = staff_by_sis_id(session=s, sis_id=staff)
            if found is None:
                fail(f"no staff member with SIS id {staff!r}", as_json=json_out)
            staff_pk = found.id
        rows = inbox(session=s, staff_person_id=staff_pk, unread_only=unread, limit=limit)
        zone = institution_zone(s)
    conversations = [c.as_dict(masker=mask) for c in rows]
    for c in conversations:  # in the institution's time zone, with the offset
        c["last_reply_at"] = local_iso(c["last_reply_at"], zone)
    data = {"conversations": conversations, "unread": sum(c.unread for c in rows)}
    emit(data, as_json=json_out, human=lambda d: _human_inbox(d, zone))


def _human_inbox(d: dict[str, Any], zone: str) -> str:
    if not d["conversations"]:
        return "no conversations"
    lines = []
    for c in d["conversations"]:
        who = f"{c['student_name']} ({c['student_id']})" if c["student_id"] else c["from"]
        staff = c["staff_id"] or "(not a staff number)"
        flag = "  [flagged]" if c["flagged"] else ""
        text = c["last_reply"].replace("\n", " ")
        text = text if len(text) <= 70 else text[:67] + "..."
        lines.append(
            f"{who} -> {staff}: {c['unread']} unread of {c['replies']}, "
            f"last {local_time(c['last_reply_at'], zone)}{flag}\n    {text}"
        )
    return "\n".join(lines)


# --- consent -----------------------------------------------------------------------------


def _target(s: Session, number_or_id: str, *, as_json: bool) -> Any:
    from domain.phones import parse_phone
    from models.config import load_config
    from models.inbound import consent_target

    region = load_config(session=s).default_region
    parsed = parse_phone(number_or_id, default_region=region)
    target = consent_target(session=s, number_or_id=number_or_id, e164=parsed.e164)
    if not target.numbers:
        fail(
            f"{number_or_id!r} is neither a valid phone number nor the SIS id of someone "
            "with a number",
            as_json=as_json,
        )
    return target


def _sender(s: Session, number: str | None, *, as_json: bool) -> str:
    if number is None:
        return ""
    from domain.phones import parse_phone
    from models.config import load_config

    parsed = parse_phone(number, default_region=load_config(session=s).default_region)
    if parsed.e164 is None:
        fail(f"--sender {number!r} is not a valid phone number", as_json=as_json)
    return parsed.e164


@consent_app.command("show")
def consent_show(
    number_or_id: TargetArg, reveal: RevealOpt = False, json_out: JsonOpt = False
) -> None:
    """Show current consent and every change to it.

    Each change has its status, source, scope, reason, who, when, and the reply that
    caused it.
    """
    from models.inbound import consent_trail, current_consents

    show = _masker(reveal)

    def scope(sender: str) -> str:
        return "institution" if not sender else f"sender {show(sender)}"

    with session() as s:
        target = _target(s, number_or_id, as_json=json_out)
        current = current_consents(session=s, numbers=target.numbers)
        events = consent_trail(session=s, numbers=target.numbers)
        zone = institution_zone(s)
        data = {
            "person": {"id": target.person_sis_id, "name": target.person_name}
            if target.person_sis_id
            else None,
            "numbers": [show(n) for n in target.numbers],
            "current": [
                {
                    "number": show(c.e164),
                    "scope": scope(c.sender_e164),
                    "status": c.status,
                    "source": c.source,
                    "updated_at": local_iso(c.updated_at, zone),
                }
                for c in current
            ],
            "events": [
                {
                    "at": local_iso(e.at, zone),
                    "number": show(e.e164),
                    "scope": scope(e.sender_e164),
                    "status": e.status,
                    "source": e.source,
                    "reason": e.reason,
                    "actor": e.actor,
                    "inbound_sid": e.inbound_sid,
                }
                for e in events
            ],
        }
    emit(data, as_json=json_out, human=lambda d: _human_consent(d, zone))


def _human_consent(d: dict[str, Any], zone: str) -> str:
    who = f"{d['person']['name']} ({d['person']['id']})" if d["person"] else "unknown person"
    lines = [f"{who}: {', '.join(d['numbers'])}", "current:"]
    lines += [
        f"  {c['number']} {c['scope']}: {c['status']} ({c['source']})" for c in d["current"]
    ] or ["  nothing recorded (auto opt-in rules apply)"]
    lines.append("history:")
    for e in d["events"]:
        extra = f" [reply {e['inbound_sid']}]" if e["inbound_sid"] else ""
        lines.append(
            f"  {local_time(e['at'], zone)} {e['number']} {e['scope']}: {e['status']} "
            f"by {e['source']} ({e['actor'] or '-'}): {e['reason'] or ''}{extra}"
        )
    return "\n".join(lines)


@consent_app.command("set")
def consent_set(
    number_or_id: TargetArg,
    status: Annotated[AdminStatus, typer.Option("--status", help="opted_in or opted_out.")],
    reason: ReasonOpt,
    sender: Annotated[
        str | None,
        typer.Option(
            "--sender",
            help="Only for this sender number (per-sender scope); default: institution-wide.",
        ),
    ] = None,
    reveal: RevealOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Set consent as an admin, with a reason.

    Applies to every number of a person, or to one number (source ``admin``).
    """
    from models.consent import set_consent
    from models.types import utcnow

    show = _masker(reveal)
    actor = _actor()
    with session() as s:
        target = _target(s, number_or_id, as_json=json_out)
        scope = _sender(s, sender, as_json=json_out)
        now = utcnow()
        for number in target.numbers:
            set_consent(
                session=s,
                e164=number,
                status=status.value,
                source="admin",
                sender_e164=scope,
                reason=reason,
                actor=actor,
                at=now,
            )
        data = {
            "changed": [
                {
                    "number": show(n),
                    "status": status.value,
                    "scope": "institution" if not scope else f"sender {show(scope)}",
                }
                for n in target.numbers
            ]
        }
    emit(
        data,
        as_json=json_out,
        human=lambda d: "\n".join(
            f"{c['number']} {c['scope']}: {c['status']}" for c in d["changed"]
        ),
    )


@consent_app.command("resolve")
def consent_resolve(
    number_or_id: TargetArg,
    reason: ReasonOpt,
    opt_out: Annotated[
        bool,
        typer.Option(
            "--opt-out",
            help="The reply was a revocation: opt the number out "
            "instead of restoring its previous state.",
        ),
    ] = False,
    reveal: RevealOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Clear a review pause set by a flagged reply.

    Texts resume in the state before the pause; with --opt-out the number is opted out.
    """
    from models.inbound import resolve_review
    from models.types import utcnow

    show = _masker(reveal)
    actor = _actor()
    with session() as s:
        target = _target(s, number_or_id, as_json=json_out)
        now = utcnow()
        changed = [
            (number, row)
            for number in target.numbers
            for row in resolve_review(
                session=s, e164=number, reason=reason, actor=actor, now=now, opt_out=opt_out
            )
        ]
        if not changed:
            fail(f"nothing is paused for review for {number_or_id!r}", as_json=json_out)
        data = {
            "resolved": [
                {
                    "number": show(n),
                    "status": row.status,
                    "scope": "institution"
                    if not row.sender_e164
                    else f"sender {show(row.sender_e164)}",
                }
                for n, row in changed
            ]
        }
    emit(
        data,
        as_json=json_out,
        human=lambda d: "\n".join(
            f"{c['number']} {c['scope']}: {c['status']} (review resolved)" for c in d["resolved"]
        ),
    )


def register(app: typer.Typer) -> None:
    """Add ``poll``, ``reply``, ``inbox`` and the ``consent`` group to the main app."""
    app.command("poll")(poll)
    app.command("reply")(reply)
    app.command("inbox")(inbox_cmd)
    app.add_typer(consent_app, name="consent")
