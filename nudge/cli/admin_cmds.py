"""Admin commands over stored data: configuration, phone overrides, sync history."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from nudge.cli.common import JSON_HELP, emit, fail, group, session

config_app = group("Show or change the SMS configuration.")
phones_app = group("Look at a person's numbers; override the SMS choice.")
runs_app = group("Past SIS syncs and their quarantined rows.")

JsonOpt = Annotated[bool, typer.Option("--json", help=JSON_HELP)]


@config_app.command("show")
def config_show(json_out: JsonOpt = False) -> None:
    """Show every configuration key and its value."""
    from models.config import load_config

    with session() as s:
        data = load_config(session=s).model_dump(mode="json")
    emit(data, as_json=json_out, human=_human_config)


def _human_config(d: dict[str, Any]) -> str:
    lines = []
    for key, value in d.items():
        if key == "type_code_map":
            value = ",".join(f"{c}={k}" for c, k in sorted(value.items()))
        elif isinstance(value, list):
            value = ",".join(str(v) for v in value)
        lines.append(f"{key:<26} {value}")
    return "\n".join(lines)


@config_app.command("set")
def config_set(
    key: Annotated[str, typer.Argument(help="Configuration key (see `nudge config show`).")],
    value: Annotated[str, typer.Argument(help="New value, e.g. 08:00-21:00, true, 5000.")],
    json_out: JsonOpt = False,
) -> None:
    """Change one configuration key; a bad key or value is refused with what is allowed."""
    from domain.config import ConfigError, apply_setting
    from models.config import load_config, save_config

    with session() as s:
        try:
            updated = apply_setting(load_config(session=s), key, value)
        except ConfigError as exc:
            fail(str(exc), as_json=json_out, code=2)
        save_config(updated, session=s, actor="cli")
        shown = updated.model_dump(mode="json")[key]
    emit({"key": key, "value": shown}, as_json=json_out, human=lambda d: f"{key} = {d['value']}")


@phones_app.command("show")
def phones_show(
    person: Annotated[str, typer.Argument(help="SIS person id.")],
    reveal: Annotated[bool, typer.Option("--reveal", help="Show full numbers (PII).")] = False,
    json_out: JsonOpt = False,
) -> None:
    """A person's numbers as received and as understood, and which one gets SMS."""
    from sqlmodel import col, select

    from domain.masking import mask_phone
    from models.people import Person, PhoneNumber

    def show(number: str | None) -> str | None:
        return number if reveal or number is None else mask_phone(number)

    with session() as s:
        found = s.exec(select(Person).where(Person.sis_id == person)).first()
        if found is None:
            fail(f"no person with SIS id {person!r}", as_json=json_out)
        phones = s.exec(
            select(PhoneNumber)
            .where(PhoneNumber.person_id == found.id)
            .order_by(col(PhoneNumber.id))
        ).all()
        data = {
            "person_id": found.sis_id,
            "status": found.status,
            "sms_number": show(found.sms_e164),
            "sms_reason": found.sms_reason,
            "phones": [
                {
                    "type_code": p.type_code,
                    "kind": p.kind,
                    "raw": p.raw if reveal else mask_phone(p.raw),
                    "e164": show(p.e164),
                    "line_type": p.line_type,
                    "valid": p.valid,
                    "reason": p.reason,
                    "primary": p.is_primary,
                    "present": p.present,
                    "sms_allowed": p.sms_allowed,
                    "disabled_by_carrier": p.disabled_by_carrier,
                    "carrier_error_code": p.carrier_error_code,
                    "type_mismatch": p.type_mismatch,
                }
                for p in phones
            ],
        }
    emit(data, as_json=json_out, human=_human_phones)


def _human_phones(d: dict[str, Any]) -> str:
    head = f"{d['person_id']} ({d['status']}): SMS number {d['sms_number'] or 'none'}"
    if d["sms_reason"]:
        head += f" — {d['sms_reason']}"
    lines = [head]
    for p in d["phones"]:
        flags = [f for f in ("primary", "type_mismatch", "disabled_by_carrier") if p[f]]
        if p["sms_allowed"] is not None:
            flags.append("override=" + ("allow" if p["sms_allowed"] else "deny"))
        if not p["present"]:
            flags.append("no longer in SIS")
        lines.append(
            f"  {p['type_code']:<6} {p['kind']:<7} {p['e164'] or p['raw']:<16} "
            f"{p['line_type'] or p['reason'] or '':<22} {' '.join(flags)}"
        )
    return "\n".join(lines)


@phones_app.command("override")
def phones_override(
    person: Annotated[str, typer.Argument(help="SIS person id.")],
    number: Annotated[str, typer.Argument(help="The number, in any format the SIS used.")],
    allow: Annotated[bool, typer.Option("--allow", help="Always text this number.")] = False,
    deny: Annotated[bool, typer.Option("--deny", help="Never text this number.")] = False,
    clear: Annotated[bool, typer.Option("--clear", help="Remove the override.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Set the manual ``sms_allowed`` override of one number (survives every sync)."""
    from sqlalchemy import update
    from sqlmodel import select

    from domain.masking import mask_phone
    from domain.phones import parse_phone
    from models.config import load_config
    from models.people import Person, PhoneNumber
    from models.people_sync import refresh_sms_number

    if sum((allow, deny, clear)) != 1:
        fail("choose exactly one of --allow, --deny, --clear", as_json=json_out, code=2)
    value = True if allow else False if deny else None
    with session() as s:
        config = load_config(session=s)
        found = s.exec(select(Person).where(Person.sis_id == person)).first()
        if found is None or found.id is None:
            fail(f"no person with SIS id {person!r}", as_json=json_out)
        parsed = parse_phone(number, default_region=config.default_region)
        target = parsed.e164
        rows = [
            p
            for p in s.exec(select(PhoneNumber).where(PhoneNumber.person_id == found.id)).all()
            if (target and p.e164 == target) or p.raw.strip() == number.strip()
        ]
        if not rows:
            fail(
                f"{person} has no number matching {mask_phone(number)}; "
                f"see `nudge phones show {person}`",
                as_json=json_out,
            )
        s.execute(
            update(PhoneNumber)
            .where(PhoneNumber.id.in_([r.id for r in rows]))  # type: ignore[union-attr]
            .values(sms_allowed=value)
        )
        chosen = refresh_sms_number(session=s, person_id=found.id, config=config)
    emit(
        {
            "person_id": person,
            "rows": len(rows),
            "sms_allowed": value,
            "sms_number": mask_phone(chosen) if chosen else None,
        },
        as_json=json_out,
        human=lambda d: f"override set on {d['rows']} row(s); SMS number now {d['sms_number']}",
    )


@runs_app.command("list")
def runs_list(
    limit: Annotated[int, typer.Option("--limit", help="How many runs.")] = 10,
    json_out: JsonOpt = False,
) -> None:
    """The latest SIS syncs, newest first."""
    from sqlmodel import col, select

    from models.sync import SyncRun

    with session() as s:
        runs = s.exec(select(SyncRun).order_by(col(SyncRun.id).desc()).limit(limit)).all()
        data = {
            "runs": [
                {
                    "id": r.id,
                    "source": r.source,
                    "status": r.status,
                    "started_at": r.started_at,
                    "finished_at": r.finished_at,
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
                f"#{r['id']} {r['status']:<9} {r['started_at']:%Y-%m-%d %H:%M} {r['source']}"
                + (f" — {r['error']}" if r["error"] else "")
                for r in d["runs"]
            )
            or "no syncs yet"
        ),
    )


@runs_app.command("show")
def runs_show(
    run_id: Annotated[int, typer.Argument(help="Sync run id (see `nudge sync-runs list`).")],
    json_out: JsonOpt = False,
) -> None:
    """One sync's figures and every row it quarantined (file, line, reason)."""
    from sqlmodel import col, select

    from models.sync import QuarantinedRow, SyncRun

    with session() as s:
        run = s.get(SyncRun, run_id)
        if run is None:
            fail(f"no sync run #{run_id}", as_json=json_out)
        rows = s.exec(
            select(QuarantinedRow)
            .where(QuarantinedRow.sync_run_id == run_id)
            .order_by(col(QuarantinedRow.file), col(QuarantinedRow.line))
        ).all()
        data = {
            "id": run.id,
            "source": run.source,
            "status": run.status,
            "error": run.error,
            "stats": run.stats,
            "quarantined": [
                {"file": q.file, "line": q.line, "person_id": q.person_sis_id, "reason": q.reason}
                for q in rows
            ],
        }
    emit(
        data,
        as_json=json_out,
        human=lambda d: "\n".join(
            [f"#{d['id']} {d['status']} {d['source']}" + (f" — {d['error']}" if d["error"] else "")]
            + [
                f"  {q['file']}:{q['line']} {q['person_id'] or '-'}: {q['reason']}"
                for q in d["quarantined"]
            ]
        ),
    )


def register(app: typer.Typer) -> None:
    """Add the ``config``, ``phones`` and ``sync-runs`` groups to the main app."""
    app.add_typer(config_app, name="config")
    app.add_typer(phones_app, name="phones")
    app.add_typer(runs_app, name="sync-runs")
