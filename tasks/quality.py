"""Tasks of the data-quality report: snapshot, measure, validate, assemble and write.

Each task is one step; the order is written once in ``flows/data_quality.py``, which hands
each step what it needs (the engine of nudge's database). Recording, notifying and
publishing a finished report are in ``tasks/quality_publish.py``.

Great Expectations is reached only through ``adapters/gx_validator.py``, which imports it
only when :func:`validate` runs (its import costs seconds): this module, the flow module and
the CLI import without it.

No full phone number leaves these steps: follow-up lists mask them (``mask_phone``), GX is
told to list no unexpected values (Data Docs would show them), and artifacts, emails and the
alert event carry counts only.
"""

from __future__ import annotations

import csv
import os
import shutil
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from sqlalchemy.engine import Engine

from adapters import gx_validator
from domain import spreadsheet
from domain.config import SmsConfig
from domain.quality.alerts import (
    TREND_RUNS,
    AlertDecision,
    TrendPoint,
    changes,
    decide_alert,
    trend,
)
from domain.quality.chart import render_reachability_svg
from domain.quality.followups import FollowUp, advisor_file_stem, followups
from domain.quality.html import PageInput, render_report_html
from domain.quality.labels import HEADLINE_KEYS
from domain.quality.metrics import Derived, Figures, GroupCount, breakdown, derive, measure
from domain.quality.outcomes import Outcome
from domain.quality.render import SummaryInput, render_summary
from domain.quality.snapshot import Snapshot
from expectations import expectation_meta
from models.config import load_config
from models.db import session_scope
from models.quality import recent_quality_runs, take_snapshot
from tasks.runtime import run_logger

#: The self-contained report page, at the top of each report folder.
REPORT_PAGE = "index.html"
FOLLOWUP_COLUMNS = ("student_id", "name", "program", "problem", "what_is_wrong", "how_to_fix")


@dataclass(slots=True)
class HistoryRun:
    """A stored run, as the trend and the comparison need it."""

    id: int
    at: datetime
    alert: bool
    metrics: dict[str, Any]
    report_dir: str | None = None


@dataclass(slots=True)
class QualityInputs:
    """What the report reads: the snapshot, the configuration and the previous runs."""

    snapshot: Snapshot
    config: SmsConfig
    history: list[HistoryRun]
    seconds: float = 0.0


@dataclass(slots=True)
class Measured:
    """The figures, per-row facts, follow-ups, breakdowns and alert decision of one run."""

    derived: Derived
    figures: Figures
    followups: list[FollowUp]
    programs: list[GroupCount]
    advisors: list[GroupCount]
    alert: AlertDecision
    seconds: float = 0.0


@dataclass(slots=True)
class Validation:
    """The expectations' outcomes, and where their Data Docs are."""

    outcomes: list[Outcome]
    data_docs: Path | None
    gx_import_s: float = 0.0
    validate_s: float = 0.0


@dataclass(slots=True)
class Report:
    """One finished report: what is written, stored, sent and returned."""

    at: datetime
    folder: Path
    metrics: dict[str, Any]
    outcomes: list[Outcome]
    alert: AlertDecision
    previous: HistoryRun | None
    change: dict[str, Any]
    trend: list[TrendPoint]
    followups: list[FollowUp]
    programs: list[GroupCount]
    advisors: list[GroupCount]
    thresholds: dict[str, Any]
    data_docs: Path | None
    files: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    run_id: int | None = None
    event_emitted: bool = False
    alert_emails_sent: int = 0
    alert_email_errors: list[str] = field(default_factory=list)

    def result(self) -> dict[str, Any]:
        """The JSON the flow returns and ``nudge report --json`` prints."""
        previous = None
        if self.previous is not None:
            previous = {"at": self.previous.at.isoformat(), "run_id": self.previous.id}
            previous.update({k: self.previous.metrics.get(k) for k in HEADLINE_KEYS})
        return {
            **self.metrics,
            "at": self.at.isoformat(),
            "run_id": self.run_id,
            "report_dir": str(self.folder),
            "files": self.files,
            "expectations": [o.to_dict() for o in self.outcomes],
            "alert_message": self.alert.message,
            "reachability_drop_points": self.alert.drop_points,
            "previous": previous,
            "change": self.change,
            "trend": [
                {"at": p.at.isoformat(), "sms_reachable_pct": p.pct, "alert": p.alert}
                for p in self.trend
            ],
            "thresholds": self.thresholds,
            "event_emitted": self.event_emitted,
            "alert_emails_sent": self.alert_emails_sent,
            "alert_email_errors": self.alert_email_errors,
            "timings_s": {k: round(v, 3) for k, v in self.timings.items()},
        }


def absolute_path(path: Path | str) -> Path:
    """``path`` as an absolute, normalised path (``~`` expanded; relative to the working
    folder), symlinks left as they are: what the user typed, made unambiguous.

    Every report path goes through here before anything is written, stored or printed:
    Great Expectations refuses a relative Data Docs folder, and a relative folder kept in the
    history or sent in an alert would mean nothing from another working folder.
    """
    return Path(os.path.abspath(Path(path).expanduser()))


# --- read -------------------------------------------------------------------------------------


@task(name="quality-snapshot", cache_policy=NO_CACHE)
def load_inputs(engine: Engine, now: datetime) -> QualityInputs:
    """Read the snapshot of active students' contact data, the configuration and history."""
    started = time.perf_counter()
    with session_scope(engine) as session:
        config = load_config(session=session)
        snapshot = take_snapshot(session=session)
        runs = recent_quality_runs(session=session, limit=TREND_RUNS - 1, before=now)
        history = [
            HistoryRun(r.id or 0, r.at, r.alert, dict(r.metrics), r.report_dir) for r in runs
        ]
    seconds = time.perf_counter() - started
    run_logger().info(
        "snapshot: %d active students, %d phones, %d previous runs (%.1f s)",
        snapshot.n_students,
        snapshot.n_phones,
        len(history),
        seconds,
    )
    return QualityInputs(snapshot, config, history, seconds)


@task(name="quality-measure", cache_policy=NO_CACHE)
def measure_inputs(inputs: QualityInputs, now: datetime) -> Measured:
    """Count the figures, decide the alert, list the follow-ups and the breakdowns."""
    started = time.perf_counter()
    config = inputs.config
    derived = derive(inputs.snapshot, config, now)
    figures = measure(inputs.snapshot, derived)
    previous = inputs.history[-1].metrics if inputs.history else None
    alert = decide_alert(
        students=figures.students,
        reachable=figures.sms_reachable,
        previous=previous,
        threshold=config.reachability_threshold,
        drop_points=config.reachability_drop_points,
    )
    fixes = {key: meta["fix"] for key, meta in expectation_meta().items()}
    return Measured(
        derived=derived,
        figures=figures,
        followups=followups(inputs.snapshot, derived, fixes, now),
        programs=breakdown(inputs.snapshot, derived, "program"),
        advisors=breakdown(inputs.snapshot, derived, "advisor"),
        alert=alert,
        seconds=time.perf_counter() - started,
    )


# --- validate (Great Expectations, through its adapter) ---------------------------------------


@task(name="quality-validate", cache_policy=NO_CACHE)
def validate(
    inputs: QualityInputs, measured: Measured, docs_dir: Path | None, now: datetime
) -> Validation:
    """Run the expectation suites over the snapshot with Great Expectations (Data Docs to
    ``docs_dir``)."""
    gx, import_s = gx_validator.import_gx()
    docs_dir = absolute_path(docs_dir) if docs_dir is not None else None
    started = time.perf_counter()
    data = gx_validator.frames(inputs.snapshot, measured.derived)
    outcomes = gx_validator.run_suites(data, inputs.config, docs_dir=docs_dir, run_time=now, gx=gx)
    seconds = time.perf_counter() - started
    failed = [o.key for o in outcomes if not o.success]
    run_logger().info(
        "expectations: %d passed, %d failed %s (%.1f s)",
        len(outcomes) - len(failed),
        len(failed),
        failed,
        seconds,
    )
    return Validation(outcomes, gx_validator.docs_index(docs_dir), import_s, seconds)


# --- assemble and write -----------------------------------------------------------------------


def thresholds_of(config: SmsConfig) -> dict[str, Any]:
    """The configuration keys the report depends on (shown, and changeable with
    ``nudge config set``)."""
    return {
        "reachability_threshold": config.reachability_threshold,
        "reachability_drop_points": config.reachability_drop_points,
        "shared_number_threshold": config.shared_number_threshold,
        "stale_years": config.stale_years,
        "stale_share": config.stale_share,
    }


def assemble(
    inputs: QualityInputs,
    measured: Measured,
    validation: Validation,
    *,
    now: datetime,
    folder: Path,
) -> Report:
    """Put one run's parts together: metrics, comparison with the last run, trend."""
    outcomes = validation.outcomes
    failed = [o.key for o in outcomes if not o.success]
    metrics: dict[str, Any] = {
        **measured.figures.to_dict(),
        "expectations_passed": len(outcomes) - len(failed),
        "expectations_failed": len(failed),
        "failed_expectations": failed,
        "alert": measured.alert.alert,
        "alert_reasons": list(measured.alert.reasons),
    }
    previous = inputs.history[-1] if inputs.history else None
    history = [
        TrendPoint(r.at, r.metrics.get("sms_reachable_pct"), r.alert) for r in inputs.history
    ]
    current = TrendPoint(now, metrics["sms_reachable_pct"], measured.alert.alert)
    return Report(
        at=now,
        folder=folder,
        metrics=metrics,
        outcomes=outcomes,
        alert=measured.alert,
        previous=previous,
        change=changes(metrics, previous.metrics if previous else None),
        trend=trend(history, current),
        followups=measured.followups,
        programs=measured.programs,
        advisors=measured.advisors,
        thresholds=thresholds_of(inputs.config),
        data_docs=validation.data_docs,
        timings={
            "snapshot": inputs.seconds,
            "measure": measured.seconds,
            "gx_import": validation.gx_import_s,
            "gx_validation": validation.validate_s,
        },
    )


@task(name="quality-write", cache_policy=NO_CACHE)
def write_outputs(report: Report) -> dict[str, Any]:
    """Write ``index.html`` (the self-contained report page), ``summary.md``, the chart and
    the advisors' follow-up CSVs; returns their absolute paths."""
    folder = report.folder
    folder.mkdir(parents=True, exist_ok=True)
    followup_dir = folder / "followup"
    if followup_dir.exists():
        shutil.rmtree(followup_dir)  # a re-used --out folder must not keep last run's lists
    by_file: dict[str, list[FollowUp]] = {}
    for row in report.followups:
        by_file.setdefault(advisor_file_stem(row.advisor) + ".csv", []).append(row)
    if by_file:
        followup_dir.mkdir()
    for name, rows in sorted(by_file.items()):
        with (followup_dir / name).open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(FOLLOWUP_COLUMNS)
            # Names and programs come from the SIS: never a live formula in the advisor's sheet.
            writer.writerows(
                spreadsheet.row((r.student_id, r.name, r.program, r.problem, r.what, r.fix))
                for r in rows
            )
    svg = render_reachability_svg(report.trend, report.thresholds["reachability_threshold"])
    chart = folder / "reachability.svg"
    chart.write_text(svg, encoding="utf-8")
    docs = report.data_docs.relative_to(folder).as_posix() if report.data_docs else None
    facts = SummaryInput(
        at=report.at,
        metrics=report.metrics,
        change=report.change,
        alert=report.alert,
        outcomes=report.outcomes,
        trend=report.trend,
        programs=report.programs,
        advisors=report.advisors,
        followup_files={name: len(rows) for name, rows in sorted(by_file.items())},
        thresholds=report.thresholds,
        previous_at=report.previous.at if report.previous else None,
        data_docs=docs,
        chart=chart.name,
    )
    summary = folder / "summary.md"
    summary.write_text(render_summary(facts), encoding="utf-8")
    page = folder / REPORT_PAGE
    page.write_text(
        render_report_html(PageInput(facts, svg, report.followups, summary_md=summary.name)),
        encoding="utf-8",
    )
    return {
        "html": str(page),
        "summary": str(summary),
        "chart": str(chart),
        "data_docs": str(report.data_docs) if report.data_docs else None,
        "followup": [str(followup_dir / name) for name in sorted(by_file)],
        "json": str(folder / "report.json"),
    }
