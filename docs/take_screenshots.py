"""Retake the README's pictures of the Prefect UI: the send-campaign form and a preview.

Starts a real Prefect server (its own PREFECT_HOME, a free port), a small generated college
in a temporary SQLite database, deploys ``send-campaign`` from ``prefect.yaml``, runs one dry
run through the server so its preview artifact exists, and photographs both pages with
headless Chromium (``apt-get install -y chromium``). Nothing outside a temporary folder and
``docs/img/`` is touched.

    .venv/bin/python docs/take_screenshots.py [--chromium /usr/bin/chromium]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "docs" / "img"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_healthy(api: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit("the Prefect server exited:\n" + log.read_text()[-2000:])
        try:
            with urllib.request.urlopen(f"{api}/health", timeout=2) as reply:  # noqa: S310
                if reply.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise SystemExit("the Prefect server did not start:\n" + log.read_text()[-2000:])


def shoot(chromium: str, url: str, target: Path, *, height: int, profile: Path) -> None:
    subprocess.run(  # noqa: S603 - our own arguments
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            f"--window-size=1280,{height}",
            f"--screenshot={target}",
            "--virtual-time-budget=30000",
            url,
        ],
        check=True,
        capture_output=True,
        timeout=180,
    )
    print(f"wrote {target.relative_to(REPO)}")  # noqa: T201


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    args = parser.parse_args()
    if not Path(args.chromium).exists():
        raise SystemExit("headless Chromium is needed: apt-get install -y chromium")
    work = Path(tempfile.mkdtemp(prefix="nudge-shots-"))
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "NUDGE_"))},
        "PREFECT_HOME": str(work / "prefect"),
        "PREFECT_API_URL": api,
        "PREFECT_UI_API_URL": api,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "NUDGE_DATABASE_URL": f"sqlite:///{work / 'nudge.db'}",
        "NUDGE_OUTBOX_DIR": str(work / "outbox"),
        "PYTHONPATH": str(REPO),
    }
    log = work / "server.log"
    with log.open("wb") as sink:
        server = subprocess.Popen(  # noqa: S603
            [
                sys.executable,
                "-m",
                "prefect",
                "server",
                "start",
                *("--host", "127.0.0.1"),
                *("--port", str(port)),
            ],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_healthy(api, server, log)
        run = [sys.executable, "-m", "prefect", "--no-prompt"]
        for step in (["work-pool", "create", "nudge", "--type", "process"],
                     ["deploy", "--name", "send-campaign"]):  # fmt: skip
            subprocess.run([*run, *step], env=env, cwd=REPO, check=True,  # noqa: S603
                           capture_output=True, timeout=300)  # fmt: skip
        # A small college and one dry run through the server: its preview artifact.
        script = REPO / "docs" / "_screenshot_run.py"
        out = subprocess.run(  # noqa: S603
            [sys.executable, str(script), str(work)],
            env=env,
            cwd=REPO,
            check=True,
            capture_output=True,
            text=True,
            timeout=300,
        )
        ids = json.loads(out.stdout.strip().splitlines()[-1])
        OUT.mkdir(parents=True, exist_ok=True)
        ui = f"http://127.0.0.1:{port}"
        shoot(
            args.chromium,
            f"{ui}/deployments/deployment/{ids['deployment']}/run",
            OUT / "send-campaign-form.png",
            height=1900,
            profile=work / "chromium",
        )
        shoot(
            args.chromium,
            f"{ui}/artifacts/artifact/{ids['preview']}",
            OUT / "campaign-preview.png",
            height=900,
            profile=work / "chromium",
        )
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
