"""Who may text: static role grants to staff, and dynamic roles defined by a filter.

Static roles also arrive from the SIS extract (``Person.roles``); grants made here by an admin
survive every sync. A dynamic role is a stored filter over staff attributes (department,
title), evaluated when a campaign starts.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Column, UniqueConstraint, delete, select
from sqlmodel import Field, Session, SQLModel, col

from domain.roles import RoleFilter, StaffFacts, normalize_role
from models.people import Person
from models.types import PortableJSON, UTCDateTime, utcnow


class RoleGrant(SQLModel, table=True):
    """A static role an admin granted to one staff member."""

    __tablename__ = "role_grant"
    __table_args__ = (UniqueConstraint("staff_sis_id", "role", name="uq_role_grant"),)

    id: int | None = Field(default=None, primary_key=True)
    staff_sis_id: str = Field(max_length=64, index=True)
    role: str = Field(max_length=100)
    granted_by: str | None = Field(default=None, max_length=200)
    granted_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )


class DynamicRole(SQLModel, table=True):
    """A role held by every staff member matching a filter over their attributes."""

    __tablename__ = "dynamic_role"
    __table_args__ = (UniqueConstraint("name", name="uq_dynamic_role_name"),)

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100)
    filter: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(PortableJSON, nullable=False)
    )
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )


# --- repository functions (the caller owns the session) -----------------------------------


def grants(*, session: Session) -> list[RoleGrant]:
    """Every static grant, by staff member then role."""
    stmt = select(RoleGrant).order_by(col(RoleGrant.staff_sis_id), col(RoleGrant.role))
    return list(session.execute(stmt).scalars())


def grant_role(*, session: Session, staff_sis_id: str, role: str, granted_by: str) -> bool:
    """Grant ``role`` to a staff member; False when they already had that grant."""
    stmt = select(RoleGrant).where(
        col(RoleGrant.staff_sis_id) == staff_sis_id, col(RoleGrant.role) == role
    )
    if session.execute(stmt).first() is not None:
        return False
    session.add(RoleGrant(staff_sis_id=staff_sis_id, role=role, granted_by=granted_by))
    return True


def revoke_role(*, session: Session, staff_sis_id: str, role: str) -> bool:
    """Remove an admin's grant; False when there was none."""
    table = RoleGrant.__table__  # type: ignore[attr-defined]
    gone = session.execute(
        delete(table).where(table.c.staff_sis_id == staff_sis_id, table.c.role == role)
    ).rowcount  # type: ignore[attr-defined]
    return bool(gone)


def define_dynamic_role(*, session: Session, name: str, spec: RoleFilter) -> None:
    """Create or replace the dynamic role ``name``."""
    row = session.execute(select(DynamicRole).where(col(DynamicRole.name) == name)).scalar()
    if row is None:
        row = DynamicRole(name=name)
    row.filter = spec.model_dump(mode="json")
    session.add(row)


def undefine_dynamic_role(*, session: Session, name: str) -> bool:
    """Remove the dynamic role ``name``; False when there was none."""
    table = DynamicRole.__table__  # type: ignore[attr-defined]
    gone = session.execute(delete(table).where(table.c.name == name)).rowcount  # type: ignore[attr-defined]
    return bool(gone)


def sis_roles(*, session: Session) -> dict[str, list[str]]:
    """Roles each staff member has from the SIS extract (those with any), by SIS id."""
    rows = session.execute(
        select(col(Person.sis_id), col(Person.roles))
        .where(col(Person.role) == "staff")
        .order_by(col(Person.sis_id))
    )
    return {sis_id: list(roles) for sis_id, roles in rows if roles}


@dataclass(slots=True)
class RoleCensus:
    """Every role name in use, and who holds each one now.

    ``names`` maps the comparable form (:func:`domain.roles.normalize_role`) of every
    role anyone could mean — admin grants, the SIS ``roles`` column, dynamic roles — to
    its spelling; ``holders`` maps it to the active staff members holding it.
    """

    names: dict[str, str] = field(default_factory=dict)
    holders: dict[str, set[str]] = field(default_factory=dict)

    def add(self, name: str, holder: str | None = None) -> None:
        """Record that ``name`` exists (and that ``holder`` holds it)."""
        key = normalize_role(name)
        if not key:
            return
        self.names.setdefault(key, " ".join(name.split()))
        if holder is not None:
            self.holders.setdefault(key, set()).add(holder)

    def known(self, name: str) -> bool:
        """Whether ``name`` (compared case-insensitively) is a role in use."""
        return normalize_role(name) in self.names

    def held(self, name: str) -> bool:
        """Whether any active staff member holds ``name`` now."""
        return bool(self.holders.get(normalize_role(name)))

    def closest(self, name: str, *, extra: Iterable[str] = (), limit: int = 3) -> list[str]:
        """The spellings in use nearest to ``name`` (a typo's likely meaning)."""
        spellings = {**self.names, **{normalize_role(e): e for e in extra if e.strip()}}
        near = difflib.get_close_matches(normalize_role(name), list(spellings), n=limit, cutoff=0.6)
        return [spellings[k] for k in near]


def role_census(*, session: Session) -> RoleCensus:
    """Who holds which role: static grants and SIS roles of active staff, and the dynamic
    roles evaluated over active staff (the router's rules, ``domain.roles``)."""
    census = RoleCensus()
    staff = session.execute(
        select(
            col(Person.sis_id),
            col(Person.status),
            col(Person.roles),
            col(Person.department),
            col(Person.title),
        ).where(col(Person.role) == "staff")
    ).all()
    active = {sis_id for sis_id, status, *_ in staff if status == "active"}
    for grant in grants(session=session):
        census.add(grant.role, grant.staff_sis_id if grant.staff_sis_id in active else None)
    dynamic = {
        name: RoleFilter.model_validate(spec)
        for name, spec in session.execute(select(col(DynamicRole.name), col(DynamicRole.filter)))
    }
    for name in dynamic:
        census.add(name)
    for sis_id, status, roles, department, title in staff:
        holder = sis_id if status == "active" else None
        for role in roles or []:
            census.add(role, holder)
        if holder is not None:
            facts = StaffFacts(department=department, title=title)
            for name, rule in dynamic.items():
                if rule.matches(facts):
                    census.add(name, holder)
    return census
