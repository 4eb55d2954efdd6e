"""Contract: every exchange with the emulator matches Twilio's OpenAPI description.

The description (``twilio_api_v2010.json``, MIT) is read from ``../shared/reference/twilio/``
next to the repository, never copied (``spec.py``). Each scenario drives the emulator, mostly through
the real SDK with a recording HTTP client, and then every recorded exchange is checked:

* our request (the SDK's) against the operation's parameters and body schema;
* the emulator's response against the operation's response schema, made strict in memory
  (no key Twilio does not send, every key it does send), so the wire shape is exact;
* error responses against Twilio's legacy error shape ``{code, message, more_info,
  status}``, which the description does not spell out: it is added in memory as each
  operation's ``default`` response.

Calls the SDK would never make (bad page tokens, unknown routes) go through httpx; only
their responses are checked.
"""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import httpx
import pytest
from openapi_core import OpenAPI
from openapi_schema_validator import OAS30Validator
from twilio.http.response import Response as TwilioResponse

from adapters.twilio.errors import SendOutcome
from adapters.twilio.gateway import TwilioSmsGateway
from adapters.twilio.http import RewritingAsyncHttpClient
from adapters.twilio.retries import RetryPolicy
from nudge.settings import Settings
from nudge.wiring import sms_gateway
from sandbox.twilio import EmulatorConfig, EmulatorServer
from tests.contract.spec import API, ERROR_SCHEMA, Exchange, validate

ACCOUNT = "AC" + "3" * 32
TOKEN = "contract-token"
SENDER = "+14155550123"
SERVICE = "MG" + "4" * 32


class RecordingClient(RewritingAsyncHttpClient):
    """The gateway's HTTP client, keeping a copy of every exchange."""

    def __init__(self, base_url: str, log: list[Exchange]) -> None:
        super().__init__(base_url, timeout_s=5.0)
        self.log = log

    async def request(  # type: ignore[override]
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
        response = await super().request(
            method, url, params, data, headers, auth, timeout, allow_redirects
        )
        self.log.append(
            Exchange(
                method=method.upper(),
                url=url,
                params=params,
                data=data,
                auth=auth,
                status=response.status_code,
                text=response.text,
                content_type=response.headers.get("Content-Type", ""),
                from_sdk=True,
            )
        )
        return response


class Harness:
    """What a scenario gets: the emulator, a recording gateway and a raw HTTP client."""

    def __init__(self, emulator: EmulatorServer, gateway: TwilioSmsGateway, log: list[Exchange]):
        self.emulator = emulator
        self.gateway = gateway
        self.log = log

    def raw(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        data: dict[str, str] | None = None,
        auth: tuple[str, str] = (ACCOUNT, TOKEN),
    ) -> httpx.Response:
        """A call the SDK would not make; its response is recorded for validation."""
        url = path if path.startswith("http") else self.emulator.base_url + path
        response = httpx.request(method, url, params=params, data=data, auth=auth)
        twilio_url = API + urlsplit(str(response.request.url)).path
        query = urlsplit(str(response.request.url)).query
        self.log.append(
            Exchange(
                method=method,
                url=twilio_url + (f"?{query}" if query else ""),
                params=None,
                data=data,
                auth=auth,
                status=response.status_code,
                text=response.text,
                content_type=response.headers.get("content-type", ""),
                from_sdk=False,
            )
        )
        return response

    def api(self, suffix: str) -> str:
        return f"/2010-04-01/Accounts/{ACCOUNT}/{suffix}"


@pytest.fixture(scope="module")
def emulator() -> Iterator[EmulatorServer]:
    config = EmulatorConfig(status_delay_ms=0, account_sid=ACCOUNT)
    with EmulatorServer(config) as server:
        yield server


@pytest.fixture
async def harness(emulator: EmulatorServer) -> AsyncIterator[Harness]:
    emulator.reset()
    log: list[Exchange] = []
    settings = Settings(
        twilio_base_url=emulator.base_url,
        twilio_account_sid=ACCOUNT,
        twilio_auth_token=TOKEN,  # type: ignore[arg-type]
    )
    retry = RetryPolicy(max_retries=1, backoff_base_s=0.001, backoff_max_s=0.002)
    client = RecordingClient(emulator.base_url, log)
    async with sms_gateway(settings, retry=retry, http_client=client) as gateway:
        yield Harness(emulator, gateway, log)


# --- scenarios ------------------------------------------------------------------------


async def create_messages(h: Harness) -> None:
    sent = await h.gateway.send(to="+15550100001", from_=SENDER, body="Advising opens at 9.")
    assert sent.outcome is SendOutcome.SENT
    await h.gateway.send(to="+15550100002", from_=SENDER, body="Ünïcödé and emoji 🎓")


async def create_errors(h: Harness) -> None:
    h.emulator.control(recipient_errors={"+15550100003": 21635, "+15550100004": 21711})
    for to in ("+15005550001", "+15005550002", "+15005550004", "+15005550009", "+15550100003"):
        await h.gateway.send(to=to, from_=SENDER, body="Hi")
    await h.gateway.send(to="+15550100004", from_=SENDER, body="Hi")
    await h.gateway.send(to="+15550100005", from_=SENDER, body="x" * 1601)
    await h.gateway.send(to="+15550100005", from_=None, body="no sender")
    await h.gateway.send(to="not-a-number", from_=SENDER, body="Hi")


async def create_faults(h: Harness) -> None:
    h.emulator.control(share_429=1.0)
    await h.gateway.send(to="+15550100006", from_=SENDER, body="Hi")
    h.emulator.control(share_429=0.0, share_5xx=1.0)
    await h.gateway.send(to="+15550100006", from_=SENDER, body="Hi")
    h.emulator.control(share_5xx=0.0, recipient_errors={"+15550100006": 20503})
    await h.gateway.send(to="+15550100006", from_=SENDER, body="Hi")


async def wrong_credentials(h: Harness) -> None:
    h.raw("GET", h.api("Messages.json"), auth=(ACCOUNT, "wrong"))
    h.raw("GET", h.api("Messages.json"), auth=("AC" + "5" * 32, TOKEN))
    h.emulator.control(auth_token="something-else")
    await h.gateway.send(to="+15550100007", from_=SENDER, body="Hi")


async def fetch_every_status(h: Harness) -> None:
    h.emulator.control(
        recipient_errors={"+15550100009": 30005, "+15550100010": 30034},
        status_delay_ms=0,
    )
    sids = []
    for to in ("+15550100008", "+15550100009", "+15550100010"):
        sids.append(str((await h.gateway.send(to=to, from_=SENDER, body="Hi")).sid))
    h.emulator.control(status_delay_ms=60_000)
    sids.append(str((await h.gateway.send(to="+15550100011", from_=SENDER, body="Hi")).sid))
    found = await h.gateway.fetch_statuses([*sids, "SM" + "0" * 32])
    assert [m.status for m in found] == ["delivered", "undelivered", "failed", "queued"]


async def validity_period_and_expiry(h: Harness) -> None:
    h.emulator.control(queue_delay_s=120)
    short = await h.gateway.send(to="+15550100017", from_=SENDER, body="Hi", validity_period_s=60)
    long = await h.gateway.send(to="+15550100018", from_=SENDER, body="Hi", validity_period_s=600)
    assert [e.data["ValidityPeriod"] for e in h.log if e.data] == [60, 600]
    h.emulator.advance(121)
    found = await h.gateway.fetch_statuses([str(short.sid), str(long.sid)])
    assert [(m.status, m.error_code) for m in found] == [("failed", 30036), ("delivered", None)]
    h.raw("GET", h.api("Messages.json"), params={"To": "+15550100017"})
    form = {"To": "+15550100019", "From": SENDER, "Body": "Hi", "ValidityPeriod": "0"}
    h.raw("POST", h.api("Messages.json"), data=form)


async def list_with_filters_and_pages(h: Harness) -> None:
    for i in range(7):
        await h.gateway.send(to="+15550100012", from_=SENDER, body=f"Reminder {i}")
    today = datetime.now(UTC).date()
    listed = [
        m
        async for m in h.gateway.list_messages(
            to="+15550100012",
            from_=SENDER,
            sent_after=datetime.now(UTC) - timedelta(hours=1),
            sent_before=today,
            page_size=2,
        )
    ]
    assert len(listed) == 7
    assert [m async for m in h.gateway.list_messages(to="+15550100099")] == []


async def previous_pages_and_day_filters(h: Harness) -> None:
    for i in range(5):
        await h.gateway.send(to="+15550100013", from_=SENDER, body=f"Note {i}")
    day = datetime.now(UTC).date().isoformat()
    first = h.raw("GET", h.api("Messages.json"), params={"To": "+15550100013", "PageSize": "2"})
    second = h.raw("GET", first.json()["next_page_uri"])
    h.raw("GET", second.json()["previous_page_uri"])
    h.raw("GET", h.api("Messages.json"), params={"DateSent": day, "PageSize": "3"})
    h.raw("GET", h.api("Messages.json"), params={"DateSent>": day, "DateSent<": day})


async def inbound_and_auto_replies(h: Harness) -> None:
    for body in ("STOP", "start", "Help?", "Can we talk tomorrow?"):
        h.emulator.inject("+15550100014", SENDER, body)
    blocked = await h.gateway.send(to="+15550100015", from_=SENDER, body="Hi")
    assert blocked.outcome is SendOutcome.SENT
    today = datetime.now(UTC).date()
    inbound = [m async for m in h.gateway.list_inbound(since_day=today, page_size=3)]
    assert len(inbound) == 4


async def search_and_buy_numbers(h: Harness) -> None:
    await h.gateway.provision_number(area_code="415")
    h.emulator.control(exhausted_area_codes=["212"])
    await h.gateway.provision_number(area_code="212", messaging_service_sid=SERVICE)
    h.raw(
        "GET",
        h.api("AvailablePhoneNumbers/US/Local.json"),
        params={"AreaCode": "212", "SmsEnabled": "true"},
    )
    h.raw("GET", h.api("AvailablePhoneNumbers/ZZ/Local.json"))
    taken = h.raw("GET", h.api("IncomingPhoneNumbers.json")).json()["incoming_phone_numbers"]
    h.raw(
        "POST", h.api("IncomingPhoneNumbers.json"), data={"PhoneNumber": taken[0]["phone_number"]}
    )
    h.raw("POST", h.api("IncomingPhoneNumbers.json"), data={"AreaCode": "617"})
    h.raw("POST", h.api("IncomingPhoneNumbers.json"), data={"AreaCode": "212"})


async def list_numbers_across_pages(h: Harness) -> None:
    for area_code in ("206", "303", "512"):
        await h.gateway.provision_number(area_code=area_code)
    page = h.raw("GET", h.api("IncomingPhoneNumbers.json"), params={"PageSize": "1"}).json()
    pages = 1
    while page["next_page_uri"]:
        page = h.raw("GET", page["next_page_uri"]).json()
        pages += 1
    assert pages == 3
    h.raw("GET", h.api("IncomingPhoneNumbers.json"), params={"PhoneNumber": "512"})


async def malformed_requests(h: Harness) -> None:
    h.raw("GET", h.api("Messages.json"), params={"PageSize": "0"})
    h.raw("GET", h.api("Messages.json"), params={"PageToken": "PAnope"})
    h.raw("GET", h.api("Messages.json"), params={"DateSent>": "yesterday-ish"})
    h.raw("GET", h.api("Messages/SM" + "9" * 32 + ".json"))
    h.raw("POST", h.api("Messages.json"), data={"From": SENDER, "Body": "no To"})
    h.raw("POST", h.api("Messages.json"), data={"To": "+15550100016", "From": SENDER})


Scenario = Callable[[Harness], Awaitable[None]]
SCENARIOS: list[tuple[Scenario, set[int]]] = [
    (create_messages, {201}),
    (create_errors, {400}),
    (create_faults, {429, 503}),
    (wrong_credentials, {401}),
    (fetch_every_status, {201, 200, 404}),
    (validity_period_and_expiry, {201, 200, 400}),
    (list_with_filters_and_pages, {200}),
    (previous_pages_and_day_filters, {200}),
    (inbound_and_auto_replies, {200}),
    (search_and_buy_numbers, {200, 201, 400, 404}),
    (list_numbers_across_pages, {200, 201}),
    (malformed_requests, {400, 404}),
]


@pytest.mark.parametrize(
    ("scenario", "statuses"), SCENARIOS, ids=[s.__name__.replace("_", "-") for s, _ in SCENARIOS]
)
async def test_every_exchange_matches_the_description(
    openapi: OpenAPI, harness: Harness, scenario: Scenario, statuses: set[int]
) -> None:
    await scenario(harness)

    twilio_exchanges = [e for e in harness.log if e.url.startswith(API)]
    assert statuses <= {e.status for e in twilio_exchanges}
    for exchange in twilio_exchanges:
        validate(openapi, exchange)


def test_error_bodies_never_carry_rfc9457_keys(emulator: EmulatorServer) -> None:
    response = httpx.get(f"{emulator.base_url}/2010-04-01/Accounts/{ACCOUNT}/Nothing.json")

    body = response.json()
    assert response.status_code == 404
    assert set(body) == {"code", "message", "more_info", "status"}
    assert body["more_info"] == "https://www.twilio.com/docs/errors/20404"
    OAS30Validator(ERROR_SCHEMA).validate(body)


def test_strict_validation_rejects_an_extra_key(openapi: OpenAPI) -> None:
    """The checks above can fail: a message with one key too many is refused."""
    message = {
        "account_sid": ACCOUNT,
        "api_version": "2010-04-01",
        "body": "Hi",
        "date_created": "Thu, 24 Aug 2023 05:01:45 +0000",
        "date_sent": None,
        "date_updated": "Thu, 24 Aug 2023 05:01:45 +0000",
        "direction": "outbound-api",
        "error_code": None,
        "error_message": None,
        "from": SENDER,
        "messaging_service_sid": None,
        "num_media": "0",
        "num_segments": "1",
        "price": None,
        "price_unit": "USD",
        "sid": "SM" + "a" * 32,
        "status": "queued",
        "subresource_uris": {"media": "/x/Media.json"},
        "to": "+15550100001",
        "uri": "/x.json",
    }
    url = f"{API}/2010-04-01/Accounts/{ACCOUNT}/Messages.json"
    good = Exchange(
        "POST",
        url,
        None,
        {"To": "+1", "Body": "Hi"},
        (ACCOUNT, TOKEN),
        201,
        json.dumps(message),
        "application/json",
        False,
    )
    validate(openapi, good)
    bad = copy.copy(good)
    bad.text = json.dumps({**message, "title": "extra"})
    with pytest.raises(Exception, match="title"):
        validate(openapi, bad)
