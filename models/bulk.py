"""Bulk inserts at driver speed: ``executemany`` on SQLite, ``COPY`` on PostgreSQL.

SQLAlchemy's executemany runs every value through Python-level type processors (a UTC
timestamp costs a conversion and a format per row); for the hundreds of thousands of rows of
a first SIS sync that is most of the write time. This helper converts each column once, by
its declared type, and hands plain tuples to the driver, inside the caller's transaction.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import JSON, Boolean, Table
from sqlmodel import Session

from models.types import UTCDateTime

Converter = Callable[[Any], Any]


@lru_cache(maxsize=4096)
def _sqlite_ts(value: datetime) -> str:
    # The exact format SQLAlchemy's SQLite DateTime stores and parses back. Cached: a sync
    # writes the same "now" hundreds of thousands of times.
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _is_json(table: Table, name: str) -> bool:
    col_type = table.c[name].type
    variants = getattr(col_type, "_variant_mapping", {}).values()
    return isinstance(col_type, JSON) or any(isinstance(t, JSON) for t in variants)


def _sqlite_bool(value: Any) -> int:
    return int(bool(value))


def _converters(table: Table, columns: Sequence[str], dialect: str) -> list[Converter | None]:
    found: list[Converter | None] = []
    for name in columns:
        col_type = table.c[name].type
        if _is_json(table, name):
            found.append(_json)
        elif isinstance(col_type, UTCDateTime):
            found.append(_sqlite_ts if dialect == "sqlite" else None)
        elif isinstance(col_type, Boolean) and dialect == "sqlite":
            found.append(_sqlite_bool)
        else:
            found.append(None)
    return found


def bulk_insert(session: Session, table: Table, rows: Iterable[Mapping[str, Any]]) -> int:
    """Insert ``rows`` (dicts with the same keys) into ``table``; returns the row count."""
    rows = list(rows)
    if not rows:
        return 0
    columns = list(rows[0].keys())
    dialect = session.get_bind().dialect.name
    converters = _converters(table, columns, dialect)
    # Column by column: one converter lookup per column, not per value.
    series: list[list[Any]] = []
    for name, conv in zip(columns, converters, strict=True):
        values = [row[name] for row in rows]
        if conv is not None:
            values = [None if v is None else conv(v) for v in values]
        series.append(values)
    tuples = list(zip(*series, strict=True))
    dbapi = session.connection().connection.dbapi_connection
    assert dbapi is not None  # noqa: S101 - an open connection inside the transaction
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
