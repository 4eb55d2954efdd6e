"""Admin commands over stored data: configuration, phone overrides, sync history."""

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
    warn,
)

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
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Set permitted_roles even if nobody holds one of them yet (warns instead).",
        ),
    ] = False,
    json_out: JsonOpt = False,
) -> None:
    """Change one configuration key; a bad key or value is refused with what is allowed.

    ``permitted_roles`` naming a role no active staff member holds is refused (nobody
    could text with it): grant or define the role first, or pass --force.
    """
    from domain.config import ConfigError, apply_setting
    from models.config import load_config, save_config

    warnings: list[str] = []
    with session() as s:
        try:
            updated = apply_setting(load_config(session=s), key, value)
        except ConfigError as exc:
            fail(str(exc), as_json=json_out, code=2)
        if key == "permitted_roles":
            problem = _unheld_roles(s, updated.permitted_roles)
            if problem and not force:
                fail(f"{problem[0]}: {problem[1]}", as_json=json_out, code=2)
            if problem:
                warnings.append(problem[0])
                warn(problem[0])
        save_config(updated, session=s, actor="cli")
        shown = updated.model_dump(mode="json")[key]
    data: dict[str, Any] = {"key": key, "value": shown}
    if warnings:
        data["warnings"] = warnings
    emit(data, as_json=json_out, human=lambda d: f"{key} = {_shown(d['value'])}")


def _shown(value: Any) -> str:
    return ",".join(str(v) for v in value) if isinstance(value, list) else str(value)


def _unheld_roles(s: Any, roles: list[str]) -> tuple[str, str] | None:
    """What is wrong with ``roles`` as the permitted roles, and the remedy (None: every
    one of them is held by an active staff member)."""
    from models.roles import role_census

    force = "pass --force to set it anyway"
    if not roles:
        return "permitted_roles is empty, so nobody could start a campaign", force
    census = role_census(session=s)
    unheld = [r for r in roles if not census.held(r)]
    if not unheld:
        return None
    named = []
    for role in unheld:
        near = [n for n in census.closest(role) if census.held(n)]
        named.append(f"{role!r}" + (f" (did you mean {near[0]!r}?)" if near else ""))
    so = "nobody could start a campaign" if len(unheld) == len(roles) else "it lets nobody text"
    return (
        f"no active staff member holds {', '.join(named)}, so {so}",
        "grant it first (`nudge roles grant STAFF ROLE --create` or `nudge roles define`), "
        f"or {force}",
    )


@phones_app.command("show")
def phones_show(
    person: Annotated[str, typer.Argument(help="SIS person id.")],
    reveal: Annotated[bool, typer.Option("--reveal", help="Show full numbers (PII).")] = False,
    json_out: JsonOpt = False,
) -> None:
    """A person's numbers as received and as understood, and which one gets SMS."""
    from domain.masking import mask_phone
    from models.people import person_by_sis_id, phones_of

    def show(number: str | None) -> str | None:
        return number if reveal or number is None else mask_phone(number)

    with session() as s:
        found = person_by_sis_id(session=s, sis_id=person)
        if found is None or found.id is None:
            fail(f"no person with SIS id {person!r}", as_json=json_out)
        phones = phones_of(session=s, person_id=found.id)
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
    allow: Annotated[
        bool,
        typer.Option(
            "--allow", help="Always text this number (added as a manual number if not on file)."
        ),
    ] = False,
    deny: Annotated[bool, typer.Option("--deny", help="Never text this number.")] = False,
    clear: Annotated[
        bool,
        typer.Option("--clear", help="Remove the override (and a number added by --allow)."),
    ] = False,
    json_out: JsonOpt = False,
) -> None:
    """Set the manual ``sms_allowed`` override of one number (survives every sync).

    With --allow, a number the SIS does not list (or no longer lists) is added as a manual
    number (type code OVERRIDE) and texted from now on.
    """
    from domain.masking import mask_phone
    from domain.phones import MANUAL_TYPE_CODE, parse_phone
    from models.config import load_config
    from models.people import (
        add_manual_phone,
        person_by_sis_id,
        phones_of,
        remove_manual_phone,
        set_sms_override,
    )
    from models.people_sync import refresh_sms_number

    if sum((allow, deny, clear)) != 1:
        fail("choose exactly one of --allow, --deny, --clear", as_json=json_out, code=2)
    value = True if allow else False if deny else None
    added = removed = False
    with session() as s:
        config = load_config(session=s)
        found = person_by_sis_id(session=s, sis_id=person)
        if found is None or found.id is None:
            fail(f"no person with SIS id {person!r}", as_json=json_out)
        parsed = parse_phone(number, default_region=config.default_region)
        target = parsed.e164
        rows = [
            p
            for p in phones_of(session=s, person_id=found.id)
            if (target and p.e164 == target) or p.raw.strip() == number.strip()
        ]
        if allow and not any(r.present for r in rows):
            if target is None:
                fail(
                    f"{mask_phone(number)} is not a valid phone number ({parsed.reason}); "
                    f"nothing was added to {person}",
                    as_json=json_out,
                    code=2,
                )
            rows = [add_manual_phone(session=s, person_id=found.id, raw=number, parsed=parsed)]
            added = True
        elif not rows:
            fail(
                f"{person} has no number matching {mask_phone(number)}; "
                f"see `nudge phones show {person}` (--allow adds a number)",
                as_json=json_out,
            )
        else:
            ids = [r.id for r in rows if r.id is not None]
            manual = [r.id for r in rows if r.type_code == MANUAL_TYPE_CODE and r.id is not None]
            set_sms_override(session=s, phone_ids=ids, value=value)
            if clear and manual:
                removed = bool(remove_manual_phone(session=s, phone_ids=manual))
        chosen = refresh_sms_number(session=s, person_id=found.id, config=config)
    data = {
        "person_id": person,
        "rows": len(rows),
        "added": added,
        "removed": removed,
        "sms_allowed": value,
        "sms_number": mask_phone(chosen) if chosen else None,
    }
    if allow and target and chosen != target:
        note = (
            f"{person} is still texted on {data['sms_number']}: another of their numbers "
            "is overridden to allow (`nudge phones override ... --clear` it)"
        )
        data["warnings"] = [note]
        warn(note)
    emit(data, as_json=json_out, human=_human_override)


def _human_override(d: dict[str, Any]) -> str:
    if d["added"]:
        head = "added as a manual number (type OVERRIDE, kept by every sync)"
    elif d["removed"]:
        head = "manual number removed"
    else:
        head = f"override set on {d['rows']} row(s)"
    return f"{head}; SMS number now {d['sms_number'] or 'none'}"


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
    from models.campaigns import staff_by_sis_id
    from models.senders import reset_sender

    with session() as s:
        person = staff_by_sis_id(session=s, sis_id=staff)
        if person is None or person.id is None:
            fail(f"no staff member with SIS id {staff!r}", as_json=json_out)
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
    """Add the ``config``, ``phones``, ``sync-runs`` and ``senders`` groups to the main app."""
    app.add_typer(config_app, name="config")
    app.add_typer(phones_app, name="phones")
    app.add_typer(runs_app, name="sync-runs")
    app.add_typer(senders_app, name="senders")
