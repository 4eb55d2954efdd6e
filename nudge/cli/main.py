"""The ``nudge`` command line: one Typer app, each command group in its own module.

Start-up stays cheap (``nudge --help`` well under half a second): modules imported here
import only typer; Prefect, SQLModel and Great Expectations load inside the commands.
"""

from __future__ import annotations

import logging

import typer

from nudge.cli import (
    admin_cmds,
    campaign_cmds,
    config_cmds,
    outbox_cmds,
    phones_cmds,
    reply_cmds,
    report_cmds,
    roles_cmds,
    send_cmds,
    serve_cmds,
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
report_cmds.register(app)
config_cmds.register(app)
phones_cmds.register(app)
admin_cmds.register(app)
outbox_cmds.register(app)
serve_cmds.register(app)
webhooks_cmds.register(app)
_register_sandbox()
app.add_typer(sandbox_app, name="sandbox")


def main() -> None:
    """Console-script entry point."""
    app()
