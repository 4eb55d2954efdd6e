"""Admin commands over stored operations: past SIS syncs (``sync-runs``) and staff members'
sender numbers (``senders``). Configuration is ``config_cmds``, phone overrides
``phones_cmds``."""

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
)

runs_app = group("Past SIS syncs and their quarantined rows.")

JsonOpt = Annotated[bool, typer.Option("--json", help=JSON_HELP)]


@runs_app.command("list")
def runs_list(
    limit: Annotated[int, typer.Option("--limit", help="How many runs.")] = 10,
    json_out: JsonOpt = False,
) -> None:
    """The latest SIS syncs, newest first (times in the institution's time zone)."""
    from models.sync import recent_runs

    with session() as s:
        zone = institution_zone(s)
        runs = recent_runs(session=s, limit=limit)
        data = {
            "runs": [
                {
                    "id": r.id,
                    "source": r.source,
                    "status": r.status,
                    "started_at": local_iso(r.started_at, zone),
                    "finished_at": local_iso(r.finished_at, zone),
                    "error": r.error,
                    "stats": r.stats,
                }
                for r in runs
            ]
        }
    emit(
        data,
        as_json=json_out,
        human=lambda d: (
            "\n".join(
                f"#{r['id']} {r['status']:<9} {local_time(r['started_at'], zone)} {r['source']}"
                + (f" — {r['error']}" if r["error"] else "")
                for r in d["runs"]
            )
            or "no syncs yet"
        ),
    )


#: The figures of a finished sync, in the order ``sync-runs show`` prints them.
_FIGURES: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    (
        "people",
        (
            ("people_created", "created"),
            ("people_updated", "updated"),
            ("people_unchanged", "unchanged"),
            ("people_deactivated", "deactivated"),
        ),
    ),
    (
        "phones",
        (
            ("phones_valid", "valid"),
            ("phones_invalid", "invalid"),
            ("phones_inserted", "added"),
            ("phones_removed", "removed"),
            ("phones_parsed", "parsed this run"),
        ),
    ),
    (
        "students",
        (
            ("sms_eligible", "with an SMS number"),
            ("sms_reachability_lost", "left without one"),
            ("consents_created", "opted in"),
        ),
    ),
    (
        "flagged",
        (
            ("type_mismatches", "landlines coded as mobile"),
            ("shared_numbers", "numbers shared by several students"),
            ("unknown_type_codes", "unknown type codes"),
        ),
    ),
)


@runs_app.command("show")
def runs_show(
    run_id: Annotated[int, typer.Argument(help="Sync run id (see `nudge sync-runs list`).")],
    json_out: JsonOpt = False,
) -> None:
    """One sync's figures (people, phones, SMS reach, flags) and every row it quarantined."""
    from models.sync import get_run, quarantined_rows

    with session() as s:
        zone = institution_zone(s)
        run = get_run(session=s, run_id=run_id)
        if run is None:
            fail(f"no sync run #{run_id}", as_json=json_out)
        rows = quarantined_rows(session=s, run_id=run_id)
        data = {
            "id": run.id,
            "source": run.source,
            "status": run.status,
            "started_at": local_iso(run.started_at, zone),
            "finished_at": local_iso(run.finished_at, zone),
            "error": run.error,
            "forced": bool(run.stats.get("forced")),
            "stats": run.stats,
            "quarantined": [
                {"file": q.file, "line": q.line, "person_id": q.person_sis_id, "reason": q.reason}
                for q in rows
            ],
        }
    emit(data, as_json=json_out, human=lambda d: _human_run(d, zone))


def _human_run(d: dict[str, Any], zone: str) -> str:
    stats = d["stats"]
    head = f"sync #{d['id']} {d['status']}" + (" (forced)" if d["forced"] else "")
    lines = [
        head,
        f"  source:  {d['source']}",
        f"  started: {local_time(d['started_at'], zone)}, "
        f"finished: {local_time(d['finished_at'], zone, empty='not yet')}",
    ]
    if d["error"]:
        lines.append(f"  error:   {d['error']}")
        if d["status"] in ("refused", "failed"):
            lines.append("  nothing was changed by this run")
    for title, figures in _FIGURES:
        shown = [f"{stats[k]} {label}" for k, label in figures if k in stats]
        if shown:
            lines.append(f"  {title + ':':<9} " + ", ".join(shown))
    codes = stats.get("unknown_type_code_counts") or {}
    if codes:
        lines.append(
            "  unknown type codes (mapped to other): "
            + ", ".join(f"{c}×{n}" for c, n in codes.items())
        )
    count = stats.get("rows_quarantined", len(d["quarantined"]))
    lines.append(f"  quarantined rows: {count}")
    lines += [
        f"    {q['file']}:{q['line']} {q['person_id'] or '-'}: {q['reason']}"
        for q in d["quarantined"]
    ]
    return "\n".join(lines)


senders_app = group("Staff members' sender numbers: list them, resolve a conflict.")


@senders_app.command("list")
def senders_list(json_out: JsonOpt = False) -> None:
    """Every staff member's sender number and its state (active, provisioning, conflict)."""
    from domain.masking import mask_phone
    from models.senders import all_senders

    with session() as s:
        zone = institution_zone(s)
        rows = all_senders(session=s)
        data = {
            "senders": [
                {
                    "staff": sis_id,
                    "number": mask_phone(r.e164) if r.e164 else None,
                    "status": r.status,
                    "provider_sid": r.provider_sid,
                    "updated_at": local_iso(r.updated_at, zone),
                }
                for sis_id, r in rows
            ]
        }
        shown = [
            f"{sis_id:<10} {r.status:<12} {mask_phone(r.e164) if r.e164 else '-':<14} "
            f"{r.provider_sid or '-'}  {local_time(r.updated_at, zone)}"
            for sis_id, r in rows
        ]
    emit(data, as_json=json_out, human=lambda d: "\n".join(shown) or "no sender numbers yet")


@senders_app.command("reset")
def senders_reset(
    staff: Annotated[str, typer.Argument(help="Staff SIS id whose sender number is in conflict.")],
    json_out: JsonOpt = False,
) -> None:
    """Forget a staff member's number in conflict (or stuck provisioning) after fixing it in
    the Twilio console: their next text buys a number again. Then `nudge campaigns resume`."""
    from models.people import NoSuchStaff, require_staff
    from models.senders import reset_sender

    with session() as s:
        try:
            person = require_staff(session=s, sis_id=staff)
        except NoSuchStaff as exc:
            fail(str(exc), as_json=json_out)
        assert person.id is not None  # noqa: S101 - require_staff returns stored rows
        removed = reset_sender(session=s, staff_person_id=person.id)
    if removed is None:
        fail(
            f"{staff} has no sender number in conflict or being provisioned (an active number "
            "is never reset here)",
            as_json=json_out,
        )
    emit(
        {"staff": staff, "reset": removed},
        as_json=json_out,
        human=lambda d: f"{staff}: the {removed} sender number was forgotten; resume the campaign",
    )


def register(app: typer.Typer) -> None:
    """Add the ``sync-runs`` and ``senders`` groups to the main app."""
    app.add_typer(runs_app, name="sync-runs")
    app.add_typer(senders_app, name="senders")
