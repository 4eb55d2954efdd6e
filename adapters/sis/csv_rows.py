"""The rows of ``people.csv`` and ``phones.csv``, parsed: good rows become people and
phones, bad ones are quarantined with their line and a reason (the value rules are in
:mod:`adapters.sis.csv_source`).

These loops run once per row of an extract of hundreds of thousands: a clean row is checked
in one C-level pass, and only a row that may be bad is checked cell by cell.
"""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from operator import gt

from adapters.sis.base import (
    PERSON_FIELDS,
    QuarantinedRow,
    SourceFormatError,
    SourcePerson,
    SourcePhone,
)
from adapters.sis.csv_table import FIELD_HARD_CAP, Table

#: The person fields read from people.csv that are ``;``-separated lists.
LIST_FIELDS = frozenset({"tags", "courses", "roles"})

#: The roles a row may give a person (the ``role`` column, case-insensitive).
ROLES = frozenset({"student", "staff"})

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


def _split_list(cell: str) -> list[str]:
    """``" a; b;;c "`` → ``["a", "b", "c"]``."""
    if ";" not in cell:
        cell = cell.strip()
        return [cell] if cell else []
    return [part for part in map(str.strip, cell.split(";")) if part]


def read_people(
    table: Table, quarantined: list[QuarantinedRow]
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


def read_phones(
    table: Table,
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


__all__ = [
    "LIST_FIELDS",
    "ROLES",
    "normalise_status",
    "parse_timestamp",
    "read_people",
    "read_phones",
]
