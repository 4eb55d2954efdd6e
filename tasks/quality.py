"""Tasks of the data-quality report: snapshot, measure, validate, write, record, notify, publish.

Each task is one step; the order is written once in ``flows/data_quality.py``.

Great Expectations is imported only inside :func:`validate` (its import costs seconds): this
module, the flow module and the CLI import without it. GX runs in an *ephemeral* context
built from the JSON suites in ``expectations/``: nothing accumulates between runs (a file
context's ``uncommitted/validations`` would grow forever), and its Data Docs site is a plain
folder inside the report folder. Its progress bars are switched off in the context's config,
so ``nudge report --json`` prints one clean JSON object.

No full phone number leaves this module: follow-up lists mask them (``mask_phone``), GX is
told to list no unexpected values (Data Docs would show them), and artifacts, emails and the
alert event carry counts only.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import time
import warnings
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from adapters.mailer import Email
from domain import spreadsheet
from domain.config import SmsConfig
from domain.quality import (
    HEADLINE_KEYS,
    TREND_RUNS,
    AlertDecision,
    Derived,
    Figures,
    FollowUp,
    GroupCount,
    Outcome,
    Snapshot,
    SummaryInput,
    TrendPoint,
    advisor_file_stem,
    breakdown,
    changes,
    decide_alert,
    derive,
    followups,
    headline_markdown,
    measure,
    render_reachability_svg,
    render_summary,
    requirement_text,
    suite_overrides,
    trend,
)
from domain.quality_html import PageInput, render_report_html
from expectations import SUITES, configured_suite, expectation_meta
from models.config import load_config
from models.db import make_engine, session_scope
from models.quality import recent_quality_runs, save_quality_run, take_snapshot
from nudge.settings import Settings
from tasks.runtime import in_prefect_run, run_logger

ALERT_EVENT = "nudge.data-quality.alert"
#: The self-contained report page, at the top of each report folder.
REPORT_PAGE = "index.html"
DATA_DOCS_SITE = "nudge-report"
FOLLOWUP_COLUMNS = ("student_id", "name", "program", "problem", "what_is_wrong", "how_to_fix")
#: Data Docs ships 4 MB of tutorial images no page of ours shows: dropped from each report.
_DOCS_UNUSED = ("glossary_scroller.gif", "validation_failed_unexpected_values.gif",
                "iterative-dev-loop.png")  # fmt: skip


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
def load_inputs(settings: Settings, now: datetime) -> QualityInputs:
    """Read the snapshot of active students' contact data, the configuration and history."""
    started = time.perf_counter()
    engine = make_engine(settings.database_url)
    try:
        with session_scope(engine) as session:
            config = load_config(session=session)
            snapshot = take_snapshot(session=session)
            runs = recent_quality_runs(session=session, limit=TREND_RUNS - 1, before=now)
            history = [
                HistoryRun(r.id or 0, r.at, r.alert, dict(r.metrics), r.report_dir) for r in runs
            ]
    finally:
        engine.dispose()
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


# --- validate (Great Expectations) ------------------------------------------------------------


def import_gx() -> tuple[Any, float]:
    """Import Great Expectations (once per process); returns the module and seconds spent.

    Its import emits DeprecationWarnings from its own dependencies; they are GX's business,
    not ours, and would otherwise fail a test run where warnings are errors.
    """
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import great_expectations as gx
        import great_expectations.checkpoint.actions
    return gx, time.perf_counter() - started


def frames(inputs: QualityInputs, derived: Derived) -> dict[str, Any]:
    """The pandas frames the suites validate, by suite name (columns per the suites' meta)."""
    import pandas as pd

    st, ph = inputs.snapshot.students, inputs.snapshot.phones
    students = pd.DataFrame(
        {
            "sis_id": pd.Series(st["sis_id"], dtype=object),
            "sms_e164": pd.Series(st["sms_e164"], dtype=object),
            "sms_reachable": pd.Series(derived.sms_reachable, dtype=bool),
            "sms_is_parent_number": pd.Series(st["sms_is_parent_number"], dtype=bool),
            "email": pd.Series(st["email"], dtype=object),
        }
    )
    phones = pd.DataFrame(
        {
            "e164": pd.Series(ph["e164"], dtype=object),
            "type_code": pd.Series(ph["type_code"], dtype=object),
            "kind": pd.Series(ph["kind"], dtype=object),
            "line_type": pd.Series(ph["line_type"], dtype=object),
            "valid": pd.Series(ph["valid"], dtype=bool),
            "age_years": pd.Series(derived.phone_age_years, dtype="float64"),
        }
    )
    return {"students": students, "phones": phones}


def run_suites(
    data: dict[str, Any],
    config: SmsConfig,
    *,
    docs_dir: Path | None,
    run_time: datetime,
    gx: Any | None = None,
) -> list[Outcome]:
    """Validate each frame against its suite in a fresh ephemeral GX context.

    With ``docs_dir``, each checkpoint's ``UpdateDataDocsAction`` renders Data Docs there
    (any earlier content of that folder is replaced).
    """
    if gx is None:
        gx, _ = import_gx()
    from great_expectations.checkpoint.actions import UpdateDataDocsAction
    from great_expectations.core.run_identifier import RunIdentifier

    if docs_dir is not None:
        # GX's filesystem store refuses a relative base_directory (no root_directory in an
        # ephemeral context): the caller's path is made absolute here, whatever it was.
        docs_dir = absolute_path(docs_dir)
        if docs_dir.exists():
            shutil.rmtree(docs_dir)
    context = gx.get_context(project_config=_context_config(docs_dir), mode="ephemeral")
    source = context.data_sources.add_pandas("nudge-snapshot")
    overrides = suite_overrides(config)
    meta = expectation_meta()
    run_id = RunIdentifier(run_name="data-quality", run_time=run_time)
    outcomes: list[Outcome] = []
    for name, frame in SUITES.items():
        spec = configured_suite(name, overrides)
        kwargs_by_key = {e["meta"]["key"]: e["kwargs"] for e in spec["expectations"]}
        batch = source.add_dataframe_asset(frame).add_batch_definition_whole_dataframe(frame)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            suite = context.suites.add(gx.ExpectationSuite(**spec))
        definition = context.validation_definitions.add(
            gx.ValidationDefinition(name=name, data=batch, suite=suite)
        )
        actions = (
            [UpdateDataDocsAction(name="data-docs", site_names=[DATA_DOCS_SITE])]
            if docs_dir is not None
            else []
        )
        checkpoint = context.checkpoints.add(
            gx.Checkpoint(
                name=f"nudge-{name}",
                validation_definitions=[definition],
                actions=actions,
                # No unexpected values in results: Data Docs would print phone numbers.
                result_format={"result_format": "SUMMARY", "partial_unexpected_count": 0},
            )
        )
        result = checkpoint.run(batch_parameters={"dataframe": data[frame]}, run_id=run_id)
        for validation in result.run_results.values():
            for item in validation.results:
                key = (item.expectation_config.meta or {}).get("key", "")
                outcomes.append(_outcome(item, meta.get(key, {}), kwargs_by_key.get(key, {})))
    order = {key: n for n, key in enumerate(meta)}
    outcomes.sort(key=lambda o: order.get(o.key, len(order)))
    if docs_dir is not None:
        for unused in _DOCS_UNUSED:
            (docs_dir / "static" / "images" / unused).unlink(missing_ok=True)
    return outcomes


def _context_config(docs_dir: Path | None) -> Any:
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    sites: dict[str, Any] = {}
    if docs_dir is not None:
        sites[DATA_DOCS_SITE] = {
            "class_name": "SiteBuilder",
            "show_how_to_buttons": False,
            "store_backend": {
                "class_name": "TupleFilesystemStoreBackend",
                "base_directory": str(docs_dir),
            },
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        }
    return DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(),
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
        data_docs_sites=sites,
    )


def _outcome(item: Any, meta: dict[str, Any], kwargs: dict[str, Any]) -> Outcome:
    result = item.result or {}
    error = None
    info = item.exception_info or {}
    if info.get("raised_exception"):
        error = str(info.get("exception_message") or "error")[:300]
    unexpected_pct = result.get("unexpected_percent")
    return Outcome(
        key=meta.get("key", "?"),
        suite=meta.get("suite", "?"),
        title=meta.get("title", item.expectation_config.type),
        success=bool(item.success),
        meaning=meta.get("meaning", ""),
        fix=meta.get("fix", ""),
        element_count=int(result.get("element_count") or 0),
        missing_count=int(result.get("missing_count") or 0),
        unexpected_count=int(result.get("unexpected_count") or 0),
        unexpected_percent=float(unexpected_pct) if unexpected_pct is not None else None,
        requirement=requirement_text(kwargs),
        error=error,
    )


@task(name="quality-validate", cache_policy=NO_CACHE)
def validate(
    inputs: QualityInputs, measured: Measured, docs_dir: Path | None, now: datetime
) -> Validation:
    """Run the expectation suites over the snapshot with Great Expectations (Data Docs to
    ``docs_dir``)."""
    gx, import_s = import_gx()
    docs_dir = absolute_path(docs_dir) if docs_dir is not None else None
    started = time.perf_counter()
    outcomes = run_suites(
        frames(inputs, measured.derived), inputs.config, docs_dir=docs_dir, run_time=now, gx=gx
    )
    seconds = time.perf_counter() - started
    failed = [o.key for o in outcomes if not o.success]
    run_logger().info(
        "expectations: %d passed, %d failed %s (%.1f s)",
        len(outcomes) - len(failed),
        len(failed),
        failed,
        seconds,
    )
    index = docs_dir / "index.html" if docs_dir is not None else None
    return Validation(outcomes, index if index and index.exists() else None, import_s, seconds)


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


# --- record, notify, publish ------------------------------------------------------------------


@task(name="quality-record", cache_policy=NO_CACHE)
def record(settings: Settings, report: Report) -> int:
    """Store the run's figures for the trend and, on an alert, its emails to
    ``settings.alert_emails`` in the outbox (same transaction: each is sent exactly once);
    returns the QualityRun id."""
    from models.outbox import enqueue
    from tasks.outbox import alert_rows

    engine = make_engine(settings.database_url)
    try:
        with session_scope(engine) as session:
            run = save_quality_run(
                session=session,
                at=report.at,
                metrics=report.metrics,
                alert=report.alert.alert,
                report_dir=str(report.folder),
            )
            run_id = run.id or 0
            if report.alert.alert:
                sample = alert_email(report, "")
                enqueue(
                    session=session,
                    rows=alert_rows(
                        key=f"quality:{run_id}",
                        recipients=settings.alert_emails,
                        subject=sample.subject,
                        body=sample.body,
                        now=report.at,
                    ),
                )
    finally:
        engine.dispose()
    return run_id


def alert_payload(report: Report) -> dict[str, Any]:
    """The figures an alert carries (event payload and email): counts only, no numbers."""
    m = report.metrics
    previous = report.previous.metrics.get("sms_reachable_pct") if report.previous else None
    return {
        "reasons": list(report.alert.reasons),
        "message": report.alert.message,
        "sms_reachable_pct": m["sms_reachable_pct"],
        "previous_sms_reachable_pct": previous,
        "drop_points": report.alert.drop_points,
        "threshold_pct": round(report.thresholds["reachability_threshold"] * 100, 4),
        "drop_threshold_points": report.thresholds["reachability_drop_points"],
        "students": m["students"],
        "sms_reachable": m["sms_reachable"],
        "missing_cell": m["missing_cell"],
        "unreachable": m["unreachable"],
        "expectations_failed": m["expectations_failed"],
        "report_dir": str(report.folder),
        "run_id": report.run_id,
    }


def should_emit_events() -> bool:
    """True inside a Prefect run or when a Prefect API is configured.

    Outside both, Prefect would start a temporary server just to receive the event, and no
    automation could ever see it there: the event is skipped (the email still goes).
    """
    if in_prefect_run():
        return True
    from prefect.settings import PREFECT_API_URL

    return bool(PREFECT_API_URL.value())


def emit_alert_event(report: Report) -> bool:
    """Emit ``nudge.data-quality.alert`` with the figures; True when it was handed over."""
    from prefect.events import emit_event

    event = emit_event(
        event=ALERT_EVENT,
        resource={
            "prefect.resource.id": "nudge.data-quality",
            "prefect.resource.name": "nudge data quality",
        },
        payload=alert_payload(report),
    )
    return event is not None


def alert_email(report: Report, to: str) -> Email:
    """The alert email: the reasons, the headline figures and where the report is."""
    m = report.metrics
    lines = [
        "nudge's data-quality report raised an alert.",
        "",
        f"{report.alert.message}.",
        "",
        headline_markdown(m, report.change, AlertDecision(False)),
        "",
        f"Failed expectations: {', '.join(m['failed_expectations']) or 'none'}",
        f"Report: {report.folder / REPORT_PAGE}",
        f"Report folder: {report.folder}",
        "Follow-up lists per advisor are in its followup/ folder.",
    ]
    pct = m["sms_reachable_pct"]
    return Email(
        to=to,
        subject=f"[nudge] Data-quality alert: SMS reachability {pct:.1f}%",
        body="\n".join(lines) + "\n",
    )


@task(name="quality-notify", cache_policy=NO_CACHE)
def notify(settings: Settings, report: Report) -> dict[str, Any]:
    """On an alert: emit the Prefect event (when a Prefect API can receive it) and email
    ``settings.alert_emails``. A mail failure is reported, never raised: the report stands."""
    log = run_logger()
    outcome: dict[str, Any] = {
        "event_emitted": False,
        "alert_emails_sent": 0,
        "alert_email_errors": [],
    }
    if not report.alert.alert:
        return outcome
    log.warning("data-quality alert: %s", report.alert.message)
    if should_emit_events():
        outcome["event_emitted"] = emit_alert_event(report)
    else:
        log.info("no Prefect API configured: alert event %s skipped", ALERT_EVENT)
    if any(a.strip() for a in settings.alert_emails):
        from domain.outbox import Kind
        from tasks.outbox import SendEnv, deliver_loose

        env = SendEnv.from_settings(settings, make_engine(settings.database_url))
        try:
            sent = deliver_loose(env, kinds=[Kind.ALERT]).emails
        finally:
            env.engine.dispose()
        outcome["alert_emails_sent"] = sent.sent
        if sent.failed:
            outcome["alert_email_errors"].append(
                f"{sent.failed} alert emails refused for good: {sent.last_error}"
            )
        if sent.retry:
            outcome["alert_email_errors"].append(
                f"{sent.retry} alert emails not sent yet ({sent.last_error}); "
                "retried by the next run of dispatch-due"
            )
        for error in outcome["alert_email_errors"]:
            log.warning("alert email: %s", error)
    return outcome


def artifact_markdown(report: Report) -> str:
    """The markdown artifact: headline figures and their change since the previous run."""
    since = (
        f"Compared with the run of {report.previous.at:%Y-%m-%d %H:%M} UTC."
        if report.previous
        else "First run: nothing to compare with."
    )
    failed = [o.title for o in report.outcomes if not o.success]
    return "\n".join(
        [
            f"## Data quality, {report.at:%Y-%m-%d %H:%M} UTC",
            "",
            since,
            "",
            headline_markdown(report.metrics, report.change, report.alert),
            "",
            f"Expectations: {report.metrics['expectations_passed']} passed, "
            f"{report.metrics['expectations_failed']} failed"
            + (f" ({'; '.join(failed)})" if failed else "")
            + ".",
            "",
            f"Report page (self-contained, opens offline): `{report.folder / REPORT_PAGE}`",
            "",
            f"Report folder: `{report.folder}`",
        ]
    )


def artifact_table(report: Report) -> list[dict[str, Any]]:
    """The table artifact: missing-cell counts by program, then by advisor."""
    return [g.to_dict() for g in (*report.programs, *report.advisors)]


@task(name="quality-publish", cache_policy=NO_CACHE)
def publish(report: Report) -> bool:
    """Write ``report.json`` (what the command prints) and, inside a Prefect run, create the
    artifacts; True when artifacts were created."""
    path = report.folder / "report.json"
    path.write_text(
        json.dumps(report.result(), indent=2, sort_keys=True, default=str) + "\n",
        encoding="utf-8",
    )
    if not in_prefect_run():
        return False
    from prefect.artifacts import create_markdown_artifact, create_table_artifact

    create_markdown_artifact(
        markdown=artifact_markdown(report),
        key="data-quality-summary",
        description="Onboarding data quality: headline figures and change since last run",
    )
    create_table_artifact(
        table=artifact_table(report),
        key="data-quality-missing-cell",
        description="Students with no number we can text, by program and by advisor",
    )
    return True
