"""The Twilio emulator over HTTP: auth, Twilio's test numbers, faults, knobs, resources.

One emulator (a loopback thread) serves the module and is reset before each test. Calls go
through httpx, as any client would make them; the SDK path is covered by the gateway tests.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from sandbox.twilio import EmulatorConfig, EmulatorServer

ACCOUNT = "AC" + "9" * 32
AUTH = (ACCOUNT, "any-token")
SENDER = "+14155550199"
SERVICE = "MG" + "9" * 32
MESSAGES = f"/2010-04-01/Accounts/{ACCOUNT}/Messages.json"
NUMBERS = f"/2010-04-01/Accounts/{ACCOUNT}/IncomingPhoneNumbers.json"
SEARCH = f"/2010-04-01/Accounts/{ACCOUNT}/AvailablePhoneNumbers/US/Local.json"
POOL = f"/messaging/v1/Services/{SERVICE}/PhoneNumbers"


@pytest.fixture(scope="module")
def emulator() -> Iterator[EmulatorServer]:
    # Pinned, so that texts to numbers nobody bought land in this account.
    with EmulatorServer(EmulatorConfig(status_delay_ms=0, account_sid=ACCOUNT)) as server:
        yield server


@pytest.fixture(autouse=True)
def _clean(emulator: EmulatorServer) -> None:
    emulator.reset()


@pytest.fixture
def api(emulator: EmulatorServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=emulator.base_url, auth=AUTH) as client:
        yield client


def send(api: httpx.Client, to: str, body: str = "Hi", **extra: str) -> httpx.Response:
    return api.post(MESSAGES, data={"To": to, "From": SENDER, "Body": body, **extra})


def error_code(response: httpx.Response) -> int:
    return int(response.json()["code"])


# --- auth -----------------------------------------------------------------------------

AUTH_ROWS = [
    ("no-credentials", None),
    ("not-an-account-sid", ("SK" + "1" * 32, "token")),
    ("empty-token", (ACCOUNT, "")),
    ("other-account-than-path", ("AC" + "2" * 32, "token")),
]


def test_any_well_formed_account_is_accepted_unless_pinned(emulator: EmulatorServer) -> None:
    emulator.control(account_sid=None)
    other = "AC" + "2" * 32
    url = f"{emulator.base_url}/2010-04-01/Accounts/{other}/Messages.json"

    assert httpx.get(url, auth=(other, "whatever")).status_code == 200


@pytest.mark.parametrize("auth", [r[1] for r in AUTH_ROWS], ids=[r[0] for r in AUTH_ROWS])
def test_every_api_call_needs_basic_auth(
    emulator: EmulatorServer, auth: tuple[str, str] | None
) -> None:
    response = httpx.get(emulator.base_url + MESSAGES, auth=auth)

    assert (response.status_code, error_code(response)) == (401, 20003)
    assert response.headers["www-authenticate"].startswith("Basic")


def test_pinned_credentials_refuse_others(emulator: EmulatorServer, api: httpx.Client) -> None:
    emulator.control(account_sid=ACCOUNT, auth_token="s3cret")

    assert api.get(MESSAGES).status_code == 401
    assert httpx.get(emulator.base_url + MESSAGES, auth=(ACCOUNT, "s3cret")).status_code == 200


# --- creating messages ------------------------------------------------------------------

TO_ROWS = [
    ("+15005550001", 21211),
    ("+15005550002", 21612),
    ("+15005550003", 21408),
    ("+15005550004", 21610),
    ("+15005550009", 21614),
    ("5551234", 21211),
]


@pytest.mark.parametrize(("to", "code"), TO_ROWS, ids=[f"to-{t}-{c}" for t, c in TO_ROWS])
def test_twilio_test_numbers_as_recipient(api: httpx.Client, to: str, code: int) -> None:
    response = send(api, to)

    assert (response.status_code, error_code(response)) == (400, code)


FROM_ROWS = [("+15005550001", 21212), ("+15005550007", 21606), ("+15005550008", 21611)]


@pytest.mark.parametrize(("from_", "code"), FROM_ROWS, ids=[f"from-{f}-{c}" for f, c in FROM_ROWS])
def test_twilio_test_numbers_as_sender(api: httpx.Client, from_: str, code: int) -> None:
    response = api.post(MESSAGES, data={"To": "+15550200001", "From": from_, "Body": "Hi"})

    assert (response.status_code, error_code(response)) == (400, code)


VALIDATION_ROWS = [
    ("missing-to", {"From": SENDER, "Body": "Hi"}, 21604),
    ("missing-sender", {"To": "+15550200002", "Body": "Hi"}, 21603),
    ("missing-body", {"To": "+15550200002", "From": SENDER}, 21602),
    ("body-1601", {"To": "+15550200002", "From": SENDER, "Body": "x" * 1601}, 21617),
    ("to-equals-from", {"To": SENDER, "From": SENDER, "Body": "Hi"}, 21266),
    (
        "empty-service-pool",
        {"To": "+15550200002", "MessagingServiceSid": SERVICE, "Body": "Hi"},
        21704,
    ),
    *(
        (f"validity-{name}", {"To": "+15550200002", "From": SENDER, "Body": "Hi", **vp}, 21624)
        for name, vp in [
            ("0", {"ValidityPeriod": "0"}),
            ("36001", {"ValidityPeriod": "36001"}),
            ("negative", {"ValidityPeriod": "-5"}),
            ("fraction", {"ValidityPeriod": "1.5"}),
            ("exponent", {"ValidityPeriod": "1e3"}),
            ("word", {"ValidityPeriod": "ten"}),
        ]
    ),
]


@pytest.mark.parametrize(
    ("form", "code"), [r[1:] for r in VALIDATION_ROWS], ids=[r[0] for r in VALIDATION_ROWS]
)
def test_create_is_validated_like_twilio(
    api: httpx.Client, emulator: EmulatorServer, form: dict[str, str], code: int
) -> None:
    response = api.post(MESSAGES, data=form)

    assert (response.status_code, error_code(response)) == (400, code)
    assert emulator.counters()["rejected"] == {str(code): 1}
    assert emulator.counters()["messages_created"] == 0


@pytest.mark.parametrize("validity", ["1", "36000", " 600 "], ids=["min", "max", "spaced"])
def test_validity_periods_in_range_are_accepted_and_kept(
    api: httpx.Client, emulator: EmulatorServer, validity: str
) -> None:
    response = send(api, "+15550200020", ValidityPeriod=validity)

    assert response.status_code == 201
    assert "validity_period" not in response.json()  # not part of Twilio's resource
    record = emulator.message_record(response.json()["sid"])
    assert record["validity_period_s"] == int(validity)


def test_a_backlog_longer_than_the_validity_period_ends_in_30036(
    api: httpx.Client, emulator: EmulatorServer
) -> None:
    emulator.control(queue_delay_s=120)
    short = send(api, "+15550200021", ValidityPeriod="60").json()
    long = send(api, "+15550200022", ValidityPeriod="600").json()
    record = emulator.message_record(short["sid"])

    emulator.advance(120)
    fetched = api.get(short["uri"]).json()
    listed = {m["sid"]: m for m in api.get(MESSAGES).json()["messages"]}

    assert (record["status"], record["expired"]) == ("queued", True)
    assert record["expires_at"] == record["final_at"] == record["created_at"] + 60
    assert (fetched["status"], fetched["error_code"], fetched["date_sent"]) == (
        "failed",
        30036,
        None,
    )
    assert fetched["error_message"] == "Validity Period Expired"
    assert listed[short["sid"]]["status"] == "failed"
    assert (listed[long["sid"]]["status"], listed[long["sid"]]["error_code"]) == (
        "delivered",
        None,
    )
    assert emulator.counters()["expired"] == 1


def test_message_record_of_an_unknown_sid(emulator: EmulatorServer) -> None:
    with pytest.raises(KeyError):
        emulator.message_record("SM" + "0" * 32)


def test_the_clock_moves_forward_only_and_reset_restores_it(emulator: EmulatorServer) -> None:
    before = time.time()
    moved = emulator.advance(3600)
    with pytest.raises(ValueError, match="advance_s"):
        emulator.advance(-1)
    emulator.reset()
    back = emulator.advance(0)

    assert moved >= before + 3600
    assert back < before + 3600


def test_a_1600_character_body_is_accepted_in_11_segments(api: httpx.Client) -> None:
    response = send(api, "+15550200003", body="x" * 1600)

    assert response.status_code == 201
    assert response.json()["num_segments"] == "11"


def test_strict_numbers_want_a_bought_sender(api: httpx.Client, emulator: EmulatorServer) -> None:
    emulator.control(strict_numbers=True)
    refused = send(api, "+15550200004")
    api.post(NUMBERS, data={"PhoneNumber": SENDER})
    accepted = send(api, "+15550200004")

    assert (refused.status_code, error_code(refused)) == (400, 21606)
    assert accepted.status_code == 201


def test_undelivered_share_uses_the_configured_code(
    api: httpx.Client, emulator: EmulatorServer
) -> None:
    emulator.control(share_undelivered=1.0, undelivered_code=30006)
    sid = send(api, "+15550200005").json()["sid"]

    message = api.get(f"/2010-04-01/Accounts/{ACCOUNT}/Messages/{sid}.json").json()

    assert (message["status"], message["error_code"]) == ("undelivered", 30006)
    assert message["error_message"] == "Landline or unreachable carrier"


# --- faults ---------------------------------------------------------------------------


def test_drop_after_accept_stores_then_closes_without_a_byte(
    api: httpx.Client, emulator: EmulatorServer
) -> None:
    emulator.control(share_drop_after_accept=1.0)

    with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
        send(api, "+15550200006")

    counters = emulator.counters()
    assert counters["faults"] == {"drop": 1}
    assert counters["per_to"] == {"+15550200006": 1}


def test_latency_delays_every_answer(api: httpx.Client, emulator: EmulatorServer) -> None:
    emulator.control(latency_ms=250)

    started = time.perf_counter()
    api.get(MESSAGES)

    assert time.perf_counter() - started >= 0.25


@pytest.mark.parametrize(
    ("scope", "list_status"), [("create", 200), ("all", 429)], ids=["scope-create", "scope-all"]
)
def test_fault_scope(
    api: httpx.Client, emulator: EmulatorServer, scope: str, list_status: int
) -> None:
    emulator.control(share_429=1.0, fault_scope=scope)

    created = send(api, "+15550200007")
    listed = api.get(MESSAGES)

    assert (created.status_code, error_code(created)) == (429, 20429)
    assert listed.status_code == list_status


def test_faults_repeat_with_the_same_seed(api: httpx.Client, emulator: EmulatorServer) -> None:
    def run() -> list[int]:
        emulator.reset()
        emulator.control(share_429=0.5, seed=11)
        return [send(api, f"+155502001{i:02d}").status_code for i in range(12)]

    first, second = run(), run()

    assert first == second
    assert set(first) == {201, 429}


# --- control, counters, reset -----------------------------------------------------------


def test_control_validates_knobs(emulator: EmulatorServer) -> None:
    with pytest.raises(ValueError, match="share_429"):
        emulator.control(share_429=1.5)
    with pytest.raises(ValueError, match="no_such_knob"):
        emulator.control(no_such_knob=1)
    assert emulator.knobs()["share_429"] == 0.0


def test_counters_prove_one_message_per_recipient(
    api: httpx.Client, emulator: EmulatorServer
) -> None:
    for to in ("+15550200008", "+15550200009", "+15550200008"):
        send(api, to)
    send(api, "+15005550004")

    counters = emulator.counters()

    assert counters["create_requests"] == 4
    assert counters["messages_created"] == 3
    assert counters["per_to"] == {"+15550200008": 2, "+15550200009": 1}
    assert counters["max_per_to"] == 2
    assert counters["rejected"] == {"21610": 1}


def test_reset_forgets_state_and_optionally_knobs(
    api: httpx.Client, emulator: EmulatorServer
) -> None:
    emulator.control(latency_ms=5)
    send(api, "+15550200010")
    emulator.reset(knobs=False)
    kept = emulator.knobs()["latency_ms"]
    emulator.reset()

    assert kept == 5
    assert emulator.knobs()["latency_ms"] == 0
    assert api.get(MESSAGES).json()["messages"] == []
    assert emulator.counters()["create_requests"] == 0


# --- inbound and carrier keywords -------------------------------------------------------


def test_inbound_appears_in_the_list_addressed_to_our_number(
    api: httpx.Client, emulator: EmulatorServer
) -> None:
    emulator.inject("+15550200011", SENDER, "Is the library open?")

    (message,) = api.get(MESSAGES, params={"To": SENDER}).json()["messages"]

    assert (message["direction"], message["status"]) == ("inbound", "received")
    assert (message["from"], message["to"], message["body"]) == (
        "+15550200011",
        SENDER,
        "Is the library open?",
    )
    assert message["date_sent"] is not None


KEYWORD_REPLY_ROWS = [
    ("stop", "STOP", "You have successfully been unsubscribed."),
    ("start", "Start", "You have successfully been re-subscribed"),
    ("help", "help", "Reply STOP to unsubscribe."),
]


@pytest.mark.parametrize(
    ("keyword", "body", "reply"),
    KEYWORD_REPLY_ROWS,
    ids=[r[0] for r in KEYWORD_REPLY_ROWS],
)
def test_keywords_get_twilio_auto_replies(
    api: httpx.Client, emulator: EmulatorServer, keyword: str, body: str, reply: str
) -> None:
    result = emulator.inject("+15550200012", SENDER, body)

    assert result["keyword"] == keyword
    auto = result["auto_reply"]
    assert (auto["direction"], auto["from"], auto["to"]) == (
        "outbound-reply",
        SENDER,
        "+15550200012",
    )
    assert auto["body"].startswith(reply)
    assert emulator.counters()["create_requests"] == 0


def test_stop_is_per_sender_and_start_lifts_it(api: httpx.Client, emulator: EmulatorServer) -> None:
    student = "+15550200013"
    emulator.inject(student, SENDER, "stop")
    other_sender = api.post(MESSAGES, data={"To": student, "From": "+14155550198", "Body": "Hi"})
    blocked = send(api, student)
    emulator.inject(student, SENDER, "UNSTOP")
    allowed = send(api, student)

    assert other_sender.status_code == 201
    assert (blocked.status_code, error_code(blocked)) == (400, 21610)
    assert allowed.status_code == 201


def test_stop_to_a_pool_number_blocks_the_whole_service(
    api: httpx.Client, emulator: EmulatorServer
) -> None:
    numbers = [api.post(NUMBERS, data={"AreaCode": code}).json() for code in ("415", "617")]
    for number in numbers:
        api.post(POOL, data={"PhoneNumberSid": number["sid"]})
    student = "+15550200014"
    emulator.inject(student, numbers[1]["phone_number"], "Cancel")

    blocked = api.post(MESSAGES, data={"To": student, "MessagingServiceSid": SERVICE, "Body": "Hi"})

    assert (blocked.status_code, error_code(blocked)) == (400, 21610)


def test_inject_refuses_bad_numbers(emulator: EmulatorServer) -> None:
    with pytest.raises(ValueError, match="21212"):
        emulator.inject("not a phone", SENDER, "Hi")


# --- listing and paging -----------------------------------------------------------------


def test_pages_are_newest_first_and_keep_filters(
    api: httpx.Client, emulator: EmulatorServer
) -> None:
    for i in range(5):
        send(api, "+15550200015", body=f"n{i}")
        emulator.advance(1)  # one second apart: within a second the order is by SID
    send(api, "+15550200016", body="other")

    first = api.get(MESSAGES, params={"To": "+15550200015", "PageSize": "2"}).json()
    second = api.get(first["next_page_uri"]).json()
    third = api.get(second["next_page_uri"]).json()
    back = api.get(third["previous_page_uri"]).json()
    by_offset = api.get(MESSAGES, params={"To": "+15550200015", "PageSize": "2", "Page": "1"})

    def bodies(page: dict[str, Any]) -> list[str]:
        return [m["body"] for m in page["messages"]]

    assert [bodies(p) for p in (first, second, third)] == [["n4", "n3"], ["n2", "n1"], ["n0"]]
    assert "To=%2B15550200015" in first["next_page_uri"]
    assert third["next_page_uri"] is None
    assert first["previous_page_uri"] is None
    assert bodies(back) == ["n2", "n1"]
    assert bodies(by_offset.json()) == ["n2", "n1"]
    assert (second["page"], second["start"], second["end"]) == (1, 2, 3)


@pytest.mark.parametrize(
    "params",
    [{"PageSize": "0"}, {"PageSize": "1001"}, {"Page": "-1"}, {"PageToken": "PAnope"}],
    ids=["size-0", "size-1001", "negative-page", "unknown-token"],
)
def test_bad_paging_is_a_400(api: httpx.Client, params: dict[str, str]) -> None:
    response = api.get(MESSAGES, params=params)

    assert (response.status_code, error_code(response)) == (400, 20001)


def test_unknown_routes_and_methods_answer_in_twilio_shape(api: httpx.Client) -> None:
    missing = api.get(f"/2010-04-01/Accounts/{ACCOUNT}/Calls.json")
    wrong_method = api.delete(MESSAGES)

    assert (missing.status_code, error_code(missing)) == (404, 20404)
    assert (wrong_method.status_code, error_code(wrong_method)) == (405, 20004)


# --- phone numbers ----------------------------------------------------------------------


def test_search_by_area_code_is_deterministic_and_sms_capable(api: httpx.Client) -> None:
    params = {"AreaCode": "617", "SmsEnabled": "true", "PageSize": "5"}
    first = api.get(SEARCH, params=params).json()["available_phone_numbers"]
    again = api.get(SEARCH, params=params).json()["available_phone_numbers"]

    assert first == again
    assert len(first) == 5
    assert all(n["phone_number"].startswith("+1617") for n in first)
    assert {(n["locality"], n["region"], n["capabilities"]["sms"]) for n in first} == {
        ("Boston", "MA", True)
    }


def test_bought_numbers_are_no_longer_offered(api: httpx.Client) -> None:
    params = {"AreaCode": "415", "PageSize": "3"}
    offered = api.get(SEARCH, params=params).json()["available_phone_numbers"]
    bought = api.post(NUMBERS, data={"PhoneNumber": offered[0]["phone_number"]})
    again = api.post(NUMBERS, data={"PhoneNumber": offered[0]["phone_number"]})
    now_offered = api.get(SEARCH, params=params).json()["available_phone_numbers"]

    assert bought.status_code == 201
    assert (again.status_code, error_code(again)) == (400, 21422)
    assert offered[0]["phone_number"] not in {n["phone_number"] for n in now_offered}


def test_two_buys_in_one_area_code_get_two_numbers(api: httpx.Client) -> None:
    # Was tests/adapters' "two provisionings never buy the same number": the inventory is
    # the emulator's, the gateway only buys what a search offers.
    first = api.post(NUMBERS, data={"AreaCode": "415"}).json()
    second = api.post(NUMBERS, data={"AreaCode": "415"}).json()

    assert first["phone_number"].startswith("+1415")
    assert second["phone_number"].startswith("+1415")
    assert first["phone_number"] != second["phone_number"]


SEARCH_ROWS = [
    ("exhausted", {"AreaCode": "212"}, 200),
    ("not-sms", {"SmsEnabled": "false"}, 200),
    ("bad-area-code", {"AreaCode": "12"}, 400),
]


@pytest.mark.parametrize(
    ("params", "status"), [r[1:] for r in SEARCH_ROWS], ids=[r[0] for r in SEARCH_ROWS]
)
def test_searches_that_find_nothing(
    api: httpx.Client, emulator: EmulatorServer, params: dict[str, str], status: int
) -> None:
    emulator.control(exhausted_area_codes=["212"])

    response = api.get(SEARCH, params=params)

    assert response.status_code == status
    if status == 200:
        assert response.json()["available_phone_numbers"] == []


def test_unknown_country_is_404(api: httpx.Client) -> None:
    response = api.get(f"/2010-04-01/Accounts/{ACCOUNT}/AvailablePhoneNumbers/ZZ/Local.json")

    assert (response.status_code, error_code(response)) == (404, 20404)


def test_buying_by_area_code_and_listing_with_a_filter(api: httpx.Client) -> None:
    bought = [api.post(NUMBERS, data={"AreaCode": code}).json() for code in ("303", "512", "512")]

    everything = api.get(NUMBERS, params={"PageSize": "2"}).json()
    rest = api.get(everything["next_page_uri"]).json()
    austin = api.get(NUMBERS, params={"PhoneNumber": "+1512"}).json()

    assert [n["phone_number"][:5] for n in bought] == ["+1303", "+1512", "+1512"]
    sids = [n["sid"] for n in everything["incoming_phone_numbers"] + rest["incoming_phone_numbers"]]
    assert sids == [n["sid"] for n in bought]
    assert [n["sid"] for n in austin["incoming_phone_numbers"]] == [b["sid"] for b in bought[1:]]


def test_service_pool_membership(api: httpx.Client) -> None:
    number = api.post(NUMBERS, data={"AreaCode": "206"}).json()

    added = api.post(POOL, data={"PhoneNumberSid": number["sid"]})
    twice = api.post(POOL, data={"PhoneNumberSid": number["sid"]})
    unknown = api.post(POOL, data={"PhoneNumberSid": "PN" + "0" * 32})
    pool = api.get(POOL).json()

    assert added.status_code == 201
    assert (twice.status_code, error_code(twice)) == (409, 21710)
    assert (unknown.status_code, error_code(unknown)) == (404, 20404)
    assert [n["phone_number"] for n in pool["phone_numbers"]] == [number["phone_number"]]
    assert pool["meta"]["key"] == "phone_numbers"


def test_service_sends_stick_to_one_pool_number_per_recipient(api: httpx.Client) -> None:
    for code in ("404", "808", "312"):
        number = api.post(NUMBERS, data={"AreaCode": code}).json()
        api.post(POOL, data={"PhoneNumberSid": number["sid"]})
    form = {"MessagingServiceSid": SERVICE, "Body": "Hi"}

    senders = set()
    for _ in range(3):
        created = api.post(MESSAGES, data={**form, "To": "+15550200017"}).json()
        assert (created["status"], created["from"], created["num_segments"]) == (
            "accepted",
            None,
            "0",
        )
        fetched = api.get(created["uri"]).json()
        senders.add(fetched["from"])

    assert len(senders) == 1
