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
from nudge import wiring  # noqa: E402
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


@pytest.fixture(autouse=True)
def _settings_only_from_the_test(monkeypatch: pytest.MonkeyPatch) -> None:
    """A test's ``Settings`` are what the test passes or sets, never the developer's shell:
    ``NUDGE_*`` variables (but the ``NUDGE_TEST_*`` switches) are unset for each test."""
    for key in list(os.environ):
        if key.startswith("NUDGE_") and not key.startswith("NUDGE_TEST_"):
            monkeypatch.delenv(key)


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


@pytest.fixture(scope="session")
def _pg_session_url() -> Iterator[str]:
    """One PostgreSQL schema for the whole session, with every table created once."""
    assert POSTGRES_URL
    for url in _postgres_schema_url(POSTGRES_URL):
        eng = make_engine(url)
        SQLModel.metadata.create_all(eng)
        eng.dispose()
        yield url


def _truncate_all(url: str) -> None:
    eng = make_engine(url)
    names = ", ".join(f'"{t.name}"' for t in SQLModel.metadata.sorted_tables)
    with eng.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    eng.dispose()


@pytest.fixture(autouse=True)
def _fresh_process_engines() -> Iterator[None]:
    """Close the shell's per-process engines after each test (``nudge.wiring``): every test
    has its own database, and a pooled connection must not outlive it."""
    yield
    wiring.dispose_engines()


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database URL holding no rows: a new SQLite file (tables created by ``engine``), or
    the session's PostgreSQL schema, emptied before the test."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'nudge.db'}"
    else:
        url = request.getfixturevalue("_pg_session_url")
        _truncate_all(url)
        yield url


@pytest.fixture(params=BACKENDS)
def empty_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database with no tables at all (for migrations): SQLite file or a new schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
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


# --- the Twilio emulator and a real SMTP server -------------------------------------------


@pytest.fixture(scope="session")
def _emulator_server() -> Iterator[object]:
    """One emulator for the session (thread mode, messages final at once); reset per test."""
    from sandbox.twilio import EmulatorConfig, run_emulator

    with run_emulator(EmulatorConfig(status_delay_ms=0)) as server:
        yield server


@pytest.fixture
def emulator(_emulator_server: object) -> object:
    """The session's emulator, emptied (messages, numbers, opt-outs, knobs) for this test."""
    _emulator_server.reset()  # type: ignore[attr-defined]
    return _emulator_server


@pytest.fixture
def smtp() -> Iterator[object]:
    """A real SMTP server (aiosmtpd) on loopback, recording what it receives."""
    from tests.smtp import run_smtp

    with run_smtp() as server:
        yield server


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """A Prefect test server for the whole session (~20 s to start: once, never per test)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield


# --- a real IMAP server (pymap) -------------------------------------------------------------

from typing import TYPE_CHECKING  # noqa: E402

if TYPE_CHECKING:
    from tests.imap_server import ImapServer


@pytest.fixture
def imap(tmp_path: Path) -> Iterator[ImapServer]:
    """A real IMAP server (pymap, in memory, plain IMAP on loopback) of its own for this
    test, with one login (``.username`` / ``.password``) whose INBOX is empty; about 20 ms
    to start. See tests/imap_server.py for its helpers (``append``, ``messages``…)."""
    from tests.imap_server import run_imap

    with run_imap() as server:
        yield server
