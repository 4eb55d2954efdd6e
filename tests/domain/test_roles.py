"""Staff roles: static grants, dynamic filters, and the roles a staff member ends up with."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from domain.roles import RoleFilter, StaffFacts, effective_roles, normalize_role, parse_roles

ADVISING = StaffFacts(department="Academic Advising", title="Senior Academic Advisor")
FIN_AID = StaffFacts(department="Financial Aid", title="Counselor")
NOBODY = StaffFacts()

FILTER_CASES = [
    ("department-equals", RoleFilter(departments=["Academic Advising"]), ADVISING, True),
    ("department-case-insensitive", RoleFilter(departments=["academic advising"]), ADVISING, True),
    ("department-whitespace", RoleFilter(departments=[" Academic  Advising "]), ADVISING, True),
    ("department-in-list", RoleFilter(departments=["Registrar", "Financial Aid"]), FIN_AID, True),
    ("department-not-in-list", RoleFilter(departments=["Registrar"]), ADVISING, False),
    ("department-is-not-substring", RoleFilter(departments=["Advising"]), ADVISING, False),
    ("title-contains", RoleFilter(title_contains=["advisor"]), ADVISING, True),
    ("title-contains-any", RoleFilter(title_contains=["coach", "counselor"]), FIN_AID, True),
    ("title-does-not-contain", RoleFilter(title_contains=["dean"]), ADVISING, False),
    (
        "both-must-match",
        RoleFilter(departments=["Financial Aid"], title_contains=["advisor"]),
        FIN_AID,
        False,
    ),
    (
        "both-match",
        RoleFilter(departments=["Financial Aid"], title_contains=["counsel"]),
        FIN_AID,
        True,
    ),
    ("missing-department", RoleFilter(departments=["Registrar"]), NOBODY, False),
    ("missing-title", RoleFilter(title_contains=["advisor"]), NOBODY, False),
]


@pytest.mark.parametrize(
    ("rule", "staff", "expected"), [c[1:] for c in FILTER_CASES], ids=[c[0] for c in FILTER_CASES]
)
def test_role_filter_matches(rule: RoleFilter, staff: StaffFacts, expected: bool) -> None:
    assert rule.matches(staff) is expected


def test_filter_without_criteria_is_refused() -> None:
    with pytest.raises(ValidationError, match="at least one criterion"):
        RoleFilter()
    with pytest.raises(ValidationError, match="at least one criterion"):
        RoleFilter(departments=["  "])


def test_filter_refuses_unknown_fields() -> None:
    with pytest.raises(ValidationError, match="department"):
        RoleFilter.model_validate({"department": "Advising"})


def test_filter_round_trips_through_json() -> None:
    rule = RoleFilter(departments=["Advising", "advising", "TRiO"], title_contains=["Coach"])
    stored = rule.model_dump_json()
    assert RoleFilter.model_validate_json(stored) == rule
    assert rule.departments == ["Advising", "TRiO"]  # duplicates dropped


def test_filter_describes_itself() -> None:
    rule = RoleFilter(departments=["Advising", "TRiO"], title_contains=["Coach", "Advisor"])
    assert rule.describe() == "department in Advising, TRiO and title contains Coach or Advisor"


def test_effective_roles_combines_static_and_dynamic() -> None:
    dynamic = {
        "Texting": RoleFilter(departments=["Academic Advising"]),
        "Aid": RoleFilter(departments=["Financial Aid"]),
    }
    roles = effective_roles(ADVISING, ["Faculty", " Admin "], dynamic)
    assert roles == {"faculty", "admin", "texting"}


def test_effective_roles_without_any() -> None:
    assert effective_roles(NOBODY, [], {}) == frozenset()
    assert effective_roles(NOBODY, ["", "  "], {}) == frozenset()


PARSE_CASES = [
    ("empty", "", set()),
    ("none", None, set()),
    ("one", "Texting", {"Texting"}),
    ("semicolons", "Texting; Advisor", {"Texting", "Advisor"}),
    ("commas-and-pipes", "Texting,Advisor|Faculty", {"Texting", "Advisor", "Faculty"}),
    ("blanks-dropped", " ; Texting ;; ", {"Texting"}),
    ("inner-space-kept", "Student  Success", {"Student Success"}),
]


@pytest.mark.parametrize(
    ("text", "expected"), [c[1:] for c in PARSE_CASES], ids=[c[0] for c in PARSE_CASES]
)
def test_parse_roles(text: str | None, expected: set[str]) -> None:
    assert parse_roles(text) == expected


def test_normalize_role() -> None:
    assert normalize_role("  Student   SUCCESS ") == "student success"
