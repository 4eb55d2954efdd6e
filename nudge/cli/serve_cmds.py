"""Running nudge for real: ``nudge serve`` (one small server) and ``nudge work`` (a worker).

``nudge serve`` talks to exactly one Prefect server: the configured one (``PREFECT_API_URL``,
from the environment or the active Prefect profile), or the one it starts itself. Prefect
reads its settings once, when it is first imported, so pointing this process at the server it
started takes more than setting the environment variable (see :func:`_use_api`).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from typing import Annotated, Any

import typer

from nudge.cli.common import JSON_HELP, emit, fail, settings


def _port_taken(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def _prefect_server(port: int) -> subprocess.Popen[bytes]:
    """Start ``prefect server start`` as a child process and wait until it answers."""
    import httpx

    # A server already on the port would answer our health checks while our child dies:
    # this process would then quietly use somebody else's server.
    if _port_taken(port):
        raise RuntimeError(
            f"port {port} is in use: pick another with --port, or, if a Prefect server listens "
            f"there, use it: PREFECT_API_URL=http://127.0.0.1:{port}/api nudge serve"
        )
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
    _stop(child)
    raise RuntimeError("the Prefect server did not answer within 90 s")


def _stop(child: subprocess.Popen[bytes]) -> None:
    child.terminate()
    try:
        child.wait(timeout=30)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


def _use_api(url: str) -> None:
    """Make every Prefect call of this process, and of the flow runs it starts, use ``url``.

    Prefect builds its settings when ``prefect`` is first imported and caches them: setting
    ``PREFECT_API_URL`` in ``os.environ`` afterwards is not seen, and with no API URL Prefect
    starts a temporary server of its own (two servers: the runs and the deployment triggers
    then live on different ones). So: set the environment (the flow-run subprocesses inherit
    it), rebuild Prefect's root settings from it, and check. Temporary servers are disabled
    outright, so any Prefect call that still finds no API URL fails loudly instead.
    """
    os.environ["PREFECT_API_URL"] = url
    os.environ["PREFECT_SERVER_ALLOW_EPHEMERAL_MODE"] = "false"
    from prefect.context import refresh_global_settings_context as reload_prefect_settings
    from prefect.settings import get_current_settings

    reload_prefect_settings()
    current = get_current_settings()
    if (current.api.url or "").rstrip("/") != url.rstrip("/") or current.server.ephemeral.enabled:
        raise RuntimeError(f"Prefect did not take PREFECT_API_URL={url}")


def _configured_api_url() -> str | None:
    """``PREFECT_API_URL`` from the environment or the active Prefect profile, if any."""
    from prefect.settings import get_current_settings

    return get_current_settings().api.url or None


def deployments(timezone: str, *, mailbox: bool = False) -> list[Any]:
    """Every deployment of nudge with its schedule, for ``serve`` (prefect.yaml has the same);
    ``poll-mailbox`` only with ``mailbox`` (the reply mailbox is configured): unconfigured,
    its runs would fail every minute.

    The names are those of prefect.yaml on purpose: one server runs nudge one way, served or
    on the work pool (see :func:`deploy_conflicts`).
    """
    from prefect.events import DeploymentEventTrigger
    from prefect.schedules import Cron, Interval

    from flows.data_quality import data_quality
    from flows.dispatch_due import dispatch_due
    from flows.outreach_digest import outreach_digest
    from flows.poll_replies import poll_replies
    from flows.reconcile_replies import reconcile_replies
    from flows.send_campaign import campaign_worker, send_campaign
    from flows.sis_sync import sis_sync

    # Served deployments get their triggers like any other: ``serve`` creates the automation
    # on the server, owned by the served data-quality deployment.
    after_sync = DeploymentEventTrigger(
        name="after sis-sync",
        expect={"prefect.flow-run.Completed"},
        match={"prefect.resource.id": "prefect.flow-run.*"},
        match_related={"prefect.resource.role": "flow", "prefect.resource.name": "sis-sync"},
    )
    served = [
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
        reconcile_replies.to_deployment(
            name="reconcile-replies",
            schedules=[
                Cron("0,30 * * * *", timezone=timezone, parameters={"hours": 2}),
                Cron("15 3 * * *", timezone=timezone, parameters={"hours": 48}),
            ],
            enforce_parameter_schema=True,
        ),
        outreach_digest.to_deployment(
            name="outreach-digest", schedule=Cron("0 7 * * 1", timezone=timezone)
        ),
    ]
    if mailbox:
        from flows.poll_mailbox import poll_mailbox

        served.append(poll_mailbox.to_deployment(name="poll-mailbox", schedule=Interval(60)))
    return served


def deploy_conflicts(served: list[Any]) -> dict[str, list[str]]:
    """Those of ``served`` that the server already holds, not as served deployments
    (``prefect deploy``'s: on a work pool, code found by pull steps): ``flow/deployment`` name
    -> ids of the automations made for it (its triggers).

    Serving on top of one would not make a second deployment: Prefect updates the existing
    one in place, drops its pull steps and keeps its empty ``path``, and every run of it then
    crashes (``FileNotFoundError: .../None``: the runner looks for the code in storage at
    ``None``). Giving the served deployments other names instead would leave two sets of
    schedules and triggers on one server: two nightly syncs, and prefect.yaml's data-quality
    trigger firing on the served sync as well. So serve refuses (:func:`serve`).
    """
    from prefect import get_client
    from prefect.exceptions import ObjectNotFound

    found: dict[str, list[str]] = {}
    with get_client(sync_client=True) as client:
        for deployment in served:
            name = f"{deployment.flow_name}/{deployment.name}"
            try:
                existing = client.read_deployment_by_name(name)
            except ObjectNotFound:
                continue
            # What serve itself registers: no work pool, and the folder it runs from.
            if existing.work_pool_name or existing.pull_steps or not existing.path:
                # Deleting a deployment leaves its trigger's automation behind, which would
                # then fail on every sync trying to run a deployment that is gone.
                automations = client.read_resource_related_automations(
                    f"prefect.deployment.{existing.id}"
                )
                found[name] = [str(automation.id) for automation in automations]
    return found


def _refusal(conflicts: dict[str, list[str]], api_url: str, *, own_port: int | None) -> str:
    commands = [f"  prefect deployment delete {name}" for name in conflicts] + [
        f"  prefect automation delete --id {automation}   # trigger of {name}"
        for name, automations in conflicts.items()
        for automation in automations
    ]
    where = (
        # Our own server stops with us: the user has to start it to delete anything.
        "they live in the database of the server nudge serve starts; run it "
        f"(prefect server start --port {own_port}) and, with PREFECT_API_URL={api_url}, "
        "delete them:"
        if own_port is not None
        else f"with PREFECT_API_URL={api_url}, delete them:"
    )
    return (
        f"the Prefect server at {api_url} already has nudge's work-pool deployments "
        f"(`prefect deploy`): {', '.join(conflicts)}. Serving them too would take them over "
        "and crash their runs, so nudge serve refuses: one server runs nudge one way. Keep "
        'them and start workers (README, "Deployments on a work pool"), serve against another '
        f"Prefect server, or, to serve on this one, {where}\n" + "\n".join(commands)
    )


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

    Uses the Prefect server at PREFECT_API_URL, or starts one (UI at http://127.0.0.1:PORT);
    never a second, temporary one. Refuses a server that already holds the `prefect deploy`
    deployments of the same names (it says which to delete). Schedules keep running after
    Ctrl-C is pressed elsewhere: they are not paused on exit.
    """
    import httpx

    from models.config import load_config
    from nudge.cli.common import session
    from nudge.settings import SANDBOX_ACCOUNT_SID, get_settings

    conf = settings()
    child = None
    emulator = None
    try:
        api_url = _configured_api_url()
        if not api_url:
            try:
                child = _prefect_server(port)
            except RuntimeError as exc:
                fail(str(exc), as_json=False)
            api_url = f"http://127.0.0.1:{port}/api"
            typer.echo(f"Prefect UI at http://127.0.0.1:{port}")
        _use_api(api_url)
        typer.echo(f"Prefect server: {api_url}")

        use_sandbox = sandbox
        if use_sandbox is None:
            use_sandbox = (
                conf.twilio_account_sid == SANDBOX_ACCOUNT_SID and not conf.twilio_base_url
            )
        if use_sandbox:
            from sandbox.twilio import EmulatorConfig, EmulatorServer

            emulator = EmulatorServer(EmulatorConfig(), state_path=None).start()
            os.environ["NUDGE_TWILIO_BASE_URL"] = emulator.base_url
            typer.echo(f"Twilio sandbox emulator at {emulator.base_url}")
        get_settings.cache_clear()  # pick up the emulator URL set above

        with session() as s:
            timezone = load_config(session=s).timezone
        served = deployments(timezone, mailbox=bool(conf.reply_address and conf.imap_host))
        try:
            conflicts = deploy_conflicts(served)
        except httpx.HTTPError as exc:
            fail(f"cannot reach the Prefect server at {api_url}: {exc}", as_json=False)
        if conflicts:
            fail(_refusal(conflicts, api_url, own_port=port if child else None), as_json=False)

        from prefect import serve as prefect_serve

        prefect_serve(*served, pause_on_shutdown=False)
    finally:
        if child is not None:
            _stop(child)
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
