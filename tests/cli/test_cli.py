"""The ``nudge`` command line: fast start-up, help everywhere, one JSON object with --json."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer
from typer.testing import CliRunner

from nudge.cli.main import app
from tests.helpers import phone, staff, student, write_extract

runner = CliRunner()


def test_help_path_imports_neither_prefect_nor_great_expectations() -> None:
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from nudge.cli.main import app\n"
        "result = CliRunner().invoke(app, ['--help'])\n"
        "assert result.exit_code == 0, result.output\n"
        "heavy = [m for m in ('prefect', 'great_expectations', 'sqlalchemy', 'twilio', 'rich')"
        " if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def _commands(group: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    # typer vendors its own click: walk groups by shape, not by class.
    for name, command in group.commands.items():
        yield f"{prefix}{name}", command
        if hasattr(command, "commands"):
            yield from _commands(command, f"{prefix}{name} ")


def test_every_command_and_option_has_help() -> None:
    root = typer.main.get_command(app)
    missing = []
    for name, command in _commands(root):
        if not (command.help or command.short_help):
            missing.append(name)
        for param in command.params:
            is_option = param.param_type_name == "option"
            if is_option and not getattr(param, "help", None) and param.name != "help":
                missing.append(f"{name} {param.opts[0]}")
    assert missing == []


def run_json(*args: str) -> dict[str, object]:
    result = runner.invoke(app, [*args, "--json"])
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, result.stdout
    data: dict[str, object] = json.loads(lines[0])
    data["_exit"] = result.exit_code
    return data


def test_init_sync_and_config_with_json(cli_env: Path) -> None:
    assert run_json("init")["revision"] is not None
    source = write_extract(
        cli_env / "x", [staff("A1"), student("S1")], [phone("S1", "212-555-0101")]
    )
    stats = run_json("sync", "--source", source, "--no-engine")
    assert (stats["people_created"], stats["sms_eligible"], stats["_exit"]) == (2, 1, 0)
    assert run_json("config", "set", "quiet_hours", "09:00-20:00")["value"] == "09:00-20:00"
    refused = run_json("config", "set", "quota_unit", "bytes")
    assert refused["_exit"] == 2 and "allowed values: messages, segments" in str(refused["error"])
    usage = run_json("usage")
    assert set(usage) >= {"month", "used", "limit", "remaining", "unit"}


def test_sync_of_a_folder_without_required_columns_fails_clearly(cli_env: Path) -> None:
    run_json("init")
    source = write_extract(cli_env / "x", [student("S1")], [], phone_columns=["person_id"])
    result = run_json("sync", "--source", source, "--no-engine")
    assert result["_exit"] == 2 and "phones.csv" in str(result["error"])


def test_admin_commands_round_trip(cli_env: Path) -> None:
    run_json("init")
    source = write_extract(
        cli_env / "x",
        [staff("A1", roles="", department="Advising", title="Success Coach"), student("S1")],
        [phone("S1", "212-555-0101"), phone("S1", "212-555-0102", "PR", primary="N")],
    )
    run_json("sync", "--source", source, "--no-engine")
    runs = run_json("sync-runs", "list")
    assert runs["runs"][0]["status"] == "succeeded"  # type: ignore[index]
    shown = run_json("sync-runs", "show", str(runs["runs"][0]["id"]))  # type: ignore[index]
    assert shown["quarantined"] == []

    phones = run_json("phones", "show", "S1")
    assert phones["sms_number"] == "+1******0101"  # masked unless --reveal
    moved = run_json("phones", "override", "S1", "(212) 555-0102", "--allow")
    assert moved["sms_number"] == "+1******0102"
    assert run_json("phones", "override", "S1", "nope", "--allow")["_exit"] == 2

    assert run_json("roles", "define", "Texting", "--title-contains", "coach")["role"] == "Texting"
    roles = run_json("roles", "list")
    assert roles["dynamic"] == {"Texting": "title contains coach"}
    assert run_json("roles", "grant", "A1", "Outreach", "--create")["granted"] is True
    assert run_json("roles", "grant", "NOBODY", "Outreach")["_exit"] == 1
    assert run_json("roles", "revoke", "A1", "Outreach")["revoked"] is True
    assert run_json("roles", "undefine", "Texting")["removed"] is True

    preview = run_json(
        "preview", "--sender", "A1", "--message", "Hi {first_name}", "--student", "S1"
    )
    assert preview["refused_reason"] and "may not send texts" in str(preview["refused_reason"])
    assert run_json("campaigns", "list")["campaigns"] == []
    assert run_json("campaigns", "show", "99")["_exit"] == 1
    assert run_json("campaigns", "cancel", "99")["_exit"] == 1


def test_send_exits_4_naming_what_is_left_when_it_returns_with_work_pending(cli_env: Path) -> None:
    from datetime import UTC, datetime, timedelta
    from zoneinfo import ZoneInfo

    run_json("init")
    source = write_extract(
        cli_env / "x", [staff("A1", roles="Texting"), student("S1")], [phone("S1", "212-555-0101")]
    )
    run_json("sync", "--source", source, "--no-engine")
    run_json("config", "set", "permitted_roles", "Texting")
    later = datetime.now(UTC).astimezone(ZoneInfo("America/New_York")) + timedelta(hours=2)
    window = f"{later:%H}:00-{(later + timedelta(hours=1)):%H}:00"
    assert run_json("config", "set", "quiet_hours", window)["value"] == window
    result = runner.invoke(
        app, ["send", "--sender", "A1", "--message", "Hi {first_name}", "--student", "S1", "--json"]
    )
    assert result.exit_code == 4
    data = json.loads(result.stdout.strip().splitlines()[-1])
    assert (data["status"], data["pending"]["total"], data["pending"]["deferred"]) == (
        "waiting",
        2,
        2,
    )  # the opt-in notice and the text wait for the window
    assert "2 message(s) not sent yet: 2 deferred by quiet hours until" in result.stderr
