"""``nudge conversation``: a whole conversation with one student, both ways, oldest first.

Texts and emails, what staff sent (campaigns, replies, opt-in notices, nudge's keyword
answers) and what the student sent (replies and keywords), each with its status and error
(:mod:`models.threads`). Times are in the institution's zone.

Only typer (and the standard library) is imported at module level; the database loads
inside the command.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from nudge.cli.common import JSON_HELP, emit, fail, institution_zone, local_time, session

JsonOpt = Annotated[bool, typer.Option("--json", help=JSON_HELP)]

#: How each channel is shown (with its name: the icon alone may not render).
ICONS = {"sms": "📱", "email": "✉", "none": "⊘"}
#: Each direction, between the staff member (left) and the student (right).
ARROWS = {"out": "→", "in": "←"}
#: Kinds the line names (the rest are plain texts and replies).
_KIND_LABELS = {
    "opt_in_notice": "opt-in notice",
    "keyword_reply": "keyword answer",
    "urgent_reply": "crisis-line answer",
    "stop": "STOP",
    "start": "START",
    "help": "HELP",
}


def conversation_cmd(
    student: Annotated[str, typer.Argument(help="The student's SIS id.")],
    staff: Annotated[
        str | None,
        typer.Option("--staff", help="Only this staff member's side (SIS id)."),
    ] = None,
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, help="Only the last N messages.")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Every text and email between staff and one student, oldest first.

    Shows when, how (SMS or email), which way, which staff member, the status (and why a
    message did not go) and the text. With --staff, only that staff member's conversation.
    """
    from models.people import NoSuchStaff, person_by_sis_id, require_staff
    from models.threads import thread

    with session() as s:
        found = person_by_sis_id(session=s, sis_id=student)
        if found is None or found.id is None or found.role != "student":
            fail(f"no student with SIS id {student!r}", as_json=json_out, code=2)
        staff_data: dict[str, Any] | None = None
        staff_pk = None
        if staff is not None:
            try:
                member = require_staff(session=s, sis_id=staff)
            except NoSuchStaff as exc:
                fail(str(exc), as_json=json_out, code=2)
            staff_pk = member.id
            staff_data = {"id": member.sis_id, "name": member.display_name}
        items = thread(session=s, student_person_id=found.id, staff_person_id=staff_pk, limit=limit)
        zone = institution_zone(s)
        student_data = {"id": found.sis_id, "name": found.display_name}
    data = {
        "student": student_data,
        "staff": staff_data,
        "messages": [item.as_dict(zone) for item in items],
    }
    emit(data, as_json=json_out, human=lambda d: _human(d, zone))


def _human(d: dict[str, Any], zone: str) -> str:
    student = d["student"]
    who = f"{student['name']} ({student['id']})"
    if d["staff"] is not None:
        who += f" and {d['staff']['name']} ({d['staff']['id']})"
    messages = d["messages"]
    if not messages:
        return f"no messages between {who}" if d["staff"] else f"no messages with {who}"
    count = len(messages)
    lines = [f"{who}: {count} message{'s' if count != 1 else ''}, oldest first"]
    for m in messages:
        channel = f"{ICONS.get(m['channel'], '?')} {m['channel']}"
        staff = m["staff_name"] or "(no staff member)"
        status = m["status"]
        if m["error"]:
            status += f" ({m['error']})"
        notes = [_KIND_LABELS[m["kind"]]] if m["kind"] in _KIND_LABELS else []
        if m["fallback"]:
            notes.append("instead of a text")
        extra = f"  [{', '.join(notes)}]" if notes else ""
        lines.append(
            f"{local_time(m['at'], zone)}  {channel}  {staff} {ARROWS[m['direction']]} "
            f"{student['name']}  {status}{extra}"
        )
        if m["subject"]:
            lines.append(f"    Subject: {m['subject']}")
        lines += [f"    {line}" if line.strip() else "" for line in m["body"].splitlines()]
    return "\n".join(lines)


def register(app: typer.Typer) -> None:
    """Add ``conversation`` to the main app."""
    app.command("conversation")(conversation_cmd)
