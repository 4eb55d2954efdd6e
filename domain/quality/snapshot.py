"""The data-quality report's input: active students' contact data as columns.

A :class:`Snapshot` holds one list per column, exactly what the database query returns
(``models.quality.take_snapshot``) and what Great Expectations validates.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

#: Columns of the students frame, in order, with the value used when a builder omits one.
STUDENT_COLUMNS: dict[str, Any] = {
    "sis_id": None,
    "first_name": None,
    "last_name": None,
    "preferred_name": None,
    "program": None,
    "advisor_sis_id": None,
    "email": None,
    "sms_e164": None,
    "sms_reason": None,
    "consent_status": None,
    "sms_disabled_by_carrier": False,
    "sms_is_parent_number": False,
}
#: Columns of the phones frame (present phones of active students), with defaults.
PHONE_COLUMNS: dict[str, Any] = {
    "sis_id": None,
    "type_code": "",
    "kind": "other",
    "e164": None,
    "raw": "",
    "line_type": None,
    "valid": False,
    "reason": None,
    "source_updated_at": None,
}


class SnapshotError(ValueError):
    """A snapshot's columns are missing or of different lengths."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Active students' contact data as columns: ``students`` and ``phones`` frames."""

    students: dict[str, list[Any]]
    phones: dict[str, list[Any]]

    def __post_init__(self) -> None:
        for name, frame, columns in (
            ("students", self.students, STUDENT_COLUMNS),
            ("phones", self.phones, PHONE_COLUMNS),
        ):
            missing = [c for c in columns if c not in frame]
            if missing:
                raise SnapshotError(f"{name} frame lacks column(s) {', '.join(missing)}")
            if len({len(frame[c]) for c in columns}) > 1:
                raise SnapshotError(f"{name} frame has columns of different lengths")

    @property
    def n_students(self) -> int:
        """Rows of the students frame."""
        return len(self.students["sis_id"])

    @property
    def n_phones(self) -> int:
        """Rows of the phones frame."""
        return len(self.phones["sis_id"])

    @classmethod
    def from_rows(
        cls, students: Iterable[Mapping[str, Any]], phones: Iterable[Mapping[str, Any]] = ()
    ) -> Snapshot:
        """Build from row dicts; omitted columns take their defaults (tests, small tools)."""
        return cls(_columns(students, STUDENT_COLUMNS), _columns(phones, PHONE_COLUMNS))


def _columns(rows: Iterable[Mapping[str, Any]], columns: Mapping[str, Any]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {c: [] for c in columns}
    for row in rows:
        unknown = set(row) - set(columns)
        if unknown:
            raise SnapshotError(f"unknown column(s) {', '.join(sorted(unknown))}")
        for column, default in columns.items():
            out[column].append(row.get(column, default))
    return out
