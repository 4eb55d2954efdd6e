"""The reply mailbox's ledger: each mail read from it, handled exactly once.

One row per mail (unique by its Message-ID, or a hash of the mail when it has none),
written before anything is acted on, so a poller that dies between reading a mail and
moving it to the handled folder finds it here next time and does not act twice. The row
says what the mail was (a staff member's answer, a student's email reply, or refused) and
what became of it; refused mails keep their text for review.

Keyword-only functions over the caller's session; they never commit.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Column, Index, UniqueConstraint, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Field, Session, SQLModel

from models.messaging import Campaign, Message, PollCursor
from models.types import PortableJSON, UTCDateTime, utcnow


class MailReceipt(SQLModel, table=True):
    """One mail read from the reply mailbox and what nudge did with it.

    ``kind``: ``staff_reply`` (texted to the student), ``student_reply`` (recorded in the
    thread), ``refused`` (kept for review: forged sender, unknown or tampered token).
    ``status``: ``received`` (recorded, not yet acted on), ``done``, ``refused``.
    """

    __tablename__ = "mail_receipt"
    __table_args__ = (
        UniqueConstraint("mail_key", name="uq_mail_receipt_key"),
        Index("ix_mail_receipt_status", "status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    mail_key: str = Field(max_length=200, description="Message-ID, or sha256: of the mail.")
    kind: str = Field(max_length=16)
    status: str = Field(default="received", max_length=16)
    reason: str | None = Field(default=None, max_length=300)
    from_addr: str | None = Field(default=None, max_length=320)
    subject: str | None = Field(default=None, max_length=300)
    body: str = Field(default="")
    staff_person_id: int | None = Field(default=None, foreign_key="person.id")
    student_person_id: int | None = Field(default=None, foreign_key="person.id")
    campaign_id: int | None = Field(default=None, foreign_key="campaign.id")
    inbound_id: int | None = Field(default=None, foreign_key="inbound_message.id")
    result: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(PortableJSON, nullable=False)
    )
    received_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )
    handled_at: datetime | None = Field(
        default=None, sa_column=Column(UTCDateTime(), nullable=True)
    )


receipt_t = MailReceipt.__table__  # type: ignore[attr-defined]


def claim_receipt(*, session: Session, mail_key: str, values: dict[str, Any]) -> MailReceipt:
    """The receipt of mail ``mail_key``: recorded now with ``values`` if it is new, else the
    one an earlier pass recorded (its ``status`` says whether it was acted on)."""
    maker = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    session.execute(
        maker(receipt_t)
        .values(mail_key=mail_key, result={}, received_at=utcnow(), **values)
        .on_conflict_do_nothing(index_elements=["mail_key"])
    )
    row: MailReceipt = session.execute(
        select(MailReceipt).where(MailReceipt.mail_key == mail_key)  # type: ignore[arg-type]
    ).scalar_one()
    return row


def finish_receipt(*, session: Session, receipt_id: int, now: datetime, **changes: Any) -> None:
    """Record what became of a mail (``status``, ``campaign_id``, ``inbound_id``, ...)."""
    changes.setdefault("status", "done")
    session.execute(
        update(receipt_t).where(receipt_t.c.id == receipt_id).values(handled_at=now, **changes)
    )


def receipts_for_review(*, session: Session, limit: int = 100) -> list[MailReceipt]:
    """Refused mails, newest first (what an admin reviews)."""
    return list(
        session.execute(
            select(MailReceipt)
            .where(MailReceipt.status == "refused")  # type: ignore[arg-type]
            .order_by(receipt_t.c.received_at.desc(), receipt_t.c.id.desc())
            .limit(limit)
        ).scalars()
    )


@dataclass(frozen=True, slots=True)
class AnswerOutcome:
    """What became of a staff member's answer (a one-student reply campaign)."""

    campaign_status: str | None
    refused_reason: str | None
    channel: str | None
    status: str | None
    reason: str | None
    error: str | None


def answer_outcome(*, session: Session, campaign_id: int) -> AnswerOutcome:
    """The campaign's state and its message to the student (the opt-in notice aside)."""
    campaign = session.get(Campaign, campaign_id)
    t = Message.__table__  # type: ignore[attr-defined]
    row = session.execute(
        select(t.c.channel, t.c.status, t.c.reason, t.c.error_code, t.c.error_message)
        .where(t.c.campaign_id == campaign_id, t.c.kind != "opt_in_notice")
        .order_by(t.c.id)
        .limit(1)
    ).first()
    error = None
    if row is not None and (row.error_code or row.error_message):
        error = " ".join(str(x) for x in (row.error_code, row.error_message) if x)
    return AnswerOutcome(
        campaign_status=campaign.status if campaign else None,
        refused_reason=campaign.refused_reason if campaign else None,
        channel=row.channel if row else None,
        status=row.status if row else None,
        reason=row.reason if row else None,
        error=error,
    )


#: The ``poll_cursor`` row that keeps the installation's reply-token key (when
#: ``NUDGE_REPLY_SECRET`` is not set).
REPLY_KEY_NAME = "reply-token-key"


def installation_reply_key(*, session: Session) -> bytes:
    """The random key of this installation's reply tokens, made on first use and kept in
    the database, so every host that shares the database makes and reads the same tokens.
    Read first (every email batch asks; only the first ever writes); two processes making
    it at once agree (``ON CONFLICT DO NOTHING``, then read)."""
    table = PollCursor.__table__  # type: ignore[attr-defined]
    stored = select(table.c.value).where(table.c.name == REPLY_KEY_NAME)
    value: str | None = session.execute(stored).scalar_one_or_none()
    if value is None:
        maker = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
        session.execute(
            maker(table)
            .values(name=REPLY_KEY_NAME, value=secrets.token_hex(32), updated_at=utcnow())
            .on_conflict_do_nothing(index_elements=["name"])
        )
        value = session.execute(stored).scalar_one()
    return bytes.fromhex(value)


def campaign_senders(*, session: Session, campaign_ids: Iterable[int]) -> dict[int, int]:
    """The staff member (person id) who sends each of these campaigns."""
    ids = sorted(set(campaign_ids))
    if not ids:
        return {}
    t = Campaign.__table__  # type: ignore[attr-defined]
    rows = session.execute(select(t.c.id, t.c.sender_person_id).where(t.c.id.in_(ids)))
    return {int(cid): int(pid) for cid, pid in rows}


__all__ = [
    "REPLY_KEY_NAME",
    "AnswerOutcome",
    "MailReceipt",
    "answer_outcome",
    "campaign_senders",
    "claim_receipt",
    "finish_receipt",
    "installation_reply_key",
    "receipts_for_review",
]
