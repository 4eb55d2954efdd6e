"""Deployment entrypoint ``sis-sync``: the nightly SIS contact sync.

Thin orchestration only: the steps live in ``tasks/sis.py``, the run's bookkeeping and its
report in ``tasks/sync_runs.py``. :func:`run_sync` is the one place the order is written,
and where the steps are handed the process's engine and the opened source; the Prefect flow
runs it through the engine, and ``nudge sync`` runs the same steps as plain functions when
no Prefect server is configured.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prefect import flow

from domain.sync import SyncRefused
from models.types import utcnow
from nudge import wiring
from nudge.settings import Settings
from tasks import sis, sync_runs
from tasks.runtime import stepper


def run_sync(
    source: str,
    *,
    settings: Settings,
    encoding: str | None = None,
    engine: bool = False,
    checkpoint: Callable[[str], None] | None = None,
    force: bool = False,
) -> dict[str, Any]:
    """Sync people and phones from ``source`` (``csv:PATH`` or ``ethos:URL``).

    Atomic: on any error nothing changes and the SyncRun row records why (``failed``, or
    ``refused`` when a guard stopped it: too many people deactivated, too many phone rows
    removed, too many students left without a number). ``force`` lets a known mass change
    through. Returns the run's figures.
    """
    step = stepper(engine)
    db = wiring.engine(settings)
    run_id = sync_runs.begin_run(db, source)
    started = utcnow()
    quarantined: list[Any] = []
    try:
        opened = wiring.sis_source(source, settings, encoding=encoding)
        data = step(sis.extract)(opened)
        quarantined = data.quarantined
        found = step(sis.diff)(data, db, force)
        checked = step(sis.validate)(found, settings.sync_workers)
        stats = step(sis.apply)(checked, quarantined, run_id, db, checkpoint, force)
    except SyncRefused as exc:
        sync_runs.fail_run(db, run_id, status="refused", error=str(exc), quarantined=quarantined)
        raise
    except Exception as exc:
        sync_runs.fail_run(
            db,
            run_id,
            status="failed",
            error=f"{type(exc).__name__}: {exc}",
            quarantined=quarantined,
        )
        raise
    step(sync_runs.report)(stats, source, started)
    return stats


@flow(name="sis-sync", log_prints=False)
def sis_sync(
    source: str | None = None, encoding: str | None = None, force: bool = False
) -> dict[str, Any]:
    """Nightly SIS contact sync.

    Args:
        source: ``csv:PATH`` (folder with people.csv and phones.csv) or ``ethos:URL``.
            Defaults to ``NUDGE_SIS_SOURCE``.
        encoding: Text encoding of CSV extracts that are not UTF-8 (e.g. ``cp1252``).
        force: Apply a sync the guards would refuse (a known mass change: many people
            leaving, many numbers removed).
    """
    settings = wiring.settings()
    chosen = source or settings.sis_source
    if not chosen:
        raise ValueError("no source: pass `source` or set NUDGE_SIS_SOURCE (csv:PATH or ethos:URL)")
    return run_sync(chosen, settings=settings, encoding=encoding, engine=True, force=force)
