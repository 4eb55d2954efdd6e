"""``nudge poll``, ``nudge reply``, ``nudge inbox`` and ``nudge inbox-link``: the replies
side (with the ``consent`` group of :mod:`nudge.cli.consent_cmds`, which :func:`register`
adds beside them).

Only typer (and the standard library) is imported at module level; the database, Prefect and
Twilio load inside the commands. ``inbox`` never imports Prefect.
Numbers are masked in every output (``+1******0123``) unless ``--reveal`` is given.
"""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from nudge.cli import consent_cmds
from nudge.cli.common import (
    JSON_HELP,
    actor,
    emit,
    fail,
    institution_zone,
    local_iso,
    local_time,
    masker,
    prefect_server_configured,
    session,
    settings,
)

JsonOpt = Annotated[bool, typer.Option("--json", help=JSON_HELP)]


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
    sweep: Annotated[
        bool,
        typer.Option(
            "--sweep",
            help="Reconcile instead (what reconcile-replies does): list every message of the "
            "last --hours, store, act on and notify the replies polls missed, once each.",
        ),
    ] = False,
    hours: Annotated[
        float | None,
        typer.Option("--hours", min=0.01, max=744, help="With --sweep: the window (default 2)."),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Poll Twilio once for replies (what the every-minute deployment does).

    Stores new replies, honours STOP/START/HELP, emails staff and refreshes delivery
    statuses. With --sweep, reconciles the last --hours instead (see docs/replies.md).
    """
    use_engine = prefect_server_configured() if engine is None else engine
    if hours is not None and not sweep:
        fail("--hours goes with --sweep", as_json=json_out)
    if sweep:
        _sweep(use_engine, 2.0 if hours is None else hours, json_out)
        return
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


def _sweep(use_engine: bool, hours: float, json_out: bool) -> None:
    if use_engine:
        from flows.reconcile_replies import SweepFailed, reconcile_replies

        try:
            result = reconcile_replies(hours=hours)
        except SweepFailed as exc:
            fail(str(exc), as_json=json_out, code=2)
    else:
        from flows.reconcile_replies import run_sweep

        result = run_sweep(settings(), hours=hours)
    emit(result, as_json=json_out, human=_human_sweep)
    if result.get("errors"):
        raise typer.Exit(2)


def _human_sweep(d: dict[str, Any]) -> str:
    if d.get("skipped"):
        return f"sweep skipped: {d['skipped']}"
    lines = [
        f"swept the last {d['hours']:g} h: listed {d['scanned']} messages, {d['inbound']} "
        f"inbound ({d['already_stored']} already stored, {d['new']} stored now)",
        f"  late (missed by the polls): {d['late_found']}"
        + (
            f", largest lag {d['max_lag_s']} s, median {d['median_lag_s']} s"
            if d["late_found"]
            else ""
        ),
    ]
    if d.get("lag_buckets"):
        lines.append(
            "  lags: " + ", ".join(f"{label}: {n}" for label, n in d["lag_buckets"].items())
        )
    lines.append(
        f"  staff emails sent: {d['notifications_sent']} "
        f"({d.get('replies_notified', 0)} replies; {d.get('pending', 0)} still waiting)"
    )
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
        settings(), sender_id=sender, student_id=student, message=message, created_by=actor()
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
    mark_read: Annotated[
        bool,
        typer.Option(
            "--mark-read",
            help="Mark the --staff member's unread replies read instead of listing: those of "
            "--student, or of the unknown number --from, or all of them.",
        ),
    ] = False,
    student: Annotated[
        str | None,
        typer.Option("--student", help="With --mark-read: this student's replies (SIS id)."),
    ] = None,
    from_number: Annotated[
        str | None,
        typer.Option("--from", help="With --mark-read: this unknown number's replies."),
    ] = None,
    reveal: Annotated[
        bool, typer.Option("--reveal", help="Show unknown senders' full numbers (PII).")
    ] = False,
    json_out: JsonOpt = False,
) -> None:
    """Conversations with replies: those with an unread urgent reply first (marked
    "!! URGENT"), then the most recent first.

    Shows the student (or the unknown number), the staff member, the last reply (texts and
    emails) and how many are unread. With --mark-read, marks replies read instead.
    """
    if mark_read:
        _mark_read(staff, student, from_number, json_out)
        return
    if student is not None or from_number is not None:
        fail("--student and --from go with --mark-read", as_json=json_out, code=2)
    from models.conversations import inbox
    from models.people import NoSuchStaff, require_staff

    mask = masker(reveal)
    with session() as s:
        staff_pk = None
        if staff is not None:
            try:
                staff_pk = require_staff(session=s, sis_id=staff).id
            except NoSuchStaff as exc:
                fail(str(exc), as_json=json_out)
        rows = inbox(session=s, staff_person_id=staff_pk, unread_only=unread, limit=limit)
        zone = institution_zone(s)
    conversations = [c.as_dict(masker=mask) for c in rows]
    for c in conversations:  # in the institution's time zone, with the offset
        c["last_reply_at"] = local_iso(c["last_reply_at"], zone)
    data = {"conversations": conversations, "unread": sum(c.unread for c in rows)}
    emit(data, as_json=json_out, human=lambda d: _human_inbox(d, zone))


def _mark_read(
    staff: str | None, student: str | None, from_number: str | None, json_out: bool
) -> None:
    """``inbox --mark-read``: one student's, one unknown number's or all unread replies of
    one staff member, marked read."""
    from models.conversations import mark_all_read, mark_read, mark_read_from
    from models.people import NoSuchStaff, require_staff
    from models.types import utcnow

    if staff is None:
        fail("--mark-read needs --staff: whose replies to mark read", as_json=json_out, code=2)
    if student is not None and from_number is not None:
        fail("choose one of --student and --from", as_json=json_out, code=2)
    number = None
    with session() as s:
        try:
            staff_pk = require_staff(session=s, sis_id=staff).id
        except NoSuchStaff as exc:
            fail(str(exc), as_json=json_out, code=2)
        assert staff_pk is not None  # noqa: S101 - require_staff returns stored rows
        if student is not None:
            count = mark_read(
                session=s,
                staff_person_id=staff_pk,
                student_person_id=_student_pk(s, student, json_out),
                now=utcnow(),
            )
        elif from_number is not None:
            number = _e164(s, from_number, json_out)
            count = mark_read_from(
                session=s, staff_person_id=staff_pk, from_e164=number, now=utcnow()
            )
        else:
            count = mark_all_read(session=s, staff_person_id=staff_pk, now=utcnow())
    data = {
        "staff": staff,
        "student": student,
        "from": masker(False)(number) if number else None,
        "marked_read": count,
    }
    emit(data, as_json=json_out, human=_human_mark_read)


def _human_mark_read(d: dict[str, Any]) -> str:
    which = d["student"] or d["from"]
    whose = f"from {which} to {d['staff']}" if which else f"to {d['staff']}"
    n = d["marked_read"]
    return f"marked {n} unread {'reply' if n == 1 else 'replies'} {whose} read"


def _student_pk(s: Any, sis_id: str, json_out: bool) -> int:
    """The person id of the student with this SIS id, or exit 2 naming it."""
    from models.people import person_by_sis_id

    found = person_by_sis_id(session=s, sis_id=sis_id)
    if found is None or found.id is None or found.role != "student":
        fail(f"no student with SIS id {sis_id!r}", as_json=json_out, code=2)
    return found.id


def _e164(s: Any, number: str, json_out: bool) -> str:
    """``number`` in E.164 (as replies are stored), or exit 2 when it is not a number."""
    from domain.masking import mask_phone
    from domain.phones import parse_phone
    from models.config import load_config

    parsed = parse_phone(number, default_region=load_config(session=s).default_region)
    if parsed.e164 is None:
        fail(
            f"{mask_phone(number)} is not a valid phone number ({parsed.reason})",
            as_json=json_out,
            code=2,
        )
    return parsed.e164


def _human_inbox(d: dict[str, Any], zone: str) -> str:
    if not d["conversations"]:
        return "no conversations"
    lines = []
    for c in d["conversations"]:
        who = f"{c['student_name']} ({c['student_id']})" if c["student_id"] else c["from"]
        staff = c["staff_id"] or "(not a staff number)"
        flag = "  [flagged]" if c["flagged"] else ""
        mark = f"!! URGENT ({c['urgent']} unread) " if c.get("urgent") else ""
        text = c["last_reply"].replace("\n", " ")
        text = text if len(text) <= 70 else text[:67] + "..."
        how = " by email" if c.get("last_channel") == "email" else ""
        lines.append(
            f"{mark}{who} -> {staff}: {c['unread']} unread of {c['replies']}, "
            f"last {local_time(c['last_reply_at'], zone)}{how}{flag}\n    {text}"
        )
    return "\n".join(lines)


def inbox_link(
    from_number: Annotated[
        str,
        typer.Option("--from", help="The unknown number (as the inbox shows it with --reveal)."),
    ],
    student: Annotated[str, typer.Option("--student", help="The student it is (SIS id).")],
    json_out: JsonOpt = False,
) -> None:
    """Give an unknown number's replies to a student: they join the student's conversation.

    Only messages matched to nobody move. The number's future texts are matched to the
    student once it is one of theirs (nudge phones override STUDENT NUMBER --allow).
    """
    from models.conversations import link_sender

    with session() as s:
        student_pk = _student_pk(s, student, json_out)
        number = _e164(s, from_number, json_out)
        moved = link_sender(session=s, from_e164=number, student_person_id=student_pk)
    data = {"from": masker(False)(number), "student": student, "linked": moved}
    emit(data, as_json=json_out, human=_human_link)


def _human_link(d: dict[str, Any]) -> str:
    n = d["linked"]
    if not n:
        return f"no messages from {d['from']} without a student: nothing linked"
    return (
        f"linked {n} {'message' if n == 1 else 'messages'} from {d['from']} to {d['student']} "
        f"(see nudge conversation {d['student']})"
    )


def register(app: typer.Typer) -> None:
    """Add ``poll``, ``reply``, ``inbox``, ``inbox-link`` and the ``consent`` group to the
    main app."""
    app.command("poll")(poll)
    app.command("reply")(reply)
    app.command("inbox")(inbox_cmd)
    app.command("inbox-link")(inbox_link)
    consent_cmds.register(app)
