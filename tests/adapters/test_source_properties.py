"""Property: whatever bytes a CSV extract holds, the sync ends cleanly, on SQLite and PostgreSQL.

Hypothesis writes ``people.csv`` and ``phones.csv`` (valid-looking rows spoiled with NUL, CR,
LF, quotes, other controls, huge fields, missing or extra cells, bytes that are not UTF-8, a
cut-off last line, or plain random bytes) and runs the real sync on a database that already
holds a college. The outcome is always one of:

* a clean refusal: :class:`SourceError` or :class:`SyncRefused` with a message, nothing
  changed in the database, and the SyncRun recorded as failed or refused; or
* success: every record of each file was either applied or quarantined (the counts add up),
  the quarantine is stored with the run, and everything stored is clean text.

Never another exception, never a partial apply.
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, text
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, col

from adapters.sis.base import SourceError
from adapters.sis.csv_source import CsvSource
from domain.fields import problem, rule_for
from domain.sync import SyncRefused
from flows.sis_sync import run_sync
from models.db import make_engine
from models.people import Person, PhoneNumber
from models.sync import QuarantinedRow, SyncRun
from nudge.settings import Settings
from tests.helpers import PEOPLE_COLUMNS, PHONE_COLUMNS, phone, staff, student, write_extract

IDS = ["A1", *(f"S{i}" for i in range(8))]

#: Cell values: plausible, odd but fine, and hostile (any character, huge, quotes, breaks).
cells = st.one_of(
    st.sampled_from(["", "Ana", "García", "O'Brien", "Zoë\u00a0Ann", " padded ", "a,b", 'say "hi"',
                     "x;y", "Li\r\nBcc: x", "Bo\x00", "\x1b[2J", "\u2028", "\t", "😀"]),
    st.text(max_size=8),  # any code point but surrogates: controls, breaks, quotes included
    st.sampled_from([65, 201, 4_001, 10_001, 131_073, 200_000]).map(lambda n: "x" * n),
)  # fmt: skip
people_rows = st.fixed_dictionaries(
    {
        "person_id": st.one_of(st.sampled_from(IDS), cells),
        "role": st.one_of(st.sampled_from(["student", "staff", "Staff", "alumni"]), cells),
        "first_name": cells,
        "last_name": cells,
        "email": st.one_of(st.just("a@college.edu"), cells),
        "status": st.one_of(st.sampled_from(["active", "A", "inactive", "maybe"]), cells),
        "tags": cells,
    }
)
phone_rows = st.fixed_dictionaries(
    {
        "person_id": st.one_of(st.sampled_from(IDS), cells),
        "phone_type": st.one_of(st.sampled_from(["CELL", "PR", "PAR", "ß" * 20]), cells),
        "number": st.one_of(st.sampled_from(["(212) 555-0100", "+44 20 7946 0958", "N/A"]), cells),
        "primary": st.one_of(st.sampled_from(["Y", "N", ""]), cells),
    }
)
#: Byte-level damage: (where, as a share of the file; what is inserted there).
damage = st.lists(
    st.tuples(
        st.floats(0, 1),
        st.sampled_from(
            [b"\x00", b"\r", b"\n", b'"', b",", b"\xe9", b"\xff\xfe", b"\xc3", b"\x85"]
        ),
    ),
    max_size=3,
)


def seeded_people() -> list[dict[str, str]]:
    """The college the database holds before each example (and its phones, below)."""
    return [staff("A1"), *(student(f"S{i}") for i in range(8))]


def seeded_phones() -> list[dict[str, str]]:
    return [phone(pid, f"(212) 555-{1000 + n:04d}") for n, pid in enumerate(IDS)]


@st.composite
def csv_file(
    draw: st.DrawFn,
    columns: list[str],
    seeded: list[dict[str, str]],
    rows: st.SearchStrategy[dict[str, str]],
) -> bytes:
    """One CSV file: mostly the seeded rows again (some spoiled) plus random ones, sometimes
    ragged; then byte-level damage, a cut-off end, a missing column, or no CSV at all."""
    if draw(st.integers(0, 29)) == 0:
        return draw(st.binary(max_size=300))  # not a CSV at all
    header = list(columns)
    if draw(st.integers(0, 19)) == 0:
        header.remove(draw(st.sampled_from(header)))
    body = []
    for row in seeded:
        if draw(st.integers(0, 3)) == 0:  # spoil one cell of a row the database knows
            row = {**row, draw(st.sampled_from(columns)): draw(cells)}
        body.append(row)
    body = draw(st.permutations([*body, *draw(st.lists(rows, max_size=4))]))
    head = io.StringIO()
    csv.writer(head).writerow(header)
    out = io.StringIO()
    writer = csv.writer(out)
    for row in body:
        values = [row.get(c, "") for c in header]
        shape = draw(st.integers(0, 14))
        if shape == 0:
            values.pop()
        elif shape == 1:
            values.append("extra")
        writer.writerow(values)
    data = out.getvalue().encode("utf-8")
    for where, inserted in draw(damage):
        at = int(where * len(data))
        data = data[:at] + inserted + data[at:]
    if draw(st.integers(0, 4)) == 0:
        data = data[: -draw(st.integers(1, 12))]  # a cut-off last line
    if draw(st.integers(0, 29)) == 0:
        return draw(damage_header(head.getvalue().encode())) + data
    return head.getvalue().encode() + data


@st.composite
def damage_header(draw: st.DrawFn, header: bytes) -> bytes:
    where, inserted = draw(damage.filter(bool))[0]
    at = int(where * len(header))
    return header[:at] + inserted + header[at:]


def records(data: bytes) -> int | None:
    """How many non-blank records after the header the csv module sees (None: no header)."""
    text_ = codecs.decode(data, "utf-8-sig", "surrogateescape")
    rows = [r for r in csv.reader(io.StringIO(text_, newline="")) if r]
    return len(rows) - 1 if rows else None


def snapshot(engine: Engine) -> dict[str, Any]:
    with Session(engine) as s:
        people = s.exec(select(Person).order_by(col(Person.id))).scalars().all()
        phones = s.exec(select(PhoneNumber).order_by(col(PhoneNumber.id))).scalars().all()
        return {
            "people": [p.model_dump() for p in people],
            "phones": [p.model_dump() for p in phones],
        }


@dataclass
class Database:
    """A fresh database per example, seeded with a college of nine people."""

    make: Callable[[], tuple[Settings, Engine]]


@pytest.fixture
def database(db_url: str, tmp_path: Path) -> Iterator[Database]:
    counter = itertools.count()
    seed = write_extract(tmp_path / "seed", seeded_people(), seeded_phones())
    engines: list[Engine] = []

    def make() -> tuple[Settings, Engine]:
        for engine in engines:
            engine.dispose()
        if db_url.startswith("sqlite"):
            url = f"sqlite:///{tmp_path / f'example-{next(counter)}.db'}"
        else:
            url = db_url
        engine = make_engine(url)
        engines.append(engine)
        if url.startswith("sqlite"):
            SQLModel.metadata.create_all(engine)
        else:
            names = ", ".join(f'"{t.name}"' for t in SQLModel.metadata.sorted_tables)
            with engine.begin() as conn:
                conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        config = Settings(
            _env_file=None,
            database_url=url,
            outbox_dir=tmp_path / "outbox",
            report_dir=tmp_path / "reports",
            sync_workers=1,
        )
        run_sync(seed, settings=config)
        return config, engine

    yield Database(make)
    for engine in engines:
        engine.dispose()


def assert_clean(engine: Engine) -> None:
    """Everything the sync stored from the extract passes the field rules."""
    with Session(engine) as s:
        for person in s.exec(select(Person)).scalars():
            for name in ("sis_id", "first_name", "last_name", "email", "status"):
                value = getattr(person, name)
                key = "person_id" if name == "sis_id" else name
                assert value is None or problem(key, value, rule_for(key)) is None, (name, value)
        for number in s.exec(select(PhoneNumber)).scalars():
            assert problem("number", number.raw, rule_for("number")) is None


@settings(
    # 40 examples per database keep CI at ~25 s; NUDGE_PROPERTY_EXAMPLES=2000 hunts harder.
    max_examples=int(os.environ.get("NUDGE_PROPERTY_EXAMPLES", "40")),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    people=csv_file(PEOPLE_COLUMNS, seeded_people(), people_rows),
    phones=csv_file(PHONE_COLUMNS, seeded_phones(), phone_rows),
)
def test_any_csv_extract_is_refused_cleanly_or_applied_with_every_row_accounted_for(
    database: Database, tmp_path_factory: pytest.TempPathFactory, people: bytes, phones: bytes
) -> None:
    folder = tmp_path_factory.mktemp("extract")
    (folder / "people.csv").write_bytes(people)
    (folder / "phones.csv").write_bytes(phones)
    config, engine = database.make()
    before = snapshot(engine)

    extract, source_error = attempt(CsvSource(folder).read)
    assert source_error is None or isinstance(source_error, SourceError), repr(source_error)
    if extract is not None:
        by_file = {"people.csv": 0, "phones.csv": 0}
        for q in extract.quarantined:
            by_file[q.file] += 1
            assert q.reason and q.line >= 2
        assert len(extract.people) + by_file["people.csv"] == records(people)
        assert len(extract.phones) + by_file["phones.csv"] == records(phones)

    stats, error = attempt(lambda: run_sync(f"csv:{folder}", settings=config))
    # What the examples exercised (pytest --hypothesis-show-statistics).
    event(f"outcome: {type(error).__name__ if error else 'applied'}")
    if extract is not None:
        n = len(extract.quarantined)
        event(f"quarantined rows: {n if n < 5 else '5+'}")
    if error is not None:
        # A clean refusal: the source's own, or a guard's; a message; nothing applied.
        assert isinstance(error, SourceError | SyncRefused), repr(error)
        assert source_error is None or type(error) is type(source_error)
        assert str(error)
        assert snapshot(engine) == before
        with Session(engine) as s:
            run = s.exec(select(SyncRun).order_by(col(SyncRun.id).desc())).scalars().first()
            assert run is not None and run.status in ("failed", "refused") and run.error
        return

    assert extract is not None, (
        f"the source refused the extract, the sync applied it: {source_error}"
    )
    assert stats is not None and stats["rows_quarantined"] == len(extract.quarantined)
    with Session(engine) as s:
        run = s.exec(select(SyncRun).order_by(col(SyncRun.id).desc())).scalars().first()
        assert run is not None and run.status == "succeeded"
        stored = s.exec(
            select(func.count())
            .select_from(QuarantinedRow)
            .where(QuarantinedRow.sync_run_id == run.id)
        ).scalar_one()
        assert stored == len(extract.quarantined)
        people_now = {p.sis_id: p for p in s.exec(select(Person)).scalars()}
    for person in extract.people:
        assert people_now[person.person_id].role == person.role
        if "first_name" in person.fields:
            assert people_now[person.person_id].first_name == person.fields["first_name"]
    assert_clean(engine)


T = TypeVar("T")


def attempt(action: Callable[[], T]) -> tuple[T | None, Exception | None]:
    """Run ``action``; its result, or the exception it raised (any: the property judges)."""
    try:
        return action(), None
    except Exception as exc:  # every exception is an outcome to judge
        return None, exc
