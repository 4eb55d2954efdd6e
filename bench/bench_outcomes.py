"""Benchmark: a campaign's outcomes (``models.outcomes.campaign_stats``) for 50,000
recipients and 10,000 replies, on PostgreSQL (target < 1 s) and SQLite.

Setup (not timed), bulk-inserted (not through the send path) into a database made by the
migrations, as deployed: 50,000 students and two staff members; T1's earlier campaign to
every student (with its opt-in notices) a week before, the measured campaign at T0 (3%
undelivered 30003, 1% failed 30007, 1% failed without a code, the rest delivered; and 1% more
students held out),
T1's later campaign to 10% of them two days after, and T2's campaign to 20% an hour after.
Inbound: 10,000 students answer the measured campaign (85% threaded, 10% unthreaded to T1 by
SMS or email, 5% STOP; 2,000 write twice), 10,000 replies to the earlier campaign, 5,000 to
T2, and 3,000 to T1 after the later campaign (which the window rule gives to that one).

Timed: ``campaign_stats`` warm, the median of ``--repeats`` calls; beside it, for scale,
``staff_stats`` over the same week. PostgreSQL runs in a database of its own, created and
dropped here (``--postgres-url``, default ``postgresql://postgres@127.0.0.1:5432/postgres``).

    python bench/bench_outcomes.py [--recipients 50000] [--replies 10000]
                                   [--postgres-url URL | --no-postgres] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._report import machine, record
from bench.bench_sync import DEFAULT_PG, drop_pg, fresh_pg

TARGET_S = 1.0
T0 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
T1, T2 = 1, 2  # staff person ids
EARLIER, MEASURED, LATER, OTHER = 1, 2, 3, 4  # campaign ids


def _person(pid: int, sis_id: str, role: str) -> dict[str, Any]:
    return {
        "id": pid,
        "sis_id": sis_id,
        "role": role,
        "status": "active",
        "first_name": sis_id,
        "last_name": "Bench",
        "tags": [],
        "courses": [],
        "roles": [],
        "created_at": T0,
        "updated_at": T0,
    }


def _campaign(cid: int, sender: int) -> dict[str, Any]:
    return {
        "id": cid,
        "kind": "campaign",
        "sender_person_id": sender,
        "audience": {},
        "template": f"Campaign {cid}",
        "status": "completed",
        "conversation": False,
        "counts": {},
        "created_at": T0,
    }


class Rows:
    """Messages and inbound rows with their ids, as the bulk insert takes them."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.inbound: list[dict[str, Any]] = []

    def message(
        self,
        campaign: int,
        student: int,
        sent_at: datetime | None,
        *,
        kind: str = "campaign",
        status: str = "delivered",
        code: int | None = None,
        sender: str = "+12125550001",
    ) -> int:
        mid = len(self.messages) + 1
        self.messages.append(
            {
                "id": mid,
                "campaign_id": campaign,
                "person_id": student,
                "kind": kind,
                "channel": "sms",
                "status": status,
                "error_code": code,
                "from_addr": sender,
                "to_addr": f"+1{student:010d}",
                "body": "Hi",
                "segments": 1,
                "quota_units": 1,
                "attempts": 1,
                "created_at": sent_at or T0,
                "updated_at": sent_at or T0,
                "sent_at": sent_at,
                "extra": {},
            }
        )
        return mid

    def reply(
        self,
        student: int,
        staff: int,
        at: datetime,
        *,
        to: int | None,
        keyword: str = "none",
        channel: str = "sms",
    ) -> None:
        n = len(self.inbound) + 1
        self.inbound.append(
            {
                "id": n,
                "provider_sid": f"SM{n:032d}",
                "from_e164": f"+1{student:010d}",
                "to_e164": "+12125550001",
                "body": "STOP" if keyword == "stop" else "ok",
                "received_at": at,
                "person_id": student,
                "staff_person_id": staff,
                "in_reply_to_id": to,
                "keyword": keyword,
                "channel": channel,
                "handled": True,
                "notified": True,
                "created_at": at,
            }
        )


def outcome(i: int) -> tuple[str, int | None]:
    """Status and error code of the measured campaign's message to the i-th student."""
    bucket = i % 100
    if 1 <= bucket <= 3:
        return "undelivered", 30003
    if bucket == 4:
        return "failed", 30007
    if bucket == 5:
        return "failed", None
    return "delivered", None


def arrange(url: str, recipients: int, replies: int) -> None:
    """Create the schema (migrations) and bulk-insert the rows described above."""
    from sqlmodel import Session

    from models.bulk import bulk_insert
    from models.db import make_engine, upgrade_database
    from models.messaging import Campaign, InboundMessage, Message
    from models.people import Person

    upgrade_database(url)
    students = list(range(3, recipients + 3))
    held_out = list(range(recipients + 3, recipients + 3 + recipients // 100))
    rows = Rows()
    measured: dict[int, tuple[int, datetime]] = {}
    for n, student in enumerate(students):
        offset = timedelta(seconds=n % 3600)  # a paced send over an hour
        rows.message(EARLIER, student, T0 - timedelta(days=7) + offset, kind="opt_in_notice")
        rows.message(EARLIER, student, T0 - timedelta(days=7) + offset)
        status, code = outcome(n)
        sent = T0 + offset
        measured[student] = (rows.message(MEASURED, student, sent, status=status, code=code), sent)
        if n % 10 == 0:
            rows.message(LATER, student, T0 + timedelta(days=2) + offset)
        if n % 5 == 1:
            rows.message(OTHER, student, T0 + timedelta(hours=1) + offset, sender="+12125550002")
    for student in held_out:
        rows.message(MEASURED, student, None, status="held_out")
    for n, student in enumerate(students[:replies]):
        text, sent = measured[student]
        at = sent + timedelta(minutes=5 + n % 600)
        if n % 20 == 0:
            rows.reply(student, T1, at, to=text, keyword="stop")
        elif n % 10 == 1:
            rows.reply(student, T1, at, to=None, channel="email" if n % 20 == 1 else "sms")
        else:
            rows.reply(student, T1, at, to=text)
        if n % 5 == 2:
            rows.reply(student, T1, at + timedelta(hours=3), to=text)
    for n, student in enumerate(students[:10_000]):
        rows.reply(student, T1, T0 - timedelta(days=6, minutes=n % 600), to=None)
    for student in students[1:25_001:5]:
        rows.reply(student, T2, T0 + timedelta(hours=2), to=None)
    for student in students[:30_000:10]:
        rows.reply(student, T1, T0 + timedelta(days=3), to=None)
    engine = make_engine(url)
    try:
        with Session(engine) as s:
            people = [_person(T1, "T1", "staff"), _person(T2, "T2", "staff")]
            people += [_person(p, f"S{p}", "student") for p in students + held_out]
            bulk_insert(s, Person.__table__, people)  # type: ignore[attr-defined]
            campaigns = [_campaign(c, T2 if c == OTHER else T1) for c in range(1, 5)]
            bulk_insert(s, Campaign.__table__, campaigns)  # type: ignore[attr-defined]
            bulk_insert(s, Message.__table__, rows.messages)  # type: ignore[attr-defined]
            bulk_insert(s, InboundMessage.__table__, rows.inbound)  # type: ignore[attr-defined]
            s.commit()
        with engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
    finally:
        engine.dispose()
    print(
        f"  {len(people):,} people, {len(rows.messages):,} messages, "
        f"{len(rows.inbound):,} inbound rows"
    )


def measure(url: str, repeats: int) -> dict[str, Any]:
    """``campaign_stats`` (warm) and ``staff_stats``: median seconds of ``repeats`` calls."""
    from sqlmodel import Session

    from models.db import make_engine
    from models.outcomes import campaign_stats, staff_stats

    engine = make_engine(url)
    try:
        with Session(engine) as s:
            stats = campaign_stats(session=s, campaign_id=MEASURED)  # warm
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                campaign_stats(session=s, campaign_id=MEASURED)
                times.append(time.perf_counter() - start)
            staff_times = []
            for _ in range(repeats):
                start = time.perf_counter()
                staff = staff_stats(
                    session=s, since=T0 - timedelta(days=1), now=T0 + timedelta(days=6)
                )
                staff_times.append(time.perf_counter() - start)
    finally:
        engine.dispose()
    return {
        "stats": stats,
        "seconds": statistics.median(times),
        "staff_s": statistics.median(staff_times),
        "staff": staff,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=50_000)
    parser.add_argument("--replies", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--postgres-url",
        "--postgres",
        dest="postgres",
        default=os.environ.get("NUDGE_BENCH_POSTGRES_URL", DEFAULT_PG),
    )
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    if args.replies > args.recipients:
        parser.error("--replies must not exceed --recipients")

    print(f"machine: {machine()}")
    size = f"{args.recipients:,} recipients / {args.replies:,} replies"
    with tempfile.TemporaryDirectory(prefix="nudge-bench-outcomes-") as tmp:
        targets: list[tuple[str, str, str | None]] = [("SQLite", f"sqlite:///{tmp}/bench.db", None)]
        if not args.no_postgres:
            url, name = fresh_pg(args.postgres)
            targets.insert(0, ("PostgreSQL", url, name))
        try:
            for label, url, _name in targets:
                print(f"{label}: arranging {size} ...", flush=True)
                start = time.perf_counter()
                arrange(url, args.recipients, args.replies)
                print(f"  arranged in {time.perf_counter() - start:.1f} s")
                found = measure(url, args.repeats)
                s = found["stats"]
                print(
                    f"  campaign_stats: {found['seconds'] * 1000:.0f} ms (median of "
                    f"{args.repeats}); recipients {s.recipients:,}, held out {s.held_out:,}, "
                    f"delivered {s.delivered_pct}%, failed {s.failed_by_code}, replied "
                    f"{s.replied:,} ({s.reply_pct}%), opted out {s.opted_out:,} "
                    f"({s.opt_out_pct}%), median reply {s.median_reply_minutes} min"
                )
                print(
                    f"  staff_stats (one week, {len(found['staff'])} staff): "
                    f"{found['staff_s'] * 1000:.0f} ms"
                )
                postgres = label == "PostgreSQL"
                record(
                    f"outcomes campaign_stats, {label}, {size}",
                    found["seconds"],
                    "s",
                    baseline=f"staff_stats of the week {found['staff_s']:.2f} s",
                    target=f"< {TARGET_S:g} s" if postgres else "",
                    ok=found["seconds"] < TARGET_S if postgres else None,
                )
        finally:
            for _label, _url, name in targets:
                if name:
                    drop_pg(args.postgres, name)


if __name__ == "__main__":
    main()
