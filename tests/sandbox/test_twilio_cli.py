"""``nudge sandbox twilio`` and ``nudge sandbox reply``."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from email.utils import parsedate_to_datetime
from pathlib import Path

import httpx
import pytest
import typer
from typer.main import get_command
from typer.testing import CliRunner

from nudge.cli.sandbox_twilio import register
from nudge.settings import get_settings
from sandbox.twilio import EmulatorConfig, EmulatorServer

REPO = Path(__file__).resolve().parents[2]
ACCOUNT = "AC" + "5" * 32
STUDENT, OURS = "+15550400001", "+14155550400"


def sandbox_app() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


@pytest.fixture(scope="module")
def emulator() -> Iterator[EmulatorServer]:
    with EmulatorServer(EmulatorConfig(account_sid=ACCOUNT)) as server:
        yield server


def test_module_imports_only_typer() -> None:
    heavy = ["uvicorn", "starlette", "httpx", "twilio", "pydantic", "sandbox", "aiohttp"]
    code = (
        f"import sys, nudge.cli.sandbox_twilio; print([m for m in {heavy!r} if m in sys.modules])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("name", ["twilio", "reply"])
def test_every_option_has_help(name: str) -> None:
    command = get_command(sandbox_app()).commands[name]  # type: ignore[attr-defined]
    options = [p for p in command.params if p.name != "help"]

    assert options
    assert [p.name for p in options if not getattr(p, "help", None)] == []


def test_reply_injects_and_shows_the_auto_reply(emulator: EmulatorServer) -> None:
    emulator.reset()
    result = CliRunner().invoke(
        sandbox_app(),
        ["reply", "--from", STUDENT, "--to", OURS, "--body", "Stop!", "--url", emulator.base_url],
    )

    assert result.exit_code == 0, result.output
    assert "Keyword: STOP" in result.output
    assert "You have successfully been unsubscribed." in result.output
    assert STUDENT not in result.output  # masked
    assert emulator.counters()["inbound"] == 1


def test_reply_json_uses_the_url_from_settings(
    emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    emulator.reset()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NUDGE_TWILIO_BASE_URL", emulator.base_url)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(
            sandbox_app(), ["reply", "--from", STUDENT, "--to", OURS, "--body", "hi", "--json"]
        )
    finally:
        get_settings.cache_clear()

    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert (data["keyword"], data["auto_reply"]) == (None, None)
    assert data["message"]["body"] == "hi"


def test_reply_sent_ago_back_dates_the_text(emulator: EmulatorServer) -> None:
    emulator.reset()
    now = emulator.advance(0)
    args = ["reply", "--from", STUDENT, "--to", OURS, "--body", "late", "--sent-ago", "600"]
    result = CliRunner().invoke(sandbox_app(), [*args, "--url", emulator.base_url])
    as_json = CliRunner().invoke(sandbox_app(), [*args, "--url", emulator.base_url, "--json"])
    refused = CliRunner().invoke(sandbox_app(), [*args[:-1], "-5", "--url", emulator.base_url])

    assert result.exit_code == 0, result.output
    assert "Sent 600 s ago" in result.output
    sent = parsedate_to_datetime(json.loads(as_json.stdout)["message"]["date_sent"])
    assert now - 602 <= sent.timestamp() <= now - 598
    assert refused.exit_code == 2


def test_reply_without_an_emulator_url_explains(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NUDGE_TWILIO_BASE_URL", raising=False)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(
            sandbox_app(), ["reply", "--from", STUDENT, "--to", OURS, "--body", "hi"]
        )
    finally:
        get_settings.cache_clear()

    assert result.exit_code == 2
    assert "NUDGE_TWILIO_BASE_URL" in result.stderr


def test_reply_to_nothing_fails_cleanly() -> None:
    result = CliRunner().invoke(
        sandbox_app(),
        ["reply", "--from", STUDENT, "--to", OURS, "--body", "hi", "--url", "http://127.0.0.1:9"],
    )

    assert result.exit_code == 1
    assert "no Twilio emulator answers" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--share-429", "1.5"], "share_429"),
        (["--fail", "+15550400002"], "NUMBER=CODE"),
        (["--queue-delay-s", "-1"], "queue_delay_s"),
        (["--webhook-delay-s", "-1"], "inbound_webhook_delay_s"),
        (["--inbound-lag-s", "-0.5"], "inbound_lag_s"),
    ],
    ids=[
        "share-out-of-range",
        "fail-without-code",
        "negative-queue-delay",
        "negative-webhook-delay",
        "negative-lag",
    ],
)
def test_twilio_refuses_bad_knobs_before_serving(args: list[str], message: str) -> None:
    result = CliRunner().invoke(sandbox_app(), ["twilio", "--port", "0", *args])

    assert result.exit_code == 2
    assert message in result.output


def test_twilio_serves_with_the_given_knobs_until_terminated(tmp_path: Path) -> None:
    script = (
        "import typer; from nudge.cli.sandbox_twilio import register; "
        "app = typer.Typer(); register(app); app()"
    )
    args = ["twilio", "--port", "0", "--share-429", "1", "--state", str(tmp_path / "t.sqlite")]
    args += ["--inbound-lag-s", "900", "--webhook-delay-s", "60"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(
        [sys.executable, "-c", script, *args], cwd=REPO, env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        banner = process.stdout.readline()
        match = re.search(r"http://127\.0\.0\.1:\d+", banner)
        assert match, banner
        url = f"{match.group()}/2010-04-01/Accounts/{ACCOUNT}/Messages.json"
        created = httpx.post(
            url, auth=(ACCOUNT, "t"), data={"To": STUDENT, "From": OURS, "Body": "x"}
        )
        inbound = httpx.post(
            f"{match.group()}/sandbox/inbound", json={"From": STUDENT, "To": OURS, "Body": "hi"}
        )
        listed = httpx.get(url, auth=(ACCOUNT, "t"))
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=15)
    # Not communicate(): with a timeout it reads the pipe directly and would lose the lines
    # readline() already buffered.
    out = process.stdout.read()
    process.stdout.close()

    assert (created.status_code, created.json()["code"]) == (429, 20429)
    assert listed.status_code == 200
    assert inbound.json()["message"]["status"] == "receiving"  # --webhook-delay-s
    assert listed.json()["messages"] == []  # --inbound-lag-s: not listed yet
    assert "export NUDGE_TWILIO_BASE_URL=" in out
    assert process.returncode == 0
    assert (tmp_path / "t.sqlite").exists()
