"""The outbox: every outbound message on every channel, one row each, one state machine.

Campaign messages (SMS, opt-in notices, emails), staff replies, keyword answers, reply
notifications and alert emails are all rows of ``message``. Every status change is a
conditional UPDATE that names the states it may come from (``domain.outbox.SOURCES``), so a
late or racing writer changes nothing instead of moving a message backwards.

The discipline, the same on every channel (``tasks/outbox.py`` drives it):

1. :func:`mark_sending`, committed before the provider is called. It records who marked the
   message (``claim_token``) and when (``marked_at``). For a campaign chunk the mark is
   *fenced*: it succeeds only while the worker still holds the chunk's claim token.
2. The outcome is recorded by :func:`settle`, :func:`unmark` or :func:`to_email` —
   conditional on the message still being ``sending`` under the same token, so a worker
   that was taken over records nothing over its successor's work.
3. A message left ``sending`` past the in-flight bound is settled by whoever finds it
   (:mod:`models.outbox_recovery`): SMS by asking the provider (:func:`settle` /
   :func:`unmark` with the token seen), email by :func:`mark_unknown` (never resent
   automatically).

Beside it: loose rows (:mod:`models.outbox_loose`), what a crash left behind
(:mod:`models.outbox_recovery`), what is still to send (:mod:`models.outbox_summary`).

The caller owns the session and commits; functions here never commit.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Column, and_, exists, or_, select, update
from sqlmodel import Session

from domain.outbox import OPEN, OutChannel, Status, sources_of, values
from models.bulk import chunked
from models.messaging import Message, SendChunk
from models.people import Person
from models.quota import release

message_t = Message.__table__  # type: ignore[attr-defined]
chunk_t = SendChunk.__table__  # type: ignore[attr-defined]
person_t = Person.__table__  # type: ignore[attr-defined]

#: An SMS in one of these states was handed to Twilio (a reply may answer it).
SENT_STATES = ("sent", "delivered", "undelivered", "failed")
#: States with work still to do (``domain.outbox.OPEN``), as stored.
OPEN_STATES = values(OPEN)
#: States of a message waiting for its turn: nobody is sending it.
WAITING_STATES = [Status.PLANNED.value, Status.DEFERRED.value]


@dataclass(slots=True)
class OutRow:
    """One outbox row as the send path handles it."""

    id: int
    campaign_id: int | None
    person_id: int | None
    chunk_id: int | None
    kind: str
    channel: str
    status: str
    to_addr: str | None
    from_addr: str | None
    subject: str | None
    body: str
    segments: int
    attempts: int
    extra: dict[str, Any]
    quota_units: int
    quota_month: str | None
    send_after: datetime | None
    marked_at: datetime | None
    claim_token: str | None
    outbox_key: str | None
    inbound_id: int | None
    error_code: int | None
    created_at: datetime

    @property
    def key(self) -> str:
        """The stable key of this row (the email Message-ID is derived from it)."""
        return f"m{self.id}"


#: The columns of ``message`` an :class:`OutRow` is built from, in its field order.
OUTROW_COLUMNS: tuple[Column[Any], ...] = tuple(
    message_t.c[name] for name in OutRow.__dataclass_fields__
)


def as_rows(result: Iterable[Any]) -> list[OutRow]:
    """The :class:`OutRow` of each row of a query selecting :data:`OUTROW_COLUMNS`."""
    return [OutRow(*r) for r in result]


def due_now(now: datetime) -> Any:
    """The condition of a message that may go at ``now``: no ``send_after`` or one that
    has come, and every ``sending`` one (its outcome is still to record)."""
    return or_(
        message_t.c.status == Status.SENDING.value,
        message_t.c.send_after.is_(None),
        message_t.c.send_after <= now,
    )


# --- loading ---------------------------------------------------------------------------


def load_chunk(*, session: Session, chunk_id: int, now: datetime) -> list[OutRow]:
    """Open messages of a chunk that are due (every ``sending`` one, due or not)."""
    return as_rows(
        session.execute(
            select(*OUTROW_COLUMNS)
            .where(
                message_t.c.chunk_id == chunk_id,
                message_t.c.status.in_(OPEN_STATES),
                due_now(now),
            )
            .order_by(message_t.c.person_id, message_t.c.id)
        )
    )


def get(*, session: Session, message_id: int) -> OutRow | None:
    """One outbox row by id."""
    rows = as_rows(session.execute(select(*OUTROW_COLUMNS).where(message_t.c.id == message_id)))
    return rows[0] if rows else None


# --- the discipline --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Fence:
    """A chunk claim: marking its messages needs the claim to be still held."""

    chunk_id: int
    token: str


def _fenced(fence: Fence | None) -> Any:
    if fence is None:
        return True
    return exists().where(
        chunk_t.c.id == fence.chunk_id,
        chunk_t.c.claim_token == fence.token,
        chunk_t.c.status == "claimed",
    )


def mark_sending(
    *,
    session: Session,
    row: OutRow,
    token: str,
    now: datetime,
    fence: Fence | None = None,
    from_addr: str | None = None,
    quota_units: int = 0,
    quota_month: str | None = None,
) -> bool:
    """Mark ``row`` ``sending`` under ``token`` (planned or deferred only; fenced by the
    chunk claim when ``fence`` is given). False: someone else has it, or the claim is lost."""
    changes: dict[str, Any] = {
        "status": Status.SENDING.value,
        "claim_token": token,
        "marked_at": now,
        "updated_at": now,
        "attempts": message_t.c.attempts + 1,
        "quota_units": quota_units,
        "quota_month": quota_month,
    }
    if from_addr is not None:
        changes["from_addr"] = from_addr
    won = session.execute(
        update(message_t)
        .where(
            message_t.c.id == row.id,
            message_t.c.channel == row.channel,
            message_t.c.status.in_(sources_of(Status.SENDING)),
            _fenced(fence),
        )
        .values(**changes)
    ).rowcount  # type: ignore[attr-defined]
    if won:
        row.status, row.claim_token, row.marked_at = Status.SENDING.value, token, now
        row.attempts += 1
        row.quota_units, row.quota_month = quota_units, quota_month
        if from_addr is not None:
            row.from_addr = from_addr
    return bool(won)


def _while_sending(row: OutRow, token: str | None) -> Any:
    owner = message_t.c.claim_token.is_(None) if token is None else message_t.c.claim_token == token
    return and_(message_t.c.id == row.id, message_t.c.status == Status.SENDING.value, owner)


def settle(
    *,
    session: Session,
    row: OutRow,
    to: Status,
    now: datetime,
    token: str | None = None,
    **changes: Any,
) -> bool:
    """Record how a ``sending`` message ended (``sent``, ``failed``, ``fallback_email``, ...),
    only while it is still ``sending`` under ``token`` (default: the token the row was
    loaded or marked with)."""
    if Status.SENDING.value not in sources_of(to):
        raise ValueError(f"a sending message cannot become {to}")
    owner = row.claim_token if token is None else token
    won = session.execute(
        update(message_t)
        .where(_while_sending(row, owner))
        .values(status=to.value, updated_at=now, **changes)
    ).rowcount  # type: ignore[attr-defined]
    if won:
        row.status = to.value
    return bool(won)


def unmark(
    *, session: Session, row: OutRow, now: datetime, token: str | None = None, **changes: Any
) -> bool:
    """``sending → planned``: the provider never created it (no call started, a definite
    failure, or reconciliation found nothing). Gives its quota back."""
    owner = row.claim_token if token is None else token
    won = session.execute(
        update(message_t)
        .where(_while_sending(row, owner))
        .values(
            status=Status.PLANNED.value,
            quota_units=0,
            quota_month=None,
            claim_token=None,
            updated_at=now,
            **changes,
        )
    ).rowcount  # type: ignore[attr-defined]
    if won:
        release(session=session, month=row.quota_month or "", units=row.quota_units)
        row.status, row.quota_units, row.quota_month = Status.PLANNED.value, 0, None
        row.claim_token = None
    return bool(won)


def mark_unknown(*, session: Session, row: OutRow, now: datetime, note: str) -> bool:
    """An email left ``sending`` whose outcome nobody can learn: ``unknown``, never resent
    automatically (an admin may, with ``nudge outbox resend``)."""
    return settle(
        session=session,
        row=row,
        to=Status.UNKNOWN,
        now=now,
        error_message=note[:500],
    )


def email_subject(sender_name: str) -> str:
    """The subject of a campaign message sent by email."""
    return f"Message from {sender_name}"


def email_body(body: str, sender_name: str) -> str:
    """The email version of a text: the same words, signed, saying why it is an email."""
    return (
        f"{body}\n\n— {sender_name}\n\n"
        "(You are receiving this by email because we could not send it to you by text.)"
    )


def to_email(
    *,
    session: Session,
    row: OutRow,
    reason: str,
    sender_name: str,
    now: datetime,
    code: int | None = None,
    fence: Fence | None = None,
) -> bool:
    """Turn an SMS into its email fallback (or ``skipped`` with no address).

    From ``planned``/``deferred`` (fenced by the chunk claim when given), or from
    ``sending`` under the row's token (quota given back). Returns False when another writer
    moved the message first.
    """
    email = session.execute(select(person_t.c.email).where(person_t.c.id == row.person_id)).scalar()
    extra = {**row.extra, "fallback": True, "sms_error": code}
    changes: dict[str, Any] = {"extra": extra, "error_code": code, "updated_at": now}
    if email:
        changes.update(
            channel=OutChannel.EMAIL.value,
            status=Status.PLANNED.value,
            reason=reason[:60],
            to_addr=email,
            subject=email_subject(sender_name),
            body=email_body(row.body, sender_name),
        )
    else:
        changes.update(
            channel=OutChannel.NONE.value, status=Status.SKIPPED.value, reason="no_email_no_sms"
        )
    was_sending = row.status == Status.SENDING.value
    condition = (
        _while_sending(row, row.claim_token)
        if was_sending
        else and_(message_t.c.id == row.id, message_t.c.status.in_(WAITING_STATES), _fenced(fence))
    )
    if was_sending:
        changes.update(quota_units=0, quota_month=None, claim_token=None)
    won = session.execute(update(message_t).where(condition).values(**changes)).rowcount  # type: ignore[attr-defined]
    if won and was_sending:
        release(session=session, month=row.quota_month or "", units=row.quota_units)
    if won:
        row.status, row.channel = str(changes["status"]), str(changes["channel"])
        row.to_addr = email or None
        row.quota_units, row.quota_month = 0, None
    return bool(won)


def move(
    *,
    session: Session,
    ids: Sequence[int],
    to: Status,
    now: datetime,
    fence: Fence | None = None,
    **changes: Any,
) -> int:
    """Move messages to ``to`` from any state allowed to precede it (``sending`` aside:
    those have an owner, see :func:`settle`), fenced by the chunk claim when given.
    Returns how many moved."""
    allowed = [s for s in sources_of(to) if s != Status.SENDING.value]
    moved = 0
    for batch in chunked(sorted(set(ids))):
        moved += session.execute(
            update(message_t)
            .where(
                message_t.c.id.in_(list(batch)),
                message_t.c.status.in_(allowed),
                _fenced(fence),
            )
            .values(status=to.value, updated_at=now, **changes)
        ).rowcount  # type: ignore[attr-defined]
    return moved


def defer(
    *,
    session: Session,
    row: OutRow,
    until: datetime,
    now: datetime,
    reason: str,
    fence: Fence | None = None,
) -> bool:
    """A message that may not go now (quiet hours at send time) waits until ``until``."""
    won = move(
        session=session,
        ids=[row.id],
        to=Status.DEFERRED,
        now=now,
        fence=fence,
        send_after=until,
        error_message=reason[:500],
    )
    if won:
        row.status, row.send_after = Status.DEFERRED.value, until
    return bool(won)


__all__ = [
    "OPEN_STATES",
    "OUTROW_COLUMNS",
    "SENT_STATES",
    "WAITING_STATES",
    "Fence",
    "OutRow",
    "as_rows",
    "defer",
    "due_now",
    "email_body",
    "email_subject",
    "get",
    "load_chunk",
    "mark_sending",
    "mark_unknown",
    "move",
    "settle",
    "to_email",
    "unmark",
]
