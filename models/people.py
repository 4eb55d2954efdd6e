"""People and their phone numbers, as synced from the SIS.

A person is never deleted: people missing from a full extract become ``inactive`` and keep
their history. A phone row keeps the raw value exactly as received beside what we made of it
(E.164, line type, validity and reason), plus the two facts the SIS never overwrites: the
admin's ``sms_allowed`` override and the carrier's verdict (``disabled_by_carrier``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import Column, Index, UniqueConstraint, select, update
from sqlmodel import Field, Session, SQLModel, col

from domain.names import display_name
from domain.phones import MANUAL_TYPE_CODE
from models.bulk import chunked
from models.types import PortableJSON, UTCDateTime, utcnow

if TYPE_CHECKING:
    from domain.phones import ParsedPhone


class PersonBase(SQLModel):
    """Fields of a person as the SIS and admins describe them."""

    sis_id: str = Field(max_length=64, description="The SIS person id (unique).")
    role: str = Field(max_length=16, description="student | staff")
    first_name: str | None = Field(default=None, max_length=200)
    last_name: str | None = Field(default=None, max_length=200)
    preferred_name: str | None = Field(default=None, max_length=200)
    email: str | None = Field(default=None, max_length=320)
    status: str = Field(default="active", max_length=16, description="active | inactive")
    program: str | None = Field(default=None, max_length=200)
    degree: str | None = Field(default=None, max_length=200)
    risk_level: str | None = Field(default=None, max_length=32)
    advisor_sis_id: str | None = Field(default=None, max_length=64)
    department: str | None = Field(default=None, max_length=200)
    title: str | None = Field(default=None, max_length=200)

    @property
    def display_name(self) -> str:
        """How the person is named on notices, emails and screens (:mod:`domain.names`)."""
        return display_name(self.first_name, self.preferred_name, self.last_name, self.sis_id)


class Person(PersonBase, table=True):
    """A student or staff member."""

    __tablename__ = "person"
    __table_args__ = (
        UniqueConstraint("sis_id", name="uq_person_sis_id"),
        Index("ix_person_role_status", "role", "status"),
        Index("ix_person_advisor", "advisor_sis_id"),
        Index("ix_person_program", "program"),
        Index("ix_person_sms_e164", "sms_e164"),
    )

    id: int | None = Field(default=None, primary_key=True)
    tags: list[str] = Field(default_factory=list, sa_column=Column(PortableJSON, nullable=False))
    courses: list[str] = Field(default_factory=list, sa_column=Column(PortableJSON, nullable=False))
    roles: list[str] = Field(
        default_factory=list,
        sa_column=Column(PortableJSON, nullable=False),
        description="Static roles from the SIS extract (staff).",
    )
    sms_e164: str | None = Field(
        default=None, max_length=20, description="The chosen SMS number (derived by the sync)."
    )
    sms_reason: str | None = Field(
        default=None, max_length=40, description="Why there is no SMS number, when there is none."
    )
    source_hash: str | None = Field(default=None, max_length=64)
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )
    updated_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )
    deactivated_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))


class PhoneNumber(SQLModel, table=True):
    """One phone of a person, raw and interpreted."""

    __tablename__ = "phone_number"
    __table_args__ = (
        UniqueConstraint("person_id", "type_code", "match_key", name="uq_phone_person_key"),
        Index("ix_phone_e164", "e164"),
    )

    id: int | None = Field(default=None, primary_key=True)
    person_id: int = Field(foreign_key="person.id", index=True)
    raw: str = Field(max_length=200, description="The value exactly as the SIS sent it.")
    country: str | None = Field(default=None, max_length=2)
    type_code: str = Field(max_length=32, description="The SIS's phone type code.")
    kind: str = Field(max_length=16, description="mobile | home | work | parent | fax | other")
    known_type_code: bool = Field(default=True)
    match_key: str = Field(
        max_length=220, description="E.164 when valid, else 'raw:' + raw: survives reformatting."
    )
    e164: str | None = Field(default=None, max_length=20)
    extension: str | None = Field(default=None, max_length=20)
    line_type: str | None = Field(default=None, max_length=32)
    valid: bool = Field(default=False)
    reason: str | None = Field(default=None, max_length=40, description="Why it was rejected.")
    sms_capable: bool = Field(default=False)
    type_mismatch: bool = Field(default=False, description="Coded mobile, line type fixed.")
    is_primary: bool = Field(default=False)
    source_updated_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    present: bool = Field(default=True, description="Still in the SIS extract.")
    sms_allowed: bool | None = Field(
        default=None, description="Admin override: True = text this number, False = never."
    )
    disabled_by_carrier: bool = Field(default=False)
    carrier_error_code: int | None = Field(default=None)
    first_seen: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )
    last_seen: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )


# --- repository functions (the caller owns the session) -----------------------------------


def person_by_sis_id(*, session: Session, sis_id: str) -> Person | None:
    """The person with this SIS id (student or staff, active or not)."""
    return session.execute(select(Person).where(col(Person.sis_id) == sis_id)).scalar()


class NoSuchStaff(LookupError):
    """No staff member has the SIS id a command or a request named."""

    def __init__(self, sis_id: str) -> None:
        super().__init__(f"no staff member with SIS id {sis_id!r}")
        self.sis_id = sis_id


def staff_by_sis_id(*, session: Session, sis_id: str) -> Person | None:
    """The staff member with this SIS id, active or not."""
    stmt = select(Person).where(Person.sis_id == sis_id, Person.role == "staff")  # type: ignore[arg-type]
    return session.execute(stmt).scalar_one_or_none()


def require_staff(*, session: Session, sis_id: str) -> Person:
    """The staff member with this SIS id; raises :class:`NoSuchStaff` (whose message is the
    one refusal every command and flow shows) when there is none."""
    person = staff_by_sis_id(session=session, sis_id=sis_id)
    if person is None or person.id is None:
        raise NoSuchStaff(sis_id)
    return person


def phones_of(*, session: Session, person_id: int) -> list[PhoneNumber]:
    """Every stored phone row of a person (SIS and manual, present or not), oldest first."""
    stmt = select(PhoneNumber).where(col(PhoneNumber.person_id) == person_id)
    return list(session.execute(stmt.order_by(col(PhoneNumber.id))).scalars())


def set_sms_override(*, session: Session, phone_ids: Sequence[int], value: bool | None) -> int:
    """Set (or clear, ``None``) the admin's ``sms_allowed`` override of these rows."""
    table = PhoneNumber.__table__  # type: ignore[attr-defined]
    return int(
        session.execute(
            update(table).where(table.c.id.in_(list(phone_ids))).values(sms_allowed=value)
        ).rowcount  # type: ignore[attr-defined]
    )


def add_manual_phone(
    *, session: Session, person_id: int, raw: str, parsed: ParsedPhone
) -> PhoneNumber:
    """A number an admin adds by hand, overridden to be texted (``sms_allowed=True``):
    kind ``mobile``, ``type_code`` :data:`MANUAL_TYPE_CODE`. A manual row the sync
    marked as gone is brought back rather than duplicated. It is primary and dated now,
    so it is chosen over numbers an admin allowed before."""
    assert parsed.e164 is not None  # noqa: S101 - only valid numbers are added
    now = utcnow()
    row = session.execute(
        select(PhoneNumber).where(
            col(PhoneNumber.person_id) == person_id,
            col(PhoneNumber.type_code) == MANUAL_TYPE_CODE,
            col(PhoneNumber.match_key) == parsed.e164,
        )
    ).scalar()
    if row is None:
        row = PhoneNumber(
            person_id=person_id,
            raw=raw.strip(),
            type_code=MANUAL_TYPE_CODE,
            kind="mobile",
            match_key=parsed.e164,
            first_seen=now,
        )
    row.e164 = parsed.e164
    row.extension = parsed.extension
    row.line_type = parsed.line_type
    row.valid = parsed.valid
    row.reason = str(parsed.reason) if parsed.reason else None
    row.sms_capable = parsed.sms_capable
    row.present = True
    row.sms_allowed = True
    # The admin's latest word: chosen before older overrides (primary, then most recent).
    row.is_primary = True
    row.source_updated_at = now
    row.last_seen = now
    session.add(row)
    session.flush()
    return row


def remove_manual_phone(*, session: Session, phone_ids: Sequence[int]) -> int:
    """Take back numbers an admin added (only manual rows): they are kept, as no longer
    present, with their override cleared."""
    table = PhoneNumber.__table__  # type: ignore[attr-defined]
    return int(
        session.execute(
            update(table)
            .where(table.c.id.in_(list(phone_ids)), table.c.type_code == MANUAL_TYPE_CODE)
            .values(present=False, sms_allowed=None, is_primary=False)
        ).rowcount  # type: ignore[attr-defined]
    )


# --- who a number belongs to, and a person's numbers -------------------------------------


def people_by_number(*, session: Session, numbers: Iterable[str]) -> dict[str, int]:
    """Number -> the person it belongs to: their chosen SMS number, or any stored phone.

    A number several people share (siblings, a parent) goes to the one texted at it, then
    to an active student, then to the oldest record: the same answer every time.
    """
    best: dict[str, tuple[tuple[int, int, int, int], int]] = {}

    def offer(number: str, person_id: int, chosen: bool, role: str, status: str) -> None:
        rank = (
            0 if chosen else 1,
            0 if role == "student" else 1,
            0 if status == "active" else 1,
            person_id,
        )
        if number not in best or rank < best[number][0]:
            best[number] = (rank, person_id)

    for batch in chunked(sorted(set(numbers))):
        wanted = list(batch)
        for number, pid, role, status in session.execute(
            select(_PERSON.c.sms_e164, _PERSON.c.id, _PERSON.c.role, _PERSON.c.status).where(
                _PERSON.c.sms_e164.in_(wanted)
            )
        ):
            offer(str(number), int(pid), True, role, status)
        for number, pid, role, status in session.execute(
            select(_PHONE.c.e164, _PERSON.c.id, _PERSON.c.role, _PERSON.c.status)
            .select_from(_PHONE.join(_PERSON, _PERSON.c.id == _PHONE.c.person_id))
            .where(_PHONE.c.e164.in_(wanted))
        ):
            offer(str(number), int(pid), False, role, status)
    return {number: pid for number, (_rank, pid) in best.items()}


def student_numbers(*, session: Session, person_id: int) -> set[str]:
    """Every E.164 stored for a person: the chosen SMS number and all phone rows."""
    numbers = set(
        session.execute(
            select(_PHONE.c.e164).where(_PHONE.c.person_id == person_id, _PHONE.c.e164.is_not(None))
        ).scalars()
    )
    chosen = session.execute(select(_PERSON.c.sms_e164).where(_PERSON.c.id == person_id)).scalar()
    if chosen:
        numbers.add(str(chosen))
    return numbers


_PERSON = Person.__table__  # type: ignore[attr-defined]
_PHONE = PhoneNumber.__table__  # type: ignore[attr-defined]
