"""SMS segment counting and the message-length limit, exactly as carriers count them.

An SMS body travels as one or more *segments*. The encoding is chosen for the whole body:

* **GSM-7** when every character is in the GSM 03.38 basic set or its extension table.
  A basic character takes one septet, an extension character (``^ { } [ ] ~ \\ | €`` and
  form feed) takes two (an escape plus the character). One segment holds 160 septets; a
  concatenated message holds 153 per segment (the rest is the concatenation header).
* **UCS-2** as soon as a single character is outside that alphabet. Length is then counted
  in UTF-16 code units, so a character outside the Basic Multilingual Plane (an emoji) counts
  2. One segment holds 70 units; a concatenated message holds 67 per segment.

Carriers never split an escape pair (GSM-7) or a surrogate pair (UCS-2) across two segments:
when the next character does not fit in what is left of a segment, it starts the next one.
:func:`segment_info` packs characters the same way: 152 plain characters followed by ``€``
and more text put the ``€`` at the start of the second segment, leaving the 153rd septet of
the first one empty. (Twilio's public segment calculator additionally keeps multi-code-point
grapheme clusters, such as flag or family emoji, whole; for those rare bodies it may report
one segment more than this module when a cluster sits on a boundary.)

Length limit: Twilio refuses bodies over 1,600 characters (error 21617) and notes that emoji
and some other characters "will be counted as multiple characters"; it publishes no exact rule.
:func:`body_length` is this project's one definition, used by preview, planning and sending
alike: UTF-16 code units, i.e. every character counts 1 except characters outside the Basic
Multilingual Plane (emoji), which count 2. GSM extension characters count 1: the limit is on
characters, not septets.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

#: GSM 03.38 basic character set (the escape code 0x1B itself is not a character).
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
#: GSM 03.38 extension table: each costs two septets (escape + character).
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")
GSM7_ALPHABET = GSM7_BASIC | GSM7_EXTENSION

GSM7_SINGLE = 160
GSM7_PER_PART = 153
UCS2_SINGLE = 70
UCS2_PER_PART = 67

#: Twilio's limit on a message body (error 21617), counted by :func:`body_length`.
MAX_BODY_CHARS = 1600
#: Twilio's error code for a body over :data:`MAX_BODY_CHARS`.
BODY_TOO_LONG_ERROR = 21617

Encoding = Literal["GSM-7", "UCS-2"]


@dataclass(frozen=True, slots=True)
class SegmentInfo:
    """How a body will travel.

    ``length_units`` is in septets for GSM-7 and in UTF-16 code units for UCS-2;
    ``characters`` is the number of Unicode code points (what a person counts).
    """

    encoding: Encoding
    length_units: int
    segments: int
    characters: int


class BodyTooLongError(ValueError):
    """A message body longer than Twilio accepts (it would fail with error 21617)."""

    code = BODY_TOO_LONG_ERROR

    def __init__(self, length: int, limit: int = MAX_BODY_CHARS) -> None:
        self.length = length
        self.limit = limit
        super().__init__(
            f"message body is {length} characters; the limit is {limit} "
            f"(emoji count as 2; Twilio error {BODY_TOO_LONG_ERROR})"
        )


def body_length(body: str) -> int:
    """Return the length counted against :data:`MAX_BODY_CHARS` (UTF-16 code units)."""
    if body.isascii():
        return len(body)
    return len(body.encode("utf-16-le")) // 2


def check_body_length(body: str, limit: int = MAX_BODY_CHARS) -> None:
    """Raise :class:`BodyTooLongError` if ``body`` is longer than Twilio accepts."""
    length = body_length(body)
    if length > limit:
        raise BodyTooLongError(length, limit)


def segment_info(body: str) -> SegmentInfo:
    """Return the encoding, length and number of segments of ``body``.

    An empty body is one (empty) GSM-7 segment, as Twilio bills it.
    """
    characters = len(body)
    chars = set(body)
    if chars <= GSM7_ALPHABET:
        extension = chars & GSM7_EXTENSION
        if not extension:
            return SegmentInfo("GSM-7", characters, _even_parts(characters, 160, 153), characters)
        units = characters + sum(body.count(ch) for ch in extension)
        if units <= GSM7_SINGLE:
            return SegmentInfo("GSM-7", units, 1, characters)
        return SegmentInfo(
            "GSM-7", units, _packed_parts(body, GSM7_EXTENSION, GSM7_PER_PART), characters
        )
    units = body_length(body)
    if units == characters:  # no surrogate pairs: nothing can straddle a boundary
        return SegmentInfo("UCS-2", units, _even_parts(units, 70, 67), characters)
    if units <= UCS2_SINGLE:
        return SegmentInfo("UCS-2", units, 1, characters)
    astral = frozenset(ch for ch in chars if ord(ch) > 0xFFFF)
    return SegmentInfo("UCS-2", units, _packed_parts(body, astral, UCS2_PER_PART), characters)


def _even_parts(units: int, single: int, per_part: int) -> int:
    if units <= single:
        return 1
    return -(-units // per_part)


def _packed_parts(body: str, wide: frozenset[str], per_part: int) -> int:
    """Pack characters of width 1 (or 2 when in ``wide``) into parts, never splitting one."""
    parts = 1
    used = 0
    for ch in body:
        width = 2 if ch in wide else 1
        if used + width > per_part:
            parts += 1
            used = 0
        used += width
    return parts
