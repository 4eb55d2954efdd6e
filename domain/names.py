"""How a person's name is shown: one rule for the opt-in notice, staff emails, the inbox,
previews and the data-quality follow-ups."""

from __future__ import annotations


def display_name(
    first: str | None, preferred: str | None, last: str | None, fallback: str = ""
) -> str:
    """The preferred (else first) name and the last name, trimmed; ``fallback`` (usually the
    SIS id) when the SIS gave no name at all."""
    given = (preferred or "").strip() or (first or "").strip()
    return " ".join(p for p in (given, (last or "").strip()) if p) or fallback
