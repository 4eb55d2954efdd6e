"""Staff roles: who holds which role, statically or by a filter over staff attributes.

* **Static roles** are names granted to a staff member: from the SIS extract's ``roles``
  column (:func:`parse_roles`) and from admin grants (``nudge roles grant``).
* **Dynamic roles** are held by every staff member whose attributes match a
  :class:`RoleFilter` (e.g. role "Texting" = department in {Advising, Financial Aid}), so
  new hires get them with the nightly sync, without a grant.

Role names compare case-insensitively and ignore surrounding and repeated whitespace:
:func:`normalize_role` is that one definition, and :func:`effective_roles` returns
normalised names. Whether a role may text is the router's question (``SmsConfig``'s
permitted roles), not this module's.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

_ROLE_SEPARATORS = re.compile(r"[,;|]")


def normalize_role(name: str) -> str:
    """Return the comparable form of a role name (case-folded, whitespace collapsed)."""
    return " ".join(name.split()).casefold()


def parse_roles(text: str | None) -> frozenset[str]:
    """Split a SIS ``roles`` cell (``"Texting; Advisor"``; separators ``, ; |``) into names.

    Names keep their spelling (for display); blanks are dropped.
    """
    if not text:
        return frozenset()
    return frozenset(
        " ".join(part.split()) for part in _ROLE_SEPARATORS.split(text) if part.strip()
    )


@dataclass(frozen=True, slots=True)
class StaffFacts:
    """The staff attributes dynamic roles may filter on."""

    department: str | None = None
    title: str | None = None


class RoleFilter(BaseModel):
    """Who holds a dynamic role: every criterion given must match (AND).

    Stored as JSON (``model_dump_json`` / ``model_validate_json``).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    departments: list[str] = Field(
        default=[],
        title="Departments",
        description="The staff member's department equals one of these (case-insensitive).",
    )
    title_contains: list[str] = Field(
        default=[],
        title="Title contains",
        description="The staff member's title contains one of these (case-insensitive).",
    )

    @field_validator("departments", "title_contains")
    @classmethod
    def _clean(cls, values: list[str]) -> list[str]:
        cleaned: list[str] = []
        for value in values:
            text = " ".join(value.split())
            if text and text.casefold() not in (c.casefold() for c in cleaned):
                cleaned.append(text)
        return cleaned

    @model_validator(mode="after")
    def _not_everyone(self) -> Self:
        # A filter without criteria would grant the role to every staff member, which is
        # never what an admin means by a dynamic role: make them grant it explicitly.
        if not self.departments and not self.title_contains:
            raise ValueError(
                "a dynamic role needs at least one criterion: departments or title_contains"
            )
        return self

    def matches(self, staff: StaffFacts) -> bool:
        """Whether ``staff`` holds the role this filter defines."""
        if self.departments:
            department = " ".join((staff.department or "").split()).casefold()
            if department not in {d.casefold() for d in self.departments}:
                return False
        if self.title_contains:
            title = " ".join((staff.title or "").split()).casefold()
            if not any(part.casefold() in title for part in self.title_contains):
                return False
        return True

    def describe(self) -> str:
        """A one-line human description, e.g. for ``nudge roles`` listings."""
        parts = []
        if self.departments:
            parts.append("department in " + ", ".join(self.departments))
        if self.title_contains:
            parts.append("title contains " + " or ".join(self.title_contains))
        return " and ".join(parts)


def effective_roles(
    staff: StaffFacts, static: Iterable[str], dynamic: Mapping[str, RoleFilter]
) -> frozenset[str]:
    """Return every role ``staff`` holds (normalised names): static grants plus the
    dynamic roles whose filter matches."""
    roles = {normalize_role(name) for name in static if name.strip()}
    roles.update(normalize_role(name) for name, rule in dynamic.items() if rule.matches(staff))
    return frozenset(roles)
