"""Repository functions of the data-quality report: the contact-data snapshot and run history.

:func:`take_snapshot` reads the active students and their phones still in the SIS, with two
plain queries (no ORM objects: 100,000 students must cost about a second), and returns them
as columns (``domain.quality.Snapshot``). The consent joined in is the institution-wide one
(``sender_e164 = ''``): a STOP to one sender does not make a student unreachable by others.

Each report's figures are kept in ``QualityRun`` so the next report can show the trend.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, select
from sqlmodel import Session, col

from domain.config import PhoneKind
from domain.quality import PHONE_COLUMNS, STUDENT_COLUMNS, Snapshot
from models.consent import INSTITUTION, Consent
from models.messaging import QualityRun
from models.people import Person, PhoneNumber

person_t = Person.__table__  # type: ignore[attr-defined]
phone_t = PhoneNumber.__table__  # type: ignore[attr-defined]
consent_t = Consent.__table__  # type: ignore[attr-defined]

_ACTIVE_STUDENT = and_(person_t.c.role == "student", person_t.c.status == "active")


def take_snapshot(*, session: Session) -> Snapshot:
    """Active students' contact data as columns, ordered by SIS id (phones by person, id).

    Besides the stored fields, two facts about each student's SMS number are derived here,
    from all active students' phones: whether its phone row is disabled by the carrier, and
    whether the number is recorded anywhere as a parent or family number.
    """
    students_q = (
        select(
            person_t.c.id,
            person_t.c.sis_id,
            person_t.c.first_name,
            person_t.c.last_name,
            person_t.c.preferred_name,
            person_t.c.program,
            person_t.c.advisor_sis_id,
            person_t.c.email,
            person_t.c.sms_e164,
            person_t.c.sms_reason,
            consent_t.c.status.label("consent_status"),
        )
        .select_from(
            person_t.outerjoin(
                consent_t,
                and_(
                    consent_t.c.e164 == person_t.c.sms_e164,
                    consent_t.c.sender_e164 == INSTITUTION,
                ),
            )
        )
        .where(_ACTIVE_STUDENT)
        .order_by(person_t.c.sis_id)
    )
    students: dict[str, list[Any]] = {c: [] for c in STUDENT_COLUMNS}
    index: dict[int, int] = {}
    for row in session.execute(students_q):
        index[row.id] = len(index)
        for column in STUDENT_COLUMNS:
            if column in ("sms_disabled_by_carrier", "sms_is_parent_number"):
                continue
            value = getattr(row, column)
            if column == "email" and value is not None and not value.strip():
                value = None
            students[column].append(value)
    students["sms_disabled_by_carrier"] = [False] * len(index)
    students["sms_is_parent_number"] = [False] * len(index)

    phones_q = (
        select(
            phone_t.c.person_id,
            phone_t.c.type_code,
            phone_t.c.kind,
            phone_t.c.e164,
            phone_t.c.raw,
            phone_t.c.line_type,
            phone_t.c.valid,
            phone_t.c.reason,
            phone_t.c.source_updated_at,
            phone_t.c.disabled_by_carrier,
        )
        .select_from(phone_t.join(person_t, person_t.c.id == phone_t.c.person_id))
        .where(_ACTIVE_STUDENT, phone_t.c.present.is_(True))
        .order_by(phone_t.c.person_id, phone_t.c.id)
    )
    phones: dict[str, list[Any]] = {c: [] for c in PHONE_COLUMNS}
    sis_ids = students["sis_id"]
    sms_numbers = students["sms_e164"]
    parent_numbers: set[str] = set()
    for row in session.execute(phones_q):
        i = index[row.person_id]
        phones["sis_id"].append(sis_ids[i])
        for column in PHONE_COLUMNS:
            if column != "sis_id":
                phones[column].append(getattr(row, column))
        if row.e164:
            if row.kind == PhoneKind.parent:
                parent_numbers.add(row.e164)
            if row.disabled_by_carrier and row.e164 == sms_numbers[i]:
                students["sms_disabled_by_carrier"][i] = True
    if parent_numbers:
        students["sms_is_parent_number"] = [bool(n) and n in parent_numbers for n in sms_numbers]
    return Snapshot(students=students, phones=phones)


def save_quality_run(
    *,
    session: Session,
    at: datetime,
    metrics: dict[str, Any],
    alert: bool,
    report_dir: str | None,
) -> QualityRun:
    """Store one report's figures (the caller commits)."""
    run = QualityRun(at=at, metrics=metrics, alert=alert, report_dir=report_dir)
    session.add(run)
    session.flush()
    return run


def recent_quality_runs(
    *, session: Session, limit: int = 30, before: datetime | None = None
) -> list[QualityRun]:
    """The last ``limit`` runs (strictly before ``before`` when given), oldest first."""
    stmt = select(QualityRun).order_by(col(QualityRun.at).desc(), col(QualityRun.id).desc())
    if before is not None:
        stmt = stmt.where(col(QualityRun.at) < before)
    runs = list(session.execute(stmt.limit(limit)).scalars())
    runs.reverse()
    return runs


def previous_quality_run(*, session: Session, before: datetime | None = None) -> QualityRun | None:
    """The most recent run (before ``before`` when given), or None for a first run."""
    runs = recent_quality_runs(session=session, limit=1, before=before)
    return runs[0] if runs else None
