"""Turn a CSV extract into Ethos ``persons`` records, so CSV and Ethos syncs can be compared.

The sandbox Ethos API serves the very people the generator wrote to ``people.csv`` and
``phones.csv`` (read with the ``csv:`` source, so malformed rows are left out), in the shape
of Ethos ``persons`` v12: ``names``, ``emails``, ``phones``, ``credentials``, ``roles``.

Institution type codes become the ``phoneType`` enum (:data:`CODE_TO_PHONE_TYPE`; unknown
codes become ``other``), an extension written into the number (``x204``, ``ext. 12``) moves
to ``extension``, and the ISO country becomes ``countryCallingCode``. A top-level ``status``
(not part of v12) is added unless ``include_status=False``.
"""

from __future__ import annotations

import re
import uuid
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import phonenumbers

from adapters.sis.base import Extract, SourcePerson, SourcePhone

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


def person_guid(person_id: str) -> str:
    """The Ethos ``id`` (a GUID) the sandbox gives the person with this SIS id."""
    return str(uuid.uuid5(_NAMESPACE, person_id))


def persons_from_folder(
    folder: Path, *, encoding: str | None = None, include_status: bool = True
) -> list[dict[str, Any]]:
    """Read ``people.csv``/``phones.csv`` in ``folder`` and return Ethos persons."""
    from adapters.sis.csv_source import CsvSource

    return persons_from_extract(
        CsvSource(folder, encoding=encoding).read(), include_status=include_status
    )


def persons_from_extract(extract: Extract, *, include_status: bool = True) -> list[dict[str, Any]]:
    """Ethos persons for every person of ``extract``, in extract order."""
    phones: dict[str, list[SourcePhone]] = defaultdict(list)
    for phone in extract.phones:
        phones[phone.person_id].append(phone)
    return [
        person_to_ethos(p, phones.get(p.person_id, ()), include_status=include_status)
        for p in extract.people
    ]


def person_to_ethos(
    person: SourcePerson, phones: Sequence[SourcePhone], *, include_status: bool = True
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


def _roles(person: SourcePerson) -> list[str]:
    if person.role == "student":
        return ["student"]
    roles = ["employee"]
    granted = person.fields.get("roles")
    if isinstance(granted, list) and any(r.lower() == "advisor" for r in granted):
        roles.append("advisor")
    if person.fields.get("department") == "Faculty":
        roles.append("instructor")
    return roles


def _phone(phone: SourcePhone) -> dict[str, Any]:
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
