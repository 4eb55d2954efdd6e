"""Phone numbers as SIS extracts write them, and the ``phones.csv`` rows that carry them.

Every formatting habit of a real extract (:data:`US_STYLES`, extensions, free text, foreign
numbers in national or ``+`` form), the dates a row was last updated, and the primary flag
in its many spellings. :class:`Phones` makes them and keeps the rows, by column name.
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import date, timedelta

from sandbox.generate_random import Rng, Weighted
from sandbox.generate_rows import PhoneRow
from sandbox.names import CA_AREA_CODES, FREE_TEXT, US_AREA_CODES

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

#: A US number's parts: area code, exchange, line.
Digits = tuple[str, str, str]


class Phones:
    """Makes numbers, dates and flags, and keeps the ``phones.csv`` rows (one per phone)."""

    def __init__(self, rng: Rng, as_of: date, mess: Counter[str]) -> None:
        self.rng = rng
        self.as_of = as_of
        self.mess = mess
        self.codes: Counter[str] = Counter()
        self.rows: list[PhoneRow] = []
        self.recent_days = [(as_of - timedelta(days=d)).isoformat() for d in range(1001)]
        # A college draws most students from a few local area codes.
        self.local_codes = rng.sample(US_AREA_CODES, 4)
        # "{a}-{e}-{l}" → "%s-%s-%s": every style uses the parts in order, and % is fastest.
        self.pick_style = Weighted(
            rng,
            [
                ((f"us_format_{name}", re.sub(r"\{[ael]\}", "%s", fmt)), weight)
                for name, fmt, weight in US_STYLES
            ],
        )
        self.pick_yes = Weighted(rng, [("Y", 60), ("Yes", 10), ("1", 10), ("true", 5), ("y", 15)])
        self.pick_no = Weighted(rng, [("N", 50), ("", 30), ("No", 10), ("0", 10)])
        self.pick_cell_quality = Weighted(
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
        self.pick_home_code = Weighted(rng, [("PR", 50), ("MA", 20), ("HOME", 30)])
        self.pick_country = Weighted(rng, [("GB", 30), ("MX", 35), ("IN", 20), ("CA", 15)])

    # --- the row ------------------------------------------------------------------------
    def add(
        self,
        person_id: str,
        *,
        phone_type: str,
        number: str,
        country: str,
        primary: bool,
        updated_at: str,
        quality: str,
    ) -> None:
        """Keep one phone row; ``quality`` is what was planted (counted in the manifest)."""
        self.codes[phone_type] += 1
        self.mess[f"quality_{quality}"] += 1
        row: PhoneRow = {
            "person_id": person_id,
            "phone_type": phone_type,
            "number": number,
            "country": country,
            "primary": self.pick_yes() if primary else self.pick_no(),
            "updated_at": updated_at,
        }
        self.rows.append(row)

    # --- numbers ------------------------------------------------------------------------
    def us_digits(self) -> Digits:
        rng = self.rng
        area = rng.choice(self.local_codes) if rng.random() < 0.8 else rng.choice(US_AREA_CODES)
        exchange = rng.randint(200, 999)
        while exchange % 100 == 11 or exchange == 555:  # N11 and 555 are not subscriber ranges
            exchange = rng.randint(200, 999)
        return area, str(exchange), f"{rng.randint(0, 9999):04d}"

    def us_text(self, digits: Digits) -> str:
        key, fmt = self.pick_style()
        self.mess[key] += 1
        text = fmt % digits
        if self.rng.random() < 0.01:
            self.mess["surrounding_whitespace"] += 1
            text = f" {text} "
        return text

    def us_number(self) -> str:
        """A new US number, written in one of the usual styles."""
        return self.us_text(self.us_digits())

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

    def with_extension(self, digits: Digits) -> str:
        a, e, line = digits
        ext = str(self.rng.randint(2, 9999))
        return self.rng.choice(
            (f"{a}-{e}-{line} x{ext}", f"({a}) {e}-{line} ext. {ext}", f"{a}.{e}.{line} ext {ext}")
        )

    def cell_number(self, quality: str) -> tuple[str, str, Digits | None]:
        """(number, country, digits) for a cell slot of the given planted quality; the
        digits only of a valid US number (a household's cell a sibling may share)."""
        rng = self.rng
        if quality == "valid":
            digits = self.us_digits()
            return self.us_text(digits), self.us_country(), digits
        if quality == "free_text":
            return rng.choice(FREE_TEXT), "", None
        if quality == "blank":
            return rng.choice(("", "", " ")), "", None
        if quality == "invalid":
            return self.invalid(), "", None
        if quality == "extension_in_cell":
            return self.with_extension(self.us_digits()), "", None
        if quality == "toll_free_coded_as_cell":
            prefix = rng.choice(("800", "888", "877", "866"))
            return f"1-{prefix}-{rng.randint(200, 999)}-{rng.randint(1000, 9999)}", "", None
        if quality == "landline_coded_as_cell":
            return (*self.international(mobile=False), None)
        return (*self.international(mobile=True), None)

    # --- dates ----------------------------------------------------------------------------
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
