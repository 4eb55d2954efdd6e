"""Deployment entrypoint ``dispatch-due`` (every 5 minutes): scheduled campaigns whose time
has come, messages deferred by quiet hours, and chunks left by a worker that died."""

from __future__ import annotations

from typing import Any

from prefect import flow

from flows.send_campaign import run_dispatch
from nudge import wiring


@flow(name="dispatch-due")
def dispatch_due() -> dict[str, Any]:
    """Send everything that is due now."""
    return run_dispatch(wiring.settings(), engine=True)
