"""The Twilio gateway, through the real SDK over HTTP, against the sandbox emulator.

One emulator (a loopback thread) serves the whole module and is reset before each test;
each test builds its own gateway (a gateway belongs to one event loop).
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime, timedelta

import aiohttp
import pytest
import requests
from pydantic import SecretStr
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.response import Response as TwilioResponse

from adapters.twilio.config import TwilioConfig
from adapters.twilio.errors import (
    CODE_CLASSES,
    TAXONOMY,
    AmbiguousError,
    ErrorClass,
    ExpiredError,
    GatewayError,
    NotSmsCapableError,
    OptedOutError,
    ProviderConfigError,
    ProviderRejected,
    ProviderUnavailable,
    RetriableError,
    SendOutcome,
    classify,
    error_from,
)
from adapters.twilio.gateway import TwilioSmsGateway
from adapters.twilio.http import RewritingAsyncHttpClient, build_sync_client, rewrite_twilio_url
from adapters.twilio.retries import RetryPolicy
from adapters.twilio.types import ProviderMessage
from nudge.settings import Settings
from nudge.wiring import sms_gateway, twilio_config
from sandbox.twilio import EmulatorConfig, EmulatorServer

ACCOUNT = "AC" + "1" * 32
TOKEN = "not-a-real-token-7c1f"
SENDER = "+14155550100"
SERVICE = "MG" + "2" * 32
FAST = RetryPolicy(max_retries=3, backoff_base_s=0.001, backoff_max_s=0.004)


@pytest.fixture(scope="module")
def emulator() -> Iterator[EmulatorServer]:
    # The account is pinned so that inbound texts to unbought numbers land in it.
    config = EmulatorConfig(status_delay_ms=0, account_sid=ACCOUNT)
    with EmulatorServer(config) as server:
        yield server


@pytest.fixture(autouse=True)
def _clean(emulator: EmulatorServer) -> None:
    emulator.reset()


def config_for(base_url: str, **overrides: object) -> TwilioConfig:
    values: dict[str, object] = {
        "base_url": base_url,
        "account_sid": ACCOUNT,
        "auth_token": SecretStr(TOKEN),
        "timeout_s": 2.0,
        **overrides,
    }
    return TwilioConfig(**values)  # type: ignore[arg-type]


@pytest.fixture
async def gateway(emulator: EmulatorServer) -> AsyncIterator[TwilioSmsGateway]:
    async with TwilioSmsGateway(config_for(emulator.base_url), retry=FAST) as gw:
        yield gw


class RecordingClient(RewritingAsyncHttpClient):
    """The gateway's HTTP client, keeping the form of every request it makes."""

    def __init__(self, base_url: str) -> None:
        super().__init__(base_url, timeout_s=2.0)
        self.forms: list[dict[str, object]] = []

    async def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> TwilioResponse:
        self.forms.append(dict(data or {}))
        return await super().request(
            method, url, params, data, headers, auth, timeout, allow_redirects
        )


def today() -> date:
    return datetime.now(UTC).date()


def phone(n: int) -> str:
    return f"+1555010{n:04d}"


# --- the taxonomy, one row per code ---------------------------------------------------

SYNC_ROWS = [
    (21610, SendOutcome.OPTED_OUT),
    (21211, SendOutcome.NOT_SMS_CAPABLE),
    (21612, SendOutcome.NOT_SMS_CAPABLE),
    (21614, SendOutcome.NOT_SMS_CAPABLE),
    (21635, SendOutcome.NOT_SMS_CAPABLE),
    (20429, SendOutcome.RETRIABLE_EXHAUSTED),
    (20500, SendOutcome.RETRIABLE_EXHAUSTED),
    (20503, SendOutcome.RETRIABLE_EXHAUSTED),
    (21408, SendOutcome.FATAL),
    (21603, SendOutcome.FATAL),
    (21711, SendOutcome.FATAL),
    (21617, SendOutcome.REJECTED),
]


@pytest.mark.parametrize(
    ("code", "outcome"), SYNC_ROWS, ids=[f"{c}-{o.value}" for c, o in SYNC_ROWS]
)
async def test_create_error_codes_map_to_send_outcomes(
    emulator: EmulatorServer, gateway: TwilioSmsGateway, code: int, outcome: SendOutcome
) -> None:
    to = phone(1)
    emulator.control(recipient_errors={to: code})

    result = await gateway.send(to=to, from_=SENDER, body="Your advising hold was lifted.")

    assert result.outcome is outcome
    assert result.error_code == code
    assert result.sid is None
    retried = outcome is SendOutcome.RETRIABLE_EXHAUSTED
    assert result.attempts == (FAST.max_retries + 1 if retried else 1)
    assert emulator.counters()["create_requests"] == result.attempts


DELIVERY_ROWS = [
    (30003, "undelivered", ErrorClass.RETRIABLE),
    (30008, "undelivered", ErrorClass.RETRIABLE),
    (30005, "undelivered", ErrorClass.NOT_SMS_CAPABLE),
    (30006, "undelivered", ErrorClass.NOT_SMS_CAPABLE),
    (30007, "undelivered", ErrorClass.FATAL),
    (30002, "failed", ErrorClass.FATAL),
    (30034, "failed", ErrorClass.FATAL),
    (30036, "failed", ErrorClass.EXPIRED),
]


@pytest.mark.parametrize(
    ("code", "status", "error_class"),
    DELIVERY_ROWS,
    ids=[f"{c}-{k.value}" for c, _, k in DELIVERY_ROWS],
)
async def test_delivery_error_codes_are_reported_and_classified(
    emulator: EmulatorServer,
    gateway: TwilioSmsGateway,
    code: int,
    status: str,
    error_class: ErrorClass,
) -> None:
    to = phone(2)
    emulator.control(recipient_errors={to: code})

    sent = await gateway.send(to=to, from_=SENDER, body="Registration opens Monday.")
    assert sent.outcome is SendOutcome.SENT
    assert sent.sid is not None
    (message,) = await gateway.fetch_statuses([sent.sid])

    assert (message.status, message.error_code) == (status, code)
    assert message.error_class is error_class


CLASSIFY_ROWS = [
    (21610, None, ErrorClass.OPTED_OUT),
    (21211, None, ErrorClass.NOT_SMS_CAPABLE),
    (30006, None, ErrorClass.NOT_SMS_CAPABLE),
    (429, None, ErrorClass.RETRIABLE),
    (502, None, ErrorClass.RETRIABLE),
    (None, 503, ErrorClass.RETRIABLE),
    (99999, 500, ErrorClass.RETRIABLE),
    (30034, None, ErrorClass.FATAL),
    (30036, None, ErrorClass.EXPIRED),
    (401, None, ErrorClass.FATAL),
    (99999, 403, ErrorClass.FATAL),
    (21617, 400, ErrorClass.REJECTED),
    (99999, None, ErrorClass.REJECTED),
    (404, None, ErrorClass.REJECTED),
]


@pytest.mark.parametrize(
    ("code", "http_status", "expected"),
    CLASSIFY_ROWS,
    ids=[f"{c}/{s}-{e.value}" for c, s, e in CLASSIFY_ROWS],
)
def test_classify_codes_then_http_status(
    code: int | None, http_status: int | None, expected: ErrorClass
) -> None:
    assert classify(code, http_status) is expected


def test_one_exception_class_per_error_class_each_with_a_send_outcome() -> None:
    assert sorted(c.error_class for c in TAXONOMY) == sorted(ErrorClass)
    assert all(isinstance(c.outcome, SendOutcome) for c in TAXONOMY)
    assert set(CODE_CLASSES.values()) <= set(TAXONOMY)
    assert ExpiredError.outcome is SendOutcome.REJECTED  # never seen on a create


HIERARCHY_ROWS = [
    (RetriableError, ProviderUnavailable),
    (AmbiguousError, ProviderUnavailable),
    (ProviderConfigError, GatewayError),
    (OptedOutError, ProviderRejected),
    (NotSmsCapableError, ProviderRejected),
    (ExpiredError, ProviderRejected),
]


@pytest.mark.parametrize(
    ("cls", "parent"), HIERARCHY_ROWS, ids=[c.__name__ for c, _ in HIERARCHY_ROWS]
)
def test_each_class_of_failure_is_caught_by_its_family(
    cls: type[GatewayError], parent: type[GatewayError]
) -> None:
    error = cls("to +14155550100: refused", code=21610, http_status=400)

    assert isinstance(error, parent)
    assert (error.code, error.http_status) == (21610, 400)
    assert str(error) == "to ***0100: refused"


@pytest.mark.parametrize("cls", [GatewayError, ProviderUnavailable])
def test_the_families_themselves_are_abstract(cls: type[GatewayError]) -> None:
    with pytest.raises(TypeError, match="abstract"):
        cls("nothing in particular")


def _page_error(status: int, text: str) -> TwilioException:
    return TwilioException("Unable to fetch page", TwilioResponse(status, text, {}))


def _connector_error() -> aiohttp.ClientConnectorError:
    conn_key = type("Key", (), {"ssl": False, "host": "127.0.0.1", "port": 1})()
    return aiohttp.ClientConnectorError(conn_key, ConnectionRefusedError(111, "refused"))


EXCEPTION_ROWS = [
    ("rest-21610", TwilioRestException(400, "/x", "stop", 21610, "POST"), OptedOutError),
    ("page-20429", _page_error(429, '{"code": 20429, "status": 429}'), RetriableError),
    ("page-html-502", _page_error(502, "<html>bad gateway</html>"), RetriableError),
    (
        "page-unreadable",
        TwilioException("Page Records can not be deserialized"),
        ProviderRejected,
    ),
    ("connect-refused", _connector_error(), RetriableError),
    ("connect-timeout", aiohttp.ConnectionTimeoutError("connect"), RetriableError),
    ("read-timeout", aiohttp.SocketTimeoutError("read"), AmbiguousError),
    ("total-timeout", TimeoutError(), AmbiguousError),
    ("disconnected", aiohttp.ServerDisconnectedError(), AmbiguousError),
    ("payload-cut", aiohttp.ClientPayloadError("cut"), AmbiguousError),
    ("reset", aiohttp.ClientOSError(104, "reset"), AmbiguousError),
    ("invalid-url", aiohttp.InvalidURL("nope"), ProviderConfigError),
    ("requests-connect-timeout", requests.exceptions.ConnectTimeout(), RetriableError),
    ("requests-read-timeout", requests.exceptions.ReadTimeout(), AmbiguousError),
    ("unreadable-2xx", ValueError("Expecting value"), AmbiguousError),
]


@pytest.mark.parametrize(
    ("exc", "expected"), [r[1:] for r in EXCEPTION_ROWS], ids=[r[0] for r in EXCEPTION_ROWS]
)
def test_error_from_what_the_sdk_raised(exc: BaseException, expected: type[GatewayError]) -> None:
    assert type(error_from(exc)) is expected


def test_error_from_keeps_code_and_status_and_masks_numbers() -> None:
    raised = TwilioRestException(400, "/x", "+14155550100 is not a mobile number", 21614, "POST")

    error = error_from(raised)

    assert (type(error), error.code, error.http_status) == (NotSmsCapableError, 21614, 400)
    assert "+14155550100" not in str(error)
    assert "***0100" in str(error)


# --- retries and transport failures ---------------------------------------------------


def _attempts_until_pass(seed: int, share: float, limit: int) -> int:
    """How many creates the emulator's seeded generator answers 429 before one passes."""
    draws = random.Random(seed)
    for attempt in range(1, limit + 1):
        if draws.random() >= share:
            return attempt
    return limit + 1


async def test_429_storm_is_retried_and_then_sent_once(
    emulator: EmulatorServer, gateway: TwilioSmsGateway
) -> None:
    seed = next(s for s in range(100) if _attempts_until_pass(s, 0.8, 4) == 4)
    emulator.control(share_429=0.8, seed=seed)

    result = await gateway.send(to=phone(3), from_=SENDER, body="Tutoring starts today.")

    assert result.outcome is SendOutcome.SENT
    assert result.attempts == 4
    counters = emulator.counters()
    assert counters["faults"] == {"429": 3}
    assert counters["per_to"] == {phone(3): 1}


async def test_backoff_is_exponential_and_bounded(emulator: EmulatorServer) -> None:
    waits: list[float] = []

    async def record(seconds: float) -> None:
        waits.append(seconds)

    policy = RetryPolicy(max_retries=5, backoff_base_s=0.1, backoff_max_s=0.4)
    emulator.control(share_429=1.0)
    async with TwilioSmsGateway(
        config_for(emulator.base_url), retry=policy, sleep=record
    ) as gateway:
        result = await gateway.send(to=phone(4), from_=SENDER, body="Hi")

    assert result.outcome is SendOutcome.RETRIABLE_EXHAUSTED
    assert result.attempts == 6
    assert len(waits) == 5
    floors = [0.1, 0.2, 0.4, 0.4, 0.4]
    assert all(f <= w <= f + 0.1 for f, w in zip(floors, waits, strict=True)), waits


async def test_drop_after_accept_is_ambiguous_and_reconciled(
    emulator: EmulatorServer, gateway: TwilioSmsGateway
) -> None:
    emulator.control(share_drop_after_accept=1.0)
    body = "Your FAFSA is missing a signature."

    result = await gateway.send(to=phone(5), from_=SENDER, body=body)

    assert result.outcome is SendOutcome.AMBIGUOUS
    assert "ServerDisconnectedError" in (result.message or "")
    assert result.attempts == 1
    assert emulator.counters()["messages_created"] == 1
    found = await gateway.find_message(
        to=phone(5), from_=SENDER, body=body, sent_after=result.requested_at
    )
    assert found is not None
    assert (found.to, found.from_, found.body) == (phone(5), SENDER, body)


async def test_read_timeout_is_ambiguous_and_reconciled(emulator: EmulatorServer) -> None:
    emulator.control(latency_ms=600)
    config = config_for(emulator.base_url, timeout_s=0.2)
    async with TwilioSmsGateway(config, retry=FAST) as gateway:
        result = await gateway.send(to=phone(6), from_=SENDER, body="Slow day")
        emulator.control(latency_ms=0)
        found = await gateway.find_message(
            to=phone(6), from_=SENDER, body="Slow day", sent_after=result.requested_at
        )

    assert result.outcome is SendOutcome.AMBIGUOUS
    assert result.message == "TimeoutError"
    assert result.attempts == 1
    assert found is not None


async def test_connection_refused_is_retried_then_exhausted() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = config_for(f"http://127.0.0.1:{port}")
    async with TwilioSmsGateway(config, retry=FAST) as gateway:
        result = await gateway.send(to=phone(7), from_=SENDER, body="Hi")

    assert result.outcome is SendOutcome.RETRIABLE_EXHAUSTED
    assert result.attempts == FAST.max_retries + 1
    assert "ClientConnectorError" in (result.message or "")


async def test_wrong_credentials_are_fatal(emulator: EmulatorServer) -> None:
    emulator.control(auth_token="the-right-token")
    async with TwilioSmsGateway(config_for(emulator.base_url), retry=FAST) as gateway:
        result = await gateway.send(to=phone(8), from_=SENDER, body="Hi")

    assert (result.outcome, result.error_code, result.http_status) == (
        SendOutcome.FATAL,
        20003,
        401,
    )


async def test_find_message_ignores_other_bodies_and_older_messages(
    emulator: EmulatorServer, gateway: TwilioSmsGateway
) -> None:
    await gateway.send(to=phone(9), from_=SENDER, body="Old reminder")
    later = datetime.now(UTC) + timedelta(minutes=10)

    assert (
        await gateway.find_message(
            to=phone(9), from_=SENDER, body="Another text", sent_after=datetime.now(UTC)
        )
        is None
    )
    assert (
        await gateway.find_message(to=phone(9), from_=SENDER, body="Old reminder", sent_after=later)
        is None
    )


async def test_find_message_looks_past_an_older_failed_message(
    emulator: EmulatorServer, gateway: TwilioSmsGateway
) -> None:
    # A failed message has no DateSent: Twilio's order (by DateSent) lists it first, however
    # old it is. It must not end the search for the message an ambiguous send created.
    emulator.control(recipient_errors={phone(9): 30034})
    await gateway.send(to=phone(9), from_=SENDER, body="Failed last month")
    emulator.control(recipient_errors={})
    now = datetime.fromtimestamp(emulator.advance(3600), UTC)
    await gateway.send(to=phone(9), from_=SENDER, body="Ambiguous")

    found = await gateway.find_message(to=phone(9), from_=SENDER, body="Ambiguous", sent_after=now)

    assert found is not None
    assert found.body == "Ambiguous"


# --- validity period and the send deadline ---------------------------------------------

VALIDITY_ROWS = [
    ("none-sends-nothing", None, None, 36000),
    ("in-range", 600, 600, 600),
    ("minimum", 1, 1, 1),
    ("maximum", 36000, 36000, 36000),
    ("zero-clamped-to-1", 0, 1, 1),
    ("negative-clamped-to-1", -30, 1, 1),
    ("a-day-clamped-to-36000", 86400, 36000, 36000),
]


@pytest.mark.parametrize(
    ("validity", "on_wire", "kept"),
    [r[1:] for r in VALIDITY_ROWS],
    ids=[r[0] for r in VALIDITY_ROWS],
)
async def test_validity_period_is_sent_clamped_to_twilios_range(
    emulator: EmulatorServer, validity: int | None, on_wire: int | None, kept: int
) -> None:
    client = RecordingClient(emulator.base_url)
    async with TwilioSmsGateway(
        config_for(emulator.base_url), retry=FAST, http_client=client
    ) as gateway:
        result = await gateway.send(
            to=phone(30), from_=SENDER, body="Hi", validity_period_s=validity
        )

    assert result.outcome is SendOutcome.SENT
    (form,) = client.forms
    assert form.get("ValidityPeriod") == on_wire
    assert emulator.message_record(str(result.sid))["validity_period_s"] == kept


# When a backlog outlasts the validity period, and the 36,000 s default, is the emulator's
# behaviour (tests/sandbox/test_twilio_engine.py, test_twilio_emulator.py). What the gateway
# adds is how it reports the outcome: one expired message, and one that was not.
EXPIRY_ROWS = [
    # name, ValidityPeriod sent, provider backlog (s), then (status, code) once it has passed
    ("backlog-outlasts-validity", 60, 120, ("failed", 30036)),
    ("validity-outlasts-backlog", 600, 120, ("delivered", None)),
]


@pytest.mark.parametrize(
    ("validity", "backlog", "final"),
    [r[1:] for r in EXPIRY_ROWS],
    ids=[r[0] for r in EXPIRY_ROWS],
)
async def test_a_message_outstaying_its_validity_fails_with_30036(
    emulator: EmulatorServer,
    gateway: TwilioSmsGateway,
    validity: int | None,
    backlog: int,
    final: tuple[str, int | None],
) -> None:
    emulator.control(queue_delay_s=backlog)
    sent = await gateway.send(to=phone(31), from_=SENDER, body="Hi", validity_period_s=validity)
    (queued,) = await gateway.fetch_statuses([str(sent.sid)])
    emulator.advance(max(backlog, validity or 0) + 1)  # both have passed
    (later,) = await gateway.fetch_statuses([str(sent.sid)])

    assert (sent.outcome, queued.status) == (SendOutcome.SENT, "queued")
    assert (later.status, later.error_code) == final
    expired = final[1] == 30036
    assert later.error_class is (ErrorClass.EXPIRED if expired else None)
    assert (later.date_sent is None) is expired
    assert emulator.counters()["expired"] == int(expired)


DEADLINE_ROWS = [
    # name, not_after relative to now (s), outcome, attempts, creates that reached Twilio
    ("passed-long-ago", -60.0, SendOutcome.NOT_ATTEMPTED, 0, 0),
    ("passing-now", 0.0, SendOutcome.NOT_ATTEMPTED, 0, 0),
    ("ahead", 60.0, SendOutcome.SENT, 1, 1),
]


@pytest.mark.parametrize(
    ("offset", "outcome", "attempts", "creates"),
    [r[1:] for r in DEADLINE_ROWS],
    ids=[r[0] for r in DEADLINE_ROWS],
)
async def test_no_attempt_starts_at_or_after_the_deadline(
    emulator: EmulatorServer,
    gateway: TwilioSmsGateway,
    offset: float,
    outcome: SendOutcome,
    attempts: int,
    creates: int,
) -> None:
    result = await gateway.send(
        to=phone(32), from_=SENDER, body="Hi", not_after=time.monotonic() + offset
    )

    assert (result.outcome, result.attempts) == (outcome, attempts)
    assert emulator.counters()["create_requests"] == creates
    if outcome is SendOutcome.NOT_ATTEMPTED:
        assert result.sid is None
        assert "deadline" in (result.message or "")


async def test_a_deadline_passing_during_backoff_stops_the_retry(
    emulator: EmulatorServer,
) -> None:
    waits: list[float] = []
    not_after = float("inf")

    async def sleep_past_the_deadline(seconds: float) -> None:
        # The backoff would be ~1 ms; this one lasts until the deadline, as a paused
        # process would.
        waits.append(seconds)
        await asyncio.sleep(max(0.0, not_after - time.monotonic()))

    emulator.control(share_429=1.0)
    async with TwilioSmsGateway(
        config_for(emulator.base_url), retry=FAST, sleep=sleep_past_the_deadline
    ) as gateway:
        not_after = time.monotonic() + 0.2  # after the gateway's start-up (SDK imports)
        result = await gateway.send(to=phone(33), from_=SENDER, body="Hi", not_after=not_after)

    assert (result.outcome, result.attempts) == (SendOutcome.RETRIABLE_EXHAUSTED, 1)
    assert (result.error_code, result.http_status) == (20429, 429)
    assert len(waits) == 1
    assert emulator.counters()["create_requests"] == 1


# --- lists, polling and statuses ------------------------------------------------------


async def test_paging_keeps_filters_across_pages(
    emulator: EmulatorServer, gateway: TwilioSmsGateway
) -> None:
    for i in range(7):
        await gateway.send(to=phone(10), from_=SENDER, body=f"Reminder {i}")
        emulator.advance(1)  # within one second Twilio's order is by SID, not by creation
    for i in range(3):
        await gateway.send(to=phone(11), from_=SENDER, body=f"Other {i}")

    listed = [
        m.body
        async for m in gateway.list_messages(
            to=phone(10), from_=SENDER, sent_after=today(), page_size=2
        )
    ]

    assert listed == [f"Reminder {i}" for i in reversed(range(7))]


async def test_list_inbound_returns_only_inbound_messages(
    emulator: EmulatorServer, gateway: TwilioSmsGateway
) -> None:
    await gateway.send(to=phone(12), from_=SENDER, body="How was the exam?")
    for number, body in ((12, "Fine, thanks"), (13, "Can we meet?"), (14, "HELP")):
        emulator.advance(1)  # within one second Twilio's order is by SID, not by arrival
        emulator.inject(phone(number), SENDER, body)

    inbound = [m async for m in gateway.list_inbound(since_day=today(), page_size=2)]

    assert [(m.from_, m.body) for m in inbound] == [
        (phone(14), "HELP"),
        (phone(13), "Can we meet?"),
        (phone(12), "Fine, thanks"),
    ]
    assert all(m.is_inbound and m.to == SENDER for m in inbound)


async def test_list_failure_raises_provider_unavailable(
    emulator: EmulatorServer, gateway: TwilioSmsGateway
) -> None:
    emulator.control(share_5xx=1.0, fault_scope="all")

    with pytest.raises(ProviderUnavailable) as caught:
        _ = [m async for m in gateway.list_messages(to=phone(15))]

    assert caught.value.http_status in (500, 503)
    assert caught.value.code in (20500, 20503)


async def test_fetch_statuses_keeps_order_and_skips_unknown_sids(
    gateway: TwilioSmsGateway,
) -> None:
    first = await gateway.send(to=phone(17), from_=SENDER, body="One")
    second = await gateway.send(to=phone(18), from_=SENDER, body="Two")
    unknown = "SM" + "f" * 32

    found = await gateway.fetch_statuses([str(second.sid), unknown, str(first.sid)])

    assert [m.sid for m in found] == [second.sid, first.sid]
    assert all(isinstance(m, ProviderMessage) and m.status == "delivered" for m in found)


# --- provisioning ---------------------------------------------------------------------


async def test_provision_number_in_the_wanted_area_code(gateway: TwilioSmsGateway) -> None:
    number = await gateway.provision_number(area_code="617", friendly_name="Advisor Kim")

    assert number.phone_number.startswith("+1617")
    assert (number.fell_back, number.friendly_name) == (False, "Advisor Kim")
    assert number.sid.startswith("PN")
    assert number.messaging_service_sid is None


async def test_provision_falls_back_when_the_area_code_has_no_numbers(
    emulator: EmulatorServer, gateway: TwilioSmsGateway
) -> None:
    emulator.control(exhausted_area_codes=["212"])

    number = await gateway.provision_number(area_code="212")

    assert number.fell_back is True
    assert not number.phone_number.startswith("+1212")


async def test_provision_joins_the_messaging_service(emulator: EmulatorServer) -> None:
    config = config_for(emulator.base_url, messaging_service_sid=SERVICE)
    async with TwilioSmsGateway(config, retry=FAST) as gateway:
        number = await gateway.provision_number(area_code=None)
        sent = await gateway.send(to=phone(21), from_=None, body="Via the service")
        (message,) = await gateway.fetch_statuses([str(sent.sid)])

    assert number.messaging_service_sid == SERVICE
    assert (sent.outcome, sent.status, sent.from_) == (SendOutcome.SENT, "accepted", None)
    assert message.from_ == number.phone_number
    assert message.messaging_service_sid == SERVICE


# --- wiring, sync client, URL rewriting, logging -----------------------------------------


def test_the_shell_maps_nudge_twilio_settings_onto_the_config() -> None:
    settings = Settings(
        _env_file=None,
        twilio_account_sid=ACCOUNT,
        twilio_auth_token=SecretStr(TOKEN),
        twilio_base_url="http://127.0.0.1:9",
        twilio_messaging_service_sid=SERVICE,
        twilio_area_code="617",
        twilio_country="CA",
        twilio_timeout_s=3.5,
        twilio_max_retries=2,
    )

    config = twilio_config(settings)

    assert config == TwilioConfig(
        account_sid=ACCOUNT,
        auth_token=SecretStr(TOKEN),
        base_url="http://127.0.0.1:9",
        messaging_service_sid=SERVICE,
        country="CA",
        timeout_s=3.5,
        max_retries=2,
    )
    assert TOKEN not in repr(config)


async def test_sms_gateway_retries_as_often_as_the_settings_say(emulator: EmulatorServer) -> None:
    async def instant(_seconds: float) -> None:
        return None

    settings = Settings(
        _env_file=None,
        twilio_account_sid=ACCOUNT,
        twilio_auth_token=SecretStr(TOKEN),
        twilio_base_url=emulator.base_url,
        twilio_max_retries=2,
    )
    emulator.control(share_429=1.0)
    async with sms_gateway(settings, sleep=instant) as gateway:
        result = await gateway.send(to=phone(25), from_=SENDER, body="Hi")

    assert (result.outcome, result.attempts) == (SendOutcome.RETRIABLE_EXHAUSTED, 3)


@pytest.mark.parametrize(
    ("field", "value"), [("timeout_s", 0.0), ("max_retries", -1)], ids=["timeout", "retries"]
)
def test_config_refuses_impossible_limits(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=field):
        config_for("http://127.0.0.1:9", **{field: value})


def test_sync_client_talks_to_the_emulator(emulator: EmulatorServer) -> None:
    client = build_sync_client(config_for(emulator.base_url))
    try:
        created = client.messages.create(to=phone(23), from_=SENDER, body="From a script")
        fetched = client.messages(created.sid).fetch()
    finally:
        client.http_client.close()

    assert (fetched.sid, fetched.body) == (created.sid, "From a script")


REWRITE_ROWS = [
    (
        "api",
        "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages.json?PageSize=2",
        "http://127.0.0.1:9/2010-04-01/Accounts/AC1/Messages.json?PageSize=2",
    ),
    (
        "messaging",
        "https://messaging.twilio.com/v1/Services/MG1/PhoneNumbers",
        "http://127.0.0.1:9/messaging/v1/Services/MG1/PhoneNumbers",
    ),
    (
        "regional-api",
        "https://api.dublin.ie1.twilio.com/2010-04-01/Accounts.json",
        "http://127.0.0.1:9/2010-04-01/Accounts.json",
    ),
    ("not-twilio", "https://example.com/x", "https://example.com/x"),
    ("lookalike", "https://twilio.com.evil.test/x", "https://twilio.com.evil.test/x"),
]


@pytest.mark.parametrize(
    ("url", "expected"), [r[1:] for r in REWRITE_ROWS], ids=[r[0] for r in REWRITE_ROWS]
)
def test_rewrite_twilio_url(url: str, expected: str) -> None:
    assert rewrite_twilio_url(url, "http://127.0.0.1:9/") == expected


def test_no_base_url_means_real_twilio() -> None:
    url = "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages.json"
    assert rewrite_twilio_url(url, None) == url


async def test_logs_hold_no_token_no_full_number_no_body(
    emulator: EmulatorServer, gateway: TwilioSmsGateway, caplog: pytest.LogCaptureFixture
) -> None:
    emulator.control(share_429=1.0)
    with caplog.at_level(logging.DEBUG):
        await gateway.send(to=phone(24), from_=SENDER, body="Private: your GPA is 1.9")
        _ = [m async for m in gateway.list_messages(to=phone(24))]

    text = caplog.text
    assert "+1******0024" in text
    for secret in (TOKEN, phone(24), SENDER, "GPA"):
        assert secret not in text
    assert TOKEN not in repr(gateway)
