"""Keywords apply in the order the student sent them, not the order Twilio listed them
(issue 16): the real store step (``tasks.replies.store_inbound``) on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.engine import Engine
from sqlmodel import Session

from adapters.twilio.types import ProviderMessage
from models.consent import consent_history, institution_consent, record_auto_opt_in
from nudge import wiring
from nudge.settings import Settings
from tasks.replies import Fetched, store_inbound

STUDENT = "+12125550123"
STAFF_NUMBER = "+12125550999"
T0 = datetime(2026, 12, 7, 15, 0, 0, tzinfo=UTC)


def inbound(sid: str, body: str, sent: datetime) -> ProviderMessage:
    return ProviderMessage(
        sid=sid,
        direction="inbound",
        from_=STUDENT,
        to=STAFF_NUMBER,
        body=body,
        status="received",
        error_code=None,
        num_segments=1,
        date_created=sent,
        date_sent=sent,
        date_updated=sent,
        messaging_service_sid=None,
    )


def listing(*messages: ProviderMessage) -> Fetched:
    """One poll's listing (newest first, as Twilio lists), the cursor left alone."""
    newest_first = sorted(messages, key=lambda m: m.date_sent or T0, reverse=True)
    return Fetched(newest_first, len(messages), T0.date(), T0, None, None)


def poll(settings: Settings, now: datetime, *messages: ProviderMessage) -> None:
    env = wiring.env(settings)
    env.now = lambda: now
    store_inbound.fn(env, listing(*messages))


def state(engine: Engine) -> tuple[str, str] | None:
    with Session(engine) as s:
        row = institution_consent(session=s, e164=STUDENT)
        return (row.status, row.source) if row else None


def test_a_start_listed_late_after_a_stop_leaves_the_student_opted_out(
    settings: Settings, engine: Engine
) -> None:
    # The student texts START at 15:00 and STOP at 15:05; Twilio lists the STOP first
    # and the START only ten minutes late.
    poll(settings, T0 + timedelta(minutes=6), inbound("SM_stop", "STOP", T0 + timedelta(minutes=5)))
    assert state(engine) == ("opted_out", "stop")
    poll(settings, T0 + timedelta(minutes=16), inbound("SM_start", "START", T0))
    assert state(engine) == ("opted_out", "stop")
    with Session(engine) as s:
        trail = consent_history(session=s, e164=STUDENT)
    assert [(e.status, e.source, e.inbound_sid) for e in trail] == [
        ("opted_out", "stop", "SM_stop"),
        ("opted_out", "start", "SM_start"),
    ]
    assert trail[1].reason == (
        "START sent 2026-12-07 15:00:00 UTC was listed late; not applied: consent was "
        "decided after it (2026-12-07 15:05:00 UTC)"
    )


def test_a_start_sent_after_the_stop_applies_even_when_listed_late(
    settings: Settings, engine: Engine
) -> None:
    poll(settings, T0 + timedelta(minutes=1), inbound("SM_stop", "STOP", T0))
    poll(
        settings,
        T0 + timedelta(minutes=20),
        inbound("SM_start", "Start", T0 + timedelta(minutes=2)),
    )
    assert state(engine) == ("opted_in", "start")


def test_stop_and_start_in_one_listing_apply_in_the_order_sent(
    settings: Settings, engine: Engine
) -> None:
    poll(
        settings,
        T0 + timedelta(minutes=3),
        inbound("SM_b", "START", T0 + timedelta(minutes=2)),
        inbound("SM_a", "STOP", T0 + timedelta(minutes=1)),
    )
    assert state(engine) == ("opted_in", "start")


def test_a_late_stop_still_applies_after_a_text_sent_under_auto_opt_in(
    settings: Settings, engine: Engine
) -> None:
    # 15:10: nudge texts the student under auto opt-in (an ``auto`` record, no decision);
    # the STOP the student sent at 15:05 is listed at 15:20: it must still opt them out.
    with Session(engine) as s:
        record_auto_opt_in(
            session=s,
            numbers=[STUDENT],
            now=T0 + timedelta(minutes=10),
            reason="texted under auto opt-in",
            actor="send",
        )
        s.commit()
    poll(
        settings, T0 + timedelta(minutes=20), inbound("SM_stop", "stop", T0 + timedelta(minutes=5))
    )
    assert state(engine) == ("opted_out", "stop")
