"""Tasks that publish a finished data-quality report: record, notify, publish.

:func:`record` stores the run's figures (and queues its alert emails in the outbox, same
transaction), :func:`notify` emits the alert event and delivers those emails, and
:func:`publish` writes ``report.json`` and the Prefect artifacts. Each receives what it
needs (the engine, the send environment) from ``flows/data_quality.py``.

Artifacts, emails and the alert event carry counts only, never a phone number.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from sqlalchemy.engine import Engine

from adapters.mail.protocol import Email
from domain.quality.alerts import AlertDecision
from domain.quality.render import headline_markdown
from models.db import session_scope
from models.quality import save_quality_run
from tasks.quality import REPORT_PAGE, Report
from tasks.runtime import in_prefect_run, run_logger

if TYPE_CHECKING:  # importing the send path costs start-up time: only when alerts go out
    from tasks.env import Env

ALERT_EVENT = "nudge.data-quality.alert"


@task(name="quality-record", cache_policy=NO_CACHE)
def record(engine: Engine, report: Report, alert_emails: Sequence[str]) -> int:
    """Store the run's figures for the trend and, on an alert, its emails to
    ``alert_emails`` (``NUDGE_ALERT_EMAILS``) in the outbox (same transaction: each is sent
    exactly once); returns the QualityRun id."""
    from models.outbox_loose import enqueue
    from tasks.outbox_loose import alert_rows

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
                    recipients=alert_emails,
                    subject=sample.subject,
                    body=sample.body,
                    now=report.at,
                ),
            )
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
def notify(env: Env, report: Report) -> dict[str, Any]:
    """On an alert: emit the Prefect event (when a Prefect API can receive it) and deliver
    the alert emails :func:`record` queued for ``env.settings.alert_emails`` through ``env``.
    A mail failure is reported, never raised: the report stands."""
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
    if any(a.strip() for a in env.settings.alert_emails):
        from domain.outbox import Kind
        from tasks.outbox_loose import deliver_loose

        sent = deliver_loose(env, kinds=[Kind.ALERT]).emails
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
