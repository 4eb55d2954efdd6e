"""Repository functions of the SIS sync: read what is stored, and apply a plan atomically.

Everything is written with bulk statements (one round-trip per few hundred rows, not per
row): a first sync of 100,000 students must cost little more than parsing their numbers.
The caller owns the session and its transaction; a failure anywhere leaves nothing behind.
The figures a sync reports over what is stored are in :mod:`models.sync_figures`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, text, update
from sqlmodel import Session

from domain.config import SmsConfig
from domain.phones import MANUAL_TYPE_CODE, PhoneFacts, choose_sms_number
from domain.sync import PersonChange, PhoneRow, SyncPlan
from models.bulk import BackgroundWriter, bulk_insert, chunked
from models.consent import record_auto_opt_in
from models.people import Person, PhoneNumber

_WRITE_BATCH = 10_000

person_t = Person.__table__  # type: ignore[attr-defined]
phone_t = PhoneNumber.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class StoredPerson:
    """What the diff needs to know about a stored person."""

    id: int
    source_hash: str | None
    status: str
    role: str


@dataclass(slots=True)
class ApplyStats:
    """What the apply step wrote."""

    people_created: int = 0
    people_updated: int = 0
    people_deactivated: int = 0
    phones_inserted: int = 0
    phones_updated: int = 0
    phones_removed: int = 0
    consents_created: int = 0
    sms_changed: list[str] = field(default_factory=list)


def load_person_index(*, session: Session) -> dict[str, StoredPerson]:
    """Every stored person by SIS id: id, change hash, status and role."""
    rows = session.execute(
        select(
            person_t.c.sis_id,
            person_t.c.id,
            person_t.c.source_hash,
            person_t.c.status,
            person_t.c.role,
        )
    )
    return {r.sis_id: StoredPerson(r.id, r.source_hash, r.status, r.role) for r in rows}


def _phone_values(person_id: int, row: PhoneRow, now: datetime) -> dict[str, Any]:
    return {
        "person_id": person_id,
        "raw": row.raw,
        "country": row.country,
        "type_code": row.type_code,
        "kind": str(row.kind),
        "known_type_code": row.known_type_code,
        "match_key": row.match_key,
        "e164": row.e164,
        "extension": row.extension,
        "line_type": row.line_type,
        "valid": row.valid,
        "reason": row.reason,
        "sms_capable": row.sms_capable,
        "type_mismatch": row.type_mismatch,
        "is_primary": row.is_primary,
        "source_updated_at": row.source_updated_at,
        "present": True,
        "first_seen": now,
        "last_seen": now,
    }


def _new_phone(person_id: int, row: PhoneRow, now: datetime) -> dict[str, Any]:
    # Facts the SIS never sends start empty on new rows (and are never touched by updates).
    values = _phone_values(person_id, row, now)
    values.update(sms_allowed=None, disabled_by_carrier=False, carrier_error_code=None)
    return values


def _reserve_ids(session: Session, count: int) -> list[int]:
    """``count`` person ids reserved for this transaction, so phones can name their person
    before the person row is written (both go to the background writer).

    PostgreSQL hands them out from the table's sequence (safe under concurrency); on SQLite
    the writing transaction is the only writer, so max(id) + 1 onwards is ours.
    """
    if count == 0:
        return []
    if session.get_bind().dialect.name == "postgresql":
        rows = session.execute(
            text(
                "SELECT nextval(pg_get_serial_sequence('person', 'id')) FROM generate_series(1, :n)"
            ),
            {"n": count},
        ).scalars()
        return sorted(int(i) for i in rows)
    top = session.execute(select(func.coalesce(func.max(person_t.c.id), 0))).scalar_one()
    return list(range(int(top) + 1, int(top) + 1 + count))


def _facts(index: int, row: PhoneRow, stored: dict[str, Any] | None = None) -> PhoneFacts:
    return PhoneFacts(
        id=index,
        kind=row.kind,
        e164=row.e164,
        valid=row.valid,
        sms_capable=row.sms_capable,
        is_primary=row.is_primary,
        updated_at=row.source_updated_at,
        sms_allowed=stored["sms_allowed"] if stored else None,
        disabled_by_carrier=bool(stored["disabled_by_carrier"]) if stored else False,
    )


def _stored_facts(stored: dict[str, Any]) -> PhoneFacts:
    return PhoneFacts(
        id=stored["id"],
        kind=stored["kind"],
        e164=stored["e164"],
        valid=stored["valid"],
        sms_capable=stored["sms_capable"],
        is_primary=stored["is_primary"],
        updated_at=stored["source_updated_at"],
        sms_allowed=stored["sms_allowed"],
        disabled_by_carrier=bool(stored["disabled_by_carrier"]),
    )


def _person_values(change: PersonChange, now: datetime) -> dict[str, Any]:
    values: dict[str, Any] = {
        "role": change.role,
        "status": change.status,
        "source_hash": change.source_hash,
        "updated_at": now,
    }
    for key, value in change.fields.items():
        if key == "advisor_id":
            values["advisor_sis_id"] = value
        elif key in {"tags", "courses", "roles"}:
            values[key] = list(value or [])
        elif key != "status":
            values[key] = value
    return values


def apply_plan(
    plan: SyncPlan,
    *,
    session: Session,
    config: SmsConfig,
    now: datetime,
    checkpoint: Callable[[str], None] | None = None,
) -> ApplyStats:
    """Write ``plan`` inside the caller's transaction.

    ``checkpoint(stage)`` is called between stages ("people", "phones", "consent",
    "deactivate"); tests use it to inject a failure mid-apply and prove atomicity.
    """
    stats = ApplyStats()
    mark = checkpoint or (lambda _stage: None)
    default_kind = config.default_phone_type
    new_numbers: list[str] = []  # SMS numbers of students that may need auto opt-in

    # --- people and phones of new people: written on a second thread as they are built ---
    new_ids = _reserve_ids(session, len(plan.creates))
    batch_people: list[dict[str, Any]] = []
    batch_phones: list[dict[str, Any]] = []
    with BackgroundWriter(session) as writer:
        for new_id, change in zip(new_ids, plan.creates, strict=True):
            choice = choose_sms_number(
                [_facts(i, p) for i, p in enumerate(change.phones)], default_kind=default_kind
            )
            values = _person_values(change, now)
            values.update(
                id=new_id,
                sis_id=change.sis_id,
                created_at=now,
                sms_e164=choice.e164,
                sms_reason=str(choice.reason) if choice.reason else None,
                tags=values.get("tags", []),
                courses=values.get("courses", []),
                roles=values.get("roles", []),
            )
            batch_people.append(values)
            batch_phones.extend(_new_phone(new_id, row, now) for row in change.phones)
            if choice.e164 and change.role == "student":
                new_numbers.append(choice.e164)
            if len(batch_people) >= _WRITE_BATCH:
                # People first: their phones reference them.
                writer.put(person_t, batch_people)
                writer.put(phone_t, batch_phones)
                batch_people, batch_phones = [], []
        writer.put(person_t, batch_people)
        writer.put(phone_t, batch_phones)
    stats.people_created = len(plan.creates)
    created_phones = sum(len(c.phones) for c in plan.creates)

    stored_phones = _load_phones(session, [c.existing_id for c in plan.updates if c.existing_id])
    update_rows: list[dict[str, Any]] = []
    phone_inserts: list[dict[str, Any]] = []
    phone_updates: list[dict[str, Any]] = []
    phone_removed: list[int] = []
    for change in plan.updates:
        person_id = change.existing_id
        assert person_id is not None  # noqa: S101 - updates always carry the stored id
        existing = stored_phones.get(person_id, {})
        facts: list[PhoneFacts] = []
        seen: set[int] = set()
        for index, row in enumerate(change.phones):
            stored = existing.get((row.type_code, row.match_key))
            if stored is None:
                phone_inserts.append(_new_phone(person_id, row, now))
                facts.append(_facts(-1 - index, row))
                continue
            seen.add(stored["id"])
            values = _phone_values(person_id, row, now)
            del values["first_seen"]
            values["id"] = stored["id"]
            phone_updates.append(values)
            facts.append(_facts(stored["id"], row, stored))
        # Numbers an admin added (``phones override --allow``) are in no extract: keep them,
        # and keep them in the SMS choice.
        manual = [
            s for s in existing.values() if s["type_code"] == MANUAL_TYPE_CODE and s["present"]
        ]
        facts.extend(_stored_facts(s) for s in manual)
        phone_removed.extend(
            s["id"]
            for s in existing.values()
            if s["id"] not in seen and s["present"] and s["type_code"] != MANUAL_TYPE_CODE
        )
        choice = choose_sms_number(facts, default_kind=default_kind)
        values = _person_values(change, now)
        values["id"] = person_id
        values["sms_e164"] = choice.e164
        values["sms_reason"] = str(choice.reason) if choice.reason else None
        if change.status == "active":
            values["deactivated_at"] = None
        update_rows.append(values)
        if choice.e164 and change.role == "student":
            new_numbers.append(choice.e164)
    _bulk_update(session, Person, update_rows)
    stats.people_updated = len(update_rows)
    mark("people")

    # --- phones -----------------------------------------------------------------------
    bulk_insert(session, phone_t, phone_inserts)
    _bulk_update(session, PhoneNumber, phone_updates)
    for id_batch in chunked(phone_removed):
        session.execute(
            update(phone_t).where(phone_t.c.id.in_(list(id_batch))).values(present=False)
        )
    stats.phones_inserted = len(phone_inserts) + created_phones
    stats.phones_updated = len(phone_updates)
    stats.phones_removed = len(phone_removed)
    mark("phones")

    # --- consent: new SMS numbers of students are opted in when auto opt-in is on ------------
    if config.auto_opt_in and new_numbers:
        stats.consents_created = record_auto_opt_in(
            session=session,
            numbers=new_numbers,
            now=now,
            reason="new student, auto opt-in is on",
            actor="sis-sync",
        )
    mark("consent")

    # --- people missing from a full extract become inactive (never deleted) ---------------
    for id_batch in chunked(plan.deactivate_ids):
        session.execute(
            update(person_t)
            .where(person_t.c.id.in_(list(id_batch)))
            .values(status="inactive", deactivated_at=now, updated_at=now)
        )
    stats.people_deactivated = len(plan.deactivate_ids)
    mark("deactivate")
    session.flush()
    return stats


def _bulk_update(session: Session, model: type[Any], rows: list[dict[str, Any]]) -> None:
    # ORM bulk UPDATE by primary key: rows with the same keys are batched into executemany.
    by_shape: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        by_shape.setdefault(tuple(sorted(row)), []).append(row)
    for group in by_shape.values():
        for batch in chunked(group):
            session.execute(update(model), list(batch))


def _load_phones(
    session: Session, person_ids: list[int]
) -> dict[int, dict[tuple[str, str], dict[str, Any]]]:
    found: dict[int, dict[tuple[str, str], dict[str, Any]]] = {}
    cols = (
        phone_t.c.id,
        phone_t.c.person_id,
        phone_t.c.type_code,
        phone_t.c.match_key,
        phone_t.c.sms_allowed,
        phone_t.c.disabled_by_carrier,
        phone_t.c.present,
        # for manual rows, which stay in the SMS choice
        phone_t.c.kind,
        phone_t.c.e164,
        phone_t.c.valid,
        phone_t.c.sms_capable,
        phone_t.c.is_primary,
        phone_t.c.source_updated_at,
    )
    for batch in chunked(person_ids):
        for row in session.execute(select(*cols).where(phone_t.c.person_id.in_(list(batch)))):
            found.setdefault(row.person_id, {})[(row.type_code, row.match_key)] = row._asdict()
    return found


def refresh_sms_number(*, session: Session, person_id: int, config: SmsConfig) -> str | None:
    """Re-choose one person's SMS number from their stored phones (after an override or a
    carrier verdict); returns the chosen E.164 or None."""
    rows = session.execute(
        select(phone_t).where(phone_t.c.person_id == person_id, phone_t.c.present.is_(True))
    ).all()
    facts = [
        PhoneFacts(
            id=r.id,
            kind=r.kind,
            e164=r.e164,
            valid=r.valid,
            sms_capable=r.sms_capable,
            is_primary=r.is_primary,
            updated_at=r.source_updated_at,
            sms_allowed=r.sms_allowed,
            disabled_by_carrier=r.disabled_by_carrier,
        )
        for r in rows
    ]
    choice = choose_sms_number(facts, default_kind=config.default_phone_type)
    session.execute(
        update(person_t)
        .where(person_t.c.id == person_id)
        .values(sms_e164=choice.e164, sms_reason=str(choice.reason) if choice.reason else None)
    )
    return choice.e164
