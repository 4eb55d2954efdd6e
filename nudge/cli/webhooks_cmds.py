"""``nudge webhooks serve``: the optional real-time path, Twilio's webhooks received as they
happen (the receiver itself is ``nudge/webhooks.py``).

It listens on plain HTTP on a local address; a TLS reverse proxy (Caddy, nginx) publishes it
at ``NUDGE_WEBHOOK_PUBLIC_URL``, the URL Twilio calls and signs. Polling stays the backstop.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from nudge.cli.common import fail, group, settings

webhooks_app = group("Receive Twilio's webhooks: replies and delivery statuses in real time.")


@webhooks_app.command("serve")
def serve(
    host: Annotated[
        str,
        typer.Option("--host", help="Address to listen on (the reverse proxy forwards here)."),
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8088,
) -> None:
    """Serve the incoming-message and status-callback webhooks until Ctrl-C or SIGTERM.

    Needs NUDGE_WEBHOOK_PUBLIC_URL (the https URL Twilio calls) and the account's
    NUDGE_TWILIO_ACCOUNT_SID and NUDGE_TWILIO_AUTH_TOKEN. Paste <public URL>/twilio/incoming
    as the number's (or Messaging Service's) incoming-message webhook, HTTP POST.
    """
    import logging

    import uvicorn

    from adapters.twilio.webhooks import INCOMING_PATH, STATUS_PATH
    from nudge.webhooks import app_from_settings

    conf = settings()
    try:
        app = app_from_settings(conf)
    except ValueError as exc:
        fail(str(exc), as_json=False, code=2)
    # What the receiver does is worth seeing without -v: counts and SIDs only.
    logging.getLogger("nudge.webhooks").setLevel(logging.INFO)
    if not logging.getLogger().handlers:
        logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    public = (conf.webhook_public_url or "").rstrip("/")
    sys.stderr.write(
        f"nudge webhooks: listening on http://{host}:{port}\n"
        f"  incoming messages: {public}{INCOMING_PATH}\n"
        f"  status callbacks:  {public}{STATUS_PATH}\n"
    )
    sys.stderr.flush()
    uvicorn.Server(
        uvicorn.Config(
            app,
            host=host,
            port=port,
            log_config=None,  # keep nudge's logging; never print query strings
            access_log=False,
            proxy_headers=False,  # the public URL comes from settings, not from headers
            timeout_graceful_shutdown=5,
        )
    ).run()


def register(app: typer.Typer) -> None:
    """Add the ``webhooks`` group."""
    app.add_typer(webhooks_app, name="webhooks")
