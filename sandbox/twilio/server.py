"""Run the Twilio emulator: in the foreground (the CLI), or in the background (tests, demo).

Background use, the common case::

    from sandbox.twilio import EmulatorConfig, run_emulator

    with run_emulator(EmulatorConfig(status_delay_ms=0)) as emu:
        settings = Settings(twilio_base_url=emu.base_url)   # point the gateway at it
        emu.control(share_429=0.3, seed=7)                  # change knobs at run time
        emu.inject("+15551230001", "+14155550100", "STOP")  # a phone texts one of our numbers
        emu.inject(student, ours, "START", sent_ago=600)    # ...sent 10 min ago, listed now
        emu.control(inbound_lag_s=900)                      # the list lags 15 min behind
        assert emu.counters()["max_per_to"] == 1            # exactly one SMS per recipient
        emu.control(queue_delay_s=600)                      # a provider backlog of 10 minutes
        emu.advance(900)                                    # let 15 minutes pass, instantly
        emu.message_record(sid)                             # validity, expiry of message sid
        emu.reset()                                         # clean state between tests

``mode="thread"`` (default) serves from a daemon thread of this process: ~0.1 s to start
and ~0.15 s to stop, so tests share one per module or session and call ``reset()`` (~2 ms)
between tests. ``mode="subprocess"`` runs ``python -m sandbox.twilio`` in its own
process, so the emulator does not compete with the client for the GIL: use it for
benchmarks. Both bind ``127.0.0.1`` on a free port unless told otherwise, and both expose the
same methods. ``restart()`` stops and starts again on the same port with the same state file
(with ``state_path`` set, messages and numbers survive it).

Foreground use: :func:`serve` runs until Ctrl-C (``nudge sandbox twilio``).

uvicorn picks httptools and uvloop when they are installed (``uvicorn[standard]``): they
cut the emulator's CPU per create from ~0.7 ms (h11, asyncio) to ~0.35 ms.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

import uvicorn

from sandbox.twilio.app import EmulatorApp, create_app
from sandbox.twilio.config import EmulatorConfig

if TYPE_CHECKING:
    import httpx

Mode = Literal["thread", "subprocess"]
_REPO_ROOT = Path(__file__).resolve().parents[2]


def _bind(host: str, port: int) -> socket.socket:
    # proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY on accepted connections only when
    # the socket says it is TCP, and without it every keep-alive response stalls ~40 ms.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    # A restart on the same port must not wait for TIME_WAIT connections to expire.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    return sock


def _uvicorn_config(app: EmulatorApp) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        lifespan="on",
        log_config=None,  # never reconfigure the host process's logging
        access_log=False,
        timeout_graceful_shutdown=2,
        backlog=2048,
    )


def serve(
    config: EmulatorConfig | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    state_path: Path | None = None,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve the emulator in the foreground until SIGINT/SIGTERM.

    ``on_ready`` receives the base URL once the socket listens (requests made from then on
    wait in the backlog until the server accepts them).
    """
    sock = _bind(host, port)
    app = create_app(config, state_path)
    try:
        if on_ready is not None:
            on_ready(f"http://{host}:{sock.getsockname()[1]}")
        uvicorn.Server(_uvicorn_config(app)).run(sockets=[sock])
    finally:
        app.close()
        sock.close()


class EmulatorServer:
    """A background Twilio emulator on loopback, with helpers to steer it over HTTP.

    Attributes: ``base_url`` (``http://127.0.0.1:PORT``, set once started), ``port``,
    ``config`` (the start-up knobs), ``state_path``, ``mode``.
    """

    def __init__(
        self,
        config: EmulatorConfig | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        state_path: Path | None = None,
        mode: Mode = "thread",
        startup_timeout_s: float = 15.0,
    ) -> None:
        self.config = config or EmulatorConfig()
        self.host = host
        self.port = port
        self.state_path = state_path
        self.mode: Mode = mode
        self.startup_timeout_s = startup_timeout_s
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._process: subprocess.Popen[str] | None = None
        self._sock: socket.socket | None = None
        self._app: EmulatorApp | None = None
        self._http: httpx.Client | None = None

    @property
    def base_url(self) -> str:
        """``http://HOST:PORT`` of the running emulator: the value of NUDGE_TWILIO_BASE_URL."""
        if not self.port:
            raise RuntimeError("the emulator is not started")
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        """The process serving the emulator: the child in subprocess mode, else this one."""
        if self._process is not None:
            return self._process.pid
        return os.getpid() if self._thread is not None else None

    def env(self) -> dict[str, str]:
        """Environment variables that point nudge at this emulator."""
        return {"NUDGE_TWILIO_BASE_URL": self.base_url}

    # --- life cycle -----------------------------------------------------------------

    def start(self) -> EmulatorServer:
        """Start serving and wait until the emulator answers; returns ``self``."""
        import httpx  # here, not at module level: the emulator process does not need it

        if self.mode == "thread":
            self._start_thread()
        else:
            self._start_process()
        self._http = httpx.Client(base_url=self.base_url, timeout=10.0)
        self._wait_healthy()
        return self

    def _start_thread(self) -> None:
        self._sock = _bind(self.host, self.port)
        self.port = self._sock.getsockname()[1]
        self._app = create_app(self.config, self.state_path)
        self._server = uvicorn.Server(_uvicorn_config(self._app))
        sock, server = self._sock, self._server
        self._thread = threading.Thread(
            target=lambda: server.run(sockets=[sock]), name="twilio-emulator", daemon=True
        )
        self._thread.start()

    def _start_process(self) -> None:
        command = [
            sys.executable,
            "-m",
            "sandbox.twilio",
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--config-json",
            self.config.model_dump_json(),
        ]
        if self.state_path is not None:
            command += ["--state", str(self.state_path)]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(_REPO_ROOT), *sys.path])}
        self._process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            command, stdout=subprocess.PIPE, text=True, env=env, cwd=_REPO_ROOT
        )
        line = self._process.stdout.readline() if self._process.stdout else ""
        if not line:
            raise RuntimeError("the emulator subprocess exited before it was ready")
        self.port = int(json.loads(line)["port"])

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + self.startup_timeout_s
        client = self._client()
        import httpx

        while True:
            try:
                if client.get("/sandbox/health").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the Twilio emulator did not start in time")
            time.sleep(0.02)

    def stop(self) -> None:
        """Stop serving and release the port and the state file (idempotent)."""
        if self._http is not None:
            self._http.close()
            self._http = None
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
            self._server = None
            self._thread = None
        if self._app is not None:
            self._app.close()
            self._app = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self._process is not None:
            # SIGTERM: uvicorn shuts down gracefully (lifespan closes the state file).
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            if self._process.stdout is not None:
                self._process.stdout.close()
            self._process = None

    def restart(self) -> EmulatorServer:
        """Stop, then start again on the same port with the same state file."""
        self.stop()
        return self.start()

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- steering -------------------------------------------------------------------

    def _client(self) -> httpx.Client:
        if self._http is None:
            raise RuntimeError("the emulator is not started")
        return self._http

    def control(self, **knobs: Any) -> dict[str, Any]:
        """Change knobs (see :class:`EmulatorConfig`); returns all the knobs now in force."""
        response = self._client().post("/sandbox/control", json=knobs)
        if response.status_code != 200:
            raise ValueError(f"invalid knobs: {response.text}")
        result: dict[str, Any] = response.json()
        return result

    def knobs(self) -> dict[str, Any]:
        """The knobs in force."""
        result: dict[str, Any] = self._client().get("/sandbox/control").json()
        return result

    def reset(self, *, knobs: bool = True) -> None:
        """Forget all messages, numbers, opt-outs, counters and clock advances (and knob
        changes, by default)."""
        self._client().post("/sandbox/reset", json={"knobs": knobs}).raise_for_status()

    def counters(self) -> dict[str, Any]:
        """``create_requests``, ``messages_created``, ``per_to``, ``max_per_to``,
        ``rejected`` (by code), ``faults`` (429/5xx/drop), ``inbound``, ``auto_replies``,
        ``expired`` (accepted messages that outstay their ValidityPeriod: 30036)."""
        result: dict[str, Any] = self._client().get("/sandbox/counters").json()
        return result

    def message_record(self, sid: str) -> dict[str, Any]:
        """One message as the emulator keeps it (Twilio's resource does not show these):
        ``status``, ``validity_period_s``, ``created_at``, ``expires_at``,
        ``leaves_queue_at``, ``final_at`` (epoch seconds on the emulator's clock),
        ``outcome``, ``error_code`` and ``expired``. Raises KeyError for an unknown SID."""
        response = self._client().get(f"/sandbox/messages/{sid}")
        if response.status_code == 404:
            raise KeyError(sid)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def advance(self, seconds: float) -> float:
        """Move the emulator's time forward (statuses, expiry and send dates follow it);
        returns its new time, epoch seconds. ``reset()`` puts it back to the real clock."""
        response = self._client().post("/sandbox/clock", json={"advance_s": seconds})
        if response.status_code != 200:
            raise ValueError(f"cannot advance the clock: {response.text}")
        now: float = response.json()["now"]
        return now

    def inject(
        self,
        from_: str,
        to: str,
        body: str,
        *,
        account_sid: str | None = None,
        sent_ago: float | None = None,
    ) -> dict[str, Any]:
        """A phone (``from_``) texts one of our numbers (``to``).

        With ``sent_ago`` (seconds), the text is a late one: its ``date_created`` and
        ``date_sent`` are that much in the past, yet the Messages list returns it only from
        now on (as when Twilio's list lags behind). See ``sandbox/twilio/inbound.py``.

        The message lands in the account that bought ``to``; else ``account_sid``; else the
        account that last sent from ``to``; else the pinned ``account_sid`` knob; else the
        last account that called the API; else ``AC000…0`` (the settings' sandbox default).
        Returns ``{"message": <inbound message>, "auto_reply": <message or None>,
        "keyword": "stop" | "start" | "help" | None}``; raises ValueError on a bad number.
        """
        payload: dict[str, Any] = {"From": from_, "To": to, "Body": body}
        if account_sid is not None:
            payload["AccountSid"] = account_sid
        if sent_ago is not None:
            payload["SentAgo"] = sent_ago
        response = self._client().post("/sandbox/inbound", json=payload)
        if response.status_code != 201:
            raise ValueError(f"inbound refused: {response.text}")
        result: dict[str, Any] = response.json()
        return result


@contextlib.contextmanager
def run_emulator(
    config: EmulatorConfig | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    state_path: Path | None = None,
    mode: Mode = "thread",
) -> Iterator[EmulatorServer]:
    """Run an emulator for the duration of a ``with`` block (see the module docstring)."""
    server = EmulatorServer(config, host=host, port=port, state_path=state_path, mode=mode)
    server.start()
    try:
        yield server
    finally:
        server.stop()
