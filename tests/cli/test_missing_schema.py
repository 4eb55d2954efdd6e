"""A database nobody ran `nudge init` on is one clear line and exit 2, not a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from nudge.cli.main import missing_schema

NUDGE = Path(sys.executable).with_name("nudge")


def test_a_command_on_an_empty_database_says_run_nudge_init(tmp_path: Path) -> None:
    env = {**os.environ, "NUDGE_DATABASE_URL": f"sqlite:///{tmp_path / 'empty.db'}"}
    done = subprocess.run(
        [str(NUDGE), "send", "--sender", "E1", "--message", "hi", "--student", "S1"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "error: the database at NUDGE_DATABASE_URL has no table 'sms_config': nudge's schema "
        "is not there yet or is older than this version. Run `nudge init` (creates or "
        "upgrades it; nothing is lost)."
    )
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("message", "table"),
    [
        pytest.param("(sqlite3.OperationalError) no such table: campaign", "campaign", id="sqlite"),
        pytest.param(
            '(psycopg.errors.UndefinedTable) relation "inbound_message" does not exist',
            "inbound_message",
            id="postgresql",
        ),
        pytest.param("(sqlite3.OperationalError) database is locked", None, id="other-error"),
    ],
)
def test_missing_tables_are_recognised_on_both_databases(message: str, table: str | None) -> None:
    hint = missing_schema(RuntimeError(message))
    if table is None:
        assert hint is None
    else:
        assert hint is not None and f"no table {table!r}" in hint and "nudge init" in hint
