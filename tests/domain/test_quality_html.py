"""The self-contained report page, as a pure function: links stay inside the folder, every
value is escaped, and the page names nothing on the network."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from domain.quality.alerts import AlertDecision, TrendPoint
from domain.quality.chart import render_reachability_svg
from domain.quality.followups import FollowUp
from domain.quality.html import PageInput, href, render_report_html
from domain.quality.metrics import GroupCount
from domain.quality.outcomes import Outcome
from domain.quality.render import SummaryInput

NOW = datetime(2025, 9, 1, 6, 0, tzinfo=UTC)
EVIL = '<script>alert("x")</script>'


@pytest.mark.parametrize(
    ("path", "link"),
    [
        ("followup/A1.csv", "followup/A1.csv"),
        ("data-docs/index.html", "data-docs/index.html"),
        ("followup/a b&c.csv", "followup/a%20b%26c.csv"),
        ("http://evil.example/x", "http%3A/evil.example/x"),  # a path, never a URL
        ("javascript:alert(1)", "javascript%3Aalert%281%29"),
        ('x"><script>', "x%22%3E%3Cscript%3E"),
        ("./summary.md", "summary.md"),
    ],
)
def test_links_are_relative_quoted_paths(path: str, link: str) -> None:
    assert href(path) == link


@pytest.mark.parametrize("path", ["", "/", "../outside.csv", "followup/../../etc/passwd"])
def test_links_out_of_the_folder_are_refused(path: str) -> None:
    with pytest.raises(ValueError, match="inside the report folder"):
        href(path)


def page_input(**over: object) -> PageInput:
    trend = [
        TrendPoint(NOW - timedelta(days=1), 96.0),
        TrendPoint(NOW, 90.0, alert=True),
    ]
    outcomes = [
        Outcome("sms_reachable", "students", "Students we can text", False,
                "Enough can be <reached>.", "Run `nudge phones show <id>`.",
                element_count=10, unexpected_count=1, unexpected_percent=10.0,
                requirement="at most 5% of rows may fail"),
        Outcome("has_email", "students", "Every student has an email", True, "m", "f",
                element_count=10, requirement="no row may fail"),
    ]  # fmt: skip
    summary = SummaryInput(
        at=NOW,
        metrics={"students": 10, "sms_reachable_pct": 90.0, "missing_cell": 1,
                 "missing_cell_by_reason": {"no_mobile_number": 1},
                 "paused_for_review": 0, "unmapped_type_code_counts": {EVIL: 2},
                 "expectations_failed": 1},
        change={"sms_reachable_pct": -6.0},
        alert=AlertDecision(True, ("below_threshold",), 6.0, "SMS reachability 90.0% < 95%"),
        outcomes=outcomes,
        trend=trend,
        programs=[GroupCount("program", EVIL, 10, 1, 1)],
        advisors=[GroupCount("advisor", "A&1", 10, 1, 1)],
        followup_files={"A_1.csv": 1},
        thresholds={"reachability_threshold": 0.95},
        previous_at=NOW - timedelta(days=1),
    )  # fmt: skip
    rows = [FollowUp("A&1", "S1", EVIL, "<b>Nursing</b>", "sms_reachable", "No number", "fix")]
    values: dict[str, object] = {
        "summary": summary,
        "chart_svg": render_reachability_svg(trend, 0.95),
        "followups": rows,
    }
    values.update(over)
    return PageInput(**values)  # type: ignore[arg-type]


def test_page_escapes_every_value_and_names_nothing_on_the_network() -> None:
    html = render_report_html(page_input())
    assert "<script" not in html and "<b>" not in html
    assert html.count("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;") == 3  # prog, code, name
    assert "Enough can be &lt;reached&gt;." in html
    assert "Run <code>nudge phones show &lt;id&gt;</code>." in html  # `code` in a fix hint
    assert "A&amp;1" in html and "&lt;b&gt;Nursing&lt;/b&gt;" in html
    assert re.findall(r"https?://[^\s\"'<>]+", html) == ["http://www.w3.org/2000/svg"]
    assert re.findall(r'(?:href|src)="([^"]*)"', html) == [
        "data-docs/index.html",  # under the checks, then again in the details
        "followup/A_1.csv",
        "data-docs/index.html",
        "summary.md",
        "report.json",
        "reachability.svg",
    ]
    assert html.count("<svg") == 1 and "<?xml" not in html
    assert "ALERT: SMS reachability 90.0% &lt; 95%." in html
    assert '<td class="num" data-figure="sms_reachable_pct">90.00</td>' in html
    assert '<td class="num" data-change="sms_reachable_pct">-6.00</td>' in html


def test_page_without_data_docs_or_problems() -> None:
    page = page_input(followups=[])
    summary = page.summary
    empty = SummaryInput(
        at=NOW,
        metrics={"students": 0, "sms_reachable_pct": None},
        change={},
        alert=AlertDecision(False),
        outcomes=[],
        trend=[TrendPoint(NOW, None)],
        programs=[],
        advisors=[],
        followup_files={},
        thresholds=summary.thresholds,
        data_docs=None,
    )
    html = render_report_html(PageInput(empty, render_reachability_svg(empty.trend, 0.95)))
    assert "Every check passed." in html and "No student needs following up." in html
    assert "First run: nothing to compare with." in html and "data-docs" not in html
    assert 'data-card="sms_reachable_pct">–<' in html and "ALERT" not in html
