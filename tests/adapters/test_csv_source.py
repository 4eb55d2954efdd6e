"""The ``csv:`` source: what it reads, what it quarantines, and what it refuses whole."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from pydantic import SecretStr

from adapters.sis import open_source
from adapters.sis.base import PERSON_FIELDS, SourceError, SourceFormatError
from adapters.sis.csv_source import CsvSource
from adapters.sis.csv_table import FIELD_HARD_CAP
from adapters.sis.ethos_config import EthosConfig, RetryPolicy
from adapters.sis.ethos_source import EthosSource
from nudge.settings import Settings
from nudge.wiring import sis_source

PEOPLE_HEADER = (
    "person_id,role,first_name,last_name,preferred_name,email,status,program,degree,"
    "risk_level,tags,courses,advisor_id,department,title,roles"
)
PHONES_HEADER = "person_id,phone_type,number,country,primary,updated_at"

STUDENT = "A001,student,Ana,García,Annie,ana@example.edu,Active,Nursing,ADN,High,pell; first-gen;,MAT-101;ENG-101,E001,,,"
STAFF = 'E001,Staff,Sam,Lee,,sam@example.edu,A,,,,,,,Advising,"Director, Advising",Advisor; Texting'


def write(folder: Path, people: list[str], phones: list[str], *,
          people_header: str = PEOPLE_HEADER, phones_header: str = PHONES_HEADER,
          encoding: str = "utf-8", bom: bool = False) -> Path:  # fmt: skip
    """Write an extract exactly as given (CRLF line ends, as SIS exports often are)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, header, rows in (
        ("people.csv", people_header, people),
        ("phones.csv", phones_header, phones),
    ):
        data = "\r\n".join([header, *rows]).encode(encoding) + b"\r\n"
        (folder / name).write_bytes((b"\xef\xbb\xbf" if bom else b"") + data)
    return folder


def test_reads_people_and_phones_with_every_field(tmp_path: Path) -> None:
    folder = write(
        tmp_path,
        [STAFF, STUDENT],
        [
            "A001,CELL,(212) 349-1234,,Y,2024-03-05",
            "A001,PAR, +44 20 7946 0958 ,gb,no,2024-03-05T10:30:00+01:00",
            "E001,WORK,212-349-1000 x204,,,",
        ],
    )
    extract = CsvSource(folder).read()

    assert extract.source == f"csv:{folder}"
    assert extract.quarantined == []
    assert extract.provided_fields == frozenset(PERSON_FIELDS)
    staff, student = extract.people
    assert (staff.line, staff.person_id, staff.role) == (2, "E001", "staff")
    assert staff.fields["title"] == "Director, Advising"
    assert staff.fields["roles"] == ["Advisor", "Texting"]
    assert staff.fields["status"] == "active"
    assert (student.line, student.role) == (3, "student")
    assert student.fields == {
        "first_name": "Ana",
        "last_name": "García",
        "preferred_name": "Annie",
        "email": "ana@example.edu",
        "status": "active",
        "program": "Nursing",
        "degree": "ADN",
        "risk_level": "high",
        "tags": ["pell", "first-gen"],
        "courses": ["MAT-101", "ENG-101"],
        "advisor_id": "E001",
        "department": None,
        "title": None,
        "roles": [],
    }
    cell, parent, work = extract.phones
    assert (cell.line, cell.type_code, cell.number, cell.primary) == (
        2,
        "CELL",
        "(212) 349-1234",
        True,
    )
    assert cell.updated_at == datetime(2024, 3, 5, tzinfo=UTC)
    assert cell.country is None
    # The number is handed over exactly as received, spaces included; the country is normalised.
    assert (parent.number, parent.country, parent.primary) == (" +44 20 7946 0958 ", "GB", False)
    assert parent.updated_at == datetime(2024, 3, 5, 9, 30, tzinfo=UTC)
    assert (work.number, work.primary, work.updated_at) == ("212-349-1000 x204", False, None)


def test_headers_are_trimmed_and_case_insensitive(tmp_path: Path) -> None:
    folder = write(
        tmp_path,
        ["A001,student,Ana,Ruiz,Active"],
        ["A001,CELL,2123491234"],
        people_header=" Person_ID , ROLE,First_Name ,LAST_NAME,Status ",
        phones_header="PERSON_ID,Phone_Type , Number",
    )
    extract = CsvSource(folder).read()
    assert [p.person_id for p in extract.people] == ["A001"]
    assert [p.number for p in extract.phones] == ["2123491234"]


def test_optional_columns_absent_are_not_provided(tmp_path: Path) -> None:
    folder = write(
        tmp_path,
        ["A001,student,Ana,Ruiz,active,ana@example.edu"],
        ["A001,CELL,2123491234"],
        people_header="person_id,role,first_name,last_name,status,email",
        phones_header="person_id,phone_type,number",
    )
    extract = CsvSource(folder).read()
    assert extract.provided_fields == {"first_name", "last_name", "status", "email"}
    assert set(extract.people[0].fields) == {"first_name", "last_name", "status", "email"}
    phone = extract.phones[0]
    assert (phone.country, phone.primary, phone.updated_at) == (None, False, None)


def test_a_utf8_bom_is_not_part_of_the_header(tmp_path: Path) -> None:
    folder = write(tmp_path, [STUDENT], ["A001,CELL,2123491234,,Y,"], bom=True)
    extract = CsvSource(folder).read()
    assert [p.person_id for p in extract.people] == ["A001"]
    assert len(extract.phones) == 1


def test_a_row_that_is_not_utf8_is_quarantined_naming_the_field_and_byte(tmp_path: Path) -> None:
    folder = write(
        tmp_path,
        ["A001,student,Ana,Ruiz,Active", "A002,student,José,Núñez,Active"],
        ["A001,CELL,2123491234", "A002,CELL,2123491235"],
        people_header="person_id,role,first_name,last_name,status",
        phones_header="person_id,phone_type,number",
        encoding="cp1252",
    )
    extract = CsvSource(folder).read()
    assert [p.person_id for p in extract.people] == ["A001"]
    assert [p.person_id for p in extract.phones] == ["A001"]
    bad, phone = extract.quarantined
    assert (bad.file, bad.line, bad.person_id) == ("people.csv", 3, "A002")
    assert bad.reason == (
        "first_name contains a byte that could not be decoded (0xe9); "
        "pass --encoding (for example --encoding cp1252) if the file is not UTF-8"
    )
    assert bad.raw["first_name"] == "Jos\\xe9"  # storable: the byte, shown as text
    assert (phone.file, phone.line) == ("phones.csv", 3)


def test_a_header_that_is_not_utf8_refuses_the_file_with_its_position(tmp_path: Path) -> None:
    folder = write(
        tmp_path,
        ["A001,student,Ana,Ruiz,Active"],
        ["A001,CELL,2123491234"],
        people_header="person_id,role,first_name,last_name,status,año",
        phones_header="person_id,phone_type,number",
        encoding="cp1252",
    )
    with pytest.raises(SourceFormatError) as caught:
        CsvSource(folder).read()
    message = str(caught.value)
    offset = (folder / "people.csv").read_bytes().index(b"\xf1")
    assert message.startswith("people.csv: not valid UTF-8: byte 0xf1")
    assert f"offset {offset} (line 1, column {offset + 1})" in message
    assert "--encoding" in message


def test_a_file_that_is_not_utf8_is_read_with_the_encoding_given(tmp_path: Path) -> None:
    folder = write(
        tmp_path,
        ["A002,student,José,Núñez,Active"],
        ["A002,CELL,2123491234"],
        people_header="person_id,role,first_name,last_name,status",
        phones_header="person_id,phone_type,number",
        encoding="cp1252",
    )
    extract = CsvSource(folder, encoding="cp1252").read()
    assert (extract.people[0].fields["first_name"], extract.people[0].fields["last_name"]) == (
        "José",
        "Núñez",
    )


def test_an_unknown_encoding_is_refused_up_front() -> None:
    with pytest.raises(SourceFormatError, match="unknown encoding 'klingon'"):
        CsvSource("anywhere", encoding="klingon")


@pytest.mark.parametrize(
    ("people_header", "phones_header", "file", "missing"),
    [
        pytest.param(
            "person_id,first_name,last_name",
            PHONES_HEADER,
            "people.csv",
            "role, status",
            id="people-without-role-and-status",
        ),
        pytest.param(
            PEOPLE_HEADER,
            "person_id,type,number",
            "phones.csv",
            "phone_type",
            id="phones-without-phone_type",
        ),
    ],
)
def test_missing_required_columns_refuse_the_whole_extract(
    tmp_path: Path, people_header: str, phones_header: str, file: str, missing: str
) -> None:
    folder = write(tmp_path, [], [], people_header=people_header, phones_header=phones_header)
    with pytest.raises(SourceFormatError) as caught:
        CsvSource(folder).read()
    assert f"{file}: missing required column(s) {missing}" in str(caught.value)


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        pytest.param("no-folder", "is not a folder", id="not-a-folder"),
        pytest.param("no-phones", "phones.csv: file not found", id="phones-file-missing"),
        pytest.param("empty", "people.csv: empty file", id="empty-people-file"),
        pytest.param("dup-column", "column 'email' appears twice", id="duplicate-column"),
    ],
)
def test_unusable_extracts_are_refused(tmp_path: Path, setup: str, message: str) -> None:
    folder = tmp_path / "extract"
    if setup != "no-folder":
        write(folder, [], [])
    if setup == "no-phones":
        (folder / "phones.csv").unlink()
    if setup == "empty":
        (folder / "people.csv").write_bytes(b"")
    if setup == "dup-column":
        write(
            folder, [], [], people_header="person_id,role,first_name,last_name,status,email,EMAIL"
        )
    with pytest.raises(SourceFormatError, match=message):
        CsvSource(folder).read()


# One row per kind of bad row: (file, the bad row, the reason the quarantine must give).
# Good rows: people A001 (line 2) and E001 (line 3); phones of A001 on lines 2 and 3.
QUARANTINE_CASES = [
    ("people.csv", "A009,student,Bo,Li,active,extra", "expected 5 fields, found 6"),
    ("people.csv", "A009,student,Bo,Li", "expected 5 fields, found 4"),
    ("people.csv", "  ,student,Bo,Li,active", "blank person_id"),
    ("people.csv", "A009,alumni,Bo,Li,active", "unknown role 'alumni' (expected student or staff)"),
    ("people.csv", "A009,student,Bo,Li,maybe", "unknown status 'maybe'"),
    ("people.csv", "A009,student,Bo,Li,", "blank status"),
    ("people.csv", "A001,student,Ana,Again,active", "duplicate person_id 'A001' (first on line 2)"),
    ("phones.csv", "A001,CELL,2123491234,,Y", "expected 6 fields, found 5"),
    ("phones.csv", ",CELL,2123491234,,Y,", "blank person_id"),
    ("phones.csv", "Z999,CELL,2123491234,,Y,", "unknown person 'Z999' (not in people.csv)"),
    ("phones.csv", "A001,CELL,2123491234,,maybe,", "bad primary flag 'maybe' (expected Y or N)"),
    ("phones.csv", "A001,CELL,2123491234,,Y,31/02/2021", "bad updated_at '31/02/2021'"),
    ("phones.csv", "A001,CELL,2123491234,USA,Y,", "bad country 'USA' (expected ISO 3166 alpha-2"),
]
QUARANTINE_IDS = [
    "people-too-many-fields", "people-too-few-fields", "people-blank-id", "people-unknown-role",
    "people-bad-status", "people-blank-status", "people-duplicate-id", "phones-too-few-fields",
    "phones-blank-id", "phones-unknown-person", "phones-bad-primary", "phones-bad-date",
    "phones-bad-country",
]  # fmt: skip


@pytest.mark.parametrize(("file", "bad_row", "reason"), QUARANTINE_CASES, ids=QUARANTINE_IDS)
def test_bad_rows_are_quarantined_with_line_and_reason(
    tmp_path: Path, file: str, bad_row: str, reason: str
) -> None:
    people = ["A001,student,Ana,Ruiz,active", "E001,staff,Sam,Lee,active"]
    phones = ["A001,CELL,2123491234,,Y,2024-01-01", "A001,PR,2123491000,,N,"]
    # The bad row goes between the good ones: line 3 of its file, and the rest still read.
    (people if file == "people.csv" else phones).insert(1, bad_row)
    folder = write(
        tmp_path, people, phones, people_header="person_id,role,first_name,last_name,status"
    )

    extract = CsvSource(folder).read()

    [row] = extract.quarantined
    assert (row.file, row.line) == (file, 3)
    assert reason in row.reason
    assert row.raw  # what the row said, for the admin who fixes it
    assert [p.person_id for p in extract.people] == ["A001", "E001"]
    assert [(p.person_id, p.type_code) for p in extract.phones] == [
        ("A001", "CELL"),
        ("A001", "PR"),
    ]
    assert [p.line for p in extract.phones] == ([2, 3] if file == "people.csv" else [2, 4])


def test_phones_of_a_quarantined_person_say_why(tmp_path: Path) -> None:
    folder = write(
        tmp_path,
        ["A001,student,Ana,Ruiz,pending"],
        ["A001,CELL,2123491234"],
        people_header="person_id,role,first_name,last_name,status",
        phones_header="person_id,phone_type,number",
    )
    extract = CsvSource(folder).read()
    reasons = [(q.file, q.line, q.reason) for q in extract.quarantined]
    assert reasons == [
        ("people.csv", 2, "unknown status 'pending'"),
        ("phones.csv", 2, "person 'A001' was quarantined (people.csv line 2)"),
    ]


def test_a_quoted_newline_keeps_later_line_numbers_right(tmp_path: Path) -> None:
    folder = write(
        tmp_path,
        [
            'E001,staff,Sam,Lee,active,"Director,\r\nAdvising"',
            "E002,staff,Kim,Ng,bogus,x",
            "E003,staff,Jo,Ek,active,Dean",
        ],
        [],
        people_header="person_id,role,first_name,last_name,status,title",
    )
    extract = CsvSource(folder).read()
    # A title is one line: the row is quarantined from the line it starts on.
    assert [(q.line, q.reason) for q in extract.quarantined] == [
        (2, "title contains a line break (CR); the row runs from line 2 to line 3"),
        (4, "unknown status 'bogus'"),
    ]
    assert [(p.line, p.person_id) for p in extract.people] == [(5, "E003")]


@pytest.mark.parametrize(
    ("cell", "status"),
    [
        ("Active", "active"), ("A", "active"), ("enrolled", "active"), (" CURRENT ", "active"),
        ("Inactive", "inactive"), ("i", "inactive"), ("Withdrawn", "inactive"),
        ("graduated", "inactive"), ("Terminated", "inactive"),
    ],
    ids=lambda v: v.strip() if isinstance(v, str) else v,
)  # fmt: skip
def test_status_variants(tmp_path: Path, cell: str, status: str) -> None:
    folder = write(
        tmp_path,
        [f"A001,student,Ana,Ruiz,{cell}"],
        [],
        people_header="person_id,role,first_name,last_name,status",
    )
    assert CsvSource(folder).read().people[0].fields["status"] == status


@pytest.mark.parametrize(
    ("cell", "primary"),
    [("Y", True), ("yes", True), ("1", True), ("TRUE", True), ("N", False), ("No", False),
     ("0", False), ("false", False), ("", False), (" y ", True)],
    ids=lambda v: repr(v) if isinstance(v, str) else str(v),
)  # fmt: skip
def test_primary_flag_variants(tmp_path: Path, cell: str, primary: bool) -> None:
    folder = write(tmp_path, [STUDENT], [f"A001,CELL,2123491234,,{cell},"])
    assert CsvSource(folder).read().phones[0].primary is primary


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("2024-03-05", datetime(2024, 3, 5, tzinfo=UTC)),
        ("2024-03-05 14:22:10", datetime(2024, 3, 5, 14, 22, 10, tzinfo=UTC)),
        ("2024-03-05T14:22:10Z", datetime(2024, 3, 5, 14, 22, 10, tzinfo=UTC)),
        ("2024-03-05T14:22:10-05:00", datetime(2024, 3, 5, 19, 22, 10, tzinfo=UTC)),
        ("", None),
    ],
    ids=["date", "naive-datetime-is-utc", "zulu", "offset-converted", "blank"],
)
def test_updated_at_is_utc(tmp_path: Path, cell: str, expected: datetime | None) -> None:
    folder = write(tmp_path, [STUDENT], [f"A001,CELL,2123491234,,Y,{cell}"])
    updated = CsvSource(folder).read().phones[0].updated_at
    assert updated == expected
    if updated is not None:
        assert updated.utcoffset() == timedelta(0)
        assert updated.tzinfo in (UTC, timezone.utc)  # noqa: UP017 - either spelling is UTC


def test_free_text_and_blank_numbers_are_kept_for_the_sync_to_classify(tmp_path: Path) -> None:
    folder = write(
        tmp_path, [STUDENT], ["A001,CELL,Decline to state,,Y,", "A001,PR,,,N,", "A001,PAR,N/A,,,"]
    )
    extract = CsvSource(folder).read()
    assert [p.number for p in extract.phones] == ["Decline to state", "", "N/A"]
    assert extract.quarantined == []


def test_raw_is_the_cells_as_read_and_stable(tmp_path: Path) -> None:
    folder = write(tmp_path, [STAFF, STUDENT], ["A001,CELL, (212) 349-1234 ,,Y,2024-03-05"])
    first, second = CsvSource(folder).read(), CsvSource(folder).read()
    assert [p.raw for p in first.people] == [p.raw for p in second.people]
    assert [p.raw for p in first.phones] == [p.raw for p in second.phones]
    assert first.phones[0].raw == ("A001", "CELL", " (212) 349-1234 ", "", "Y", "2024-03-05")
    assert first.people[0].raw[-2:] == ("Director, Advising", "Advisor; Texting")


def test_raw_changes_when_a_cell_changes(tmp_path: Path) -> None:
    before = CsvSource(write(tmp_path / "a", [STUDENT], [])).read().people[0].raw
    after = CsvSource(write(tmp_path / "b", [STUDENT.replace("High", "Low")], [])).read()
    assert after.people[0].raw != before


# --- open_source ------------------------------------------------------------------------------


def test_open_source_csv(tmp_path: Path) -> None:
    write(tmp_path, [STUDENT], [])
    source = sis_source(f"csv:{tmp_path}", Settings(_env_file=None), encoding="utf-8")
    assert source.describe() == f"csv:{tmp_path}"
    assert [p.person_id for p in source.read().people] == ["A001"]


def test_open_source_ethos_takes_the_key_from_settings() -> None:
    settings = Settings(_env_file=None, ethos_api_key="k3y")
    source = sis_source("ethos:https://sis.example.edu/", settings, page_size=50)
    assert source.describe() == "ethos:https://sis.example.edu"


@pytest.mark.parametrize(
    ("spec", "encoding", "api_key", "message"),
    [
        pytest.param("sftp:/x", None, None, "unknown SIS source 'sftp:/x'", id="unknown-scheme"),
        pytest.param("/data/extract", None, None, "expected csv:PATH", id="no-scheme"),
        pytest.param("csv:", None, None, "expected csv:PATH", id="no-path"),
        pytest.param("ethos:https://sis.edu", "cp1252", "k", "csv: sources only", id="encoding-for-ethos"),
        pytest.param("ethos:https://sis.edu", None, None, "NUDGE_ETHOS_API_KEY", id="no-api-key"),
        pytest.param("ethos:sis.edu", None, "k", "not an http(s) URL", id="not-a-url"),
    ],
)  # fmt: skip
def test_open_source_refuses_bad_specs(
    spec: str, encoding: str | None, api_key: str | None, message: str
) -> None:
    settings = Settings(_env_file=None, ethos_api_key=api_key)
    with pytest.raises(SourceError, match=re.escape(message)):
        sis_source(spec, settings, encoding=encoding)


def test_open_source_ethos_is_configured_by_settings_and_knobs_win() -> None:
    settings = Settings(
        _env_file=None, ethos_api_key="k3y", ethos_page_size=7, ethos_id_credential="elevateId",
        ethos_max_attempts=2,
    )  # fmt: skip
    source = sis_source("ethos:https://sis.example.edu", settings, timeout_s=3.0)
    assert isinstance(source, EthosSource)
    assert (source.page_size, source.id_credential, source.timeout_s) == (7, "elevateId", 3.0)
    assert source.retry.max_attempts == 2


def test_open_source_ethos_defaults_are_todays_behaviour() -> None:
    source = sis_source(
        "ethos:https://sis.example.edu", Settings(_env_file=None, ethos_api_key="k")
    )
    assert isinstance(source, EthosSource)
    assert (source.page_size, source.id_credential, source.timeout_s) == (500, "bannerId", 30.0)
    assert source.retry == RetryPolicy()


def test_open_source_takes_the_ethos_config_and_an_ethos_source_needs_a_key() -> None:
    config = EthosConfig(api_key=SecretStr("k"), page_size=7)
    source = open_source("ethos:https://sis.example.edu", ethos=config, timeout_s=3.0)
    assert isinstance(source, EthosSource)
    assert (source.page_size, source.timeout_s, source.config.api_key) == (7, 3.0, config.api_key)
    with pytest.raises(SourceError, match="NUDGE_ETHOS_API_KEY"):
        open_source("ethos:https://sis.example.edu")


# --- field values: every cell of every row (domain/fields.py) -----------------------------------

GOOD_PEOPLE = ["A001,student,Ana,Ruiz,active", "E001,staff,Sam,Lee,active"]
GOOD_PHONES = ["A001,CELL,2123491234", "E001,WORK,2123491000"]
BIG = 200 * 1024  # a 200 KiB field: over the csv module's default limit of 128 KiB

# (file, the bad row as CSV text, the reason, the person id the quarantine keeps)
FIELD_CASES = [
    pytest.param("people.csv", "A009,student,Bo\x00,Li,active",
                 "first_name contains a control character (NUL)", "A009", id="nul-in-a-name"),
    pytest.param("people.csv", 'A009,student,"Bo\rLi",Li,active',
                 "first_name contains a line break (CR); the row runs from line 3 to line 4",
                 "A009", id="cr-in-a-name"),
    pytest.param("people.csv", 'A009,student,"Bo\nLi",Li,active',
                 "first_name contains a line break (LF); the row runs from line 3 to line 4",
                 "A009", id="lf-in-a-name"),
    pytest.param("people.csv", "A009,student,Bo\x07,Li,active",
                 "first_name contains a control character (BEL)", "A009", id="bel-in-a-name"),
    pytest.param("people.csv", "A009,student,Bo,Li\x1b[2J,active",
                 "last_name contains a control character (ESC)", "A009", id="esc-in-a-name"),
    pytest.param("people.csv", "A009,student,Bo\x7f,Li,active",
                 "first_name contains a control character (DEL)", "A009", id="del-in-a-name"),
    pytest.param("people.csv", "A009,student,Bo\x85,Li,active",
                 "first_name contains a control character (U+0085)", "A009", id="c1-in-a-name"),
    pytest.param("people.csv", "A009,student,Bo\u2028Li,Li,active",
                 "first_name contains a line break (U+2028 LINE SEPARATOR)", "A009",
                 id="unicode-line-separator"),
    pytest.param("people.csv", "A0\t09,student,Bo,Li,active", "person_id contains a tab", None,
                 id="tab-in-an-id"),
    pytest.param("people.csv", "A\x0009,student,Bo,Li,active",
                 "person_id contains a control character (NUL)", None, id="nul-in-the-id"),
    pytest.param("people.csv", f"A009,student,{'x' * BIG},Li,active",
                 f"first_name is {BIG:,} characters, more than 200", "A009", id="200KiB-name"),
    pytest.param("people.csv", f"A009,student,{'x' * 201},Li,active",
                 "first_name is 201 characters, more than 200", "A009", id="name-just-too-long"),
    pytest.param("people.csv", f"{'9' * 65},student,Bo,Li,active",
                 "person_id is 65 characters, more than 64", None, id="id-too-long"),
    pytest.param("people.csv", f"A009,student,Bo,Li,{'x' * 65}",
                 "status is 65 characters, more than 64", "A009", id="long-status-never-echoed"),
    pytest.param("phones.csv", "A001,PR,212\x00349",
                 "number contains a control character (NUL)", "A001", id="nul-in-a-number"),
    pytest.param("phones.csv", f"A001,{'ß' * 20},2123491234",
                 "phone_type is 40 characters, more than 32", "A001",
                 id="type-code-too-long-once-upper-cased"),
    pytest.param("phones.csv", f"A001,PR,{'1' * BIG}",
                 f"number is {BIG:,} characters, more than 200", "A001", id="200KiB-number"),
]  # fmt: skip


@pytest.mark.parametrize(("file", "bad_row", "reason", "person_id"), FIELD_CASES)
def test_a_bad_field_quarantines_its_row_and_the_rest_read(
    tmp_path: Path, file: str, bad_row: str, reason: str, person_id: str | None
) -> None:
    people, phones = list(GOOD_PEOPLE), list(GOOD_PHONES)
    (people if file == "people.csv" else phones).insert(1, bad_row)
    folder = write(
        tmp_path, people, phones, people_header="person_id,role,first_name,last_name,status",
        phones_header="person_id,phone_type,number",
    )  # fmt: skip

    extract = CsvSource(folder).read()

    [row] = extract.quarantined
    assert (row.file, row.line, row.reason, row.person_id) == (file, 3, reason, person_id)
    assert [p.person_id for p in extract.people] == ["A001", "E001"]
    assert [p.person_id for p in extract.phones] == ["A001", "E001"]
    # What the row said is kept in a form every database stores, and bounded.
    for value in row.raw.values():
        assert value.isprintable() and len(value) < 600


@pytest.mark.parametrize(
    ("header", "row"),
    [
        pytest.param("person_id,role,first_name,last_name,status,title", "A009,student,Bo,Li,active,Dean\tof\tArts", id="tab-in-a-title"),
        pytest.param("person_id,role,first_name,last_name,status", "A009,student,Zoë\u00a0Ann,Li,active", id="nbsp-in-a-name"),
        pytest.param("person_id,role,first_name,last_name,status", "A009,student,Bo,Li😀,active", id="emoji"),
        pytest.param("person_id,role,first_name,last_name,status", f"A009,student,{'x' * 200},Li,active", id="name-at-the-maximum"),
        pytest.param("person_id,role,first_name,last_name,status", f"A009,student,  {'x' * 200}  ,Li,active", id="padding-does-not-count"),
        pytest.param("person_id,role,first_name,last_name,status,notes", 'A009,student,Bo,Li,active,"line one\r\nline two"', id="line-break-in-a-column-nudge-does-not-read"),
    ],
)  # fmt: skip
def test_acceptable_odd_values_are_read(tmp_path: Path, header: str, row: str) -> None:
    extract = CsvSource(write(tmp_path, [row], [], people_header=header)).read()
    assert extract.quarantined == []
    assert [p.person_id for p in extract.people] == ["A009"]


@pytest.mark.parametrize(
    ("cell", "reason"),
    [
        pytest.param("x" * 4_001, "tags is 4,001 characters, more than 4,000", id="list-too-long"),
        pytest.param("a;" + "x" * 201, "tags has an item of 201 characters, more than 200", id="item-too-long"),
        pytest.param('"a;b\nc"', "tags contains a line break (LF); the row runs from line 2 to line 3", id="line-break-in-a-list"),
    ],
)  # fmt: skip
def test_list_fields(tmp_path: Path, cell: str, reason: str) -> None:
    folder = write(tmp_path, [f"A009,student,Bo,Li,active,{cell}"], [],
                   people_header="person_id,role,first_name,last_name,status,tags")  # fmt: skip
    [row] = CsvSource(folder).read().quarantined
    assert row.reason == reason


def test_an_unread_column_is_bounded_too(tmp_path: Path) -> None:
    folder = write(tmp_path, [f"A009,student,Bo,Li,active,{'x' * 10_001}"], [],
                   people_header="person_id,role,first_name,last_name,status,notes")  # fmt: skip
    [row] = CsvSource(folder).read().quarantined
    assert row.reason == "notes is 10,001 characters, more than 10,000"


def test_a_field_over_the_hard_cap_refuses_the_file(tmp_path: Path) -> None:
    huge = "x" * (FIELD_HARD_CAP + 1)
    folder = write(tmp_path, [*GOOD_PEOPLE, f"A009,student,{huge},Li,active"], [],
                   people_header="person_id,role,first_name,last_name,status")  # fmt: skip
    with pytest.raises(
        SourceFormatError, match=r"people.csv: line 4: a field is longer than 1,048,576"
    ):
        CsvSource(folder).read()


def test_a_field_at_the_hard_cap_is_only_quarantined(tmp_path: Path) -> None:
    folder = write(tmp_path, [f"A009,student,{'x' * FIELD_HARD_CAP},Li,active"], [],
                   people_header="person_id,role,first_name,last_name,status")  # fmt: skip
    [row] = CsvSource(folder).read().quarantined
    assert row.reason == "first_name is 1,048,576 characters, more than 200"


def test_an_unbalanced_quote_is_quarantined_saying_how_far_it_ran(tmp_path: Path) -> None:
    folder = write(tmp_path, ['A001,student,"Ana,Ruiz,active', "E001,staff,Sam,Lee,active"], [],
                   people_header="person_id,role,first_name,last_name,status")  # fmt: skip
    [row] = CsvSource(folder).read().quarantined
    assert row.line == 2
    assert row.reason == "expected 5 fields, found 3; the row runs from line 2 to line 3"


@pytest.mark.parametrize(
    ("header", "message"),
    [
        pytest.param("person_id,role,first_name,last_name,status,no\x00te", "column 6 of the header contains a control character (NUL)", id="nul-in-the-header"),
        pytest.param(f"person_id,role,first_name,last_name,status,{'x' * 201}", "column 6 of the header is 201 characters, more than 200", id="header-cell-too-long"),
    ],
)  # fmt: skip
def test_a_bad_header_refuses_the_file(tmp_path: Path, header: str, message: str) -> None:
    folder = write(tmp_path, [], [], people_header=header)
    with pytest.raises(SourceFormatError, match=re.escape(f"people.csv: {message}")):
        CsvSource(folder).read()
