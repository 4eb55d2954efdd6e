"""``nudge away set|list|clear``: exact output, the stored absence, and refusals naming what
was wrong (exit 2). On SQLite and PostgreSQL (``cli_db``)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlmodel import Session
from typer.testing import CliRunner

from models.away import StaffAway
from models.people import Person
from nudge.cli.main import app

MESSAGE = "I'm away until Monday; for urgent help call 555-0100."
NY = ZoneInfo("America/New_York")


@pytest.fixture
def people(cli_db: Path, engine: Engine) -> Engine:
    with Session(engine) as s:
        s.add(Person(sis_id="E1001", role="staff", first_name="Tess", last_name="Adams"))
        s.add(Person(sis_id="E1002", role="staff", first_name="Omar", last_name="Reyes"))
        s.add(Person(sis_id="S1", role="student", first_name="Ana", last_name="Li"))
        s.commit()
    return engine


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["away", *args])
    return result.exit_code, result.stdout, result.stderr


def stored(engine: Engine) -> list[StaffAway]:
    with Session(engine) as s:
        return list(s.execute(select(StaffAway).order_by(StaffAway.id)).scalars())  # type: ignore[arg-type]


def test_set_list_clear_with_exact_output(people: Engine) -> None:
    code, out, err = run(
        "set", "E1001", "--from", "2030-12-02", "--until", "2030-12-06", "--message", MESSAGE
    )
    assert (code, err) == (0, "")
    assert out == (
        "E1001 (Tess Adams) is away from 2030-12-02 00:00 EST through 2030-12-06 23:59 EST.\n"
        "Students who text them get, once per absence:\n"
        f"    {MESSAGE}\n"
    )
    [away] = stored(people)
    # Through the end of the last day in the institution's zone, stored in UTC.
    assert (away.starts_at, away.ends_at) == (
        datetime(2030, 12, 2, 5, 0, tzinfo=UTC),
        datetime(2030, 12, 7, 5, 0, tzinfo=UTC) - timedelta(microseconds=1),
    )
    assert (away.message, away.cleared_at) == (MESSAGE, None)
    assert away.created_by is not None and away.created_by.startswith("cli")

    code, out, _ = run("list")
    assert (code, out) == (
        0,
        "E1001 (Tess Adams): 2030-12-02 00:00 EST through 2030-12-06 23:59 EST (upcoming)\n"
        f"    {MESSAGE}\n",
    )
    code, out, _ = run("list", "--json")
    assert code == 0
    [listed] = json.loads(out)["absences"]
    assert {k: v for k, v in listed.items() if k != "created_at"} == {
        "id": away.id,
        "staff_id": "E1001",
        "staff_name": "Tess Adams",
        "starts_at": "2030-12-02T00:00:00-05:00",
        "ends_at": "2030-12-06T23:59:59.999999-05:00",
        "away_now": False,
        "message": MESSAGE,
        "created_by": away.created_by,
    }

    assert run("clear", "E1001") == (0, "E1001 is back: away message cleared\n", "")
    assert run("list") == (0, "nobody is away\n", "")
    assert run("list", "--json")[1] == '{"absences": []}\n'
    assert run("clear", "E1001", "--json") == (0, '{"cleared": 0, "staff_id": "E1001"}\n', "")
    assert run("clear", "E1001") == (0, "E1001 had no away message\n", "")
    [away] = stored(people)
    assert away.cleared_at is not None


def test_from_defaults_to_now_and_a_new_set_replaces_the_current_absence(
    people: Engine,
) -> None:
    until = (datetime.now(NY) + timedelta(days=3)).date()
    before = datetime.now(UTC).replace(microsecond=0)
    code, out, _ = run("set", "E1001", "--until", until.isoformat(), "--message", MESSAGE, "--json")
    after = datetime.now(UTC)
    first = json.loads(out)
    assert code == 0 and first["replaced"] == [] and first["away_now"] is True
    assert before <= datetime.fromisoformat(first["starts_at"]) <= after
    end_of_day = datetime.combine(until + timedelta(days=1), time(0), tzinfo=NY)
    assert first["ends_at"] == (end_of_day - timedelta(microseconds=1)).isoformat()

    code, out, _ = run(
        "set", "E1001", "--until", until.isoformat(), "--message", "Back on Monday.", "--json"
    )
    second = json.loads(out)
    assert code == 0 and second["id"] != first["id"]
    assert second["replaced"] == [
        {"id": first["id"], "starts_at": first["starts_at"], "ends_at": first["ends_at"]}
    ]
    code, out, _ = run("set", "E1001", "--until", until.isoformat(), "--message", "Again.")
    assert code == 0 and out.splitlines()[-1] == (
        f"This replaces the absence from {_local(second['starts_at'])} through "
        f"{_local(second['ends_at'])}."
    )
    # One absence at a time: only the last is listed (another staff member's is separate).
    later = (until + timedelta(days=1)).isoformat()
    assert run("set", "E1002", "--until", later, "--message", "Out.")[0] == 0
    code, out, _ = run("list", "--json")
    assert [(a["staff_id"], a["message"]) for a in json.loads(out)["absences"]] == [
        ("E1001", "Again."),
        ("E1002", "Out."),
    ]
    assert [a.cleared_at is None for a in stored(people)] == [False, False, True, True]


def _local(iso: str) -> str:
    return datetime.fromisoformat(iso).astimezone(NY).strftime("%Y-%m-%d %H:%M %Z")


@pytest.mark.parametrize(
    ("args", "error"),
    [
        pytest.param(
            ["set", "E9999", "--until", "2030-12-06", "--message", MESSAGE],
            "no staff member with SIS id 'E9999'",
            id="unknown-staff",
        ),
        pytest.param(
            ["set", "S1", "--until", "2030-12-06", "--message", MESSAGE],
            "no staff member with SIS id 'S1'",
            id="a-student-is-not-staff",
        ),
        pytest.param(
            ["clear", "E9999"], "no staff member with SIS id 'E9999'", id="clear-unknown-staff"
        ),
        pytest.param(
            ["set", "E1001", "--until", "2020-01-01", "--message", MESSAGE],
            "--until 2020-01-01 is in the past (2020-01-01 23:59 EST): the absence would "
            "already be over",
            id="until-in-the-past",
        ),
        pytest.param(
            ["set", "E1001", "--from", "2030-12-06", "--until", "2030-12-01", "--message", MESSAGE],
            "--until 2030-12-01 (2030-12-01 23:59 EST) is not after --from 2030-12-06 "
            "(2030-12-06 00:00 EST)",
            id="until-before-from",
        ),
        pytest.param(
            ["set", "E1001", "--until", "2030-13-01", "--message", MESSAGE],
            "--until '2030-13-01' is not a date: use YYYY-MM-DD (or YYYY-MM-DDTHH:MM), in "
            "America/New_York",
            id="not-a-date",
        ),
        pytest.param(
            ["set", "E1001", "--from", "soon", "--until", "2030-12-01", "--message", MESSAGE],
            "--from 'soon' is not a date: use YYYY-MM-DD (or YYYY-MM-DDTHH:MM), in "
            "America/New_York",
            id="from-not-a-date",
        ),
        pytest.param(
            ["set", "E1001", "--until", "2030-12-06", "--message", "   "],
            "the away message is empty: write what students should know while you are away",
            id="empty-message",
        ),
        pytest.param(
            ["set", "E1001", "--until", "2030-12-06", "--message", "x" * 460],
            "the away message is 4 SMS segments (460 characters, GSM-7); at most 3 are "
            "allowed (459 characters, or 201 with a character outside the GSM alphabet such "
            "as an emoji or a curly quote)",
            id="four-segments",
        ),
        pytest.param(
            ["set", "E1001", "--until", "2030-12-06", "--message", "I’m away" + "x" * 194],
            "the away message is 4 SMS segments (202 characters, UCS-2); at most 3 are "
            "allowed (459 characters, or 201 with a character outside the GSM alphabet such "
            "as an emoji or a curly quote)",
            id="four-ucs2-segments",
        ),
    ],
)
def test_refusals_exit_2_naming_what_was_wrong(people: Engine, args: list[str], error: str) -> None:
    assert run(*args) == (2, "", f"error: {error}\n")
    code, out, _ = run(*args, "--json")
    assert (code, json.loads(out)) == (2, {"error": error})
    assert stored(people) == []


def test_the_longest_message_allowed_is_three_segments(people: Engine) -> None:
    for body in ("x" * 459, "I’m away" + "x" * 193):
        code, out, _ = run("set", "E1001", "--until", "2030-12-06", "--message", body, "--json")
        assert (code, json.loads(out)["message"]) == (0, body)
