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


def check_deactivation(
    *, to_deactivate: int, active: int, max_share: float, force: bool = False
) -> None:
    """Refuse a sync that would deactivate an implausible share of active people.

    A truncated extract looks exactly like a mass withdrawal; a human must confirm that
    (``force``, ``nudge sync --force``).
    """
    if force or active == 0 or to_deactivate == 0:
        return
    share = to_deactivate / active
    if share > max_share:
        raise SyncRefused(
            f"refused: this sync would deactivate {to_deactivate} of {active} active people "
            f"({share:.1%}), more than the allowed {max_share:.0%}. The extract may be "
            "truncated; check it, or run the sync again with --force (or raise "
            "max_deactivation_share) for a known mass change."
        )


#: The phone guards apply from this many rows or students: an ordinary nightly change at a
#: small college (one student's numbers replaced) must never trip them.
MIN_GUARDED = 20


@dataclass(frozen=True, slots=True)
class PhoneLoss:
    """What a sync would do to the stored phones and to who can be texted."""

    phones_before: int
    phones_removed: int
    reachable_before: int
    reachable_lost: int


def check_phone_loss(
    loss: PhoneLoss, *, max_removal_share: float, max_reachability_loss_share: float
) -> None:
    """Refuse a sync that would remove an implausible share of phone rows, or leave an
    implausible share of the students who can be texted today without a number.

    A header-only or truncated ``phones.csv`` looks like every student dropping their
    phones: every campaign until the next good sync would go to email.
    """
    problems = []
    if loss.phones_removed >= MIN_GUARDED and loss.phones_before:
        share = loss.phones_removed / loss.phones_before
        if share > max_removal_share:
            problems.append(
                f"remove {loss.phones_removed} of {loss.phones_before} stored phone numbers "
                f"({share:.1%}; max_phone_removal_share is {max_removal_share:.0%})"
            )
    if loss.reachable_lost >= MIN_GUARDED and loss.reachable_before:
        share = loss.reachable_lost / loss.reachable_before
        if share > max_reachability_loss_share:
            problems.append(
                f"leave {loss.reachable_lost} of the {loss.reachable_before} students who can "
                f"be texted today without a number we can text ({share:.1%}; "
                f"max_reachability_loss_share is {max_reachability_loss_share:.0%})"
            )
    if problems:
        raise SyncRefused(
            "refused: this sync would "
            + " and ".join(problems)
            + ". Nothing was changed. phones.csv may be empty or truncated: check the extract, "
            "or run the sync again with --force for a known mass change."
        )


def status_of(fields: Mapping[str, str | list[str] | None]) -> str:
    """The person's status as the source states it (absent means active: they are listed)."""
    value = fields.get("status")
    return value if isinstance(value, str) and value else "active"
