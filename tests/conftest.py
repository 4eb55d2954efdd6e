"""Shared fixtures: a fresh database per test on SQLite, and on PostgreSQL when
``NUDGE_TEST_POSTGRES_URL`` is set (CI always sets it), plus isolated Prefect state."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

# Prefect reads its home at import: isolate it before anything imports prefect, so cached
# results and the local database never leak between test sessions or into ~/.prefect.
_PREFECT_HOME = tempfile.mkdtemp(prefix="nudge-test-prefect-")
os.environ["PREFECT_HOME"] = _PREFECT_HOME
os.environ.pop("PREFECT_API_URL", None)
os.environ.setdefault("PREFECT_LOGGING_TO_API_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

import pytest  # noqa: E402
from sqlalchemy import text  # noqa: E402
from sqlalchemy.engine import Engine  # noqa: E402
from sqlmodel import Session, SQLModel  # noqa: E402

import models  # noqa: E402,F401 - registers the tables
from models.db import make_engine, normalize_url  # noqa: E402
from nudge.settings import Settings  # noqa: E402

POSTGRES_URL = os.environ.get("NUDGE_TEST_POSTGRES_URL")
BACKENDS = [
    "sqlite",
    pytest.param(
        "postgres",
        marks=[
            pytest.mark.postgres,
            pytest.mark.skipif(
                not POSTGRES_URL, reason="NUDGE_TEST_POSTGRES_URL not set (CI sets it)"
            ),
        ],
    ),
]


def _postgres_schema_url(base: str) -> Iterator[str]:
    """A URL whose connections live in a brand-new schema, dropped afterwards."""
    schema = "t_" + uuid.uuid4().hex[:12]
    admin = make_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in base else "?"
    try:
        yield normalize_url(base) + f"{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database URL: a SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'nudge.db'}"
    else:
        assert POSTGRES_URL
        yield from _postgres_schema_url(POSTGRES_URL)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """An engine on a database with every table created."""
    eng = make_engine(db_url)
    SQLModel.metadata.create_all(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A session for arranging and asserting (the code under test opens its own)."""
    with Session(engine, expire_on_commit=False) as s:
        yield s


@pytest.fixture
def settings(engine: Engine, db_url: str, tmp_path: Path) -> Settings:
    """Settings pointing at the test database and temporary folders, ignoring .env."""
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=db_url,
        outbox_dir=tmp_path / "outbox",
        report_dir=tmp_path / "reports",
        sync_workers=1,
    )
