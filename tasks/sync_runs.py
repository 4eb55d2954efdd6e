"""The bookkeeping of SIS syncs: the SyncRun row each run leaves, its quarantine, its report.

A sync begins by recording itself as ``running`` (:func:`begin_run`). It ends in one of two
ways: ``succeeded``, written by ``tasks.sis.apply`` in the very transaction that applies the
plan (:func:`finish_run`, with the quarantined rows, :func:`store_quarantine`); or ``failed``
/ ``refused`` with nothing else changed (:func:`fail_run`). :func:`report` summarises a
successful run as markdown: logged, and a Prefect artifact inside a flow run. Figures and
reasons only: no phone number reaches a log.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from sqlalchemy import insert, update
from sqlalchemy.engine import Engine
from sqlmodel import Session

from adapters.sis.base import QuarantinedRow
from models.db import session_scope
from models.sync import QuarantinedRow as QuarantinedRowTable
from models.sync import SyncRun
from models.types import utcnow
from tasks.runtime import in_prefect_run, run_logger


def begin_run(engine: Engine, source: str) -> int:
    """Record the start of a sync from ``source``; returns the SyncRun id."""
    with session_scope(engine) as session:
        run = SyncRun(source=source, status="running")
        session.add(run)
        session.flush()
        assert run.id is not None  # noqa: S101 - set by the flush above
        return run.id


def fail_run(
    engine: Engine,
    run_id: int,
    *,
    status: str,
    error: str,
    quarantined: Sequence[QuarantinedRow] = (),
) -> None:
    """Record a sync that changed nothing: failed (an error) or refused (a guard)."""
    with session_scope(engine) as session:
        store_quarantine(session, run_id, quarantined)
        table = SyncRun.__table__  # type: ignore[attr-defined]
        session.execute(
            update(table)
            .where(table.c.id == run_id)
            .values(
                status=status,
                error=error,
                finished_at=utcnow(),
                stats={"rows_quarantined": len(quarantined)},
            )
        )


def finish_run(session: Session, run_id: int, stats: dict[str, Any]) -> None:
    """Record a sync as succeeded with its figures, in the caller's transaction (the one that
    applied the plan)."""
    table = SyncRun.__table__  # type: ignore[attr-defined]
    session.execute(
        update(table)
        .where(table.c.id == run_id)
        .values(status="succeeded", finished_at=utcnow(), stats=stats)
    )


def store_quarantine(session: Session, run_id: int, rows: Sequence[QuarantinedRow]) -> None:
    """Keep the rows a sync could not use, with file, line and reason, in the caller's
    transaction (in batches of 2,000)."""
    table = QuarantinedRowTable.__table__  # type: ignore[attr-defined]
    values = [
        {
            "sync_run_id": run_id,
            "file": q.file,
            "line": q.line,
            "person_sis_id": q.person_id,
            "reason": q.reason[:500],
            "raw": q.raw,
        }
        for q in rows
    ]
    for start in range(0, len(values), 2000):
        session.execute(insert(table), values[start : start + 2000])


@task(name="report", cache_policy=NO_CACHE)
def report(stats: dict[str, Any], source: str, started: datetime) -> str:
    """Summarise the run as markdown: logged, and a Prefect artifact inside a flow run."""
    seconds = (utcnow() - started).total_seconds()
    rows = [
        ("People created", stats["people_created"]),
        ("People updated", stats["people_updated"]),
        ("People unchanged", stats["people_unchanged"]),
        ("People deactivated", stats["people_deactivated"]),
        ("Valid phones (active people)", stats["phones_valid"]),
        ("Invalid phones (active people)", stats["phones_invalid"]),
        ("Students with an SMS number", stats["sms_eligible"]),
        ("Numbers coded mobile that are landlines", stats["type_mismatches"]),
        ("Numbers shared by several students", stats["shared_numbers"]),
        ("Rows quarantined", stats["rows_quarantined"]),
        ("Phone rows with unknown type codes", stats["unknown_type_codes"]),
        ("Numbers parsed this run", stats["phones_parsed"]),
    ]
    lines = [
        f"## SIS sync #{stats['sync_run_id']}",
        "",
        f"Source: `{source}` · {seconds:.1f} s",
        "",
        "| | |",
        "|---|---:|",
        *(f"| {label} | {value:,} |" for label, value in rows),
    ]
    codes = stats.get("unknown_type_code_counts") or {}
    if codes:
        lines += [
            "",
            "Unknown type codes (mapped to `other`; add them with `nudge config set "
            "type_code_map ...`): " + ", ".join(f"`{c}` ×{n}" for c, n in codes.items()),
        ]
    markdown = "\n".join(lines)
    if in_prefect_run():
        create_markdown_artifact(
            markdown=markdown, key="sis-sync-summary", description="SIS contact sync"
        )
    run_logger().info(
        "sync finished: %d created, %d updated, %d unchanged, %d deactivated, %d quarantined",
        stats["people_created"],
        stats["people_updated"],
        stats["people_unchanged"],
        stats["people_deactivated"],
        stats["rows_quarantined"],
    )
    return markdown


__all__ = ["begin_run", "fail_run", "finish_run", "report", "store_quarantine"]
