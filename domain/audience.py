"""Who a campaign goes to: the audience filter and its in-memory meaning.

:class:`AudienceFilter` is a flow parameter, so it is also the "Audience" group of the
``send-campaign`` form in the Prefect UI: every field has a title and a description,
risk levels are an enum (a multi-select), and defaults are plain ``[]`` (pydantic copies
them per instance; ``default_factory`` defaults would not show in the form).

Meaning (the database query builder must agree with :meth:`AudienceFilter.matches`, and is
tested against it):

* only **active** students are ever in an audience;
* kinds combine with **AND**, values within a kind with **OR**: ``tags=[a, b],
  programs=[Nursing]`` is "(tag a or tag b) and program Nursing";
* an empty kind does not filter; a filter with no criteria at all (:meth:`is_empty`)
  matches every active student, which callers refuse rather than text everyone;
* values compare after :func:`normalize_value` (surrounding whitespace removed, lower case)
  on both sides, ids included: in SQL, ``lower(trim(column)) IN (normalised values)``.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator


class RiskLevel(StrEnum):
    """A student's risk level, as the risk-level dropdown shows it."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


def normalize_value(value: str) -> str:
    """The comparable form of a filter or student value: stripped and lower-cased."""
    return value.strip().lower()


@dataclass(frozen=True, slots=True)
class StudentFacts:
    """What the audience filter looks at about one student."""

    student_id: str
    active: bool = True
    advisor_id: str | None = None
    tags: Collection[str] = field(default_factory=frozenset)
    program: str | None = None
    degree: str | None = None
    risk_level: str | None = None
    courses: Collection[str] = field(default_factory=frozenset)


def _list(title: str, description: str) -> Any:
    return Field(default=[], title=title, description=description)


class AudienceFilter(BaseModel):
    """Which students a campaign goes to: active students matching every filled-in kind."""

    model_config = ConfigDict(frozen=True, extra="forbid", title="Audience")

    caseload: list[str] = _list(
        "Caseload (advisor IDs)",
        "Students advised by any of these advisors (SIS ids of the advisors).",
    )
    tags: list[str] = _list("Tags", "Students with any of these tags.")
    programs: list[str] = _list("Programs", "Students in any of these programs.")
    degrees: list[str] = _list("Degrees", "Students pursuing any of these degrees.")
    risk_levels: list[RiskLevel] = _list("Risk levels", "Students at any of these risk levels.")
    courses: list[str] = _list("Courses", "Students enrolled in any of these courses.")
    student_ids: list[str] = _list(
        "Student IDs", "Only these students (SIS ids), still subject to the other filters."
    )

    _sets: tuple[frozenset[str], ...] = PrivateAttr(default=())

    @field_validator("caseload", "tags", "programs", "degrees", "courses", "student_ids")
    @classmethod
    def _clean(cls, values: list[str]) -> list[str]:
        seen: set[str] = set()
        cleaned: list[str] = []
        for value in values:
            key = normalize_value(value)
            if key and key not in seen:
                seen.add(key)
                cleaned.append(value.strip())
        return cleaned

    @field_validator("risk_levels")
    @classmethod
    def _unique_levels(cls, values: list[RiskLevel]) -> list[RiskLevel]:
        return list(dict.fromkeys(values))

    def model_post_init(self, context: Any, /) -> None:
        """Precompute the normalised value sets :meth:`matches` tests against."""
        self._sets = tuple(
            frozenset(normalize_value(v) for v in values)
            for values in (
                self.caseload,
                self.tags,
                self.programs,
                self.degrees,
                [level.value for level in self.risk_levels],
                self.courses,
                self.student_ids,
            )
        )

    def is_empty(self) -> bool:
        """Whether no criterion is filled in (the filter would match every active student)."""
        return not any(self._sets)

    def matches(self, student: StudentFacts) -> bool:
        """Whether ``student`` is in this audience."""
        if not student.active:
            return False
        caseload, tags, programs, degrees, risks, courses, ids = self._sets
        return (
            (not caseload or _one(student.advisor_id, caseload))
            and (not tags or _any(student.tags, tags))
            and (not programs or _one(student.program, programs))
            and (not degrees or _one(student.degree, degrees))
            and (not risks or _one(student.risk_level, risks))
            and (not courses or _any(student.courses, courses))
            and (not ids or _one(student.student_id, ids))
        )

    def describe(self) -> str:
        """A one-line human summary, e.g. ``"tags: first-gen; risk levels: high"``."""
        parts = [
            f"{info.title.lower() if info.title else name}: "
            + ", ".join(str(v) for v in getattr(self, name))
            for name, info in type(self).model_fields.items()
            if getattr(self, name)
        ]
        return "; ".join(parts) or "all active students"


def _one(value: str | None, allowed: frozenset[str]) -> bool:
    return value is not None and normalize_value(value) in allowed


def _any(values: Collection[str], allowed: frozenset[str]) -> bool:
    return any(normalize_value(v) in allowed for v in values)
