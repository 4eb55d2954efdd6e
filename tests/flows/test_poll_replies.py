"""The poll's listing window against a fake gateway: what it costs and where the cursor goes.

Twilio filters ``DateSent`` by whole days, so a poll every minute must stop paging by itself
once it reaches what the previous poll already saw. A fake gateway that serves messages
newest first (as Twilio does) counts how many the poll made it list.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from adapters.mail.folder import OutboxMailer
from adapters.twilio.types import ProviderMessage
from flows.poll_replies import run_poll
from models.leases import read_cursor, write_cursor
from models.messaging import SenderNumber
from models.people import Person
from nudge.settings import Settings
from tasks.env import Env
from tasks.poll_options import PollOptions
from tasks.replies import CURSOR

NOW = datetime(2026, 3, 2, 20, 0, tzinfo=UTC)


def sms(n: int, sent: datetime, *, inbound: bool, to: str = "+12125550101") -> ProviderMessage:
    return ProviderMessage(
        sid=f"SM{n:032d}",
        direction="inbound" if inbound else "outbound-api",
        from_="+12125551000" if inbound else to,
        to=to if inbound else "+12125551000",
        body=f"message {n}",
        status="received" if inbound else "delivered",
        error_code=None,
        num_segments=1,
        date_created=sent,
        date_sent=sent,
        date_updated=sent,
        messaging_service_sid=None,
    )


class FakeGateway:
    """Serves a fixed message list newest first, honouring the day filter, counting."""

    def __init__(self, messages: Sequence[ProviderMessage]) -> None:
        self.messages = sorted(messages, key=lambda m: m.date_sent or NOW, reverse=True)
        self.listed = 0
        self.list_calls = 0

    async def list_messages(
        self,
        *,
        to: str | None = None,
        from_: str | None = None,
        sent_after: date | datetime | None = None,
        sent_before: date | datetime | None = None,
        page_size: int = 50,
    ) -> AsyncGenerator[ProviderMessage, None]:
        self.list_calls += 1
        assert isinstance(sent_after, date) and not isinstance(sent_after, datetime)
        for message in self.messages:
            assert message.date_sent is not None
            if message.date_sent.date() < sent_after:
                return
            self.listed += 1
            yield message

    async def fetch_statuses(self, sids: Sequence[str]) -> list[ProviderMessage]:
        return []

    async def aclose(self) -> None:
        return None


def make_env(settings: Settings, engine: Engine, tmp_path: Path, gateway: FakeGateway) -> Env:
    return Env(
        settings,
        engine,
        OutboxMailer(tmp_path / "outbox", "nudge@test"),
        lambda: gateway,
        now=lambda: NOW,
    )  # type: ignore[arg-type,return-value]


def test_cost_grows_with_new_messages_not_with_history_or_staff_numbers(
    settings: Settings, engine: Engine, tmp_path: Path
) -> None:
    # 5,000 texts went out earlier today (same GMT day: the day filter cannot skip them),
    # one every 10 s until 19:50; the last poll saw up to then; 3 replies came since.
    history = [
        sms(i, NOW - timedelta(minutes=10, seconds=10 * i), inbound=False)
        for i in range(5000)
        if (NOW - timedelta(minutes=10, seconds=10 * i)).date() == NOW.date()
    ]
    fresh = [sms(9000 + i, NOW - timedelta(minutes=3 - i), inbound=True) for i in range(3)]
    gateway = FakeGateway(history + fresh)
    with Session(engine) as s:
        # Many staff numbers: still one listing.
        staff = [Person(sis_id=f"T{i}", role="staff") for i in range(500)]
        s.add_all(staff)
        s.flush()
        s.add_all(
            SenderNumber(staff_person_id=p.id, e164=f"+1212555{i:04d}", status="active")
            for i, p in enumerate(staff)
        )
        write_cursor(session=s, name=CURSOR, value=NOW - timedelta(minutes=10), now=NOW)
        s.commit()
    result = run_poll(
        settings,
        env=make_env(settings, engine, tmp_path, gateway),
        options=PollOptions(skew=timedelta(minutes=5)),
    )
    assert (result["fetched"], result["new"]) == (3, 3)
    assert gateway.list_calls == 1
    # The 3 replies, the texts inside the 5-minute overlap before the cursor (one every
    # 10 s from 19:45 to 19:50: 31), and the one older message that stops the paging;
    # not the thousands sent earlier today.
    assert gateway.listed == 3 + 31 + 1
    assert len(history) == 5000  # all sent today: the day filter could not skip one of them


def test_first_poll_looks_back_only_the_lookback(
    settings: Settings, engine: Engine, tmp_path: Path
) -> None:
    gateway = FakeGateway(
        [
            sms(1, NOW - timedelta(days=3), inbound=True),
            sms(2, NOW - timedelta(hours=30), inbound=True),
            sms(3, NOW - timedelta(hours=2), inbound=True),
        ]
    )
    result = run_poll(
        settings,
        env=make_env(settings, engine, tmp_path, gateway),
        options=PollOptions(lookback=timedelta(days=1)),
    )
    assert (result["fetched"], result["since_day"]) == (1, "2026-03-01")
    assert result["cursor"] == (NOW - timedelta(hours=2)).isoformat()


@pytest.mark.parametrize(
    ("skew_minutes", "listed"),
    [
        # the new one, the one at the cursor itself (another may share its second), and
        # the one that stops the paging
        pytest.param(0, 1 + 1 + 1, id="no-overlap-lists-the-new-one-and-stops"),
        pytest.param(5, 1 + 2 + 1, id="overlap-lists-again-what-is-inside-it"),
    ],
)
def test_cursor_is_the_providers_clock_and_the_skew_is_an_overlap(
    settings: Settings, engine: Engine, tmp_path: Path, skew_minutes: int, listed: int
) -> None:
    seen = [sms(i, NOW - timedelta(minutes=m), inbound=True) for i, m in ((1, 8), (2, 4), (3, 2))]
    first = FakeGateway(seen)
    env = make_env(settings, engine, tmp_path, first)
    run_poll(settings, env=env, options=PollOptions(skew=timedelta(minutes=skew_minutes)))
    with Session(engine) as s:
        assert read_cursor(session=s, name=CURSOR) == NOW - timedelta(minutes=2)
    second = FakeGateway([*seen, sms(4, NOW - timedelta(minutes=1), inbound=True)])
    result = run_poll(
        settings,
        env=make_env(settings, engine, tmp_path, second),
        options=PollOptions(skew=timedelta(minutes=skew_minutes)),
    )
    assert result["new"] == 1
    assert second.listed == listed


def test_a_poll_while_another_holds_the_lease_does_nothing_until_the_lease_is_stale(
    settings: Settings, engine: Engine, tmp_path: Path
) -> None:
    from models.leases import acquire_lease
    from tasks.poll_lease import LEASE

    gateway = FakeGateway([sms(1, NOW - timedelta(minutes=1), inbound=True)])
    with Session(engine) as s:
        assert acquire_lease(
            session=s, name=LEASE, holder="other-worker", now=NOW, ttl=timedelta(minutes=3)
        )
    skipped = run_poll(settings, env=make_env(settings, engine, tmp_path, gateway))
    assert skipped["skipped"] and gateway.list_calls == 0
    later = make_env(settings, engine, tmp_path, gateway)
    later.now = lambda: NOW + timedelta(minutes=4)  # the other poller died
    assert run_poll(settings, env=later)["new"] == 1
