"""Masking of personal data for logs, artifacts and reports.

Full phone numbers never appear at INFO or above, nor in Prefect artifacts or CSV follow-up
lists: keep the country code and the last four digits, as ``+1******0123``.
"""

from __future__ import annotations

import phonenumbers


def mask_phone(value: str | None) -> str:
    """Mask a phone number, keeping the country code and the last four digits.

    ``+15551230123`` becomes ``+1******0123``; a value that is not E.164 keeps only its last
    four digits (``***0123``), and an empty value becomes ``""``.
    """
    if not value:
        return ""
    digits = "".join(ch for ch in value if ch.isdigit())
    if value.startswith("+") and len(digits) > 4:
        cc = _country_code(digits)
        hidden = max(len(digits) - len(cc) - 4, 0)
        return f"+{cc}{'*' * hidden}{digits[-4:]}"
    if len(digits) <= 4:
        return "*" * len(digits)
    return "***" + digits[-4:]


def _country_code(digits: str) -> str:
    for size in (1, 2, 3):
        if int(digits[:size]) in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
            return digits[:size]
    return digits[:1]
