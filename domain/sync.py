"""Pure rules of the SIS sync: what changed, what to write, and when to refuse.

The sync is incremental: each person's raw input (their people row, their phone rows, and
the configuration that interprets them) is hashed, and a person whose hash matches the
stored one is skipped without parsing a single phone number. The plan built here is applied
by ``models/people_sync.py`` in one transaction.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from domain.config import PhoneKind, SmsConfig


class SyncRefused(Exception):
    """The sync would do something implausible (or the extract is unusable); nothing changed."""


def config_fingerprint(config: SmsConfig) -> str:
    """A short digest of the configuration that changes how raw phones are interpreted."""
    relevant = {
        "default_region": config.default_region,
        "default_phone_type": str(config.default_phone_type),
        "type_code_map": sorted((k, str(v)) for k, v in config.type_code_map.items()),
    }
    return hashlib.blake2b(json.dumps(relevant, sort_keys=True).encode(), digest_size=8).hexdigest()


def person_hash(
    fingerprint: str, person_raw: Sequence[str], phone_raws: Iterable[Sequence[str]]
) -> str:
    """A stable digest of everything the SIS said about one person (order of phones ignored).

    One string, one hash call: this runs for every person of every sync.
    """
    phones = sorted("\x1f".join(p) for p in phone_raws)
    text = "\x1e".join((fingerprint, "\x1f".join(person_raw), *phones))
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


@dataclass(slots=True)
class PhoneRow:
    """A phone as it should be stored after this sync (raw plus interpretation)."""

    raw: str
    country: str | None
    type_code: str
    kind: PhoneKind
    known_type_code: bool
    match_key: str
    e164: str | None
    extension: str | None
    line_type: str | None
    valid: bool
    reason: str | None
    sms_capable: bool
    type_mismatch: bool
    is_primary: bool
    source_updated_at: datetime | None


@dataclass(slots=True)
class PersonChange:
    """A person to create or update, with the complete set of their phones from the SIS."""

    sis_id: str
    role: str
    fields: dict[str, str | list[str] | None]
    source_hash: str
    status: str
    phones: list[PhoneRow] = field(default_factory=list)
    existing_id: int | None = None


@dataclass(slots=True)
class SyncPlan:
    """Everything the apply step writes, decided before the transaction opens."""

    creates: list[PersonChange]
    updates: list[PersonChange]
    unchanged: int
    deactivate_ids: list[int]
    active_before: int


def check_deactivation(*, to_deactivate: int, active: int, max_share: float) -> None:
    """Refuse a sync that would deactivate an implausible share of active people.

    A truncated extract looks exactly like a mass withdrawal; a human must confirm that.
    """
    if active == 0 or to_deactivate == 0:
        return
    share = to_deactivate / active
    if share > max_share:
        raise SyncRefused(
            f"refused: this sync would deactivate {to_deactivate} of {active} active people "
            f"({share:.1%}), more than the allowed {max_share:.0%}. The extract may be "
            "truncated; check it, or raise max_deactivation_share with "
            "`nudge config set max_deactivation_share 0.5` for a known mass change."
        )


def status_of(fields: Mapping[str, str | list[str] | None]) -> str:
    """The person's status as the source states it (absent means active: they are listed)."""
    value = fields.get("status")
    return value if isinstance(value, str) and value else "active"
