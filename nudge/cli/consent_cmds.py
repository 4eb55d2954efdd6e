"""The ``consent`` group: who may be texted. The audit trail, admin changes, review pauses.

Only typer (and the standard library) is imported at module level; the database loads inside
the commands, and Prefect never. Numbers are masked in every output (``+1******0123``)
unless ``--reveal`` is given.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

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
    masker,
    session,
)

if TYPE_CHECKING:
    from sqlmodel import Session

consent_app = group("Who may be texted: the audit trail, admin changes, and review pauses.")

JsonOpt = Annotated[bool, typer.Option("--json", help=JSON_HELP)]
RevealOpt = Annotated[bool, typer.Option("--reveal", help="Show full phone numbers (PII).")]
TargetArg = Annotated[
    str, typer.Argument(metavar="NUMBER_OR_ID", help="A phone number, or a person's SIS id.")
]
ReasonOpt = Annotated[str, typer.Option("--reason", help="Why (kept in the audit trail).")]


class AdminStatus(StrEnum):
    """The consent states an admin may set."""

    opted_in = "opted_in"
    opted_out = "opted_out"


def _target(s: Session, number_or_id: str, *, as_json: bool) -> Any:
    from domain.phones import parse_phone
    from models.config import load_config
    from models.consent import consent_target

    region = load_config(session=s).default_region
    parsed = parse_phone(number_or_id, default_region=region)
    target = consent_target(session=s, number_or_id=number_or_id, e164=parsed.e164)
    if not target.numbers:
        fail(
            f"{number_or_id!r} is neither a valid phone number nor the SIS id of someone "
            "with a number",
            as_json=as_json,
        )
    return target


def _sender(s: Session, number: str | None, *, as_json: bool) -> str:
    if number is None:
        return ""
    from domain.phones import parse_phone
    from models.config import load_config

    parsed = parse_phone(number, default_region=load_config(session=s).default_region)
    if parsed.e164 is None:
        fail(f"--sender {number!r} is not a valid phone number", as_json=as_json)
    return parsed.e164


@consent_app.command("show")
def consent_show(
    number_or_id: TargetArg, reveal: RevealOpt = False, json_out: JsonOpt = False
) -> None:
    """Show current consent and every change to it.

    Each change has its status, source, scope, reason, who, when, and the reply that
    caused it.
    """
    from models.consent import consent_trail, current_consents

    show = masker(reveal)

    def scope(sender: str) -> str:
        return "institution" if not sender else f"sender {show(sender)}"

    with session() as s:
        target = _target(s, number_or_id, as_json=json_out)
        current = current_consents(session=s, numbers=target.numbers)
        events = consent_trail(session=s, numbers=target.numbers)
        zone = institution_zone(s)
        data = {
            "person": {"id": target.person_sis_id, "name": target.person_name}
            if target.person_sis_id
            else None,
            "numbers": [show(n) for n in target.numbers],
            "current": [
                {
                    "number": show(c.e164),
                    "scope": scope(c.sender_e164),
                    "status": c.status,
                    "source": c.source,
                    "updated_at": local_iso(c.updated_at, zone),
                }
                for c in current
            ],
            "events": [
                {
                    "at": local_iso(e.at, zone),
                    "number": show(e.e164),
                    "scope": scope(e.sender_e164),
                    "status": e.status,
                    "source": e.source,
                    "reason": e.reason,
                    "actor": e.actor,
                    "inbound_sid": e.inbound_sid,
                }
                for e in events
            ],
        }
    emit(data, as_json=json_out, human=lambda d: _human_consent(d, zone))


def _human_consent(d: dict[str, Any], zone: str) -> str:
    who = f"{d['person']['name']} ({d['person']['id']})" if d["person"] else "unknown person"
    lines = [f"{who}: {', '.join(d['numbers'])}", "current:"]
    lines += [
        f"  {c['number']} {c['scope']}: {c['status']} ({c['source']})" for c in d["current"]
    ] or ["  nothing recorded (auto opt-in rules apply)"]
    lines.append("history:")
    for e in d["events"]:
        extra = f" [reply {e['inbound_sid']}]" if e["inbound_sid"] else ""
        lines.append(
            f"  {local_time(e['at'], zone)} {e['number']} {e['scope']}: {e['status']} "
            f"by {e['source']} ({e['actor'] or '-'}): {e['reason'] or ''}{extra}"
        )
    return "\n".join(lines)


@consent_app.command("set")
def consent_set(
    number_or_id: TargetArg,
    status: Annotated[AdminStatus, typer.Option("--status", help="opted_in or opted_out.")],
    reason: ReasonOpt,
    sender: Annotated[
        str | None,
        typer.Option(
            "--sender",
            help="Only for this sender number (per-sender scope); default: institution-wide.",
        ),
    ] = None,
    reveal: RevealOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Set consent as an admin, with a reason.

    Applies to every number of a person, or to one number (source ``admin``).
    """
    from models.consent import set_consent
    from models.types import utcnow

    show = masker(reveal)
    who = actor()
    with session() as s:
        target = _target(s, number_or_id, as_json=json_out)
        scope = _sender(s, sender, as_json=json_out)
        now = utcnow()
        for number in target.numbers:
            set_consent(
                session=s,
                e164=number,
                status=status.value,
                source="admin",
                sender_e164=scope,
                reason=reason,
                actor=who,
                at=now,
            )
        data = {
            "changed": [
                {
                    "number": show(n),
                    "status": status.value,
                    "scope": "institution" if not scope else f"sender {show(scope)}",
                }
                for n in target.numbers
            ]
        }
    emit(
        data,
        as_json=json_out,
        human=lambda d: "\n".join(
            f"{c['number']} {c['scope']}: {c['status']}" for c in d["changed"]
        ),
    )


@consent_app.command("resolve")
def consent_resolve(
    number_or_id: TargetArg,
    reason: ReasonOpt,
    opt_out: Annotated[
        bool,
        typer.Option(
            "--opt-out",
            help="The reply was a revocation: opt the number out "
            "instead of restoring its previous state.",
        ),
    ] = False,
    reveal: RevealOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Clear a review pause set by a flagged reply.

    Texts resume in the state before the pause; with --opt-out the number is opted out.
    """
    from models.consent import resolve_review
    from models.types import utcnow

    show = masker(reveal)
    who = actor()
    with session() as s:
        target = _target(s, number_or_id, as_json=json_out)
        now = utcnow()
        changed = [
            (number, row)
            for number in target.numbers
            for row in resolve_review(
                session=s, e164=number, reason=reason, actor=who, now=now, opt_out=opt_out
            )
        ]
        if not changed:
            fail(f"nothing is paused for review for {number_or_id!r}", as_json=json_out)
        data = {
            "resolved": [
                {
                    "number": show(n),
                    "status": row.status,
                    "scope": "institution"
                    if not row.sender_e164
                    else f"sender {show(row.sender_e164)}",
                }
                for n, row in changed
            ]
        }
    emit(
        data,
        as_json=json_out,
        human=lambda d: "\n".join(
            f"{c['number']} {c['scope']}: {c['status']} (review resolved)" for c in d["resolved"]
        ),
    )


def register(app: typer.Typer) -> None:
    """Add the ``consent`` group to the main app."""
    app.add_typer(consent_app, name="consent")
