"""The Twilio emulator as the official SDK sees it: status progress, carrier keywords, the
help text, and state kept across a restart.

These exercise the emulator's behaviour, not the adapter's; they go through the real
gateway (the SDK over HTTP) because that is the client the emulator must satisfy. The raw
HTTP side of the same behaviour is in ``test_twilio_emulator.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from adapters.twilio.config import TwilioConfig
from adapters.twilio.errors import SendOutcome
from adapters.twilio.gateway import TwilioSmsGateway
from adapters.twilio.retries import RetryPolicy
from sandbox.twilio import EmulatorConfig, EmulatorServer

ACCOUNT = "AC" + "5" * 32
SENDER = "+14155550100"
FAST = RetryPolicy(max_retries=3, backoff_base_s=0.001, backoff_max_s=0.004)


@pytest.fixture(scope="module")
def emulator() -> Iterator[EmulatorServer]:
    # The account is pinned so that inbound texts to unbought numbers land in it.
    with EmulatorServer(EmulatorConfig(status_delay_ms=0, account_sid=ACCOUNT)) as server:
        yield server


@pytest.fixture(autouse=True)
def _clean(emulator: EmulatorServer) -> None:
    emulator.reset()


def config_for(base_url: str) -> TwilioConfig:
    return TwilioConfig(
        account_sid=ACCOUNT, auth_token=SecretStr("any-token"), base_url=base_url, timeout_s=2.0
    )


@pytest.fixture
async def gateway(emulator: EmulatorServer) -> AsyncIterator[TwilioSmsGateway]:
    async with TwilioSmsGateway(config_for(emulator.base_url), retry=FAST) as gw:
        yield gw


def phone(n: int) -> str:
    return f"+1555010{n:04d}"


async def test_status_progresses_queued_sent_delivered(emulator: EmulatorServer) -> None:
    emulator.control(status_delay_ms=300)
    seen: list[str] = []
    async with TwilioSmsGateway(config_for(emulator.base_url), retry=FAST) as gateway:
        sent = await gateway.send(to=phone(16), from_=SENDER, body="Hi")
        for _ in range(100):
            (message,) = await gateway.fetch_statuses([str(sent.sid)])
            if not seen or seen[-1] != message.status:
                seen.append(message.status)
            if message.status == "delivered":
                break
            await asyncio.sleep(0.05)

    assert sent.status == "queued"
    assert seen == ["queued", "sent", "delivered"]
    assert message.date_sent is not None


async def test_stop_blocks_later_sends_and_start_lifts_it(
    emulator: EmulatorServer, gateway: TwilioSmsGateway
) -> None:
    student = phone(19)
    stop = emulator.inject(student, SENDER, "  Stop. ")
    blocked = await gateway.send(to=student, from_=SENDER, body="Still there?")
    start = emulator.inject(student, SENDER, "start")
    allowed = await gateway.send(to=student, from_=SENDER, body="Welcome back")

    assert stop["keyword"] == "stop"
    assert stop["auto_reply"]["body"].startswith("You have successfully been unsubscribed.")
    assert (blocked.outcome, blocked.error_code) == (SendOutcome.OPTED_OUT, 21610)
    assert start["auto_reply"]["body"].startswith("You have successfully been re-subscribed")
    assert allowed.outcome is SendOutcome.SENT


async def test_help_gets_the_help_text_as_an_outbound_reply(
    emulator: EmulatorServer, gateway: TwilioSmsGateway
) -> None:
    emulator.control(help_text="Ridgeview College advising. Reply STOP to opt out.")
    emulator.inject(phone(20), SENDER, "help!")

    messages = [m async for m in gateway.list_messages(to=phone(20))]

    assert [(m.direction, m.from_, m.body) for m in messages] == [
        ("outbound-reply", SENDER, "Ridgeview College advising. Reply STOP to opt out.")
    ]


async def test_restart_with_state_keeps_messages(tmp_path: Path) -> None:
    state = tmp_path / "twilio.sqlite"
    server = EmulatorServer(EmulatorConfig(status_delay_ms=0), state_path=state).start()
    try:
        config = config_for(server.base_url)
        async with TwilioSmsGateway(config, retry=FAST) as gateway:
            sent = await gateway.send(to=phone(22), from_=SENDER, body="Persist me")
            server.inject(phone(22), SENDER, "STOP")
        server.restart()
        async with TwilioSmsGateway(config, retry=FAST) as gateway:
            (kept,) = await gateway.fetch_statuses([str(sent.sid)])
            again = await gateway.send(to=phone(22), from_=SENDER, body="Still blocked?")
    finally:
        server.stop()

    assert (kept.body, kept.status) == ("Persist me", "delivered")
    assert again.outcome is SendOutcome.OPTED_OUT
