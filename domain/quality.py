"""Data-quality rules: the report's figures, the alert rule, the follow-up list and the chart.

Pure functions of values. The input is a :class:`Snapshot`: the contact data of the active
students as columns (one list per column), exactly what the database query returns and what
Great Expectations validates. Everything a user reads is defined here, once:

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

The alert (:func:`decide_alert`) fires when the reachable share is below
``reachability_threshold`` or fell by more than ``reachability_drop_points`` percentage points
since the previous run; both comparisons are exact (fractions, not floats), so a run exactly
at the threshold does not alert.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from fractions import Fraction
from html import escape
from typing import Any

from domain.config import PhoneKind, SmsConfig
from domain.masking import mask_phone
from domain.phones import MANUAL_TYPE_CODE
from domain.routing import ConsentState

#: The pattern every stored E.164 number must match (also in ``expectations/phones.json``).
E164_PATTERN = re.compile(r"^\+[1-9]\d{7,14}$")

#: Columns of the students frame, in order, with the value used when a builder omits one.
STUDENT_COLUMNS: dict[str, Any] = {
    "sis_id": None,
    "first_name": None,
    "last_name": None,
    "preferred_name": None,
    "program": None,
    "advisor_sis_id": None,
    "email": None,
    "sms_e164": None,
    "sms_reason": None,
    "consent_status": None,
    "sms_disabled_by_carrier": False,
    "sms_is_parent_number": False,
}
#: Columns of the phones frame (present phones of active students), with defaults.
PHONE_COLUMNS: dict[str, Any] = {
    "sis_id": None,
    "type_code": "",
    "kind": "other",
    "e164": None,
    "raw": "",
    "line_type": None,
    "valid": False,
    "reason": None,
    "source_updated_at": None,
}

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

TREND_RUNS = 30
UNASSIGNED = "unassigned"
_DAYS_PER_YEAR = 365.25


class SnapshotError(ValueError):
    """A snapshot's columns are missing or of different lengths."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Active students' contact data as columns: ``students`` and ``phones`` frames."""

    students: dict[str, list[Any]]
    phones: dict[str, list[Any]]

    def __post_init__(self) -> None:
        for name, frame, columns in (
            ("students", self.students, STUDENT_COLUMNS),
            ("phones", self.phones, PHONE_COLUMNS),
        ):
            missing = [c for c in columns if c not in frame]
            if missing:
                raise SnapshotError(f"{name} frame lacks column(s) {', '.join(missing)}")
            if len({len(frame[c]) for c in columns}) > 1:
                raise SnapshotError(f"{name} frame has columns of different lengths")

    @property
    def n_students(self) -> int:
        """Rows of the students frame."""
        return len(self.students["sis_id"])

    @property
    def n_phones(self) -> int:
        """Rows of the phones frame."""
        return len(self.phones["sis_id"])

    @classmethod
    def from_rows(
        cls, students: Iterable[Mapping[str, Any]], phones: Iterable[Mapping[str, Any]] = ()
    ) -> Snapshot:
        """Build from row dicts; omitted columns take their defaults (tests, small tools)."""
        return cls(_columns(students, STUDENT_COLUMNS), _columns(phones, PHONE_COLUMNS))


def _columns(rows: Iterable[Mapping[str, Any]], columns: Mapping[str, Any]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {c: [] for c in columns}
    for row in rows:
        unknown = set(row) - set(columns)
        if unknown:
            raise SnapshotError(f"unknown column(s) {', '.join(sorted(unknown))}")
        for column, default in columns.items():
            out[column].append(row.get(column, default))
    return out


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
    """Why a student cannot be texted, or None when they can (the router's order).

    ``consent_status`` is the stored institution-wide state (``ConsentState``: opted_in,
    opted_out, paused_for_review; None when never asked). A student paused while a
    revocation-like reply is reviewed cannot be texted, auto opt-in or not.
    """
    if not sms_e164:
        return "no_number"
    if disabled_by_carrier:
        return "carrier_disabled"
    # The stored consent states are ConsentState's values (the router's words), compared
    # with ``==`` because the snapshot carries the plain strings from the database.
    if consent_status == ConsentState.OPTED_OUT:
        return "opted_out"
    if consent_status == ConsentState.PAUSED_FOR_REVIEW:
        return "paused_for_review"
    if consent_status != ConsentState.OPTED_IN and not auto_opt_in:
        return "not_opted_in"
    return None


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


def _has_email(value: str | None) -> bool:
    return bool(value and value.strip())


def measure(snapshot: Snapshot, derived: Derived) -> Figures:
    """Count every figure of the report."""
    st, ph = snapshot.students, snapshot.phones
    students = snapshot.n_students
    blocks = Counter(derived.sms_block)
    reachable = blocks[None]
    no_email = [not _has_email(e) for e in st["email"]]
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


# --- thresholds -------------------------------------------------------------------------------


def suite_overrides(config: SmsConfig) -> dict[str, dict[str, Any]]:
    """The expectation kwargs that come from the configuration, by expectation key.

    ``mostly`` is the share of rows that must pass: the reachable share must be at least
    the threshold; shared and stale shares must stay at or under theirs.
    """
    return {
        "sms_reachable": {"mostly": config.reachability_threshold},
        "shared_numbers": {"mostly": _complement(config.shared_number_threshold)},
        "type_codes_mapped": {"value_set": sorted([*config.type_code_map, MANUAL_TYPE_CODE])},
        "fresh_numbers": {
            "max_value": config.stale_years,
            "mostly": _complement(config.stale_share),
        },
    }


def _complement(share: float) -> float:
    # 1 - 0.02 is 0.98 in decimal, not 0.9799999999999999 in binary floating point.
    return float(1 - _exact(share))


def _exact(value: float) -> Fraction:
    """The decimal a user typed (0.95), as an exact fraction (19/20), not its binary float."""
    return Fraction(repr(value))


# --- alert ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AlertDecision:
    """Whether this run alerts, why, and the drop since the previous run (points)."""

    alert: bool
    reasons: tuple[str, ...] = ()
    drop_points: float | None = None
    message: str = ""


def previous_share(previous: Mapping[str, Any] | None) -> Fraction | None:
    """The previous run's reachable share, exactly when its counts were stored."""
    if not previous:
        return None
    students, reachable = previous.get("students"), previous.get("sms_reachable")
    if isinstance(students, int) and isinstance(reachable, int) and students > 0:
        return Fraction(reachable, students)
    pct = previous.get("sms_reachable_pct")
    if isinstance(pct, int | float):
        return _exact(float(pct)) / 100
    return None


def decide_alert(
    *,
    students: int,
    reachable: int,
    previous: Mapping[str, Any] | None,
    threshold: float,
    drop_points: float,
) -> AlertDecision:
    """Alert when the reachable share is under ``threshold`` (a share, 0.95) or fell by
    more than ``drop_points`` percentage points since ``previous`` (the last run's figures).

    No students, no alert: there is nobody to reach and no share to speak of.
    """
    if students <= 0:
        return AlertDecision(False)
    share = Fraction(reachable, students)
    reasons: list[str] = []
    words: list[str] = []
    pct = float(share * 100)
    if share < _exact(threshold):
        reasons.append("below_threshold")
        limit = float(_exact(threshold) * 100)
        words.append(f"SMS reachability {pct:.1f}% is below the {limit:g}% threshold")
    before = previous_share(previous)
    drop: float | None = None
    if before is not None:
        drop_exact = (before - share) * 100
        drop = round(float(drop_exact), 2)
        if drop_exact > _exact(drop_points):
            reasons.append("dropped")
            words.append(
                f"SMS reachability fell {drop:.1f} points since the last run "
                f"({float(before * 100):.1f}% → {pct:.1f}%; alert above {drop_points:g})"
            )
    return AlertDecision(bool(reasons), tuple(reasons), drop, "; ".join(words))


def changes(current: Mapping[str, Any], previous: Mapping[str, Any] | None) -> dict[str, Any]:
    """Headline figure deltas, current minus previous (only where both are numbers)."""
    if not previous:
        return {}
    out: dict[str, Any] = {}
    for key in HEADLINE_KEYS:
        now, before = current.get(key), previous.get(key)
        if isinstance(now, int | float) and isinstance(before, int | float):
            delta = now - before
            out[key] = round(delta, 2) if isinstance(delta, float) else delta
    return out


@dataclass(frozen=True, slots=True)
class TrendPoint:
    """One run on the reachability chart."""

    at: datetime
    pct: float | None
    alert: bool = False


def trend(
    history: Sequence[TrendPoint], current: TrendPoint, limit: int = TREND_RUNS
) -> list[TrendPoint]:
    """The last ``limit`` runs, oldest first, ending with ``current``."""
    points = sorted(history, key=lambda p: p.at)
    return [*points, current][-limit:]


# --- follow-up lists --------------------------------------------------------------------------


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


def display_name(first: str | None, last: str | None, preferred: str | None) -> str:
    """``Preferred (First) Last`` when a different preferred name exists, else ``First Last``."""
    first, last, preferred = (first or "").strip(), (last or "").strip(), (preferred or "").strip()
    given = (
        f"{preferred} ({first})"
        if preferred and first and preferred != first
        else (preferred or first)
    )
    return " ".join(part for part in (given, last) if part)


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
        if not _has_email(st["email"][i]):
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
        name = display_name(st["first_name"][i], st["last_name"][i], st["preferred_name"][i])
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


# --- the chart --------------------------------------------------------------------------------


def render_reachability_svg(points: Sequence[TrendPoint], threshold: float) -> str:
    """A small SVG line chart of SMS reachability over runs, with the threshold drawn.

    Hand-written SVG (no plotting dependency); each point has a tooltip with its date and
    value, alert runs are drawn red.
    """
    width, height = 640, 260
    left, right, top, bottom = 52, 92, 36, 44
    plot_w, plot_h = width - left - right, height - top - bottom
    limit = float(_exact(threshold) * 100)
    values = [p.pct for p in points if p.pct is not None]
    low = min([*values, limit]) if values else limit
    y_min = max(0.0, (low - 2) // 5 * 5)  # a margin under the lowest point, on a 5% tick
    y_max = 100.0
    span = (y_max - y_min) or 1.0

    def y_of(pct: float) -> float:
        return top + plot_h * (y_max - pct) / span

    def x_of(i: int) -> float:
        if len(points) <= 1:
            return left + plot_w / 2
        return left + plot_w * i / (len(points) - 1)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11" role="img" '
        'aria-labelledby="title">',
        f'<title id="title">SMS reachability over the last {len(points)} run(s)</title>',
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="white"/>',
        f'<text x="{left}" y="20" font-size="14" font-weight="bold">'
        f"SMS reachability, last {len(points)} run{'s' if len(points) != 1 else ''}</text>",
    ]
    step = 5 if span <= 30 else 10 if span <= 60 else 20
    tick = y_max
    while tick >= y_min - 1e-9:
        y = y_of(tick)
        out.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" stroke="#e5e5e5"/>'
        )
        out.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{tick:g}%</text>')
        tick -= step
    ty = y_of(limit)
    out.append(
        f'<line x1="{left}" y1="{ty:.1f}" x2="{width - right}" y2="{ty:.1f}" stroke="#c0392b" '
        'stroke-dasharray="6 4"/>'
    )
    out.append(
        f'<text x="{width - right + 8}" y="{ty + 4:.1f}" fill="#c0392b">threshold {limit:g}%</text>'
    )
    coords = [(x_of(i), y_of(p.pct), p) for i, p in enumerate(points) if p.pct is not None]
    if len(coords) > 1:
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y, _ in coords)
        out.append(f'<polyline points="{path}" fill="none" stroke="#2c6fbb" stroke-width="2"/>')
    for x, y, p in coords:
        colour = "#c0392b" if p.alert else "#2c6fbb"
        label = escape(f"{p.at:%Y-%m-%d %H:%M} UTC: {p.pct:.1f}%")
        out.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{colour}">'
            f"<title>{label}</title></circle>"
        )
    if coords:
        x, y, last = coords[-1]
        out.append(
            f'<text x="{x:.1f}" y="{y - 10:.1f}" text-anchor="middle" '
            f'font-weight="bold">{last.pct:.1f}%</text>'
        )
    if points:
        base = height - bottom + 16
        first_label = f"{points[0].at:%Y-%m-%d}"
        out.append(f'<text x="{left}" y="{base}" text-anchor="start">{first_label}</text>')
        if len(points) > 1:
            last_label = f"{points[-1].at:%Y-%m-%d}"
            out.append(
                f'<text x="{width - right}" y="{base}" text-anchor="end">{last_label}</text>'
            )
    else:
        out.append(
            f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle">no runs yet</text>'
        )
    if any(p.alert for p in points):
        out.append(
            f'<text x="{left + plot_w / 2:.1f}" y="{height - bottom + 16}" text-anchor="middle" '
            'fill="#c0392b">● run that raised an alert</text>'
        )
    out.append(
        f'<line x1="{left}" y1="{top + plot_h}" x2="{width - right}" y2="{top + plot_h}" '
        'stroke="#999"/>'
    )
    out.append("</svg>")
    return "\n".join(out) + "\n"


# --- the report's text ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Outcome:
    """One expectation's result, in the report's words."""

    key: str
    suite: str
    title: str
    success: bool
    meaning: str
    fix: str
    element_count: int = 0
    missing_count: int = 0
    unexpected_count: int = 0
    unexpected_percent: float | None = None
    requirement: str = ""
    error: str | None = None

    def observed(self) -> str:
        """What was found, in words: "12 of 1,000 rows fail (1.2%)".

        Empty values are not checked (a student without an SMS number cannot share one), so
        the count is of the rows that have a value, as GX's ``mostly`` counts them.
        """
        if self.error:
            return f"could not be checked: {self.error}"
        checked = self.element_count - self.missing_count
        pct = f" ({self.unexpected_percent:.1f}%)" if self.unexpected_percent is not None else ""
        return f"{self.unexpected_count:,} of {checked:,} rows fail{pct}"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (with the ``observed`` text)."""
        return {**asdict(self), "observed": self.observed()}


def requirement_text(kwargs: Mapping[str, Any]) -> str:
    """How much failure an expectation tolerates, from its ``mostly``."""
    mostly = kwargs.get("mostly")
    if mostly is None or float(mostly) >= 1:
        return "no row may fail"
    allowed = float((1 - _exact(float(mostly))) * 100)
    return f"at most {allowed:g}% of rows may fail"


def format_figure(value: Any) -> str:
    """A figure as the report shows it: ``1,234``, ``62.50``, ``–`` for none."""
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def format_change(value: Any) -> str:
    """A change since the last run, signed: ``+3``, ``-5.00``; empty for none."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:+.2f}"
    if isinstance(value, int):
        return f"{value:+,}"
    return str(value)


def headline_markdown(
    metrics: Mapping[str, Any], change: Mapping[str, Any], alert: AlertDecision
) -> str:
    """The headline table (figure, now, change since the last run) and the alert line."""
    lines: list[str] = []
    if alert.alert:
        lines += [f"> **ALERT:** {alert.message}.", ""]
    lines += ["| Figure | Now | Change since last run |", "|---|---:|---:|"]
    for key in HEADLINE_KEYS:
        now, delta = format_figure(metrics.get(key)), format_change(change.get(key))
        lines.append(f"| {HEADLINE_LABELS[key]} | {now} | {delta} |")
    return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class SummaryInput:
    """Everything ``summary.md`` shows."""

    at: datetime
    metrics: Mapping[str, Any]
    change: Mapping[str, Any]
    alert: AlertDecision
    outcomes: Sequence[Outcome]
    trend: Sequence[TrendPoint]
    programs: Sequence[GroupCount]
    advisors: Sequence[GroupCount]
    followup_files: Mapping[str, int]
    thresholds: Mapping[str, Any]
    previous_at: datetime | None = None
    data_docs: str | None = "data-docs/index.html"
    chart: str = "reachability.svg"
    top: int = 20
    extra: dict[str, Any] = field(default_factory=dict)


def render_summary(s: SummaryInput) -> str:
    """``summary.md``: headline, expectations with meaning and fix, trend, breakdowns."""
    passed = sum(1 for o in s.outcomes if o.success)
    failed = len(s.outcomes) - passed
    since = (
        f" (previous run {s.previous_at:%Y-%m-%d %H:%M} UTC)"
        if s.previous_at
        else (" (first run: nothing to compare with)")
    )
    out = [
        f"# Onboarding data-quality report, {s.at:%Y-%m-%d %H:%M} UTC",
        "",
        f"{s.metrics.get('students', 0):,} active students; "
        f"{format_figure(s.metrics.get('sms_reachable_pct'))}% can be texted; "
        f"{passed} expectation(s) passed, {failed} failed{since}.",
        "",
        headline_markdown(s.metrics, s.change, s.alert),
        "",
        f"![SMS reachability over the last runs]({s.chart})",
        "",
        f"## Expectations: {passed} passed, {failed} failed",
        "",
        "| | Check | Found | Allowed | What it means | How to fix |",
        "|---|---|---|---|---|---|",
    ]
    for o in s.outcomes:
        mark = "✅" if o.success else "❌"
        out.append(
            f"| {mark} | {o.title} | {o.observed()} | {o.requirement} | {_cell(o.meaning)} "
            f"| {_cell(o.fix)} |"
        )
    if s.data_docs:
        out += ["", f"Full validation results: [Great Expectations Data Docs]({s.data_docs})."]
    reasons = s.metrics.get("missing_cell_by_reason") or {}
    if reasons:
        out += [
            "",
            "## Why students have no number we can text",
            "",
            "| Reason | Students |",
            "|---|---:|",
        ]
        out += [f"| {NO_SMS_TEXT.get(r, r)} | {n:,} |" for r, n in reasons.items()]
    blocked = [(label, s.metrics.get(key, 0)) for key, label in BLOCKED_LABELS.items()]
    if any(n for _, n in blocked):
        out += ["", "Students with a number who still cannot be texted:", ""]
        out += [f"- {label}: {n:,}" for label, n in blocked if n]
    codes = s.metrics.get("unmapped_type_code_counts") or {}
    if codes:
        out += [
            "",
            "## Unmapped phone type codes",
            "",
            "Numbers under these codes are never texted until the code is mapped "
            "(`nudge config set type_code_map ...`):",
            "",
        ]
        out += [f"- `{code}`: {n:,} number(s)" for code, n in codes.items()]
    for title, groups in (("program", s.programs), ("advisor", s.advisors)):
        shown = [g for g in groups if g.missing_cell][: s.top]
        if not shown:
            continue
        out += [
            "",
            f"## No number we can text, by {title} (worst {len(shown)})",
            "",
            f"| {title.capitalize()} | Students | No number | % | Cannot be texted |",
            "|---|---:|---:|---:|---:|",
        ]
        out += [
            f"| {_cell(g.name)} | {g.students:,} | {g.missing_cell:,} | {g.missing_pct:.1f} "
            f"| {g.not_sms_reachable:,} |"
            for g in shown
        ]
    out += ["", "## Trend", "", "| Run | SMS reachable | Alert |", "|---|---:|---|"]
    for p in reversed(s.trend):
        out.append(
            f"| {p.at:%Y-%m-%d %H:%M} | {format_figure(p.pct)}% | {'yes' if p.alert else ''} |"
        )
    out += ["", "## Follow-up lists (one CSV per advisor, numbers masked)", ""]
    if s.followup_files:
        out += [
            f"- [followup/{name}](followup/{name}): {n:,} problem(s)"
            for name, n in s.followup_files.items()
        ]
    else:
        out.append("No student needs following up.")
    out += ["", "## Thresholds", ""]
    out += [f"- `{k}` = {v}" for k, v in s.thresholds.items()]
    out += ["", "Change them with `nudge config set KEY VALUE`.", ""]
    return "\n".join(out)


def _cell(text: str) -> str:
    # A pipe would end a markdown table cell early.
    return text.replace("|", "\\|").replace("\n", " ")
