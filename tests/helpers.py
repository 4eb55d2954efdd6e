"""Small builders for test data: CSV extracts written exactly as an SIS would."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

PEOPLE_COLUMNS = [
    "person_id",
    "role",
    "first_name",
    "last_name",
    "preferred_name",
    "email",
    "status",
    "program",
    "degree",
    "risk_level",
    "tags",
    "courses",
    "advisor_id",
    "department",
    "roles",
]
PHONE_COLUMNS = ["person_id", "phone_type", "number", "country", "primary", "updated_at"]


def student(pid: str, **kw: str) -> dict[str, str]:
    """A people.csv row for an active student with sensible defaults."""
    row = {
        "person_id": pid,
        "role": "student",
        "first_name": f"First{pid}",
        "last_name": f"Last{pid}",
        "preferred_name": "",
        "email": f"{pid.lower()}@college.edu",
        "status": "active",
        "program": "Nursing",
        "degree": "AAS",
        "risk_level": "low",
        "tags": "first-gen",
        "courses": "BIO101;ENG101",
        "advisor_id": "A1",
        "department": "",
        "roles": "",
    }
    row.update(kw)
    return row


def staff(pid: str, **kw: str) -> dict[str, str]:
    """A people.csv row for an active staff member."""
    row = student(
        pid,
        role="staff",
        program="",
        degree="",
        risk_level="",
        tags="",
        courses="",
        advisor_id="",
        department="Advising",
        roles="Texting",
    )
    row.update(kw)
    return row


def phone(pid: str, number: str, type_code: str = "CELL", **kw: str) -> dict[str, str]:
    """A phones.csv row."""
    row = {
        "person_id": pid,
        "phone_type": type_code,
        "number": number,
        "country": "",
        "primary": "Y",
        "updated_at": "2025-09-01",
    }
    row.update(kw)
    return row


def write_extract(
    folder: Path,
    people: Iterable[Mapping[str, str]],
    phones: Iterable[Mapping[str, str]],
    *,
    people_columns: list[str] | None = None,
    phone_columns: list[str] | None = None,
) -> str:
    """Write people.csv and phones.csv into ``folder``; returns the ``csv:`` source spec."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows, columns in (
        ("people.csv", people, people_columns or PEOPLE_COLUMNS),
        ("phones.csv", phones, phone_columns or PHONE_COLUMNS),
    ):
        with (folder / name).open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
    return f"csv:{folder}"


def populate_college(
    settings: Any, folder: Path, students: int, *, monthly_limit: int | None = None
) -> None:
    """Sync a college whose staff member T1 (Texting role) advises ``students`` students with
    valid numbers (+1212867xxxx, ...), with quiet hours off and the given monthly limit."""
    from sqlmodel import Session

    from flows.sis_sync import run_sync
    from models.config import load_config, save_config
    from models.db import make_engine

    people = [staff("T1", first_name="Tess", last_name="Adams", roles="Texting")]
    phones = []
    for i in range(students):
        people.append(student(f"S{i}", advisor_id="T1"))
        phones.append(phone(f"S{i}", f"(212) {867 + i // 10000}-{i % 10000:04d}"))
    run_sync(write_extract(folder, people, phones), settings=settings)
    engine = make_engine(settings.database_url)
    with Session(engine) as s:
        config = load_config(session=s)
        config.quiet_hours = "off"
        config.monthly_limit = monthly_limit
        save_config(config, session=s)
        s.commit()
    engine.dispose()
