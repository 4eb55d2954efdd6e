"""The data-quality report as one self-contained HTML page (``index.html`` of a report folder).

Great Expectations' Data Docs load their styles and scripts from a CDN, so on a server with
no internet access they show an unstyled page with two links. This page needs nothing from
the network: its CSS is inline, the reachability chart is inline SVG, and every link is a
relative path to a file in the same report folder (the follow-up CSVs, ``summary.md``,
``report.json`` and the Data Docs, kept as the detail). A Content-Security-Policy meta
element forbids the browser from loading anything else.

Every value is escaped with :func:`html.escape` (names, programs, advisor ids and type codes
come from the SIS: a student named ``<script>`` is shown as text), and every link is built by
:func:`href`, which percent-quotes a relative path so it can never carry a URL scheme.

Pure: a function of values, like the rest of ``domain/quality/`` (whose figures, labels and
formatting it shares with ``summary.md``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape
from urllib.parse import quote

from domain.quality.followups import FollowUp
from domain.quality.labels import BLOCKED_LABELS, HEADLINE_KEYS, HEADLINE_LABELS, NO_SMS_TEXT
from domain.quality.metrics import GroupCount
from domain.quality.outcomes import Outcome
from domain.quality.render import SummaryInput, format_change, format_figure
from domain.quality.style import STYLE

#: Follow-up rows shown on the page (the CSVs hold them all).
PREVIEW_ROWS = 50
#: The browser may load nothing but the page's own inline styles (and data: images).
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'"
#: Figures shown as cards at the top of the page, in this order.
CARD_KEYS: tuple[str, ...] = (
    "students",
    "sms_reachable_pct",
    "missing_cell",
    "unreachable",
    "no_email",
    "expectations_failed",
)


@dataclass(frozen=True, slots=True)
class PageInput:
    """Everything the page shows: the summary's facts, the chart and the follow-ups."""

    summary: SummaryInput
    chart_svg: str
    followups: Sequence[FollowUp] = ()
    summary_md: str | None = "summary.md"
    report_json: str | None = "report.json"
    preview_rows: int = PREVIEW_ROWS


def href(path: str) -> str:
    """A relative link to ``path`` inside the report folder, quoted and escaped.

    Percent-quoting turns ``:`` into ``%3A``, so no value can become ``http://...`` or
    ``javascript:...``; ``..`` segments are refused (links stay inside the folder).
    """
    parts = [p for p in path.replace("\\", "/").split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        raise ValueError(f"not a path inside the report folder: {path!r}")
    return escape(quote("/".join(parts), safe="/"), quote=True)


def text(value: object) -> str:
    """A value as HTML text (``None`` as empty)."""
    return "" if value is None else escape(str(value), quote=True)


def prose(value: str) -> str:
    """Plain-language text (an expectation's meaning or fix): escaped, with `code` spans."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", escape(value, quote=True))


def page_start(title: str) -> list[str]:
    """The opening of every page nudge writes, up to its ``<h1>``: no script, nothing from
    the network (``CSP``), no referrer, the shared stylesheet (the data-quality report and
    the outreach digest)."""
    return [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{escape(CSP, quote=True)}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<meta name="referrer" content="no-referrer">',
        f"<title>{text(title)}</title>",
        f"<style>{STYLE}</style>",
        "</head>",
        "<body>",
        "<main>",
        f"<h1>{text(title)}</h1>",
    ]


def render_report_html(page: PageInput) -> str:
    """The whole page: headline, alert, failed checks with how to fix them, why students
    cannot be texted, breakdowns, the trend chart, follow-up lists and links to the detail."""
    s = page.summary
    m = s.metrics
    failed = [o for o in s.outcomes if not o.success]
    passed = [o for o in s.outcomes if o.success]
    title = f"Onboarding data-quality report, {s.at:%Y-%m-%d %H:%M} UTC"
    since = (
        f"Compared with the run of {s.previous_at:%Y-%m-%d %H:%M} UTC."
        if s.previous_at
        else "First run: nothing to compare with."
    )
    out = [
        *page_start(title),
        f'<p class="lead">{text(format_figure(m.get("students", 0)))} active students; '
        f"{text(format_figure(m.get('sms_reachable_pct')))}% can be texted; "
        f"{len(passed)} check(s) passed, {len(failed)} failed. {text(since)}</p>",
    ]
    if s.alert.alert:
        out.append(f'<div class="alert" role="alert">ALERT: {text(s.alert.message)}.</div>')
    out += _cards(m, s.change)
    out += _headline_table(m, s.change)
    out += _checks(failed, passed, s.data_docs)
    out += _why(m)
    out += _breakdowns(s.programs, s.advisors, s.top)
    out += _trend(page)
    out += _followups(page)
    out += _details(page)
    out += [
        "<footer>Written by nudge. This page needs no network: open it from the report "
        "folder in any browser. Phone numbers are masked.</footer>",
        "</main>",
        "</body>",
        "</html>",
    ]
    return "\n".join(out) + "\n"


def _cards(metrics: Mapping[str, object], change: Mapping[str, object]) -> list[str]:
    out = ['<section class="cards" aria-label="Headline figures">']
    for key in CARD_KEYS:
        value = format_figure(metrics.get(key))
        if key == "sms_reachable_pct" and metrics.get(key) is not None:
            value += "%"
        delta = format_change(change.get(key))
        out.append(
            f'<div class="card"><div class="value" data-card="{key}">{text(value)}</div>'
            f'<div class="label">{text(HEADLINE_LABELS[key])}</div>'
            + (f'<div class="change">{text(delta)} since last run</div>' if delta else "")
            + "</div>"
        )
    out.append("</section>")
    return out


def _headline_table(metrics: Mapping[str, object], change: Mapping[str, object]) -> list[str]:
    out = [
        "<h2>Figures</h2>",
        '<table class="figures">',
        '<thead><tr><th>Figure</th><th class="num">Now</th>'
        '<th class="num">Change since last run</th></tr></thead>',
        "<tbody>",
    ]
    for key in HEADLINE_KEYS:
        out.append(
            f"<tr><td>{text(HEADLINE_LABELS[key])}</td>"
            f'<td class="num" data-figure="{key}">{text(format_figure(metrics.get(key)))}</td>'
            f'<td class="num" data-change="{key}">{text(format_change(change.get(key)))}</td>'
            "</tr>"
        )
    out += ["</tbody>", "</table>"]
    return out


def _checks(failed: Sequence[Outcome], passed: Sequence[Outcome], docs: str | None) -> list[str]:
    out = [f"<h2>Checks: {len(passed)} passed, {len(failed)} failed</h2>"]
    if not failed:
        out.append('<div class="ok">Every check passed.</div>')
    for o in failed:
        out += [
            f'<section class="check" data-check="{text(o.key)}">',
            f'<h3><span class="fail">✗</span> {text(o.title)}</h3>',
            "<dl>",
            f"<dt>Found</dt><dd>{text(o.observed())}</dd>",
            f"<dt>Allowed</dt><dd>{text(o.requirement)}</dd>",
            f"<dt>What it means</dt><dd>{prose(o.meaning)}</dd>",
            f"<dt>How to fix</dt><dd>{prose(o.fix)}</dd>",
            "</dl>",
            "</section>",
        ]
    if passed:
        out += [
            "<details>",
            f"<summary>{len(passed)} check(s) passed</summary>",
            "<table>",
            "<thead><tr><th></th><th>Check</th><th>Found</th><th>Allowed</th>"
            "<th>What it means</th></tr></thead>",
            "<tbody>",
        ]
        out += [
            f'<tr data-check="{text(o.key)}"><td class="pass">✓</td><td>{text(o.title)}</td>'
            f"<td>{text(o.observed())}</td><td>{text(o.requirement)}</td>"
            f"<td>{prose(o.meaning)}</td></tr>"
            for o in passed
        ]
        out += ["</tbody>", "</table>", "</details>"]
    if docs:
        out.append(
            f'<p>Every check\'s full validation result: <a href="{href(docs)}">'
            "Great Expectations Data Docs</a> (their styling loads from the internet).</p>"
        )
    return out


def _why(metrics: Mapping[str, object]) -> list[str]:
    out: list[str] = []
    reasons = metrics.get("missing_cell_by_reason") or {}
    blocked = [(label, metrics.get(key) or 0) for key, label in BLOCKED_LABELS.items()]
    codes = metrics.get("unmapped_type_code_counts") or {}
    if not (reasons or any(n for _, n in blocked) or codes):
        return out
    out.append("<h2>Why students cannot be texted</h2>")
    if isinstance(reasons, Mapping) and reasons:
        out += [
            "<h3>No number we can text</h3>",
            "<table>",
            '<thead><tr><th>Reason</th><th class="num">Students</th></tr></thead>',
            "<tbody>",
        ]
        out += [
            f"<tr><td>{text(NO_SMS_TEXT.get(str(r), r))}</td>"
            f'<td class="num" data-reason="{text(r)}">{text(format_figure(n))}</td></tr>'
            for r, n in reasons.items()
        ]
        out += ["</tbody>", "</table>"]
    if any(n for _, n in blocked):
        out += ["<h3>A number, but cannot be texted</h3>", "<table>", "<tbody>"]
        out += [
            f'<tr><td>{text(label)}</td><td class="num">{text(format_figure(n))}</td></tr>'
            for label, n in blocked
            if n
        ]
        out += ["</tbody>", "</table>"]
    if isinstance(codes, Mapping) and codes:
        out += [
            "<h3>Unmapped phone type codes</h3>",
            "<p>Numbers under these codes are never texted until the code is mapped "
            "(<code>nudge config set type_code_map ...</code>).</p>",
            "<table>",
            '<thead><tr><th>Code</th><th class="num">Numbers</th></tr></thead>',
            "<tbody>",
        ]
        out += [
            f'<tr><td><code>{text(code)}</code></td><td class="num">{text(format_figure(n))}'
            "</td></tr>"
            for code, n in codes.items()
        ]
        out += ["</tbody>", "</table>"]
    return out


def _breakdowns(
    programs: Sequence[GroupCount], advisors: Sequence[GroupCount], top: int
) -> list[str]:
    out: list[str] = []
    for title, groups in (("program", programs), ("advisor", advisors)):
        shown = [g for g in groups if g.missing_cell][:top]
        if not shown:
            continue
        out += [
            f"<h2>No number we can text, by {title} (worst {len(shown)})</h2>",
            "<table>",
            f'<thead><tr><th>{title.capitalize()}</th><th class="num">Students</th>'
            '<th class="num">No number</th><th class="num">%</th>'
            '<th class="num">Cannot be texted</th></tr></thead>',
            "<tbody>",
        ]
        out += [
            f"<tr><td>{text(g.name)}</td>"
            f'<td class="num">{g.students:,}</td><td class="num">{g.missing_cell:,}</td>'
            f'<td class="num">{g.missing_pct:.1f}</td>'
            f'<td class="num">{g.not_sms_reachable:,}</td></tr>'
            for g in shown
        ]
        out += ["</tbody>", "</table>"]
    return out


def _trend(page: PageInput) -> list[str]:
    s = page.summary
    out = [
        "<h2>Trend</h2>",
        f'<figure class="chart" aria-label="SMS reachability over the last {len(s.trend)} run(s)">',
        _inline_svg(page.chart_svg),
        "</figure>",
        "<details>",
        f"<summary>The last {len(s.trend)} run(s) as a table</summary>",
        "<table>",
        '<thead><tr><th>Run (UTC)</th><th class="num">SMS reachable</th><th>Alert</th>'
        "</tr></thead>",
        "<tbody>",
    ]
    out += [
        f"<tr><td>{p.at:%Y-%m-%d %H:%M}</td>"
        f'<td class="num">{text(format_figure(p.pct))}%</td>'
        f"<td>{'yes' if p.alert else ''}</td></tr>"
        for p in reversed(s.trend)
    ]
    out += ["</tbody>", "</table>", "</details>"]
    return out


def _inline_svg(svg: str) -> str:
    # The chart file is a standalone document; inside HTML only its <svg> element is needed.
    start = svg.find("<svg")
    return svg[start:].strip() if start >= 0 else ""


def _followups(page: PageInput) -> list[str]:
    s = page.summary
    out = ["<h2>Follow-up lists (one CSV per advisor, numbers masked)</h2>"]
    if not s.followup_files:
        out.append("<p>No student needs following up.</p>")
        return out
    out.append("<ul>")
    out += [
        f'<li><a href="{href("followup/" + name)}" data-followup="{text(name)}">'
        f"followup/{text(name)}</a>: {n:,} problem(s)</li>"
        for name, n in s.followup_files.items()
    ]
    out.append("</ul>")
    rows = page.followups[: max(page.preview_rows, 0)]
    if rows:
        titles = {o.key: o.title for o in s.outcomes}
        total = len(page.followups)
        shown = f"the first {len(rows):,} of {total:,}" if total > len(rows) else f"all {total:,}"
        out += [
            "<details>",
            f"<summary>Preview: {shown} problem(s)</summary>",
            "<table>",
            "<thead><tr><th>Advisor</th><th>Student</th><th>Name</th><th>Program</th>"
            "<th>Check</th><th>What is wrong</th></tr></thead>",
            "<tbody>",
        ]
        out += [
            f"<tr><td>{text(r.advisor)}</td><td>{text(r.student_id)}</td>"
            f"<td>{text(r.name)}</td><td>{text(r.program)}</td>"
            f"<td>{text(titles.get(r.problem, r.problem))}</td><td>{text(r.what)}</td></tr>"
            for r in rows
        ]
        out += ["</tbody>", "</table>", "</details>"]
    return out


def _details(page: PageInput) -> list[str]:
    s = page.summary
    links = [
        (s.data_docs, "Great Expectations Data Docs", "every check's full validation result"),
        (page.summary_md, "summary.md", "this report as Markdown"),
        (page.report_json, "report.json", "every figure, as nudge report --json prints it"),
        (s.chart, s.chart, "the trend chart on its own"),
    ]
    out = ["<h2>Details</h2>", "<ul>"]
    out += [
        f'<li><a href="{href(path)}">{text(label)}</a>: {text(what)}</li>'
        for path, label, what in links
        if path
    ]
    out += ["</ul>", "<h3>Thresholds</h3>", "<table>", "<tbody>"]
    out += [
        f"<tr><td><code>{text(k)}</code></td><td>{text(v)}</td></tr>"
        for k, v in s.thresholds.items()
    ]
    out += [
        "</tbody>",
        "</table>",
        "<p>Change them with <code>nudge config set KEY VALUE</code>.</p>",
    ]
    return out


__all__ = [
    "CARD_KEYS",
    "CSP",
    "PREVIEW_ROWS",
    "PageInput",
    "href",
    "page_start",
    "render_report_html",
]
