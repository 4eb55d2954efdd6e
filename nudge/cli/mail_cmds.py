"""``nudge poll-mail`` and ``nudge mail review``: the reply mailbox (staff and students
answer by email; see tasks/mailbox.py).

Only typer is imported at module level; the database, Prefect and the IMAP client load
inside the commands.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from nudge.cli.common import (
    JSON_HELP,
    emit,
    fail,
    group,
    institution_zone,
    local_time,
    prefect_server_configured,
    session,
    settings,
)

JsonOpt = Annotated[bool, typer.Option("--json", help=JSON_HELP)]

mail_app = group("The reply mailbox: mails kept for review.")


def poll_mail(
    engine: Annotated[
        bool | None,
        typer.Option(
            "--engine/--no-engine",
            help="Run through Prefect (tracked in the UI). Default: only when PREFECT_API_URL "
            "is set.",
        ),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Read the reply mailbox once (what the every-minute poll-mailbox deployment does).

    A staff member's email answer is texted to the student (consent, quota, quiet hours and
    email fallback apply; a bounce-back says why when it cannot go); a student's email
    answer is recorded in their thread and the staff member notified; forged or tampered
    mails are kept for review. Mail without a reply token of ours is left alone and counted.
    Exit code 2 when the mailbox cannot be read or a mail failed.
    """
    from adapters.mail.imap import MailboxError

    use_engine = prefect_server_configured() if engine is None else engine
    try:
        if use_engine:
            from flows.poll_mailbox import MailPollFailed, poll_mailbox

            try:
                result = poll_mailbox()
            except MailPollFailed as exc:
                fail(str(exc), as_json=json_out, code=2)
        else:
            from flows.poll_mailbox import run_mail_poll

            result = run_mail_poll(settings())
    except (ValueError, MailboxError) as exc:
        fail(str(exc), as_json=json_out, code=2)
    emit(result, as_json=json_out, human=_human_poll)
    if result.get("errors"):
        raise typer.Exit(2)


def _human_poll(d: dict[str, Any]) -> str:
    lines = [
        f"read {d['fetched']} mails with a reply token ({d['ignored']} others left alone, "
        f"{d['already_handled']} handled before)",
        f"  staff answers: {d['sent']} sent ({d['sent_by_email']} by email), "
        f"{d['deferred']} waiting for quiet hours to end, {d['bounced']} bounced back",
        f"  student email answers recorded: {d['recorded']}",
        f"  refused (kept for review): {d['refused']}; automatic replies: {d['auto_replies']}",
        f"  emails sent: {d['emails_sent']}",
    ]
    for error in d.get("errors", []):
        lines.append(f"  error: {error}")
    return "\n".join(lines)


@mail_app.command("review")
def review(
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many.")] = 20,
    json_out: JsonOpt = False,
) -> None:
    """Mails the reply mailbox refused (forged sender, unknown or tampered token), newest
    first, with why; their text is shown so an admin can follow up by hand."""
    from models.mailbox import receipts_for_review

    with session() as s:
        zone = institution_zone(s)
        rows = [
            {
                "id": r.id,
                "received_at": r.received_at.isoformat(),
                "received_local": local_time(r.received_at, zone),
                "from": r.from_addr,
                "subject": r.subject,
                "reason": r.reason,
                "body": r.body,
            }
            for r in receipts_for_review(session=s, limit=limit)
        ]
    emit({"refused": rows}, as_json=json_out, human=_human_review)


def _human_review(d: dict[str, Any]) -> str:
    if not d["refused"]:
        return "no refused mails"
    lines = []
    for r in d["refused"]:
        lines.append(f"#{r['id']}  {r['received_local']}  from {r['from'] or '(none)'}")
        lines.append(f"  subject: {r['subject'] or '(none)'}")
        lines.append(f"  why: {r['reason']}")
        lines += ["    " + line for line in (r["body"] or "").splitlines()[:20]]
    return "\n".join(lines)


def register(app: typer.Typer) -> None:
    """Add ``poll-mail`` and the ``mail`` group to ``app``."""
    app.command("poll-mail")(poll_mail)
    app.add_typer(mail_app, name="mail")


__all__ = ["register"]
