"""Segment counting and the 1,600-character limit, at every boundary that changes a bill."""

from __future__ import annotations

import pytest

from domain.segments import (
    GSM7_BASIC,
    GSM7_EXTENSION,
    MAX_BODY_CHARS,
    BodyTooLongError,
    SegmentInfo,
    body_length,
    check_body_length,
    segment_info,
)

EMOJI = "😀"  # outside the BMP: two UTF-16 code units

CASES = [
    # GSM-7: 160 in one segment, then 153 per part
    ("empty", "", SegmentInfo("GSM-7", 0, 1, 0)),
    ("gsm-1", "a", SegmentInfo("GSM-7", 1, 1, 1)),
    ("gsm-160", "a" * 160, SegmentInfo("GSM-7", 160, 1, 160)),
    ("gsm-161", "a" * 161, SegmentInfo("GSM-7", 161, 2, 161)),
    ("gsm-306=153*2", "a" * 306, SegmentInfo("GSM-7", 306, 2, 306)),
    ("gsm-307", "a" * 307, SegmentInfo("GSM-7", 307, 3, 307)),
    ("gsm-459=153*3", "a" * 459, SegmentInfo("GSM-7", 459, 3, 459)),
    ("gsm-1600", "a" * 1600, SegmentInfo("GSM-7", 1600, 11, 1600)),
    ("gsm-accents-are-basic", "é" * 160, SegmentInfo("GSM-7", 160, 1, 160)),
    ("gsm-greek-capitals-basic", "ΔΦΓΛΩΠΨΣΘΞ", SegmentInfo("GSM-7", 10, 1, 10)),
    # extension characters count two septets
    ("ext-one", "€", SegmentInfo("GSM-7", 2, 1, 1)),
    ("ext-80-fill-one-segment", "{" * 80, SegmentInfo("GSM-7", 160, 1, 80)),
    ("ext-159+1-overflows", "a" * 159 + "€", SegmentInfo("GSM-7", 161, 2, 160)),
    ("ext-158+1-fits", "a" * 158 + "€", SegmentInfo("GSM-7", 160, 1, 159)),
    # 152 plain + escape pair: the pair cannot split, so it opens part 2
    # (306 septets would be two parts by division; packed as carriers do, it is three)
    ("ext-straddles-part-boundary", "a" * 152 + "€" + "a" * 152, SegmentInfo("GSM-7", 306, 3, 305)),
    (
        "ext-ends-exactly-on-boundary",
        "a" * 151 + "€" + "a" * 153,
        SegmentInfo("GSM-7", 306, 2, 305),
    ),
    ("ext-all-extension-306", "]" * 153, SegmentInfo("GSM-7", 306, 3, 153)),
    ("form-feed-is-extension", "\f", SegmentInfo("GSM-7", 2, 1, 1)),
    # one non-GSM character switches the whole body to UCS-2
    ("ucs2-backtick", "`", SegmentInfo("UCS-2", 1, 1, 1)),
    ("ucs2-smart-quote", "a" * 159 + "’", SegmentInfo("UCS-2", 160, 3, 160)),
    ("ucs2-lowercase-c-cedilla", "ç", SegmentInfo("UCS-2", 1, 1, 1)),
    ("ucs2-70", "ж" * 70, SegmentInfo("UCS-2", 70, 1, 70)),
    ("ucs2-71", "ж" * 71, SegmentInfo("UCS-2", 71, 2, 71)),
    ("ucs2-134=67*2", "ж" * 134, SegmentInfo("UCS-2", 134, 2, 134)),
    ("ucs2-135", "ж" * 135, SegmentInfo("UCS-2", 135, 3, 135)),
    ("ucs2-gsm-ext-counts-one", "ж" + "€" * 69, SegmentInfo("UCS-2", 70, 1, 70)),
    # emoji are two code units; a surrogate pair never splits (134 units: 2 parts by
    # division, 3 when a pair sits on the boundary)
    ("emoji-one", EMOJI, SegmentInfo("UCS-2", 2, 1, 1)),
    ("emoji-35-fill-one-segment", EMOJI * 35, SegmentInfo("UCS-2", 70, 1, 35)),
    ("emoji-69+1-overflows", "a" * 69 + EMOJI, SegmentInfo("UCS-2", 71, 2, 70)),
    (
        "emoji-straddles-part-boundary",
        "a" * 66 + EMOJI + "a" * 66,
        SegmentInfo("UCS-2", 134, 3, 133),
    ),
    (
        "emoji-ends-exactly-on-boundary",
        "a" * 65 + EMOJI + "a" * 67,
        SegmentInfo("UCS-2", 134, 2, 133),
    ),
    ("emoji-67-pairs", EMOJI * 67, SegmentInfo("UCS-2", 134, 3, 67)),
]


@pytest.mark.parametrize(("body", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_segment_info(body: str, expected: SegmentInfo) -> None:
    assert segment_info(body) == expected


def test_every_gsm_basic_character_is_one_septet() -> None:
    body = "".join(sorted(GSM7_BASIC))
    info = segment_info(body)
    assert (info.encoding, info.length_units) == ("GSM-7", len(body))


def test_every_gsm_extension_character_is_two_septets() -> None:
    body = "".join(sorted(GSM7_EXTENSION))
    info = segment_info(body)
    assert (info.encoding, info.length_units) == ("GSM-7", 2 * len(body))


def test_escape_control_character_is_not_gsm() -> None:
    assert segment_info("\x1b").encoding == "UCS-2"


LENGTHS = [
    ("ascii", "a" * 10, 10),
    ("extension-counts-one-character", "€" * 10, 10),
    ("bmp-unicode-one", "ж" * 10, 10),
    ("emoji-two", EMOJI * 10, 20),
]


@pytest.mark.parametrize(("body", "length"), [c[1:] for c in LENGTHS], ids=[c[0] for c in LENGTHS])
def test_body_length_for_the_1600_limit(body: str, length: int) -> None:
    assert body_length(body) == length


LIMIT_CASES = [
    ("1600-ascii-ok", "a" * MAX_BODY_CHARS, True),
    ("1601-ascii-refused", "a" * (MAX_BODY_CHARS + 1), False),
    ("800-emoji-ok", EMOJI * 800, True),
    ("801-emoji-refused", EMOJI * 801, False),
    ("1600-extension-ok", "€" * MAX_BODY_CHARS, True),
]


@pytest.mark.parametrize(
    ("body", "accepted"), [c[1:] for c in LIMIT_CASES], ids=[c[0] for c in LIMIT_CASES]
)
def test_check_body_length(body: str, accepted: bool) -> None:
    if accepted:
        check_body_length(body)
    else:
        with pytest.raises(BodyTooLongError, match=r"limit is 1600.*21617") as info:
            check_body_length(body)
        assert info.value.length == body_length(body)
        assert info.value.code == 21617
