"""Deployment entrypoint ``data-quality``: the onboarding data-quality report and its alerts.

Thin orchestration only: the steps live in ``tasks/quality.py`` and
``tasks/quality_publish.py``. :func:`run_report` is the one place the order is written, and
where each step is handed what it needs (the process's engine from ``nudge.wiring``, the send
environment); the Prefect flow runs it through the engine (after each ``sis-sync`` completes,
and on a daily fallback schedule), and ``nudge report`` runs the same steps as plain
functions when no Prefect server is configured.

Importing this module does not import Great Expectations: only the validation step does.
"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import Any

from prefect import flow

from models.types import utcnow
from nudge import wiring
from nudge.settings import Settings
from tasks import quality, quality_publish
from tasks.runtime import stepper


def report_folder(settings: Settings, now: datetime) -> Path:
    """``settings.report_dir / <UTC timestamp>`` as an absolute path, made unique if that
    folder exists."""
    base = quality.absolute_path(settings.report_dir) / now.strftime("%Y%m%dT%H%M%SZ")
    folder, n = base, 1
    while folder.exists():
        n += 1
        folder = base.with_name(f"{base.name}-{n}")
    return folder


def run_report(
    settings: Settings,
    *,
    out_dir: Path | str | None = None,
    engine: bool = False,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Check active students' contact data, write the report, store the figures, alert.

    Writes into ``out_dir`` (default: a new timestamped folder under
    ``settings.report_dir``; either may be relative to the working folder and is made
    absolute first): ``index.html`` (the self-contained report page), Data Docs,
    ``summary.md``, ``reachability.svg``, ``followup/<advisor>.csv`` and ``report.json``.
    Returns the report's JSON (its keys are described in ``docs/data-quality.md``).
    """
    step = stepper(engine)
    env = wiring.env(settings)
    db = env.engine
    now = now or utcnow()
    folder = quality.absolute_path(out_dir) if out_dir is not None else report_folder(settings, now)
    inputs = step(quality.load_inputs)(db, now)
    measured = step(quality.measure_inputs)(inputs, now)
    validation = step(quality.validate)(inputs, measured, folder / "data-docs", now)
    report = quality.assemble(inputs, measured, validation, now=now, folder=folder)
    started = time.perf_counter()
    report.files = step(quality.write_outputs)(report)
    report.timings["outputs"] = time.perf_counter() - started
    report.run_id = step(quality_publish.record)(db, report, settings.alert_emails)
    sent = step(quality_publish.notify)(env, report)
    report.event_emitted = sent["event_emitted"]
    report.alert_emails_sent = sent["alert_emails_sent"]
    report.alert_email_errors = sent["alert_email_errors"]
    step(quality_publish.publish)(report)
    return report.result()


@flow(name="data-quality", log_prints=False)
def data_quality(out_dir: str | None = None) -> dict[str, Any]:
    """Onboarding data-quality report: who cannot be reached by text, why, and the trend.

    Args:
        out_dir: Folder to write the report into (absolute, or relative to the worker's
            working folder). Defaults to a new timestamped folder under
            ``NUDGE_REPORT_DIR``.
    """
    return run_report(wiring.settings(), out_dir=out_dir, engine=True)
