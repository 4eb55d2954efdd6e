"""From Ethos ``persons`` records (decoded JSON) to the rows every SIS source hands over.

Mapping of a person (modelled on the Ethos ``persons`` v12 schema):

=================  ===================================================================
person_id          ``credentials[].value`` of type ``id_credential`` (default ``bannerId``)
role               ``roles[].role``: ``student`` → student; else ``employee``,
                   ``instructor`` or ``advisor`` → staff; anything else is quarantined
first/last name    the name of category ``legal``, else ``personal``, else ``birth``, else
                   the one marked ``preference: preferred``, else the first
preferred_name     ``preferredName`` if present, else the first name of a ``favored`` name
                   (or of the ``preferred`` one when it differs from the legal first name)
email              ``preference: primary``, else type ``school``, else ``personal``, else first
status             only when a record carries a top-level ``status`` (not part of v12)
phones             one :class:`SourcePhone` per ``phones[]``; ``type_code`` is the
                   ``type.phoneType`` enum value (:data:`PHONE_TYPES`), ``primary`` is
                   ``preference == "primary"``, ``countryCallingCode`` becomes the ISO
                   ``country`` (or a ``+code`` prefix when the code has no single region),
                   ``extension`` is appended as ``" x<ext>"`` so the sync can see it
=================  ===================================================================

Ethos does not carry program, degree, risk level, tags, courses, advisor, department, title
or nudge's own ``roles``: they are not in ``provided_fields`` and stay as they are.

Every value read (the id, each name's parts, each email address, each role, the status,
each phone's type, number and extension) must pass :mod:`domain.fields`, as CSV cells do,
and the record as a whole must be valid Unicode (it is hashed). A record that fails is
quarantined with its position (``line`` is the 1-based record index; ``raw`` holds its
``id``, its page and a preview of the record) and a reason naming the field, e.g.
``names[0].firstName contains a control character (NUL)``. A bad phone is quarantined alone
(``raw`` then holds the phone), as a bad ``phones.csv`` row is: the person and their other
phones still apply.
"""

from __future__ import annotations

import json
import re
from typing import Any

import phonenumbers

from adapters.sis.base import Extract, QuarantinedRow, SourcePerson, SourcePhone
from adapters.sis.csv_rows import normalise_status
from domain.fields import RULES, preview, problem

#: The ``phones[].type.phoneType`` enum of Ethos ``persons`` (EEDM ``PersonPhoneTypeCategory``).
PHONE_TYPES: tuple[str, ...] = (
    "mobile", "home", "school", "vacation", "business", "fax", "pager", "tdd", "parent",
    "family", "main", "branch", "region", "support", "billing", "matchingGifts", "other",
)  # fmt: skip

#: Ethos roles that make a person staff in nudge (``student`` wins over all of them).
STAFF_ROLES = frozenset({"employee", "instructor", "advisor"})

#: Person fields every Ethos extract provides; ``status`` is added when records carry it.
ETHOS_FIELDS = frozenset({"first_name", "last_name", "preferred_name", "email"})

#: The ``file`` of every quarantined Ethos record (its ``line`` is the record index).
QUARANTINE_FILE = "ethos:persons"

#: How much of a quarantined record its ``raw["record"]`` keeps.
RAW_PREVIEW_CHARS = 4_000

#: The rules of the fields read, resolved once (they are applied to every value).
_RULES = dict(RULES)

_SURROGATE = re.compile("[\ud800-\udfff]")


class ExtractBuilder:
    """Maps records one at a time into people, phones and quarantined rows."""

    def __init__(self, id_credential: str) -> None:
        self.id_credential = id_credential
        self.people: list[SourcePerson] = []
        self.phones: list[SourcePhone] = []
        self.quarantined: list[QuarantinedRow] = []
        self.first_seen: dict[str, int] = {}
        self.with_status = False

    def add(self, index: int, record: Any, *, page: int = 0) -> None:
        """Map record number ``index`` (1-based) read on ``page``: keep it, or quarantine
        it (or just its bad phones) with a reason."""
        try:
            converted = _convert(record, index, self.id_credential)
        except _Refused as exc:
            self.quarantined.append(
                QuarantinedRow(
                    QUARANTINE_FILE, index, str(exc), exc.person_id, _raw_of(record, page)
                )
            )
            return
        person, phones, bad_phones = converted
        first = self.first_seen.get(person.person_id)
        if first is not None:
            reason = (
                f"duplicate {self.id_credential} {person.person_id!r} (first at record {first})"
            )
            self.quarantined.append(
                QuarantinedRow(
                    QUARANTINE_FILE, index, reason, person.person_id, _raw_of(record, page)
                )
            )
            return
        self.first_seen[person.person_id] = index
        self.with_status = self.with_status or "status" in person.fields
        self.people.append(person)
        self.phones.extend(phones)
        # A bad phone is quarantined alone, as a bad phones.csv row is: the person and
        # their other phones still apply.
        for reason, item in bad_phones:
            raw = {
                "id": preview(str(record.get("id") or ""), 100),
                "phone": preview(_canonical(item), RAW_PREVIEW_CHARS),
            }
            if page:
                raw["page"] = str(page)
            self.quarantined.append(
                QuarantinedRow(QUARANTINE_FILE, index, reason, person.person_id, raw)
            )

    def extract(self, source: str) -> Extract:
        """Everything mapped so far, as the extract of ``source``."""
        return Extract(
            source=source,
            people=self.people,
            phones=self.phones,
            quarantined=self.quarantined,
            provided_fields=ETHOS_FIELDS | ({"status"} if self.with_status else set()),
        )


class _Refused(Exception):
    def __init__(self, reason: str, person_id: str | None = None) -> None:
        super().__init__(reason)
        self.person_id = person_id


def _raw_of(record: Any, page: int = 0) -> dict[str, str]:
    """A quarantine record's ``raw``: its id, its page and the record as compact JSON.

    Every value is a preview (controls escaped, cut to size): the record may be in
    quarantine precisely because it holds something no database stores.
    """
    rid = record.get("id") if isinstance(record, dict) else None
    raw = {
        "id": preview(str(rid or ""), 100),
        "record": preview(_canonical(record), RAW_PREVIEW_CHARS),
    }
    if page:
        raw["page"] = str(page)
    return raw


def _canonical(value: Any) -> str:
    """Stable JSON text: the same record always hashes the same."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _show(value: Any) -> str:
    """A value for a reason: quoted, controls escaped, short."""
    return repr(preview(value, 80)) if isinstance(value, str) else preview(repr(value), 80)


def _text(value: Any) -> str | None:
    if isinstance(value, str):
        return value.strip() or None
    return None


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _type_of(item: dict[str, Any], key: str) -> str:
    kind = item.get("type")
    if isinstance(kind, dict):
        return str(kind.get(key) or "")
    return ""


def _check(
    value: str | None, field_name: str, person_id: str | None, label: str, *where: object
) -> None:
    """Refuse the record if ``value`` breaks the rule of ``field_name``; the reason names
    ``label.format(*where)`` (built only then: this runs for every value of every record)."""
    if value is None:
        return
    rule = _RULES[field_name]
    if len(value) <= rule.fast_max and value.isprintable():
        return
    reason = problem(label.format(*where), value, rule)
    if reason is not None:
        raise _Refused(reason, person_id)


def _convert(
    record: Any, index: int, id_credential: str
) -> tuple[SourcePerson, list[SourcePhone], list[tuple[str, dict[str, Any]]]]:
    """Map one Ethos person to a SourcePerson, its good phones and the bad ones (reason,
    phone); raise _Refused if the person is unusable."""
    if not isinstance(record, dict):
        raise _Refused(f"not a JSON object ({type(record).__name__})")
    wanted = id_credential.lower()
    found = next(
        (
            (i, cred["value"], value)
            for i, cred in enumerate(_dicts(record.get("credentials")))
            if str(cred.get("type") or "").lower() == wanted and (value := _text(cred.get("value")))
        ),
        None,
    )
    if found is None:
        raise _Refused(f"no {id_credential} credential (person {_show(record.get('id'))})")
    position, raw_id, person_id = found
    _check(raw_id, "person_id", None, "credentials[{}].value ({})", position, id_credential)
    # The whole record is hashed (and stored when quarantined): it must be valid Unicode.
    canonical = _canonical(record)
    if (bad := _SURROGATE.search(canonical)) is not None:
        raise _Refused(
            f"the record contains invalid Unicode (a lone surrogate, U+{ord(bad.group()):04X})",
            person_id,
        )
    _check_all(record, "roles", ("role",), person_id)
    _check_all(record, "names", ("firstName", "lastName", "preferredName"), person_id)
    _check_all(record, "emails", ("address",), person_id)
    roles = {str(r.get("role") or "").lower() for r in _dicts(record.get("roles"))}
    if "student" in roles:
        role = "student"
    elif roles & STAFF_ROLES:
        role = "staff"
    else:
        listed = ", ".join(preview(r, 40) for r in sorted(roles) if r) or "none"
        raise _Refused(f"no student or staff role (roles: {listed})", person_id)
    names = _dicts(record.get("names"))
    if not names:
        raise _Refused("no names", person_id)
    by_category: dict[str, dict[str, Any]] = {}
    for name in names:
        by_category.setdefault(_type_of(name, "category").lower(), name)
    preferred = next((n for n in names if n.get("preference") == "preferred"), None)
    main = (
        by_category.get("legal")
        or by_category.get("personal")
        or by_category.get("birth")
        or preferred
        or names[0]
    )
    first = _text(main.get("firstName"))
    preferred_name = next(
        (_text(n.get("preferredName")) for n in names if n.get("preferredName")), None
    )
    if preferred_name is None:
        favored = by_category.get("favored")
        if favored is not None:
            preferred_name = _text(favored.get("firstName"))
        elif preferred is not None and preferred is not main:
            # Another name marked preferred: only a different first name is a preferred name.
            candidate = _text(preferred.get("firstName"))
            preferred_name = candidate if candidate != first else None
    fields: dict[str, str | list[str] | None] = {
        "first_name": first,
        "last_name": _text(main.get("lastName")),
        "preferred_name": preferred_name,
        "email": _pick_email(_dicts(record.get("emails"))),
    }
    if "status" in record:
        raw_status = str(record.get("status") or "")
        _check(raw_status, "status", person_id, "status")
        status = normalise_status(raw_status)
        if status is None:
            raise _Refused(f"unknown status {_show(record.get('status'))}", person_id)
        fields["status"] = status
    person = SourcePerson(index, person_id, role, fields, (canonical,))
    phones: list[SourcePhone] = []
    bad_phones: list[tuple[str, dict[str, Any]]] = []
    for i, item in enumerate(_dicts(record.get("phones"))):
        try:
            phones.append(_phone(item, index, person_id, f"phones[{i}]"))
        except _Refused as exc:
            bad_phones.append((str(exc), item))
    return person, phones, bad_phones


#: The rule (by nudge field name) of each Ethos property checked in every item of a list.
_PARTS = {
    "role": "role",
    "firstName": "first_name",
    "lastName": "last_name",
    "preferredName": "preferred_name",
    "address": "email",
}


def _check_all(record: dict[str, Any], key: str, parts: tuple[str, ...], person_id: str) -> None:
    """Check ``record[key][i][part]`` for every item and part that is a string: a bad value
    in a name or email the mapping does not pick is still a bad record."""
    for i, item in enumerate(_dicts(record.get(key))):
        for part in parts:
            value = item.get(part)
            if isinstance(value, str):
                _check(value, _PARTS[part], person_id, "{}[{}].{}", key, i, part)


def _pick_email(emails: list[dict[str, Any]]) -> str | None:
    ranked = sorted(
        (e for e in emails if _text(e.get("address"))),
        key=lambda e: (
            e.get("preference") != "primary",
            {"school": 0, "personal": 1}.get(_type_of(e, "emailType"), 2),
        ),
    )
    return _text(ranked[0].get("address")) if ranked else None


def _phone(item: dict[str, Any], index: int, person_id: str, at: str) -> SourcePhone:
    """One phone of person ``person_id``; ``at`` locates it in the record for reasons."""
    number = raw_number = str(item.get("number") or "")
    _check(number, "number", person_id, "{}.number", at)
    country: str | None = None
    code = str(item.get("countryCallingCode") or "").strip().lstrip("+")
    # ASCII and short: int() refuses "²" and numbers of thousands of digits.
    if code.isascii() and code.isdigit() and len(code) <= 3:
        region = phonenumbers.region_code_for_country_code(int(code))
        if region not in ("ZZ", "001"):
            country = region
        elif not number.lstrip().startswith("+"):
            # No single region (e.g. +800): keep the code in the number itself.
            number = f"+{code} {number}"
    extension = str(item.get("extension") or "").strip()
    _check(extension, "number", person_id, "{}.extension", at)
    if extension:
        number = f"{number} x{extension}"
    if len(number) != len(raw_number):
        # The number handed over carries the extension (or a +code): that must fit too.
        _check(number, "number", person_id, "{}.number as handed over", at)
    type_code = _type_of(item, "phoneType")
    _check(type_code, "phone_type", person_id, "{}.type.phoneType", at)
    preference = str(item.get("preference") or "")
    return SourcePhone(
        line=index,
        person_id=person_id,
        type_code=type_code,
        number=number,
        country=country,
        primary=preference == "primary",
        updated_at=None,
        # What the phone said, field by field (cheaper than JSON, and as stable).
        raw=(person_id, type_code, raw_number, code, extension, preference),
    )


__all__ = ["ETHOS_FIELDS", "PHONE_TYPES", "QUARANTINE_FILE", "STAFF_ROLES", "ExtractBuilder"]
