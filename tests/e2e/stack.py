"""Real processes for scale-out tests: a Prefect server on PostgreSQL and Prefect workers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
from sqlalchemy import create_engine, text

REPO = Path(__file__).resolve().parents[2]
T = TypeVar("T")


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def fresh_database(base_url: str) -> Iterator[str]:
    """A new PostgreSQL database next to ``base_url``'s; dropped afterwards. Yields its name."""
    name = "nudge_t_" + uuid.uuid4().hex[:10]
    admin = create_engine(
        base_url.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield name
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def prefect_env(home: Path, api_url: str | None = None, **extra: str) -> dict[str, str]:
    """Environment for a Prefect process isolated in ``home``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "NUDGE_"))}
    env.update(
        PREFECT_HOME=str(home),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_UI_ENABLED="false",
        PREFECT_LOGGING_LEVEL="WARNING",
        PYTHONPATH=str(REPO),
    )
    if api_url:
        env["PREFECT_API_URL"] = api_url
    env.update(extra)
    return env


def _stop_group(process: subprocess.Popen[bytes], *, timeout: float) -> None:
    """SIGTERM the process group (the process and what it started), SIGKILL it if it lingers,
    and always reap the process (an unreaped Popen is a ResourceWarning in a later test)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout=timeout)
            return
        except subprocess.TimeoutExpired:
            continue
    process.wait()


@dataclass
class PrefectServer:
    """A running ``prefect server start``."""

    api_url: str
    home: Path
    process: subprocess.Popen[bytes]
    log: Path

    def cli(self, *args: str, env: dict[str, str] | None = None, timeout: float = 120) -> str:
        """Run ``prefect ARGS`` against this server; returns stdout, raises on failure."""
        out = subprocess.run(
            [sys.executable, "-m", "prefect", "--no-prompt", *args],
            env=env or prefect_env(self.home, self.api_url),
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if out.returncode != 0:
            raise RuntimeError(f"prefect {' '.join(args)} failed:\n{out.stdout}\n{out.stderr}")
        return out.stdout


@contextmanager
def prefect_server(database_url: str, home: Path) -> Iterator[PrefectServer]:
    """``prefect server start`` on PostgreSQL (asyncpg), on a free loopback port."""
    port = free_port()
    home.mkdir(parents=True, exist_ok=True)
    log = home / "server.log"
    env = prefect_env(home, PREFECT_SERVER_DATABASE_CONNECTION_URL=database_url)
    with log.open("wb") as sink:
        process = subprocess.Popen(
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
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    api = f"http://127.0.0.1:{port}/api"
    try:
        deadline = time.monotonic() + 180
        while True:
            if process.poll() is not None:
                raise RuntimeError("Prefect server exited:\n" + log.read_text()[-3000:])
            try:
                if httpx.get(f"{api}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("Prefect server did not start:\n" + log.read_text()[-3000:])
            time.sleep(0.5)
        yield PrefectServer(api, home, process, log)
    finally:
        _stop_group(process, timeout=30)


def descendants(pid: int) -> list[int]:
    """Every process ``pid`` started, and what they started, depth first."""
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False)
    found: list[int] = []
    for child in (int(p) for p in out.stdout.split()):
        found += [child, *descendants(child)]
    return found


@dataclass(eq=False)  # hashable by identity: one Worker per process
class Worker:
    """A ``prefect worker start`` process and the flow-run processes it spawned."""

    process: subprocess.Popen[bytes]
    log: Path
    name: str
    killed: bool = False
    children: list[int] = field(default_factory=list)
    #: Every flow-run process seen under this worker (see :func:`watch_children`).
    seen: set[int] = field(default_factory=set)

    def child_pids(self) -> list[int]:
        """Processes the worker started (its flow runs, and what they started)."""
        return descendants(self.process.pid)

    def kill_hard(self) -> None:
        """SIGKILL the worker and its flow runs: the machine died mid-chunk."""
        self.children = self.child_pids()
        for pid in [self.process.pid, *self.children]:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.killed = True


@contextmanager
def watch_children(pool: list[Worker], every_s: float = 0.2) -> Iterator[None]:
    """Record, from a thread, every process each worker starts (into ``Worker.seen``): a
    flow run's pid is how its chunk claims (``host:pid:...``) are traced to its worker."""
    import threading

    stop = threading.Event()

    def run() -> None:
        while not stop.wait(every_s):
            for worker in pool:
                if not worker.killed:
                    worker.seen.update(worker.child_pids())

    thread = threading.Thread(target=run, name="watch-children", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def own_host_prefix() -> list[str] | None:
    """A command prefix that runs a process under a host name of its own (a UTS namespace:
    as root, or in a user namespace where those are allowed), or None where neither works.
    A worker started so is "another machine" to nudge: its claims are taken over once stale,
    never at once as those of a dead process of this host are."""
    for prefix in (["unshare", "--uts"], ["unshare", "--user", "--map-root-user", "--uts"]):
        try:
            probe = subprocess.run(
                [*prefix, "sh", "-c", "hostname nudge-probe"],
                capture_output=True,
                timeout=10,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        if probe.returncode == 0:
            return prefix
    return None


@contextmanager
def workers(
    server: PrefectServer,
    count: int,
    env: dict[str, str],
    *args: str,
    name: str = "w",
    own_host: list[str] | None = None,
) -> Iterator[list[Worker]]:
    """``count`` workers started as ``prefect worker start ARGS`` (ARGS as the README has
    them, e.g. ``--pool nudge --work-queue campaigns --limit 1``), named NAME0, NAME1, ...;
    with ``own_host`` (see :func:`own_host_prefix`), each on a host named after it."""
    started: list[Worker] = []
    try:
        for index in range(count):
            label = f"{name}{index}"
            log = server.home / f"worker-{label}.log"
            command = [sys.executable, "-m", "prefect", "worker", "start", *args, "--name", label]
            if own_host:
                command = [*own_host, "sh", "-c", 'hostname "$0" && exec "$@"', label, *command]
            with log.open("wb") as sink:
                process = subprocess.Popen(
                    command,
                    env=env,
                    cwd=REPO,
                    stdout=sink,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            started.append(Worker(process, log, label))
        yield started
    finally:
        for worker in started:
            _stop_group(worker.process, timeout=20)


def command_line(pid: int) -> str:
    """The command line of ``pid``, or "" once it has exited."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()


def process_tree(root: int) -> dict[int, str]:
    """Every living process under ``root`` (not ``root`` itself): pid -> command line. Read
    from /proc in one pass, cheap enough to sample a few times a second."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses.
        parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found: dict[int, str] = {}
    frontier = [root]
    while frontier:
        parent = frontier.pop()
        for pid, ppid in parents.items():
            if ppid == parent and pid not in found:
                found[pid] = command_line(pid)
                frontier.append(pid)
    return found


def is_prefect_server(command: str) -> bool:
    """``prefect server start``, or the temporary server Prefect starts on its own when it
    finds no API URL (uvicorn serving ``prefect.server.api.server:create_app``)."""
    return "prefect.server.api.server:create_app" in command or (
        "prefect" in command and " server start" in command
    )


@contextmanager
def watch_tree(root: int, every_s: float = 0.25) -> Iterator[dict[int, str]]:
    """Record, from a thread, every process ever seen under ``root`` (pid -> command line)."""
    import threading

    seen: dict[int, str] = {}
    stop = threading.Event()

    def run() -> None:
        while True:
            for pid, command in process_tree(root).items():
                if command:
                    seen.setdefault(pid, command)
            if stop.wait(every_s):
                return

    thread = threading.Thread(target=run, name="watch-tree", daemon=True)
    thread.start()
    try:
        yield seen
    finally:
        stop.set()
        thread.join()


def wait_for(
    check: Callable[[], T | None], *, timeout: float, what: str, every_s: float = 1.0
) -> T:
    """Call ``check`` until it returns something other than None (or False); that value."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value is not None and value is not False:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every_s)


def api_call(method: str, url: str, **kwargs: Any) -> Any:
    """One call of a Prefect server's API, its JSON (None for 404); retried on 503 (a busy
    SQLite database: Prefect's own client retries those too)."""
    for _attempt in range(20):
        response = httpx.request(method, url, timeout=30, **kwargs)
        if response.status_code != 503:
            break
        time.sleep(0.5)
    if response.status_code == 404:
        return None
    response.raise_for_status()
    return response.json()


def flow_runs(api_url: str, flow_name: str) -> list[dict[str, Any]]:
    """Every run of flow ``flow_name`` on the server (the API's JSON), oldest first."""
    runs: list[dict[str, Any]] = api_call(
        "POST",
        f"{api_url}/flow_runs/filter",
        json={"flows": {"name": {"any_": [flow_name]}}, "sort": "EXPECTED_START_TIME_ASC"},
    )
    return runs


def deployment(api_url: str, full_name: str) -> dict[str, Any] | None:
    """Deployment ``flow/name`` on the server (the API's JSON), or None."""
    found: dict[str, Any] | None = api_call("GET", f"{api_url}/deployments/name/{full_name}")
    return found


@contextmanager
def nudge_process(
    *args: str, env: dict[str, str], cwd: Path, log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """``nudge ARGS`` (the installed console script) in a process group of its own, its
    output in ``log``; the group is stopped afterwards."""
    script = Path(sys.executable).with_name("nudge")
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [str(script), *args],
            env=env,
            cwd=cwd,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield process
    finally:
        _stop_group(process, timeout=30)
