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
:data:`FIELD_HARD_CAP` characters (1 MiB) refuses the file: no SIS field is near that long,
it means an unbalanced quote swallowed the rest of the file (or the file is not an extract),
and the parser cannot resynchronise reliably after it.
"""

from __future__ import annotations

import codecs
import csv
import gc
import io
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import gt
from pathlib import Path
from typing import TYPE_CHECKING

from adapters.sis.base import (
    PERSON_FIELDS,
    Extract,
    QuarantinedRow,
    SourceFormatError,
    SourcePerson,
    SourcePhone,
)
from domain.fields import HEADER, FieldRule, preview, problem, rule_for

if TYPE_CHECKING:
    from _csv import Reader

PEOPLE_FILE = "people.csv"
PHONES_FILE = "phones.csv"

PEOPLE_REQUIRED: tuple[str, ...] = ("person_id", "role", "first_name", "last_name", "status")
PHONES_REQUIRED: tuple[str, ...] = ("person_id", "phone_type", "number")

#: The person fields read from people.csv that are ``;``-separated lists.
LIST_FIELDS = frozenset({"tags", "courses", "roles"})

ROLES = frozenset({"student", "staff"})

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

_STATUS: dict[str, str] = {
    **dict.fromkeys(("active", "a", "act", "enrolled", "current"), "active"),
    **dict.fromkeys(
        (
            "inactive",
            "i",
            "inact",
            "withdrawn",
            "graduated",
            "separated",
            "terminated",
            "former",
        ),
        "inactive",
    ),
}

_FLAGS: dict[str, bool] = {
    **dict.fromkeys(("y", "yes", "1", "true", "t"), True),
    **dict.fromkeys(("n", "no", "0", "false", "f", ""), False),
}


def normalise_status(value: str) -> str | None:
    """Map an SIS status to ``"active"`` / ``"inactive"``, or ``None`` if it is not known."""
    return _STATUS.get(value.strip().lower())


def parse_timestamp(value: str) -> datetime:
    """Parse an ISO date or date-time; a naive value is taken as UTC. Raises ``ValueError``."""
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class _Table:
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
        people_table = self._open(PEOPLE_FILE, PEOPLE_REQUIRED)
        phones_table = self._open(PHONES_FILE, PHONES_REQUIRED)
        quarantined: list[QuarantinedRow] = []
        with _gc_paused():
            people, known, refused = _read_people(people_table, quarantined)
            phones = _read_phones(phones_table, known, refused, quarantined)
        provided = frozenset(f for f in PERSON_FIELDS if f in people_table.index)
        return Extract(
            source=self.describe(),
            people=people,
            phones=phones,
            quarantined=quarantined,
            provided_fields=provided,
        )

    def _open(self, name: str, required: tuple[str, ...]) -> _Table:
        path = self.folder / name
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise SourceFormatError(f"{path}: file not found") from None
        except OSError as exc:
            raise SourceFormatError(f"{path}: cannot read ({exc.strerror})") from None
        text = self._decode(path, data)
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
                raise self._undecodable(path, data)
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
        return _Table(
            name=name,
            header=labels,
            index=index,
            reader=reader,
            rules=tuple(rule_for(column) for column in header),
            hint=self._hint(),
        )

    def _hint(self) -> str:
        if self.encoding is None:
            return "pass --encoding (for example --encoding cp1252) if the file is not UTF-8"
        return f"check the --encoding ({self.encoding}) given"

    def _decode(self, path: Path, data: bytes) -> str:
        """Decode the whole file; bytes that do not decode become U+DC80–U+DCFF.

        Rows holding such characters are quarantined by the field check; only an encoding
        that cannot even represent them that way (a broken UTF-16 pair) refuses the file.
        """
        try:
            return data.decode(self.encoding or "utf-8-sig", errors="surrogateescape")
        except UnicodeDecodeError:
            raise self._undecodable(path, data) from None

    def _undecodable(self, path: Path, data: bytes) -> SourceFormatError:
        """The refusal naming the file's first byte that does not decode."""
        try:
            data.decode(self.encoding or "utf-8-sig")
        except UnicodeDecodeError as exc:
            line = data.count(b"\n", 0, exc.start) + 1
            column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
            return SourceFormatError(
                f"{path.name}: not valid {'UTF-8' if self.encoding is None else self.encoding}: "
                f"byte 0x{data[exc.start]:02x} at offset {exc.start} (line {line}, "
                f"column {column}); {self._hint()}"
            )
        return SourceFormatError(f"{path.name}: not valid text")  # pragma: no cover


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while building many small objects.

    Reading 350k rows allocates a million containers and none of them form cycles, yet each
    allocation threshold triggers a collection that walks them all: pausing it halves the
    read time.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _split_list(cell: str) -> list[str]:
    """``" a; b;;c "`` → ``["a", "b", "c"]``."""
    if ";" not in cell:
        cell = cell.strip()
        return [cell] if cell else []
    return [part for part in map(str.strip, cell.split(";")) if part]


def _read_people(
    table: _Table, quarantined: list[QuarantinedRow]
) -> tuple[list[SourcePerson], set[str], dict[str, int]]:
    """Return the good people, their ids, and the ids of people refused (id → first line)."""
    name, header, idx, reader = table.name, table.header, table.index, table.reader
    width = len(header)
    maxima = [rule.fast_max for rule in table.rules]
    i_id, i_role, i_status = idx["person_id"], idx["role"], idx["status"]
    present = [f for f in PERSON_FIELDS if f in idx and f != "status"]
    scalars = [(f, idx[f]) for f in present if f not in LIST_FIELDS]
    lists = [(f, idx[f]) for f in present if f in LIST_FIELDS]
    has_risk = "risk_level" in idx
    people: list[SourcePerson] = []
    first_line: dict[str, int] = {}
    refused: dict[str, int] = {}
    statuses, roles = _STATUS, ROLES
    last = reader.line_num

    def refuse(line: int, row: list[str], reason: str, person_id: str | None) -> None:
        quarantined.append(
            QuarantinedRow(name, line, _spanned(reason, line, last), person_id, table.raw(row))
        )
        if person_id and person_id not in first_line:
            refused.setdefault(person_id, line)

    try:
        for row in reader:
            # line_num counts physical lines, so a quoted cell holding a newline still gives
            # the line the record started on.
            line, last = last + 1, reader.line_num
            if not row:
                continue
            if len(row) != width:
                refuse(line, row, f"expected {width} fields, found {len(row)}", table.clean_id(row))
                continue
            # One C-level pass for the common, clean row; cell by cell only when it may not be.
            if not "".join(row).isprintable() or any(map(gt, map(len, row), maxima)):
                reason = table.check(row)
                if reason is not None:
                    refuse(line, row, reason, table.clean_id(row))
                    continue
            pid = row[i_id].strip()
            if not pid:
                refuse(line, row, "blank person_id", None)
                continue
            if pid in first_line:
                reason = f"duplicate person_id {pid!r} (first on line {first_line[pid]})"
                quarantined.append(QuarantinedRow(name, line, reason, pid, table.raw(row)))
                continue
            role = row[i_role].strip().lower()
            if role not in roles:
                cell = row[i_role].strip()
                refuse(line, row, f"unknown role {cell!r} (expected student or staff)", pid)
                continue
            status = statuses.get(row[i_status].strip().lower())
            if status is None:
                cell = row[i_status].strip()
                refuse(line, row, f"unknown status {cell!r}" if cell else "blank status", pid)
                continue
            fields: dict[str, str | list[str] | None] = {
                f: row[i].strip() or None for f, i in scalars
            }
            for f, i in lists:
                fields[f] = _split_list(row[i])
            fields["status"] = status
            if has_risk and (risk := fields["risk_level"]) is not None:
                # Segments match risk levels exactly; "High" and "high" are the same level.
                fields["risk_level"] = str(risk).lower()
            first_line[pid] = line
            people.append(SourcePerson(line, pid, role, fields, tuple(row)))
    except csv.Error as exc:
        raise _parse_error(name, last + 1, exc) from None
    for pid in first_line:
        refused.pop(pid, None)
    return people, set(first_line), refused


def _read_phones(
    table: _Table,
    known: set[str],
    refused: dict[str, int],
    quarantined: list[QuarantinedRow],
) -> list[SourcePhone]:
    """Return the good phone rows; quarantine the rest."""
    name, header, idx, reader = table.name, table.header, table.index, table.reader
    width = len(header)
    i_id, i_type, i_number = idx["person_id"], idx["phone_type"], idx["number"]
    i_country, i_primary, i_updated = idx.get("country"), idx.get("primary"), idx.get("updated_at")
    countries: dict[str, str | None] = {"": None}
    dates: dict[str, datetime | None] = {"": None}
    flags = {**_FLAGS, **{key.upper(): value for key, value in _FLAGS.items()}}
    flags.update({key.capitalize(): value for key, value in _FLAGS.items()})
    phones: list[SourcePhone] = []
    append = phones.append
    maxima = [rule.fast_max for rule in table.rules]
    last = reader.line_num

    def refuse(line: int, row: list[str], reason: str, person_id: str | None) -> None:
        quarantined.append(
            QuarantinedRow(name, line, _spanned(reason, line, last), person_id, table.raw(row))
        )

    try:
        for row in reader:
            line, last = last + 1, reader.line_num
            if not row:
                continue
            if len(row) != width:
                refuse(line, row, f"expected {width} fields, found {len(row)}", table.clean_id(row))
                continue
            if not "".join(row).isprintable() or any(map(gt, map(len, row), maxima)):
                reason = table.check(row)
                if reason is not None:
                    refuse(line, row, reason, table.clean_id(row))
                    continue
            pid = row[i_id].strip()
            if pid not in known:
                if not pid:
                    reason = "blank person_id"
                elif pid in refused:
                    reason = f"person {pid!r} was quarantined (people.csv line {refused[pid]})"
                else:
                    reason = f"unknown person {pid!r} (not in people.csv)"
                refuse(line, row, reason, pid or None)
                continue
            country: str | None = None
            if i_country is not None:
                cell = row[i_country]
                try:
                    country = countries[cell]
                except KeyError:
                    code = cell.strip()
                    if code and (len(code) != 2 or not code.isascii() or not code.isalpha()):
                        refuse(
                            line,
                            row,
                            f"bad country {code!r} (expected ISO 3166 alpha-2, e.g. GB)",
                            pid,
                        )
                        continue
                    country = countries[cell] = code.upper() or None
            primary = False
            if i_primary is not None:
                cell = row[i_primary]
                flag = flags.get(cell)
                if flag is None:
                    flag = flags.get(cell.strip().lower())
                    if flag is None:
                        cell = cell.strip()
                        refuse(line, row, f"bad primary flag {cell!r} (expected Y or N)", pid)
                        continue
                primary = flag
            updated: datetime | None = None
            if i_updated is not None:
                cell = row[i_updated]
                try:
                    updated = dates[cell]
                except KeyError:
                    try:
                        updated = dates[cell] = (
                            parse_timestamp(cell.strip()) if cell.strip() else None
                        )
                    except ValueError:
                        refuse(
                            line,
                            row,
                            f"bad updated_at {cell.strip()!r} (expected an ISO date)",
                            pid,
                        )
                        continue
            append(
                SourcePhone(
                    line,
                    pid,
                    row[i_type].strip(),
                    row[i_number],
                    country,
                    primary,
                    updated,
                    tuple(row),
                )
            )
    except csv.Error as exc:
        raise _parse_error(name, last + 1, exc) from None
    return phones


def _spanned(reason: str, line: int, last: int) -> str:
    """A quarantine reason, saying so when the row ran over several lines (a quoted line
    break, or an unbalanced quote that swallowed the rows after it)."""
    return f"{reason}; the row runs from line {line} to line {last}" if last > line else reason


def _parse_error(name: str, line: int, exc: csv.Error) -> SourceFormatError:
    """The refusal for a record the parser gave up on (only a field over the hard cap)."""
    if "field larger than field limit" in str(exc):
        return SourceFormatError(
            f"{name}: line {line}: a field is longer than {FIELD_HARD_CAP:,} characters, the "
            "most any extract may hold (an unbalanced quote, or not an SIS extract?)"
        )
    return SourceFormatError(f"{name}: line {line}: {exc}")
