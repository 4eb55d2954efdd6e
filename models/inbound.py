"""Inbound messages as stored: which are new, who sent them to whom, and what they answer.

The replies poller matches each fetched message to the staff member whose number received
it, the person whose number sent it and the SMS it answers, then stores it. Keyword-only
functions over the caller's session; they never commit.

The invariants that make "nothing lost, nothing counted twice" hold:

* ``inbound_message.provider_sid`` is unique and rows are inserted with ``ON CONFLICT DO
  NOTHING ... RETURNING``: only the rows this transaction really inserted come back, so only
  they change consent, even when two polls race.
* The poll cursor (:mod:`models.leases`) is written in the same transaction as the batch it
  covers: it can never be ahead of what is stored.
* Each reply's notification email is queued in the same transaction as the reply
  (:mod:`models.notifications`): it is sent exactly once however often polls run or crash.

Who a number belongs to is :func:`models.people.people_by_number`; the inbox is
:mod:`models.conversations`; consent review is :mod:`models.consent`. Bulk reads take IN
lists in slices (``chunked``) so 10,000 messages cost a handful of queries.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session

from models.bulk import chunked
from models.messaging import InboundMessage, Message, SenderNumber
from models.outbox import SENT_STATES

inbound_t = InboundMessage.__table__  # type: ignore[attr-defined]
message_t = Message.__table__  # type: ignore[attr-defined]
sender_t = SenderNumber.__table__  # type: ignore[attr-defined]

#: Outbound kinds a reply can answer (an opt-in notice always precedes the real message).
THREADABLE_KINDS = ("campaign", "reply")
#: Twilio dates have whole seconds and our ``sent_at`` is taken after Twilio answered: a
#: reply may carry a timestamp a little earlier than the message it answers.
THREAD_SLACK = timedelta(seconds=5)


def known_sids(*, session: Session, sids: Sequence[str]) -> set[str]:
    """Which of ``sids`` are already stored."""
    found: set[str] = set()
    for batch in chunked(sorted(set(sids))):
        found.update(
            session.execute(
                select(inbound_t.c.provider_sid).where(inbound_t.c.provider_sid.in_(list(batch)))
            ).scalars()
        )
    return found


def sender_owners(*, session: Session, numbers: Iterable[str]) -> dict[str, int]:
    """Sender number (E.164) -> the staff member it belongs to, for the numbers given."""
    owners: dict[str, int] = {}
    for batch in chunked(sorted(set(numbers))):
        rows = session.execute(
            select(sender_t.c.e164, sender_t.c.staff_person_id).where(
                sender_t.c.e164.in_(list(batch))
            )
        )
        owners.update({str(e164): int(staff) for e164, staff in rows})
    return owners


@dataclass(frozen=True, slots=True)
class Outbound:
    """An SMS we sent that a reply may answer."""

    id: int
    person_id: int | None
    sent_at: datetime | None


def outbound_threads(
    *, session: Session, senders: Iterable[str], numbers: Iterable[str]
) -> dict[tuple[str, str], list[Outbound]]:
    """(sender number, recipient number) -> the SMS sent on that pair, oldest first."""
    sender_list = sorted(set(senders))
    threads: dict[tuple[str, str], list[Outbound]] = {}
    if not sender_list:
        return threads
    for batch in chunked(sorted(set(numbers))):
        rows = session.execute(
            select(
                message_t.c.from_addr,
                message_t.c.to_addr,
                message_t.c.id,
                message_t.c.person_id,
                message_t.c.sent_at,
            )
            .where(
                message_t.c.channel == "sms",
                message_t.c.kind.in_(THREADABLE_KINDS),
                message_t.c.status.in_(SENT_STATES),
                message_t.c.from_addr.in_(sender_list),
                message_t.c.to_addr.in_(list(batch)),
            )
            .order_by(message_t.c.sent_at, message_t.c.id)
        )
        for from_addr, to_addr, mid, pid, sent_at in rows:
            threads.setdefault((from_addr, to_addr), []).append(Outbound(mid, pid, sent_at))
    return threads


def answered_message(thread: Sequence[Outbound], received_at: datetime) -> Outbound | None:
    """The latest message of ``thread`` sent before the reply arrived (with slack)."""
    limit = received_at + THREAD_SLACK
    found: Outbound | None = None
    for message in thread:
        if message.sent_at is None or message.sent_at <= limit:
            found = message
        else:
            break
    return found


def insert_inbound(*, session: Session, rows: Sequence[dict[str, Any]]) -> dict[str, int]:
    """Insert inbound rows, skipping any sid already stored; returns the sids inserted,
    with their row ids.

    ``ON CONFLICT DO NOTHING ... RETURNING`` (SQLite and PostgreSQL): a sid another poll
    stored meanwhile is neither an error nor returned.
    """
    if not rows:
        return {}
    dialect = session.get_bind().dialect.name
    maker = pg_insert if dialect == "postgresql" else sqlite_insert
    inserted: dict[str, int] = {}
    for batch in chunked(list(rows), 1000):
        stmt = (
            maker(inbound_t)
            .on_conflict_do_nothing(index_elements=["provider_sid"])
            .returning(inbound_t.c.provider_sid, inbound_t.c.id)
        )
        inserted.update({str(sid): int(rid) for sid, rid in session.execute(stmt, list(batch))})
    return inserted


__all__ = [
    "THREAD_SLACK",
    "Outbound",
    "answered_message",
    "insert_inbound",
    "known_sids",
    "outbound_threads",
    "sender_owners",
]
