"""A process frozen inside a transaction does not stall the others on PostgreSQL."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from models.db import make_engine
from tests.conftest import POSTGRES_URL

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(not POSTGRES_URL, reason="NUDGE_TEST_POSTGRES_URL not set (CI sets it)"),
]


@pytest.fixture
def pg_url(request: pytest.FixtureRequest) -> str:
    """The session's PostgreSQL schema (tables created)."""
    url: str = request.getfixturevalue("_pg_session_url")
    return url


def test_a_session_frozen_inside_a_transaction_loses_its_locks(pg_url: str) -> None:
    db_url = pg_url
    frozen = make_engine(db_url, idle_tx_timeout_s=0.5)
    other = make_engine(db_url, idle_tx_timeout_s=None)
    with other.begin() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS lock_probe (id int primary key, n int)"))
        conn.execute(text("DELETE FROM lock_probe"))
        conn.execute(text("INSERT INTO lock_probe VALUES (1, 0)"))
    try:
        held = frozen.connect()
        held.begin()
        held.execute(text("SELECT n FROM lock_probe WHERE id = 1 FOR UPDATE"))
        # ... and the process freezes here (SIGSTOP) without committing.
        started = time.monotonic()
        with other.begin() as conn:
            conn.execute(text("SET LOCAL lock_timeout = '10s'"))
            conn.execute(text("UPDATE lock_probe SET n = n + 1 WHERE id = 1"))
        waited = time.monotonic() - started
        assert 0.3 < waited < 10  # it waited for the frozen session, then got the row
        with pytest.raises(DBAPIError, match="idle-in-transaction timeout"):
            held.execute(text("SELECT 1"))  # on waking, its session is gone: it knows
        held.invalidate()
        with other.connect() as conn:
            assert conn.execute(text("SELECT n FROM lock_probe")).scalar_one() == 1
    finally:
        with other.begin() as conn:
            conn.execute(text("DROP TABLE IF EXISTS lock_probe"))
        frozen.dispose()
        other.dispose()


def test_the_timeout_keeps_a_search_path_given_in_the_url(pg_url: str) -> None:
    eng = make_engine(pg_url, idle_tx_timeout_s=7)
    try:
        with eng.connect() as conn:
            timeout = conn.execute(text("SHOW idle_in_transaction_session_timeout"))
            assert timeout.scalar_one() == "7s"
            assert conn.execute(text("SHOW search_path")).scalar_one().startswith("t_")
    finally:
        eng.dispose()
