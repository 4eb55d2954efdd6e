"""Run the sandbox Ethos API: in a background thread (tests, demo) or in the foreground (CLI).

Background use::

    from sandbox.ethos import EthosSandbox, persons_from_folder, run_ethos_sandbox

    with run_ethos_sandbox(source_dir=Path("extract"), token_ttl_s=60) as url:
        source = EthosSource(url, api_key="sandbox-ethos-key")

    sandbox = EthosSandbox(persons, EthosSandboxConfig(share_429=0.2, seed=7))
    with run_ethos_sandbox(sandbox) as url:     # keep the object to read sandbox.stats
        ...

Foreground use: :func:`serve` runs until Ctrl-C (``nudge sandbox ethos``).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import uvicorn

from sandbox.ethos.app import EthosSandbox, EthosSandboxConfig
from sandbox.ethos.convert import persons_from_folder


def _bind(host: str, port: int) -> socket.socket:
    # IPPROTO_TCP lets asyncio set TCP_NODELAY on accepted connections; without it every
    # keep-alive response can stall ~40 ms (Nagle + delayed ACK).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)
    return sock


def _server(sandbox: EthosSandbox) -> uvicorn.Server:
    return uvicorn.Server(
        uvicorn.Config(
            sandbox.app,
            lifespan="off",
            log_config=None,  # never reconfigure the host process's logging
            access_log=False,
            ws="none",
            timeout_graceful_shutdown=2,
        )
    )


def build_sandbox(
    persons: Sequence[dict[str, Any]] | EthosSandbox | None = None,
    *,
    source_dir: Path | None = None,
    config: EthosSandboxConfig | None = None,
    **knobs: Any,
) -> EthosSandbox:
    """An :class:`EthosSandbox` from records, an extract folder, or an existing sandbox.

    ``knobs`` override fields of ``config`` (e.g. ``token_ttl_s=2``).
    """
    if isinstance(persons, EthosSandbox):
        if knobs:
            persons.configure(**knobs)
        return persons
    records = list(persons or ())
    if source_dir is not None:
        records.extend(persons_from_folder(Path(source_dir)))
    conf = replace(config or EthosSandboxConfig(), **knobs)
    return EthosSandbox(records, conf)


@contextlib.contextmanager
def run_ethos_sandbox(
    persons: Sequence[dict[str, Any]] | EthosSandbox | None = None,
    *,
    source_dir: Path | None = None,
    config: EthosSandboxConfig | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    startup_timeout_s: float = 10.0,
    **knobs: Any,
) -> Iterator[str]:
    """Serve a sandbox Ethos API on loopback in a thread; yield its base URL.

    ``port=0`` picks a free port. The server stops when the block exits.
    """
    sandbox = build_sandbox(persons, source_dir=source_dir, config=config, **knobs)
    sock = _bind(host, port)
    server = _server(sandbox)
    thread = threading.Thread(
        target=lambda: server.run(sockets=[sock]), name="ethos-sandbox", daemon=True
    )
    thread.start()
    try:
        deadline = time.monotonic() + startup_timeout_s
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the sandbox Ethos API did not start")
            time.sleep(0.005)
        yield f"http://{host}:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def serve(
    sandbox: EthosSandbox,
    *,
    host: str = "127.0.0.1",
    port: int = 8766,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve ``sandbox`` in the foreground until SIGINT/SIGTERM."""
    sock = _bind(host, port)
    try:
        if on_ready is not None:
            on_ready(f"http://{host}:{sock.getsockname()[1]}")
        _server(sandbox).run(sockets=[sock])
    finally:
        sock.close()
