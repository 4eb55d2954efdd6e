"""Thresholds, the alert rule and the comparison with earlier runs.

The alert (:func:`decide_alert`) fires when the reachable share is below
``reachability_threshold`` or fell by more than ``reachability_drop_points`` percentage points
since the previous run; both comparisons are exact (fractions, not floats), so a run exactly
at the threshold does not alert. The same thresholds reach the expectation suites through
:func:`suite_overrides`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction
from typing import Any

from domain.config import SmsConfig
from domain.phones import MANUAL_TYPE_CODE
from domain.quality.labels import HEADLINE_KEYS

TREND_RUNS = 30


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
    return float(1 - exact(share))


def exact(value: float) -> Fraction:
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
        return exact(float(pct)) / 100
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
    if share < exact(threshold):
        reasons.append("below_threshold")
        limit = float(exact(threshold) * 100)
        words.append(f"SMS reachability {pct:.1f}% is below the {limit:g}% threshold")
    before = previous_share(previous)
    drop: float | None = None
    if before is not None:
        drop_exact = (before - share) * 100
        drop = round(float(drop_exact), 2)
        if drop_exact > exact(drop_points):
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
