"""The audience filter: who a campaign reaches, and how it shows as a Prefect form."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from domain.audience import AudienceFilter, RiskLevel, StudentFacts

ANA = StudentFacts(
    student_id="S001",
    advisor_id="A10",
    tags=frozenset({"First-Gen", "TRiO"}),
    program="Nursing",
    degree="AAS",
    risk_level="high",
    courses=frozenset({"BIO-101", "ENG-101"}),
)

CASES = [
    ("empty-filter-matches-active", AudienceFilter(), ANA, True),
    ("inactive-never-matches", AudienceFilter(), StudentFacts("S002", active=False), False),
    (
        "inactive-even-if-named",
        AudienceFilter(student_ids=["S002"]),
        StudentFacts("S002", active=False),
        False,
    ),
    ("caseload-match", AudienceFilter(caseload=["A10"]), ANA, True),
    ("caseload-other-advisor", AudienceFilter(caseload=["A11"]), ANA, False),
    ("caseload-no-advisor", AudienceFilter(caseload=["A10"]), StudentFacts("S3"), False),
    ("tag-any-of", AudienceFilter(tags=["athlete", "trio"]), ANA, True),
    ("tag-none-of", AudienceFilter(tags=["athlete"]), ANA, False),
    ("tag-case-and-space", AudienceFilter(tags=[" first-gen "]), ANA, True),
    ("program-match", AudienceFilter(programs=["Nursing", "Welding"]), ANA, True),
    ("program-no-match", AudienceFilter(programs=["Welding"]), ANA, False),
    ("program-missing", AudienceFilter(programs=["Nursing"]), StudentFacts("S3"), False),
    ("degree-match", AudienceFilter(degrees=["aas"]), ANA, True),
    ("degree-no-match", AudienceFilter(degrees=["BS"]), ANA, False),
    ("risk-match", AudienceFilter(risk_levels=[RiskLevel.HIGH, RiskLevel.CRITICAL]), ANA, True),
    ("risk-no-match", AudienceFilter(risk_levels=[RiskLevel.LOW]), ANA, False),
    (
        "risk-stored-capitalised",
        AudienceFilter(risk_levels=[RiskLevel.HIGH]),
        StudentFacts("S3", risk_level="High"),
        True,
    ),
    ("risk-missing", AudienceFilter(risk_levels=[RiskLevel.LOW]), StudentFacts("S3"), False),
    ("course-any-of", AudienceFilter(courses=["MATH-120", "bio-101"]), ANA, True),
    ("course-none-of", AudienceFilter(courses=["MATH-120"]), ANA, False),
    ("student-id-match", AudienceFilter(student_ids=["S001", "S009"]), ANA, True),
    ("student-id-no-match", AudienceFilter(student_ids=["S009"]), ANA, False),
    # AND across kinds
    (
        "and-all-match",
        AudienceFilter(
            tags=["TRiO"], programs=["Nursing"], risk_levels=[RiskLevel.HIGH], courses=["BIO-101"]
        ),
        ANA,
        True,
    ),
    ("and-one-kind-fails", AudienceFilter(tags=["TRiO"], programs=["Welding"]), ANA, False),
    ("ids-still-filtered", AudienceFilter(student_ids=["S001"], programs=["Welding"]), ANA, False),
]


@pytest.mark.parametrize(
    ("audience", "student", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_matches(audience: AudienceFilter, student: StudentFacts, expected: bool) -> None:
    assert audience.matches(student) is expected


def test_is_empty() -> None:
    assert AudienceFilter().is_empty()
    assert AudienceFilter(tags=["", "  "]).is_empty()
    assert not AudienceFilter(risk_levels=[RiskLevel.LOW]).is_empty()
    assert not AudienceFilter(student_ids=["S1"]).is_empty()


def test_values_are_cleaned() -> None:
    audience = AudienceFilter(tags=[" TRiO ", "trio", ""], risk_levels=["high", "high"])
    assert audience.tags == ["TRiO"]
    assert audience.risk_levels == [RiskLevel.HIGH]


def test_unknown_risk_level_is_refused() -> None:
    with pytest.raises(ValidationError, match="'low', 'medium', 'high' or 'critical'"):
        AudienceFilter.model_validate({"risk_levels": ["severe"]})


def test_unknown_field_is_refused() -> None:
    with pytest.raises(ValidationError, match="programme"):
        AudienceFilter.model_validate({"programme": ["Nursing"]})


def test_json_round_trip() -> None:
    audience = AudienceFilter(caseload=["A10"], risk_levels=[RiskLevel.CRITICAL])
    assert AudienceFilter.model_validate_json(audience.model_dump_json()) == audience


def test_form_schema_has_titles_descriptions_defaults_and_enum() -> None:
    schema = AudienceFilter.model_json_schema()
    for name, prop in schema["properties"].items():
        assert prop.get("title"), name
        assert prop.get("description"), name
        assert prop["type"] == "array", name
        assert prop["default"] == [], name  # shown in the Prefect form
    assert schema["properties"]["risk_levels"]["items"] == {"$ref": "#/$defs/RiskLevel"}
    assert schema["$defs"]["RiskLevel"]["enum"] == ["low", "medium", "high", "critical"]


def test_defaults_are_not_shared_between_instances() -> None:
    assert AudienceFilter().tags is not AudienceFilter().tags


def test_describe() -> None:
    audience = AudienceFilter(tags=["TRiO"], risk_levels=[RiskLevel.HIGH, RiskLevel.CRITICAL])
    assert audience.describe() == "tags: TRiO; risk levels: high, critical"
    assert AudienceFilter().describe() == "all active students"
