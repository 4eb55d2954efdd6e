"""The Twilio emulator's rules without HTTP: keywords, segments, dates, time and state.

The engine takes a clock, so status progression, pacing and DateSent filters are checked
at exact instants here; ``test_twilio_emulator.py`` checks the same behaviour over HTTP.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from sandbox.twilio.carrier import count_segments, match_keyword
from sandbox.twilio.config import EmulatorConfig
from sandbox.twilio.engine import Engine
from sandbox.twilio.listing import gmt_day
from sandbox.twilio.wire import rfc2822

ACCOUNT = "AC" + "6" * 32
SENDER = "+14155550142"
DAY1 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC).timestamp()
DAY = 86400.0

KEYWORD_ROWS = [
    ("STOP", "stop"),
    ("  stop! ", "stop"),
    ("Stop.", "stop"),
    ("¡Stop!", "stop"),
    ("StopAll", "stop"),
    ("unsubscribe", "stop"),
    ("cancel", "stop"),
    ("END", "stop"),
    ("quit", "stop"),
    ("revoke", "stop"),
    ("optout", "stop"),
    ("start", "start"),
    ("Yes!", "start"),
    ("unstop", "start"),
    ("HELP?", "help"),
    ("info", "help"),
    ("please stop", None),
    ("stop texting me", None),
    ("STOP 🙏", None),
    ("opt out", None),
    ("", None),
]


@pytest.mark.parametrize(("body", "keyword"), KEYWORD_ROWS, ids=[repr(b) for b, _ in KEYWORD_ROWS])
def test_keywords_match_the_whole_message(body: str, keyword: str | None) -> None:
    assert match_keyword(body) == keyword


SEGMENT_ROWS = [
    ("gsm-160", "a" * 160, 1),
    ("gsm-161", "a" * 161, 2),
    ("gsm-306", "a" * 306, 2),
    ("gsm-307", "a" * 307, 3),
    ("gsm-accents", "é" * 160, 1),
    ("extension-counts-2", "€" * 80, 1),
    ("extension-81", "€" * 81, 2),
    ("ucs2-70", "ą" * 70, 1),
    ("ucs2-71", "ą" * 71, 2),
    ("ucs2-134", "ą" * 134, 2),
    ("ucs2-135", "ą" * 135, 3),
    ("one-char-switches", "a" * 100 + "ą", 2),
    ("emoji-is-two-units", "🎓" * 35, 1),
    ("emoji-36", "🎓" * 36, 2),
]


@pytest.mark.parametrize(
    ("body", "segments"), [r[1:] for r in SEGMENT_ROWS], ids=[r[0] for r in SEGMENT_ROWS]
)
def test_segments(body: str, segments: int) -> None:
    assert count_segments(body) == segments


DATE_ROWS = [
    # Every value names a GMT date; a time of day only decides which date (Twilio ignores it).
    ("day", "2026-03-01", date(2026, 3, 1)),
    ("utc-instant", "2026-03-01T10:00:00Z", date(2026, 3, 1)),
    ("offset", "2026-03-01T10:00:00+02:00", date(2026, 3, 1)),
    ("offset-crosses-midnight", "2026-03-01T23:30:00-02:00", date(2026, 3, 2)),
    ("rfc2822", "Sun, 01 Mar 2026 10:00:00 -0000", date(2026, 3, 1)),
    ("space-millis", "2026-03-01 10:00:00.000", date(2026, 3, 1)),
    ("us-zone-name", "06/11/2019 22:05:25 MST", date(2019, 6, 12)),
    ("us-no-zone", "06/11/2019 22:05:25", date(2019, 6, 11)),
]


@pytest.mark.parametrize(("raw", "day"), [r[1:] for r in DATE_ROWS], ids=[r[0] for r in DATE_ROWS])
def test_date_filters_accept_twilio_formats(raw: str, day: date) -> None:
    assert gmt_day(raw) == day


@pytest.mark.parametrize(
    "raw", ["last tuesday", ">=2026-03-01", "13/45/2026", "06/11/2019 22:05:25 XYZ"]
)
def test_date_filter_refuses_nonsense(raw: str) -> None:
    with pytest.raises(ValueError, match="Invalid date value"):
        gmt_day(raw)


def test_rfc2822_is_gmt_with_numeric_zone() -> None:
    stamp = datetime(2023, 8, 24, 5, 1, 45, tzinfo=UTC).timestamp()
    assert rfc2822(stamp + 0.9) == "Thu, 24 Aug 2023 05:01:45 +0000"


# --- time-driven behaviour ------------------------------------------------------------


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def engine(clock: Clock, **knobs: Any) -> Engine:
    return Engine(EmulatorConfig(**knobs), clock=clock)


def create(e: Engine, to: str, body: str = "Hi", **extra: str) -> dict[str, Any]:
    result = e.create_message(ACCOUNT, {"To": to, "From": SENDER, "Body": body, **extra})
    assert result.status == 201, result.body
    return result.body


def fetch(e: Engine, sid: str) -> dict[str, Any]:
    return e.fetch_message(ACCOUNT, sid).body


def test_status_timeline_is_fixed_when_the_message_is_created() -> None:
    clock = Clock(DAY1)
    e = engine(clock, status_delay_ms=1000)
    created = create(e, "+15550110001")
    e.update_config({"status_delay_ms": 0})  # later changes do not move this message

    seen = []
    for t in (0.5, 1.0, 1.5, 2.0):
        clock.now = DAY1 + t
        m = fetch(e, created["sid"])
        seen.append((m["status"], m["date_sent"]))

    assert created["status"] == "queued"
    assert created["date_sent"] is None
    sent_at = rfc2822(DAY1 + 1)
    assert seen == [
        ("queued", None),
        ("sent", sent_at),
        ("sent", sent_at),
        ("delivered", sent_at),
    ]


def test_failed_messages_never_get_a_send_date() -> None:
    clock = Clock(DAY1)
    e = engine(clock, status_delay_ms=0, recipient_errors={"+15550110002": 30034})
    created = create(e, "+15550110002")

    m = fetch(e, created["sid"])

    assert (m["status"], m["error_code"], m["date_sent"]) == ("failed", 30034, None)
    assert m["error_message"] == "Message from an unregistered number"
    assert m["price"] is None


def test_mps_queues_instead_of_refusing() -> None:
    clock = Clock(DAY1)
    e = engine(clock, status_delay_ms=0, mps=2)
    sids = [create(e, f"+155501200{i:02d}")["sid"] for i in range(4)]

    clock.now = DAY1 + 1.0
    statuses = [fetch(e, sid)["status"] for sid in sids]

    assert statuses == ["delivered", "delivered", "delivered", "queued"]


def test_a_backlog_longer_than_the_queue_is_refused_with_21611() -> None:
    clock = Clock(DAY1)
    e = engine(clock, status_delay_ms=0, mps=1, max_queue_s=2)
    for i in range(3):
        create(e, f"+155501300{i:02d}")

    refused = e.create_message(ACCOUNT, {"To": "+15550130099", "From": SENDER, "Body": "Hi"})

    assert (refused.status, refused.body["code"]) == (400, 21611)


def test_through_a_service_the_backlog_fails_later_with_30001() -> None:
    clock = Clock(DAY1)
    e = engine(clock, status_delay_ms=0, mps=1, max_queue_s=1)
    service = "MG" + "7" * 32
    bought = e.buy_number(ACCOUNT, {"AreaCode": "415"}).body
    e.add_to_service(ACCOUNT, service, bought["sid"])
    form = {"MessagingServiceSid": service, "Body": "Hi"}
    results = [e.create_message(ACCOUNT, {**form, "To": f"+155501400{i:02d}"}) for i in range(3)]

    last = fetch(e, results[-1].body["sid"])

    assert [r.status for r in results] == [201, 201, 201]
    assert (last["status"], last["error_code"]) == ("failed", 30001)


EXPIRY_ROWS = [
    # name, knobs, ValidityPeriod (None: not sent), seconds until final, final status
    ("backlog-outlasts-validity", {"queue_delay_s": 120}, "60", 60, ("failed", 30036)),
    ("validity-outlasts-backlog", {"queue_delay_s": 120}, "600", 120, ("delivered", None)),
    ("backlog-equals-validity", {"queue_delay_s": 120}, "120", 120, ("delivered", None)),
    ("default-validity-is-36000", {"queue_delay_s": 36_000}, None, 36_000, ("delivered", None)),
    ("backlog-outlasts-default", {"queue_delay_s": 36_001}, None, 36_000, ("failed", 30036)),
]


@pytest.mark.parametrize(
    ("knobs", "validity", "final_after", "final"),
    [r[1:] for r in EXPIRY_ROWS],
    ids=[r[0] for r in EXPIRY_ROWS],
)
def test_a_message_that_outstays_its_validity_period_fails_with_30036(
    knobs: dict[str, Any],
    validity: str | None,
    final_after: float,
    final: tuple[str, int | None],
) -> None:
    clock = Clock(DAY1)
    e = engine(clock, status_delay_ms=0, **knobs)
    extra = {} if validity is None else {"ValidityPeriod": validity}
    sid = create(e, "+15550170001", **extra)["sid"]

    def seen() -> tuple[str, int | None]:
        fetched = fetch(e, sid)
        (listed,) = e.list_messages(ACCOUNT, {"To": "+15550170001"}).body["messages"]
        assert (listed["status"], listed["error_code"]) == (
            fetched["status"],
            fetched["error_code"],
        )
        return fetched["status"], fetched["error_code"]

    clock.now = DAY1 + final_after - 1
    before = seen()
    clock.now = DAY1 + final_after
    after = seen()
    expired = final[1] == 30036

    assert before == ("queued", None)
    assert after == final
    assert (fetch(e, sid)["date_sent"] is None) is expired
    assert e.counters.expired == int(expired)
    record = e.message_record(sid)
    assert record is not None
    assert record["validity_period_s"] == int(validity or 36_000)
    assert record["expires_at"] == DAY1 + record["validity_period_s"]
    assert (record["expired"], record["final_at"]) == (expired, DAY1 + final_after)


def test_an_expired_message_takes_no_pacing_slot() -> None:
    clock = Clock(DAY1)
    e = engine(clock, status_delay_ms=0, mps=1)
    # Slots at +0, +1, +2; the fourth would wait 3 s, longer than its 2 s validity.
    sids = [create(e, f"+155501800{i:02d}", ValidityPeriod="2")["sid"] for i in range(4)]
    last = create(e, "+15550180099")["sid"]  # takes the slot the expired one left: +3

    clock.now = DAY1 + 3
    statuses = [(fetch(e, sid)["status"], fetch(e, sid)["error_code"]) for sid in [*sids, last]]

    assert statuses == [
        ("delivered", None),
        ("delivered", None),
        ("delivered", None),
        ("failed", 30036),
        ("delivered", None),
    ]
    assert e.counters.expired == 1


def test_advance_moves_the_emulators_time_forward_only() -> None:
    clock = Clock(DAY1)
    e = engine(clock, status_delay_ms=0, queue_delay_s=60)
    sid = create(e, "+15550190001")["sid"]

    e.advance(60)
    delivered = fetch(e, sid)["status"]
    with pytest.raises(ValueError, match=">= 0"):
        e.advance(-1)
    e.reset()

    assert delivered == "delivered"
    assert e.now() == DAY1


def test_date_sent_filters_by_day_only() -> None:
    clock = Clock(DAY1)
    e = engine(clock, status_delay_ms=0)
    for day in range(3):
        clock.now = DAY1 + day * DAY
        create(e, "+15550150001", body=f"day {day + 1}")
    clock.now = DAY1 + 3 * DAY
    e.update_config({"status_delay_ms": 60_000})
    create(e, "+15550150001", body="still queued")

    def bodies(**filters: str) -> list[str]:
        query = {
            "To": "+15550150001",
            **{k.replace("_gt", ">").replace("_lt", "<"): v for k, v in filters.items()},
        }
        return [m["body"] for m in e.list_messages(ACCOUNT, query).body["messages"]]

    assert bodies() == ["still queued", "day 3", "day 2", "day 1"]
    assert bodies(DateSent="2026-03-02") == ["day 2"]
    assert bodies(DateSent_gt="2026-03-02") == ["day 3", "day 2"]
    assert bodies(DateSent_lt="2026-03-02") == ["day 2", "day 1"]
    # A time of day is ignored, as at Twilio: the whole GMT date is on or before/after.
    assert bodies(DateSent_gt="2026-03-02T12:00:01Z") == ["day 3", "day 2"]
    assert bodies(DateSent_lt="2026-03-02T11:00:00Z") == ["day 2", "day 1"]
    assert bodies(DateSent="2026-03-02T23:59:59Z") == ["day 2"]


def test_state_file_keeps_everything_across_engines(tmp_path: Path) -> None:
    state = tmp_path / "twilio.sqlite"
    clock = Clock(DAY1)
    first = Engine(EmulatorConfig(status_delay_ms=0), state, clock=clock)
    number = first.buy_number(ACCOUNT, {"PhoneNumber": "+14155550177"}).body
    service = "MG" + "8" * 32
    first.add_to_service(ACCOUNT, service, number["sid"])
    sent = create(first, "+15550160001")
    first.inject_inbound("+15550160002", "+14155550177", "STOP")
    first.close()

    second = Engine(EmulatorConfig(status_delay_ms=0), state, clock=clock)
    blocked = second.create_message(
        ACCOUNT, {"To": "+15550160002", "MessagingServiceSid": service, "Body": "Hi"}
    )
    listed = second.list_messages(ACCOUNT, {}).body["messages"]
    numbers = second.list_numbers(ACCOUNT, {}).body["incoming_phone_numbers"]
    second.reset()
    second.close()
    third = Engine(EmulatorConfig(), state, clock=clock)

    assert fetch(second, sent["sid"])["code"] == 20404  # reset emptied memory
    assert {m["direction"] for m in listed} == {"outbound-api", "inbound", "outbound-reply"}
    assert [n["sid"] for n in numbers] == [number["sid"]]
    assert (blocked.status, blocked.body["code"]) == (400, 21610)
    assert third.list_messages(ACCOUNT, {}).body["messages"] == []  # and the file
    third.close()


def test_state_file_keeps_the_validity_period(tmp_path: Path) -> None:
    state = tmp_path / "twilio.sqlite"
    first = Engine(EmulatorConfig(queue_delay_s=120), state, clock=Clock(DAY1))
    sid = create(first, "+15550160003", ValidityPeriod="60")["sid"]
    first.close()

    second = Engine(EmulatorConfig(), state, clock=Clock(DAY1 + 60))
    record = second.message_record(sid)
    second.close()

    assert record is not None
    assert (record["validity_period_s"], record["status"], record["error_code"]) == (
        60,
        "failed",
        30036,
    )


def test_a_state_file_from_before_validity_periods_still_loads(tmp_path: Path) -> None:
    state = tmp_path / "twilio.sqlite"
    with sqlite3.connect(state) as db:
        db.execute(
            "CREATE TABLE messages (seq INTEGER PRIMARY KEY, sid TEXT UNIQUE NOT NULL, "
            'account_sid TEXT NOT NULL, direction TEXT NOT NULL, "to" TEXT NOT NULL, '
            "from_ TEXT, body TEXT NOT NULL, messaging_service_sid TEXT, "
            "num_segments INTEGER NOT NULL, created_at REAL NOT NULL, sent_at REAL NOT NULL, "
            "done_at REAL NOT NULL, outcome TEXT NOT NULL, error_code INTEGER)"
        )
        db.execute(
            "INSERT INTO messages VALUES (1, ?, ?, 'outbound-api', '+15550160004', ?, 'Hi', "
            "NULL, 1, ?, ?, ?, 'delivered', NULL)",
            ("SM" + "1" * 32, ACCOUNT, SENDER, DAY1, DAY1, DAY1),
        )
    db.close()

    e = Engine(EmulatorConfig(), state, clock=Clock(DAY1 + 1))
    record = e.message_record("SM" + "1" * 32)
    later = create(e, "+15550160005", ValidityPeriod="30")["sid"]
    kept = e.message_record(later)
    e.close()

    assert record is not None
    assert (record["validity_period_s"], record["status"]) == (36_000, "delivered")
    assert kept is not None
    assert kept["validity_period_s"] == 30
