"""Repository functions of the data-quality report: the contact-data snapshot and run history.

:func:`take_snapshot` reads the active students and their phones still in the SIS, with two
plain queries (no ORM objects: 100,000 students must cost about a second), and returns them
as columns (``domain.quality.snapshot.Snapshot``). The consent joined in is the
institution-wide one (``sender_e164 = ''``): a STOP to one sender does not make a student
unreachable by others.

Each report's figures are kept in ``QualityRun`` so the next report can show the trend.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, and_, select
from sqlmodel import Session, col

from domain.consent import INSTITUTION
from domain.quality.snapshot import PHONE_COLUMNS, STUDENT_COLUMNS, Snapshot
from models.consent import Consent
from models.messaging import QualityRun
from models.people import Person, PhoneNumber

person_t = Person.__table__  # type: ignore[attr-defined]
phone_t = PhoneNumber.__table__  # type: ignore[attr-defined]
consent_t = Consent.__table__  # type: ignore[attr-defined]

_ACTIVE_STUDENT = and_(person_t.c.role == "student", person_t.c.status == "active")


def snapshot_queries() -> tuple[Select[Any], Select[Any]]:
    """The two SELECTs of a snapshot: active students (with their institution-wide
    consent), and their phones still in the SIS."""
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
    return students_q, phones_q


def take_snapshot(*, session: Session) -> Snapshot:
    """Active students' contact data as columns, ordered by SIS id (phones by person, id).

    Besides the stored fields, two facts about each student's SMS number are derived here,
    from all active students' phones: whether its phone row is disabled by the carrier, and
    whether the number is recorded anywhere as a parent or family number.
    """
    students_q, phones_q = snapshot_queries()
    # Rows are transposed into columns in one zip(*rows): per-row attribute access cost
    # more than the query itself at 100,000 students.
    st = _columns(session, students_q)
    index = {person_id: i for i, person_id in enumerate(st.pop("id"))}
    st["email"] = [e if e and e.strip() else None for e in st["email"]]
    sms_numbers = st["sms_e164"]
    carrier = [False] * len(index)
    ph = _columns(session, phones_q)
    ph["valid"] = [bool(v) for v in ph["valid"]]  # SQLite gives 0/1
    ph["source_updated_at"] = [_utc(v) for v in ph["source_updated_at"]]
    person_ids = ph.pop("person_id")
    sis_ids = st["sis_id"]
    ph["sis_id"] = [sis_ids[index[p]] for p in person_ids]
    for person_id, e164, disabled in zip(
        person_ids, ph["e164"], ph.pop("disabled_by_carrier"), strict=True
    ):
        if disabled and e164 and e164 == sms_numbers[index[person_id]]:
            carrier[index[person_id]] = True
    parents = {e for e, kind in zip(ph["e164"], ph["kind"], strict=True) if e and kind == "parent"}
    st["sms_disabled_by_carrier"] = carrier
    st["sms_is_parent_number"] = [bool(n) and n in parents for n in sms_numbers]
    students = {c: st[c] for c in STUDENT_COLUMNS}
    phones = {c: ph[c] for c in PHONE_COLUMNS}
    return Snapshot(students=students, phones=phones)


def _utc(value: str | datetime | None) -> datetime | None:
    # The raw driver value: SQLite's stored text (UTC, naive), PostgreSQL's timestamptz.
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _columns(session: Session, query: Select[Any]) -> dict[str, list[Any]]:
    """Run ``query`` on the session's connection and return its columns.

    The rows come straight from the DB-API cursor, transposed with one ``zip(*rows)``:
    SQLAlchemy's per-row objects and type processing doubled the snapshot's time at
    100,000 students. The SQL is still compiled by SQLAlchemy for the dialect; its only
    parameters are constants of this module, rendered inline. Callers convert the few
    values whose raw form differs between drivers (SQLite's 0/1 booleans and text dates).
    """
    connection = session.connection()
    sql = str(query.compile(dialect=connection.dialect, compile_kwargs={"literal_binds": True}))
    cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(sql)
        names = [d[0] for d in cursor.description]
        rows = cursor.fetchall()
    finally:
        cursor.close()
    if not rows:
        return {name: [] for name in names}
    return {name: list(values) for name, values in zip(names, zip(*rows, strict=True), strict=True)}


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
