"""The emulator runner: thread and subprocess modes, restart with a state file."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from sandbox.twilio import EmulatorConfig, EmulatorServer, run_emulator

ACCOUNT = "AC" + "4" * 32
STUDENT, OURS = "+15550300001", "+14155550300"


def messages(server: EmulatorServer) -> list[dict[str, object]]:
    url = f"{server.base_url}/2010-04-01/Accounts/{ACCOUNT}/Messages.json"
    page = httpx.get(url, auth=(ACCOUNT, "token")).json()
    return list(page["messages"])


def test_thread_mode_serves_until_stopped() -> None:
    server = EmulatorServer(EmulatorConfig(account_sid=ACCOUNT))
    with pytest.raises(RuntimeError, match="not started"):
        _ = server.base_url

    with server:
        assert server.base_url.startswith("http://127.0.0.1:")
        assert server.env() == {"NUDGE_TWILIO_BASE_URL": server.base_url}
        server.inject(STUDENT, OURS, "Hello")
        assert len(messages(server)) == 1

    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{server.base_url}/sandbox/health")


def test_restart_without_state_starts_empty_on_the_same_port() -> None:
    with run_emulator(EmulatorConfig(account_sid=ACCOUNT)) as server:
        port = server.port
        server.inject(STUDENT, OURS, "Hello")
        server.restart()

        assert server.port == port
        assert messages(server) == []


def test_subprocess_mode_keeps_state_across_restarts(tmp_path: Path) -> None:
    state = tmp_path / "twilio.sqlite"
    config = EmulatorConfig(account_sid=ACCOUNT)
    with EmulatorServer(config, state_path=state, mode="subprocess") as server:
        server.inject(STUDENT, OURS, "STOP")
        server.restart()
        kept = messages(server)
        knobs = server.control(latency_ms=1)

    # Same second: the list orders them by SID, not by which came first.
    assert sorted(m["direction"] for m in kept) == ["inbound", "outbound-reply"]
    assert knobs["account_sid"] == ACCOUNT
    assert state.exists()
