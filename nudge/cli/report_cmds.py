"""``nudge report``: the onboarding data-quality report, run once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from nudge.cli.common import JSON_HELP, emit, fail, prefect_server_configured, settings


def report(
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Folder to write the report into (absolute, or relative to the current "
            "folder). Default: a new timestamped folder under NUDGE_REPORT_DIR.",
        ),
    ] = None,
    engine: Annotated[
        bool | None,
        typer.Option(
            "--engine/--no-engine",
            help="Run through Prefect (tracked in the UI, artifacts created). Default: only "
            "when PREFECT_API_URL is set, so the command never waits for a temporary server.",
        ),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Check students' contact data: who cannot be texted, why, who should fix it, trend."""
    conf = settings()
    use_engine = prefect_server_configured() if engine is None else engine
    from tasks.quality import absolute_path  # the report command needs Prefect anyway

    # Relative to where the command was typed, whoever runs the steps (GX needs absolute).
    folder = str(absolute_path(out)) if out is not None else None
    try:
        if use_engine:
            from flows.data_quality import data_quality

            result = data_quality(out_dir=folder)
        else:
            from flows.data_quality import run_report

            result = run_report(conf, out_dir=folder)
    except OSError as exc:
        fail(f"could not write the report: {exc}", as_json=json_out)
    emit(result, as_json=json_out, human=_human_report)


def _human_report(d: dict[str, Any]) -> str:
    pct = d.get("sms_reachable_pct")
    change = d.get("change") or {}
    delta = change.get("sms_reachable_pct")
    since = f" ({delta:+.2f} points since the last run)" if delta is not None else ""
    lines = []
    if d.get("alert"):
        lines.append(f"ALERT: {d.get('alert_message')}")
    lines += [
        f"data-quality report: {d['report_dir']}",
        f"  active students: {d['students']:,}",
        f"  SMS reachable: {pct if pct is not None else '-'}%{since}",
        f"  no number we can text: {d['missing_cell']:,}; unreachable (no SMS, no email): "
        f"{d['unreachable']:,}",
        f"  invalid phone entries: {d['invalid_numbers']:,}; landlines coded mobile: "
        f"{d['type_mismatches']:,}; shared SMS numbers: {d['shared_numbers']:,}",
        f"  no email: {d['no_email']:,}; stale numbers: {d['stale_numbers']:,}",
        f"  expectations: {d['expectations_passed']} passed, {d['expectations_failed']} failed",
    ]
    for item in d.get("expectations", []):
        if not item["success"]:
            lines.append(f"    ✗ {item['title']}: {item['observed']}")
    files = d.get("files") or {}
    if files.get("html"):
        lines.append(f"  report page (opens offline): {files['html']}")
    lines.append(f"  summary: {files.get('summary')}")
    if files.get("data_docs"):
        lines.append(f"  details (Great Expectations Data Docs): {files['data_docs']}")
    if d.get("alert"):
        sent = d.get("alert_emails_sent", 0)
        lines.append(
            f"  alert: {sent} email(s) sent; event "
            + ("emitted" if d.get("event_emitted") else "not emitted (no Prefect API)")
        )
    return "\n".join(lines)


def register(app: typer.Typer) -> None:
    """Add ``report`` to the main app."""
    app.command("report")(report)
