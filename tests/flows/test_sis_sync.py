"""The SIS sync, end to end through its steps, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from adapters.sis.base import SourceFormatError
from domain.sync import SyncRefused
from flows.sis_sync import run_sync
from models.config import load_config, save_config
from models.consent import Consent, ConsentEvent
from models.people import Person, PhoneNumber
from models.sync import QuarantinedRow, SyncRun
from nudge.settings import Settings
from tests.helpers import phone, staff, student, write_extract

REQUIRED_KEYS = {
    "people_created",
    "people_updated",
    "people_unchanged",
    "people_deactivated",
    "phones_valid",
    "phones_invalid",
    "sms_eligible",
    "rows_quarantined",
    "unknown_type_codes",
}


def base_people(n: int = 10) -> list[dict[str, str]]:
    return [staff("A1"), *(student(f"S{i}") for i in range(n))]


def base_phones(n: int = 10) -> list[dict[str, str]]:
    rows = []
    for i in range(n):
        rows.append(phone(f"S{i}", f"(212) 555-{1000 + i:04d}"))
        rows.append(phone(f"S{i}", f"212.555.{2000 + i:04d}", "PR", primary="N"))
    rows.append(phone("A1", "312-555-0100", "WORK"))
    return rows


def snapshot(engine: Engine) -> dict[str, object]:
    """Every row of the synced tables, so 'nothing changed' can be asserted exactly."""
    with Session(engine) as s:
        people = s.exec(select(Person).order_by(col(Person.id))).scalars().all()
        phones = s.exec(select(PhoneNumber).order_by(col(PhoneNumber.id))).scalars().all()
        consents = s.exec(select(Consent).order_by(col(Consent.id))).scalars().all()
        return {
            "people": [p.model_dump() for p in people],
            "phones": [p.model_dump() for p in phones],
            "consents": [c.model_dump() for c in consents],
        }


def test_first_sync_creates_people_phones_and_reports(
    tmp_path: Path, settings: Settings, engine: Engine
) -> None:
    source = write_extract(tmp_path / "x", base_people(), base_phones())
    stats = run_sync(source, settings=settings)
    assert stats.keys() >= REQUIRED_KEYS
    assert stats["people_created"] == 11
    assert stats["phones_valid"] == 21
    assert stats["sms_eligible"] == 10
    with Session(engine) as s:
        s0 = s.exec(select(Person).where(Person.sis_id == "S0")).scalar_one()
        assert s0.sms_e164 == "+12125551000"  # the CELL number, not the PR one
        assert s0.tags == ["first-gen"] and s0.courses == ["BIO101", "ENG101"]
        run = s.exec(select(SyncRun)).scalar_one()
        assert run.status == "succeeded" and run.stats["people_created"] == 11


def test_resync_of_unchanged_data_parses_nothing_and_writes_nothing(
    tmp_path: Path, settings: Settings, engine: Engine
) -> None:
    source = write_extract(tmp_path / "x", base_people(), base_phones())
    run_sync(source, settings=settings)
    before = snapshot(engine)
    stats = run_sync(source, settings=settings)
    assert stats["people_unchanged"] == 11
    assert (stats["people_created"], stats["people_updated"], stats["phones_parsed"]) == (0, 0, 0)
    assert snapshot(engine) == before


def test_changed_person_is_updated_and_only_their_numbers_parsed(
    tmp_path: Path, settings: Settings, engine: Engine
) -> None:
    run_sync(write_extract(tmp_path / "a", base_people(), base_phones()), settings=settings)
    people = base_people()
    people[1]["email"] = "new@college.edu"
    stats = run_sync(write_extract(tmp_path / "b", people, base_phones()), settings=settings)
    assert (stats["people_updated"], stats["people_unchanged"], stats["phones_parsed"]) == (
        1,
        10,
        2,
    )
    with Session(engine) as s:
        assert (
            s.exec(select(Person.email).where(Person.sis_id == "S0")).scalar_one()
            == "new@college.edu"
        )


def test_override_survives_resync_and_reformatting(
    tmp_path: Path, settings: Settings, engine: Engine
) -> None:
    run_sync(write_extract(tmp_path / "a", base_people(), base_phones()), settings=settings)
    with Session(engine) as s:
        person = s.exec(select(Person).where(Person.sis_id == "S3")).scalar_one()
        home = s.exec(
            select(PhoneNumber).where(
                PhoneNumber.person_id == person.id, PhoneNumber.type_code == "PR"
            )
        ).scalar_one()
        home.sms_allowed = True
        s.add(home)
        s.commit()
    phones = base_phones()
    for row in phones:  # the SIS re-formats S3's home number and S3 changes their email
        if row["person_id"] == "S3" and row["phone_type"] == "PR":
            row["number"] = "+1 (212) 555-2003"
    people = base_people()
    people[4]["email"] = "s3-new@college.edu"
    stats = run_sync(write_extract(tmp_path / "b", people, phones), settings=settings)
    assert stats["people_updated"] == 1
    with Session(engine) as s:
        person = s.exec(select(Person).where(Person.sis_id == "S3")).scalar_one()
        home = s.exec(
            select(PhoneNumber).where(
                PhoneNumber.person_id == person.id, PhoneNumber.type_code == "PR"
            )
        ).scalar_one()
        assert home.sms_allowed is True and home.raw == "+1 (212) 555-2003"
        assert person.sms_e164 == "+12125552003"  # the override wins over the CELL number


def test_bad_rows_are_quarantined_and_good_rows_applied(
    tmp_path: Path, settings: Settings, engine: Engine
) -> None:
    people = [*base_people(), student("S99", role="alumnus")]
    phones = [*base_phones(), phone("NOBODY", "212-555-9999")]
    stats = run_sync(write_extract(tmp_path / "x", people, phones), settings=settings)
    assert stats["rows_quarantined"] == 2
    assert stats["people_created"] == 11
    with Session(engine) as s:
        rows = s.exec(select(QuarantinedRow).order_by(col(QuarantinedRow.file))).scalars().all()
        assert [(r.file, r.line, r.person_sis_id) for r in rows] == [
            ("people.csv", 13, "S99"),
            ("phones.csv", 23, "NOBODY"),
        ]
        assert all(r.reason for r in rows)


def test_mass_deactivation_is_refused_and_changes_nothing(
    tmp_path: Path, settings: Settings, engine: Engine
) -> None:
    run_sync(write_extract(tmp_path / "a", base_people(), base_phones()), settings=settings)
    before = snapshot(engine)
    truncated = base_people()[:6]  # staff + 5 of 10 students: 5 of 11 would go
    with pytest.raises(SyncRefused, match=r"deactivate 5 of 11"):
        run_sync(write_extract(tmp_path / "b", truncated, base_phones()), settings=settings)
    assert snapshot(engine) == before
    with Session(engine) as s:
        last = s.exec(select(SyncRun).order_by(col(SyncRun.id).desc())).scalars().first()
        assert last is not None and last.status == "refused"


def test_missing_people_become_inactive_and_come_back(
    tmp_path: Path, settings: Settings, engine: Engine
) -> None:
    people = [staff("A1"), *(student(f"S{i}") for i in range(30))]
    run_sync(write_extract(tmp_path / "a", people, base_phones()), settings=settings)
    stats = run_sync(write_extract(tmp_path / "b", people[:-2], base_phones()), settings=settings)
    assert stats["people_deactivated"] == 2
    with Session(engine) as s:
        gone = s.exec(select(Person).where(Person.sis_id == "S29")).scalar_one()
        assert gone.status == "inactive" and gone.deactivated_at is not None
    stats = run_sync(write_extract(tmp_path / "c", people, base_phones()), settings=settings)
    assert stats["people_updated"] == 2
    with Session(engine) as s:
        back = s.exec(select(Person).where(Person.sis_id == "S29")).scalar_one()
        assert back.status == "active" and back.deactivated_at is None


def test_failure_mid_apply_changes_nothing(
    tmp_path: Path, settings: Settings, engine: Engine
) -> None:
    run_sync(write_extract(tmp_path / "a", base_people(), base_phones()), settings=settings)
    before = snapshot(engine)
    people = [*base_people(), student("S50")]
    people[2]["email"] = "changed@college.edu"

    def explode(stage: str) -> None:
        if stage == "phones":
            raise RuntimeError("disk full (injected)")

    with pytest.raises(RuntimeError, match="injected"):
        run_sync(
            write_extract(tmp_path / "b", people, base_phones()),
            settings=settings,
            checkpoint=explode,
        )
    assert snapshot(engine) == before
    with Session(engine) as s:
        last = s.exec(select(SyncRun).order_by(col(SyncRun.id).desc())).scalars().first()
        assert last is not None and last.status == "failed" and "injected" in (last.error or "")


def test_missing_required_columns_refuses_whole_file(
    tmp_path: Path, settings: Settings, engine: Engine
) -> None:
    source = write_extract(
        tmp_path / "x", base_people(), base_phones(), phone_columns=["person_id", "phone_type"]
    )
    with pytest.raises(SourceFormatError, match="number"):
        run_sync(source, settings=settings)
    with Session(engine) as s:
        assert s.exec(select(func.count()).select_from(Person)).scalar_one() == 0


def test_fields_not_provided_stay_as_they_are(
    tmp_path: Path, settings: Settings, engine: Engine
) -> None:
    run_sync(write_extract(tmp_path / "a", base_people(), base_phones()), settings=settings)
    columns = ["person_id", "role", "first_name", "last_name", "email", "status"]
    people = base_people()
    people[1]["email"] = "other@college.edu"
    run_sync(
        write_extract(tmp_path / "b", people, base_phones(), people_columns=columns),
        settings=settings,
    )
    with Session(engine) as s:
        s0 = s.exec(select(Person).where(Person.sis_id == "S0")).scalar_one()
        assert s0.email == "other@college.edu"
        assert s0.program == "Nursing" and s0.tags == ["first-gen"]


def test_new_students_are_auto_opted_in_only_when_configured(
    tmp_path: Path, settings: Settings, engine: Engine
) -> None:
    run_sync(write_extract(tmp_path / "a", base_people(2), base_phones(2)), settings=settings)
    with Session(engine) as s:
        consents = s.exec(select(Consent)).scalars().all()
        assert {(c.e164, c.status, c.source) for c in consents} == {
            ("+12125551000", "opted_in", "auto"),
            ("+12125551001", "opted_in", "auto"),
        }
        assert s.exec(select(func.count()).select_from(ConsentEvent)).scalar_one() == 2
        config = load_config(session=s)
        config.auto_opt_in = False
        save_config(config, session=s)
        s.commit()
    people = [*base_people(2), student("S7")]
    phones = [*base_phones(2), phone("S7", "212-555-1007")]
    run_sync(write_extract(tmp_path / "b", people, phones), settings=settings)
    with Session(engine) as s:
        assert s.exec(select(func.count()).select_from(Consent)).scalar_one() == 2


def test_unknown_codes_type_mismatch_and_shared_numbers_are_flagged(
    tmp_path: Path, settings: Settings
) -> None:
    people = base_people(3)
    phones = [
        phone("S0", "212-555-1000"),
        phone("S1", "212-555-1000"),  # siblings sharing one phone
        phone("S2", "020 7183 8750", country="GB"),  # a London landline coded as a cell
        phone("S2", "212-555-3000", "ZZTOP", primary="N"),
    ]
    stats = run_sync(write_extract(tmp_path / "x", people, phones), settings=settings)
    assert stats["unknown_type_codes"] == 1
    assert stats["unknown_type_code_counts"] == {"ZZTOP": 1}
    assert stats["type_mismatches"] == 1
    assert stats["shared_numbers"] == 1
    assert stats["sms_eligible"] == 2


def test_parallel_parse_gives_the_same_answers_as_one_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import tasks.sis as sis_tasks
    from domain.phones import parse_many

    items = [(f"(212) 555-{i:04d}", None, i % 3 == 0) for i in range(60)]
    items += [("Decline to state", None, True), ("07911 123456", "GB", True), ("12", None, False)]
    monkeypatch.setattr(sis_tasks, "PARALLEL_PARSE_MIN", 10)
    assert sis_tasks._parse_all(items, "US", 2) == parse_many(items, "US")


# --- the phone guards (issue 12) ----------------------------------------------------------------

GUARD_STUDENTS = 30


def phones_without(drop: set[int], n: int = GUARD_STUDENTS) -> list[dict[str, str]]:
    return [row for row in base_phones(n) if not any(row["person_id"] == f"S{i}" for i in drop)]


@pytest.mark.parametrize(
    ("case", "phones", "refusal"),
    [
        pytest.param(
            "header-only",
            [],
            r"remove 61 of 61 stored phone numbers \(100\.0%.*leave 30 of the 30 students",
            id="header-only-phones-csv",
        ),
        pytest.param(
            "half",
            phones_without(set(range(15))),
            # 15 students without a number are fewer than the guard's minimum of 20: the
            # removal share alone refuses it.
            r"remove 30 of 61 stored phone numbers \(49\.2%; max_phone_removal_share is 10%\)\.",
            id="half-the-rows",
        ),
        pytest.param(
            "cells-only-lost",
            [r for r in base_phones(GUARD_STUDENTS) if r["phone_type"] != "CELL"],
            r"^refused: this sync would remove 30 of 61.*leave 30 of the 30 students",
            id="every-cell-number-gone",
        ),
    ],
)
def test_a_sync_losing_phones_or_reachability_is_refused_and_changes_nothing(
    tmp_path: Path,
    settings: Settings,
    engine: Engine,
    case: str,
    phones: list[dict[str, str]],
    refusal: str,
) -> None:
    people = base_people(GUARD_STUDENTS)
    first = run_sync(
        write_extract(tmp_path / "a", people, base_phones(GUARD_STUDENTS)), settings=settings
    )
    assert first["sms_eligible"] == GUARD_STUDENTS
    before = snapshot(engine)
    with pytest.raises(SyncRefused, match=refusal):
        run_sync(write_extract(tmp_path / case, people, phones), settings=settings)
    assert snapshot(engine) == before
    with Session(engine) as s:
        last = s.exec(select(SyncRun).order_by(col(SyncRun.id).desc())).scalars().first()
        assert last is not None and last.status == "refused" and "--force" in (last.error or "")
    # The full extract again changes nothing; --force lets a known mass change through.
    again = run_sync(
        write_extract(tmp_path / "again", people, base_phones(GUARD_STUDENTS)), settings=settings
    )
    assert (again["people_unchanged"], again["phones_removed"]) == (GUARD_STUDENTS + 1, 0)
    forced = run_sync(
        write_extract(tmp_path / "forced", people, phones), settings=settings, force=True
    )
    assert forced["forced"] is True and forced["phones_removed"] > 0


def test_an_ordinary_change_at_a_small_college_is_never_refused(
    tmp_path: Path, settings: Settings, engine: Engine
) -> None:
    # Three of ten students change or lose numbers: 30% of a tiny college, but only a few rows.
    run_sync(write_extract(tmp_path / "a", base_people(), base_phones()), settings=settings)
    changed = run_sync(
        write_extract(tmp_path / "b", base_people(), phones_without({0, 1, 2}, 10)),
        settings=settings,
    )
    assert (changed["phones_removed"], changed["sms_reachability_lost"]) == (6, 3)
    assert changed["sms_eligible"] == 7
