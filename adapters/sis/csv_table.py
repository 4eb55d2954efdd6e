"""One CSV file of an extract, opened: read whole, decoded, its header checked, and the
checks a row of it must pass (see :mod:`adapters.sis.csv_source` for the rules).

A header that does not decode, or breaks the header rule of :mod:`domain.fields`, or lacks a
required column, refuses the file; rows are parsed by :mod:`adapters.sis.csv_rows`.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from adapters.sis.base import SourceFormatError
from domain.fields import HEADER, FieldRule, preview, problem, rule_for

if TYPE_CHECKING:
    from _csv import Reader

#: The longest field the CSV parser will hold (characters); a longer one refuses the file.
#: Far above every rule's maximum (at most 10,000), so over-long fields up to here are
#: quarantined row by row. The ``csv`` module's limit is process-wide: it is only raised.
FIELD_HARD_CAP = 1 << 20
if csv.field_size_limit() < FIELD_HARD_CAP:
    csv.field_size_limit(FIELD_HARD_CAP)

#: Characters a ``surrogateescape`` decode makes of bytes that do not decode.
_UNDECODABLE = re.compile("[\udc80-\udcff]")

#: How much of each cell a quarantine record keeps.
RAW_PREVIEW_CHARS = 500


@dataclass(frozen=True, slots=True)
class Table:
    """One decoded CSV file: its normalised header, column positions, and the row reader."""

    name: str
    header: tuple[str, ...]
    index: dict[str, int]
    reader: Reader
    rules: tuple[FieldRule, ...]
    hint: str

    def check(self, row: Sequence[str]) -> str | None:
        """Why one of the row's cells is not acceptable (see :mod:`domain.fields`), if so."""
        for column, cell, rule in zip(self.header, row, self.rules, strict=True):
            reason = problem(column, cell, rule)
            if reason is not None:
                if _UNDECODABLE.search(cell):
                    reason = f"{reason}; {self.hint}"
                return reason
        return None

    def raw(self, row: Sequence[str]) -> dict[str, str]:
        """The row keyed by column, for a quarantine record; extra cells keyed by position.

        Cells are previews (controls escaped, cut to size) so the record always stores.
        """
        header = self.header
        out = {
            column: preview(row[i], RAW_PREVIEW_CHARS)
            for i, column in enumerate(header)
            if i < len(row)
        }
        for i in range(len(header), len(row)):
            out[f"_{i + 1}"] = preview(row[i], RAW_PREVIEW_CHARS)
        return out

    def clean_id(self, row: Sequence[str]) -> str | None:
        """The row's person_id if it is present and acceptable, else ``None``."""
        i = self.index["person_id"]
        if i >= len(row) or problem("person_id", row[i], rule_for("person_id")) is not None:
            return None
        return row[i].strip() or None


def open_table(path: Path, required: tuple[str, ...], encoding: str | None) -> Table:
    """Read ``path`` whole and check its header; ``encoding`` is a normalised codec name,
    or ``None`` for UTF-8 with or without BOM. Raises :class:`SourceFormatError`."""
    name = path.name
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise SourceFormatError(f"{path}: file not found") from None
    except OSError as exc:
        raise SourceFormatError(f"{path}: cannot read ({exc.strerror})") from None
    text = _decode(path, data, encoding)
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        first = next(reader)
    except StopIteration:
        raise SourceFormatError(f"{name}: empty file (no header row)") from None
    except csv.Error as exc:
        raise SourceFormatError(f"{name}: unreadable header row ({exc})") from None
    for i, cell in enumerate(first):
        if _UNDECODABLE.search(cell):
            # The header is the file's start: its bad byte is the file's first one.
            raise _undecodable(path, data, encoding)
        reason = problem(f"column {i + 1} of the header", cell, HEADER)
        if reason is not None:
            raise SourceFormatError(f"{name}: {reason}")
    header = tuple(h.strip().lstrip("\ufeff").strip().lower() for h in first)
    index: dict[str, int] = {}
    for i, column in enumerate(header):
        if column in index:
            raise SourceFormatError(f"{name}: column {column!r} appears twice in the header")
        if column:
            index[column] = i
    missing = [c for c in required if c not in index]
    if missing:
        raise SourceFormatError(
            f"{name}: missing required column(s) {', '.join(missing)} "
            f"(found: {', '.join(h for h in header if h) or 'none'})"
        )
    labels = tuple(column or f"column {i + 1}" for i, column in enumerate(header))
    return Table(
        name=name,
        header=labels,
        index=index,
        reader=reader,
        rules=tuple(rule_for(column) for column in header),
        hint=_hint(encoding),
    )


def _hint(encoding: str | None) -> str:
    if encoding is None:
        return "pass --encoding (for example --encoding cp1252) if the file is not UTF-8"
    return f"check the --encoding ({encoding}) given"


def _decode(path: Path, data: bytes, encoding: str | None) -> str:
    """Decode the whole file; bytes that do not decode become U+DC80–U+DCFF.

    Rows holding such characters are quarantined by the field check; only an encoding
    that cannot even represent them that way (a broken UTF-16 pair) refuses the file.
    """
    try:
        return data.decode(encoding or "utf-8-sig", errors="surrogateescape")
    except UnicodeDecodeError:
        raise _undecodable(path, data, encoding) from None


def _undecodable(path: Path, data: bytes, encoding: str | None) -> SourceFormatError:
    """The refusal naming the file's first byte that does not decode."""
    try:
        data.decode(encoding or "utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        return SourceFormatError(
            f"{path.name}: not valid {'UTF-8' if encoding is None else encoding}: "
            f"byte 0x{data[exc.start]:02x} at offset {exc.start} (line {line}, "
            f"column {column}); {_hint(encoding)}"
        )
    return SourceFormatError(f"{path.name}: not valid text")  # pragma: no cover


__all__ = ["FIELD_HARD_CAP", "RAW_PREVIEW_CHARS", "Table", "open_table"]
