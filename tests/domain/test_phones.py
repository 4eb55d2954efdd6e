"""Every phone rule, one row each: parsing, reasons, kinds, and the SMS-number choice."""

from __future__ import annotations

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

PARSE_CASES = [
    # id, raw, country, sms_slot, e164, line_type, valid, reason, sms_capable
    (
        "us-parens",
        "(212) 867-5309",
        None,
        True,
        "+12128675309",
        "FIXED_LINE_OR_MOBILE",
        True,
        None,
        True,
    ),
    (
        "us-dots",
        "212.867.5309",
        None,
        True,
        "+12128675309",
        "FIXED_LINE_OR_MOBILE",
        True,
        None,
        True,
    ),
    (
        "us-plus-one",
        "+1 212 867 5309",
        None,
        True,
        "+12128675309",
        "FIXED_LINE_OR_MOBILE",
        True,
        None,
        True,
    ),
    (
        "us-leading-1",
        "1-212-867-5309",
        None,
        True,
        "+12128675309",
        "FIXED_LINE_OR_MOBILE",
        True,
        None,
        True,
    ),
    (
        "surrounding-space",
        "  2128675309 ",
        None,
        True,
        "+12128675309",
        "FIXED_LINE_OR_MOBILE",
        True,
        None,
        True,
    ),
    (
        "row-country-gb-mobile",
        "07911 123456",
        "GB",
        True,
        "+447911123456",
        "MOBILE",
        True,
        None,
        True,
    ),
    (
        "row-country-lowercase",
        "07911 123456",
        "gb",
        True,
        "+447911123456",
        "MOBILE",
        True,
        None,
        True,
    ),
    (
        "plus-ignores-default",
        "+44 7911 123456",
        None,
        True,
        "+447911123456",
        "MOBILE",
        True,
        None,
        True,
    ),
    (
        "gb-landline-not-sms",
        "020 7183 8750",
        "GB",
        True,
        "+442071838750",
        "FIXED_LINE",
        True,
        None,
        False,
    ),
    (
        "toll-free-not-sms",
        "1-800-555-1234",
        None,
        True,
        "+18005551234",
        "TOLL_FREE",
        True,
        None,
        False,
    ),
    (
        "decline-to-state",
        "Decline to state",
        None,
        True,
        None,
        None,
        False,
        RejectReason.unparseable,
        False,
    ),
    ("n-a", "N/A", None, True, None, None, False, RejectReason.unparseable, False),
    ("blank", "   ", None, True, None, None, False, RejectReason.blank, False),
    ("seven-digits", "867-5309", None, True, None, None, False, RejectReason.too_short, False),
    ("two-digits", "12", None, True, None, None, False, RejectReason.too_short, False),
    (
        "invalid-area-code",
        "(099) 867-5309",
        None,
        True,
        None,
        None,
        False,
        RejectReason.invalid,
        False,
    ),
    (
        "unknown-country",
        "212 867 5309",
        "ZZ",
        True,
        None,
        None,
        False,
        RejectReason.unknown_country,
        False,
    ),
    (
        "extension-in-sms-slot",
        "212-867-5309 x204",
        None,
        True,
        "+12128675309",
        "FIXED_LINE_OR_MOBILE",
        False,
        RejectReason.extension_in_sms_slot,
        False,
    ),
    (
        "extension-elsewhere-kept",
        "212-867-5309 x204",
        None,
        False,
        "+12128675309",
        "FIXED_LINE_OR_MOBILE",
        True,
        None,
        True,
    ),
]


@pytest.mark.parametrize(
    ("raw", "country", "sms_slot", "e164", "line_type", "valid", "reason", "sms_capable"),
    [pytest.param(*case[1:], id=case[0]) for case in PARSE_CASES],
)
def test_parse_phone(
    raw: str,
    country: str | None,
    sms_slot: bool,
    e164: str | None,
    line_type: str | None,
    valid: bool,
    reason: RejectReason | None,
    sms_capable: bool,
) -> None:
    parsed = parse_phone(raw, country=country, default_region="US", sms_slot=sms_slot)
    assert (parsed.e164, parsed.line_type, parsed.valid, parsed.reason, parsed.sms_capable) == (
        e164,
        line_type,
        valid,
        reason,
        sms_capable,
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
