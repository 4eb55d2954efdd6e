"""What every SIS source hands to the sync: people, one row per phone, and quarantined rows.

A source (``csv:PATH`` or ``ethos:URL``) reads the institution's extract and returns an
:class:`Extract`. It checks structure (required columns, a person id, a known role, a
parseable date or flag) and every field value against the one rule of
:mod:`domain.fields` (no NUL or other control characters, no line break in a one-line
field, nothing longer than its column, nothing that did not decode), and quarantines rows
that fail, with their line number and a reason naming the field; the other rows go on.
Everything a source hands over therefore stores alike on SQLite and PostgreSQL. Phone
numbers are handed over raw: parsing and validation are the sync's job
(``domain/phones.py``), so that unchanged raw input can be skipped by hash.

Errors, one taxonomy::

    SourceError                 the extract as a whole cannot be used; nothing is synced
     ├── SourceFormatError      missing required columns, a header that is not text, a
     │                          field over the hard cap, not a folder, bad JSON
     └── SourceUnavailable      the SIS could not be reached or kept failing (after retries)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

#: Person fields a source may provide (beyond ``person_id`` and ``role``). ``tags``,
#: ``courses`` and ``roles`` are lists; the others are strings or ``None``.
PERSON_FIELDS: tuple[str, ...] = (
    "first_name",
    "last_name",
    "preferred_name",
    "email",
    "status",
    "program",
    "degree",
    "risk_level",
    "tags",
    "courses",
    "advisor_id",
    "department",
    "title",
    "roles",
)


class SourceError(Exception):
    """The extract cannot be used at all; the message names what is wrong and where."""


class SourceFormatError(SourceError):
    """The extract is malformed as a whole (missing columns, wrong encoding, bad JSON)."""


class SourceUnavailable(SourceError):
    """The SIS could not be reached, or kept failing after bounded retries."""


# (Slots but not frozen: building 350,000 frozen instances costs a fifth of a CSV read.)


@dataclass(slots=True)
class SourcePerson:
    """One person as the SIS describes them.

    ``fields`` holds only what the source provides, keyed by names from
    :data:`PERSON_FIELDS`; a key that is absent means "leave the stored value as it is".
    ``raw`` is the row exactly as read (used for the change hash).
    """

    line: int
    person_id: str
    role: str  # "student" | "staff"
    fields: dict[str, str | list[str] | None]
    raw: tuple[str, ...] = ()


@dataclass(slots=True)
class SourcePhone:
    """One phone row as the SIS describes it; ``number`` is the raw text, never cleaned."""

    line: int
    person_id: str
    type_code: str
    number: str
    country: str | None = None
    primary: bool = False
    updated_at: datetime | None = None
    raw: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class QuarantinedRow:
    """A row the source could not use: where it was, why, and what it said.

    Every part stores on every database: ``person_id`` is set only when the id itself
    passed the field rule, and ``raw`` holds previews (controls escaped, values cut short).
    """

    file: str  # "people.csv", "phones.csv", or "ethos:persons"
    line: int  # 1-based line in the file (header is line 1) or record index for APIs
    reason: str
    person_id: str | None = None
    raw: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class Extract:
    """Everything one read of a source produced.

    ``full`` means the extract lists every person of the given roles, so people missing from
    it become inactive. ``provided_fields`` lists the person fields this source fills in.
    """

    source: str
    people: list[SourcePerson]
    phones: list[SourcePhone]
    quarantined: list[QuarantinedRow]
    provided_fields: frozenset[str]
    full: bool = True
    roles_covered: frozenset[str] = frozenset({"student", "staff"})


class SisSource(Protocol):
    """A source of SIS contact data (``csv:PATH`` or ``ethos:URL``)."""

    def describe(self) -> str:
        """A short, secret-free description for logs and the SyncRun row."""
        ...

    def read(self) -> Extract:
        """Read the whole extract; raise :class:`SourceError` if it cannot be used."""
        ...
