"""What each SIS sync did: its statistics and the rows it had to quarantine."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column, select
from sqlmodel import Field, Session, SQLModel, col

from models.types import PortableJSON, UTCDateTime, utcnow


class SyncRun(SQLModel, table=True):
    """One run of the SIS sync: source, outcome and the figures the report shows."""

    __tablename__ = "sync_run"

    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(max_length=500)
    status: str = Field(max_length=16, description="running | succeeded | failed | refused")
    started_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )
    finished_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    stats: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(PortableJSON, nullable=False)
    )
    error: str | None = Field(default=None)


class QuarantinedRow(SQLModel, table=True):
    """A source row that could not be used, kept with its line number and reason."""

    __tablename__ = "quarantined_row"

    id: int | None = Field(default=None, primary_key=True)
    sync_run_id: int = Field(foreign_key="sync_run.id", index=True)
    file: str = Field(max_length=64)
    line: int
    person_sis_id: str | None = Field(default=None, max_length=64)
    reason: str = Field(max_length=500)
    raw: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(PortableJSON, nullable=False)
    )


# --- repository functions (the caller owns the session) -----------------------------------


def recent_runs(*, session: Session, limit: int) -> list[SyncRun]:
    """The latest ``limit`` syncs, newest first."""
    stmt = select(SyncRun).order_by(col(SyncRun.id).desc()).limit(limit)
    return list(session.execute(stmt).scalars())


def get_run(*, session: Session, run_id: int) -> SyncRun | None:
    """One sync run, or None."""
    return session.get(SyncRun, run_id)


def quarantined_rows(*, session: Session, run_id: int) -> list[QuarantinedRow]:
    """The rows one sync quarantined, by file and line."""
    stmt = (
        select(QuarantinedRow)
        .where(col(QuarantinedRow.sync_run_id) == run_id)
        .order_by(col(QuarantinedRow.file), col(QuarantinedRow.line))
    )
    return list(session.execute(stmt).scalars())
