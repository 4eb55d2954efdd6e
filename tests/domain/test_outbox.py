"""The outbox's state machine, one row per rule: what may follow what, and what never may."""

from __future__ import annotations

from datetime import timedelta

import pytest

from domain.outbox import (
    FINAL,
    NEXT,
    OPEN,
    SOURCES,
    Status,
    can_move,
    in_flight_bound,
    sources_of,
)

S = Status

ALLOWED = [
    ("plan-to-sending", S.PLANNED, S.SENDING),
    ("deferred-to-sending", S.DEFERRED, S.SENDING),
    ("plan-to-deferred-quiet-hours", S.PLANNED, S.DEFERRED),
    ("sms-falls-back-to-email", S.PLANNED, S.PLANNED),
    ("sending-back-to-planned-not-sent", S.SENDING, S.PLANNED),
    ("sending-to-sent", S.SENDING, S.SENT),
    ("email-crash-to-unknown", S.SENDING, S.UNKNOWN),
    ("unknown-resent-by-admin", S.UNKNOWN, S.PLANNED),
    ("sent-to-delivered", S.SENT, S.DELIVERED),
    ("sent-to-undelivered", S.SENT, S.UNDELIVERED),
    ("sent-to-failed", S.SENT, S.FAILED),
    ("send-time-refusal", S.PLANNED, S.REFUSED),
    ("refusal-of-a-deferred-one", S.DEFERRED, S.REFUSED),
    ("held-out", S.PLANNED, S.HELD_OUT),
]

FORBIDDEN = [
    ("late-sent-after-delivered", S.DELIVERED, S.SENT),
    ("late-sent-after-failed", S.FAILED, S.SENT),
    ("delivered-never-planned-again", S.DELIVERED, S.PLANNED),
    ("sent-never-resent", S.SENT, S.SENDING),
    ("sent-never-planned-again", S.SENT, S.PLANNED),
    ("unknown-never-sent-automatically", S.UNKNOWN, S.SENDING),
    ("refused-is-final", S.REFUSED, S.PLANNED),
    ("fallback-email-is-final", S.FALLBACK_EMAIL, S.SENT),
    ("undelivered-is-final", S.UNDELIVERED, S.DELIVERED),
    ("skipped-is-final", S.SKIPPED, S.PLANNED),
    ("held-out-is-final", S.HELD_OUT, S.SENDING),
]


@pytest.mark.parametrize(
    ("origin", "target"), [r[1:] for r in ALLOWED], ids=[r[0] for r in ALLOWED]
)
def test_allowed_moves(origin: Status, target: Status) -> None:
    assert can_move(origin, target)
    assert origin.value in sources_of(target)


@pytest.mark.parametrize(
    ("origin", "target"), [r[1:] for r in FORBIDDEN], ids=[r[0] for r in FORBIDDEN]
)
def test_forbidden_moves(origin: Status, target: Status) -> None:
    assert not can_move(origin, target)
    assert origin.value not in sources_of(target)


def test_every_state_has_a_row_and_sources_invert_next_exactly() -> None:
    assert set(NEXT) == set(Status)
    pairs = {(a, b) for a, targets in NEXT.items() for b in targets}
    assert pairs == {(a, b) for b, origins in SOURCES.items() for a in origins}


def test_final_states_have_no_way_out_and_open_ones_are_not_final() -> None:
    assert {
        S.DELIVERED,
        S.UNDELIVERED,
        S.FAILED,
        S.FALLBACK_EMAIL,
        S.REFUSED,
        S.SKIPPED,
        S.HELD_OUT,
    } == FINAL
    assert not OPEN & FINAL
    assert {S.PLANNED, S.DEFERRED, S.SENDING} == OPEN


def test_only_a_marked_message_reaches_the_provider() -> None:
    # "sent" comes from "sending" (or from an admin's decision on an unknown email): nothing
    # reaches the provider without the committed mark.
    assert sources_of(S.SENT) == sorted([S.SENDING.value, S.UNKNOWN.value])
    assert sources_of(S.UNKNOWN) == [S.SENDING.value]


def test_in_flight_bound_is_deadline_plus_timeout_plus_margin() -> None:
    assert in_flight_bound(deadline_s=10, call_timeout_s=10) == timedelta(seconds=25)
    assert in_flight_bound(deadline_s=1, call_timeout_s=1) == timedelta(seconds=7)
