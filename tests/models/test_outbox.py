"""The outbox's SQL on SQLite and PostgreSQL: fenced marks, owner-only settling, quota given
back exactly once, loose rows inserted once, claims and the shared pace ledger."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlmodel import Session

from domain.outbox import Status
from models.chunks import (
    claim_chunk,
    free_dead_claims,
    heartbeat,
    holder_is_dead,
    release_chunk,
    worker_name,
)
from models.messaging import Campaign, Message, QuotaLedger, SendChunk
from models.outbox import (
    Fence,
    get,
    load_chunk,
    mark_sending,
    mark_unknown,
    move,
    settle,
    to_email,
    unmark,
)
from models.outbox_loose import enqueue
from models.outbox_recovery import resend_unknown
from models.pacing import reserve_slots
from models.people import Person
from models.quota import reserve, used

NOW = datetime(2026, 11, 27, 15, 0, tzinfo=UTC)
MONTH = "2026-11"


def campaign_with(session: Session, *, messages: int = 3) -> tuple[int, list[int]]:
    """A sending campaign with one chunk of ``messages`` planned SMS; returns the chunk id
    and the message ids."""
    sender = Person(sis_id="T1", role="staff", first_name="Tess", last_name="Adams")
    session.add(sender)
    session.flush()
    campaign = Campaign(sender_person_id=sender.id, template="hi", status="sending")  # type: ignore[arg-type]
    session.add(campaign)
    session.flush()
    chunk = SendChunk(campaign_id=campaign.id, seq=0)  # type: ignore[arg-type]
    session.add(chunk)
    session.flush()
    ids = []
    for i in range(messages):
        person = Person(sis_id=f"S{i}", role="student", email=f"s{i}@college.edu")
        session.add(person)
        session.flush()
        message = Message(
            campaign_id=campaign.id,
            person_id=person.id,
            chunk_id=chunk.id,
            kind="campaign",
            channel="sms",
            to_addr=f"+1212555{1000 + i}",
            body="hi",
            segments=1,
        )
        session.add(message)
        session.flush()
        ids.append(int(message.id or 0))
    session.commit()
    return int(chunk.id or 0), ids


def claim(session: Session, worker: str, *, at: datetime = NOW) -> object:
    found = claim_chunk(
        session=session, worker=worker, now=at, stale_before=at - timedelta(seconds=15)
    )
    assert found is not None
    return found


def test_a_mark_needs_the_claim_a_taken_over_worker_marks_and_records_nothing(
    session: Session,
) -> None:
    chunk_id, ids = campaign_with(session)
    first = claim(session, "host:1:a")
    rows = load_chunk(session=session, chunk_id=chunk_id, now=NOW)
    fence_a = Fence(chunk_id, first.token)  # type: ignore[attr-defined]
    assert mark_sending(session=session, row=rows[0], token=first.token, now=NOW, fence=fence_a)  # type: ignore[attr-defined]
    session.commit()
    # A's heartbeats stop; B takes the chunk over after the stale time.
    later = NOW + timedelta(seconds=20)
    second = claim(session, "host:2:b", at=later)
    assert second.token != first.token  # type: ignore[attr-defined]
    assert not heartbeat(session=session, claim=first, now=later)  # type: ignore[arg-type]
    # A wakes up: it can mark nothing more...
    assert not mark_sending(
        session=session, row=rows[1], token=first.token, now=later, fence=fence_a
    )  # type: ignore[attr-defined]
    # ...and B, having settled A's message as not sent, re-marks and sends it.
    b_view = load_chunk(session=session, chunk_id=chunk_id, now=later)[0]
    assert unmark(session=session, row=b_view, now=later)
    fence_b = Fence(chunk_id, second.token)  # type: ignore[attr-defined]
    assert mark_sending(session=session, row=b_view, token=second.token, now=later, fence=fence_b)  # type: ignore[attr-defined]
    assert settle(session=session, row=b_view, to=Status.SENT, now=later, provider_sid="SM1")
    # A's late answer for the same message changes nothing.
    assert not settle(session=session, row=rows[0], to=Status.SENT, now=later, provider_sid="SM2")
    assert not unmark(session=session, row=rows[0], now=later)
    session.commit()
    stored = get(session=session, message_id=ids[0])
    assert stored is not None and (stored.status, stored.attempts) == ("sent", 2)
    assert (
        session.execute(select(Message.provider_sid).where(Message.id == ids[0])).scalar() == "SM1"
    )


def test_quota_is_given_back_once_whoever_settles(session: Session) -> None:
    chunk_id, _ = campaign_with(session, messages=1)
    owner = claim(session, "host:1:a")
    [row] = load_chunk(session=session, chunk_id=chunk_id, now=NOW)
    assert reserve(session=session, month=MONTH, units=2, limit=10)
    assert mark_sending(
        session=session,
        row=row,
        token=owner.token,  # type: ignore[attr-defined]
        now=NOW,
        fence=Fence(chunk_id, owner.token),  # type: ignore[attr-defined]
        quota_units=2,
        quota_month=MONTH,
    )
    session.commit()
    seen_by_other = load_chunk(session=session, chunk_id=chunk_id, now=NOW)[0]
    assert unmark(session=session, row=row, now=NOW)  # the owner: never sent
    assert not unmark(session=session, row=seen_by_other, now=NOW)  # a reconciler, too late
    assert not to_email(session=session, row=seen_by_other, reason="x", sender_name="T", now=NOW)
    session.commit()
    assert used(session=session, month=MONTH) == 0


def test_fallback_from_sending_turns_the_sms_into_an_email_and_gives_quota_back(
    session: Session,
) -> None:
    chunk_id, ids = campaign_with(session, messages=1)
    owner = claim(session, "host:1:a")
    [row] = load_chunk(session=session, chunk_id=chunk_id, now=NOW)
    assert reserve(session=session, month=MONTH, units=1, limit=None)
    mark_sending(
        session=session, row=row, token=owner.token, now=NOW, quota_units=1, quota_month=MONTH
    )  # type: ignore[attr-defined]
    assert to_email(session=session, row=row, reason="opted_out", sender_name="Tess Adams", now=NOW)
    session.commit()
    stored = session.get(Message, ids[0])
    assert stored is not None
    assert (stored.channel, stored.status, stored.to_addr, stored.subject) == (
        "email",
        "planned",
        "s0@college.edu",
        "Message from Tess Adams",
    )
    assert used(session=session, month=MONTH) == 0


def test_a_planned_message_cannot_be_changed_by_a_worker_whose_claim_is_gone(
    session: Session,
) -> None:
    chunk_id, ids = campaign_with(session, messages=2)
    first = claim(session, "host:1:a")
    rows = load_chunk(session=session, chunk_id=chunk_id, now=NOW)
    claim(session, "host:2:b", at=NOW + timedelta(seconds=20))  # taken over
    stale = Fence(chunk_id, first.token)  # type: ignore[attr-defined]
    assert not to_email(
        session=session, row=rows[0], reason="x", sender_name="T", now=NOW, fence=stale
    )
    assert move(session=session, ids=ids, to=Status.SKIPPED, now=NOW, fence=stale) == 0
    session.commit()
    assert {m.status for m in session.execute(select(Message)).scalars()} == {"planned"}


def test_an_email_left_sending_becomes_unknown_and_only_an_admin_resends_it(
    session: Session,
) -> None:
    _, ids = campaign_with(session, messages=1)
    move(session=session, ids=ids, to=Status.PLANNED, now=NOW, channel="email")
    row = get(session=session, message_id=ids[0])
    assert row is not None
    assert mark_sending(session=session, row=row, token="host:9:dead#x", now=NOW)
    assert mark_unknown(session=session, row=row, now=NOW, note="worker died")
    assert not mark_sending(session=session, row=row, token="host:1:a#y", now=NOW)
    assert resend_unknown(session=session, ids=[ids[0], 999], now=NOW) == [ids[0]]
    assert resend_unknown(session=session, ids=[ids[0]], now=NOW) == []  # once
    session.commit()
    assert session.execute(select(Message.status)).scalar() == "planned"


def test_loose_rows_are_inserted_once_per_key(session: Session) -> None:
    row = {
        "outbox_key": "notify:SM123",
        "kind": "notification",
        "channel": "email",
        "to_addr": "t1@college.edu",
        "subject": "New reply",
        "body": "...",
        "created_at": NOW,
        "updated_at": NOW,
    }
    assert enqueue(session=session, rows=[row]) == 1
    assert enqueue(session=session, rows=[row, {**row, "outbox_key": "notify:SM124"}]) == 1
    session.commit()
    assert session.execute(select(func.count()).select_from(Message)).scalar_one() == 2


def test_a_dead_holders_claim_is_freed_at_once_a_live_ones_is_not(session: Session) -> None:
    import socket

    campaign_with(session, messages=1)
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead = f"{socket.gethostname()}:{int(done.stdout)}:abc"
    assert holder_is_dead(dead) and not holder_is_dead(worker_name())
    assert not holder_is_dead(f"elsewhere:{int(done.stdout)}:abc")  # another machine: unknown
    held = claim(session, dead)
    assert free_dead_claims(session=session) == 1
    again = claim(session, worker_name())
    assert again.chunk_id == held.chunk_id  # type: ignore[attr-defined]
    assert free_dead_claims(session=session) == 0
    assert release_chunk(session=session, claim=again, done=True, not_before=None)  # type: ignore[arg-type]


def test_the_pace_ledger_spaces_slots_across_engines(engine: Engine, db_url: str) -> None:
    from models.db import make_engine

    other = make_engine(db_url)  # a second process, as far as the database can tell
    try:
        [first] = reserve_slots(engine=engine, keys=[("sender:+1", 0.1)], count=5)
        [second] = reserve_slots(engine=other, keys=[("sender:+1", 0.1)], count=5)
        [unrelated, led] = reserve_slots(
            engine=other, keys=[("sender:+2", 0.1), ("sender:+3", 0.1)], count=1, lead=0.2
        )
    finally:
        other.dispose()
    assert first.delay == pytest.approx(0.0, abs=0.05)
    # The second reservation starts where the first ends: half a second later.
    assert second.delay == pytest.approx(0.5, abs=0.05)
    assert unrelated.delay == pytest.approx(0.2, abs=0.05)  # never sooner than the lead
    assert led.delay == pytest.approx(0.2, abs=0.05)
    with Session(engine) as s:
        assert s.execute(select(func.count()).select_from(QuotaLedger)).scalar_one() == 0
