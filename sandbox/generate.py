"""A realistic, messy SIS extract for the demo, the tests and the benchmarks.

:func:`generate` writes ``people.csv`` and ``phones.csv`` in the layout the ``csv:`` source
reads (see ``adapters/sis/csv_source.py``) and a ``manifest.json`` saying what was planted,
so tests and the demo can check the sync found it. The output depends only on the arguments:
the same seed gives the same bytes (dates are relative to ``as_of``, not today).

What a real college extract looks like, and so what this one has:

* ~2.5 phone rows per student: cell (``CELL``/``CL``), home (``PR``/``MA``/``HOME``), parents
  (``PAR``/``FAM``), emergency (``EMER``), work (``WORK``/``BUS``), fax (``FAX``) and a few
  type codes nobody remembers (:data:`UNKNOWN_TYPE_CODES`).
* Every formatting habit: ``(212) 349-1234``, ``212.349.1234``, ``+1 212 349 1234``,
  ``2123491234``, ``1-212-349-1234``; blanks; free text ("Decline to state", "N/A");
  extensions; invalid numbers; landlines and toll-free numbers coded as cells; parent and
  family numbers; numbers shared by siblings; international numbers (GB, MX, IN, CA) with
  a country column or a ``+`` prefix; stale rows updated years ago; a second, older cell.
* Numbers are random within real area codes and exchanges, so libphonenumber finds ~90% of
  students an SMS-capable cell number, as at a real college.
* A few malformed rows (when ``malformed=True``): ragged rows, blank ids, bad status, unknown
  role, duplicate ids, bad dates and flags, phones of unknown people. The manifest lists
  each one's file, line and kind: the ``csv:`` source must quarantine exactly those.

Where things are: the rows and their columns (by name) in :mod:`sandbox.generate_rows`,
numbers, dates and phone rows in :mod:`sandbox.generate_phones`, staff and students in
:mod:`sandbox.generate_people`, the malformed rows in :mod:`sandbox.generate_malformed`.
The order of the random draws is part of the output (same seed, same bytes): a change that
moves a draw changes every extract after it.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from sandbox.generate_malformed import assemble, plant_malformed
from sandbox.generate_people import People
from sandbox.generate_phones import (
    GB_MOBILE_PREFIXES,
    SMS_ELIGIBLE_QUALITIES,
    TYPE_CODES,
    UNKNOWN_TYPE_CODES,
    US_STYLES,
    Phones,
)
from sandbox.generate_random import Rng
from sandbox.generate_rows import PEOPLE_COLUMNS, PHONE_COLUMNS, Row, write_rows

__all__ = [
    "DEFAULT_AS_OF",
    "GB_MOBILE_PREFIXES",
    "PEOPLE_COLUMNS",
    "PHONE_COLUMNS",
    "SMS_ELIGIBLE_QUALITIES",
    "TYPE_CODES",
    "UNKNOWN_TYPE_CODES",
    "US_STYLES",
    "GenerationSummary",
    "generate",
]

#: Dates in the extract are relative to this day, so that a seed always gives the same bytes.
DEFAULT_AS_OF = date(2025, 9, 1)


@dataclass(frozen=True, slots=True)
class GenerationSummary:
    """What :func:`generate` wrote and planted (also written as ``manifest.json``)."""

    out_dir: Path
    seed: int
    as_of: date
    students: int
    staff: int
    people_rows: int
    phone_rows: int
    #: count of each kind of mess planted (phone qualities, type codes, people quirks)
    mess: dict[str, int]
    #: file name → [{"line": n, "kind": k, "person_id": id}] of rows the source must quarantine
    malformed: dict[str, list[dict[str, Any]]]
    #: students planted with at least one SMS-eligible cell number (and how many are active)
    students_with_sms_number: int
    active_students_with_sms_number: int
    type_codes: dict[str, int] = field(default_factory=dict)

    @property
    def malformed_count(self) -> int:
        """How many rows the source should quarantine."""
        return sum(len(rows) for rows in self.malformed.values())

    @property
    def phones_per_student(self) -> float:
        """Average phone rows per student (staff rows excluded)."""
        return self.mess.get("student_phone_rows", 0) / self.students if self.students else 0.0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (the manifest, and ``nudge sandbox generate --json``)."""
        return {
            "out_dir": str(self.out_dir),
            "seed": self.seed,
            "as_of": self.as_of.isoformat(),
            "students": self.students,
            "staff": self.staff,
            "people_rows": self.people_rows,
            "phone_rows": self.phone_rows,
            "phones_per_student": round(self.phones_per_student, 3),
            "students_with_sms_number": self.students_with_sms_number,
            "active_students_with_sms_number": self.active_students_with_sms_number,
            "malformed_count": self.malformed_count,
            "mess": dict(sorted(self.mess.items())),
            "type_codes": dict(sorted(self.type_codes.items())),
            "malformed": self.malformed,
        }


def generate(
    out_dir: Path,
    *,
    students: int,
    staff: int,
    seed: int,
    malformed: bool = True,
    as_of: date = DEFAULT_AS_OF,
) -> GenerationSummary:
    """Write a messy SIS extract (``people.csv``, ``phones.csv``, ``manifest.json``).

    ``malformed=False`` leaves out the malformed rows (everything else stays messy).
    """
    if students < 0 or staff < 0:
        raise ValueError("students and staff must not be negative")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = Rng(seed)
    mess: Counter[str] = Counter()
    phones = Phones(rng, as_of, mess)  # draws the local area codes: first, before anyone
    people = People(rng, phones, mess)
    people.make_staff(staff)
    people.make_students(students)
    planted = plant_malformed(people, phones, students) if malformed else {}
    clean: dict[str, list[Row]] = {"people.csv": [*people.rows], "phones.csv": [*phones.rows]}
    files, lines = assemble(clean, planted, mess)
    write_rows(out_dir / "people.csv", PEOPLE_COLUMNS, files["people.csv"])
    write_rows(out_dir / "phones.csv", PHONE_COLUMNS, files["phones.csv"])
    summary = GenerationSummary(
        out_dir=out_dir,
        seed=seed,
        as_of=as_of,
        students=students,
        staff=staff,
        people_rows=len(files["people.csv"]),
        phone_rows=len(files["phones.csv"]),
        mess=dict(mess),
        malformed=lines,
        students_with_sms_number=people.eligible,
        active_students_with_sms_number=people.eligible_active,
        type_codes=dict(phones.codes),
    )
    (out_dir / "manifest.json").write_text(
        json.dumps(summary.to_dict(), indent=2) + "\n", encoding="utf-8"
    )
    return summary
