"""One bad field quarantines its row and the rest of the sync applies: the whole sync, on
SQLite and PostgreSQL, from a CSV extract and from the sandbox Ethos API."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from flows.sis_sync import run_sync
from models.people import Person, PhoneNumber
from models.sync import QuarantinedRow, SyncRun
from nudge.settings import Settings
from sandbox.ethos import EthosSandbox, EthosSandboxConfig, run_ethos_sandbox
from tests.helpers import phone, staff, student, write_extract

BIG = 200 * 1024  # over the csv module's default field limit (128 KiB)
KEY = "e2e-key"


def extract_rows() -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """Six people (A1 and S0..S4), each with one cell phone; S2 is the one cases spoil."""
    people = [staff("A1"), *(student(f"S{i}") for i in range(5))]
    phones = [phone(p["person_id"], f"(212) 555-{1000 + n:04d}") for n, p in enumerate(people)]
    return people, phones


def stored(engine: Engine) -> tuple[dict[str, Person], list[QuarantinedRow], SyncRun]:
    with Session(engine) as s:
        people = {p.sis_id: p for p in s.exec(select(Person)).scalars()}
        rows = list(s.exec(select(QuarantinedRow).order_by(col(QuarantinedRow.id))).scalars())
        [run] = s.exec(select(SyncRun)).scalars().all()
        return people, rows, run


def phone_count(engine: Engine) -> int:
    with Session(engine) as s:
        return len(s.exec(select(PhoneNumber)).scalars().all())


# (how to spoil the extract, quarantined rows as (file, line, person id, reason))
Spoil = Callable[[list[dict[str, str]], list[dict[str, str]]], None]


def in_person(field: str, value: str) -> Spoil:
    def spoil(people: list[dict[str, str]], _phones: list[dict[str, str]]) -> None:
        people[3][field] = value

    return spoil


def in_phone(value: str) -> Spoil:
    def spoil(_people: list[dict[str, str]], phones: list[dict[str, str]]) -> None:
        phones[3]["number"] = value

    return spoil


#: Written as the single byte 0xE9 (a cp1252 "é"), which is not UTF-8.
BYTE_E9 = "<byte E9>"


PHONE_OF_S2 = ("phones.csv", 5, "S2", "person 'S2' was quarantined (people.csv line 5)")

CSV_CASES = [
    pytest.param(in_person("first_name", "Ana\x00"), [("people.csv", 5, "S2", "first_name contains a control character (NUL)"), PHONE_OF_S2], id="nul-in-a-name"),
    pytest.param(in_person("last_name", "Li\r\nBcc: x@evil.example"), [("people.csv", 5, "S2", "last_name contains a line break (CR); the row runs from line 5 to line 6"), PHONE_OF_S2], id="crlf-in-a-name"),
    pytest.param(in_person("first_name", "Ana\x1b[31m"), [("people.csv", 5, "S2", "first_name contains a control character (ESC)"), PHONE_OF_S2], id="other-c0-in-a-name"),
    pytest.param(in_person("program", "x" * BIG), [("people.csv", 5, "S2", f"program is {BIG:,} characters, more than 200"), PHONE_OF_S2], id="200KiB-field"),
    pytest.param(in_person("first_name", f"Jos{BYTE_E9}"), [("people.csv", 5, "S2", "first_name contains a byte that could not be decoded (0xe9); pass --encoding (for example --encoding cp1252) if the file is not UTF-8"), PHONE_OF_S2], id="undecodable-bytes-mid-file"),
    pytest.param(in_phone("212\x00555"), [("phones.csv", 5, "S2", "number contains a control character (NUL)")], id="nul-in-a-number"),
]  # fmt: skip


@pytest.mark.parametrize(("spoil", "quarantined"), CSV_CASES)
def test_csv_a_bad_field_quarantines_its_row_and_the_rest_applies(
    tmp_path: Path,
    settings: Settings,
    engine: Engine,
    spoil: Spoil,
    quarantined: list[tuple[str, int, str, str]],
) -> None:
    people, phones = extract_rows()
    spoil(people, phones)
    source = write_extract(tmp_path / "x", people, phones)
    people_csv = tmp_path / "x" / "people.csv"
    people_csv.write_bytes(people_csv.read_bytes().replace(BYTE_E9.encode(), b"\xe9"))

    stats = run_sync(source, settings=settings)

    person_quarantined = quarantined[0][0] == "people.csv"
    assert stats["rows_quarantined"] == len(quarantined)
    assert stats["people_created"] == (5 if person_quarantined else 6)
    found, rows, run = stored(engine)
    assert run.status == "succeeded"
    assert [(q.file, q.line, q.person_sis_id, q.reason) for q in rows] == quarantined
    assert sorted(found) == (
        ["A1", "S0", "S1", "S3", "S4"]
        if person_quarantined
        else ["A1", "S0", "S1", "S2", "S3", "S4"]
    )
    assert phone_count(engine) == 5
    for person in found.values():  # nothing that was not clean got in
        assert (person.first_name or "").isprintable() and (person.last_name or "").isprintable()


@pytest.fixture
def ethos() -> Iterator[Callable[[list[dict[str, Any]]], str]]:
    """Serve Ethos persons on loopback for the test."""
    contexts: list[Any] = []

    def start(persons: list[dict[str, Any]]) -> str:
        context = run_ethos_sandbox(EthosSandbox(persons, EthosSandboxConfig(api_key=KEY)))
        contexts.append(context)
        return context.__enter__()

    yield start
    for context in reversed(contexts):
        context.__exit__(None, None, None)


def ethos_person(n: int, **names: str) -> dict[str, Any]:
    name = {"type": {"category": "legal"}, "firstName": f"First{n}", "lastName": "Doe", **names}
    return {
        "id": f"00000000-0000-0000-0000-{n:012d}",
        "names": [name],
        "credentials": [{"type": "bannerId", "value": f"B{n}"}],
        "roles": [{"role": "student"}],
        "phones": [{"type": {"phoneType": "mobile"}, "number": f"(212) 555-{1000 + n:04d}"}],
    }


ETHOS_CASES = [
    pytest.param({"names": [{"firstName": "Ana\x00", "lastName": "Doe"}]}, "names[0].firstName contains a control character (NUL)", True, id="nul-in-a-name"),
    pytest.param({"names": [{"firstName": "Ana", "lastName": "Li\r\nBcc: x"}]}, "names[0].lastName contains a line break (CR)", True, id="crlf-in-a-name"),
    pytest.param({"names": [{"firstName": "Ana\x07", "lastName": "Doe"}]}, "names[0].firstName contains a control character (BEL)", True, id="other-c0-in-a-name"),
    pytest.param({"names": [{"firstName": "x" * BIG, "lastName": "Doe"}]}, f"names[0].firstName is {BIG:,} characters, more than 200", True, id="200KiB-field"),
    pytest.param({"names": [{"firstName": "Jos\udce9", "lastName": "Doe"}]}, "the record contains invalid Unicode (a lone surrogate, U+DCE9)", True, id="invalid-unicode"),
    pytest.param({"phones": [{"type": {"phoneType": "mobile"}, "number": "212\x00555"}]}, "phones[0].number contains a control character (NUL)", False, id="nul-in-a-number"),
]  # fmt: skip


@pytest.mark.parametrize(("bad", "reason", "whole_record"), ETHOS_CASES)
def test_ethos_a_bad_field_quarantines_its_record_and_the_rest_applies(
    settings: Settings,
    engine: Engine,
    ethos: Callable[[list[dict[str, Any]]], str],
    bad: dict[str, Any],
    reason: str,
    whole_record: bool,
) -> None:
    persons = [ethos_person(n) for n in range(6)]
    persons[2].update(bad)
    url = ethos(persons)
    live = settings.model_copy(update={"ethos_api_key": SecretStr(KEY), "ethos_page_size": 4})

    stats = run_sync(f"ethos:{url}", settings=live)

    assert stats["rows_quarantined"] == 1
    assert stats["people_created"] == (5 if whole_record else 6)
    found, rows, run = stored(engine)
    assert run.status == "succeeded"
    assert [(q.file, q.line, q.person_sis_id, q.reason) for q in rows] == [
        ("ethos:persons", 3, "B2", reason)
    ]
    assert rows[0].raw["page"] == "1"
    assert ("B2" in found) is not whole_record
    assert len(found) == (5 if whole_record else 6)
    assert phone_count(engine) == 5
