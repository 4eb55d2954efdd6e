"""Staff and students: the ``people.csv`` rows, and each person's phones.

Students come in households (siblings share a last name, a home number, parents' numbers
and sometimes a cell); staff carry roles, departments and work numbers with extensions.
Rows are built by column name (:class:`~sandbox.generate_rows.PersonRow`).
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache

from sandbox.generate_phones import SMS_ELIGIBLE_QUALITIES, UNKNOWN_TYPE_CODES, Digits, Phones
from sandbox.generate_random import Rng, Weighted
from sandbox.generate_rows import PersonRow
from sandbox.names import (
    DEPARTMENTS,
    FIRST_NAMES,
    FREE_TEXT,
    LAST_NAMES,
    NICKNAMES,
    PROGRAMS,
    RISK_LEVELS,
    SUBJECTS,
    TAGS,
)


@lru_cache(maxsize=4096)
def ascii_fold(text: str) -> str:
    """``"Nguyễn O'Brien"`` → ``"nguyenobrien"``: what an email address is built from."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(ch for ch in folded.lower() if ch.isalnum())


@dataclass(slots=True)
class _Household:
    last_name: str
    home: Digits | None
    parents: list[Digits]
    cell: Digits | None = None
    size: int = 1


class People:
    """Makes staff and students (with their phones, through ``phones``); keeps the rows."""

    def __init__(self, rng: Rng, phones: Phones, mess: Counter[str]) -> None:
        self.rng = rng
        self.phones = phones
        self.mess = mess
        self.rows: list[PersonRow] = []
        self.advisors: list[str] = []
        self.student_ids: list[str] = []
        #: students planted with an SMS-eligible cell number, and how many of them are active
        self.eligible = 0
        self.eligible_active = 0
        self.catalog = [
            f"{subject}-{number}-{section:02d}"
            for subject in SUBJECTS
            for number in range(101, 300, 7)
            for section in range(1, 7)
        ]
        self.pick_risk = Weighted(rng, list(RISK_LEVELS))
        self.pick_active = Weighted(
            rng, [("Active", 40), ("active", 25), ("A", 15), ("ACTIVE", 10), ("Enrolled", 10)]
        )
        self.pick_inactive = Weighted(
            rng, [("Inactive", 40), ("I", 25), ("Withdrawn", 20), ("Graduated", 15)]
        )
        self.pick_dept = Weighted(rng, [(name, spec[0]) for name, spec in DEPARTMENTS.items()])

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
            row: PersonRow = {
                "person_id": pid,
                "role": "staff" if rng.random() < 0.9 else "Staff",
                "first_name": first,
                "last_name": last,
                "preferred_name": "",
                "email": f"{ascii_fold(first)}.{ascii_fold(last)}{i}@college.example.edu",
                "status": "Active" if active else "Inactive",
                "program": "",
                "degree": "",
                "risk_level": "",
                "tags": "",
                "courses": "",
                "advisor_id": "",
                "department": dept,
                "title": rng.choice(titles),
                "roles": roles_cell,
            }
            self.rows.append(row)
            self.mess["staff_rows"] += 1
            self._staff_phones(pid)

    def _staff_phones(self, pid: str) -> None:
        rng, phones = self.rng, self.phones
        work = phones.us_digits()
        if rng.random() < 0.5:
            phones.add(
                pid,
                phone_type=rng.choice(("WORK", "BUS")),
                number=phones.with_extension(work),
                country="",
                primary=True,
                updated_at=phones.recent_date(),
                quality="extension",
            )
        else:
            phones.add(
                pid,
                phone_type="WORK",
                number=phones.us_text(work),
                country="",
                primary=True,
                updated_at=phones.recent_date(),
                quality="valid",
            )
        if rng.random() < 0.5:
            phones.add(
                pid,
                phone_type="CELL",
                number=phones.us_number(),
                country=phones.us_country(),
                primary=False,
                updated_at=phones.recent_date(),
                quality="valid",
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
                    home=self.phones.us_digits() if rng.random() < 0.55 else None,
                    parents=[self.phones.us_digits() for _ in range(n_parents)],
                )
            active = rng.random() > 0.05
            self._student_row(pid, household, active)
            if self._student_phones(pid, household, sibling):
                self.eligible += 1
                self.eligible_active += active

    def _student_row(self, pid: str, household: _Household, active: bool) -> None:
        rng = self.rng
        first = rng.choice(FIRST_NAMES)
        last = household.last_name
        preferred = ""
        if rng.random() < 0.08:
            preferred = NICKNAMES.get(first) or rng.choice(FIRST_NAMES)
            if preferred == first:
                preferred = first[:3]
            self.mess["preferred_name"] += 1
        email = f"{ascii_fold(first)}.{ascii_fold(last)}{pid[-5:]}@students.example.edu"
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
        # The keys are in file order, and the draws below happen in that order too.
        row: PersonRow = {
            "person_id": pid,
            "role": "student" if rng.random() < 0.95 else "Student",
            "first_name": first,
            "last_name": last,
            "preferred_name": preferred,
            "email": email,
            "status": self.pick_active() if active else self.pick_inactive(),
            "program": program,
            "degree": degree,
            "risk_level": risk,
            "tags": ";".join(tags),
            "courses": ("; " if rng.random() < 0.2 else ";").join(courses),
            "advisor_id": advisor,
            "department": "",
            "title": "",
            "roles": "",
        }
        self.rows.append(row)

    def _student_phones(self, pid: str, household: _Household, sibling: bool) -> bool:
        """Add one student's phone rows; True if one of them is an SMS-eligible cell."""
        rng, phones = self.rng, self.phones
        before = len(phones.rows)
        eligible = False
        if rng.random() < 0.93:
            code = "CELL" if rng.random() < 0.75 else "CL"
            if sibling and household.cell is not None and rng.random() < 0.25:
                quality, number, country = "shared_cell", phones.us_text(household.cell), ""
            else:
                quality = phones.pick_cell_quality()
                number, country, digits = phones.cell_number(quality)
                if quality == "valid" and household.cell is None:
                    household.cell = digits
            eligible = quality in SMS_ELIGIBLE_QUALITIES
            phones.add(
                pid,
                phone_type=code,
                number=number,
                country=country,
                primary=True,
                updated_at=phones.when(),
                quality=quality,
            )
            if rng.random() < 0.10:
                # The number they had at admission, never removed.
                phones.add(
                    pid,
                    phone_type=code,
                    number=phones.us_number(),
                    country="",
                    primary=False,
                    updated_at=phones.stale_date(),
                    quality="valid",
                )
                self.mess["second_older_cell"] += 1
                eligible = True
        if household.home is not None:
            code = phones.pick_home_code()
            if rng.random() < 0.02:
                phones.add(
                    pid,
                    phone_type=code,
                    number=rng.choice(FREE_TEXT),
                    country="",
                    primary=False,
                    updated_at=phones.when(),
                    quality="free_text",
                )
            else:
                phones.add(
                    pid,
                    phone_type=code,
                    number=phones.us_text(household.home),
                    country=phones.us_country(),
                    primary=not eligible and rng.random() < 0.5,
                    updated_at=phones.when(),
                    quality="valid",
                )
            if sibling:
                self.mess["shared_home_number"] += 1
        for parent in household.parents:
            phones.add(
                pid,
                phone_type="PAR" if rng.random() < 0.8 else "FAM",
                number=phones.us_text(parent),
                country=phones.us_country(),
                primary=False,
                updated_at=phones.when(),
                quality="valid",
            )
            if sibling:
                self.mess["shared_parent_number"] += 1
        self._other_phones(pid)
        self.mess["student_phone_rows"] += len(phones.rows) - before
        return eligible

    def _other_phones(self, pid: str) -> None:
        """Emergency, work, fax and unknown-code rows: nobody to text, all to classify."""
        rng, phones = self.rng, self.phones
        r = rng.random()
        if r < 0.10:
            phones.add(
                pid,
                phone_type="EMER",
                number=phones.us_number(),
                country="",
                primary=False,
                updated_at=phones.when(),
                quality="valid",
            )
        if r > 0.94:
            phones.add(
                pid,
                phone_type=rng.choice(("WORK", "BUS")),
                number=phones.with_extension(phones.us_digits())
                if rng.random() < 0.4
                else phones.us_number(),
                country="",
                primary=False,
                updated_at=phones.when(),
                quality="valid",
            )
        if rng.random() < 0.003:
            phones.add(
                pid,
                phone_type="FAX",
                number=phones.us_number(),
                country="",
                primary=False,
                updated_at=phones.when(),
                quality="valid",
            )
        if rng.random() < 0.02:
            phones.add(
                pid,
                phone_type=rng.choice(UNKNOWN_TYPE_CODES),
                number=phones.us_number(),
                country="",
                primary=False,
                updated_at=phones.when(),
                quality="valid",
            )
            self.mess["unknown_type_code"] += 1
