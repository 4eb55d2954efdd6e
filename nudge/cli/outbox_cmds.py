"""Outbox commands: emails a crash left undecided, and resending them on purpose.

SMTP cannot be asked whether it received a message, so an email that was being handed over
when a worker died is never resent automatically: it is ``unknown``. ``nudge outbox
unknown`` lists them with their Message-ID (look it up in the mail server's log);
``nudge outbox resend ID`` sends one again, with the same Message-ID.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from nudge.cli.common import JSON_HELP, emit, fail, group, session, settings

JsonOpt = Annotated[bool, typer.Option("--json", help=JSON_HELP)]

outbox_app = group("Emails whose delivery a crash left unknown; resend them on purpose.")


@outbox_app.command("unknown")
def outbox_unknown(
    campaign: Annotated[
        int | None, typer.Option("--campaign", help="Only this campaign's emails.")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """List emails whose delivery is unknown, with the Message-ID to look up."""
    from adapters.mail.message import message_id_for
    from models.outbox_recovery import unknown_emails

    sender = settings().mail_from
    with session() as s:
        rows = unknown_emails(session=s, campaign_id=campaign)
        data: dict[str, Any] = {
            "unknown": [
                {
                    "message_id": r.id,
                    "kind": r.kind,
                    "campaign_id": r.campaign_id,
                    "to": r.to_addr,
                    "subject": r.subject,
                    "message_id_header": message_id_for(r.key, sender),
                    "marked_at": r.marked_at,
                }
                for r in rows
            ]
        }
    emit(
        data,
        as_json=json_out,
        human=lambda d: (
            "\n".join(
                f"#{u['message_id']:<7} {u['kind']:<13} to {u['to']}  {u['message_id_header']}"
                for u in d["unknown"]
            )
            or "no email with an unknown outcome"
        ),
    )


@outbox_app.command("resend")
def outbox_resend(
    ids: Annotated[list[int], typer.Argument(help="Outbox ids from `nudge outbox unknown`.")],
    json_out: JsonOpt = False,
) -> None:
    """Send these unknown emails again (same Message-ID) — after checking they never
    arrived — and deliver them now."""
    from models.outbox import get
    from models.outbox_recovery import resend_unknown
    from models.types import utcnow

    with session() as s:
        missing = [i for i in ids if get(session=s, message_id=i) is None]
        if missing:
            fail(f"no outbox message {', '.join(f'#{i}' for i in missing)}", as_json=json_out)
        moved = resend_unknown(session=s, ids=ids, now=utcnow())
    not_unknown = sorted(set(ids) - set(moved))
    sent = _deliver(moved)
    emit(
        {"resent": moved, "not_unknown": not_unknown, "emails_sent": sent},
        as_json=json_out,
        human=lambda d: (
            f"{len(d['resent'])} email(s) queued again, {d['emails_sent']} sent"
            + (
                f"; not unknown (left alone): {', '.join(map(str, d['not_unknown']))}"
                if d["not_unknown"]
                else ""
            )
        ),
    )


def _deliver(ids: list[int]) -> int:
    """Send the re-queued emails now, each marked, sent and recorded on its own."""
    from models.chunks import new_token
    from models.outbox import get
    from nudge import wiring
    from tasks.outbox_email import send_emails
    from tasks.outbox_loose import mark_notified

    env = wiring.env(settings())
    with session() as s:
        rows = [row for i in ids if (row := get(session=s, message_id=i)) is not None]
    return send_emails(env, rows, token=new_token(env.worker), on_sent=mark_notified).sent


def register(app: typer.Typer) -> None:
    """Add the ``outbox`` group."""
    app.add_typer(outbox_app, name="outbox")
