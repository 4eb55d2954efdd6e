"""Running nudge for real: ``nudge serve`` (one small server) and ``nudge work`` (a worker)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Annotated, Any

import typer

from nudge.cli.common import JSON_HELP, emit, settings


def _prefect_server(port: int) -> subprocess.Popen[bytes]:
    """Start ``prefect server start`` as a child process and wait until it answers."""
    import httpx

    child = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
        [
            sys.executable,
            "-m",
            "prefect",
            "server",
            "start",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/api/health"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise RuntimeError("the Prefect server exited at start-up (is the port free?)")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return child
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    child.terminate()
    raise RuntimeError("the Prefect server did not answer within 90 s")


def deployments(timezone: str) -> list[Any]:
    """Every deployment of nudge with its schedule, for ``serve`` (prefect.yaml has the same)."""
    from prefect.events import DeploymentEventTrigger
    from prefect.schedules import Cron, Interval

    from flows.data_quality import data_quality
    from flows.dispatch_due import dispatch_due
    from flows.poll_replies import poll_replies
    from flows.send_campaign import campaign_worker, send_campaign
    from flows.sis_sync import sis_sync

    after_sync = DeploymentEventTrigger(
        name="after sis-sync",
        expect={"prefect.flow-run.Completed"},
        match_related={"prefect.resource.role": "flow", "prefect.resource.name": "sis-sync"},
    )
    return [
        sis_sync.to_deployment(name="nightly", schedule=Cron("0 2 * * *", timezone=timezone)),
        data_quality.to_deployment(
            name="data-quality",
            schedule=Cron("0 6 * * *", timezone=timezone),
            triggers=[after_sync],
        ),
        send_campaign.to_deployment(name="send-campaign", enforce_parameter_schema=True),
        campaign_worker.to_deployment(name="campaign-worker"),
        dispatch_due.to_deployment(name="dispatch-due", schedule=Interval(300)),
        poll_replies.to_deployment(name="poll-replies", schedule=Interval(60)),
    ]


def serve(
    port: Annotated[
        int,
        typer.Option(
            "--port", help="Port of the Prefect server it starts when PREFECT_API_URL is not set."
        ),
    ] = 4200,
    sandbox: Annotated[
        bool | None,
        typer.Option(
            "--sandbox/--no-sandbox",
            help="Run the Twilio emulator in-process. Default: when no real Twilio account is "
            "configured (so the placeholder credentials can never reach Twilio).",
        ),
    ] = None,
) -> None:
    """Serve every deployment with its schedules from this one process (a small server).

    Uses the Prefect server at PREFECT_API_URL, or starts one (UI at http://127.0.0.1:PORT).
    Schedules keep running after Ctrl-C is pressed elsewhere: they are not paused on exit.
    """
    from prefect import serve as prefect_serve

    from models.config import load_config
    from nudge.cli.common import session
    from nudge.settings import SANDBOX_ACCOUNT_SID

    conf = settings()
    child = None
    emulator = None
    use_sandbox = sandbox
    if use_sandbox is None:
        use_sandbox = conf.twilio_account_sid == SANDBOX_ACCOUNT_SID and not conf.twilio_base_url
    if use_sandbox:
        from sandbox.twilio import EmulatorConfig, EmulatorServer

        emulator = EmulatorServer(EmulatorConfig(), state_path=None).start()
        os.environ["NUDGE_TWILIO_BASE_URL"] = emulator.base_url
        typer.echo(f"Twilio sandbox emulator at {emulator.base_url}")
    if not os.environ.get("PREFECT_API_URL"):
        child = _prefect_server(port)
        os.environ["PREFECT_API_URL"] = f"http://127.0.0.1:{port}/api"
        typer.echo(f"Prefect UI at http://127.0.0.1:{port}")
    from nudge.settings import get_settings

    get_settings.cache_clear()  # pick up the emulator URL set above
    try:
        with session() as s:
            timezone = load_config(session=s).timezone
        prefect_serve(*deployments(timezone), pause_on_shutdown=False)
    finally:
        if child is not None:
            child.terminate()
            child.wait(timeout=30)
        if emulator is not None:
            emulator.stop()


def work(
    campaign: Annotated[
        int | None,
        typer.Option("--campaign", help="Only this campaign (default: every due chunk)."),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Claim and send due chunks until none is left (a worker without Prefect).

    SIGTERM or Ctrl-C: the chunk in hand is finished, no new one is claimed.
    """
    from flows.send_campaign import work as run_work

    stopping = {"now": False}

    def stop(_signum: int, _frame: object) -> None:
        stopping["now"] = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    report = run_work(settings(), campaign_id=campaign, should_stop=lambda: stopping["now"])
    data = {**report.as_dict(), "stopped_by_signal": stopping["now"]}
    emit(
        data,
        as_json=json_out,
        human=lambda d: (
            f"{d['chunks']} chunk(s): {d['sms_sent']} SMS, {d['emails_sent']} email"
            + (" (stopped by signal)" if d["stopped_by_signal"] else "")
        ),
    )


def register(app: typer.Typer) -> None:
    """Add ``serve`` and ``work``."""
    app.command("serve")(serve)
    app.command("work")(work)
