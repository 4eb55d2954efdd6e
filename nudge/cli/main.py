"""The ``nudge`` command line: one Typer app, each command group in its own module.

Start-up stays cheap (``nudge --help`` well under half a second): modules imported here
import only typer; Prefect, SQLModel and Great Expectations load inside the commands.
"""

from __future__ import annotations

import logging
import re
import sys

import typer

from nudge.cli import (
    admin_cmds,
    away_cmds,
    campaign_cmds,
    config_cmds,
    conversation_cmds,
    mail_cmds,
    outbox_cmds,
    outcome_cmds,  # noqa: F401 - registers `campaigns outcome` on import
    phones_cmds,
    reply_cmds,
    report_cmds,
    roles_cmds,
    send_cmds,
    serve_cmds,
    staff_cmds,
    sync_cmds,
    webhooks_cmds,
)
from nudge.cli.common import group

app = typer.Typer(
    name="nudge",
    help="Two-way SMS outreach for student-success teams: sync contacts from the SIS, "
    "text students, handle replies, watch data quality.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
)
sandbox_app = group("Local emulators of Twilio and the SIS, and a messy data generator.")


def _register_sandbox() -> None:
    # Each emulator's commands live beside its own code owner; a missing one must not break
    # the rest of the CLI.
    from nudge.cli import sandbox_sis, sandbox_twilio

    sandbox_sis.register(sandbox_app)
    sandbox_twilio.register(sandbox_app)


@app.callback()
def _main(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log progress to stderr."),
) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


sync_cmds.register(app)
send_cmds.register(app)
campaign_cmds.register(app)
roles_cmds.register(app)
reply_cmds.register(app)  # with the consent group (nudge.cli.consent_cmds)
conversation_cmds.register(app)
away_cmds.register(app)
mail_cmds.register(app)
report_cmds.register(app)
config_cmds.register(app)
phones_cmds.register(app)
admin_cmds.register(app)
outbox_cmds.register(app)
serve_cmds.register(app)
staff_cmds.register(app)
webhooks_cmds.register(app)
_register_sandbox()
app.add_typer(sandbox_app, name="sandbox")


def main() -> None:
    """Console-script entry point. A database without nudge's tables (``nudge init`` never
    ran, or an older schema) is one clear line and exit 2, not a traceback."""
    try:
        app()
    except Exception as exc:
        hint = missing_schema(exc)
        if hint is None:
            raise
        print(f"error: {hint}", file=sys.stderr)
        raise SystemExit(2) from None


_MISSING_TABLE = re.compile(r'no such table: (\w+)|relation "(\w+)" does not exist')


def missing_schema(exc: BaseException) -> str | None:
    """What to tell the user when ``exc`` says a table of nudge's schema is missing."""
    found = _MISSING_TABLE.search(str(exc))
    if found is None:
        return None
    table = found.group(1) or found.group(2)
    return (
        f"the database at NUDGE_DATABASE_URL has no table {table!r}: nudge's schema is not "
        "there yet or is older than this version. Run `nudge init` (creates or upgrades it; "
        "nothing is lost)."
    )
