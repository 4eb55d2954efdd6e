"""Campaigns, their messages, sender numbers, inbound replies, the quota and poll cursors.

The invariants that make "exactly one text per student" hold across crashes and workers:

* ``Message`` is unique on (campaign, recipient, kind): planning twice plans nothing new.
* A message moves planned → sending → sent (→ delivered | undelivered | failed) and the
  ``sending`` mark is committed *before* the Twilio call, so a crash leaves evidence that is
  reconciled against Twilio's message list before anything is resent.
* ``QuotaLedger`` is reserved with one conditional UPDATE: two campaigns never exceed it.
* ``SendChunk`` rows are claimed with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.types import PortableJSON, UTCDateTime, utcnow


def _ts(nullable: bool = True) -> Any:
    return Field(default=None, sa_column=Column(UTCDateTime(), nullable=nullable))


def _now_ts() -> Any:
    return Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))


class SenderNumber(SQLModel, table=True):
    """The Twilio number provisioned for one staff member (on their first SMS)."""

    __tablename__ = "sender_number"
    __table_args__ = (
        UniqueConstraint("staff_person_id", name="uq_sender_staff"),
        UniqueConstraint("e164", name="uq_sender_e164"),
    )

    id: int | None = Field(default=None, primary_key=True)
    staff_person_id: int = Field(foreign_key="person.id")
    e164: str | None = Field(default=None, max_length=20)
    provider_sid: str | None = Field(default=None, max_length=40)
    status: str = Field(default="provisioning", max_length=16, description="provisioning|active")
    created_at: datetime = _now_ts()
    updated_at: datetime = _now_ts()


class Campaign(SQLModel, table=True):
    """One request to text a group (or, kind ``reply``, one student in a conversation)."""

    __tablename__ = "campaign"
    __table_args__ = (
        UniqueConstraint("request_key", name="uq_campaign_request_key"),
        Index("ix_campaign_status_send_at", "status", "send_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(default="campaign", max_length=16, description="campaign | reply")
    sender_person_id: int = Field(foreign_key="person.id")
    audience: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(PortableJSON, nullable=False)
    )
    template: str
    send_at: datetime | None = _ts()
    status: str = Field(
        default="scheduled",
        max_length=16,
        description="scheduled | sending | completed | cancelled | stopped | refused",
    )
    refused_reason: str | None = Field(default=None)
    stop_reason: str | None = Field(default=None)
    request_key: str | None = Field(default=None, max_length=200)
    created_by: str | None = Field(default=None, max_length=200)
    holdout_pct: float | None = Field(
        default=None, description="Share (0-100) of the audience held out at random."
    )
    holdout_seed: int | None = Field(
        default=None, description="Seed of the holdout draw (the same seed, the same students)."
    )
    conversation: bool = Field(
        default=False,
        description="A reply inside an existing conversation (allowed regardless of role).",
    )
    counts: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(PortableJSON, nullable=False)
    )
    created_at: datetime = _now_ts()
    started_at: datetime | None = _ts()
    finished_at: datetime | None = _ts()


class SendChunk(SQLModel, table=True):
    """A slice of a campaign's messages that one worker claims and sends."""

    __tablename__ = "send_chunk"
    __table_args__ = (
        UniqueConstraint("campaign_id", "seq", name="uq_chunk_seq"),
        Index("ix_chunk_status", "status", "not_before"),
    )

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id")
    seq: int
    status: str = Field(default="pending", max_length=16, description="pending | claimed | done")
    not_before: datetime | None = _ts()
    claimed_by: str | None = Field(default=None, max_length=200)
    claim_token: str | None = Field(
        default=None,
        max_length=240,
        description="Fencing token of the current claim: marking a message `sending` needs it.",
    )
    claimed_at: datetime | None = _ts()
    heartbeat_at: datetime | None = _ts()
    failures: int = Field(default=0, description="Passes that ended in an unexpected error.")
    last_error: str | None = Field(default=None, max_length=500)


class Message(SQLModel, table=True):
    """One message to one recipient: SMS or email, with its whole life recorded."""

    __tablename__ = "message"
    __table_args__ = (
        UniqueConstraint("campaign_id", "person_id", "kind", name="uq_message_idempotency"),
        UniqueConstraint("provider_sid", name="uq_message_provider_sid"),
        UniqueConstraint("outbox_key", name="uq_message_outbox_key"),
        Index("ix_message_chunk", "chunk_id", "status"),
        Index("ix_message_loose", "kind", "status"),
        Index("ix_message_status", "status", "channel"),
        Index("ix_message_conversation", "from_addr", "to_addr"),
        Index("ix_message_person", "person_id", "kind"),  # a student's thread
    )

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int | None = Field(default=None, foreign_key="campaign.id")
    person_id: int | None = Field(default=None, foreign_key="person.id")
    chunk_id: int | None = Field(default=None, foreign_key="send_chunk.id")
    kind: str = Field(max_length=20, description="domain.outbox.Kind")
    channel: str = Field(max_length=8, description="sms | email")
    status: str = Field(default="planned", max_length=20, description="domain.outbox.Status")
    reason: str | None = Field(default=None, max_length=60)
    to_addr: str | None = Field(default=None, max_length=320)
    from_addr: str | None = Field(default=None, max_length=320)
    subject: str | None = Field(default=None, max_length=300)
    body: str
    segments: int = Field(default=0)
    encoding: str | None = Field(default=None, max_length=8)
    quota_units: int = Field(default=0, description="Units reserved from the monthly quota.")
    quota_month: str | None = Field(default=None, max_length=7)
    provider_sid: str | None = Field(default=None, max_length=40)
    error_code: int | None = Field(default=None)
    error_message: str | None = Field(default=None, max_length=500)
    attempts: int = Field(default=0)
    send_after: datetime | None = _ts()
    outbox_key: str | None = Field(
        default=None,
        max_length=200,
        description="Idempotency key of a message outside campaigns (notification, alert, ...).",
    )
    inbound_id: int | None = Field(
        default=None, description="The inbound message this one answers or reports."
    )
    claim_token: str | None = Field(
        default=None, max_length=240, description="Who marked it `sending` (fencing)."
    )
    marked_at: datetime | None = _ts()
    created_at: datetime = _now_ts()
    updated_at: datetime = _now_ts()
    sent_at: datetime | None = _ts()
    delivered_at: datetime | None = _ts()
    extra: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(PortableJSON, nullable=False)
    )


class InboundMessage(SQLModel, table=True):
    """A text a student (or anyone) sent to one of our numbers: stored once, never dropped."""

    __tablename__ = "inbound_message"
    __table_args__ = (
        UniqueConstraint("provider_sid", name="uq_inbound_sid"),
        Index("ix_inbound_thread", "staff_person_id", "person_id"),
        Index("ix_inbound_pending", "notified", "handled"),
    )

    id: int | None = Field(default=None, primary_key=True)
    provider_sid: str = Field(max_length=40)
    from_e164: str = Field(max_length=20)
    to_e164: str = Field(max_length=20)
    body: str
    received_at: datetime = _now_ts()
    person_id: int | None = Field(default=None, foreign_key="person.id")
    staff_person_id: int | None = Field(default=None, foreign_key="person.id")
    in_reply_to_id: int | None = Field(default=None, foreign_key="message.id")
    keyword: str = Field(default="none", max_length=8, description="stop|start|help|none")
    flagged_phrase: str | None = Field(default=None, max_length=200)
    urgent_phrase: str | None = Field(
        default=None,
        max_length=200,
        description="The crisis or safety phrase that made this reply urgent (domain/urgent).",
    )
    channel: str = Field(
        default="sms",
        max_length=8,
        sa_column_kwargs={"server_default": "sms"},
        description="sms | email (a student's answer to a fallback email, by mail)",
    )
    from_email: str | None = Field(
        default=None, max_length=320, description="The student's address (email channel)."
    )
    handled: bool = Field(default=False)
    notified: bool = Field(default=False)
    read_at: datetime | None = _ts()
    created_at: datetime = _now_ts()


class PaceSlot(SQLModel, table=True):
    """The next free send slot of one pace key (an account or a sender number), shared by
    every worker process: one atomic UPDATE hands out slots ``1/rate`` seconds apart."""

    __tablename__ = "pace_slot"

    key: str = Field(primary_key=True, max_length=80)
    next_at: float = Field(default=0.0, description="Epoch seconds of the next free slot.")


class QuotaLedger(SQLModel, table=True):
    """Units used per month (institution time zone); reserved atomically."""

    __tablename__ = "quota_ledger"

    month: str = Field(primary_key=True, max_length=7)
    used: int = Field(default=0)


class PollCursor(SQLModel, table=True):
    """A durable position of a poller (advanced only after its batch is committed)."""

    __tablename__ = "poll_cursor"

    name: str = Field(primary_key=True, max_length=64)
    value: str = Field(max_length=200)
    updated_at: datetime = _now_ts()


class QualityRun(SQLModel, table=True):
    """One data-quality report: its metrics, kept for the trend."""

    __tablename__ = "quality_run"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = _now_ts()
    metrics: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(PortableJSON, nullable=False)
    )
    alert: bool = Field(default=False)
    report_dir: str | None = Field(default=None, max_length=500)
