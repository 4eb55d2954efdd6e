"""Inbound texts as Twilio takes them in, and the list as Twilio orders it.

Engine-level, on a fake clock, so every instant is exact: the ``receiving`` phase (no
``date_sent`` until the incoming webhook), the listing lag, late replies (``SentAgo``), the
order (``date_sent`` newest first, unsent first, ties by SID) and paging across it. The last
tests drive ``POST /sandbox/inbound`` over HTTP: its ``SentAgo`` contract is used by others.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from sandbox.twilio import EmulatorConfig, EmulatorServer
from sandbox.twilio.engine import Engine
from sandbox.twilio.wire import rfc2822

ACCOUNT = "AC" + "4" * 32
OURS = "+14155550144"
T0 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC).timestamp()


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def engine(clock: Clock, **knobs: Any) -> Engine:
    return Engine(EmulatorConfig(status_delay_ms=0, account_sid=ACCOUNT, **knobs), clock=clock)


def student(i: int) -> str:
    return f"+1555031{i:04d}"


def inject(e: Engine, i: int, body: str = "Hi", sent_ago: float = 0.0) -> dict[str, Any]:
    result = e.inject_inbound(student(i), OURS, body, sent_ago=sent_ago)
    assert result.status == 201, result.body
    message: dict[str, Any] = result.body["message"]
    return message


def listed(e: Engine, **query: str) -> list[dict[str, Any]]:
    result = e.list_messages(ACCOUNT, query)
    assert result.status == 200, result.body
    messages: list[dict[str, Any]] = result.body["messages"]
    return messages


def follow(e: Engine, uri: str) -> dict[str, Any]:
    """The page a ``*_page_uri`` names, filters and all."""
    result = e.list_messages(ACCOUNT, dict(parse_qsl(urlsplit(uri).query)))
    assert result.status == 200, result.body
    return result.body


def sids(messages: list[dict[str, Any]]) -> list[str]:
    return [m["sid"] for m in messages]


# --- the receiving phase ----------------------------------------------------------------


def test_an_inbound_text_is_receiving_with_no_send_date_until_the_webhook() -> None:
    clock = Clock(T0)
    e = engine(clock, inbound_webhook_delay_s=30)
    created = inject(e, 1)

    seen = {}
    for t in (0, 29, 30, 90):
        clock.now = T0 + t
        fetched = e.fetch_message(ACCOUNT, created["sid"]).body
        (row,) = listed(e)
        assert (row["status"], row["date_sent"]) == (fetched["status"], fetched["date_sent"])
        seen[t] = (fetched["status"], fetched["date_sent"], fetched["date_updated"])

    receiving = ("receiving", None, rfc2822(T0))
    received = ("received", rfc2822(T0 + 30), rfc2822(T0 + 30))
    assert (created["status"], created["date_sent"]) == ("receiving", None)
    assert seen == {0: receiving, 29: receiving, 30: received, 90: received}
    assert created["date_created"] == rfc2822(T0)
    record = e.message_record(created["sid"])
    assert record is not None
    assert record["leaves_queue_at"] == T0 + 30


def test_a_receiving_text_matches_no_date_filter() -> None:
    clock = Clock(T0)
    e = engine(clock, inbound_webhook_delay_s=30)
    inject(e, 1)
    day = "2026-03-02"

    before = [listed(e, **{name: day}) for name in ("DateSent", "DateSent>", "DateSent<")]
    clock.now = T0 + 30
    after = [listed(e, **{name: day}) for name in ("DateSent", "DateSent>", "DateSent<")]

    assert [len(page) for page in before] == [0, 0, 0]
    assert [len(page) for page in after] == [1, 1, 1]


# --- listing lag and late replies ---------------------------------------------------------


def test_the_list_lags_behind_inbound_texts_only() -> None:
    clock = Clock(T0)
    e = engine(clock, inbound_lag_s=900)
    late = inject(e, 1, "Where is the form?")
    sent = e.create_message(ACCOUNT, {"To": student(2), "From": OURS, "Body": "Hi"}).body

    clock.now = T0 + 899
    hidden = listed(e)
    fetched = e.fetch_message(ACCOUNT, late["sid"])
    clock.now = T0 + 900
    shown = listed(e)

    assert sids(hidden) == [sent["sid"]]  # outbound messages show at once
    assert (fetched.status, fetched.body["status"]) == (200, "received")  # fetch works
    assert set(sids(shown)) == {sent["sid"], late["sid"]}
    record = e.message_record(late["sid"])
    assert record is not None
    assert record["listable_at"] == T0 + 900


LATE_ROWS = [
    # name, SentAgo, knobs, (date_created, date_sent or None, listable_at) as offsets from now
    ("now", 0, {}, (0, 0, 0)),
    ("ten-minutes-late", 600, {}, (-600, -600, 0)),
    ("late-and-webhook-delay", 600, {"inbound_webhook_delay_s": 30}, (-600, -570, 0)),
    ("late-but-webhook-not-called-yet", 10, {"inbound_webhook_delay_s": 30}, (-10, None, 0)),
    ("lag-longer-than-lateness", 600, {"inbound_lag_s": 900}, (-600, -600, 300)),
    ("lag-shorter-than-lateness", 600, {"inbound_lag_s": 300}, (-600, -600, 0)),
]


@pytest.mark.parametrize(
    ("sent_ago", "knobs", "offsets"), [r[1:] for r in LATE_ROWS], ids=[r[0] for r in LATE_ROWS]
)
def test_a_late_reply_is_back_dated_yet_listed_only_from_now(
    sent_ago: float, knobs: dict[str, float], offsets: tuple[int, int | None, int]
) -> None:
    clock = Clock(T0)
    e = engine(clock, **knobs)
    message = inject(e, 1, sent_ago=sent_ago)
    created, sent, listable = offsets

    record = e.message_record(message["sid"])

    assert message["date_created"] == rfc2822(T0 + created)
    assert message["date_sent"] == (None if sent is None else rfc2822(T0 + sent))
    assert record is not None
    assert record["listable_at"] == T0 + listable


def test_a_late_reply_shows_below_newer_traffic_that_was_listed_before_it() -> None:
    # The poller's blind spot: a reply sent 10 minutes ago appears now, under replies that a
    # poll has already seen; newest-first paging with an early stop never reaches it.
    clock = Clock(T0)
    e = engine(clock)
    early = []
    for i in range(3):
        clock.now = T0 + i
        early.append(inject(e, i, f"reply {i}"))
    clock.now = T0 + 300
    first_poll = sids(listed(e))
    late = inject(e, 9, "sent at T0 - 600", sent_ago=900)

    second_poll = listed(e)

    assert late["sid"] not in first_poll
    assert sids(second_poll) == [*reversed(sids(early)), late["sid"]]
    assert second_poll[-1]["date_sent"] == rfc2822(T0 - 600)


# --- order and paging --------------------------------------------------------------------


def test_unsent_first_then_date_sent_newest_first_then_sid_descending() -> None:
    clock = Clock(T0)
    e = engine(clock)
    same_second = [inject(e, i, f"tie {i}") for i in range(4)]
    clock.now = T0 + 5
    newer = inject(e, 5, "newer")
    older = inject(e, 6, "older", sent_ago=60)
    e.update_config({"inbound_webhook_delay_s": 600})
    receiving = inject(e, 7, "receiving")
    e.update_config({"status_delay_ms": 60_000})
    queued = e.create_message(ACCOUNT, {"To": student(8), "From": OURS, "Body": "q"}).body

    order = sids(listed(e))

    ties = sorted(sids(same_second), reverse=True)
    unsent = sorted([receiving["sid"], queued["sid"]], reverse=True)
    assert order == [*unsent, newer["sid"], *ties, older["sid"]]


def test_token_pages_keep_the_order_and_previous_goes_back() -> None:
    clock = Clock(T0)
    e = engine(clock)
    for i, ago in enumerate([30, 0, 50, 10, 40, 20, 0, 10]):  # shuffled, with ties
        inject(e, i, f"m{i}", sent_ago=ago)
    everything = sids(listed(e))

    pages = [e.list_messages(ACCOUNT, {"PageSize": "3"}).body]
    while pages[-1]["next_page_uri"]:
        pages.append(follow(e, pages[-1]["next_page_uri"]))
    back = follow(e, pages[2]["previous_page_uri"])
    by_offset = e.list_messages(ACCOUNT, {"PageSize": "3", "Page": "1"}).body

    assert [len(p["messages"]) for p in pages] == [3, 3, 2]
    assert [sid for p in pages for sid in sids(p["messages"])] == everything
    assert sids(back["messages"]) == sids(pages[1]["messages"])
    assert sids(by_offset["messages"]) == sids(pages[1]["messages"])


def test_a_message_that_gets_its_send_date_between_pages_moves_without_disturbing_paging() -> None:
    clock = Clock(T0)
    e = engine(clock)
    for i in range(4):
        inject(e, i, f"m{i}", sent_ago=100 - i)  # T0-100 .. T0-97
    e.update_config({"inbound_webhook_delay_s": 10})
    moving = inject(e, 9, "receiving")  # no date_sent: first
    first = e.list_messages(ACCOUNT, {"PageSize": "2"}).body
    clock.now = T0 + 10  # received now: newest by date_sent, above the first page's end
    rest, page = [], first
    while page["next_page_uri"]:
        page = follow(e, page["next_page_uri"])
        rest += page["messages"]

    assert sids(first["messages"])[0] == moving["sid"]
    assert [m["body"] for m in first["messages"][1:] + rest] == ["m3", "m2", "m1", "m0"]


def test_the_order_follows_the_clock_both_ways_without_a_write() -> None:
    clock = Clock(T0)
    e = engine(clock, inbound_webhook_delay_s=100)
    slow = inject(e, 1, "webhook at T0+100")
    clock.now = T0 + 1
    e.update_config({"inbound_webhook_delay_s": 9})
    quick = inject(e, 2, "webhook at T0+10")

    seen = {}
    for t in (5, 10, 5, 100):  # the cached order must notice the clock, even going back
        clock.now = T0 + t
        seen.setdefault(t, []).append(sids(listed(e)))

    unsent_newest_first = [quick["sid"], slow["sid"]]
    assert seen == {
        5: [unsent_newest_first, unsent_newest_first],
        10: [[slow["sid"], quick["sid"]]],  # quick has a date_sent now: below the unsent one
        100: [[slow["sid"], quick["sid"]]],  # both sent: T0+100 above T0+10
    }


@pytest.mark.parametrize("token", ["PAnope", "PA2.1.SMx", "PX0.1.SMx", "PA0.x.SMx"])
def test_tokens_that_are_not_ours_are_refused(token: str) -> None:
    e = engine(Clock(T0))

    result = e.list_messages(ACCOUNT, {"PageToken": token})

    assert (result.status, result.body["code"]) == (400, 20001)


def test_the_listing_lag_survives_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "twilio.sqlite"
    clock = Clock(T0)
    first = Engine(EmulatorConfig(inbound_lag_s=60, account_sid=ACCOUNT), state, clock=clock)
    sid = inject(first, 1)["sid"]
    first.close()

    second = Engine(EmulatorConfig(account_sid=ACCOUNT), state, clock=clock)
    hidden = listed(second)
    clock.now = T0 + 60
    shown = listed(second)
    second.close()

    assert (hidden, sids(shown)) == ([], [sid])


# --- POST /sandbox/inbound -----------------------------------------------------------------


@pytest.fixture(scope="module")
def emulator() -> Iterator[EmulatorServer]:
    with EmulatorServer(EmulatorConfig(account_sid=ACCOUNT)) as server:
        yield server


@pytest.mark.parametrize("as_form", [False, True], ids=["json", "form"])
def test_sent_ago_over_http(emulator: EmulatorServer, *, as_form: bool) -> None:
    emulator.reset()
    now = emulator.advance(0)
    payload = {"From": student(1), "To": OURS, "Body": "late", "SentAgo": 600}
    url = f"{emulator.base_url}/sandbox/inbound"
    if as_form:
        response = httpx.post(url, data={k: str(v) for k, v in payload.items()})
    else:
        response = httpx.post(url, json=payload)

    message = response.json()["message"]

    assert response.status_code == 201
    sent = datetime.strptime(message["date_sent"], "%a, %d %b %Y %H:%M:%S %z").timestamp()
    assert now - 602 <= sent <= now - 598
    assert message["date_created"] == message["date_sent"]
    assert emulator.message_record(message["sid"])["listable_at"] >= now


@pytest.mark.parametrize("sent_ago", [-1, "ten", "nan", "inf", True, [600]])
def test_sent_ago_must_be_seconds(emulator: EmulatorServer, sent_ago: object) -> None:
    payload = {"From": student(1), "To": OURS, "Body": "late", "SentAgo": sent_ago}

    response = httpx.post(f"{emulator.base_url}/sandbox/inbound", json=payload)

    assert (response.status_code, response.json()["code"]) == (400, 20001)
    with pytest.raises(ValueError, match="20001"):
        emulator.inject(student(1), OURS, "late", sent_ago=-5)
