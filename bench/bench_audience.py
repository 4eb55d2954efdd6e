"""Benchmark: resolving an audience of 50,000 students on PostgreSQL (target <= 1 s).

100,000 active students with programs, tags and courses; the audience filter combines a
program list with a tag (JSONB membership): about half of them match. Baseline, in the same
run: reading every student row with no filter at all.

    python bench/bench_audience.py [--postgres URL]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._report import machine, record
from bench.bench_sync import DEFAULT_PG, drop_pg, fresh_pg


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--postgres", default=os.environ.get("NUDGE_BENCH_POSTGRES_URL", DEFAULT_PG)
    )
    parser.add_argument("--students", type=int, default=100_000)
    args = parser.parse_args()

    from sqlalchemy import select
    from sqlmodel import Session

    from domain.audience import AudienceFilter
    from models.audience import resolve_audience
    from models.bulk import bulk_insert
    from models.db import make_engine, upgrade_database
    from models.people import Person
    from models.types import utcnow

    print(f"machine: {machine()}")
    url, name = fresh_pg(args.postgres)
    try:
        upgrade_database(url)
        engine = make_engine(url)
        rng = random.Random(1)
        now = utcnow()
        rows = [
            {
                "sis_id": f"S{i}",
                "role": "student",
                "status": "active",
                "first_name": f"F{i}",
                "last_name": f"L{i}",
                "preferred_name": None,
                "email": f"s{i}@college.edu",
                "program": rng.choice(["Nursing", "Business", "Welding", "Biology"]),
                "degree": "AAS",
                "risk_level": rng.choice(["low", "medium", "high"]),
                "advisor_sis_id": f"A{i % 50}",
                "department": None,
                "title": None,
                "tags": rng.sample(["first-gen", "athlete", "pell", "veteran"], 2),
                "courses": rng.sample(["BIO101", "ENG101", "MAT120", "HIS201"], 2),
                "roles": [],
                "sms_e164": f"+1212867{i:04d}"[:12],
                "sms_reason": None,
                "source_hash": None,
                "created_at": now,
                "updated_at": now,
            }
            for i in range(args.students)
        ]
        with Session(engine) as s:
            bulk_insert(s, Person.__table__, rows)  # type: ignore[attr-defined]
            s.commit()
        with engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE")
        audience = AudienceFilter(
            programs=["Nursing", "Business"], tags=["first-gen", "pell", "athlete"]
        )
        with Session(engine) as s:
            resolve_audience(session=s, audience=audience)  # warm the cache once
            start = time.perf_counter()
            s.execute(select(Person.__table__)).all()  # type: ignore[attr-defined]
            t_all = time.perf_counter() - start
            start = time.perf_counter()
            members = resolve_audience(session=s, audience=audience)
            t_aud = time.perf_counter() - start
        engine.dispose()
        print(f"baseline: read all {args.students:,} student rows: {t_all:.3f} s")
        print(f"audience: {len(members):,} students resolved in {t_aud:.3f} s")
        record(
            f"audience of {len(members):,} on PostgreSQL",
            t_aud,
            "s",
            baseline=f"read all rows {t_all:.2f} s",
            ratio=t_aud / t_all,
            target="<= 1 s for 50,000",
            ok=t_aud <= 1.0,
        )
    finally:
        drop_pg(args.postgres, name)


if __name__ == "__main__":
    main()
