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
"""

from __future__ import annotations

import csv
import json
import random
import re
import unicodedata
from bisect import bisect
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import lru_cache
from itertools import accumulate
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from sandbox.names import (
    CA_AREA_CODES,
    DEPARTMENTS,
    FIRST_NAMES,
    FREE_TEXT,
    LAST_NAMES,
    NICKNAMES,
    PROGRAMS,
    RISK_LEVELS,
    SUBJECTS,
    TAGS,
    US_AREA_CODES,
)

if TYPE_CHECKING:
    from _typeshed import SupportsLenAndGetItem

T = TypeVar("T")

PEOPLE_COLUMNS: tuple[str, ...] = (
    "person_id", "role", "first_name", "last_name", "preferred_name", "email", "status",
    "program", "degree", "risk_level", "tags", "courses", "advisor_id", "department", "title",
    "roles",
)  # fmt: skip
PHONE_COLUMNS: tuple[str, ...] = (
    "person_id", "phone_type", "number", "country", "primary", "updated_at",
)  # fmt: skip

#: Dates in the extract are relative to this day, so that a seed always gives the same bytes.
DEFAULT_AS_OF = date(2025, 9, 1)

#: The institution-style type codes the generator writes, and the kind each one means.
#: The sync's default code mapping should agree (unknown codes map to ``other``).
TYPE_CODES: dict[str, str] = {
    "CELL": "mobile", "CL": "mobile",
    "PR": "home", "MA": "home", "HOME": "home",
    "WORK": "work", "BUS": "work",
    "PAR": "parent", "FAM": "parent",
    "FAX": "fax", "EMER": "other",
}  # fmt: skip
UNKNOWN_TYPE_CODES: tuple[str, ...] = ("TMP", "OLD", "DORM", "X1", "CAMP")

#: How US numbers are written, with relative weights.
US_STYLES: tuple[tuple[str, str, int], ...] = (
    ("dashes", "{a}-{e}-{l}", 30),
    ("parentheses", "({a}) {e}-{l}", 25),
    ("digits", "{a}{e}{l}", 15),
    ("dots", "{a}.{e}.{l}", 8),
    ("plus_one_spaces", "+1 {a} {e} {l}", 8),
    ("one_dashes", "1-{a}-{e}-{l}", 6),
    ("e164", "+1{a}{e}{l}", 5),
    ("spaces", "{a} {e} {l}", 3),
)

#: UK mobile prefixes libphonenumber accepts whole (076 is pagers; 07700 900 and parts of
#: 0791 are reserved or unallocated).
GB_MOBILE_PREFIXES: tuple[str, ...] = (
    *(f"077{i}" for i in range(1, 10)),
    *(f"078{i}" for i in range(10)),
    *(f"079{i}" for i in range(2, 10)),
)

#: Planted row qualities that give a student an SMS-eligible number when in a cell slot.
SMS_ELIGIBLE_QUALITIES = frozenset({"valid", "international_mobile", "shared_cell"})


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
    gen = _Generator(_Rng(seed), as_of)
    gen.make_staff(staff)
    gen.make_students(students)
    planted = gen.plant_malformed(students) if malformed else {}
    people_rows, phone_rows, lines = gen.assemble(planted)
    _write(out_dir / "people.csv", PEOPLE_COLUMNS, people_rows)
    _write(out_dir / "phones.csv", PHONE_COLUMNS, phone_rows)
    summary = GenerationSummary(
        out_dir=out_dir,
        seed=seed,
        as_of=as_of,
        students=students,
        staff=staff,
        people_rows=len(people_rows),
        phone_rows=len(phone_rows),
        mess=dict(gen.mess),
        malformed=lines,
        students_with_sms_number=gen.eligible,
        active_students_with_sms_number=gen.eligible_active,
        type_codes=dict(gen.codes),
    )
    (out_dir / "manifest.json").write_text(
        json.dumps(summary.to_dict(), indent=2) + "\n", encoding="utf-8"
    )
    return summary


def _write(path: Path, header: Sequence[str], rows: list[list[str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)


@lru_cache(maxsize=4096)
def _ascii(text: str) -> str:
    """``"Nguyễn O'Brien"`` → ``"nguyenobrien"``: what an email address is built from."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(ch for ch in folded.lower() if ch.isalnum())


class _Rng(random.Random):
    """``random.Random`` with cheaper ``randint`` and ``choice`` (one float draw each).

    The standard ones draw bits until a value falls in range, which is exact but took half
    the generator's time; a float draw is uniform enough for fake data and as deterministic.
    """

    def randint(self, a: int, b: int) -> int:
        return a + int(self.random() * (b - a + 1))

    def choice(self, seq: SupportsLenAndGetItem[T]) -> T:
        return seq[int(self.random() * len(seq))]


class _Weighted(Generic[T]):
    """Pick from weighted choices with one random draw (``rng.choices`` is slower)."""

    def __init__(self, rng: random.Random, items: Sequence[tuple[T, float]]) -> None:
        self._random = rng.random
        self._items = [item for item, _ in items]
        cum = list(accumulate(w for _, w in items))
        self._cum = [c / cum[-1] for c in cum]

    def __call__(self) -> T:
        # The last cumulative weight is exactly 1.0 and random() < 1.0: always in range.
        return self._items[bisect(self._cum, self._random())]


@dataclass(slots=True)
class _Household:
    last_name: str
    home: tuple[str, str, str] | None
    parents: list[tuple[str, str, str]]
    cell: tuple[str, str, str] | None = None
    size: int = 1


class _Generator:
    """Builds rows in memory; one instance per :func:`generate` call."""

    def __init__(self, rng: _Rng, as_of: date) -> None:
        self.rng = rng
        self.as_of = as_of
        self.people: list[list[str]] = []
        self.phones: list[list[str]] = []
        self.mess: Counter[str] = Counter()
        self.codes: Counter[str] = Counter()
        self.eligible = 0
        self.eligible_active = 0
        self.advisors: list[str] = []
        self.student_ids: list[str] = []
        self.person_line: dict[str, int] = {}
        self.recent_days = [(as_of - timedelta(days=d)).isoformat() for d in range(1001)]
        self.catalog = [
            f"{subject}-{number}-{section:02d}"
            for subject in SUBJECTS
            for number in range(101, 300, 7)
            for section in range(1, 7)
        ]
        # A college draws most students from a few local area codes.
        self.local_codes = rng.sample(US_AREA_CODES, 4)
        w = _Weighted
        # "{a}-{e}-{l}" → "%s-%s-%s": every style uses the parts in order, and % is fastest.
        self.pick_style = w(
            rng,
            [
                ((f"us_format_{name}", re.sub(r"\{[ael]\}", "%s", fmt)), weight)
                for name, fmt, weight in US_STYLES
            ],
        )
        self.pick_risk = w(rng, list(RISK_LEVELS))
        self.pick_yes = w(rng, [("Y", 60), ("Yes", 10), ("1", 10), ("true", 5), ("y", 15)])
        self.pick_no = w(rng, [("N", 50), ("", 30), ("No", 10), ("0", 10)])
        self.pick_active = w(
            rng, [("Active", 40), ("active", 25), ("A", 15), ("ACTIVE", 10), ("Enrolled", 10)]
        )
        self.pick_inactive = w(
            rng, [("Inactive", 40), ("I", 25), ("Withdrawn", 20), ("Graduated", 15)]
        )
        self.pick_cell_quality = w(
            rng,
            [
                ("free_text", 1.2),
                ("blank", 1.0),
                ("invalid", 1.3),
                ("extension_in_cell", 0.4),
                ("landline_coded_as_cell", 0.5),
                ("toll_free_coded_as_cell", 0.3),
                ("international_mobile", 3.5),
                ("valid", 91.8),
            ],
        )
        self.pick_dept = w(rng, [(name, spec[0]) for name, spec in DEPARTMENTS.items()])
        self.pick_home_code = w(rng, [("PR", 50), ("MA", 20), ("HOME", 30)])
        self.pick_country = w(rng, [("GB", 30), ("MX", 35), ("IN", 20), ("CA", 15)])

    # --- numbers ------------------------------------------------------------------------
    def us_digits(self) -> tuple[str, str, str]:
        rng = self.rng
        area = rng.choice(self.local_codes) if rng.random() < 0.8 else rng.choice(US_AREA_CODES)
        exchange = rng.randint(200, 999)
        while exchange % 100 == 11 or exchange == 555:  # N11 and 555 are not subscriber ranges
            exchange = rng.randint(200, 999)
        return area, str(exchange), f"{rng.randint(0, 9999):04d}"

    def us_text(self, digits: tuple[str, str, str]) -> str:
        key, fmt = self.pick_style()
        self.mess[key] += 1
        text = fmt % digits
        if self.rng.random() < 0.01:
            self.mess["surrounding_whitespace"] += 1
            text = f" {text} "
        return text

    def us_country(self) -> str:
        r = self.rng.random()
        return "" if r < 0.88 else "US" if r < 0.98 else "us"

    def international(self, *, mobile: bool) -> tuple[str, str]:
        """(number, country column) of a foreign number, national or ``+`` form.

        Landlines come from GB and IN only: libphonenumber cannot tell MX and CA landlines
        from mobiles, so those would not be detectable as landlines.
        """
        rng = self.rng
        country = self.pick_country() if mobile else rng.choice(("GB", "IN"))

        def d(n: int) -> str:
            return f"{rng.randint(0, 10**n - 1):0{n}d}"

        if country == "GB":
            national = (
                f"{rng.choice(GB_MOBILE_PREFIXES)}{d(1)} {d(6)}"
                if mobile
                else rng.choice((f"020 7{d(3)} {d(4)}", f"0161 {rng.randint(200, 999)} {d(4)}"))
            )
            plus = "+44 " + national[1:]
        elif country == "MX":
            national = f"{rng.choice(('55', '33', '81'))} {rng.randint(1000, 9999)} {d(4)}"
            plus = "+52 " + national
        elif country == "IN":
            national = (
                f"9{d(4)} {d(5)}"  # 9xxxx is all mobile; 6-8 mix in landlines
                if mobile
                else f"022 {rng.randint(2000, 6999)} {d(4)}"
            )
            plus = "+91 " + national.lstrip("0")
        else:
            exchange = rng.randint(200, 999)
            while exchange % 100 == 11 or exchange == 555:
                exchange = rng.randint(200, 999)
            national = f"({rng.choice(CA_AREA_CODES)}) {exchange}-{d(4)}"
            plus = "+1 " + national.replace("(", "").replace(")", "")
        self.mess[f"international_{country}"] += 1
        if rng.random() < 0.7:
            return national, country
        return plus, ""

    def invalid(self) -> str:
        rng = self.rng
        return rng.choice(
            (
                f"{rng.randint(200, 999)}-{rng.randint(1000, 9999)}",  # 7 digits: no area code
                "000-000-0000",
                f"(123) {rng.randint(200, 999)}-{rng.randint(1000, 9999)}",  # no area code 123
                f"555-01{rng.randint(0, 99):02d}",
                f"{rng.randint(200, 999)}-{rng.randint(200, 999)}-{rng.randint(10, 999)}",
            )
        )

    def with_extension(self, digits: tuple[str, str, str]) -> str:
        a, e, line = digits
        ext = str(self.rng.randint(2, 9999))
        return self.rng.choice(
            (f"{a}-{e}-{line} x{ext}", f"({a}) {e}-{line} ext. {ext}", f"{a}.{e}.{line} ext {ext}")
        )

    # --- dates and flags ----------------------------------------------------------------
    def recent_date(self) -> str:
        rng = self.rng
        r = rng.random()
        if r < 0.05:
            return ""
        day = rng.choice(self.recent_days)
        if r < 0.65:
            return day
        clock = f"{rng.randint(6, 21):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}"
        if r < 0.85:
            return f"{day}T{clock}"
        if r < 0.95:
            return f"{day} {clock}"
        return f"{day}T{clock}Z"

    def stale_date(self) -> str:
        self.mess["stale_row"] += 1
        years = self.rng.randint(6, 13)
        day = self.as_of - timedelta(days=365 * years + self.rng.randint(0, 364))
        return day.isoformat()

    def when(self) -> str:
        return self.stale_date() if self.rng.random() < 0.04 else self.recent_date()

    def phone(
        self,
        pid: str,
        code: str,
        number: str,
        country: str,
        primary: bool,
        updated: str,
        quality: str,
    ) -> None:
        self.codes[code] += 1
        self.mess[f"quality_{quality}"] += 1
        flag = self.pick_yes() if primary else self.pick_no()
        self.phones.append([pid, code, number, country, flag, updated])

    # --- staff --------------------------------------------------------------------------
    def make_staff(self, count: int) -> None:
        rng = self.rng
        for i in range(count):
            pid = f"E{100001 + i}"
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            dept = "Advising" if i == 0 else self.pick_dept()
            _, titles, advises = DEPARTMENTS[dept]
            roles = ["Advisor"] if advises else ["Staff"]
            if i == 0:
                roles = ["Admin", "Advisor"]
            if i == 0 or rng.random() < (0.7 if advises else 0.2):
                roles.append("Texting")
                self.mess["staff_with_texting_role"] += 1
            roles_cell = (" ; " if rng.random() < 0.1 else ";").join(roles)
            if rng.random() < 0.05:
                roles_cell += ";"  # a trailing separator, as spreadsheets leave them
            active = i == 0 or rng.random() > 0.03
            if advises and active:
                self.advisors.append(pid)
            self.people.append(
                [
                    pid, "staff" if rng.random() < 0.9 else "Staff", first, last, "",
                    f"{_ascii(first)}.{_ascii(last)}{i}@college.example.edu",
                    "Active" if active else "Inactive", "", "", "", "", "", "", dept,
                    rng.choice(titles), roles_cell,
                ]
            )  # fmt: skip
            self.mess["staff_rows"] += 1
            work = self.us_digits()
            if rng.random() < 0.5:
                self.phone(
                    pid,
                    rng.choice(("WORK", "BUS")),
                    self.with_extension(work),
                    "",
                    True,
                    self.recent_date(),
                    "extension",
                )
            else:
                self.phone(pid, "WORK", self.us_text(work), "", True, self.recent_date(), "valid")
            if rng.random() < 0.5:
                self.phone(
                    pid,
                    "CELL",
                    self.us_text(self.us_digits()),
                    self.us_country(),
                    False,
                    self.recent_date(),
                    "valid",
                )

    # --- students -----------------------------------------------------------------------
    def make_students(self, count: int) -> None:
        rng = self.rng
        household: _Household | None = None
        for i in range(count):
            pid = f"A{i + 1:08d}"
            self.student_ids.append(pid)
            sibling = household is not None and household.size < 3 and rng.random() < 0.07
            if sibling and household is not None:
                household.size += 1
                self.mess["sibling"] += 1
            else:
                n_parents = 0 if rng.random() < 0.4 else 1 if rng.random() < 0.67 else 2
                household = _Household(
                    last_name=rng.choice(LAST_NAMES),
                    home=self.us_digits() if rng.random() < 0.55 else None,
                    parents=[self.us_digits() for _ in range(n_parents)],
                )
            active = rng.random() > 0.05
            self.student_row(pid, household, active)
            cell_ok = self.student_phones(pid, household, sibling)
            if cell_ok:
                self.eligible += 1
                self.eligible_active += active

    def student_row(self, pid: str, household: _Household, active: bool) -> None:
        rng = self.rng
        first = rng.choice(FIRST_NAMES)
        last = household.last_name
        preferred = ""
        if rng.random() < 0.08:
            preferred = NICKNAMES.get(first) or rng.choice(FIRST_NAMES)
            if preferred == first:
                preferred = first[:3]
            self.mess["preferred_name"] += 1
        email = f"{_ascii(first)}.{_ascii(last)}{pid[-5:]}@students.example.edu"
        if rng.random() < 0.04:
            email = ""
            self.mess["no_email"] += 1
        if not active:
            self.mess["inactive_student"] += 1
        program, degree = rng.choice(PROGRAMS) if rng.random() > 0.02 else ("", "")
        risk = self.pick_risk()
        if rng.random() < 0.05:
            risk = risk.capitalize()
        tags = list(dict.fromkeys(rng.choices(TAGS, k=rng.choice((0, 0, 1, 1, 1, 2, 3)))))
        courses = rng.choices(self.catalog, k=rng.randint(2, 5))
        advisor = rng.choice(self.advisors) if self.advisors and rng.random() < 0.93 else ""
        self.people.append(
            [
                pid, "student" if rng.random() < 0.95 else "Student", first, last, preferred,
                email, self.pick_active() if active else self.pick_inactive(), program, degree,
                risk, ";".join(tags), ("; " if rng.random() < 0.2 else ";").join(courses),
                advisor, "", "", "",
            ]
        )  # fmt: skip

    def student_phones(self, pid: str, household: _Household, sibling: bool) -> bool:
        """Write one student's phone rows; True if one of them is an SMS-eligible cell."""
        rng = self.rng
        before = len(self.phones)
        eligible = False
        if rng.random() < 0.93:
            code = "CELL" if rng.random() < 0.75 else "CL"
            if sibling and household.cell is not None and rng.random() < 0.25:
                quality, number, country = "shared_cell", self.us_text(household.cell), ""
            else:
                quality = self.pick_cell_quality()
                number, country = self.cell_number(quality)
                if quality == "valid" and household.cell is None:
                    household.cell = self._last_cell
            eligible = quality in SMS_ELIGIBLE_QUALITIES
            self.phone(pid, code, number, country, True, self.when(), quality)
            if rng.random() < 0.10:
                # The number they had at admission, never removed.
                self.phone(
                    pid, code, self.us_text(self.us_digits()), "", False, self.stale_date(), "valid"
                )
                self.mess["second_older_cell"] += 1
                eligible = True
        if household.home is not None:
            code = self.pick_home_code()
            if rng.random() < 0.02:
                self.phone(pid, code, rng.choice(FREE_TEXT), "", False, self.when(), "free_text")
            else:
                self.phone(
                    pid,
                    code,
                    self.us_text(household.home),
                    self.us_country(),
                    not eligible and rng.random() < 0.5,
                    self.when(),
                    "valid",
                )
            if sibling:
                self.mess["shared_home_number"] += 1
        for parent in household.parents:
            code = "PAR" if rng.random() < 0.8 else "FAM"
            self.phone(
                pid, code, self.us_text(parent), self.us_country(), False, self.when(), "valid"
            )
            if sibling:
                self.mess["shared_parent_number"] += 1
        r = rng.random()
        if r < 0.10:
            self.phone(pid, "EMER", self.us_text(self.us_digits()), "", False, self.when(), "valid")
        if r > 0.94:
            self.phone(
                pid,
                rng.choice(("WORK", "BUS")),
                self.with_extension(self.us_digits())
                if rng.random() < 0.4
                else self.us_text(self.us_digits()),
                "",
                False,
                self.when(),
                "valid",
            )
        if rng.random() < 0.003:
            self.phone(pid, "FAX", self.us_text(self.us_digits()), "", False, self.when(), "valid")
        if rng.random() < 0.02:
            code = rng.choice(UNKNOWN_TYPE_CODES)
            self.phone(pid, code, self.us_text(self.us_digits()), "", False, self.when(), "valid")
            self.mess["unknown_type_code"] += 1
        self.mess["student_phone_rows"] += len(self.phones) - before
        return eligible

    _last_cell: tuple[str, str, str] | None = None

    def cell_number(self, quality: str) -> tuple[str, str]:
        """(number, country) for a cell slot of the given planted quality."""
        rng = self.rng
        if quality == "valid":
            self._last_cell = self.us_digits()
            return self.us_text(self._last_cell), self.us_country()
        if quality == "free_text":
            return rng.choice(FREE_TEXT), ""
        if quality == "blank":
            return rng.choice(("", "", " ")), ""
        if quality == "invalid":
            return self.invalid(), ""
        if quality == "extension_in_cell":
            return self.with_extension(self.us_digits()), ""
        if quality == "toll_free_coded_as_cell":
            prefix = rng.choice(("800", "888", "877", "866"))
            return f"1-{prefix}-{rng.randint(200, 999)}-{rng.randint(1000, 9999)}", ""
        if quality == "landline_coded_as_cell":
            return self.international(mobile=False)
        return self.international(mobile=True)

    # --- malformed rows -----------------------------------------------------------------
    def plant_malformed(self, students: int) -> dict[str, list[tuple[int, str, list[str]]]]:
        """Rows the source must quarantine, each with the index it goes *before*."""
        if students < 20:
            return {}
        rng = self.rng
        per_kind = max(1, students // 10000)
        people: list[tuple[int, str, list[str]]] = []
        phones: list[tuple[int, str, list[str]]] = []
        n_people, n_phones = len(self.people), len(self.phones)
        template = self.people[-1]
        for k in range(per_kind):
            ghost = f"Z{k + 1:08d}"  # ids no phone row refers to
            row = [ghost, *template[1:]]
            people.append((rng.randint(0, n_people), "ragged_extra_field", [*row, "extra"]))
            people.append((rng.randint(0, n_people), "blank_person_id", ["", *template[1:]]))
            bad = list(row)
            bad[0], bad[6] = f"Y{k + 1:08d}", rng.choice(("maybe", "Pending", "??"))
            people.append((rng.randint(0, n_people), "bad_status", bad))
            alumni = list(row)
            alumni[0], alumni[1] = f"X{k + 1:08d}", "alumni"
            people.append((rng.randint(0, n_people), "unknown_role", alumni))
            original = rng.randrange(len(self.student_ids)) if self.student_ids else 0
            dup = list(self.people[len(self.people) - len(self.student_ids) + original])
            dup[2] = rng.choice(FIRST_NAMES)
            people.append(
                (
                    rng.randint(len(self.people) - len(self.student_ids) + original + 1, n_people),
                    "duplicate_person_id",
                    dup,
                )
            )
            sid = rng.choice(self.student_ids)
            phones.append(
                (
                    rng.randint(0, n_phones),
                    "ragged_missing_field",
                    [sid, "CELL", self.us_text(self.us_digits()), "", "Y"],
                )
            )
            phones.append(
                (
                    rng.randint(0, n_phones),
                    "blank_person_id",
                    ["", "CELL", self.us_text(self.us_digits()), "", "Y", ""],
                )
            )
            phones.append(
                (
                    rng.randint(0, n_phones),
                    "bad_updated_at",
                    [
                        sid,
                        "PR",
                        self.us_text(self.us_digits()),
                        "",
                        "N",
                        rng.choice(("31/02/2021", "yesterday", "2021-13-45")),
                    ],
                )
            )
            phones.append(
                (
                    rng.randint(0, n_phones),
                    "bad_primary_flag",
                    [sid, "CELL", self.us_text(self.us_digits()), "", "maybe", ""],
                )
            )
            phones.append(
                (
                    rng.randint(0, n_phones),
                    "unknown_person",
                    [f"A{90000000 + k}", "CELL", self.us_text(self.us_digits()), "", "Y", ""],
                )
            )
        return {"people.csv": people, "phones.csv": phones}

    def assemble(
        self, planted: dict[str, list[tuple[int, str, list[str]]]]
    ) -> tuple[list[list[str]], list[list[str]], dict[str, list[dict[str, Any]]]]:
        """Insert the malformed rows; return the final rows and each planted row's line."""
        out: dict[str, list[list[str]]] = {}
        lines: dict[str, list[dict[str, Any]]] = {}
        for name, rows in (("people.csv", self.people), ("phones.csv", self.phones)):
            extra = sorted(planted.get(name, []), key=lambda item: item[0])
            merged: list[list[str]] = []
            found: list[dict[str, Any]] = []
            j = 0
            for i in range(len(rows) + 1):
                while j < len(extra) and extra[j][0] == i:
                    _, kind, row = extra[j]
                    found.append({"line": len(merged) + 2, "kind": kind, "person_id": row[0]})
                    merged.append(row)
                    j += 1
                if i < len(rows):
                    merged.append(rows[i])
            out[name] = merged
            if planted:
                lines[name] = found
        for name in lines:
            for item in lines[name]:
                self.mess[f"malformed_{item['kind']}"] += 1
        return out["people.csv"], out["phones.csv"], lines
