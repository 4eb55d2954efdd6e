"""Fixtures of the CLI tests: every command runs from a temporary working folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from nudge.settings import get_settings


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A temporary working folder and a SQLite database nothing has created yet (``nudge
    init`` creates it)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NUDGE_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


@pytest.fixture
def cli_db(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, db_url: str, engine: Engine
) -> Iterator[Path]:
    """A temporary working folder and an empty database with every table, on SQLite and on
    PostgreSQL (``NUDGE_TEST_POSTGRES_URL``); yields the folder."""
    folder = tmp_path / "work"
    folder.mkdir()
    monkeypatch.chdir(folder)
    monkeypatch.setenv("NUDGE_DATABASE_URL", db_url)
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    get_settings.cache_clear()
    yield folder
    get_settings.cache_clear()
