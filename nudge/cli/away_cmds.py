"""``nudge away``: a staff member's away message while they are out.

While a staff member is away, a student who texts them gets the away message once per
absence (a reply from their number, counted against the quota, through the outbox; the
``poll-replies`` deployment sends it, see ``flows/poll_replies.send_away_answers``), and
the staff member's notification emails still go out as usual.

Only typer and the standard library are imported at module level; the database loads
inside the commands. Times are read and shown in the institution's time zone.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Annotated, Any
from zoneinfo import ZoneInfo

import typer

from nudge.cli.common import (
    JSON_HELP,
    actor,
    emit,
    fail,
    group,
    institution_zone,
    local_iso,
    local_time,
    session,
)

if TYPE_CHECKING:
    from models.away import AwayListed, StaffAway

JsonOpt = Annotated[bool, typer.Option("--json", help=JSON_HELP)]

away_app = group(
    "Away messages: while a staff member is away, students who text them get an answer "
    "once per absence."
)


def parse_moment(value: str, zone: str, *, option: str, end_of_day: bool) -> datetime:
    """A ``--from``/``--until`` value in the institution's zone, as UTC: a date
    (``2026-12-05``) is the start of that day, or its end with ``end_of_day``; a date and
    time (``2026-12-05T17:00``) is that moment. Raises ValueError naming the option."""
    tz = ZoneInfo(zone)
    text = value.strip()
    try:
        day = date.fromisoformat(text)
    except ValueError:
        day = None
    if day is not None:
        if end_of_day:
            midnight = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz)
            return (midnight - timedelta(microseconds=1)).astimezone(UTC)
        return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"{option} {value!r} is not a date: use YYYY-MM-DD (or YYYY-MM-DDTHH:MM), in {zone}"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    return moment.astimezone(UTC)


def _absence_dict(listed: AwayListed, zone: str, now: datetime) -> dict[str, Any]:
    away = listed.away
    return {
        "id": away.id,
        "staff_id": listed.staff_sis_id,
        "staff_name": listed.staff_name,
        "starts_at": local_iso(away.starts_at, zone),
        "ends_at": local_iso(away.ends_at, zone),
        "away_now": away.starts_at <= now,
        "message": away.message,
        "created_by": away.created_by,
        "created_at": local_iso(away.created_at, zone),
    }


@away_app.command("set")
def away_set(
    staff: Annotated[str, typer.Argument(help="The staff member's SIS id.")],
    until: Annotated[
        str,
        typer.Option(
            "--until",
            help="Last day away (YYYY-MM-DD, through the end of that day in the "
            "institution's time zone), or a moment (YYYY-MM-DDTHH:MM).",
        ),
    ],
    message: Annotated[
        str,
        typer.Option(
            "--message",
            help="What students who text them get, sent as written (at most 3 SMS segments).",
        ),
    ],
    start: Annotated[
        str | None,
        typer.Option(
            "--from",
            help="First day away (YYYY-MM-DD, from the start of that day), or a moment "
            "(YYYY-MM-DDTHH:MM). Default: now.",
        ),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Set a staff member's away message, from --from (default now) through --until.

    A student who texts them meanwhile gets the message once per absence, from their number
    (opt-out, the monthly quota and quiet hours apply); their notification emails still go
    out. Only texts sent after the message is set are answered. A staff member has one
    absence at a time: a new `set` replaces the one under way or to come.
    """
    from models.away import AwayListed, away_message_problem, set_absence
    from models.people import NoSuchStaff, require_staff
    from models.types import utcnow

    now = utcnow().replace(microsecond=0)  # texts are dated to the second
    with session() as s:
        try:
            person = require_staff(session=s, sis_id=staff)
        except NoSuchStaff as exc:
            fail(str(exc), as_json=json_out, code=2)
        assert person.id is not None  # noqa: S101 - require_staff returns stored rows
        zone = institution_zone(s)
        try:
            ends_at = parse_moment(until, zone, option="--until", end_of_day=True)
            starts_at = (
                now
                if start is None
                else parse_moment(start, zone, option="--from", end_of_day=False)
            )
        except ValueError as exc:
            fail(str(exc), as_json=json_out, code=2)
        if ends_at <= now:
            fail(
                f"--until {until} is in the past ({local_time(ends_at, zone)}): the absence "
                "would already be over",
                as_json=json_out,
                code=2,
            )
        if ends_at <= starts_at:
            fail(
                f"--until {until} ({local_time(ends_at, zone)}) is not after --from {start} "
                f"({local_time(starts_at, zone)})",
                as_json=json_out,
                code=2,
            )
        problem = away_message_problem(message)
        if problem is not None:
            fail(problem, as_json=json_out, code=2)
        away, replaced = set_absence(
            session=s,
            staff_person_id=person.id,
            starts_at=starts_at,
            ends_at=ends_at,
            message=message,
            created_by=actor(),
            now=now,
        )
        listed = AwayListed(away, person.sis_id, person.display_name)
        data = _absence_dict(listed, zone, now) | {
            "replaced": [_replaced(a, zone) for a in replaced]
        }
    emit(data, as_json=json_out, human=lambda d: _human_set(d, zone))


def _replaced(away: StaffAway, zone: str) -> dict[str, Any]:
    return {
        "id": away.id,
        "starts_at": local_iso(away.starts_at, zone),
        "ends_at": local_iso(away.ends_at, zone),
    }


def _human_set(d: dict[str, Any], zone: str) -> str:
    lines = [
        f"{d['staff_id']} ({d['staff_name']}) is away from {local_time(d['starts_at'], zone)} "
        f"through {local_time(d['ends_at'], zone)}.",
        "Students who text them get, once per absence:",
        f"    {d['message']}",
    ]
    for old in d["replaced"]:
        lines.append(
            f"This replaces the absence from {local_time(old['starts_at'], zone)} through "
            f"{local_time(old['ends_at'], zone)}."
        )
    return "\n".join(lines)


@away_app.command("list")
def away_list(json_out: JsonOpt = False) -> None:
    """Staff members away now or soon, with their away messages (soonest end first)."""
    from models.away import current_absences
    from models.types import utcnow

    now = utcnow()
    with session() as s:
        zone = institution_zone(s)
        rows = [_absence_dict(a, zone, now) for a in current_absences(session=s, now=now)]
    emit({"absences": rows}, as_json=json_out, human=lambda d: _human_list(d, zone))


def _human_list(d: dict[str, Any], zone: str) -> str:
    if not d["absences"]:
        return "nobody is away"
    lines = []
    for a in d["absences"]:
        when = "away now" if a["away_now"] else "upcoming"
        lines.append(
            f"{a['staff_id']} ({a['staff_name']}): {local_time(a['starts_at'], zone)} "
            f"through {local_time(a['ends_at'], zone)} ({when})\n    {a['message']}"
        )
    return "\n".join(lines)


@away_app.command("clear")
def away_clear(
    staff: Annotated[str, typer.Argument(help="The staff member's SIS id.")],
    json_out: JsonOpt = False,
) -> None:
    """End a staff member's absence now (and drop one to come): students who text them
    from now on get no away message."""
    from models.away import clear_absences, current_absences
    from models.people import NoSuchStaff, require_staff
    from models.types import utcnow

    now = utcnow()
    with session() as s:
        try:
            person = require_staff(session=s, sis_id=staff)
        except NoSuchStaff as exc:
            fail(str(exc), as_json=json_out, code=2)
        assert person.id is not None  # noqa: S101 - require_staff returns stored rows
        cleared = len(current_absences(session=s, now=now, staff_person_id=person.id))
        clear_absences(session=s, staff_person_id=person.id, now=now)
    emit(
        {"staff_id": staff, "cleared": cleared},
        as_json=json_out,
        human=lambda d: (
            f"{staff} is back: away message cleared" if cleared else f"{staff} had no away message"
        ),
    )


def register(app: typer.Typer) -> None:
    """Add the ``away`` group (``set``, ``list``, ``clear``) to the main app."""
    app.add_typer(away_app, name="away")
