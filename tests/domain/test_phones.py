"""Every phone rule, one row each: parsing, reasons, kinds, and the SMS-number choice."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from domain.config import DEFAULT_TYPE_CODE_MAP, PhoneKind
from domain.phones import (
    NoSmsReason,
    PhoneFacts,
    RejectReason,
    choose_sms_number,
    is_type_mismatch,
    kind_for_code,
    match_key,
    parse_phone,
    shared_numbers,
)


@dataclass(frozen=True, slots=True)
class Parsed:
    """One raw value as an SIS extract holds it, and what parse_phone must say about it."""

    raw: str
    e164: str | None
    line_type: str | None
    valid: bool
    reason: RejectReason | None
    sms_capable: bool
    country: str | None = None  # the row's country column
    sms_slot: bool = True  # the number sits in a slot we would text (a cell)


PARSE_CASES = [
    pytest.param(
        Parsed(
            raw="(212) 867-5309",
            e164="+12128675309",
            line_type="FIXED_LINE_OR_MOBILE",
            valid=True,
            reason=None,
            sms_capable=True,
        ),
        id="us-parens",
    ),
    pytest.param(
        Parsed(
            raw="212.867.5309",
            e164="+12128675309",
            line_type="FIXED_LINE_OR_MOBILE",
            valid=True,
            reason=None,
            sms_capable=True,
        ),
        id="us-dots",
    ),
    pytest.param(
        Parsed(
            raw="+1 212 867 5309",
            e164="+12128675309",
            line_type="FIXED_LINE_OR_MOBILE",
            valid=True,
            reason=None,
            sms_capable=True,
        ),
        id="us-plus-one",
    ),
    pytest.param(
        Parsed(
            raw="1-212-867-5309",
            e164="+12128675309",
            line_type="FIXED_LINE_OR_MOBILE",
            valid=True,
            reason=None,
            sms_capable=True,
        ),
        id="us-leading-1",
    ),
    pytest.param(
        Parsed(
            raw="  2128675309 ",
            e164="+12128675309",
            line_type="FIXED_LINE_OR_MOBILE",
            valid=True,
            reason=None,
            sms_capable=True,
        ),
        id="surrounding-space",
    ),
    pytest.param(
        Parsed(
            raw="07911 123456",
            country="GB",
            e164="+447911123456",
            line_type="MOBILE",
            valid=True,
            reason=None,
            sms_capable=True,
        ),
        id="row-country-gb-mobile",
    ),
    pytest.param(
        Parsed(
            raw="07911 123456",
            country="gb",
            e164="+447911123456",
            line_type="MOBILE",
            valid=True,
            reason=None,
            sms_capable=True,
        ),
        id="row-country-lowercase",
    ),
    pytest.param(
        Parsed(
            raw="+44 7911 123456",
            e164="+447911123456",
            line_type="MOBILE",
            valid=True,
            reason=None,
            sms_capable=True,
        ),
        id="plus-ignores-default",
    ),
    pytest.param(
        Parsed(
            raw="020 7183 8750",
            country="GB",
            e164="+442071838750",
            line_type="FIXED_LINE",
            valid=True,
            reason=None,
            sms_capable=False,
        ),
        id="gb-landline-not-sms",
    ),
    pytest.param(
        Parsed(
            raw="1-800-555-1234",
            e164="+18005551234",
            line_type="TOLL_FREE",
            valid=True,
            reason=None,
            sms_capable=False,
        ),
        id="toll-free-not-sms",
    ),
    pytest.param(
        Parsed(
            raw="Decline to state",
            e164=None,
            line_type=None,
            valid=False,
            reason=RejectReason.unparseable,
            sms_capable=False,
        ),
        id="decline-to-state",
    ),
    pytest.param(
        Parsed(
            raw="N/A",
            e164=None,
            line_type=None,
            valid=False,
            reason=RejectReason.unparseable,
            sms_capable=False,
        ),
        id="n-a",
    ),
    pytest.param(
        Parsed(
            raw="   ",
            e164=None,
            line_type=None,
            valid=False,
            reason=RejectReason.blank,
            sms_capable=False,
        ),
        id="blank",
    ),
    pytest.param(
        Parsed(
            raw="867-5309",
            e164=None,
            line_type=None,
            valid=False,
            reason=RejectReason.too_short,
            sms_capable=False,
        ),
        id="seven-digits",
    ),
    pytest.param(
        Parsed(
            raw="12",
            e164=None,
            line_type=None,
            valid=False,
            reason=RejectReason.too_short,
            sms_capable=False,
        ),
        id="two-digits",
    ),
    pytest.param(
        Parsed(
            raw="(099) 867-5309",
            e164=None,
            line_type=None,
            valid=False,
            reason=RejectReason.invalid,
            sms_capable=False,
        ),
        id="invalid-area-code",
    ),
    pytest.param(
        Parsed(
            raw="212 867 5309",
            country="ZZ",
            e164=None,
            line_type=None,
            valid=False,
            reason=RejectReason.unknown_country,
            sms_capable=False,
        ),
        id="unknown-country",
    ),
    pytest.param(
        Parsed(
            raw="212-867-5309 x204",
            e164="+12128675309",
            line_type="FIXED_LINE_OR_MOBILE",
            valid=False,
            reason=RejectReason.extension_in_sms_slot,
            sms_capable=False,
        ),
        id="extension-in-sms-slot",
    ),
    pytest.param(
        Parsed(
            raw="212-867-5309 x204",
            sms_slot=False,
            e164="+12128675309",
            line_type="FIXED_LINE_OR_MOBILE",
            valid=True,
            reason=None,
            sms_capable=True,
        ),
        id="extension-elsewhere-kept",
    ),
]


@pytest.mark.parametrize("case", PARSE_CASES)
def test_parse_phone(case: Parsed) -> None:
    parsed = parse_phone(
        case.raw, country=case.country, default_region="US", sms_slot=case.sms_slot
    )
    assert (parsed.e164, parsed.line_type, parsed.valid, parsed.reason, parsed.sms_capable) == (
        case.e164,
        case.line_type,
        case.valid,
        case.reason,
        case.sms_capable,
    )


def test_default_region_is_used_without_country() -> None:
    assert parse_phone("07911 123456", default_region="GB").e164 == "+447911123456"
    assert parse_phone("07911 123456", default_region="US").valid is False


def test_extension_is_kept_outside_sms_slots() -> None:
    assert parse_phone("212-867-5309 ext. 12", sms_slot=False).extension == "12"


@pytest.mark.parametrize(
    ("code", "kind", "known"),
    [
        pytest.param("CELL", PhoneKind.mobile, True, id="cell"),
        pytest.param(" cl ", PhoneKind.mobile, True, id="case-and-space"),
        pytest.param("PR", PhoneKind.home, True, id="permanent-home"),
        pytest.param("BUS", PhoneKind.work, True, id="business"),
        pytest.param("PAR", PhoneKind.parent, True, id="parent"),
        pytest.param("EMER", PhoneKind.parent, True, id="emergency-contact-is-someone-else"),
        pytest.param("FAX", PhoneKind.fax, True, id="fax"),
        pytest.param("mobile", PhoneKind.mobile, True, id="ethos-enum"),
        pytest.param("XYZ", PhoneKind.other, False, id="unknown-code"),
        pytest.param("", PhoneKind.other, False, id="blank-code"),
    ],
)
def test_kind_for_code(code: str, kind: PhoneKind, known: bool) -> None:
    assert kind_for_code(code, DEFAULT_TYPE_CODE_MAP) == (kind, known)


@pytest.mark.parametrize(
    ("kind", "line_type", "mismatch"),
    [
        pytest.param(PhoneKind.mobile, "FIXED_LINE", True, id="cell-coded-landline"),
        pytest.param(PhoneKind.mobile, "FIXED_LINE_OR_MOBILE", False, id="us-ambiguous"),
        pytest.param(PhoneKind.home, "FIXED_LINE", False, id="home-landline"),
        pytest.param(PhoneKind.mobile, None, False, id="unparsed"),
    ],
)
def test_type_mismatch(kind: PhoneKind, line_type: str | None, mismatch: bool) -> None:
    assert is_type_mismatch(kind, line_type) is mismatch


def test_match_key_survives_reformatting() -> None:
    a = parse_phone("(212) 867-5309")
    b = parse_phone("212.867.5309")
    assert match_key(a.e164, "(212) 867-5309") == match_key(b.e164, "212.867.5309")
    assert match_key(None, " N/A ") == "raw:N/A"


OLD = datetime(2020, 1, 1, tzinfo=UTC)
NEW = datetime(2025, 1, 1, tzinfo=UTC)


def mobile(id_: int, e164: str = "+12128675309", **kw: object) -> PhoneFacts:
    base: dict[str, object] = dict(
        id=id_, kind=PhoneKind.mobile, e164=e164, valid=True, sms_capable=True
    )
    base.update(kw)
    return PhoneFacts(**base)  # type: ignore[arg-type]


CHOICE_CASES = [
    ("no-phones", [], None, NoSmsReason.no_phone),
    ("single-mobile", [mobile(1)], 1, None),
    (
        "primary-beats-newer",
        [mobile(1, is_primary=True, updated_at=OLD), mobile(2, "+12128675310", updated_at=NEW)],
        1,
        None,
    ),
    (
        "newest-when-no-primary",
        [mobile(1, updated_at=OLD), mobile(2, "+12128675310", updated_at=NEW)],
        2,
        None,
    ),
    ("dated-beats-undated", [mobile(1), mobile(2, "+12128675310", updated_at=OLD)], 2, None),
    ("home-never-chosen", [mobile(1, kind=PhoneKind.home)], None, NoSmsReason.no_number_of_kind),
    ("parent-only", [mobile(1, kind=PhoneKind.parent)], None, NoSmsReason.parent_number_only),
    (
        "invalid-mobile",
        [mobile(1, e164=None, valid=False, sms_capable=False)],
        None,
        NoSmsReason.invalid_number,
    ),
    ("landline-coded-mobile", [mobile(1, sms_capable=False)], None, NoSmsReason.not_sms_capable),
    ("carrier-disabled", [mobile(1, disabled_by_carrier=True)], None, NoSmsReason.carrier_disabled),
    (
        "carrier-disabled-falls-to-next",
        [mobile(1, is_primary=True, disabled_by_carrier=True), mobile(2, "+12128675310")],
        2,
        None,
    ),
    ("override-deny", [mobile(1, sms_allowed=False)], None, NoSmsReason.override_denied),
    (
        "override-deny-falls-to-next",
        [mobile(1, is_primary=True, sms_allowed=False), mobile(2, "+12128675310")],
        2,
        None,
    ),
    (
        "override-allow-home",
        [mobile(1), mobile(2, "+12128675310", kind=PhoneKind.home, sms_allowed=True)],
        2,
        None,
    ),
    (
        "override-allow-beats-carrier",
        [mobile(1, disabled_by_carrier=True, sms_allowed=True)],
        1,
        None,
    ),
    (
        "override-allow-needs-number",
        [mobile(1, e164=None, valid=False, sms_allowed=True)],
        None,
        NoSmsReason.invalid_number,
    ),
]


@pytest.mark.parametrize(
    ("phones", "chosen", "reason"),
    [pytest.param(case[1], case[2], case[3], id=case[0]) for case in CHOICE_CASES],
)
def test_choose_sms_number(
    phones: list[PhoneFacts], chosen: int | None, reason: NoSmsReason | None
) -> None:
    choice = choose_sms_number(phones, default_kind=PhoneKind.mobile)
    assert (choice.phone_id, choice.reason) == (chosen, reason)


def test_default_kind_is_configurable() -> None:
    phones = [mobile(1), mobile(2, "+12128675310", kind=PhoneKind.home)]
    assert choose_sms_number(phones, default_kind=PhoneKind.home).phone_id == 2


def test_parent_kind_never_chosen_even_if_configured_default() -> None:
    phones = [mobile(1, kind=PhoneKind.parent)]
    assert choose_sms_number(phones, default_kind=PhoneKind.parent).phone_id is None


def test_shared_numbers_flags_numbers_on_several_people() -> None:
    owners = [("+1a", "s1"), ("+1a", "s2"), ("+1b", "s3"), ("+1b", "s3")]
    assert shared_numbers(owners) == {"+1a": {"s1", "s2"}}


def test_validity_matches_libphonenumber_is_valid_number() -> None:
    """parse_phone derives validity from number_type (one region lookup instead of two):
    prove the shortcut agrees with is_valid_number over a varied sample."""
    import random

    import phonenumbers

    rng = random.Random(11)
    samples = [
        f"({rng.randint(100, 999)}) {rng.randint(100, 999)}-{rng.randint(0, 9999):04d}"
        for _ in range(3000)
    ]
    samples += [
        "+44 20 7183 8750",
        "+44 7911 123456",
        "+52 55 1234 5678",
        "+91 98765 43210",
        "+1 800 555 1234",
        "+1 900 555 1234",
        "+61 2 9374 4000",
        "+33 1 42 68 53 00",
    ]
    for raw in samples:
        number = phonenumbers.parse(raw, "US")
        assert parse_phone(raw).valid is phonenumbers.is_valid_number(number), raw
