"""The report's figures: a snapshot's per-row facts (:func:`derive`), the figures counted
from them (:func:`measure`) and the per-program and per-advisor breakdowns.

The input is a :class:`~domain.quality.snapshot.Snapshot`. Every figure a user reads is
defined here, once:

=========================  =====================================================================
figure                     definition (over ACTIVE STUDENTS, and their phones still in the SIS)
=========================  =====================================================================
students                   active students
with_sms_number            students with a chosen SMS number (``Person.sms_e164``)
missing_cell               students with no SMS number at all (by ``sms_reason``)
sms_reachable              students with an SMS number that is not opted out (institution
                           scope), not paused for review, not rejected by the carrier, and
                           opted in (or never asked while auto opt-in is on)
sms_reachable_pct          100 × sms_reachable / students (None when there are no students)
opted_out ...              students whose SMS number is blocked by consent or the carrier
phones                     phone rows of active students still present in the SIS
invalid_numbers            phone rows that are not a valid phone number (blank, free text, ...)
malformed_e164             phone rows whose stored E.164 does not match ``^\\+[1-9]\\d{7,14}$``
type_mismatches            phone rows coded mobile whose line type is FIXED_LINE
unmapped_type_codes        phone rows whose type code is not in ``type_code_map``
shared_numbers             distinct SMS numbers that are the SMS number of 2+ students
shared_number_students     students whose SMS number is shared with another student
parent_numbers             students whose SMS number is recorded as a parent/family number
                           on any active student's record
no_email                   students with no (or a blank) email address
stale_numbers              phone rows last updated in the SIS more than ``stale_years`` ago
                           (undated rows are not counted: ``undated_numbers``)
unreachable                students reachable neither by SMS (not sms_reachable) nor by
                           email (no email): nothing nudge sends can reach them
duplicate_student_ids      student ids appearing more than once in the snapshot
=========================  =====================================================================
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from domain.config import PhoneKind, SmsConfig
from domain.phones import MANUAL_TYPE_CODE
from domain.quality.snapshot import Snapshot
from domain.routing import Reason, consent_block

#: The pattern every stored E.164 number must match (also in ``expectations/phones.json``).
E164_PATTERN = re.compile(r"^\+[1-9]\d{7,14}$")

UNASSIGNED = "unassigned"
_DAYS_PER_YEAR = 365.25


@dataclass(frozen=True, slots=True)
class Derived:
    """Per-row facts computed from a snapshot and the configuration (parallel to its rows)."""

    sms_block: list[str | None]
    """Why a student cannot be texted (None = reachable): no_number | carrier_disabled |
    opted_out | paused_for_review | not_opted_in."""
    sms_sharers: list[int]
    """Active students with this student's SMS number, this one included (0 = no number)."""
    phone_age_years: list[float | None]
    phone_mapped: list[bool]
    phone_mismatch: list[bool]
    phone_stale: list[bool]
    phone_malformed: list[bool]

    @property
    def sms_reachable(self) -> list[bool]:
        """True per student who can be texted."""
        return [b is None for b in self.sms_block]


def sms_block(
    *,
    sms_e164: str | None,
    consent_status: str | None,
    disabled_by_carrier: bool,
    auto_opt_in: bool,
) -> str | None:
    """Why a student cannot be texted, or None when they can: no number, a carrier flag, then
    the router's one consent gate (:func:`domain.routing.consent_block`).

    ``consent_status`` is the stored institution-wide state (``ConsentState``: opted_in,
    opted_out, paused_for_review; None when never asked). A student paused while a
    revocation-like reply is reviewed cannot be texted, auto opt-in or not.
    """
    if not sms_e164:
        return "no_number"
    if disabled_by_carrier:
        return "carrier_disabled"
    blocked = consent_block(consent_status, auto_opt_in=auto_opt_in)
    return None if blocked is None else _BLOCK_LABELS[blocked]


#: The router's consent reasons under the names the quality figures have always used.
_BLOCK_LABELS = {
    Reason.OPTED_OUT: "opted_out",
    Reason.REVIEW_PENDING: "paused_for_review",
    Reason.NOT_OPTED_IN: "not_opted_in",
}


def age_years(updated: datetime | None, now: datetime) -> float | None:
    """Years between ``updated`` and ``now`` (None when the SIS gave no date)."""
    if updated is None:
        return None
    return (now - updated).total_seconds() / 86_400 / _DAYS_PER_YEAR


def derive(snapshot: Snapshot, config: SmsConfig, now: datetime) -> Derived:
    """Compute the per-row facts the figures, expectations and follow-ups share."""
    st, ph = snapshot.students, snapshot.phones
    blocks = [
        sms_block(
            sms_e164=e164,
            consent_status=consent,
            disabled_by_carrier=bool(disabled),
            auto_opt_in=config.auto_opt_in,
        )
        for e164, consent, disabled in zip(
            st["sms_e164"], st["consent_status"], st["sms_disabled_by_carrier"], strict=True
        )
    ]
    holders = Counter(n for n in st["sms_e164"] if n)
    sharers = [holders[n] if n else 0 for n in st["sms_e164"]]
    mapping = config.type_code_map
    ages = [age_years(u, now) for u in ph["source_updated_at"]]
    return Derived(
        sms_block=blocks,
        sms_sharers=sharers,
        phone_age_years=ages,
        phone_mapped=[
            (code or "").strip().upper() in mapping or code == MANUAL_TYPE_CODE
            for code in ph["type_code"]
        ],
        phone_mismatch=[
            kind == PhoneKind.mobile and line == "FIXED_LINE"
            for kind, line in zip(ph["kind"], ph["line_type"], strict=True)
        ],
        phone_stale=[a is not None and a > config.stale_years for a in ages],
        phone_malformed=[bool(e) and not E164_PATTERN.match(e) for e in ph["e164"]],
    )


@dataclass(frozen=True, slots=True)
class Figures:
    """The report's figures (see the module docstring for each definition)."""

    students: int
    with_sms_number: int
    sms_reachable: int
    sms_reachable_pct: float | None
    missing_cell: int
    missing_cell_by_reason: dict[str, int]
    opted_out: int
    paused_for_review: int
    not_opted_in: int
    carrier_disabled: int
    phones: int
    invalid_numbers: int
    invalid_by_reason: dict[str, int]
    malformed_e164: int
    type_mismatches: int
    unmapped_type_codes: int
    unmapped_type_code_counts: dict[str, int]
    shared_numbers: int
    shared_number_students: int
    parent_numbers: int
    no_email: int
    stale_numbers: int
    undated_numbers: int
    unreachable: int
    duplicate_student_ids: int

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


def has_email(value: str | None) -> bool:
    """True when ``value`` is an email address that is not blank."""
    return bool(value and value.strip())


def measure(snapshot: Snapshot, derived: Derived) -> Figures:
    """Count every figure of the report."""
    st, ph = snapshot.students, snapshot.phones
    students = snapshot.n_students
    blocks = Counter(derived.sms_block)
    reachable = blocks[None]
    no_email = [not has_email(e) for e in st["email"]]
    missing = Counter(
        reason or "unknown"
        for e164, reason in zip(st["sms_e164"], st["sms_reason"], strict=True)
        if not e164
    )
    invalid = Counter(
        reason or "invalid"
        for valid, reason in zip(ph["valid"], ph["reason"], strict=True)
        if not valid
    )
    unmapped = Counter(
        (code or "").strip().upper() or "(blank)"
        for code, mapped in zip(ph["type_code"], derived.phone_mapped, strict=True)
        if not mapped
    )
    ids = Counter(st["sis_id"])
    shared = {n for n, count in Counter(n for n in st["sms_e164"] if n).items() if count > 1}
    return Figures(
        students=students,
        with_sms_number=sum(1 for n in st["sms_e164"] if n),
        sms_reachable=reachable,
        sms_reachable_pct=round(100 * reachable / students, 2) if students else None,
        missing_cell=blocks["no_number"],
        missing_cell_by_reason=dict(missing.most_common()),
        opted_out=blocks["opted_out"],
        paused_for_review=blocks["paused_for_review"],
        not_opted_in=blocks["not_opted_in"],
        carrier_disabled=blocks["carrier_disabled"],
        phones=snapshot.n_phones,
        invalid_numbers=sum(invalid.values()),
        invalid_by_reason=dict(invalid.most_common()),
        malformed_e164=sum(derived.phone_malformed),
        type_mismatches=sum(derived.phone_mismatch),
        unmapped_type_codes=sum(unmapped.values()),
        unmapped_type_code_counts=dict(unmapped.most_common()),
        shared_numbers=len(shared),
        shared_number_students=sum(1 for s in derived.sms_sharers if s > 1),
        parent_numbers=sum(1 for p in st["sms_is_parent_number"] if p),
        no_email=sum(no_email),
        stale_numbers=sum(derived.phone_stale),
        undated_numbers=sum(1 for a in derived.phone_age_years if a is None),
        unreachable=sum(
            1 for b, ne in zip(derived.sms_block, no_email, strict=True) if b is not None and ne
        ),
        duplicate_student_ids=sum(1 for count in ids.values() if count > 1),
    )


# --- breakdowns -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GroupCount:
    """Missing-cell counts of one program or advisor."""

    by: str
    name: str
    students: int
    missing_cell: int
    not_sms_reachable: int

    @property
    def missing_pct(self) -> float:
        """Share of the group's students with no SMS number, in percent."""
        return round(100 * self.missing_cell / self.students, 1) if self.students else 0.0

    def to_dict(self) -> dict[str, Any]:
        """A JSON- and table-ready dict."""
        return {**asdict(self), "missing_pct": self.missing_pct}


def breakdown(snapshot: Snapshot, derived: Derived, by: str) -> list[GroupCount]:
    """Missing-cell counts per ``program`` or per ``advisor``, worst first."""
    column = {"program": "program", "advisor": "advisor_sis_id"}[by]
    totals: Counter[str] = Counter()
    missing: Counter[str] = Counter()
    blocked: Counter[str] = Counter()
    empty = "(none)" if by == "program" else UNASSIGNED
    for value, block in zip(snapshot.students[column], derived.sms_block, strict=True):
        name = (value or "").strip() or empty
        totals[name] += 1
        missing[name] += block == "no_number"
        blocked[name] += block is not None
    groups = [GroupCount(by, n, totals[n], missing[n], blocked[n]) for n in totals]
    return sorted(groups, key=lambda g: (-g.missing_cell, -g.students, g.name))
