"""The words the data-quality report uses: figure labels and the plain words for reasons.

Shared by ``summary.md`` (:mod:`domain.quality.render`), the report page
(:mod:`domain.quality.html`) and the advisors' follow-up lists.
"""

from __future__ import annotations

#: Figures compared with the previous run (the "change" column of the report).
HEADLINE_KEYS: tuple[str, ...] = (
    "students",
    "sms_reachable_pct",
    "missing_cell",
    "invalid_numbers",
    "type_mismatches",
    "shared_numbers",
    "parent_numbers",
    "no_email",
    "stale_numbers",
    "unreachable",
    "expectations_failed",
)
HEADLINE_LABELS: dict[str, str] = {
    "students": "Active students",
    "sms_reachable_pct": "SMS reachable (%)",
    "missing_cell": "No number we can text",
    "invalid_numbers": "Invalid phone entries",
    "type_mismatches": "Landlines coded as mobile",
    "shared_numbers": "SMS numbers shared by students",
    "parent_numbers": "Parent numbers in the SMS slot",
    "no_email": "No email address",
    "stale_numbers": "Stale numbers",
    "unreachable": "Unreachable (no SMS, no email)",
    "expectations_failed": "Expectations failed",
}

#: Plain words for ``Person.sms_reason`` (``domain.phones.NoSmsReason``) in reports.
NO_SMS_TEXT: dict[str, str] = {
    "no_phone": "no phone number on file",
    "no_mobile_number": "no mobile number on file",
    "invalid_number": "the mobile number is not a valid phone number",
    "not_sms_capable": "the mobile number cannot receive texts (landline or toll-free)",
    "carrier_disabled": "the carrier rejected texts to the mobile number",
    "override_denied": "an admin turned texting off for this number",
    "parent_number_only": "only a parent or family number on file",
}
#: Students who have a number but cannot be texted, by cause (figure key -> words).
BLOCKED_LABELS: dict[str, str] = {
    "opted_out": "Opted out of texts",
    "paused_for_review": "Texts paused while a reply is reviewed",
    "not_opted_in": "Not opted in (auto opt-in is off)",
    "carrier_disabled": "Carrier rejects texts to their number",
}
#: Plain words for ``PhoneNumber.reason`` (``domain.phones.RejectReason``).
INVALID_TEXT: dict[str, str] = {
    "blank": "blank",
    "unparseable": "not a phone number",
    "unknown_country": "unknown country",
    "too_short": "too few digits",
    "invalid": "not a number that exists",
    "extension_in_sms_slot": "has an extension, so it cannot receive texts",
}
