"""The ``staff`` group (``staff stats``: who texted, who was answered and how fast) and
``nudge digest`` (the weekly outreach digest, run once)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from nudge.cli.common import JSON_HELP, emit, group, institution_zone, local_iso, session, settings

JsonOpt = Annotated[bool, typer.Option("--json", help=JSON_HELP)]

staff_app = group("How staff members text and answer students.")


@staff_app.command("stats")
def staff_stats_cmd(
    days: Annotated[
        int, typer.Option("--days", min=1, help="How many days back from now to look.")
    ] = 7,
    json_out: JsonOpt = False,
) -> None:
    """Per staff member: texts sent, replies received (from how many students), how many
    are unanswered, the median time to answer, and the share answered within one business
    day (same local time on the next weekday, in the institution's time zone)."""
    from datetime import timedelta

    from models.outcomes import staff_stats
    from models.types import utcnow

    now = utcnow()
    since = now - timedelta(days=days)
    with session() as s:
        zone = institution_zone(s)
        rows = staff_stats(session=s, since=since, now=now)
    data = {
        "since": local_iso(since, zone),
        "until": local_iso(now, zone),
        "days": days,
        "zone": zone,
        "staff": [r.as_dict() for r in rows],
    }
    emit(data, as_json=json_out, human=_human_staff)


def _figure(value: float | None, suffix: str = "") -> str:
    return "-" if value is None else f"{value:.1f}{suffix}"


def _human_staff(d: dict[str, Any]) -> str:
    if not d["staff"]:
        return f"no staff member texted or heard from a student in the last {d['days']} day(s)"
    head = (
        f"{'staff member':<28} {'texts':>6} {'replies':>8} {'students':>9} {'unanswered':>11} "
        f"{'median answer':>14} {'within 1 business day':>22}"
    )
    lines = [f"last {d['days']} day(s), since {d['since']}", head]
    for r in d["staff"]:
        who = f"{r['name']} ({r['staff_id']})"
        lines.append(
            f"{who[:28]:<28} {r['texts_sent']:>6} {r['replies']:>8} {r['students_replied']:>9} "
            f"{r['unanswered']:>11} {_figure(r['median_answer_minutes'], ' min'):>14} "
            f"{_figure(r['answered_within_business_day_pct'], '%'):>22}"
        )
    return "\n".join(lines)


def digest(json_out: JsonOpt = False) -> None:
    """Write the weekly outreach digest now: the last 7 days' campaigns with their
    outcomes and staff answers, as a page under NUDGE_REPORT_DIR/outreach, emailed once per
    week to NUDGE_ALERT_EMAILS (the deployment ``outreach-digest`` runs it on Mondays)."""
    from flows.outreach_digest import run_digest

    emit(run_digest(settings()), as_json=json_out, human=_human_digest)


def _human_digest(d: dict[str, Any]) -> str:
    t = d["totals"]
    lines = [
        f"outreach digest of the {d['days']} days to {d['until'][:10]}: "
        f"{t['campaigns']} campaign(s), "
        f"{t['recipients']} students messaged, replied {_figure(t['reply_pct'], '%')}, "
        f"opted out {_figure(t['opt_out_pct'], '%')}",
        f"  page: {d['page']}",
        f"  emails: {d['emails_queued']} queued, {d['emails_sent']} sent",
    ]
    lines += [f"  email problem: {e}" for e in d["email_errors"]]
    return "\n".join(lines)


def register(app: typer.Typer) -> None:
    """Add the ``staff`` group and ``digest`` to the main app."""
    app.add_typer(staff_app, name="staff")
    app.command("digest")(digest)
