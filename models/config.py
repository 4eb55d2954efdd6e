"""Storage of the institution's SMS configuration: one row holding ``domain.config.SmsConfig``.

Reading never fails on a missing row (the defaults apply); writing validates the whole
configuration first, so the stored row is always a valid ``SmsConfig``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column
from sqlmodel import Field, Session, SQLModel

from domain.config import SmsConfig
from models.types import PortableJSON, UTCDateTime, utcnow

_ROW_ID = 1


class SmsConfigRow(SQLModel, table=True):
    """The single configuration row (id 1)."""

    __tablename__ = "sms_config"

    id: int = Field(default=_ROW_ID, primary_key=True)
    data: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(PortableJSON, nullable=False)
    )
    updated_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )
    updated_by: str | None = Field(default=None, max_length=200)


def load_config(*, session: Session) -> SmsConfig:
    """The stored configuration, or the defaults when nothing was stored yet."""
    row = session.get(SmsConfigRow, _ROW_ID)
    return SmsConfig.model_validate(row.data) if row else SmsConfig()


def save_config(config: SmsConfig, *, session: Session, actor: str | None = None) -> None:
    """Store ``config`` (already validated) as the single configuration row."""
    row = session.get(SmsConfigRow, _ROW_ID)
    data = config.model_dump(mode="json")
    if row is None:
        session.add(SmsConfigRow(id=_ROW_ID, data=data, updated_by=actor))
    else:
        row.data = data
        row.updated_at = utcnow()
        row.updated_by = actor
        session.add(row)
