"""Malformed rows the ``csv:`` source must quarantine, and where they land in the files.

Each planted row is a named row with one field made wrong (a blank id, a bad status, an
unknown role, a duplicate id, a bad date or flag, an unknown person), or a ragged row with a
field too many or too few. :func:`assemble` inserts them and reports each one's line.
The order of the random draws is part of the output (same seed, same bytes): keep it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from sandbox.generate_people import People
from sandbox.generate_phones import Phones
from sandbox.generate_rows import (
    PEOPLE_COLUMNS,
    PHONE_COLUMNS,
    PersonRow,
    PhoneRow,
    Row,
    person_id_of,
    ragged,
)
from sandbox.names import FIRST_NAMES


@dataclass(frozen=True, slots=True)
class Planted:
    """A malformed row, to be inserted before the clean row at index ``before``."""

    before: int
    kind: str
    row: Row


def plant_malformed(people: People, phones: Phones, students: int) -> dict[str, list[Planted]]:
    """Rows the source must quarantine, per file name (none for fewer than 20 students)."""
    if students < 20:
        return {}
    rng = people.rng
    per_kind = max(1, students // 10000)
    bad_people: list[Planted] = []
    bad_phones: list[Planted] = []
    n_people, n_phones = len(people.rows), len(phones.rows)
    template = people.rows[-1]
    first_student = n_people - len(people.student_ids)
    for k in range(per_kind):
        ghost: PersonRow = {**template, "person_id": f"Z{k + 1:08d}"}  # no phone refers to it
        bad_people.append(
            Planted(
                rng.randint(0, n_people),
                "ragged_extra_field",
                ragged(ghost, PEOPLE_COLUMNS, extra=["extra"]),
            )
        )
        bad_people.append(
            Planted(rng.randint(0, n_people), "blank_person_id", {**template, "person_id": ""})
        )
        # Here and for the duplicate the bad value is drawn before the row's place.
        bad_status: PersonRow = {
            **ghost,
            "person_id": f"Y{k + 1:08d}",
            "status": rng.choice(("maybe", "Pending", "??")),
        }
        bad_people.append(Planted(rng.randint(0, n_people), "bad_status", bad_status))
        alumni: PersonRow = {**ghost, "person_id": f"X{k + 1:08d}", "role": "alumni"}
        bad_people.append(Planted(rng.randint(0, n_people), "unknown_role", alumni))
        original = rng.randrange(len(people.student_ids)) if people.student_ids else 0
        duplicate: PersonRow = {
            **people.rows[first_student + original],
            "first_name": rng.choice(FIRST_NAMES),
        }
        bad_people.append(
            Planted(
                rng.randint(first_student + original + 1, n_people),
                "duplicate_person_id",
                duplicate,
            )
        )
        sid = rng.choice(people.student_ids)
        bad_phones.append(
            Planted(
                rng.randint(0, n_phones),
                "ragged_missing_field",
                ragged(_cell(sid, phones.us_number(), "Y"), PHONE_COLUMNS, drop_last=1),
            )
        )
        bad_phones.append(
            Planted(rng.randint(0, n_phones), "blank_person_id", _cell("", phones.us_number(), "Y"))
        )
        before = rng.randint(0, n_phones)  # here the place is drawn before the row
        bad_date: PhoneRow = {
            "person_id": sid,
            "phone_type": "PR",
            "number": phones.us_number(),
            "country": "",
            "primary": "N",
            "updated_at": rng.choice(("31/02/2021", "yesterday", "2021-13-45")),
        }
        bad_phones.append(Planted(before, "bad_updated_at", bad_date))
        bad_phones.append(
            Planted(
                rng.randint(0, n_phones),
                "bad_primary_flag",
                _cell(sid, phones.us_number(), "maybe"),
            )
        )
        bad_phones.append(
            Planted(
                rng.randint(0, n_phones),
                "unknown_person",
                _cell(f"A{90000000 + k}", phones.us_number(), "Y"),
            )
        )
    return {"people.csv": bad_people, "phones.csv": bad_phones}


def _cell(person_id: str, number: str, primary: str) -> PhoneRow:
    return {
        "person_id": person_id,
        "phone_type": "CELL",
        "number": number,
        "country": "",
        "primary": primary,
        "updated_at": "",
    }


def assemble(
    files: dict[str, list[Row]], planted: dict[str, list[Planted]], mess: Counter[str]
) -> tuple[dict[str, list[Row]], dict[str, list[dict[str, Any]]]]:
    """Insert the planted rows into each file's clean rows; return the final rows per file
    and each planted row's line (the header is line 1), and count them in ``mess``."""
    out: dict[str, list[Row]] = {}
    lines: dict[str, list[dict[str, Any]]] = {}
    for name, rows in files.items():
        extra = sorted(planted.get(name, []), key=lambda item: item.before)
        merged: list[Row] = []
        found: list[dict[str, Any]] = []
        j = 0
        for i in range(len(rows) + 1):
            while j < len(extra) and extra[j].before == i:
                row = extra[j].row
                found.append(
                    {"line": len(merged) + 2, "kind": extra[j].kind, "person_id": person_id_of(row)}
                )
                merged.append(row)
                j += 1
            if i < len(rows):
                merged.append(rows[i])
        out[name] = merged
        if planted:
            lines[name] = found
    for name in lines:
        for item in lines[name]:
            mess[f"malformed_{item['kind']}"] += 1
    return out, lines
