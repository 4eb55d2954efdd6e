"""Tasks of the SIS contact sync: extract, diff, validate, apply (the run's bookkeeping and
its report are in ``tasks/sync_runs.py``).

Each task is one I/O step, handed what it needs by the flow: the opened source, the
process's engine. The order is chosen so that unchanged people cost nothing: ``diff``
compares each person's raw-input hash with the stored one *before* ``validate`` parses
phone numbers, so a no-change re-sync parses no number and writes nothing. Caching is off:
a sync must always read the SIS afresh.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from multiprocessing import get_all_start_methods, get_context
from multiprocessing.context import BaseContext
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from sqlalchemy.engine import Engine

from adapters.memory import gc_paused
from adapters.sis.base import Extract, QuarantinedRow, SisSource, SourcePhone
from domain.config import PhoneKind, SmsConfig
from domain.phones import (
    ParsedPhone,
    is_type_mismatch,
    kind_for_code,
    match_key,
    parse_many,
)
from domain.sync import (
    PersonChange,
    PhoneLoss,
    PhoneRow,
    SyncPlan,
    check_deactivation,
    check_phone_loss,
    config_fingerprint,
    person_hash,
    status_of,
)
from models.config import load_config
from models.db import session_scope
from models.people_sync import apply_plan, load_person_index
from models.sync_figures import (
    count_active,
    present_phone_count,
    reachable_students,
    sync_totals,
)
from models.types import utcnow
from tasks.runtime import run_logger
from tasks.sync_runs import finish_run, store_quarantine

#: Below this many numbers a process pool costs more than it saves.
PARALLEL_PARSE_MIN = 20_000


@dataclass(slots=True)
class Diff:
    """What changed since the stored state, before any phone number is parsed."""

    plan: SyncPlan
    config: SmsConfig
    phones_by_person: dict[str, list[SourcePhone]]


@dataclass(slots=True)
class Validated:
    """The plan with every changed person's phones parsed and classified."""

    plan: SyncPlan
    config: SmsConfig
    phones_parsed: int
    unknown_type_codes: Counter[str] = field(default_factory=Counter)


@task(name="extract", cache_policy=NO_CACHE)
def extract(source: SisSource) -> Extract:
    """Read the whole extract from ``source`` (opened by the flow: ``csv:PATH`` or
    ``ethos:URL``)."""
    data = source.read()
    run_logger().info(
        "extract from %s: %d people, %d phones, %d rows quarantined",
        source.describe(),
        len(data.people),
        len(data.phones),
        len(data.quarantined),
    )
    return data


@task(name="diff", cache_policy=NO_CACHE)
def diff(data: Extract, engine: Engine, force: bool = False) -> Diff:
    """Compare raw-input hashes with the stored ones (in the database of ``engine``); refuse
    an implausible deactivation (unless ``force``)."""
    with gc_paused():
        return _diff(data, engine, force)


def _diff(data: Extract, engine: Engine, force: bool = False) -> Diff:
    with session_scope(engine) as session:
        config = load_config(session=session)
        stored = load_person_index(session=session)
        active = count_active(session=session, roles=data.roles_covered)

    fingerprint = config_fingerprint(config)
    phones_by_person: dict[str, list[SourcePhone]] = {}
    for phone in data.phones:
        phones_by_person.setdefault(phone.person_id, []).append(phone)

    creates: list[PersonChange] = []
    updates: list[PersonChange] = []
    unchanged = 0
    for person in data.people:
        phones = phones_by_person.get(person.person_id, ())
        digest = person_hash(fingerprint, person.raw, (p.raw for p in phones))
        status = status_of(person.fields)
        known = stored.get(person.person_id)
        if (
            known is not None
            and known.source_hash == digest
            and known.status == status
            and known.role == person.role
        ):
            unchanged += 1
            continue
        change = PersonChange(
            sis_id=person.person_id,
            role=person.role,
            fields=dict(person.fields),
            source_hash=digest,
            status=status,
            existing_id=known.id if known else None,
        )
        (updates if known else creates).append(change)

    deactivate: list[int] = []
    if data.full:
        listed = {p.person_id for p in data.people}
        # A person whose own row was quarantined is still there, just unreadable this time
        # (a phone row naming an unknown person says nothing about who is listed).
        listed.update(
            q.person_id for q in data.quarantined if q.person_id and q.file != "phones.csv"
        )
        deactivate = [
            s.id
            for sis_id, s in stored.items()
            if s.status == "active" and s.role in data.roles_covered and sis_id not in listed
        ]
    check_deactivation(
        to_deactivate=len(deactivate),
        active=active,
        max_share=config.max_deactivation_share,
        force=force,
    )
    plan = SyncPlan(creates, updates, unchanged, deactivate, active)
    run_logger().info(
        "diff: %d new, %d changed, %d unchanged, %d to deactivate",
        len(creates),
        len(updates),
        unchanged,
        len(deactivate),
    )
    return Diff(plan, config, phones_by_person)


@task(name="validate", cache_policy=NO_CACHE)
def validate(found: Diff, workers: int = 0) -> Validated:
    """Parse and classify the phones of new and changed people (and only theirs), with
    ``workers`` processes for a large extract (0: one per core)."""
    with gc_paused():
        return _validate(found, workers)


def _validate(found: Diff, workers: int) -> Validated:
    config = found.config
    mapping = config.type_code_map
    default_kind = config.default_phone_type
    changes = [*found.plan.creates, *found.plan.updates]

    # One pass to classify codes (cached: an extract has a handful of distinct codes) and
    # collect the distinct raw inputs; parse those once each; a second pass builds the rows.
    codes: dict[str, tuple[PhoneKind, bool, str]] = {}
    keys: dict[tuple[str, str | None, bool], int] = {}
    work: list[tuple[PersonChange, list[tuple[SourcePhone, PhoneKind, bool, str, int]]]] = []
    for change in changes:
        mine = []
        for phone in found.phones_by_person.get(change.sis_id, ()):
            mapped = codes.get(phone.type_code)
            if mapped is None:
                kind, known = kind_for_code(phone.type_code, mapping)
                mapped = codes[phone.type_code] = (kind, known, phone.type_code.strip().upper())
            key = (phone.number, phone.country, mapped[0] == default_kind)
            index = keys.get(key)
            if index is None:
                index = keys[key] = len(keys)
            mine.append((phone, mapped[0], mapped[1], mapped[2], index))
        work.append((change, mine))
    items = list(keys)
    parsed = _parse_all(items, config.default_region, workers)

    unknown: Counter[str] = Counter()
    for change, mine in work:
        rows: dict[tuple[str, str], PhoneRow] = {}
        for phone, kind, known, code, index in mine:
            if not known:
                unknown[code or "(blank)"] += 1
            result = parsed[index]
            row = PhoneRow(
                raw=phone.number,
                country=phone.country or None,
                type_code=code,
                kind=kind,
                known_type_code=known,
                match_key=match_key(result.e164, phone.number),
                e164=result.e164,
                extension=result.extension,
                line_type=result.line_type,
                valid=result.valid,
                reason=str(result.reason) if result.reason else None,
                sms_capable=result.sms_capable,
                type_mismatch=is_type_mismatch(kind, result.line_type),
                is_primary=phone.primary,
                source_updated_at=phone.updated_at,
            )
            row_key = (code, row.match_key)
            previous = rows.get(row_key)
            rows[row_key] = row if previous is None else _merge(previous, row)
        change.phones = list(rows.values())
    run_logger().info("validate: parsed %d distinct numbers", len(items))
    return Validated(found.plan, config, len(items), unknown)


def _merge(old: PhoneRow, new: PhoneRow) -> PhoneRow:
    # The same number twice under one code: one row, primary if either was, newest date.
    dates = [d for d in (old.source_updated_at, new.source_updated_at) if d is not None]
    return replace(
        old,
        is_primary=old.is_primary or new.is_primary,
        source_updated_at=max(dates) if dates else None,
    )


def _mp_context() -> BaseContext:
    # fork: the helpers only parse numbers (no logging, no I/O), start at once and share the
    # parent's loaded phonenumbers metadata; spawn would re-import the caller's __main__.
    methods = get_all_start_methods()
    return get_context("fork" if "fork" in methods else "spawn")


def _parse_all(
    items: list[tuple[str, str | None, bool]], region: str, workers: int
) -> list[ParsedPhone]:
    count = workers or os.cpu_count() or 1
    if count < 2 or len(items) < PARALLEL_PARSE_MIN:
        return parse_many(items, region)
    # This process parses a share too: count-1 helpers plus us keep every core busy with
    # the least data crossing process boundaries.
    share = len(items) // count
    mine, rest = items[:share], items[share:]
    size = -(-len(rest) // ((count - 1) * 2))
    chunks = [rest[i : i + size] for i in range(0, len(rest), size)]
    with ProcessPoolExecutor(max_workers=count - 1, mp_context=_mp_context()) as pool:
        futures = [pool.submit(parse_many, chunk, region) for chunk in chunks]
        parsed = parse_many(mine, region)
        for future in futures:
            parsed.extend(future.result())
    return parsed


@task(name="apply", cache_policy=NO_CACHE)
def apply(
    checked: Validated,
    quarantined: list[QuarantinedRow],
    run_id: int,
    engine: Engine,
    checkpoint: Callable[[str], None] | None = None,
    force: bool = False,
) -> dict[str, Any]:
    """Write the plan, the quarantine and the run's figures in ONE transaction.

    The phone guards are checked inside it, on what the plan really did: a sync that would
    remove too many phone rows, or leave too many reachable students without a number, is
    rolled back whole and refused (unless ``force``)."""
    plan = checked.plan
    now = utcnow()
    with gc_paused(), session_scope(engine) as session:
        phones_before = present_phone_count(session=session)
        reachable_before = reachable_students(session=session)
        written = apply_plan(
            plan, session=session, config=checked.config, now=now, checkpoint=checkpoint
        )
        still = reachable_students(session=session)
        # Students deactivated by this sync are the people guard's business.
        gone = set(plan.deactivate_ids)
        lost = sum(1 for i in reachable_before if i not in still and i not in gone)
        if not force:
            check_phone_loss(
                PhoneLoss(phones_before, written.phones_removed, len(reachable_before), lost),
                max_removal_share=checked.config.max_phone_removal_share,
                max_reachability_loss_share=checked.config.max_reachability_loss_share,
            )
        store_quarantine(session, run_id, quarantined)
        stats: dict[str, Any] = {
            "sync_run_id": run_id,
            "people_created": written.people_created,
            "people_updated": written.people_updated,
            "people_unchanged": plan.unchanged,
            "people_deactivated": written.people_deactivated,
            **sync_totals(session=session),
            "rows_quarantined": len(quarantined),
            "unknown_type_codes": sum(checked.unknown_type_codes.values()),
            "unknown_type_code_counts": dict(checked.unknown_type_codes.most_common()),
            "phones_parsed": checked.phones_parsed,
            "phones_inserted": written.phones_inserted,
            "phones_updated": written.phones_updated,
            "phones_removed": written.phones_removed,
            "consents_created": written.consents_created,
            "sms_reachability_lost": lost,
            "forced": force,
        }
        finish_run(session, run_id, stats)
    return stats
