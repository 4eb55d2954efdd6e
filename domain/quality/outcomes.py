"""An expectation's result in the report's words (whoever ran the suites)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from domain.quality.alerts import exact


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
    allowed = float((1 - exact(float(mostly))) * 100)
    return f"at most {allowed:g}% of rows may fail"
