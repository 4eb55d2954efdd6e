"""Turn a CSV extract into Ethos ``persons`` records, so CSV and Ethos syncs can be compared.

The sandbox Ethos API serves the people the generator wrote to ``people.csv`` and
``phones.csv``, in the shape of Ethos ``persons`` v12: ``names``, ``emails``, ``phones``,
``credentials``, ``roles``. The files are read here with the standard ``csv`` module and
rules of the emulator's own, never with the ``csv:`` source: the emulator exists to check
the code under test, so it must not share that code's bugs.

What is served (the documented extract layout, read strictly): rows whose width matches the
header, with a person id, a role of ``student`` or ``staff`` and a known status; the first
row of an id wins. Phones are served for served people only, when their ``primary`` flag
and ``updated_at`` date (if the columns exist) are well formed. Everything else is left out,
as an SIS would never have had it. Values are served as they are (trimmed), odd characters
included: checking them is the client's job.

Institution type codes become the ``phoneType`` enum (:data:`CODE_TO_PHONE_TYPE`; unknown
codes become ``other``), an extension written into the number (``x204``, ``ext. 12``) moves
to ``extension``, and the ISO country becomes ``countryCallingCode``. A top-level ``status``
(not part of v12) is added unless ``include_status=False``.
"""

from __future__ import annotations

import csv
import io
import re
import uuid
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import phonenumbers

#: Institution type code → Ethos ``phoneType`` (anything else → ``other``).
CODE_TO_PHONE_TYPE: dict[str, str] = {
    "CELL": "mobile", "CL": "mobile", "MOBILE": "mobile",
    "PR": "home", "MA": "home", "HOME": "home",
    "WORK": "business", "BUS": "business",
    "PAR": "parent", "FAM": "family",
    "FAX": "fax", "EMER": "other",
}  # fmt: skip

#: GUIDs are derived from the SIS id, so the same extract always gives the same ids.
_NAMESPACE = uuid.UUID("6f1c1d4e-8a0b-4c55-9b1e-2f0a7c3d9e11")
_EXTENSION = re.compile(r"\s*(?:x|ext\.?)\s*(\d+)\s*$", re.IGNORECASE)

#: Status words an SIS extract uses (lower-cased) → the status served.
STATUSES: dict[str, str] = {
    **dict.fromkeys(("active", "a", "act", "enrolled", "current"), "active"),
    **dict.fromkeys(
        ("inactive", "i", "inact", "withdrawn", "graduated", "separated", "terminated", "former"),
        "inactive",
    ),
}
_YES = frozenset({"y", "yes", "1", "true", "t"})
_NO = frozenset({"n", "no", "0", "false", "f", ""})


class ExtractError(ValueError):
    """The folder does not hold an extract the emulator can serve (file, header, encoding)."""


class PersonLike(Protocol):
    """What :func:`person_to_ethos` needs of a person (the emulator's own, or a source's)."""

    @property
    def person_id(self) -> str: ...
    @property
    def role(self) -> str: ...
    @property
    def fields(self) -> Mapping[str, str | list[str] | None]: ...


class PhoneLike(Protocol):
    """What :func:`person_to_ethos` needs of a phone row."""

    @property
    def person_id(self) -> str: ...
    @property
    def type_code(self) -> str: ...
    @property
    def number(self) -> str: ...
    @property
    def country(self) -> str | None: ...
    @property
    def primary(self) -> bool: ...


class ExtractLike(Protocol):
    """People and phones already read by someone else (the benchmark's CSV read)."""

    @property
    def people(self) -> Sequence[PersonLike]: ...
    @property
    def phones(self) -> Sequence[PhoneLike]: ...


@dataclass(frozen=True, slots=True)
class ExtractPerson:
    """A person as the emulator read them from ``people.csv``."""

    person_id: str
    role: str
    fields: dict[str, str | list[str] | None] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ExtractPhone:
    """A phone row as the emulator read it from ``phones.csv``."""

    person_id: str
    type_code: str
    number: str
    country: str | None
    primary: bool


def person_guid(person_id: str) -> str:
    """The Ethos ``id`` (a GUID) the sandbox gives the person with this SIS id."""
    return str(uuid.uuid5(_NAMESPACE, person_id))


def read_extract(
    folder: Path, *, encoding: str | None = None
) -> tuple[list[ExtractPerson], list[ExtractPhone]]:
    """The people and phones of ``folder``'s ``people.csv`` and ``phones.csv`` (see above).

    Raises :class:`ExtractError` for a missing file, a missing required column or text
    that does not decode.
    """
    people: list[ExtractPerson] = []
    seen: set[str] = set()
    for row in _rows(folder / "people.csv", encoding, ("person_id", "role", "status")):
        pid = row["person_id"]
        role = row["role"].lower()
        status = STATUSES.get(row["status"].lower())
        if not pid or pid in seen or role not in ("student", "staff") or status is None:
            continue
        seen.add(pid)
        fields: dict[str, str | list[str] | None] = {
            name: row.get(name) or None
            for name in ("first_name", "last_name", "preferred_name", "email", "department")
        }
        fields["status"] = status
        fields["roles"] = [r.strip() for r in row.get("roles", "").split(";") if r.strip()]
        people.append(ExtractPerson(pid, role, fields))
    phones: list[ExtractPhone] = []
    for row in _rows(folder / "phones.csv", encoding, ("person_id", "phone_type", "number")):
        if row["person_id"] not in seen:
            continue
        flag = row.get("primary", "").lower()
        if flag not in _YES | _NO or not _is_date(row.get("updated_at", "")):
            continue
        country = row.get("country", "").upper()
        if country and (len(country) != 2 or not country.isascii() or not country.isalpha()):
            continue
        phones.append(
            ExtractPhone(
                person_id=row["person_id"],
                type_code=row["phone_type"],
                number=row["number (raw)"],
                country=country or None,
                primary=flag in _YES,
            )
        )
    return people, phones


def _rows(path: Path, encoding: str | None, required: Sequence[str]) -> Iterator[dict[str, str]]:
    """Each row of the right width, keyed by lower-case column, values trimmed; the raw
    number (the sync keeps it exactly as received) under ``"number (raw)"``."""
    try:
        text = path.read_text(encoding=encoding or "utf-8-sig")
    except FileNotFoundError:
        raise ExtractError(f"{path}: file not found") from None
    except UnicodeDecodeError as exc:
        raise ExtractError(f"{path.name}: not {encoding or 'UTF-8'} ({exc.reason})") from None
    except LookupError:
        raise ExtractError(f"unknown encoding {encoding!r}") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    header = [h.strip().lower() for h in next(reader, [])]
    missing = [c for c in required if c not in header]
    if missing:
        raise ExtractError(f"{path.name}: missing column(s) {', '.join(missing)}")
    for cells in reader:
        if len(cells) != len(header):
            continue
        row = dict(zip(header, (c.strip() for c in cells), strict=True))
        if "number" in header:
            row["number (raw)"] = cells[header.index("number")]
        yield row


def _is_date(value: str) -> bool:
    if not value:
        return True
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def persons_from_folder(
    folder: Path, *, encoding: str | None = None, include_status: bool = True
) -> list[dict[str, Any]]:
    """Read ``people.csv``/``phones.csv`` in ``folder`` and return Ethos persons."""
    people, phones = read_extract(Path(folder), encoding=encoding)
    return _persons(people, phones, include_status=include_status)


def persons_from_extract(
    extract: ExtractLike, *, include_status: bool = True
) -> list[dict[str, Any]]:
    """Ethos persons for people and phones someone else has read, in their order."""
    return _persons(extract.people, extract.phones, include_status=include_status)


def _persons(
    people: Iterable[PersonLike], phones: Iterable[PhoneLike], *, include_status: bool
) -> list[dict[str, Any]]:
    by_person: dict[str, list[PhoneLike]] = defaultdict(list)
    for phone in phones:
        by_person[phone.person_id].append(phone)
    return [
        person_to_ethos(p, by_person.get(p.person_id, ()), include_status=include_status)
        for p in people
    ]


def person_to_ethos(
    person: PersonLike, phones: Sequence[PhoneLike], *, include_status: bool = True
) -> dict[str, Any]:
    """One Ethos ``persons`` record."""
    f = person.fields
    first, last = _s(f.get("first_name")), _s(f.get("last_name"))
    preferred = _s(f.get("preferred_name"))
    legal: dict[str, Any] = {
        "type": {"category": "legal"},
        "fullName": " ".join(p for p in (first, last) if p),
        "firstName": first,
        "lastName": last,
    }
    names = [legal]
    if preferred:
        names.append(
            {
                "type": {"category": "favored"},
                "fullName": " ".join(p for p in (preferred, last) if p),
                "firstName": preferred,
                "lastName": last,
                "preference": "preferred",
            }
        )
    else:
        legal["preference"] = "preferred"
    record: dict[str, Any] = {
        "id": person_guid(person.person_id),
        "names": names,
        "credentials": [{"type": "bannerId", "value": person.person_id}],
        "roles": [{"role": r} for r in _roles(person)],
        "emails": [],
        "phones": [_phone(p) for p in phones],
    }
    email = _s(f.get("email"))
    if email:
        record["emails"].append(
            {
                "type": {"emailType": "school" if person.role == "student" else "business"},
                "preference": "primary",
                "address": email,
            }
        )
        record["credentials"].append({"type": "bannerUserName", "value": email.split("@")[0]})
    if include_status and f.get("status"):
        record["status"] = f["status"]
    return record


def _s(value: str | list[str] | None) -> str:
    return value if isinstance(value, str) else ""


def _roles(person: PersonLike) -> list[str]:
    if person.role == "student":
        return ["student"]
    roles = ["employee"]
    granted = person.fields.get("roles")
    if isinstance(granted, list) and any(r.lower() == "advisor" for r in granted):
        roles.append("advisor")
    if person.fields.get("department") == "Faculty":
        roles.append("instructor")
    return roles


def _phone(phone: PhoneLike) -> dict[str, Any]:
    number = phone.number
    item: dict[str, Any] = {
        "type": {"phoneType": CODE_TO_PHONE_TYPE.get(phone.type_code.upper(), "other")},
    }
    match = _EXTENSION.search(number)
    if match:
        number = number[: match.start()]
        item["extension"] = match.group(1)
    item["number"] = number
    if phone.country:
        code = phonenumbers.country_code_for_region(phone.country)
        if code:
            item["countryCallingCode"] = str(code)
    if phone.primary:
        item["preference"] = "primary"
    return item
