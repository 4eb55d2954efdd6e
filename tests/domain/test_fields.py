"""The one rule for field values from the SIS (domain/fields.py): one row per case."""

from __future__ import annotations

import pytest
from sqlmodel import SQLModel

import models  # noqa: F401 - registers the tables whose column lengths the rules match
from domain.fields import (
    RULES,
    UNREAD,
    FieldRule,
    Kind,
    char_name,
    check,
    preview,
    problem,
    rule_for,
)

CASES = [
    # (field, value, reason or None)
    ("first_name", "Ana", None),
    ("first_name", "Zoë\u00a0Ann", None),
    ("first_name", "Dean\tof", None),
    ("first_name", "😀" * 200, None),
    ("first_name", "x" * 200, None),
    ("first_name", "  " + "x" * 200 + "  ", None),
    ("first_name", "x" * 201, "first_name is 201 characters, more than 200"),
    ("first_name", "x" * 131_073, "first_name is 131,073 characters, more than 200"),
    ("first_name", "Ana\x00", "first_name contains a control character (NUL)"),
    ("first_name", "A\x01", "first_name contains a control character (SOH)"),
    ("first_name", "A\x1f", "first_name contains a control character (US)"),
    ("first_name", "A\x7f", "first_name contains a control character (DEL)"),
    ("first_name", "A\x85", "first_name contains a control character (U+0085)"),
    ("first_name", "A\x9f", "first_name contains a control character (U+009F)"),
    ("first_name", "A\r", "first_name contains a line break (CR)"),
    ("first_name", "A\nB", "first_name contains a line break (LF)"),
    ("first_name", "A\u2028", "first_name contains a line break (U+2028 LINE SEPARATOR)"),
    ("first_name", "A\u2029", "first_name contains a line break (U+2029 PARAGRAPH SEPARATOR)"),
    ("first_name", "Jos\udce9", "first_name contains a byte that could not be decoded (0xe9)"),
    ("first_name", "\ud800", "first_name contains invalid Unicode (a lone surrogate, U+D800)"),
    ("person_id", "A\t1", "person_id contains a tab"),
    ("person_id", "9" * 65, "person_id is 65 characters, more than 64"),
    ("email", "a" * 320, None),
    ("email", "a" * 321, "email is 321 characters, more than 320"),
    ("risk_level", "high", None),
    ("risk_level", "ß" * 16, None),
    ("risk_level", "ß" * 17, "risk_level is 34 characters, more than 32"),
    ("phone_type", "ΐ" * 11, "phone_type is 33 characters, more than 32"),
    ("number", " " * 199 + "1", None),
    ("number", " " * 200 + "1", "number is 201 characters, more than 200"),
    ("tags", "a; b;;c", None),
    ("tags", "x" * 4_001, "tags is 4,001 characters, more than 4,000"),
    ("tags", "a;" + "x" * 201, "tags has an item of 201 characters, more than 200"),
    ("tags", "a\nb", "tags contains a line break (LF)"),
    ("notes", "line one\r\nline two\tand a tab", None),
    ("notes", "x\x00", "notes contains a control character (NUL)"),
    ("notes", "x" * 10_001, "notes is 10,001 characters, more than 10,000"),
]


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    CASES,
    ids=[f"{f}-{i}-{'ok' if r is None else r.split(' ', 1)[1][:30]}" for i, (f, _, r) in enumerate(CASES)],
)  # fmt: skip
def test_check(field: str, value: str, reason: str | None) -> None:
    assert check(field, value) == reason


def test_a_reason_never_quotes_the_value() -> None:
    secret = "Jane\x00Doe-123-45-6789"
    reason = check("first_name", secret)
    assert reason is not None and "Jane" not in reason and "6789" not in reason


def test_the_label_names_the_field_in_the_reason() -> None:
    rule = rule_for("first_name")
    assert problem("names[0].firstName", "A\x00", rule) == (
        "names[0].firstName contains a control character (NUL)"
    )


def test_unread_fields_are_free_text() -> None:
    assert rule_for("no-such-column") is UNREAD
    assert UNREAD.kind is Kind.TEXT


@pytest.mark.parametrize(
    ("rule", "fast_max"),
    [
        (FieldRule(Kind.LINE, 200), 200),
        (FieldRule(Kind.CODE, 32, case_folded=True), 10),
        (FieldRule(Kind.LIST, 4_000, item_max_chars=200), 200),
    ],
    ids=["line", "case-folded", "list"],
)
def test_fast_max_never_lets_a_too_long_value_through(rule: FieldRule, fast_max: int) -> None:
    assert rule.fast_max == fast_max


def test_every_stored_person_field_fits_its_column() -> None:
    """Nothing a source accepts can fail to store: each maximum is within its column."""
    person = SQLModel.metadata.tables["person"].c
    phone = SQLModel.metadata.tables["phone_number"].c
    columns = {
        "person_id": person.sis_id,
        "first_name": person.first_name,
        "last_name": person.last_name,
        "preferred_name": person.preferred_name,
        "email": person.email,
        "program": person.program,
        "degree": person.degree,
        "risk_level": person.risk_level,
        "advisor_id": person.advisor_sis_id,
        "department": person.department,
        "title": person.title,
        "phone_type": phone.type_code,
        "number": phone.raw,
    }
    for field, column in columns.items():
        length = getattr(column.type, "length", None)
        assert isinstance(length, int), field
        assert RULES[field].max_chars <= length, field


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("Ana", "Ana"),
        ("A\x00B", "A\\x00B"),
        ("A\r\nB", "A\\x0d\\x0aB"),
        ("Jos\udce9", "Jos\\xe9"),
        ("\ud800", "\\ud800"),
        ("x" * 300, "x" * 200 + "… (300 characters)"),
    ],
    ids=["clean", "nul", "crlf", "undecodable-byte", "lone-surrogate", "cut"],
)
def test_preview_is_storable_and_bounded(value: str, shown: str) -> None:
    assert preview(value) == shown
    assert preview(value).encode()  # every database stores it


def test_char_names() -> None:
    assert [char_name(c) for c in "\x00\t\n\r\x1b\x7f\x85"] == [
        "NUL", "HT", "LF", "CR", "ESC", "DEL", "U+0085",
    ]  # fmt: skip
