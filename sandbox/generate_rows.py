"""The two files of a generated extract, addressed by column name.

One ``TypedDict`` per file declares its columns once: the header is derived from it, every
row is built by name (mypy checks the keys), and :func:`write_rows` takes each row's fields
by column name. The only rows not of that shape are the planted ragged ones
(:class:`RaggedRow`), which exist precisely to have a field too many or too few.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from pathlib import Path
from typing import TypedDict


class PersonRow(TypedDict):
    """One row of ``people.csv`` (students and staff share the layout)."""

    person_id: str
    role: str
    first_name: str
    last_name: str
    preferred_name: str
    email: str
    status: str
    program: str
    degree: str
    risk_level: str
    tags: str
    courses: str
    advisor_id: str
    department: str
    title: str
    roles: str


class PhoneRow(TypedDict):
    """One row of ``phones.csv``: one phone of one person, as SIS extracts list them."""

    person_id: str
    phone_type: str
    number: str
    country: str
    primary: str
    updated_at: str


#: The headers, in file order: the TypedDicts' fields, declared once.
PEOPLE_COLUMNS: tuple[str, ...] = tuple(PersonRow.__annotations__)
PHONE_COLUMNS: tuple[str, ...] = tuple(PhoneRow.__annotations__)


@dataclass(frozen=True, slots=True)
class RaggedRow:
    """A row that deliberately does not have the header's shape, written as it is."""

    values: tuple[str, ...]

    @property
    def person_id(self) -> str:
        return self.values[0] if self.values else ""


#: What a file's rows are: named rows, and the odd planted ragged one.
Row = PersonRow | PhoneRow | RaggedRow


def person_id_of(row: Row) -> str:
    """The ``person_id`` a row carries (the first field of a ragged one)."""
    return row.person_id if isinstance(row, RaggedRow) else row["person_id"]


def ragged(
    row: Mapping[str, object],
    columns: Sequence[str],
    *,
    extra: Sequence[str] = (),
    drop_last: int = 0,
) -> RaggedRow:
    """``row``'s fields in header order, with ``extra`` fields added or the last few dropped."""
    values = [str(row[c]) for c in columns[: len(columns) - drop_last]]
    return RaggedRow((*values, *extra))


def write_rows(path: Path, columns: Sequence[str], rows: Sequence[Row]) -> None:
    """Write the header and the rows, each named row's fields taken by column name.

    A row missing a column is a ``KeyError`` (``csv.DictWriter`` would write a blank cell
    silently), and taking the fields with one ``itemgetter`` is twice as fast as it.
    """
    in_file_order = itemgetter(*columns)
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(columns)
        writer.writerows(
            row.values if isinstance(row, RaggedRow) else in_file_order(row) for row in rows
        )
