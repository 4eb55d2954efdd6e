"""Alembic migrations create exactly the schema the models describe, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlmodel import SQLModel

import models  # noqa: F401 - registers the tables
from models.db import make_engine, upgrade_database


def test_upgrade_creates_the_models_schema_and_is_idempotent(empty_db_url: str) -> None:
    before, after = upgrade_database(empty_db_url)
    assert before is None and after is not None
    assert upgrade_database(empty_db_url) == (after, after)
    engine = make_engine(empty_db_url)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": False})
            diff = compare_metadata(ctx, SQLModel.metadata)
    finally:
        engine.dispose()
    assert diff == []
