"""The audience query: active students matching an ``AudienceFilter``, in one SELECT.

It must agree with ``AudienceFilter.matches`` (tested against it): kinds combine with AND,
values within a kind with OR, values compare as ``lower(trim(...))``. Tags and courses are
JSON lists, searched with ``json_each`` on SQLite and ``jsonb_array_elements_text`` on
PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, exists, func, literal_column, select, true
from sqlalchemy.orm import aliased
from sqlmodel import Session

from domain.audience import AudienceFilter, normalize_value
from domain.names import display_name
from models.people import Person

person_t = Person.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class AudienceMember:
    """What planning needs about one student in the audience."""

    id: int
    sis_id: str
    first_name: str | None
    last_name: str | None
    preferred_name: str | None
    email: str | None
    program: str | None
    advisor_name: str | None
    sms_e164: str | None
    sms_reason: str | None

    @property
    def display_name(self) -> str:
        """Preferred (else first) name and last name, for the opt-in notice."""
        return display_name(self.first_name, self.preferred_name, self.last_name, self.sis_id)


def _norm(column: ColumnElement[str]) -> ColumnElement[str]:
    return func.lower(func.trim(column))


def _in_json_list(
    session: Session, column: ColumnElement[object], values: Sequence[str]
) -> ColumnElement[bool]:
    wanted = [normalize_value(v) for v in values]
    if session.get_bind().dialect.name == "postgresql":
        elements = func.jsonb_array_elements_text(column).table_valued("value").alias("e")
    else:
        elements = func.json_each(column).table_valued("value").alias("e")
    value = elements.c.value
    return exists(select(literal_column("1")).select_from(elements).where(_norm(value).in_(wanted)))


def audience_clause(session: Session, audience: AudienceFilter) -> ColumnElement[bool]:
    """The WHERE clause of ``audience`` over the person table (students, active)."""
    t = person_t
    parts: list[ColumnElement[bool]] = [t.c.role == "student", t.c.status == "active"]

    def one(column: ColumnElement[str], values: Sequence[str]) -> None:
        if values:
            parts.append(_norm(column).in_([normalize_value(v) for v in values]))

    one(t.c.advisor_sis_id, audience.caseload)
    one(t.c.program, audience.programs)
    one(t.c.degree, audience.degrees)
    one(t.c.risk_level, [r.value for r in audience.risk_levels])
    one(t.c.sis_id, audience.student_ids)
    if audience.tags:
        parts.append(_in_json_list(session, t.c.tags, audience.tags))
    if audience.courses:
        parts.append(_in_json_list(session, t.c.courses, audience.courses))
    return and_(true(), *parts)


def resolve_audience(*, session: Session, audience: AudienceFilter) -> list[AudienceMember]:
    """Every active student in ``audience``, ordered by id, with their advisor's name."""
    t = person_t
    advisor = aliased(Person.__table__, name="advisor")  # type: ignore[attr-defined]
    stmt = (
        select(
            t.c.id,
            t.c.sis_id,
            t.c.first_name,
            t.c.last_name,
            t.c.preferred_name,
            t.c.email,
            t.c.program,
            advisor.c.first_name.label("advisor_first"),
            advisor.c.preferred_name.label("advisor_preferred"),
            advisor.c.last_name.label("advisor_last"),
            t.c.sms_e164,
            t.c.sms_reason,
        )
        .select_from(t.outerjoin(advisor, advisor.c.sis_id == t.c.advisor_sis_id))
        .where(audience_clause(session, audience))
        .order_by(t.c.id)
    )
    return [
        AudienceMember(
            id=row.id,
            sis_id=row.sis_id,
            first_name=row.first_name,
            last_name=row.last_name,
            preferred_name=row.preferred_name,
            email=row.email,
            program=row.program,
            advisor_name=display_name(row.advisor_first, row.advisor_preferred, row.advisor_last),
            sms_e164=row.sms_e164,
            sms_reason=row.sms_reason,
        )
        for row in session.execute(stmt)
    ]


def count_audience(*, session: Session, audience: AudienceFilter) -> int:
    """How many active students ``audience`` selects."""
    stmt = select(func.count()).select_from(person_t).where(audience_clause(session, audience))
    return int(session.execute(stmt).scalar_one())


def unknown_ids(*, session: Session, audience: AudienceFilter) -> dict[str, list[str]]:
    """The ids an audience names that nobody has: student ids no student has, and caseload
    ids that are neither a staff member nor any student's advisor (compared like the
    filter compares them). A typo must not silently mean "nobody"."""
    t = person_t
    found: dict[str, list[str]] = {}
    if audience.student_ids:
        wanted = {normalize_value(v): v for v in audience.student_ids}
        known = set(
            session.execute(
                select(_norm(t.c.sis_id)).where(
                    t.c.role == "student", _norm(t.c.sis_id).in_(list(wanted))
                )
            ).scalars()
        )
        missing = [raw for norm, raw in wanted.items() if norm not in known]
        if missing:
            found["student_ids"] = missing
    if audience.caseload:
        wanted = {normalize_value(v): v for v in audience.caseload}
        known = set(
            session.execute(
                select(_norm(t.c.sis_id)).where(
                    t.c.role == "staff", _norm(t.c.sis_id).in_(list(wanted))
                )
            ).scalars()
        ) | set(
            session.execute(
                select(_norm(t.c.advisor_sis_id)).where(_norm(t.c.advisor_sis_id).in_(list(wanted)))
            ).scalars()
        )
        missing = [raw for norm, raw in wanted.items() if norm not in known]
        if missing:
            found["caseload"] = missing
    return found
