"""Message templates: the text staff write, with per-recipient variables filled in.

A template is plain text with variables in braces::

    Hi {preferred_name}, this is {sender_name}. Your advisor {advisor_name} ...

The variables are the :class:`Variable` members (``first_name``, ``preferred_name``,
``last_name``, ``sender_name``, ``advisor_name``, ``program``). ``{{`` and ``}}`` write
literal braces. :func:`parse_template` checks the text once, before anything is planned,
and refuses it with a :class:`TemplateError` naming the unknown variable(s) or the line and
column of a malformed brace. :meth:`Template.render` then fills it in per recipient.

Values, as rendered:

* ``preferred_name`` falls back to ``first_name`` when it is missing or blank;
* any other missing (``None``, absent) or blank value renders as the empty string, e.g.
  ``advisor_name`` for a student without an advisor. Campaign preview reports such gaps
  with :meth:`Template.missing`, so the sender can reword before sending;
* values are stripped of surrounding whitespace and inserted verbatim: braces inside a
  value are text, never variables.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum


class Variable(StrEnum):
    """A variable a template may use."""

    FIRST_NAME = "first_name"
    PREFERRED_NAME = "preferred_name"
    LAST_NAME = "last_name"
    SENDER_NAME = "sender_name"
    ADVISOR_NAME = "advisor_name"
    PROGRAM = "program"


VARIABLES: frozenset[str] = frozenset(v.value for v in Variable)
_ALLOWED = ", ".join("{" + v + "}" for v in Variable)


class TemplateError(ValueError):
    """A template that cannot be used: unknown variables or malformed braces.

    ``unknown`` lists the unknown variable names (in order of appearance); ``position`` is
    the 0-based offset of a malformed brace, ``None`` for unknown variables.
    """

    def __init__(
        self, message: str, *, unknown: tuple[str, ...] = (), position: int | None = None
    ) -> None:
        super().__init__(message)
        self.unknown = unknown
        self.position = position


@dataclass(frozen=True, slots=True)
class Template:
    """A checked template; build it with :func:`parse_template`."""

    text: str
    variables: frozenset[str]
    _format: str  # the text as a str.format pattern over known variable names only

    def values_for(self, values: Mapping[str, str | None]) -> dict[str, str]:
        """Return the value each variable of this template renders as."""
        resolved: dict[str, str] = {}
        for name in self.variables:
            value = values.get(name)
            value = value.strip() if value else ""
            if not value and name == Variable.PREFERRED_NAME:
                first = values.get(Variable.FIRST_NAME)
                value = first.strip() if first else ""
            resolved[name] = value
        return resolved

    def render(self, values: Mapping[str, str | None]) -> str:
        """Fill in the variables from ``values`` (missing ones render as ``""``)."""
        return self._format.format_map(self.values_for(values))

    def missing(self, values: Mapping[str, str | None]) -> frozenset[str]:
        """Return the variables of this template that would render empty for ``values``."""
        return frozenset(name for name, value in self.values_for(values).items() if not value)


def parse_template(text: str) -> Template:
    """Check ``text`` and return a :class:`Template`, or raise :class:`TemplateError`.

    Malformed braces are reported first (with line and column), then every unknown
    variable at once.
    """
    pieces: list[str] = []
    used: set[str] = set()
    unknown: list[str] = []
    i, n = 0, len(text)
    while i < n:
        open_at = text.find("{", i)
        close_at = text.find("}", i)
        if open_at == -1 and close_at == -1:
            pieces.append(text[i:])
            break
        if close_at != -1 and (open_at == -1 or close_at < open_at):
            if text.startswith("}}", close_at):
                pieces.append(text[i : close_at + 2])
                i = close_at + 2
                continue
            raise _brace_error(text, close_at, "a single '}'")
        pieces.append(text[i:open_at])
        if text.startswith("{{", open_at):
            pieces.append("{{")
            i = open_at + 2
            continue
        end = text.find("}", open_at + 1)
        next_open = text.find("{", open_at + 1)
        if end == -1 or (next_open != -1 and next_open < end):
            raise _brace_error(text, open_at, "a '{' that is never closed")
        name = text[open_at + 1 : end]
        if not name:
            raise _brace_error(text, open_at, "an empty '{}'")
        if name in VARIABLES:
            used.add(name)
            pieces.append("{" + name + "}")
        elif name not in unknown:
            unknown.append(name)
        i = end + 1
    if unknown:
        raise _unknown_error(tuple(unknown))
    return Template(text=text, variables=frozenset(used), _format="".join(pieces))


def _brace_error(text: str, position: int, what: str) -> TemplateError:
    line = text.count("\n", 0, position) + 1
    column = position - (text.rfind("\n", 0, position) + 1) + 1
    return TemplateError(
        f"template has {what} at line {line}, column {column}; "
        "write '{{' or '}}' for a literal brace",
        position=position,
    )


def _unknown_error(names: tuple[str, ...]) -> TemplateError:
    described = []
    for name in names:
        shown = name if len(name) <= 40 else name[:37] + "..."
        guess = difflib.get_close_matches(name.strip().lower(), VARIABLES, n=1, cutoff=0.6)
        hint = f" (did you mean {{{guess[0]}}}?)" if guess else ""
        described.append(f"{{{shown}}}{hint}")
    noun = "variable" if len(names) == 1 else "variables"
    return TemplateError(
        f"unknown template {noun} {', '.join(described)}; allowed: {_ALLOWED}",
        unknown=names,
    )
