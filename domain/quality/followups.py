"""The advisors' follow-up lists: one row per fixable problem of a student, numbers masked."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from domain.masking import mask_phone
from domain.names import display_name
from domain.quality.labels import INVALID_TEXT, NO_SMS_TEXT
from domain.quality.metrics import UNASSIGNED, Derived, has_email
from domain.quality.snapshot import Snapshot


@dataclass(frozen=True, slots=True)
class FollowUp:
    """One problem of one student, for their advisor's follow-up list."""

    advisor: str
    student_id: str
    name: str
    program: str
    problem: str
    what: str
    fix: str


#: Follow-up problems, in the order a student's rows are listed (keys of the suites' meta).
FOLLOWUP_PROBLEMS: tuple[str, ...] = (
    "sms_reachable",
    "parent_number",
    "shared_numbers",
    "mobile_is_mobile",
    "valid_numbers",
    "e164_format",
    "fresh_numbers",
    "has_email",
)


def _masked_raw(raw: str | None) -> str:
    text = (raw or "").strip()
    if not text:
        return "(blank)"
    return mask_phone(text) or "(no digits)"


def followups(
    snapshot: Snapshot, derived: Derived, fixes: Mapping[str, str], now: datetime
) -> list[FollowUp]:
    """Every student's fixable problems, one row each, numbers masked, sorted by advisor.

    ``fixes`` maps expectation keys to their fix-it hints (from the suites). Consent states
    (opted out, paused) are not problems to fix and are not listed; institution-level
    problems (unmapped type codes) are in the report, not in the advisors' lists.
    """
    st, ph = snapshot.students, snapshot.phones
    by_student: dict[str, list[tuple[str, str]]] = {}

    def add(sis_id: str, problem: str, what: str) -> None:
        by_student.setdefault(sis_id, []).append((problem, what))

    for i, sis_id in enumerate(st["sis_id"]):
        e164 = st["sms_e164"][i]
        block = derived.sms_block[i]
        if block == "no_number":
            reason = st["sms_reason"][i]
            add(
                sis_id,
                "sms_reachable",
                f"No number we can text: {NO_SMS_TEXT.get(reason or '', reason or 'unknown')}",
            )
        elif block == "carrier_disabled":
            add(sis_id, "sms_reachable", f"The carrier rejects texts to {mask_phone(e164)}")
        if st["sms_is_parent_number"][i]:
            add(
                sis_id,
                "parent_number",
                f"SMS number {mask_phone(e164)} is recorded as a parent or family number",
            )
        if derived.sms_sharers[i] > 1:
            others = derived.sms_sharers[i] - 1
            add(
                sis_id,
                "shared_numbers",
                f"SMS number {mask_phone(e164)} is also the SMS number of {others} other "
                f"student{'s' if others > 1 else ''}",
            )
        if not has_email(st["email"][i]):
            tail = " and no number we can text: unreachable" if block is not None else ""
            add(sis_id, "has_email", f"No email address{tail}")
    valid, mismatch, malformed = ph["valid"], derived.phone_mismatch, derived.phone_malformed
    stale = derived.phone_stale
    for j, sis_id in enumerate(ph["sis_id"]):
        if valid[j] and not (mismatch[j] or malformed[j] or stale[j]):
            continue  # most phones: nothing to say, and masking is not free
        code = ph["type_code"][j] or "(no code)"
        e164 = ph["e164"][j]
        shown = mask_phone(e164) if e164 else _masked_raw(ph["raw"][j])
        if mismatch[j]:
            add(sis_id, "mobile_is_mobile", f"{shown} is coded {code} (mobile) but is a landline")
        if not valid[j]:
            reason = ph["reason"][j] or "invalid"
            add(
                sis_id,
                "valid_numbers",
                f"{code} entry {shown} is not usable: {INVALID_TEXT.get(reason, reason)}",
            )
        if malformed[j]:
            add(sis_id, "e164_format", f"Stored number {shown} ({code}) is not well-formed E.164")
        if stale[j] and valid[j]:  # an invalid entry is listed already
            updated = ph["source_updated_at"][j]
            age = _age_words(derived.phone_age_years[j] or 0.0)
            add(
                sis_id,
                "fresh_numbers",
                f"{code} number {shown} last updated {updated:%Y-%m-%d}, {age}",
            )

    order = {key: n for n, key in enumerate(FOLLOWUP_PROBLEMS)}
    rows: list[FollowUp] = []
    for i, sis_id in enumerate(st["sis_id"]):
        problems = by_student.pop(sis_id, None)
        if not problems:
            continue
        advisor = (st["advisor_sis_id"][i] or "").strip() or UNASSIGNED
        name = display_name(st["first_name"][i], st["preferred_name"][i], st["last_name"][i])
        program = st["program"][i] or ""
        for problem, what in sorted(problems, key=lambda p: order.get(p[0], len(order))):
            rows.append(
                FollowUp(advisor, sis_id, name, program, problem, what, fixes.get(problem, ""))
            )
    rows.sort(key=lambda r: (r.advisor, r.student_id))  # stable: problems keep their order
    return rows


def _age_words(years: float) -> str:
    whole = int(years)
    if whole >= 1:
        return f"over {whole} year{'s' if whole > 1 else ''} ago"
    months = int(years * 12)
    return f"{months} month{'s' if months != 1 else ''} ago"


def advisor_file_stem(advisor: str) -> str:
    """A safe file name for an advisor's list (ids are the SIS's, so anything can appear)."""
    stem = re.sub(r"[^A-Za-z0-9._-]", "_", advisor.strip()).strip("._")
    return stem or UNASSIGNED
