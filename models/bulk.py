"""Bulk statements: inserts at driver speed (``executemany`` on SQLite, ``COPY`` on
PostgreSQL), and IN lists in slices (:func:`chunked`).

SQLAlchemy's executemany runs every value through Python-level type processors (a UTC
timestamp costs a conversion and a format per row); for the hundreds of thousands of rows of
a first SIS sync that is most of the write time. This helper converts each column once, by
its declared type, and hands plain tuples to the driver, inside the caller's transaction.
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, TypeVar

from sqlalchemy import JSON, Table
from sqlmodel import Session

from models.types import UTCDateTime

Converter = Callable[[Any], Any]
T = TypeVar("T")
_CHUNK = 2000


def chunked(items: Sequence[T], size: int = _CHUNK) -> Iterator[Sequence[T]]:
    """Slices of at most ``size`` items (keeps IN lists under every driver's limits)."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


@lru_cache(maxsize=4096)
def _sqlite_ts(value: datetime) -> str:
    # The exact format SQLAlchemy's SQLite DateTime stores and parses back. Cached: a sync
    # writes the same "now" hundreds of thousands of times.
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


_ENCODE = json.JSONEncoder(separators=(",", ":")).encode
_LIST_CACHE: dict[tuple[Any, ...], str] = {}


def _json(value: Any) -> str:
    # Most people share a handful of tag/course/role lists: encode each distinct list once.
    if isinstance(value, list) and len(_LIST_CACHE) < 100_000:
        key = tuple(value)
        found = _LIST_CACHE.get(key)
        if found is None:
            found = _LIST_CACHE[key] = _ENCODE(value)
        return found
    return _ENCODE(value)


def _is_json(table: Table, name: str) -> bool:
    col_type = table.c[name].type
    variants = getattr(col_type, "_variant_mapping", {}).values()
    return isinstance(col_type, JSON) or any(isinstance(t, JSON) for t in variants)


def _converters(table: Table, columns: Sequence[str], dialect: str) -> list[Converter | None]:
    found: list[Converter | None] = []
    for name in columns:
        col_type = table.c[name].type
        if _is_json(table, name):
            found.append(_json)
        elif isinstance(col_type, UTCDateTime):
            found.append(_sqlite_ts if dialect == "sqlite" else None)
        else:
            found.append(None)
    return found


def _insert(dbapi: Any, dialect: str, table: Table, rows: Sequence[Mapping[str, Any]]) -> int:
    if not rows:
        return 0
    columns = list(rows[0].keys())
    converters = _converters(table, columns, dialect)
    # Column by column: one converter lookup per column, not per value.
    series: list[list[Any]] = []
    for name, conv in zip(columns, converters, strict=True):
        values = [row[name] for row in rows]
        if conv is not None:
            values = [None if v is None else conv(v) for v in values]
        series.append(values)
    tuples = list(zip(*series, strict=True))
    quoted = ", ".join(f'"{c}"' for c in columns)
    cursor = dbapi.cursor()
    try:
        if dialect == "postgresql":
            with cursor.copy(f'COPY "{table.name}" ({quoted}) FROM STDIN') as copy:
                for row_values in tuples:
                    copy.write_row(row_values)
        else:
            marks = ", ".join("?" for _ in columns)
            # Table and column names come from our own metadata, never from input.
            sql = f'INSERT INTO "{table.name}" ({quoted}) VALUES ({marks})'  # noqa: S608
            cursor.executemany(sql, tuples)
    finally:
        cursor.close()
    return len(tuples)


def _dbapi(session: Session) -> Any:
    dbapi = session.connection().connection.dbapi_connection
    if dbapi is None:  # pragma: no cover - a session inside a transaction always has one
        raise RuntimeError("no database connection in this session")
    return dbapi


def bulk_insert(session: Session, table: Table, rows: Iterable[Mapping[str, Any]]) -> int:
    """Insert ``rows`` (dicts with the same keys) into ``table``; returns the row count."""
    return _insert(_dbapi(session), session.get_bind().dialect.name, table, list(rows))


class BackgroundWriter:
    """Inserts batches on a second thread while the caller builds the next ones.

    The driver releases the GIL while the database works (SQLite's step, PostgreSQL's
    COPY), so building rows and writing them overlap on two cores. Batches are written in
    the order given, in the caller's transaction; :meth:`close` waits for all of them and
    re-raises the first error, after which nothing more is written.
    """

    def __init__(self, session: Session) -> None:
        self._dbapi = _dbapi(session)
        self._dialect = session.get_bind().dialect.name
        self._queue: queue.Queue[tuple[Table, Sequence[Mapping[str, Any]]] | None] = queue.Queue(
            maxsize=4
        )
        self._error: BaseException | None = None
        self.written = 0
        self._thread = threading.Thread(target=self._run, name="bulk-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            if self._error is None:
                try:
                    self.written += _insert(self._dbapi, self._dialect, *job)
                except BaseException as exc:  # handed to the caller in close()
                    self._error = exc

    def put(self, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
        """Queue one batch (blocks while four batches are already waiting)."""
        if self._error is not None:
            raise self._error
        if rows:
            self._queue.put((table, rows))

    def close(self) -> None:
        """Wait for every queued batch; raise the first error if one failed."""
        self._queue.put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error

    def __enter__(self) -> BackgroundWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_rest: object) -> None:
        if exc_type is None:
            self.close()
            return
        # The caller failed: stop writing, let its exception (not ours) propagate.
        self._error = self._error or RuntimeError("aborted")
        self._queue.put(None)
        self._thread.join()
