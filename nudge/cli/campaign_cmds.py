"""The ``campaigns`` group: list, show, cancel or resume campaigns."""

from __future__ import annotations

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
    session,
    settings,
)
from nudge.cli.send_cmds import exit_if_pending, pending_lines

JsonOpt = Annotated[bool, typer.Option("--json", help=JSON_HELP)]

campaigns_app = group("Look at, cancel or resume campaigns.")


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
    from nudge import wiring
    from tasks.campaign_progress import campaign_result

    try:
        data = campaign_result(wiring.engine(), campaign_id, mail_from=settings().mail_from)
    except LookupError as exc:
        fail(str(exc), as_json=json_out)
    emit(_described(data), as_json=json_out, human=_human_show)


def _described(data: dict[str, Any]) -> dict[str, Any]:
    """``campaign_result``'s figures with who sent the campaign and when."""
    from models.campaign_views import campaign_view

    with session() as s:
        zone = institution_zone(s)
        view = campaign_view(session=s, campaign_id=int(data["campaign_id"]))
    if view is None:
        return data
    fields = _view_fields(view, zone)
    del fields["id"]
    return {**data, **fields, "template": view.template, "zone": zone}


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
    if result.get("held_out") or d.get("holdout_pct"):
        lines.append(
            f"  held out {result.get('held_out', 0)} ({d.get('holdout_pct') or 0:g}% at random, "
            f"seed {d.get('holdout_seed')}): sent nothing"
        )
    lines += [f"  {k:<24} {v}" for k, v in sorted(result["by_status"].items())]
    lines.append("  why:")
    lines += [f"    {k:<22} {v}" for k, v in sorted(result["by_reason"].items())] or ["    -"]
    lines += pending_lines(d)
    return "\n".join(lines)


@campaigns_app.command("stats")
def campaigns_stats(
    campaign_id: Annotated[int, typer.Argument(help="Campaign id.")],
    json_out: JsonOpt = False,
) -> None:
    """Did the nudge work? Delivery, replies, opt-outs and reply times of a campaign.

    A reply counts when it is threaded to the campaign's text, or reached its sender (by
    text or email) after the student's text and before the sender's next campaign to them;
    STOP, START and HELP are not replies. Delivery is over the SMS handed to Twilio.
    """
    from models.outcomes import campaign_stats

    try:
        with session() as s:
            stats = campaign_stats(session=s, campaign_id=campaign_id)
            zone = institution_zone(s)
    except LookupError as exc:
        fail(str(exc), as_json=json_out, code=2)
    data = {**stats.as_dict(), "first_sent_at": local_iso(stats.first_sent_at, zone)}
    emit(data, as_json=json_out, human=lambda d: _human_stats(d, zone))


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}%"


def _human_stats(d: dict[str, Any], zone: str) -> str:
    failed = ", ".join(f"{code}: {n}" for code, n in d["failed_by_code"].items()) or "-"
    median = d["median_reply_minutes"]
    rows = [
        ("first sent", local_time(d["first_sent_at"], zone)),
        ("recipients", f"{d['recipients']} ({d['held_out']} held out)"),
        ("SMS / email / none", f"{d['sms']} / {d['email']} / {d['undeliverable']}"),
        ("delivered", f"{_pct(d['delivered_pct'])} of {d['sms_handed']} SMS handed to Twilio"),
        ("not delivered", failed),
        ("replied", f"{_pct(d['reply_pct'])} ({d['replied']} students)"),
        ("opted out", f"{_pct(d['opt_out_pct'])} ({d['opted_out']} students)"),
        (
            "median first reply",
            "-"
            if median is None
            else f"{median:.1f} min ({_pct(d['first_reply_within_1h_pct'])} within an hour)",
        ),
    ]
    head = f"campaign {d['campaign_id']} ({d['kind']}, {d['status']}): outcomes"
    return "\n".join([head, *(f"  {name:<20} {value}" for name, value in rows)])


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
    from flows.send_campaign import work
    from nudge import wiring
    from tasks.campaign_progress import campaign_result

    try:
        with session() as s:
            prepare_resume(s, campaign_id)
    except (LookupError, ValueError) as exc:
        fail(str(exc), as_json=json_out)
    work(settings(), campaign_id=campaign_id)
    data = _described(campaign_result(wiring.engine(), campaign_id, mail_from=settings().mail_from))
    emit(data, as_json=json_out, human=_human_show)
    exit_if_pending(data)


def prepare_resume(s: Any, campaign_id: int) -> None:
    """Make a campaign resumable: a stopped one sends again, dead claims are given back."""
    from domain.outbox import RESUMABLE, CampaignStatus
    from models.campaign_lifecycle import campaign_status, resume_campaign
    from models.chunks import free_dead_claims

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


def register(app: typer.Typer) -> None:
    """Add the ``campaigns`` group to the main app."""
    app.add_typer(campaigns_app, name="campaigns")
