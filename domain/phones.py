"""Phone rules: parse what the SIS sent, say why a number is refused, and pick the SMS number.

Pure functions of values. The raw value is always kept by the caller; what this module adds
is the interpretation:

* :func:`parse_phone` parses with the row's country when given, else the institution's
  default region, and either returns a valid number (E.164, line type, SMS capability) or a
  :class:`RejectReason`.
* :func:`kind_for_code` maps an institution's type code (CELL, PR, PAR, ...) to a
  :class:`~domain.config.PhoneKind`; unknown codes become ``other`` and are reported.
* :func:`choose_sms_number` picks the one number a person is texted on: an admin's
  ``sms_allowed`` override first, else a valid SMS-capable number of the default kind,
  primary first, then most recently updated; never a parent or family number, never one the
  carrier disabled. When there is none it says why (:class:`NoSmsReason`).

libphonenumber cannot tell a US landline from a mobile (both are FIXED_LINE_OR_MOBILE), so
those count as SMS-capable; carrier errors teach us the rest later (``disabled_by_carrier``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import NamedTuple

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, PhoneNumberType

from domain.config import PhoneKind

#: ``type_code`` of a number an admin added (``nudge phones override ... --allow``) rather
#: than the SIS: no extract lists it, so the sync must neither remove it nor ignore it, and
#: the data-quality figures count it as mapped (it is a mobile number by decision).
MANUAL_TYPE_CODE = "OVERRIDE"


class RejectReason(StrEnum):
    """Why a raw value is not a usable number."""

    blank = "blank"
    unparseable = "unparseable"
    unknown_country = "unknown_country"
    too_short = "too_short"
    invalid = "invalid"
    extension_in_sms_slot = "extension_in_sms_slot"


class NoSmsReason(StrEnum):
    """Why a person has no SMS number (shown in previews and the data-quality report)."""

    no_phone = "no_phone"
    no_number_of_kind = "no_mobile_number"
    invalid_number = "invalid_number"
    not_sms_capable = "not_sms_capable"
    carrier_disabled = "carrier_disabled"
    override_denied = "override_denied"
    parent_number_only = "parent_number_only"


#: Line types that can receive SMS. US numbers are FIXED_LINE_OR_MOBILE.
SMS_CAPABLE_LINE_TYPES = frozenset({"MOBILE", "FIXED_LINE_OR_MOBILE", "VOIP"})

#: Kinds that belong to someone else: never a student's SMS number.
FAMILY_KINDS = frozenset({PhoneKind.parent})

_LINE_TYPE_NAMES: dict[int, str] = {
    value: name
    for name, value in vars(PhoneNumberType).items()
    if name.isupper() and isinstance(value, int)
}
_TOO_SHORT_ERRORS = frozenset(
    {NumberParseException.TOO_SHORT_NSN, NumberParseException.TOO_SHORT_AFTER_IDD}
)
_TOO_SHORT_POSSIBILITY = frozenset(
    {
        phonenumbers.ValidationResult.TOO_SHORT,
        phonenumbers.ValidationResult.IS_POSSIBLE_LOCAL_ONLY,
    }
)
_REGIONS = frozenset(phonenumbers.SUPPORTED_REGIONS)


class ParsedPhone(NamedTuple):
    """What a raw value turned out to be. ``e164`` is set whenever the number itself is valid.

    A named tuple, not a dataclass: large first syncs parse in worker processes, and tuples
    cross the process boundary ten times cheaper.
    """

    e164: str | None
    line_type: str | None
    valid: bool
    reason: RejectReason | None
    sms_capable: bool
    extension: str | None = None


def parse_phone(
    raw: str,
    *,
    country: str | None = None,
    default_region: str = "US",
    sms_slot: bool = False,
) -> ParsedPhone:
    """Parse and classify one raw phone value.

    ``country`` (ISO alpha-2 from the SIS row) wins over ``default_region`` for numbers
    written without ``+``. ``sms_slot`` says the row is of the kind used for SMS: there an
    extension makes the number unusable (``extension_in_sms_slot``); elsewhere it is kept.
    """
    text = raw.strip()
    if not text:
        return ParsedPhone(None, None, False, RejectReason.blank, False)
    region = (country or "").strip().upper() or default_region
    if region not in _REGIONS and not text.startswith("+"):
        return ParsedPhone(None, None, False, RejectReason.unknown_country, False)
    try:
        number = phonenumbers.parse(text, region)
    except NumberParseException as exc:
        reason = (
            RejectReason.too_short
            if exc.error_type in _TOO_SHORT_ERRORS
            else RejectReason.unparseable
        )
        return ParsedPhone(None, None, False, reason, False)
    # is_valid_number(n) is exactly number_type(n) != UNKNOWN (both find the number's
    # region, then match its descriptions); one call does both jobs, and for +1 numbers
    # finding the region among 25 NANP regions is most of the cost.
    kind = phonenumbers.number_type(number)
    if kind == PhoneNumberType.UNKNOWN:
        possible = phonenumbers.is_possible_number_with_reason(number)
        reason = (
            RejectReason.too_short if possible in _TOO_SHORT_POSSIBILITY else RejectReason.invalid
        )
        return ParsedPhone(None, None, False, reason, False)
    e164 = phonenumbers.format_number(number, PhoneNumberFormat.E164)
    line_type = _LINE_TYPE_NAMES.get(kind, "UNKNOWN")
    extension = number.extension or None
    if extension and sms_slot:
        return ParsedPhone(
            e164, line_type, False, RejectReason.extension_in_sms_slot, False, extension
        )
    return ParsedPhone(e164, line_type, True, None, line_type in SMS_CAPABLE_LINE_TYPES, extension)


def kind_for_code(code: str, mapping: Mapping[str, PhoneKind]) -> tuple[PhoneKind, bool]:
    """Map an institution type code to a kind; unknown codes give ``(other, False)``.

    ``mapping`` keys are upper case (``SmsConfig`` normalises them); codes compare
    case-insensitively with surrounding blanks ignored.
    """
    kind = mapping.get(code.strip().upper())
    if kind is None:
        return PhoneKind.other, False
    return kind, True


def is_type_mismatch(kind: PhoneKind | str, line_type: str | None) -> bool:
    """Coded as a mobile, but libphonenumber is sure it is a fixed line."""
    return kind == PhoneKind.mobile and line_type == "FIXED_LINE"


def match_key(e164: str | None, raw: str) -> str:
    """The identity of a phone row within a person: the E.164 when valid, else the raw text.

    Keying on E.164 lets an override survive the SIS re-formatting the same number.
    """
    return e164 if e164 else "raw:" + raw.strip()


@dataclass(frozen=True, slots=True)
class PhoneFacts:
    """What the SMS-number choice needs to know about one stored phone of a person."""

    id: int
    kind: PhoneKind | str
    e164: str | None
    valid: bool
    sms_capable: bool
    is_primary: bool = False
    updated_at: datetime | None = None
    sms_allowed: bool | None = None
    disabled_by_carrier: bool = False


@dataclass(frozen=True, slots=True)
class SmsChoice:
    """The chosen SMS number of a person, or why there is none."""

    phone_id: int | None
    e164: str | None
    reason: NoSmsReason | None


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _preference(phone: PhoneFacts) -> tuple[bool, datetime, int]:
    # sorted() ascending: primary first, newest first, then the lowest id for stability.
    return (not phone.is_primary, _negate(phone.updated_at), phone.id)


def _negate(moment: datetime | None) -> datetime:
    if moment is None:
        return datetime.max.replace(tzinfo=UTC)
    return datetime.max.replace(tzinfo=UTC) - (moment - _EPOCH)


def choose_sms_number(
    phones: Sequence[PhoneFacts], *, default_kind: PhoneKind | str = PhoneKind.mobile
) -> SmsChoice:
    """Pick the number a person is texted on, or say why there is none.

    1. An admin's ``sms_allowed=True`` override on a number with an E.164 wins (the admin's
       word beats kind, line type and carrier flags).
    2. Otherwise: valid, SMS-capable, of ``default_kind``, not disabled by the carrier, not
       overridden to False, never a parent/family number; primary first, then the most
       recently updated.
    """
    if not phones:
        return SmsChoice(None, None, NoSmsReason.no_phone)
    allowed = sorted((p for p in phones if p.sms_allowed and p.e164), key=_preference)
    if allowed:
        return SmsChoice(allowed[0].id, allowed[0].e164, None)
    of_kind = [p for p in phones if p.kind == default_kind and p.kind not in FAMILY_KINDS]
    usable = sorted(
        (
            p
            for p in of_kind
            if p.valid and p.sms_capable and not p.disabled_by_carrier and p.sms_allowed is None
        ),
        key=_preference,
    )
    if usable:
        return SmsChoice(usable[0].id, usable[0].e164, None)
    return SmsChoice(None, None, _why_none(phones, of_kind))


def _why_none(phones: Sequence[PhoneFacts], of_kind: Sequence[PhoneFacts]) -> NoSmsReason:
    if not of_kind:
        if all(p.kind in FAMILY_KINDS for p in phones):
            return NoSmsReason.parent_number_only
        return NoSmsReason.no_number_of_kind
    if any(p.sms_allowed is False for p in of_kind) and all(
        p.sms_allowed is False or not p.valid for p in of_kind
    ):
        return NoSmsReason.override_denied
    if any(p.valid and p.disabled_by_carrier for p in of_kind):
        return NoSmsReason.carrier_disabled
    if any(p.valid for p in of_kind):
        return NoSmsReason.not_sms_capable
    return NoSmsReason.invalid_number


def shared_numbers(owners: Iterable[tuple[str, str]]) -> dict[str, set[str]]:
    """E.164 numbers held by more than one person: ``{e164: {person ids}}``.

    Flag, do not hide: siblings sharing a family phone are real, but a text to that number
    reaches someone else too.
    """
    by_number: dict[str, set[str]] = {}
    for e164, person in owners:
        by_number.setdefault(e164, set()).add(person)
    return {e164: people for e164, people in by_number.items() if len(people) > 1}


def parse_many(
    items: Sequence[tuple[str, str | None, bool]], default_region: str
) -> list[ParsedPhone]:
    """Parse ``(raw, country, sms_slot)`` items; a top-level function so a process pool can
    run it (the sync spreads large first syncs over every core)."""
    return [
        parse_phone(raw, country=country, default_region=default_region, sms_slot=slot)
        for raw, country, slot in items
    ]
