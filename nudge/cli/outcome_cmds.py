"""``nudge campaigns outcome``: compare a campaign's messaged students with its held-out ones.

Registered on the ``campaigns`` group of :mod:`nudge.cli.campaign_cmds` when this module is
imported (``nudge.cli.main`` does). Only typer is imported at module level.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from nudge.cli.campaign_cmds import campaigns_app
from nudge.cli.common import (
    JSON_HELP,
    emit,
    fail,
    institution_zone,
    local_iso,
    local_time,
    session,
    settings,
)

JsonOpt = Annotated[bool, typer.Option("--json", help=JSON_HELP)]


@campaigns_app.command("outcome")
def campaigns_outcome(
    campaign_id: Annotated[int, typer.Argument(help="A campaign sent with a holdout.")],
    field: Annotated[
        str,
        typer.Option(
            "--field",
            metavar="status|tags|program",
            help="The student record field to look at, as the latest SIS sync left it.",
        ),
    ],
    value: Annotated[
        str,
        typer.Option(
            "--value",
            help="The value to count (e.g. inactive, registered-spring, Nursing; tags: one "
            "tag); compared case-insensitively.",
        ),
    ],
    after: Annotated[
        int | None,
        typer.Option(
            "--after",
            metavar="DAYS",
            help="Refuse unless the campaign was sent at least DAYS days ago.",
        ),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Did the students a campaign messaged end up different from those it held out?

    The share of messaged students (their text was sent or delivered, or their email went)
    whose record now has FIELD = VALUE, against the share of held-out students who have it,
    with the difference's 95% interval (Newcomb, statsmodels) and Fisher's exact p-value.
    Says "too small to tell" when a group has fewer than 30 students, or fewer than 5 with
    or without the value. Exits 2 when the comparison cannot be made.
    """
    from models.types import utcnow
    from nudge import wiring
    from tasks.holdout_outcome import OutcomeRefused, campaign_outcome

    try:
        data = campaign_outcome(
            wiring.engine(settings()),
            campaign_id,
            field=field,
            value=value,
            after_days=after,
            now=utcnow(),
        )
    except OutcomeRefused as exc:
        fail(str(exc), as_json=json_out, code=2)
    with session() as s:
        zone = institution_zone(s)
    data["sent_at"] = local_iso(data["sent_at"], zone)
    data["values_as_of"] = local_iso(data["values_as_of"], zone)
    data["zone"] = zone
    emit(data, as_json=json_out, human=_human_outcome)


def _share(group: dict[str, Any]) -> str:
    share = group["share"]
    pct = "-" if share is None else f"{100 * share:.1f}%"
    return f"{group['with_value']} of {group['students']} ({pct})"


def _human_outcome(d: dict[str, Any]) -> str:
    zone = d["zone"]
    lines = [
        f"campaign {d['campaign_id']}: {d['field']} = {d['value']!r}, "
        f"{d['holdout_pct']:g}% held out (seed {d['holdout_seed']})",
        f"  sent       {local_time(d['sent_at'], zone)} ({d['sent_days_ago']} day(s) ago)",
        f"  values as of the SIS sync of {local_time(d['values_as_of'], zone, empty='never')}",
        f"  messaged   {_share(d['messaged'])}",
        f"  held out   {_share(d['held_out'])}",
    ]
    if d["not_reached"]:
        lines.append(f"  of the messaged, not reached: {d['not_reached']} (kept in the group)")
    if d["interval"] is not None:
        low, high = d["interval"]
        lines.append(
            f"  difference {100 * d['difference']:+.1f} points, {d['confidence']:.0%} interval "
            f"{100 * low:+.1f} to {100 * high:+.1f}, p = {d['p_value']:.3g}"
        )
    lines.append(f"  {d['summary']}")
    if d.get("warning"):
        lines.append(f"  WARNING: {d['warning']}")
    return "\n".join(lines)
