"""The outbox's SQL: every outbound message on every channel, one row each, one state machine.

Campaign messages (SMS, opt-in notices, emails), staff replies, keyword answers, reply
notifications and alert emails are all rows of ``message``. Rows outside a campaign are
unique by ``outbox_key`` (:func:`enqueue` inserts each at most once). Every status change is
a conditional UPDATE that names the states it may come from (``domain.outbox.SOURCES``), so
a late or racing writer changes nothing instead of moving a message backwards.

The discipline, the same on every channel (``tasks/outbox.py`` drives it):

1. :func:`mark_sending`, committed before the provider is called. It records who marked the
   message (``claim_token``) and when (``marked_at``). For a campaign chunk the mark is
   *fenced*: it succeeds only while the worker still holds the chunk's claim token.
2. The outcome is recorded by :func:`settle`, :func:`unmark` or :func:`to_email` —
   conditional on the message still being ``sending`` under the same token, so a worker
   that was taken over records nothing over its successor's work.
3. A message left ``sending`` past the in-flight bound is settled by whoever finds it:
   SMS by asking the provider (:func:`settle` / :func:`unmark` with the token seen), email by
   :func:`mark_unknown` (never resent automatically).

The caller owns the session and commits; functions here never commit.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Column, and_, exists, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session

from domain.outbox import OPEN, CampaignStatus, Kind, OutChannel, Status, sources_of, values
from models.messaging import Campaign, Message, SendChunk
from models.people import Person
from models.people_sync import chunked
from models.quota import release

message_t = Message.__table__  # type: ignore[attr-defined]
chunk_t = SendChunk.__table__  # type: ignore[attr-defined]
campaign_t = Campaign.__table__  # type: ignore[attr-defined]
person_t = Person.__table__  # type: ignore[attr-defined]

_OPEN = values(OPEN)
_WAITING = [Status.PLANNED.value, Status.DEFERRED.value]


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


_COLUMNS: tuple[Column[Any], ...] = tuple(message_t.c[name] for name in OutRow.__dataclass_fields__)


def _rows(result: Iterable[Any]) -> list[OutRow]:
    return [OutRow(*r) for r in result]


def _due(now: datetime) -> Any:
    return or_(
        message_t.c.status == Status.SENDING.value,
        message_t.c.send_after.is_(None),
        message_t.c.send_after <= now,
    )


# --- loading ---------------------------------------------------------------------------


def load_chunk(*, session: Session, chunk_id: int, now: datetime) -> list[OutRow]:
    """Open messages of a chunk that are due (every ``sending`` one, due or not)."""
    return _rows(
        session.execute(
            select(*_COLUMNS)
            .where(
                message_t.c.chunk_id == chunk_id,
                message_t.c.status.in_(_OPEN),
                _due(now),
            )
            .order_by(message_t.c.person_id, message_t.c.id)
        )
    )


def load_loose(
    *, session: Session, kinds: Sequence[str], channel: str, now: datetime, limit: int
) -> list[OutRow]:
    """Open messages outside campaigns (notifications, alerts, keyword answers), due now,
    oldest first."""
    return _rows(
        session.execute(
            select(*_COLUMNS)
            .where(
                message_t.c.chunk_id.is_(None),
                message_t.c.kind.in_(list(kinds)),
                message_t.c.channel == channel,
                message_t.c.status.in_(_OPEN),
                message_t.c.to_addr.is_not(None),
                _due(now),
            )
            .order_by(message_t.c.id)
            .limit(limit)
        )
    )


def get(*, session: Session, message_id: int) -> OutRow | None:
    """One outbox row by id."""
    rows = _rows(session.execute(select(*_COLUMNS).where(message_t.c.id == message_id)))
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
        else and_(message_t.c.id == row.id, message_t.c.status.in_(_WAITING), _fenced(fence))
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


def stale_sending(
    *, session: Session, chunk_id: int | None, marked_before: datetime, channel: str
) -> list[OutRow]:
    """Messages ``sending`` since before ``marked_before`` (their worker is gone or late)."""
    where = [
        message_t.c.status == Status.SENDING.value,
        message_t.c.channel == channel,
        message_t.c.marked_at < marked_before,
    ]
    where.append(
        message_t.c.chunk_id.is_(None) if chunk_id is None else message_t.c.chunk_id == chunk_id
    )
    return _rows(session.execute(select(*_COLUMNS).where(*where).order_by(message_t.c.id)))


def note_in_flight(*, session: Session, row: OutRow, now: datetime, note: str) -> None:
    """Leave ``row`` ``sending`` (its answer was lost) with a note for whoever settles it."""
    session.execute(
        update(message_t)
        .where(message_t.c.id == row.id, message_t.c.claim_token == row.claim_token)
        .values(error_message=note[:500], updated_at=now)
    )


def record_delivery(*, session: Session, message_id: int, now: datetime, **changes: Any) -> bool:
    """A delivery status for an SMS still ``sent`` (forward only: a late status never moves
    a message back); with no ``status`` in ``changes`` it only marks the message checked."""
    status = changes.get("status")
    if status is not None and Status.SENT.value not in sources_of(Status(status)):
        raise ValueError(f"a sent message cannot become {status}")
    return bool(
        session.execute(
            update(message_t)
            .where(message_t.c.id == message_id, message_t.c.status == Status.SENT.value)
            .values(updated_at=now, **changes)
        ).rowcount  # type: ignore[attr-defined]
    )


def address_notifications(*, session: Session) -> int:
    """Reply notifications waiting for their staff member's email address get it where it is
    known now (a later sync may have added it). Returns how many are still unaddressed."""
    email = select(person_t.c.email).where(person_t.c.id == message_t.c.person_id)
    session.execute(
        update(message_t)
        .where(
            message_t.c.kind == Kind.NOTIFICATION.value,
            message_t.c.to_addr.is_(None),
            message_t.c.status == Status.PLANNED.value,
        )
        .values(to_addr=email.scalar_subquery())
    )
    return int(
        session.execute(
            select(func.count()).where(
                message_t.c.kind == Kind.NOTIFICATION.value,
                message_t.c.status == Status.PLANNED.value,
                message_t.c.to_addr.is_(None),
            )
        ).scalar_one()
    )


@dataclass(frozen=True, slots=True)
class ChunkLeft:
    """What a chunk still holds: open messages, and when the earliest deferred one is due."""

    open: int
    earliest: datetime | None


def chunk_left(*, session: Session, chunk_id: int) -> ChunkLeft:
    """Open messages of a chunk and its earliest ``send_after``."""
    count, earliest = session.execute(
        select(func.count(), func.min(message_t.c.send_after)).where(
            message_t.c.chunk_id == chunk_id, message_t.c.status.in_(_OPEN)
        )
    ).one()
    if earliest is not None and earliest.tzinfo is None:  # SQLite's aggregate skips the type
        earliest = earliest.replace(tzinfo=UTC)
    return ChunkLeft(int(count), earliest)


def orphaned_sending(*, session: Session) -> list[OutRow]:
    """Campaign messages left ``sending`` where no chunk pass will look again: their
    campaign was cancelled or refused, or their chunk is done."""
    return _rows(
        session.execute(
            select(*_COLUMNS)
            .select_from(
                message_t.join(chunk_t, chunk_t.c.id == message_t.c.chunk_id).join(
                    campaign_t, campaign_t.c.id == message_t.c.campaign_id
                )
            )
            .where(
                message_t.c.status == Status.SENDING.value,
                or_(
                    campaign_t.c.status.in_(
                        [CampaignStatus.CANCELLED.value, CampaignStatus.REFUSED.value]
                    ),
                    chunk_t.c.status == "done",
                ),
            )
            .order_by(message_t.c.id)
        )
    )


def close_unsendable(*, session: Session, now: datetime) -> int:
    """Messages back in ``planned`` in a campaign that will never send them end like the
    campaign: ``skipped``/``cancelled`` or ``refused``."""
    done = 0
    for status, to, reason in (
        (CampaignStatus.CANCELLED, Status.SKIPPED, "cancelled"),
        (CampaignStatus.REFUSED, Status.REFUSED, "campaign_refused"),
    ):
        ids = session.execute(
            select(message_t.c.id)
            .select_from(message_t.join(campaign_t, campaign_t.c.id == message_t.c.campaign_id))
            .where(campaign_t.c.status == status.value, message_t.c.status.in_(_WAITING))
        ).scalars()
        done += move(session=session, ids=list(ids), to=to, now=now, reason=reason)
    return done


# --- loose messages: notifications, alerts, keyword answers ------------------------------


def enqueue(*, session: Session, rows: Sequence[dict[str, Any]]) -> int:
    """Insert loose outbox rows, each at most once (by ``outbox_key``); returns how many
    were new. Rows need ``outbox_key, kind, channel, body`` and may set any column."""
    if not rows:
        return 0
    dialect = session.get_bind().dialect.name
    maker = pg_insert if dialect == "postgresql" else sqlite_insert
    keys = ("outbox_key", "kind", "channel", "status", "reason", "person_id", "inbound_id",
            "to_addr", "from_addr", "subject", "body", "segments", "encoding", "send_after",
            "extra", "created_at", "updated_at")  # fmt: skip
    defaults: dict[str, Any] = {"status": Status.PLANNED.value, "segments": 0, "extra": {}}
    inserted = 0
    for batch in chunked(list(rows), 500):
        payload = [{k: row.get(k, defaults.get(k)) for k in keys} for row in batch]
        stmt = (
            maker(message_t)
            .on_conflict_do_nothing(index_elements=["outbox_key"])
            .returning(message_t.c.id)
        )
        inserted += len(session.execute(stmt, payload).scalars().all())
    return inserted


# --- campaigns ---------------------------------------------------------------------------


def campaign_status(*, session: Session, campaign_id: int) -> str | None:
    """The campaign's status (None: no such campaign)."""
    status = session.execute(
        select(campaign_t.c.status).where(campaign_t.c.id == campaign_id)
    ).scalar()
    return None if status is None else str(status)


def stop_campaign(*, session: Session, campaign_id: int, reason: str) -> bool:
    """A fatal provider error: the campaign stops sending (``nudge campaigns resume`` later)."""
    return bool(
        session.execute(
            update(campaign_t)
            .where(
                campaign_t.c.id == campaign_id,
                campaign_t.c.status == CampaignStatus.SENDING.value,
            )
            .values(status=CampaignStatus.STOPPED.value, stop_reason=reason[:1000])
        ).rowcount  # type: ignore[attr-defined]
    )


def refuse_campaign(
    *, session: Session, campaign_id: int, code: str, message: str, now: datetime
) -> int:
    """A send-time check refused the whole campaign (the sender lost their role, ...): every
    message not yet handed over ends ``refused`` with ``code``; the campaign ends
    ``refused`` with ``message``. Returns the messages refused."""
    session.execute(
        update(campaign_t)
        .where(
            campaign_t.c.id == campaign_id,
            campaign_t.c.status.in_([CampaignStatus.SENDING.value, CampaignStatus.SCHEDULED.value]),
        )
        .values(status=CampaignStatus.REFUSED.value, refused_reason=message, finished_at=now)
    )
    session.execute(
        update(chunk_t)
        .where(chunk_t.c.campaign_id == campaign_id, chunk_t.c.status == "pending")
        .values(status="done")
    )
    refused = session.execute(
        update(message_t)
        .where(message_t.c.campaign_id == campaign_id, message_t.c.status.in_(_WAITING))
        .values(status=Status.REFUSED.value, reason=code[:60], updated_at=now)
    ).rowcount  # type: ignore[attr-defined]
    return int(refused)


def resume_campaign(*, session: Session, campaign_id: int) -> bool:
    """A stopped campaign may send again (after the fix)."""
    return bool(
        session.execute(
            update(campaign_t)
            .where(
                campaign_t.c.id == campaign_id,
                campaign_t.c.status == CampaignStatus.STOPPED.value,
            )
            .values(status=CampaignStatus.SENDING.value, stop_reason=None)
        ).rowcount  # type: ignore[attr-defined]
    )


def open_chunks(*, session: Session, campaign_id: int) -> int:
    """Chunks of the campaign not finished yet (pending or claimed)."""
    return int(
        session.execute(
            select(func.count()).where(
                chunk_t.c.campaign_id == campaign_id, chunk_t.c.status != "done"
            )
        ).scalar_one()
    )


def finish_campaign(*, session: Session, campaign_id: int, now: datetime) -> bool:
    """Mark a sending campaign whose chunks are all done ``completed``, with its figures."""
    from models.campaigns import campaign_counts

    if open_chunks(session=session, campaign_id=campaign_id):
        return False
    counts = campaign_counts(session=session, campaign_id=campaign_id)
    return bool(
        session.execute(
            update(campaign_t)
            .where(
                campaign_t.c.id == campaign_id,
                campaign_t.c.status == CampaignStatus.SENDING.value,
            )
            .values(status=CampaignStatus.COMPLETED.value, finished_at=now, counts=counts)
        ).rowcount  # type: ignore[attr-defined]
    )


def finish_idle_campaigns(*, session: Session, now: datetime) -> list[int]:
    """Complete every sending campaign with no open chunk (a crash between the last chunk
    and the campaign's completion leaves one behind)."""
    idle = select(campaign_t.c.id).where(
        campaign_t.c.status == CampaignStatus.SENDING.value,
        ~exists().where(chunk_t.c.campaign_id == campaign_t.c.id, chunk_t.c.status != "done"),
    )
    done = []
    for (campaign_id,) in session.execute(idle).all():
        if finish_campaign(session=session, campaign_id=int(campaign_id), now=now):
            done.append(int(campaign_id))
    return done


@dataclass(slots=True)
class Pending:
    """What is left of a campaign, and why (``nudge send`` reports it when it returns)."""

    total: int = 0
    queued: int = 0
    deferred: int = 0
    deferred_until: datetime | None = None
    retrying: int = 0
    retry_codes: Counter[str] = field(default_factory=Counter)
    in_flight: int = 0
    unknown_emails: int = 0
    timezone: str = "UTC"

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "total": self.total,
            "queued": self.queued,
            "deferred": self.deferred,
            "deferred_until": self.deferred_until.isoformat() if self.deferred_until else None,
            "retrying": self.retrying,
            "retry_codes": dict(self.retry_codes),
            "in_flight": self.in_flight,
            "unknown_emails": self.unknown_emails,
            "explain": self.explain(),
        }

    def explain(self) -> str:
        """One sentence a person can act on (times in the institution's zone)."""
        parts = []
        if self.queued:
            parts.append(f"{self.queued} not sent yet (scheduled, or waiting for a worker)")
        if self.deferred:
            until = ""
            if self.deferred_until is not None:
                local = self.deferred_until.astimezone(ZoneInfo(self.timezone))
                until = f" until {local:%Y-%m-%d %H:%M %Z}"
            parts.append(f"{self.deferred} deferred by quiet hours{until}")
        if self.retrying:
            codes = ", ".join(f"{c} ×{n}" for c, n in self.retry_codes.most_common())
            parts.append(f"{self.retrying} to retry after a temporary failure ({codes})")
        if self.in_flight:
            parts.append(f"{self.in_flight} in flight, to be reconciled with the provider")
        if self.unknown_emails:
            parts.append(
                f"{self.unknown_emails} emails whose delivery is unknown after a crash "
                "(see `nudge outbox unknown`)"
            )
        return "; ".join(parts) or "nothing pending"


def pending(*, session: Session, campaign_id: int, timezone: str = "UTC") -> Pending:
    """The campaign's messages still open (or unknown), grouped by why they wait."""
    found = Pending(timezone=timezone)
    rows = session.execute(
        select(
            message_t.c.status,
            message_t.c.attempts,
            message_t.c.error_code,
            message_t.c.send_after,
        ).where(
            message_t.c.campaign_id == campaign_id,
            message_t.c.status.in_([*_OPEN, Status.UNKNOWN.value]),
        )
    ).all()
    for status, attempts, code, send_after in rows:
        if status == Status.UNKNOWN.value:
            found.unknown_emails += 1
            continue
        found.total += 1
        if status == Status.SENDING.value:
            found.in_flight += 1
        elif status == Status.DEFERRED.value:
            found.deferred += 1
            if send_after is not None and (
                found.deferred_until is None or send_after < found.deferred_until
            ):
                found.deferred_until = send_after
        elif attempts == 0 and code is None:
            found.queued += 1
        else:
            found.retrying += 1
            found.retry_codes[str(code or "unknown")] += 1
    return found


def unknown_emails(*, session: Session, campaign_id: int | None = None) -> list[OutRow]:
    """Emails a crash left undecided (``unknown``), oldest first."""
    where = [message_t.c.status == Status.UNKNOWN.value]
    if campaign_id is not None:
        where.append(message_t.c.campaign_id == campaign_id)
    return _rows(session.execute(select(*_COLUMNS).where(*where).order_by(message_t.c.id)))


def resend_unknown(*, session: Session, ids: Sequence[int], now: datetime) -> list[int]:
    """An admin checked the mail server: send these ``unknown`` emails again (same
    Message-ID). Returns the ids moved back to ``planned``."""
    moved: list[int] = []
    for message_id in sorted(set(ids)):
        won = session.execute(
            update(message_t)
            .where(message_t.c.id == message_id, message_t.c.status == Status.UNKNOWN.value)
            .values(status=Status.PLANNED.value, claim_token=None, updated_at=now)
        ).rowcount  # type: ignore[attr-defined]
        if won:
            moved.append(message_id)
    return moved


def loose_counts(*, session: Session, kind: Kind) -> dict[str, int]:
    """Loose messages of ``kind`` by status (for reports)."""
    rows = session.execute(
        select(message_t.c.status, func.count())
        .where(message_t.c.kind == kind.value, message_t.c.chunk_id.is_(None))
        .group_by(message_t.c.status)
    ).all()
    return {str(s): int(n) for s, n in rows}


__all__ = [
    "ChunkLeft",
    "Fence",
    "OutRow",
    "Pending",
    "address_notifications",
    "campaign_status",
    "chunk_left",
    "close_unsendable",
    "defer",
    "email_body",
    "email_subject",
    "enqueue",
    "finish_campaign",
    "finish_idle_campaigns",
    "get",
    "load_chunk",
    "load_loose",
    "loose_counts",
    "mark_sending",
    "mark_unknown",
    "move",
    "note_in_flight",
    "open_chunks",
    "orphaned_sending",
    "pending",
    "record_delivery",
    "refuse_campaign",
    "resend_unknown",
    "resume_campaign",
    "settle",
    "stale_sending",
    "stop_campaign",
    "to_email",
    "unknown_emails",
    "unmark",
]
