"""The ``phones`` group: a person's numbers, and the admin's override of the SMS choice.

Numbers are masked in every output (``+1******0123``) unless ``--reveal`` is given.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from nudge.cli.common import JSON_HELP, emit, fail, group, session, warn

phones_app = group("Look at a person's numbers; override the SMS choice.")

JsonOpt = Annotated[bool, typer.Option("--json", help=JSON_HELP)]


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


def register(app: typer.Typer) -> None:
    """Add the ``phones`` group to the main app."""
    app.add_typer(phones_app, name="phones")
