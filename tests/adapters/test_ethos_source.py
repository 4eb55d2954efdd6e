"""The ``ethos:`` source, over the real sandbox Ethos API on loopback (and MockTransport for
server misbehaviour the sandbox does not produce)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from adapters.sis.base import SourceError, SourceFormatError, SourceUnavailable
from adapters.sis.ethos_config import EthosConfig, RetryPolicy
from adapters.sis.ethos_source import EthosSource
from sandbox.ethos import EthosSandbox, EthosSandboxConfig, run_ethos_sandbox

KEY = "test-api-key"
FAST = RetryPolicy(max_attempts=4, backoff_initial_s=0.001, backoff_max_s=0.005)


def person(n: int, *, role: str = "student", **extra: Any) -> dict[str, Any]:
    """A minimal Ethos person with bannerId ``B{n:04d}`` and one mobile phone."""
    record: dict[str, Any] = {
        "id": f"00000000-0000-0000-0000-{n:012d}",
        "names": [{"type": {"category": "legal"}, "firstName": f"First{n}", "lastName": "Doe"}],
        "credentials": [{"type": "bannerId", "value": f"B{n:04d}"}],
        "roles": [{"role": role}],
        "phones": [{"type": {"phoneType": "mobile"}, "number": f"212349{n:04d}"}],
    }
    record.update(extra)
    return record


class Clock:
    """A clock the test moves: tokens expire when the test says so, without sleeping."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def serve() -> Iterator[Callable[..., tuple[EthosSandbox, str]]]:
    """Start sandboxes on loopback for the test; stop them after."""
    stack: list[Any] = []

    def start(persons: list[dict[str, Any]], **knobs: Any) -> tuple[EthosSandbox, str]:
        clock = knobs.pop("clock", None) or Clock()
        sandbox = EthosSandbox(persons, EthosSandboxConfig(api_key=KEY, **knobs), clock=clock)
        context = run_ethos_sandbox(sandbox)
        url = context.__enter__()
        stack.append(context)
        return sandbox, url

    yield start
    for context in reversed(stack):
        context.__exit__(None, None, None)


def source(url: str, sleeps: list[float], **kwargs: Any) -> EthosSource:
    kwargs.setdefault("retry", FAST)
    return EthosSource(url, api_key=KEY, sleep=sleeps.append, **kwargs)


def test_reads_every_page_until_the_total(serve: Any, sleeps: list[float]) -> None:
    sandbox, url = serve([person(n) for n in range(23)])
    extract = source(url, sleeps, page_size=5).read()
    assert [p.person_id for p in extract.people] == [f"B{n:04d}" for n in range(23)]
    assert [p.line for p in extract.people] == list(range(1, 24))
    assert sandbox.stats["pages_served"] == 5
    assert sandbox.stats["tokens_issued"] == 1
    assert extract.full is True
    assert extract.provided_fields == {"first_name", "last_name", "preferred_name", "email"}


def test_a_server_that_caps_the_page_size_is_still_read_whole(
    serve: Any, sleeps: list[float]
) -> None:
    sandbox, url = serve([person(n) for n in range(20)], max_page_size=6)
    extract = source(url, sleeps, page_size=100).read()
    assert len(extract.people) == 20
    assert sandbox.stats["pages_served"] == 4


def test_an_empty_institution_is_an_empty_extract(serve: Any, sleeps: list[float]) -> None:
    _, url = serve([])
    extract = source(url, sleeps).read()
    assert (extract.people, extract.phones, extract.quarantined) == ([], [], [])


def test_an_expired_token_is_exchanged_again_mid_read(serve: Any, sleeps: list[float]) -> None:
    clock = Clock()
    sandbox, url = serve([person(n) for n in range(12)], token_ttl_s=60, clock=clock)

    def expire_after_first_page(offset: int) -> None:
        if offset == 0:
            clock.now += 61  # the token dies between page 1 and page 2

    sandbox.before_page = expire_after_first_page
    extract = source(url, sleeps, page_size=4).read()
    assert len(extract.people) == 12
    assert sandbox.stats["expired_token"] == 1
    assert sandbox.stats["tokens_issued"] == 2
    assert sandbox.stats["pages_served"] == 3


def test_a_key_that_keeps_being_refused_fails_clearly(serve: Any, sleeps: list[float]) -> None:
    _, url = serve([person(1)])
    with pytest.raises(SourceError, match="/auth refused the API key") as caught:
        EthosSource(url, api_key="wrong", retry=FAST, sleep=sleeps.append).read()
    assert not isinstance(caught.value, SourceUnavailable)  # retrying later will not help
    assert "wrong" not in str(caught.value)


def test_429_and_500_are_retried_then_the_read_succeeds(serve: Any, sleeps: list[float]) -> None:
    sandbox, url = serve([person(n) for n in range(6)], faults=(429, 500, 503), retry_after_s=0.5)
    extract = source(url, sleeps, page_size=3, retry=RetryPolicy(max_attempts=4)).read()
    assert len(extract.people) == 6
    assert (sandbox.stats["served_429"], sandbox.stats["served_500"]) == (1, 1)
    assert sandbox.stats["served_503"] == 1
    # Retry-After is honoured; the 5xx waits are exponential backoff with jitter.
    assert sleeps[0] == 0.5
    assert len(sleeps) == 3
    assert all(0 < s <= 30 for s in sleeps[1:])


def test_random_faults_are_survived_with_bounded_retries(serve: Any, sleeps: list[float]) -> None:
    sandbox, url = serve(
        [person(n) for n in range(40)], share_429=0.25, share_500=0.15, seed=11, retry_after_s=0
    )
    extract = source(url, sleeps, page_size=4, retry=RetryPolicy(max_attempts=8,
                     backoff_initial_s=0.001, backoff_max_s=0.002)).read()  # fmt: skip
    assert len(extract.people) == 40
    assert sandbox.stats["served_429"] + sandbox.stats["served_500"] > 0
    assert len(sleeps) == sandbox.stats["served_429"] + sandbox.stats["served_500"]


def test_retries_exhausted_make_the_source_unavailable(serve: Any, sleeps: list[float]) -> None:
    sandbox, url = serve([person(1)], faults=(503,) * 10)
    with pytest.raises(SourceUnavailable) as caught:
        source(url, sleeps, retry=RetryPolicy(max_attempts=3, backoff_initial_s=0.001)).read()
    message = str(caught.value)
    assert "/api/persons" in message
    assert "HTTP 503" in message
    assert "3 attempts" in message
    assert sandbox.stats["served_503"] == 3
    assert len(sleeps) == 2


def test_an_unreachable_server_is_unavailable_after_retries(sleeps: list[float]) -> None:
    with run_ethos_sandbox([]) as url:
        pass  # the port is now closed
    with pytest.raises(
        SourceUnavailable, match=r"/auth still failing after 4 attempts \(last: ConnectError\)"
    ):
        source(url, sleeps).read()
    assert len(sleeps) == 3


def test_a_total_that_changes_mid_read_is_refused(serve: Any, sleeps: list[float]) -> None:
    sandbox, url = serve([person(n) for n in range(10)])

    def enrol_someone(offset: int) -> None:
        if offset == 4:
            sandbox.persons.insert(0, person(99))

    sandbox.before_page = enrol_someone
    with pytest.raises(SourceUnavailable, match=r"changed during the read \(x-total-count was 10"):
        source(url, sleeps, page_size=4).read()


def test_secrets_never_reach_the_logs(
    serve: Any, sleeps: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    sandbox, url = serve([person(n) for n in range(4)], faults=(429, 500), retry_after_s=0)
    caplog.set_level(logging.DEBUG)
    source(url, sleeps, page_size=2).read()
    token = sandbox.issue_token()  # same secret and shape as the ones issued during the read
    assert KEY not in caplog.text
    assert token.split(".")[0] + "." not in caplog.text.replace("Bearer", "")
    assert "attempt 1 of 4" in caplog.text  # retries are visible, secrets are not


def test_describe_keeps_no_credentials() -> None:
    src = EthosSource("https://user:pw@sis.example.edu/base/?x=1", api_key=KEY)
    assert src.describe() == "ethos:https://sis.example.edu/base"


# --- mapping ----------------------------------------------------------------------------------

RICH = {
    "id": "9a0c1f0e-1111-4a4a-8b8b-000000000001",
    "names": [
        {"type": {"category": "birth"}, "firstName": "Maria", "lastName": "Lopez"},
        {"type": {"category": "legal"}, "firstName": "María", "lastName": "López García",
         "fullName": "María López García"},
        {"type": {"category": "favored"}, "firstName": "Mari", "lastName": "López",
         "preference": "preferred"},
    ],
    "emails": [
        {"type": {"emailType": "personal"}, "address": "mari@example.com"},
        {"type": {"emailType": "school"}, "address": "mlopez@students.example.edu",
         "preference": "primary"},
    ],
    "credentials": [
        {"type": "elevateId", "value": "EL-77"},
        {"type": "bannerId", "value": "A00012345"},
    ],
    "roles": [{"role": "employee"}, {"role": "student"}],
    "phones": [
        {"type": {"phoneType": "mobile"}, "number": "(212) 349-1234", "preference": "primary"},
        {"type": {"phoneType": "parent"}, "number": "55 1234 5678", "countryCallingCode": "52"},
        {"type": {"phoneType": "business"}, "number": "212-349-1000", "extension": "204"},
        {"type": {"phoneType": "home"}, "number": "+44 20 7946 0958", "countryCallingCode": "+44"},
        {"type": {"phoneType": "other"}, "number": "80012345678", "countryCallingCode": "800"},
        {"type": {}},
    ],
    "status": "Active",
}  # fmt: skip


def test_field_mapping(serve: Any, sleeps: list[float]) -> None:
    _, url = serve([RICH])
    extract = source(url, sleeps).read()
    [p] = extract.people
    assert (p.person_id, p.role, p.line) == ("A00012345", "student", 1)
    assert p.fields == {
        "first_name": "María",
        "last_name": "López García",
        "preferred_name": "Mari",
        "email": "mlopez@students.example.edu",
        "status": "active",
    }
    assert extract.provided_fields == {
        "first_name", "last_name", "preferred_name", "email", "status",
    }  # fmt: skip
    got = [(ph.type_code, ph.number, ph.country, ph.primary) for ph in extract.phones]
    assert got == [
        ("mobile", "(212) 349-1234", None, True),
        ("parent", "55 1234 5678", "MX", False),
        ("business", "212-349-1000 x204", None, False),
        ("home", "+44 20 7946 0958", "GB", False),
        ("other", "+800 80012345678", None, False),  # +800 has no single region
        ("", "", None, False),
    ]
    assert {ph.person_id for ph in extract.phones} == {"A00012345"}
    assert all(ph.updated_at is None for ph in extract.phones)


def test_the_id_credential_type_is_configurable(serve: Any, sleeps: list[float]) -> None:
    _, url = serve([RICH])
    [p] = source(url, sleeps, id_credential="elevateId").read().people
    assert p.person_id == "EL-77"


@pytest.mark.parametrize(
    ("roles", "expected"),
    [
        (["student"], "student"),
        (["employee"], "staff"),
        (["instructor"], "staff"),
        (["advisor", "alumni"], "staff"),
        (["employee", "student"], "student"),
    ],
    ids=["student", "employee", "instructor", "advisor", "student-worker-is-student"],
)
def test_roles_map_to_student_or_staff(
    serve: Any, sleeps: list[float], roles: list[str], expected: str
) -> None:
    _, url = serve([person(1, roles=[{"role": r} for r in roles])])
    assert source(url, sleeps).read().people[0].role == expected


@pytest.mark.parametrize(
    ("names", "first", "preferred"),
    [
        ([{"type": {"category": "personal"}, "firstName": "Jo", "lastName": "X"}], "Jo", None),
        ([{"type": {"category": "legal"}, "firstName": "Joanna", "lastName": "X"},
          {"type": {"category": "personal"}, "firstName": "Jo", "lastName": "X",
           "preference": "preferred"}], "Joanna", "Jo"),
        ([{"type": {"category": "legal"}, "firstName": "Joanna", "lastName": "X",
           "preferredName": "Jojo"}], "Joanna", "Jojo"),
        ([{"firstName": "Joanna", "lastName": "X", "preference": "preferred"}], "Joanna", None),
    ],
    ids=["personal-only", "preferred-personal-name", "preferredName-field", "untyped"],
)  # fmt: skip
def test_names(
    serve: Any, sleeps: list[float], names: list[dict[str, Any]], first: str, preferred: str | None
) -> None:
    _, url = serve([person(1, names=names)])
    fields = source(url, sleeps).read().people[0].fields
    assert (fields["first_name"], fields["preferred_name"]) == (first, preferred)


def test_unusable_records_are_quarantined_and_the_rest_read(
    serve: Any, sleeps: list[float]
) -> None:
    records = [
        person(1),
        person(2, credentials=[{"type": "elevateId", "value": "E2"}]),
        person(3, roles=[{"role": "alumni"}]),
        person(4, names=[]),
        {**person(5), "credentials": [{"type": "bannerId", "value": "B0001"}]},
        person(6, status="on leave"),
        person(7),
    ]
    _, url = serve(records)
    extract = source(url, sleeps).read()
    assert [p.person_id for p in extract.people] == ["B0001", "B0007"]
    assert [(q.file, q.line, q.person_id, q.reason) for q in extract.quarantined] == [
        ("ethos:persons", 2, None,
         "no bannerId credential (person '00000000-0000-0000-0000-000000000002')"),
        ("ethos:persons", 3, "B0003", "no student or staff role (roles: alumni)"),
        ("ethos:persons", 4, "B0004", "no names"),
        ("ethos:persons", 5, "B0001", "duplicate bannerId 'B0001' (first at record 1)"),
        ("ethos:persons", 6, "B0006", "unknown status 'on leave'"),
    ]  # fmt: skip
    assert extract.quarantined[0].raw["id"] == "00000000-0000-0000-0000-000000000002"
    # Phones of quarantined people are not handed over.
    assert {ph.person_id for ph in extract.phones} == {"B0001", "B0007"}


def test_raw_is_stable_for_unchanged_records(serve: Any, sleeps: list[float]) -> None:
    _, url = serve([RICH, person(2)])
    first, second = source(url, sleeps).read(), source(url, sleeps).read()
    assert [p.raw for p in first.people] == [p.raw for p in second.people]
    assert [p.raw for p in first.phones] == [p.raw for p in second.phones]
    assert first.people[0].raw != first.people[1].raw


def test_raw_changes_when_a_phone_changes(serve: Any, sleeps: list[float]) -> None:
    sandbox, url = serve([person(1)])
    before = source(url, sleeps).read()
    sandbox.persons[0]["phones"][0]["extension"] = "12"
    after = source(url, sleeps).read()
    assert after.phones[0].raw != before.phones[0].raw
    assert after.people[0].raw != before.people[0].raw
    assert after.phones[0].number == "2123490001 x12"


# --- server misbehaviour (MockTransport) -------------------------------------------------------


def mock(handler: Callable[[httpx.Request], httpx.Response]) -> httpx.MockTransport:
    def with_auth(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/auth":
            return httpx.Response(200, text="jwt-token")
        return handler(request)

    return httpx.MockTransport(with_auth)


@pytest.mark.parametrize(
    ("response", "error", "message"),
    [
        (httpx.Response(200, text="<html>", headers={"x-total-count": "1"}), SourceFormatError,
         "not JSON"),
        (httpx.Response(200, json={"persons": []}, headers={"x-total-count": "0"}),
         SourceFormatError, "expected a JSON array"),
        (httpx.Response(200, json=[]), SourceFormatError, "missing or bad x-total-count"),
        (httpx.Response(200, json=[], headers={"x-total-count": "3"}), SourceUnavailable,
         "empty page at offset 0"),
        (httpx.Response(404, json={}), SourceError, "answered HTTP 404"),
        (httpx.Response(401, json={}), SourceError, "refused a freshly issued token"),
    ],
    ids=["not-json", "not-an-array", "no-total", "short-read", "not-found", "always-401"],
)  # fmt: skip
def test_server_misbehaviour_is_refused_clearly(
    sleeps: list[float], response: httpx.Response, error: type[Exception], message: str
) -> None:
    src = EthosSource("https://sis.example.edu", api_key=KEY, transport=mock(lambda _: response),
                      retry=FAST, sleep=sleeps.append)  # fmt: skip
    with pytest.raises(error, match=message):
        src.read()


@pytest.mark.parametrize(
    ("header", "expected"),
    [("7", 7.0), ("0", 0.0), ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0), ("soon", None)],
    ids=["seconds", "zero", "http-date-in-the-past", "garbage-uses-backoff"],
)
def test_retry_after_is_honoured(sleeps: list[float], header: str, expected: float | None) -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if len(calls) == 1:
            return httpx.Response(429, headers={"Retry-After": header})
        return httpx.Response(200, json=[], headers={"x-total-count": "0"})

    src = EthosSource("https://sis.example.edu", api_key=KEY, transport=mock(handler),
                      retry=FAST, sleep=sleeps.append)  # fmt: skip
    src.read()
    [slept] = sleeps
    if expected is None:
        assert 0 < slept <= FAST.backoff_max_s
    else:
        assert slept == expected


def test_retry_after_is_capped(sleeps: list[float]) -> None:
    responses = iter(
        [
            httpx.Response(429, headers={"Retry-After": "3600"}),
            httpx.Response(200, json=[], headers={"x-total-count": "0"}),
        ]
    )
    src = EthosSource("https://sis.example.edu", api_key=KEY,
                      transport=mock(lambda _: next(responses)),
                      retry=RetryPolicy(retry_after_max_s=5), sleep=sleeps.append)  # fmt: skip
    src.read()
    assert sleeps == [5]


def test_connection_errors_are_retried(sleeps: list[float]) -> None:
    attempts = []

    def handler(request: httpx.Request) -> httpx.Response:
        attempts.append(request)
        if len(attempts) < 3:
            raise httpx.ConnectError("connection refused", request=request)
        return httpx.Response(200, json=[person(1)], headers={"x-total-count": "1"})

    src = EthosSource("https://sis.example.edu", api_key=KEY, transport=mock(handler),
                      retry=FAST, sleep=sleeps.append)  # fmt: skip
    assert len(src.read().people) == 1
    assert len(sleeps) == 2


def test_requests_carry_the_jwt_and_the_ethos_media_type() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path == "/auth":
            return httpx.Response(200, text="the-jwt\n")
        return httpx.Response(200, json=[], headers={"x-total-count": "0"})

    EthosSource("https://sis.example.edu/", api_key=KEY, transport=httpx.MockTransport(handler),
                page_size=250).read()  # fmt: skip
    auth, persons = seen
    assert (auth.method, auth.url.path, auth.headers["authorization"]) == (
        "POST", "/auth", f"Bearer {KEY}",
    )  # fmt: skip
    assert persons.headers["authorization"] == "Bearer the-jwt"
    assert persons.headers["accept"] == "application/vnd.hedtech.integration.v12+json"
    assert dict(persons.url.params) == {"offset": "0", "limit": "250"}


# --- field values (domain/fields.py): the same rule as CSV cells -------------------------------

BIG = 200 * 1024


def legal(first: str = "Bo", last: str = "Li") -> list[dict[str, Any]]:
    return [{"type": {"category": "legal"}, "firstName": first, "lastName": last}]


# (what the bad person 2 says, the reason, the person id the quarantine keeps)
ETHOS_FIELD_CASES = [
    pytest.param({"names": legal(first="Bo\x00")}, "names[0].firstName contains a control character (NUL)", "B0002", id="nul-in-a-name"),
    pytest.param({"names": legal(first="Bo\r\nX")}, "names[0].firstName contains a line break (CR)", "B0002", id="crlf-in-a-name"),
    pytest.param({"names": legal(last="Li\n")}, "names[0].lastName contains a line break (LF)", "B0002", id="trailing-lf-in-a-name"),
    pytest.param({"names": legal(first="Bo\x1b")}, "names[0].firstName contains a control character (ESC)", "B0002", id="esc-in-a-name"),
    pytest.param({"names": legal(first="x" * BIG)}, f"names[0].firstName is {BIG:,} characters, more than 200", "B0002", id="200KiB-name"),
    pytest.param({"names": [*legal(), {"type": {"category": "birth"}, "firstName": "B\x07"}]}, "names[1].firstName contains a control character (BEL)", "B0002", id="bel-in-a-name-not-picked"),
    pytest.param({"emails": [{"address": "bo@x.edu\x00"}]}, "emails[0].address contains a control character (NUL)", "B0002", id="nul-in-an-email"),
    pytest.param({"emails": [{"address": "b" * 321}]}, "emails[0].address is 321 characters, more than 320", "B0002", id="email-too-long"),
    pytest.param({"credentials": [{"type": "bannerId", "value": "B\t0002"}]}, "credentials[0].value (bannerId) contains a tab", None, id="tab-in-the-id"),
    pytest.param({"credentials": [{"type": "bannerId", "value": "B" * 65}]}, "credentials[0].value (bannerId) is 65 characters, more than 64", None, id="id-too-long"),
    pytest.param({"status": "active\x00"}, "status contains a control character (NUL)", "B0002", id="nul-in-the-status"),
    pytest.param({"roles": [{"role": "student\x00"}]}, "roles[0].role contains a control character (NUL)", "B0002", id="nul-in-a-role"),
    pytest.param({"addresses": [{"line": "\ud800"}]}, "the record contains invalid Unicode (a lone surrogate, U+D800)", "B0002", id="lone-surrogate-anywhere"),
]  # fmt: skip


ETHOS_PHONE_CASES = [
    pytest.param({"phones": [{"type": {"phoneType": "mobile"}, "number": "212\x00349"}]}, "phones[0].number contains a control character (NUL)", id="nul-in-a-number"),
    pytest.param({"phones": [{"type": {"phoneType": "mobile"}, "number": "1" * 198, "extension": "12"}]}, "phones[0].number as handed over is 202 characters, more than 200", id="number-with-extension-too-long"),
    pytest.param({"phones": [{"type": {"phoneType": "m" * 33}, "number": "2123490002"}]}, "phones[0].type.phoneType is 33 characters, more than 32", id="phone-type-too-long"),
]  # fmt: skip


@pytest.mark.parametrize(("bad", "reason", "person_id"), ETHOS_FIELD_CASES)
def test_a_bad_field_quarantines_its_record_and_the_rest_read(
    serve: Any, sleeps: list[float], bad: dict[str, Any], reason: str, person_id: str | None
) -> None:
    _, url = serve([person(1), person(2, **bad), person(3)])
    extract = source(url, sleeps, page_size=2).read()
    [row] = extract.quarantined
    assert (row.file, row.line, row.reason, row.person_id) == (
        "ethos:persons", 2, reason, person_id,
    )  # fmt: skip
    assert row.raw["id"] == "00000000-0000-0000-0000-000000000002"
    assert row.raw["page"] == "1"
    for value in row.raw.values():  # storable on every database, and bounded
        assert value.isprintable() and len(value) < 4_100
    assert [p.person_id for p in extract.people] == ["B0001", "B0003"]
    assert {ph.person_id for ph in extract.phones} == {"B0001", "B0003"}


@pytest.mark.parametrize(("bad", "reason"), ETHOS_PHONE_CASES)
def test_a_bad_phone_is_quarantined_alone_as_a_phones_csv_row_is(
    serve: Any, sleeps: list[float], bad: dict[str, Any], reason: str
) -> None:
    good = {"type": {"phoneType": "home"}, "number": "2123499999"}
    _, url = serve([person(1), person(2, phones=[*bad["phones"], good]), person(3)])
    extract = source(url, sleeps, page_size=2).read()
    [row] = extract.quarantined
    assert (row.file, row.line, row.reason, row.person_id) == ("ethos:persons", 2, reason, "B0002")
    assert (row.raw["id"], row.raw["page"]) == ("00000000-0000-0000-0000-000000000002", "1")
    assert row.raw["phone"].isprintable()
    assert [p.person_id for p in extract.people] == ["B0001", "B0002", "B0003"]
    assert [(ph.person_id, ph.number) for ph in extract.phones] == [
        ("B0001", "2123490001"), ("B0002", "2123499999"), ("B0003", "2123490003"),
    ]  # fmt: skip


def test_the_page_of_a_quarantined_record_is_kept(serve: Any, sleeps: list[float]) -> None:
    _, url = serve([person(1), person(2), person(3, names=legal(first="\x00"))])
    [row] = source(url, sleeps, page_size=2).read().quarantined
    assert (row.line, row.raw["page"]) == (3, "2")


@pytest.mark.parametrize(
    "code", ["²", "1" * 5000, "+", "44x"], ids=["superscript-digit", "5000-digits", "plus", "junk"]
)
def test_an_odd_country_calling_code_is_ignored_not_fatal(
    serve: Any, sleeps: list[float], code: str
) -> None:
    phones = [{"type": {"phoneType": "mobile"}, "number": "2123490001", "countryCallingCode": code}]
    _, url = serve([person(1, phones=phones)])
    [phone] = source(url, sleeps).read().phones
    assert (phone.number, phone.country) == ("2123490001", None)


# --- settings -------------------------------------------------------------------------------------


def test_nudge_ethos_page_size_in_the_environment_pages_by_it(
    serve: Any, sleeps: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    from nudge.settings import Settings
    from nudge.wiring import sis_source

    sandbox, url = serve([person(n) for n in range(20)])
    offsets: list[int] = []
    sandbox.before_page = offsets.append
    monkeypatch.setenv("NUDGE_ETHOS_PAGE_SIZE", "7")
    monkeypatch.setenv("NUDGE_ETHOS_API_KEY", KEY)
    extract = sis_source(f"ethos:{url}", Settings(_env_file=None), sleep=sleeps.append).read()
    assert len(extract.people) == 20
    assert offsets == [0, 7, 14]
    assert sandbox.stats["persons_requests"] == 3


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("NUDGE_ETHOS_PAGE_SIZE", "0"),
        ("NUDGE_ETHOS_PAGE_SIZE", "many"),
        ("NUDGE_ETHOS_TIMEOUT_S", "0"),
        ("NUDGE_ETHOS_MAX_ATTEMPTS", "0"),
        ("NUDGE_ETHOS_ID_CREDENTIAL", ""),
        ("NUDGE_ETHOS_ID_CREDENTIAL", "banner id"),
    ],
    ids=["page-size-zero", "page-size-not-a-number", "timeout-zero", "no-attempts",
         "blank-credential", "credential-with-a-space"],
)  # fmt: skip
def test_bad_ethos_settings_are_refused_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    from pydantic import ValidationError

    from nudge.settings import Settings

    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError, match=variable.removeprefix("NUDGE_").lower()):
        Settings(_env_file=None)


@pytest.mark.parametrize(
    ("knobs", "message"),
    [
        ({"page_size": 0}, "page_size must be at least 1"),
        ({"timeout_s": 0}, "timeout_s must be positive"),
        ({"retry": RetryPolicy(max_attempts=0)}, "max_attempts must be at least 1"),
        ({"id_credential": " "}, "id_credential must not be blank"),
    ],
    ids=["page-size", "timeout", "attempts", "credential"],
)
def test_the_ethos_config_checks_itself(knobs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        EthosConfig(api_key=None, **knobs)


def test_a_config_is_what_the_source_uses_and_keywords_override_it() -> None:
    config = EthosConfig(api_key=SecretStr(KEY), page_size=9, id_credential="elevateId")
    src = EthosSource("https://sis.example.edu", config=config, page_size=3)
    assert (src.page_size, src.id_credential, src.timeout_s) == (3, "elevateId", 30.0)
    assert KEY not in repr(src.config)
