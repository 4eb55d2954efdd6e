"""The audience SQL agrees with AudienceFilter.matches on both databases."""

from __future__ import annotations

import itertools
import random

import pytest
from sqlmodel import Session

from domain.audience import AudienceFilter, RiskLevel, StudentFacts
from models.audience import count_audience, resolve_audience
from models.people import Person

PROGRAMS = ["Nursing", "Welding", "Business", " nursing "]
TAGS = ["first-gen", "athlete", "Veteran", "pell"]
COURSES = ["BIO101", "ENG101", "MAT120", "bio101"]


def population(rng: random.Random) -> list[Person]:
    people = [Person(sis_id="A1", role="staff", first_name="Ana", last_name="Advisor")]
    for i in range(120):
        people.append(
            Person(
                sis_id=f"S{i}",
                role="student",
                status=rng.choice(["active", "active", "inactive"]),
                first_name=f"F{i}",
                last_name=f"L{i}",
                program=rng.choice([*PROGRAMS, None]),
                degree=rng.choice(["AAS", "AA", None]),
                risk_level=rng.choice(["low", "HIGH", "medium", None]),
                advisor_sis_id=rng.choice(["A1", "A2", None]),
                tags=rng.sample(TAGS, rng.randint(0, 3)),
                courses=rng.sample(COURSES, rng.randint(0, 3)),
            )
        )
    people.append(Person(sis_id="X1", role="staff", program="Nursing"))  # staff never included
    return people


FILTERS = [
    pytest.param(AudienceFilter(programs=["nursing"]), id="program-case-insensitive"),
    pytest.param(AudienceFilter(tags=["FIRST-GEN", "veteran"]), id="tags-or"),
    pytest.param(
        AudienceFilter(courses=["bio101"], risk_levels=[RiskLevel.HIGH]), id="course-and-risk"
    ),
    pytest.param(AudienceFilter(caseload=["A1"], degrees=["AAS"]), id="caseload-and-degree"),
    pytest.param(AudienceFilter(student_ids=["S1", "S2", "S3", "nobody"]), id="explicit-ids"),
    pytest.param(
        AudienceFilter(
            programs=["Welding", "Business"], tags=["pell"], courses=["MAT120", "ENG101"]
        ),
        id="three-kinds",
    ),
    pytest.param(AudienceFilter(), id="empty-means-all-active"),
]


@pytest.mark.parametrize("audience", FILTERS)
def test_sql_matches_the_pure_filter(session: Session, audience: AudienceFilter) -> None:
    people = population(random.Random(7))
    session.add_all(people)
    session.commit()
    expected = {
        p.sis_id
        for p in people
        if p.role == "student"
        and audience.matches(
            StudentFacts(
                student_id=p.sis_id,
                active=p.status == "active",
                advisor_id=p.advisor_sis_id,
                tags=p.tags,
                program=p.program,
                degree=p.degree,
                risk_level=p.risk_level,
                courses=p.courses,
            )
        )
    }
    members = resolve_audience(session=session, audience=audience)
    assert {m.sis_id for m in members} == expected
    assert count_audience(session=session, audience=audience) == len(expected)
    assert expected  # each filter selects somebody, so the comparison means something


def test_advisor_name_is_joined(session: Session) -> None:
    session.add_all(
        [
            Person(
                sis_id="A1", role="staff", first_name="Ana", preferred_name="Annie", last_name="Lee"
            ),
            Person(sis_id="S1", role="student", first_name="Sam", advisor_sis_id="A1"),
            Person(sis_id="S2", role="student", first_name="Kim"),
        ]
    )
    session.commit()
    by_id = {m.sis_id: m for m in resolve_audience(session=session, audience=AudienceFilter())}
    assert by_id["S1"].advisor_name == "Annie Lee"
    assert not by_id["S2"].advisor_name
    assert list(itertools.islice(by_id, 3)) == ["S1", "S2"]
