"""Contract: the emulator's message list means what Twilio's OpenAPI description says.

``test_twilio_contract.py`` checks shapes; this checks meaning, with the parameter names,
their documented semantics, their examples and the status values all read from the
description (skipped, like every contract test, when it is absent):

* ``DateSent`` filters are by GMT date: ``DateSent`` the day, ``DateSent<`` (sent as
  ``DateSent<=``) on and before it, ``DateSent>`` on and after it; a time of day is ignored;
  a message with no ``date_sent`` matches none of them;
* the list is ``date_sent`` newest first, messages not sent yet first, ties by SID;
* paging (``PageSize``, ``Page``, ``next_page_uri``/``previous_page_uri``) keeps that order;
* ``receiving`` and ``received`` are the description's status values for inbound texts.

Every response is also validated against the strict description.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from openapi_core import OpenAPI

from sandbox.twilio import EmulatorConfig, EmulatorServer
from tests.contract.spec import API, MESSAGES_PATH, Exchange, validate

ACCOUNT = "AC" + "7" * 32
AUTH = (ACCOUNT, "contract-token")
OURS = "+14155550177"
MESSAGES = f"/2010-04-01/Accounts/{ACCOUNT}/Messages.json"
#: GET one list page: a path and its params, or a ``*_page_uri``.
Get = Callable[..., dict[str, Any]]
#: The GMT day each example of the description names (the time only picks the day; a zone
#: moves it: 22:05 MST is 05:05 GMT the next day). A new example must be added here.
EXAMPLE_DAYS = {
    "2008-01-02": date(2008, 1, 2),
    "06/11/2019 22:05:25 MST": date(2019, 6, 12),
    "2019-06-11 22:05:25.000": date(2019, 6, 11),
    "Wed, 19 Jun 2019 22:04:00 -0000": date(2019, 6, 19),
}


def list_parameters(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    operation = spec["paths"][MESSAGES_PATH]["get"]
    return {p["name"]: p for p in operation["parameters"] if p["in"] == "query"}


def meaning(name: str, description: str) -> str:
    """What a DateSent parameter selects, read from its name and the description's text:
    the name plus ``=`` is one of the three documented forms."""
    form = name.removeprefix("DateSent") + "="
    documented = {
        "=": r"`YYYY-MM-DD` \(to find Messages with a specific `sent_date`\)",
        "<=": r"`<=YYYY-MM-DD` \(to find Messages with `sent_date`s on and before",
        ">=": r"`>=YYYY-MM-DD` \(to find Messages with `sent_dates?` on and after",
    }
    assert re.search(documented[form], description), (name, description)
    return {"=": "day", "<=": "on-or-before", ">=": "on-or-after"}[form]


def selects(kind: str, day: date, sent: date) -> bool:
    return {"day": sent == day, "on-or-before": sent <= day, "on-or-after": sent >= day}[kind]


def gmt(value: str | None) -> datetime | None:
    return None if value is None else parsedate_to_datetime(value).astimezone(UTC)


@pytest.fixture(scope="module")
def emulator() -> Iterator[EmulatorServer]:
    with EmulatorServer(EmulatorConfig(status_delay_ms=0, account_sid=ACCOUNT)) as server:
        yield server


@pytest.fixture
def api(emulator: EmulatorServer, openapi: OpenAPI) -> Get:
    """GET the list (a path with params, or a page URI); every response is validated."""
    emulator.reset()

    def get(target: str, params: dict[str, str] | None = None) -> dict[str, Any]:
        response = httpx.get(emulator.base_url + target, params=params, auth=AUTH)
        query = urlsplit(str(response.request.url)).query
        path = urlsplit(str(response.request.url)).path
        exchange = Exchange(
            "GET",
            f"{API}{path}" + (f"?{query}" if query else ""),
            None,
            None,
            AUTH,
            response.status_code,
            response.text,
            response.headers["content-type"],
            from_sdk=False,
        )
        validate(openapi, exchange)
        assert response.status_code == 200, response.text
        page: dict[str, Any] = response.json()
        return page

    return get


def text_at(emulator: EmulatorServer, when: datetime, body: str, number: int = 1) -> str:
    """An inbound text whose date_sent is ``when`` (to the second: injection takes ms)."""
    sent_ago = emulator.advance(0) - when.timestamp()
    return str(
        emulator.inject(f"+1555032{number:04d}", OURS, body, sent_ago=sent_ago)["message"]["sid"]
    )


def everything(get: Get, params: dict[str, str]) -> list[dict[str, Any]]:
    page = get(MESSAGES, params)
    records = list(page["messages"])
    while page["next_page_uri"]:
        page = get(page["next_page_uri"])
        records += page["messages"]
    return records


# --- DateSent filters ---------------------------------------------------------------------


def test_the_description_names_three_date_sent_filters(spec: dict[str, Any]) -> None:
    names = {n for n in list_parameters(spec) if n.startswith("DateSent")}
    assert names == {"DateSent", "DateSent<", "DateSent>"}


def date_rows(spec: dict[str, Any]) -> list[Any]:
    """One row per DateSent parameter and value form: (name, kind, value, day it names)."""
    rows = []
    day = (datetime.now(UTC) - timedelta(days=3)).date()
    for name, parameter in sorted(list_parameters(spec).items()):
        if not name.startswith("DateSent"):
            continue
        kind = meaning(name, parameter["description"])
        for form, value, named in [
            ("date", day.isoformat(), day),
            ("time-ignored", f"{day.isoformat()}T00:00:30Z", day),
            ("time-ignored-late", f"{day.isoformat()}T23:59:30Z", day),
            ("zone-moves-the-day", f"{day.isoformat()}T23:30:00-02:00", day + timedelta(1)),
        ]:
            rows.append(pytest.param((name, kind, value, named), id=f"{name}-{form}"))
    return rows


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "date_row" in metafunc.fixturenames:
        from tests.contract.spec import find_spec, load_spec

        rows = date_rows(load_spec()) if find_spec() else []
        metafunc.parametrize("date_row", rows or [pytest.param(None, id="no-spec")])


def test_date_sent_filters_are_by_gmt_date(
    emulator: EmulatorServer, api: Get, spec: dict[str, Any], date_row: Any
) -> None:
    name, kind, value, named = date_row
    base = datetime.combine(named, datetime.min.time(), UTC)
    edges = {  # the seconds around the named day, GMT
        base - timedelta(seconds=1): named - timedelta(1),
        base: named,
        base + timedelta(days=1, seconds=-1): named,
        base + timedelta(days=1): named + timedelta(1),
    }
    sent = {text_at(emulator, when, f"at {when:%d %H:%M:%S}"): day for when, day in edges.items()}
    emulator.control(inbound_webhook_delay_s=600)
    emulator.inject("+15550320099", OURS, "still receiving: no date_sent")

    found = everything(api, {name: value, "PageSize": "2"})

    assert {m["sid"] for m in found} == {sid for sid, d in sent.items() if selects(kind, named, d)}


def test_every_example_of_the_description_is_a_gmt_day(
    emulator: EmulatorServer, api: Get, spec: dict[str, Any]
) -> None:
    examples = [
        (name, kind, example["value"])
        for name, p in list_parameters(spec).items()
        if name.startswith("DateSent")
        for kind in [meaning(name, p["description"])]
        for example in p.get("examples", {}).values()
    ]
    assert examples
    assert {value for _, _, value in examples} <= set(EXAMPLE_DAYS)
    sent = {}
    for day in sorted(set(EXAMPLE_DAYS.values())):
        for delta in (-1, 0, 1):
            when = datetime.combine(day + timedelta(delta), datetime.min.time(), UTC)
            sent[text_at(emulator, when + timedelta(hours=12), "old")] = day + timedelta(delta)

    for name, kind, value in examples:
        day = EXAMPLE_DAYS[value]
        found = {m["sid"] for m in everything(api, {name: value, "PageSize": "1000"})}
        assert found == {sid for sid, d in sent.items() if selects(kind, day, d)}, (name, value)


# --- order, statuses and paging --------------------------------------------------------------


def assert_twilio_order(records: list[dict[str, Any]]) -> None:
    """Not sent first (newest created first), then date_sent newest first; ties by SID."""

    def key(m: dict[str, Any]) -> tuple[int, datetime, str]:
        sent = gmt(m["date_sent"])
        created = gmt(m["date_created"])
        assert created is not None
        return (1, created, m["sid"]) if sent is None else (0, sent, m["sid"])

    assert records == sorted(records, key=key, reverse=True)


STATUS_ROWS = [
    # (status from the description's enum, has a date_sent)
    ("receiving", False),
    ("received", True),
    ("queued", False),
    ("delivered", True),
]


def test_the_list_is_date_sent_newest_first_with_unsent_first(
    emulator: EmulatorServer, api: Get, spec: dict[str, Any]
) -> None:
    statuses = spec["components"]["schemas"]["message_enum_status"]["enum"]
    assert {status for status, _ in STATUS_ROWS} <= set(statuses)
    send = {"From": OURS, "Body": "Hi"}
    delivered = httpx.post(
        emulator.base_url + MESSAGES, data={**send, "To": "+15550320001"}, auth=AUTH
    ).json()["sid"]
    now = datetime.fromtimestamp(emulator.advance(60), UTC)
    received_late = text_at(emulator, now - timedelta(seconds=30), "sent 30 s ago", 2)
    received = text_at(emulator, now, "just now", 3)
    emulator.control(inbound_webhook_delay_s=600, status_delay_ms=600_000)
    receiving = text_at(emulator, now, "webhook not called yet", 4)
    queued = httpx.post(
        emulator.base_url + MESSAGES, data={**send, "To": "+15550320005"}, auth=AUTH
    ).json()["sid"]

    one_page = api(MESSAGES, {"PageSize": "50"})["messages"]
    paged = everything(api, {"PageSize": "2"})

    assert paged == one_page
    assert_twilio_order(one_page)
    order = [m["sid"] for m in one_page]
    assert set(order[:2]) == {receiving, queued}
    assert order[2:] == [received, received_late, delivered]
    by_status = {m["status"]: m for m in one_page}
    for status, has_date_sent in STATUS_ROWS:
        assert (by_status[status]["date_sent"] is not None) is has_date_sent, status
    assert {m["status"] for m in one_page} <= set(statuses)


def test_paging_by_token_and_by_offset_keeps_the_order(emulator: EmulatorServer, api: Get) -> None:
    now = datetime.fromtimestamp(emulator.advance(0), UTC).replace(microsecond=0)
    for i, ago in enumerate([40, 0, 90, 10, 40, 70, 0, 20, 90, 60, 30]):  # shuffled, ties
        text_at(emulator, now - timedelta(seconds=ago), f"m{i}", i)
    whole = api(MESSAGES, {"PageSize": "1000"})["messages"]

    first = api(MESSAGES, {"PageSize": "4"})
    second = api(first["next_page_uri"])
    third = api(second["next_page_uri"])
    back = api(third["previous_page_uri"])
    offset = api(MESSAGES, {"PageSize": "4", "Page": "1"})

    assert_twilio_order(whole)
    assert [m["sid"] for p in (first, second, third) for m in p["messages"]] == [
        m["sid"] for m in whole
    ]
    assert third["next_page_uri"] is None
    assert back["messages"] == second["messages"] == offset["messages"]
    assert (second["page"], second["start"], second["end"]) == (1, 4, 7)
