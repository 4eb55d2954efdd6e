"""Engines, sessions and schema upgrades for nudge's own database (SQLite or PostgreSQL).

The caller owns the session: repository functions take ``*, session`` and never commit;
the flow or CLI command that opened the session decides when a unit of work is done.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session, create_engine

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"

#: PostgreSQL ends a session left idle inside a transaction for this long, releasing its row
#: locks: a frozen worker (SIGSTOP, a VM paused, a debugger) cannot block the others forever.
#: nudge's transactions are short (no network call inside one), so a minute is generous.
DEFAULT_IDLE_TX_TIMEOUT_S = 60.0


def normalize_url(url: str) -> str:
    """Use the psycopg 3 driver for plain ``postgresql://`` URLs."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def make_engine(
    url: str, *, idle_tx_timeout_s: float | None = DEFAULT_IDLE_TX_TIMEOUT_S, **kwargs: Any
) -> Engine:
    """Create an engine with the settings nudge relies on.

    SQLite gets WAL (readers do not block the writer), enforced foreign keys and a busy
    timeout, so a CLI command and a flow can share the file. PostgreSQL gets pre-ping so a
    worker survives a database restart, and ``idle_in_transaction_session_timeout`` (from
    ``idle_tx_timeout_s``; ``None`` leaves the server's default) so a paused process that
    froze between two statements of a transaction loses its session and its row locks
    instead of stalling every other worker.
    """
    url = normalize_url(url)
    if make_url(url).get_backend_name() == "sqlite":
        connect_args = {"check_same_thread": False, "timeout": 30}
        engine = create_engine(url, connect_args=connect_args, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            # A first sync writes ~100 MB in one transaction: keep its pages in memory.
            cursor.execute("PRAGMA cache_size=-131072")
            cursor.close()

        return engine
    if idle_tx_timeout_s is not None:
        ms = max(int(idle_tx_timeout_s * 1000), 1)
        options = f"-c idle_in_transaction_session_timeout={ms}"
        given = make_url(url).query.get("options")  # e.g. a search_path: keep it
        if given:
            options = f"{given if isinstance(given, str) else ' '.join(given)} {options}"
        kwargs["connect_args"] = {"options": options, **kwargs.get("connect_args", {})}
    return create_engine(url, pool_pre_ping=True, **kwargs)


def is_postgres(engine: Engine) -> bool:
    """True when ``engine`` talks to PostgreSQL (where row locks and SKIP LOCKED exist)."""
    return engine.dialect.name == "postgresql"


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session committed on success and rolled back on any error."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def alembic_config(url: str) -> Any:
    """An Alembic ``Config`` pointing at nudge's migrations and ``url``."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", normalize_url(url).replace("%", "%%"))
    return cfg


def upgrade_database(url: str) -> tuple[str | None, str | None]:
    """Create or upgrade the database at ``url`` to the newest schema.

    Returns the revision before and after, so ``nudge init`` can say what it did.
    """
    from alembic import command
    from alembic.runtime.migration import MigrationContext

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            before = MigrationContext.configure(conn).get_current_revision()
        command.upgrade(alembic_config(url), "head")
        with engine.connect() as conn:
            after = MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()
    return before, after
