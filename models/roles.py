"""Who may text: static role grants to staff, and dynamic roles defined by a filter.

Static roles also arrive from the SIS extract (``Person.roles``); grants made here by an admin
survive every sync. A dynamic role is a stored filter over staff attributes (department,
title), evaluated when a campaign starts.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column, UniqueConstraint
from sqlmodel import Field, SQLModel

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
