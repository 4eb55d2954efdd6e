"""Data-quality rules, one row each: the alert at its boundaries, reachability, the figures,
the follow-up list (masked), thresholds into the suites, and the chart."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import pytest

from domain.config import SmsConfig
from domain.names import display_name
from domain.quality.alerts import (
    AlertDecision,
    TrendPoint,
    changes,
    decide_alert,
    suite_overrides,
    trend,
)
from domain.quality.chart import render_reachability_svg
from domain.quality.followups import advisor_file_stem, followups
from domain.quality.metrics import breakdown, derive, measure, sms_block
from domain.quality.outcomes import Outcome, requirement_text
from domain.quality.render import SummaryInput, render_summary
from domain.quality.snapshot import Snapshot, SnapshotError
from domain.routing import Channel, ConsentState, RecipientFacts, RoutingPolicy, route

NOW = datetime(2025, 9, 1, 6, 0, tzinfo=UTC)


def previous(students: int, reachable: int) -> dict[str, object]:
    return {"students": students, "sms_reachable": reachable}


class Alert(NamedTuple):
    """One reachability figure against the thresholds, and whether it must alert, and why."""

    students: int
    reachable: int
    alert: bool
    reasons: tuple[str, ...] = ()
    previous: dict[str, object] | None = None  # the last run's metrics
    threshold: float = 0.95  # the default alert threshold (share of students reachable)
    drop_points: float = 2.0  # the default largest drop, in points, since the last run


ALERT_CASES = [
    pytest.param(Alert(students=100, reachable=95, alert=False), id="exactly-at-threshold"),
    pytest.param(Alert(students=100, reachable=94, alert=True, reasons=("below_threshold",)), id="one-under-threshold"),
    pytest.param(Alert(students=20, reachable=19, alert=False), id="exact-fraction-19-of-20"),
    pytest.param(Alert(students=100_000, reachable=94_999, alert=True, reasons=("below_threshold",)), id="large-population-just-under"),
    pytest.param(Alert(students=100, reachable=96, previous=previous(100, 98), alert=False), id="drop-exactly-at-limit"),
    pytest.param(Alert(students=10_000, reachable=9_599, previous=previous(100, 98), alert=True, reasons=("dropped",)), id="drop-just-over-limit"),
    pytest.param(Alert(students=100, reachable=90, previous=previous(100, 99), alert=True, reasons=("below_threshold", "dropped")), id="drop-and-below"),
    pytest.param(Alert(students=100, reachable=99, previous=previous(100, 95), alert=False), id="rise-is-fine"),
    pytest.param(Alert(students=100, reachable=91, threshold=0.90, alert=False), id="lower-threshold-configured"),
    pytest.param(Alert(students=100, reachable=97, previous=previous(100, 98), drop_points=0.5, alert=True, reasons=("dropped",)), id="drop-limit-configured"),
    pytest.param(Alert(students=100, reachable=96, previous={"sms_reachable_pct": 98.5}, alert=True, reasons=("dropped",)), id="previous-pct-only"),
    pytest.param(Alert(students=100, reachable=96, previous={"students": 0, "sms_reachable": 0}, alert=False), id="previous-without-students"),
    pytest.param(Alert(students=0, reachable=0, previous=previous(100, 99), alert=False), id="no-students-no-alert"),
]  # fmt: skip


@pytest.mark.parametrize("case", ALERT_CASES)
def test_alert_fires_only_past_the_thresholds(case: Alert) -> None:
    decision = decide_alert(
        students=case.students,
        reachable=case.reachable,
        previous=case.previous,
        threshold=case.threshold,
        drop_points=case.drop_points,
    )
    assert (decision.alert, decision.reasons) == (case.alert, case.reasons)
    assert bool(decision.message) == case.alert


def test_alert_message_says_why_in_numbers() -> None:
    decision = decide_alert(
        students=100, reachable=90, previous=previous(100, 99), threshold=0.95, drop_points=2.0
    )
    assert decision.drop_points == 9.0
    assert "90.0% is below the 95% threshold" in decision.message
    assert "fell 9.0 points" in decision.message and "99.0% → 90.0%" in decision.message


class Block(NamedTuple):
    """A student's number, consent and carrier state, and why they cannot be texted (None:
    they can)."""

    e164: str | None
    consent: str | None  # as stored
    auto_opt_in: bool
    blocked: str | None
    disabled_by_carrier: bool = False


BLOCK_CASES = [
    pytest.param(Block(e164="+12125550100", consent="opted_in", auto_opt_in=True, blocked=None), id="reachable-opted-in"),
    pytest.param(Block(e164="+12125550100", consent=None, auto_opt_in=True, blocked=None), id="reachable-auto-opt-in"),
    pytest.param(Block(e164=None, consent=None, auto_opt_in=True, blocked="no_number"), id="no-number"),
    pytest.param(Block(e164="+12125550100", consent="opted_out", auto_opt_in=True, blocked="opted_out"), id="opted-out"),
    # The stored state is ConsentState.PAUSED_FOR_REVIEW ("paused_for_review"): such a
    # student cannot be texted, whether or not auto opt-in would otherwise let them be.
    pytest.param(Block(e164="+12125550100", consent="paused_for_review", auto_opt_in=True, blocked="paused_for_review"), id="paused-for-review-auto-on"),
    pytest.param(Block(e164="+12125550100", consent="paused_for_review", auto_opt_in=False, blocked="paused_for_review"), id="paused-for-review-auto-off"),
    pytest.param(Block(e164="+12125550100", consent="unknown", auto_opt_in=True, blocked=None), id="unknown-auto-on"),
    pytest.param(Block(e164="+12125550100", consent="unknown", auto_opt_in=False, blocked="not_opted_in"), id="unknown-auto-off"),
    pytest.param(Block(e164="+12125550100", consent=None, auto_opt_in=False, blocked="not_opted_in"), id="never-asked-auto-off"),
    pytest.param(Block(e164="+12125550100", consent="opted_in", auto_opt_in=False, blocked=None), id="opted-in-auto-off"),
    pytest.param(Block(e164="+12125550100", consent="opted_in", disabled_by_carrier=True, auto_opt_in=True, blocked="carrier_disabled"), id="carrier-wins-over-consent"),
]  # fmt: skip


@pytest.mark.parametrize("case", BLOCK_CASES)
def test_sms_block_reasons(case: Block) -> None:
    got = sms_block(
        sms_e164=case.e164,
        consent_status=case.consent,
        disabled_by_carrier=case.disabled_by_carrier,
        auto_opt_in=case.auto_opt_in,
    )
    assert got == case.blocked


@pytest.mark.parametrize("state", [*ConsentState, None])
@pytest.mark.parametrize("auto", [True, False])
def test_sms_block_agrees_with_the_router_for_every_stored_state(
    state: ConsentState | None, auto: bool
) -> None:
    # The report counts as reachable exactly the students the router would text.
    decision = route(
        RecipientFacts("S1", "+12125550100", consent=state or ConsentState.UNKNOWN),
        policy=RoutingPolicy(auto_opt_in=auto, window=None, institution_tz="UTC"),
        quota_left=None,
        cost=1,
        now=NOW,
    )
    block = sms_block(
        sms_e164="+12125550100",
        consent_status=None if state is None else str(state),  # the stored plain string
        disabled_by_carrier=False,
        auto_opt_in=auto,
    )
    assert (block is None) == (decision.channel is Channel.SMS)


@pytest.mark.parametrize("auto", [True, False])
def test_students_paused_for_review_are_counted_and_not_reachable(auto: bool) -> None:
    rows: list[dict[str, str | None]] = [
        {"sis_id": "S1", "email": "s1@c.edu", "sms_e164": "+12125550101",
         "consent_status": "opted_in"},
        {"sis_id": "S2", "email": "s2@c.edu", "sms_e164": "+12125550102",
         "consent_status": "paused_for_review"},
        {"sis_id": "S3", "email": None, "sms_e164": "+12125550103",
         "consent_status": "paused_for_review"},
    ]  # fmt: skip
    snap = Snapshot.from_rows(rows)
    derived = derive(snap, SmsConfig(auto_opt_in=auto), NOW)
    figures = measure(snap, derived)
    assert derived.sms_reachable == [True, False, False]
    assert (figures.sms_reachable, figures.paused_for_review, figures.not_opted_in) == (1, 2, 0)
    assert figures.unreachable == 1  # S3: paused and no email
    assert [g.not_sms_reachable for g in breakdown(snap, derived, "program")] == [2]


def messy_snapshot() -> Snapshot:
    """Eight students, one problem each (plus S0 who is fine), with known answers."""
    students: list[dict[str, Any]] = [
        {"sis_id": "S0", "first_name": "Ana", "last_name": "Lopez", "email": "s0@c.edu",
         "sms_e164": "+12125550100", "consent_status": "opted_in", "advisor_sis_id": "A1",
         "program": "Nursing"},
        {"sis_id": "S1", "first_name": "Ben", "last_name": "Kim", "email": "s1@c.edu",
         "sms_reason": "no_mobile_number", "advisor_sis_id": "A1", "program": "Nursing"},
        {"sis_id": "S2", "first_name": "Cy", "last_name": "Ode", "email": None,
         "sms_reason": "invalid_number", "advisor_sis_id": "A2", "program": "Welding"},
        {"sis_id": "S3", "first_name": "Di", "last_name": "Park", "email": "s3@c.edu",
         "sms_e164": "+12125550103", "consent_status": "opted_out", "advisor_sis_id": "A2"},
        {"sis_id": "S4", "first_name": "Ed", "last_name": "Ruiz", "email": "s4@c.edu",
         "sms_e164": "+12125550199", "advisor_sis_id": None, "program": "Welding"},
        {"sis_id": "S5", "first_name": "Flo", "last_name": "Ruiz", "preferred_name": "Flor",
         "email": "  ", "sms_e164": "+12125550199", "advisor_sis_id": "A/../1"},
        {"sis_id": "S6", "first_name": "Gus", "last_name": "Ng", "email": "s6@c.edu",
         "sms_e164": "+12125550106", "sms_is_parent_number": True, "advisor_sis_id": "A1"},
        {"sis_id": "S7", "first_name": "Hal", "last_name": "Oz", "email": "s7@c.edu",
         "sms_e164": "+12125550107", "sms_disabled_by_carrier": True, "advisor_sis_id": "A1"},
    ]  # fmt: skip
    old = NOW - timedelta(days=int(365.25 * 4))
    phones = [
        {"sis_id": "S0", "type_code": "CELL", "kind": "mobile", "e164": "+12125550100",
         "raw": "212-555-0100", "line_type": "FIXED_LINE_OR_MOBILE", "valid": True,
         "source_updated_at": NOW - timedelta(days=30)},
        {"sis_id": "S1", "type_code": "CELL", "kind": "mobile", "e164": "+442071838750",
         "raw": "020 7183 8750", "line_type": "FIXED_LINE", "valid": True},
        {"sis_id": "S2", "type_code": "CELL", "kind": "mobile", "raw": "call 212 555 0102",
         "valid": False, "reason": "unparseable"},
        {"sis_id": "S2", "type_code": "DORM", "kind": "other", "e164": "+12125550112",
         "raw": "2125550112", "line_type": "FIXED_LINE_OR_MOBILE", "valid": True,
         "source_updated_at": old},
        {"sis_id": "S3", "type_code": "PR", "kind": "home", "e164": "+0123456789",
         "raw": "0123456789", "valid": True, "source_updated_at": NOW},
    ]  # fmt: skip
    return Snapshot.from_rows(students, phones)


def test_figures_of_a_messy_snapshot() -> None:
    snap = messy_snapshot()
    figures = measure(snap, derive(snap, SmsConfig(), NOW)).to_dict()
    assert figures == {
        "students": 8,
        "with_sms_number": 6,
        "sms_reachable": 4,  # S0, S4, S5, S6 (parent and shared numbers still get texts)
        "sms_reachable_pct": 50.0,
        "missing_cell": 2,
        "missing_cell_by_reason": {"no_mobile_number": 1, "invalid_number": 1},
        "opted_out": 1,
        "paused_for_review": 0,
        "not_opted_in": 0,
        "carrier_disabled": 1,
        "phones": 5,
        "invalid_numbers": 1,
        "invalid_by_reason": {"unparseable": 1},
        "malformed_e164": 1,
        "type_mismatches": 1,
        "unmapped_type_codes": 1,
        "unmapped_type_code_counts": {"DORM": 1},
        "shared_numbers": 1,
        "shared_number_students": 2,
        "parent_numbers": 1,
        "no_email": 2,  # None and blank
        "stale_numbers": 1,
        "undated_numbers": 2,
        "unreachable": 1,  # S2: no number and no email (S5 has no email but can be texted)
        "duplicate_student_ids": 0,
    }


def test_auto_opt_in_off_makes_unasked_students_unreachable() -> None:
    snap = messy_snapshot()
    figures = measure(snap, derive(snap, SmsConfig(auto_opt_in=False), NOW))
    assert figures.not_opted_in == 3  # S4, S5, S6 never opted in
    assert figures.sms_reachable == 1


def test_stale_age_follows_configuration() -> None:
    snap = messy_snapshot()
    assert measure(snap, derive(snap, SmsConfig(stale_years=5), NOW)).stale_numbers == 0
    assert measure(snap, derive(snap, SmsConfig(stale_years=0.01), NOW)).stale_numbers == 2


def test_followups_list_each_problem_with_its_fix_and_masked_numbers() -> None:
    snap = messy_snapshot()
    fixes = {key: f"fix {key}" for key in (
        "sms_reachable", "parent_number", "shared_numbers", "mobile_is_mobile", "valid_numbers",
        "e164_format", "fresh_numbers", "has_email")}  # fmt: skip
    rows = followups(snap, derive(snap, SmsConfig(), NOW), fixes, NOW)
    got = {(r.student_id, r.problem) for r in rows}
    assert got == {
        ("S1", "sms_reachable"), ("S1", "mobile_is_mobile"),
        ("S2", "sms_reachable"), ("S2", "has_email"), ("S2", "valid_numbers"),
        ("S2", "fresh_numbers"),
        ("S3", "e164_format"),
        ("S4", "shared_numbers"), ("S5", "shared_numbers"), ("S5", "has_email"),
        ("S6", "parent_number"),
        ("S7", "sms_reachable"),
    }  # fmt: skip
    assert all(r.fix == f"fix {r.problem}" for r in rows)
    by = {(r.student_id, r.problem): r for r in rows}
    assert by[("S4", "shared_numbers")].advisor == "unassigned"
    assert by[("S5", "shared_numbers")].name == "Flor Ruiz"
    assert "+1******0199" in by[("S4", "shared_numbers")].what
    assert "***0102" in by[("S2", "valid_numbers")].what
    assert "unreachable" in by[("S2", "has_email")].what
    assert (
        "2021-" in by[("S2", "fresh_numbers")].what
        and "over 4 years ago" in by[("S2", "fresh_numbers")].what
    )
    full = [n for n in (*snap.students["sms_e164"], *snap.phones["e164"]) if n]
    full += [re.sub(r"\D", "", raw) for raw in snap.phones["raw"]]
    for row in rows:
        digits = re.sub(r"\D", "", row.what)
        assert not any(n in row.what or n.lstrip("+") in digits for n in full), row.what
    advisors = [r.advisor for r in rows]
    assert advisors == sorted(advisors)


@pytest.mark.parametrize(
    ("advisor", "stem"),
    [
        pytest.param("A1", "A1", id="plain"),
        pytest.param("A/../1", "A_.._1", id="path-separators"),
        pytest.param("../..", "unassigned", id="only-dots"),
        pytest.param("  ", "unassigned", id="blank"),
        pytest.param("Dr. Smith", "Dr._Smith", id="space"),
    ],
)
def test_advisor_file_names_are_safe(advisor: str, stem: str) -> None:
    assert advisor_file_stem(advisor) == stem
    assert "/" not in advisor_file_stem(advisor)


def test_display_names() -> None:
    # One rule everywhere (domain.names): preferred, else first, then last; the SIS id
    # when there is no name at all.
    assert display_name("Flo", "Flor", "Ruiz") == "Flor Ruiz"
    assert display_name("Flo", "Flo", "Ruiz") == "Flo Ruiz"
    assert display_name("Flo", "  ", " Ruiz ") == "Flo Ruiz"
    assert display_name(None, None, "Ruiz") == "Ruiz"
    assert display_name(None, None, None, "S0001") == "S0001"


def test_breakdown_by_program_and_advisor_worst_first() -> None:
    snap = messy_snapshot()
    derived = derive(snap, SmsConfig(), NOW)
    programs = [(g.name, g.students, g.missing_cell, g.not_sms_reachable)
                for g in breakdown(snap, derived, "program")]  # fmt: skip
    assert programs == [("Nursing", 2, 1, 1), ("Welding", 2, 1, 1), ("(none)", 4, 0, 2)]
    advisors = {g.name: g.missing_cell for g in breakdown(snap, derived, "advisor")}
    assert advisors == {"A1": 1, "A2": 1, "unassigned": 0, "A/../1": 0}


def test_suite_overrides_take_thresholds_exactly() -> None:
    config = SmsConfig(
        reachability_threshold=0.9, shared_number_threshold=0.02, stale_years=2, stale_share=0.1
    )
    got = suite_overrides(config)
    assert got["sms_reachable"] == {"mostly": 0.9}
    assert got["shared_numbers"] == {"mostly": 0.98}  # not 0.9799999999999999
    assert got["fresh_numbers"] == {"max_value": 2, "mostly": 0.9}
    assert "CELL" in got["type_codes_mapped"]["value_set"]


@pytest.mark.parametrize(
    ("kwargs", "text"),
    [
        pytest.param({}, "no row may fail", id="strict"),
        pytest.param({"mostly": 1.0}, "no row may fail", id="mostly-one"),
        pytest.param({"mostly": 0.95}, "at most 5% of rows may fail", id="five-percent"),
        pytest.param({"mostly": 0.98}, "at most 2% of rows may fail", id="two-percent"),
    ],
)
def test_requirement_text(kwargs: dict[str, float], text: str) -> None:
    assert requirement_text(kwargs) == text


def test_changes_compare_headline_figures_only() -> None:
    now = {"students": 110, "sms_reachable_pct": 93.25, "missing_cell": 8, "phones": 9}
    before = {"students": 100, "sms_reachable_pct": 95.5, "missing_cell": 5, "phones": 1}
    assert changes(now, before) == {"students": 10, "sms_reachable_pct": -2.25, "missing_cell": 3}
    assert changes(now, None) == {}


def test_trend_keeps_the_last_runs_oldest_first() -> None:
    points = [TrendPoint(NOW - timedelta(days=d), 90.0 + d) for d in (1, 3, 2)]
    current = TrendPoint(NOW, 80.0)
    got = trend(points, current, limit=3)
    assert [p.pct for p in got] == [92.0, 91.0, 80.0]


def test_chart_is_valid_svg_with_one_point_per_run() -> None:
    points = [
        TrendPoint(NOW - timedelta(days=2), 96.0),
        TrendPoint(NOW - timedelta(days=1), None),  # a run with no students: no point
        TrendPoint(NOW, 93.5, alert=True),
    ]
    svg = render_reachability_svg(points, 0.95)
    root = ET.fromstring(svg)  # noqa: S314 - our own output
    ns = {"s": "http://www.w3.org/2000/svg"}
    circles = root.findall("s:circle", ns)
    assert len(circles) == 2
    assert circles[-1].get("fill") == "#c0392b"  # the alert run is red
    titles = [c.find("s:title", ns).text for c in circles]  # type: ignore[union-attr]
    assert titles == ["2025-08-30 06:00 UTC: 96.0%", "2025-09-01 06:00 UTC: 93.5%"]
    assert "threshold 95%" in svg
    assert ET.fromstring(render_reachability_svg([], 0.95)) is not None  # noqa: S314


def test_summary_shows_alert_expectations_with_meaning_and_fix() -> None:
    outcome = Outcome(
        key="has_email", suite="students", title="Every student has an email", success=False,
        meaning="Email is the fallback.", fix="Record | the email.", element_count=10,
        unexpected_count=2, unexpected_percent=20.0, requirement="no row may fail",
    )  # fmt: skip
    text = render_summary(
        SummaryInput(
            at=NOW,
            metrics={"students": 10, "sms_reachable_pct": 80.0, "missing_cell": 2},
            change={"sms_reachable_pct": -3.5},
            alert=AlertDecision(True, ("below_threshold",), 3.5, "SMS reachability is low"),
            outcomes=[outcome],
            trend=[TrendPoint(NOW, 80.0, True)],
            programs=[],
            advisors=[],
            followup_files={"A1.csv": 3},
            thresholds={"reachability_threshold": 0.95},
            previous_at=NOW - timedelta(days=1),
        )
    )
    assert "> **ALERT:** SMS reachability is low." in text
    assert "| SMS reachable (%) | 80.00 | -3.50 |" in text
    assert "❌ | Every student has an email | 2 of 10 rows fail (20.0%)" in text
    assert "Email is the fallback. | Record \\| the email. |" in text
    assert "[followup/A1.csv](followup/A1.csv): 3 problem(s)" in text


def test_snapshot_refuses_missing_or_ragged_columns() -> None:
    with pytest.raises(SnapshotError, match="lacks"):
        Snapshot(students={"sis_id": []}, phones={})
    snap = Snapshot.from_rows([{"sis_id": "S1"}])
    snap.students["email"].append("x")
    with pytest.raises(SnapshotError, match="different lengths"):
        Snapshot(students=snap.students, phones=snap.phones)
    with pytest.raises(SnapshotError, match="unknown column"):
        Snapshot.from_rows([{"sis_id": "S1", "phone": "x"}])
