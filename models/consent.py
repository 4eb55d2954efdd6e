"""Consent to receive SMS, keyed by the recipient's number, with a full audit trail.

``sender_e164`` is ``""`` for an institution-wide state and a sender number when the opt-out
scope is per sender. Every change appends a ``ConsentEvent`` (who, why, when, from what),
so an admin can always answer "why did (or didn't) this student get a text?".
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index, UniqueConstraint
from sqlmodel import Field, Session, SQLModel, col, select

from models.types import UTCDateTime, utcnow

INSTITUTION = ""


class Consent(SQLModel, table=True):
    """The current consent state of one number (in one scope)."""

    __tablename__ = "consent"
    __table_args__ = (UniqueConstraint("e164", "sender_e164", name="uq_consent_scope"),)

    id: int | None = Field(default=None, primary_key=True)
    e164: str = Field(max_length=20)
    sender_e164: str = Field(default=INSTITUTION, max_length=20)
    status: str = Field(
        max_length=20, description="ConsentState: opted_in|opted_out|paused_for_review"
    )
    source: str = Field(
        max_length=20,
        description="ConsentSource: auto|start|stop|admin|carrier_21610|reply_review",
    )
    updated_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )


class ConsentEvent(SQLModel, table=True):
    """One change of consent, kept forever (the audit trail)."""

    __tablename__ = "consent_event"
    __table_args__ = (Index("ix_consent_event_e164", "e164"),)

    id: int | None = Field(default=None, primary_key=True)
    e164: str = Field(max_length=20)
    sender_e164: str = Field(default=INSTITUTION, max_length=20)
    status: str = Field(max_length=20)
    source: str = Field(max_length=20)
    reason: str | None = Field(default=None, max_length=500)
    actor: str | None = Field(default=None, max_length=200)
    inbound_sid: str | None = Field(default=None, max_length=40)
    at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))


def set_consent(
    *,
    session: Session,
    e164: str,
    status: str,
    source: str,
    sender_e164: str = INSTITUTION,
    reason: str | None = None,
    actor: str | None = None,
    inbound_sid: str | None = None,
    at: datetime | None = None,
) -> Consent:
    """Set the consent of ``e164`` in a scope and append the audit event."""
    when = at or utcnow()
    row = session.exec(
        select(Consent).where(Consent.e164 == e164, Consent.sender_e164 == sender_e164)
    ).first()
    if row is None:
        row = Consent(e164=e164, sender_e164=sender_e164, status=status, source=source)
    row.status = status
    row.source = source
    row.updated_at = when
    session.add(row)
    session.add(
        ConsentEvent(
            e164=e164,
            sender_e164=sender_e164,
            status=status,
            source=source,
            reason=reason,
            actor=actor,
            inbound_sid=inbound_sid,
            at=when,
        )
    )
    return row


def consent_history(*, session: Session, e164: str) -> list[ConsentEvent]:
    """Every consent change of ``e164``, oldest first."""
    return list(
        session.exec(
            select(ConsentEvent)
            .where(ConsentEvent.e164 == e164)
            .order_by(col(ConsentEvent.at), col(ConsentEvent.id))
        )
    )
