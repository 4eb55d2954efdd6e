"""The report's text: ``summary.md``, the headline table and how figures are written."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from domain.quality.alerts import AlertDecision, TrendPoint
from domain.quality.labels import BLOCKED_LABELS, HEADLINE_KEYS, HEADLINE_LABELS, NO_SMS_TEXT
from domain.quality.metrics import GroupCount
from domain.quality.outcomes import Outcome


def format_figure(value: Any) -> str:
    """A figure as the report shows it: ``1,234``, ``62.50``, ``–`` for none."""
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def format_change(value: Any) -> str:
    """A change since the last run, signed: ``+3``, ``-5.00``; empty for none."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:+.2f}"
    if isinstance(value, int):
        return f"{value:+,}"
    return str(value)


def headline_markdown(
    metrics: Mapping[str, Any], change: Mapping[str, Any], alert: AlertDecision
) -> str:
    """The headline table (figure, now, change since the last run) and the alert line."""
    lines: list[str] = []
    if alert.alert:
        lines += [f"> **ALERT:** {alert.message}.", ""]
    lines += ["| Figure | Now | Change since last run |", "|---|---:|---:|"]
    for key in HEADLINE_KEYS:
        now, delta = format_figure(metrics.get(key)), format_change(change.get(key))
        lines.append(f"| {HEADLINE_LABELS[key]} | {now} | {delta} |")
    return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class SummaryInput:
    """Everything ``summary.md`` shows."""

    at: datetime
    metrics: Mapping[str, Any]
    change: Mapping[str, Any]
    alert: AlertDecision
    outcomes: Sequence[Outcome]
    trend: Sequence[TrendPoint]
    programs: Sequence[GroupCount]
    advisors: Sequence[GroupCount]
    followup_files: Mapping[str, int]
    thresholds: Mapping[str, Any]
    previous_at: datetime | None = None
    data_docs: str | None = "data-docs/index.html"
    chart: str = "reachability.svg"
    top: int = 20
    extra: dict[str, Any] = field(default_factory=dict)


def render_summary(s: SummaryInput) -> str:
    """``summary.md``: headline, expectations with meaning and fix, trend, breakdowns."""
    passed = sum(1 for o in s.outcomes if o.success)
    failed = len(s.outcomes) - passed
    since = (
        f" (previous run {s.previous_at:%Y-%m-%d %H:%M} UTC)"
        if s.previous_at
        else (" (first run: nothing to compare with)")
    )
    out = [
        f"# Onboarding data-quality report, {s.at:%Y-%m-%d %H:%M} UTC",
        "",
        f"{s.metrics.get('students', 0):,} active students; "
        f"{format_figure(s.metrics.get('sms_reachable_pct'))}% can be texted; "
        f"{passed} expectation(s) passed, {failed} failed{since}.",
        "",
        headline_markdown(s.metrics, s.change, s.alert),
        "",
        f"![SMS reachability over the last runs]({s.chart})",
        "",
        f"## Expectations: {passed} passed, {failed} failed",
        "",
        "| | Check | Found | Allowed | What it means | How to fix |",
        "|---|---|---|---|---|---|",
    ]
    for o in s.outcomes:
        mark = "✅" if o.success else "❌"
        out.append(
            f"| {mark} | {o.title} | {o.observed()} | {o.requirement} | {_cell(o.meaning)} "
            f"| {_cell(o.fix)} |"
        )
    if s.data_docs:
        out += ["", f"Full validation results: [Great Expectations Data Docs]({s.data_docs})."]
    reasons = s.metrics.get("missing_cell_by_reason") or {}
    if reasons:
        out += [
            "",
            "## Why students have no number we can text",
            "",
            "| Reason | Students |",
            "|---|---:|",
        ]
        out += [f"| {NO_SMS_TEXT.get(r, r)} | {n:,} |" for r, n in reasons.items()]
    blocked = [(label, s.metrics.get(key, 0)) for key, label in BLOCKED_LABELS.items()]
    if any(n for _, n in blocked):
        out += ["", "Students with a number who still cannot be texted:", ""]
        out += [f"- {label}: {n:,}" for label, n in blocked if n]
    codes = s.metrics.get("unmapped_type_code_counts") or {}
    if codes:
        out += [
            "",
            "## Unmapped phone type codes",
            "",
            "Numbers under these codes are never texted until the code is mapped "
            "(`nudge config set type_code_map ...`):",
            "",
        ]
        out += [f"- `{code}`: {n:,} number(s)" for code, n in codes.items()]
    for title, groups in (("program", s.programs), ("advisor", s.advisors)):
        shown = [g for g in groups if g.missing_cell][: s.top]
        if not shown:
            continue
        out += [
            "",
            f"## No number we can text, by {title} (worst {len(shown)})",
            "",
            f"| {title.capitalize()} | Students | No number | % | Cannot be texted |",
            "|---|---:|---:|---:|---:|",
        ]
        out += [
            f"| {_cell(g.name)} | {g.students:,} | {g.missing_cell:,} | {g.missing_pct:.1f} "
            f"| {g.not_sms_reachable:,} |"
            for g in shown
        ]
    out += ["", "## Trend", "", "| Run | SMS reachable | Alert |", "|---|---:|---|"]
    for p in reversed(s.trend):
        out.append(
            f"| {p.at:%Y-%m-%d %H:%M} | {format_figure(p.pct)}% | {'yes' if p.alert else ''} |"
        )
    out += ["", "## Follow-up lists (one CSV per advisor, numbers masked)", ""]
    if s.followup_files:
        out += [
            f"- [followup/{name}](followup/{name}): {n:,} problem(s)"
            for name, n in s.followup_files.items()
        ]
    else:
        out.append("No student needs following up.")
    out += ["", "## Thresholds", ""]
    out += [f"- `{k}` = {v}" for k, v in s.thresholds.items()]
    out += ["", "Change them with `nudge config set KEY VALUE`.", ""]
    return "\n".join(out)


def _cell(text: str) -> str:
    # A pipe would end a markdown table cell early.
    return text.replace("|", "\\|").replace("\n", " ")
