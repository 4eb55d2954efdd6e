"""``nudge campaigns outcome``: did the students a campaign messaged end up different from
the ones its randomized holdout kept out?

For one field of the *current* person record (``status``, ``tags`` or ``program``, as the
latest SIS sync left it) and one value, this compares the share of **messaged** students
who now have the value with the share of **held-out** students who have it (the groups:
:mod:`models.holdout_outcome`). The difference (messaged − held out) comes with

* a 95% confidence interval from statsmodels
  (``confint_proportions_2indep(..., method="newcomb")``: Newcomb's hybrid score interval,
  well behaved at small counts and at shares near 0 or 1), and
* a two-sided p-value from Fisher's exact test (``scipy.stats.fisher_exact``), exact at any
  size.

The verdict (:func:`domain.holdout.verdict`) is "too small to tell" when either group has
fewer than 30 students, or fewer than 5 students with (or without) the value; otherwise
"no detectable difference" when the interval contains 0, else which group is higher.
statsmodels and scipy are imported inside :func:`compare` (they take about a second).
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Engine
from sqlmodel import Session

from domain.holdout import (
    MIN_CELL,
    MIN_GROUP,
    OUTCOME_FIELDS,
    Group,
    Verdict,
    count_group,
    too_small,
    verdict,
)
from models.config import load_config
from models.holdout_outcome import holdout_campaign, last_sync_at, outcome_people

#: The interval's error rate, and its confidence level (95%).
ALPHA = 0.05
CONFIDENCE = 1 - ALPHA


class OutcomeRefused(ValueError):
    """The comparison cannot be made as asked; the message says why (the CLI exits 2)."""


def compare(messaged: Group, held_out: Group) -> dict[str, Any]:
    """The difference of the two shares with its 95% interval (statsmodels, Newcomb), the
    p-value of Fisher's exact test, and the verdict. Interval and p-value are None when a
    group is empty."""
    interval: tuple[float, float] | None = None
    p_value: float | None = None
    if messaged.students and held_out.students:
        from scipy.stats import fisher_exact  # type: ignore[import-untyped]  # no stubs
        from statsmodels.stats.proportion import (  # type: ignore[import-untyped]  # no py.typed
            confint_proportions_2indep,
        )

        low, high = confint_proportions_2indep(
            messaged.with_value,
            messaged.students,
            held_out.with_value,
            held_out.students,
            method="newcomb",
            alpha=ALPHA,
        )
        interval = (float(low), float(high))
        table = [
            [messaged.with_value, messaged.students - messaged.with_value],
            [held_out.with_value, held_out.students - held_out.with_value],
        ]
        p_value = float(fisher_exact(table).pvalue)
    difference = (
        messaged.share - held_out.share
        if messaged.share is not None and held_out.share is not None
        else None
    )
    return {
        "difference": difference,
        "interval": list(interval) if interval is not None else None,
        "p_value": p_value,
        "verdict": verdict(messaged, held_out, interval).value,
        "too_small_reason": too_small(messaged, held_out),
    }


def _group(group: Group) -> dict[str, Any]:
    return {"students": group.students, "with_value": group.with_value, "share": group.share}


def _pct(share: float | None) -> str:
    return "-" if share is None else f"{100 * share:.1f}%"


def summary_line(field: str, value: str, data: dict[str, Any]) -> str:
    """The comparison in one plain sentence."""
    m, h = data["messaged"], data["held_out"]
    has = f"the tag {value!r}" if field == "tags" else f"{field} {value!r}"
    shares = (
        f"{_pct(m['share'])} of messaged students ({m['with_value']} of {m['students']}) and "
        f"{_pct(h['share'])} of held-out students ({h['with_value']} of {h['students']}) "
        f"now have {has}"
    )
    if data["verdict"] == Verdict.TOO_SMALL:
        return f"Too small to tell: {data['too_small_reason']}. {shares}."
    low, high = data["interval"]
    detail = (
        f"difference {100 * data['difference']:+.1f} points, {CONFIDENCE:.0%} interval "
        f"{100 * low:+.1f} to {100 * high:+.1f}, p = {data['p_value']:.3g}"
    )
    if data["verdict"] == Verdict.NO_DETECTABLE_DIFFERENCE:
        return f"No detectable difference: {shares} ({detail})."
    direction = "more" if data["verdict"] == Verdict.MESSAGED_HIGHER else "less"
    return f"Messaged students {direction} often have {has}: {shares} ({detail})."


def campaign_outcome(
    engine: Engine,
    campaign_id: int,
    *,
    field: str,
    value: str,
    after_days: int | None,
    now: datetime,
) -> dict[str, Any]:
    """Compare the messaged and held-out students of a campaign on ``field`` = ``value``.

    Raises :class:`OutcomeRefused` for an unknown field or campaign, a campaign without a
    holdout or not sent yet, and one sent less than ``after_days`` days before ``now``.
    Times in the result are aware datetimes (UTC).
    """
    if field not in OUTCOME_FIELDS:
        raise OutcomeRefused(f"unknown field {field!r}: choose {', '.join(OUTCOME_FIELDS)}")
    if not value.strip():
        raise OutcomeRefused("--value is empty: give the value to look for")
    if after_days is not None and after_days < 0:
        raise OutcomeRefused(f"--after {after_days}: give a number of days, 0 or more")
    with Session(engine) as s:
        campaign = holdout_campaign(session=s, campaign_id=campaign_id)
        if campaign is None:
            raise OutcomeRefused(f"no campaign #{campaign_id}")
        if not campaign.holdout_pct:
            raise OutcomeRefused(
                f"campaign #{campaign_id} has no holdout: nobody was kept out to compare with "
                "(send with --holdout PCT, or the form's 'Hold out (%)')"
            )
        if campaign.started_at is None:
            raise OutcomeRefused(
                f"campaign #{campaign_id} has not been sent (it is {campaign.status}): "
                "there is no outcome yet"
            )
        zone = ZoneInfo(load_config(session=s).timezone)
        elapsed = now - campaign.started_at
        days_ago = math.floor(elapsed / timedelta(days=1))
        if after_days is not None and elapsed < timedelta(days=after_days):
            raise OutcomeRefused(
                f"campaign #{campaign_id} was sent {days_ago} day(s) ago; --after "
                f"{after_days} asks for {after_days}: try again on or after "
                f"{(campaign.started_at + timedelta(days=after_days)).astimezone(zone):%Y-%m-%d}"
            )
        people = outcome_people(session=s, campaign_id=campaign_id)
        synced = last_sync_at(session=s)
    messaged = count_group(field, value, people.messaged)
    held_out = count_group(field, value, people.held_out)
    warning = None
    if synced is None:
        warning = "no SIS sync has succeeded: these values were never synced"
    elif synced < campaign.started_at:
        warning = (
            "the latest SIS sync ran before the campaign was sent: the values cannot show its "
            "effect yet; ask again after the next sync"
        )
    data: dict[str, Any] = {
        "campaign_id": campaign_id,
        "field": field,
        "value": value,
        "holdout_pct": campaign.holdout_pct,
        "holdout_seed": campaign.holdout_seed,
        "sent_at": campaign.started_at,
        "sent_days_ago": days_ago,
        "after_days": after_days,
        "values_as_of": synced,
        "warning": warning,
        "messaged": _group(messaged),
        "held_out": _group(held_out),
        "not_reached": people.not_reached,
        "confidence": CONFIDENCE,
        "interval_method": "newcomb (statsmodels confint_proportions_2indep)",
        "p_value_method": "fisher_exact (scipy, two-sided)",
        "rule": f"too small to tell below {MIN_GROUP} students in a group or {MIN_CELL} "
        "with (or without) the value in a group",
        **compare(messaged, held_out),
    }
    data["summary"] = summary_line(field, value, data)
    return data


__all__ = ["ALPHA", "CONFIDENCE", "OutcomeRefused", "campaign_outcome", "compare", "summary_line"]
