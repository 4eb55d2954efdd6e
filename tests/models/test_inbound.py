"""Repository functions of replies (models/inbound.py, leases.py, notifications.py, conversations.py, consent.py), on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlmodel import Session

from models.consent import consent_target, resolve_review, set_consent
from models.conversations import conversation_exists, inbox
from models.inbound import Outbound, answered_message, insert_inbound
from models.leases import acquire_lease, read_cursor, release_lease, write_cursor
from models.messaging import InboundMessage, Message, SenderNumber
from models.people import Person, PhoneNumber, people_by_number

T0 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


def person(
    s: Session,
    sis_id: str,
    *,
    role: str = "student",
    status: str = "active",
    sms: str | None = None,
    phones: tuple[str, ...] = (),
) -> int:
    row = Person(
        sis_id=sis_id,
        role=role,
        status=status,
        first_name=f"F{sis_id}",
        last_name=f"L{sis_id}",
        sms_e164=sms,
    )
    s.add(row)
    s.flush()
    assert row.id is not None
    for number in phones:
        s.add(
            PhoneNumber(
                person_id=row.id,
                raw=number,
                type_code="CELL",
                kind="mobile",
                match_key=number,
                e164=number,
                valid=True,
                sms_capable=True,
            )
        )
    return row.id


def inbound_row(sid: str, **kw: Any) -> dict[str, Any]:
    row = {
        "provider_sid": sid,
        "from_e164": "+12125551000",
        "to_e164": "+12125550101",
        "body": "hi",
        "received_at": T0,
        "person_id": None,
        "staff_person_id": None,
        "in_reply_to_id": None,
        "keyword": "none",
        "flagged_phrase": None,
        "handled": True,
        "notified": False,
        "read_at": None,
        "created_at": T0,
    }
    row.update(kw)
    return row


def test_insert_inbound_returns_only_what_it_inserted(session: Session) -> None:
    first = insert_inbound(session=session, rows=[inbound_row("SM1"), inbound_row("SM2")])
    assert set(first) == {"SM1", "SM2"}
    again = insert_inbound(session=session, rows=[inbound_row("SM2"), inbound_row("SM3")])
    assert set(again) == {"SM3"}
    assert len({*first.values(), *again.values()}) == 3  # each with its own row id
    session.commit()
    assert session.execute(select(func.count()).select_from(InboundMessage)).scalar_one() == 3


def test_cursor_round_trip(session: Session) -> None:
    assert read_cursor(session=session, name="c") is None
    write_cursor(session=session, name="c", value=T0, now=T0)
    write_cursor(session=session, name="c", value=T0 + timedelta(seconds=7), now=T0)
    session.commit()
    assert read_cursor(session=session, name="c") == T0 + timedelta(seconds=7)


def test_lease_is_exclusive_until_released_or_stale(engine: Engine) -> None:
    ttl = timedelta(minutes=10)
    with Session(engine) as a, Session(engine) as b:
        assert acquire_lease(session=a, name="L", holder="A", now=T0, ttl=ttl)
        assert not acquire_lease(
            session=b, name="L", holder="B", now=T0 + timedelta(minutes=1), ttl=ttl
        )
        assert acquire_lease(
            session=a, name="L", holder="A", now=T0 + timedelta(minutes=2), ttl=ttl
        )
        release_lease(session=a, name="L", holder="A")
        assert acquire_lease(
            session=b, name="L", holder="B", now=T0 + timedelta(minutes=3), ttl=ttl
        )
        release_lease(session=a, name="L", holder="A")  # not A's any more: no effect
        assert not acquire_lease(
            session=a, name="L", holder="A", now=T0 + timedelta(minutes=4), ttl=ttl
        )
        # B died holding it: after the TTL anyone may take over.
        assert acquire_lease(
            session=a, name="L", holder="A", now=T0 + timedelta(minutes=14), ttl=ttl
        )


SHARED = "+12125559000"


@pytest.mark.parametrize(
    ("people", "owner"),
    [
        pytest.param(
            [("P1", {"phones": (SHARED,)}), ("P2", {"sms": SHARED, "phones": (SHARED,)})],
            "P2",
            id="chosen-sms-number-wins-over-a-stored-phone",
        ),
        pytest.param(
            [("STAFF", {"role": "staff", "phones": (SHARED,)}), ("P2", {"phones": (SHARED,)})],
            "P2",
            id="student-before-staff",
        ),
        pytest.param(
            [("OLD", {"status": "inactive", "phones": (SHARED,)}), ("P2", {"phones": (SHARED,)})],
            "P2",
            id="active-before-inactive",
        ),
        pytest.param(
            [("P1", {"phones": (SHARED,)}), ("P2", {"phones": (SHARED,)})],
            "P1",
            id="then-the-oldest-record",
        ),
    ],
)
def test_people_by_number_picks_one_owner_the_same_way_every_time(
    session: Session, people: list[tuple[str, dict[str, Any]]], owner: str
) -> None:
    ids = {sis_id: person(session, sis_id, **kw) for sis_id, kw in people}
    assert people_by_number(session=session, numbers=[SHARED, "+12125550000"]) == {
        SHARED: ids[owner]
    }


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


THREAD = [Outbound(1, 7, at(0)), Outbound(2, 7, at(10)), Outbound(3, 7, at(20))]


@pytest.mark.parametrize(
    ("received", "answered"),
    [
        pytest.param(at(-1), None, id="reply-before-any-text-answers-nothing"),
        pytest.param(at(5), 1, id="between-texts-answers-the-earlier"),
        pytest.param(at(15), 2, id="latest-before-the-reply"),
        pytest.param(at(20) - timedelta(seconds=2), 3, id="whole-second-timestamps-within-slack"),
        pytest.param(at(60), 3, id="long-after-answers-the-last"),
    ],
)
def test_answered_message(received: datetime, answered: int | None) -> None:
    found = answered_message(THREAD, received)
    assert (found.id if found else None) == answered


def test_resolve_review_restores_the_state_the_pause_replaced(session: Session) -> None:
    number = "+12125551000"
    set_consent(session=session, e164=number, status="opted_in", source="auto", at=at(0))
    set_consent(
        session=session, e164=number, status="paused_for_review", source="reply_review", at=at(1)
    )
    session.flush()
    [row] = resolve_review(session=session, e164=number, reason="checked", actor="admin", now=at(2))
    assert (row.status, row.source) == ("opted_in", "admin")
    assert (
        resolve_review(session=session, e164=number, reason="again", actor="admin", now=at(3)) == []
    )


def test_resolve_review_as_a_revocation_opts_out(session: Session) -> None:
    number = "+12125551000"
    set_consent(
        session=session, e164=number, status="paused_for_review", source="reply_review", at=at(1)
    )
    session.flush()
    [row] = resolve_review(
        session=session, e164=number, reason="they meant it", actor="admin", now=at(2), opt_out=True
    )
    assert (row.status, row.source) == ("opted_out", "admin")


def test_conversation_exists_only_on_the_staff_members_own_number(session: Session) -> None:
    staff = person(session, "T1", role="staff")
    other = person(session, "T2", role="staff")
    texted = person(session, "S0", sms="+12125551000", phones=("+12125551000",))
    wrote = person(session, "S1", sms="+12125551001", phones=("+12125551001",))
    stranger = person(session, "S2", sms="+12125551002", phones=("+12125551002",))
    session.add(SenderNumber(staff_person_id=staff, e164="+12125550101", status="active"))
    session.add(SenderNumber(staff_person_id=other, e164="+12125550102", status="active"))
    session.add(
        Message(
            person_id=texted,
            kind="campaign",
            channel="sms",
            status="delivered",
            from_addr="+12125550101",
            to_addr="+12125551000",
            body="hi",
        )
    )
    session.add(
        Message(
            person_id=stranger,
            kind="campaign",
            channel="sms",
            status="planned",
            from_addr="+12125550101",
            to_addr="+12125551002",
            body="hi",
        )
    )
    insert_inbound(session=session, rows=[inbound_row("SM9", from_e164="+12125551001")])
    session.flush()
    assert conversation_exists(session=session, staff_person_id=staff, student_person_id=texted)
    assert conversation_exists(session=session, staff_person_id=staff, student_person_id=wrote)
    assert not conversation_exists(session=session, staff_person_id=other, student_person_id=texted)
    # A text that was only planned never reached the student: no conversation yet.
    assert not conversation_exists(
        session=session, staff_person_id=staff, student_person_id=stranger
    )


def test_inbox_groups_by_student_and_unknown_senders_by_number(session: Session) -> None:
    staff = person(session, "T1", role="staff")
    student = person(session, "S0", sms="+12125551000")
    rows = [
        inbound_row("SM1", person_id=student, staff_person_id=staff, body="a", received_at=at(1)),
        inbound_row(
            "SM2",
            person_id=student,
            staff_person_id=staff,
            body="b",
            received_at=at(2),
            read_at=at(3),
        ),
        inbound_row(
            "SM3", from_e164="+13125550001", staff_person_id=staff, body="who?", received_at=at(4)
        ),
        inbound_row(
            "SM4",
            from_e164="+13125550002",
            staff_person_id=staff,
            body="me too",
            received_at=at(5),
            flagged_phrase="wrong number",
        ),
        inbound_row(
            "SM5",
            person_id=student,
            staff_person_id=staff,
            body="STOP",
            keyword="stop",
            received_at=at(6),
        ),
    ]
    insert_inbound(session=session, rows=rows)
    session.flush()
    listed = [c.as_dict(masker=lambda n: "***" + n[-4:]) for c in inbox(session=session)]
    assert [
        (c["student_id"], c["from"], c["replies"], c["unread"], c["flagged"], c["last_reply"])
        for c in listed
    ] == [
        (None, "***0002", 1, 1, 1, "me too"),
        (None, "***0001", 1, 1, 0, "who?"),
        ("S0", None, 2, 1, 0, "b"),
    ]
    assert len(inbox(session=session, unread_only=True)) == 3


def test_consent_target_accepts_an_sis_id_or_a_number(session: Session) -> None:
    person(session, "S0", sms="+12125551000", phones=("+12125551000", "+12125552000"))
    session.flush()
    by_id = consent_target(session=session, number_or_id="S0", e164=None)
    assert (by_id.numbers, by_id.person_sis_id) == (["+12125551000", "+12125552000"], "S0")
    by_number = consent_target(session=session, number_or_id="(212) 555-2000", e164="+12125552000")
    assert (by_number.numbers, by_number.person_sis_id) == (["+12125552000"], "S0")
    assert consent_target(session=session, number_or_id="nobody", e164=None).numbers == []
