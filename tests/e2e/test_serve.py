"""``nudge serve`` for real, as a process of its own (README, "One small server").

Without ``PREFECT_API_URL`` it starts one Prefect server and uses it for everything: its
deployments and runs are on that server, no temporary server is ever started (temporary
servers are disabled in its environment, and every process it starts is watched), and a
``sis-sync`` run of the served deployment triggers ``data-quality`` there. Against a server
that already holds prefect.yaml's deployments (``prefect deploy``, one session-scoped server)
it refuses, touches nothing, and says what to delete; once that is deleted, it serves there.
"""

from __future__ import annotations

import shlex
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from models.db import upgrade_database
from tests.e2e.stack import (
    PrefectServer,
    api_call,
    command_line,
    deployment,
    flow_runs,
    free_port,
    is_prefect_server,
    nudge_process,
    prefect_env,
    prefect_server,
    wait_for,
    watch_tree,
)
from tests.helpers import phone, staff, student, write_extract

pytestmark = pytest.mark.slow

SERVED = [
    "sis-sync/nightly",
    "data-quality/data-quality",
    "send-campaign/send-campaign",
    "campaign-worker/campaign-worker",
    "dispatch-due/dispatch-due",
    "poll-replies/poll-replies",
    "reconcile-replies/reconcile-replies",
    "outreach-digest/outreach-digest",
]


@dataclass
class College:
    """nudge's side of a ``nudge serve``: a SQLite database, an SIS extract, folders."""

    folder: Path
    env: dict[str, str]

    @property
    def reports(self) -> Path:
        return self.folder / "reports"


@pytest.fixture
def college(tmp_path: Path) -> College:
    url = f"sqlite:///{tmp_path / 'nudge.db'}"
    upgrade_database(url)
    people = [staff("T1", roles="Texting")]
    people += [student(f"S{i}", advisor_id="T1") for i in range(5)]
    phones = [phone(f"S{i}", f"(212) 555-{1000 + i:04d}") for i in range(5)]
    return College(
        tmp_path,
        {
            "NUDGE_DATABASE_URL": url,
            "NUDGE_SIS_SOURCE": write_extract(tmp_path / "extract", people, phones),
            "NUDGE_REPORT_DIR": str(tmp_path / "reports"),
            "NUDGE_OUTBOX_DIR": str(tmp_path / "outbox"),
        },
    )


def serve_env(college: College, home: Path, api_url: str | None = None) -> dict[str, str]:
    # Any attempt of Prefect to start a temporary server fails loudly in this environment.
    return prefect_env(home, api_url, PREFECT_SERVER_ALLOW_EPHEMERAL_MODE="false", **college.env)


@pytest.fixture(scope="session")
def deployed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectServer]:
    """A Prefect server holding prefect.yaml's deployments, set up as the README says."""
    home = tmp_path_factory.mktemp("prefect-deployed")
    with prefect_server(f"sqlite+aiosqlite:///{home / 'prefect.db'}", home) as server:
        server.cli("work-pool", "create", "nudge", "--type", "process")
        server.cli("deploy", "--all", timeout=300)
        yield server


def ended_runs(api_url: str) -> list[dict[str, Any]]:
    """Every flow run on the server that started (whatever its flow)."""
    runs: list[dict[str, Any]] = api_call(
        "POST",
        f"{api_url}/flow_runs/filter",
        json={"flow_runs": {"state": {"type": {"not_any_": ["SCHEDULED"]}}}},
    )
    return runs


def served(api_url: str, process: subprocess.Popen[bytes], log: Path) -> dict[str, str]:
    """Wait until ``nudge serve`` has registered every deployment; their ids by name."""

    def ready() -> dict[str, str] | None:
        if process.poll() is not None:
            raise AssertionError("nudge serve exited:\n" + log.read_text()[-4000:])
        try:
            found = {name: deployment(api_url, name) for name in SERVED}
        except httpx.HTTPError:
            return None  # its server is still starting
        if any(d is None or d["work_pool_name"] for d in found.values()):
            return None
        return {name: d["id"] for name, d in found.items() if d}

    return wait_for(ready, timeout=120, what="the served deployments")


def sync_triggers_data_quality(api_url: str, ids: dict[str, str], college: College) -> None:
    """Start a run of the served sis-sync, as the UI's Run button does; data-quality follows
    (its trigger) and completes, once; no run anywhere on the server failed or crashed."""
    run = api_call(
        "POST", f"{api_url}/deployments/{ids['sis-sync/nightly']}/create_flow_run", json={}
    )

    def sync_ended() -> dict[str, Any] | None:
        current: dict[str, Any] = api_call("GET", f"{api_url}/flow_runs/{run['id']}")
        return current if current["state"]["type"] in {"COMPLETED", "FAILED", "CRASHED"} else None

    sync = wait_for(sync_ended, timeout=90, what="the sis-sync run")
    assert sync["state"]["type"] == "COMPLETED", sync["state"]

    def quality_ended() -> list[dict[str, Any]] | None:
        runs = [
            r
            for r in flow_runs(api_url, "data-quality")
            if r["state_type"] != "SCHEDULED" and r["deployment_id"] == ids[SERVED[1]]
        ]
        return (
            runs if runs and runs[0]["state_type"] in {"COMPLETED", "FAILED", "CRASHED"} else None
        )

    (quality,) = wait_for(quality_ended, timeout=120, what="a data-quality run after the sync")
    assert quality["state_type"] == "COMPLETED", quality["state"]
    # Started by the trigger (after the sync), not by its schedule.
    assert datetime.fromisoformat(quality["created"]) >= datetime.fromisoformat(sync["end_time"])
    assert list(college.reports.glob("*/report.json"))
    bad = [r for r in ended_runs(api_url) if r["state_type"] in {"FAILED", "CRASHED"}]
    assert not bad, [(r["name"], r["state"]["message"]) for r in bad]


def stop(process: subprocess.Popen[bytes]) -> int:
    """SIGTERM, as a service manager stops it; its exit code."""
    process.send_signal(signal.SIGTERM)
    return process.wait(timeout=90)


def test_serve_uses_one_server_it_starts_and_sync_triggers_data_quality(
    college: College, tmp_path: Path
) -> None:
    port = free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    log = tmp_path / "serve.log"
    env = serve_env(college, tmp_path / "prefect-home")
    with (
        nudge_process("serve", "--port", str(port), env=env, cwd=college.folder, log=log) as p,
        watch_tree(p.pid) as seen,
    ):
        ids = served(api_url, p, log)
        sync_triggers_data_quality(api_url, ids, college)
        automations = api_call("POST", f"{api_url}/automations/filter", json={})
        assert [a["actions"][0]["deployment_id"] for a in automations] == [ids[SERVED[1]]]
        servers = {pid: c for pid, c in seen.items() if is_prefect_server(c)}
        assert stop(p) == 0, log.read_text()[-3000:]
    # One Prefect server ran under nudge serve, the one on our port, and it stopped with it.
    assert [f"--port {port}" in c for c in servers.values()] == [True], seen
    assert all(command_line(pid) == "" for pid in servers)
    assert "Traceback" not in log.read_text()


def test_serve_refuses_a_server_with_prefect_deploy_deployments_until_they_are_deleted(
    deployed_server: PrefectServer, college: College, tmp_path: Path
) -> None:
    api_url = deployed_server.api_url
    env = serve_env(college, tmp_path / "prefect-home", api_url)
    log = tmp_path / "refused.log"
    with nudge_process("serve", env=env, cwd=college.folder, log=log) as p:
        assert p.wait(timeout=120) == 1
    said = log.read_text()
    assert "Traceback" not in said
    commands = [line.split("#")[0] for line in said.splitlines() if line.startswith("  prefect ")]
    assert [f"  prefect deployment delete {name}" for name in SERVED] == [
        c.rstrip() for c in commands if "deployment delete" in c
    ]
    (trigger,) = [c for c in commands if "automation delete" in c]  # data-quality's trigger
    # Nothing was taken over: the deployments keep their pool and pull steps, nothing ran.
    nightly = deployment(api_url, "sis-sync/nightly")
    assert nightly and nightly["work_pool_name"] == "nudge" and nightly["pull_steps"]
    assert ended_runs(api_url) == []

    # Do what it says (in parallel: each `prefect` command takes seconds to start).
    cli_env = prefect_env(deployed_server.home, api_url)
    deletes = [
        subprocess.Popen(
            [sys.executable, "-m", "prefect", "--no-prompt", *shlex.split(c)[1:]],
            env=cli_env,
            stdout=subprocess.DEVNULL,
        )
        for c in commands
    ]
    assert [d.wait(timeout=120) for d in deletes] == [0] * len(commands), trigger
    assert api_call("POST", f"{api_url}/automations/filter", json={}) == []

    log = tmp_path / "serve.log"
    with nudge_process("serve", env=env, cwd=college.folder, log=log) as p:
        ids = served(api_url, p, log)
        sync_triggers_data_quality(api_url, ids, college)
        assert stop(p) == 0, log.read_text()[-3000:]
    assert "Traceback" not in log.read_text()
