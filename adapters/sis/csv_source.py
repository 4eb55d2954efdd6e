"""The ``csv:PATH`` source: a folder holding an SIS extract as ``people.csv`` and ``phones.csv``.

``people.csv`` has one row per person and ``phones.csv`` one row per phone, as SIS extracts
are. Headers are trimmed and case-insensitive; columns beyond the required ones are optional,
and only the person fields whose columns are present are reported in ``provided_fields`` (a
field the extract does not carry is left as it is in the database).

=============  =====================================================================
people.csv     ``person_id, role, first_name, last_name, status`` required;
               ``preferred_name, email, program, degree, risk_level, tags, courses,
               advisor_id, department, title, roles`` optional. ``tags``, ``courses``
               and ``roles`` are ``;``-separated lists (trimmed, empties dropped).
phones.csv     ``person_id, phone_type, number`` required; ``country`` (ISO 3166
               alpha-2), ``primary`` (Y/N/Yes/No/1/0/true/false/blank) and
               ``updated_at`` (ISO date or date-time; naive means UTC) optional.
=============  =====================================================================

Status values (case-insensitive): ``active``, ``a``, ``act``, ``enrolled``, ``current`` mean
*active*; ``inactive``, ``i``, ``inact``, ``withdrawn``, ``graduated``, ``separated``,
``terminated``, ``former`` mean *inactive*. Anything else, including a blank, quarantines the
row: the sync deactivates people by status, so a guess would be worse than a question.

Structure and field values are checked here. The phone ``number`` is handed over exactly as
read (free text such as "Decline to state" included): classifying it is the sync's job.
Every cell of every row must pass :mod:`domain.fields` (no NUL or other control characters,
no line break in a single-line field, no value longer than its column). Rows that fail a
check are quarantined with the 1-based line number they start on (the header is line 1) and
a reason; they never stop the good rows.

Encoding: files are UTF-8 (with or without BOM) unless an explicit encoding is given. A row
holding bytes that do not decode is quarantined (its reason names the field and the byte);
a header that does not decode refuses the file, naming the byte's offset, line and column.

Size: each file is read whole into memory (an extract of 350,000 rows is tens of MB). A
field longer than its rule quarantines its row; a single field longer than
:data:`~adapters.sis.csv_table.FIELD_HARD_CAP` characters (1 MiB) refuses the file: no SIS
field is near that long, it means an unbalanced quote swallowed the rest of the file (or the
file is not an extract), and the parser cannot resynchronise reliably after it.

Each file is opened and its header checked by :mod:`adapters.sis.csv_table`; its rows are
parsed by :mod:`adapters.sis.csv_rows`.
"""

from __future__ import annotations

import codecs
from pathlib import Path

from adapters.memory import gc_paused
from adapters.sis.base import PERSON_FIELDS, Extract, QuarantinedRow, SourceFormatError
from adapters.sis.csv_rows import read_people, read_phones
from adapters.sis.csv_table import open_table

PEOPLE_FILE = "people.csv"
PHONES_FILE = "phones.csv"

PEOPLE_REQUIRED: tuple[str, ...] = ("person_id", "role", "first_name", "last_name", "status")
PHONES_REQUIRED: tuple[str, ...] = ("person_id", "phone_type", "number")


class CsvSource:
    """Read an SIS extract from a folder holding ``people.csv`` and ``phones.csv``."""

    def __init__(self, folder: Path | str, *, encoding: str | None = None) -> None:
        """Prepare to read ``folder``; ``encoding`` overrides UTF-8 for files that are not."""
        self.folder = Path(folder)
        if encoding is not None:
            try:
                name = codecs.lookup(encoding).name
            except LookupError:
                raise SourceFormatError(f"unknown encoding {encoding!r}") from None
            # A UTF-8 file written by Excel starts with a BOM; it is not part of the header.
            encoding = "utf-8-sig" if name in ("utf-8", "utf-8-sig") else name
        self.encoding = encoding

    def describe(self) -> str:
        """``csv:`` and the folder, as given."""
        return f"csv:{self.folder}"

    def read(self) -> Extract:
        """Read both files; quarantine bad rows, refuse a file that cannot be used at all."""
        if not self.folder.is_dir():
            raise SourceFormatError(
                f"{self.folder} is not a folder (expected {PEOPLE_FILE} "
                f"and {PHONES_FILE} inside it)"
            )
        people_table = open_table(self.folder / PEOPLE_FILE, PEOPLE_REQUIRED, self.encoding)
        phones_table = open_table(self.folder / PHONES_FILE, PHONES_REQUIRED, self.encoding)
        quarantined: list[QuarantinedRow] = []
        with gc_paused():
            people, known, refused = read_people(people_table, quarantined)
            phones = read_phones(phones_table, known, refused, quarantined)
        provided = frozenset(f for f in PERSON_FIELDS if f in people_table.index)
        return Extract(
            source=self.describe(),
            people=people,
            phones=phones,
            quarantined=quarantined,
            provided_fields=provided,
        )


__all__ = ["PEOPLE_FILE", "PEOPLE_REQUIRED", "PHONES_FILE", "PHONES_REQUIRED", "CsvSource"]
