"""Whether one field value from the SIS is acceptable: the one rule every source applies.

Every field of every row a source reads is checked here before anything else looks at it,
so that nothing a source hands over can fail to store (PostgreSQL refuses NUL in text, a
lone surrogate cannot be encoded, ``varchar(n)`` refuses a longer value) and nothing that
would read oddly in a text message or a report (a bell, an escape sequence, a line break in
a name) gets in. A failing value quarantines its row; the reason names the field and what
is wrong with it, never the value itself (it may be personal data).

Kinds of field (:class:`Kind`) and what each accepts:

==========  ==================================================================  ===========
kind        accepts                                                             tab
==========  ==================================================================  ===========
``code``    identifiers and codes: one line (person_id, role, email, type code)  no
``line``    single-line text (names, program, title, the raw phone number)      yes
``list``    ``;``-separated items of single-line text (tags, courses, roles)    yes
``text``    free text: line breaks allowed (columns nudge does not read)        yes
==========  ==================================================================  ===========

Every kind refuses the other C0 controls (NUL and the rest of U+0000–U+001F), DEL, the C1
controls (U+0080–U+009F) and lone surrogates (U+D800–U+DFFF: invalid JSON text, or bytes
that did not decode, which Python's ``surrogateescape`` turns into U+DC80–U+DCFF). All but
``text`` also refuse line breaks: CR, LF, U+2028 and U+2029. A tab is kept in text (it is
whitespace, and spreadsheets leave them) but would silently make a different id or code.

The maxima (:data:`RULES`) are the column lengths in ``models/people.py``, so a value that
passes always stores. Lengths count characters (code points, as PostgreSQL's ``varchar``
does) after trimming surrounding whitespace, which the sources strip; the raw phone number
is stored exactly as received, so all of it counts. Codes the sync upper- or lower-cases
(phone type, risk level) are measured in the longer of those forms ("ß" upper-cases to "SS").
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType


class Kind(StrEnum):
    """What shape of value a field holds (see the module docstring)."""

    CODE = "code"
    LINE = "line"
    LIST = "list"
    TEXT = "text"


@dataclass(frozen=True, slots=True)
class FieldRule:
    """How one field is checked: its kind and its maximum length in characters.

    ``item_max_chars`` bounds each item of a ``list`` (``max_chars`` bounds the whole cell).
    ``trimmed``: surrounding whitespace does not count (the source strips it before storing).
    ``case_folded``: the sync changes the value's case, so both cases must fit.
    """

    kind: Kind
    max_chars: int
    item_max_chars: int = 0
    trimmed: bool = True
    case_folded: bool = False
    #: A raw length at or under which the value cannot be too long (for fast paths): case
    #: mapping can triple a character (``"ΐ".upper()`` is three), and a list cell no longer
    #: than one item cannot hold a long item.
    fast_max: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        limit = min(self.max_chars, self.item_max_chars or self.max_chars)
        object.__setattr__(self, "fast_max", limit // 3 if self.case_folded else limit)


#: Separator of ``list`` fields.
LIST_SEPARATOR = ";"

#: Columns and fields nudge does not read: free text, bounded so that a row stays a row.
UNREAD = FieldRule(Kind.TEXT, 10_000, trimmed=False)

#: Values never stored verbatim (mapped to a fixed vocabulary or parsed) but echoed in
#: quarantine reasons: long enough for any real code, short enough to read.
_CODE = FieldRule(Kind.CODE, 64)

#: The rule of every field a source reads, by its name (CSV column / SourcePerson field).
RULES: Mapping[str, FieldRule] = MappingProxyType(
    {
        # people
        "person_id": FieldRule(Kind.CODE, 64),
        "role": _CODE,
        "first_name": FieldRule(Kind.LINE, 200),
        "last_name": FieldRule(Kind.LINE, 200),
        "preferred_name": FieldRule(Kind.LINE, 200),
        "email": FieldRule(Kind.CODE, 320),
        "status": _CODE,
        "program": FieldRule(Kind.LINE, 200),
        "degree": FieldRule(Kind.LINE, 200),
        "risk_level": FieldRule(Kind.CODE, 32, case_folded=True),
        "tags": FieldRule(Kind.LIST, 4_000, item_max_chars=200),
        "courses": FieldRule(Kind.LIST, 4_000, item_max_chars=200),
        "advisor_id": FieldRule(Kind.CODE, 64),
        "department": FieldRule(Kind.LINE, 200),
        "title": FieldRule(Kind.LINE, 200),
        "roles": FieldRule(Kind.LIST, 4_000, item_max_chars=200),
        # phones
        "phone_type": FieldRule(Kind.CODE, 32, case_folded=True),
        "number": FieldRule(Kind.LINE, 200, trimmed=False),
        "country": _CODE,
        "primary": _CODE,
        "updated_at": _CODE,
    }
)

#: A header cell (a column name): one line, and short.
HEADER = FieldRule(Kind.LINE, 200)


def rule_for(name: str) -> FieldRule:
    """The rule of field ``name`` (:data:`UNREAD` for a field nudge does not read)."""
    return RULES.get(name, UNREAD)


# Always refused: C0 but TAB/LF/CR, DEL, C1, lone surrogates.
_ALWAYS = "\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff"
_BREAKS = "\n\r\u2028\u2029"
_FORBIDDEN: dict[Kind, re.Pattern[str]] = {
    Kind.CODE: re.compile(f"[{_ALWAYS}{_BREAKS}\t]"),
    Kind.LINE: re.compile(f"[{_ALWAYS}{_BREAKS}]"),
    Kind.LIST: re.compile(f"[{_ALWAYS}{_BREAKS}]"),
    Kind.TEXT: re.compile(f"[{_ALWAYS}]"),
}

_C0_NAMES = (
    "NUL", "SOH", "STX", "ETX", "EOT", "ENQ", "ACK", "BEL", "BS", "HT", "LF", "VT", "FF", "CR",
    "SO", "SI", "DLE", "DC1", "DC2", "DC3", "DC4", "NAK", "SYN", "ETB", "CAN", "EM", "SUB",
    "ESC", "FS", "GS", "RS", "US",
)  # fmt: skip


def char_name(char: str) -> str:
    """A short, readable name for a control or break character: ``NUL``, ``U+0085``."""
    code = ord(char)
    if code < 0x20:
        return _C0_NAMES[code]
    if code == 0x7F:
        return "DEL"
    if code == 0x2028:
        return "U+2028 LINE SEPARATOR"
    if code == 0x2029:
        return "U+2029 PARAGRAPH SEPARATOR"
    return f"U+{code:04X}"


def undecodable_byte(char: str) -> int | None:
    """The byte a ``surrogateescape`` decode turned into ``char``, if it is one."""
    code = ord(char)
    return code - 0xDC00 if 0xDC80 <= code <= 0xDCFF else None


def _describe(label: str, char: str) -> str:
    byte = undecodable_byte(char)
    if byte is not None:
        return f"{label} contains a byte that could not be decoded (0x{byte:02x})"
    if "\ud800" <= char <= "\udfff":
        return f"{label} contains invalid Unicode (a lone surrogate, U+{ord(char):04X})"
    if char in _BREAKS:
        return f"{label} contains a line break ({char_name(char)})"
    if char == "\t":
        return f"{label} contains a tab"
    return f"{label} contains a control character ({char_name(char)})"


def _measure(value: str, rule: FieldRule) -> int:
    text = value.strip() if rule.trimmed else value
    if rule.case_folded and not text.isascii():
        return max(len(text), len(text.upper()), len(text.lower()))
    return len(text)


def problem(label: str, value: str, rule: FieldRule) -> str | None:
    """Why ``value`` is not acceptable under ``rule``, or ``None`` if it is.

    ``label`` names the field in the reason (``first_name``, ``names[0].firstName``); the
    value is never quoted. Length is checked first, so a huge value costs one pass at most.
    """
    if len(value) <= rule.fast_max and value.isprintable():
        return None  # the common case, decided in C: short, and nothing but visible text
    if rule.kind is Kind.LIST:
        if len(value) > rule.max_chars:
            return f"{label} is {len(value):,} characters, more than {rule.max_chars:,}"
    else:
        size = _measure(value, rule)
        if size > rule.max_chars:
            return f"{label} is {size:,} characters, more than {rule.max_chars:,}"
    bad = _FORBIDDEN[rule.kind].search(value)
    if bad is not None:
        return _describe(label, bad.group())
    if rule.kind is Kind.LIST and rule.item_max_chars and len(value) > rule.item_max_chars:
        longest = max(len(item.strip()) for item in value.split(LIST_SEPARATOR))
        if longest > rule.item_max_chars:
            return (
                f"{label} has an item of {longest:,} characters, more than {rule.item_max_chars:,}"
            )
    return None


def check(name: str, value: str) -> str | None:
    """:func:`problem` for field ``name`` under its own rule (:func:`rule_for`)."""
    return problem(name, value, rule_for(name))


_ESCAPES: dict[int, str] = {
    **{c: f"\\x{c:02x}" for c in (*range(0x20), *range(0x7F, 0xA0))},
    **{c: f"\\u{c:04x}" for c in (0x2028, 0x2029, *range(0xD800, 0xE000))},
    # An undecodable byte shows as the byte it was.
    **{c: f"\\x{c - 0xDC00:02x}" for c in range(0xDC80, 0xDD00)},
}


def preview(value: str, max_chars: int = 200) -> str:
    """``value`` made safe to store and show: controls escaped (``\\x00``), cut to size.

    For quarantine records ("what the row said"), which must store on every database even
    when the value is the very reason the row was quarantined.
    """
    head = value[:max_chars].translate(_ESCAPES)
    if len(value) > max_chars:
        return f"{head}… ({len(value):,} characters)"
    return head
