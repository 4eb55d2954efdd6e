"""Randomized holdouts, pure: who is kept out of a campaign, and how to read the outcome.

**The draw** (:func:`draw_holdout`). A holdout of ``pct`` percent of ``N`` students keeps
exactly ``round(pct/100 × N)`` of them out of the campaign (ties round down, so the held-out
group is never larger than the messaged one), stratified by program:

1. each program ``p`` with ``n_p`` students is owed ``pct/100 × n_p`` (exact arithmetic);
2. every program gets the whole part of what it is owed, and the students still to draw to
   reach the total go one each to the programs with the largest remainders (ties between
   equal remainders are broken by a keyed hash of the program's name, so no program is
   favoured by its spelling);
3. within a program, students are ranked by the keyed hash ``blake2b(f"{seed}:{sis_id}")``
   and the first ones are held out.

The result depends on the seed and on the set of (student, program) pairs only: never on
their order, on the time, or on anything else. The same seed draws the same students.
Without an explicit seed, :func:`default_seed` derives one from the request (sender,
message, audience), so a preview and the send that follows it hold out the same students.

**The outcome** (:func:`verdict`). After later SIS syncs, the share of *messaged* students
whose record now has a value (a status, a tag, a program) is compared with the share of
*held-out* students who have it. The groups are "too small to tell" when either has fewer
than :data:`MIN_GROUP` students, or fewer than :data:`MIN_CELL` students with the value or
without it (the usual condition for the normal approximation behind the interval); else
"no detectable difference" when the 95% interval of the difference contains 0. The
interval itself is computed outside the domain (``tasks/holdout_outcome.py``, statsmodels).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from fractions import Fraction
from typing import Any, Final

from domain.audience import normalize_value

#: The largest holdout: more would leave fewer students messaged than held out.
MAX_HOLDOUT_PCT: Final = 50.0
#: Seeds are stored in a 32-bit signed integer column.
MAX_SEED: Final = 2**31 - 1
#: A ``message`` row of a held-out student carries this reason (status ``held_out``).
HOLDOUT_REASON: Final = "holdout"


class HoldoutError(ValueError):
    """A holdout that cannot be drawn; the message says what to change."""


def pct_problem(pct: float) -> str | None:
    """Why ``pct`` cannot be a holdout percentage, or None."""
    if not math.isfinite(pct) or pct < 0:
        return (
            f"a holdout of {pct}% is not a share of the audience: choose 0 to {MAX_HOLDOUT_PCT:g}"
        )
    if pct > MAX_HOLDOUT_PCT:
        return (
            f"a holdout of {pct:g}% would keep more students out than it messages: "
            f"choose at most {MAX_HOLDOUT_PCT:g}%"
        )
    return None


def _round_half_down(value: Fraction) -> int:
    whole = math.floor(value)
    return whole + 1 if value - whole > Fraction(1, 2) else whole


def holdout_size(pct: float, n: int) -> int:
    """How many of ``n`` students a ``pct`` percent holdout keeps out: ``round(pct/100 × n)``
    with ties rounded down (never more than half)."""
    problem = pct_problem(pct)
    if problem is not None:
        raise HoldoutError(problem)
    return _round_half_down(Fraction(str(pct)) * n / 100)


def _key(seed: int, text: str) -> bytes:
    return hashlib.blake2b(f"{seed}:{text}".encode(), digest_size=16).digest()


def draw_holdout(students: Sequence[tuple[str, str]], pct: float, seed: int) -> set[str]:
    """The SIS ids held out of ``students`` ((sis_id, program) pairs): exactly
    :func:`holdout_size` of them, stratified by program (see the module's docstring).

    Raises :class:`HoldoutError` for a percentage outside 0–50 or a student listed twice.
    """
    problem = pct_problem(pct)
    if problem is not None:
        raise HoldoutError(problem)
    by_program: dict[str, list[str]] = defaultdict(list)
    seen: set[str] = set()
    for sis_id, program in students:
        if sis_id in seen:
            raise HoldoutError(f"student {sis_id} is listed twice: each student is drawn once")
        seen.add(sis_id)
        by_program[program].append(sis_id)
    share = Fraction(str(pct)) / 100
    owed = {p: share * len(ids) for p, ids in by_program.items()}
    quotas = {p: math.floor(q) for p, q in owed.items()}
    left = holdout_size(pct, len(seen)) - sum(quotas.values())
    # Largest remainders first; equal remainders in an order the seed decides.
    order = sorted(owed, key=lambda p: (-(owed[p] - quotas[p]), _key(seed, f"program:{p}")))
    for program in order[:left]:
        quotas[program] += 1
    held: set[str] = set()
    for program, ids in by_program.items():
        ranked = sorted(ids, key=lambda sis_id: (_key(seed, sis_id), sis_id))
        held.update(ranked[: quotas[program]])
    return held


def default_seed(*, sender_id: str, message: str, audience: Mapping[str, Any]) -> int:
    """A seed derived from the request itself (sender, message and audience, not the send
    time): the same request draws the same students, in a preview and in the send."""
    canonical = json.dumps(
        {"sender": sender_id, "message": message, "audience": audience},
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    digest = hashlib.blake2b(canonical.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % (MAX_SEED + 1)


# --- the outcome ---------------------------------------------------------------------------

#: States of a campaign message that count its student as *messaged*: the text was sent
#: (or delivered), or the email went (directly, or as the fallback of an SMS).
MESSAGED_STATES: Final = frozenset({"sent", "delivered", "fallback_email"})
#: The person fields an outcome can look at (their current value, after later syncs).
OUTCOME_FIELDS: Final = ("status", "tags", "program")
#: "Too small to tell" below this many students in either group ...
MIN_GROUP: Final = 30
#: ... or below this many students with (or without) the value in either group.
MIN_CELL: Final = 5


def has_value(
    field: str, value: str, *, status: str | None, tags: Iterable[str] | None, program: str | None
) -> bool:
    """Whether a person's current record has ``value`` in ``field`` (compared stripped and
    case-insensitively; for ``tags``: among the tags)."""
    wanted = normalize_value(value)
    if field == "status":
        return status is not None and normalize_value(status) == wanted
    if field == "program":
        return program is not None and normalize_value(program) == wanted
    if field == "tags":
        return any(normalize_value(str(t)) == wanted for t in tags or ())
    raise HoldoutError(f"unknown field {field!r}: choose {', '.join(OUTCOME_FIELDS)}")


@dataclass(frozen=True, slots=True)
class Group:
    """One arm of the comparison: how many students, and how many have the value."""

    students: int
    with_value: int

    @property
    def share(self) -> float | None:
        """The share with the value (None for an empty group)."""
        return self.with_value / self.students if self.students else None


def count_group(
    field: str, value: str, people: Collection[tuple[str | None, Iterable[str] | None, str | None]]
) -> Group:
    """Count ``people`` ((status, tags, program) of each) and those with the value."""
    hits = sum(
        has_value(field, value, status=status, tags=tags, program=program)
        for status, tags, program in people
    )
    return Group(students=len(people), with_value=hits)


class Verdict(StrEnum):
    """What the comparison can say."""

    TOO_SMALL = "too_small"
    NO_DETECTABLE_DIFFERENCE = "no_detectable_difference"
    MESSAGED_HIGHER = "messaged_higher"
    MESSAGED_LOWER = "messaged_lower"


def too_small(messaged: Group, held_out: Group) -> str | None:
    """Why the groups are too small to tell anything (see :data:`MIN_GROUP` and
    :data:`MIN_CELL`), or None."""
    for name, group in (("messaged", messaged), ("held-out", held_out)):
        if group.students < MIN_GROUP:
            return (
                f"the {name} group has {group.students} student(s); at least {MIN_GROUP} "
                "in each group are needed"
            )
    for name, group in (("messaged", messaged), ("held-out", held_out)):
        without = group.students - group.with_value
        if min(group.with_value, without) < MIN_CELL:
            return (
                f"the {name} group has {group.with_value} student(s) with the value and "
                f"{without} without; at least {MIN_CELL} of each are needed"
            )
    return None


def verdict(messaged: Group, held_out: Group, interval: tuple[float, float] | None) -> Verdict:
    """The comparison's verdict: too small, no detectable difference (the interval of
    messaged − held-out contains 0), or which group is higher."""
    if interval is None or too_small(messaged, held_out) is not None:
        return Verdict.TOO_SMALL
    low, high = interval
    if low <= 0 <= high:
        return Verdict.NO_DETECTABLE_DIFFERENCE
    return Verdict.MESSAGED_HIGHER if low > 0 else Verdict.MESSAGED_LOWER


__all__ = [
    "HOLDOUT_REASON",
    "MAX_HOLDOUT_PCT",
    "MAX_SEED",
    "MESSAGED_STATES",
    "MIN_CELL",
    "MIN_GROUP",
    "OUTCOME_FIELDS",
    "Group",
    "HoldoutError",
    "Verdict",
    "count_group",
    "default_seed",
    "draw_holdout",
    "has_value",
    "holdout_size",
    "pct_problem",
    "too_small",
    "verdict",
]
